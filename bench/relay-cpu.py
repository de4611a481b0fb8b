#!/usr/bin/env python3
"""CPU time spent by Golub and by Postfix's instance on one relay load.

  relay-cpu.py PORT MESSAGES [SESSIONS]

Sends MESSAGES of 4 KB to user@relay.test on 127.0.0.1:PORT with golub-bench (SESSIONS
sessions, 50 unless given, a connection per message, as relay50), waits until the relay
sink has counted them all, waits 3 s more (the relays close their idle connections),
and prints the wall time and the CPU seconds, per message, of:

- `golub serve` (utime + stime of all its threads, summed by thread name);
- Postfix's instance: its master's own and reaped children's time plus the time of
  its live children (a child that exited during the load counts through the master's
  cutime/cstime; one that ran before the load and exits during it counts whole);
- the relay sink.

Run it with bench/peers.sh's servers up, one load at a time. GOLUB_BENCH_BIN and
BENCH_DIR as for run.sh.
"""
import collections
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.environ.get("BENCH_DIR", "/tmp/golub-bench")
BENCH = os.environ.get("GOLUB_BENCH_BIN", os.path.join(HERE, "..", "target", "release", "golub-bench"))
COUNTS = os.path.join(BENCH_DIR, "relaysink", "counts")
HZ = os.sysconf("SC_CLK_TCK")


def stat(path):
    """comm, ppid, [utime, stime, cutime, cstime] of /proc/PATH/stat"""
    s = open(f"/proc/{path}/stat").read()
    comm = s[s.index("(") + 1:s.rindex(")")]
    f = s[s.rindex(")") + 2:].split()
    return comm, int(f[1]), [int(x) for x in f[11:15]]


def golub_threads(pid):
    out = collections.Counter()
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            comm, _, v = stat(f"{pid}/task/{t}")
        except FileNotFoundError:
            continue
        out[re.sub(r"[-#]?\d+$", "", comm)] += v[0] + v[1]
    return out


def postfix_ticks(master):
    _, _, v = stat(master)
    total = sum(v)
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            _, ppid, v = stat(p)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if ppid == master:
            total += v[0] + v[1]
    return total


def sink_count():
    out = subprocess.run([sys.executable, os.path.join(HERE, "mailcount.py"), "count", "sink", COUNTS],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    port, n = argv[0], int(argv[1])
    sessions = argv[2] if len(argv) == 3 else "50"
    gpid = int(open(os.path.join(BENCH_DIR, "golub", "pid")).read())
    master = int(open(os.path.join(BENCH_DIR, "postfix", "queue", "pid", "master.pid")).read())
    sink = int(open(os.path.join(BENCH_DIR, "relaysink", "pid")).read())
    before = sink_count()
    g0, p0, s0 = golub_threads(gpid), postfix_ticks(master), sum(stat(sink)[2][:2])
    t0 = time.time()
    subprocess.run([BENCH, "smtp", "--addr", f"127.0.0.1:{port}", "--sessions", sessions,
                    "--messages", str(n), "--size", "4096", "--to", "user@relay.test", "--json",
                    "--time-limit", "60"], stdout=subprocess.DEVNULL, check=True)
    subprocess.run([sys.executable, os.path.join(HERE, "mailcount.py"), "wait", "sink", COUNTS,
                    str(before + n), "120"], stdout=subprocess.DEVNULL, check=True)
    t1 = time.time()
    time.sleep(3)
    g1, p1, s1 = golub_threads(gpid), postfix_ticks(master), sum(stat(sink)[2][:2])
    gd = {k: (g1[k] - g0[k]) / HZ for k in g1 if g1[k] > g0[k]}
    gs, ps = sum(gd.values()), (p1 - p0) / HZ
    print(f"port {port}: {n} messages counted by the sink in {t1 - t0:.2f} s ({n / (t1 - t0):.0f}/s)")
    print(f"  golub serve: {gs:.2f} CPU s, {1000 * gs / n:.3f} ms/msg; by thread: "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(gd.items(), key=lambda x: -x[1])))
    print(f"  postfix instance: {ps:.2f} CPU s, {1000 * ps / n:.3f} ms/msg")
    print(f"  relay sink: {(s1 - s0) / HZ:.2f} CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
