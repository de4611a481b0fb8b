//! FETCH responses (RFC 9051 §7.5.2): one message's data items, written in the order the
//! client asked for them.

use crate::command::{FetchAttr, Partial, Section, SectionText};
use crate::encode;
use crate::mime;
use crate::view::Entry;

/// One message as FETCH needs it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The sequence number.
    pub seq: u32,
    pub entry: &'a Entry,
    pub internal_date: i64,
    pub size: u64,
    /// The whole message, when an item needs it ([`needs_content`]).
    pub content: Option<&'a [u8]>,
}

/// What to add beyond the items asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    /// UID FETCH: the UID always (RFC 9051 §6.4.8).
    pub uid: bool,
    /// CONDSTORE enabled or CHANGEDSINCE given: MODSEQ always (RFC 7162 §3.2.4).
    pub modseq: bool,
    /// The fetch set \Seen: FLAGS always (RFC 9051 §6.4.5).
    pub flags: bool,
}

/// A FETCH item that cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// RFC 3516 §4.1: BINARY of a part whose encoding we cannot decode.
    #[error("unknown content-transfer-encoding")]
    UnknownCte,
}

/// Whether any item needs the message's content (not only its metadata).
pub fn needs_content(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| {
        !matches!(
            a,
            FetchAttr::Uid
                | FetchAttr::Flags
                | FetchAttr::InternalDate
                | FetchAttr::Rfc822Size
                | FetchAttr::ModSeq
        )
    })
}

/// Whether any item needs more of the message than its header section (ENVELOPE,
/// RFC822.HEADER and BODY[HEADER...] of the message itself need only that).
pub fn needs_body(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| match a {
        FetchAttr::Uid
        | FetchAttr::Flags
        | FetchAttr::InternalDate
        | FetchAttr::Rfc822Size
        | FetchAttr::ModSeq
        | FetchAttr::Envelope
        | FetchAttr::Rfc822Header => false,
        FetchAttr::BodySection {
            section, partial, ..
        } => {
            !(section.part.is_empty()
                && partial.is_none()
                && matches!(
                    section.text,
                    Some(SectionText::Header)
                        | Some(SectionText::HeaderFields(_))
                        | Some(SectionText::HeaderFieldsNot(_))
                ))
        }
        _ => true,
    })
}

/// Whether the items set \Seen (RFC 9051 §6.4.5: BODY[] and BINARY[] without PEEK,
/// RFC822 and RFC822.TEXT).
pub fn sets_seen(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| match a {
        FetchAttr::Rfc822 | FetchAttr::Rfc822Text => true,
        FetchAttr::BodySection { peek, .. } | FetchAttr::Binary { peek, .. } => !peek,
        _ => false,
    })
}

/// Writes `* seq FETCH (...)`.
pub fn write(
    out: &mut Vec<u8>,
    msg: &Message<'_>,
    attrs: &[FetchAttr],
    extra: Extra,
) -> Result<(), FetchError> {
    let start = out.len();
    out.extend_from_slice(b"* ");
    encode::number(out, msg.seq as u64);
    out.extend_from_slice(b" FETCH (");
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    let asked = |f: fn(&FetchAttr) -> bool| attrs.iter().any(f);
    if extra.uid && !asked(|a| matches!(a, FetchAttr::Uid)) {
        sep(out);
        uid(out, msg);
    }
    if extra.flags && !asked(|a| matches!(a, FetchAttr::Flags)) {
        sep(out);
        flags(out, msg);
    }
    if extra.modseq && !asked(|a| matches!(a, FetchAttr::ModSeq)) {
        sep(out);
        modseq(out, msg);
    }
    let content = msg.content.unwrap_or_default();
    for attr in attrs {
        sep(out);
        match attr {
            FetchAttr::Uid => uid(out, msg),
            FetchAttr::Flags => flags(out, msg),
            FetchAttr::ModSeq => modseq(out, msg),
            FetchAttr::InternalDate => {
                out.extend_from_slice(b"INTERNALDATE ");
                encode::date_time(out, msg.internal_date);
            }
            FetchAttr::Rfc822Size => {
                out.extend_from_slice(b"RFC822.SIZE ");
                encode::number(out, msg.size);
            }
            FetchAttr::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                out.extend_from_slice(&mime::envelope(content));
            }
            FetchAttr::Body => {
                out.extend_from_slice(b"BODY ");
                out.extend_from_slice(&mime::body_structure(content, false));
            }
            FetchAttr::BodyStructure => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                out.extend_from_slice(&mime::body_structure(content, true));
            }
            FetchAttr::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                encode::literal(out, content);
            }
            FetchAttr::Rfc822Header => {
                out.extend_from_slice(b"RFC822.HEADER ");
                let section = Section {
                    part: Vec::new(),
                    text: Some(SectionText::Header),
                };
                let data = mime::section(content, &section).unwrap_or_default();
                encode::literal(out, &data);
            }
            FetchAttr::Rfc822Text => {
                out.extend_from_slice(b"RFC822.TEXT ");
                let section = Section {
                    part: Vec::new(),
                    text: Some(SectionText::Text),
                };
                let data = mime::section(content, &section).unwrap_or_default();
                encode::literal(out, &data);
            }
            FetchAttr::BodySection {
                section, partial, ..
            } => {
                out.extend_from_slice(b"BODY[");
                write_section(out, section);
                out.push(b']');
                match mime::section(content, section) {
                    Some(data) => write_partial(out, &data, *partial, false),
                    None => {
                        if let Some(p) = partial {
                            origin(out, p);
                        }
                        out.extend_from_slice(b" NIL");
                    }
                }
            }
            FetchAttr::Binary { part, partial, .. } => {
                let data = match mime::binary(content, part) {
                    Ok(d) => Some(d),
                    Err(mime::BinaryError::NoSuchPart) => None,
                    Err(_) => {
                        out.truncate(start);
                        return Err(FetchError::UnknownCte);
                    }
                };
                out.extend_from_slice(b"BINARY[");
                write_part(out, part);
                out.push(b']');
                match data {
                    Some(d) => write_partial(out, &d, *partial, true),
                    None => out.extend_from_slice(b" NIL"),
                }
            }
            FetchAttr::BinarySize { part } => {
                let size = match mime::binary(content, part) {
                    Ok(d) => Some(d.len()),
                    Err(mime::BinaryError::NoSuchPart) => None,
                    Err(_) => {
                        out.truncate(start);
                        return Err(FetchError::UnknownCte);
                    }
                };
                out.extend_from_slice(b"BINARY.SIZE[");
                write_part(out, part);
                out.extend_from_slice(b"] ");
                match size {
                    Some(n) => encode::number(out, n as u64),
                    None => out.extend_from_slice(b"NIL"),
                }
            }
        }
    }
    out.extend_from_slice(b")\r\n");
    Ok(())
}

fn uid(out: &mut Vec<u8>, msg: &Message<'_>) {
    out.extend_from_slice(b"UID ");
    encode::number(out, msg.entry.uid as u64);
}

fn flags(out: &mut Vec<u8>, msg: &Message<'_>) {
    out.extend_from_slice(b"FLAGS ");
    msg.entry.write_flags(out);
}

fn modseq(out: &mut Vec<u8>, msg: &Message<'_>) {
    out.extend_from_slice(b"MODSEQ (");
    encode::number(out, msg.entry.modseq);
    out.push(b')');
}

fn origin(out: &mut Vec<u8>, p: &Partial) {
    out.push(b'<');
    encode::number(out, p.offset as u64);
    out.push(b'>');
}

/// ` data` or `<origin> data` with the partial range of `data`; for BINARY (`binary`),
/// a literal8 when the octets hold NUL.
fn write_partial(out: &mut Vec<u8>, data: &[u8], partial: Option<Partial>, binary: bool) {
    let data = match partial {
        None => data,
        Some(p) => {
            origin(out, &p);
            let from = (p.offset as usize).min(data.len());
            let to = from.saturating_add(p.length as usize).min(data.len());
            &data[from..to]
        }
    };
    out.push(b' ');
    if binary && data.contains(&0) {
        encode::literal8(out, data);
    } else {
        encode::literal(out, data);
    }
}

fn write_part(out: &mut Vec<u8>, part: &[u32]) {
    for (i, n) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        encode::number(out, *n as u64);
    }
}

/// The section spec as the response echoes it.
fn write_section(out: &mut Vec<u8>, section: &Section) {
    write_part(out, &section.part);
    let Some(text) = &section.text else {
        return;
    };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let fields = |out: &mut Vec<u8>, names: &[String]| {
        out.extend_from_slice(b" (");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            encode::astring(out, n.to_ascii_uppercase().as_bytes());
        }
        out.push(b')');
    };
    match text {
        SectionText::Header => out.extend_from_slice(b"HEADER"),
        SectionText::Text => out.extend_from_slice(b"TEXT"),
        SectionText::Mime => out.extend_from_slice(b"MIME"),
        SectionText::HeaderFields(names) => {
            out.extend_from_slice(b"HEADER.FIELDS");
            fields(out, names);
        }
        SectionText::HeaderFieldsNot(names) => {
            out.extend_from_slice(b"HEADER.FIELDS.NOT");
            fields(out, names);
        }
    }
}
