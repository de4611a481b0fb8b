//! SEARCH and UID SEARCH: RETURN options (RFC 4731), CHARSET and the search keys
//! (RFC 3501 §6.4.4, RFC 7162 MODSEQ, RFC 5182 `$`).
//!
//! Keys nest through NOT, OR and parentheses. They are read on an explicit stack, never
//! by recursion, and the depth of the tree is capped so that no later recursive walk
//! (drop, comparison, evaluation) can exhaust the stack.

use super::reader::{R, Reader, show};
use super::{arg, more};
use crate::command::{Command, Search, SearchKey, SearchReturn};

/// Most nested parenthesized lists.
const MAX_PAREN_DEPTH: usize = 32;
/// Most open NOT, OR and parentheses around one key.
const MAX_DEPTH: usize = 256;

pub(super) fn search(r: &mut Reader, uid: bool) -> R<Command> {
    let n = if uid { "UID SEARCH" } else { "SEARCH" };
    if r.at_end() {
        return Err(format!("{n} needs search keys"));
    }
    r.sp().map_err(|e| format!("{n}: {e}"))?;
    let mut returns = None;
    if r.eat_word("RETURN") {
        returns = Some(arg(r, n, "return options", |r| {
            r.paren_list(true, search_return)
        })?);
        r.sp().map_err(|_| format!("{n} needs search keys"))?;
    }
    let mut charset = None;
    if r.eat_word("CHARSET") {
        charset = Some(arg(r, n, "a charset", Reader::astring_text)?.to_ascii_uppercase());
        r.sp().map_err(|_| format!("{n} needs search keys"))?;
    }
    if r.at_end() {
        return Err(format!("{n} needs search keys"));
    }
    let mut keys = Vec::new();
    loop {
        keys.push(key(r).map_err(|e| format!("{n}: {e}"))?);
        if !more(r)? {
            break;
        }
    }
    Ok(Command::Search(Search {
        uid,
        returns,
        charset,
        keys,
    }))
}

fn search_return(r: &mut Reader) -> R<SearchReturn> {
    let name = r.atom_upper()?;
    Ok(match name.as_str() {
        "MIN" => SearchReturn::Min,
        "MAX" => SearchReturn::Max,
        "ALL" => SearchReturn::All,
        "COUNT" => SearchReturn::Count,
        "SAVE" => SearchReturn::Save,
        _ => return Err(format!("unknown return option {}", show(name.as_bytes()))),
    })
}

/// A key whose operands are still being read.
enum Open {
    Not,
    /// OR, its first operand to come.
    Or,
    /// OR with its first operand.
    OrSecond(SearchKey),
    /// A parenthesized list so far.
    Paren(Vec<SearchKey>),
}

/// One search key, nested ones included.
fn key(r: &mut Reader) -> R<SearchKey> {
    let mut stack: Vec<Open> = Vec::new();
    let mut parens = 0;
    loop {
        // Open NOT, OR and "(" until a simple key.
        let mut key = loop {
            if stack.len() >= MAX_DEPTH {
                return Err("search keys too deeply nested".into());
            }
            if r.eat(b'(') {
                parens += 1;
                if parens > MAX_PAREN_DEPTH {
                    return Err("search keys too deeply nested".into());
                }
                if r.peek() == Some(b')') {
                    return Err("empty parenthesized search list".into());
                }
                stack.push(Open::Paren(Vec::new()));
            } else if r.eat_word("NOT") {
                r.sp()?;
                stack.push(Open::Not);
            } else if r.eat_word("OR") {
                r.sp()?;
                stack.push(Open::Or);
            } else {
                break simple_key(r)?;
            }
        };
        // Close what this key completes.
        loop {
            match stack.pop() {
                None => return Ok(key),
                Some(Open::Not) => key = SearchKey::Not(Box::new(key)),
                Some(Open::Or) => {
                    r.sp()?;
                    stack.push(Open::OrSecond(key));
                    break;
                }
                Some(Open::OrSecond(first)) => key = SearchKey::Or(Box::new(first), Box::new(key)),
                Some(Open::Paren(mut keys)) => {
                    keys.push(key);
                    if r.eat(b')') {
                        parens -= 1;
                        key = SearchKey::And(keys);
                    } else {
                        r.sp().map_err(|_| r.unexpected(")"))?;
                        stack.push(Open::Paren(keys));
                        break;
                    }
                }
            }
        }
    }
}

/// A key without nested keys.
fn simple_key(r: &mut Reader) -> R<SearchKey> {
    match r.peek() {
        Some(b'0'..=b'9' | b'*') => return Ok(SearchKey::Seq(r.sequence_set()?)),
        _ if r.eat_word("$") => return Ok(SearchKey::Saved),
        _ => {}
    }
    let name = r.atom_upper().map_err(|_| r.unexpected("a search key"))?;
    let with = |r: &mut Reader, what: &str| -> R<()> {
        r.sp().map_err(|_| format!("{name} needs {what}"))
    };
    Ok(match name.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Answered,
        "DELETED" => SearchKey::Deleted,
        "DRAFT" => SearchKey::Draft,
        "FLAGGED" => SearchKey::Flagged,
        "NEW" => SearchKey::New,
        "OLD" => SearchKey::Old,
        "RECENT" => SearchKey::Recent,
        "SEEN" => SearchKey::Seen,
        "UNANSWERED" => SearchKey::Unanswered,
        "UNDELETED" => SearchKey::Undeleted,
        "UNDRAFT" => SearchKey::Undraft,
        "UNFLAGGED" => SearchKey::Unflagged,
        "UNSEEN" => SearchKey::Unseen,
        "KEYWORD" | "UNKEYWORD" => {
            with(r, "a keyword")?;
            let k = String::from_utf8_lossy(r.atom()?).into_owned();
            if name == "KEYWORD" {
                SearchKey::Keyword(k)
            } else {
                SearchKey::Unkeyword(k)
            }
        }
        "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" => {
            with(r, "a string")?;
            let s = r.astring()?;
            match name.as_str() {
                "BCC" => SearchKey::Bcc(s),
                "BODY" => SearchKey::Body(s),
                "CC" => SearchKey::Cc(s),
                "FROM" => SearchKey::From(s),
                "SUBJECT" => SearchKey::Subject(s),
                "TEXT" => SearchKey::Text(s),
                _ => SearchKey::To(s),
            }
        }
        "HEADER" => {
            with(r, "a field name and a string")?;
            let field = r.astring_text()?;
            with(r, "a field name and a string")?;
            SearchKey::Header(field, r.astring()?)
        }
        "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
            with(r, "a date")?;
            let d = r.date()?;
            match name.as_str() {
                "BEFORE" => SearchKey::Before(d),
                "ON" => SearchKey::On(d),
                "SINCE" => SearchKey::Since(d),
                "SENTBEFORE" => SearchKey::SentBefore(d),
                "SENTON" => SearchKey::SentOn(d),
                _ => SearchKey::SentSince(d),
            }
        }
        "LARGER" | "SMALLER" => {
            with(r, "a size")?;
            let n = r.number64()?;
            if name == "LARGER" {
                SearchKey::Larger(n)
            } else {
                SearchKey::Smaller(n)
            }
        }
        "UID" => {
            with(r, "a UID set")?;
            SearchKey::Uid(r.sequence_set()?)
        }
        "MODSEQ" => {
            // RFC 7162 §3.1.5: MODSEQ ["/flags/\\Seen" (priv|shared|all)] modseq.
            with(r, "a mod-sequence")?;
            if r.peek() == Some(b'"') {
                let entry = r.quoted()?;
                if !entry.starts_with(b"/flags/") {
                    return Err("bad MODSEQ entry name".into());
                }
                r.sp()?;
                let kind = r.atom_upper()?;
                if !matches!(kind.as_str(), "PRIV" | "SHARED" | "ALL") {
                    return Err("bad MODSEQ entry type".into());
                }
                r.sp()?;
            }
            SearchKey::ModSeq(r.modseq()?)
        }
        _ => return Err(format!("unknown search key {}", show(name.as_bytes()))),
    })
}
