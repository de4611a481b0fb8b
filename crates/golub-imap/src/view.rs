//! The selected mailbox as one session sees it: message sequence numbers, UIDs, flags and
//! modseqs (RFC 9051 §2.3.1), kept in step with the store by the changes the driver
//! reads, and turned into the untagged EXISTS, EXPUNGE, VANISHED and FETCH responses other
//! sessions' changes call for.
//!
//! Sequence numbers are positions in UID order. The view keeps a column per field (UIDs,
//! flag bits, modseqs) and the keywords of the few messages that have any in a map, so a
//! message costs 9 bytes (13 once a modseq passes 2^32): a session in IDLE on a
//! 100,000-message folder holds about 900 KB.

use std::collections::{HashMap, HashSet};

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

/// A message's flags: the system flags as bits, keywords as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    system: u8,
    keywords: Vec<String>,
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
                if !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                    self.keywords.push(name.to_string());
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
        &self.keywords
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
    /// Per message, index i is sequence number i + 1: UIDs ascending, ...
    uids: Vec<u32>,
    /// ... system flag bits and [`RECENT`], ...
    bits: Vec<u8>,
    /// ... and modseqs.
    modseqs: Modseqs,
    /// The keywords of the messages that have any, by UID.
    keywords_of: HashMap<u32, Vec<String>>,
    /// Expunged elsewhere, not reported yet (the messages are still numbered).
    pending_expunge: Vec<u32>,
    /// The keywords the client was told of in FLAGS (RFC 9051 §7.3.5).
    keywords: Vec<String>,
    read_only: bool,
}

/// `\Recent` in this session (RFC 3501 §2.3.2), beside the system flag bits.
const RECENT: u8 = 0x80;

/// The modseqs of a view: 4 bytes each while they fit, 8 once one does not.
#[derive(Debug, Clone)]
enum Modseqs {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Modseqs {
    fn get(&self, i: usize) -> u64 {
        match self {
            Modseqs::Narrow(v) => v[i] as u64,
            Modseqs::Wide(v) => v[i],
        }
    }

    /// The values as 8-byte ones, converted if they were not yet.
    fn wide(&mut self) -> &mut Vec<u64> {
        if let Modseqs::Narrow(v) = self {
            *self = Modseqs::Wide(v.iter().map(|&m| u64::from(m)).collect());
        }
        match self {
            Modseqs::Wide(v) => v,
            Modseqs::Narrow(_) => unreachable!("made wide above"),
        }
    }

    fn set(&mut self, i: usize, value: u64) {
        match (self, u32::try_from(value)) {
            (Modseqs::Narrow(v), Ok(n)) => v[i] = n,
            (this, _) => this.wide()[i] = value,
        }
    }

    fn push(&mut self, value: u64) {
        match (self, u32::try_from(value)) {
            (Modseqs::Narrow(v), Ok(n)) => v.push(n),
            (this, _) => this.wide().push(value),
        }
    }

    fn remove(&mut self, i: usize) {
        match self {
            Modseqs::Narrow(v) => drop(v.remove(i)),
            Modseqs::Wide(v) => drop(v.remove(i)),
        }
    }

    fn retain(&mut self, keep: &[bool]) {
        match self {
            Modseqs::Narrow(v) => retain_by(v, keep),
            Modseqs::Wide(v) => retain_by(v, keep),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Modseqs::Narrow(v) => v.capacity() * 4,
            Modseqs::Wide(v) => v.capacity() * 8,
        }
    }
}

/// Keeps the items whose index `keep` marks.
fn retain_by<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut k = keep.iter();
    v.retain(|_| *k.next().unwrap_or(&true));
}

/// The most keywords listed in FLAGS; a mailbox with more still works, the client is
/// told of the first ones.
const MAX_KEYWORDS: usize = 256;

impl MailboxView {
    /// `entries` in UID order.
    pub fn new(uidvalidity: u32, uidnext: u32, highestmodseq: u64, entries: Vec<Entry>) -> Self {
        let mut view = MailboxView {
            uidvalidity,
            uidnext,
            highestmodseq,
            uids: Vec::with_capacity(entries.len()),
            bits: Vec::with_capacity(entries.len()),
            modseqs: Modseqs::Narrow(Vec::with_capacity(entries.len())),
            keywords_of: HashMap::new(),
            pending_expunge: Vec::new(),
            keywords: Vec::new(),
            read_only: false,
        };
        for e in entries {
            for k in e.flags.keywords() {
                if view.keywords.len() < MAX_KEYWORDS
                    && !view.keywords.iter().any(|x| x.eq_ignore_ascii_case(k))
                {
                    view.keywords.push(k.clone());
                }
            }
            view.push(e);
        }
        view
    }

    fn push(&mut self, e: Entry) {
        self.uids.push(e.uid);
        self.bits
            .push(e.flags.system | if e.recent { RECENT } else { 0 });
        self.modseqs.push(e.modseq);
        if !e.flags.keywords.is_empty() {
            self.keywords_of.insert(e.uid, e.flags.keywords);
        }
    }

    fn remove(&mut self, i: usize) {
        let uid = self.uids.remove(i);
        self.bits.remove(i);
        self.modseqs.remove(i);
        self.keywords_of.remove(&uid);
    }

    /// What the view holds on the heap, in bytes (the keywords' own strings left out).
    pub fn heap_bytes(&self) -> usize {
        self.uids.capacity() * 4
            + self.bits.capacity()
            + self.modseqs.heap_bytes()
            + self.keywords_of.capacity() * (4 + 24 + 1)
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
        self.uids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    /// Message `i` (0-based: sequence number i + 1).
    pub fn entry(&self, i: usize) -> Entry {
        let uid = self.uids[i];
        Entry {
            uid,
            flags: Flags {
                system: self.bits[i] & !RECENT,
                keywords: self.keywords_of.get(&uid).cloned().unwrap_or_default(),
            },
            modseq: self.modseqs.get(i),
            recent: self.bits[i] & RECENT != 0,
        }
    }

    /// The UID of message `i`.
    pub fn uid(&self, i: usize) -> u32 {
        self.uids[i]
    }

    /// The modseq of message `i`.
    pub fn modseq(&self, i: usize) -> u64 {
        self.modseqs.get(i)
    }

    /// Every UID, in order.
    pub fn uids(&self) -> &[u32] {
        &self.uids
    }

    /// The index of the first message without `\Seen`.
    pub fn first_unseen(&self) -> Option<usize> {
        self.bits.iter().position(|b| b & SEEN == 0)
    }

    /// The 0-based index of `uid`.
    pub fn index_of(&self, uid: u32) -> Option<usize> {
        self.uids.binary_search(&uid).ok()
    }

    /// The largest UID in the mailbox (what `*` means in a UID set), 0 when empty.
    pub fn largest_uid(&self) -> u32 {
        self.uids.last().copied().unwrap_or(0)
    }

    /// The 0-based indexes a set names, ascending, each once. Sequence numbers beyond the
    /// mailbox are left out (the caller checks [`MailboxView::valid_seqs`] for BAD).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let mut out = Vec::new();
        if self.uids.is_empty() {
            return out;
        }
        if uid {
            // RFC 9051 §6.4.9: "*" is the largest UID in use; a range is a range of
            // values, so 4:* with nothing above 4 still means the last message.
            let largest = self.largest_uid();
            for (lo, hi) in set.ranges(largest) {
                let start = self.uids.partition_point(|&u| u < lo);
                let end = self.uids.partition_point(|&u| u <= hi);
                out.extend(start..end);
            }
        } else {
            let n = self.uids.len() as u32;
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
        let n = self.uids.len() as u32;
        set.ranges(n).iter().all(|&(lo, hi)| lo >= 1 && hi <= n)
    }

    /// How many messages are `\Recent` in this session.
    pub fn recent_count(&self) -> usize {
        self.bits.iter().filter(|&&b| b & RECENT != 0).count()
    }

    /// Marks the messages from UID `from` on as `\Recent` in this session.
    pub fn mark_recent(&mut self, from: u32) {
        let start = self.uids.partition_point(|&u| u < from);
        for b in &mut self.bits[start..] {
            *b |= RECENT;
        }
    }

    /// Updates message `i` after a change this session made. The view's highestmodseq
    /// stays where it was: changes of other sessions below this one's modseq are still
    /// to be read, and this one comes back from the store unchanged.
    pub fn set(&mut self, i: usize, flags: Flags, modseq: u64) {
        if i >= self.uids.len() {
            return;
        }
        self.set_flags(i, flags);
        self.modseqs.set(i, modseq);
    }

    fn set_flags(&mut self, i: usize, flags: Flags) {
        self.bits[i] = flags.system | (self.bits[i] & RECENT);
        if flags.keywords.is_empty() {
            self.keywords_of.remove(&self.uids[i]);
        } else {
            self.keywords_of.insert(self.uids[i], flags.keywords);
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
            match self.uids.binary_search(&c.uid) {
                Ok(i) => {
                    let old = self.entry(i);
                    let flags_changed = old.flags != c.flags;
                    let modseq_changed = old.modseq != c.modseq;
                    if flags_changed || (report.condstore && modseq_changed) {
                        self.announce(&c.flags, out);
                    }
                    self.set(i, c.flags, c.modseq);
                    if flags_changed || (report.condstore && modseq_changed) {
                        let e = self.entry(i);
                        write_flags_fetch(out, i + 1, &e, report.condstore, report.qresync);
                    }
                }
                Err(i) if i == self.uids.len() => {
                    self.announce(&c.flags, out);
                    let mut c = c;
                    c.recent = changes.recent_from.is_some_and(|from| c.uid >= from);
                    self.push(c);
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
            encode::number(out, self.uids.len() as u64);
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
            let gone: HashSet<u32> = set.iter().copied().collect();
            let keep: Vec<bool> = self.uids.iter().map(|u| !gone.contains(u)).collect();
            retain_by(&mut self.uids, &keep);
            retain_by(&mut self.bits, &keep);
            self.modseqs.retain(&keep);
            self.keywords_of.retain(|u, _| !gone.contains(u));
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
                self.remove(i);
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
    fn a_message_costs_nine_bytes_until_modseqs_grow() {
        let entries = (1..=10_000).map(|u| entry(u, "\\Seen", u as u64)).collect();
        let mut v = MailboxView::new(1, 10_001, 10_000, entries);
        assert_eq!(v.heap_bytes(), 9 * 10_000);
        // A keyword costs its own map entry; a modseq past 2^32 widens them all.
        v.set(0, Flags::from_store("$Work"), 1 << 40);
        assert!(v.heap_bytes() >= 13 * 10_000, "{}", v.heap_bytes());
        assert_eq!(v.modseq(0), 1 << 40);
        assert_eq!(v.modseq(9_999), 10_000);
        assert!(v.entry(0).flags.contains("$work") && !v.entry(0).flags.seen());
        assert!(v.entry(1).flags.seen() && v.entry(1).flags.keywords().is_empty());
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
        assert_eq!(v.uids(), [4, 10, 12]);
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
