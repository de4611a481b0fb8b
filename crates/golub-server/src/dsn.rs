//! Delivery status notifications (RFC 3464): the bounce report sent to the reverse path
//! when recipients fail for good, and the delay report sent once when a message has
//! waited `warn_after`. Reports go out with the null reverse path `<>` so that a report
//! about a report never loops.

use crate::cleanup::rfc5322_date;
use golub_types::QueueId;

/// One recipient in a report.
pub struct FailedRecipient<'a> {
    pub original: &'a str,
    pub final_address: &'a str,
    /// The reply text with its enhanced code, e.g. `5.4.6 alias loop`.
    pub reply: &'a str,
}

/// What a report says of its recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Delivery failed for good (`Action: failed`).
    Failed,
    /// Delivery is still being tried, until this time (Unix seconds; `Action: delayed`,
    /// `Will-Retry-Until`).
    Delayed { retry_until: i64 },
}

/// The message of a report.
pub struct Report<'a> {
    pub hostname: &'a str,
    /// The reverse path of the original message: where the report goes.
    pub to: &'a str,
    /// The original message's queue id.
    pub id: QueueId,
    pub kind: ReportKind,
    pub recipients: &'a [FailedRecipient<'a>],
    /// The original message's header section.
    pub original_headers: &'a [u8],
    /// When the original message arrived.
    pub arrival: i64,
    /// When the report is made.
    pub now: i64,
}

/// Builds a multipart/report bounce for `original_headers` of message `id`.
pub fn bounce_message(
    hostname: &str,
    to: &str,
    id: QueueId,
    failed: &[FailedRecipient<'_>],
    original_headers: &[u8],
    unix_time: i64,
) -> Vec<u8> {
    report_message(&Report {
        hostname,
        to,
        id,
        kind: ReportKind::Failed,
        recipients: failed,
        original_headers,
        arrival: unix_time,
        now: unix_time,
    })
}

/// Builds a multipart/report (RFC 6522) with a message/delivery-status part (RFC 3464).
pub fn report_message(r: &Report<'_>) -> Vec<u8> {
    let Report {
        hostname,
        to,
        id,
        kind,
        recipients,
        original_headers,
        arrival,
        now,
    } = *r;
    let (tag, subject, summary, action) = match kind {
        ReportKind::Failed => (
            "bounce",
            "Undelivered Mail Returned to Sender".to_string(),
            "Your message could not be delivered to one or more recipients.".to_string(),
            "failed",
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
        ),
    };
    let boundary = format!("{id}/{hostname}");
    let date = rfc5322_date(now);
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.{tag}@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         This is the mail system at host {hostname}.\r\n\
         \r\n\
         {summary}\r\n\
         \r\n"
    ));
    for f in recipients {
        m.push_str(&format!("<{}>: {}\r\n", f.original, f.reply));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {hostname}\r\n\
         X-Golub-Queue-ID: {id}\r\n\
         Arrival-Date: {}\r\n",
        rfc5322_date(arrival)
    ));
    let default_status = match kind {
        ReportKind::Failed => "5.0.0",
        ReportKind::Delayed { .. } => "4.0.0",
    };
    for f in recipients {
        let status = f.reply.split_whitespace().next().unwrap_or(default_status);
        m.push_str(&format!(
            "\r\nOriginal-Recipient: rfc822; {}\r\n\
             Final-Recipient: rfc822; {}\r\n\
             Action: {action}\r\n\
             Status: {status}\r\n\
             Diagnostic-Code: smtp; {}\r\n",
            f.original, f.final_address, f.reply
        ));
        if let ReportKind::Delayed { retry_until } = kind {
            m.push_str(&format!(
                "Will-Retry-Until: {}\r\n",
                rfc5322_date(retry_until)
            ));
        }
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n"
    ));
    let mut out = m.into_bytes();
    out.extend_from_slice(original_headers);
    if !original_headers.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
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

    #[test]
    fn bounce_is_a_delivery_status_report() {
        let m = bounce_message(
            "mx.example.org",
            "sender@example.org",
            QueueId(1),
            &[FailedRecipient {
                original: "loop@example.org",
                final_address: "loop@example.org",
                reply: "5.4.6 alias loop detected",
            }],
            b"Subject: hello\r\n",
            0,
        );
        let text = String::from_utf8(m).unwrap();
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("Status: 5.4.6"));
        assert!(text.contains("Final-Recipient: rfc822; loop@example.org"));
        assert!(text.contains("Subject: hello"));
        assert!(text.ends_with("--\r\n"));
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "only CRLF line ends"
        );
    }

    #[test]
    fn a_delay_report_says_delayed_and_until_when() {
        let m = report_message(&Report {
            hostname: "mx.example.org",
            to: "sender@example.org",
            id: QueueId(2),
            kind: ReportKind::Delayed { retry_until: 86400 },
            recipients: &[FailedRecipient {
                original: "friend@elsewhere.example",
                final_address: "friend@elsewhere.example",
                reply: "4.4.1 connection refused",
            }],
            original_headers: b"Subject: hello\r\n",
            arrival: 0,
            now: 3600,
        });
        let text = String::from_utf8(m).unwrap();
        assert!(text.contains("Subject: Delayed Mail (still being retried)"));
        assert!(text.contains("Action: delayed\r\nStatus: 4.4.1\r\n"));
        assert!(text.contains("Will-Retry-Until: Fri, 2 Jan 1970 00:00:00 +0000"));
        assert!(text.contains("Arrival-Date: Thu, 1 Jan 1970 00:00:00 +0000"));
        assert!(!text.contains("Action: failed"));
        assert!(!text.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn header_section_stops_at_the_blank_line() {
        assert_eq!(header_section(b"A: b\r\n\r\nbody", 100), b"A: b\r\n");
        assert_eq!(header_section(b"A: b\r\n\r\nbody", 3), b"A: ");
    }
}
