//! Response encoding: the few syntactic forms every response is built of (RFC 9051 §9):
//! atoms, quoted strings, literals, nstrings and flag lists.

/// The longest string written quoted; longer ones go as literals.
const MAX_QUOTED: usize = 1024;

/// Appends `s` as an IMAP string: quoted when it can be (no CR, LF or NUL, short, valid
/// UTF-8), otherwise as a literal `{n}\r\n...`.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= MAX_QUOTED
        && !s.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
        && (s.is_ascii() || std::str::from_utf8(s).is_ok());
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `s` as a literal.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    literal_header(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends `s` as a literal8 `~{n}\r\n...` (RFC 3516 §4.2): the form for content that
/// holds NUL, which a plain literal may not.
pub fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'~');
    literal(out, s);
}

/// Appends the `{n}\r\n` that announces a literal of `n` octets.
pub fn literal_header(out: &mut Vec<u8>, n: u64) {
    out.push(b'{');
    number(out, n);
    out.extend_from_slice(b"}\r\n");
}

/// Appends `s` as a string, or NIL.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends `s` as an astring: an atom when it is one, else a string.
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

/// Appends a decimal number.
pub fn number(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `(f1 f2 ...)`.
pub fn flag_list<'a>(out: &mut Vec<u8>, flags: impl IntoIterator<Item = &'a str>) {
    out.push(b'(');
    let mut first = true;
    for f in flags {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(f.as_bytes());
    }
    out.push(b')');
}

/// ASTRING-CHAR of RFC 9051 §9: ATOM-CHAR or "]".
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// ATOM-CHAR: any CHAR except atom-specials.
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// A date-time as INTERNALDATE shows it: `"17-Jul-1996 02:44:25 +0000"` (always UTC).
pub fn date_time(out: &mut Vec<u8>, unix: i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[(m as usize).clamp(1, 12) - 1];
    let s = format!(
        "\"{d:02}-{month}-{y:04} {:02}:{:02}:{:02} +0000\"",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    out.extend_from_slice(s.as_bytes());
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn strings_are_quoted_or_literal() {
        assert_eq!(enc(|o| string(o, b"a \"b\" \\c")), r#""a \"b\" \\c""#);
        assert_eq!(enc(|o| string(o, b"two\r\nlines")), "{10}\r\ntwo\r\nlines");
        assert_eq!(enc(|o| string(o, "ünï".as_bytes())), "\"ünï\"");
        let mut v = Vec::new();
        string(&mut v, b"\xff");
        assert_eq!(v, b"{1}\r\n\xff");
        assert_eq!(enc(|o| nstring(o, None)), "NIL");
        assert_eq!(enc(|o| astring(o, b"INBOX")), "INBOX");
        assert_eq!(enc(|o| astring(o, b"My Folder")), "\"My Folder\"");
        assert_eq!(enc(|o| astring(o, b"")), "\"\"");
    }

    #[test]
    fn numbers_and_dates() {
        assert_eq!(enc(|o| number(o, 0)), "0");
        assert_eq!(enc(|o| number(o, u64::MAX)), u64::MAX.to_string());
        assert_eq!(enc(|o| date_time(o, 0)), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(
            enc(|o| date_time(o, 837_571_465)),
            "\"17-Jul-1996 02:44:25 +0000\""
        );
        for days in [-1000, 0, 59, 60, 365, 11_016, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
