//! Cleanup: what is added to a message between smtpd and the queue. Today that is the
//! `Received:` trace header (RFC 5321 §4.4); the headers of local delivery
//! (`Return-Path:`, `Delivered-To:`) are added per copy by delivery.

use golub_types::QueueId;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the `Received:` header records about one transaction.
pub struct TraceInfo<'a> {
    pub helo: &'a str,
    pub peer: IpAddr,
    pub hostname: &'a str,
    /// `SMTP`, `ESMTP`, `UTF8SMTP`... (RFC 3848, RFC 6531 §3.7.3).
    pub protocol: &'a str,
    /// The TLS version and cipher, recorded as a comment (RFC 3848 §3).
    pub tls: Option<&'a str>,
    pub id: QueueId,
    /// Named only when the message has a single recipient, so that a list's members
    /// do not learn of each other.
    pub single_recipient: Option<String>,
    pub unix_time: i64,
}

/// The `Received:` header, folded, CRLF-terminated.
pub fn received_header(t: &TraceInfo<'_>) -> String {
    let helo: String = t
        .helo
        .chars()
        .filter(|c| !c.is_control() && *c != '(' && *c != ')')
        .take(255)
        .collect();
    let mut h = format!("Received: from {helo} ([{}])", t.peer);
    if let Some(tls) = t.tls {
        h.push_str(&format!("\r\n\t({tls})"));
    }
    h.push_str(&format!(
        "\r\n\tby {} (Golub) with {} id {}",
        t.hostname, t.protocol, t.id
    ));
    if let Some(r) = &t.single_recipient {
        h.push_str(&format!("\r\n\tfor <{r}>"));
    }
    h.push_str(&format!("; {}\r\n", rfc5322_date(t.unix_time)));
    h
}

/// Seconds since the epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An RFC 5322 §3.3 date-time in UTC: `Tue, 1 Dec 2026 18:42:15 +0000`.
pub fn rfc5322_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_150_535),
            "Tue, 1 Dec 2026 18:42:15 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn received_header_names_everything_rfc5321_asks_for() {
        let h = received_header(&TraceInfo {
            helo: "client.example",
            peer: "192.0.2.7".parse().unwrap(),
            hostname: "mx.example.org",
            protocol: "ESMTP",
            tls: None,
            id: QueueId(0xABC),
            single_recipient: Some("alice@example.org".into()),
            unix_time: 0,
        });
        assert_eq!(
            h,
            "Received: from client.example ([192.0.2.7])\r\n\tby mx.example.org (Golub) with ESMTP id 0000000000000ABC\r\n\tfor <alice@example.org>; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}
