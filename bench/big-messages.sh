#!/usr/bin/env bash
# Peak memory of `golub serve` while many sessions send large messages at once, and the
# message rates of the small and mid-size plans, for one or more Golub binaries
# interleaved on the same machine (e.g. before and after a change).
#
#   bench/big-messages.sh LABEL=path/to/golub [LABEL=path/to/golub ...]
#
# For every round and binary, each plan runs against a fresh server (empty data
# directory under $BENCH_DIR/big/LABEL) on 127.0.0.1:$PORT:
#   big25m   golub-bench --sessions 50 --messages 50 --size 25000000 --reuse
#            (50 messages of 25 MB at once); the figure is VmHWM, the peak resident
#            set of the server process, read from /proc/PID/status after the load
#   small4k  golub-bench --sessions 50 --messages 3000 (4 KB, a connection per message)
#   mid256k  golub-bench --sessions 10 --messages 300 --size 262144
# Output: one TSV row per run on stdout (round, label, plan, accepted, msgs/s, errors,
# the server's CPU milliseconds per accepted message (user + system, from the start of
# the load to 2 s after it, so local delivery counts too), VmHWM kB).
# $BENCH (golub-bench binary, default target/release/golub-bench), $ROUNDS (3),
# $PLANS ("big25m small4k mid256k").
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/golub-bench}
PORT=${PORT:-12535}
ROUNDS=${ROUNDS:-3}
PLANS=${PLANS:-"big25m small4k mid256k"}
REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$REPO/target/release/golub-bench}

log() { echo "big-messages: $*" >&2; }

start() { # label binary
    local d=$BENCH_DIR/big/$1
    rm -rf "$d"
    mkdir -p "$d/data"
    cat >"$d/golub.toml" <<EOF
hostname = "golub.bench.localdomain"
data_dir = "$d/data"

[listen]
smtp = ["127.0.0.1:$PORT"]
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []

[limits]
max_connections = 20000
max_connections_per_ip = 20000
EOF
    local g=("$2" --config "$d/golub.toml")
    "${g[@]}" domain add example.org >/dev/null
    "${g[@]}" user add user@example.org --password bench >/dev/null
    (ulimit -n "$(ulimit -Hn)"; exec setsid "${g[@]}" serve >"$d/stdout.log" 2>"$d/stderr.log" </dev/null) &
    echo $! >"$d/pid"
    for _ in $(seq 1 100); do
        if python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$PORT),1); sys.exit(0 if s.recv(3)==b'220' else 1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "golub ($1) did not start"; exit 1
}

stop() { # label
    local f=$BENCH_DIR/big/$1/pid p
    p=$(cat "$f")
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p"
    rm -f "$f"
}

hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# CPU time (user + system) of a process so far, in clock ticks: less sensitive than a
# rate to other load on a shared machine.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_plan() { # label plan
    local args
    case $2 in
        big25m) args=(--sessions 50 --messages 50 --size 25000000 --reuse --io-timeout 120) ;;
        small4k) args=(--sessions 50 --messages 3000) ;;
        mid256k) args=(--sessions 10 --messages 300 --size 262144) ;;
        *) log "unknown plan $2"; exit 1 ;;
    esac
    "$BENCH" smtp --addr "127.0.0.1:$PORT" --to user@example.org --json "${args[@]}"
}

printf 'round\tlabel\tplan\taccepted\tmsgs_per_s\terrors\tcpu_ms_per_msg\tvmhwm_kb\n'
for round in $(seq 1 "$ROUNDS"); do
    for plan in $PLANS; do
        for target in "$@"; do
            label=${target%%=*}
            bin=${target#*=}
            start "$label" "$bin"
            pid=$(cat "$BENCH_DIR/big/$label/pid")
            cpu0=$(cpu_ticks "$pid")
            json=$(run_plan "$label" "$plan")
            sleep 2 # local delivery of what was accepted, inside the peak too
            peak=$(hwm "$pid")
            cpu=$(( $(cpu_ticks "$pid") - cpu0 ))
            stop "$label"
            rate=$(python3 -c 'import json,sys,os; j=json.loads(sys.argv[1]); n=max(j["accepted"],1); print(j["accepted"], round(j["msgs_per_s"],1), sum(j["errors"].values()), round(int(sys.argv[2])*1000/os.sysconf("SC_CLK_TCK")/n, 3), sep="\t")' "$json" "$cpu")
            printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "$plan" "$rate" "$peak"
        done
    done
done
