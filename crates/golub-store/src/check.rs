//! The offline consistency check behind `golub check-store`: it compares what the rows
//! say with what is really there and, when asked, repairs what can be repaired.
//!
//! What it looks at: SQLite's own `integrity_check` (reported only); every blob's
//! refcount against the rows that reference it (messages and queue entries); references
//! to blob rows that do not exist; blob files that are missing, and files under `blobs/`
//! that no row names; each folder's UIDNEXT and HIGHESTMODSEQ against its messages.
//!
//! A repair runs as one write transaction, so it is all or nothing. A queue entry whose
//! body is gone is never deleted: it moves to `queue_quarantine` (Postfix's "hold"), where
//! an operator can look at its envelope. Run it with the server stopped: a body file that a
//! live server has written but not yet committed would look like an orphan. Partial body
//! files (`blobs/tmp-*`, still being received) are not counted.

use crate::{Result, Store, unix_now};
use rusqlite::{Connection, params};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// How many examples of each kind of problem a report keeps.
const EXAMPLES: usize = 10;

/// One kind of problem: how many were found, and a few of them described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finding {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Finding {
    fn add(&mut self, example: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(example());
        }
    }
}

/// What [`Store::check`] found, and whether it repaired it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Lines of SQLite's `PRAGMA integrity_check` other than `ok` (never repaired here).
    pub integrity: Vec<String>,
    /// Referenced blobs whose refcount differs from the number of references.
    pub wrong_refcounts: Finding,
    /// Blob rows that nothing references (repair removes them and their files).
    pub unreferenced_blobs: Finding,
    /// Mailbox messages whose blob row is missing (repair removes the message rows).
    pub dangling_messages: Finding,
    /// Queue entries whose blob row is missing (repair moves them to `queue_quarantine`).
    pub dangling_queue: Finding,
    /// Blob rows naming a file that does not exist (the body is lost: reported only).
    pub missing_files: Finding,
    /// Files under `blobs/` that no row names (repair deletes them).
    pub orphan_files: Finding,
    /// Folders whose UIDNEXT or HIGHESTMODSEQ is behind their messages (repair raises them).
    pub folder_counters: Finding,
    /// True when the repair transaction committed.
    pub repaired: bool,
    /// Problems still there afterwards: all of them without a repair, and after a repair
    /// what a second look still finds.
    pub remaining: u64,
}

impl CheckReport {
    /// Number of problems found, all kinds together.
    pub fn problems(&self) -> u64 {
        self.integrity.len() as u64 + self.findings().iter().map(|(_, _, f)| f.count).sum::<u64>()
    }

    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.problems() == 0
    }

    fn findings(&self) -> [(&'static str, &'static str, &Finding); 7] {
        [
            (
                "wrong refcounts",
                "set to the real count",
                &self.wrong_refcounts,
            ),
            ("unreferenced blobs", "removed", &self.unreferenced_blobs),
            ("dangling messages", "removed", &self.dangling_messages),
            (
                "dangling queue entries",
                "moved to queue_quarantine",
                &self.dangling_queue,
            ),
            (
                "missing blob files",
                "cannot be repaired",
                &self.missing_files,
            ),
            ("orphan files", "deleted", &self.orphan_files),
            ("folder counters behind", "raised", &self.folder_counters),
        ]
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.integrity.is_empty() {
            writeln!(f, "sqlite integrity check: ok")?;
        } else {
            writeln!(
                f,
                "sqlite integrity check: {} problem(s) (not repaired here)",
                self.integrity.len()
            )?;
            for line in self.integrity.iter().take(EXAMPLES) {
                writeln!(f, "    {line}")?;
            }
        }
        for (name, action, finding) in self.findings() {
            if self.repaired && finding.count > 0 {
                writeln!(f, "{name}: {} ({action})", finding.count)?;
            } else {
                writeln!(f, "{name}: {}", finding.count)?;
            }
            for e in &finding.examples {
                writeln!(f, "    {e}")?;
            }
        }
        if self.is_clean() {
            write!(f, "the store is consistent")
        } else if self.repaired && self.remaining == 0 {
            write!(f, "repaired: the store is consistent")
        } else {
            write!(f, "{} problem(s) remain", self.remaining)
        }
    }
}

impl Store {
    /// Checks the store's consistency; with `repair`, fixes what can be fixed in one
    /// transaction and looks again. Meant for a store no server is using.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let dir = self.dir().to_path_buf();
        let mut report = self.read(|c| scan(c, &dir))?;
        if !repair || report.is_clean() {
            report.remaining = report.problems();
            return Ok(report);
        }
        let d = dir.clone();
        self.write(move |tx| {
            let files = repair_rows(tx.conn(), &d)?;
            for f in files {
                tx.remove_after_commit(f);
            }
            Ok(())
        })?;
        report.repaired = true;
        report.remaining = self.read(|c| scan(c, &dir))?.problems();
        Ok(report)
    }
}

/// The sum of references each blob really has, as SQL: messages plus queue entries.
const REFS: &str = "WITH refs(blob_id, n) AS (
        SELECT blob_id, COUNT(*) FROM
            (SELECT blob_id FROM messages UNION ALL SELECT blob_id FROM queue)
        GROUP BY blob_id)";

fn scan(c: &Connection, dir: &Path) -> Result<CheckReport> {
    let mut r = CheckReport::default();
    {
        let mut stmt = c.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        for line in rows {
            let line = line?;
            if line != "ok" {
                r.integrity.push(line);
            }
        }
    }
    {
        let mut stmt = c.prepare(&format!(
            "{REFS} SELECT b.id, b.refcount, COALESCE(r.n, 0) FROM blobs b
             LEFT JOIN refs r ON r.blob_id = b.id
             WHERE r.n IS NULL OR b.refcount != r.n ORDER BY b.id"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (id, recorded, actual): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            if actual == 0 {
                r.unreferenced_blobs
                    .add(|| format!("blob {id}: refcount {recorded}, no references"));
            } else {
                r.wrong_refcounts
                    .add(|| format!("blob {id}: refcount {recorded}, {actual} reference(s)"));
            }
        }
    }
    {
        let mut stmt = c.prepare(
            "SELECT m.folder_id, m.uid, m.blob_id FROM messages m
             WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = m.blob_id)
             ORDER BY m.folder_id, m.uid",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (folder, uid, blob): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            r.dangling_messages
                .add(|| format!("folder {folder} uid {uid}: blob {blob} does not exist"));
        }
    }
    {
        let mut stmt = c.prepare(
            "SELECT q.id, q.blob_id FROM queue q
             WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = q.blob_id) ORDER BY q.id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (id, blob): (i64, i64) = (row.get(0)?, row.get(1)?);
            r.dangling_queue.add(|| {
                format!(
                    "queue entry {}: blob {blob} does not exist",
                    golub_types::QueueId(id as u64)
                )
            });
        }
    }
    let mut named = HashSet::new();
    {
        let mut stmt =
            c.prepare("SELECT id, path FROM blobs WHERE path IS NOT NULL ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (id, path): (i64, String) = (row.get(0)?, row.get(1)?);
            if !dir.join(&path).is_file() {
                r.missing_files
                    .add(|| format!("blob {id}: {path} does not exist"));
            }
            named.insert(path);
        }
    }
    for rel in orphan_files(dir, &named)? {
        r.orphan_files.add(|| rel.clone());
    }
    {
        let mut stmt = c.prepare(
            "SELECT f.id, f.name, f.uidnext, f.highestmodseq, MAX(m.uid), MAX(m.modseq)
             FROM folders f JOIN messages m ON m.folder_id = f.id
             GROUP BY f.id HAVING f.uidnext <= MAX(m.uid) OR f.highestmodseq < MAX(m.modseq)
             ORDER BY f.id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (id, name, uidnext, hms, uid, modseq): (i64, String, i64, i64, i64, i64) = (
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            );
            r.folder_counters.add(|| {
                format!(
                    "folder {id} ({name}): uidnext {uidnext}, highest uid {uid}; \
                     highestmodseq {hms}, highest modseq {modseq}"
                )
            });
        }
    }
    Ok(r)
}

/// Files under `blobs/` (as `blobs/NAME`) that are not in `named`.
fn orphan_files(dir: &Path, named: &HashSet<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir.join("blobs")) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(crate::Error::from_io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(crate::Error::from_io)?;
        if !entry.file_type().map_err(crate::Error::from_io)?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // A body still being written (or cut off by a crash: the next open removes it).
        if name.starts_with(crate::blob::PARTIAL_PREFIX) {
            continue;
        }
        let rel = format!("blobs/{name}");
        if !named.contains(&rel) {
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// Applies every repair inside the caller's transaction; returns the files to delete once
/// it has committed.
fn repair_rows(c: &Connection, dir: &Path) -> Result<Vec<PathBuf>> {
    // Messages whose body does not exist can never be read: drop them.
    c.execute(
        "DELETE FROM messages WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = messages.blob_id)",
        [],
    )?;
    // Queue entries whose body does not exist: keep envelope and recipients, out of the way
    // of delivery.
    let now = unix_now();
    c.execute(
        "INSERT INTO queue_quarantine
             (id, blob_id, reverse_path, smtputf8, eight_bit, received_at, quarantined_at, reason)
         SELECT id, blob_id, reverse_path, smtputf8, eight_bit, received_at, ?1, 'blob missing'
         FROM queue q WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = q.blob_id)",
        params![now],
    )?;
    c.execute(
        "INSERT INTO queue_quarantine_rcpts
             (queue_id, idx, address, orig_address, status, attempts, next_attempt, last_reply)
         SELECT r.queue_id, r.idx, r.address, r.orig_address, r.status, r.attempts,
                r.next_attempt, r.last_reply
         FROM queue_rcpts r JOIN queue q ON q.id = r.queue_id
         WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = q.blob_id)",
        [],
    )?;
    c.execute(
        "DELETE FROM queue_rcpts WHERE queue_id IN (SELECT q.id FROM queue q
             WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = q.blob_id))",
        [],
    )?;
    c.execute(
        "DELETE FROM queue WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = queue.blob_id)",
        [],
    )?;
    // Refcounts: the real count, and blobs nobody references go (files after the commit).
    let mut remove = Vec::new();
    let mut named = HashSet::new();
    {
        let fixes: Vec<(i64, i64, Option<String>)> = {
            let mut stmt = c.prepare(&format!(
                "{REFS} SELECT b.id, COALESCE(r.n, 0), b.path FROM blobs b
                 LEFT JOIN refs r ON r.blob_id = b.id
                 WHERE r.n IS NULL OR b.refcount != r.n"
            ))?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        for (id, actual, path) in fixes {
            if actual == 0 {
                c.execute("DELETE FROM blobs WHERE id = ?1", [id])?;
                if let Some(p) = path {
                    remove.push(dir.join(p));
                }
            } else {
                c.execute(
                    "UPDATE blobs SET refcount = ?2 WHERE id = ?1",
                    params![id, actual],
                )?;
            }
        }
        let mut stmt = c.prepare("SELECT path FROM blobs WHERE path IS NOT NULL")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        for p in rows {
            named.insert(p?);
        }
    }
    // A folder's next UID must be above every UID in it (RFC 9051 §2.3.1.1), and its
    // HIGHESTMODSEQ at least every message's modseq.
    c.execute(
        "UPDATE folders SET
             uidnext = MAX(uidnext,
                 COALESCE((SELECT MAX(uid) + 1 FROM messages m WHERE m.folder_id = folders.id), 0)),
             highestmodseq = MAX(highestmodseq,
                 COALESCE((SELECT MAX(modseq) FROM messages m WHERE m.folder_id = folders.id), 0))",
        [],
    )?;
    for rel in orphan_files(dir, &named)? {
        remove.push(dir.join(rel));
    }
    Ok(remove)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BodyRef, NewMessage, RcptOutcome, StoreOptions, hash_password, queue};
    use golub_types::QueueId;

    /// A store with alice and bob, one small message delivered to both, one large (file)
    /// message delivered to alice, and one large message still queued for bob.
    fn populated() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            dir.path(),
            StoreOptions {
                inline_body_limit: 64,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        store.add_domain("example.org").unwrap();
        let hash = hash_password("pw").unwrap();
        let alice = store
            .add_user("alice@example.org", "", hash.clone())
            .unwrap();
        let bob = store.add_user("bob@example.org", "", hash).unwrap();
        let bodies: [(u64, &[&str], Vec<u8>); 3] = [
            (
                1,
                &["alice@example.org", "bob@example.org"],
                b"small\r\n".to_vec(),
            ),
            (2, &["alice@example.org"], vec![b'x'; 500]),
            (3, &["bob@example.org"], vec![b'y'; 500]),
        ];
        for (id, rcpts, body) in bodies {
            let body = store.prepare_body(body).unwrap();
            let msg = NewMessage {
                id: QueueId(id),
                reverse_path: "sender@remote.example".into(),
                recipients: rcpts.iter().map(|&s| s.into()).collect(),
                smtputf8: false,
                eight_bit: false,
                body,
                envid: String::new(),
                ret: String::new(),
            };
            store.write(move |tx| queue::enqueue(tx, &msg)).unwrap();
            if id == 3 {
                continue;
            }
            let msg = store.queued_message(QueueId(id)).unwrap().unwrap();
            let outcomes: Vec<_> = msg
                .recipients
                .iter()
                .map(|r| {
                    let user = if r.address.starts_with("alice") {
                        alice.id
                    } else {
                        bob.id
                    };
                    (
                        r.idx,
                        RcptOutcome::Delivered(vec![(user, b"P: 1\r\n".to_vec())]),
                    )
                })
                .collect();
            let d = store.dir().to_path_buf();
            store
                .write(move |tx| queue::record_delivery(tx, &d, &msg, &outcomes, &[]))
                .unwrap();
        }
        (dir, store)
    }

    /// Breaks the store behind its back, with foreign keys off as a crash or a bug might.
    fn sabotage(store: &Store, sql: &str) {
        let c = Connection::open(store.dir().join("golub.db")).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        c.execute_batch(sql).unwrap();
    }

    fn blob_of_queue(store: &Store, qid: i64) -> i64 {
        store
            .read(|c| {
                Ok(
                    c.query_row("SELECT blob_id FROM queue WHERE id = ?1", [qid], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap()
    }

    #[test]
    fn a_sound_store_is_clean() {
        let (_d, store) = populated();
        let r = store.check(false).unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.remaining, 0);
        let r = store.check(true).unwrap();
        assert!(r.is_clean() && !r.repaired, "{r}");
    }

    #[test]
    fn wrong_refcount_is_found_and_set_right() {
        let (_d, store) = populated();
        sabotage(
            &store,
            "UPDATE blobs SET refcount = refcount + 5 WHERE data IS NOT NULL",
        );
        let r = store.check(false).unwrap();
        assert_eq!(r.wrong_refcounts.count, 1, "{r}");
        assert_eq!(r.remaining, 1);
        assert!(
            r.wrong_refcounts.examples[0].contains("refcount 7, 2 reference(s)"),
            "{r}"
        );
        let r = store.check(true).unwrap();
        assert!(r.repaired && r.remaining == 0, "{r}");
        assert!(store.check(false).unwrap().is_clean());
        let n: i64 = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT refcount FROM blobs WHERE data IS NOT NULL",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn unreferenced_blob_is_removed_with_its_file() {
        let (_d, store) = populated();
        let blob = blob_of_queue(&store, 3);
        let path: String = store
            .read(
                |c| Ok(c.query_row("SELECT path FROM blobs WHERE id = ?1", [blob], |r| r.get(0))?),
            )
            .unwrap();
        // The queue entry vanishes without releasing its reference.
        sabotage(
            &store,
            "DELETE FROM queue_rcpts WHERE queue_id = 3; DELETE FROM queue WHERE id = 3;",
        );
        let r = store.check(false).unwrap();
        assert_eq!(r.unreferenced_blobs.count, 1, "{r}");
        let r = store.check(true).unwrap();
        assert!(r.repaired && r.remaining == 0, "{r}");
        assert!(!store.dir().join(path).exists());
        assert!(store.check(false).unwrap().is_clean());
    }

    #[test]
    fn orphan_file_is_found_and_deleted() {
        let (_d, store) = populated();
        let orphan = store.dir().join("blobs/left-over-by-a-crash");
        std::fs::write(&orphan, b"nobody's body").unwrap();
        let r = store.check(false).unwrap();
        assert_eq!(r.orphan_files.count, 1, "{r}");
        assert_eq!(r.orphan_files.examples, vec!["blobs/left-over-by-a-crash"]);
        assert!(orphan.exists(), "a check without repair changes nothing");
        let r = store.check(true).unwrap();
        assert!(r.repaired && r.remaining == 0, "{r}");
        assert!(!orphan.exists());
        // Files that rows name are still there.
        assert!(store.check(false).unwrap().is_clean());
    }

    #[test]
    fn missing_file_is_reported_and_not_repairable() {
        let (_d, store) = populated();
        let blob = blob_of_queue(&store, 3);
        let path: String = store
            .read(
                |c| Ok(c.query_row("SELECT path FROM blobs WHERE id = ?1", [blob], |r| r.get(0))?),
            )
            .unwrap();
        std::fs::remove_file(store.dir().join(&path)).unwrap();
        let r = store.check(false).unwrap();
        assert_eq!(r.missing_files.count, 1, "{r}");
        assert!(r.missing_files.examples[0].contains(&path));
        let r = store.check(true).unwrap();
        assert!(r.repaired, "{r}");
        assert_eq!(r.remaining, 1, "a lost body stays a problem: {r}");
        assert!(r.to_string().ends_with("1 problem(s) remain"), "{r}");
    }

    #[test]
    fn dangling_message_is_removed_and_dangling_queue_entry_quarantined() {
        let (_d, store) = populated();
        let queued = blob_of_queue(&store, 3);
        sabotage(
            &store,
            &format!(
                "DELETE FROM blobs WHERE data IS NOT NULL; DELETE FROM blobs WHERE id = {queued};"
            ),
        );
        let r = store.check(false).unwrap();
        assert_eq!(r.dangling_messages.count, 2, "{r}");
        assert_eq!(r.dangling_queue.count, 1, "{r}");
        // The queued body's file is now an orphan too.
        assert_eq!(r.orphan_files.count, 1, "{r}");
        let r = store.check(true).unwrap();
        assert!(r.repaired && r.remaining == 0, "{r}");
        assert!(store.check(false).unwrap().is_clean());
        assert!(store.queue_entries().unwrap().is_empty());
        let (id, reason, rcpts): (i64, String, String) = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT q.id, q.reason, group_concat(r.address)
                     FROM queue_quarantine q JOIN queue_quarantine_rcpts r ON r.queue_id = q.id",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            })
            .unwrap();
        assert_eq!(
            (id, reason.as_str(), rcpts.as_str()),
            (3, "blob missing", "bob@example.org")
        );
        // The file-backed message that still has its body is untouched.
        let alice = store.user("alice@example.org").unwrap().unwrap();
        let inbox = store.folder(alice.id, "INBOX").unwrap().unwrap();
        let msgs = store.messages(inbox.id).unwrap();
        assert_eq!(msgs.len(), 1);
        assert!(
            store
                .message_content(inbox.id, msgs[0].uid)
                .unwrap()
                .ends_with(&[b'x'; 500])
        );
    }

    #[test]
    fn folder_counters_behind_are_raised() {
        let (_d, store) = populated();
        sabotage(
            &store,
            "UPDATE folders SET uidnext = 1, highestmodseq = 1 WHERE name = 'INBOX'",
        );
        let r = store.check(false).unwrap();
        assert_eq!(r.folder_counters.count, 2, "{r}");
        let r = store.check(true).unwrap();
        assert!(r.repaired && r.remaining == 0, "{r}");
        let alice = store.user("alice@example.org").unwrap().unwrap();
        let inbox = store.folder(alice.id, "INBOX").unwrap().unwrap();
        assert_eq!(inbox.uidnext, 3);
        assert!(inbox.highestmodseq >= 2);
        // A new message gets a fresh UID, not one already in use.
        let body = BodyRef::Inline(b"new\r\n".to_vec());
        let msg = NewMessage {
            id: QueueId(9),
            reverse_path: String::new(),
            recipients: vec!["alice@example.org".into()],
            smtputf8: false,
            eight_bit: false,
            body,
            envid: String::new(),
            ret: String::new(),
        };
        store.write(move |tx| queue::enqueue(tx, &msg)).unwrap();
        let msg = store.queued_message(QueueId(9)).unwrap().unwrap();
        let out = vec![(0, RcptOutcome::Delivered(vec![(alice.id, Vec::new())]))];
        let d = store.dir().to_path_buf();
        store
            .write(move |tx| queue::record_delivery(tx, &d, &msg, &out, &[]))
            .unwrap();
        let uids: Vec<u32> = store
            .messages(inbox.id)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, vec![1, 2, 3]);
    }
}
