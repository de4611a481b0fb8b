//! The durable queue: each accepted message is one row (envelope and body reference) plus
//! one row per recipient with its delivery state. A message leaves the queue when every
//! recipient is delivered or bounced; until then, a crash at any moment resumes where the
//! last commit left it.

use crate::blob::{self, BlobId, BodyRef};
use crate::{Error, Result, Store, Tx, mailbox, unix_now};
use golub_types::QueueId;
use rusqlite::params;

/// A message to put into the queue.
#[derive(Debug)]
pub struct NewMessage {
    pub id: QueueId,
    /// The reverse path without angle brackets, empty for `<>`.
    pub reverse_path: String,
    /// Canonical recipient addresses, in RCPT order, with their DSN requests.
    pub recipients: Vec<NewRecipient>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    pub body: BodyRef,
    /// DSN `ENVID` (RFC 3461 §4.4), decoded; empty when not given.
    pub envid: String,
    /// DSN `RET`: `FULL`, `HDRS`, or empty when not given.
    pub ret: String,
}

/// One recipient of a [`NewMessage`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecipient {
    /// The canonical address.
    pub address: String,
    /// DSN `NOTIFY` (RFC 3461 §4.1) as `NEVER` or e.g. `SUCCESS,FAILURE`; empty when not
    /// given.
    pub notify: String,
    /// DSN `ORCPT` (RFC 3461 §4.2) as `addr-type;address`, decoded; empty when not given.
    pub orcpt: String,
}

/// A recipient without DSN requests.
impl From<String> for NewRecipient {
    fn from(address: String) -> Self {
        NewRecipient {
            address,
            ..NewRecipient::default()
        }
    }
}

impl From<&str> for NewRecipient {
    fn from(address: &str) -> Self {
        NewRecipient::from(address.to_string())
    }
}

/// Where one recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcptStatus {
    Pending = 0,
    Deferred = 1,
    Delivered = 2,
    Bounced = 3,
}

impl RcptStatus {
    fn from_i64(v: i64) -> RcptStatus {
        match v {
            1 => RcptStatus::Deferred,
            2 => RcptStatus::Delivered,
            3 => RcptStatus::Bounced,
            _ => RcptStatus::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub idx: u32,
    pub address: String,
    /// The address as the sender gave it, before alias expansion.
    pub orig_address: String,
    pub status: RcptStatus,
    pub attempts: u32,
    /// When the next attempt is due (Unix seconds).
    pub next_attempt: i64,
    /// The last attempt's reply, with its enhanced code.
    pub last_reply: String,
    /// DSN `NOTIFY` as [`NewRecipient::notify`]; empty when not given.
    pub notify: String,
    /// DSN `ORCPT` as [`NewRecipient::orcpt`]; empty when not given.
    pub orcpt: String,
}

/// A queue entry with the recipients that still need work.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: QueueId,
    pub blob_id: BlobId,
    pub blob_size: u64,
    pub reverse_path: String,
    pub smtputf8: bool,
    pub received_at: i64,
    /// DSN `ENVID`, decoded; empty when not given.
    pub envid: String,
    /// DSN `RET` (`FULL` or `HDRS`); empty when not given.
    pub ret: String,
    /// The sender has been sent a delay warning for this message. Set it before
    /// [`Store::record`] to keep that fact with the entry.
    pub warned: bool,
    /// Put on hold by the administrator: not tried until released.
    pub held: bool,
    pub recipients: Vec<QueuedRecipient>,
}

/// What happened to one recipient in a delivery attempt.
#[derive(Debug, Clone)]
pub enum RcptOutcome {
    /// Copies went into these users' INBOXes: `(user_id, prefix)`.
    Delivered(Vec<(i64, Vec<u8>)>),
    /// Try again at `next_attempt` (Unix seconds).
    Deferred { reply: String, next_attempt: i64 },
    /// Failed for good; the caller enqueues the bounce report in the same job.
    Bounced { reply: String },
    /// Replaced by new recipients of the same message (alias targets elsewhere), plus
    /// local copies made on the way.
    Expanded {
        copies: Vec<(i64, Vec<u8>)>,
        added: Vec<String>,
    },
}

/// Which entries [`Store::flush_messages`] makes due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flush {
    /// Every entry.
    All,
    /// One entry.
    Message(QueueId),
    /// Recipients at this domain (case does not matter), in whatever entries.
    Domain(String),
}

/// Queues `msg`; returns the entry as it now stands, so that delivery can start on it
/// without reading it back.
pub(crate) fn enqueue(tx: &mut Tx<'_>, msg: &NewMessage) -> Result<QueuedMessage> {
    if msg.recipients.is_empty() {
        return Err(Error::Invalid("a queued message needs a recipient".into()));
    }
    let blob_id = blob::insert(tx, &msg.body)?;
    let now = unix_now();
    tx.conn()
        .prepare_cached(
            "INSERT INTO queue (id, blob_id, reverse_path, smtputf8, eight_bit, received_at,
                envid, ret)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            msg.id.0 as i64,
            blob_id.0,
            msg.reverse_path,
            msg.smtputf8,
            msg.eight_bit,
            now,
            msg.envid,
            msg.ret
        ])?;
    let mut stmt = tx.conn().prepare_cached(
        "INSERT INTO queue_rcpts (queue_id, idx, address, orig_address, status, next_attempt,
            notify, orcpt)
         VALUES (?1, ?2, ?3, ?3, 0, ?4, ?5, ?6)",
    )?;
    for (i, r) in msg.recipients.iter().enumerate() {
        stmt.execute(params![
            msg.id.0 as i64,
            i as i64,
            r.address,
            now,
            r.notify,
            r.orcpt
        ])?;
    }
    Ok(QueuedMessage {
        id: msg.id,
        blob_id,
        blob_size: msg.body.size(),
        reverse_path: msg.reverse_path.clone(),
        smtputf8: msg.smtputf8,
        received_at: now,
        envid: msg.envid.clone(),
        ret: msg.ret.clone(),
        warned: false,
        held: false,
        recipients: msg
            .recipients
            .iter()
            .enumerate()
            .map(|(i, r)| QueuedRecipient {
                idx: i as u32,
                address: r.address.clone(),
                orig_address: r.address.clone(),
                status: RcptStatus::Pending,
                attempts: 0,
                next_attempt: now,
                last_reply: String::new(),
                notify: r.notify.clone(),
                orcpt: r.orcpt.clone(),
            })
            .collect(),
    })
}

impl Store {
    /// Queues a message; `done` runs once it is on stable storage (or failed).
    /// A body file whose transaction fails is removed again.
    pub fn enqueue(
        &self,
        msg: NewMessage,
        done: impl FnOnce(Result<QueuedMessage>) + Send + 'static,
    ) {
        let file = match &msg.body {
            BodyRef::File { relative, .. } => Some(self.dir().join(relative)),
            BodyRef::Inline(_) => None,
        };
        self.submit(
            move |tx| enqueue(tx, &msg),
            move |r| {
                if let (Err(_), Some(f)) = (&r, file) {
                    let _ = std::fs::remove_file(f);
                }
                done(r)
            },
        );
    }

    /// Queue entries with a recipient due for an attempt at `now` (Unix seconds).
    pub fn due_messages(&self, now: i64, limit: usize) -> Result<Vec<QueuedMessage>> {
        let ids: Vec<i64> = self.read(|c| {
            // Held entries wait for `release_message`, however due their recipients are.
            let mut stmt = c.prepare(
                "SELECT DISTINCT r.queue_id FROM queue_rcpts r JOIN queue q ON q.id = r.queue_id
                 WHERE r.status IN (0, 1) AND r.next_attempt <= ?1 AND q.held = 0
                 ORDER BY r.queue_id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(m) = self.queued_message(QueueId(id as u64))? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// One queue entry with all its recipients, if it is still queued.
    pub fn queued_message(&self, id: QueueId) -> Result<Option<QueuedMessage>> {
        self.read(|c| read_entry(c, id))
    }

    /// Every queued message, for `golub queue list`.
    pub fn queue_entries(&self) -> Result<Vec<QueuedMessage>> {
        let ids: Vec<i64> = self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM queue ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(m) = self.queued_message(QueueId(id as u64))? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Number of recipients not yet delivered or bounced.
    pub fn queue_pending_count(&self) -> Result<u64> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT COUNT(*) FROM queue_rcpts WHERE status IN (0, 1)")?
                    .query_row([], |r| r.get::<_, i64>(0))? as u64,
            )
        })
    }

    /// Recipients in the queue by state, in the order pending, deferred, delivered, bounced
    /// (delivered and bounced ones stay until their whole entry is done). One indexed
    /// scan, cheap enough for every metrics scrape.
    pub fn queue_counts(&self) -> Result<[(RcptStatus, u64); 4]> {
        self.read(|c| {
            let mut counts = [
                (RcptStatus::Pending, 0),
                (RcptStatus::Deferred, 0),
                (RcptStatus::Delivered, 0),
                (RcptStatus::Bounced, 0),
            ];
            let mut stmt =
                c.prepare_cached("SELECT status, COUNT(*) FROM queue_rcpts GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (status, n) = row?;
                let status = RcptStatus::from_i64(status);
                if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                    slot.1 += n as u64;
                }
            }
            Ok(counts)
        })
    }

    /// Records a delivery attempt (see [`record_delivery`]); `done` runs after the commit.
    pub fn record(
        &self,
        msg: QueuedMessage,
        outcomes: Vec<(u32, RcptOutcome)>,
        also_enqueue: Vec<NewMessage>,
        done: impl FnOnce(Result<()>) + Send + 'static,
    ) {
        let dir = self.dir().to_path_buf();
        self.submit(
            move |tx| record_delivery(tx, &dir, &msg, &outcomes, &also_enqueue),
            done,
        );
    }

    /// Puts an entry on hold: delivery leaves it alone until [`Store::release_message`].
    /// False if there is no such entry.
    pub fn hold_message(&self, id: QueueId) -> Result<bool> {
        self.write(move |tx| {
            let n = tx
                .conn()
                .prepare_cached("UPDATE queue SET held = 1 WHERE id = ?1")?
                .execute([id.0 as i64])?;
            Ok(n > 0)
        })
    }

    /// Takes an entry off hold and makes its open recipients due now. False if there is
    /// no such entry.
    pub fn release_message(&self, id: QueueId) -> Result<bool> {
        self.write(move |tx| {
            let qid = id.0 as i64;
            let n = tx
                .conn()
                .prepare_cached("UPDATE queue SET held = 0 WHERE id = ?1")?
                .execute([qid])?;
            if n == 0 {
                return Ok(false);
            }
            tx.conn()
                .prepare_cached(
                    "UPDATE queue_rcpts SET next_attempt = ?2
                     WHERE queue_id = ?1 AND status IN (0, 1)",
                )?
                .execute(params![qid, unix_now()])?;
            Ok(true)
        })
    }

    /// Makes the open recipients of entries that are not on hold due now (`golub queue
    /// flush`, ETRN); returns how many recipients that touched.
    pub fn flush_messages(&self, filter: Flush) -> Result<u64> {
        self.write(move |tx| {
            let now = unix_now();
            let n = match &filter {
                Flush::All => tx
                    .conn()
                    .prepare_cached(
                        "UPDATE queue_rcpts SET next_attempt = ?1
                         WHERE status IN (0, 1)
                           AND queue_id IN (SELECT id FROM queue WHERE held = 0)",
                    )?
                    .execute([now])?,
                Flush::Message(id) => tx
                    .conn()
                    .prepare_cached(
                        "UPDATE queue_rcpts SET next_attempt = ?1
                         WHERE status IN (0, 1) AND queue_id = ?2
                           AND queue_id IN (SELECT id FROM queue WHERE held = 0)",
                    )?
                    .execute(params![now, id.0 as i64])?,
                // The address ends in "@domain": compare that suffix, so that no LIKE
                // wildcard in a domain can widen the match.
                Flush::Domain(domain) => tx
                    .conn()
                    .prepare_cached(
                        "UPDATE queue_rcpts SET next_attempt = ?1
                         WHERE status IN (0, 1)
                           AND lower(substr(address, length(address) - length(?2))) = '@' || ?2
                           AND queue_id IN (SELECT id FROM queue WHERE held = 0)",
                    )?
                    .execute(params![now, domain.to_ascii_lowercase()])?,
            };
            Ok(n as u64)
        })
    }

    /// Removes an entry with its recipients and drops the queue's reference to its body
    /// (the body goes with it unless a mailbox holds a copy). Returns the entry as it was,
    /// so that the caller can tell the sender; `None` if there was no such entry. A
    /// delivery of it in flight records nothing (see [`record_delivery`]).
    pub fn delete_message(&self, id: QueueId) -> Result<Option<QueuedMessage>> {
        let dir = self.dir().to_path_buf();
        self.write(move |tx| {
            let Some(msg) = read_entry(tx.conn(), id)? else {
                return Ok(None);
            };
            let qid = id.0 as i64;
            tx.conn()
                .prepare_cached("DELETE FROM queue_rcpts WHERE queue_id = ?1")?
                .execute([qid])?;
            tx.conn()
                .prepare_cached("DELETE FROM queue WHERE id = ?1")?
                .execute([qid])?;
            blob::release(tx, &dir, msg.blob_id)?;
            Ok(Some(msg))
        })
    }

    /// Group-commit counters: (transactions committed, jobs run).
    pub fn commit_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        let c = &self.inner.writer.counters;
        (
            c.commits.load(Ordering::Relaxed),
            c.jobs.load(Ordering::Relaxed),
        )
    }
}

/// Reads one queue entry with all its recipients (on a read connection or inside a write
/// job), if it is still queued.
fn read_entry(c: &rusqlite::Connection, id: QueueId) -> Result<Option<QueuedMessage>> {
    let mut stmt = c.prepare_cached(
        "SELECT q.blob_id, b.size, q.reverse_path, q.smtputf8, q.received_at, q.warned,
            q.envid, q.ret, q.held
         FROM queue q JOIN blobs b ON b.id = q.blob_id WHERE q.id = ?1",
    )?;
    let mut rows = stmt.query([id.0 as i64])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let mut msg = QueuedMessage {
        id,
        blob_id: BlobId(row.get(0)?),
        blob_size: row.get::<_, i64>(1)? as u64,
        reverse_path: row.get(2)?,
        smtputf8: row.get(3)?,
        received_at: row.get(4)?,
        warned: row.get(5)?,
        envid: row.get(6)?,
        ret: row.get(7)?,
        held: row.get(8)?,
        recipients: Vec::new(),
    };
    let mut stmt = c.prepare_cached(
        "SELECT idx, address, orig_address, status, attempts, next_attempt, last_reply,
            notify, orcpt
         FROM queue_rcpts
         WHERE queue_id = ?1 ORDER BY idx",
    )?;
    let rows = stmt.query_map([id.0 as i64], |r| {
        Ok(QueuedRecipient {
            idx: r.get::<_, i64>(0)? as u32,
            address: r.get(1)?,
            orig_address: r.get(2)?,
            status: RcptStatus::from_i64(r.get(3)?),
            attempts: r.get::<_, i64>(4)? as u32,
            next_attempt: r.get(5)?,
            last_reply: r.get(6)?,
            notify: r.get(7)?,
            orcpt: r.get(8)?,
        })
    })?;
    msg.recipients = rows.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Some(msg))
}

/// Applies one delivery attempt's outcomes atomically: mailbox copies, recipient states,
/// new recipients, and then, if nothing is left to do, the removal of the queue entry.
/// `also_enqueue` (bounce reports) is queued in the same transaction.
///
/// An entry that is gone by now (the administrator deleted it while it was being
/// delivered from a snapshot) is left alone: no copies, no reports, no reference changes,
/// since the deletion already dropped the queue's reference and told the sender.
pub fn record_delivery(
    tx: &mut Tx<'_>,
    dir: &std::path::Path,
    msg: &QueuedMessage,
    outcomes: &[(u32, RcptOutcome)],
    also_enqueue: &[NewMessage],
) -> Result<()> {
    let qid = msg.id.0 as i64;
    let queued = tx
        .conn()
        .prepare_cached("SELECT 1 FROM queue WHERE id = ?1")?
        .exists([qid])?;
    if !queued {
        return Ok(());
    }
    let now = unix_now();
    // The common case: this attempt settles every open recipient for good, so the entry
    // goes now and its recipients' states need not be written first.
    let settles = msg
        .recipients
        .iter()
        .filter(|r| matches!(r.status, RcptStatus::Pending | RcptStatus::Deferred))
        .all(|r| {
            outcomes.iter().any(|(i, o)| {
                *i == r.idx && matches!(o, RcptOutcome::Delivered(_) | RcptOutcome::Bounced { .. })
            })
        });
    let mut copies_made = 0i64;
    for (idx, outcome) in outcomes {
        let idx = *idx as i64;
        match outcome {
            RcptOutcome::Delivered(copies) => {
                for (user, prefix) in copies {
                    mailbox::append(tx, *user, "INBOX", msg.blob_id, msg.blob_size, prefix, now)?;
                    copies_made += 1;
                }
                if !settles {
                    set_status(tx, qid, idx, RcptStatus::Delivered, "", None)?;
                }
            }
            RcptOutcome::Deferred {
                reply,
                next_attempt,
            } => set_status(
                tx,
                qid,
                idx,
                RcptStatus::Deferred,
                reply,
                Some(*next_attempt),
            )?,
            RcptOutcome::Bounced { reply } => {
                if !settles {
                    set_status(tx, qid, idx, RcptStatus::Bounced, reply, None)?
                }
            }
            RcptOutcome::Expanded { copies, added } => {
                for (user, prefix) in copies {
                    mailbox::append(tx, *user, "INBOX", msg.blob_id, msg.blob_size, prefix, now)?;
                    copies_made += 1;
                }
                // The added recipients stand for the original one: they keep its original
                // address, and its DSN requests too. RFC 3461 §6.2.7 has an alias pass
                // NOTIFY and ORCPT on to its members and a mailing list (one that becomes
                // the new reverse path) drop them. Our lists are aliases with several
                // targets and keep the sender's reverse path, so every expansion is an
                // alias in that sense, and the requests are copied. (No "expanded" report
                // is made for NOTIFY=SUCCESS; the members' own outcomes are reported.)
                let (orig, notify, orcpt): (String, String, String) = tx
                    .conn()
                    .prepare_cached(
                        "SELECT orig_address, notify, orcpt FROM queue_rcpts
                         WHERE queue_id = ?1 AND idx = ?2",
                    )?
                    .query_row(params![qid, idx], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                let next: i64 = tx
                    .conn()
                    .prepare_cached(
                        "SELECT COALESCE(MAX(idx) + 1, 0) FROM queue_rcpts WHERE queue_id = ?1",
                    )?
                    .query_row([qid], |r| r.get(0))?;
                for (i, a) in added.iter().enumerate() {
                    tx.conn()
                        .prepare_cached(
                            "INSERT INTO queue_rcpts (queue_id, idx, address, orig_address, status,
                                next_attempt, notify, orcpt)
                             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)",
                        )?
                        .execute(params![qid, next + i as i64, a, orig, now, notify, orcpt])?;
                }
                set_status(tx, qid, idx, RcptStatus::Delivered, "expanded", None)?;
            }
        }
    }
    for m in also_enqueue {
        enqueue(tx, m)?;
    }
    let open: i64 = if settles {
        0
    } else {
        tx.conn()
            .prepare_cached(
                "SELECT COUNT(*) FROM queue_rcpts WHERE queue_id = ?1 AND status IN (0, 1)",
            )?
            .query_row([qid], |r| r.get(0))?
    };
    if open == 0 {
        tx.conn()
            .prepare_cached("DELETE FROM queue_rcpts WHERE queue_id = ?1")?
            .execute([qid])?;
        tx.conn()
            .prepare_cached("DELETE FROM queue WHERE id = ?1")?
            .execute([qid])?;
        // The copies' references come and the queue's goes: one update of the blob row
        // at most (none for a single copy), so its page is not rewritten for nothing.
        blob::adjust_refs(tx, dir, msg.blob_id, copies_made - 1)?;
    } else {
        blob::adjust_refs(tx, dir, msg.blob_id, copies_made)?;
        if msg.warned {
            tx.conn()
                .prepare_cached("UPDATE queue SET warned = 1 WHERE id = ?1 AND warned = 0")?
                .execute([qid])?;
        }
    }
    Ok(())
}

fn set_status(
    tx: &mut Tx<'_>,
    qid: i64,
    idx: i64,
    status: RcptStatus,
    reply: &str,
    next_attempt: Option<i64>,
) -> Result<()> {
    tx.conn()
        .prepare_cached(
            "UPDATE queue_rcpts SET status = ?3, last_reply = ?4, attempts = attempts + 1,
                next_attempt = COALESCE(?5, next_attempt)
         WHERE queue_id = ?1 AND idx = ?2",
        )?
        .execute(params![qid, idx, status as i64, reply, next_attempt])?;
    Ok(())
}
