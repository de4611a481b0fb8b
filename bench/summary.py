#!/usr/bin/env python3
"""Turns run.sh's raw rows into markdown tables: median msgs/s per plan and target,
Golub's ratio to each peer, and the median p50/p99 latency (golub-bench plans).

  summary.py RESULTS.tsv PLAN-SPEC...   (the PLANS entries of run.sh, for labels/order)
                                        (relay plans: also their accept-side rate and the
                                        connections the relay sink saw)
  summary.py --pop3 POP3.tsv            (the POP3 rows: msgs/s, MB/s, Golub/Dovecot)
"""
import json
import statistics
import sys

ORDER = ["golub", "postfix", "opensmtpd", "sink"]
NAMES = {"golub": "Golub", "postfix": "Postfix", "opensmtpd": "OpenSMTPD", "sink": "smtp-sink"}


POP3_LABELS = {
    "pop1": "1 session, 10,000-message maildrop",
    "pop10": "10 sessions, each its own 10,000-message maildrop",
}


def pop3(path):
    """The POP3 rows of run.sh: median messages/s and MB/s per plan and target."""
    rows = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 11:
            continue
        rnd, plan, target, rate, mbs, msgs, done, errors, p50, p99, wall = f[:11]
        r = rows.setdefault((plan, target), {"rate": [], "mbs": [], "err": {}, "p50": [], "p99": []})
        r["rate"].append(float(rate))
        r["mbs"].append(float(mbs))
        r["p50"].append(float(p50))
        r["p99"].append(float(p99))
        for k, v in json.loads(errors).items():
            r["err"][k] = r["err"].get(k, 0) + v
    hdr = ["plan", "Golub msgs/s", "Dovecot msgs/s", "Golub MB/s", "Dovecot MB/s",
           "Golub/Dovecot", "round time p50 ms, Golub / Dovecot"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for plan, label in POP3_LABELS.items():
        g, d = rows.get((plan, "golub")), rows.get((plan, "dovecot"))
        if not g and not d:
            continue
        m = lambda r, k: statistics.median(r[k]) if r else None
        fmt = lambda v, spec: format(v, spec) if v is not None else "n/a"
        gr, dr = m(g, "rate"), m(d, "rate")
        cells = [label, fmt(gr, ".0f"), fmt(dr, ".0f"), fmt(m(g, "mbs"), ".1f"),
                 fmt(m(d, "mbs"), ".1f"), f"{gr / dr:.2f}" if gr and dr else "n/a",
                 f"{fmt(m(g, 'p50'), '.0f')} / {fmt(m(d, 'p50'), '.0f')}"]
        print("| " + " | ".join(cells) + " |")
    errs = [(k, r["err"]) for k, r in sorted(rows.items()) if r["err"]]
    if errs:
        print()
        print("Errors (summed over rounds):")
        print()
        for (plan, target), e in errs:
            print(f"- {plan} / {target}: {json.dumps(e)}")


def relay_table(labels, rows):
    """The relay plans: delivered/s at the sink, accepted/s, connections the sink saw."""
    plans = [p for p in labels if any(rows.get((p, t), {}).get("relay") for t in ("golub", "postfix"))]
    if not plans:
        return
    print()
    print("Relay plans, median over rounds: messages per second counted at the relay sink "
          "(from the start of the load until the sink counted the last), messages per second "
          "accepted by the target (golub-bench's rate), and the connections the sink saw per "
          "load (messages per connection):")
    print()
    hdr = ["plan", "Golub delivered/s", "Postfix delivered/s", "Golub/Postfix",
           "Golub accepted/s", "Postfix accepted/s", "Golub connections (msgs/conn)",
           "Postfix connections (msgs/conn)"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for plan in plans:
        g = rows.get((plan, "golub"), {}).get("relay", [])
        p = rows.get((plan, "postfix"), {}).get("relay", [])
        med = lambda rs, k: statistics.median(r[k] for r in rs) if rs else None
        fmt = lambda v: f"{v:.0f}" if v is not None else "n/a"

        def conns(rs):
            if not rs:
                return "n/a"
            c = med(rs, "sink_conns")
            per = statistics.median(r["accepted"] / r["sink_conns"] for r in rs if r["sink_conns"])
            return f"{c:.0f} ({per:.0f})"
        gr, pr = med(g, "rate"), med(p, "rate")
        cells = [labels[plan], fmt(gr), fmt(pr), f"{gr / pr:.2f}" if gr and pr else "n/a",
                 fmt(med(g, "accept_msgs_per_s")), fmt(med(p, "accept_msgs_per_s")),
                 conns(g), conns(p)]
        print("| " + " | ".join(cells) + " |")
    print()
    print("Per round (delivered/s, accepted/s, connections):")
    print()
    for plan in plans:
        for t in ("golub", "postfix"):
            rs = rows.get((plan, t), {}).get("relay", [])
            print(f"- {plan} / {NAMES[t]}: " + "; ".join(
                f"{r['rate']:.0f}, {r['accept_msgs_per_s']:.0f}, {r['sink_conns']}" for r in rs))


def main():
    if sys.argv[1] == "--pop3":
        return pop3(sys.argv[2])
    path, specs = sys.argv[1], sys.argv[2:]
    labels = {}
    for s in specs:
        f = s.split("|")
        labels[f[0]] = f[7]
    rows = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 10:
            continue
        rnd, plan, target, rate, accepted, errors, p50, p99, drain, note = f[:10]
        r = rows.setdefault((plan, target), {"rate": [], "err": {}, "p50": [], "p99": [], "notes": [],
                                             "relay": []})
        r["rate"].append(float(rate))
        if len(f) > 10 and f[10].strip():
            r["relay"].append(dict(json.loads(f[10]), rate=float(rate), accepted=int(accepted)))
        try:
            for k, v in json.loads(errors).items():
                r["err"][k] = r["err"].get(k, 0) + (v if isinstance(v, int) else 1)
        except ValueError:
            r["err"]["?"] = r["err"].get("?", 0) + 1
        if p50:
            r["p50"].append(float(p50))
            r["p99"].append(float(p99))
        if note.strip():
            r["notes"].append(note.strip())
    targets = [t for t in ORDER if any(k[1] == t for k in rows)]
    peers = [t for t in targets if t != "golub"]
    med = {k: statistics.median(v["rate"]) for k, v in rows.items()}

    hdr = ["plan"] + [f"{NAMES[t]} msgs/s" for t in targets]
    if "golub" in targets:
        hdr += [f"Golub/{NAMES[t]}" for t in peers]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for plan in labels:
        if not any((plan, t) in rows for t in targets):
            continue
        cells = [labels[plan]]
        for t in targets:
            cells.append(f"{med[(plan, t)]:.0f}" if (plan, t) in med else "n/a")
        if "golub" in targets:
            g = med.get((plan, "golub"))
            for t in peers:
                p = med.get((plan, t))
                cells.append(f"{g / p:.2f}" if g is not None and p else "n/a")
        print("| " + " | ".join(cells) + " |")

    print()
    print("Latency per message, median over rounds of each round's p50 / p99 in ms "
          "(golub-bench plans; from the connect with a new connection per message, from MAIL "
          "when reused):")
    print()
    hdr = ["plan"] + [NAMES[t] for t in targets]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for plan in labels:
        cells, any_lat = [labels[plan]], False
        for t in targets:
            r = rows.get((plan, t))
            if r and r["p50"]:
                any_lat = True
                cells.append(f"{statistics.median(r['p50']):.1f} / {statistics.median(r['p99']):.1f}")
            else:
                cells.append("n/a")
        if any_lat:
            print("| " + " | ".join(cells) + " |")

    relay_table(labels, rows)

    problems = [(k, v) for k, v in sorted(rows.items()) if v["err"] or v["notes"]]
    print()
    if problems:
        print("Errors and notes (summed over rounds):")
        print()
        for (plan, t), v in problems:
            print(f"- {plan} / {NAMES[t]}: errors {json.dumps(v['err'])}"
                  + (f"; {'; '.join(v['notes'])}" if v["notes"] else ""))
    else:
        print("No errors, no time limits reached, every accepted message reached its mailbox "
              "(relay plans: the relay sink).")


if __name__ == "__main__":
    main()
