#!/usr/bin/env python3
"""tls_proxy: an https front for a plain-http server, for the tests only.

    tls_proxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:7480 \
        --cert server.pem --key server.key [--log FILE]

Terminates TLS and relays the bytes both ways unchanged (no HTTP parsing):
the Host header the client signed (SigV4) reaches radosgw as it was sent.
Prints "listening on 127.0.0.1:PORT" on stdout once it accepts connections
(the only line it prints there). --log appends one line per connection:
"ok <bytes up> <bytes down>" or "handshake failed: <reason>", so a test can
see that a client refused the certificate. SIGTERM/SIGINT: exit 0.
One thread per connection: a blocking handshake, then a non-blocking
select loop (an SSL object is never used by two threads at once).
Python 3.11 standard library only.
"""
import argparse
import select
import signal
import socket
import ssl
import sys
import threading

BUF = 1 << 16
HIGH = 1 << 20		# stop reading a side while this much waits for the other


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None
        self.lock = threading.Lock()

    def __call__(self, line):
        if self.f:
            with self.lock:
                self.f.write(line + "\n")


def relay(tls, up):
    """Move bytes both ways until the upstream is done or the client left."""
    tls.setblocking(False)
    up.setblocking(False)
    to_up, to_cl = bytearray(), bytearray()
    cl_eof = up_eof = up_shut = False
    n_up = n_down = 0
    while True:
        if up_eof and not to_cl:
            break
        if cl_eof and not to_up and not up_shut:
            try:
                up.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            up_shut = True
        rl, wl = [], []
        if not cl_eof and len(to_up) < HIGH:
            rl.append(tls)
        if not up_eof and len(to_cl) < HIGH:
            rl.append(up)
        if to_up:
            wl.append(up)
        if to_cl:
            wl.append(tls)
        if not rl and not wl:
            break
        if tls in rl and tls.pending():
            r, w = [tls], []
        else:
            r, w, _ = select.select(rl, wl, [], 300)
            if not r and not w:
                break		# idle for 5 minutes
        if tls in r:
            try:
                data = tls.recv(BUF)
                if data:
                    to_up += data
                    n_up += len(data)
                else:
                    cl_eof = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except (ssl.SSLError, OSError):
                cl_eof = True
                to_cl.clear()
                up_eof = True	# the client is gone: nothing more to do
        if up in r:
            try:
                data = up.recv(BUF)
                if data:
                    to_cl += data
                    n_down += len(data)
                else:
                    up_eof = True
            except BlockingIOError:
                pass
            except OSError:
                up_eof = True
        if up in w and to_up:
            try:
                n = up.send(to_up)
                del to_up[:n]
            except BlockingIOError:
                pass
            except OSError:
                up_eof = True
                to_up.clear()
        if tls in w and to_cl:
            try:
                n = tls.send(to_cl)
                del to_cl[:n]
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except (ssl.SSLError, OSError):
                to_cl.clear()
                up_eof = cl_eof = True
    return n_up, n_down


def serve(conn, ctx, upstream, log):
    try:
        conn.settimeout(10)
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log("handshake failed: %s: %s" % (type(e).__name__, e))
            return
        try:
            up = socket.create_connection(upstream, timeout=10)
        except OSError as e:
            log("upstream connect failed: %s" % e)
            tls.close()
            return
        try:
            n_up, n_down = relay(tls, up)
            log("ok %d %d" % (n_up, n_down))
        finally:
            up.close()
            try:
                tls.close()
            except OSError:
                pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description="https front for a plain-http server (tests only)")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    uh, up = args.upstream.rsplit(":", 1)
    lh, lp = args.listen.rsplit(":", 1)
    log = Log(args.log)

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv = socket.create_server((lh, int(lp)), backlog=128)
    addr = srv.getsockname()
    print("listening on %s:%d" % (addr[0], addr[1]), flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, ctx, (uh, int(up)), log),
                         daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
