//! SEARCH (RFC 9051 §6.4.4): whether a message matches the keys, and the SEARCH and
//! ESEARCH (RFC 4731) responses.

use crate::command::{Date, SearchKey, SearchReturn};
use crate::encode;
use crate::mime;
use crate::view::write_uid_set;

/// One message as SEARCH sees it: what FETCH sees ([`crate::fetch::Message`]), its
/// content only when a key needs it ([`needs_content`]).
pub type Candidate<'a> = crate::fetch::Message<'a>;

/// What the keys are evaluated against besides the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The number of messages (what `*` means in a sequence set).
    pub messages: u32,
    /// The largest UID in use (what `*` means in a UID set).
    pub largest_uid: u32,
    /// The UIDs of the result saved by SEARCH RETURN (SAVE) (RFC 5182), ascending.
    pub saved: &'a [u32],
}

/// Whether any key needs the message's content.
pub fn needs_content(keys: &[SearchKey]) -> bool {
    keys.iter().any(key_needs_content)
}

fn key_needs_content(key: &SearchKey) -> bool {
    use SearchKey::*;
    match key {
        Bcc(_) | Body(_) | Cc(_) | From(_) | Subject(_) | Text(_) | To(_) | Header(..)
        | SentBefore(_) | SentOn(_) | SentSince(_) => true,
        Not(k) => key_needs_content(k),
        Or(a, b) => key_needs_content(a) || key_needs_content(b),
        And(keys) => needs_content(keys),
        _ => false,
    }
}

/// The day of the Date: header as written, its time and zone disregarded (RFC 9051
/// §6.4.4: SENTBEFORE and the others compare dates only).
fn sent_day(content: &[u8]) -> Option<Date> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let value = mime::header_values(content, "Date").into_iter().next()?;
    let text = String::from_utf8_lossy(&value);
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .collect();
    tokens.windows(3).find_map(|w| {
        let day: u8 = w[0].parse().ok().filter(|d| (1..=31).contains(d))?;
        let month = MONTHS
            .iter()
            .position(|m| w[1].len() >= 3 && w[1][..3].eq_ignore_ascii_case(m))?;
        let year: u16 = w[2].parse().ok()?;
        // RFC 5322 §4.3: two-digit years are 19xx or 20xx.
        let year = match year {
            0..=49 => year + 2000,
            50..=999 => year + 1900,
            y => y,
        };
        Some(Date {
            year,
            month: month as u8 + 1,
            day,
        })
    })
}

/// Whether any key needs the message's body (BODY, TEXT), not only its header section.
pub fn needs_body(keys: &[SearchKey]) -> bool {
    keys.iter().any(|k| match k {
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        SearchKey::Not(k) => needs_body(std::slice::from_ref(k)),
        SearchKey::Or(a, b) => {
            needs_body(std::slice::from_ref(a)) || needs_body(std::slice::from_ref(b))
        }
        SearchKey::And(keys) => needs_body(keys),
        _ => false,
    })
}

/// The header fields the keys read (the SENT* keys read Date:), as the keys name them.
pub fn header_fields(keys: &[SearchKey]) -> Vec<&str> {
    let mut out = Vec::new();
    for k in keys {
        collect_header_fields(k, &mut out);
    }
    out
}

fn collect_header_fields<'k>(key: &'k SearchKey, out: &mut Vec<&'k str>) {
    use SearchKey::*;
    match key {
        Bcc(_) => out.push("Bcc"),
        Cc(_) => out.push("Cc"),
        From(_) => out.push("From"),
        Subject(_) => out.push("Subject"),
        To(_) => out.push("To"),
        SentBefore(_) | SentOn(_) | SentSince(_) => out.push("Date"),
        Header(name, _) => out.push(name),
        Not(k) => collect_header_fields(k, out),
        Or(a, b) => {
            collect_header_fields(a, out);
            collect_header_fields(b, out);
        }
        And(keys) => keys.iter().for_each(|k| collect_header_fields(k, out)),
        _ => {}
    }
}

/// Whether the message matches every key.
pub fn matches(keys: &[SearchKey], c: &Candidate<'_>, ctx: &Context<'_>) -> bool {
    keys.iter().all(|k| matches_key(k, c, ctx))
}

fn date_of(unix: i64) -> Date {
    let (y, m, d) = encode::civil_from_days(unix.div_euclid(86_400));
    Date {
        year: y.clamp(0, u16::MAX as i64) as u16,
        month: m as u8,
        day: d as u8,
    }
}

fn matches_key(key: &SearchKey, c: &Candidate<'_>, ctx: &Context<'_>) -> bool {
    use SearchKey::*;
    let f = &c.entry.flags;
    let content = c.content.unwrap_or_default();
    let header = |name: &str, needle: &[u8]| mime::header_contains(content, name, needle);
    let sent = || sent_day(content);
    match key {
        All => true,
        Answered => f.answered(),
        Deleted => f.deleted(),
        Draft => f.draft(),
        Flagged => f.flagged(),
        Seen => f.seen(),
        Unanswered => !f.answered(),
        Undeleted => !f.deleted(),
        Undraft => !f.draft(),
        Unflagged => !f.flagged(),
        Unseen => !f.seen(),
        Recent => c.entry.recent,
        New => c.entry.recent && !f.seen(),
        Old => !c.entry.recent,
        Keyword(k) => f.contains(k),
        Unkeyword(k) => !f.contains(k),
        Bcc(s) => header("Bcc", s),
        Cc(s) => header("Cc", s),
        From(s) => header("From", s),
        To(s) => header("To", s),
        Subject(s) => header("Subject", s),
        Header(name, s) => header(name, s),
        Body(s) => mime::text_matches(content, s, true),
        Text(s) => mime::text_matches(content, s, false),
        Before(d) => date_of(c.internal_date) < *d,
        On(d) => date_of(c.internal_date) == *d,
        Since(d) => date_of(c.internal_date) >= *d,
        SentBefore(d) => sent().is_some_and(|s| s < *d),
        SentOn(d) => sent().is_some_and(|s| s == *d),
        SentSince(d) => sent().is_some_and(|s| s >= *d),
        Larger(n) => c.size > *n,
        Smaller(n) => c.size < *n,
        Uid(set) => set.contains(c.entry.uid, ctx.largest_uid),
        Seq(set) => set.contains(c.seq, ctx.messages),
        Saved => ctx.saved.binary_search(&c.entry.uid).is_ok(),
        ModSeq(m) => c.entry.modseq >= *m,
        Not(k) => !matches_key(k, c, ctx),
        Or(a, b) => matches_key(a, c, ctx) || matches_key(b, c, ctx),
        And(keys) => matches(keys, c, ctx),
    }
}

/// Whether the keys use MODSEQ (the response then carries the highest one, RFC 7162
/// §3.1.5).
pub fn uses_modseq(keys: &[SearchKey]) -> bool {
    keys.iter().any(|k| match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(k) => uses_modseq(std::slice::from_ref(k)),
        SearchKey::Or(a, b) => {
            uses_modseq(std::slice::from_ref(a)) || uses_modseq(std::slice::from_ref(b))
        }
        SearchKey::And(keys) => uses_modseq(keys),
        _ => false,
    })
}

/// `* SEARCH 2 3 5 [(MODSEQ n)]`: `numbers` are sequence numbers or UIDs, ascending.
pub fn write_search(out: &mut Vec<u8>, numbers: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(b"* SEARCH");
    for n in numbers {
        out.push(b' ');
        encode::number(out, *n as u64);
    }
    if let (Some(m), false) = (modseq, numbers.is_empty()) {
        out.extend_from_slice(b" (MODSEQ ");
        encode::number(out, m);
        out.push(b')');
    }
    out.extend_from_slice(b"\r\n");
}

/// `* ESEARCH (TAG "a") [UID] MIN 2 MAX 5 COUNT 3 ALL 2:5` (RFC 4731 §3.1). An empty
/// return list means ALL.
pub fn write_esearch(
    out: &mut Vec<u8>,
    tag: &str,
    uid: bool,
    returns: &[SearchReturn],
    numbers: &[u32],
    modseq: Option<u64>,
) {
    out.extend_from_slice(b"* ESEARCH (TAG ");
    encode::string(out, tag.as_bytes());
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    let all = returns.is_empty() || returns.contains(&SearchReturn::All);
    let only_save = !returns.is_empty() && returns.iter().all(|r| *r == SearchReturn::Save);
    if !only_save {
        if returns.contains(&SearchReturn::Min)
            && let Some(n) = numbers.first()
        {
            out.extend_from_slice(b" MIN ");
            encode::number(out, *n as u64);
        }
        if returns.contains(&SearchReturn::Max)
            && let Some(n) = numbers.last()
        {
            out.extend_from_slice(b" MAX ");
            encode::number(out, *n as u64);
        }
        if all && !numbers.is_empty() {
            out.extend_from_slice(b" ALL ");
            write_uid_set(out, numbers);
        }
        if returns.contains(&SearchReturn::Count) {
            out.extend_from_slice(b" COUNT ");
            encode::number(out, numbers.len() as u64);
        }
    }
    if let (Some(m), false) = (modseq, numbers.is_empty()) {
        out.extend_from_slice(b" MODSEQ ");
        encode::number(out, m);
    }
    out.extend_from_slice(b"\r\n");
}
