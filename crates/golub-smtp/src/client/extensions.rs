//! The EHLO keywords the client cares about (RFC 5321 §4.1.1.1 and the extensions').

use golub_types::Reply;

/// What the server's EHLO reply offered (HELO: nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// SIZE (RFC 1870): `Some(0)` when no limit was given.
    pub size: Option<u64>,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// CHUNKING (RFC 3030): with PIPELINING, content goes as BDAT chunks.
    pub chunking: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// DSN (RFC 3461): NOTIFY, ORCPT, RET and ENVID may be passed on.
    pub dsn: bool,
    /// The SASL mechanisms offered with AUTH (RFC 4954), upper case.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the keyword lines of an EHLO reply (all but the first, RFC 5321 §4.1.1.1).
    pub fn parse(reply: &Reply) -> Self {
        let mut e = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "SIZE" => {
                    e.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                }
                "PIPELINING" => e.pipelining = true,
                "8BITMIME" => e.eight_bit_mime = true,
                "SMTPUTF8" => e.smtputf8 = true,
                "STARTTLS" => e.starttls = true,
                "CHUNKING" => e.chunking = true,
                "ENHANCEDSTATUSCODES" => e.enhanced_status_codes = true,
                "DSN" => e.dsn = true,
                "AUTH" => e.auth = words.map(|w| w.to_ascii_uppercase()).collect(),
                _ => {}
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_read_case_blind_and_unknown_ones_skipped() {
        let r = Reply::plain(
            250,
            vec![
                "mx.example greets you".into(),
                "pipelining".into(),
                "SIZE 35882577".into(),
                "X-UNKNOWN a b".into(),
                "chunking".into(),
                "AUTH login Plain".into(),
                "DSN".into(),
                "".into(),
            ],
        );
        let e = Extensions::parse(&r);
        assert!(e.pipelining && e.chunking && !e.starttls && !e.smtputf8);
        assert_eq!(e.size, Some(35882577));
        assert!(e.dsn);
        assert_eq!(e.auth, ["LOGIN", "PLAIN"]);
        // The greeting line is not a keyword.
        let r = Reply::plain(250, vec!["PIPELINING".into()]);
        assert!(!Extensions::parse(&r).pipelining);
    }
}
