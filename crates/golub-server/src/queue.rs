//! Queue ids, the hand-off from smtpd to the store (`enqueue` returns once the message
//! and its envelope are on stable storage), and the retry policy: when a deferred
//! recipient is tried again and when the queue gives up on it.

use golub_store::{Error as StoreError, NewMessage, QueuedMessage, Store};
use golub_types::QueueId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When to try a deferred recipient again, and when to stop (RFC 5321 §4.5.4.1: retry
/// for at least 4-5 days, at least 30 minutes apart after the first tries). Decisions
/// are a function of the recipient's state and a clock passed in, so they are tested
/// without waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The waits after the first, second, ... temporary failure; the last one repeats.
    pub schedule: Vec<Duration>,
    /// How long a message may wait in the queue before what is left is bounced.
    pub bounce_after: Duration,
    /// After how long the sender is told, once, that the message is still waiting;
    /// `None`: never.
    pub warn_after: Option<Duration>,
}

/// What happens to a recipient after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this time (Unix seconds).
    At(i64),
    /// The message has waited long enough: return it to the sender.
    GiveUp,
}

/// What becomes of a recipient after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Taken (2yz): done.
    Delivered,
    /// Refused for good (5yz): bounce.
    Failed,
    /// Refused for now (4yz, or no answer): try again at this time (Unix seconds).
    Deferred { next_attempt: i64 },
    /// Refused for now, but the message has waited `bounce_after`: bounce.
    Expired,
}

impl RetryPolicy {
    /// The decision for a recipient of a message received at `received_at`, tried
    /// `attempts` times before, whose attempt at `now` got a reply with `code` (a
    /// connection that failed counts as 4yz).
    pub fn decide(&self, received_at: i64, attempts: u32, code: u16, now: i64) -> Decision {
        match code {
            200..=299 => Decision::Delivered,
            500..=599 => Decision::Failed,
            _ => match self.after_failure(received_at, attempts, now) {
                Retry::At(next_attempt) => Decision::Deferred { next_attempt },
                Retry::GiveUp => Decision::Expired,
            },
        }
    }

    /// The wait after a temporary failure of a recipient tried `attempts` times before.
    pub fn wait(&self, attempts: u32) -> Duration {
        let last = self.schedule.len().saturating_sub(1);
        self.schedule
            .get((attempts as usize).min(last))
            .copied()
            .unwrap_or(Duration::from_secs(300))
            .max(Duration::from_secs(1))
    }

    /// True when a message received at `received_at` has waited its time at `now`.
    pub fn expired(&self, received_at: i64, now: i64) -> bool {
        now.saturating_sub(received_at) > self.bounce_after.as_secs() as i64
    }

    /// True when a message received at `received_at`, still waiting at `now` and not
    /// warned about yet, is due its delay warning.
    pub fn warning_due(&self, received_at: i64, now: i64, warned: bool) -> bool {
        match self.warn_after {
            Some(after) if !warned => {
                now.saturating_sub(received_at) >= after.as_secs() as i64
                    && !self.expired(received_at, now)
            }
            _ => false,
        }
    }

    /// The decision after a temporary failure at `now`.
    pub fn after_failure(&self, received_at: i64, attempts: u32, now: i64) -> Retry {
        if self.expired(received_at, now) {
            return Retry::GiveUp;
        }
        Retry::At(now.saturating_add(self.wait(attempts).as_secs() as i64))
    }
}

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

#[cfg(test)]
mod retry_tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: [300, 900, 1800, 3600].map(Duration::from_secs).to_vec(),
            bounce_after: Duration::from_secs(5 * 86400),
            warn_after: Some(Duration::from_secs(4 * 3600)),
        }
    }

    #[test]
    fn one_warning_after_warn_after_and_none_once_expired_or_turned_off() {
        let p = policy();
        let t0 = 1_000_000;
        let four_hours = 4 * 3600;
        assert!(!p.warning_due(t0, t0 + four_hours - 1, false));
        assert!(p.warning_due(t0, t0 + four_hours, false));
        assert!(!p.warning_due(t0, t0 + four_hours, true), "only once");
        assert!(
            !p.warning_due(t0, t0 + 6 * 86400, false),
            "expired: a bounce instead"
        );
        let off = RetryPolicy {
            warn_after: None,
            ..policy()
        };
        assert!(!off.warning_due(t0, t0 + 86400, false));
    }

    #[test]
    fn a_reply_decides_by_its_class_and_the_clock() {
        let p = policy();
        let t0 = 1_000_000;
        assert_eq!(p.decide(t0, 0, 250, t0), Decision::Delivered);
        assert_eq!(p.decide(t0, 0, 550, t0), Decision::Failed);
        assert_eq!(p.decide(t0, 5, 554, t0 + 9 * 86400), Decision::Failed);
        assert_eq!(
            p.decide(t0, 0, 451, t0 + 10),
            Decision::Deferred {
                next_attempt: t0 + 10 + 300
            }
        );
        assert_eq!(
            p.decide(t0, 1, 421, t0 + 400),
            Decision::Deferred {
                next_attempt: t0 + 400 + 900
            }
        );
        // 3yz where a final reply is due counts as temporary.
        assert!(matches!(
            p.decide(t0, 0, 354, t0),
            Decision::Deferred { .. }
        ));
        assert_eq!(p.decide(t0, 7, 451, t0 + 5 * 86400 + 1), Decision::Expired);
    }

    #[test]
    fn waits_follow_the_schedule_and_the_last_step_repeats() {
        let p = policy();
        let waits: Vec<u64> = (0..7).map(|a| p.wait(a).as_secs()).collect();
        assert_eq!(waits, [300, 900, 1800, 3600, 3600, 3600, 3600]);
        assert_eq!(p.wait(u32::MAX).as_secs(), 3600);
    }

    #[test]
    fn a_message_is_given_up_only_after_bounce_after() {
        let p = policy();
        let received = 1_000_000;
        assert_eq!(
            p.after_failure(received, 0, received),
            Retry::At(received + 300)
        );
        assert_eq!(
            p.after_failure(received, 2, received + 4000),
            Retry::At(received + 4000 + 1800)
        );
        let five_days = 5 * 86400;
        assert_eq!(
            p.after_failure(received, 100, received + five_days),
            Retry::At(received + five_days + 3600)
        );
        assert_eq!(
            p.after_failure(received, 100, received + five_days + 1),
            Retry::GiveUp
        );
        assert!(
            !p.expired(received, received - 10),
            "a clock step back is not expiry"
        );
    }
}
