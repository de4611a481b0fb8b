//! Queue ids and the hand-off from smtpd to the store: `enqueue` returns once the message
//! and its envelope are on stable storage, then tells the delivery stage about it.

use golub_store::{Error as StoreError, NewMessage, QueuedMessage, Store};
use golub_types::QueueId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static LAST_ID: AtomicU64 = AtomicU64::new(0);

/// A new queue id: milliseconds since the epoch in the high bits and a counter below, so
/// ids grow with time, stay unique across restarts and fit in SQLite's signed integer.
pub fn new_queue_id() -> QueueId {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let candidate = (millis & ((1 << 42) - 1)) << 20;
    let mut last = LAST_ID.load(Ordering::Relaxed);
    loop {
        let next = candidate.max(last + 1);
        match LAST_ID.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return QueueId(next),
            Err(seen) => last = seen,
        }
    }
}

/// Puts `msg` into the queue and waits for the commit (group-committed with every other
/// message arriving meanwhile). Returns the queue entry, for delivery.
pub async fn enqueue(store: &Store, msg: NewMessage) -> Result<QueuedMessage, StoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.enqueue(msg, move |r| {
        let _ = tx.send(r);
    });
    match rx.await {
        Ok(r) => r,
        Err(_) => Err(StoreError::WriterGone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids_are_unique_and_ascending() {
        let ids: Vec<QueueId> = (0..10_000).map(|_| new_queue_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|i| i.0 < i64::MAX as u64));
    }
}
