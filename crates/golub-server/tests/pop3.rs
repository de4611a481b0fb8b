//! POP3 with real clients: Python's poplib (STLS, USER/PASS, STAT, LIST, UIDL, TOP, RETR,
//! DELE, pop3s) and curl, on mail that arrived by SMTP; plus the RFC 1939 promises that a
//! dropped connection deletes nothing and that the maildrop is locked.

use golub_testkit::{Pop3Client, TestServer, python};
use std::process::Command;

const POPLIB_SCRIPT: &str = r#"
import poplib, ssl, sys
port, ports, expected_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
expected = open(expected_path, 'rb').read().split(b'\n---\n')
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

p = poplib.POP3('127.0.0.1', port, timeout=20)
caps = p.capa()
assert 'STLS' in caps and 'UIDL' in caps and 'TOP' in caps, caps
assert 'USER' not in caps, 'no plaintext login offered before TLS: %r' % caps
try:
    p.user('alice@example.org')
    raise SystemExit('USER accepted before TLS')
except poplib.error_proto as e:
    assert b'STLS' in e.args[0], e
p.stls(context=ctx)
caps = p.capa()
assert 'USER' in caps and 'STLS' not in caps, caps
p.user('alice@example.org')
p.pass_('pw')
count, octets = p.stat()
assert count == 2, count
assert octets == sum(len(m) for m in expected), (octets, [len(m) for m in expected])
_, listing, _ = p.list()
assert [int(l.split()[1]) for l in listing] == [len(m) for m in expected], listing
_, uidls, _ = p.uidl()
uids = [l.split()[1] for l in uidls]
for n, want in enumerate(expected, start=1):
    resp, lines, size = p.retr(n)
    got = b'\r\n'.join(lines) + b'\r\n'
    assert got == want, (n, got, want)
top = p.top(2, 1)[1]
header_end = top.index(b'')
assert len(top) == header_end + 2, top
p.dele(1)
p.quit()

p = poplib.POP3_SSL('127.0.0.1', ports, context=ctx, timeout=20)
p.user('alice@example.org')
p.pass_('pw')
assert p.stat()[0] == 1
_, uidls2, _ = p.uidl()
assert [l.split()[1] for l in uidls2] == uids[1:], (uidls2, uids)
p.quit()
print('ok')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_retrieves_byte_exact_and_uidl_is_stable() {
    let t = TestServer::start().await;
    t.deliver(
        "alice@example.org",
        "Subject: one\r\n\r\nfirst\r\n..dotted line\r\n",
    )
    .await;
    t.deliver(
        "alice@example.org",
        "Subject: two\r\n\r\nsecond\r\nline 2\r\nline 3",
    )
    .await;
    let stored = t.wait_for_inbox("alice@example.org", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("expected");
    std::fs::write(&expected, stored.join(&b"\n---\n"[..])).unwrap();
    let (ok, out) = python(
        POPLIB_SCRIPT,
        &[
            t.addr("pop3").port().to_string(),
            t.addr("pop3s").port().to_string(),
            expected.display().to_string(),
        ],
    )
    .await;
    assert!(ok, "{out}");
    // The message deleted over POP3 is gone from the store (and so for IMAP).
    let left = t.inbox("alice@example.org");
    assert_eq!(left.len(), 1);
    assert!(String::from_utf8_lossy(&left[0]).contains("Subject: two"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reads_a_message_over_pop3s_and_stls() {
    let t = TestServer::start().await;
    t.deliver("bob@example.org", "Subject: for curl\r\n\r\nhello curl\r\n")
        .await;
    let stored = t.wait_for_inbox("bob@example.org", 1).await;
    for url in [
        format!("pop3s://127.0.0.1:{}/1", t.addr("pop3s").port()),
        format!("pop3://127.0.0.1:{}/1", t.addr("pop3").port()),
    ] {
        let out = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args([
                    "-s",
                    "-k",
                    "--ssl-reqd",
                    "--max-time",
                    "20",
                    "-u",
                    "bob@example.org:pw",
                ])
                .arg(&url)
                .output()
                .expect("curl runs")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, stored[0], "curl got the message byte for byte");
    }
}

async fn pop3_login(addr: std::net::SocketAddr, user: &str) -> Pop3Client {
    let mut c = Pop3Client::connect(addr).await;
    assert!(c.cmd(&format!("USER {user}")).await.starts_with("+OK"));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_deletes_nothing_and_the_maildrop_is_locked() {
    let t = TestServer::start_with(|c| c.auth.allow_plaintext = true).await;
    t.deliver("alice@example.org", "Subject: keep me\r\n\r\nx")
        .await;
    t.wait_for_inbox("alice@example.org", 1).await;
    let pop3 = t.addr("pop3");
    let mut a = pop3_login(pop3, "alice@example.org").await;
    assert!(a.cmd("PASS pw").await.starts_with("+OK"));
    // A second session for the same maildrop is refused while the first holds it.
    let mut b = pop3_login(pop3, "alice@example.org").await;
    let r = b.cmd("PASS pw").await;
    assert!(r.starts_with("-ERR [IN-USE]"), "{r}");
    assert!(a.cmd("DELE 1").await.starts_with("+OK"));
    drop(a); // no QUIT: no UPDATE state
    // Once the lock is free again, the message is still there.
    let start = std::time::Instant::now();
    let mut c = loop {
        let mut c = pop3_login(pop3, "alice@example.org").await;
        if c.cmd("PASS pw").await.starts_with("+OK") {
            break c;
        }
        assert!(
            start.elapsed() < golub_testkit::DEADLINE,
            "the lock was never released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(c.cmd("STAT").await.starts_with("+OK 1 "));
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    assert_eq!(t.inbox("alice@example.org").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pop3_passwords_get_auth_errors() {
    let t = TestServer::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.auth.failure_delay_ms = 1;
        c.auth.max_failures = 2;
    })
    .await;
    let pop3 = t.addr("pop3");
    for _ in 0..2 {
        let mut c = pop3_login(pop3, "alice@example.org").await;
        let r = c.cmd("PASS wrong").await;
        assert!(r.starts_with("-ERR [AUTH]"), "{r}");
    }
    let mut c = pop3_login(pop3, "alice@example.org").await;
    let r = c.cmd("PASS pw").await;
    assert!(
        r.starts_with("-ERR [AUTH]"),
        "blocked after too many failures: {r}"
    );
}

const RETRIEVE_ALL_SCRIPT: &str = r#"
import poplib, sys
port, expected_path = int(sys.argv[1]), sys.argv[2]
expected = open(expected_path, 'rb').read().split(b'\n---\n')
p = poplib.POP3('127.0.0.1', port, timeout=20)
p.user('alice@example.org')
p.pass_('pw')
assert p.stat()[0] == len(expected)
def retr(n):
    got = b'\r\n'.join(p.retr(n)[1]) + b'\r\n'
    assert got == expected[n - 1], (n, got[:60], expected[n - 1][:60])
# In order (read ahead), with a TOP and a jump back in the middle, then in order again.
for n in range(1, 21):
    retr(n)
p.top(3, 0)
retr(7)
for n in range(21, len(expected) + 1):
    retr(n)
p.dele(2)
for n in [1, 3, 4, 5]:
    retr(n)
p.quit()
print('ok')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieving_the_maildrop_in_order_and_out_of_order_gives_each_message() {
    let t = TestServer::start_with(|c| {
        c.auth.allow_plaintext = true;
        // Every fifth body is kept as a file, where reading ahead stops.
        c.store.inline_body_limit = 4000;
    })
    .await;
    let n = 45;
    for i in 0..n {
        let line = format!("{}\r\n", "x".repeat(98));
        let filler = line.repeat(if i % 5 == 4 { 50 } else { i % 4 });
        t.deliver(
            "alice@example.org",
            &format!("Subject: message {i}\r\n\r\n{filler}\r\nend of {i}"),
        )
        .await;
    }
    let stored = t.wait_for_inbox("alice@example.org", n).await;
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("expected");
    std::fs::write(&expected, stored.join(&b"\n---\n"[..])).unwrap();
    let (ok, out) = python(
        RETRIEVE_ALL_SCRIPT,
        &[
            t.addr("pop3").port().to_string(),
            expected.display().to_string(),
        ],
    )
    .await;
    assert!(ok, "{out}");
}
