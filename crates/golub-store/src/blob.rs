//! Message bodies. A body is stored once, however many mailboxes hold it, and carries a
//! reference count: the queue entry holds one reference, each delivered copy another.
//! Small bodies live in the database; large ones are files under `blobs/`, fsync'd (file
//! and directory) before any transaction refers to them.

use crate::{Error, Result, Store, Tx};
use rusqlite::{Connection, OptionalExtension, params};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies a stored body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobId(pub i64);

/// A body ready to be referenced by a transaction.
#[derive(Debug)]
pub enum BodyRef {
    /// Small enough to go inside the database with the transaction.
    Inline(Vec<u8>),
    /// Already on stable storage as a file under the data directory.
    File { relative: String, size: u64 },
}

impl BodyRef {
    pub fn size(&self) -> u64 {
        match self {
            BodyRef::Inline(v) => v.len() as u64,
            BodyRef::File { size, .. } => *size,
        }
    }
}

static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Turns body bytes into a [`BodyRef`]: bodies over the inline limit are written to a
    /// file and fsync'd here, so call this off the async runtime.
    pub fn prepare_body(&self, data: Vec<u8>) -> Result<BodyRef> {
        if data.len() <= self.options().inline_body_limit {
            return Ok(BodyRef::Inline(data));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let relative = format!("blobs/{nanos:x}-{}-{n}", std::process::id());
        let path = self.dir().join(&relative);
        let written = write_synced(&path, &data);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(BodyRef::File {
            relative,
            size: data.len() as u64,
        })
    }

    /// Removes the file of a [`BodyRef`] whose transaction failed.
    pub fn discard_body(&self, body: &BodyRef) {
        if let BodyRef::File { relative, .. } = body {
            let _ = std::fs::remove_file(self.dir().join(relative));
        }
    }

    /// Reads a whole body.
    pub fn read_blob(&self, id: BlobId) -> Result<Vec<u8>> {
        let dir = self.dir().to_path_buf();
        self.read(|c| read_blob(c, &dir, id))
    }
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(Error::from_io)?;
    f.write_all(data).map_err(Error::from_io)?;
    f.sync_all().map_err(Error::from_io)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(Error::from_io)?;
    }
    Ok(())
}

pub(crate) fn read_blob(conn: &Connection, dir: &Path, id: BlobId) -> Result<Vec<u8>> {
    let row: Option<(Option<Vec<u8>>, Option<String>)> = conn
        .prepare_cached("SELECT data, path FROM blobs WHERE id = ?1")?
        .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        Some((Some(data), _)) => Ok(data),
        Some((None, Some(path))) => std::fs::read(dir.join(path)).map_err(Error::Io),
        _ => Err(Error::NotFound(format!("blob {}", id.0))),
    }
}

/// Stores a body with one reference (the queue entry's).
pub(crate) fn insert(tx: &mut Tx<'_>, body: &BodyRef) -> Result<BlobId> {
    match body {
        BodyRef::Inline(data) => tx
            .conn()
            .prepare_cached("INSERT INTO blobs (size, refcount, data) VALUES (?1, 1, ?2)")?
            .execute(params![data.len() as i64, data])?,
        BodyRef::File { relative, size } => tx
            .conn()
            .prepare_cached("INSERT INTO blobs (size, refcount, path) VALUES (?1, 1, ?2)")?
            .execute(params![*size as i64, relative])?,
    };
    Ok(BlobId(tx.conn().last_insert_rowid()))
}

pub(crate) fn add_refs(tx: &mut Tx<'_>, id: BlobId, n: i64) -> Result<()> {
    tx.conn()
        .prepare_cached("UPDATE blobs SET refcount = refcount + ?2 WHERE id = ?1")?
        .execute(params![id.0, n])?;
    Ok(())
}

/// Changes the reference count by `delta` in one statement; when no reference is left
/// the body goes (its file after the commit).
pub(crate) fn adjust_refs(tx: &mut Tx<'_>, dir: &Path, id: BlobId, delta: i64) -> Result<()> {
    match delta {
        0 => Ok(()),
        d if d > 0 => add_refs(tx, id, d),
        d => drop_refs(tx, dir, id, -d),
    }
}

/// Drops one reference; the last one removes the body (its file after the commit).
pub(crate) fn release(tx: &mut Tx<'_>, dir: &Path, id: BlobId) -> Result<()> {
    drop_refs(tx, dir, id, 1)
}

fn drop_refs(tx: &mut Tx<'_>, dir: &Path, id: BlobId, n: i64) -> Result<()> {
    let left: Option<(i64, Option<String>)> = tx
        .conn()
        .prepare_cached(
            "UPDATE blobs SET refcount = refcount - ?2 WHERE id = ?1 RETURNING refcount, path",
        )?
        .query_row([id.0, n], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((left, path)) = left
        && left <= 0
    {
        tx.conn()
            .prepare_cached("DELETE FROM blobs WHERE id = ?1")?
            .execute([id.0])?;
        if let Some(p) = path {
            tx.remove_after_commit(PathBuf::from(dir).join(p));
        }
    }
    Ok(())
}
