#!/usr/bin/env bash
# Runs every benchmark plan against Golub and each peer started by bench/peers.sh,
# interleaved (golub, postfix, opensmtpd, smtp-sink, then the next plan, ...) for
# $ROUNDS rounds, and prints per plan and target the median msgs/s and Golub's ratio.
#
#   bench/peers.sh start && bench/run.sh | tee out.md && bench/peers.sh stop
#
# Environment: ROUNDS (3), SCALE (1: multiplies every message count), TIME_LIMIT (15 s,
# per load), TARGETS ("golub postfix opensmtpd sink"), IDLE_CONNS (10000), BENCH_DIR,
# ONLY (regex of SMTP plan names to run), POP3 (1; 0 skips the POP3 plans), POP3_MESSAGES
# (10000 per maildrop), POP3_ROUNDS (2 per session and load), RELAY_SINK_PORT (12529),
# IMAP (0; 1 appends the IMAP plans of bench/imap.sh against Dovecot, which starts both
# servers itself), IMAP_PLANS ("mix big idle").
#
# The relay plans (gen "relay") send to user@relay.test, which Golub and Postfix relay to
# a second smtp-sink (bench/peers.sh); they run against golub and postfix only and count
# at that sink: messages per second from the start of the load until the sink has
# counted the last one, the accept-side rate, and the connections the sink saw.
set -uo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/golub-bench}
GOLUB_PORT=${GOLUB_PORT:-12525}
POSTFIX_PORT=${POSTFIX_PORT:-12526}
OSMTPD_PORT=${OSMTPD_PORT:-12527}
SINK_PORT=${SINK_PORT:-12528}
RELAY_SINK_PORT=${RELAY_SINK_PORT:-12529}
RELAY_COUNTS=$BENCH_DIR/relaysink/counts
CLOSE_TIMEOUT=${CLOSE_TIMEOUT:-30}   # relay plans: wait for the relay's connections to end
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-1}
TIME_LIMIT=${TIME_LIMIT:-15}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-180}
TARGETS=${TARGETS:-golub postfix opensmtpd sink}
IDLE_CONNS=${IDLE_CONNS:-10000}
GOLUB_POP3_PORT=${GOLUB_POP3_PORT:-12110}
DOVECOT_PORT=${DOVECOT_PORT:-12111}
POP3=${POP3:-1}                      # 0: no POP3 plans
IMAP=${IMAP:-0}                      # 1: also bench/imap.sh's plans
IMAP_PLANS=${IMAP_PLANS:-mix big idle}
POP3_MESSAGES=${POP3_MESSAGES:-10000} # per maildrop (times SCALE)
POP3_ROUNDS=${POP3_ROUNDS:-2}        # rounds per POP3 session in one load
ONLY=${ONLY:-}                       # a regex: run only the SMTP plans whose name matches
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BENCH=${GOLUB_BENCH_BIN:-$REPO/target/release/golub-bench}
RAW=$BENCH_DIR/results.tsv
LOGS=$BENCH_DIR/logs

# Plans: name | generator | sessions | messages | rcpts | size | golub-bench flags / smtp-source flags | label
# Message counts are small on purpose (a full run is ~15 min on 2 cores); SCALE raises them.
PLANS=(
    "conn1|gb|1|500|1|4096||1 session, new connection per message, 4 KB"
    "conn10|gb|10|2000|1|4096||10 sessions, new connection per message, 4 KB"
    "conn50|gb|50|3000|1|4096||50 sessions, new connection per message, 4 KB"
    "conn200|gb|200|3000|1|4096||200 sessions, new connection per message, 4 KB"
    "src50|ss|50|1500|1|4096||50 sessions, new connection per message, 4 KB (smtp-source)"
    "reuse50|gb|50|4000|1|4096|--reuse|50 sessions, reused connections, 4 KB"
    "pipe50|gb|50|4000|1|4096|--reuse --pipelining|50 sessions, reused connections + PIPELINING, 4 KB"
    "srcreuse50|ss|50|1500|1|4096|-d|50 sessions, reused connections, 4 KB (smtp-source -d)"
    "rcpt10|gb|10|500|10|4096||10 sessions, new connection, 10 recipients per message, 4 KB"
    "big256k|gb|10|300|1|262144||10 sessions, new connection per message, 256 KB"
    "e2e50|e2e|50|3000|1|4096||end to end: 50 sessions, new connection, 4 KB, until the last is in the mailbox"
    "relay50|relay|50|5000|1|4096||relay: 50 sessions, new connection per message, 4 KB to user@relay.test, until the sink counted the last"
)

port_of() {
    case $1 in golub) echo "$GOLUB_PORT" ;; postfix) echo "$POSTFIX_PORT" ;;
    opensmtpd) echo "$OSMTPD_PORT" ;; sink) echo "$SINK_PORT" ;; esac
}
# how to count a target's mailboxes (mailcount.py kind and path); sink stores nothing
store_of() {
    case $1 in golub) echo "golub $BENCH_DIR/golub/data" ;;
    postfix) echo "maildir $BENCH_DIR/postfix/maildir" ;;
    opensmtpd) echo "maildir $BENCH_DIR/opensmtpd/maildir" ;;
    *) echo "" ;; esac
}
# where a plan's messages are counted: the target's mailboxes, or for the relay plans
# the relay sink's counter
store_for() { # target gen
    if [[ $2 == relay ]]; then echo "sink $RELAY_COUNTS"; else store_of "$1"; fi
}
now() { date +%s.%N; }
count() { # target [gen]
    local s
    s=$(store_for "$1" "${2:-}")
    [[ -z $s ]] && { echo 0; return; }
    # shellcheck disable=SC2086
    python3 "$HERE/mailcount.py" count $s
}
# waits until the target's mailboxes hold $2 messages; prints the count reached
drain() { # target expected [gen]
    local s
    s=$(store_for "$1" "${3:-}")
    [[ -z $s ]] && { echo "$2 0"; return 0; }
    # shellcheck disable=SC2086
    python3 "$HERE/mailcount.py" wait $s "$2" "$DRAIN_TIMEOUT"
}
# relay plans: connections to the relay sink still open (counted at the client side)
relay_conns_open() {
    ss -Htn state established "( dport = :$RELAY_SINK_PORT )" | wc -l
}
# waits until no connection to the relay sink is open (both relays close idle ones
# after 2 s); prints the seconds waited
relay_close_wait() {
    local t0 i
    t0=$(now)
    for ((i = 0; i < CLOSE_TIMEOUT * 10; i++)); do
        (($(relay_conns_open) == 0)) && break
        sleep 0.1
    done
    python3 -c "print(f'{$(now)-$t0:.1f}')"
}
jfield() { # json key
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=d.get(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$1" "$2"
}

# One load against one target; appends a line to $RAW:
# round plan target msgs_per_s accepted errors p50_ms p99_ms drain_s note [relay]
# (relay: JSON of the relay plans' accept-side msgs/s and the sink's connections)
run_one() { # round plan-spec target
    local round=$1 spec=$2 target=$3
    local name gen sessions messages rcpts size flags label
    IFS='|' read -r name gen sessions messages rcpts size flags label <<<"$spec"
    messages=$((messages * SCALE))
    local port addr before t0 t1 out rc rate accepted errors p50 p99 note="" drained waited
    port=$(port_of "$target")
    addr=127.0.0.1:$port
    if [[ $gen == e2e && $target == sink ]]; then return; fi
    if [[ $gen == relay && $target != golub && $target != postfix ]]; then return; fi
    local sess_before="" relay=""
    if [[ $gen == relay ]]; then
        # no relay connection may be left from the last load: the sink counts a
        # connection when it ends
        relay_close_wait >/dev/null
        sess_before=$(python3 "$HERE/mailcount.py" count sink-sessions "$RELAY_COUNTS")
    fi
    before=$(count "$target" "$gen")
    local log=$LOGS/r$round-$name-$target poller=""
    if [[ $gen == e2e || $gen == relay ]]; then
        # end to end: a poller started before the load notes when the last planned
        # message is in the mailboxes (it is ended below if not all were accepted)
        # shellcheck disable=SC2046
        python3 "$HERE/mailcount.py" wait $(store_for "$target" "$gen") $((before + messages * rcpts)) \
            $((TIME_LIMIT + DRAIN_TIMEOUT)) >"$log.e2e" &
        poller=$!
        sleep 0.3 # let python start and take its first count
    fi
    t0=$(now)
    if [[ $gen == ss ]]; then
        # smtp-source: -l is the body length (it adds ~150 bytes of headers); it has no
        # time limit of its own, so timeout bounds it. It stops at the first bad reply.
        # shellcheck disable=SC2086
        timeout $((TIME_LIMIT * 4)) smtp-source $flags -s "$sessions" -m "$messages" -l "$size" \
            -f bench@example.org -t user@example.org -M bench.example "$addr" \
            >"$log.out" 2>"$log.err"
        rc=$?
        t1=$(now)
        if ((rc == 0)); then accepted=$messages; errors="{}"; else
            accepted=$(($(count "$target") - before)); errors="{\"exit\":$rc}"
            [[ $target == sink ]] && accepted=0
        fi
        rate=$(python3 -c "print(f'{$accepted/($t1-$t0):.1f}')")
        p50=""; p99=""
    else
        local to=user@example.org
        ((rcpts > 1)) && to='user{n}@example.org'
        [[ $gen == relay ]] && to=user@relay.test
        # shellcheck disable=SC2086
        out=$("$BENCH" smtp --addr "$addr" --sessions "$sessions" --messages "$messages" \
            --size "$size" --rcpts "$rcpts" --to "$to" $flags --time-limit "$TIME_LIMIT" \
            --json 2>"$log.err")
        rc=$?
        t1=$(now)
        echo "$out" >"$log.out"
        if [[ -z $out ]]; then
            rate=0; accepted=0; errors="{\"run\":\"$(head -c 120 "$log.err" | tr '\n\t' '  ')\"}"; p50=""; p99=""
        else
            rate=$(jfield "$out" msgs_per_s); accepted=$(jfield "$out" accepted)
            errors=$(jfield "$out" errors); p50=$(jfield "$out" p50_ms); p99=$(jfield "$out" p99_ms)
            [[ $(jfield "$out" stopped) != None ]] && note="stopped:$(jfield "$out" stopped)"
        fi
    fi
    # wait until everything accepted is in the mailboxes, so that no target's delivery
    # backlog runs during the next target's load (for e2e this is the measurement)
    local reached=""
    if [[ -n $poller ]]; then
        if ((accepted == messages)); then
            wait "$poller"
            read -r drained waited reached <"$log.e2e"
            waited=$(python3 -c "print(f'{max(0.0, $reached - $t1):.3f}')")
        else
            kill "$poller" 2>/dev/null; wait "$poller" 2>/dev/null
            reached=""
        fi
    fi
    [[ -z $reached ]] && read -r drained waited reached < <(drain "$target" $((before + accepted * rcpts)) "$gen")
    if ((drained < before + accepted * rcpts)); then
        note="$note drain-timeout:$((drained - before))/$((accepted * rcpts))"
    fi
    local accept_rate=$rate
    if [[ $gen == e2e || $gen == relay ]]; then
        # from the start of the load until the last message was in a mailbox (relay:
        # counted by the sink)
        rate=$(python3 -c "print(f'{$accepted/(max($t1, $reached)-$t0):.1f}')")
    fi
    if [[ $gen == relay ]]; then
        # the connections the sink saw for this load, once all of them have ended
        local closed sess_after
        closed=$(relay_close_wait)
        sess_after=$(python3 "$HERE/mailcount.py" count sink-sessions "$RELAY_COUNTS")
        relay="{\"accept_msgs_per_s\": $accept_rate, \"sink_conns\": $((sess_after - sess_before)), \"close_wait_s\": $closed, \"still_open\": $(relay_conns_open)}"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$target" "$rate" \
        "$accepted" "$errors" "$p50" "$p99" "$waited" "$note" "$relay" >>"$RAW"
    printf '  round %s %-10s %-9s %8s msgs/s  accepted %-5s errors %s drain %ss %s %s\n' \
        "$round" "$name" "$target" "$rate" "$accepted" "$errors" "$waited" "$note" "$relay" >&2
}

golub_pid() { cat "$BENCH_DIR/golub/pid"; }
osmtpd_pids() { # the master and its children
    local p
    p=$(cat "$BENCH_DIR/opensmtpd/pid")
    echo "$p" $(ps -o pid= --ppid "$p")
}

# ------------------------------------------------------------------ conditions
mkdir -p "$LOGS"
: >"$RAW"
for t in $TARGETS; do
    python3 - "$(port_of "$t")" <<'EOF' || { echo "run: $t is not up on $(port_of "$t"); run bench/peers.sh start" >&2; exit 1; }
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2); s.settimeout(5)
assert s.recv(512).startswith(b"220")
EOF
done

if [[ $POP3 == 1 ]]; then
    for p in "$GOLUB_POP3_PORT" "$DOVECOT_PORT"; do
        python3 - "$p" <<'EOF' || { echo "run: no POP3 server on $p; run bench/peers.sh start (or POP3=0)" >&2; exit 1; }
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2); s.settimeout(5)
assert s.recv(512).startswith(b"+OK")
EOF
    done
fi

echo "# Golub benchmark run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "## Conditions"
echo
echo '```'
echo "nproc: $(nproc)"
free -g | sed 's/^/free -g: /'
df -h "$BENCH_DIR" | sed 's/^/df -h: /'
echo "kernel: $(uname -srvm)"
echo "debian: $(cat /etc/debian_version)"
echo "golub: $("$(dirname "$BENCH")/golub" --version 2>/dev/null), release binary built $(date -u -r "$(dirname "$BENCH")/golub" +%FT%TZ); repo HEAD now $(git -C "$REPO" rev-parse --short HEAD)"
echo "postfix: $(dpkg-query -W -f '${Version}' postfix 2>/dev/null)"
echo "opensmtpd: $(ls "$BENCH_DIR"/opensmtpd-pkg/deb/ 2>/dev/null | sed 's/opensmtpd_//; s/_amd64.deb//')"
echo "python3: $(python3 -V 2>&1)"
echo "dovecot: $(dovecot --version 2>/dev/null)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rounds: $ROUNDS, scale: $SCALE, time limit per load: ${TIME_LIMIT}s, targets: $TARGETS"
echo '```'
echo

# ------------------------------------------------------------------ physical limits
echo "## Disk flush rate (the data disk, $BENCH_DIR)"
echo
echo '```'
python3 "$HERE/fsync-rate.py" "$BENCH_DIR/fsync" 3 | sed 's/^append/append+fdatasync ops\/s:/; s/^per-file/create+fsync+dir fsync ops\/s:/'
echo '```'
echo

# ------------------------------------------------------------------ relay sink
# The relay plans count at a second smtp-sink; its own rate, with smtp-source reusing
# connections as both relays do (10 sessions, 4 KB), shows it is not what they measure.
# smtp-source runs on the same 2 cores, so this is a lower bound of what the sink takes.
RELAY_PLANS=0
for spec in "${PLANS[@]}"; do
    IFS='|' read -r pname pgen _ <<<"$spec"
    [[ -n $ONLY && ! $pname =~ ^($ONLY)$ ]] && continue
    [[ $pgen == relay ]] && RELAY_PLANS=1
done
if ((RELAY_PLANS)); then
    python3 - "$RELAY_SINK_PORT" <<'EOF' || { echo "run: no relay sink on $RELAY_SINK_PORT; run bench/peers.sh start" >&2; exit 1; }
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2); s.settimeout(5)
assert s.recv(512).startswith(b"220")
EOF
    echo "## The relay sink's own rate (smtp-source -d -s 10, 4 KB, 20000 messages, straight to it)"
    echo
    echo '```'
    for i in 1 2; do
        n0=$(python3 "$HERE/mailcount.py" count sink "$RELAY_COUNTS")
        t0=$(now)
        timeout 120 smtp-source -d -s 10 -m $((20000 * SCALE)) -l 4096 -f bench@example.org \
            -t user@relay.test -M bench.example "127.0.0.1:$RELAY_SINK_PORT" >/dev/null 2>&1
        t1=$(now)
        n1=$(python3 "$HERE/mailcount.py" count sink "$RELAY_COUNTS")
        python3 -c "print(f'try $i: {$n1 - $n0} messages counted by the sink, {($n1 - $n0)/($t1 - $t0):.0f} msgs/s')"
    done
    echo '```'
    echo
fi

RSS_IDLE=$("$HERE/rss.sh" "$(golub_pid)")

# ------------------------------------------------------------------ plans
START=$(now)
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    for spec in "${PLANS[@]}"; do
        [[ -n $ONLY && ! ${spec%%|*} =~ ^($ONLY)$ ]] && continue
        for t in $TARGETS; do
            run_one "$round" "$spec" "$t"
        done
    done
done
END=$(now)

# ------------------------------------------------------------------ memory
RSS_AFTER=$("$HERE/rss.sh" "$(golub_pid)")
IDLE_GOLUB=$(ulimit -n "$(ulimit -Hn)"; python3 "$HERE/idle-conns.py" "127.0.0.1:$GOLUB_PORT" "$IDLE_CONNS" "$(golub_pid)" 3 2>"$LOGS/idle-golub.err")
IDLE_OSMTPD=""
if [[ " $TARGETS " == *" opensmtpd "* ]]; then
    # OpenSMTPD runs all SMTP sessions in one process ("pony express"): report that one's
    # RSS and the sum over its processes
    PONY=$(pgrep -f 'smtpd: pony express' | head -1)
    OS_IDLE=$("$HERE/rss.sh" $(osmtpd_pids))
    IDLE_OSMTPD=$(ulimit -n "$(ulimit -Hn)"; python3 "$HERE/idle-conns.py" "127.0.0.1:$OSMTPD_PORT" "$IDLE_CONNS" "$PONY" 3 2>"$LOGS/idle-opensmtpd.err")
fi

# ------------------------------------------------------------------ POP3
# Golub's POP3 against Dovecot's, both serving maildrops filled over SMTP: Golub its own
# store, Dovecot the Maildirs of Postfix's instance. pop0..pop9 get POP3_MESSAGES each
# (one SMTP transaction per 10 copies: --rcpts 10 to pop{n}); no SMTP plan sends to them.
# RFC 1939 locks a maildrop for its session (Golub answers a second login -ERR [IN-USE]),
# so concurrent sessions each take their own maildrop: pop1 is one session on pop0,
# pop10 ten sessions on pop0..pop9 (ten golub-bench processes started together; the
# rate is their messages over the wall time from the first start to the last exit).
# Every session does POP3_ROUNDS rounds of: connect, USER/PASS, STAT, RETR 1..n, QUIT.
POP3_RAW=$BENCH_DIR/pop3.tsv
pop3_port() { case $1 in golub) echo "$GOLUB_POP3_PORT" ;; dovecot) echo "$DOVECOT_PORT" ;; esac; }

pop3_fill() { # smtp-target: fills pop0..pop9 and waits until they are in the mailboxes
    local t=$1 before n
    before=$(count "$t")
    n=$((POP3_MESSAGES * SCALE))
    "$BENCH" smtp --addr "127.0.0.1:$(port_of "$t")" --sessions 20 --reuse --messages "$n" \
        --rcpts 10 --to 'pop{n}@example.org' --time-limit 900 --json \
        >"$LOGS/pop3-fill-$t.out" 2>"$LOGS/pop3-fill-$t.err"
    # shellcheck disable=SC2046
    python3 "$HERE/mailcount.py" wait $(store_of "$t") $((before + n * 10)) 900 >"$LOGS/pop3-fill-$t.count"
}

pop3_stat() { # port user: logs in, STAT (and UIDL, which makes Dovecot index the Maildir), prints the count
    python3 - "$1" "$2" <<'EOF'
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=600)
p.user(sys.argv[2]); p.pass_("bench")
n = p.stat()[0]
p.uidl()
p.quit()
print(n)
EOF
}

pop3_one() { # round plan sessions target
    local round=$1 name=$2 sessions=$3 target=$4 port log i t0 t1
    port=$(pop3_port "$target")
    log=$LOGS/r$round-$name-$target
    t0=$(now)
    for ((i = 0; i < sessions; i++)); do
        "$BENCH" pop3 --addr "127.0.0.1:$port" --sessions 1 --rounds "$POP3_ROUNDS" \
            --user "pop$i@example.org" --password bench --time-limit 600 --json \
            >"$log.$i.out" 2>"$log.$i.err" &
    done
    wait
    t1=$(now)
    python3 - "$round" "$name" "$target" "$t0" "$t1" "$log" "$sessions" >>"$POP3_RAW" <<'EOF'
import json, sys
rnd, name, target, t0, t1, log, sessions = sys.argv[1:]
wall = float(t1) - float(t0)
msgs = byts = done = 0
errors, p50, p99 = {}, [], []
for i in range(int(sessions)):
    try:
        d = json.loads(open(f"{log}.{i}.out").read())
    except ValueError:
        errors["run"] = errors.get("run", 0) + 1
        continue
    msgs += d["messages"]; byts += d["bytes"]; done += d["rounds_done"]
    for k, v in d["errors"].items():
        errors[k] = errors.get(k, 0) + v
    p50.append(d["p50_ms"]); p99.append(d["p99_ms"])
# the per-round latency of the slowest session
print("\t".join([rnd, name, target, f"{msgs / wall:.1f}", f"{byts / 1e6 / wall:.2f}", str(msgs),
                 str(done), json.dumps(errors), f"{max(p50, default=0):.0f}",
                 f"{max(p99, default=0):.0f}", f"{wall:.3f}"]))
EOF
    tail -1 "$POP3_RAW" | awk -F'\t' '{printf "  round %s %-6s %-8s %9s msgs/s %7s MB/s  messages %s rounds %s errors %s\n", $1, $2, $3, $4, $5, $6, $7, $8}' >&2
}

POP3_TABLE=""
if [[ $POP3 == 1 ]]; then
    : >"$POP3_RAW"
    echo "POP3: filling pop0..pop9 with $((POP3_MESSAGES * SCALE)) messages each in golub and postfix" >&2
    FILL_T0=$(now)
    pop3_fill golub &
    pop3_fill postfix &
    wait
    FILL_S=$(python3 -c "print(f'{$(now)-$FILL_T0:.0f}')")
    POP3_COUNTS=""
    for t in golub dovecot; do
        for i in $(seq 0 9); do
            POP3_COUNTS+="$t pop$i: $(pop3_stat "$(pop3_port "$t")" "pop$i@example.org" 2>&1 | tail -1)"$'\n'
        done
    done
    for round in $(seq 1 "$ROUNDS"); do
        echo "POP3 round $round of $ROUNDS" >&2
        for plan in "pop1 1" "pop10 10"; do
            for t in golub dovecot; do
                # shellcheck disable=SC2086
                pop3_one "$round" $plan "$t"
            done
        done
    done
    POP3_TABLE=$(python3 "$HERE/summary.py" --pop3 "$POP3_RAW")
fi

echo "## Memory"
echo
echo '```'
echo "golub RSS idle, before any load: $RSS_IDLE kB"
echo "golub RSS idle, after all plans: $RSS_AFTER kB"
echo "golub with $IDLE_CONNS idle SMTP connections: $IDLE_GOLUB"
[[ -n $IDLE_OSMTPD ]] && echo "opensmtpd RSS idle (all processes): $OS_IDLE kB; with $IDLE_CONNS idle connections, its session process: $IDLE_OSMTPD"
echo '```'
echo

echo "## Results (median of $ROUNDS rounds; plans took $(python3 -c "print(f'{$END-$START:.0f}')") s)"
echo
python3 "$HERE/summary.py" "$RAW" "${PLANS[@]}"
echo
echo "Raw rows (round plan target msgs/s accepted errors p50_ms p99_ms drain_s note relay): $RAW"
if [[ $POP3 == 1 ]]; then
    echo
    echo "## POP3 (median of $ROUNDS rounds; each session $POP3_ROUNDS rounds of RETR 1..n, no DELE)"
    echo
    echo "Maildrops pop0..pop9 filled over SMTP ($((POP3_MESSAGES * SCALE)) x 10 recipients per server, ${FILL_S} s for both at once); STAT of each before the rounds (it also makes Dovecot index them):"
    echo
    echo '```'
    printf '%s' "$POP3_COUNTS"
    echo '```'
    echo
    echo "$POP3_TABLE"
    echo
    echo "Raw rows (round plan target msgs/s MB/s messages rounds_done errors p50_ms p99_ms wall_s): $POP3_RAW"
fi
if [[ $IMAP == 1 ]]; then
    echo
    # shellcheck disable=SC2086
    "$HERE/imap.sh" $IMAP_PLANS | sed 's/^# /## IMAP: /'
fi
