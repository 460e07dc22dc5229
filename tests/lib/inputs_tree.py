#!/usr/bin/env python3
"""Builds the bad-input tree of test_inputs.sh, with raw name bytes.

  inputs_tree.py TOOL ROOT BUCKET MIRROR OUTSIDE EXPECT

TOOL is s3-sync or s3-batch (they differ in what they take). Under ROOT:
BUCKET/... with every odd kind of name and file, a few bucket folders that
are not valid bucket names, a stray file at the top. MIRROR gets a copy of
every file the run must take (same relative paths). OUTSIDE holds bait the
symbolic links point at. EXPECT.stay lists (hex, one per line, sorted) the
paths under ROOT that must still be there after the run (everything but
directories); EXPECT.warn lists "<shown name>\t<reason>" for each warning
the run must print once.
"""
import os
import socket
import stat
import sys

tool, root, bucket, mirror, outside, expect = sys.argv[1:7]
batch = tool == "s3-batch"
root = os.fsencode(root)
mirror = os.fsencode(mirror)
B = os.fsencode(bucket)
stay = []       # paths relative to root (bytes)
warn = []       # (shown, reason) str


def shown(rel):
    """The name as the tools show it: control bytes, backslash and bytes
    that are not UTF-8 escaped (names.c name_escape)."""
    out = []
    i = 0
    while i < len(rel):
        for n in (4, 3, 2, 1):
            chunk = rel[i:i + n]
            try:
                s = chunk.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(s) != 1:
                continue
            c = ord(s)
            if n == 1:
                if 0x20 <= c < 0x7f and c != 0x5c:
                    out.append(s)
                else:
                    out.append({0x5c: "\\\\", 0x0a: "\\n", 0x09: "\\t",
                                0x0d: "\\r"}.get(c, "\\x%02x" % c))
            elif 0x80 <= c < 0xa0:
                out.append("\\x%02x" % chunk[0])
                n = 1
            else:
                out.append(s)
            i += n
            break
        else:
            out.append("\\x%02x" % rel[i])
            i += 1
    return "".join(out)


SHOW_MAX = 512


def shown_walk(*parts):
    """A name as the walk shows it in a warning: bucket, folder key and
    name, each escaped and cut to 512 bytes (at a UTF-8 boundary) + "...".
    """
    out = []
    for p in parts:
        if not p:
            continue
        cut = len(p)
        if cut > SHOW_MAX:
            cut = SHOW_MAX
            while cut > 0 and (p[cut] & 0xc0) == 0x80:
                cut -= 1
        out.append(shown(p[:cut]) + ("..." if cut < len(p) else ""))
    return "/".join(out)


def put(rel, data, take):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    if take:
        m = os.path.join(mirror, rel)
        os.makedirs(os.path.dirname(m), exist_ok=True)
        with open(m, "wb") as f:
            f.write(data)
    else:
        stay.append(rel)


def body(rel):
    return b"content of " + rel + b"\n"


# plain files: the rest of the run
for i in range(5):
    rel = B + b"/plain/ok-%d.txt" % i
    put(rel, body(rel) * (i + 1), True)

# names with newlines and other control characters, backslash, spaces:
# valid UTF-8, so both tools take them
for n in [b"new\nline.txt", b"two\n\nnewlines\n", b"tab\there", b"cr\rhere",
          b"ctl\x01\x1fbyte", b"del\x7fbyte", b"back\\slash",
          b"trailing space ", b" leading space", b"-dash", b"star*q?[x]",
          b"c1 \xc2\x85 nel", b"\xe2\x80\xae rtl override"]:
    rel = B + b"/ctl/" + n
    put(rel, body(rel), True)

# not UTF-8: s3-sync skips the file, s3-batch archives it (path_b64)
for n in [b"latin1-\xe9t\xe9.txt", b"ff\xff", b"overlong-\xc0\xaf",
          b"surrogate-\xed\xa0\x80", b"cut-\xe2\x82", b"nl\nand\xfe"]:
    rel = B + b"/badname/" + n
    put(rel, body(rel), batch)
    if not batch:
        warn.append((shown_walk(B, b"badname", n), "name is not UTF-8, left in place"))
# a folder whose name is not UTF-8: skipped by both, with its files
for rel in [B + b"/badfolder-\xff/a.txt", B + b"/badfolder-\xff/sub/b.txt"]:
    put(rel, body(rel), False)
warn.append((shown_walk(B, b"badfolder-\xff"),
             "folder name is not UTF-8; 2 files left in place"))

# 255-byte names (NAME_MAX): ASCII and multi-byte
for n in [b"a" * 251 + b".txt", "é".encode() * 127 + b"x",
          "日".encode() * 85]:
    assert len(n) == 255
    rel = B + b"/long/" + n
    put(rel, body(b"long"), True)

# object keys of exactly 1024 bytes (taken) and 1025 (skipped, warned)
d = b"k/" + b"/".join([b"%d" % i + b"x" * 199 for i in range(4)])
kprefix = d[len(b""):]          # key of the folder: no bucket
assert len(kprefix) == 805
n1024 = b"y" * (1024 - len(kprefix) - 1)
n1025 = b"z" * (1025 - len(kprefix) - 1)
put(B + b"/" + kprefix + b"/" + n1024, b"1024", True)
put(B + b"/" + kprefix + b"/" + n1025, b"1025", False)
warn.append((shown_walk(B, kprefix, n1025),
             "object key would be 1025 bytes, over S3's 1024; left in place"))
# a folder whose key leaves no room for "/<uuid>.tar" (s3-batch only)
lp = b"k2/" + b"/".join([b"%d" % i + b"w" * 239 for i in range(4)]) + b"/" + b"v" * 30
assert len(lp) == 997
put(B + b"/" + lp + b"/f", b"f", not batch)
if batch:
    warn.append((shown_walk(B, os.path.dirname(lp), os.path.basename(lp)),
                 "folder path too long for S3 object keys; 1 file left in place"))

# 100 levels of folders
deep = b"deep/" + b"/".join([b"d"] * 100)
put(B + b"/" + deep + b"/bottom.txt", b"bottom\n", True)
put(B + b"/deep/top.txt", b"top\n", True)

# bucket folders that are not bucket names, a file not in a bucket folder
for bad, files in [(b"Bad_Bucket", [b"a.txt"]), (b"ab", [b"a.txt"]),
                   (b"192.168.1.1", [b"x/a.txt", b"b.txt"]),
                   (b"-dash-first", [b"a.txt"]), (b"bad\xffbucket", [b"a"])]:
    for f in files:
        put(bad + b"/" + f, body(f), False)
    warn.append((shown_walk(bad), "not a valid S3 bucket name; %d file%s left in place"
                 % (len(files), "" if len(files) == 1 else "s")))
put(b"stray.txt", b"stray\n", False)
warn.append(("stray.txt", "not in a bucket folder, left in place"))

# FIFO, socket, device: never opened
sp = os.path.join(root, B + b"/special")
os.makedirs(sp, exist_ok=True)
os.mkfifo(os.path.join(sp, b"fifo"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(os.path.join(sp, b"sock"))
s.close()
os.mknod(os.path.join(sp, b"null"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
for n, kind in [(b"fifo", "FIFO"), (b"sock", "socket"), (b"null", "device")]:
    stay.append(B + b"/special/" + n)
    warn.append((shown_walk(B, b"special", n), kind + ", left in place"))
put(B + b"/special/regular.txt", b"regular\n", True)

# symbolic links out of the tree: never followed
out = os.fsencode(outside)
os.makedirs(os.path.join(out, b"dir"), exist_ok=True)
for n in [b"secret.txt", b"dir/inside.txt"]:
    with open(os.path.join(out, n), "wb") as f:
        f.write(b"BAIT " + n + b"\n")
lk = os.path.join(root, B + b"/links")
os.makedirs(lk, exist_ok=True)
for n, target in [(b"file-out", os.path.join(out, b"secret.txt")),
                  (b"dir-out", os.path.join(out, b"dir")),
                  (b"rel-out", b"../../../" + os.path.basename(out) + b"/secret.txt"),
                  (b"dangling", b"/nonexistent/s3b"),
                  (b"loop", b"loop")]:
    os.symlink(target, os.path.join(lk, n))
    stay.append(B + b"/links/" + n)
    warn.append((shown_walk(B, b"links", n), "symbolic link, left in place"))
put(B + b"/links/real.txt", b"real\n", True)
# a bucket folder that is a symbolic link (to a folder outside)
os.symlink(os.path.join(out, b"dir"), os.path.join(root, B + b"-link"))
stay.append(B + b"-link")
warn.append((shown_walk(B + b"-link"), "not in a bucket folder, left in place"))

with open(expect + ".stay", "w") as f:
    for rel in sorted(stay):
        f.write(rel.hex() + "\n")
with open(expect + ".warn", "w") as f:
    for s_, r in warn:
        f.write(s_ + "\t" + r + "\n")
