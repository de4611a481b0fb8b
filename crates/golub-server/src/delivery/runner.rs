//! The queue runner: one thread takes queue ids as smtpd commits them and scans the queue
//! for due retries, claims each message (one attempt at a time), resolves its recipients
//! against the directory ([`super::local`]) and chooses the transport: local ones go into
//! mailboxes, remote ones to outbound delivery ([`super::remote`]). Local outcomes are
//! committed as one job per message: the mailbox copies and the queue update commit
//! together, so a crash never delivers twice. Jobs are not awaited one by one; many are in
//! flight and share group commits.
//!
//! A thread rather than a task: all it does is read the store (due entries, the
//! directory), which no tokio worker is let do; the network side is on tokio.

use super::local::Expansion;
use super::{Core, LogLine, Notice, Reported, Settlement, wants_success};
use crate::dsn::ReportKind;
use golub_store::{QueuedMessage, RcptOutcome, RcptStatus, unix_now};
use golub_types::QueueId;
use std::collections::HashSet;
use std::sync::{Arc, mpsc};
use std::time::Instant;
use tracing::warn;

pub(super) struct Runner {
    core: Arc<Core>,
}

impl Runner {
    pub(super) fn new(core: Arc<Core>) -> Runner {
        Runner { core }
    }

    pub(super) fn run(self, receiver: mpsc::Receiver<Notice>) {
        let interval = self.core.config.scan_interval;
        self.scan();
        let mut last_scan = Instant::now();
        loop {
            match receiver.recv_timeout(interval) {
                Ok(Notice::Queued(id)) => self.process(id),
                Ok(Notice::Message(msg)) => self.deliver(*msg),
                Ok(Notice::Scan) => {
                    self.scan();
                    last_scan = Instant::now();
                }
                Ok(Notice::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if last_scan.elapsed() >= interval {
                self.scan();
                last_scan = Instant::now();
            }
        }
    }

    fn scan(&self) {
        loop {
            match self.core.store.due_messages(unix_now(), 1000) {
                Ok(batch) => {
                    let busy = batch.iter().all(|m| self.core.in_flight.contains(m.id));
                    let n = batch.len();
                    for msg in batch {
                        self.deliver(msg);
                    }
                    if n < 1000 || busy {
                        return;
                    }
                }
                Err(e) => {
                    warn!(error = %e, "queue scan failed");
                    return;
                }
            }
        }
    }

    fn process(&self, id: QueueId) {
        if self.core.in_flight.contains(id) {
            return;
        }
        match self.core.store.queued_message(id) {
            // On hold: only `golub queue release` sends it on.
            Ok(Some(msg)) if msg.held => {}
            Ok(Some(msg)) => self.deliver(msg),
            Ok(None) => {}
            Err(e) => warn!(queue_id = %id, error = %e, "cannot read queue entry; will retry"),
        }
    }

    fn deliver(&self, msg: QueuedMessage) {
        if !self.core.in_flight.claim(msg.id) {
            return;
        }
        let now = unix_now();
        let expired = self.core.config.retry.expired(msg.received_at, now);
        let mut outcomes = Vec::new();
        let mut failed: Vec<Reported> = Vec::new();
        let mut log: Vec<LogLine> = Vec::new();
        let mut remote: Vec<(u32, String)> = Vec::new();
        let mut succeeded: Vec<(ReportKind, Reported)> = Vec::new();
        // A user reached through several recipients (itself and a list, say) gets one copy.
        let mut delivered_users: HashSet<i64> = HashSet::new();
        let mut requeue = false;
        let local_line = |to: &str, status, reply: &str| LogLine {
            to: to.to_string(),
            status,
            reply: reply.to_string(),
            relay: "local".into(),
        };
        for r in &msg.recipients {
            let open = matches!(r.status, RcptStatus::Pending | RcptStatus::Deferred);
            if !open || r.next_attempt > now {
                continue;
            }
            let exp = match super::local::expand(&self.core, &r.address) {
                Ok(e) => e,
                Err(e) => {
                    warn!(queue_id = %msg.id, to = %r.address, error = %e, "directory lookup failed; deferring");
                    let mut e2 = Expansion::default();
                    e2.deferred.push((
                        r.address.clone(),
                        "4.3.0 temporary directory failure".into(),
                    ));
                    e2
                }
            };
            for (addr, reply) in &exp.failed {
                failed.push((r.idx, addr.clone(), reply.clone(), None));
            }
            let reached_users = !exp.users.is_empty();
            let copies: Vec<(i64, Vec<u8>)> = exp
                .users
                .iter()
                .filter(|u| delivered_users.insert(u.id))
                .map(|u| {
                    log.push(local_line(
                        &u.address,
                        "delivered",
                        "2.0.0 delivered to mailbox",
                    ));
                    if wants_success(&r.notify) {
                        succeeded.push((
                            ReportKind::Delivered,
                            (
                                r.idx,
                                u.address.clone(),
                                "2.0.0 delivered to mailbox".into(),
                                None,
                            ),
                        ));
                    }
                    (u.id, super::local::prefix(&msg.reverse_path, &u.address))
                })
                .collect();
            let outcome = if reached_users || !exp.remote.is_empty() {
                if exp.remote.is_empty() {
                    RcptOutcome::Delivered(copies)
                } else if exp.remote.len() == 1 && exp.remote[0] == r.address && copies.is_empty() {
                    // A remote recipient itself: outbound delivery takes it.
                    remote.push((r.idx, r.address.clone()));
                    continue;
                } else {
                    requeue = true;
                    RcptOutcome::Expanded {
                        copies,
                        added: exp.remote.clone(),
                    }
                }
            } else if let Some((_, reply)) = exp.deferred.first() {
                if expired {
                    failed.push((
                        r.idx,
                        r.address.clone(),
                        format!("4.4.7 message expired in queue: {reply}"),
                        None,
                    ));
                    RcptOutcome::Bounced {
                        reply: reply.clone(),
                    }
                } else {
                    log.push(local_line(&r.address, "deferred", reply));
                    RcptOutcome::Deferred {
                        reply: reply.clone(),
                        next_attempt: now
                            + self.core.config.retry.wait(r.attempts).as_secs() as i64,
                    }
                }
            } else if let Some((_, reply)) = exp.failed.first() {
                log.push(local_line(&r.address, "bounced", reply));
                RcptOutcome::Bounced {
                    reply: reply.clone(),
                }
            } else {
                RcptOutcome::Bounced {
                    reply: "5.1.1 mailbox unavailable".into(),
                }
            };
            outcomes.push((r.idx, outcome));
        }
        self.core.settle(Settlement {
            msg,
            outcomes,
            failed,
            log,
            requeue,
            remote,
            succeeded,
        });
    }
}
