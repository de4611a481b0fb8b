//! The single writer: one thread owns the read-write connection and runs every write job.
//!
//! Jobs that arrive while a commit is in progress wait in the channel; the next batch takes
//! all of them (up to `max_batch`) into one transaction, so one fsync acknowledges many
//! messages (group commit). Each job runs in its own savepoint so that one job's failure
//! undoes only its own changes. Completions run only after COMMIT has returned, which with
//! `synchronous=FULL` means the batch is on stable storage.
//!
//! How it fails: a job never runs outside the batch's transaction. If BEGIN fails, no job of
//! the batch runs; if a job's SAVEPOINT fails, that job does not run; if a failed job's
//! changes cannot be undone, the whole batch is rolled back and every job of it fails. Each
//! caller hears of the failure through its completion (callers retry, or answer 4xx).
//! A job that panics is undone and failed like a job that returned an error; a completion
//! that panics is logged. Neither stops the writer.

use crate::{CommitObserver, Error, Result};
use rusqlite::Connection;
use std::panic::{self, AssertUnwindSafe};
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

/// One submitted write. The job is kept apart from the caller's completion, so that the
/// completion can hear of a failure without the job ever running.
trait Work: Send {
    /// Runs the job (once) inside its savepoint and keeps its result; true if it succeeded.
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Makes `e` the job's result, in place of running it (or after it panicked).
    fn fail(&mut self, e: Error);
    /// The job's own error, once it has run and failed.
    fn error(&self) -> Option<&Error>;
    /// Tells the caller the outcome: the job's own result if the batch committed, else the
    /// batch's error (or the job's own error, if it had one).
    fn complete(self: Box<Self>, commit: std::result::Result<(), &Error>);
}

struct Submitted<T, J, D> {
    job: Option<J>,
    result: Option<Result<T>>,
    done: D,
}

impl<T, J, D> Work for Submitted<T, J, D>
where
    T: Send,
    J: FnOnce(&mut Tx<'_>) -> Result<T> + Send,
    D: FnOnce(Result<T>) + Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let Some(job) = self.job.take() else {
            return false;
        };
        let result = job(tx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn fail(&mut self, e: Error) {
        self.job = None;
        self.result = Some(Err(e));
    }

    fn error(&self) -> Option<&Error> {
        self.result.as_ref()?.as_ref().err()
    }

    fn complete(self: Box<Self>, commit: std::result::Result<(), &Error>) {
        let Submitted { result, done, .. } = *self;
        let result = match (commit, result) {
            (Ok(()), Some(r)) => r,
            // Every job of a committed batch has run or failed; this is a writer bug.
            (Ok(()), None) => Err(Error::Internal("a write job was skipped".into())),
            (Err(_), Some(Err(own))) => Err(own),
            (Err(e), _) => Err(duplicate(e)),
        };
        done(result);
    }
}

/// Counters for benchmarks: how well group commit batches.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub jobs: AtomicU64,
}

/// Failures that tests inject into the writer's transaction control: each flag makes the
/// next such statement fail once, without running. Outside tests this is empty and
/// [`Faults::inject`] is always false, so the writer's hot path is unchanged.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    #[cfg(test)]
    pub fail_next_begin: std::sync::atomic::AtomicBool,
    #[cfg(test)]
    pub fail_next_savepoint: std::sync::atomic::AtomicBool,
    #[cfg(test)]
    pub fail_next_rollback_to: std::sync::atomic::AtomicBool,
}

impl Faults {
    /// Whether `sql` is to fail this time instead of running.
    #[cfg(test)]
    fn inject(&self, sql: &str) -> bool {
        let flag = match sql {
            "BEGIN IMMEDIATE" => &self.fail_next_begin,
            "SAVEPOINT job" => &self.fail_next_savepoint,
            "ROLLBACK TO job" => &self.fail_next_rollback_to,
            _ => return false,
        };
        flag.swap(false, Ordering::SeqCst)
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn inject(&self, _sql: &str) -> bool {
        false
    }
}

pub(crate) struct Writer {
    sender: mpsc::Sender<Box<dyn Work>>,
    pub counters: Arc<Counters>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub faults: Arc<Faults>,
}

impl Writer {
    pub fn start(
        conn: Connection,
        max_batch: usize,
        observer: Option<CommitObserver>,
    ) -> Result<Writer> {
        let (sender, receiver) = mpsc::channel::<Box<dyn Work>>();
        let counters = Arc::new(Counters::default());
        let faults = Arc::new(Faults::default());
        let (c, f) = (counters.clone(), faults.clone());
        std::thread::Builder::new()
            .name("golub-store-writer".into())
            .spawn(move || {
                // Jobs and completions cannot panic out of `run`; should the writer itself,
                // say so: every later write fails with WriterGone. (AssertUnwindSafe: all
                // the closure holds is dropped with it, nothing is used after a panic.)
                let writer = AssertUnwindSafe(|| {
                    run(conn, receiver, max_batch.max(1), &c, &f, observer)
                });
                if let Err(payload) = panic::catch_unwind(writer) {
                    let what = panic_message(payload.as_ref());
                    tracing::error!(panic = %what, "store: the writer stopped, no write can succeed");
                }
            })
            .map_err(Error::Io)?;
        Ok(Writer {
            sender,
            counters,
            faults,
        })
    }

    pub fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let work: Box<dyn Work> = Box::new(Submitted {
            job: Some(job),
            result: None,
            done,
        });
        // A send fails only if the writer thread has died; dropping the job drops `done`
        // unrun, and the caller's channel reports that the writer is gone.
        let _ = self.sender.send(work);
    }
}

/// Copies an error for each job of a failed batch.
fn duplicate(e: &Error) -> Error {
    match e {
        Error::StorageFull => Error::StorageFull,
        Error::WriterGone => Error::WriterGone,
        Error::Internal(s) => Error::Internal(s.clone()),
        other => Error::Io(std::io::Error::other(other.to_string())),
    }
}

fn run(
    conn: Connection,
    receiver: mpsc::Receiver<Box<dyn Work>>,
    max_batch: usize,
    counters: &Counters,
    faults: &Faults,
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
        run_batch(&conn, faults, batch, observer.as_ref());
    }
}

/// Runs one transaction-control statement through the statement cache: the writer runs
/// the same few of them thousands of times a second.
fn control(conn: &Connection, faults: &Faults, sql: &str) -> Result<()> {
    if faults.inject(sql) {
        return Err(Error::from(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some(format!("injected failure of {sql}")),
        )));
    }
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn run_batch(
    conn: &Connection,
    faults: &Faults,
    mut batch: Vec<Box<dyn Work>>,
    observer: Option<&CommitObserver>,
) {
    if !conn.is_autocommit() {
        // An earlier rollback failed and left a transaction open; BEGIN would fail forever.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "store: cannot end a stale write transaction");
        }
    }
    if let Err(e) = control(conn, faults, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "store: cannot begin a write transaction");
        // No job runs: outside a transaction its statements would commit one by one.
        complete_all(batch, Err(&e));
        return;
    }
    let mut tx = Tx {
        conn,
        remove_after_commit: Vec::new(),
    };
    for work in batch.iter_mut() {
        if let Err(e) = run_job(&mut tx, faults, work.as_mut()) {
            // The transaction holds changes that should have been undone (or is gone).
            // Rather than re-run the good jobs in a new transaction, fail them all: the
            // batch is rolled back whole, and every caller retries or answers 4xx.
            tracing::error!(error = %e, "store: a write batch is broken, rolling it back");
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "store: cannot roll back a broken write batch");
            }
            complete_all(batch, Err(&e));
            return;
        }
    }
    let commit_started = std::time::Instant::now();
    match control(conn, faults, "COMMIT") {
        Ok(()) => {
            if let Some(o) = observer {
                (o.0)(commit_started.elapsed(), batch.len());
            }
            for path in tx.remove_after_commit.drain(..) {
                remove_unreferenced(&path);
            }
            complete_all(batch, Ok(()));
        }
        Err(e) => {
            tracing::error!(error = %e, "store: commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            complete_all(batch, Err(&e));
        }
    }
}

/// Removes a file that a committed transaction no longer refers to. A failure loses
/// nothing (the file is an orphan, which the store check finds and deletes), but it is
/// worth a warning: it may mean wrong permissions or a failing disk.
fn remove_unreferenced(path: &std::path::Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "store: unreferenced file already gone");
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "store: cannot remove an unreferenced file");
        }
    }
}

/// Runs one job in its own savepoint, undoing its changes if it fails. An `Err` means the
/// batch's transaction can no longer be trusted.
fn run_job(tx: &mut Tx<'_>, faults: &Faults, work: &mut dyn Work) -> Result<()> {
    if let Err(e) = control(tx.conn, faults, "SAVEPOINT job") {
        // Without its savepoint a failing job could not be undone alone: it does not run.
        tracing::error!(error = %e, "store: cannot open a savepoint, the job does not run");
        work.fail(e);
        return Ok(());
    }
    let removals = tx.remove_after_commit.len();
    // AssertUnwindSafe is sound here: after a panic nothing of the job is looked at again
    // (`run` took it out of `work`, and `work` now only gets an error result), its changes
    // to the database are undone by ROLLBACK TO below, and the paths it pushed onto `tx`
    // are truncated away. The connection itself stays usable: rusqlite's statements and
    // statement cache reset themselves when they are dropped during unwinding.
    let ok = match panic::catch_unwind(AssertUnwindSafe(|| work.run(tx))) {
        Ok(ok) => ok,
        Err(payload) => {
            let what = panic_message(payload.as_ref());
            tracing::error!(panic = %what, "store: a write job panicked, its changes are undone");
            work.fail(Error::Internal(format!("a write job panicked: {what}")));
            false
        }
    };
    if tx.conn.is_autocommit() {
        // The job's statements ended the transaction (SQLite rolls back by itself on some
        // errors, such as a full database): what ran before is gone, what follows would
        // not be inside a transaction. The job's error is the batch's.
        return Err(match work.error() {
            Some(e) => duplicate(e),
            None => Error::Internal("the write transaction ended inside a job".into()),
        });
    }
    if !ok {
        // The job's rows are undone, so the files it meant to remove are still wanted.
        tx.remove_after_commit.truncate(removals);
        control(tx.conn, faults, "ROLLBACK TO job")?;
    }
    control(tx.conn, faults, "RELEASE job")
}

fn complete_all(batch: Vec<Box<dyn Work>>, commit: std::result::Result<(), &Error>) {
    for work in batch {
        // AssertUnwindSafe is sound here: the completion is consumed by the call and the
        // writer shares nothing with it but a borrowed error, so a panic leaves no state
        // behind that anyone could see half-changed.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| work.complete(commit))) {
            let what = panic_message(payload.as_ref());
            tracing::error!(panic = %what, "store: a write completion panicked");
        }
    }
}

/// The text of a panic, when it has one.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
