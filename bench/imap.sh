#!/usr/bin/env bash
# IMAP: Golub against Dovecot 2.3 on 127.0.0.1, in one run. Starts both servers with
# their own configs under $BENCH_DIR (Golub: the release binary, imap listener only;
# Dovecot: `dovecot -c`, Maildir, as the vmail user), loads the same generated mail into
# both by APPEND (imap-fill.py), and prints markdown:
#
#   mix   golub-bench imap, the same options against each, interleaved for $ROUNDS
#         rounds: commands/s overall and per command, p50/p99, errors, Golub/Dovecot;
#         peak memory and CPU seconds of each server during its loads
#   big   one folder of $BIG_MESSAGES messages: SELECT, FETCH 1:* (UID FLAGS) and
#         UID SEARCH SUBJECT <word>, one session, $BIG_REPEATS times each
#   idle  $IDLE_SESSIONS sessions in IDLE on each server; its memory once all idle
#
#   bench/imap.sh [mix] [idle] [big]      (all three, in this order, without arguments)
#
# Environment: BENCH_DIR (/tmp/golub-imap-bench), GOLUB_IMAP_PORT (12143),
# DOVECOT_IMAP_PORT (12144), MESSAGES (5000 in the mix mailbox), SESSIONS (20),
# SECONDS_PER_LOAD (20), ROUNDS (3), MIX_FLAGS (extra golub-bench imap flags),
# BIG_MESSAGES (100000), BIG_REPEATS (5), IDLE_SESSIONS (1000), IDLE_HOLD (20 s),
# DOVECOT_PW_SCHEME (ARGON2ID, as Golub stores; PLAIN makes Dovecot's LOGIN cheap),
# BIG_DOVECOT_FILL (maildir: the big folder's files are written into Dovecot's Maildir
# directly, see imap-fill.py; imap: by APPEND, which takes most of an hour),
# GOLUB_ENV (variables for `golub serve` only, e.g. MALLOC_ARENA_MAX=2),
# GOLUB_BIN, GOLUB_BENCH_BIN (default: target/release of this repo), KEEP=1 leaves
# both servers running at the end. Every measured load holds /tmp/golub-cargo.lock so
# that no compiler runs during it.
set -uo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/golub-imap-bench}
GOLUB_IMAP_PORT=${GOLUB_IMAP_PORT:-12143}
DOVECOT_IMAP_PORT=${DOVECOT_IMAP_PORT:-12144}
MESSAGES=${MESSAGES:-5000}
SESSIONS=${SESSIONS:-20}
SECONDS_PER_LOAD=${SECONDS_PER_LOAD:-20}
ROUNDS=${ROUNDS:-3}
MIX_FLAGS=${MIX_FLAGS:-}
BIG_MESSAGES=${BIG_MESSAGES:-100000}
BIG_REPEATS=${BIG_REPEATS:-5}
BIG_DOVECOT_FILL=${BIG_DOVECOT_FILL:-maildir}
GOLUB_ENV=${GOLUB_ENV:-}
IDLE_SESSIONS=${IDLE_SESSIONS:-1000}
IDLE_HOLD=${IDLE_HOLD:-20}
DOVECOT_PW_SCHEME=${DOVECOT_PW_SCHEME:-ARGON2ID}
LOCK=${LOCK:-/tmp/golub-cargo.lock}
PASSWORD=bench
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
GOLUB_BIN=${GOLUB_BIN:-$TARGET_DIR/release/golub}
BENCH=${GOLUB_BENCH_BIN:-$TARGET_DIR/release/golub-bench}
NOFILE=$(ulimit -Hn)
LOGS=$BENCH_DIR/logs
# users: mix (the mix loads and the IDLE sessions), big (the big folder)
USERS="mix big"

log() { echo "imap.sh: $*" >&2; }
now() { date +%s.%N; }
py() { python3 -c "$1"; }

port_of() { case $1 in golub) echo "$GOLUB_IMAP_PORT" ;; dovecot) echo "$DOVECOT_IMAP_PORT" ;; esac; }
user_of() { # target name
    case $1 in golub) echo "$2@example.org" ;; dovecot) echo "$2" ;; esac
}
pid_of() { # the process whose tree is measured
    case $1 in golub) cat "$BENCH_DIR/golub/pid" ;; dovecot) cat "$BENCH_DIR/dovecot/run/master.pid" ;; esac
}

wait_imap() { # port
    local i
    for i in $(seq 1 100); do
        python3 - "$1" <<'EOF' 2>/dev/null && return 0
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.settimeout(5)
assert s.recv(512).startswith(b"* OK")
EOF
        sleep 0.2
    done
    log "nothing answers IMAP on $1"
    return 1
}

# ---------------------------------------------------------------- golub
start_golub() {
    local d=$BENCH_DIR/golub
    rm -rf "$d"
    mkdir -p "$d/data"
    cat >"$d/golub.toml" <<EOF
hostname = "golub.bench.localdomain"
data_dir = "$d/data"

[listen]
smtp = []
submission = []
submissions = []
imap = ["127.0.0.1:$GOLUB_IMAP_PORT"]
imaps = []
pop3 = []
pop3s = []

[auth]
# golub-bench logs in with LOGIN and does no STARTTLS
allow_plaintext = true

[limits]
# every session, and the 1,000 IDLE ones, come from 127.0.0.1
max_connections = 20000
max_connections_per_ip = 20000
EOF
    local g=("$GOLUB_BIN" --config "$d/golub.toml")
    "${g[@]}" domain add example.org >/dev/null
    for u in $USERS; do "${g[@]}" user add "$u@example.org" --password "$PASSWORD" >/dev/null; done
    # shellcheck disable=SC2086
    (ulimit -n "$NOFILE"; exec env $GOLUB_ENV setsid "${g[@]}" serve >"$d/stdout.log" 2>"$d/stderr.log" </dev/null) &
    echo $! >"$d/pid"
    wait_imap "$GOLUB_IMAP_PORT" || return 1
    log "golub pid $(cat "$d/pid") on 127.0.0.1:$GOLUB_IMAP_PORT"
}

stop_golub() {
    local f=$BENCH_DIR/golub/pid p
    [[ -f $f ]] || return 0
    p=$(cat "$f")
    if kill -0 "$p" 2>/dev/null; then
        kill -TERM "$p"
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p"
    fi
    rm -f "$f"
}

# ---------------------------------------------------------------- dovecot
# A private instance: IMAP only, plaintext LOGIN, no TLS, Maildir under $d/mail as vmail,
# users in a passwd-file with $DOVECOT_PW_SCHEME hashes. The limits are raised for 1,000+
# sessions from one address, and the auth cache is on as Golub's; everything else is Dovecot's default (indexes in the
# Maildir, mail_fsync = optimized, high-security login processes).
start_dovecot() {
    local d=$BENCH_DIR/dovecot uid gid hash
    getent passwd vmail >/dev/null ||
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail
    uid=$(id -u vmail) gid=$(id -g vmail)
    rm -rf "$d"
    mkdir -p "$d/run" "$d/state" "$d/mail"
    chown vmail:vmail "$d/mail"
    hash=$(doveadm pw -s "$DOVECOT_PW_SCHEME" -p "$PASSWORD")
    : >"$d/passwd"
    for u in $USERS; do echo "$u:$hash:$uid:$gid::$d/mail/$u::" >>"$d/passwd"; done
    chgrp dovecot "$d/passwd"
    chmod 640 "$d/passwd"
    cat >"$d/dovecot.conf" <<EOF
instance_name = dovecot-imap-bench
base_dir = $d/run
state_dir = $d/state
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Golub remembers a successful password check for 60 s (auth/cache.rs); the same here,
# so neither pays an argon2 hash per LOGIN of the same user (Dovecot's default is no cache)
auth_cache_size = 10M
auth_cache_ttl = 60 s
log_path = $d/dovecot.log
first_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:$d/mail/%u
# every session comes from 127.0.0.1 (the default allows 10 per user and address)
mail_max_userip_connections = 5000
# one imap process per session: room for the 1,000 IDLE sessions and the load
default_process_limit = 3000
default_client_limit = 20000
passdb {
  driver = passwd-file
  args = username_format=%u $d/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $d/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
    (ulimit -n "$NOFILE"; dovecot -c "$d/dovecot.conf" >&2) || return 1
    wait_imap "$DOVECOT_IMAP_PORT" || return 1
    log "dovecot $(dovecot --version | cut -d' ' -f1) pid $(cat "$d/run/master.pid") on 127.0.0.1:$DOVECOT_IMAP_PORT"
}

stop_dovecot() {
    local d=$BENCH_DIR/dovecot
    if [[ -f $d/dovecot.conf && -f $d/run/master.pid ]]; then
        dovecot -c "$d/dovecot.conf" stop >/dev/null 2>&1 || true
        for _ in $(seq 1 100); do [[ -f $d/run/master.pid ]] || break; sleep 0.1; done
    fi
}

stop_all() { stop_golub; stop_dovecot; }

# ---------------------------------------------------------------- loads
fill() { # target user count
    python3 "$HERE/imap-fill.py" "127.0.0.1:$(port_of "$1")" "$(user_of "$1" "$2")" "$PASSWORD" "$3"
}

# One golub-bench imap load against one target, under the lock, with the server's peak
# memory sampled and its CPU counted; prints one TSV row:
# target json peak_rss_kb peak_pss_kb procs cpu_s
load() { # target name golub-bench-args...
    local target=$1 name=$2
    shift 2
    local pid sampler c0 c1 out peak
    pid=$(pid_of "$target")
    python3 "$HERE/imap-mem.py" peak "$pid" 0.5 >"$LOGS/$name-$target.mem" &
    sampler=$!
    c0=$(python3 "$HERE/imap-mem.py" cpu "$pid")
    [[ $target == golub ]] && python3 "$HERE/imap-mem.py" threads "$pid" >"$LOGS/$name-$target.threads0"
    out=$(ulimit -n "$NOFILE"; flock "$LOCK" "$BENCH" imap --addr "127.0.0.1:$(port_of "$target")" \
        --password "$PASSWORD" --json "$@" 2>"$LOGS/$name-$target.err")
    c1=$(python3 "$HERE/imap-mem.py" cpu "$pid")
    [[ $target == golub ]] && python3 "$HERE/imap-mem.py" threads "$pid" >"$LOGS/$name-$target.threads1"
    kill -TERM "$sampler"
    wait "$sampler"
    read -r peak <"$LOGS/$name-$target.mem"
    echo "$out" >"$LOGS/$name-$target.json"
    printf '%s\t%s\t%s\t%s\n' "$target" "$out" "$peak" "$(py "print(f'{$c1 - $c0:.2f}')")" | tr ' ' '\t'
}

conditions() {
    echo "## Conditions"
    echo
    echo '```'
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/\s\+/ /g')"
    free -g | sed 's/^/free -g: /'
    df -h "$BENCH_DIR" | tail -1 | sed 's/^/df -h: /'
    echo "kernel: $(uname -srm)"
    echo "golub: $("$GOLUB_BIN" --version), release binary built $(date -u -r "$GOLUB_BIN" +%FT%TZ); repo HEAD $(git -C "$REPO" rev-parse --short HEAD)"
    echo "dovecot: $(dovecot --version)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo '```'
    echo
}

mix() {
    log "mix: filling $MESSAGES messages into each"
    echo "## Mix: $SESSIONS sessions, ${SECONDS_PER_LOAD}s per load, $ROUNDS rounds, $MESSAGES messages in INBOX at the start"
    echo
    echo '```'
    for t in golub dovecot; do fill "$t" mix "$MESSAGES"; done
    MIX_FILLED=1
    # untimed: one round each, so Dovecot has its index and cache before the loads
    for t in golub dovecot; do
        "$BENCH" imap --addr "127.0.0.1:$(port_of "$t")" --user "$(user_of "$t" mix)" --password "$PASSWORD" \
            --sessions 1 --rounds 1 --append-every 0 --json >/dev/null 2>&1
    done
    echo '```'
    echo
    local rows=$LOGS/mix.tsv
    : >"$rows"
    for r in $(seq 1 "$ROUNDS"); do
        for t in golub dovecot; do
            log "mix round $r $t"
            # shellcheck disable=SC2086
            load "$t" "mix-r$r" --user "$(user_of "$t" mix)" --sessions "$SESSIONS" \
                --seconds "$SECONDS_PER_LOAD" $MIX_FLAGS >>"$rows"
        done
    done
    python3 - "$rows" <<'EOF'
import json, statistics, sys
rows = {"golub": [], "dovecot": []}
for line in open(sys.argv[1]):
    t, j, rss, pss, procs, cpu = line.rstrip("\n").split("\t")
    rows[t].append((json.loads(j), int(rss), int(pss), int(procs), float(cpu)))
med = statistics.median
def rate(t, k=None):
    if k is None:
        return med(r[0]["commands_per_s"] for r in rows[t])
    return med(r[0]["kinds"].get(k, {}).get("per_s", 0) for r in rows[t])
def lat(t, k, q):
    return med(r[0]["kinds"].get(k, {}).get(q, 0) for r in rows[t])
def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"
print("| | Golub | Dovecot | Golub/Dovecot |")
print("|---|---|---|---|")
g, d = rate("golub"), rate("dovecot")
print(f"| commands/s, all (median of {len(rows['golub'])}) | {g:.0f} | {d:.0f} | {ratio(g, d)} |")
print(f"| each round's commands/s | {', '.join(str(round(r[0]['commands_per_s'])) for r in rows['golub'])} | "
      f"{', '.join(str(round(r[0]['commands_per_s'])) for r in rows['dovecot'])} | |")
kinds = sorted({k for t in rows for r in rows[t] for k in r[0]["kinds"]},
               key=lambda k: ["login", "select", "fetch_flags", "fetch_body", "search", "store", "append", "noop", "logout"].index(k))
for k in kinds:
    g, d = rate("golub", k), rate("dovecot", k)
    print(f"| {k}/s | {g:.1f} | {d:.1f} | {ratio(g, d)} |")
for k in kinds:
    print(f"| {k} p50 / p99 ms | {lat('golub', k, 'p50_ms'):.2f} / {lat('golub', k, 'p99_ms'):.2f} | "
          f"{lat('dovecot', k, 'p50_ms'):.2f} / {lat('dovecot', k, 'p99_ms'):.2f} | |")
for t in rows:
    errs = [r[0]["errors"] for r in rows[t]]
    rerr = [r[0]["round_errors"] for r in rows[t]]
    kerr = {}
    for r in rows[t]:
        for k, v in r[0]["kinds"].items():
            for e, n in v["errors"].items():
                kerr[f"{k} {e}"] = kerr.get(f"{k} {e}", 0) + n
    print(f"| errors {t} (per round; by command) | {errs} {kerr or ''} {[x for x in rerr if x] or ''} | | |")
g = round(med(r[2] for r in rows["golub"])); d = round(med(r[2] for r in rows["dovecot"]))
print(f"| peak PSS during a load, kB (all processes; Dovecot's peak count) | {g} | {d} ({max(r[3] for r in rows['dovecot'])} processes) | {ratio(g, d)} |")
g = round(med(r[1] for r in rows["golub"])); d = round(med(r[1] for r in rows["dovecot"]))
print(f"| peak RSS sum, kB | {g} | {d} | |")
gc = med(r[4] / max(1, r[0]["commands"]) * 1e3 for r in rows["golub"])
dc = med(r[4] / max(1, r[0]["commands"]) * 1e3 for r in rows["dovecot"])
print(f"| server CPU ms per command | {gc:.3f} | {dc:.3f} | {ratio(gc, dc)} |")
EOF
    echo
    local r
    for r in $(seq 1 "$ROUNDS"); do
        echo "Golub's CPU by thread, round $r: $(python3 "$HERE/imap-mem.py" threads-diff \
            "$LOGS/mix-r$r-golub.threads0" "$LOGS/mix-r$r-golub.threads1")"
        echo
    done
    echo "Raw golub-bench output: \`$LOGS/mix-r*-{golub,dovecot}.json\`."
    echo
}

big() {
    log "big: filling $BIG_MESSAGES messages into each"
    echo "## Big folder: $BIG_MESSAGES messages in one INBOX, one session, $BIG_REPEATS rounds of SELECT, FETCH 1:* (UID FLAGS), UID SEARCH SUBJECT <word>"
    echo
    echo '```'
    fill golub big "$BIG_MESSAGES"
    if [[ $BIG_DOVECOT_FILL == maildir ]]; then
        # mail_location is maildir:$d/mail/%u: the user's INBOX is that directory
        local md=$BENCH_DIR/dovecot/mail/big
        python3 "$HERE/imap-fill.py" --maildir "$md" "$BIG_MESSAGES"
        chown -R vmail:vmail "$md"
    else
        fill dovecot big "$BIG_MESSAGES"
    fi
    echo "golub data dir: $(du -sh "$BENCH_DIR/golub/data" | cut -f1); dovecot maildir: $(du -sh "$BENCH_DIR/dovecot/mail/big" | cut -f1)"
    echo '```'
    echo
    local rows=$LOGS/big.tsv
    : >"$rows"
    for t in golub dovecot; do
        log "big $t"
        # the first SELECT after the fill is timed on its own (Dovecot builds its index
        # and cache there), then the repeats
        load "$t" big-first --user "$(user_of "$t" big)" --sessions 1 --rounds 1 \
            --mix select,fetch_flags,search --seconds 600 --io-timeout 300 >>"$rows"
        load "$t" big --user "$(user_of "$t" big)" --sessions 1 --rounds "$BIG_REPEATS" \
            --mix select,fetch_flags,search --seconds 600 --io-timeout 300 >>"$rows"
    done
    python3 - "$rows" <<'EOF'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
first = {rows[0][0]: json.loads(rows[0][1]), rows[2][0]: json.loads(rows[2][1])}
rep = {rows[1][0]: (json.loads(rows[1][1]), rows[1]), rows[3][0]: (json.loads(rows[3][1]), rows[3])}
print("| ms | Golub | Dovecot | Golub/Dovecot |")
print("|---|---|---|---|")
for k in ["select", "fetch_flags", "search"]:
    g = first["golub"]["kinds"][k]["p50_ms"]; d = first["dovecot"]["kinds"][k]["p50_ms"]
    print(f"| first {k} after the fill | {g:.1f} | {d:.1f} | {g / d:.2f} |")
for k in ["select", "fetch_flags", "search"]:
    g = rep["golub"][0]["kinds"][k]; d = rep["dovecot"][0]["kinds"][k]
    print(f"| {k}, median of {g['ok']} (max) | {g['p50_ms']:.1f} ({g['max_ms']:.1f}) | {d['p50_ms']:.1f} ({d['max_ms']:.1f}) | {g['p50_ms'] / d['p50_ms']:.2f} |")
g = rep["golub"][0]["kinds"]; d = rep["dovecot"][0]["kinds"]
print(f"| FETCH 1:* responses; SEARCH hits per round | {g['fetch_flags']['results'] // g['fetch_flags']['ok']}; {g['search']['results'] // g['search']['ok']} | "
      f"{d['fetch_flags']['results'] // d['fetch_flags']['ok']}; {d['search']['results'] // d['search']['ok']} | |")
print(f"| errors | {rep['golub'][0]['errors']} | {rep['dovecot'][0]['errors']} | |")
print(f"| peak PSS kB during the repeats | {rep['golub'][1][3]} | {rep['dovecot'][1][3]} | |")
print(f"| server CPU s for the repeats | {rep['golub'][1][5]} | {rep['dovecot'][1][5]} | |")
EOF
    echo
}

idle_summary() { # target
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["idle_reached"], d["idle_at_end"], d["idle_errors"])' \
        "$LOGS/idle-$1.json" 2>/dev/null || echo "no report"
}

MIX_FILLED=0

idle() {
    if ((MIX_FILLED == 0)); then
        # run on its own: the same INBOX as the mix plan would leave behind
        echo '```'
        for t in golub dovecot; do fill "$t" mix "$MESSAGES"; done
        echo '```'
        echo
        MIX_FILLED=1
    fi
    echo "## IDLE: $IDLE_SESSIONS sessions logged in, INBOX selected, in IDLE"
    echo
    echo "| | Golub | Dovecot |"
    echo "|---|---|---|"
    local t pid before after err
    declare -A res
    for t in golub dovecot; do
        log "idle $t"
        pid=$(pid_of "$t")
        before=$(python3 "$HERE/imap-mem.py" now "$pid")
        err=$LOGS/idle-$t.err
        # golub-bench holds them $IDLE_HOLD s once all are in IDLE; memory is read halfway
        (ulimit -n "$NOFILE"; exec flock "$LOCK" "$BENCH" imap --addr "127.0.0.1:$(port_of "$t")" \
            --user "$(user_of "$t" mix)" --password "$PASSWORD" --sessions 0 \
            --idle "$IDLE_SESSIONS" --seconds "$IDLE_HOLD" --json \
            >"$LOGS/idle-$t.json" 2>"$err") &
        local gb=$! t0 reached="" conns
        t0=$(now)
        for _ in $(seq 1 3000); do
            grep -q "^idle: " "$err" 2>/dev/null && { reached=$(now); break; }
            kill -0 "$gb" 2>/dev/null || break
            sleep 0.1
        done
        sleep $((IDLE_HOLD / 2))
        after=$(python3 "$HERE/imap-mem.py" now "$pid")
        conns=$(ss -Htn state established "( sport = :$(port_of "$t") )" | wc -l)
        wait "$gb"
        res[$t]="$before|$after|$conns|${reached:+$(py "print(f'{$reached - $t0:.1f}')")}"
        log "idle $t: reached, at end, errors: $(idle_summary "$t")"
        sleep 2
    done
    local g d
    IFS='|' read -r gb0 ga gc gt <<<"${res[golub]}"
    IFS='|' read -r db0 da dc dt <<<"${res[dovecot]}"
    read -r gr gp gn <<<"$ga"; read -r dr dp dn <<<"$da"
    read -r gr0 gp0 _ <<<"$gb0"; read -r dr0 dp0 dn0 <<<"$db0"
    echo "| seconds until all were in IDLE (connect, LOGIN, SELECT, IDLE; 50 at a time) | ${gt:-never} | ${dt:-never} |"
    echo "| golub-bench's report (reached IDLE, still idling at the end, errors) | $(idle_summary golub) | $(idle_summary dovecot) |"
    echo "| established connections when measured | $gc | $dc |"
    echo "| RSS kB before (sum over processes) | $gr0 | $dr0 ($dn0 processes) |"
    echo "| RSS kB with all in IDLE (sum over processes) | $gr | $dr ($dn processes) |"
    echo "| PSS kB with all in IDLE (shared pages shared out) | $gp | $dp |"
    echo "| PSS kB per IDLE session, over the before figure | $(py "print(f'{($gp - $gp0) / $IDLE_SESSIONS:.1f}')") | $(py "print(f'{($dp - $dp0) / $IDLE_SESSIONS:.1f}')") |"
    echo
}

# ---------------------------------------------------------------- main
[[ -x $GOLUB_BIN && -x $BENCH ]] || {
    log "no $GOLUB_BIN or $BENCH: cargo build --release -p golub -p golub-bench"
    exit 1
}
PLANS=("$@")
((${#PLANS[@]})) || PLANS=(mix idle big)
mkdir -p "$BENCH_DIR"
stop_all
start_golub || exit 1
start_dovecot || { stop_all; exit 1; }
mkdir -p "$LOGS"
[[ ${KEEP:-0} == 1 ]] || trap stop_all EXIT
echo "# Golub IMAP benchmark, against Dovecot"
echo
conditions
for p in "${PLANS[@]}"; do
    case $p in
    mix | big | idle) "$p" ;;
    *) log "unknown plan $p (mix, big, idle)" ;;
    esac
done
