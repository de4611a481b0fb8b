//! Shared run control: the message budget, the deadline, and the stop flag.
//!
//! Sessions ask [`Control::claim`] before each unit of work (an SMTP message
//! or a POP3 round); it says no once the budget is spent, the time limit has
//! passed, or the run was stopped. Failures in a row across all sessions are
//! counted, and too many of them stop the run.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::report::Stop;

const RUNNING: u8 = 0;
const TIME_LIMIT: u8 = 1;
const CONSECUTIVE_ERRORS: u8 = 2;
const ABORTED: u8 = 3;

/// State shared by all sessions of one run.
#[derive(Debug)]
pub struct Control {
    /// Next sequence number to hand out; doubles as the count of claims made.
    next: AtomicU64,
    /// Claims allowed in total.
    budget: u64,
    /// No claim succeeds at or after this instant.
    deadline: Instant,
    /// Why the run stopped, or `RUNNING`; the first reason set wins.
    state: AtomicU8,
    /// Failures since the last success, over all sessions.
    consecutive: AtomicU32,
    /// Failures in a row that stop the run.
    max_consecutive: u32,
}

impl Control {
    /// Allows `budget` claims until `deadline`, stopping after `max_consecutive` failures in a row.
    pub fn new(budget: u64, deadline: Instant, max_consecutive: u32) -> Self {
        Control {
            next: AtomicU64::new(0),
            budget,
            deadline,
            state: AtomicU8::new(RUNNING),
            consecutive: AtomicU32::new(0),
            max_consecutive: max_consecutive.max(1),
        }
    }

    /// Hands out the next sequence number, or `None` when the session must stop.
    pub fn claim(&self) -> Option<u64> {
        if self.stopped() {
            return None;
        }
        if Instant::now() >= self.deadline {
            self.stop(TIME_LIMIT);
            return None;
        }
        // A failed fetch_update means the budget is spent.
        self.next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.budget).then_some(n + 1)
            })
            .ok()
    }

    /// Records a success, which resets the failures-in-a-row count.
    pub fn succeeded(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
    }

    /// Records a failure; stops the run when there were too many in a row.
    pub fn failed(&self) {
        let n = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.max_consecutive {
            self.stop(CONSECUTIVE_ERRORS);
        }
    }

    /// Stops every session at its next claim, for a fatal error.
    pub fn abort(&self) {
        self.stop(ABORTED);
    }

    /// True once any stop reason is set.
    pub fn stopped(&self) -> bool {
        self.state.load(Ordering::Relaxed) != RUNNING
    }

    /// Why the run ended, as far as the report is concerned.
    pub fn outcome(&self) -> Stop {
        match self.state.load(Ordering::Relaxed) {
            TIME_LIMIT => Stop::TimeLimit,
            CONSECUTIVE_ERRORS => Stop::ConsecutiveErrors,
            _ => Stop::Completed,
        }
    }

    fn stop(&self, why: u8) {
        let _ = self
            .state
            .compare_exchange(RUNNING, why, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn claims_stop_at_the_budget() {
        let c = Control::new(3, later(), 10);
        assert_eq!(
            (0..5).map(|_| c.claim()).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2), None, None]
        );
        assert_eq!(c.outcome(), Stop::Completed);
    }

    #[test]
    fn passed_deadline_stops_with_time_limit() {
        let c = Control::new(3, Instant::now(), 10);
        assert_eq!(c.claim(), None);
        assert_eq!(c.outcome(), Stop::TimeLimit);
    }

    #[test]
    fn failures_in_a_row_stop_but_a_success_resets() {
        let c = Control::new(100, later(), 3);
        c.failed();
        c.failed();
        c.succeeded();
        c.failed();
        c.failed();
        assert!(c.claim().is_some());
        c.failed();
        assert_eq!(c.claim(), None);
        assert_eq!(c.outcome(), Stop::ConsecutiveErrors);
    }
}
