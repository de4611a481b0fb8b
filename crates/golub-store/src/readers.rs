//! The reader threads: a few threads, each owning one read-only connection, that run the
//! reads handed to [`crate::Store::submit_read`]. An async server must not wait for SQLite
//! (or the disk beneath it) on its runtime's worker threads; it hands the read here and
//! waits for the completion instead, as it does for the writer.
//!
//! The threads take reads from one shared queue, so a slow read holds up only its own
//! thread. While a read runs, every [`crate::Store::read`] it makes on its store uses the
//! thread's own connection (kept in a thread-local), so the store's ordinary read methods
//! work unchanged inside it and keep their prepared statements from one read to the next.
//!
//! How it fails: a read that panics is reported to its caller as [`crate::Error::Internal`]
//! and a completion that panics is logged; neither stops the thread. Should every thread be
//! gone, a submitted read is dropped unrun with its completion, and the caller's channel
//! says so.

use crate::writer::panic_message;
use rusqlite::Connection;
use std::cell::OnceCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

/// One submitted read with its completion, ready to run.
pub(crate) type Task = Box<dyn FnOnce() + Send>;

/// A reader thread's connection and the store it reads.
pub(crate) struct Own {
    store: u64,
    conn: Connection,
}

impl Own {
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

thread_local! {
    /// Set once when a reader thread starts; empty on every other thread.
    static OWN: OnceCell<Rc<Own>> = const { OnceCell::new() };
}

/// The connection of the reader thread this runs on, if it is one of `store`'s.
pub(crate) fn own_connection(store: u64) -> Option<Rc<Own>> {
    OWN.with(|own| own.get().filter(|o| o.store == store).cloned())
}

/// The queue into the reader threads; they stop once it is dropped and empty.
pub(crate) struct Readers {
    sender: crossbeam_channel::Sender<Task>,
}

impl Readers {
    /// Starts one thread per connection, for the store with id `store`.
    pub fn start(store: u64, conns: Vec<Connection>) -> std::io::Result<Readers> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Task>();
        for (i, conn) in conns.into_iter().enumerate() {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("golub-store-reader-{i}"))
                .spawn(move || {
                    OWN.with(|own| {
                        let _ = own.set(Rc::new(Own { store, conn }));
                    });
                    run(receiver);
                })?;
        }
        Ok(Readers { sender })
    }

    /// Queues `task` for the next free reader thread.
    pub fn submit(&self, task: Task) {
        // A send fails only if every reader thread has died; dropping the task drops its
        // completion unrun, and the caller's channel reports that the readers are gone.
        let _ = self.sender.send(task);
    }
}

fn run(receiver: crossbeam_channel::Receiver<Task>) {
    while let Ok(task) = receiver.recv() {
        // AssertUnwindSafe is sound here: the task is consumed by the call, and the only
        // state it shares with this thread is the connection, which a panic leaves usable
        // (rusqlite resets its statements as they are dropped while unwinding); a read
        // transaction left open is ended below.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(task)) {
            let what = panic_message(payload.as_ref());
            tracing::error!(panic = %what, "store: a read completion panicked");
        }
        OWN.with(|own| {
            if let Some(own) = own.get()
                && !own.conn.is_autocommit()
                && let Err(e) = own.conn.execute_batch("ROLLBACK")
            {
                tracing::error!(error = %e, "store: cannot end a reader's stale transaction");
            }
        });
    }
}
