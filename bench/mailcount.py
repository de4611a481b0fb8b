#!/usr/bin/env python3
"""Counts the messages a benchmark target has put into its mailboxes.

  mailcount.py count KIND PATH
  mailcount.py wait KIND PATH EXPECTED TIMEOUT_S

KIND is "golub" (PATH is data_dir: counts rows of `messages` in golub.db, one per
mailbox delivery), "maildir" (PATH is a directory: counts files in every */new and
*/cur below it), "sink" (PATH is the stdout of `smtp-sink -c`: the messages it has
accepted, its last "mesg=N") or "sink-sessions" (the same file: the connections that
have ended, its last "sess=N"). `wait` polls every 10 ms until the count reaches EXPECTED or the
timeout passes; it prints the count, the seconds waited and the Unix time it stopped, and exits 1
on timeout.
"""
import os
import re
import sqlite3
import sys
import time


def count_golub(data_dir):
    db = os.path.join(data_dir, "golub.db")
    # read-only, so the poller never takes a write lock on the server's database
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    finally:
        conn.close()


def count_maildir(root):
    n = 0
    for dirpath, dirnames, _ in os.walk(root):
        for sub in ("new", "cur"):
            if sub in dirnames:
                with os.scandir(os.path.join(dirpath, sub)) as it:
                    n += sum(1 for e in it if not e.name.startswith("."))
        dirnames[:] = [d for d in dirnames if d not in ("new", "cur", "tmp")]
    return n


def count_sink(path, field):
    # smtp-sink -c appends "sess=N quit=N mesg=N" and a \r or \n after every event;
    # the last complete record holds the totals
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256))
            tail = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return 0
    found = re.findall(r"sess=(\d+) quit=(\d+) mesg=(\d+)[\r\n]", tail)
    if not found:
        return 0
    sess, _, mesg = found[-1]
    return int(mesg if field == "mesg" else sess)


def count(kind, path):
    if kind == "sink":
        return count_sink(path, "mesg")
    if kind == "sink-sessions":
        return count_sink(path, "sess")
    if kind == "golub":
        return count_golub(path)
    if kind == "maildir":
        return count_maildir(path) if os.path.isdir(path) else 0
    raise SystemExit(f"unknown kind {kind!r}")


def main(argv):
    if len(argv) == 3 and argv[0] == "count":
        print(count(argv[1], argv[2]))
        return 0
    if len(argv) == 5 and argv[0] == "wait":
        kind, path, expected, timeout = argv[1], argv[2], int(argv[3]), float(argv[4])
        start = time.monotonic()
        while True:
            n = count(kind, path)
            waited = time.monotonic() - start
            if n >= expected or waited > timeout:
                # the count, the seconds waited, and the wall-clock time it was reached
                print(n, f"{waited:.3f}", f"{time.time():.6f}")
                return 0 if n >= expected else 1
            time.sleep(0.01)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
