//! Delivery status notifications (RFC 3464): the bounce report sent to the reverse path
//! when recipients fail for good. Reports go out with the null reverse path `<>` so that a
//! report about a report never loops.

use crate::cleanup::rfc5322_date;
use golub_types::QueueId;

/// One failed recipient in a report.
pub struct FailedRecipient<'a> {
    pub original: &'a str,
    pub final_address: &'a str,
    /// The reply text with its enhanced code, e.g. `5.4.6 alias loop`.
    pub reply: &'a str,
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
    let boundary = format!("{id}/{hostname}");
    let date = rfc5322_date(unix_time);
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.bounce@{hostname}>\r\n\
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
         Your message could not be delivered to one or more recipients.\r\n\
         \r\n"
    ));
    for f in failed {
        m.push_str(&format!("<{}>: {}\r\n", f.original, f.reply));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {hostname}\r\n\
         X-Golub-Queue-ID: {id}\r\n\
         Arrival-Date: {date}\r\n"
    ));
    for f in failed {
        let status = f.reply.split_whitespace().next().unwrap_or("5.0.0");
        m.push_str(&format!(
            "\r\nOriginal-Recipient: rfc822; {}\r\n\
             Final-Recipient: rfc822; {}\r\n\
             Action: failed\r\n\
             Status: {status}\r\n\
             Diagnostic-Code: smtp; {}\r\n",
            f.original, f.final_address, f.reply
        ));
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
    fn header_section_stops_at_the_blank_line() {
        assert_eq!(header_section(b"A: b\r\n\r\nbody", 100), b"A: b\r\n");
        assert_eq!(header_section(b"A: b\r\n\r\nbody", 3), b"A: ");
    }
}
