//! SASL pieces shared by every protocol that authenticates (SMTP AUTH, POP3 AUTH, IMAP
//! AUTHENTICATE): a strict base64 decoder (RFC 4648 §4) and the PLAIN message (RFC 4616).
//!
//! Strict means: the standard alphabet only, padding required to a multiple of four,
//! no whitespace or line breaks, and the unused bits of the last group must be zero, so
//! every input has at most one meaning (RFC 4648 §3.5).

use crate::Secret;

/// Why a string is not base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidBase64;

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes `text`; the empty string decodes to no octets.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, InvalidBase64> {
    if !text.len().is_multiple_of(4) {
        return Err(InvalidBase64);
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (i, group) in text.chunks_exact(4).enumerate() {
        // Padding only in the last group: "xx==" or "xxx=".
        let pad = match group {
            [_, _, b'=', b'='] => 2,
            [_, _, _, b'='] => 1,
            _ => 0,
        };
        if pad > 0 && i + 1 != groups {
            return Err(InvalidBase64);
        }
        let mut n = 0u32;
        for &c in &group[..4 - pad] {
            n = (n << 6) | value(c).ok_or(InvalidBase64)?;
        }
        n <<= 6 * pad;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // RFC 4648 §3.5: the bits that padding leaves over must be zero.
        let unused_bits = match pad {
            2 => n & 0xffff,
            1 => n & 0xff,
            _ => 0,
        };
        if unused_bits != 0 {
            return Err(InvalidBase64);
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

/// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`, UTF-8, authcid and passwd not empty.
pub fn parse_plain(message: Vec<u8>) -> Option<(String, String, Secret<String>)> {
    let message = String::from_utf8(message).ok()?;
    let mut parts = message.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    Some((
        authzid.to_string(),
        authcid.to_string(),
        Secret::new(password.to_string()),
    ))
}

/// A LOGIN field: non-empty UTF-8.
pub fn non_empty_utf8(response: Vec<u8>) -> Option<String> {
    String::from_utf8(response).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_base64_decodes() {
        // RFC 4648 §10 test vectors, and SASL PLAIN examples.
        let table: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"Zg==", b"f"),
            (b"Zm8=", b"fo"),
            (b"Zm9v", b"foo"),
            (b"Zm9vYg==", b"foob"),
            (b"Zm9vYmE=", b"fooba"),
            (b"Zm9vYmFy", b"foobar"),
            (b"AA==", b"\0"),
            (b"//8=", b"\xff\xff"),
            (b"+/+/", b"\xfb\xff\xbf"),
            (
                b"AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==",
                b"\0alice@example.org\0secret",
            ),
            (b"VXNlcm5hbWU6", b"Username:"),
            (b"UGFzc3dvcmQ6", b"Password:"),
        ];
        for (text, want) in table {
            assert_eq!(
                decode_base64(text).as_deref(),
                Ok(*want),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn invalid_base64_is_refused() {
        let table: &[&[u8]] = &[
            b"Z",
            b"Zg",
            b"Zg=",
            b"Zm9",
            b"Zg===",
            b"====",
            b"Z===",
            b"=Zg=",
            b"Zg==Zg==",
            b"Zm9v\r\n",
            b"Zm9v ",
            b" Zm9v",
            b"Zm 9v",
            b"Zm9-",
            b"Zm9_",
            b"Zm9*",
            b"Zm\x009",
            b"Zm9v\xc3\xa9",
            // Non-zero bits under the padding (RFC 4648 §3.5).
            b"Zh==",
            b"Zm9=",
            b"*",
        ];
        for text in table {
            assert_eq!(
                decode_base64(text),
                Err(InvalidBase64),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn every_octet_value_survives_a_round_trip() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let data: Vec<u8> = (0..=255).collect();
        for len in 0..data.len() {
            let input = &data[..len];
            let mut text = Vec::new();
            for chunk in input.chunks(3) {
                let mut b = [0u8; 3];
                b[..chunk.len()].copy_from_slice(chunk);
                let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
                for i in 0..4 {
                    if i <= chunk.len() {
                        text.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
                    } else {
                        text.push(b'=');
                    }
                }
            }
            assert_eq!(decode_base64(&text).as_deref(), Ok(input), "length {len}");
        }
    }

    #[test]
    fn plain_messages_split_into_three_fields() {
        let ok = |m: &[u8]| parse_plain(m.to_vec()).map(|(z, c, p)| (z, c, p.expose().clone()));
        let s = |a: &str, b: &str, c: &str| Some((a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(ok(b"\0alice\0secret"), s("", "alice", "secret"));
        assert_eq!(ok(b"bob\0alice\0secret"), s("bob", "alice", "secret"));
        assert_eq!(ok("\0zoë\0pässword".as_bytes()), s("", "zoë", "pässword"));
        for bad in [
            &b""[..],
            b"alice",
            b"alice\0secret",
            b"\0\0secret",
            b"\0alice\0",
            b"\0alice\0secret\0",
            b"\0alice\0sec\0ret",
            b"\0al\xffice\0secret",
        ] {
            assert_eq!(ok(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
