#!/usr/bin/env python3
"""Opens many idle SMTP connections and reports a server process's memory meanwhile.

  idle-conns.py HOST:PORT COUNT PID [HOLD_S]

Opens COUNT connections (at most 200 connecting at once), reads each one's 220
greeting, then leaves them all idle for HOLD_S seconds (default 3) and prints
  open <connections that got 220> failed <n> rss_kb <VmRSS of PID> hwm_kb <VmHWM>
before closing them. Bounded: every connect and greeting has a 30 s timeout, and the
whole run gives up after 300 s. Needs `ulimit -n` above COUNT.
"""
import asyncio
import sys


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


async def one(host, port, sem, conns, failures):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        except (OSError, asyncio.TimeoutError) as e:
            failures.append(type(e).__name__)
            return
        try:
            # the greeting may be multi-line: read up to the "220 " line
            while True:
                line = await asyncio.wait_for(r.readline(), 30)
                if not line.startswith(b"220"):
                    raise ConnectionError(f"greeting {line[:40]!r}")
                if line[3:4] != b"-":
                    break
        except (OSError, asyncio.TimeoutError, ConnectionError) as e:
            failures.append(type(e).__name__)
            w.close()
            return
        conns.append(w)


async def run(host, port, count, pid, hold):
    sem = asyncio.Semaphore(200)
    conns, failures = [], []
    await asyncio.gather(*(one(host, port, sem, conns, failures) for _ in range(count)))
    await asyncio.sleep(hold)
    print(f"open {len(conns)} failed {len(failures)} rss_kb {vm(pid, 'VmRSS')} "
          f"hwm_kb {vm(pid, 'VmHWM')}", flush=True)
    if failures:
        kinds = {}
        for f in failures:
            kinds[f] = kinds.get(f, 0) + 1
        print(f"failures: {kinds}", file=sys.stderr)
    for w in conns:
        w.close()
    await asyncio.sleep(0.5)


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1].rsplit(":", 1)
    count, pid = int(sys.argv[2]), int(sys.argv[3])
    hold = float(sys.argv[4]) if len(sys.argv) == 5 else 3.0
    try:
        asyncio.run(asyncio.wait_for(run(host, int(port), count, pid, hold), 300))
    except asyncio.TimeoutError:
        print("gave up after 300 s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
