//! Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3) for IMAP4rev1 clients,
//! UTF-8 once a client has enabled UTF8=ACCEPT or IMAP4rev2 (RFC 6855, RFC 9051).
//!
//! The parser hands mailbox names over as the octets the client sent; the session decodes
//! them here into the `String` the store uses, and encodes names back for responses. Both
//! directions map any case of "INBOX" (as the whole name or its first level) to "INBOX"
//! (RFC 3501 §5.1).

/// The modified base64 alphabet: "," stands in for "/".
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    } as u32)
}

/// Decodes a modified UTF-7 name; `None` for octets outside printable US-ASCII, a bad or
/// unterminated base64 run, printable ASCII hidden in base64, or broken UTF-16.
pub fn decode_mutf7(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if !(0x20..=0x7e).contains(&c) {
            return None;
        }
        if c != b'&' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let end = i + 1 + raw[i + 1..].iter().position(|&b| b == b'-')?;
        let run = &raw[i + 1..end];
        i = end + 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        // Gather 16-bit units from the base64 bits.
        let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16);
        let (mut bits, mut nbits) = (0u32, 0u32);
        for &b in run {
            bits = (bits << 6) | b64_value(b)?;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
        }
        // Leftover bits must be padding zeros, fewer than one base64 digit's worth.
        if nbits >= 6 || bits != 0 || units.is_empty() {
            return None;
        }
        for ch in char::decode_utf16(units.iter().copied()) {
            let ch = ch.ok()?;
            // RFC 3501 §5.1.3: printable US-ASCII must represent itself.
            if (' '..='~').contains(&ch) {
                return None;
            }
            out.push(ch);
        }
    }
    Some(out)
}

/// Encodes a name in modified UTF-7.
pub fn encode_mutf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let (mut bits, mut nbits) = (0u32, 0u32);
        for &u in pending.iter() {
            bits = (bits << 16) | u as u32;
            nbits += 16;
            while nbits >= 6 {
                nbits -= 6;
                out.push(B64[((bits >> nbits) & 63) as usize] as char);
            }
            bits &= (1 << nbits) - 1;
        }
        if nbits > 0 {
            out.push(B64[((bits << (6 - nbits)) & 63) as usize] as char);
        }
        out.push('-');
        pending.clear();
    };
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a mailbox name as sent: UTF-8 when `utf8`, else modified UTF-7. `None` for an
/// invalid encoding or a control character; "INBOX" comes out in upper case.
pub fn decode(raw: &[u8], utf8: bool) -> Option<String> {
    let name = if utf8 {
        String::from_utf8(raw.to_vec()).ok()?
    } else {
        decode_mutf7(raw)?
    };
    if name.chars().any(char::is_control) {
        return None;
    }
    Some(normalize_inbox(name))
}

/// Encodes a mailbox name for a response: UTF-8 when `utf8`, else modified UTF-7.
pub fn encode(name: &str, utf8: bool) -> String {
    let name = normalize_inbox(name.to_string());
    if utf8 { name } else { encode_mutf7(&name) }
}

/// "inbox" and "Inbox/sub" become "INBOX" and "INBOX/sub" (RFC 3501 §5.1).
fn normalize_inbox(mut name: String) -> String {
    let b = name.as_bytes();
    if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"INBOX") && (b.len() == 5 || b[5] == b'/') {
        name.replace_range(..5, "INBOX");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501_example_decodes_and_encodes_back() {
        // RFC 3501 §5.1.3.
        let raw = b"~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let name = decode_mutf7(raw).unwrap();
        assert_eq!(
            name,
            "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"
        );
        assert_eq!(encode_mutf7(&name).as_bytes(), raw);
    }

    #[test]
    fn ampersand_is_escaped_both_ways() {
        assert_eq!(decode_mutf7(b"Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(encode_mutf7("Tom & Jerry"), "Tom &- Jerry");
    }

    #[test]
    fn non_bmp_characters_round_trip_as_surrogate_pairs() {
        for name in ["😀", "a😀b", "Entwürfe", "日本語/é", "ü&ö"] {
            let enc = encode_mutf7(name);
            assert!(enc.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{enc}");
            assert_eq!(decode_mutf7(enc.as_bytes()).as_deref(), Some(name), "{enc}");
        }
        assert_eq!(encode_mutf7("Entwürfe"), "Entw&APw-rfe");
    }

    #[test]
    fn bad_modified_utf7_is_refused() {
        for raw in [
            &b"&"[..],
            b"&U,BTFw",
            b"&AGE-",    // "a" hidden in base64
            b"&U/BTFw-", // "/" is not in the modified alphabet
            b"&2D0-",    // a lone high surrogate
            b"&AP1-",    // bits left over that are not zero
            b"caf\xc3\xa9",
            b"tab\there",
        ] {
            assert_eq!(decode_mutf7(raw), None, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn inbox_is_normalised_in_both_modes() {
        for utf8 in [false, true] {
            assert_eq!(decode(b"inbox", utf8).unwrap(), "INBOX");
            assert_eq!(decode(b"InBox/Sub", utf8).unwrap(), "INBOX/Sub");
            assert_eq!(decode(b"Inboxes", utf8).unwrap(), "Inboxes");
            assert_eq!(decode(b"Archive/inbox", utf8).unwrap(), "Archive/inbox");
        }
        assert_eq!(encode("inbox/x", true), "INBOX/x");
    }

    #[test]
    fn utf8_mode_takes_utf8_and_refuses_controls() {
        assert_eq!(decode("Entwürfe".as_bytes(), true).unwrap(), "Entwürfe");
        assert_eq!(decode(b"\xff", true), None);
        assert_eq!(decode(b"a\x01b", true), None);
        assert_eq!(encode("Entwürfe", true), "Entwürfe");
        assert_eq!(encode("Entwürfe", false), "Entw&APw-rfe");
    }
}
