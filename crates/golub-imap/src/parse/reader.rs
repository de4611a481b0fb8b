//! The lexical layer of the parser: a cursor over one framed command that reads the
//! RFC 3501 §9 tokens (atoms, strings, literals, numbers, sequence sets, flags, dates).
//! Each reader either consumes its token or fails with a short message; none recurses.

use crate::command::{Date, SeqNumber, SeqRange, SequenceSet};

/// Most ranges one sequence set may hold.
pub(super) const MAX_SET_RANGES: usize = 100_000;

/// The largest mod-sequence value (RFC 7162 §7: 63 bits).
const MAX_MODSEQ: u64 = i64::MAX as u64;

pub(super) type R<T> = Result<T, String>;

pub(super) struct Reader<'a> {
    s: &'a [u8],
    pub(super) i: usize,
}

/// `atom-specials` aside from CTL and SP: what ends an atom.
fn is_atom_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR: ATOM-CHAR or "]".
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// list-char: ATOM-CHAR, list-wildcards or "]".
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// A tag octet: ASTRING-CHAR except "+".
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// A printable, bounded rendering of client octets for error messages.
pub(super) fn show(b: &[u8]) -> String {
    let mut s: String = String::from_utf8_lossy(&b[..b.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if b.len() > 40 {
        s.push_str("...");
    }
    s
}

impl<'a> Reader<'a> {
    pub(super) fn new(s: &'a [u8]) -> Reader<'a> {
        Reader { s, i: 0 }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// The octets consumed since position `start`.
    pub(super) fn consumed_since(&self, start: usize) -> &'a [u8] {
        &self.s[start.min(self.i)..self.i]
    }

    /// Consumes `b` if it is next.
    pub(super) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, b: u8, what: &str) -> R<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected {what}"))
        }
    }

    /// Exactly one SP.
    pub(super) fn sp(&mut self) -> R<()> {
        if !self.eat(b' ') {
            return Err(if self.at_end() {
                "missing argument".into()
            } else {
                "expected a space".into()
            });
        }
        if self.peek() == Some(b' ') {
            return Err("more than one space between arguments".into());
        }
        Ok(())
    }

    /// Whether the line ends here (CRLF, LF, or the end of input).
    pub(super) fn at_end(&self) -> bool {
        matches!(&self.s[self.i..], b"" | b"\n" | b"\r\n")
    }

    /// The end of the command: nothing may follow.
    pub(super) fn end(&mut self) -> R<()> {
        if self.at_end() {
            self.i = self.s.len();
            Ok(())
        } else if self.peek() == Some(b' ')
            && self.s[self.i..].iter().all(|&b| b" \r\n".contains(&b))
        {
            Err("trailing space".into())
        } else {
            let rest = self.rest_of_line();
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            Err(format!("unexpected {:?} at the end", show(rest)))
        }
    }

    fn rest_of_line(&self) -> &'a [u8] {
        let rest = &self.s[self.i..];
        let end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        &rest[..end]
    }

    /// Whether the next octets are `word` (any case) followed by a delimiter.
    pub(super) fn peek_word(&self, word: &str) -> bool {
        let rest = &self.s[self.i..];
        rest.len() >= word.len()
            && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes())
            && !rest.get(word.len()).copied().is_some_and(is_atom_char)
    }

    /// Consumes `word` (any case) if it is next as a whole atom.
    pub(super) fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// An atom (1*ATOM-CHAR).
    pub(super) fn atom(&mut self) -> R<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            Err(self.unexpected("an atom"))
        } else {
            Ok(a)
        }
    }

    /// An atom as upper-case text.
    pub(super) fn atom_upper(&mut self) -> R<String> {
        Ok(String::from_utf8_lossy(self.atom()?).to_ascii_uppercase())
    }

    /// The message for a token that is not what was wanted.
    pub(super) fn unexpected(&self, wanted: &str) -> String {
        if self.at_end() {
            format!("missing {wanted}")
        } else {
            format!("expected {wanted}")
        }
    }

    /// The command name or tag: 1*ASTRING-CHAR.
    pub(super) fn tag(&mut self) -> &'a [u8] {
        self.take_while(is_astring_char)
    }

    /// astring: an atom with "]" allowed, or a string.
    pub(super) fn astring(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    Err(self.unexpected("a string"))
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    /// An astring that must be text.
    pub(super) fn astring_text(&mut self) -> R<String> {
        String::from_utf8(self.astring()?).map_err(|_| "invalid UTF-8".to_string())
    }

    /// list-mailbox: list-chars (with % and *) or a string.
    pub(super) fn list_mailbox(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    Err(self.unexpected("a mailbox pattern"))
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    /// string: quoted or literal.
    pub(super) fn string(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => Ok(self.literal(false)?.to_vec()),
            _ => Err(self.unexpected("a string")),
        }
    }

    /// nstring: NIL or a string.
    pub(super) fn nstring(&mut self) -> R<Option<Vec<u8>>> {
        if self.eat_word("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A quoted string with `\\` and `\"` escapes; 8-bit octets allowed (RFC 9051).
    pub(super) fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"', "a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return Err("unterminated quoted string".into()),
                Some(0) => return Err("NUL in quoted string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'\\' | b'"')) => {
                            out.push(c);
                            self.i += 1;
                        }
                        _ => return Err("bad escape in quoted string".into()),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// A literal `{n}` or `{n+}` and its line end, then its octets. `binary`: the octets
    /// may include NUL (literal8 and APPEND's message).
    pub(super) fn literal(&mut self, binary: bool) -> R<&'a [u8]> {
        self.expect(b'{', "a literal")?;
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err("bad literal".into());
        }
        let n = digits
            .iter()
            .try_fold(0usize, |n, &d| {
                n.checked_mul(10)?.checked_add((d - b'0') as usize)
            })
            .ok_or("literal too large")?;
        self.eat(b'+');
        self.expect(b'}', "} after the literal size")?;
        self.eat(b'\r');
        self.expect(b'\n', "a line end after the literal size")?;
        let rest = &self.s[self.i..];
        if rest.len() < n {
            return Err("literal cut short".into());
        }
        let octets = &rest[..n];
        if !binary && octets.contains(&0) {
            return Err("NUL in literal".into());
        }
        self.i += n;
        Ok(octets)
    }

    /// number: a u32.
    pub(super) fn number(&mut self) -> R<u32> {
        let n = self.number64()?;
        u32::try_from(n).map_err(|_| "number too large".to_string())
    }

    /// nz-number.
    pub(super) fn nz_number(&mut self) -> R<u32> {
        match self.number()? {
            0 => Err("zero is not allowed here".into()),
            n => Ok(n),
        }
    }

    /// number64 (RFC 9051).
    pub(super) fn number64(&mut self) -> R<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.unexpected("a number"));
        }
        digits
            .iter()
            .try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add((d - b'0') as u64)
            })
            .ok_or_else(|| "number too large".to_string())
    }

    /// mod-sequence-valzer (RFC 7162): 0 to 2^63-1.
    pub(super) fn modseq(&mut self) -> R<u64> {
        match self.number64()? {
            n if n <= MAX_MODSEQ => Ok(n),
            _ => Err("mod-sequence too large".into()),
        }
    }

    fn seq_number(&mut self) -> R<SeqNumber> {
        if self.eat(b'*') {
            return Ok(SeqNumber::Largest);
        }
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.unexpected("a sequence set"));
        }
        match self.number() {
            Ok(0) => Err("0 is not a valid message number".into()),
            Ok(n) => Ok(SeqNumber::Value(n)),
            Err(e) => Err(e),
        }
    }

    /// sequence-set: numbers, `*`, ranges, comma lists; at most [`MAX_SET_RANGES`].
    pub(super) fn sequence_set(&mut self) -> R<SequenceSet> {
        let mut ranges = Vec::new();
        loop {
            let start = self.seq_number()?;
            let end = if self.eat(b':') {
                self.seq_number()?
            } else {
                start
            };
            if ranges.len() == MAX_SET_RANGES {
                return Err("too many ranges in sequence set".into());
            }
            ranges.push(SeqRange { start, end });
            if !self.eat(b',') {
                return Ok(SequenceSet(ranges));
            }
        }
    }

    /// A flag: `\Name` (one of the system flags, in canonical case) or a keyword atom. `\*` only when
    /// `star`; `\Recent` only when `recent`.
    pub(super) fn flag(&mut self, star: bool, recent: bool) -> R<String> {
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return if star {
                    Ok("\\*".into())
                } else {
                    Err("\\* is not a flag".into())
                };
            }
            let name = self.atom().map_err(|_| "bad flag".to_string())?;
            let canonical = ["Seen", "Answered", "Flagged", "Deleted", "Draft", "Recent"]
                .into_iter()
                .find(|c| c.as_bytes().eq_ignore_ascii_case(name));
            return match canonical {
                Some("Recent") if !recent => Err("\\Recent cannot be set".into()),
                Some(c) => Ok(format!("\\{c}")),
                // flag-extension is reserved for future standards (RFC 9051 §2.3.2): no
                // client may set one, as Dovecot also answers.
                None => Err(format!(
                    "\\{} is not a system flag",
                    String::from_utf8_lossy(name)
                )),
            };
        }
        let a = self.atom().map_err(|_| self.unexpected("a flag"))?;
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    /// A parenthesized list of items read by `item`, separated by one SP; `empty`: "()"
    /// is allowed.
    pub(super) fn paren_list<T>(
        &mut self,
        empty: bool,
        mut item: impl FnMut(&mut Self) -> R<T>,
    ) -> R<Vec<T>> {
        self.expect(b'(', "(")?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return if empty {
                Ok(out)
            } else {
                Err("empty list".into())
            };
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp().map_err(|_| self.unexpected(")"))?;
        }
    }

    /// flag-list: "(" [flag *(SP flag)] ")".
    pub(super) fn flag_list(&mut self) -> R<Vec<String>> {
        self.paren_list(true, |r| r.flag(false, false))
    }

    /// date (RFC 3501): d-Mon-yyyy or dd-Mon-yyyy, quoted or not.
    pub(super) fn date(&mut self) -> R<Date> {
        let quoted = self.eat(b'"');
        let day = self.take_while(|b| b.is_ascii_digit());
        let bad = || "bad date (expected d-Mon-yyyy)".to_string();
        if day.is_empty() || day.len() > 2 || !self.eat(b'-') {
            return Err(bad());
        }
        let day = day.iter().fold(0u8, |n, &d| n * 10 + (d - b'0'));
        let month = self
            .s
            .get(self.i..self.i + 3)
            .and_then(month)
            .ok_or_else(bad)?;
        self.i += 3;
        if !self.eat(b'-') {
            return Err(bad());
        }
        let year = self.take_while(|b| b.is_ascii_digit());
        if year.len() != 4 || (quoted && !self.eat(b'"')) {
            return Err(bad());
        }
        let year = year.iter().fold(0u16, |n, &d| n * 10 + (d - b'0') as u16);
        if day == 0 || day > days_in_month(year, month) {
            return Err("no such day".into());
        }
        Ok(Date { year, month, day })
    }
}

/// The month (1..=12) of an English three-letter name, any case.
pub(super) fn month(name: &[u8]) -> Option<u8> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|i| i as u8 + 1)
}

pub(super) fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
pub(super) fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
