//! WAL checkpoints off the write path. The writer never checkpoints (its connection has
//! `wal_autocheckpoint = 0`): copying the WAL back into the database and syncing it would
//! stall every waiting session for the length of a disk flush or more. This thread does
//! it instead, with PASSIVE checkpoints that never block the writer, and a RESTART (which
//! waits for the writer briefly) only when the WAL has grown large.

use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// How often the WAL is checked.
const INTERVAL: Duration = Duration::from_millis(200);
/// WAL frames (pages) past which a RESTART checkpoint lets the WAL start over.
const RESTART_FRAMES: i64 = 16_384;

/// Keeps the checkpoint thread alive; it stops when this is dropped.
pub(crate) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    pub fn start(conn: Connection) -> std::io::Result<Checkpointer> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("golub-store-checkpoint".into())
            .spawn(move || run(conn, stopped))?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

fn run(conn: Connection, stopped: mpsc::Receiver<()>) {
    loop {
        match stopped.recv_timeout(INTERVAL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The store is gone: a last checkpoint leaves a small WAL behind.
            _ => {
                let _ = checkpoint(&conn, "PASSIVE");
                return;
            }
        }
        match checkpoint(&conn, "PASSIVE") {
            Ok((frames, _)) if frames > RESTART_FRAMES => {
                if let Err(e) = checkpoint(&conn, "RESTART") {
                    tracing::debug!(error = %e, "store: restart checkpoint did not complete");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "store: checkpoint did not complete"),
        }
    }
}
