//! The mailbox operations an IMAP session needs beyond delivery's append: folders (CREATE,
//! DELETE, RENAME, SUBSCRIBE), STATUS, the light per-message index SELECT loads, flags
//! (STORE, with CONDSTORE's UNCHANGEDSINCE), COPY, MOVE, APPEND, EXPUNGE, reading a
//! message by streaming, and what changed since a modseq (CONDSTORE and QRESYNC, RFC 7162).
//!
//! Modseq rule: one operation, one modseq. An operation that changes messages of a folder
//! (a delivery's append, an APPEND, a STORE, a COPY or MOVE into it, an EXPUNGE or a MOVE
//! out of it) raises the folder's HIGHESTMODSEQ by exactly one, and every message it
//! changes takes that value, as does every UID it removes (recorded in `vanished`). RFC
//! 7162 §3.1 lets messages changed together share a modseq. An operation that changes
//! nothing leaves HIGHESTMODSEQ alone, and a message whose flags a STORE leaves as they
//! were keeps its modseq (§3.2).
//!
//! Flags are kept as one space-separated string in a canonical form: system flags spelled
//! as RFC 9051 does and first, in a fixed order, then keywords in the order they were first
//! set, with no duplicates (keywords compare without regard to ASCII case). SQL can then
//! count `\Seen` and `\Deleted` by exact token.
//!
//! Hierarchy is by name alone, with `/` as the delimiter: a parent that was never created
//! has no row. Subscriptions are kept by name (only an existing folder can be subscribed,
//! but the subscription outlives it); `subscribed` on a folder row mirrors them. Each
//! write method is one
//! job of the writer (group commit), so it is all or nothing.

use crate::blob::{self, BlobId, BodyRef};
use crate::mailbox::{Folder, bump_modseq, folder_row, next_uidvalidity, record_vanished};
use crate::{Error, Result, Store, Tx};
use rusqlite::{Connection, OptionalExtension, params};
use std::io::{Cursor, Read};

/// One message as SELECT and FETCH FLAGS see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFlags {
    pub uid: u32,
    /// Canonical, space-separated (see the module's documentation).
    pub flags: String,
    pub modseq: u64,
}

/// What STATUS reports about a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderStatus {
    pub messages: u32,
    /// Messages no session that selected the folder has seen yet (`\Recent`).
    pub recent: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Messages with `\Deleted`.
    pub deleted: u32,
    /// The sum of the messages' sizes (RFC 8438 STATUS=SIZE).
    pub size: u64,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub highestmodseq: u64,
}

/// What changed in a folder after a given modseq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Messages with a higher modseq, new ones included, in UID order.
    pub changed: Vec<MessageFlags>,
    /// UIDs removed at a higher modseq, ascending.
    pub vanished: Vec<u32>,
    pub highestmodseq: u64,
}

/// How STORE combines the given flags with a message's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagMode {
    Replace,
    Add,
    Remove,
}

/// What a STORE did, each list in UID order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// The new state of each message whose flags changed.
    pub changed: Vec<MessageFlags>,
    /// Messages whose flags were already as asked (their modseq did not move).
    pub unchanged: Vec<MessageFlags>,
    /// UNCHANGEDSINCE failures: messages with a higher modseq, left alone (RFC 7162
    /// §3.1.3, the MODIFIED response code).
    pub modified: Vec<u32>,
}

/// What a COPY or MOVE did (RFC 4315 COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    /// The destination's UIDVALIDITY.
    pub uidvalidity: u32,
    /// (source UID, destination UID), ascending; UIDs that no longer existed are left out.
    pub pairs: Vec<(u32, u32)>,
}

/// A message's content (prefix then body) to be read by streaming: a large body is read
/// from its file as the reader goes, never held whole.
#[derive(Debug)]
pub struct MessageReader {
    inner: std::io::Chain<Cursor<Vec<u8>>, Body>,
    size: u64,
}

#[derive(Debug)]
enum Body {
    Inline(Cursor<Vec<u8>>),
    File(std::fs::File),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Body::Inline(c) => c.read(buf),
            Body::File(f) => f.read(buf),
        }
    }
}

impl Read for MessageReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl MessageReader {
    /// The message's size in octets (RFC822.SIZE).
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// System flags in the order canonical strings hold them.
const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// A set of flags in canonical form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FlagSet {
    /// Bit i: SYSTEM_FLAGS[i].
    system: u8,
    keywords: Vec<String>,
}

impl FlagSet {
    /// Flags as a client gives them: each checked.
    fn given(flags: &[String]) -> Result<FlagSet> {
        let mut set = FlagSet::default();
        for f in flags {
            if f.is_empty() || f.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::Invalid(format!("flag {f:?}")));
            }
            set.insert(f);
        }
        Ok(set)
    }

    /// Flags as stored (already checked when written).
    fn stored(flags: &str) -> FlagSet {
        let mut set = FlagSet::default();
        for f in flags.split_ascii_whitespace() {
            set.insert(f);
        }
        set
    }

    fn system_bit(flag: &str) -> Option<u8> {
        SYSTEM_FLAGS
            .iter()
            .position(|s| s.eq_ignore_ascii_case(flag))
            .map(|i| 1 << i)
    }

    fn insert(&mut self, flag: &str) {
        if let Some(bit) = FlagSet::system_bit(flag) {
            self.system |= bit;
        } else if flag.eq_ignore_ascii_case("\\Recent") {
            // A session flag no client may set (RFC 3501 §2.3.2); not stored.
        } else if !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(flag)) {
            self.keywords.push(flag.to_string());
        }
    }

    fn add_all(&mut self, other: &FlagSet) {
        self.system |= other.system;
        for k in &other.keywords {
            self.insert(k);
        }
    }

    fn remove_all(&mut self, other: &FlagSet) {
        self.system &= !other.system;
        self.keywords
            .retain(|k| !other.keywords.iter().any(|o| o.eq_ignore_ascii_case(k)));
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let system = SYSTEM_FLAGS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.system & (1 << i) != 0)
            .map(|(_, s)| *s);
        for f in system.chain(self.keywords.iter().map(String::as_str)) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(f);
        }
        out
    }
}

/// Flags in the canonical form the store keeps (system flags first in a fixed order and
/// spelled as RFC 9051 does, keywords after in the order given, no duplicates, no
/// `\Recent`), or `Invalid` for an empty flag or one with white space in it.
pub fn canonical_flags(flags: &[String]) -> Result<String> {
    Ok(FlagSet::given(flags)?.render())
}

/// A folder name as stored: `INBOX` in any case is INBOX (RFC 9051 §5.1); other names
/// are kept as given and must not be empty, nor have an empty level ("a//b", "/a", "a/").
fn folder_name(name: &str) -> Result<String> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".into());
    }
    if name.is_empty() || name.split('/').any(str::is_empty) || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!("folder name {name:?}")));
    }
    Ok(name.to_string())
}

/// RFC 6154 attributes a folder may carry.
const SPECIAL_USES: [&str; 7] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];

const FOLDER_COLUMNS: &str =
    "id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed";

fn folder_id_by_name(tx: &Tx<'_>, user_id: i64, name: &str) -> Result<Option<i64>> {
    Ok(tx
        .conn()
        .prepare_cached("SELECT id FROM folders WHERE user_id = ?1 AND name = ?2")?
        .query_row(params![user_id, name], |r| r.get(0))
        .optional()?)
}

fn require_folder(tx: &Tx<'_>, folder_id: i64) -> Result<()> {
    let found: Option<i64> = tx
        .conn()
        .prepare_cached("SELECT 1 FROM folders WHERE id = ?1")?
        .query_row([folder_id], |r| r.get(0))
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))
}

fn sorted(mut uids: Vec<u32>) -> Vec<u32> {
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// Runs `f` inside one read transaction, so that its several statements see one snapshot.
fn snapshot<T>(c: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    if !c.is_autocommit() {
        return f(c);
    }
    let tx = c.unchecked_transaction()?;
    let out = f(&tx);
    // Nothing was written: ending it either way releases the snapshot.
    let _ = tx.finish();
    out
}

fn flags_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageFlags> {
    Ok(MessageFlags {
        uid: r.get::<_, i64>(0)? as u32,
        flags: r.get(1)?,
        modseq: r.get::<_, i64>(2)? as u64,
    })
}

/// A message about to be copied.
struct Source {
    uid: u32,
    blob_id: i64,
    prefix: Vec<u8>,
    size: i64,
    internal_date: i64,
    flags: String,
}

/// COPY (and with `remove`, MOVE) in the caller's transaction.
fn transfer(
    tx: &mut Tx<'_>,
    src: i64,
    uids: &[u32],
    dst: i64,
    remove: bool,
) -> Result<CopyOutcome> {
    require_folder(tx, src)?;
    let mut found = Vec::with_capacity(uids.len());
    for &uid in uids {
        let row = tx
            .conn()
            .prepare_cached(
                "SELECT blob_id, prefix, size, internal_date, flags FROM messages
                 WHERE folder_id = ?1 AND uid = ?2",
            )?
            .query_row(params![src, uid as i64], |r| {
                Ok(Source {
                    uid,
                    blob_id: r.get(0)?,
                    prefix: r.get(1)?,
                    size: r.get(2)?,
                    internal_date: r.get(3)?,
                    flags: r.get(4)?,
                })
            })
            .optional()?;
        found.extend(row);
    }
    if found.is_empty() {
        let uidvalidity: Option<i64> = tx
            .conn()
            .prepare_cached("SELECT uidvalidity FROM folders WHERE id = ?1")?
            .query_row([dst], |r| r.get(0))
            .optional()?;
        let uidvalidity = uidvalidity.ok_or_else(|| Error::NotFound(format!("folder {dst}")))?;
        return Ok(CopyOutcome {
            uidvalidity: uidvalidity as u32,
            pairs: Vec::new(),
        });
    }
    let n = found.len() as i64;
    let (first, modseq, uidvalidity): (i64, i64, i64) = tx
        .conn()
        .prepare_cached(
            "UPDATE folders SET uidnext = uidnext + ?2, highestmodseq = highestmodseq + 1
             WHERE id = ?1 RETURNING uidnext - ?2, highestmodseq, uidvalidity",
        )?
        .query_row(params![dst, n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("folder {dst}")))?;
    let mut pairs = Vec::with_capacity(found.len());
    for (i, m) in found.iter().enumerate() {
        let new_uid = first + i as i64;
        tx.conn()
            .prepare_cached(
                "INSERT INTO messages
                     (folder_id, uid, blob_id, prefix, size, internal_date, flags, modseq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                dst,
                new_uid,
                m.blob_id,
                m.prefix,
                m.size,
                m.internal_date,
                m.flags,
                modseq
            ])?;
        pairs.push((m.uid, new_uid as u32));
    }
    if remove {
        // The copy takes over the original's reference on the body.
        let src_modseq = bump_modseq(tx, src)?;
        for m in &found {
            tx.conn()
                .prepare_cached("DELETE FROM messages WHERE folder_id = ?1 AND uid = ?2")?
                .execute(params![src, m.uid as i64])?;
            record_vanished(tx, src, m.uid, src_modseq)?;
        }
    } else {
        for m in &found {
            blob::add_refs(tx, BlobId(m.blob_id), 1)?;
        }
    }
    Ok(CopyOutcome {
        uidvalidity: uidvalidity as u32,
        pairs,
    })
}

impl Store {
    /// Creates a folder (IMAP CREATE) with a fresh UIDVALIDITY; subscribed if its name
    /// still is from before.
    /// `special_use` is "" or one RFC 6154 attribute. `AlreadyExists` if the name is taken
    /// (INBOX always is).
    pub fn create_folder(&self, user_id: i64, name: &str, special_use: &str) -> Result<Folder> {
        let name = folder_name(name)?;
        if !special_use.is_empty() && !SPECIAL_USES.contains(&special_use) {
            return Err(Error::Invalid(format!("special-use {special_use:?}")));
        }
        let special_use = special_use.to_string();
        self.write(move |tx| {
            let uidvalidity = next_uidvalidity(tx)?;
            let n = tx
                .conn()
                .prepare_cached(
                    "INSERT INTO folders
                         (user_id, name, uidvalidity, uidnext, highestmodseq, special_use,
                          subscribed)
                     VALUES (?1, ?2, ?3, 1, 1, ?4,
                             EXISTS (SELECT 1 FROM subscriptions WHERE user_id = ?1 AND name = ?2))
                     ON CONFLICT (user_id, name) DO NOTHING",
                )?
                .execute(params![user_id, name, uidvalidity as i64, special_use])?;
            if n == 0 {
                return Err(Error::AlreadyExists(format!("folder {name}")));
            }
            let subscribed: bool = tx
                .conn()
                .prepare_cached("SELECT subscribed FROM folders WHERE id = last_insert_rowid()")?
                .query_row([], |r| r.get(0))?;
            Ok(Folder {
                id: tx.conn().last_insert_rowid(),
                name,
                uidvalidity,
                uidnext: 1,
                highestmodseq: 1,
                special_use,
                subscribed,
            })
        })
    }

    /// Deletes a folder and its messages (IMAP DELETE); each message's body loses a
    /// reference. Folders below it ("name/...") stay. INBOX cannot be deleted (`Invalid`).
    pub fn delete_folder(&self, user_id: i64, name: &str) -> Result<()> {
        let name = folder_name(name)?;
        if name == "INBOX" {
            return Err(Error::Invalid("INBOX cannot be deleted".into()));
        }
        let dir = self.dir().to_path_buf();
        self.write(move |tx| {
            let id = folder_id_by_name(tx, user_id, &name)?
                .ok_or_else(|| Error::NotFound(format!("folder {name}")))?;
            let blobs: Vec<i64> = {
                let mut stmt = tx.conn().prepare_cached(
                    "DELETE FROM messages WHERE folder_id = ?1 RETURNING blob_id",
                )?;
                let rows = stmt.query_map([id], |r| r.get(0))?;
                rows.collect::<std::result::Result<_, _>>()?
            };
            for b in blobs {
                blob::release(tx, &dir, BlobId(b))?;
            }
            // Its `vanished` rows go with it (ON DELETE CASCADE).
            tx.conn()
                .prepare_cached("DELETE FROM folders WHERE id = ?1")?
                .execute([id])?;
            Ok(())
        })
    }

    /// Renames a folder and every folder below it (IMAP RENAME); each keeps its
    /// UIDVALIDITY, which no other folder ever had. `to` and the new names below it must
    /// not exist (`AlreadyExists`), nor may `to` be below `from` (`Invalid`).
    ///
    /// Renaming INBOX (RFC 9051 §6.3.6) moves its messages, with their UIDs and modseqs,
    /// to a new folder `to` with a fresh UIDVALIDITY; INBOX stays, empty, with its UIDNEXT,
    /// the UIDs recorded as vanished; folders below INBOX are not renamed.
    pub fn rename_folder(&self, user_id: i64, from: &str, to: &str) -> Result<()> {
        let from = folder_name(from)?;
        let to = folder_name(to)?;
        if to == "INBOX" {
            return Err(Error::AlreadyExists("folder INBOX".into()));
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(Error::Invalid(format!("cannot rename {from} below itself")));
        }
        self.write(move |tx| {
            if from == "INBOX" {
                return rename_inbox(tx, user_id, &to);
            }
            let names: Vec<String> = {
                let mut stmt = tx.conn().prepare_cached(
                    "SELECT name FROM folders
                     WHERE user_id = ?1 AND (name = ?2 OR (name >= ?3 AND name < ?4))",
                )?;
                // Every name below `from` sorts in [from + "/", from + "0"): '0' follows '/'.
                let rows = stmt.query_map(
                    params![user_id, from, format!("{from}/"), format!("{from}0")],
                    |r| r.get(0),
                )?;
                rows.collect::<std::result::Result<_, _>>()?
            };
            if !names.contains(&from) {
                return Err(Error::NotFound(format!("folder {from}")));
            }
            let renames: Vec<(String, String)> = names
                .into_iter()
                .map(|old| {
                    let new = format!("{to}{}", &old[from.len()..]);
                    (old, new)
                })
                .collect();
            for (_, new) in &renames {
                if folder_id_by_name(tx, user_id, new)?.is_some() {
                    return Err(Error::AlreadyExists(format!("folder {new}")));
                }
            }
            for (old, new) in &renames {
                // A subscription moves with its folder, as clients expect.
                tx.conn()
                    .prepare_cached(
                        "UPDATE folders SET name = ?3 WHERE user_id = ?1 AND name = ?2",
                    )?
                    .execute(params![user_id, old, new])?;
                let moved = tx
                    .conn()
                    .prepare_cached("DELETE FROM subscriptions WHERE user_id = ?1 AND name = ?2")?
                    .execute(params![user_id, old])?;
                if moved > 0 {
                    tx.conn()
                        .prepare_cached(
                            "INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?1, ?2)",
                        )?
                        .execute(params![user_id, new])?;
                }
            }
            Ok(())
        })
    }

    /// Subscribes a folder or unsubscribes a name (IMAP SUBSCRIBE, UNSUBSCRIBE).
    /// Subscribing needs the folder (`NotFound`); a subscription outlives its folder
    /// (RFC 9051 §6.3.7), so a name may be unsubscribed after the folder is gone.
    pub fn set_subscribed(&self, user_id: i64, name: &str, subscribed: bool) -> Result<()> {
        let name = folder_name(name)?;
        self.write(move |tx| {
            let n = tx
                .conn()
                .prepare_cached(
                    "UPDATE folders SET subscribed = ?3 WHERE user_id = ?1 AND name = ?2",
                )?
                .execute(params![user_id, name, subscribed])?;
            if subscribed {
                if n == 0 {
                    return Err(Error::NotFound(format!("folder {name}")));
                }
                tx.conn()
                    .prepare_cached(
                        "INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?1, ?2)",
                    )?
                    .execute(params![user_id, name])?;
            } else {
                tx.conn()
                    .prepare_cached("DELETE FROM subscriptions WHERE user_id = ?1 AND name = ?2")?
                    .execute(params![user_id, name])?;
            }
            Ok(())
        })
    }

    /// The names a user is subscribed to, existing or not, sorted.
    pub fn subscriptions(&self, user_id: i64) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name FROM subscriptions WHERE user_id = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([user_id], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<Vec<String>, _>>()?)
        })
    }

    pub fn folder_by_id(&self, folder_id: i64) -> Result<Option<Folder>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {FOLDER_COLUMNS} FROM folders WHERE id = ?1"
            ))?
            .query_row([folder_id], folder_row)
            .optional()?)
        })
    }

    /// A folder's HIGHESTMODSEQ alone: a cheap test of whether anything changed.
    pub fn folder_highestmodseq(&self, folder_id: i64) -> Result<Option<u64>> {
        self.read(|c| {
            let m: Option<i64> = c
                .prepare_cached("SELECT highestmodseq FROM folders WHERE id = ?1")?
                .query_row([folder_id], |r| r.get(0))
                .optional()?;
            Ok(m.map(|m| m as u64))
        })
    }

    /// The counts STATUS reports, in one query (`NotFound` for a missing folder).
    pub fn folder_status(&self, folder_id: i64) -> Result<FolderStatus> {
        self.read(|c| {
            c.prepare_cached(
                r"SELECT f.uidnext, f.uidvalidity, f.highestmodseq, COUNT(m.uid),
                    COALESCE(SUM(instr(' ' || m.flags || ' ', ' \Seen ') = 0), 0),
                    COALESCE(SUM(instr(' ' || m.flags || ' ', ' \Deleted ') > 0), 0),
                    COALESCE(SUM(m.size), 0),
                    COALESCE(SUM(m.uid >= f.recent_from), 0)
                 FROM folders f LEFT JOIN messages m ON m.folder_id = f.id
                 WHERE f.id = ?1 GROUP BY f.id",
            )?
            .query_row([folder_id], |r| {
                Ok(FolderStatus {
                    uidnext: r.get::<_, i64>(0)? as u32,
                    uidvalidity: r.get::<_, i64>(1)? as u32,
                    highestmodseq: r.get::<_, i64>(2)? as u64,
                    messages: r.get::<_, i64>(3)? as u32,
                    recent: r.get::<_, i64>(7)? as u32,
                    unseen: r.get::<_, i64>(4)? as u32,
                    deleted: r.get::<_, i64>(5)? as u32,
                    size: r.get::<_, i64>(6)? as u64,
                })
            })
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))
        })
    }

    /// Claims `\Recent` (RFC 3501 §2.3.2) for a session that selected the folder: the
    /// messages from the returned UID up to (not including) `upto` are recent in that
    /// session, and in no session that claims after it.
    pub fn claim_recent(&self, folder_id: i64, upto: u32) -> Result<u32> {
        self.write(move |tx| {
            let from: i64 = tx
                .conn()
                .prepare_cached("SELECT recent_from FROM folders WHERE id = ?1")?
                .query_row([folder_id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))?;
            if (upto as i64) > from {
                tx.conn()
                    .prepare_cached("UPDATE folders SET recent_from = ?2 WHERE id = ?1")?
                    .execute(params![folder_id, upto as i64])?;
            }
            Ok(from as u32)
        })
    }

    /// The first UID not yet claimed as `\Recent` by a session (what EXAMINE shows as
    /// recent without claiming it).
    pub fn recent_from(&self, folder_id: i64) -> Result<u32> {
        self.read(|c| {
            let from: i64 = c
                .prepare_cached("SELECT recent_from FROM folders WHERE id = ?1")?
                .query_row([folder_id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))?;
            Ok(from as u32)
        })
    }

    /// UID, flags and modseq of every message of a folder, in UID order: what SELECT loads.
    pub fn message_index(&self, folder_id: i64) -> Result<Vec<MessageFlags>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT uid, flags, modseq FROM messages WHERE folder_id = ?1 ORDER BY uid",
            )?;
            let rows = stmt.query_map([folder_id], flags_row)?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    /// The messages changed and the UIDs removed after `modseq`, and the folder's
    /// HIGHESTMODSEQ, all from one snapshot (`NotFound` for a missing folder).
    pub fn changes_since(&self, folder_id: i64, modseq: u64) -> Result<Changes> {
        self.read(|c| {
            snapshot(c, |c| {
                let highestmodseq: i64 = c
                    .prepare_cached("SELECT highestmodseq FROM folders WHERE id = ?1")?
                    .query_row([folder_id], |r| r.get(0))
                    .optional()?
                    .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))?;
                let since = modseq.min(i64::MAX as u64) as i64;
                let changed = {
                    let mut stmt = c.prepare_cached(
                        "SELECT uid, flags, modseq FROM messages
                         WHERE folder_id = ?1 AND modseq > ?2 ORDER BY uid",
                    )?;
                    let rows = stmt.query_map(params![folder_id, since], flags_row)?;
                    rows.collect::<std::result::Result<Vec<_>, _>>()?
                };
                let vanished = {
                    let mut stmt = c.prepare_cached(
                        "SELECT uid FROM vanished WHERE folder_id = ?1 AND modseq > ?2
                         ORDER BY uid",
                    )?;
                    let rows = stmt.query_map(params![folder_id, since], |r| {
                        Ok(r.get::<_, i64>(0)? as u32)
                    })?;
                    rows.collect::<std::result::Result<Vec<_>, _>>()?
                };
                Ok(Changes {
                    changed,
                    vanished,
                    highestmodseq: highestmodseq as u64,
                })
            })
        })
    }

    /// Sets, adds or removes flags on messages (IMAP STORE). With `unchanged_since`
    /// (RFC 7162 UNCHANGEDSINCE), a message whose modseq is higher is left alone and
    /// reported in `modified`. UIDs not in the folder are skipped.
    pub fn store_flags(
        &self,
        folder_id: i64,
        uids: Vec<u32>,
        mode: FlagMode,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<StoreOutcome> {
        let given = FlagSet::given(&flags)?;
        let uids = sorted(uids);
        self.write(move |tx| {
            require_folder(tx, folder_id)?;
            let mut out = StoreOutcome::default();
            let mut new_modseq = None;
            for uid in uids {
                let row: Option<(String, i64)> = tx
                    .conn()
                    .prepare_cached(
                        "SELECT flags, modseq FROM messages WHERE folder_id = ?1 AND uid = ?2",
                    )?
                    .query_row(params![folder_id, uid as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((flags, modseq)) = row else {
                    continue;
                };
                let modseq = modseq as u64;
                if unchanged_since.is_some_and(|u| modseq > u) {
                    out.modified.push(uid);
                    continue;
                }
                let mut set = FlagSet::stored(&flags);
                match mode {
                    FlagMode::Replace => set = given.clone(),
                    FlagMode::Add => set.add_all(&given),
                    FlagMode::Remove => set.remove_all(&given),
                }
                let rendered = set.render();
                if rendered == flags {
                    out.unchanged.push(MessageFlags { uid, flags, modseq });
                    continue;
                }
                let m = match new_modseq {
                    Some(m) => m,
                    None => *new_modseq.insert(bump_modseq(tx, folder_id)?),
                };
                tx.conn()
                    .prepare_cached(
                        "UPDATE messages SET flags = ?3, modseq = ?4 WHERE folder_id = ?1 AND uid = ?2",
                    )?
                    .execute(params![folder_id, uid as i64, rendered, m as i64])?;
                out.changed.push(MessageFlags {
                    uid,
                    flags: rendered,
                    modseq: m,
                });
            }
            Ok(out)
        })
    }

    /// Copies messages to another folder (IMAP COPY): each copy shares the body (one more
    /// reference), keeps flags, internal date and prefix, and gets a new UID and modseq.
    /// UIDs not in the source are skipped.
    pub fn copy_messages(&self, src: i64, uids: Vec<u32>, dst: i64) -> Result<CopyOutcome> {
        let uids = sorted(uids);
        self.write(move |tx| transfer(tx, src, &uids, dst, false))
    }

    /// Moves messages to another folder (RFC 6851 MOVE): a copy and the removal of the
    /// originals (recorded as vanished) in one transaction.
    pub fn move_messages(&self, src: i64, uids: Vec<u32>, dst: i64) -> Result<CopyOutcome> {
        let uids = sorted(uids);
        self.write(move |tx| transfer(tx, src, &uids, dst, true))
    }

    /// Stores a message as given, with no prefix (IMAP APPEND). `body` comes from
    /// [`Store::prepare_body`] or a finished [`Store::create_body`]; if the write fails, its
    /// file is removed. Returns the folder's UIDVALIDITY and the new UID (RFC 4315
    /// APPENDUID).
    pub fn append_message(
        &self,
        folder_id: i64,
        body: BodyRef,
        flags: Vec<String>,
        internal_date: i64,
    ) -> Result<(u32, u32)> {
        let flags = match FlagSet::given(&flags) {
            Ok(f) => f.render(),
            Err(e) => {
                self.discard_body(&body);
                return Err(e);
            }
        };
        let file = match &body {
            BodyRef::File { relative, size } => Some(BodyRef::File {
                relative: relative.clone(),
                size: *size,
            }),
            BodyRef::Inline(_) => None,
        };
        let result = self.write(move |tx| {
            let size = body.size() as i64;
            let blob_id = blob::insert(tx, &body)?;
            let (uid, modseq, uidvalidity): (i64, i64, i64) = tx
                .conn()
                .prepare_cached(
                    "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                     WHERE id = ?1 RETURNING uidnext - 1, highestmodseq, uidvalidity",
                )?
                .query_row([folder_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))?;
            tx.conn()
                .prepare_cached(
                    "INSERT INTO messages
                         (folder_id, uid, blob_id, prefix, size, internal_date, flags, modseq)
                     VALUES (?1, ?2, ?3, x'', ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    folder_id,
                    uid,
                    blob_id.0,
                    size,
                    internal_date,
                    flags,
                    modseq
                ])?;
            Ok((uidvalidity as u32, uid as u32))
        });
        // WriterGone leaves it unknown whether the row committed: keep the file then (at
        // worst an orphan, which check-store removes).
        if let (Err(e), Some(file)) = (&result, &file)
            && !matches!(e, Error::WriterGone)
        {
            self.discard_body(file);
        }
        result
    }

    /// A message's prefix, body blob and total size, or None if the UID is not there.
    pub fn message_prefix_and_blob(
        &self,
        folder_id: i64,
        uid: u32,
    ) -> Result<Option<(Vec<u8>, BlobId, u64)>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT prefix, blob_id, size FROM messages WHERE folder_id = ?1 AND uid = ?2",
            )?
            .query_row(params![folder_id, uid as i64], |r| {
                Ok((r.get(0)?, BlobId(r.get(1)?), r.get::<_, i64>(2)? as u64))
            })
            .optional()?)
        })
    }

    /// A message's content to be read by streaming, or None if the UID is not there. A
    /// large body's file is opened here, so an expunge after this call does not cut the
    /// reader short.
    pub fn open_message(&self, folder_id: i64, uid: u32) -> Result<Option<MessageReader>> {
        let dir = self.dir().to_path_buf();
        self.read(|c| {
            type Row = (Vec<u8>, i64, Option<i64>, Option<Vec<u8>>, Option<String>);
            let row: Option<Row> = c
                .prepare_cached(
                    "SELECT m.prefix, m.size, b.id, b.data, b.path FROM messages m
                     LEFT JOIN blobs b ON b.id = m.blob_id WHERE m.folder_id = ?1 AND m.uid = ?2",
                )?
                .query_row(params![folder_id, uid as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            let Some((prefix, size, blob, data, path)) = row else {
                return Ok(None);
            };
            let body = match (blob, data, path) {
                (Some(_), Some(data), _) => Body::Inline(Cursor::new(data)),
                (Some(_), None, Some(path)) => {
                    Body::File(std::fs::File::open(dir.join(path)).map_err(Error::Io)?)
                }
                _ => {
                    return Err(Error::NotFound(format!(
                        "body of message {uid} in folder {folder_id}"
                    )));
                }
            };
            Ok(Some(MessageReader {
                inner: Cursor::new(prefix).chain(body),
                size: size as u64,
            }))
        })
    }

    /// Removes the messages flagged `\Deleted` (IMAP EXPUNGE), or only those among
    /// `only_uids` (UID EXPUNGE, RFC 4315), in one transaction; returns their UIDs,
    /// ascending, recorded as vanished.
    pub fn expunge_deleted(&self, folder_id: i64, only_uids: Option<Vec<u32>>) -> Result<Vec<u32>> {
        let only = only_uids.map(sorted);
        let dir = self.dir().to_path_buf();
        self.write(move |tx| {
            require_folder(tx, folder_id)?;
            let mut uids: Vec<u32> = {
                let mut stmt = tx.conn().prepare_cached(
                    r"SELECT uid FROM messages
                     WHERE folder_id = ?1 AND instr(' ' || flags || ' ', ' \Deleted ') > 0
                     ORDER BY uid",
                )?;
                let rows = stmt.query_map([folder_id], |r| Ok(r.get::<_, i64>(0)? as u32))?;
                rows.collect::<std::result::Result<_, _>>()?
            };
            if let Some(only) = &only {
                uids.retain(|u| only.binary_search(u).is_ok());
            }
            if uids.is_empty() {
                return Ok(uids);
            }
            let modseq = bump_modseq(tx, folder_id)?;
            for &uid in &uids {
                let b: i64 = tx
                    .conn()
                    .prepare_cached(
                        "DELETE FROM messages WHERE folder_id = ?1 AND uid = ?2 RETURNING blob_id",
                    )?
                    .query_row(params![folder_id, uid as i64], |r| r.get(0))?;
                blob::release(tx, &dir, BlobId(b))?;
                record_vanished(tx, folder_id, uid, modseq)?;
            }
            Ok(uids)
        })
    }
}

/// RENAME INBOX (RFC 9051 §6.3.6) in the caller's transaction.
fn rename_inbox(tx: &mut Tx<'_>, user_id: i64, to: &str) -> Result<()> {
    let (inbox, uidnext, highestmodseq): (i64, i64, i64) = tx
        .conn()
        .prepare_cached(
            "SELECT id, uidnext, highestmodseq FROM folders WHERE user_id = ?1 AND name = 'INBOX'",
        )?
        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or_else(|| Error::NotFound("folder INBOX".into()))?;
    if folder_id_by_name(tx, user_id, to)?.is_some() {
        return Err(Error::AlreadyExists(format!("folder {to}")));
    }
    let uidvalidity = next_uidvalidity(tx)?;
    // The messages keep their UIDs and modseqs: the new folder starts where INBOX was.
    tx.conn()
        .prepare_cached(
            "INSERT INTO folders
                 (user_id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed)
             VALUES (?1, ?2, ?3, ?4, ?5, '',
                     EXISTS (SELECT 1 FROM subscriptions WHERE user_id = ?1 AND name = ?2))",
        )?
        .execute(params![
            user_id,
            to,
            uidvalidity as i64,
            uidnext,
            highestmodseq
        ])?;
    let new_id = tx.conn().last_insert_rowid();
    let moved: i64 = tx
        .conn()
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE folder_id = ?1")?
        .query_row([inbox], |r| r.get(0))?;
    if moved == 0 {
        return Ok(());
    }
    let modseq = bump_modseq(tx, inbox)?;
    tx.conn()
        .prepare_cached(
            "INSERT OR REPLACE INTO vanished (folder_id, uid, modseq)
             SELECT folder_id, uid, ?2 FROM messages WHERE folder_id = ?1",
        )?
        .execute(params![inbox, modseq as i64])?;
    tx.conn()
        .prepare_cached("UPDATE messages SET folder_id = ?2 WHERE folder_id = ?1")?
        .execute(params![inbox, new_id])?;
    Ok(())
}
