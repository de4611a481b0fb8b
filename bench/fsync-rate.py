#!/usr/bin/env python3
"""The data disk's flush rate, the ceiling of any server that flushes per message.

  fsync-rate.py DIR [SECONDS]

Two single-threaded loops in DIR, each for SECONDS (default 3):
  append:   append 4 KiB to one file, fdatasync, repeat (a WAL / queue-file commit)
  per-file: create a file, write 4 KiB, fsync it, fsync the directory, repeat
            (a Maildir delivery or a queue file per message)
Prints one line per loop: "<name> <ops/s>".
"""
import os
import sys
import time

BLOCK = b"x" * 4095 + b"\n"


def append_loop(d, seconds):
    path = os.path.join(d, "append.dat")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    n = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            os.write(fd, BLOCK)
            os.fdatasync(fd)
            n += 1
    finally:
        os.close(fd)
        os.unlink(path)
    return n / (time.monotonic() - start)


def per_file_loop(d, seconds):
    sub = os.path.join(d, "files")
    os.makedirs(sub, exist_ok=True)
    dfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    n = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            fd = os.open(os.path.join(sub, f"m{n}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, BLOCK)
            os.fsync(fd)
            os.close(fd)
            os.fsync(dfd)
            n += 1
    finally:
        elapsed = time.monotonic() - start
        os.close(dfd)
        for i in range(n):
            os.unlink(os.path.join(sub, f"m{i}"))
        os.rmdir(sub)
    return n / elapsed


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) == 3 else 3.0
    os.makedirs(d, exist_ok=True)
    print(f"append {append_loop(d, seconds):.0f}")
    print(f"per-file {per_file_loop(d, seconds):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
