#!/usr/bin/env python3
"""Stand-ins for the AWS endpoints that exist only inside AWS.

SPEC.md allows stand-ins for exactly these: EC2 instance metadata (IMDSv2),
the ECS container credentials endpoint and STS AssumeRoleWithWebIdentity.
One server on 127.0.0.1 answers all three; the credentials it hands out are
whatever it is given (the integration tests give it real keys of the test
radosgw, so uploads made with them are verified for real).

  IMDSv2  PUT  /latest/api/token  (X-aws-ec2-metadata-token-ttl-seconds
               required, 1-21600; X-Forwarded-For refused as AWS does)
          GET  /latest/meta-data/iam/security-credentials/[ROLE]
               (X-aws-ec2-metadata-token required: 401 without a valid one)
  ECS     GET  /v2/credentials/...  or  /ecs/...  (Authorization checked
               when --ecs-auth is given)
  STS     POST / (form body) Action=AssumeRoleWithWebIdentity: the
               WebIdentityToken must equal --web-identity-token (or the
               contents of --web-identity-token-file, read at each call);
               RoleArn must equal --role-arn when that is given
  control GET /_stats (request counts per endpoint, JSON), POST /_reset
          (zero them), POST /_config (JSON object: any of access_key,
          secret_key, session_token, expires_in, role_name, role_arn,
          ecs_auth, web_identity_token, web_identity_token_file;
          "revoke_imds_tokens": true (IMDS answers 401 to the tokens
          handed out so far); "fail": {"<endpoint>": status}, status 0 =
          close the connection without an answer; {} to stop failing)

Endpoint names in counts and "fail": imds_token, imds_role, imds_creds,
ecs, sts; refusals are counted as imds_unauthorized, ecs_unauthorized,
sts_denied.

Keys default to $STANDIN_ACCESS_KEY, $STANDIN_SECRET_KEY and
$STANDIN_SESSION_TOKEN (empty: no token, which static radosgw keys need).
Expiration is now + --expires-in seconds at each answer (negative: already
expired).

Usage: aws_standins.py --port 0 [...]   prints "listening on 127.0.0.1:N"
Python standard library only. Stops on SIGTERM or SIGINT.
"""

import argparse
import datetime
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

IMDS_CREDS = "/latest/meta-data/iam/security-credentials/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


class State:
    """Settings and counters shared by the handler threads."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.access_key = args.access_key
        self.secret_key = args.secret_key
        self.session_token = args.session_token
        self.expires_in = args.expires_in
        self.role_name = args.role_name
        self.role_arn = args.role_arn
        self.ecs_auth = args.ecs_auth
        self.web_identity_token = args.web_identity_token
        self.web_identity_token_file = args.web_identity_token_file
        self.fail = {}
        self.counts = {}
        self.last = {}
        self.imds_tokens = {}

    def count(self, name):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def configure(self, cfg):
        keys = ("access_key", "secret_key", "session_token", "expires_in",
                "role_name", "role_arn", "ecs_auth", "web_identity_token",
                "web_identity_token_file")
        with self.lock:
            for k in keys:
                if k in cfg:
                    setattr(self, k, cfg[k])
            if "fail" in cfg:
                self.fail = dict(cfg["fail"] or {})
            if cfg.get("revoke_imds_tokens"):
                self.imds_tokens.clear()

    def credentials(self):
        with self.lock:
            exp = (datetime.datetime.now(datetime.timezone.utc) +
                   datetime.timedelta(seconds=int(self.expires_in)))
            return {
                "AccessKeyId": self.access_key,
                "SecretAccessKey": self.secret_key,
                "Token": self.session_token or "",
                "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }

    def expected_web_identity_token(self):
        with self.lock:
            path, token = self.web_identity_token_file, self.web_identity_token
        if path:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        return token


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aws-standins/1"
    # Headers and body go out in two writes: without this, a kept-alive
    # connection waits 40 ms for a delayed ACK on every answer.
    disable_nagle_algorithm = True

    # -- plumbing --------------------------------------------------------
    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("aws_standins: " + (fmt % args) + "\n")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, data=b"", ctype="text/plain"):
        if isinstance(data, str):
            data = data.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj, indent=2), "application/json")

    def injected(self, endpoint):
        """Count the call; answer a configured failure. True if answered."""
        st = self.server.state
        st.count(endpoint)
        with st.lock:
            status = st.fail.get(endpoint)
        if status is None:
            return False
        if int(status) == 0:
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        self.send(int(status), "injected failure\n")
        return True

    # -- dispatch --------------------------------------------------------
    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_stats":
            with self.server.state.lock:
                out = dict(self.server.state.counts)
                out["last"] = dict(self.server.state.last)
            return self.send_json(200, out)
        if path.startswith("/latest/"):
            return self.imds_get(path)
        if path.startswith("/v2/credentials") or path.startswith("/ecs/"):
            return self.ecs()
        self.send(404, "not found\n")

    def do_PUT(self):
        self.body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/latest/api/token":
            return self.imds_token()
        self.send(404, "not found\n")

    def do_POST(self):
        data = self.body()
        path = urllib.parse.urlsplit(self.path).path
        st = self.server.state
        if path == "/_reset":
            with st.lock:
                st.counts.clear()
                st.last.clear()
            return self.send_json(200, {})
        if path == "/_config":
            try:
                st.configure(json.loads(data or b"{}"))
            except (ValueError, TypeError) as e:
                return self.send(400, "bad config: %s\n" % e)
            return self.send_json(200, {})
        return self.sts(data)

    # -- IMDSv2 ----------------------------------------------------------
    def imds_token(self):
        if self.injected("imds_token"):
            return
        if self.headers.get("X-Forwarded-For") is not None:
            return self.send(403, "forwarded requests are refused\n")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.send(400, "missing or bad token TTL\n")
        token = "standin-" + secrets.token_urlsafe(24)
        st = self.server.state
        with st.lock:
            st.imds_tokens[token] = time.time() + int(ttl)
        self.send(200, token)

    def imds_authorized(self):
        token = self.headers.get("X-aws-ec2-metadata-token")
        st = self.server.state
        with st.lock:
            exp = st.imds_tokens.get(token or "")
        return exp is not None and exp > time.time()

    def imds_get(self, path):
        st = self.server.state
        if not self.imds_authorized():
            st.count("imds_unauthorized")
            return self.send(401, "")
        if path == IMDS_CREDS:
            if self.injected("imds_role"):
                return
            with st.lock:
                role = st.role_name
            return self.send(200, role)
        if path.startswith(IMDS_CREDS):
            if self.injected("imds_creds"):
                return
            with st.lock:
                role = st.role_name
            if path[len(IMDS_CREDS):] != role:
                return self.send(404, "no such role\n")
            obj = {"Code": "Success", "LastUpdated":
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "Type": "AWS-HMAC"}
            obj.update(st.credentials())
            return self.send_json(200, obj)
        self.send(404, "not found\n")

    # -- ECS -------------------------------------------------------------
    def ecs(self):
        st = self.server.state
        if self.injected("ecs"):
            return
        with st.lock:
            want = st.ecs_auth
            st.last["ecs_path"] = self.path
        if want and self.headers.get("Authorization") != want:
            st.count("ecs_unauthorized")
            return self.send_json(401, {"code": "AccessDenied", "message":
                                        "bad or missing Authorization"})
        obj = st.credentials()
        obj["RoleArn"] = "arn:aws:iam::123456789012:role/standin"
        self.send_json(200, obj)

    # -- STS AssumeRoleWithWebIdentity ------------------------------------
    def sts_error(self, status, code, message):
        self.server.state.count("sts_denied")
        xml = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>Sender</Type>\n'
               '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
               '  <RequestId>%s</RequestId>\n</ErrorResponse>\n' %
               (STS_NS, escape(code), escape(message), secrets.token_hex(8)))
        self.send(status, xml, "text/xml")

    def sts(self, data):
        st = self.server.state
        if self.injected("sts"):
            return
        form = urllib.parse.parse_qs(data.decode("utf-8", "replace"),
                                     keep_blank_values=True)
        one = {k: v[0] for k, v in form.items()}
        with st.lock:
            st.last["sts_session_name"] = one.get("RoleSessionName", "")
            st.last["sts_role_arn"] = one.get("RoleArn", "")
            want_arn = st.role_arn
        if one.get("Action") != "AssumeRoleWithWebIdentity":
            return self.sts_error(400, "InvalidAction", "unknown action")
        for k in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not one.get(k):
                return self.sts_error(400, "ValidationError",
                                      "%s is missing" % k)
        if want_arn and one["RoleArn"] != want_arn:
            return self.sts_error(403, "AccessDenied",
                                  "not authorized to assume this role")
        try:
            expected = st.expected_web_identity_token()
        except OSError as e:
            return self.sts_error(500, "InternalFailure",
                                  "cannot read the expected token: %s" % e)
        if not expected or one["WebIdentityToken"] != expected:
            return self.sts_error(400, "InvalidIdentityToken",
                                  "the web identity token is not valid")
        c = st.credentials()
        xml = ('<AssumeRoleWithWebIdentityResponse xmlns="%s">\n'
               '  <AssumeRoleWithWebIdentityResult>\n'
               '    <SubjectFromWebIdentityToken>system:serviceaccount:test'
               '</SubjectFromWebIdentityToken>\n'
               '    <AssumedRoleUser>\n      <Arn>%s/%s</Arn>\n'
               '      <AssumedRoleId>AROASTANDIN:%s</AssumedRoleId>\n'
               '    </AssumedRoleUser>\n'
               '    <Credentials>\n'
               '      <AccessKeyId>%s</AccessKeyId>\n'
               '      <SecretAccessKey>%s</SecretAccessKey>\n'
               '      <SessionToken>%s</SessionToken>\n'
               '      <Expiration>%s</Expiration>\n'
               '    </Credentials>\n'
               '    <Audience>sts.amazonaws.com</Audience>\n'
               '  </AssumeRoleWithWebIdentityResult>\n'
               '  <ResponseMetadata><RequestId>%s</RequestId>'
               '</ResponseMetadata>\n'
               '</AssumeRoleWithWebIdentityResponse>\n' %
               (STS_NS, escape(one["RoleArn"]), escape(one["RoleSessionName"]),
                escape(one["RoleSessionName"]), escape(c["AccessKeyId"]),
                escape(c["SecretAccessKey"]), escape(c["Token"]),
                c["Expiration"], secrets.token_hex(8)))
        self.send(200, xml, "text/xml")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0,
                    help="TCP port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--access-key",
                    default=os.environ.get("STANDIN_ACCESS_KEY",
                                           "ASIASTANDINEXAMPLE01"))
    ap.add_argument("--secret-key",
                    default=os.environ.get("STANDIN_SECRET_KEY",
                                           "standinSecretKeyEXAMPLE0123456789abcdef"))
    ap.add_argument("--session-token",
                    default=os.environ.get("STANDIN_SESSION_TOKEN", ""))
    ap.add_argument("--expires-in", type=int, default=3600,
                    help="Expiration = now + this many seconds")
    ap.add_argument("--role-name", default="s3-batch-test-role",
                    help="IAM role IMDS reports")
    ap.add_argument("--role-arn", default="",
                    help="RoleArn STS accepts (empty: any)")
    ap.add_argument("--ecs-auth", default="",
                    help="Authorization value ECS requires (empty: none)")
    ap.add_argument("--web-identity-token", default="",
                    help="token STS accepts")
    ap.add_argument("--web-identity-token-file", default="",
                    help="file whose contents STS accepts (wins over "
                    "--web-identity-token)")
    ap.add_argument("--verbose", action="store_true",
                    help="log each request to stderr")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    server.verbose = args.verbose

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
