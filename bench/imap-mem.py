#!/usr/bin/env python3
"""Memory and CPU of a server process and all its descendants (Dovecot runs one process
per IMAP session; Golub is one process).

    imap-mem.py now PID            RSS and PSS in kB, and the process count
    imap-mem.py cpu PID            CPU seconds (user+system) of the tree, waited-for
                                   dead children included
    imap-mem.py peak PID [0.5]     samples until SIGTERM, then prints the peak RSS and PSS
    imap-mem.py threads PID        CPU seconds of each thread name of one process, as
                                   "name seconds" lines (threads of one name summed)
    imap-mem.py threads-diff A B   the difference of two such listings, largest first

RSS summed over many processes counts shared pages (the binary, libraries) once per
process; PSS shares them out, so the PSS sum is the tree's real footprint.
"""

import os
import signal
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def mem(root: int) -> tuple[int, int, int]:
    rss = pss = n = 0
    for p in tree(root):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            n += 1
        except OSError:
            continue
    return rss, pss, n


def cpu(root: int) -> float:
    total = 0
    for p in tree(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            continue
    return total / TICK


def threads(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
            name = head.split("(", 1)[1]
            ticks = sum(int(x) for x in rest.split()[11:13])
        except (OSError, IndexError, ValueError):
            continue
        out[name] = out.get(name, 0.0) + ticks / TICK
    return out


def read_listing(path: str) -> dict[str, float]:
    out = {}
    for line in open(path):
        name, secs = line.rstrip("\n").rsplit(" ", 1)
        out[name] = float(secs)
    return out


def main():
    if sys.argv[1] == "threads-diff":
        a, b = read_listing(sys.argv[2]), read_listing(sys.argv[3])
        d = {k: b[k] - a.get(k, 0.0) for k in b}
        total = sum(d.values())
        print(", ".join(f"{k} {v:.1f} s" for k, v in sorted(d.items(), key=lambda kv: -kv[1])
                        if v >= 0.05) + f" (total {total:.1f} s)")
        return
    what, pid = sys.argv[1], int(sys.argv[2])
    if what == "now":
        rss, pss, n = mem(pid)
        print(f"{rss} {pss} {n}")
    elif what == "cpu":
        print(f"{cpu(pid):.2f}")
    elif what == "threads":
        for name, secs in sorted(threads(pid).items()):
            print(f"{name} {secs:.2f}")
    elif what == "peak":
        interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
        peak = [0, 0, 0]
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        while not stop:
            rss, pss, n = mem(pid)
            peak = [max(peak[0], rss), max(peak[1], pss), max(peak[2], n)]
            time.sleep(interval)
        print(f"{peak[0]} {peak[1]} {peak[2]}")
    else:
        sys.exit("usage: imap-mem.py now|cpu|peak PID")


if __name__ == "__main__":
    main()
