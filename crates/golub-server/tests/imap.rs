//! IMAP end to end: transcripts with a raw client for every command family, Python's
//! imaplib and curl as real clients, IDLE woken by SMTP delivery, two sessions on one
//! mailbox, and bad input.

use golub_testkit::{ImapClient, TestServer, python};
use std::time::{Duration, Instant};

async fn plaintext_server() -> TestServer {
    TestServer::start_with(|c| {
        c.auth.allow_plaintext = true;
    })
    .await
}

fn last(r: &[String]) -> &str {
    r.last().map(String::as_str).unwrap_or("")
}

fn has(r: &[String], needle: &str) -> bool {
    r.iter().any(|l| l.contains(needle))
}

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: {subject}\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcript_of_the_mailbox_commands() {
    let t = plaintext_server().await;
    t.deliver("alice@example.org", &message("first", "Hello there"))
        .await;
    t.deliver("alice@example.org", &message("second", "Lunch?"))
        .await;
    t.wait_for_inbox("alice@example.org", 2).await;

    let mut c = ImapClient::connect(t.addr("imap")).await;
    let r = c.cmd("CAPABILITY").await;
    assert!(
        has(&r, "IMAP4rev1") && has(&r, "STARTTLS") && has(&r, "AUTH=PLAIN"),
        "{r:?}"
    );
    c.login("alice@example.org", "pw").await;
    let r = c.cmd("CAPABILITY").await;
    for cap in [
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "ESEARCH",
        "SPECIAL-USE",
    ] {
        assert!(has(&r, cap), "{cap} missing: {r:?}");
    }

    let r = c.cmd("LIST \"\" \"*\"").await;
    assert!(has(&r, "* LIST (\\HasNoChildren) \"/\" INBOX"), "{r:?}");
    assert!(has(&r, "\\Sent) \"/\" Sent"), "{r:?}");
    assert!(has(&r, "\\Trash) \"/\" Trash"), "{r:?}");
    assert!(last(&r).contains("OK"), "{r:?}");

    let r = c.cmd("SELECT INBOX").await;
    assert!(has(&r, "* 2 EXISTS"), "{r:?}");
    assert!(has(&r, "[UIDVALIDITY "), "{r:?}");
    assert!(has(&r, "[UIDNEXT 3]"), "{r:?}");
    assert!(last(&r).contains("OK [READ-WRITE]"), "{r:?}");

    let r = c.cmd("FETCH 1:* (UID FLAGS)").await;
    assert!(has(&r, "* 1 FETCH (UID 1 FLAGS (\\Recent))"), "{r:?}");
    assert!(has(&r, "* 2 FETCH (UID 2 FLAGS (\\Recent))"), "{r:?}");

    let r = c
        .cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    let stored = t.inbox("alice@example.org");
    assert!(
        has(&r, &format!("RFC822.SIZE {}", stored[0].len())),
        "{r:?}"
    );
    assert!(has(&r, "BODY[HEADER.FIELDS (SUBJECT)] {"), "{r:?}");
    assert!(has(&r, "Subject: first"), "{r:?}");
    assert!(!has(&r, "\\Seen"), "PEEK must not set \\Seen: {r:?}");

    let r = c.cmd("FETCH 1 BODY[TEXT]").await;
    assert!(has(&r, "Hello there"), "{r:?}");
    assert!(
        has(&r, "FLAGS (\\Recent \\Seen)"),
        "a non-PEEK fetch reports \\Seen: {r:?}"
    );

    let r = c.cmd("FETCH 2 (ENVELOPE BODYSTRUCTURE)").await;
    assert!(
        has(
            &r,
            "ENVELOPE (\"Fri, 04 Dec 2026 10:00:00 +0000\" \"second\""
        ),
        "{r:?}"
    );
    assert!(has(&r, "BODYSTRUCTURE (\"TEXT\" \"PLAIN\""), "{r:?}");

    let r = c.cmd("STORE 2 +FLAGS (\\Flagged $Label)").await;
    assert!(
        has(&r, "* 2 FETCH (FLAGS (\\Recent \\Flagged $Label))"),
        "{r:?}"
    );
    let r = c.cmd("SEARCH FLAGGED").await;
    assert!(has(&r, "* SEARCH 2"), "{r:?}");
    let r = c.cmd("SEARCH UNSEEN").await;
    assert!(has(&r, "* SEARCH 2"), "{r:?}");
    let r = c.cmd("UID SEARCH SUBJECT first").await;
    assert!(has(&r, "* SEARCH 1"), "{r:?}");
    let r = c.cmd("SEARCH BODY lunch").await;
    assert!(has(&r, "* SEARCH 2"), "{r:?}");
    let r = c.cmd("SEARCH RETURN (MIN MAX COUNT) ALL").await;
    assert!(has(&r, "* ESEARCH (TAG \"a"), "{r:?}");
    assert!(has(&r, "MIN 1 MAX 2 COUNT 2"), "{r:?}");
    let r = c.cmd("SEARCH OR SEEN KEYWORD $Label").await;
    assert!(has(&r, "* SEARCH 1 2"), "{r:?}");

    let r = c.cmd("COPY 1 Archive").await;
    assert!(last(&r).contains("OK [COPYUID "), "{r:?}");
    let r = c.cmd("STATUS Archive (MESSAGES UNSEEN UIDNEXT)").await;
    assert!(
        has(&r, "* STATUS Archive (MESSAGES 1 UNSEEN 0 UIDNEXT 2)"),
        "{r:?}"
    );

    let r = c.cmd("MOVE 2 Trash").await;
    assert!(has(&r, "* OK [COPYUID "), "{r:?}");
    assert!(has(&r, "* 2 EXPUNGE"), "{r:?}");
    assert!(last(&r).contains("OK"), "{r:?}");

    let r = c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert!(!has(&r, "FETCH"), "{r:?}");
    let r = c.cmd("EXPUNGE").await;
    assert!(has(&r, "* 1 EXPUNGE"), "{r:?}");

    let msg = message("draft", "Not finished");
    c.send(format!("a100 APPEND Drafts (\\Draft) {{{}}}\r\n", msg.len()).as_bytes())
        .await;
    let cont = c.line().await.unwrap_or_default();
    assert!(cont.starts_with('+'), "{cont}");
    c.send(format!("{msg}\r\n").as_bytes()).await;
    let r = c.until_tagged("a100").await;
    assert!(last(&r).contains("OK [APPENDUID "), "{r:?}");
    let r = c.cmd("EXAMINE Drafts").await;
    assert!(
        has(&r, "* 1 EXISTS") && last(&r).contains("[READ-ONLY]"),
        "{r:?}"
    );
    let r = c.cmd("FETCH 1 (FLAGS BODY[])").await;
    assert!(
        has(&r, "FLAGS (\\Recent \\Draft)") && has(&r, "Not finished"),
        "{r:?}"
    );
    let r = c.cmd("STORE 1 +FLAGS (\\Seen)").await;
    assert!(last(&r).contains("NO"), "{r:?}");

    let r = c.cmd("CREATE Projects/2026").await;
    assert!(last(&r).contains("OK"), "{r:?}");
    let r = c.cmd("LIST \"\" \"Projects*\"").await;
    assert!(has(&r, "(\\HasChildren) \"/\" Projects"), "{r:?}");
    assert!(has(&r, "(\\HasNoChildren) \"/\" Projects/2026"), "{r:?}");
    let r = c.cmd("RENAME Projects Work").await;
    assert!(last(&r).contains("OK"), "{r:?}");
    let r = c.cmd("LIST \"\" \"%/%\"").await;
    assert!(has(&r, "\"/\" Work/2026"), "{r:?}");
    let r = c.cmd("DELETE Work/2026").await;
    assert!(last(&r).contains("OK"), "{r:?}");
    let r = c.cmd("STATUS Work/2026 (MESSAGES)").await;
    assert!(last(&r).contains("NO [NONEXISTENT]"), "{r:?}");
    let r = c.cmd("CREATE INBOX").await;
    assert!(last(&r).contains("NO"), "{r:?}");
    let r = c.cmd("LOGOUT").await;
    assert!(has(&r, "* BYE") && last(&r).contains("OK"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_disabled_before_tls() {
    let t = TestServer::start().await;
    let mut c = ImapClient::connect(t.addr("imap")).await;
    let r = c.cmd("CAPABILITY").await;
    assert!(has(&r, "LOGINDISABLED") && has(&r, "STARTTLS"), "{r:?}");
    assert!(!has(&r, "AUTH=PLAIN"), "{r:?}");
    let r = c.cmd("LOGIN alice@example.org pw").await;
    assert!(last(&r).contains("NO [PRIVACYREQUIRED]"), "{r:?}");
    let r = c.cmd("SELECT INBOX").await;
    assert!(last(&r).contains("BAD"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_reports_a_delivery_at_once() {
    let t = plaintext_server().await;
    let mut c = ImapClient::connect(t.addr("imap")).await;
    c.login("alice@example.org", "pw").await;
    let r = c.cmd("SELECT INBOX").await;
    assert!(has(&r, "* 0 EXISTS"), "{r:?}");
    c.send(b"i1 IDLE\r\n").await;
    let cont = c.line().await.unwrap_or_default();
    assert!(cont.starts_with("+ "), "{cont}");
    let sent = Instant::now();
    t.deliver("alice@example.org", &message("news", "Fresh"))
        .await;
    let line = c.line().await.unwrap_or_default();
    assert_eq!(line, "* 1 EXISTS");
    // The SMTP 250 came after the commit; the notice follows within a second.
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    c.send(b"DONE\r\n").await;
    let r = c.until_tagged("i1").await;
    assert!(last(&r).contains("OK"), "{r:?}");
    let r = c.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
    assert!(has(&r, "Subject: news"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_see_each_others_changes_at_the_right_moments() {
    let t = plaintext_server().await;
    for s in ["one", "two", "three"] {
        t.deliver("alice@example.org", &message(s, s)).await;
    }
    t.wait_for_inbox("alice@example.org", 3).await;
    let mut a = ImapClient::connect(t.addr("imap")).await;
    let mut b = ImapClient::connect(t.addr("imap")).await;
    a.login("alice@example.org", "pw").await;
    b.login("alice@example.org", "pw").await;
    a.cmd("SELECT INBOX").await;
    b.cmd("SELECT INBOX").await;

    let r = a.cmd("STORE 2 +FLAGS (\\Seen)").await;
    assert!(last(&r).contains("OK"), "{r:?}");
    let r = b.cmd("NOOP").await;
    assert!(has(&r, "* 2 FETCH (FLAGS (\\Seen))"), "{r:?}");

    let r = a.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    assert!(last(&r).contains("OK"), "{r:?}");
    let r = a.cmd("EXPUNGE").await;
    assert!(has(&r, "* 1 EXPUNGE"), "{r:?}");
    // RFC 9051 §7.5.1: no EXPUNGE while answering FETCH by sequence number...
    let r = b.cmd("FETCH 3 (FLAGS)").await;
    assert!(!has(&r, "EXPUNGE"), "{r:?}");
    assert!(has(&r, "* 3 FETCH"), "{r:?}");
    // ...but at the next NOOP.
    let r = b.cmd("NOOP").await;
    assert!(has(&r, "* 1 EXPUNGE"), "{r:?}");
    let r = b.cmd("FETCH 1:* (UID)").await;
    assert!(
        has(&r, "* 1 FETCH (UID 2)") && has(&r, "* 2 FETCH (UID 3)"),
        "{r:?}"
    );

    // A new message reaches both.
    t.deliver("alice@example.org", &message("four", "four"))
        .await;
    t.wait_for_inbox("alice@example.org", 3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = b.cmd("NOOP").await;
        if has(&r, "* 3 EXISTS") {
            break;
        }
        assert!(Instant::now() < deadline, "no EXISTS: {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_the_session_survives() {
    let t = plaintext_server().await;
    let mut c = ImapClient::connect(t.addr("imap")).await;
    let r = c.cmd("FROBNICATE").await;
    assert!(last(&r).contains("BAD"), "{r:?}");
    c.send(b"\r\n").await;
    let r = c.line().await.unwrap_or_default();
    assert!(r.starts_with("* BAD"), "{r}");
    c.login("alice@example.org", "pw").await;
    // A 2 GB literal is refused before a byte of it is read.
    c.send(b"x1 APPEND INBOX {2000000000}\r\n").await;
    let r = c.until_tagged("x1").await;
    assert!(
        last(&r).starts_with("x1 NO") || last(&r).starts_with("x1 BAD"),
        "{r:?}"
    );
    let long = format!("x2 SELECT {}\r\n", "a".repeat(200_000));
    c.send(long.as_bytes()).await;
    let r = c.until_tagged("x2").await;
    assert!(last(&r).contains("BAD"), "{r:?}");
    let deep = format!(
        "x3 SEARCH {}ALL{}\r\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    c.send(deep.as_bytes()).await;
    let r = c.until_tagged("x3").await;
    assert!(last(&r).contains("BAD"), "{r:?}");
    let r = c.cmd("SELECT INBOX").await;
    assert!(last(&r).contains("OK"), "{r:?}");
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert!(last(&r).contains("BAD"), "no message 1: {r:?}");
    let r = c.cmd("FETCH 1:* (FLAGS BODY[NOTASECTION])").await;
    assert!(last(&r).contains("BAD"), "{r:?}");
    let r = c.cmd("NOOP").await;
    assert!(last(&r).contains("OK"), "{r:?}");
}

const IMAPLIB_SCRIPT: &str = r#"
import imaplib, ssl, sys, time
port, ports = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

m = imaplib.IMAP4('127.0.0.1', port, timeout=20)
assert 'LOGINDISABLED' in m.capabilities, m.capabilities
m.starttls(ssl_context=ctx)
typ, _ = m.login('alice@example.org', 'pw')
assert typ == 'OK'
typ, data = m.select('INBOX')
assert typ == 'OK' and data == [b'2'], data
typ, data = m.search(None, 'SUBJECT', '"hello imaplib"')
assert data == [b'1'], data
typ, data = m.fetch('1', '(RFC822)')
assert b'Body from SMTP' in data[0][1], data
typ, data = m.fetch('1', '(FLAGS)')
assert b'\\Seen' in data[0], data
typ, data = m.uid('FETCH', '1:*', '(UID RFC822.SIZE)')
assert len(data) == 2, data
typ, data = m.store('2', '+FLAGS', '(\\Flagged)')
assert typ == 'OK' and b'\\Flagged' in data[0], data
typ, data = m.append('Sent', '(\\Seen)', imaplib.Time2Internaldate(time.time()), b'From: alice@example.org\r\nSubject: sent copy\r\n\r\nbody\r\n')
assert typ == 'OK' and b'APPENDUID' in data[0], data
typ, data = m.status('Sent', '(MESSAGES)')
assert b'MESSAGES 1' in data[0], data
typ, data = m.copy('1:2', 'Archive')
assert typ == 'OK', data
typ, data = m.create('Lists/rust')
assert typ == 'OK', data
typ, data = m.list('', '*')
names = [l.decode() for l in data]
assert any('Lists/rust' in n for n in names), names
typ, data = m.store('1', '+FLAGS', '(\\Deleted)')
typ, data = m.expunge()
assert data == [b'1'], data
m.close()
m.logout()

m = imaplib.IMAP4_SSL('127.0.0.1', ports, ssl_context=ctx, timeout=20)
m.login('alice@example.org', 'pw')
typ, data = m.select('Archive', readonly=True)
assert data == [b'2'], data
typ, data = m.fetch('1:2', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
subjects = [d[1] for d in data if isinstance(d, tuple)]
assert subjects == [b'Subject: hello imaplib\r\n\r\n', b'Subject: second\r\n\r\n'], subjects
m.logout()
print('ok')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_works_over_starttls_and_imaps() {
    let t = TestServer::start().await;
    t.deliver(
        "alice@example.org",
        &message("hello imaplib", "Body from SMTP"),
    )
    .await;
    t.deliver("alice@example.org", &message("second", "x"))
        .await;
    t.wait_for_inbox("alice@example.org", 2).await;
    let (ok, out) = python(
        IMAPLIB_SCRIPT,
        &[
            t.addr("imap").port().to_string(),
            t.addr("imaps").port().to_string(),
        ],
    )
    .await;
    assert!(ok && out.contains("ok"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reads_a_message_by_uid() {
    let t = TestServer::start().await;
    t.deliver("alice@example.org", &message("curl", "Fetched by curl"))
        .await;
    t.wait_for_inbox("alice@example.org", 1).await;
    let url = format!("imaps://127.0.0.1:{}/INBOX;UID=1", t.addr("imaps").port());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "-s",
                "--insecure",
                "--max-time",
                "20",
                "-u",
                "alice@example.org:pw",
                &url,
            ])
            .output()
    })
    .await
    .expect("thread")
    .expect("curl runs");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}", out);
    assert!(
        body.contains("Fetched by curl") && body.contains("Subject: curl"),
        "{body}"
    );
}

const BIG_FETCH_SCRIPT: &str = r#"
import imaplib, hashlib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]), timeout=60)
m.login('alice@example.org', 'pw')
m.select('INBOX', readonly=True)
typ, data = m.uid('FETCH', '1', '(UID RFC822.SIZE BODY.PEEK[])')
assert typ == 'OK', (typ, data)
body = data[0][1]
print(len(body), hashlib.sha256(body).hexdigest())
typ, data = m.fetch('1', '(RFC822)')
assert typ == 'OK', (typ, data)
print(len(data[0][1]), hashlib.sha256(data[0][1]).hexdigest())
m.logout()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_is_streamed_byte_exact() {
    let t = plaintext_server().await;
    // Larger than the store keeps inside its database: a file, streamed out in parts.
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_\r\n";
    let body: String = line.repeat(3 * 1024 * 1024 / line.len());
    t.deliver("alice@example.org", &message("big", &body)).await;
    let stored = t.wait_for_inbox("alice@example.org", 1).await.remove(0);
    assert!(stored.len() > 3_000_000);
    let digest = ring::digest::digest(&ring::digest::SHA256, &stored);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let want = format!("{} {hex}", stored.len());
    let (ok, out) = python(BIG_FETCH_SCRIPT, &[t.addr("imap").port().to_string()]).await;
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [want.as_str(), want.as_str()], "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_append_is_streamed_into_the_store() {
    let t = plaintext_server().await;
    let mut c = ImapClient::connect(t.addr("imap")).await;
    c.login("alice@example.org", "pw").await;
    let line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    let body = line.repeat(2 * 1024 * 1024 / line.len());
    let big = message("streamed", &body);

    // A synchronizing literal: the continuation comes once the mailbox is known.
    c.send(format!("s1 APPEND INBOX (\\Seen) {{{}}}\r\n", big.len()).as_bytes())
        .await;
    let cont = c.line().await.unwrap_or_default();
    assert!(cont.starts_with("+ "), "{cont}");
    c.send(big.as_bytes()).await;
    c.send(b"\r\n").await;
    let r = c.until_tagged("s1").await;
    assert!(last(&r).contains("OK [APPENDUID "), "{r:?}");

    // A non-synchronizing one, to a mailbox that is not there: refused, its octets
    // dropped, and the session goes on.
    c.send(format!("s2 APPEND Nowhere {{{}+}}\r\n", big.len()).as_bytes())
        .await;
    c.send(big.as_bytes()).await;
    c.send(b"\r\n").await;
    let r = c.until_tagged("s2").await;
    assert!(last(&r).contains("NO [TRYCREATE]"), "{r:?}");
    // A synchronizing one there: refused before a single octet is sent.
    c.send(format!("s3 APPEND Nowhere {{{}}}\r\n", big.len()).as_bytes())
        .await;
    let r = c.until_tagged("s3").await;
    assert!(last(&r).contains("NO [TRYCREATE]"), "{r:?}");

    // Non-synchronizing into Archive, then read both back byte for byte.
    c.send(format!("s4 APPEND Archive {{{}+}}\r\n", big.len()).as_bytes())
        .await;
    c.send(big.as_bytes()).await;
    c.send(b"\r\n").await;
    let r = c.until_tagged("s4").await;
    assert!(last(&r).contains("OK [APPENDUID "), "{r:?}");
    let r = c.cmd("NOOP").await;
    assert!(last(&r).contains("OK"), "{r:?}");
    let store = t.store();
    let alice = store.user("alice@example.org").unwrap().unwrap();
    for folder in ["INBOX", "Archive"] {
        let f = store.folder(alice.id, folder).unwrap().unwrap();
        let msgs = store.messages(f.id).unwrap();
        assert_eq!(msgs.len(), 1, "{folder}");
        let content = store.message_content(f.id, msgs[0].uid).unwrap();
        assert!(
            content == big.as_bytes(),
            "{folder}: the message came back changed"
        );
    }
    let inbox = store.folder(alice.id, "INBOX").unwrap().unwrap();
    assert_eq!(store.messages(inbox.id).unwrap()[0].flags, "\\Seen");
}
