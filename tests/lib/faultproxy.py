#!/usr/bin/env python3
"""faultproxy: a fault-injecting HTTP/1.1 reverse proxy for the s3-batch tests.

It sits between the tools and a real server (radosgw, OpenSearch) on loopback,
forwards every request byte for byte (SigV4 signs the method, target, headers
and body, so nothing may change), records what was sent, and injects faults
chosen per request by rules. Standard library only. See faultproxy.md.

    faultproxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:7480 \
        [--control FILE] [--faults JSON] [--log FILE] [--seed N]
"""

import argparse
import asyncio
import base64
import concurrent.futures
import ctypes
import email.utils
import glob
import hashlib
import http
import itertools
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import time
import traceback
import zlib
from xml.sax.saxutils import escape as xml_escape

READ_SIZE = 1 << 20          # bytes per read while streaming bodies
LINE_LIMIT = 1 << 20         # longest head or chunk-size line accepted
WRITE_HIGH = 4 << 20         # transport buffer before drain() waits
LINGER_IDLE = 2.0            # lingering close: stop after this much silence
LINGER_MAX = 30.0            # ... or after this long in all
HASH_THREAD_MIN = 64 << 10   # hash pieces at least this big in a thread
BODY_WAIT = 30.0             # wait for the rest of a request body after an early answer


def warn(msg):
    print(f"faultproxy: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Errors. Client-side and upstream-side failures are kept apart so that each
# is mirrored on the right connection.

class ProtocolError(Exception):
    """The client sent something that is not HTTP/1.1."""


class ClientGone(Exception):
    """The client connection failed or closed mid-exchange."""


class UpstreamError(Exception):
    """The upstream connection failed."""


class UpstreamEOF(UpstreamError):
    """The upstream closed before answering; clean: not one byte came."""

    def __init__(self, msg, clean):
        super().__init__(msg)
        self.clean = clean


class UpstreamWriteError(Exception):
    """Writing the request body upstream failed (the upstream stopped reading)."""


class FaultDone(Exception):
    """A fault ended the exchange; the client connection is already dealt with."""


class StallEnd(Exception):
    """A mid-response stall ends the exchange with 'close' or 'reset'."""

    def __init__(self, then):
        super().__init__(then)
        self.then = then


# --------------------------------------------------------------------------
# Checksums. CRC32C is not in the standard library: use Ceph's C function
# through ctypes when libceph-common is installed (it is wherever radosgw is),
# else a table-driven Python loop (about 10 MB/s) that runs only when the
# request announces CRC32C.

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c_py(crc, data):
    crc ^= 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def load_crc32c():
    """Return (function(crc, bytes) -> crc, fast?)."""
    candidates = [os.environ.get("FAULTPROXY_CRC32C_LIB")]
    for pat in ("/usr/lib/*/ceph/libceph-common.so*", "/usr/lib/ceph/libceph-common.so*",
                "/usr/lib64/ceph/libceph-common.so*"):
        candidates += sorted(glob.glob(pat))
    for path in candidates:
        if not path:
            continue
        try:
            fn = ctypes.CDLL(path).ceph_crc32c_sctp
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_uint32
        fn.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint]

        def crc32c_c(crc, data, fn=fn):
            return fn(crc ^ 0xFFFFFFFF, data, len(data)) ^ 0xFFFFFFFF

        if crc32c_c(0, b"123456789") == 0xE3069283:
            return crc32c_c, True
    return crc32c_py, False


CRC32C = crc32c_py
CRC32C_FAST = False


def b64(raw):
    return base64.b64encode(raw).decode("ascii")


class Digest:
    """Length and checksums of a byte stream, in the forms S3 headers use."""

    def __init__(self, crc32c=False, sha1=False):
        self.length = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.crc32 = 0
        self.crc32c = 0 if crc32c else None
        self.sha1 = hashlib.sha1(usedforsecurity=False) if sha1 else None

    def update(self, data, part=None):
        """part: None for all, "md5" or "rest" to run the two halves in
        parallel threads."""
        if part != "rest":
            self.md5.update(data)
            if part == "md5":
                return
        self.length += len(data)
        self.sha256.update(data)
        self.crc32 = zlib.crc32(data, self.crc32)
        if self.crc32c is not None:
            self.crc32c = CRC32C(self.crc32c, data if isinstance(data, bytes) else bytes(data))
        if self.sha1 is not None:
            self.sha1.update(data)

    def as_dict(self):
        s = self.sha256.digest()
        m = self.md5.digest()
        d = {
            "length": self.length,
            "sha256": s.hex(),
            "sha256_b64": b64(s),
            "md5": b64(m),
            "md5_hex": m.hex(),
            "crc32": b64(struct.pack(">I", self.crc32)),
            "crc32c": None if self.crc32c is None else b64(struct.pack(">I", self.crc32c)),
        }
        if self.sha1 is not None:
            d["sha1_b64"] = b64(self.sha1.digest())
        return d


class AwsChunked:
    """Streaming decoder of the aws-chunked content encoding (signed or not,
    with or without trailers); feeds the decoded payload to a Digest."""

    def __init__(self, digest):
        self.digest = digest
        self.state = "size"
        self.line = bytearray()
        self.remaining = 0
        self.chunks = 0
        self.signatures = 0
        self.trailers = []
        self.error = None

    def feed(self, data):
        n = len(data)
        i = 0
        mv = memoryview(data)
        while i < n and self.error is None:
            if self.state == "data":
                take = min(self.remaining, n - i)
                self.digest.update(mv[i:i + take])
                i += take
                self.remaining -= take
                if self.remaining == 0:
                    self.state = "crlf"
                continue
            if self.state == "done":
                self.error = "data after the final chunk"
                break
            j = data.find(b"\n", i)
            if j < 0:
                self.line += mv[i:]
                if len(self.line) > 65536:
                    self.error = "chunk header too long"
                break
            self.line += mv[i:j + 1]
            i = j + 1
            line = bytes(self.line)
            self.line.clear()
            self._line(line[:-2] if line.endswith(b"\r\n") else line[:-1])

    def _line(self, line):
        if self.state == "crlf":
            if line:
                self.error = "missing CRLF after chunk data"
            self.state = "size"
        elif self.state == "size":
            size, _, ext = line.partition(b";")
            try:
                self.remaining = int(size.strip(), 16)
            except ValueError:
                self.error = f"bad chunk size {size[:40]!r}"
                return
            self.chunks += 1
            if ext.strip().startswith(b"chunk-signature="):
                self.signatures += 1
            self.state = "data" if self.remaining else "trailer"
        elif self.state == "trailer":
            if not line:
                self.state = "done"
                return
            name, _, value = line.partition(b":")
            self.trailers.append([name.strip().decode("latin-1"),
                                  value.strip().decode("latin-1")])

    def as_dict(self):
        d = self.digest.as_dict()
        d.update(chunks=self.chunks, signatures=self.signatures,
                 trailers=self.trailers, complete=self.state == "done",
                 error=self.error)
        return d


# --------------------------------------------------------------------------
# HTTP messages. Heads are kept as the raw bytes received; the parsed fields
# are only read, never used to rebuild what is forwarded.

def parse_fields(lines):
    fields = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or name.strip() != name:
            raise ProtocolError(f"bad header line {line[:60]!r}")
        fields.append((name, value.strip(b" \t")))
    return fields


def field_values(fields, lname):
    return [v for n, v in fields if n.lower() == lname]


def tokens(values):
    return [t.strip().lower() for v in values for t in v.split(b",") if t.strip()]


def fields_json(fields):
    return [[n.decode("latin-1"), v.decode("latin-1")] for n, v in fields]


def body_length(fields, what):
    """('chunked', None) or ('length', n) from Transfer-Encoding/Content-Length."""
    te = tokens(field_values(fields, b"transfer-encoding"))
    if te:
        if te[-1] != b"chunked":
            raise ProtocolError(f"{what}: unsupported transfer-encoding")
        return "chunked", None
    cl = field_values(fields, b"content-length")
    if cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise ProtocolError(f"{what}: bad content-length")
        return "length", int(cl[0])
    return None, None


class Request:
    def __init__(self, raw):
        self.raw = raw
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[2].startswith(b"HTTP/1."):
            raise ProtocolError(f"bad request line {lines[0][:80]!r}")
        self.method, self.target, self.version = parts
        self.fields = parse_fields(lines[1:])
        self.path, _, self.query = self.target.partition(b"?")
        mode, n = body_length(self.fields, "request")
        self.chunked = mode == "chunked"
        self.length = n if mode == "length" else (None if self.chunked else 0)
        self.has_body = self.chunked or self.length > 0
        self.expect_100 = b"100-continue" in tokens(field_values(self.fields, b"expect"))
        conn = tokens(field_values(self.fields, b"connection"))
        if self.version == b"HTTP/1.0":
            self.keep_alive = b"keep-alive" in conn
        else:
            self.keep_alive = b"close" not in conn
        self.aws_chunked = (
            b"aws-chunked" in tokens(field_values(self.fields, b"content-encoding"))
            or any(v.upper().startswith(b"STREAMING-")
                   for v in field_values(self.fields, b"x-amz-content-sha256")))
        amz = b" ".join(n + b":" + v for n, v in self.fields
                        if n.lower().startswith(b"x-amz-")).lower()
        self.wants_crc32c = b"crc32c" in amz
        self.wants_sha1 = b"sha1" in amz


class Response:
    def __init__(self, raw):
        self.raw = raw
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise UpstreamError(f"bad status line {lines[0][:80]!r}")
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else b""
        try:
            self.fields = parse_fields(lines[1:])
        except ProtocolError as e:
            raise UpstreamError(str(e)) from None
        conn = tokens(field_values(self.fields, b"connection"))
        if self.version == b"HTTP/1.0":
            self.keep_alive = b"keep-alive" in conn
        else:
            self.keep_alive = b"close" not in conn

    def body_mode(self, method):
        """('none', 0), ('length', n), ('chunked', None) or ('close', None)."""
        if method == b"HEAD" or 100 <= self.status < 200 or self.status in (204, 304):
            return "none", 0
        try:
            mode, n = body_length(self.fields, "response")
        except ProtocolError as e:
            raise UpstreamError(str(e)) from None
        return (mode or "close"), n

    def rebuilt(self, set_headers, remove, status):
        """The head with headers replaced/added/removed, case-insensitively,
        keeping the order of the others; a None value removes."""
        todo = {k.lower(): (k, v) for k, v in (set_headers or {}).items()}
        drop = {r.lower() for r in (remove or [])}
        out = []
        for n, v in self.fields:
            key = n.decode("latin-1").lower()
            if key in drop:
                continue
            if key in todo:
                name, val = todo.pop(key)
                if val is not None:
                    out.append((n, str(val).encode("latin-1")))
                drop.add(key)       # later duplicates go
                continue
            out.append((n, v))
        for name, val in todo.values():
            if val is not None:
                out.append((name.encode("latin-1"), str(val).encode("latin-1")))
        code = int(status) if status is not None else self.status
        reason = reason_phrase(code).encode() if status is not None else self.reason
        head = b"%s %d %s\r\n" % (self.version, code, reason)
        head += b"".join(n + b": " + v + b"\r\n" for n, v in out) + b"\r\n"
        return head, code, out


def reason_phrase(code):
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


S3_ERRORS = {
    400: ("BadRequest", "Bad Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    408: ("RequestTimeout", "Your socket connection to the server was not read from "
                            "or written to within the timeout period."),
    409: ("OperationAborted", "A conflicting conditional operation is currently in "
                              "progress against this resource."),
    429: ("TooManyRequests", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    501: ("NotImplemented", "A header you provided implies functionality that is "
                            "not implemented."),
    502: ("BadGateway", "The upstream server did not answer."),
    503: ("SlowDown", "Please reduce your request rate."),
    504: ("GatewayTimeout", "The upstream server timed out."),
}


# --------------------------------------------------------------------------
# Fault rules.

ACTIONS = {"status", "reset", "close", "reset_mid_body", "flip_byte", "stall",
           "trickle", "body_replace", "header_replace"}
ALIASES = {"delay": "stall", "error": "status"}


class Rule:
    def __init__(self, d, index):
        if not isinstance(d, dict):
            raise ValueError(f"rule {index}: not an object")
        self.index = index
        self.params = d
        self.name = d.get("name")
        action = d.get("action")
        self.status = None
        if isinstance(action, int) or (isinstance(action, str) and action.isdigit()):
            self.action, self.status = "status", int(action)
        else:
            self.action = ALIASES.get(str(action).lower(), str(action).lower())
            if self.action not in ACTIONS:
                raise ValueError(f"rule {index}: unknown action {action!r}")
            if self.action == "status":
                self.status = int(d.get("status", 500))
            elif self.action == "body_replace":
                self.status = int(d.get("status", 200))
        m = d.get("match") or {}
        meth = m.get("method")
        self.methods = None if meth is None else (
            {meth.upper()} if isinstance(meth, str) else {x.upper() for x in meth})
        self.path_re = re.compile(m["path_re"]) if m.get("path_re") is not None else None
        self.query_re = re.compile(m["query_re"]) if m.get("query_re") is not None else None
        self.target_re = re.compile(m["target_re"]) if m.get("target_re") is not None else None
        self.header_res = [(k.lower().encode("latin-1"), re.compile(v))
                           for k, v in (m.get("headers") or {}).items()]
        self.probability = float(d.get("probability", 1))
        self.count = None if d.get("count") is None else int(d["count"])
        self.after = int(d.get("after", 0))
        self.matched = 0
        self.applied = 0

    def matches(self, req):
        if self.methods is not None and req.method.decode("latin-1") not in self.methods:
            return False
        if self.path_re and not self.path_re.search(req.path.decode("latin-1")):
            return False
        if self.query_re and not self.query_re.search(req.query.decode("latin-1")):
            return False
        if self.target_re and not self.target_re.search(req.target.decode("latin-1")):
            return False
        for name, rx in self.header_res:
            if not any(rx.search(v.decode("latin-1")) for v in field_values(req.fields, name)):
                return False
        return True


class Fault:
    def __init__(self, rule):
        self.action = rule.action
        self.status = rule.status
        self.params = rule.params
        self.info = {"rule": rule.index, "name": rule.name, "action": rule.action}
        if rule.status is not None:
            self.info["status"] = rule.status

    def get(self, key, default=None):
        return self.params.get(key, default)


def parse_rules(doc, first_index=0):
    if isinstance(doc, dict):
        doc = doc.get("rules", [])
    if not isinstance(doc, list):
        raise ValueError("rules: expected a list or {\"rules\": [...]}")
    return [Rule(d, first_index + i) for i, d in enumerate(doc)]


class Rules:
    """--faults rules followed by the control file's; the control file is
    re-read whenever its (mtime, size, inode) changes, which resets its
    rules' counters."""

    def __init__(self, faults_json, control, seed):
        self.fixed = parse_rules(json.loads(faults_json)) if faults_json else []
        self.control = control
        self.sig = None
        self.dynamic = []
        self.rng = random.Random(seed)
        self.reload()

    def reload(self):
        if not self.control:
            return
        try:
            st = os.stat(self.control)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            sig = None
        if sig == self.sig:
            return
        if sig is None:
            self.dynamic, self.sig = [], None
            return
        try:
            with open(self.control, "rb") as f:
                text = f.read()
            rules = parse_rules(json.loads(text) if text.strip() else [], len(self.fixed))
        except (OSError, ValueError, re.error, TypeError) as e:
            warn(f"control file '{self.control}': {e} (keeping the previous rules)")
            return      # sig not recorded: tried again on the next request
        self.dynamic, self.sig = rules, sig

    def pick(self, req):
        self.reload()
        for rule in itertools.chain(self.fixed, self.dynamic):
            if not rule.matches(req):
                continue
            rule.matched += 1
            if rule.matched <= rule.after:
                continue
            if rule.count is not None and rule.applied >= rule.count:
                continue
            if rule.probability < 1 and self.rng.random() >= rule.probability:
                continue
            rule.applied += 1
            return Fault(rule)
        return None


# --------------------------------------------------------------------------
# The log: one JSON line per request, written before the last byte of the
# answer goes out, so a client that has its answer can read its line.

class Entry:
    def __init__(self, session, req):
        self.session = session
        self.req = req
        self.t0 = time.time()
        proxy = session.proxy
        want_c = proxy.crc32c_mode == "always" or (
            proxy.crc32c_mode == "auto" and (CRC32C_FAST or req.wants_crc32c))
        self.digest = Digest(crc32c=want_c, sha1=req.wants_sha1)
        self.aws = AwsChunked(Digest(crc32c=want_c, sha1=req.wants_sha1)) if req.aws_chunked else None
        self.body_started = False
        self.body_complete = not req.has_body
        self.hashing = None
        self.done = False
        ms = int(self.t0 * 1000) % 1000
        self.d = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.t0)) + ".%03dZ" % ms,
            "ts": round(self.t0, 6),
            "seq": next(proxy.seq),
            "conn": session.cid,
            "req": session.nreq,
            "client": session.peer,
            "method": req.method.decode("latin-1"),
            "target": req.target.decode("latin-1"),
            "version": req.version.decode("latin-1"),
            "headers": fields_json(req.fields),
            "fault": None,
            "upstream_status": None,
            "status": None,
            "interim": [],
            "response_headers": None,
            "error": None,
        }

    async def settle(self):
        """Wait for the hashing of the last piece (see send_body)."""
        h = self.hashing
        if h is not None:
            await asyncio.shield(h)
            if self.hashing is h:
                self.hashing = None

    def feed(self, data, part=None):
        self.body_started = True
        self.digest.update(data, part)
        if self.aws is not None and part != "md5":
            self.aws.feed(data)

    def response(self, status, fields):
        self.d["status"] = status
        self.d["response_headers"] = fields_json(fields)

    def error(self, msg):
        if self.d["error"] is None:
            self.d["error"] = msg

    def finish(self):
        if self.done:
            return
        self.done = True
        body = self.digest.as_dict()
        body.update(chunked=self.req.chunked, declared_length=self.req.length,
                    complete=self.body_complete)
        self.d["body"] = body
        if self.aws is not None:
            self.d["payload"] = self.aws.as_dict()
        self.d["duration"] = round(time.time() - self.t0, 6)
        self.session.proxy.write_log(self.d)


class Throttle:
    def __init__(self, rate):
        self.rate = max(1, int(rate))
        self.start = time.monotonic()
        self.sent = 0

    def pieces(self, data):
        step = max(1, min(self.rate // 20, READ_SIZE))
        for i in range(0, len(data), step):
            yield data[i:i + step]

    async def pace(self, n):
        self.sent += n
        delay = self.start + self.sent / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


# --------------------------------------------------------------------------
# One client connection, with its own upstream connection (opened lazily,
# reopened when the upstream closes it), requests handled in turn.

class Session:
    def __init__(self, proxy, reader, writer, cid):
        self.proxy = proxy
        self.r = reader
        self.w = writer
        self.cid = cid
        self.nreq = 0
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.up = None
        self.closed = False
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH)

    # -- connections

    async def connect_upstream(self):
        """Returns True when an open upstream connection is reused."""
        if self.up is not None:
            ur, uw = self.up
            if not ur.at_eof() and not uw.is_closing():
                return True
            self.drop_upstream()
        host, port = self.proxy.upstream
        ur, uw = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
        uw.transport.set_write_buffer_limits(high=WRITE_HIGH)
        self.up = (ur, uw)
        return False

    def drop_upstream(self):
        if self.up is not None:
            self.up[1].close()
            self.up = None

    def close_client(self):
        if not self.closed:
            self.closed = True
            self.w.close()

    def reset_client(self):
        """Close with RST (SO_LINGER 0), as a crashed server or a middlebox would."""
        if self.closed:
            return
        self.closed = True
        sock = self.w.get_extra_info("socket")
        try:
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.w.transport.abort()

    async def lingering_close(self):
        """FIN, then read and drop what the client still sends, so that an
        unread request body does not turn the close into an RST that could
        destroy the answer before the client reads it."""
        if self.closed:
            return
        self.closed = True
        try:
            self.w.write_eof()
            end = time.monotonic() + LINGER_MAX
            while time.monotonic() < end:
                data = await asyncio.wait_for(self.r.read(READ_SIZE), LINGER_IDLE)
                if not data:
                    break
        except (asyncio.TimeoutError, ConnectionError, OSError, RuntimeError):
            pass
        self.w.close()

    async def cwrite(self, data, throttle=None):
        try:
            if throttle is None:
                self.w.write(data)
                await self.w.drain()
                return
            for piece in throttle.pieces(data):
                self.w.write(piece)
                await self.w.drain()
                await throttle.pace(len(piece))
        except (ConnectionError, OSError, RuntimeError) as e:
            raise ClientGone(f"writing to client: {e}") from None

    # -- the request loop

    async def run(self):
        try:
            while not self.closed:
                raw = await self.read_head()
                if raw is None:
                    break
                if not await self.exchange(raw):
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            warn(f"conn {self.cid}: internal error\n{traceback.format_exc()}")
        finally:
            self.drop_upstream()
            if not self.closed:
                self.closed = True
                if self.proxy.stopping:
                    self.w.transport.abort()
                else:
                    self.w.close()

    async def read_head(self):
        while True:
            try:
                raw = await self.r.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return None
            except asyncio.LimitOverrunError:
                await self.cwrite(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                  b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return None
            except (ConnectionError, OSError):
                return None
            raw = raw.lstrip(b"\r\n")
            if raw:
                return raw

    async def exchange(self, raw):
        self.nreq += 1
        try:
            req = Request(raw)
        except ProtocolError as e:
            warn(f"conn {self.cid}: {e}")
            try:
                await self.cwrite(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                  b"Connection: close\r\n\r\n")
            except ClientGone:
                pass
            return False
        entry = Entry(self, req)
        fault = self.proxy.rules.pick(req)
        if fault is not None:
            entry.d["fault"] = fault.info
        try:
            return await self.dispatch(req, entry, fault)
        except ClientGone as e:
            entry.error(str(e))
            self.drop_upstream()
            return False
        except ProtocolError as e:
            entry.error(f"client: {e}")
            self.drop_upstream()
            return False
        except UpstreamError as e:
            entry.error(f"upstream: {e}")
            self.drop_upstream()
            self.reset_client()
            return False
        except asyncio.CancelledError:
            entry.error("proxy stopped")
            raise
        finally:
            entry.finish()

    async def dispatch(self, req, entry, fault):
        a = fault.action if fault else None
        if a == "stall" and fault.get("at", "request") == "request":
            await asyncio.sleep(float(fault.get("seconds", 10)))
            then = fault.get("then", "continue")
            if then in ("close", "reset"):
                return await self.end_by_fault(entry, then)
        if fault is not None and not fault.get("forward_first"):
            if a in ("reset", "close"):
                return await self.end_by_fault(entry, a)
            if a in ("status", "body_replace"):
                return await self.synthetic(req, entry, fault, body_read=False)
        return await self.forward(req, entry, fault)

    async def end_by_fault(self, entry, how):
        await entry.settle()
        entry.finish()
        self.drop_upstream()
        if how == "reset":
            self.reset_client()
        else:
            await self.lingering_close()
        return False

    # -- answers made up by the proxy

    async def synthetic(self, req, entry, fault, body_read, close=False):
        status = fault.status
        if fault.get("body_b64") is not None:
            body = base64.b64decode(fault.get("body_b64"))
        elif fault.get("body") is not None:
            body = str(fault.get("body")).encode("utf-8")
        elif fault.action == "body_replace":
            body = b""
        else:
            code, msg = S3_ERRORS.get(status, (f"Status{status}", reason_phrase(status)))
            code = fault.get("code", code)
            msg = fault.get("message", msg)
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                    '<Message>%s</Message><Resource>%s</Resource><RequestId>%s</RequestId>'
                    '</Error>' % (xml_escape(code), xml_escape(msg),
                                  xml_escape(req.path.decode("latin-1")),
                                  f"faultproxy-{entry.d['seq']}")).encode("utf-8")
        early = fault.get("early")
        if early is None:           # as S3 does: refuse before 100 Continue
            early = req.expect_100 and status >= 300
        if req.has_body and not body_read:
            if early:
                close = True        # the body is not read: the connection cannot go on
            else:
                if req.expect_100:
                    await self.cwrite(b"HTTP/1.1 100 Continue\r\n\r\n")
                    entry.d["interim"].append(100)
                await self.send_body(req, entry, None, None)
        close = close or not req.keep_alive or bool(fault.get("close"))
        fields = [(b"Date", email.utils.formatdate(usegmt=True).encode()),
                  (b"Server", b"faultproxy"),
                  (b"x-amz-request-id", f"faultproxy-{entry.d['seq']}".encode()),
                  (b"Content-Type", fault.get("content_type", "application/xml").encode("latin-1")),
                  (b"Content-Length", b"%d" % (0 if req.method == b"HEAD" else len(body)))]
        for k, v in (fault.get("headers") or {}).items():
            fields.append((k.encode("latin-1"), str(v).encode("latin-1")))
        if close:
            fields.append((b"Connection", b"close"))
        head = b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status).encode())
        head += b"".join(n + b": " + v + b"\r\n" for n, v in fields) + b"\r\n"
        entry.response(status, fields)
        entry.finish()
        await self.cwrite(head + (b"" if req.method == b"HEAD" else body))
        if close:
            await self.lingering_close()
            return False
        return True

    # -- the request body

    async def send_body(self, req, entry, fault, uw):
        """Read the request body from the client, hash it, apply body faults,
        and write it to uw (None: drop it)."""
        a = fault.action if fault else None
        flip = cut = throttle = None
        if a == "flip_byte":
            flip = fault.get("offset")
            if flip is not None and flip < 0 and req.length is not None:
                flip += req.length
            if flip is None and req.length is not None:
                flip = req.length // 2
        elif a == "reset_mid_body":
            cut = fault.get("bytes")
            if cut is None and req.length is not None:
                cut = req.length // 2
        elif a == "trickle" and fault.get("direction") == "request":
            throttle = Throttle(fault.get("bytes_per_second", fault.get("rate", 1024)))
        pos = 0
        flipped = False
        loop = asyncio.get_running_loop()

        async def frame(data):
            if uw is not None:
                await self.uwrite(uw, data, throttle)

        async def piece(data):
            nonlocal pos, flip, cut, flipped
            # Hash in two threads (MD5 | the rest; hashlib, zlib and ctypes
            # release the GIL) while the loop forwards; one piece in flight
            # at a time keeps the order.
            await entry.settle()
            if len(data) >= HASH_THREAD_MIN:
                pool = self.proxy.hash_pool
                entry.hashing = asyncio.gather(
                    loop.run_in_executor(pool, entry.feed, data, "md5"),
                    loop.run_in_executor(pool, entry.feed, data, "rest"))
            else:
                entry.feed(data)
            start, pos = pos, pos + len(data)
            if a == "flip_byte" and not flipped:
                off = flip if flip is not None else start + len(data) // 2
                if start <= off < pos:
                    data = bytearray(data)
                    data[off - start] ^= int(fault.get("xor", 1)) & 0xFF
                    flipped = True
                    fault.info["offset"] = off
            if a == "reset_mid_body":
                if cut is None:
                    cut = len(data) // 2    # chunked body: half of the first piece
                if pos >= cut:
                    if uw is not None and cut > start:
                        await self.uwrite(uw, data[:cut - start], None)
                    fault.info["bytes"] = cut
                    entry.error("reset_mid_body")
                    await entry.settle()
                    entry.finish()
                    self.reset_client()
                    raise FaultDone("reset_mid_body")
            if uw is not None:
                await self.uwrite(uw, data, throttle)

        try:
            await self.read_body(req, frame, piece)
        except asyncio.IncompleteReadError:
            raise ClientGone("client closed mid-body") from None
        except asyncio.LimitOverrunError:
            raise ProtocolError("chunk line too long") from None
        except (ConnectionError, OSError) as e:
            raise ClientGone(f"reading from client: {e}") from None
        finally:
            await entry.settle()
        entry.body_complete = True
        if a == "flip_byte" and not flipped:
            fault.info["note"] = "offset beyond the body: nothing flipped"
        if a == "reset_mid_body":      # body shorter than the cut
            entry.finish()
            self.reset_client()
            raise FaultDone("reset_mid_body")

    async def read_body(self, req, frame, piece):
        """Read a request body, passing framing bytes to frame() and data
        to piece()."""
        r = self.r
        if req.chunked:
            while True:
                line = await r.readuntil(b"\r\n")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line {line[:40]!r}") from None
                await frame(line)
                if size == 0:
                    while True:
                        t = await r.readuntil(b"\r\n")
                        await frame(t)
                        if t == b"\r\n":
                            break
                    break
                rem = size
                while rem:
                    data = await r.read(min(rem, READ_SIZE))
                    if not data:
                        raise ClientGone("client closed mid-body")
                    rem -= len(data)
                    await piece(data)
                crlf = await r.readexactly(2)
                if crlf != b"\r\n":
                    raise ProtocolError("missing CRLF after chunk")
                await frame(crlf)
        else:
            rem = req.length
            while rem:
                data = await r.read(min(rem, READ_SIZE))
                if not data:
                    raise ClientGone("client closed mid-body")
                rem -= len(data)
                await piece(data)

    async def uwrite(self, uw, data, throttle):
        try:
            if throttle is None:
                uw.write(data)
                await uw.drain()
                return
            for p in throttle.pieces(data):
                uw.write(p)
                await uw.drain()
                await throttle.pace(len(p))
        except (ConnectionError, OSError, RuntimeError) as e:
            raise UpstreamWriteError(str(e)) from None

    # -- forwarding

    async def read_final_head(self, req, entry):
        ur = self.up[0]
        while True:
            try:
                raw = await ur.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                clean = not e.partial and not entry.d["interim"]
                raise UpstreamEOF("closed before answering", clean) from None
            except asyncio.LimitOverrunError:
                raise UpstreamError("response head too long") from None
            except (ConnectionError, OSError) as e:
                raise UpstreamEOF(str(e), not entry.d["interim"]) from None
            resp = Response(raw)
            if 100 <= resp.status < 200 and resp.status != 101:
                entry.d["interim"].append(resp.status)
                if req.version != b"HTTP/1.0":
                    await self.cwrite(raw)
                continue
            return resp

    async def forward(self, req, entry, fault, retry=True):
        try:
            reused = await self.connect_upstream()
        except OSError as e:
            entry.error(f"upstream connect: {e}")
            gw = Fault(Rule({"action": 502}, -1))
            return await self.synthetic(req, entry, gw, body_read=False, close=True)
        uw = self.up[1]
        try:
            uw.write(req.raw)
            if not req.has_body:
                await uw.drain()
        except (ConnectionError, OSError) as e:
            if reused and retry and not req.has_body:
                self.drop_upstream()
                return await self.forward(req, entry, fault, retry=False)
            raise UpstreamError(f"writing request: {e}") from None
        body_task = None
        if req.has_body:
            body_task = asyncio.create_task(self.send_body(req, entry, fault, uw))
        elif fault is not None and fault.action == "flip_byte":
            fault.info["note"] = "no body: nothing flipped"
        elif fault is not None and fault.action == "reset_mid_body":
            fault.info["bytes"] = 0         # no body: reset once the head went up
            return await self.end_by_fault(entry, "reset")
        head_task = asyncio.create_task(self.read_final_head(req, entry))
        try:
            resp = await self.await_head(body_task, head_task)
        except UpstreamEOF as e:
            if reused and retry and e.clean and not req.has_body:
                self.drop_upstream()
                return await self.forward(req, entry, fault, retry=False)
            raise
        except FaultDone:
            self.drop_upstream()
            return False
        entry.d["upstream_status"] = resp.status
        if fault is not None and fault.get("forward_first") and fault.action in (
                "reset", "close", "status", "body_replace"):
            return await self.after_capture(req, resp, entry, fault, body_task)
        return await self.relay(req, resp, entry, fault, body_task)

    async def await_head(self, body_task, head_task):
        if body_task is None:
            return await head_task
        try:
            done, _ = await asyncio.wait({body_task, head_task},
                                         return_when=asyncio.FIRST_COMPLETED)
            if head_task in done:
                if head_task.exception() is not None:
                    await cancel(body_task)
                return head_task.result()
            exc = body_task.exception()
            if exc is None:
                return await head_task
            if isinstance(exc, UpstreamWriteError):
                # the upstream stopped reading: it may have answered early
                try:
                    return await asyncio.wait_for(head_task, 5)
                except asyncio.TimeoutError:
                    raise UpstreamError(f"writing request body: {exc}") from None
            await cancel(head_task)
            raise exc
        except BaseException:
            await cancel(head_task)
            await cancel(body_task)
            raise

    async def finish_body(self, req, entry, body_task):
        """After the answer's head: has the whole request body gone through?"""
        if body_task is None:
            return True
        if not body_task.done() and req.expect_100 and not entry.body_started \
                and 100 not in entry.d["interim"]:
            await cancel(body_task)         # rejected before 100 Continue
            return False
        try:
            await asyncio.wait_for(body_task, BODY_WAIT)
            return True
        except FaultDone:
            return False
        except (ClientGone, ProtocolError, UpstreamWriteError, asyncio.TimeoutError) as e:
            entry.error(f"request body: {e or type(e).__name__}")
            return False

    async def drop_response_body(self, req, resp):
        """Read and discard an answer's body; False when the upstream
        connection cannot be reused afterwards."""
        ur = self.up[0]
        mode, n = resp.body_mode(req.method)
        try:
            if mode == "length":
                await ur.readexactly(n)
            elif mode == "chunked":
                while True:
                    size = int((await ur.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while await ur.readuntil(b"\r\n") != b"\r\n":
                            pass
                        break
                    await ur.readexactly(size + 2)
            elif mode == "close":
                while await ur.read(READ_SIZE):
                    pass
                return False
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                ConnectionError, OSError) as e:
            raise UpstreamError(f"reading answer body: {e}") from None
        return resp.keep_alive

    async def after_capture(self, req, resp, entry, fault, body_task):
        """forward_first: the upstream did the work; now hide its answer."""
        up_ok = await self.drop_response_body(req, resp)
        body_ok = await self.finish_body(req, entry, body_task)
        if not (up_ok and body_ok):
            self.drop_upstream()
        if self.closed:
            return False
        if fault.action in ("reset", "close"):
            return await self.end_by_fault(entry, fault.action)
        return await self.synthetic(req, entry, fault, body_read=True, close=not body_ok)

    async def relay(self, req, resp, entry, fault, body_task):
        a = fault.action if fault else None
        head, status, fields = resp.raw, resp.status, resp.fields
        if a == "header_replace":
            head, status, fields = resp.rebuilt(fault.get("headers"), fault.get("remove"),
                                                fault.get("status"))
        entry.response(status, fields)
        mode, n = resp.body_mode(req.method)
        throttle = None
        if a == "trickle" and fault.get("direction", "response") == "response":
            throttle = Throttle(fault.get("bytes_per_second", fault.get("rate", 1024)))
        stall_at = fault.get("at", "request") if a == "stall" else None
        try:
            if stall_at == "response":
                await asyncio.sleep(float(fault.get("seconds", 10)))
                if fault.get("then", "continue") != "continue":
                    raise StallEnd(fault.get("then"))
            stall_after = None
            if stall_at == "response_body":
                stall_after = fault.get("after_bytes", (n or 0) // 2)
            sent = 0

            async def out(data, last=False, body=False):
                nonlocal sent, stall_after
                if body and stall_after is not None and sent + len(data) > stall_after:
                    k = max(0, stall_after - sent)
                    if k:
                        await self.cwrite(data[:k], throttle)
                        sent += k
                        data = data[k:]
                    stall_after = None
                    await asyncio.sleep(float(fault.get("seconds", 10)))
                    if fault.get("then", "continue") != "continue":
                        raise StallEnd(fault.get("then"))
                if body:
                    sent += len(data)
                if last:
                    await entry.settle()
                    entry.finish()
                await self.cwrite(data, throttle)

            await self.relay_body(req, head, mode, n, out)
        except StallEnd as e:
            return await self.end_by_fault(entry, e.then)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                ConnectionError, OSError) as e:
            raise UpstreamError(f"reading answer body: {e or type(e).__name__}") from None
        body_ok = await self.finish_body(req, entry, body_task)
        keep = body_ok and mode != "close" and resp.keep_alive
        if not keep:
            self.drop_upstream()
        if self.closed:
            return False
        if not body_ok:
            await self.lingering_close()
            return False
        if mode == "close":
            self.close_client()
            return False
        return keep and req.keep_alive

    async def relay_body(self, req, head, mode, n, out):
        ur = self.up[0]
        if mode == "none" or (mode == "length" and n == 0):
            await out(head, last=True)
        elif mode == "length":
            await out(head)
            rem = n
            while rem:
                data = await ur.read(min(rem, READ_SIZE))
                if not data:
                    raise asyncio.IncompleteReadError(b"", rem)
                rem -= len(data)
                await out(data, last=rem == 0, body=True)
        elif mode == "chunked":
            await out(head)
            while True:
                line = await ur.readuntil(b"\r\n")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    tail = bytearray(line)
                    while True:
                        t = await ur.readuntil(b"\r\n")
                        tail += t
                        if t == b"\r\n":
                            break
                    await out(bytes(tail), last=True)
                    return
                await out(line)
                rem = size
                while rem:
                    data = await ur.read(min(rem, READ_SIZE))
                    if not data:
                        raise asyncio.IncompleteReadError(b"", rem)
                    rem -= len(data)
                    await out(data, body=True)
                crlf = await ur.readexactly(2)
                if crlf != b"\r\n":
                    raise ValueError("missing CRLF after chunk")
                await out(crlf)
        else:
            await out(head)
            while True:
                data = await ur.read(READ_SIZE)
                if not data:
                    break
                await out(data, body=True)
            self.drop_upstream()
            await out(b"", last=True)


async def cancel(task):
    if task is None:
        return
    if not task.done():
        task.cancel()
    try:
        await task
    except BaseException:
        pass


# --------------------------------------------------------------------------

class Proxy:
    def __init__(self, args):
        host, _, port = args.upstream.rpartition(":")
        self.upstream = (host.strip("[]") or "127.0.0.1", int(port))
        self.rules = Rules(args.faults, args.control, args.seed)
        self.crc32c_mode = args.crc32c
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.seq = itertools.count(1)
        self.cids = itertools.count(1)
        self.tasks = set()
        self.stopping = False
        self.hash_pool = concurrent.futures.ThreadPoolExecutor(4, "hash")

    def write_log(self, d):
        if self.log is None:
            return
        try:
            self.log.write(json.dumps(d, separators=(",", ":")) + "\n")
            self.log.flush()
        except (OSError, ValueError) as e:
            warn(f"log: {e}")

    async def handle(self, reader, writer):
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            await Session(self, reader, writer, next(self.cids)).run()
        except asyncio.CancelledError:
            pass
        finally:
            self.tasks.discard(task)

    async def main(self, listen):
        host, _, port = listen.rpartition(":")
        server = await asyncio.start_server(self.handle, host.strip("[]") or "127.0.0.1",
                                            int(port), limit=LINE_LIMIT, backlog=512,
                                            reuse_address=True)
        addr = server.sockets[0].getsockname()
        print(f"listening on {addr[0]}:{addr[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        self.stopping = True
        server.close()
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        await server.wait_closed()
        self.hash_pool.shutdown(wait=True)
        if self.log is not None:
            self.log.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fault-injecting HTTP/1.1 reverse proxy (tests only).")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: pick one)")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the real server")
    ap.add_argument("--control", help="JSON rules file, re-read when it changes")
    ap.add_argument("--faults", help="JSON rules given inline (applied before the control file's)")
    ap.add_argument("--log", help="append one JSON line per request to FILE")
    ap.add_argument("--seed", type=int, help="seed for 'probability'")
    ap.add_argument("--crc32c", choices=("auto", "always", "never"), default="auto",
                    help="auto: when fast (libceph-common) or announced by the request")
    args = ap.parse_args(argv)
    global CRC32C, CRC32C_FAST
    if args.crc32c != "never":
        CRC32C, CRC32C_FAST = load_crc32c()
    try:
        proxy = Proxy(args)
    except (ValueError, OSError, re.error) as e:
        print(f"faultproxy: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(proxy.main(args.listen))
    except OSError as e:
        print(f"faultproxy: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
