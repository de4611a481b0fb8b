//! The command parser: one framed command ([`crate::frame::Frame::Command`]) into a
//! [`Tagged`] command (RFC 3501 §9, RFC 9051 §9 and the extensions' grammar).
//!
//! Strict where the grammar is (one SP between tokens, nothing after the command), with
//! two leniencies of real clients: bare LF line ends and one-digit days in dates. Errors
//! carry the tag when there was one, for the tagged BAD. No panics, no recursion (search
//! keys nest on an explicit stack), time linear in the input.

mod reader;
mod search;

use crate::command::{
    Command, Fetch, FetchAttr, List, ListReturn, ListSelect, Partial, Qresync, Section,
    SectionText, StatusItem, Store, StoreMode, Tagged,
};
pub(crate) use reader::is_tag_char;
use reader::{R, Reader, days_from_civil, days_in_month, month, show};

/// A command that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The command's tag, when it had a valid one (for a tagged BAD).
    pub tag: Option<String>,
    pub message: String,
}

/// Parses one command: its lines (CRLF or LF) with literal octets inline.
pub fn command(input: &[u8]) -> Result<Tagged, ParseError> {
    let mut r = Reader::new(input);
    let tag = r.tag();
    if tag.is_empty()
        || tag.contains(&b'+')
        || !matches!(r.peek(), Some(b' ') | None) && !r.at_end()
    {
        return Err(ParseError {
            tag: None,
            message: "missing or invalid tag".into(),
        });
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    match r.sp().and_then(|()| body(&mut r)) {
        Ok(command) => Ok(Tagged { tag, command }),
        Err(message) => Err(ParseError {
            tag: Some(tag),
            message: if message == "missing argument" {
                "missing command".into()
            } else {
                message
            },
        }),
    }
}

/// Consumes one SP if another argument follows.
fn more(r: &mut Reader) -> R<bool> {
    if r.peek() == Some(b' ') {
        r.sp()?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// SP and a required argument of command `cmd`: "`cmd` needs `what`" when missing.
fn arg<'a, T>(
    r: &mut Reader<'a>,
    cmd: &str,
    what: &str,
    f: impl FnOnce(&mut Reader<'a>) -> R<T>,
) -> R<T> {
    if r.at_end() {
        return Err(format!("{cmd} needs {what}"));
    }
    r.sp().map_err(|e| format!("{cmd}: {e}"))?;
    if r.at_end() {
        return Err(format!("{cmd} needs {what}"));
    }
    f(r).map_err(|e| format!("{cmd}: {e}"))
}

fn body(r: &mut Reader) -> R<Command> {
    let name = r.atom().map_err(|_| "missing command".to_string())?;
    let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
    let n = upper.as_str();
    let command = match n {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "LOGOUT" => Command::Logout,
        "STARTTLS" => Command::StartTls,
        "NAMESPACE" => Command::Namespace,
        "IDLE" => Command::Idle,
        "CHECK" => Command::Check,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "EXPUNGE" => Command::Expunge { uids: None },
        "AUTHENTICATE" => authenticate(r)?,
        "LOGIN" => Command::Login {
            user: arg(r, n, "a user name", Reader::astring)?,
            password: arg(r, n, "a password", Reader::astring)?,
        },
        "ENABLE" => {
            let mut caps = vec![arg(r, n, "a capability", Reader::atom_upper)?];
            while more(r)? {
                caps.push(r.atom_upper().map_err(|e| format!("{n}: {e}"))?);
            }
            Command::Enable(caps)
        }
        "SELECT" | "EXAMINE" => select(r, n)?,
        "CREATE" => create(r)?,
        "DELETE" => Command::Delete(arg(r, n, "a mailbox name", Reader::astring)?),
        "RENAME" => Command::Rename {
            from: arg(r, n, "a mailbox name", Reader::astring)?,
            to: arg(r, n, "a new mailbox name", Reader::astring)?,
        },
        "SUBSCRIBE" => Command::Subscribe(arg(r, n, "a mailbox name", Reader::astring)?),
        "UNSUBSCRIBE" => Command::Unsubscribe(arg(r, n, "a mailbox name", Reader::astring)?),
        "LIST" => list(r)?,
        "LSUB" => {
            if !r.eat(b' ') {
                return Err("LSUB needs a reference and a mailbox pattern".into());
            }
            let reference = reference(r).map_err(|e| format!("LSUB: {e}"))?;
            Command::Lsub {
                reference,
                pattern: arg(r, n, "a mailbox pattern", Reader::list_mailbox)?,
            }
        }
        "STATUS" => Command::Status {
            mailbox: arg(r, n, "a mailbox name", Reader::astring)?,
            items: arg(r, n, "status items", |r| r.paren_list(false, status_item))?,
        },
        "APPEND" => append(r)?,
        "SEARCH" => search::search(r, false)?,
        "FETCH" => fetch(r, false)?,
        "STORE" => store(r, false)?,
        "COPY" | "MOVE" => copy(r, n, false)?,
        "UID" => {
            let sub = arg(r, n, "a command", Reader::atom_upper)?;
            match sub.as_str() {
                "SEARCH" => search::search(r, true)?,
                "FETCH" => fetch(r, true)?,
                "STORE" => store(r, true)?,
                "COPY" | "MOVE" => copy(r, &sub, true)?,
                "EXPUNGE" => Command::Expunge {
                    uids: Some(arg(r, "UID EXPUNGE", "a UID set", Reader::sequence_set)?),
                },
                _ => return Err(format!("unknown command UID {}", show(sub.as_bytes()))),
            }
        }
        "ID" => Command::Id(arg(r, n, "NIL or a parameter list", id_params)?),
        "GETQUOTA" => Command::GetQuota(arg(r, n, "a quota root", Reader::astring)?),
        "GETQUOTAROOT" => Command::GetQuotaRoot(arg(r, n, "a mailbox name", Reader::astring)?),
        _ => return Err(format!("unknown command {}", show(name))),
    };
    r.end().map_err(|e| format!("{n}: {e}"))?;
    Ok(command)
}

/// AUTHENTICATE mechanism [SP initial-response] (RFC 4959 SASL-IR).
fn authenticate(r: &mut Reader) -> R<Command> {
    let mechanism = arg(r, "AUTHENTICATE", "a mechanism", Reader::atom_upper)?;
    let initial = if more(r)? {
        let start = r.i;
        while r
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            r.i += 1;
        }
        if r.i == start {
            return Err("AUTHENTICATE: bad initial response".into());
        }
        Some(r.consumed_since(start).to_vec())
    } else {
        None
    };
    Ok(Command::Authenticate { mechanism, initial })
}

/// SELECT/EXAMINE mailbox [(CONDSTORE) | (QRESYNC (...))] (RFC 7162 §3.2.5, §3.2.7).
fn select(r: &mut Reader, n: &str) -> R<Command> {
    let mailbox = arg(r, n, "a mailbox name", Reader::astring)?;
    let (mut condstore, mut qresync) = (false, None);
    if more(r)? {
        r.paren_list(false, |r| {
            if r.eat_word("CONDSTORE") {
                condstore = true;
            } else if r.eat_word("QRESYNC") {
                r.sp()?;
                qresync = Some(qresync_param(r)?);
            } else {
                return Err(format!(
                    "unknown {n} parameter {}",
                    show(r.atom().unwrap_or(b"?"))
                ));
            }
            Ok(())
        })
        .map_err(|e| format!("{n}: {e}"))?;
    }
    Ok(Command::Select {
        mailbox,
        read_only: n == "EXAMINE",
        condstore,
        qresync,
    })
}

/// "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")".
fn qresync_param(r: &mut Reader) -> R<Qresync> {
    r.expect(b'(', "( after QRESYNC")?;
    let uidvalidity = r.nz_number()?;
    r.sp()?;
    let modseq = r.modseq()?;
    let (mut known_uids, mut seq_match) = (None, None);
    if more(r)? {
        if r.peek() != Some(b'(') {
            known_uids = Some(r.sequence_set()?);
            if !more(r)? {
                r.expect(b')', ")")?;
                return Ok(Qresync {
                    uidvalidity,
                    modseq,
                    known_uids,
                    seq_match,
                });
            }
        }
        r.expect(b'(', "(")?;
        let seqs = r.sequence_set()?;
        r.sp()?;
        let uids = r.sequence_set()?;
        r.expect(b')', ")")?;
        seq_match = Some((seqs, uids));
    }
    r.expect(b')', ")")?;
    Ok(Qresync {
        uidvalidity,
        modseq,
        known_uids,
        seq_match,
    })
}

/// CREATE mailbox [(USE (\Sent ...))] (RFC 6154 §5.3).
fn create(r: &mut Reader) -> R<Command> {
    let mailbox = arg(r, "CREATE", "a mailbox name", Reader::astring)?;
    let mut special_use = Vec::new();
    if more(r)? {
        r.paren_list(false, |r| {
            if !r.eat_word("USE") {
                return Err("unknown CREATE parameter".into());
            }
            r.sp()?;
            special_use.extend(r.paren_list(false, special_use_attr)?);
            Ok(())
        })
        .map_err(|e| format!("CREATE: {e}"))?;
    }
    Ok(Command::Create {
        mailbox,
        special_use,
    })
}

/// A special-use attribute (RFC 6154 §2): the known ones in canonical case, others as
/// given (the session refuses them with NO [USEATTR]).
fn special_use_attr(r: &mut Reader) -> R<String> {
    r.expect(b'\\', "a special-use attribute")?;
    let name = r.atom()?;
    let known = [
        "All", "Archive", "Drafts", "Flagged", "Junk", "Sent", "Trash",
    ]
    .into_iter()
    .find(|k| k.as_bytes().eq_ignore_ascii_case(name));
    Ok(match known {
        Some(k) => format!("\\{k}"),
        None => format!("\\{}", String::from_utf8_lossy(name)),
    })
}

/// LIST [(selection)] reference (pattern | (patterns)) [RETURN (options)] (RFC 5258).
fn list(r: &mut Reader) -> R<Command> {
    let mut list = List::default();
    if r.at_end() || !r.eat(b' ') {
        return Err("LIST needs a reference and a mailbox pattern".into());
    }
    if r.peek() == Some(b'(') {
        list.selection = r
            .paren_list(true, list_select)
            .map_err(|e| format!("LIST: {e}"))?;
        if list.selection == [ListSelect::RecursiveMatch] {
            return Err("LIST: RECURSIVEMATCH needs another selection option".into());
        }
        if r.at_end() {
            return Err("LIST needs a reference and a mailbox pattern".into());
        }
        r.sp().map_err(|e| format!("LIST: {e}"))?;
    }
    list.reference = reference(r).map_err(|e| format!("LIST: {e}"))?;
    list.patterns = arg(r, "LIST", "a mailbox pattern", |r| {
        if r.peek() == Some(b'(') {
            r.paren_list(false, Reader::list_mailbox)
        } else {
            Ok(vec![r.list_mailbox()?])
        }
    })?;
    if more(r)? {
        if !r.eat_word("RETURN") {
            return Err(format!("LIST: {}", r.unexpected("RETURN")));
        }
        list.returns = arg(r, "LIST", "return options", |r| {
            r.paren_list(true, list_return)
        })?;
    }
    Ok(Command::List(list))
}

/// A reference name. Python's imaplib sends an empty one as nothing at all
/// (`LIST  "*"`); as Dovecot does, that is taken as "".
fn reference(r: &mut Reader) -> R<Vec<u8>> {
    if r.peek() == Some(b' ') {
        Ok(Vec::new())
    } else {
        r.astring()
    }
}

fn list_select(r: &mut Reader) -> R<ListSelect> {
    let name = r.atom_upper()?;
    Ok(match name.as_str() {
        "SUBSCRIBED" => ListSelect::Subscribed,
        "REMOTE" => ListSelect::Remote,
        "RECURSIVEMATCH" => ListSelect::RecursiveMatch,
        "SPECIAL-USE" => ListSelect::SpecialUse,
        _ => {
            return Err(format!(
                "unknown selection option {}",
                show(name.as_bytes())
            ));
        }
    })
}

fn list_return(r: &mut Reader) -> R<ListReturn> {
    let name = r.atom_upper()?;
    Ok(match name.as_str() {
        "SUBSCRIBED" => ListReturn::Subscribed,
        "CHILDREN" => ListReturn::Children,
        "SPECIAL-USE" => ListReturn::SpecialUse,
        "STATUS" => {
            r.sp()?;
            ListReturn::Status(r.paren_list(false, status_item)?)
        }
        _ => return Err(format!("unknown return option {}", show(name.as_bytes()))),
    })
}

fn status_item(r: &mut Reader) -> R<StatusItem> {
    let name = r.atom_upper()?;
    Ok(match name.as_str() {
        "MESSAGES" => StatusItem::Messages,
        "RECENT" => StatusItem::Recent,
        "UIDNEXT" => StatusItem::UidNext,
        "UIDVALIDITY" => StatusItem::UidValidity,
        "UNSEEN" => StatusItem::Unseen,
        "DELETED" => StatusItem::Deleted,
        "SIZE" => StatusItem::Size,
        "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        _ => return Err(format!("unknown status item {}", show(name.as_bytes()))),
    })
}

/// APPEND mailbox [(flags)] [date-time] literal (or literal8, RFC 3516).
fn append(r: &mut Reader) -> R<Command> {
    let mailbox = arg(r, "APPEND", "a mailbox name", Reader::astring)?;
    let need = "APPEND needs a message literal";
    if !more(r)? {
        return Err(need.into());
    }
    let mut flags = Vec::new();
    if r.peek() == Some(b'(') {
        flags = r.flag_list().map_err(|e| format!("APPEND: {e}"))?;
        if !more(r)? {
            return Err(need.into());
        }
    }
    let mut date = None;
    if r.peek() == Some(b'"') {
        let text = r.quoted().map_err(|e| format!("APPEND: {e}"))?;
        date = Some(parse_date_time(&text).ok_or("APPEND: bad date-time")?);
        if !more(r)? {
            return Err(need.into());
        }
    }
    r.eat(b'~');
    if r.peek() != Some(b'{') {
        return Err(need.into());
    }
    let message = r
        .literal(true)
        .map_err(|e| format!("APPEND: {e}"))?
        .to_vec();
    Ok(Command::Append {
        mailbox,
        flags,
        date,
        message,
    })
}

/// An IMAP date-time `dd-Mon-yyyy hh:mm:ss +zzzz` (quotes optional, a one-digit day
/// with or without its leading space) as seconds since the epoch.
pub fn parse_date_time(text: &[u8]) -> Option<i64> {
    let t = text
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(text);
    let t = t.strip_prefix(b" ").unwrap_or(t);
    let dash = t.iter().position(|&b| b == b'-')?;
    let (day, t) = (digits(&t[..dash], 1, 2)?, &t[dash + 1..]);
    let month = month(t.get(..3)?)?;
    let t = t.get(3..)?.strip_prefix(b"-")?;
    let year = digits(t.get(..4)?, 4, 4)?;
    let t = t.get(4..)?.strip_prefix(b" ")?;
    let hour = digits(t.get(..2)?, 2, 2)?;
    let min = digits(t.get(3..5)?, 2, 2)?;
    let sec = digits(t.get(6..8)?, 2, 2)?;
    if t.get(2) != Some(&b':') || t.get(5) != Some(&b':') || t.get(8) != Some(&b' ') {
        return None;
    }
    let zone = t.get(9..)?;
    let (sign, zh, zm) = match zone {
        [s @ (b'+' | b'-'), rest @ ..] if rest.len() == 4 => (
            if *s == b'+' { 1 } else { -1 },
            digits(&rest[..2], 2, 2)?,
            digits(&rest[2..], 2, 2)?,
        ),
        _ => return None,
    };
    if day == 0
        || day > days_in_month(year as u16, month) as u32
        || hour > 23
        || min > 59
        || sec > 60
        || zm > 59
    {
        return None;
    }
    let days = days_from_civil(year as i64, month, day as u8);
    let local = days * 86_400 + (hour * 3600 + min * 60 + sec) as i64;
    Some(local - sign * (zh * 3600 + zm * 60) as i64)
}

/// Decimal digits, between `min` and `max` of them.
fn digits(b: &[u8], min: usize, max: usize) -> Option<u32> {
    if b.len() < min || b.len() > max || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &d| n * 10 + (d - b'0') as u32))
}

/// FETCH / UID FETCH set items [(CHANGEDSINCE n [VANISHED])].
fn fetch(r: &mut Reader, uid: bool) -> R<Command> {
    let n = if uid { "UID FETCH" } else { "FETCH" };
    let set = arg(r, n, "a sequence set", Reader::sequence_set)?;
    let attrs = arg(r, n, "data items", |r| {
        if r.peek() == Some(b'(') {
            r.paren_list(false, fetch_att)
        } else if r.eat_word("ALL") {
            Ok(macro_items(false, true))
        } else if r.eat_word("FAST") {
            Ok(macro_items(false, false))
        } else if r.eat_word("FULL") {
            Ok(macro_items(true, true))
        } else {
            Ok(vec![fetch_att(r)?])
        }
    })?;
    let (mut changed_since, mut vanished) = (None, false);
    if more(r)? {
        r.paren_list(false, |r| {
            if r.eat_word("CHANGEDSINCE") {
                r.sp()?;
                changed_since = Some(r.modseq()?);
            } else if r.eat_word("VANISHED") {
                vanished = true;
            } else {
                return Err(r.unexpected("CHANGEDSINCE or VANISHED"));
            }
            Ok(())
        })
        .map_err(|e| format!("{n}: {e}"))?;
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
        if vanished && (!uid || changed_since.is_none()) {
            return Err(format!("{n}: VANISHED needs UID FETCH and CHANGEDSINCE"));
        }
    }
    Ok(Command::Fetch(Fetch {
        uid,
        set,
        attrs,
        changed_since,
        vanished,
    }))
}

/// FAST, ALL (with ENVELOPE) and FULL (with ENVELOPE and BODY).
fn macro_items(body: bool, envelope: bool) -> Vec<FetchAttr> {
    let mut v = vec![
        FetchAttr::Flags,
        FetchAttr::InternalDate,
        FetchAttr::Rfc822Size,
    ];
    if envelope {
        v.push(FetchAttr::Envelope);
    }
    if body {
        v.push(FetchAttr::Body);
    }
    v
}

fn fetch_att(r: &mut Reader) -> R<FetchAttr> {
    let start = r.i;
    while r
        .peek()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
    {
        r.i += 1;
    }
    let name = String::from_utf8_lossy(r.consumed_since(start)).to_ascii_uppercase();
    let attr = match name.as_str() {
        "ENVELOPE" => FetchAttr::Envelope,
        "FLAGS" => FetchAttr::Flags,
        "INTERNALDATE" => FetchAttr::InternalDate,
        "RFC822" => FetchAttr::Rfc822,
        "RFC822.HEADER" => FetchAttr::Rfc822Header,
        "RFC822.SIZE" => FetchAttr::Rfc822Size,
        "RFC822.TEXT" => FetchAttr::Rfc822Text,
        "BODYSTRUCTURE" => FetchAttr::BodyStructure,
        "UID" => FetchAttr::Uid,
        "MODSEQ" => FetchAttr::ModSeq,
        "BODY" if r.peek() != Some(b'[') => FetchAttr::Body,
        "BODY" | "BODY.PEEK" => FetchAttr::BodySection {
            peek: name == "BODY.PEEK",
            section: section(r)?,
            partial: partial(r)?,
        },
        "BINARY" | "BINARY.PEEK" => FetchAttr::Binary {
            peek: name == "BINARY.PEEK",
            part: section_binary(r)?,
            partial: partial(r)?,
        },
        "BINARY.SIZE" => FetchAttr::BinarySize {
            part: section_binary(r)?,
        },
        "" => return Err(r.unexpected("a data item")),
        _ => return Err(format!("unknown data item {}", show(name.as_bytes()))),
    };
    Ok(attr)
}

/// section: "[" [part] ["." HEADER | HEADER.FIELDS[.NOT] (names) | TEXT | MIME] "]".
fn section(r: &mut Reader) -> R<Section> {
    r.expect(b'[', "[ after BODY.PEEK")?;
    let mut section = Section::default();
    if r.eat(b']') {
        return Ok(section);
    }
    let mut text = true;
    if r.peek().is_some_and(|b| b.is_ascii_digit()) {
        loop {
            section.part.push(r.nz_number()?);
            if !r.eat(b'.') {
                text = false;
                break;
            }
            if !r.peek().is_some_and(|b| b.is_ascii_digit()) {
                break;
            }
        }
    }
    if text {
        let start = r.i;
        while r
            .peek()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'.')
        {
            r.i += 1;
        }
        let name = String::from_utf8_lossy(r.consumed_since(start)).to_ascii_uppercase();
        section.text = Some(match name.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if !section.part.is_empty() => SectionText::Mime,
            "MIME" => return Err("MIME needs a part number".into()),
            "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                r.sp()?;
                let names = r.paren_list(false, Reader::astring_text)?;
                if name == "HEADER.FIELDS" {
                    SectionText::HeaderFields(names)
                } else {
                    SectionText::HeaderFieldsNot(names)
                }
            }
            _ => return Err("bad section".into()),
        });
    }
    r.expect(b']', "] after the section")?;
    Ok(section)
}

/// section-binary: "[" [part] "]" (RFC 3516).
fn section_binary(r: &mut Reader) -> R<Vec<u32>> {
    r.expect(b'[', "[ after BINARY")?;
    let mut part = Vec::new();
    if !r.eat(b']') {
        loop {
            part.push(r.nz_number()?);
            if !r.eat(b'.') {
                break;
            }
        }
        r.expect(b']', "] after the part number")?;
    }
    Ok(part)
}

/// partial: "<" offset "." length ">", length not zero.
fn partial(r: &mut Reader) -> R<Option<Partial>> {
    if !r.eat(b'<') {
        return Ok(None);
    }
    let offset = r.number()?;
    r.expect(b'.', ". in the partial range")?;
    let length = r.nz_number()?;
    r.expect(b'>', "> after the partial range")?;
    Ok(Some(Partial { offset, length }))
}

/// STORE / UID STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags.
fn store(r: &mut Reader, uid: bool) -> R<Command> {
    let n = if uid { "UID STORE" } else { "STORE" };
    let set = arg(r, n, "a sequence set", Reader::sequence_set)?;
    let mut unchanged_since = None;
    let what = "FLAGS, +FLAGS or -FLAGS";
    arg(r, n, what, |r| {
        if r.peek() == Some(b'(') {
            r.paren_list(false, |r| {
                if !r.eat_word("UNCHANGEDSINCE") {
                    return Err(r.unexpected("UNCHANGEDSINCE"));
                }
                r.sp()?;
                unchanged_since = Some(r.modseq()?);
                Ok(())
            })?;
            r.sp()?;
        }
        Ok(())
    })?;
    let mode = if r.eat(b'+') {
        StoreMode::Add
    } else if r.eat(b'-') {
        StoreMode::Remove
    } else {
        StoreMode::Replace
    };
    let silent = if r.eat_word("FLAGS.SILENT") {
        true
    } else if r.eat_word("FLAGS") {
        false
    } else {
        return Err(format!("{n}: {}", r.unexpected(what)));
    };
    let flags = arg(r, n, "flags", |r| {
        if r.peek() == Some(b'(') {
            r.flag_list()
        } else {
            let mut flags = vec![r.flag(false, false)?];
            while more(r)? {
                flags.push(r.flag(false, false)?);
            }
            Ok(flags)
        }
    })?;
    Ok(Command::Store(Store {
        uid,
        set,
        unchanged_since,
        mode,
        silent,
        flags,
    }))
}

/// COPY and MOVE, with or without UID.
fn copy(r: &mut Reader, n: &str, uid: bool) -> R<Command> {
    let set = arg(r, n, "a sequence set", Reader::sequence_set)?;
    let mailbox = arg(r, n, "a mailbox name", Reader::astring)?;
    Ok(if n == "MOVE" {
        Command::Move { uid, set, mailbox }
    } else {
        Command::Copy { uid, set, mailbox }
    })
}

/// ID: NIL or ("field" "value" ...) (RFC 2971).
fn id_params(r: &mut Reader) -> R<Vec<(String, Option<String>)>> {
    if r.eat_word("NIL") {
        return Ok(Vec::new());
    }
    r.paren_list(true, |r| {
        let key = String::from_utf8_lossy(&r.string()?).into_owned();
        r.sp()?;
        let value = r
            .nstring()?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok((key, value))
    })
}

#[cfg(test)]
mod tests;
