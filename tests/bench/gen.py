#!/usr/bin/env python3
"""gen.py DIR COUNT SIZE: COUNT files of SIZE bytes under DIR, 1000 to a
folder (DIR/d000/f000000.bin, DIR/d000/f000001.bin, ... DIR/d001/...).
Contents are random (incompressible) and differ from file to file. Writes
through the page cache to the file system DIR is on; the caller syncs."""
import os
import sys

PER_DIR = 1000
CHUNK = 1 << 20


def main():
    root, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pool = os.urandom(min(size, CHUNK) + 65536)
    for i in range(count):
        d = os.path.join(root, "d%03d" % (i // PER_DIR))
        if i % PER_DIR == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%06d.bin" % i), "wb") as f:
            left = size
            while left > 0:
                n = min(left, CHUNK)
                if size <= CHUNK:
                    # small files: a unique prefix, then a window of the pool
                    off = (i * 61) % 65536
                    f.write((i.to_bytes(8, "big") + pool[off:off + n])[:n])
                else:
                    f.write(os.urandom(n))
                left -= n


if __name__ == "__main__":
    main()
