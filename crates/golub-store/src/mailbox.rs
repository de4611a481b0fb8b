//! Mailboxes in the IMAP model (RFC 9051): per folder UIDVALIDITY, UIDNEXT and
//! HIGHESTMODSEQ; per message a UID (strictly ascending, never reused), internal date,
//! size, flags and modseq. A message is a small per-copy prefix (`Return-Path:`,
//! `Delivered-To:`) followed by the shared body blob.

use crate::blob::{self, BlobId};
use crate::{Error, Result, Store, Tx, unix_now};
use rusqlite::{OptionalExtension, params};
use std::path::Path;

/// The folders every new user gets, with their RFC 6154 special-use attribute.
const DEFAULT_FOLDERS: &[(&str, &str)] = &[
    ("INBOX", ""),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// One folder's IMAP state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: i64,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    pub special_use: String,
    pub subscribed: bool,
}

/// One message's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub blob_id: BlobId,
    pub size: u64,
    pub internal_date: i64,
    pub flags: String,
    pub modseq: u64,
}

/// A fresh UIDVALIDITY: the creation time, or one more than the last one handed out if
/// that is not below it. A folder created again under a name it had before (after a DELETE
/// or a RENAME, or for a user removed and added again) so never gets an old value back
/// (RFC 9051 §2.3.1.1), even within the same second.
pub(crate) fn next_uidvalidity(tx: &mut Tx<'_>) -> Result<u32> {
    let now = (unix_now() as u64).clamp(1, u32::MAX as u64) as i64;
    let v: i64 = tx
        .conn()
        .prepare_cached(
            "UPDATE uidvalidity SET last = MIN(MAX(last + 1, ?1), 4294967295) WHERE id = 1
             RETURNING last",
        )?
        .query_row([now], |r| r.get(0))?;
    Ok(v as u32)
}

/// Gives a folder a new HIGHESTMODSEQ (one more) and returns it: the modseq of every
/// message one operation changes there.
pub(crate) fn bump_modseq(tx: &mut Tx<'_>, folder_id: i64) -> Result<u64> {
    let m: Option<i64> = tx
        .conn()
        .prepare_cached(
            "UPDATE folders SET highestmodseq = highestmodseq + 1 WHERE id = ?1
             RETURNING highestmodseq",
        )?
        .query_row([folder_id], |r| r.get(0))
        .optional()?;
    m.map(|m| m as u64)
        .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))
}

/// Records that `uid` left folder `folder_id` at `modseq` (for QRESYNC's VANISHED).
pub(crate) fn record_vanished(
    tx: &mut Tx<'_>,
    folder_id: i64,
    uid: u32,
    modseq: u64,
) -> Result<()> {
    tx.conn()
        .prepare_cached(
            "INSERT OR REPLACE INTO vanished (folder_id, uid, modseq) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![folder_id, uid as i64, modseq as i64])?;
    Ok(())
}

pub(crate) fn create_default_folders(tx: &mut Tx<'_>, user_id: i64) -> Result<()> {
    // The new folders share one UIDVALIDITY: it only has to differ between folders of the
    // same name.
    let uidvalidity = next_uidvalidity(tx)? as i64;
    for (name, special) in DEFAULT_FOLDERS {
        tx.conn().prepare_cached("INSERT INTO folders (user_id, name, uidvalidity, uidnext, highestmodseq, special_use)
             VALUES (?1, ?2, ?3, 1, 1, ?4)")?.execute(params![user_id, name, uidvalidity, special],
        )?;
        tx.conn()
            .prepare_cached("INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?1, ?2)")?
            .execute(params![user_id, name])?;
    }
    Ok(())
}

/// Appends a copy of blob `blob_id` to a user's folder. The caller accounts for the
/// copy's reference on the blob (several copies and the queue's release are one update).
/// Returns the new UID.
pub(crate) fn append(
    tx: &mut Tx<'_>,
    user_id: i64,
    folder: &str,
    blob_id: BlobId,
    blob_size: u64,
    prefix: &[u8],
    internal_date: i64,
) -> Result<u32> {
    let row: Option<(i64, i64, i64)> = tx
        .conn()
        .prepare_cached(
            "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
             WHERE user_id = ?1 AND name = ?2
             RETURNING id, uidnext - 1, highestmodseq",
        )?
        .query_row(params![user_id, folder], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let (folder_id, uid, modseq) =
        row.ok_or_else(|| Error::NotFound(format!("folder {folder} of user {user_id}")))?;
    tx.conn()
        .prepare_cached(
            "INSERT INTO messages (folder_id, uid, blob_id, prefix, size, internal_date, modseq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            folder_id,
            uid,
            blob_id.0,
            prefix,
            (blob_size + prefix.len() as u64) as i64,
            internal_date,
            modseq
        ])?;
    Ok(uid as u32)
}

pub(crate) fn remove_all_messages(tx: &mut Tx<'_>, dir: &Path, user_id: i64) -> Result<()> {
    let blobs: Vec<i64> = {
        let mut stmt = tx.conn().prepare(
            "SELECT m.blob_id FROM messages m JOIN folders f ON m.folder_id = f.id
             WHERE f.user_id = ?1",
        )?;
        let rows = stmt.query_map([user_id], |r| r.get(0))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()?
    };
    tx.conn()
        .prepare_cached(
            "DELETE FROM messages WHERE folder_id IN (SELECT id FROM folders WHERE user_id = ?1)",
        )?
        .execute([user_id])?;
    for b in blobs {
        blob::release(tx, dir, BlobId(b))?;
    }
    Ok(())
}

pub(crate) fn folder_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Folder> {
    Ok(Folder {
        id: r.get(0)?,
        name: r.get(1)?,
        uidvalidity: r.get::<_, i64>(2)? as u32,
        uidnext: r.get::<_, i64>(3)? as u32,
        highestmodseq: r.get::<_, i64>(4)? as u64,
        special_use: r.get(5)?,
        subscribed: r.get(6)?,
    })
}

impl Store {
    /// A user's folders, INBOX first.
    pub fn folders(&self, user_id: i64) -> Result<Vec<Folder>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed
                 FROM folders WHERE user_id = ?1 ORDER BY name != 'INBOX', name",
            )?;
            let rows = stmt.query_map([user_id], folder_row)?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    pub fn folder(&self, user_id: i64, name: &str) -> Result<Option<Folder>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed
                 FROM folders WHERE user_id = ?1 AND name = ?2",
            )?
            .query_row(params![user_id, name], folder_row)
            .optional()?)
        })
    }

    /// The metadata of the messages `uids` (ascending) of a folder, in UID order; UIDs
    /// that are not there are left out. One range query per run of the list, so a FETCH
    /// of a few messages in a large folder reads only those rows.
    pub fn message_meta(&self, folder_id: i64, uids: &[u32]) -> Result<Vec<MessageMeta>> {
        let Some((&first, &last)) = uids.first().zip(uids.last()) else {
            return Ok(Vec::new());
        };
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT uid, blob_id, size, internal_date, flags, modseq
                 FROM messages WHERE folder_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
            )?;
            let rows = stmt.query_map(params![folder_id, first as i64, last as i64], |r| {
                Ok(MessageMeta {
                    uid: r.get::<_, i64>(0)? as u32,
                    blob_id: BlobId(r.get(1)?),
                    size: r.get::<_, i64>(2)? as u64,
                    internal_date: r.get(3)?,
                    flags: r.get(4)?,
                    modseq: r.get::<_, i64>(5)? as u64,
                })
            })?;
            let mut out = Vec::with_capacity(uids.len());
            let mut wanted = uids.iter().peekable();
            for row in rows {
                let m = row?;
                while wanted.next_if(|&&u| u < m.uid).is_some() {}
                if wanted.next_if(|&&u| u == m.uid).is_some() {
                    out.push(m);
                }
            }
            Ok(out)
        })
    }

    /// For SEARCH on headers: the metadata of the messages `uids` (ascending) with their
    /// header section as a client sees it (the per-copy prefix, then the body's header
    /// block), read without the rest of the body. `None` where the header block is not
    /// known (a body kept in a file, or stored before it was tracked): read the content.
    pub fn message_headers(
        &self,
        folder_id: i64,
        uids: &[u32],
    ) -> Result<Vec<(MessageMeta, Option<Vec<u8>>)>> {
        self.header_rows(folder_id, uids, false)
    }

    /// As [`Store::message_headers`], with only the [`crate::SUMMARY_FIELDS`] of the
    /// body's header (after the per-copy prefix, then a blank line): what SEARCH on those
    /// fields needs, a few hundred octets a message. `None` where they are not known.
    pub fn message_summaries(
        &self,
        folder_id: i64,
        uids: &[u32],
    ) -> Result<Vec<(MessageMeta, Option<Vec<u8>>)>> {
        self.header_rows(folder_id, uids, true)
    }

    fn header_rows(
        &self,
        folder_id: i64,
        uids: &[u32],
        summary: bool,
    ) -> Result<Vec<(MessageMeta, Option<Vec<u8>>)>> {
        let Some((&first, &last)) = uids.first().zip(uids.last()) else {
            return Ok(Vec::new());
        };
        self.read(|c| {
            let mut stmt = c.prepare_cached(if summary {
                "SELECT m.uid, m.blob_id, m.size, m.internal_date, m.flags, m.modseq, m.prefix,
                        h.summary
                 FROM messages m LEFT JOIN blob_headers h ON h.blob_id = m.blob_id
                 WHERE m.folder_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid"
            } else {
                "SELECT m.uid, m.blob_id, m.size, m.internal_date, m.flags, m.modseq, m.prefix,
                        h.header_len
                 FROM messages m LEFT JOIN blob_headers h ON h.blob_id = m.blob_id
                 WHERE m.folder_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid"
            })?;
            let mut rows = stmt.query(params![folder_id, first as i64, last as i64])?;
            let mut out = Vec::with_capacity(uids.len());
            let mut wanted = uids.iter().peekable();
            while let Some(r) = rows.next()? {
                let uid = r.get::<_, i64>(0)? as u32;
                while wanted.next_if(|&&u| u < uid).is_some() {}
                if wanted.next_if(|&&u| u == uid).is_none() {
                    continue;
                }
                let m = MessageMeta {
                    uid,
                    blob_id: BlobId(r.get(1)?),
                    size: r.get::<_, i64>(2)? as u64,
                    internal_date: r.get(3)?,
                    flags: r.get(4)?,
                    modseq: r.get::<_, i64>(5)? as u64,
                };
                let mut header: Vec<u8> = r.get(6)?;
                let known = if summary {
                    match r.get_ref(7)? {
                        rusqlite::types::ValueRef::Blob(fields) => {
                            header.extend_from_slice(fields);
                            header.extend_from_slice(b"\r\n");
                            true
                        }
                        _ => false,
                    }
                } else {
                    match r.get::<_, Option<i64>>(7)? {
                        // Incremental blob I/O reads the header's pages only, not the body's.
                        Some(n) if n >= 0 => {
                            let blob =
                                c.blob_open(rusqlite::MAIN_DB, "blobs", "data", m.blob_id.0, true)?;
                            let start = header.len();
                            header.resize(start + n as usize, 0);
                            blob.read_at_exact(&mut header[start..], 0)?;
                            true
                        }
                        _ => false,
                    }
                };
                out.push((m, known.then_some(header)));
            }
            Ok(out)
        })
    }

    /// The messages of a folder in UID order.
    pub fn messages(&self, folder_id: i64) -> Result<Vec<MessageMeta>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT uid, blob_id, size, internal_date, flags, modseq
                 FROM messages WHERE folder_id = ?1 ORDER BY uid",
            )?;
            let rows = stmt.query_map([folder_id], |r| {
                Ok(MessageMeta {
                    uid: r.get::<_, i64>(0)? as u32,
                    blob_id: BlobId(r.get(1)?),
                    size: r.get::<_, i64>(2)? as u64,
                    internal_date: r.get(3)?,
                    flags: r.get(4)?,
                    modseq: r.get::<_, i64>(5)? as u64,
                })
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    /// The full content of one message, as a client receives it: prefix then body.
    pub fn message_content(&self, folder_id: i64, uid: u32) -> Result<Vec<u8>> {
        let dir = self.dir().to_path_buf();
        self.read(|c| {
            let row: Option<(Vec<u8>, i64)> = c
                .prepare_cached(
                    "SELECT prefix, blob_id FROM messages WHERE folder_id = ?1 AND uid = ?2",
                )?
                .query_row(params![folder_id, uid as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let (mut prefix, blob_id) =
                row.ok_or_else(|| Error::NotFound(format!("message {uid}")))?;
            prefix.extend_from_slice(&blob::read_blob(c, &dir, BlobId(blob_id))?);
            Ok(prefix)
        })
    }

    /// Removes messages from a folder for good (POP3 UPDATE, IMAP EXPUNGE). The removal
    /// is one change: the folder's HIGHESTMODSEQ goes up by one, and each removed UID is
    /// recorded as vanished at that modseq.
    pub fn expunge(&self, folder_id: i64, uids: Vec<u32>) -> Result<usize> {
        let dir = self.dir().to_path_buf();
        self.write(move |tx| {
            let mut removed = 0;
            let mut modseq = None;
            for uid in uids {
                let blob: Option<i64> = tx
                    .conn()
                    .prepare_cached(
                        "DELETE FROM messages WHERE folder_id = ?1 AND uid = ?2 RETURNING blob_id",
                    )?
                    .query_row(params![folder_id, uid as i64], |r| r.get(0))
                    .optional()?;
                if let Some(b) = blob {
                    blob::release(tx, &dir, BlobId(b))?;
                    let m = match modseq {
                        Some(m) => m,
                        None => *modseq.insert(bump_modseq(tx, folder_id)?),
                    };
                    record_vanished(tx, folder_id, uid, m)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }
}
