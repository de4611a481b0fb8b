//! Content-Transfer-Encoding decoders (RFC 2045 §6.7, §6.8) that never fail: stored mail
//! is what it is, so stray characters are skipped (base64) or kept (quoted-printable).

/// Base64: characters outside the alphabet (line breaks, white space) are skipped and
/// decoding stops at the first pad character.
pub fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable: `=XX` decoded, soft line breaks removed, white space before a line
/// break dropped (RFC 2045 §6.8 rule 3); a malformed `=` is kept as it is.
pub fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        match c {
            b'=' => {
                let rest = &input[i + 1..];
                if let (Some(h), Some(l)) = (
                    rest.first().and_then(|&b| hex(b)),
                    rest.get(1).and_then(|&b| hex(b)),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                // Soft line break: "=" then optional white space then CRLF (or LF, or end).
                let ws = rest
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                let after = &rest[ws..];
                if after.starts_with(b"\r\n") {
                    i += 1 + ws + 2;
                } else if after.starts_with(b"\n") {
                    i += 1 + ws + 1;
                } else if after.is_empty() {
                    i = input.len();
                } else {
                    out.push(c);
                    i += 1;
                }
            }
            b' ' | b'\t' => {
                let ws = input[i..]
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                let after = &input[i + ws..];
                if !(after.starts_with(b"\r\n") || after.starts_with(b"\n")) {
                    out.extend_from_slice(&input[i..i + ws]);
                }
                i += ws;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_skips_line_breaks_and_stops_at_padding() {
        assert_eq!(base64(b"aGVs\r\nbG8=\r\n"), b"hello");
        assert_eq!(base64(b"aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(base64(b"!!"), b"");
    }

    #[test]
    fn quoted_printable_handles_soft_breaks_and_trailing_space() {
        assert_eq!(
            quoted_printable(b"caf=C3=A9 =\r\nau lait  \r\nnext=3D"),
            "café au lait\r\nnext=".as_bytes()
        );
        assert_eq!(quoted_printable(b"50=% off="), b"50=% off");
    }
}
