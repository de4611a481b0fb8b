//! The reader threads: a few threads, each owning one read-only connection, that run the
//! reads handed to [`crate::Store::submit_read`]. An async server must not wait for SQLite
//! (or the disk beneath it) on its runtime's worker threads; it hands the read here and
//! waits for the completion instead, as it does for the writer.
//!
//! The threads take reads from one shared queue, so a slow read holds up only its own
//! thread. The queue is a mutex and a condition variable: a thread that finds it empty
//! sleeps at once rather than spinning, and a read wakes a thread only if one sleeps (on
//! two cores, a spinning reader takes the CPU from the sessions it serves).
//!
//! While a read runs, every [`crate::Store::read`] it makes on its store uses the thread's
//! own connection (kept in a thread-local), so the store's ordinary read methods work
//! unchanged inside it and keep their prepared statements from one read to the next.
//!
//! How it fails: a read that panics is reported to its caller as [`crate::Error::Internal`]
//! and a completion that panics is logged; neither stops the thread. Should every thread be
//! gone, a submitted read is dropped unrun with its completion, and the caller's channel
//! says so.

use crate::writer::panic_message;
use rusqlite::Connection;
use std::cell::OnceCell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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

/// The reads waiting for a thread.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    /// Signalled when a read arrives for an idle thread, or the store is closed.
    ready: Condvar,
}

#[derive(Default)]
struct State {
    tasks: VecDeque<Task>,
    /// Threads waiting for a read: only then is there one to wake.
    idle: usize,
    /// The store is gone: the threads finish what is queued and stop.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Tasks never run under the lock, so a panic cannot leave the state half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next read, waiting for one; `None` once the store is closed and all are done.
    fn next(&self) -> Option<Task> {
        let mut state = self.lock();
        loop {
            if let Some(task) = state.tasks.pop_front() {
                return Some(task);
            }
            if state.closed {
                return None;
            }
            state.idle += 1;
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
            state.idle -= 1;
        }
    }
}

/// The queue into the reader threads; they stop once it is dropped and empty.
pub(crate) struct Readers {
    queue: Arc<Queue>,
    /// Threads still running; with none, a read would wait forever.
    running: Arc<AtomicUsize>,
}

impl Readers {
    /// Starts one thread per connection, for the store with id `store`.
    pub fn start(store: u64, conns: Vec<Connection>) -> std::io::Result<Readers> {
        let queue = Arc::new(Queue::default());
        let running = Arc::new(AtomicUsize::new(0));
        let readers = Readers {
            queue: queue.clone(),
            running: running.clone(),
        };
        for (i, conn) in conns.into_iter().enumerate() {
            let (queue, stopped) = (queue.clone(), running.clone());
            running.fetch_add(1, Ordering::SeqCst);
            let spawned = std::thread::Builder::new()
                .name(format!("golub-store-reader-{i}"))
                .spawn(move || {
                    OWN.with(|own| {
                        let _ = own.set(Rc::new(Own { store, conn }));
                    });
                    run(&queue);
                    stopped.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                running.fetch_sub(1, Ordering::SeqCst);
                // Dropping `readers` stops the threads already started.
                return Err(e);
            }
        }
        Ok(readers)
    }

    /// Queues `task` for the next free reader thread.
    pub fn submit(&self, task: Task) {
        if self.running.load(Ordering::SeqCst) == 0 {
            // Every reader thread has died: dropping the task drops its completion
            // unrun, and the caller's channel reports that the readers are gone.
            return;
        }
        let mut state = self.queue.lock();
        state.tasks.push_back(task);
        let wake = state.idle > state.tasks.len() - 1;
        drop(state);
        if wake {
            self.queue.ready.notify_one();
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
    }
}

fn run(queue: &Queue) {
    while let Some(task) = queue.next() {
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
