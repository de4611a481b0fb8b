#!/usr/bin/env bash
# Starts (or stops) the servers the benchmark compares, all on 127.0.0.1, each with
# its own config, ports and data under $BENCH_DIR (default /tmp/golub-bench):
#
#   golub      127.0.0.1:$GOLUB_PORT    (release binary, data in $BENCH_DIR/golub/data)
#   postfix    127.0.0.1:$POSTFIX_PORT  (own instance: postfix -c $BENCH_DIR/postfix/etc)
#   opensmtpd  127.0.0.1:$OSMTPD_PORT   (Debian's binary unpacked under $BENCH_DIR)
#   smtp-sink  127.0.0.1:$SINK_PORT     (Postfix's test server, stores nothing)
#   relay sink 127.0.0.1:$RELAY_SINK_PORT (a second smtp-sink: the next hop of relay.test
#                                       for Golub and Postfix; its running counts of
#                                       sessions and messages in $BENCH_DIR/relaysink/counts)
#   golub POP3 127.0.0.1:$GOLUB_POP3_PORT (the same Golub; plaintext USER/PASS allowed)
#   dovecot    127.0.0.1:$DOVECOT_PORT  (POP3 only, own instance: dovecot -c
#                                       $BENCH_DIR/dovecot/dovecot.conf, serving the
#                                       Maildirs Postfix delivers to)
#
# Usage: bench/peers.sh start|stop|status
# Every server accepts mail for example.org users user, user0..user9, pop0..pop9 and
# delivers it into its mailbox store (Golub: SQLite; Postfix, OpenSMTPD: Maildir).
# pop0..pop9 are the POP3 plan's maildrops (no SMTP plan sends to them); their password
# is "bench" in Golub and Dovecot.
# Golub and Postfix also relay relay.test (any local part, from anyone) to the relay sink.
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/golub-bench}
GOLUB_PORT=${GOLUB_PORT:-12525}
POSTFIX_PORT=${POSTFIX_PORT:-12526}
OSMTPD_PORT=${OSMTPD_PORT:-12527}
SINK_PORT=${SINK_PORT:-12528}
RELAY_SINK_PORT=${RELAY_SINK_PORT:-12529}
# per-destination concurrency of both relays (Golub's default; Postfix's is 20)
RELAY_CONCURRENCY=${RELAY_CONCURRENCY:-10}
GOLUB_POP3_PORT=${GOLUB_POP3_PORT:-12110}
DOVECOT_PORT=${DOVECOT_PORT:-12111}
REPO=$(cd "$(dirname "$0")/.." && pwd)
GOLUB_BIN=${GOLUB_BIN:-$REPO/target/release/golub}
USERS="user user0 user1 user2 user3 user4 user5 user6 user7 user8 user9"
USERS="$USERS pop0 pop1 pop2 pop3 pop4 pop5 pop6 pop7 pop8 pop9"
NOFILE=$(ulimit -Hn)  # the hard limit; this sandbox caps it (20000 here)

log() { echo "peers: $*" >&2; }

# ---------------------------------------------------------------- packages
install_packages() {
    local need=()
    command -v smtp-sink >/dev/null && command -v postfix >/dev/null || need+=(postfix)
    command -v python3 >/dev/null || need+=(python3)
    # libraries OpenSMTPD's binary links against (it is unpacked, not installed: see below)
    for lib in libevent-2.1-7 libdb5.3 libssl3 zlib1g libpam0g libcrypt1; do
        dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib")
    done
    # Dovecot for the POP3 plan. Docker's policy-rc.d (exit 101) keeps the package from
    # starting a system instance; ours runs with its own config (start_dovecot).
    for pkg in dovecot-core dovecot-pop3d; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if ((${#need[@]})); then
        log "installing ${need[*]}"
        # "No configuration": the package must not set up or start a system instance.
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
    fi
    # opensmtpd and postfix both Provide/Conflict mail-transport-agent, so dpkg will not
    # have both installed. We fetch OpenSMTPD's .deb with apt and unpack it under
    # $BENCH_DIR; its compiled-in paths (/usr/libexec/opensmtpd, /var/spool/smtpd,
    # /var/lib/opensmtpd/empty) are provided by symlink / mkdir in start_opensmtpd.
    local root=$BENCH_DIR/opensmtpd-pkg
    if [[ ! -x $root/usr/sbin/smtpd ]]; then
        log "unpacking opensmtpd into $root"
        mkdir -p "$root/deb"
        (cd "$root/deb" && rm -f ./*.deb && apt-get download opensmtpd >&2 2>/dev/null ||
            (apt-get update -qq && apt-get download opensmtpd >&2))
        dpkg-deb -x "$root"/deb/opensmtpd_*.deb "$root"
    fi
}

ensure_user() { # name
    getent passwd "$1" >/dev/null ||
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$1"
}

wait_port() { # port what [greeting prefix, default 220]
    local i
    for i in $(seq 1 100); do
        if python3 - "$1" "${3:-220}" <<'EOF' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.settimeout(5)
assert s.recv(512).startswith(sys.argv[2].encode())
s.sendall(b"QUIT\r\n"); s.close()
EOF
        sleep 0.2
    done
    log "$2 did not answer 220 on port $1"
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
smtp = ["127.0.0.1:$GOLUB_PORT"]
submission = []
submissions = []
imap = []
imaps = []
pop3 = ["127.0.0.1:$GOLUB_POP3_PORT"]
pop3s = []

[auth]
# golub-bench's POP3 mode logs in with USER/PASS and does not do STLS
allow_plaintext = true

[limits]
# the load generator and the 10,000-idle-connection test all come from 127.0.0.1
max_connections = 20000
max_connections_per_ip = 20000

[delivery]
# the relay sink offers no STARTTLS; Postfix's instance does not use TLS either
tls = "none"
max_connections_per_domain = $RELAY_CONCURRENCY

[routes]
"relay.test" = "127.0.0.1:$RELAY_SINK_PORT"
EOF
    local g=("$GOLUB_BIN" --config "$d/golub.toml")
    "${g[@]}" domain add example.org >/dev/null
    for u in $USERS; do "${g[@]}" user add "$u@example.org" --password bench >/dev/null; done
    (ulimit -n $NOFILE; exec setsid "${g[@]}" serve >"$d/stdout.log" 2>"$d/stderr.log" </dev/null) &
    echo $! >"$d/pid"
    wait_port "$GOLUB_PORT" golub
    wait_port "$GOLUB_POP3_PORT" "golub pop3" "+OK"
    log "golub pid $(cat "$d/pid") on 127.0.0.1:$GOLUB_PORT (smtp), 127.0.0.1:$GOLUB_POP3_PORT (pop3)"
}

stop_golub() {
    local f=$BENCH_DIR/golub/pid
    if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
        kill -TERM "$(cat "$f")"
        for _ in $(seq 1 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$(cat "$f")" 2>/dev/null && kill -KILL "$(cat "$f")"
    fi
    rm -f "$f"
}

# ---------------------------------------------------------------- postfix
start_postfix() {
    local d=$BENCH_DIR/postfix
    ensure_user vmail
    local uid gid
    uid=$(id -u vmail) gid=$(id -g vmail)
    rm -rf "$d"
    mkdir -p "$d/etc" "$d/queue" "$d/data" "$d/maildir"
    chown postfix "$d/data"
    chown vmail:vmail "$d/maildir"
    : >"$d/vmailbox"
    for u in $USERS; do echo "$u@example.org example.org/$u/" >>"$d/vmailbox"; done
    cat >"$d/etc/main.cf" <<EOF
# A private Postfix instance for the benchmark; see bench/README.md for why each is set.
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $d
maillog_file = $d/maillog

myhostname = postfix.bench.localdomain
mydomain = bench.localdomain
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no

# no network here: nothing may wait on DNS
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native

# no restrictions that look anything up; relay only for our own domain
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_helo_required = no

# one client (127.0.0.1) opens hundreds of connections
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_event_limit_exceptions = 127.0.0.0/8
message_size_limit = 30000000
# cleanup pauses up to 1 s before taking a message when the queue manager lags (p99s
# of 1 s at 50 sessions); off, as for a benchmark of the receiving side
in_flow_delay = 0s

# example.org is delivered by virtual(8) into Maildir/ (trailing / in vmailbox)
virtual_mailbox_domains = example.org
virtual_mailbox_maps = texthash:$d/vmailbox
virtual_mailbox_base = $d/maildir
virtual_minimum_uid = 100
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid

# relay.test is relayed to the relay sink by smtp(8), connection cache on demand
# (the default); the same per-destination concurrency as Golub's instance (see README)
relay_domains = relay.test
transport_maps = inline:{relay.test=smtp:[127.0.0.1]:$RELAY_SINK_PORT}
smtp_destination_concurrency_limit = $RELAY_CONCURRENCY
EOF
    cat >"$d/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    postfix -c "$d/etc" check >&2 || true
    (ulimit -n $NOFILE; postfix -c "$d/etc" start >&2)
    wait_port "$POSTFIX_PORT" postfix
    log "postfix on 127.0.0.1:$POSTFIX_PORT (queue $d/queue, maildir $d/maildir)"
}

stop_postfix() {
    local d=$BENCH_DIR/postfix
    if [[ -f $d/etc/main.cf ]]; then
        postfix -c "$d/etc" stop >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do [[ -f $d/queue/pid/master.pid ]] || break; sleep 0.1; done
        if [[ -f $d/queue/pid/master.pid ]]; then
            local p
            p=$(tr -d ' ' <"$d/queue/pid/master.pid")
            [[ -n $p ]] && kill -KILL "$p" 2>/dev/null || true
        fi
    fi
}

# ---------------------------------------------------------------- opensmtpd
start_opensmtpd() {
    local d=$BENCH_DIR/opensmtpd root=$BENCH_DIR/opensmtpd-pkg
    ensure_user vmail
    ensure_user opensmtpd
    ensure_user opensmtpq
    # compiled-in paths of Debian's build
    if [[ ! -e /usr/libexec/opensmtpd ]]; then
        ln -s "$root/usr/libexec/opensmtpd" /usr/libexec/opensmtpd
    fi
    mkdir -p /var/lib/opensmtpd/empty
    # the queue is compiled in at /var/spool/smtpd (same disk as $BENCH_DIR here); start empty
    rm -rf /var/spool/smtpd
    rm -rf "$d"
    mkdir -p "$d/maildir"
    chown vmail:vmail "$d/maildir"
    : >"$d/vusers"
    for u in $USERS; do echo "$u@example.org vmail" >>"$d/vusers"; done
    cat >"$d/smtpd.conf" <<EOF
# A private OpenSMTPD for the benchmark.
table vusers file:$d/vusers
listen on 127.0.0.1 port $OSMTPD_PORT hostname opensmtpd.bench.localdomain
action "deliver" maildir "$d/maildir/%{rcpt.user}" virtual <vusers>
match from any for domain "example.org" action "deliver"
EOF
    "$root/usr/sbin/smtpd" -n -f "$d/smtpd.conf" >&2
    # OpenSMTPD resolves every client address (and the name back) with its own
    # resolver, DNS first; with no network here some of those queries hang 5 s. It gets a
    # private /etc/resolv.conf (bind-mounted in its own mount namespace) that says
    # "lookup file": /etc/hosts only, as Postfix's smtpd_peername_lookup = no.
    printf 'lookup file\nnameserver 127.0.0.1\n' >"$d/resolv.conf"
    (ulimit -n $NOFILE; exec setsid unshare --mount sh -c \
        'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$d/resolv.conf" \
        "$root/usr/sbin/smtpd" -d -f "$d/smtpd.conf" \
        >"$d/stdout.log" 2>"$d/stderr.log" </dev/null) &
    echo $! >"$d/pid"
    wait_port "$OSMTPD_PORT" opensmtpd
    log "opensmtpd pid $(cat "$d/pid") on 127.0.0.1:$OSMTPD_PORT (queue /var/spool/smtpd)"
}

stop_opensmtpd() {
    local f=$BENCH_DIR/opensmtpd/pid
    if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
        kill -TERM "$(cat "$f")"
        for _ in $(seq 1 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$(cat "$f")" 2>/dev/null && kill -KILL "$(cat "$f")"
    fi
    rm -f "$f"
}

# ---------------------------------------------------------------- smtp-sink
start_sink() {
    local d=$BENCH_DIR/sink
    mkdir -p "$d"
    # -u: drop to user postfix; backlog 256; no counters (-c writes to the terminal)
    (ulimit -n $NOFILE; exec setsid smtp-sink -u postfix 127.0.0.1:$SINK_PORT 256 \
        >"$d/stdout.log" 2>"$d/stderr.log" </dev/null) &
    echo $! >"$d/pid"
    wait_port "$SINK_PORT" smtp-sink
    log "smtp-sink pid $(cat "$d/pid") on 127.0.0.1:$SINK_PORT"
}

stop_sink() {
    local f=$BENCH_DIR/sink/pid
    if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then kill -TERM "$(cat "$f")"; fi
    rm -f "$f"
}

# The next hop of relay.test for Golub and Postfix. -c writes "sess=N quit=N mesg=N"
# to stdout whenever a message's "." is received, a QUIT is read or a session ends:
# mesg counts the messages it accepted, sess the connections that have ended.
start_relay_sink() {
    local d=$BENCH_DIR/relaysink
    rm -rf "$d"
    mkdir -p "$d"
    (ulimit -n $NOFILE; exec setsid smtp-sink -c -u postfix 127.0.0.1:$RELAY_SINK_PORT 256 \
        >"$d/counts" 2>"$d/stderr.log" </dev/null) &
    echo $! >"$d/pid"
    wait_port "$RELAY_SINK_PORT" "relay smtp-sink"
    log "relay smtp-sink pid $(cat "$d/pid") on 127.0.0.1:$RELAY_SINK_PORT (counts in $d/counts)"
}

stop_relay_sink() {
    local f=$BENCH_DIR/relaysink/pid
    if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then kill -TERM "$(cat "$f")"; fi
    rm -f "$f"
}

# ---------------------------------------------------------------- dovecot (POP3)
# Serves the Maildirs of Postfix's instance ($BENCH_DIR/postfix/maildir/example.org/<user>)
# as vmail; users and {ARGON2ID} passwords (Golub stores argon2id too) in a passwd-file.
start_dovecot() {
    local d=$BENCH_DIR/dovecot pf=$BENCH_DIR/postfix
    local uid gid hash
    uid=$(id -u vmail) gid=$(id -g vmail)
    rm -rf "$d"
    mkdir -p "$d/run" "$d/state"
    hash=$(doveadm pw -s ARGON2ID -p bench)
    : >"$d/passwd"
    for u in $USERS; do
        echo "$u@example.org:$hash:$uid:$gid::$pf/maildir/example.org/$u::" >>"$d/passwd"
    done
    chgrp dovecot "$d/passwd"
    chmod 640 "$d/passwd"
    cat >"$d/dovecot.conf" <<EOF
# A private Dovecot for the benchmark: POP3 only, plaintext USER/PASS, no TLS.
instance_name = dovecot-bench
base_dir = $d/run
state_dir = $d/state
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = $d/dovecot.log
first_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:$pf/maildir/example.org/%n
# every session comes from 127.0.0.1 (the default allows 10 per user and address)
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = username_format=%u $d/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $d/passwd
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DOVECOT_PORT
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
    (ulimit -n $NOFILE; dovecot -c "$d/dovecot.conf" >&2)
    wait_port "$DOVECOT_PORT" dovecot "+OK"
    log "dovecot $(dovecot --version | cut -d' ' -f1) on 127.0.0.1:$DOVECOT_PORT (maildirs under $pf/maildir)"
}

stop_dovecot() {
    local d=$BENCH_DIR/dovecot
    if [[ -f $d/dovecot.conf && -f $d/run/master.pid ]]; then
        dovecot -c "$d/dovecot.conf" stop >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do [[ -f $d/run/master.pid ]] || break; sleep 0.1; done
    fi
}

# ---------------------------------------------------------------- main
stop_all() {
    stop_golub
    stop_postfix
    stop_opensmtpd
    stop_sink
    stop_relay_sink
    stop_dovecot
}

status() {
    for p in "$GOLUB_PORT golub" "$POSTFIX_PORT postfix" "$OSMTPD_PORT opensmtpd" "$SINK_PORT smtp-sink" \
        "$RELAY_SINK_PORT relay-smtp-sink"; do
        set -- $p
        if wait_port_once "$1"; then echo "$2 up on $1"; else echo "$2 down"; fi
    done
    for p in "$GOLUB_POP3_PORT golub-pop3" "$DOVECOT_PORT dovecot"; do
        set -- $p
        if wait_port_once "$1" "+OK"; then echo "$2 up on $1"; else echo "$2 down"; fi
    done
}

wait_port_once() { # port [greeting prefix]
    python3 - "$1" "${2:-220}" <<'EOF' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.settimeout(3)
assert s.recv(512).startswith(sys.argv[2].encode())
EOF
}

case ${1:-} in
start)
    [[ -x $GOLUB_BIN ]] || { log "no $GOLUB_BIN: cargo build --release -p golub -p golub-bench"; exit 1; }
    mkdir -p "$BENCH_DIR"
    install_packages
    stop_all
    start_golub
    start_postfix
    start_opensmtpd
    start_sink
    start_relay_sink
    start_dovecot
    ;;
stop) stop_all ;;
status) status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
