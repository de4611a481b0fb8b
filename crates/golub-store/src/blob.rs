//! Message bodies. A body is stored once, however many mailboxes hold it, and carries a
//! reference count: the queue entry holds one reference, each delivered copy another.
//! Small bodies live in the database; large ones are files under `blobs/`, fsync'd (file
//! and directory) before any transaction refers to them.
//!
//! A large body can also be written as it arrives ([`Store::create_body`]): it grows as
//! `blobs/tmp-NAME` and is renamed to `blobs/NAME` only once it is whole and on stable
//! storage, so a body cut off by an aborted transaction or a crash never looks like a
//! stored one. Opening the store removes what a crash left of such files.

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

/// A stored body, ready to be read: see [`Store::blob_source`].
#[derive(Debug)]
pub enum BlobSource {
    Inline(Vec<u8>),
    File(PathBuf),
}

static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Names of bodies still being written start so; nothing refers to them.
pub(crate) const PARTIAL_PREFIX: &str = "tmp-";

/// A fresh body file name, as `blobs/NAME`.
fn new_relative() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("blobs/{nanos:x}-{}-{n}", std::process::id())
}

/// A body file being written as it arrives (blocking I/O: use it off the async runtime).
/// [`finish`](BlobWriter::finish) makes it a [`BodyRef`]; dropped before that, the file is
/// removed.
#[derive(Debug)]
pub struct BlobWriter {
    file: Option<std::fs::File>,
    dir: PathBuf,
    /// `blobs/NAME` once finished.
    relative: String,
    size: u64,
}

impl BlobWriter {
    fn partial_path(&self) -> PathBuf {
        partial_path(&self.dir, &self.relative)
    }

    /// Appends `data` as it is.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Err(Error::Invalid("body file already finished".into()));
        };
        file.write_all(data).map_err(Error::from_io)?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// Octets written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Puts the body on stable storage under its final name: fsync the file, rename it,
    /// fsync the directory. On error the file is removed.
    pub fn finish(mut self) -> Result<BodyRef> {
        let Some(file) = self.file.take() else {
            return Err(Error::Invalid("body file already finished".into()));
        };
        let partial = self.partial_path();
        let done = self.dir.join(&self.relative);
        let result = file
            .sync_all()
            .and_then(|()| std::fs::rename(&partial, &done))
            .and_then(|()| std::fs::File::open(self.dir.join("blobs"))?.sync_all());
        drop(file);
        if let Err(e) = result {
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(&done);
            return Err(Error::from_io(e));
        }
        Ok(BodyRef::File {
            relative: std::mem::take(&mut self.relative),
            size: self.size,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(self.partial_path());
        }
    }
}

fn partial_path(dir: &Path, relative: &str) -> PathBuf {
    let name = relative.strip_prefix("blobs/").unwrap_or(relative);
    dir.join("blobs").join(format!("{PARTIAL_PREFIX}{name}"))
}

/// Removes the partial body files a crash left under `blobs/` (at open, before any
/// session runs).
pub(crate) fn remove_partial_files(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir.join("blobs")).map_err(Error::from_io)?;
    for entry in entries {
        let entry = entry.map_err(Error::from_io)?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(PARTIAL_PREFIX)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

impl Store {
    /// Turns body bytes into a [`BodyRef`]: bodies over the inline limit are written to a
    /// file and fsync'd here, so call this off the async runtime.
    pub fn prepare_body(&self, data: Vec<u8>) -> Result<BodyRef> {
        if data.len() <= self.options().inline_body_limit {
            return Ok(BodyRef::Inline(data));
        }
        let relative = new_relative();
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

    /// Starts a body file to be written as the body arrives (blocking: call it off the
    /// async runtime). Until [`BlobWriter::finish`], it is a partial file that nothing
    /// refers to and that check-store does not count.
    pub fn create_body(&self) -> Result<BlobWriter> {
        let mut w = BlobWriter {
            file: None,
            dir: self.dir().to_path_buf(),
            relative: new_relative(),
            size: 0,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(w.partial_path())
            .map_err(Error::from_io)?;
        w.file = Some(file);
        Ok(w)
    }

    /// Removes the file of a [`BodyRef`] whose transaction failed.
    pub fn discard_body(&self, body: &BodyRef) {
        if let BodyRef::File { relative, .. } = body {
            let _ = std::fs::remove_file(self.dir().join(relative));
        }
    }

    /// Reads at most the first `max` octets of a body (for looking at its header
    /// section without holding a large message in memory).
    pub fn read_blob_prefix(&self, id: BlobId, max: usize) -> Result<Vec<u8>> {
        let dir = self.dir().to_path_buf();
        self.read(|c| {
            let row: Option<(Option<Vec<u8>>, Option<String>)> = c
                .prepare_cached("SELECT substr(data, 1, ?2), path FROM blobs WHERE id = ?1")?
                .query_row(params![id.0, max as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match row {
                Some((Some(data), _)) => Ok(data),
                Some((None, Some(path))) => {
                    use std::io::Read;
                    let mut out = Vec::new();
                    std::fs::File::open(dir.join(path))
                        .and_then(|f| f.take(max as u64).read_to_end(&mut out))
                        .map_err(Error::Io)?;
                    Ok(out)
                }
                _ => Err(Error::NotFound(format!("blob {}", id.0))),
            }
        })
    }

    /// Where a body's content is: in memory (a small body, read from the database) or a
    /// file to stream from, so that a large body is never read whole.
    pub fn blob_source(&self, id: BlobId) -> Result<BlobSource> {
        let dir = self.dir().to_path_buf();
        self.read(|c| {
            let row: Option<(Option<Vec<u8>>, Option<String>)> = c
                .prepare_cached("SELECT data, path FROM blobs WHERE id = ?1")?
                .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match row {
                Some((Some(data), _)) => Ok(BlobSource::Inline(data)),
                Some((None, Some(path))) => Ok(BlobSource::File(dir.join(path))),
                _ => Err(Error::NotFound(format!("blob {}", id.0))),
            }
        })
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
    let c = tx.conn();
    let id = match body {
        BodyRef::Inline(data) => {
            c.prepare_cached("INSERT INTO blobs (size, refcount, data) VALUES (?1, 1, ?2)")?
                .execute(params![data.len() as i64, data])?;
            let id = c.last_insert_rowid();
            if let Some(n) = header_len(data) {
                c.prepare_cached(
                    "INSERT INTO blob_headers (blob_id, header_len, summary) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id, n as i64, summary(&data[..n])])?;
            }
            id
        }
        BodyRef::File { relative, size } => {
            c.prepare_cached("INSERT INTO blobs (size, refcount, path) VALUES (?1, 1, ?2)")?
                .execute(params![*size as i64, relative])?;
            c.last_insert_rowid()
        }
    };
    Ok(BlobId(id))
}

/// The header fields kept in `blob_headers.summary`: those of IMAP's ENVELOPE (RFC 3501
/// §7.4.2), which are also what SEARCH's FROM, TO, CC, BCC, SUBJECT and SENT* keys read.
pub const SUMMARY_FIELDS: [&str; 10] = [
    "Date",
    "Subject",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "In-Reply-To",
    "Message-ID",
];

/// The [`SUMMARY_FIELDS`] of a header section, each field as written (folding and line
/// break kept), in their order in the header.
pub(crate) fn summary(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            keep = line.iter().position(|&b| b == b':').is_some_and(|colon| {
                let name = line[..colon].trim_ascii_end();
                SUMMARY_FIELDS
                    .iter()
                    .any(|f| f.as_bytes().eq_ignore_ascii_case(name))
            });
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The most header octets kept track of; a longer header section is not cached.
const MAX_HEADER: usize = 64 * 1024;

/// The length of a message's header section with the blank line that ends it (the whole
/// message if it has no body), if within [`MAX_HEADER`].
pub(crate) fn header_len(data: &[u8]) -> Option<usize> {
    let window = &data[..data.len().min(MAX_HEADER + 4)];
    let mut i = 0;
    while let Some(p) = window[i..].iter().position(|&b| b == b'\n') {
        let lf = i + p;
        // A line that is empty (LF or CRLF right after the previous LF) ends the header.
        if lf == 0
            || (lf >= 1 && window[lf - 1] == b'\n')
            || (lf >= 2 && window[lf - 1] == b'\r' && window[lf - 2] == b'\n')
        {
            return (lf < MAX_HEADER + 4).then_some(lf + 1);
        }
        if lf == 1 && window[0] == b'\r' {
            return Some(2);
        }
        i = lf + 1;
    }
    (data.len() <= MAX_HEADER).then_some(data.len())
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
