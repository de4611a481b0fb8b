//! Delivery status notification requests (RFC 3461): what a client asks of the reports
//! about its message, with MAIL's `RET` and `ENVID` and RCPT's `NOTIFY` and `ORCPT`.
//!
//! Values are parsed once from their wire form and kept decoded: `ENVID` and the address
//! of `ORCPT` are xtext on the wire (RFC 3461 §4) and go into reports decoded (RFC 3461
//! §6.3); [`xtext_encode`] gives the wire form back for a server we relay to.

use std::fmt;

/// Why a DSN parameter was refused; the text is what the client sees after "syntax error:".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.as_str())]
pub enum DsnError {
    BadRet,
    BadEnvid,
    /// RFC 3461 §4.4: at most 100 characters.
    EnvidTooLong,
    BadNotify,
    BadOrcpt,
    /// RFC 3461 §4.2: at most 500 characters.
    OrcptTooLong,
}

impl DsnError {
    /// The error's text, static so that a protocol reply can hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnError::BadRet => "ret must be full or hdrs",
            DsnError::BadEnvid => "envid must be xtext of printable ascii",
            DsnError::EnvidTooLong => "envid longer than 100 characters",
            DsnError::BadNotify => "notify must be never, or a list of success, failure and delay",
            DsnError::BadOrcpt => "orcpt must be addr-type;xtext",
            DsnError::OrcptTooLong => "orcpt longer than 500 characters",
        }
    }
}

/// RFC 3461 §4.4: ENVID is at most 100 characters.
const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: ORCPT is at most 500 characters.
const MAX_ORCPT: usize = 500;

/// `RET=` on MAIL (RFC 3461 §4.3): how much of the message a failure report returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// The whole message.
    Full,
    /// Its header section only.
    Hdrs,
}

impl Ret {
    /// Parses the value of `RET=`, case-insensitively.
    pub fn parse(v: &str) -> Result<Ret, DsnError> {
        if v.eq_ignore_ascii_case("FULL") {
            Ok(Ret::Full)
        } else if v.eq_ignore_ascii_case("HDRS") {
            Ok(Ret::Hdrs)
        } else {
            Err(DsnError::BadRet)
        }
    }

    /// The keyword as RFC 3461 spells it, which is also how the queue keeps it.
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `NOTIFY=` on RCPT (RFC 3461 §4.1): which reports the sender wants for the recipient.
/// All three false is `NEVER`; a recipient without `NOTIFY` has none (`Option::None`),
/// which means failure and delay reports (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    /// Parses `NEVER` or a comma-separated list of `SUCCESS`, `FAILURE` and `DELAY`, each
    /// at most once, case-insensitively. NEVER stands alone.
    pub fn parse(v: &str) -> Result<Notify, DsnError> {
        if v.eq_ignore_ascii_case("NEVER") {
            return Ok(Notify::NEVER);
        }
        let mut n = Notify::NEVER;
        for word in v.split(',') {
            let slot = if word.eq_ignore_ascii_case("SUCCESS") {
                &mut n.success
            } else if word.eq_ignore_ascii_case("FAILURE") {
                &mut n.failure
            } else if word.eq_ignore_ascii_case("DELAY") {
                &mut n.delay
            } else {
                return Err(DsnError::BadNotify);
            };
            if *slot {
                return Err(DsnError::BadNotify);
            }
            *slot = true;
        }
        Ok(n)
    }

    /// True for `NEVER`.
    pub fn is_never(self) -> bool {
        self == Notify::NEVER
    }
}

/// `NEVER`, or the keywords in the order SUCCESS, FAILURE, DELAY: the wire form, which is
/// also how the queue keeps it.
impl fmt::Display for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            return f.write_str("NEVER");
        }
        let words = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ];
        let list: Vec<&str> = words.iter().filter(|w| w.0).map(|w| w.1).collect();
        f.write_str(&list.join(","))
    }
}

/// `ORCPT=addr-type;xtext` on RCPT (RFC 3461 §4.2): the recipient as the sender first
/// gave it, the address decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orcpt {
    /// `rfc822` for Internet addresses; kept as sent.
    pub addr_type: String,
    pub address: String,
}

impl Orcpt {
    /// Parses the wire form. The decoded address must be printable ASCII, as it goes into
    /// a report's header field as it is.
    pub fn parse(v: &str) -> Result<Orcpt, DsnError> {
        if v.len() > MAX_ORCPT {
            return Err(DsnError::OrcptTooLong);
        }
        let (addr_type, encoded) = v.split_once(';').ok_or(DsnError::BadOrcpt)?;
        // addr-type = atom (RFC 3461 §4.2, RFC 822 atom): letters, digits and the like.
        let atom = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
        if addr_type.is_empty() || !addr_type.bytes().all(atom) {
            return Err(DsnError::BadOrcpt);
        }
        let address = xtext_decode(encoded)
            .filter(|a| !a.is_empty() && a.bytes().all(|b| (b' '..=b'~').contains(&b)))
            .ok_or(DsnError::BadOrcpt)?;
        Ok(Orcpt {
            addr_type: addr_type.to_string(),
            address,
        })
    }

    /// Reads back the decoded form `addr-type;address` that [`fmt::Display`] writes (how
    /// the queue keeps it); `None` for anything else, e.g. the empty string.
    pub fn from_decoded(s: &str) -> Option<Orcpt> {
        let (addr_type, address) = s.split_once(';')?;
        (!addr_type.is_empty() && !address.is_empty()).then(|| Orcpt {
            addr_type: addr_type.to_string(),
            address: address.to_string(),
        })
    }

    /// The wire form, `addr-type;xtext`, for a server we pass the message on to.
    pub fn to_wire(&self) -> String {
        format!("{};{}", self.addr_type, xtext_encode(&self.address))
    }
}

/// `addr-type;address`, decoded: the form of a report's Original-Recipient field (RFC 3464
/// §2.3.1).
impl fmt::Display for Orcpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}", self.addr_type, self.address)
    }
}

/// Parses `ENVID=`: xtext (RFC 3461 §4.4) of at most 100 characters whose decoded form is
/// printable ASCII (spaces allowed).
pub fn parse_envid(v: &str) -> Result<String, DsnError> {
    if v.len() > MAX_ENVID {
        return Err(DsnError::EnvidTooLong);
    }
    xtext_decode(v)
        .filter(|e| !e.is_empty() && e.bytes().all(|b| (b' '..=b'~').contains(&b)))
        .ok_or(DsnError::BadEnvid)
}

/// The DSN parameters of a whole transaction (MAIL's), decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageDsn {
    pub ret: Option<Ret>,
    pub envid: Option<String>,
}

/// The DSN parameters of one recipient (its RCPT's), decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptDsn {
    pub notify: Option<Notify>,
    pub orcpt: Option<Orcpt>,
}

/// Decodes xtext (RFC 3461 §4): `+XX` (two upper-case hex digits) stands for that octet,
/// other printable ASCII but `+` and `=` for itself. `None` when `v` is not xtext or does
/// not decode to UTF-8. The empty string decodes to itself.
pub fn xtext_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: Option<&u8>| match c {
                    Some(c @ b'0'..=b'9') => Some(c - b'0'),
                    Some(c @ b'A'..=b'F') => Some(c - b'A' + 10),
                    _ => None,
                };
                out.push(hex(b.get(i + 1))? * 16 + hex(b.get(i + 2))?);
                i += 3;
            }
            c @ b'!'..=b'~' if c != b'=' => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes `s` as xtext (RFC 3461 §4): every octet that is not printable ASCII, and `+`
/// and `=`, becomes `+XX`.
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'!'..=b'~' if b != b'+' && b != b'=' => out.push(b as char),
            _ => out.push_str(&format!("+{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_round_trips_and_refuses_bad_escapes() {
        assert_eq!(xtext_decode("abc+2Bdef").as_deref(), Some("abc+def"));
        assert_eq!(xtext_decode("a+20b+3D").as_deref(), Some("a b="));
        assert_eq!(xtext_decode("").as_deref(), Some(""));
        for bad in ["a+2b", "a+2", "a+", "a=b", "a b", "caf\u{e9}", "+FF"] {
            assert_eq!(xtext_decode(bad), None, "{bad:?}");
        }
        for s in ["abc+def", "a b=c", "plain", "k\u{f6}ln"] {
            assert_eq!(xtext_decode(&xtext_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
    }

    #[test]
    fn notify_takes_never_alone_or_a_list_without_repeats() {
        assert_eq!(Notify::parse("never"), Ok(Notify::NEVER));
        let all = Notify::parse("DELAY,success,Failure").unwrap();
        assert_eq!(all.to_string(), "SUCCESS,FAILURE,DELAY");
        assert_eq!(Notify::parse("FAILURE").unwrap().to_string(), "FAILURE");
        for bad in [
            "",
            "NEVER,SUCCESS",
            "SUCCESS,NEVER",
            "SUCCESS,,FAILURE",
            "SUCCESS,SUCCESS",
            "SOMETIMES",
            "SUCCESS ",
        ] {
            assert_eq!(Notify::parse(bad), Err(DsnError::BadNotify), "{bad:?}");
        }
        assert_eq!(Notify::NEVER.to_string(), "NEVER");
    }

    #[test]
    fn orcpt_is_an_address_type_and_decoded_xtext() {
        let o = Orcpt::parse("rfc822;joe+2Bx@example.org").unwrap();
        assert_eq!(o.addr_type, "rfc822");
        assert_eq!(o.address, "joe+x@example.org");
        assert_eq!(o.to_string(), "rfc822;joe+x@example.org");
        assert_eq!(o.to_wire(), "rfc822;joe+2Bx@example.org");
        assert_eq!(Orcpt::from_decoded(&o.to_string()), Some(o));
        assert_eq!(Orcpt::from_decoded(""), None);
        for bad in [
            "joe@example.org",
            ";joe@x",
            "rfc822;",
            "rfc 822;a@b",
            "rfc822;a+0Ab",
        ] {
            assert_eq!(Orcpt::parse(bad), Err(DsnError::BadOrcpt), "{bad:?}");
        }
        let long = format!("rfc822;{}@example.org", "a".repeat(500));
        assert_eq!(Orcpt::parse(&long), Err(DsnError::OrcptTooLong));
    }

    #[test]
    fn envid_is_short_printable_xtext() {
        assert_eq!(parse_envid("abc+2Bdef").as_deref(), Ok("abc+def"));
        assert_eq!(parse_envid("a+20b").as_deref(), Ok("a b"));
        assert_eq!(parse_envid("a+0Db"), Err(DsnError::BadEnvid));
        assert_eq!(parse_envid(""), Err(DsnError::BadEnvid));
        assert_eq!(parse_envid(&"x".repeat(101)), Err(DsnError::EnvidTooLong));
        assert!(parse_envid(&"x".repeat(100)).is_ok());
    }

    #[test]
    fn ret_is_full_or_hdrs() {
        assert_eq!(Ret::parse("full"), Ok(Ret::Full));
        assert_eq!(Ret::parse("HDRS"), Ok(Ret::Hdrs));
        assert_eq!(Ret::parse("BODY"), Err(DsnError::BadRet));
        assert_eq!(Ret::Hdrs.to_string(), "HDRS");
    }
}
