//! The commands a client sends, as the parser hands them to the session.
//!
//! Mailbox names are given as the client sent them (astring octets): the session decodes
//! them (modified UTF-7 for IMAP4rev1, UTF-8 once enabled) with [`crate::mailbox_name`].

/// A command with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub command: Command,
}

/// Every command Golub understands (RFC 3501 §6, RFC 9051 §6 and the extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// `initial`: the SASL-IR initial response, still base64 ("=" for an empty one).
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    /// RFC 5161: capability names, upper-cased.
    Enable(Vec<String>),
    /// SELECT and EXAMINE (`read_only`), with RFC 7162 parameters.
    Select {
        mailbox: Vec<u8>,
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    },
    /// RFC 6154 §5.3: CREATE name (USE (\Sent ...)).
    Create {
        mailbox: Vec<u8>,
        special_use: Vec<String>,
    },
    Delete(Vec<u8>),
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List(List),
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    Namespace,
    Status {
        mailbox: Vec<u8>,
        items: Vec<StatusItem>,
    },
    /// One message (MULTIAPPEND is not offered). `date`: seconds since the epoch.
    Append {
        mailbox: Vec<u8>,
        flags: Vec<String>,
        date: Option<i64>,
        message: Vec<u8>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    /// EXPUNGE, or UID EXPUNGE set (RFC 4315).
    Expunge {
        uids: Option<SequenceSet>,
    },
    Search(Search),
    Fetch(Fetch),
    Store(Store),
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: Vec<u8>,
    },
    /// RFC 6851.
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: Vec<u8>,
    },
    /// RFC 2971: NIL or field/value pairs.
    Id(Vec<(String, Option<String>)>),
    /// RFC 9208.
    GetQuota(Vec<u8>),
    GetQuotaRoot(Vec<u8>),
}

/// SELECT (QRESYNC (uidvalidity modseq [known-uids [(seq-match uid-match)]])).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
    /// (known sequence numbers, their UIDs).
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// LIST, with RFC 5258 selection and return options (plain RFC 3501 LIST has neither).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List {
    pub selection: Vec<ListSelect>,
    pub reference: Vec<u8>,
    /// One or more patterns (`LIST "" ("INBOX" "Sent*")`).
    pub patterns: Vec<Vec<u8>>,
    pub returns: Vec<ListReturn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSelect {
    Subscribed,
    Remote,
    RecursiveMatch,
    SpecialUse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturn {
    Subscribed,
    Children,
    SpecialUse,
    /// RFC 5819 LIST-STATUS.
    Status(Vec<StatusItem>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    /// RFC 9051.
    Deleted,
    /// RFC 8438 / RFC 9051.
    Size,
    /// RFC 7162.
    HighestModSeq,
}

/// A sequence-set or uid-set (RFC 3501 §9 `sequence-set`), in the order the client gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<SeqRange>);

/// `a:b` (either order) or a single number (`start == end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub start: SeqNumber,
    pub end: SeqNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNumber {
    Value(u32),
    /// `*`: the largest number in use.
    Largest,
}

impl SeqNumber {
    /// The number, with `*` standing for `largest`.
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNumber::Value(n) => n,
            SeqNumber::Largest => largest,
        }
    }
}

impl SequenceSet {
    /// Whether `n` is in the set, `*` standing for `largest`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|r| {
            let (a, b) = (r.start.resolve(largest), r.end.resolve(largest));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            lo <= n && n <= hi
        })
    }

    /// The ranges as ascending, merged, inclusive (lo, hi) pairs, `*` standing for
    /// `largest`. Bounded by the number of ranges the client sent, never by their width.
    pub fn ranges(&self, largest: u32) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = self
            .0
            .iter()
            .map(|r| {
                let (a, b) = (r.start.resolve(largest), r.end.resolve(largest));
                if a <= b { (a, b) } else { (b, a) }
            })
            .collect();
        v.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        out
    }
}

/// SEARCH and UID SEARCH, with ESEARCH (RFC 4731) return options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub uid: bool,
    /// `None`: plain SEARCH (untagged SEARCH response). `Some(v)`: RETURN (...) was given
    /// (an empty list means ALL, RFC 4731 §3.1), the answer is an ESEARCH response.
    pub returns: Option<Vec<SearchReturn>>,
    /// Upper-cased; the session accepts US-ASCII and UTF-8 only.
    pub charset: Option<String>,
    /// The keys, ANDed.
    pub keys: Vec<SearchKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    /// RFC 5182 SEARCHRES.
    Save,
}

/// A calendar date as SEARCH compares them (RFC 3501 `date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// RFC 3501 §6.4.4 search keys (and MODSEQ from RFC 7162).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Deleted,
    Draft,
    Flagged,
    New,
    Old,
    Recent,
    Seen,
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unseen,
    Keyword(String),
    Unkeyword(String),
    Bcc(Vec<u8>),
    Body(Vec<u8>),
    Cc(Vec<u8>),
    From(Vec<u8>),
    Subject(Vec<u8>),
    Text(Vec<u8>),
    To(Vec<u8>),
    /// HEADER field-name string.
    Header(String, Vec<u8>),
    Before(Date),
    On(Date),
    Since(Date),
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Larger(u64),
    Smaller(u64),
    Uid(SequenceSet),
    /// A bare sequence set.
    Seq(SequenceSet),
    /// `$`: the saved result (RFC 5182).
    Saved,
    ModSeq(u64),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    /// A parenthesized list.
    And(Vec<SearchKey>),
}

/// FETCH and UID FETCH (UID FETCH implies the UID item in the answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub uid: bool,
    pub set: SequenceSet,
    /// ALL, FAST and FULL are expanded by the parser.
    pub attrs: Vec<FetchAttr>,
    /// RFC 7162 CHANGEDSINCE.
    pub changed_since: Option<u64>,
    /// RFC 7162 VANISHED (UID FETCH only).
    pub vanished: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Uid,
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// BODY without a section: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    ModSeq,
    /// RFC822 (sets \Seen), RFC822.HEADER, RFC822.TEXT (sets \Seen).
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    /// BODY[section]<partial> and BODY.PEEK[...].
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// RFC 3516 BINARY[part]<partial> and BINARY.PEEK.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    BinarySize {
        part: Vec<u32>,
    },
}

/// `<offset.length>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub offset: u32,
    pub length: u32,
}

/// A body section: a part path (empty for the whole message) and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// Field names as given (compared case-insensitively).
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    /// Only with a part number.
    Mime,
}

/// STORE and UID STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub uid: bool,
    pub set: SequenceSet,
    /// RFC 7162 UNCHANGEDSINCE.
    pub unchanged_since: Option<u64>,
    pub mode: StoreMode,
    /// `.SILENT`.
    pub silent: bool,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}
