//! RFC 5321 §4.1.2 addresses: `Mailbox`, `Domain`, and the reverse and forward paths.
//!
//! Local parts are kept exactly as sent (quoting included); domains are compared without
//! regard to case and stored in lower case. UTF-8 is accepted only when the caller says the
//! transaction is under SMTPUTF8 (RFC 6531).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address syntax error: {0}")]
    Syntax(&'static str),
    #[error("address component too long")]
    TooLong,
    #[error("non-ASCII address without SMTPUTF8")]
    Utf8NotAllowed,
}

const MAX_LOCAL_PART: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_PATH: usize = 256;

/// A domain name or an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`), lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain or an address literal.
    pub fn parse(s: &str, allow_utf8: bool) -> Result<Self, AddressError> {
        if s.len() > MAX_DOMAIN {
            return Err(AddressError::TooLong);
        }
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(AddressError::Syntax("unterminated address literal"))?;
            parse_address_literal(inner)?;
            return Ok(Domain(s.to_ascii_lowercase()));
        }
        if s.is_empty() {
            return Err(AddressError::Syntax("empty domain"));
        }
        for label in s.split('.') {
            check_label(label, allow_utf8)?;
        }
        // Lower-casing can lengthen non-ASCII text ("İ" is 2 octets, "i̇" 3): the form we
        // keep and send on must be within the limits too, or it would not parse again.
        let lower = s.to_lowercase();
        if lower.len() > MAX_DOMAIN || lower.split('.').any(|label| label.len() > 63) {
            return Err(AddressError::TooLong);
        }
        Ok(Domain(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `[...]` address literals.
    pub fn is_literal(&self) -> bool {
        self.0.starts_with('[')
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_label(label: &str, allow_utf8: bool) -> Result<(), AddressError> {
    if label.is_empty() {
        return Err(AddressError::Syntax("empty domain label"));
    }
    if label.len() > 63 {
        return Err(AddressError::TooLong);
    }
    let bytes = label.as_bytes();
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && allow_utf8);
    for c in label.chars() {
        if !c.is_ascii() && !allow_utf8 {
            return Err(AddressError::Utf8NotAllowed);
        }
        if !ok_char(c) {
            return Err(AddressError::Syntax("bad character in domain"));
        }
    }
    // sub-domain = Let-dig [Ldh-str]: no hyphen at either end.
    if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return Err(AddressError::Syntax(
            "domain label starts or ends with a hyphen",
        ));
    }
    Ok(())
}

fn parse_address_literal(inner: &str) -> Result<(), AddressError> {
    // RFC 5234 §2.3: the "IPv6:" tag is case-insensitive, so "IPV6:" is no general literal.
    if let Some(v6) = inner
        .get(..5)
        .filter(|tag| tag.eq_ignore_ascii_case("IPv6:"))
        .map(|_| &inner[5..])
    {
        return v6
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| AddressError::Syntax("bad IPv6 address literal"));
    }
    if inner.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    // General-address-literal = Standardized-tag ":" 1*dcontent
    match inner.split_once(':') {
        Some((tag, content))
            if !tag.is_empty()
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !content.is_empty()
                && content
                    .bytes()
                    .all(|b| (33..=90).contains(&b) || (94..=126).contains(&b)) =>
        {
            Ok(())
        }
        _ => Err(AddressError::Syntax("bad address literal")),
    }
}

/// `Local-part "@" ( Domain / address-literal )`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    local_part: String,
    domain: Domain,
}

impl Mailbox {
    /// Parses `local@domain` (no angle brackets).
    pub fn parse(s: &str, allow_utf8: bool) -> Result<Self, AddressError> {
        let at = find_local_part_end(s)?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        check_local_part(local, allow_utf8)?;
        let domain = Domain::parse(domain, allow_utf8)?;
        Ok(Mailbox {
            local_part: local.to_string(),
            domain,
        })
    }

    /// Builds a mailbox from parts already known to be valid (e.g. read back from the store).
    pub fn from_parts(local_part: &str, domain: Domain) -> Result<Self, AddressError> {
        check_local_part(local_part, true)?;
        Ok(Mailbox {
            local_part: local_part.to_string(),
            domain,
        })
    }

    /// The local part exactly as it was sent, quotes included.
    pub fn local_part(&self) -> &str {
        &self.local_part
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The form used to look the mailbox up in the directory: lower case, quotes removed
    /// where they were not needed.
    pub fn canonical(&self) -> String {
        format!(
            "{}@{}",
            unquote(&self.local_part).to_lowercase(),
            self.domain
        )
    }

    /// True when either part holds non-ASCII characters (needs SMTPUTF8 to be sent on).
    pub fn is_utf8(&self) -> bool {
        !self.local_part.is_ascii() || !self.domain.0.is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.domain)
    }
}

/// Finds the `@` that separates local part and domain, skipping quoted strings.
fn find_local_part_end(s: &str) -> Result<usize, AddressError> {
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'"') {
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    return if bytes.get(i + 1) == Some(&b'@') {
                        Ok(i + 1)
                    } else {
                        Err(AddressError::Syntax("expected @ after quoted local part"))
                    };
                }
                _ => i += 1,
            }
        }
        return Err(AddressError::Syntax("unterminated quoted local part"));
    }
    s.rfind('@')
        .ok_or(AddressError::Syntax("missing @ in mailbox"))
}

fn is_atext(c: char, allow_utf8: bool) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (!c.is_ascii() && allow_utf8)
}

fn check_local_part(local: &str, allow_utf8: bool) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::Syntax("empty local part"));
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::TooLong);
    }
    if !allow_utf8 && !local.is_ascii() {
        return Err(AddressError::Utf8NotAllowed);
    }
    if let Some(inner) = local.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or(AddressError::Syntax("unterminated quoted local part"))?;
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(q) if (' '..='~').contains(&q) => {}
                    _ => return Err(AddressError::Syntax("bad quoted pair")),
                },
                '"' => return Err(AddressError::Syntax("stray quote in local part")),
                c if (' '..='~').contains(&c) => {}
                c if !c.is_ascii() && allow_utf8 => {}
                _ => return Err(AddressError::Syntax("bad character in quoted local part")),
            }
        }
        return Ok(());
    }
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err(AddressError::Syntax("empty atom in local part"));
        }
        if !atom.chars().all(|c| is_atext(c, allow_utf8)) {
            return Err(AddressError::Syntax("bad character in local part"));
        }
    }
    Ok(())
}

/// Removes quoting from a quoted local part when what is inside would be a valid dot-string.
fn unquote(local: &str) -> String {
    match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(q) = chars.next() {
                        out.push(q);
                    }
                } else {
                    out.push(c);
                }
            }
            let dot_string = !out.is_empty()
                && out
                    .split('.')
                    .all(|a| !a.is_empty() && a.chars().all(|c| is_atext(c, true)));
            if dot_string { out } else { local.to_string() }
        }
        None => local.to_string(),
    }
}

/// Strips `<` `>` and an optional source route (`@a,@b:`), which RFC 5321 §4.1.1.3 says
/// to accept and ignore. Returns the mailbox text, empty for `<>`.
fn strip_path(s: &str) -> Result<&str, AddressError> {
    if s.len() > MAX_PATH {
        return Err(AddressError::TooLong);
    }
    let inner = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or(AddressError::Syntax("path must be enclosed in <>"))?;
    if inner.starts_with('@') {
        let colon = inner
            .find(':')
            .ok_or(AddressError::Syntax("bad source route"))?;
        for hop in inner[..colon].split(',') {
            let d = hop
                .strip_prefix('@')
                .ok_or(AddressError::Syntax("bad source route"))?;
            Domain::parse(d, true)?;
        }
        return Ok(&inner[colon + 1..]);
    }
    Ok(inner)
}

/// The MAIL FROM path: a mailbox or the null path `<>` used by bounces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    Null,
    Mailbox(Mailbox),
}

impl ReversePath {
    /// Parses `<>` or `<mailbox>`.
    pub fn parse(s: &str, allow_utf8: bool) -> Result<Self, AddressError> {
        let inner = strip_path(s)?;
        if inner.is_empty() {
            return Ok(ReversePath::Null);
        }
        Mailbox::parse(inner, allow_utf8).map(ReversePath::Mailbox)
    }

    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ReversePath::Null => None,
            ReversePath::Mailbox(m) => Some(m),
        }
    }
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// The RCPT TO path: a mailbox or the bare `<Postmaster>` (RFC 5321 §4.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    Postmaster,
    Mailbox(Mailbox),
}

impl ForwardPath {
    pub fn parse(s: &str, allow_utf8: bool) -> Result<Self, AddressError> {
        let inner = strip_path(s)?;
        if inner.eq_ignore_ascii_case("postmaster") {
            return Ok(ForwardPath::Postmaster);
        }
        Mailbox::parse(inner, allow_utf8).map(ForwardPath::Mailbox)
    }

    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ForwardPath::Postmaster => None,
            ForwardPath::Mailbox(m) => Some(m),
        }
    }
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(s: &str) -> Result<Mailbox, AddressError> {
        Mailbox::parse(s, false)
    }

    #[test]
    fn plain_mailbox_keeps_local_part_and_lowercases_domain() {
        let m = mb("John.Doe@Example.ORG").unwrap();
        assert_eq!(m.local_part(), "John.Doe");
        assert_eq!(m.domain().as_str(), "example.org");
        assert_eq!(m.canonical(), "john.doe@example.org");
    }

    #[test]
    fn quoted_local_parts_are_kept_exactly() {
        let m = mb("\"john doe\"@example.org").unwrap();
        assert_eq!(m.local_part(), "\"john doe\"");
        let m = mb("\"user@other\"@example.org").unwrap();
        assert_eq!(m.local_part(), "\"user@other\"");
        assert_eq!(m.domain().as_str(), "example.org");
        // Needless quoting does not make a different mailbox for lookup.
        assert_eq!(
            mb("\"john\"@example.org").unwrap().canonical(),
            "john@example.org"
        );
    }

    #[test]
    fn address_literals_are_accepted() {
        assert!(mb("a@[192.0.2.1]").unwrap().domain().is_literal());
        assert!(mb("a@[IPv6:2001:db8::1]").is_ok());
        assert!(mb("a@[300.1.1.1]").is_err());
        assert!(mb("a@[IPv6:zz]").is_err());
        // The tag is case-insensitive: not a general literal that would not parse again
        // once lower-cased.
        assert!(mb("a@[IPV6:2001:DB8::1]").is_ok());
        assert!(mb("a@[IPV6:aA]").is_err());
        assert!(mb("a@[iPv6:aA]").is_err());
    }

    #[test]
    fn malformed_mailboxes_are_refused() {
        for bad in [
            "",
            "a",
            "@x.org",
            "a@",
            "a@x.",
            "a@.x",
            "a..b@x.org",
            ".a@x.org",
            "a@-x.org",
            "a@x-.org",
            "a b@x.org",
            "\"a@x.org",
            "a@x_y.org",
            "a@@x.org",
        ] {
            assert!(mb(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn utf8_needs_smtputf8() {
        assert_eq!(mb("jörg@example.org"), Err(AddressError::Utf8NotAllowed));
        assert!(Mailbox::parse("jörg@bücher.example", true).is_ok());
    }

    #[test]
    fn paths_parse_null_postmaster_and_source_routes() {
        assert_eq!(ReversePath::parse("<>", false), Ok(ReversePath::Null));
        assert_eq!(
            ForwardPath::parse("<Postmaster>", false),
            Ok(ForwardPath::Postmaster)
        );
        let p = ForwardPath::parse("<@a.example,@b.example:joe@c.example>", false).unwrap();
        assert_eq!(p.mailbox().unwrap().to_string(), "joe@c.example");
        assert!(ReversePath::parse("joe@x.org", false).is_err());
        assert!(ReversePath::parse("<joe@x.org", false).is_err());
    }

    #[test]
    fn lower_casing_cannot_make_a_domain_too_long() {
        // 31 × "İ" is 62 octets; lower-cased, 31 × "i̇" would be 93, over the 63 of a label.
        let label = "İ".repeat(31);
        assert_eq!(
            Domain::parse(&format!("{label}.example"), true),
            Err(AddressError::TooLong)
        );
        // 12 labels of 10 × "İ" are 251 octets in all; lower-cased they would be 371.
        let long = vec!["İ".repeat(10); 12].join(".");
        assert!(long.len() <= MAX_DOMAIN);
        assert_eq!(Domain::parse(&long, true), Err(AddressError::TooLong));
        // What is accepted parses again as itself.
        let d = Domain::parse("İstanbul.Example", true).unwrap();
        assert_eq!(Domain::parse(d.as_str(), true), Ok(d));
    }

    #[test]
    fn over_long_parts_are_refused() {
        let long = format!("{}@x.org", "a".repeat(65));
        assert_eq!(mb(&long), Err(AddressError::TooLong));
    }
}
