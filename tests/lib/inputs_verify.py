#!/usr/bin/env python3
"""Checks for the bad-input and disk-full tests, through boto3 (a second S3
client, not the tools' code), with raw name bytes kept end to end.

  inputs_verify.py [--unescape] sync BUCKET MIRROR [FALLBACK_BUCKET]
      The bucket's keys are exactly the files under MIRROR (relative paths),
      each object holds the file's bytes; with FALLBACK_BUCKET, each key has
      exactly one fallback manifest entry, whose file.path is the key.
  inputs_verify.py [--unescape] batch BUCKET MIRROR FALLBACK_BUCKET
      Every object of BUCKET is a tar archive; the files under MIRROR are in
      them exactly once each (entry name = path relative to the archive's
      folder, raw bytes, regular entries only, never absolute or with ..),
      with their bytes; each has exactly one entry in the fallback manifests
      (file.path_b64 when the name is not UTF-8) naming an archive that
      exists, and a read at s3batch.tar.data_offset gives back the file.
  inputs_verify.py entries BUCKET FALLBACK_BUCKET
      One line per fallback manifest entry of BUCKET: the entry's JSON
      (sorted keys), to grep or to parse.
  inputs_verify.py race sync|batch BUCKET MADE FALLBACK_BUCKET
      The folder-swap race: the objects (sync) or archive entries (batch)
      are s/d/fN or s/d.away/fN holding "real N", each N of 1..MADE exactly
      once, none with bait; one manifest entry per file.
  inputs_verify.py rb|reset BUCKET
      Delete every object and the bucket (nothing if it is not there);
      reset then makes it again, empty.
  inputs_verify.py list BUCKET
      Every key as it is, one per line, sorted (code point order).
  inputs_verify.py keys BUCKET
      Every key, hex-encoded UTF-8, one per line, sorted.

--unescape: a file.path is compared after undoing the tools' escapes
(backslash, \\n, \\t, \\r, \\xNN); without it file.path must be the exact
key for every UTF-8 name (SPEC: "the original object key").
Environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
Exit 0 when every check holds; else one line per problem on stdout, exit 1.
"""
import base64
import io
import json
import os
import sys
import tarfile

import boto3
from botocore.config import Config


def client():
    return boto3.client(
        "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"},
                      retries={"max_attempts": 3}))


def keys(s3, bucket):
    out = []
    # botocore asks for url-encoded keys and decodes them itself
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(out)


def get(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def mirror_files(mirror):
    """{relative path bytes: content bytes} of the regular files."""
    top = os.fsencode(mirror)
    files = {}
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                files[os.path.relpath(p, top)] = f.read()
    return files


def entries(s3, bucket, fallback):
    out = []
    for k, body in get_all(s3, fallback, keys(s3, fallback)).items():
        doc = json.loads(body)
        for e in doc.get("entries", []):
            if e["aws"]["s3"]["bucket"]["name"] == bucket:
                e["_fallback_key"] = k
                out.append(e)
    return out


UNESCAPE = False


def unescape(s):
    """The bytes behind a name escaped as names.c name_escape does."""
    out, i, b = bytearray(), 0, s.encode()
    while i < len(b):
        if b[i:i + 1] == b"\\" and i + 1 < len(b):
            c = b[i + 1:i + 2]
            if c in (b"\\", b"n", b"t", b"r"):
                out += {b"\\": b"\\", b"n": b"\n", b"t": b"\t",
                        b"r": b"\r"}[c]
                i += 2
                continue
            if c == b"x":
                out.append(int(b[i + 2:i + 4], 16))
                i += 4
                continue
        out.append(b[i])
        i += 1
    return bytes(out)


def raw_path(e):
    """The original name bytes of a manifest entry: file.path_b64 when
    there is one, else file.path, which must be the key itself (or, with
    --unescape, file.path with the tools' escapes undone)."""
    f = e["file"]
    if "path_b64" in f:
        return base64.b64decode(f["path_b64"])
    return unescape(f["path"]) if UNESCAPE else f["path"].encode()


def check_sync(s3, bucket, mirror, fallback=None):
    bad = []
    want = mirror_files(mirror)
    have = keys(s3, bucket)
    wantk = sorted(k.decode() for k in want)
    for k in sorted(set(wantk) - set(have)):
        bad.append("missing in S3: %r" % k)
    for k in sorted(set(have) - set(wantk)):
        bad.append("in S3, not expected: %r" % k)
    both = sorted(set(wantk) & set(have))
    for k, data in get_all(s3, bucket, both).items():
        if data != want[k.encode()]:
            bad.append("bytes differ: %r" % k)
    if fallback is None:
        return bad
    byk = {}
    for e in entries(s3, bucket, fallback):
        byk.setdefault(e["aws"]["s3"]["object"]["key"], []).append(e)
        if raw_path(e) != e["aws"]["s3"]["object"]["key"].encode():
            bad.append("manifest file.path %r is not the key %r"
                       % (e["file"]["path"], e["aws"]["s3"]["object"]["key"]))
    for k in wantk:
        n = len(byk.get(k, []))
        if n != 1:
            bad.append("%d manifest entries for %r" % (n, k))
    for k in sorted(set(byk) - set(wantk)):
        bad.append("manifest entry for an unexpected key %r" % k)
    return bad


def check_batch(s3, bucket, mirror, fallback):
    bad = []
    want = mirror_files(mirror)
    seen = {}           # path bytes -> [archive key]
    tars = {}           # archive key -> bytes
    for k in keys(s3, bucket):
        if not k.endswith(".tar"):
            bad.append("not an archive in the bucket: %r" % k)
            continue
        data = get(s3, bucket, k)
        tars[k] = data
        folder = os.path.dirname(k).encode()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:",
                          encoding="utf-8", errors="surrogateescape") as t:
            for m in t.getmembers():
                name = m.name.encode("utf-8", "surrogateescape")
                if not m.isreg():
                    bad.append("%r: entry %r is not a regular file" % (k, name))
                    continue
                if name.startswith(b"/") or b".." in name.split(b"/"):
                    bad.append("%r: unsafe entry name %r" % (k, name))
                path = folder + b"/" + name if folder else name
                seen.setdefault(path, []).append(k)
                if path in want and t.extractfile(m).read() != want[path]:
                    bad.append("bytes differ: %r in %r" % (path, k))
    for p in sorted(set(want) - set(seen)):
        bad.append("missing from every archive: %r" % p)
    for p in sorted(set(seen) - set(want)):
        bad.append("archived, not expected: %r" % p)
    for p, ks in sorted(seen.items()):
        if len(ks) > 1:
            bad.append("archived %d times: %r" % (len(ks), p))
    ents = entries(s3, bucket, fallback)
    byp = {}
    for e in ents:
        byp.setdefault(raw_path(e), []).append(e)
    for p in sorted(set(want) - set(byp)):
        bad.append("no manifest entry: %r" % p)
    for p in sorted(set(byp) - set(want)):
        bad.append("manifest entry, not expected: %r" % p)
    for p, es in sorted(byp.items()):
        if len(es) > 1:
            bad.append("%d manifest entries: %r" % (len(es), p))
        e = es[0]
        try:
            p.decode("utf-8")
            if "path_b64" in e["file"]:
                bad.append("path_b64 for a UTF-8 name: %r" % p)
        except UnicodeDecodeError:
            if "path_b64" not in e["file"]:
                bad.append("no path_b64 for a non-UTF-8 name: %r" % p)
        key = e["aws"]["s3"]["object"]["key"]
        if key not in tars:
            bad.append("manifest of %r names a missing archive %r" % (p, key))
            continue
        if p in want:
            off = e["s3batch"]["tar"]["data_offset"]
            size = e["file"]["size"]
            if size != len(want[p]):
                bad.append("manifest size of %r: %d, want %d"
                           % (p, size, len(want[p])))
            if tars[key][off:off + size] != want[p]:
                bad.append("bytes at data_offset differ: %r" % p)
    return bad


def get_all(s3, bucket, ks):
    """{key: bytes}, fetched 16 at a time."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(16) as ex:
        return dict(zip(ks, ex.map(lambda k: get(s3, bucket, k), ks)))


def files_of(s3, bucket, kind):
    """[(path bytes, data)] of the objects (sync) or of the tar entries,
    with the archive's folder before the entry name (batch)."""
    out = []
    ks = keys(s3, bucket)
    for k, data in get_all(s3, bucket, ks).items():
        if kind == "sync":
            out.append((k.encode(), data))
            continue
        folder = os.path.dirname(k).encode()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:",
                          encoding="utf-8", errors="surrogateescape") as t:
            for m in t.getmembers():
                name = m.name.encode("utf-8", "surrogateescape")
                out.append((folder + b"/" + name if folder else name,
                            t.extractfile(m).read() if m.isreg() else None))
    return out


def check_race(s3, kind, bucket, made, fallback):
    """The swap race: files s/d/fN ("real N"), taken from s/d or from
    s/d.away (the folder's name while the symlink stood in its place),
    each exactly once; no bait."""
    import re
    bad = []
    count = {}
    for path, data in files_of(s3, bucket, kind):
        m = re.fullmatch(rb"s/d(\.away)?/f(\d+)", path)
        if data is not None and b"BAIT" in data:
            bad.append("bait was read: %r" % path)
        if not m:
            bad.append("unexpected file %r" % path)
            continue
        n = int(m.group(2))
        if data != b"real %d\n" % n:
            bad.append("bytes of %r: %r" % (path, data))
        count[n] = count.get(n, 0) + 1
    for n in range(1, made + 1):
        if count.get(n, 0) != 1:
            bad.append("f%d delivered %d times" % (n, count.get(n, 0)))
    ents = entries(s3, bucket, fallback)
    per = {}
    for e in ents:
        per[raw_path(e)] = per.get(raw_path(e), 0) + 1
    if sum(per.values()) != made or any(v != 1 for v in per.values()):
        bad.append("manifest entries: %d for %d files, %d names twice"
                   % (sum(per.values()), made,
                      sum(1 for v in per.values() if v != 1)))
    return bad


def main():
    global UNESCAPE
    s3 = client()
    if sys.argv[1] == "--unescape":
        UNESCAPE = True
        del sys.argv[1]
    cmd = sys.argv[1]
    if cmd == "sync":
        bad = check_sync(s3, sys.argv[2], sys.argv[3],
                         sys.argv[4] if len(sys.argv) > 4 else None)
    elif cmd == "batch":
        bad = check_batch(s3, sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "race":
        bad = check_race(s3, sys.argv[2], sys.argv[3], int(sys.argv[4]),
                         sys.argv[5])
    elif cmd in ("rb", "reset"):
        # every object, then the bucket (aws s3 rb --force is slow on
        # many); reset makes it again, empty
        b = sys.argv[2]
        try:
            ks = keys(s3, b)
        except s3.exceptions.NoSuchBucket:
            ks = None
        if ks is not None:
            for i in range(0, len(ks), 1000):
                s3.delete_objects(Bucket=b, Delete={"Objects": [
                    {"Key": k} for k in ks[i:i + 1000]], "Quiet": True})
            s3.delete_bucket(Bucket=b)
        if cmd == "reset":
            s3.create_bucket(Bucket=b)
        return 0
    elif cmd == "list":
        for k in keys(s3, sys.argv[2]):
            print(k)
        return 0
    elif cmd == "entries":
        for e in entries(s3, sys.argv[2], sys.argv[3]):
            print(json.dumps(e, sort_keys=True))
        return 0
    elif cmd == "keys":
        for k in keys(s3, sys.argv[2]):
            print(k.encode().hex())
        return 0
    else:
        print(__doc__)
        return 2
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
