//! The MIME tree of a stored message: for every entity the octet ranges of its header block
//! and body, its effective media type, and its children (multipart) or the encapsulated
//! message (message/rfc822).
//!
//! Our own walk rather than mail-parser's part list: IMAP needs exact octet boundaries
//! (the CRLF before a boundary line belongs to the boundary, RFC 2046 §5.1.1), unlimited
//! nesting up to our own bound, and the raw header text. mail-parser still parses the
//! Content-Type and Content-Disposition values (RFC 2231 included).

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;
use mail_parser::{ContentType, HeaderValue};

/// Entities nested deeper than this are leaves of type text/plain.
pub const MAX_DEPTH: usize = 50;

/// One header field as stored.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub name: &'a [u8],
    /// After the colon up to (not including) the final line break; folding kept.
    pub value: &'a [u8],
    /// The whole field, folding lines and final line break included.
    pub line: &'a [u8],
}

impl Field<'_> {
    /// The value unfolded (line breaks removed) and trimmed of surrounding white space.
    pub fn unfolded(&self) -> Cow<'_, [u8]> {
        let v = trim(self.value);
        if v.iter().any(|&c| c == b'\r' || c == b'\n') {
            Cow::Owned(
                v.iter()
                    .copied()
                    .filter(|&c| c != b'\r' && c != b'\n')
                    .collect(),
            )
        } else {
            Cow::Borrowed(v)
        }
    }
}

/// The fields of a header block (lines without a colon are skipped).
pub fn fields(block: &[u8]) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < block.len() {
        let start = pos;
        // A field runs to the first line break not followed by white space.
        let mut end = start;
        loop {
            match memchr(b'\n', &block[end..]) {
                Some(i) => {
                    end += i + 1;
                    if end < block.len() && (block[end] == b' ' || block[end] == b'\t') {
                        continue;
                    }
                }
                None => end = block.len(),
            }
            break;
        }
        pos = end;
        let line = &block[start..end];
        if is_blank_line(line) {
            break;
        }
        let Some(colon) = memchr(b':', line) else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.is_empty() || name.contains(&b'\n') {
            continue;
        }
        let mut value = &line[colon + 1..];
        value = value.strip_suffix(b"\n").unwrap_or(value);
        value = value.strip_suffix(b"\r").unwrap_or(value);
        out.push(Field { name, value, line });
    }
    out
}

/// The first field called `name` (case-insensitive).
pub fn field<'a>(block: &'a [u8], name: &str) -> Option<Field<'a>> {
    fields(block)
        .into_iter()
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
}

/// A media type with lower-cased type, subtype and parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub ty: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
}

impl Media {
    fn text_plain() -> Media {
        Media {
            ty: "text".into(),
            subtype: "plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
        }
    }

    fn message_rfc822() -> Media {
        Media {
            ty: "message".into(),
            subtype: "rfc822".into(),
            params: Vec::new(),
        }
    }

    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Content-Type or Content-Disposition parsed by mail-parser (RFC 2231 merged and decoded).
pub fn parse_content_type(value: &[u8]) -> Option<ContentType<'static>> {
    let mut input = value.to_vec();
    input.extend_from_slice(b"\r\n");
    match MessageStream::new(&input).parse_content_type() {
        HeaderValue::ContentType(ct) => Some(ContentType {
            c_type: Cow::Owned(ct.c_type.into_owned()),
            c_subtype: ct.c_subtype.map(|s| Cow::Owned(s.into_owned())),
            attributes: ct.attributes.map(|attrs| {
                attrs
                    .into_iter()
                    .map(|a| mail_parser::Attribute {
                        name: Cow::Owned(a.name.into_owned()),
                        value: Cow::Owned(a.value.into_owned()),
                    })
                    .collect()
            }),
        }),
        _ => None,
    }
}

pub fn params_of(ct: &ContentType<'_>) -> Vec<(String, String)> {
    ct.attributes()
        .unwrap_or_default()
        .iter()
        .map(|a| (a.name.to_string(), a.value.to_string()))
        .collect()
}

#[derive(Debug)]
pub enum Kind {
    Leaf,
    Multipart(Vec<Entity>),
    /// message/rfc822: the encapsulated message, which spans this entity's body.
    Message(Box<Entity>),
}

/// A MIME entity: a message or a body part.
#[derive(Debug)]
pub struct Entity {
    /// Start of the header block.
    pub start: usize,
    /// Start of the body (just after the blank line ending the header block).
    pub body: usize,
    /// End of the body.
    pub end: usize,
    pub media: Media,
    pub kind: Kind,
}

impl Entity {
    pub fn header<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        msg.get(self.start..self.body).unwrap_or_default()
    }

    pub fn body_octets<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        msg.get(self.body..self.end).unwrap_or_default()
    }

    /// The parts a section number addresses when this entity is a message (RFC 3501
    /// §6.4.5): the children of a multipart body, else part 1 is the body itself.
    pub fn message_part(&self, n: u32) -> Option<&Entity> {
        match &self.kind {
            Kind::Multipart(children) => children.get((n as usize).checked_sub(1)?),
            _ if n == 1 => Some(self),
            _ => None,
        }
    }

    /// The part `n` inside this part: a child of a multipart, or a part of the
    /// encapsulated message.
    pub fn sub_part(&self, n: u32) -> Option<&Entity> {
        match &self.kind {
            Kind::Multipart(children) => children.get((n as usize).checked_sub(1)?),
            Kind::Message(inner) => inner.message_part(n),
            Kind::Leaf => None,
        }
    }
}

/// Parses the whole message.
pub fn parse(msg: &[u8]) -> Entity {
    parse_entity(msg, 0, msg.len(), false, 0)
}

/// Resolves a part path (RFC 3501 §6.4.5); the empty path is the message itself.
pub fn resolve<'e>(root: &'e Entity, path: &[u32]) -> Option<&'e Entity> {
    let Some((&first, rest)) = path.split_first() else {
        return Some(root);
    };
    let mut cur = root.message_part(first)?;
    for &n in rest {
        cur = cur.sub_part(n)?;
    }
    Some(cur)
}

fn parse_entity(msg: &[u8], start: usize, end: usize, in_digest: bool, depth: usize) -> Entity {
    let body = header_end(msg, start, end);
    let header = &msg[start..body];
    let ct_field = field(header, "content-type");
    let declared = ct_field
        .and_then(|f| parse_content_type(f.value))
        .and_then(|ct| {
            let subtype = ct.c_subtype.as_deref()?.to_string();
            if ct.c_type.is_empty() || subtype.is_empty() {
                return None;
            }
            Some(Media {
                ty: ct.c_type.to_string(),
                subtype,
                params: params_of(&ct),
            })
        });
    // RFC 2045 §5.2: no (or an invalid) Content-Type means text/plain; us-ascii, and
    // RFC 2046 §5.1.5: message/rfc822 inside multipart/digest.
    let media = match declared {
        // RFC 2046 §4.1.2: text without a charset is us-ascii; say so, as Dovecot does.
        Some(mut m) if m.ty == "text" && m.param("charset").is_none() => {
            m.params.insert(0, ("charset".into(), "us-ascii".into()));
            m
        }
        Some(m) => m,
        None if in_digest && ct_field.is_none() => Media::message_rfc822(),
        None => Media::text_plain(),
    };
    let mut entity = Entity {
        start,
        body,
        end,
        media,
        kind: Kind::Leaf,
    };
    if depth >= MAX_DEPTH {
        if entity.media.ty == "multipart" || entity.media.is("message", "rfc822") {
            entity.media = Media::text_plain();
        }
        return entity;
    }
    if entity.media.ty == "multipart" {
        let digest = entity.media.subtype == "digest";
        let parts = entity
            .media
            .param("boundary")
            .filter(|b| !b.is_empty())
            .and_then(|b| split_multipart(msg, body, end, b.as_bytes()));
        match parts {
            Some(ranges) => {
                let children = ranges
                    .into_iter()
                    .map(|(s, e)| parse_entity(msg, s, e, digest, depth + 1))
                    .collect();
                entity.kind = Kind::Multipart(children);
            }
            // No boundary, or it never occurs: the body is plain text.
            None => entity.media = Media::text_plain(),
        }
    } else if entity.media.is("message", "rfc822") {
        let encoded = field(header, "content-transfer-encoding").is_some_and(|f| {
            let v = f.unfolded();
            v.eq_ignore_ascii_case(b"base64") || v.eq_ignore_ascii_case(b"quoted-printable")
        });
        if encoded {
            // RFC 2046 §5.2.1 forbids it; we do not decode to look inside.
            entity.media = Media::text_plain();
        } else {
            let inner = parse_entity(msg, body, end, false, depth + 1);
            entity.kind = Kind::Message(Box::new(inner));
        }
    }
    entity
}

/// The start of the body: just after the first empty line, or `end` when there is none.
pub fn header_end(msg: &[u8], start: usize, end: usize) -> usize {
    let mut pos = start;
    while pos < end {
        let line_end = match memchr(b'\n', &msg[pos..end]) {
            Some(i) => pos + i + 1,
            None => end,
        };
        if is_blank_line(&msg[pos..line_end]) {
            return line_end;
        }
        pos = line_end;
    }
    end
}

fn is_blank_line(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

/// The (start, end) of each body part of a multipart body, or None when no delimiter line
/// is found. A part ends before the line break that precedes the next delimiter; the last
/// part ends at the close delimiter or, when that is missing, at the end of the body.
fn split_multipart(
    msg: &[u8],
    start: usize,
    end: usize,
    boundary: &[u8],
) -> Option<Vec<(usize, usize)>> {
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    let mut pos = start;
    while pos < end {
        let line_end = match memchr(b'\n', &msg[pos..end]) {
            Some(i) => pos + i + 1,
            None => end,
        };
        if let Some(close) = delimiter(&msg[pos..line_end], boundary) {
            if let Some(part_start) = open.take() {
                let mut part_end = pos;
                if part_end > part_start && msg[part_end - 1] == b'\n' {
                    part_end -= 1;
                    if part_end > part_start && msg[part_end - 1] == b'\r' {
                        part_end -= 1;
                    }
                }
                parts.push((part_start, part_end.max(part_start)));
            }
            if close {
                return Some(parts);
            }
            open = Some(line_end);
        }
        pos = line_end;
    }
    match open {
        Some(part_start) => {
            parts.push((part_start, end));
            Some(parts)
        }
        None if parts.is_empty() => None,
        None => Some(parts),
    }
}

/// Some(is_close) when the line is a delimiter line for `boundary`: "--" boundary, then
/// "--" (close delimiter) or only white space.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    if rest.starts_with(b"--") {
        Some(true)
    } else if rest.iter().all(|c| c.is_ascii_whitespace()) {
        Some(false)
    } else {
        None
    }
}

pub fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}

pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}
