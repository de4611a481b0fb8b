//! The server as real clients see it: Python's smtplib and lettre, each sending mail that
//! must arrive byte-exact in the recipients' INBOXes.

use golub_testkit::{TestServer, python, python_with_input};

const SMTPLIB_SCRIPT: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
s = smtplib.SMTP('127.0.0.1', port, timeout=20)
code, _ = s.ehlo('client.example')
assert code == 250, code
for ext in ['size', 'pipelining', '8bitmime', 'enhancedstatuscodes', 'smtputf8', 'chunking']:
    assert s.has_extn(ext), ext
assert s.esmtp_features['size'] == '26214400', s.esmtp_features['size']
msg = b"From: carol@remote.example\r\nTo: alice@example.org\r\nSubject: from smtplib\r\n\r\nline one\r\n.starts with a dot\r\n..two dots\r\n"
refused = s.sendmail('carol@remote.example', ['alice@example.org', 'bob@example.org', 'nobody@example.org'], msg)
assert set(refused) == {'nobody@example.org'}, refused
assert refused['nobody@example.org'][0] == 550, refused
try:
    s.sendmail('carol@remote.example', ['someone@elsewhere.example'], msg)
    raise SystemExit('relay was allowed')
except smtplib.SMTPRecipientsRefused as e:
    assert e.recipients['someone@elsewhere.example'][0] == 554, e.recipients
code, text = s.verify('alice@example.org')
assert code == 252, (code, text)
s.quit()
print('ok')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_delivers_to_local_users_byte_exact() {
    let t = TestServer::start().await;
    let (ok, out) = python(SMTPLIB_SCRIPT, &[t.smtp.port().to_string()]).await;
    assert!(ok, "smtplib: {out}");
    let alice = t.wait_for_inbox("alice@example.org", 1).await;
    let bob = t.wait_for_inbox("bob@example.org", 1).await;
    let a = String::from_utf8(alice[0].clone()).unwrap();
    assert!(a.starts_with("Return-Path: <carol@remote.example>\r\nDelivered-To: alice@example.org\r\nReceived: from client.example ([127.0.0.1])\r\n\tby mx.example.org (Golub) with ESMTP id "), "{a}");
    // Two recipients, so the trace header names neither of them.
    assert!(!a.contains("\tfor <"), "{a}");
    assert!(a.ends_with(
        "From: carol@remote.example\r\nTo: alice@example.org\r\nSubject: from smtplib\r\n\r\nline one\r\n.starts with a dot\r\n..two dots\r\n"
    ), "dot-stuffing undone exactly: {a:?}");
    assert!(String::from_utf8_lossy(&bob[0]).contains("Delivered-To: bob@example.org\r\n"));
    // One body, two mailbox copies.
    let (blobs, refs): (i64, i64) = t
        .store()
        .read(|c| {
            Ok(
                c.query_row("SELECT COUNT(*), SUM(refcount) FROM blobs", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
        .unwrap();
    assert_eq!((blobs, refs), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_sends_and_the_message_arrives() {
    use lettre::message::header::ContentType;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let t = TestServer::start().await;
    let mailer: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(t.smtp.port())
            .build();
    let email = Message::builder()
        .from("Dora <dora@remote.example>".parse().unwrap())
        .to("Alice <alice@example.org>".parse().unwrap())
        .subject("from lettre")
        .header(ContentType::TEXT_PLAIN)
        .body(String::from("Hello from lettre.\r\n.\r\nStill here.\r\n"))
        .unwrap();
    let response = mailer.send(email).await.expect("lettre sends");
    assert_eq!(u16::from(response.code()), 250);
    let msgs = t.wait_for_inbox("alice@example.org", 1).await;
    let text = String::from_utf8(msgs[0].clone()).unwrap();
    assert!(text.contains("Subject: from lettre\r\n"), "{text}");
    assert!(text.contains("\tfor <alice@example.org>;"), "{text}");
    assert!(
        text.contains("\r\n.\r\nStill here."),
        "a lone dot line survives: {text:?}"
    );
    // The reply names the queue id that the Received header carries.
    let reply = response.message().collect::<Vec<_>>().join(" ");
    let id = reply.rsplit(' ').next().unwrap();
    assert!(text.contains(&format!(" id {id}\r\n")), "{reply} / {text}");
}

const LONG_LINES_SCRIPT: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
s = smtplib.SMTP('127.0.0.1', port, timeout=20)
msg = sys.stdin.buffer.read()
refused = s.sendmail('carol@remote.example', ['alice@example.org'], msg)
assert refused == {}, refused
s.quit()
print('ok')
"#;

/// A message with a 100,000-octet and a 5,000-octet text line: real mail has such lines
/// (base64 without line breaks, long HTML), and by default they are kept byte for byte.
fn long_lines_message() -> Vec<u8> {
    let mut msg =
        b"From: carol@remote.example\r\nTo: alice@example.org\r\nSubject: long lines\r\n\r\n"
            .to_vec();
    msg.extend((0..100_000 - 2).map(|i| b"abcdefghij"[i % 10]));
    msg.extend_from_slice(b"\r\n.");
    msg.extend((0..5_000 - 3).map(|i| b"0123456789"[i % 10]));
    msg.extend_from_slice(b"\r\nlast line\r\n");
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_sends_lines_of_100000_octets_and_they_are_stored_exactly() {
    let t = TestServer::start().await;
    let msg = long_lines_message();
    let (ok, out) =
        python_with_input(LONG_LINES_SCRIPT, &[t.smtp.port().to_string()], msg.clone()).await;
    assert!(ok, "smtplib: {out}");
    let alice = t.wait_for_inbox("alice@example.org", 1).await;
    let stored = &alice[0];
    assert!(
        stored.ends_with(&msg),
        "stored message differs from what was sent ({} octets stored, {} sent)",
        stored.len(),
        msg.len()
    );
    // Only the trace headers come before the client's message.
    let head = &stored[..stored.len() - msg.len()];
    assert!(head.starts_with(b"Return-Path: <carol@remote.example>\r\n"));
    assert!(!head.windows(10).any(|w| w == b"abcdefghij"));
}
