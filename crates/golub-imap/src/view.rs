//! The selected mailbox as one session sees it: message sequence numbers, UIDs, flags and
//! modseqs (RFC 9051 §2.3.1), kept in step with the store by the changes the driver
//! reads, and turned into the untagged EXISTS, EXPUNGE, VANISHED and FETCH responses other
//! sessions' changes call for.
//!
//! Sequence numbers are positions in one vector in UID order; nothing per message is
//! allocated unless it has keywords: an entry is 32 bytes, a 100,000-message folder 3 MB.

use crate::command::SequenceSet;
use crate::encode;

/// The system flags, as bits.
const SEEN: u8 = 1;
const ANSWERED: u8 = 2;
const FLAGGED: u8 = 4;
const DELETED: u8 = 8;
const DRAFT: u8 = 16;

const SYSTEM: [(u8, &str); 5] = [
    (SEEN, "\\Seen"),
    (ANSWERED, "\\Answered"),
    (FLAGGED, "\\Flagged"),
    (DELETED, "\\Deleted"),
    (DRAFT, "\\Draft"),
];

/// A message's flags: the system flags as bits, keywords as given (boxed, so that the
/// common message without keywords costs one pointer: views of large folders are many
/// of these).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    system: u8,
    // A thin pointer on purpose: `Box<[String]>` would be two words in every entry.
    #[allow(clippy::box_collection)]
    keywords: Option<Box<Vec<String>>>,
}

impl Flags {
    /// From the store's space-separated form (or a parsed flag list).
    pub fn parse<'a>(flags: impl IntoIterator<Item = &'a str>) -> Flags {
        let mut f = Flags::default();
        for name in flags {
            f.insert(name);
        }
        f
    }

    pub fn from_store(s: &str) -> Flags {
        Flags::parse(s.split_ascii_whitespace())
    }

    fn bit(name: &str) -> Option<u8> {
        SYSTEM
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(b, _)| *b)
    }

    pub fn insert(&mut self, name: &str) {
        if name.is_empty() || name.eq_ignore_ascii_case("\\Recent") {
            return;
        }
        match Flags::bit(name) {
            Some(b) => self.system |= b,
            None => {
                let keywords = self.keywords.get_or_insert_with(Box::default);
                if !keywords.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                    keywords.push(name.to_string());
                }
            }
        }
    }

    /// Whether the flag is set (system flags and keywords compare case-insensitively).
    pub fn contains(&self, name: &str) -> bool {
        match Flags::bit(name) {
            Some(b) => self.system & b != 0,
            None => self.keywords().iter().any(|k| k.eq_ignore_ascii_case(name)),
        }
    }

    pub fn seen(&self) -> bool {
        self.system & SEEN != 0
    }
    pub fn answered(&self) -> bool {
        self.system & ANSWERED != 0
    }
    pub fn flagged(&self) -> bool {
        self.system & FLAGGED != 0
    }
    pub fn deleted(&self) -> bool {
        self.system & DELETED != 0
    }
    pub fn draft(&self) -> bool {
        self.system & DRAFT != 0
    }

    /// The names, system flags first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        SYSTEM
            .iter()
            .filter(|(b, _)| self.system & b != 0)
            .map(|(_, n)| *n)
            .chain(self.keywords().iter().map(String::as_str))
    }

    /// Appends `(\Seen $Label)`.
    pub fn write(&self, out: &mut Vec<u8>) {
        encode::flag_list(out, self.names());
    }

    pub fn keywords(&self) -> &[String] {
        self.keywords.as_deref().map_or(&[], Vec::as_slice)
    }
}

/// One message of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
    /// `\Recent` in this session (RFC 3501 §2.3.2).
    pub recent: bool,
}

impl Entry {
    /// `(\Recent \Seen $Label)`.
    pub fn write_flags(&self, out: &mut Vec<u8>) {
        let recent = self.recent.then_some("\\Recent");
        encode::flag_list(out, recent.into_iter().chain(self.flags.names()));
    }
}

/// What changed in the store since the view's modseq.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Messages changed or added (modseq above the view's), in UID order.
    pub changed: Vec<Entry>,
    /// UIDs expunged since, ascending.
    pub vanished: Vec<u32>,
    pub highestmodseq: u64,
    pub uidnext: u32,
    /// New messages from this UID on are `\Recent` in this session (it claimed them).
    pub recent_from: Option<u32>,
}

/// How unsolicited responses are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// EXPUNGE (or VANISHED) may be sent now (RFC 9051 §7.5.1: not during FETCH, STORE
    /// or SEARCH by sequence number).
    pub expunge: bool,
    /// CONDSTORE: FETCH responses carry MODSEQ.
    pub condstore: bool,
    /// QRESYNC: expunges are reported as VANISHED.
    pub qresync: bool,
    /// IMAP4rev1: RECENT follows EXISTS (IMAP4rev2 has no RECENT).
    pub recent: bool,
}

/// The selected mailbox.
#[derive(Debug, Clone)]
pub struct MailboxView {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    entries: Vec<Entry>,
    /// Expunged elsewhere, not reported yet (the messages are still numbered).
    pending_expunge: Vec<u32>,
    /// The keywords the client was told of in FLAGS (RFC 9051 §7.3.5).
    keywords: Vec<String>,
    read_only: bool,
}

/// The most keywords listed in FLAGS; a mailbox with more still works, the client is
/// told of the first ones.
const MAX_KEYWORDS: usize = 256;

impl MailboxView {
    /// `entries` in UID order.
    pub fn new(uidvalidity: u32, uidnext: u32, highestmodseq: u64, entries: Vec<Entry>) -> Self {
        let mut keywords: Vec<String> = Vec::new();
        for e in &entries {
            for k in e.flags.keywords() {
                if keywords.len() < MAX_KEYWORDS
                    && !keywords.iter().any(|x| x.eq_ignore_ascii_case(k))
                {
                    keywords.push(k.clone());
                }
            }
        }
        MailboxView {
            uidvalidity,
            uidnext,
            highestmodseq,
            entries,
            pending_expunge: Vec::new(),
            keywords,
            read_only: false,
        }
    }

    /// The mailbox was opened with EXAMINE: PERMANENTFLAGS is empty.
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]`, as SELECT sends them.
    pub fn write_flags(&self, out: &mut Vec<u8>) {
        let system = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];
        let keywords = self.keywords.iter().map(String::as_str);
        out.extend_from_slice(b"* FLAGS ");
        encode::flag_list(out, system.iter().copied().chain(keywords.clone()));
        out.extend_from_slice(b"\r\n");
        if self.read_only {
            out.extend_from_slice(b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
        } else {
            out.extend_from_slice(b"* OK [PERMANENTFLAGS ");
            encode::flag_list(out, system.iter().copied().chain(keywords).chain(["\\*"]));
            out.extend_from_slice(b"] Flags permitted\r\n");
        }
    }

    /// Tells the client of keywords in `flags` it has not heard of, before a FETCH
    /// shows them (RFC 9051 §7.3.5: FLAGS lists every flag in use).
    pub fn announce(&mut self, flags: &Flags, out: &mut Vec<u8>) {
        let mut new = false;
        for k in flags.keywords() {
            if self.keywords.len() < MAX_KEYWORDS
                && !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k))
            {
                self.keywords.push(k.clone());
                new = true;
            }
        }
        if new {
            self.write_flags(out);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Message `i` (0-based: sequence number i + 1).
    pub fn entry(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The 0-based index of `uid`.
    pub fn index_of(&self, uid: u32) -> Option<usize> {
        self.entries.binary_search_by_key(&uid, |e| e.uid).ok()
    }

    /// The largest UID in the mailbox (what `*` means in a UID set), 0 when empty.
    pub fn largest_uid(&self) -> u32 {
        self.entries.last().map_or(0, |e| e.uid)
    }

    /// The 0-based indexes a set names, ascending, each once. Sequence numbers beyond the
    /// mailbox are left out (the caller checks [`MailboxView::valid_seqs`] for BAD).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let mut out = Vec::new();
        if self.entries.is_empty() {
            return out;
        }
        if uid {
            // RFC 9051 §6.4.9: "*" is the largest UID in use; a range is a range of
            // values, so 4:* with nothing above 4 still means the last message.
            let largest = self.largest_uid();
            for (lo, hi) in set.ranges(largest) {
                let start = self.entries.partition_point(|e| e.uid < lo);
                let end = self.entries.partition_point(|e| e.uid <= hi);
                out.extend(start..end);
            }
        } else {
            let n = self.entries.len() as u32;
            for (lo, hi) in set.ranges(n) {
                let lo = lo.max(1);
                let hi = hi.min(n);
                if lo <= hi {
                    out.extend((lo as usize - 1)..(hi as usize));
                }
            }
        }
        out
    }

    /// RFC 9051 §6.4.5: a sequence set naming a number beyond the mailbox is an error.
    pub fn valid_seqs(&self, set: &SequenceSet) -> bool {
        let n = self.entries.len() as u32;
        set.ranges(n).iter().all(|&(lo, hi)| lo >= 1 && hi <= n)
    }

    /// How many messages are `\Recent` in this session.
    pub fn recent_count(&self) -> usize {
        self.entries.iter().filter(|e| e.recent).count()
    }

    /// Marks the messages from UID `from` on as `\Recent` in this session.
    pub fn mark_recent(&mut self, from: u32) {
        let start = self.entries.partition_point(|e| e.uid < from);
        for e in &mut self.entries[start..] {
            e.recent = true;
        }
    }

    /// Updates message `i` after a change this session made. The view's highestmodseq
    /// stays where it was: changes of other sessions below this one's modseq are still
    /// to be read, and this one comes back from the store unchanged.
    pub fn set(&mut self, i: usize, flags: Flags, modseq: u64) {
        if let Some(e) = self.entries.get_mut(i) {
            e.flags = flags;
            e.modseq = modseq;
        }
    }

    /// Applies the store's changes and writes the untagged responses they call for.
    pub fn apply(&mut self, changes: Changes, report: Report, out: &mut Vec<u8>) {
        for uid in changes.vanished {
            if self.index_of(uid).is_some() && !self.pending_expunge.contains(&uid) {
                self.pending_expunge.push(uid);
            }
        }
        let mut added = false;
        for c in changes.changed {
            match self.entries.binary_search_by_key(&c.uid, |e| e.uid) {
                Ok(i) => {
                    let e = &mut self.entries[i];
                    let flags_changed = e.flags != c.flags;
                    let modseq_changed = e.modseq != c.modseq;
                    e.flags = c.flags;
                    e.modseq = c.modseq;
                    if flags_changed || (report.condstore && modseq_changed) {
                        let flags = self.entries[i].flags.clone();
                        self.announce(&flags, out);
                        let e = &self.entries[i];
                        write_flags_fetch(out, i + 1, e, report.condstore, report.qresync);
                    }
                }
                Err(i) if i == self.entries.len() => {
                    self.announce(&c.flags, out);
                    let mut c = c;
                    c.recent = changes.recent_from.is_some_and(|from| c.uid >= from);
                    self.entries.push(c);
                    added = true;
                }
                // Below the largest UID and unknown: expunged before we saw it.
                Err(_) => {}
            }
        }
        if report.expunge {
            self.flush_expunges(report, out);
        }
        if added {
            out.extend_from_slice(b"* ");
            encode::number(out, self.entries.len() as u64);
            out.extend_from_slice(b" EXISTS\r\n");
            if report.recent {
                out.extend_from_slice(b"* ");
                encode::number(out, self.recent_count() as u64);
                out.extend_from_slice(b" RECENT\r\n");
            }
        }
        self.highestmodseq = self.highestmodseq.max(changes.highestmodseq);
        self.uidnext = self.uidnext.max(changes.uidnext);
    }

    /// Removes messages this session expunged (or reports those expunged elsewhere).
    pub fn expunged(&mut self, uids: &[u32], report: Report, out: &mut Vec<u8>) {
        for &uid in uids {
            if !self.pending_expunge.contains(&uid) {
                self.pending_expunge.push(uid);
            }
        }
        self.flush_expunges(report, out);
    }

    /// True when expunges from elsewhere wait to be reported.
    pub fn has_pending_expunges(&self) -> bool {
        !self.pending_expunge.is_empty()
    }

    fn flush_expunges(&mut self, report: Report, out: &mut Vec<u8>) {
        if self.pending_expunge.is_empty() {
            return;
        }
        let mut uids = std::mem::take(&mut self.pending_expunge);
        uids.sort_unstable();
        if report.qresync {
            // RFC 7162 §3.2.10: VANISHED (UIDs) instead of EXPUNGE.
            let set: Vec<u32> = uids
                .iter()
                .copied()
                .filter(|&u| self.index_of(u).is_some())
                .collect();
            let gone: std::collections::HashSet<u32> = set.iter().copied().collect();
            self.entries.retain(|e| !gone.contains(&e.uid));
            if !set.is_empty() {
                out.extend_from_slice(b"* VANISHED ");
                write_uid_set(out, &set);
                out.extend_from_slice(b"\r\n");
            }
            return;
        }
        // Highest first, so that each number is still right when the client reads it.
        for uid in uids.iter().rev() {
            if let Some(i) = self.index_of(*uid) {
                self.entries.remove(i);
                out.extend_from_slice(b"* ");
                encode::number(out, i as u64 + 1);
                out.extend_from_slice(b" EXPUNGE\r\n");
            }
        }
    }
}

/// `* n FETCH (FLAGS (...) [UID u] [MODSEQ (m)])`.
pub fn write_flags_fetch(out: &mut Vec<u8>, seq: usize, e: &Entry, modseq: bool, uid: bool) {
    out.extend_from_slice(b"* ");
    encode::number(out, seq as u64);
    out.extend_from_slice(b" FETCH (");
    if uid {
        out.extend_from_slice(b"UID ");
        encode::number(out, e.uid as u64);
        out.push(b' ');
    }
    out.extend_from_slice(b"FLAGS ");
    e.write_flags(out);
    if modseq {
        out.extend_from_slice(b" MODSEQ (");
        encode::number(out, e.modseq);
        out.push(b')');
    }
    out.extend_from_slice(b")\r\n");
}

/// A sorted list of numbers as a compact set: `1:3,7,9:10`.
pub fn write_uid_set(out: &mut Vec<u8>, sorted: &[u32]) {
    let mut i = 0;
    let mut first = true;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = sorted[i];
        }
        if !first {
            out.push(b',');
        }
        first = false;
        encode::number(out, start as u64);
        if end != start {
            out.push(b':');
            encode::number(out, end as u64);
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{SeqNumber, SeqRange};

    fn entry(uid: u32, flags: &str, modseq: u64) -> Entry {
        Entry {
            uid,
            flags: Flags::from_store(flags),
            modseq,
            recent: false,
        }
    }

    fn set(ranges: &[(u32, Option<u32>)]) -> SequenceSet {
        SequenceSet(
            ranges
                .iter()
                .map(|&(a, b)| SeqRange {
                    start: SeqNumber::Value(a),
                    end: b.map_or(SeqNumber::Largest, SeqNumber::Value),
                })
                .collect(),
        )
    }

    fn view() -> MailboxView {
        MailboxView::new(
            7,
            11,
            20,
            vec![
                entry(2, "", 3),
                entry(4, "\\Seen", 4),
                entry(5, "\\seen \\Deleted $Junk", 5),
                entry(10, "", 9),
            ],
        )
    }

    #[test]
    fn an_entry_stays_small() {
        assert!(
            std::mem::size_of::<Entry>() <= 32,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn flags_are_canonical_and_keywords_kept() {
        let f = Flags::from_store("\\seen $Label \\DRAFT $label");
        let names: Vec<&str> = f.names().collect();
        assert_eq!(names, ["\\Seen", "\\Draft", "$Label"]);
        assert!(f.contains("$LABEL") && f.seen() && !f.deleted());
    }

    #[test]
    fn sets_resolve_by_sequence_and_uid() {
        let v = view();
        assert_eq!(v.resolve(&set(&[(2, Some(3))]), false), [1, 2]);
        assert_eq!(v.resolve(&set(&[(3, None)]), false), [2, 3]);
        assert_eq!(v.resolve(&set(&[(3, Some(5))]), true), [1, 2]);
        assert_eq!(v.resolve(&set(&[(11, None)]), true), [3]);
        assert_eq!(v.resolve(&set(&[(1, Some(1)), (4, Some(4))]), true), [1]);
        assert!(!v.valid_seqs(&set(&[(5, Some(5))])));
        assert!(v.valid_seqs(&set(&[(1, None)])));
    }

    #[test]
    fn changes_give_fetch_exists_and_expunge_in_order() {
        let mut v = view();
        let mut out = Vec::new();
        let changes = Changes {
            changed: vec![entry(4, "\\Seen \\Flagged", 21), entry(12, "", 22)],
            vanished: vec![2, 5],
            highestmodseq: 23,
            uidnext: 13,
            recent_from: None,
        };
        let report = Report {
            expunge: false,
            ..Report::default()
        };
        v.apply(changes, report, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "* 2 FETCH (FLAGS (\\Seen \\Flagged))\r\n* 5 EXISTS\r\n"
        );
        assert_eq!(v.len(), 5);
        out.clear();
        let report = Report {
            expunge: true,
            ..report
        };
        v.apply(Changes::default(), report, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n"
        );
        assert_eq!(
            v.entries().iter().map(|e| e.uid).collect::<Vec<_>>(),
            [4, 10, 12]
        );
        assert_eq!(v.highestmodseq, 23);
    }

    #[test]
    fn qresync_reports_vanished() {
        let mut v = view();
        let mut out = Vec::new();
        let report = Report {
            expunge: true,
            condstore: true,
            qresync: true,
            recent: false,
        };
        v.expunged(&[2, 4, 5], report, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "* VANISHED 2,4:5\r\n");
        assert_eq!(v.len(), 1);
    }
}
