//! Everything Golub keeps on disk: the directory (domains, users, aliases), the queue
//! (envelopes and per-recipient state), the mailboxes (folders, UIDs, flags, modseq) and the
//! message bodies (blobs).
//!
//! The embedded backend is one SQLite database in WAL mode under the data directory. All
//! writes go through a single writer thread that batches the writes of concurrent callers
//! into one transaction (group commit): one fsync covers a whole batch, and each caller is
//! told the outcome only after the commit is on stable storage. Reads use read-only
//! connections and never wait for the writer: [`Store::read`] on the caller's thread, or
//! [`Store::submit_read`] on one of a few reader threads, for async callers that must not
//! block.
//!
//! Bodies up to a threshold are stored inside the database; larger ones are files under
//! `blobs/`, written and fsync'd before the transaction that references them commits.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod blob;
mod check;
mod checkpoint;
mod directory;
mod error;
mod imap;
mod mailbox;
mod queue;
mod readers;
mod schema;
mod writer;

pub use blob::{BlobId, BlobSource, BlobWriter, BodyRef, SUMMARY_FIELDS};
pub use check::{CheckReport, Finding};
pub use directory::{AliasEntry, PasswordHashes, Recipient, User, hash_password, password_checks};
pub use error::Error;
pub use imap::{
    Changes, CopyOutcome, FlagMode, FolderStatus, MessageFlags, MessageReader, StoreOutcome,
    canonical_flags,
};
pub use mailbox::{Folder, MessageMeta};
pub use queue::{
    Flush, NewMessage, NewRecipient, QueuedMessage, QueuedRecipient, RcptOutcome, RcptStatus,
    record_delivery,
};
pub use writer::Tx;

use rusqlite::{Connection, OpenFlags};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Told after each write transaction commits: how long the COMMIT took (the fsync) and how
/// many jobs the batch held. The server feeds its metrics with it; the store knows nothing
/// of metrics.
#[derive(Clone)]
pub struct CommitObserver(pub Arc<dyn Fn(Duration, usize) + Send + Sync>);

impl std::fmt::Debug for CommitObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitObserver")
    }
}

/// Tunables of the store, with safe defaults.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bodies larger than this are kept as files rather than inside the database.
    pub inline_body_limit: usize,
    /// The most write jobs one transaction takes.
    pub max_batch: usize,
    /// A cap on the database's size in bytes (0: none). Writes past it fail as if the
    /// disk were full, and nothing of the failed transaction is kept.
    pub max_database_size: u64,
    /// Called by the writer after every successful COMMIT.
    pub commit_observer: Option<CommitObserver>,
    /// How many threads run [`Store::submit_read`]'s reads, each on its own connection
    /// (at least one).
    pub reader_threads: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            inline_body_limit: 1024 * 1024,
            max_batch: 1024,
            max_database_size: 0,
            commit_observer: None,
            reader_threads: 2,
        }
    }
}

/// A handle to the store; cheap to clone, shared by every task.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tells this store's reader threads from another store's.
    id: u64,
    dir: PathBuf,
    db_path: PathBuf,
    options: StoreOptions,
    writer: writer::Writer,
    /// Idle connections of [`Store::read`] on callers' threads.
    readers: Mutex<Vec<Connection>>,
    reader_threads: readers::Readers,
    _checkpointer: checkpoint::Checkpointer,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Every hot statement is prepared once and kept (rusqlite's default keeps 16).
    conn.set_prepared_statement_cache_capacity(128);
    // WAL + synchronous=FULL: every commit is fsync'd before it returns, which is what the
    // 250 after DATA promises (a crash after the reply loses nothing).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(dir, StoreOptions::default())
    }

    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(dir.join("blobs")).map_err(Error::from_io)?;
        blob::remove_partial_files(&dir)?;
        let db_path = dir.join("golub.db");
        let conn = open_connection(&db_path, false)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        schema::migrate(&conn)?;
        if options.max_database_size > 0 {
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages = (options.max_database_size / page_size.max(512) as u64).max(1) as i64;
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        // Checkpoints run on their own thread and connection, never in the writer.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = checkpoint::Checkpointer::start(open_connection(&db_path, false)?)
            .map_err(Error::Io)?;
        let writer =
            writer::Writer::start(conn, options.max_batch, options.commit_observer.clone())?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let conns = (0..options.reader_threads.max(1))
            .map(|_| open_connection(&db_path, true))
            .collect::<Result<Vec<_>>>()?;
        let reader_threads = readers::Readers::start(id, conns).map_err(Error::Io)?;
        Ok(Store {
            inner: Arc::new(Inner {
                id,
                dir,
                db_path,
                options,
                writer,
                readers: Mutex::new(Vec::new()),
                reader_threads,
                _checkpointer: checkpointer,
            }),
        })
    }

    /// The data directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Runs `f` on a read connection, on the calling thread. Reads see every committed
    /// write. On one of this store's reader threads, `f` gets that thread's connection.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if let Some(own) = readers::own_connection(self.inner.id) {
            return f(own.conn());
        }
        let conn = {
            let mut pool = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
            pool.pop()
        };
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.inner.db_path, true)?,
        };
        let out = f(&conn);
        let mut pool = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 16 {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` on one of the store's reader threads; `done` gets its result there. Every
    /// read `f` makes through the store (its ordinary methods, or [`Store::read`]) uses that
    /// thread's connection. For async callers: neither call waits for the disk, and the
    /// reads of concurrent callers run side by side on the threads. A panic in `f` is
    /// reported to `done` as [`Error::Internal`]; the thread goes on. Should the reader
    /// threads be gone, `done` is dropped unrun.
    pub fn submit_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let store = self.clone();
        self.inner.reader_threads.submit(Box::new(move || {
            // AssertUnwindSafe is sound here: `f` is consumed by the call, and after a
            // panic the caller gets an error, never a value `f` may have left half-made.
            let result = match panic::catch_unwind(AssertUnwindSafe(|| f(&store))) {
                Ok(r) => r,
                Err(payload) => {
                    let what = writer::panic_message(payload.as_ref());
                    tracing::error!(panic = %what, "store: a read panicked");
                    Err(Error::Internal(format!("a read panicked: {what}")))
                }
            };
            done(result);
        }));
    }

    /// Queues `job` for the writer; `done` gets its result once the batch holding it has
    /// committed (or failed). `job` runs inside its own savepoint: if it fails (or panics,
    /// which it reports as [`Error::Internal`]), only its changes are undone, the rest of
    /// the batch commits. `job` never runs outside a transaction: if the batch cannot
    /// begin, or its savepoint cannot be opened, it does not run and `done` gets the error.
    pub fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        self.inner.writer.submit(job, done);
    }

    /// Like [`Store::submit`], blocking the calling thread until the commit.
    pub fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(job, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().map_err(|_| Error::WriterGone)?
    }

    /// Runs SQLite's integrity check; `Ok(vec!["ok"])` when the database is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }
}

/// Seconds since the Unix epoch, for timestamps kept in the store.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod imap_tests;
#[cfg(test)]
mod tests;
