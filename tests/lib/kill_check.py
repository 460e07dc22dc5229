#!/usr/bin/env python3
"""kill_check.py: the helpers of tests/integration/test_kill.sh.

  kill_check.py phases TRACE ctx...      every traced call, its count and phase
  kill_check.py plan TRACE ctx... [--only-phase P] [--families F,..]
                                         kill points "SYSCALL N PHASE DETAIL"
  kill_check.py label TRACE ctx...       the call the run was killed at:
                                         "SYSCALL N PHASE DETAIL" or "not-killed"
  kill_check.py count TRACE ctx... SYSCALL
                                         how many calls the run made
  kill_check.py order TRACE ctx...       trace evidence: every unlink of an
                                         original after the fsync of its
                                         archive and of the spool's batches/
  kill_check.py expect ROOT OUT          the originals: bucket, key, sha256, size
  kill_check.py verify --tool T --expect FILE ...
                                         the invariant after the later runs
  kill_check.py mkbuckets B...           create buckets
  kill_check.py serve                    the above, one command a line on
                                         stdin (OUTFILE ARGS...), "rc N" out

ctx: --tool batch|sync --root DIR --spool DIR (the tool's own spool,
<S3BATCH_SPOOL_DIR>/<tool>) --s3-port N --es-port N.

Traces come from `strace -f -yy -o TRACE -e trace=...`: one line a call,
"PID name(args) = ret", descriptors resolved to paths and sockets to
addresses. The phase of a call is decided from the calls before it and the
call itself (no look-ahead), so a killed run's last call gets the label the
same call gets in a full run:

  recover  from the start to the walk's open of the root (recovery opens the
           root too, to unlink a sealed batch's originals: those opens follow
           the batch's manifest.json or another path under the root)
  walk     the walk of the root and the /proc/*/fd scan
  stage    s3-batch: staging directory, reading originals, writing tars
  seal     tar fsync, manifest written, renamed into batches/, fsyncs
           (s3-sync: the manifest batch written and renamed into batches/)
  unlink-originals  unlinkat of a file under the root
  upload   traffic to S3 (and the spool's multipart records) before indexing
           (s3-sync: opening the originals it sends)
  index    traffic to ElasticSearch, and to S3 after it (fallback objects)
  release  batches/<id> renamed to work.cleared-*, removed; the staging
           directory removed; last-success written
"""
import argparse
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import urllib.error
import urllib.request

# kill points are chosen per group of system calls
GROUPS = {
    "open": ["openat", "open", "mkdir", "mkdirat"],
    "write": ["write", "pwrite64", "writev"],
    "fsync": ["fsync", "fdatasync"],
    "rename": ["rename", "renameat", "renameat2"],
    "unlink": ["unlink", "unlinkat", "rmdir"],
    "connect": ["connect"],
    "send": ["sendto", "sendmsg"],
}
# the calls that make things durable or final: a kill point for each kind
# of thing they work on in each phase (the others: one for each phase)
BY_KIND = ["fsync", "rename", "unlink"]
FIRST_LAST = ["fsync", "rename", "unlink", "connect", "send"]

LINE = re.compile(r'^(\d+)\s+([a-z_0-9]+)\((.*)$')
RESUMED = re.compile(r'^(\d+)\s+<\.\.\. ([a-z_0-9]+) resumed>')
KILLED = re.compile(r'^(\d+)\s+\+\+\+ killed by SIGKILL')
# a descriptor resolved by -y/-yy: 12</a/path> or 14<TCP:[a:p->b:q]>
FD = re.compile(r'^(-?\d+|AT_FDCWD)<((?:[A-Z0-9]+:\[[^\]]*\])|'
                r'(?:[^<>]|<[^<>]*>)*)>')


def unescape(s):
    """strace's C-style escapes of a quoted string, to text."""
    out = bytearray()
    i = 0
    b = s.encode("utf-8", "surrogateescape")
    while i < len(b):
        c = b[i]
        if c == 0x5c and i + 1 < len(b):
            n = b[i + 1]
            if 0x30 <= n <= 0x37:
                j = i + 1
                v = 0
                while j < len(b) and j < i + 4 and 0x30 <= b[j] <= 0x37:
                    v = v * 8 + b[j] - 0x30
                    j += 1
                out.append(v)
                i = j
                continue
            if n == ord('x'):
                out.append(int(b[i + 2:i + 4], 16))
                i += 4
                continue
            m = {ord('n'): 10, ord('t'): 9, ord('r'): 13, ord('v'): 11,
                 ord('f'): 12, ord('"'): 0x22, ord('\\'): 0x5c}
            out.append(m.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def split_args(s):
    """The top-level arguments of "a, b, {c, d}, "e, f") = ret"."""
    args, cur, depth, q, i = [], [], 0, False, 0
    while i < len(s):
        c = s[i]
        if q:
            cur.append(c)
            if c == '\\' and i + 1 < len(s):
                cur.append(s[i + 1])
                i += 2
                continue
            if c == '"':
                q = False
        elif c == '"':
            q = True
            cur.append(c)
        elif c in '({[<':
            depth += 1
            cur.append(c)
        elif c in ')}]>' and depth > 0:
            depth -= 1
            cur.append(c)
        elif c == ')' and depth == 0:
            args.append(''.join(cur).strip())
            return args, s[i + 1:]
        elif c == ',' and depth == 0:
            args.append(''.join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    args.append(''.join(cur).strip())
    return args, ''


def fd_of(arg):
    """(number, resolved text) of a descriptor argument, or (None, None)."""
    m = FD.match(arg)
    if not m:
        return None, None
    return m.group(1), m.group(2)


def str_of(arg):
    if arg.startswith('"'):
        end = arg.rfind('"')
        return unescape(arg[1:end])
    return None


def join(d, name):
    if name is None:
        return None
    if name.startswith('/'):
        return os.path.normpath(name)
    if d is None:
        return None
    return os.path.normpath(os.path.join(d, name))


def sock_port(text):
    """The peer port of a resolved TCP socket: TCP:[a:p->b:q]."""
    if text is None:
        return None
    m = re.search(r'->[^\]]*:(\d+)\]', text)
    return int(m.group(1)) if m else None


class Call:
    __slots__ = ("pid", "name", "args", "ret", "n", "phase", "path",
                 "path2", "fdpath", "port", "flags", "killed", "line",
                 "lineno")

    def __str__(self):
        return "%s %d %s %s" % (self.name, self.n, self.phase,
                                self.detail())

    def detail(self):
        if self.port is not None:
            return "port:%d" % self.port
        p = self.path or self.fdpath or "-"
        if self.path2:
            p += "->" + self.path2
        return p.replace(" ", "%20")


def parse(path):
    """Every call start of the trace, with a per-pid count per name."""
    calls, counts, killed_pids = [], {}, set()
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, raw in enumerate(f, 1):
            raw = raw.rstrip("\n")
            if KILLED.match(raw):
                killed_pids.add(KILLED.match(raw).group(1))
                continue
            if RESUMED.match(raw):
                continue
            m = LINE.match(raw)
            if not m:
                continue
            c = Call()
            c.pid, c.name, rest = m.group(1), m.group(2), m.group(3)
            c.line, c.lineno = raw, lineno
            unfinished = rest.endswith("<unfinished ...>")
            args, tail = split_args(rest)
            c.args = args
            c.ret = None
            c.killed = False
            if not unfinished:
                t = tail.strip()
                if t.startswith("="):
                    c.ret = t[1:].strip()
                    c.killed = c.ret == "?"
            key = (c.pid, c.name)
            counts[key] = counts.get(key, 0) + 1
            c.n = counts[key]
            c.path = c.path2 = c.fdpath = None
            c.port = None
            c.flags = ""
            resolve(c)
            calls.append(c)
    return calls, killed_pids


def resolve(c):
    a = c.args
    if c.name in ("openat", "mkdirat", "unlinkat", "newfstatat"):
        _, d = fd_of(a[0]) if a else (None, None)
        c.path = join(d, str_of(a[1]) if len(a) > 1 else None)
        c.flags = a[2] if len(a) > 2 else ""
        if c.ret:
            _, rp = fd_of(c.ret)
            if rp and rp.startswith('/'):
                c.path = rp
    elif c.name in ("open", "mkdir", "unlink", "rmdir"):
        c.path = join("/", str_of(a[0]) if a else None)
        c.flags = a[1] if len(a) > 1 else ""
    elif c.name in ("renameat", "renameat2"):
        _, d1 = fd_of(a[0])
        _, d2 = fd_of(a[2]) if len(a) > 2 else (None, None)
        c.path = join(d1, str_of(a[1]))
        c.path2 = join(d2, str_of(a[3]) if len(a) > 3 else None)
    elif c.name == "rename":
        c.path = join("/", str_of(a[0]))
        c.path2 = join("/", str_of(a[1]) if len(a) > 1 else None)
    elif c.name == "connect":
        m = re.search(r'sin6?_port=htons\((\d+)\)', ",".join(a))
        c.port = int(m.group(1)) if m else None
    elif a:
        _, fdp = fd_of(a[0])
        c.fdpath = fdp
        p = sock_port(fdp)
        if p is not None:
            c.port = p


def under(p, d):
    return p is not None and (p == d or p.startswith(d.rstrip('/') + '/'))


class Phaser:
    """Decides each call's phase from the calls before it."""

    def __init__(self, o):
        self.o = o
        self.root = os.path.normpath(o.root)
        self.spool = os.path.normpath(o.spool)
        self.state = "recover"
        self.last_path = None	# the last path a path-bearing call named

    def spool_rel(self, p):
        if not under(p, self.spool):
            return None
        return os.path.relpath(p, self.spool)

    def step(self, c):
        o, st = self.o, self.state
        p = c.path or c.fdpath
        rel = self.spool_rel(p) if p else None
        rel2 = self.spool_rel(c.path2) if c.path2 else None
        batch = o.tool == "batch"
        new = None
        if st == "recover":
            if (c.name in ("open", "openat") and c.path == self.root and
                    not under(self.last_path, self.root) and
                    not (self.last_path or "").endswith("/manifest.json")):
                new = "walk"
        elif c.port is not None and c.name in ("connect", "sendto",
                                               "sendmsg", "writev",
                                               "write"):
            if c.port == o.es_port:
                new = "index"
            elif c.port == o.s3_port:
                new = "index" if st in ("index", "release") else "upload"
        elif rel is not None and rel.startswith("mpu"):
            if st not in ("index", "release"):
                new = "upload"
        elif (c.name in ("renameat", "renameat2", "rename") and
              rel is not None and rel.startswith("batches/") and
              rel2 is not None and rel2.startswith("work.cleared-")):
            new = "release"
        elif rel is not None and (rel.startswith("work.cleared-") or
                                  rel.startswith(".last-success") or
                                  rel == "last-success"):
            new = "release"
        elif rel is not None and rel.startswith("work."):
            parts = rel.split("/")
            if c.name == "mkdir" and len(parts) == 1:
                new = "stage" if batch else "seal"
            elif st in ("index", "release", "upload") and len(parts) == 1:
                new = "release"	# the staging directory removed
            elif len(parts) >= 3 and parts[2] == "archive.tar":
                new = "seal" if c.name in ("fsync", "fdatasync") else "stage"
            elif len(parts) >= 3 and "manifest.json" in parts[2]:
                new = "seal"
            elif c.name == "mkdirat" and len(parts) == 2:
                new = "stage" if batch else "seal"
            elif c.name in ("fsync", "renameat", "renameat2"):
                new = "seal"
            elif st in ("walk", "unlink-originals", "upload"):
                new = "stage" if batch else "seal"
        elif rel is not None and rel.startswith("batches"):
            if c.name in ("renameat", "renameat2", "rename"):
                new = "seal"
            elif st in ("index", "release"):
                new = "release"
            elif st in ("stage", "seal", "unlink-originals", "upload"):
                new = "seal"
        elif under(c.path, self.root) and c.name in ("unlinkat", "unlink"):
            if "AT_REMOVEDIR" not in c.flags:
                new = "unlink-originals"
        elif (c.name in ("openat", "open") and under(c.path, self.root) and
              "O_DIRECTORY" not in c.flags):
            new = "stage" if batch else "upload"	# an original read
        elif rel is not None and st in ("index", "release"):
            new = "release"
        if new is not None:
            self.state = new
        c.phase = self.state
        if c.path is not None:
            self.last_path = c.path


def ctx_args(ap):
    ap.add_argument("trace")
    ap.add_argument("--tool", choices=["batch", "sync"], required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--spool", required=True)
    ap.add_argument("--s3-port", type=int, required=True)
    ap.add_argument("--es-port", type=int, required=True)


def phased(o):
    calls, killed = parse(o.trace)
    ph = Phaser(o)
    main = calls[0].pid if calls else None
    out = []
    for c in calls:
        ph.step(c)
        if c.pid == main:
            out.append(c)
    return out, killed, main


def cmd_phases(o):
    calls, _, _ = phased(o)
    for c in calls:
        print(c)
    return 0


def kind_of(p, o):
    root, spool = os.path.normpath(o.root), os.path.normpath(o.spool)
    if p is None:
        return "-"
    if under(p, root):
        return "root"
    if not under(p, spool):
        return "proc" if p.startswith("/proc") else "other"
    rel = os.path.relpath(p, spool)
    parts = rel.split("/")
    if rel == ".":
        return "spool"
    if parts[0] == "mpu":
        return "mpu" if len(parts) == 1 else \
            "mpu-tmp" if parts[1].startswith(".") else "mpu-record"
    if parts[0].startswith("work.cleared-"):
        return "cleared"
    if parts[0].startswith("work."):
        if len(parts) == 1:
            return "work"
        if len(parts) == 2:
            return "batch-dir"
        return "manifest" if "manifest" in parts[2] else parts[2]
    if parts[0] == "batches":
        return "batches" if len(parts) == 1 else "batch"
    return parts[0].lstrip(".")


def kind(c, o):
    """What a call works on, coarsely: the port, or the kind of path."""
    if c.port is not None:
        return "port%d" % c.port
    k = kind_of(c.path or c.fdpath, o)
    if c.name == "openat" and k == "root":
        k += "-dir" if "O_DIRECTORY" in c.flags else "-file"
    if c.path2:
        k += "->" + kind_of(c.path2, o)
    return k


def pick(seq, where):
    return seq[min(len(seq) - 1, max(0, int(round((len(seq) - 1) * where))))]


def cmd_plan(o):
    """Kill points: for fsync, rename*, unlink*, connect and send*, the
    first and the last call of the run; for every group of calls, the
    middle call of each phase (fsync, rename*, unlink*: of each kind of
    thing they work on in each phase); the first open/mkdir of each phase;
    the first and the last unlink of an original in each phase. --quick:
    the first, middle and last call of each group, and the first open or
    mkdir of each phase."""
    calls, _, _ = phased(o)
    allowed = set(o.families.split(",")) if o.families else None
    spool = os.path.normpath(o.spool)
    # nothing of the tool's own runs before its spool is touched
    start = min([c.lineno for c in calls if under(c.path, spool)] or [0])
    chosen = {}
    for g, names in GROUPS.items():
        seq = [c for c in calls if c.name in names and c.lineno >= start and
               (allowed is None or c.name in allowed) and
               (o.only_phase is None or c.phase == o.only_phase)]
        if not seq:
            continue
        if o.quick:
            for w in (0.0, 0.5, 1.0):
                c = pick(seq, w)
                chosen[(c.name, c.n)] = c
            if g == "open":	# and where each phase starts
                starts = {}
                for c in seq:
                    if kind(c, o) != "other":
                        starts.setdefault(c.phase, c)
                for c in starts.values():
                    chosen[(c.name, c.n)] = c
            continue
        if o.only_phase is None and g in FIRST_LAST:
            for w in (0.0, 1.0):
                c = pick(seq, w)
                chosen[(c.name, c.n)] = c
        phases = {}
        for c in seq:
            k = kind(c, o)
            if k != "other":	# libraries, locale files
                phases.setdefault((c.phase, k if g in BY_KIND else ""),
                                  []).append(c)
        for (ph, k), cs in phases.items():
            c = pick(cs, 0.5)
            chosen[(c.name, c.n)] = c
            # and where each phase starts; the first and the last
            # original unlinked
            if g == "open" or g == "unlink" and k == "root":
                chosen[(cs[0].name, cs[0].n)] = cs[0]
            if g == "unlink" and k == "root":
                chosen[(cs[-1].name, cs[-1].n)] = cs[-1]
    for c in sorted(chosen.values(), key=lambda c: c.lineno):
        print(c)
    return 0


def label(o):
    calls, killed, main = phased(o)
    if main not in killed:
        return "not-killed"
    last = [c for c in calls if c.killed]
    return str(last[-1] if last else calls[-1])


def cmd_count(o):
    """How many times the run's main process made the call."""
    calls, _, _ = phased(o)
    print(sum(1 for c in calls if c.name == o.syscall))
    return 0


def cmd_label(o):
    print(label(o))
    return 0


def cmd_mkbuckets(o):
    s3 = s3_client()
    for b in o.buckets:
        s3.create_bucket(Bucket=b)
    return 0


def cmd_order(o):
    """Each unlinkat of an original after the fsync of the archive it went
    into, of its manifest, and of batches/ after the archive's batch was
    renamed into batches/. One line of evidence per unlink (trace line
    numbers), then the counts."""
    calls, _, _ = phased(o)
    root, spool = os.path.normpath(o.root), os.path.normpath(o.spool)
    cur_archive = None		# work.X/<id>/archive.tar being written
    holder = {}			# original path -> batch id
    tar_sync = {}		# batch id -> line of its archive.tar fsync
    man_sync = {}		# batch id -> line of its manifest fsync
    renamed = {}		# batch id -> line of its rename into batches/
    sealed = {}		# batch id -> line of the batches/ fsync after
    bad, good = [], 0
    for c in calls:
        p = c.path or c.fdpath
        if c.name == "openat" and p and p.startswith(spool + "/work.") \
                and p.endswith("/archive.tar"):
            cur_archive = p.split("/")[-2]
        elif c.name == "openat" and under(c.path, root) and \
                "O_DIRECTORY" not in c.flags and cur_archive:
            holder[c.path] = cur_archive
        elif c.name in ("fsync", "fdatasync") and p and \
                p.startswith(spool + "/work.") and \
                p.endswith("/archive.tar"):
            tar_sync[p.split("/")[-2]] = c.lineno
        elif c.name in ("fsync", "fdatasync") and p and \
                p.startswith(spool + "/work.") and \
                p.endswith("/.manifest.json.tmp"):
            man_sync[p.split("/")[-2]] = c.lineno
        elif c.name in ("renameat", "renameat2", "rename") and c.path2 and \
                c.path2.startswith(spool + "/batches/") and \
                c.path.startswith(spool + "/work."):
            renamed[os.path.basename(c.path2)] = c.lineno
        elif c.name in ("fsync", "fdatasync") and p == spool + "/batches":
            for b in renamed:
                sealed.setdefault(b, c.lineno)
        elif c.name in ("unlinkat", "unlink") and under(c.path, root) and \
                "AT_REMOVEDIR" not in c.flags:
            b = holder.get(c.path)
            rel = os.path.relpath(c.path, root)
            why = []
            if b is None:
                why.append("not read into any archive")
            else:
                if b not in tar_sync:
                    why.append("before the fsync of its archive.tar")
                if b not in man_sync:
                    why.append("before the fsync of its manifest")
                if b not in sealed:
                    why.append("before the fsync of batches/ after its "
                               "rename")
            if why:
                bad.append("line %d unlink %s: %s" %
                           (c.lineno, rel, "; ".join(why)))
                continue
            good += 1
            print("ordered: line %d unlink %s (batch %s) after: archive "
                  "fsync line %d, manifest fsync line %d, rename into "
                  "batches/ line %d, batches/ fsync line %d" %
                  (c.lineno, rel, b[:8], tar_sync[b], man_sync[b],
                   renamed[b], sealed[b]))
    for b in bad:
        print("OUT OF ORDER: " + b)
    print("unlinks of originals %d: in order %d, out of order %d" %
          (good + len(bad), good, len(bad)))
    return 0 if not bad and good > 0 else 1


_S3 = []


def s3_client():
    """One client a process (a served process makes it once)."""
    if not _S3:
        import boto3
        from botocore.config import Config
        _S3.append(boto3.client("s3", config=Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": 3})))
    return _S3[0]


def cmd_expect(o):
    with open(o.out, "w", encoding="utf-8", errors="surrogateescape") as f:
        for d, _, files in os.walk(o.root):
            for name in files:
                p = os.path.join(d, name)
                rel = os.path.relpath(p, o.root)
                bucket, key = rel.split("/", 1)
                h = hashlib.sha256()
                with open(p, "rb") as g:
                    for chunk in iter(lambda: g.read(1 << 20), b""):
                        h.update(chunk)
                f.write("%s\t%s\t%s\t%d\n" % (bucket, key, h.hexdigest(),
                                              os.path.getsize(p)))
    return 0


def es_docs(url, index, bucket):
    def req(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(url + path, data=data, method=method,
                                   headers={"Content-Type":
                                            "application/json"})
        with urllib.request.urlopen(r, timeout=30) as resp:
            return json.loads(resp.read())
    try:
        req("POST", "/%s/_refresh" % index)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise
    q = {"size": 10000, "query": {"term": {"aws.s3.bucket.name": bucket}}}
    r = req("POST", "/%s/_search" % index, q)
    return [(h["_id"], h["_source"]) for h in r["hits"]["hits"]]


def delete_bucket(s3, b):
    """Objects, open multipart uploads, then the bucket."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b):
        keys = [{"Key": x["Key"]} for x in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=b, Delete={"Objects": keys,
                                                "Quiet": True})
    for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", []) or []:
        s3.abort_multipart_upload(Bucket=b, Key=u["Key"],
                                  UploadId=u["UploadId"])
    s3.delete_bucket(Bucket=b)


def cmd_verify(o):
    s3 = s3_client()
    want = {}
    with open(o.expect, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            b, k, h, sz = line.rstrip("\n").split("\t")
            if b == o.bucket:
                want[k] = (h, int(sz))
    problems = []
    figures = {"originals": len(want), "lost": 0, "duplicated": 0,
               "corrupt": 0, "unexpected": 0, "local_left": 0,
               "manifest_missing": 0, "manifest_dup": 0,
               "manifest_wrong": 0, "spool_left": 0, "open_uploads": 0}

    def bad(fig, msg):
        figures[fig] += 1
        problems.append("%s: %s" % (fig, msg))

    # originals gone locally
    for k in want:
        if os.path.lexists(os.path.join(o.root, o.bucket, k)):
            bad("local_left", k)
    # every object of the bucket
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=o.bucket):
        keys += [x["Key"] for x in page.get("Contents", [])]
    where = {}			# original key -> [object key]
    archives = {}		# archive key -> bytes
    for key in keys:
        body = s3.get_object(Bucket=o.bucket, Key=key)["Body"].read()
        if o.tool == "sync":
            where.setdefault(key, []).append(key)
            if key not in want:
                bad("unexpected", "object %s is no original" % key)
            elif hashlib.sha256(body).hexdigest() != want[key][0]:
                bad("corrupt", "object %s differs from the original" % key)
            continue
        if not key.endswith(".tar"):
            bad("unexpected", "object %s is not an archive" % key)
            continue
        archives[key] = body
        prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as t:
            for m in t.getmembers():
                if not m.isreg():
                    bad("unexpected", "%s: entry %s is not a regular file"
                        % (key, m.name))
                    continue
                full = prefix + m.name
                data = t.extractfile(m).read()
                if full not in want:
                    bad("unexpected", "%s: entry %s is no original" %
                        (key, full))
                    continue
                if hashlib.sha256(data).hexdigest() != want[full][0]:
                    bad("corrupt", "%s: entry %s differs" % (key, full))
                    continue
                where.setdefault(full, []).append(key)
    for k in want:
        n = len(where.get(k, []))
        if n == 0:
            bad("lost", "%s is in no %s" % (k, "object" if o.tool == "sync"
                                            else "archive"))
        elif n > 1:
            bad("duplicated", "%s is in %d archives: %s" %
                (k, n, " ".join(where[k])))
    # manifests: ElasticSearch documents and fallback objects
    found = {}			# original key -> [(source, object key, doc)]
    for _id, d in es_docs(o.es_url, o.index, o.bucket):
        p = d.get("file", {}).get("path")
        found.setdefault(p, []).append(("es:" + _id[:12], d))
    fb_bucket, _, fb_prefix = o.fallback.partition("/")
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=fb_bucket, Prefix=fb_prefix):
        for x in page.get("Contents", []):
            doc = json.loads(s3.get_object(Bucket=fb_bucket,
                                           Key=x["Key"])["Body"].read())
            for d in doc.get("entries", []):
                if d.get("aws", {}).get("s3", {}).get("bucket", {}).get(
                        "name") != o.bucket:
                    continue
                p = d.get("file", {}).get("path")
                found.setdefault(p, []).append(("fallback:" + x["Key"], d))
    figures["manifest_es"] = sum(1 for v in found.values() for s, _ in v
                                 if s.startswith("es:"))
    figures["manifest_fallback"] = sum(1 for v in found.values()
                                       for s, _ in v
                                       if s.startswith("fallback:"))
    for k, (h, size) in want.items():
        docs = found.get(k, [])
        if not docs:
            bad("manifest_missing", "%s has no manifest entry" % k)
            continue
        if len(docs) > 1:
            bad("manifest_dup", "%s has %d manifest entries: %s" %
                (k, len(docs), " ".join(s for s, _ in docs)))
        for src, d in docs:
            okey = d.get("aws", {}).get("s3", {}).get("object", {}).get(
                "key")
            if d.get("file", {}).get("hash", {}).get("sha256") != h:
                bad("manifest_wrong", "%s (%s): sha256 differs" % (k, src))
            if o.tool == "sync":
                if okey != k:
                    bad("manifest_wrong", "%s (%s): object key %s" %
                        (k, src, okey))
                continue
            holders = where.get(k, [])
            if okey not in holders:
                bad("manifest_wrong", "%s (%s): archive %s does not hold "
                    "it (%s)" % (k, src, okey, " ".join(holders) + " does"
                                 if holders else "no archive does"))
                continue
            off = d.get("s3batch", {}).get("tar", {}).get("data_offset")
            data = archives[okey][off:off + size] if off is not None else b""
            if hashlib.sha256(data).hexdigest() != h:
                bad("manifest_wrong", "%s (%s): the bytes at data_offset "
                    "%s of %s are not the file" % (k, src, off, okey))
    extra = set(found) - set(want)
    for p in sorted(x for x in extra if x is not None):
        bad("unexpected", "manifest entry for %s, no original" % p)
    # the spool
    for d, dirs, files in os.walk(o.spool):
        rel = os.path.relpath(d, o.spool)
        for name in dirs:
            r = os.path.normpath(os.path.join(rel, name))
            if r not in ("mpu", "batches"):
                bad("spool_left", "directory %s" % r)
        for name in files:
            r = os.path.normpath(os.path.join(rel, name))
            if r not in ("lock", "last-success"):
                bad("spool_left", "file %s" % r)
    # open multipart uploads
    for b in (o.bucket, fb_bucket):
        r = s3.list_multipart_uploads(Bucket=b)
        for u in r.get("Uploads", []) or []:
            bad("open_uploads", "s3://%s/%s upload %s" %
                (b, u["Key"], u["UploadId"][:16]))
    if o.delete_bucket:
        delete_bucket(s3, o.bucket)
    for i, t in enumerate(o.label or []):
        o.trace = t
        print("label%d %s" % (i + 1, label(o)))
    for p in problems:
        print("problem: " + p)
    for k, v in figures.items():
        print("%s %d" % (k, v))
    return 0


def cmd_serve(o):
    """Commands from stdin, one a line: OUTFILE ARGS... (shell-quoted);
    each one's output into OUTFILE, then "rc N" on stdout. Saves starting
    Python and botocore at every kill point."""
    import contextlib
    import shlex
    import traceback
    real = sys.stdout
    for line in sys.stdin:
        words = shlex.split(line)
        if not words:
            continue
        with open(words[0], "w", encoding="utf-8",
                  errors="surrogateescape") as out:
            with contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(out):
                try:
                    rc = main(words[1:])
                except SystemExit as e:
                    rc = e.code if isinstance(e.code, int) else 2
                except Exception:
                    traceback.print_exc()
                    rc = 99
        real.write("rc %d\n" % (rc or 0))
        real.flush()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("phases", "label", "order"):
        ctx_args(sub.add_parser(name))
    p = sub.add_parser("count")
    ctx_args(p)
    p.add_argument("syscall")
    p = sub.add_parser("plan")
    ctx_args(p)
    p.add_argument("--only-phase")
    p.add_argument("--families")
    p.add_argument("--quick", action="store_true")
    p = sub.add_parser("expect")
    p.add_argument("root")
    p.add_argument("out")
    p = sub.add_parser("mkbuckets")
    p.add_argument("buckets", nargs="+")
    p = sub.add_parser("verify")
    p.add_argument("--tool", choices=["batch", "sync"], required=True)
    p.add_argument("--expect", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--es-url", required=True)
    p.add_argument("--index", required=True)
    p.add_argument("--fallback", required=True)
    p.add_argument("--delete-bucket", action="store_true")
    p.add_argument("--label", action="append",
                   help="a killed run's trace: its label (repeatable)")
    p.add_argument("--s3-port", type=int)
    p.add_argument("--es-port", type=int)
    sub.add_parser("serve")
    o = ap.parse_args(argv)
    return globals()["cmd_" + o.cmd](o)


if __name__ == "__main__":
    sys.exit(main())
