//! The MIME views of a stored message that FETCH and SEARCH need: ENVELOPE, BODY and
//! BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2), BODY[section] octets (RFC 3501
//! §6.4.5), BINARY[part] (RFC 3516), and the header, text and date tests of SEARCH.
//!
//! Everything is a pure function over the raw message octets as stored (CRLF line ends,
//! possibly malformed or 8-bit). Nothing panics; entities nested deeper than
//! [`tree::MAX_DEPTH`] are text/plain leaves. Missing or broken MIME structure degrades the
//! way RFC 2045 §5.2 says: the entity is text/plain; charset=us-ascii.

mod address;
mod decode;
mod tree;

use std::borrow::Cow;

use mail_parser::HeaderValue;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;

use crate::command::{Section, SectionText};
use address::Item;
use tree::{Entity, Kind};

/// What BODY and BODYSTRUCTURE show for a multipart entity without any body part (the
/// grammar needs at least one), as Dovecot does.
const EMPTY_PART: &[u8] = b"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0";
const EMPTY_PART_EXT: &[u8] = b" NIL NIL NIL NIL";

/// Why BINARY cannot answer (RFC 3516 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one we decode: NO [UNKNOWN-CTE].
    #[error("unknown content-transfer-encoding")]
    UnknownEncoding,
    #[error("no such body part")]
    NoSuchPart,
}

/// Writes an IMAP string: quoted when short, free of CR, LF and NUL, and ASCII or valid
/// UTF-8; a literal `{n}\r\n...` otherwise (the one rule of [`crate::encode::string`]).
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    crate::encode::string(out, s);
}

/// Writes an IMAP nstring: NIL for None.
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// The ENVELOPE of a message (RFC 3501 §7.4.2): raw, unfolded header values.
pub fn envelope(msg: &[u8]) -> Vec<u8> {
    let header = &msg[..tree::header_end(msg, 0, msg.len())];
    let mut out = Vec::new();
    write_envelope(&mut out, header);
    out
}

fn write_envelope(out: &mut Vec<u8>, header: &[u8]) {
    let fields = tree::fields(header);
    let first = |name: &str| {
        fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
    };
    let text = |name: &str| first(name).map(|f| f.unfolded());
    let addresses = |name: &str| {
        first(name)
            .map(|f| address::parse_list(&f.unfolded()))
            .filter(|items| !items.is_empty())
    };
    let from = addresses("from");
    // RFC 3501 §7.4.2: absent or empty Sender and Reply-To take the From value.
    let sender = addresses("sender").or_else(|| from.clone());
    let reply_to = addresses("reply-to").or_else(|| from.clone());

    out.push(b'(');
    write_nstring(out, text("date").as_deref());
    out.push(b' ');
    write_nstring(out, text("subject").as_deref());
    for list in [
        from,
        sender,
        reply_to,
        addresses("to"),
        addresses("cc"),
        addresses("bcc"),
    ] {
        out.push(b' ');
        write_addresses(out, list.as_deref());
    }
    out.push(b' ');
    write_nstring(out, text("in-reply-to").as_deref());
    out.push(b' ');
    write_nstring(out, text("message-id").as_deref());
    out.push(b')');
}

fn write_addresses(out: &mut Vec<u8>, items: Option<&[Item]>) {
    let Some(items) = items else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for item in items {
        match item {
            Item::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                out.push(b'(');
                write_nstring(out, name.as_deref());
                out.push(b' ');
                write_nstring(out, adl.as_deref());
                out.push(b' ');
                write_string(out, mailbox);
                out.push(b' ');
                write_string(out, host);
                out.push(b')');
            }
            Item::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                write_string(out, name);
                out.extend_from_slice(b" NIL)");
            }
            Item::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}

/// BODYSTRUCTURE (`extensible`) or BODY of a message (RFC 3501 §7.4.2).
pub fn body_structure(msg: &[u8], extensible: bool) -> Vec<u8> {
    let root = tree::parse(msg);
    let mut out = Vec::new();
    write_body(&mut out, msg, &root, extensible);
    out
}

fn write_body(out: &mut Vec<u8>, msg: &[u8], e: &Entity, ext: bool) {
    let header = e.header(msg);
    let fields = tree::fields(header);
    let first = |name: &str| {
        fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.unfolded())
    };
    out.push(b'(');
    if let Kind::Multipart(children) = &e.kind {
        if children.is_empty() {
            out.extend_from_slice(EMPTY_PART);
            if ext {
                out.extend_from_slice(EMPTY_PART_EXT);
            }
            out.push(b')');
        }
        for child in children {
            write_body(out, msg, child, ext);
        }
        out.push(b' ');
        write_string(out, e.media.subtype.to_ascii_uppercase().as_bytes());
        if ext {
            out.push(b' ');
            write_params(out, &e.media.params, true);
            write_extension(out, &first, false);
        }
        out.push(b')');
        return;
    }
    write_string(out, e.media.ty.to_ascii_uppercase().as_bytes());
    out.push(b' ');
    write_string(out, e.media.subtype.to_ascii_uppercase().as_bytes());
    out.push(b' ');
    write_params(out, &e.media.params, true);
    out.push(b' ');
    write_nstring(out, first("content-id").as_deref());
    out.push(b' ');
    write_nstring(out, first("content-description").as_deref());
    out.push(b' ');
    let encoding = first("content-transfer-encoding")
        .filter(|v| !v.is_empty())
        .map_or_else(|| b"7BIT".to_vec(), |v| v.to_ascii_uppercase());
    write_string(out, &encoding);
    let body = e.body_octets(msg);
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let lines = body.iter().filter(|&&c| c == b'\n').count();
    if let Kind::Message(inner) = &e.kind {
        out.push(b' ');
        write_envelope(out, inner.header(msg));
        out.push(b' ');
        write_body(out, msg, inner, ext);
        out.extend_from_slice(format!(" {lines}").as_bytes());
    } else if e.media.ty.eq_ignore_ascii_case("text") {
        out.extend_from_slice(format!(" {lines}").as_bytes());
    }
    if ext {
        write_extension(out, &first, true);
    }
    out.push(b')');
}

/// ` [md5] disposition language location` (body-ext-1part / body-ext-mpart after params).
fn write_extension<'f>(
    out: &mut Vec<u8>,
    first: &impl Fn(&str) -> Option<Cow<'f, [u8]>>,
    md5: bool,
) {
    if md5 {
        out.push(b' ');
        write_nstring(out, first("content-md5").as_deref());
    }
    out.push(b' ');
    match first("content-disposition").and_then(|v| tree::parse_content_type(&v)) {
        Some(d) if !d.c_type.is_empty() => {
            out.push(b'(');
            write_string(out, d.c_type.as_bytes());
            out.push(b' ');
            write_params(out, &tree::params_of(&d), false);
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let languages: Vec<Vec<u8>> = first("content-language")
        .map(|v| {
            v.split(|&c| c == b',')
                .map(|l| tree::trim(l).to_vec())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if languages.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, l) in languages.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_string(out, l);
        }
        out.push(b')');
    }
    out.push(b' ');
    write_nstring(out, first("content-location").as_deref());
}

fn write_params(out: &mut Vec<u8>, params: &[(String, String)], upper_names: bool) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        if upper_names {
            write_string(out, name.to_ascii_uppercase().as_bytes());
        } else {
            write_string(out, name.as_bytes());
        }
        out.push(b' ');
        write_string(out, value.as_bytes());
    }
    out.push(b')');
}

/// The octets of BODY[section] (RFC 3501 §6.4.5), or None when the part does not exist
/// or the specifier does not apply to it (HEADER or TEXT of a part that is not
/// message/rfc822). The session answers None with NIL, as Dovecot does.
pub fn section<'a>(msg: &'a [u8], section: &Section) -> Option<Cow<'a, [u8]>> {
    let root = tree::parse(msg);
    if section.part.is_empty() {
        return match &section.text {
            None => Some(Cow::Borrowed(msg)),
            Some(SectionText::Mime) => None,
            Some(text) => message_text(msg, &root, text),
        };
    }
    let part = tree::resolve(&root, &section.part)?;
    match &section.text {
        None => Some(Cow::Borrowed(part.body_octets(msg))),
        Some(SectionText::Mime) => Some(Cow::Borrowed(part.header(msg))),
        Some(text) => match &part.kind {
            Kind::Message(inner) => message_text(msg, inner, text),
            _ => None,
        },
    }
}

/// HEADER, HEADER.FIELDS (.NOT) or TEXT of a message entity.
fn message_text<'a>(msg: &'a [u8], m: &Entity, text: &SectionText) -> Option<Cow<'a, [u8]>> {
    let header = m.header(msg);
    let (names, keep) = match text {
        SectionText::Header => return Some(Cow::Borrowed(header)),
        SectionText::Text => return Some(Cow::Borrowed(m.body_octets(msg))),
        SectionText::Mime => return None,
        SectionText::HeaderFields(names) => (names, true),
        SectionText::HeaderFieldsNot(names) => (names, false),
    };
    let mut out = Vec::new();
    for f in tree::fields(header) {
        let listed = names
            .iter()
            .any(|n| f.name.eq_ignore_ascii_case(n.as_bytes()));
        if listed == keep {
            out.extend_from_slice(f.line);
            if !f.line.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    Some(Cow::Owned(out))
}

/// BINARY[part] (RFC 3516): the part's content with its transfer encoding undone. The
/// empty part is the whole message, unchanged.
pub fn binary(msg: &[u8], part: &[u32]) -> Result<Vec<u8>, BinaryError> {
    if part.is_empty() {
        return Ok(msg.to_vec());
    }
    let root = tree::parse(msg);
    let e = tree::resolve(&root, part).ok_or(BinaryError::NoSuchPart)?;
    let body = e.body_octets(msg);
    if !matches!(e.kind, Kind::Leaf) {
        return Ok(body.to_vec());
    }
    let encoding = tree::field(e.header(msg), "content-transfer-encoding")
        .map(|f| f.unfolded().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_slice() {
        b"" | b"7bit" | b"8bit" | b"binary" => Ok(body.to_vec()),
        b"base64" => Ok(decode::base64(body)),
        b"quoted-printable" => Ok(decode::quoted_printable(body)),
        _ => Err(BinaryError::UnknownEncoding),
    }
}

/// A message APPENDed as binary (RFC 3516 §4.4) may hold NUL octets, which no client
/// can be sent in BODY[] (RFC 3501 literals exclude NUL). Each leaf part whose body holds
/// one is re-encoded as base64, its Content-Transfer-Encoding field replaced, so that
/// BODY[] is plain 7-bit text while BINARY[part] still gives back the octets appended.
/// None when the message has no NUL.
pub fn encode_binary_parts(msg: &[u8]) -> Option<Vec<u8>> {
    tree::memchr(0, msg)?;
    let root = tree::parse(msg);
    let mut leaves = Vec::new();
    binary_leaves(msg, &root, &mut leaves);
    let mut out = Vec::with_capacity(msg.len() * 4 / 3 + 64 * leaves.len());
    let mut pos = 0;
    for e in leaves {
        out.extend_from_slice(&msg[pos..e.start]);
        let header = e.header(msg);
        // The header without its Content-Transfer-Encoding fields and the blank line
        // that ends it, then the new field and the blank line.
        let mut kept = 0;
        for f in tree::fields(header) {
            if f.name.eq_ignore_ascii_case(b"content-transfer-encoding") {
                let at = f.line.as_ptr() as usize - header.as_ptr() as usize;
                out.extend_from_slice(&header[kept..at]);
                kept = at + f.line.len();
            }
        }
        let rest = &header[kept..];
        let rest = rest
            .strip_suffix(b"\r\n")
            .or_else(|| rest.strip_suffix(b"\n"))
            .unwrap_or(rest);
        out.extend_from_slice(rest);
        out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
        let encoded = golub_types::sasl::encode_base64(e.body_octets(msg));
        for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line);
        }
        // A part inside a multipart is followed by the line break before its delimiter;
        // the last line of a message's own body needs one.
        if !matches!(msg.get(e.end), Some(b'\r' | b'\n')) {
            out.extend_from_slice(b"\r\n");
        }
        pos = e.end;
    }
    out.extend_from_slice(&msg[pos..]);
    Some(out)
}

fn binary_leaves<'e>(msg: &[u8], e: &'e Entity, out: &mut Vec<&'e Entity>) {
    match &e.kind {
        Kind::Multipart(children) => children.iter().for_each(|c| binary_leaves(msg, c, out)),
        Kind::Message(inner) => binary_leaves(msg, inner, out),
        Kind::Leaf => {
            if tree::memchr(0, e.body_octets(msg)).is_some() {
                out.push(e);
            }
        }
    }
}

/// BINARY.SIZE[part] (RFC 3516): the length of what [`binary`] returns.
pub fn binary_size(msg: &[u8], part: &[u32]) -> Result<usize, BinaryError> {
    binary(msg, part).map(|b| b.len())
}

/// The raw values (unfolded, trimmed) of every top-level header field called `name`.
pub fn header_values<'a>(msg: &'a [u8], name: &str) -> Vec<Cow<'a, [u8]>> {
    let header = &msg[..tree::header_end(msg, 0, msg.len())];
    tree::fields(header)
        .into_iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| match f.unfolded() {
            // Re-borrow from the message rather than the temporary field.
            Cow::Borrowed(_) => Cow::Borrowed(tree::trim(f.value)),
            Cow::Owned(v) => Cow::Owned(v),
        })
        .collect()
}

/// SEARCH HEADER (and FROM, SUBJECT, ...): whether a top-level field called `name`
/// contains `needle`, case-insensitively, after RFC 2047 decoding. An empty needle
/// matches any message that has the field (RFC 3501 §6.4.4).
pub fn header_contains(msg: &[u8], name: &str, needle: &[u8]) -> bool {
    let needle = fold(&String::from_utf8_lossy(needle));
    let header = &msg[..tree::header_end(msg, 0, msg.len())];
    let addresses = ["From", "To", "Cc", "Bcc", "Sender", "Reply-To"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name));
    tree::fields(header)
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .any(|f| {
            needle.is_empty()
                || value_contains(f.value, &needle)
                // An address also matches as the parsed `mailbox@host`, whatever comments
                // and spacing it was written with.
                || (addresses
                    && address::parse_list(f.value).iter().any(|item| match item {
                        address::Item::Mailbox { mailbox, host, .. } => {
                            let addr = format!(
                                "{}@{}",
                                String::from_utf8_lossy(mailbox),
                                String::from_utf8_lossy(host)
                            );
                            fold(&addr).contains(&needle)
                        }
                        _ => false,
                    }))
        })
}

/// Whether a raw header value, decoded (RFC 2047) and unfolded, contains the folded
/// needle. A plain ASCII value on one line, the common case, is compared in place.
fn value_contains(raw: &[u8], needle: &str) -> bool {
    let plain = raw.is_ascii()
        && needle.is_ascii()
        && !raw.iter().any(|&b| b == b'\r' || b == b'\n')
        && !raw.windows(2).any(|w| w == b"=?");
    if plain {
        let value = tree::trim(raw);
        let needle = needle.as_bytes();
        return value
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle));
    }
    fold(&decode_header_value(raw)).contains(needle)
}

/// SEARCH BODY (`body_only`) and TEXT: a case-insensitive substring search in the decoded
/// text parts (transfer encoding and charset undone), and for TEXT also in the decoded
/// header. Headers of encapsulated messages count as body text.
pub fn text_matches(msg: &[u8], needle: &[u8], body_only: bool) -> bool {
    let needle = fold(&String::from_utf8_lossy(needle));
    if needle.is_empty() {
        return true;
    }
    let root = tree::parse(msg);
    if !body_only && header_matches(root.header(msg), &needle) {
        return true;
    }
    entity_matches(msg, &root, &needle)
}

fn entity_matches(msg: &[u8], e: &Entity, needle: &str) -> bool {
    match &e.kind {
        Kind::Multipart(children) => children.iter().any(|c| entity_matches(msg, c, needle)),
        Kind::Message(inner) => {
            header_matches(inner.header(msg), needle) || entity_matches(msg, inner, needle)
        }
        Kind::Leaf if e.media.ty.eq_ignore_ascii_case("text") => {
            let body = e.body_octets(msg);
            let encoding = tree::field(e.header(msg), "content-transfer-encoding")
                .map(|f| f.unfolded().to_ascii_lowercase())
                .unwrap_or_default();
            let decoded = match encoding.as_slice() {
                b"base64" => Cow::Owned(decode::base64(body)),
                b"quoted-printable" => Cow::Owned(decode::quoted_printable(body)),
                _ => Cow::Borrowed(body),
            };
            let text = match e
                .media
                .param("charset")
                .and_then(|c| charset_decoder(c.as_bytes()))
            {
                Some(decoder) => Cow::Owned(decoder(&decoded)),
                None => String::from_utf8_lossy(&decoded),
            };
            fold(&text).contains(needle)
        }
        Kind::Leaf => false,
    }
}

fn header_matches(header: &[u8], needle: &str) -> bool {
    tree::fields(header).iter().any(|f| {
        fold(&String::from_utf8_lossy(f.name)).contains(needle)
            || fold(&decode_header_value(f.value)).contains(needle)
    })
}

/// A header value with RFC 2047 encoded-words decoded and folding removed.
fn decode_header_value(raw: &[u8]) -> String {
    let mut input = raw.to_vec();
    input.extend_from_slice(b"\r\n");
    match MessageStream::new(&input).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    }
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// The Date: header as unix seconds (SENTBEFORE, SENTON, SENTSINCE), None when absent or
/// unparsable.
pub fn sent_date(msg: &[u8]) -> Option<i64> {
    let header = &msg[..tree::header_end(msg, 0, msg.len())];
    let f = tree::field(header, "date")?;
    let mut input = f.value.to_vec();
    input.extend_from_slice(b"\r\n");
    let date = MessageStream::new(&input).parse_date().into_datetime()?;
    date.is_valid().then(|| date.to_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn binary_parts_with_nul_become_base64_and_binary_gives_them_back() {
        let single = b"Content-Type: application/octet-stream\r\n\
            Content-Transfer-Encoding: binary\r\n\r\n -\xff\x00\r\n\r\n";
        let out = encode_binary_parts(single).unwrap();
        assert!(!out.contains(&0));
        assert!(!out.windows(6).any(|w| w.eq_ignore_ascii_case(b"binary")));
        assert_eq!(binary(&out, &[1]).unwrap(), b" -\xff\x00\r\n\r\n");
        assert!(out.ends_with(b"\r\n"));

        let multi = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
            Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
            Content-Type: application/octet-stream\r\n\
            Content-Transfer-Encoding: 8bit\r\n\r\n\x00\x01\x02 tail\r\n--b--\r\n";
        let out = encode_binary_parts(multi).unwrap();
        assert!(!out.contains(&0));
        assert_eq!(binary(&out, &[1]).unwrap(), b"hello");
        assert_eq!(binary(&out, &[2]).unwrap(), b"\x00\x01\x02 tail");
        let structure = String::from_utf8(body_structure(&out, false)).unwrap();
        assert!(structure.contains("\"BASE64\""), "{structure}");
        assert!(out.ends_with(b"--b--\r\n"));

        assert_eq!(encode_binary_parts(b"Subject: x\r\n\r\nno nul\r\n"), None);
    }

    #[test]
    fn plain_strings_are_quoted_with_escapes() {
        assert_eq!(string(b"hello"), b"\"hello\"");
        assert_eq!(string(b""), b"\"\"");
        assert_eq!(string(br#"say "hi" \o/"#), br#""say \"hi\" \\o/""#);
    }

    #[test]
    fn utf8_is_quoted_but_other_8bit_is_a_literal() {
        assert_eq!(string("Grüße".as_bytes()), "\"Grüße\"".as_bytes());
        assert_eq!(string(b"Gr\xfc\xdfe"), b"{5}\r\nGr\xfc\xdfe");
    }

    #[test]
    fn line_breaks_nul_and_long_strings_are_literals() {
        assert_eq!(string(b"a\r\nb"), b"{4}\r\na\r\nb");
        assert_eq!(string(b"a\nb"), b"{3}\r\na\nb");
        assert_eq!(string(b"a\0b"), b"{3}\r\na\0b");
        let long = vec![b'x'; 1025];
        let out = string(&long);
        assert!(out.starts_with(format!("{{{}}}\r\n", 1025).as_bytes()));
        assert_eq!(string(&long[..1024])[0], b'"');
    }

    #[test]
    fn nil_for_none() {
        let mut out = Vec::new();
        write_nstring(&mut out, None);
        out.push(b' ');
        write_nstring(&mut out, Some(b"x"));
        assert_eq!(out, b"NIL \"x\"");
    }

    #[test]
    fn sender_and_reply_to_default_to_from() {
        let msg = b"From: A <a@x.org>\r\nSender:\r\nSubject: hi\r\n\r\nbody\r\n";
        assert_eq!(
            envelope(msg),
            b"(NIL \"hi\" ((\"A\" NIL \"a\" \"x.org\")) ((\"A\" NIL \"a\" \"x.org\")) \
              ((\"A\" NIL \"a\" \"x.org\")) NIL NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn deep_nesting_stops_at_the_bound() {
        let mut msg = Vec::new();
        for _ in 0..200 {
            msg.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        msg.extend_from_slice(b"Subject: x\r\n\r\nhi\r\n");
        let bs = body_structure(&msg, true);
        assert_eq!(
            bs.iter().filter(|&&c| c == b'(').count(),
            bs.iter().filter(|&&c| c == b')').count()
        );
        assert!(section(&msg, &Section::default()).is_some());
        assert!(text_matches(&msg, b"hi", true));
    }

    #[test]
    fn sent_date_reads_the_date_field() {
        let msg = b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n";
        assert_eq!(sent_date(msg), Some(760686745));
        assert_eq!(sent_date(b"Date: yesterday\r\n\r\n"), None);
        assert_eq!(sent_date(b"Subject: x\r\n\r\n"), None);
    }
}
