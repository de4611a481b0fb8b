//! Delivery status notifications (RFC 3464): the reports sent to the reverse path about
//! what became of a message's recipients: failed for good (a bounce), delayed (sent once
//! when a message has waited `warn_after`), and, when the sender asked with
//! `NOTIFY=SUCCESS` (RFC 3461), delivered or relayed. Reports go out with the null reverse
//! path `<>` so that a report about a report never loops.
//!
//! [`wants_report`] decides per recipient from its `NOTIFY`; [`report_for`] builds the
//! queue entry of one report from a queued message, honouring `NOTIFY`, `RET`, `ENVID` and
//! `ORCPT`; [`report_message`] is the pure message builder under it.

use crate::cleanup::rfc5322_date;
use golub_store::{BodyRef, NewMessage, QueuedMessage, Store};
use golub_types::QueueId;
use golub_types::dsn::Notify;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};

/// The most of the original a report returns in full (`RET=FULL`, or no RET): Postfix's
/// `bounce_size_limit`. A larger original is returned as its header section only, which
/// keeps its MIME structure whole and a report's memory small.
pub const RETURN_LIMIT: usize = 50_000;
/// The most of the original's header section a report quotes.
pub const HEADER_LIMIT: usize = 64 * 1024;

/// One recipient in a report.
#[derive(Debug, Clone, Copy)]
pub struct ReportRecipient<'a> {
    /// The address the sender gave (before alias expansion).
    pub original: &'a str,
    /// The address the outcome is about.
    pub final_address: &'a str,
    /// The reply with its enhanced code: our own text (`5.4.6 alias loop detected`), or
    /// the remote server's whole reply (`550 5.1.1 no such user`) with `remote_mta`.
    pub reply: &'a str,
    /// The recipient's DSN `NOTIFY` as the queue keeps it (`''` when not given).
    pub notify: &'a str,
    /// The recipient's DSN `ORCPT`, decoded, as `addr-type;address` (`''` when not given).
    pub orcpt: &'a str,
    /// The server that gave `reply`, when the outcome came from one (RFC 3464 §2.3.5).
    pub remote_mta: Option<&'a str>,
}

/// The name reports used before they covered success too.
pub type FailedRecipient<'a> = ReportRecipient<'a>;

/// What a report says of its recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Delivery failed for good (`Action: failed`).
    Failed,
    /// Delivery is still being tried, until this time (Unix seconds; `Action: delayed`,
    /// `Will-Retry-Until`).
    Delayed { retry_until: i64 },
    /// Delivered to the recipient's mailbox (`Action: delivered`).
    Delivered,
    /// Passed on to a server that will not report on it itself, e.g. one without DSN
    /// (`Action: relayed`, RFC 3461 §6.2.6.2).
    Relayed,
}

impl ReportKind {
    fn is_success(self) -> bool {
        matches!(self, ReportKind::Delivered | ReportKind::Relayed)
    }
}

/// Whether a recipient with DSN request `notify` (as the queue keeps it) wants a report of
/// `kind`. Without NOTIFY, failures and delays are reported (RFC 3461 §4.1); NEVER wants
/// none; success only when asked for. An unreadable value counts as none given.
pub fn wants_report(notify: &str, kind: ReportKind) -> bool {
    let n = match Notify::parse(notify) {
        Ok(n) => n,
        Err(_) => Notify {
            success: false,
            failure: true,
            delay: true,
        },
    };
    match kind {
        ReportKind::Failed => n.failure,
        ReportKind::Delayed { .. } => n.delay,
        ReportKind::Delivered | ReportKind::Relayed => n.success,
    }
}

/// The message of a report.
pub struct Report<'a> {
    pub hostname: &'a str,
    /// The reverse path of the original message: where the report goes.
    pub to: &'a str,
    /// The original message's queue id.
    pub id: QueueId,
    pub kind: ReportKind,
    pub recipients: &'a [ReportRecipient<'a>],
    /// The original message, or as much of its beginning as was read (see
    /// [`original_needed`]).
    pub original: &'a [u8],
    /// The original's whole size: when `original` holds less, only its header section is
    /// returned.
    pub original_size: u64,
    /// DSN `RET` of the original (`FULL`, `HDRS`, `''`).
    pub ret: &'a str,
    /// DSN `ENVID` of the original, decoded (`''` when not given).
    pub envid: &'a str,
    /// When the original message arrived.
    pub arrival: i64,
    /// When the report is made.
    pub now: i64,
}

/// Whether a report of `kind` returns the whole original: failures and delays do unless
/// the sender said `RET=HDRS` (without RET, in full, as Postfix does), up to
/// [`RETURN_LIMIT`]; success reports never (RFC 3461 §4.3 suggests headers).
fn returns_full(kind: ReportKind, ret: &str, size: u64) -> bool {
    !kind.is_success() && !ret.eq_ignore_ascii_case("HDRS") && size <= RETURN_LIMIT as u64
}

/// How many octets of the original (of `size` octets) a report of `kind` needs read: the
/// whole when it is returned in full, else enough for its header section.
pub fn original_needed(kind: ReportKind, ret: &str, size: u64) -> usize {
    if returns_full(kind, ret, size) {
        size as usize
    } else {
        HEADER_LIMIT
    }
}

/// The report of `kind` about `recipients` of the queued `msg`, as a queue entry to its
/// reverse path; `None` when no report is due: the message has the null reverse path (a
/// report itself, RFC 3461 §6.2), or no recipient wants this kind ([`wants_report`]).
/// Reads at most what the report returns of the original from the store; an unreadable
/// original is returned as nothing rather than holding the report back.
pub fn report_for(
    store: &Store,
    hostname: &str,
    msg: &QueuedMessage,
    kind: ReportKind,
    recipients: &[ReportRecipient<'_>],
    now: i64,
) -> Option<NewMessage> {
    if msg.reverse_path.is_empty() {
        return None;
    }
    let wanted: Vec<ReportRecipient<'_>> = recipients
        .iter()
        .filter(|r| wants_report(r.notify, kind))
        .copied()
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let original = store
        .read_blob_prefix(msg.blob_id, original_needed(kind, &msg.ret, msg.blob_size))
        .unwrap_or_default();
    let body = report_message(&Report {
        hostname,
        to: &msg.reverse_path,
        id: msg.id,
        kind,
        recipients: &wanted,
        original: &original,
        original_size: msg.blob_size,
        ret: &msg.ret,
        envid: &msg.envid,
        arrival: msg.received_at,
        now,
    });
    Some(NewMessage {
        id: crate::queue::new_queue_id(),
        reverse_path: String::new(),
        recipients: vec![msg.reverse_path.to_lowercase().into()],
        smtputf8: msg.smtputf8,
        eight_bit: true,
        body: BodyRef::Inline(body),
        envid: String::new(),
        ret: String::new(),
    })
}

/// The enhanced status code (RFC 3463) in a reply: its first word, or the second after a
/// reply code (`550 5.1.1 ...`).
fn enhanced_code(reply: &str) -> Option<&str> {
    let is_code = |w: &&str| {
        let mut parts = w.split('.');
        let class = parts.next();
        let rest: Vec<&str> = parts.collect();
        matches!(class, Some("2" | "4" | "5"))
            && rest.len() == 2
            && rest
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    reply.split_whitespace().take(2).find(is_code)
}

/// Builds a multipart/report (RFC 6522) with a message/delivery-status part (RFC 3464).
pub fn report_message(r: &Report<'_>) -> Vec<u8> {
    let Report {
        hostname,
        to,
        id,
        kind,
        recipients,
        original,
        original_size,
        ret,
        envid,
        arrival,
        now,
    } = *r;
    let (tag, subject, summary, action, default_status) = match kind {
        ReportKind::Failed => (
            "bounce",
            "Undelivered Mail Returned to Sender".to_string(),
            "Your message could not be delivered to one or more recipients.".to_string(),
            "failed",
            "5.0.0",
        ),
        ReportKind::Delayed { retry_until } => (
            "delay",
            "Delayed Mail (still being retried)".to_string(),
            format!(
                "Your message could not be delivered yet to one or more recipients.\r\n\
                 It will be tried again until {}; you need not send it again.",
                rfc5322_date(retry_until)
            ),
            "delayed",
            "4.0.0",
        ),
        ReportKind::Delivered => (
            "delivered",
            "Successful Mail Delivery Report".to_string(),
            "Your message was delivered to the recipients below, as you asked to be told."
                .to_string(),
            "delivered",
            "2.0.0",
        ),
        ReportKind::Relayed => (
            "relayed",
            "Successful Mail Delivery Report".to_string(),
            "Your message was passed on to the mail servers of the recipients below,\r\n\
             which will not report on its delivery."
                .to_string(),
            "relayed",
            "2.0.0",
        ),
    };
    // The human-readable part.
    let mut text = format!("This is the mail system at host {hostname}.\r\n\r\n{summary}\r\n\r\n");
    for f in recipients {
        match f.remote_mta {
            Some(mta) => text.push_str(&format!(
                "<{}>: host {mta} said: {}\r\n",
                f.original, f.reply
            )),
            None => text.push_str(&format!("<{}>: {}\r\n", f.original, f.reply)),
        }
    }
    // The machine-readable part (RFC 3464 §2.2, §2.3).
    let mut status = format!("Reporting-MTA: dns; {hostname}\r\nX-Golub-Queue-ID: {id}\r\n");
    // RFC 3464 §2.2.1, RFC 3461 §6.3: the sender's envelope id, decoded from xtext.
    if !envid.is_empty() {
        status.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    status.push_str(&format!("Arrival-Date: {}\r\n", rfc5322_date(arrival)));
    for f in recipients {
        let code = match enhanced_code(f.reply) {
            // A success report says success whatever the text holds.
            Some(code) if !kind.is_success() || code.starts_with('2') => code,
            _ => default_status,
        };
        // RFC 3464 §2.3.1: the sender's ORCPT as given; without one, the address the
        // sender used, as Postfix does.
        if f.orcpt.is_empty() {
            status.push_str(&format!(
                "\r\nOriginal-Recipient: rfc822; {}\r\n",
                f.original
            ));
        } else {
            status.push_str(&format!("\r\nOriginal-Recipient: {}\r\n", f.orcpt));
        }
        status.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n\
             Action: {action}\r\n\
             Status: {code}\r\n",
            f.final_address
        ));
        // RFC 3464 §2.3.5, §2.3.6: who said so, and what; our own findings are not SMTP
        // replies, so they get our own diagnostic type.
        match f.remote_mta {
            Some(mta) => status.push_str(&format!(
                "Remote-MTA: dns; {mta}\r\nDiagnostic-Code: smtp; {}\r\n",
                f.reply
            )),
            None => status.push_str(&format!("Diagnostic-Code: x-golub; {}\r\n", f.reply)),
        }
        if let ReportKind::Delayed { retry_until } = kind {
            status.push_str(&format!(
                "Will-Retry-Until: {}\r\n",
                rfc5322_date(retry_until)
            ));
        }
    }
    // The original, or its header section. RFC 2046 §5.2.1: a message/rfc822 body is
    // never encoded, so the parts are written as they are ("raw" to mail-builder).
    let whole = original.len() as u64 == original_size;
    let returned = if whole && returns_full(kind, ret, original_size) {
        MimePart::new("message/rfc822", original)
    } else {
        MimePart::new(
            "text/rfc822-headers",
            header_section(original, HEADER_LIMIT),
        )
    };
    let eight_bit = |b: &[u8]| if b.is_ascii() { "7bit" } else { "8bit" };
    let returned = returned.transfer_encoding(eight_bit(original));
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "utf-8"),
                text.as_str(),
            )
            .transfer_encoding(eight_bit(text.as_bytes())),
            // Bytes, not text: a delivery-status part has no charset.
            MimePart::new("message/delivery-status", status.as_bytes())
                .transfer_encoding(eight_bit(status.as_bytes())),
            returned,
        ]),
    );
    let mut out = MessageBuilder::new()
        .from(Address::new_address(
            Some("Mail Delivery System"),
            format!("MAILER-DAEMON@{hostname}"),
        ))
        .to(Address::new_address(None::<&str>, to))
        .subject(subject)
        .date(now)
        .message_id(format!("{id}.{tag}@{hostname}"))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .write_to_vec()
        .unwrap_or_default();
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The header section of a message (up to the empty line), at most `limit` bytes.
pub fn header_section(message: &[u8], limit: usize) -> &[u8] {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(message.len());
    &message[..end.min(limit)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use golub_testkit::report::{field, status_fields};
    use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders};

    const ORIGINAL: &[u8] = b"From: <sender@example.org>\r\nSubject: hello\r\n\r\nthe body\r\n";

    fn recipient<'a>(reply: &'a str) -> ReportRecipient<'a> {
        ReportRecipient {
            original: "friend@elsewhere.example",
            final_address: "friend@elsewhere.example",
            reply,
            notify: "",
            orcpt: "",
            remote_mta: None,
        }
    }

    fn report<'a>(kind: ReportKind, recipients: &'a [ReportRecipient<'a>]) -> Report<'a> {
        Report {
            hostname: "mx.example.org",
            to: "sender@example.org",
            id: QueueId(1),
            kind,
            recipients,
            original: ORIGINAL,
            original_size: ORIGINAL.len() as u64,
            ret: "",
            envid: "",
            arrival: 0,
            now: 3600,
        }
    }

    /// The report's parts other than the multipart root, by `type/subtype`.
    fn parts<'a>(m: &'a Message<'a>) -> Vec<(String, &'a MessagePart<'a>)> {
        m.parts
            .iter()
            .skip(1)
            .map(|p| {
                let ct = p.content_type().expect("every part has a content type");
                let name = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""));
                (name.to_ascii_lowercase(), p)
            })
            .collect()
    }

    fn parse(bytes: &[u8]) -> Message<'_> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "only CRLF line ends"
        );
        assert!(text.ends_with("--\r\n"));
        MessageParser::default()
            .parse(bytes)
            .expect("the report parses")
    }

    #[test]
    fn wants_report_follows_notify_with_failure_and_delay_by_default() {
        let delayed = ReportKind::Delayed { retry_until: 0 };
        let kinds = [
            ReportKind::Failed,
            delayed,
            ReportKind::Delivered,
            ReportKind::Relayed,
        ];
        let table: &[(&str, [bool; 4])] = &[
            ("", [true, true, false, false]),
            ("NEVER", [false, false, false, false]),
            ("SUCCESS", [false, false, true, true]),
            ("FAILURE", [true, false, false, false]),
            ("DELAY", [false, true, false, false]),
            ("SUCCESS,FAILURE,DELAY", [true, true, true, true]),
            ("FAILURE,DELAY", [true, true, false, false]),
            // Not something the queue writes: taken as no NOTIFY.
            ("garbage", [true, true, false, false]),
        ];
        for (notify, want) in table {
            for (kind, want) in kinds.iter().zip(want) {
                assert_eq!(wants_report(notify, *kind), *want, "{notify:?} {kind:?}");
            }
        }
    }

    #[test]
    fn a_failure_report_carries_envid_orcpt_the_remote_mta_and_headers_for_ret_hdrs() {
        let failed = [ReportRecipient {
            original: "orig@example.org",
            final_address: "user@elsewhere.example",
            reply: "550 5.1.1 <user@elsewhere.example>: no such user",
            notify: "FAILURE",
            orcpt: "rfc822;orig@example.org",
            remote_mta: Some("mx.elsewhere.example"),
        }];
        let mut r = report(ReportKind::Failed, &failed);
        r.ret = "HDRS";
        r.envid = "abc+def";
        let bytes = report_message(&r);
        let m = parse(&bytes);
        assert_eq!(m.subject(), Some("Undelivered Mail Returned to Sender"));
        let types: Vec<String> = parts(&m).into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            types,
            [
                "text/plain",
                "message/delivery-status",
                "text/rfc822-headers"
            ]
        );
        let groups = status_fields(&m);
        assert_eq!(groups.len(), 2);
        let msg = &groups[0];
        assert_eq!(field(msg, "Reporting-MTA"), Some("dns; mx.example.org"));
        assert_eq!(field(msg, "Original-Envelope-Id"), Some("abc+def"));
        assert_eq!(
            field(msg, "Arrival-Date"),
            Some("Thu, 1 Jan 1970 00:00:00 +0000")
        );
        let rcpt = &groups[1];
        assert_eq!(
            field(rcpt, "Original-Recipient"),
            Some("rfc822;orig@example.org")
        );
        assert_eq!(
            field(rcpt, "Final-Recipient"),
            Some("rfc822; user@elsewhere.example")
        );
        assert_eq!(field(rcpt, "Action"), Some("failed"));
        assert_eq!(field(rcpt, "Status"), Some("5.1.1"));
        assert_eq!(field(rcpt, "Remote-MTA"), Some("dns; mx.elsewhere.example"));
        assert_eq!(
            field(rcpt, "Diagnostic-Code"),
            Some("smtp; 550 5.1.1 <user@elsewhere.example>: no such user")
        );
        let (_, returned) = parts(&m).pop().unwrap();
        let headers = std::str::from_utf8(returned.contents()).unwrap();
        assert!(headers.contains("Subject: hello"));
        assert!(!headers.contains("the body"));
    }

    #[test]
    fn without_ret_a_small_original_is_returned_whole_and_a_large_one_as_headers() {
        let failed = [recipient("5.1.1 mailbox unavailable")];
        let bytes = report_message(&report(ReportKind::Failed, &failed));
        let m = parse(&bytes);
        let groups = status_fields(&m);
        assert_eq!(field(&groups[0], "Original-Envelope-Id"), None);
        assert_eq!(
            field(&groups[1], "Original-Recipient"),
            Some("rfc822; friend@elsewhere.example")
        );
        assert_eq!(
            field(&groups[1], "Diagnostic-Code"),
            Some("x-golub; 5.1.1 mailbox unavailable")
        );
        assert_eq!(field(&groups[1], "Remote-MTA"), None);
        let (kind, returned) = parts(&m).pop().unwrap();
        assert_eq!(kind, "message/rfc822");
        let inner = returned.message().expect("a nested message");
        assert_eq!(inner.subject(), Some("hello"));
        assert_eq!(inner.body_text(0).as_deref(), Some("the body\r\n"));

        // RET=FULL over the limit: only what was read, and headers only, so that the
        // original's MIME structure is never cut.
        let mut big = ORIGINAL.to_vec();
        big.resize(RETURN_LIMIT + 1, b'x');
        assert_eq!(
            original_needed(ReportKind::Failed, "FULL", big.len() as u64),
            HEADER_LIMIT
        );
        let mut r = report(ReportKind::Failed, &failed);
        r.ret = "FULL";
        r.original = &big[..100];
        r.original_size = big.len() as u64;
        let bytes = report_message(&r);
        let m = parse(&bytes);
        let (kind, returned) = parts(&m).pop().unwrap();
        assert_eq!(kind, "text/rfc822-headers");
        assert!(!String::from_utf8_lossy(returned.contents()).contains("xxx"));
        assert_eq!(
            original_needed(ReportKind::Failed, "", ORIGINAL.len() as u64),
            ORIGINAL.len()
        );
    }

    #[test]
    fn success_reports_say_delivered_or_relayed_with_headers_only() {
        let delivered = [ReportRecipient {
            orcpt: "rfc822;alias@example.org",
            notify: "SUCCESS",
            ..recipient("2.0.0 delivered to mailbox")
        }];
        let mut r = report(ReportKind::Delivered, &delivered);
        r.ret = "FULL";
        assert_eq!(
            original_needed(ReportKind::Delivered, "FULL", 10),
            HEADER_LIMIT
        );
        let bytes = report_message(&r);
        let m = parse(&bytes);
        assert_eq!(m.subject(), Some("Successful Mail Delivery Report"));
        let groups = status_fields(&m);
        assert_eq!(field(&groups[1], "Action"), Some("delivered"));
        assert_eq!(field(&groups[1], "Status"), Some("2.0.0"));
        assert_eq!(
            field(&groups[1], "Original-Recipient"),
            Some("rfc822;alias@example.org")
        );
        assert_eq!(field(&groups[1], "Will-Retry-Until"), None);
        assert_eq!(parts(&m).pop().unwrap().0, "text/rfc822-headers");

        let relayed = [ReportRecipient {
            remote_mta: Some("mx.elsewhere.example"),
            ..recipient("250 2.0.0 Ok: queued as 1234")
        }];
        let bytes = report_message(&report(ReportKind::Relayed, &relayed));
        let m = parse(&bytes);
        let groups = status_fields(&m);
        assert_eq!(field(&groups[1], "Action"), Some("relayed"));
        assert_eq!(field(&groups[1], "Status"), Some("2.0.0"));
        assert_eq!(
            field(&groups[1], "Remote-MTA"),
            Some("dns; mx.elsewhere.example")
        );
        assert_eq!(
            field(&groups[1], "Diagnostic-Code"),
            Some("smtp; 250 2.0.0 Ok: queued as 1234")
        );
        assert_eq!(parts(&m).pop().unwrap().0, "text/rfc822-headers");
    }

    #[test]
    fn a_delay_report_says_delayed_and_until_when() {
        let delayed = [recipient("4.4.1 connection refused")];
        let bytes = report_message(&report(
            ReportKind::Delayed { retry_until: 86400 },
            &delayed,
        ));
        let m = parse(&bytes);
        assert_eq!(m.subject(), Some("Delayed Mail (still being retried)"));
        let groups = status_fields(&m);
        assert_eq!(field(&groups[1], "Action"), Some("delayed"));
        assert_eq!(field(&groups[1], "Status"), Some("4.4.1"));
        assert_eq!(
            field(&groups[1], "Will-Retry-Until"),
            Some("Fri, 2 Jan 1970 00:00:00 +0000")
        );
    }

    #[test]
    fn report_for_honours_notify_and_the_null_reverse_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        store.enqueue(
            NewMessage {
                id: QueueId(5),
                reverse_path: "Sender@example.org".into(),
                recipients: vec!["a@elsewhere.example".into()],
                smtputf8: false,
                eight_bit: false,
                body: BodyRef::Inline(ORIGINAL.to_vec()),
                envid: "env-1".into(),
                ret: "HDRS".into(),
            },
            move |r| tx.send(r).unwrap(),
        );
        let mut msg = rx.recv().unwrap().unwrap();
        let never = [ReportRecipient {
            notify: "NEVER",
            ..recipient("5.1.1 mailbox unavailable")
        }];
        let default = [recipient("5.1.1 mailbox unavailable")];
        let both = [never[0], default[0]];
        assert!(report_for(&store, "mx", &msg, ReportKind::Failed, &never, 0).is_none());
        assert!(report_for(&store, "mx", &msg, ReportKind::Delivered, &default, 0).is_none());
        let bounce = report_for(&store, "mx", &msg, ReportKind::Failed, &both, 0).unwrap();
        assert_eq!(bounce.reverse_path, "");
        assert_eq!(bounce.recipients, ["sender@example.org".into()]);
        let BodyRef::Inline(body) = &bounce.body else {
            panic!("a report is inline");
        };
        let m = parse(body);
        let groups = status_fields(&m);
        assert_eq!(
            groups.len(),
            2,
            "only the recipient that wants it is listed"
        );
        assert_eq!(field(&groups[0], "Original-Envelope-Id"), Some("env-1"));
        assert_eq!(parts(&m).pop().unwrap().0, "text/rfc822-headers");
        // A report is never made about a message with the null reverse path.
        msg.reverse_path.clear();
        assert!(report_for(&store, "mx", &msg, ReportKind::Failed, &default, 0).is_none());
    }

    #[test]
    fn header_section_stops_at_the_blank_line() {
        assert_eq!(header_section(b"A: b\r\n\r\nbody", 100), b"A: b\r\n");
        assert_eq!(header_section(b"A: b\r\n\r\nbody", 3), b"A: ");
    }
}
