//! The single writer: one thread owns the read-write connection and runs every write job.
//!
//! Jobs that arrive while a commit is in progress wait in the channel; the next batch takes
//! all of them (up to `max_batch`) into one transaction, so one fsync acknowledges many
//! messages (group commit). Each job runs in its own savepoint so that one job's failure
//! undoes only its own changes. Completions run only after COMMIT has returned, which with
//! `synchronous=FULL` means the batch is on stable storage.

use crate::{CommitObserver, Error, Result};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// A write transaction as a job sees it.
pub struct Tx<'a> {
    conn: &'a Connection,
    remove_after_commit: Vec<PathBuf>,
}

impl<'a> Tx<'a> {
    /// The connection, inside the batch's transaction and the job's savepoint.
    pub fn conn(&self) -> &Connection {
        self.conn
    }

    /// Removes `path` once the transaction has committed (a file no row refers to any more).
    pub(crate) fn remove_after_commit(&mut self, path: PathBuf) {
        self.remove_after_commit.push(path);
    }
}

type Completion = Box<dyn FnOnce(std::result::Result<(), &Error>) + Send>;
type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Completion) + Send>;

/// Counters for benchmarks: how well group commit batches.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub jobs: AtomicU64,
}

pub(crate) struct Writer {
    sender: mpsc::Sender<Job>,
    pub counters: Arc<Counters>,
}

impl Writer {
    pub fn start(
        conn: Connection,
        max_batch: usize,
        observer: Option<CommitObserver>,
    ) -> Result<Writer> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("golub-store-writer".into())
            .spawn(move || run(conn, receiver, max_batch.max(1), &c, observer))
            .map_err(Error::Io)?;
        Ok(Writer { sender, counters })
    }

    pub fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let boxed: Job = Box::new(move |tx| {
            let result = job(tx);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit| match (commit, result) {
                (Ok(()), r) => done(r),
                (Err(_), Err(e)) => done(Err(e)),
                (Err(e), Ok(_)) => done(Err(duplicate(e))),
            });
            (ok, completion)
        });
        // A send fails only if the writer thread has died; dropping the job drops `done`
        // unrun, and the caller's channel reports that the writer is gone.
        let _ = self.sender.send(boxed);
    }
}

/// Copies an error for each job of a failed batch.
fn duplicate(e: &Error) -> Error {
    match e {
        Error::StorageFull => Error::StorageFull,
        Error::WriterGone => Error::WriterGone,
        other => Error::Io(std::io::Error::other(other.to_string())),
    }
}

fn run(
    conn: Connection,
    receiver: mpsc::Receiver<Job>,
    max_batch: usize,
    counters: &Counters,
    observer: Option<CommitObserver>,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters
            .jobs
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        run_batch(&conn, batch, observer.as_ref());
    }
}

/// Runs one statement through the statement cache: the writer runs the same few
/// transaction-control statements thousands of times a second.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run_batch(conn: &Connection, batch: Vec<Job>, observer: Option<&CommitObserver>) {
    let mut tx = Tx {
        conn,
        remove_after_commit: Vec::new(),
    };
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let e = Error::from(e);
        tracing::error!(error = %e, "store: cannot begin a write transaction");
        for job in batch {
            // The job's own statements fail too (no transaction is open for it to use), but
            // what matters is that its completion hears of the failure.
            let (_, completion) = job(&mut tx);
            completion(Err(&e));
        }
        return;
    }
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = exec(conn, "SAVEPOINT job");
        let (ok, completion) = job(&mut tx);
        if savepoint.is_ok() {
            if !ok {
                let _ = exec(conn, "ROLLBACK TO job");
            }
            let _ = exec(conn, "RELEASE job");
        }
        completions.push(completion);
    }
    let commit_started = std::time::Instant::now();
    match exec(conn, "COMMIT") {
        Ok(()) => {
            if let Some(o) = observer {
                (o.0)(commit_started.elapsed(), completions.len());
            }
            for path in tx.remove_after_commit.drain(..) {
                let _ = std::fs::remove_file(path);
            }
            for c in completions {
                c(Ok(()));
            }
        }
        Err(e) => {
            let e = Error::from(e);
            tracing::error!(error = %e, "store: commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            for c in completions {
                c(Err(&e));
            }
        }
    }
}
