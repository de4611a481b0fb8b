//! The reply parser of SMTP clients (RFC 5321 §4.2): multi-line replies `250-...` /
//! `250 ...` become one [`Reply`] with its code, its RFC 3463 enhanced code when the first
//! line carries one (RFC 2034 §3), and the text of each line.
//!
//! Sans-IO: [`ReplyParser::push_line`] takes lines a driver framed, [`parse`] frames them
//! itself from a buffer. Lines are framed under [`MAX_LINE`] before they are parsed, and
//! "need more octets" (`Ok(None)`) is never confused with a bad reply (`Err`).

use golub_types::{EnhancedCode, Reply};

use crate::error::ReplyError;

/// Longest reply line accepted, CRLF included; RFC 5321 §4.5.3.1.5 allows 512, and some
/// servers go over it.
pub const MAX_LINE: usize = 4096;
/// Most lines in one reply (an EHLO reply lists a few dozen at most).
pub const MAX_LINES: usize = 128;

/// Gathers the lines of one reply.
#[derive(Debug, Default)]
pub struct ReplyParser {
    code: Option<u16>,
    enhanced: Option<EnhancedCode>,
    lines: Vec<String>,
}

impl ReplyParser {
    pub fn new() -> Self {
        ReplyParser::default()
    }

    /// Takes one line (with or without its CRLF); the whole reply once this was its last.
    /// After a reply or an error the parser starts over.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let result = self.push(line);
        if !matches!(result, Ok(None)) {
            *self = ReplyParser::default();
        }
        result
    }

    fn push(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() + 2 > MAX_LINE || self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooLong);
        }
        let digits = line.get(..3).ok_or(ReplyError::Malformed)?;
        if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
            return Err(ReplyError::Malformed);
        }
        let code = digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(ReplyError::Malformed),
        };
        if self.code.is_some_and(|c| c != code) {
            return Err(ReplyError::CodeChanged);
        }
        let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default());
        let first = self.code.is_none();
        if first {
            self.code = Some(code);
            self.enhanced = enhanced_code(code, &text).map(|(e, _)| e);
        }
        // Every line repeats the enhanced code (RFC 2034 §3); keep only the text.
        let text = match (self.enhanced, enhanced_code(code, &text)) {
            (Some(want), Some((got, rest))) if want == got => rest.to_string(),
            _ => text.into_owned(),
        };
        self.lines.push(text);
        if !last {
            return Ok(None);
        }
        Ok(Some(Reply {
            code,
            enhanced: self.enhanced,
            lines: std::mem::take(&mut self.lines),
        }))
    }
}

/// An enhanced code `class.subject.detail` at the start of `text`, and the text after it.
/// Its class must be the reply code's first digit (RFC 3463 §2, RFC 2034 §3).
fn enhanced_code(code: u16, text: &str) -> Option<(EnhancedCode, &str)> {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut parts = word.split('.');
    let class: u8 = number(parts.next()?, 1)?;
    let subject: u16 = number(parts.next()?, 3)?;
    let detail: u16 = number(parts.next()?, 3)?;
    if parts.next().is_some() || u16::from(class) != code / 100 {
        return None;
    }
    Some((EnhancedCode(class, subject, detail), rest))
}

/// 1 to `max` ASCII digits.
fn number<T: std::str::FromStr>(s: &str, max: usize) -> Option<T> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses one whole reply from the start of `buf`: the reply and how many octets it took,
/// `Ok(None)` when `buf` does not hold all of it yet.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut parser = ReplyParser::new();
    let mut used = 0;
    loop {
        let rest = &buf[used..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() >= MAX_LINE {
                return Err(ReplyError::TooLong);
            }
            return Ok(None);
        };
        used += end + 1;
        if let Some(reply) = parser.push_line(&rest[..=end])? {
            return Ok(Some((reply, used)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(wire: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        parse(wire)
    }

    #[test]
    fn single_line_with_enhanced_code() {
        let (r, used) = one(b"250 2.1.0 sender ok\r\nrest").unwrap().unwrap();
        assert_eq!(r, Reply::new(250, EnhancedCode(2, 1, 0), "sender ok"));
        assert_eq!(used, 21);
    }

    #[test]
    fn multi_line_ehlo_without_enhanced_code() {
        let wire = b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n";
        let (r, used) = one(wire).unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.enhanced, None);
        assert_eq!(r.lines, ["mx.example", "PIPELINING", "SIZE 1000"]);
        assert_eq!(used, wire.len());
    }

    #[test]
    fn enhanced_code_is_taken_off_every_line() {
        let (r, _) = one(b"550-5.1.1 no such\r\n550 5.1.1 user\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.enhanced, Some(EnhancedCode(5, 1, 1)));
        assert_eq!(r.lines, ["no such", "user"]);
    }

    #[test]
    fn what_we_write_parses_back() {
        let mut r = Reply::new(250, EnhancedCode(2, 1, 5), "<a@mx.example>");
        r.lines.push("<b@mx.example>".into());
        for reply in [
            r,
            Reply::plain(220, vec!["mx.example ESMTP".into()]),
            Reply::new(250, EnhancedCode(2, 0, 0), ""),
        ] {
            let mut wire = Vec::new();
            reply.write_to(&mut wire);
            assert_eq!(parse(&wire), Ok(Some((reply, wire.len()))));
        }
    }

    #[test]
    fn bare_code_and_lf_only_lines_are_replies() {
        let (r, _) = one(b"354\n").unwrap().unwrap();
        assert_eq!(
            (r.code, r.enhanced, r.lines),
            (354, None, vec![String::new()])
        );
    }

    #[test]
    fn a_mismatched_class_is_text_not_an_enhanced_code() {
        let (r, _) = one(b"250 5.1.1 odd\r\n").unwrap().unwrap();
        assert_eq!(r.enhanced, None);
        assert_eq!(r.lines, ["5.1.1 odd"]);
        let (r, _) = one(b"250 2.0 short\r\n").unwrap().unwrap();
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn incomplete_is_not_an_error() {
        assert_eq!(one(b""), Ok(None));
        assert_eq!(one(b"250-first\r\n250 sec"), Ok(None));
        assert_eq!(one(b"25"), Ok(None));
    }

    #[test]
    fn bad_replies_are_refused() {
        assert_eq!(one(b"hello\r\n"), Err(ReplyError::Malformed));
        assert_eq!(one(b"25\r\n"), Err(ReplyError::Malformed));
        assert_eq!(one(b"650 no\r\n"), Err(ReplyError::Malformed));
        assert_eq!(one(b"250+x\r\n"), Err(ReplyError::Malformed));
        assert_eq!(one(b"250-a\r\n251 b\r\n"), Err(ReplyError::CodeChanged));
        assert_eq!(one(&[b'2'; MAX_LINE]), Err(ReplyError::TooLong));
        let long = b"250-x\r\n".repeat(MAX_LINES + 1);
        assert_eq!(one(&long), Err(ReplyError::TooLong));
    }

    #[test]
    fn the_parser_starts_over_after_a_reply_or_an_error() {
        let mut p = ReplyParser::new();
        assert_eq!(p.push_line(b"250-a"), Ok(None));
        assert!(p.push_line(b"250 b").unwrap().is_some());
        assert_eq!(p.push_line(b"bad"), Err(ReplyError::Malformed));
        let r = p.push_line(b"221 2.0.0 bye\r\n").unwrap().unwrap();
        assert_eq!(r.code, 221);
    }
}
