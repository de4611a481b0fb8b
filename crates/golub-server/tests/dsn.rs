//! DSN (RFC 3461) from end to end: Python's smtplib sends with RET, ENVID, NOTIFY and
//! ORCPT to an alias whose target does not exist, so local delivery fails for good, and
//! the sender's INBOX receives the RFC 3464 report those parameters ask for, or none.
//! Every wait polls with a deadline.

use golub_testkit::report::{field, status_fields};
use golub_testkit::{TestServer, python};
use mail_parser::{Message, MessageParser, MimeHeaders};

/// Sends one message from alice to `gone@example.org` with the MAIL and RCPT options
/// given as Python lists in argv[2] and argv[3]; the subject is argv[4].
const SEND_SCRIPT: &str = r#"
import ast, smtplib, sys
port = int(sys.argv[1])
mail_options = ast.literal_eval(sys.argv[2])
rcpt_options = ast.literal_eval(sys.argv[3])
subject = sys.argv[4]
s = smtplib.SMTP('127.0.0.1', port, timeout=20)
s.ehlo('client.example')
assert s.has_extn('dsn'), s.esmtp_features
msg = ("From: alice@example.org\r\nTo: gone@example.org\r\nSubject: %s\r\n\r\nthe body\r\n" % subject).encode()
refused = s.sendmail('alice@example.org', ['gone@example.org'], msg,
                     mail_options=mail_options, rcpt_options=rcpt_options)
assert refused == {}, refused
s.quit()
print('ok')
"#;

async fn send(t: &TestServer, mail_options: &str, rcpt_options: &str, subject: &str) {
    let args = [
        t.smtp.port().to_string(),
        mail_options.to_string(),
        rcpt_options.to_string(),
        subject.to_string(),
    ];
    let (ok, out) = python(SEND_SCRIPT, &args).await;
    assert!(ok, "smtplib: {out}");
}

/// A server with an alias that leads nowhere: its messages bounce at delivery.
async fn server() -> TestServer {
    let t = TestServer::start().await;
    t.store()
        .add_alias("gone@example.org", &["nobody@example.org".to_string()])
        .unwrap();
    t
}

/// The `type/subtype` of the report's last part: what it returns of the original.
fn returned_type(m: &Message<'_>) -> String {
    let ct = m.parts.last().unwrap().content_type().unwrap();
    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_carries_the_envid_orcpt_and_headers_the_sender_asked_for() {
    let t = server().await;
    send(
        &t,
        "['RET=HDRS', 'ENVID=abc+2Bdef']",
        "['NOTIFY=FAILURE', 'ORCPT=rfc822;orig@example.org']",
        "asked for a report",
    )
    .await;
    let inbox = t.wait_for_inbox("alice@example.org", 1).await;
    let m = MessageParser::default().parse(&inbox[0]).unwrap();
    assert_eq!(m.subject(), Some("Undelivered Mail Returned to Sender"));
    let groups = status_fields(&m);
    assert_eq!(groups.len(), 2, "{groups:?}");
    // RFC 3461 §6.3: the ENVID as the sender meant it, decoded from its xtext.
    assert_eq!(field(&groups[0], "Original-Envelope-Id"), Some("abc+def"));
    let rcpt = &groups[1];
    assert_eq!(
        field(rcpt, "Original-Recipient"),
        Some("rfc822;orig@example.org")
    );
    assert_eq!(
        field(rcpt, "Final-Recipient"),
        Some("rfc822; nobody@example.org")
    );
    assert_eq!(field(rcpt, "Action"), Some("failed"));
    assert_eq!(field(rcpt, "Status"), Some("5.1.1"));
    assert_eq!(returned_type(&m), "text/rfc822-headers");
    let returned = String::from_utf8_lossy(m.parts.last().unwrap().contents()).into_owned();
    assert!(
        returned.contains("Subject: asked for a report"),
        "{returned}"
    );
    assert!(!returned.contains("the body"), "{returned}");
    t.wait_for_empty_queue().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_never_gets_no_bounce_and_the_default_gets_the_whole_message() {
    let t = server().await;
    send(&t, "[]", "['NOTIFY=NEVER']", "asked for none").await;
    send(&t, "[]", "[]", "asked for nothing special").await;
    // The second message's bounce arrives; once the queue is empty, a bounce for the
    // first would have been delivered too (it is queued with the first's outcome).
    t.wait_for_inbox("alice@example.org", 1).await;
    t.wait_for_empty_queue().await;
    let inbox = t.inbox("alice@example.org");
    assert_eq!(inbox.len(), 1, "one bounce only");
    let m = MessageParser::default().parse(&inbox[0]).unwrap();
    let groups = status_fields(&m);
    assert_eq!(field(&groups[0], "Original-Envelope-Id"), None);
    assert_eq!(
        field(&groups[1], "Original-Recipient"),
        Some("rfc822; gone@example.org")
    );
    // Without RET, a small original comes back whole, as message/rfc822.
    assert_eq!(returned_type(&m), "message/rfc822");
    let original = m.parts.last().unwrap().message().expect("the original");
    assert_eq!(original.subject(), Some("asked for nothing special"));
    assert_eq!(original.body_text(0).as_deref(), Some("the body\r\n"));
}
