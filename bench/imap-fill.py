#!/usr/bin/env python3
"""Loads the same generated messages into an IMAP mailbox by APPEND.

    imap-fill.py HOST:PORT USER PASSWORD COUNT [--mailbox INBOX] [--conns 4] [--window 32]
    imap-fill.py --maildir DIR COUNT


Message i (0 <= i < COUNT) is the same bytes on every server: 2 to 6 KB, a Subject of
two of golub-bench's search words (SEARCH_WORDS in crates/golub-bench/src/imap.rs) and a
serial number, a fixed Date, every third one appended with \\Seen. Message i goes over
connection i mod --conns; each connection keeps up to --window APPENDs in flight with
non-synchronizing literals (LITERAL+, RFC 7888), which both Golub and Dovecot offer, so
the fill is bounded by the server, not by round trips. Prints the count and the rate;
exits 1 if any APPEND was not OK.

--maildir writes the same messages as files into DIR/cur instead (Maildir names with
S=<size> and the :2,S flag), for Dovecot's big folder: APPEND into one Maildir of tens of
thousands of messages slows down with every message there (about 30/s at 35,000 on our
machine), and 100,000 would take most of an hour. Dovecot indexes such files at the next
SELECT.
"""

import argparse
import socket
import sys
import threading
import time

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
         "india", "juliet", "kilo", "lima"]
FILLER = ("the relay accepted message for delivery and queued it on disk before "
          "replying with a reply code every recipient gets its own status line").split()


def message(i: int) -> bytes:
    a = WORDS[i % len(WORDS)]
    b = WORDS[(i * 7 + 3) % len(WORDS)]
    size = 2048 + (i * 997) % 4096
    head = (f"From: Sender {i % 97} <sender{i % 97}@example.net>\r\n"
            f"To: user@example.org\r\n"
            f"Subject: {a} {b} report {i}\r\n"
            f"Date: Sat, 05 Dec 2026 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000\r\n"
            f"Message-ID: <fill-{i}@bench.example>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
    body = []
    n = len(head)
    k = i
    while n < size:
        line = " ".join(FILLER[(k + j) % len(FILLER)] for j in range(10)) + "\r\n"
        k += 3
        body.append(line)
        n += len(line)
    return (head + "".join(body)).encode()


class Conn:
    def __init__(self, addr, user, password):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=120)
        self.f = self.s.makefile("rb")
        self.n = 0
        greeting = self.f.readline()
        assert greeting.startswith(b"* OK"), greeting
        status, _ = self.cmd(f'LOGIN "{user}" "{password}"')
        assert status == "OK", f"login refused at {addr}"

    def tag(self):
        self.n += 1
        return f"f{self.n}"

    def read_tagged(self):
        """Reads lines up to the next tagged one; returns (tag, status)."""
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("closed")
            if line.startswith(b"* ") or line.startswith(b"+"):
                continue
            t, status = line.split(b" ", 2)[:2]
            return t.decode(), status.decode().upper()

    def cmd(self, text):
        t = self.tag()
        self.s.sendall(f"{t} {text}\r\n".encode())
        got, status = self.read_tagged()
        assert got == t, (got, t)
        return status, got


def fill(addr, user, password, mailbox, indexes, window, result):
    c = Conn(addr, user, password)
    ok = bad = 0
    inflight = 0
    for i in indexes:
        m = message(i)
        flags = "(\\Seen) " if i % 3 == 0 else ""
        t = c.tag()
        c.s.sendall(f'{t} APPEND "{mailbox}" {flags}{{{len(m)}+}}\r\n'.encode() + m + b"\r\n")
        inflight += 1
        if inflight >= window:
            _, status = c.read_tagged()
            inflight -= 1
            ok, bad = (ok + 1, bad) if status == "OK" else (ok, bad + 1)
    while inflight:
        _, status = c.read_tagged()
        inflight -= 1
        ok, bad = (ok + 1, bad) if status == "OK" else (ok, bad + 1)
    c.cmd("LOGOUT")
    result.append((ok, bad))


def fill_maildir(d: str, count: int):
    import os
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    t0 = time.time()
    for i in range(count):
        m = message(i)
        name = f"{1796461200 + i}.M{i}P1.bench,S={len(m)}:2,{'S' if i % 3 == 0 else ''}"
        with open(os.path.join(d, "cur", name), "wb") as f:
            f.write(m)
    dt = time.time() - t0
    print(f"wrote {count} messages into {d}/cur in {dt:.1f} s")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--maildir":
        fill_maildir(sys.argv[2], int(sys.argv[3]))
        return
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("count", type=int)
    p.add_argument("--mailbox", default="INBOX")
    p.add_argument("--conns", type=int, default=4)
    p.add_argument("--window", type=int, default=32)
    a = p.parse_args()
    result = []
    t0 = time.time()
    threads = [threading.Thread(target=fill, args=(a.addr, a.user, a.password, a.mailbox,
                                                   range(k, a.count, a.conns), a.window, result))
               for k in range(a.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    ok = sum(r[0] for r in result)
    bad = sum(r[1] for r in result)
    print(f"appended {ok} of {a.count} to {a.user} at {a.addr} in {dt:.1f} s "
          f"({ok / dt:.0f}/s), {bad} refused")
    sys.exit(0 if ok == a.count else 1)


if __name__ == "__main__":
    main()
