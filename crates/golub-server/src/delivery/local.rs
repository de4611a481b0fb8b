//! The runner: one thread takes queue ids as smtpd commits them (and scans the queue for
//! due retries), resolves each recipient against the directory, delivers local ones and
//! hands remote ones to outbound delivery. Local outcomes are committed as one job per
//! message: the mailbox copies and the queue update commit together, so a crash never
//! delivers twice. Jobs are not awaited one by one; many are in flight and share group
//! commits.

use super::{Core, LogLine, Notice, Reported, Settlement, wants_success};
use crate::dsn::ReportKind;
use golub_store::{QueuedMessage, RcptOutcome, RcptStatus, Recipient, User, unix_now};
use golub_types::QueueId;
use std::collections::HashSet;
use std::sync::{Arc, mpsc};
use std::time::Instant;
use tracing::warn;

/// Deepest alias chain followed before it counts as a loop.
const MAX_ALIAS_DEPTH: usize = 20;

pub(super) struct Runner {
    core: Arc<Core>,
}

/// A recipient after alias and list expansion.
#[derive(Default)]
struct Expansion {
    users: Vec<User>,
    remote: Vec<String>,
    failed: Vec<(String, String)>,
    deferred: Vec<(String, String)>,
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
            let exp = match self.expand(&r.address) {
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
                    (u.id, self.prefix(&msg.reverse_path, &u.address))
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

    /// `Return-Path:` and `Delivered-To:`, the per-copy prefix of a local delivery.
    fn prefix(&self, reverse_path: &str, user: &str) -> Vec<u8> {
        format!("Return-Path: <{reverse_path}>\r\nDelivered-To: {user}\r\n").into_bytes()
    }

    /// Follows aliases and lists from `address` down to users and remote addresses.
    fn expand(&self, address: &str) -> golub_store::Result<Expansion> {
        let mut out = Expansion::default();
        let mut path = Vec::new();
        self.expand_into(address, &mut path, &mut out)?;
        Ok(out)
    }

    fn expand_into(
        &self,
        address: &str,
        path: &mut Vec<String>,
        out: &mut Expansion,
    ) -> golub_store::Result<()> {
        if path.iter().any(|p| p == address) || path.len() >= MAX_ALIAS_DEPTH {
            warn!(to = %address, chain = %path.join(" -> "), "alias loop detected");
            out.failed
                .push((address.to_string(), "5.4.6 alias loop detected".into()));
            return Ok(());
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            out.failed
                .push((address.to_string(), "5.1.3 bad destination address".into()));
            return Ok(());
        };
        if !self.core.store.is_local_domain(domain)? {
            if !out.remote.iter().any(|r| r == address) {
                out.remote.push(address.to_string());
            }
            return Ok(());
        }
        match self.core.store.lookup(address)? {
            Some(Recipient::User(u)) => {
                if !out.users.iter().any(|x| x.id == u.id) {
                    out.users.push(u);
                }
            }
            Some(Recipient::Alias(targets)) => {
                path.push(address.to_string());
                for t in targets {
                    self.expand_into(&t, path, out)?;
                }
                path.pop();
            }
            None if local == "postmaster" => match &self.core.config.postmaster {
                Some(pm) if pm.to_lowercase() != address => {
                    path.push(address.to_string());
                    self.expand_into(&pm.to_lowercase(), path, out)?;
                    path.pop();
                }
                _ => out.deferred.push((
                    address.to_string(),
                    "4.3.0 no mailbox for postmaster; add a user or alias, or set postmaster in the config".into(),
                )),
            },
            None => out
                .failed
                .push((address.to_string(), "5.1.1 mailbox unavailable".into())),
        }
        Ok(())
    }
}
