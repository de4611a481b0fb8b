//! Store reads from async tasks. A session never reads SQLite on a tokio worker thread:
//! it hands the read to one of the store's reader threads and awaits the answer, so that a
//! slow disk holds up that session only, never the other sessions on the same worker.

use golub_store::{Error as StoreError, Result, Store};

/// Runs `f` on one of the store's reader threads and waits for its result. Every read `f`
/// makes through the store runs on that thread; put all the reads of one decision into
/// one `f`, so the decision costs one hand-off.
pub async fn read<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.submit_read(f, move |r| {
        let _ = tx.send(r);
    });
    rx.await.unwrap_or(Err(StoreError::ReadersGone))
}

/// Runs the write `job` in the store's next group commit and waits for the commit,
/// without blocking the runtime's thread.
pub async fn write<T: Send + 'static>(
    store: &Store,
    job: impl FnOnce(&mut golub_store::Tx<'_>) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.submit(job, move |r| {
        let _ = tx.send(r);
    });
    rx.await.unwrap_or(Err(StoreError::WriterGone))
}
