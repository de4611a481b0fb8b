//! The local delivery agent and queue runner. One thread takes queue ids as smtpd commits
//! them (and scans the queue for due retries), resolves each recipient against the
//! directory, and hands the outcomes to the store as one job per message: the mailbox
//! copies and the queue update commit together, so a crash never delivers twice.
//! Jobs are not awaited one by one; many are in flight and share group commits.

use crate::dsn::{ReportKind, ReportRecipient, report_for};
use crate::metrics::Metrics;
use crate::queue::RetryPolicy;
use golub_store::{
    NewMessage, QueuedMessage, RcptOutcome, RcptStatus, Recipient, Store, User, unix_now,
};
use golub_types::QueueId;
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// What delivery needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub hostname: String,
    pub postmaster: Option<String>,
    /// When deferred recipients are tried again, and when the queue gives up.
    pub retry: RetryPolicy,
    /// How often the queue is scanned for retries that are due.
    pub scan_interval: Duration,
    /// Where recipients' outcomes are counted.
    pub metrics: Arc<Metrics>,
}

/// Most messages whose outcome is being committed at once.
const MAX_IN_FLIGHT: usize = 1024;
/// Deepest alias chain followed before it counts as a loop.
const MAX_ALIAS_DEPTH: usize = 20;

/// What the delivery thread is told.
enum Notice {
    /// A message was committed to the queue (or got new recipients).
    Queued(QueueId),
    /// A message was committed to the queue, as it stands there.
    Message(Box<QueuedMessage>),
    /// Finish and return.
    Stop,
}

/// A handle to the delivery thread.
pub struct Delivery {
    sender: Mutex<Option<mpsc::Sender<Notice>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    in_flight: Arc<InFlight>,
}

/// Messages whose delivery job has been submitted but not committed: they must not be
/// picked up again until their outcome is in the store.
#[derive(Default)]
struct InFlight {
    ids: Mutex<HashSet<QueueId>>,
    changed: Condvar,
}

impl Delivery {
    /// Starts the delivery thread; it first resumes whatever the queue holds.
    pub fn start(store: Store, config: DeliveryConfig) -> std::io::Result<Arc<Delivery>> {
        let (sender, receiver) = mpsc::channel();
        let in_flight = Arc::new(InFlight::default());
        let runner = Runner {
            store,
            config,
            in_flight: in_flight.clone(),
            sender: sender.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("golub-delivery".into())
            .spawn(move || runner.run(receiver))?;
        Ok(Arc::new(Delivery {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            in_flight,
        }))
    }

    /// Tells delivery that `id` has been committed to the queue.
    pub fn notify(&self, id: QueueId) {
        if let Some(s) = self
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = s.send(Notice::Queued(id));
        }
    }

    /// Hands delivery a message just committed to the queue (no need to read it back).
    pub fn queued(&self, msg: QueuedMessage) {
        if let Some(s) = self
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = s.send(Notice::Message(Box::new(msg)));
        }
    }

    /// Stops taking new work and waits until every submitted job has committed.
    pub fn shutdown(&self) {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(s) = sender {
            let _ = s.send(Notice::Stop);
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        let mut ids = self.in_flight.ids.lock().unwrap_or_else(|e| e.into_inner());
        while !ids.is_empty() {
            ids = self
                .in_flight
                .changed
                .wait(ids)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct Runner {
    store: Store,
    config: DeliveryConfig,
    in_flight: Arc<InFlight>,
    /// For bounces: a report queued by delivery is delivered like any message.
    sender: mpsc::Sender<Notice>,
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
    fn run(self, receiver: mpsc::Receiver<Notice>) {
        self.scan();
        let mut last_scan = Instant::now();
        loop {
            match receiver.recv_timeout(self.config.scan_interval) {
                Ok(Notice::Queued(id)) => self.process(id),
                Ok(Notice::Message(msg)) => self.deliver(*msg),
                Ok(Notice::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if last_scan.elapsed() >= self.config.scan_interval {
                self.scan();
                last_scan = Instant::now();
            }
        }
    }

    fn scan(&self) {
        loop {
            match self.store.due_messages(unix_now(), 1000) {
                Ok(batch) => {
                    let busy = {
                        let ids = self.in_flight.ids.lock().unwrap_or_else(|e| e.into_inner());
                        batch.iter().all(|m| ids.contains(&m.id))
                    };
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
        match self.store.queued_message(id) {
            Ok(Some(msg)) => self.deliver(msg),
            Ok(None) => {}
            Err(e) => warn!(queue_id = %id, error = %e, "cannot read queue entry; will retry"),
        }
    }

    /// Claims a slot for `id`; false if it is already in flight.
    fn claim(&self, id: QueueId) -> bool {
        let mut ids = self.in_flight.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.contains(&id) {
            return false;
        }
        while ids.len() >= MAX_IN_FLIGHT {
            ids = self
                .in_flight
                .changed
                .wait(ids)
                .unwrap_or_else(|e| e.into_inner());
        }
        ids.insert(id)
    }

    fn deliver(&self, mut msg: QueuedMessage) {
        if !self.claim(msg.id) {
            return;
        }
        let now = unix_now();
        let expired = self.config.retry.expired(msg.received_at, now);
        let mut outcomes = Vec::new();
        // (recipient index, final address, reply) of the recipients that failed for good.
        let mut failed: Vec<(u32, String, String)> = Vec::new();
        let mut log: Vec<(String, &'static str, String)> = Vec::new();
        // A user reached through several recipients (itself and a list, say) gets one copy.
        let mut delivered_users: HashSet<i64> = HashSet::new();
        let mut requeue = false;
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
                failed.push((r.idx, addr.clone(), reply.clone()));
            }
            let reached_users = !exp.users.is_empty();
            let copies: Vec<(i64, Vec<u8>)> = exp
                .users
                .iter()
                .filter(|u| delivered_users.insert(u.id))
                .map(|u| {
                    log.push((
                        u.address.clone(),
                        "delivered",
                        "2.0.0 delivered to mailbox".into(),
                    ));
                    (u.id, self.prefix(&msg.reverse_path, &u.address))
                })
                .collect();
            let outcome = if reached_users || !exp.remote.is_empty() {
                if exp.remote.is_empty() {
                    RcptOutcome::Delivered(copies)
                } else if exp.remote.len() == 1 && exp.remote[0] == r.address && copies.is_empty() {
                    // A remote recipient itself: it waits for outbound delivery.
                    self.defer(r.attempts, "4.4.1 outbound delivery is not available yet")
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
                    ));
                    RcptOutcome::Bounced {
                        reply: reply.clone(),
                    }
                } else {
                    log.push((r.address.clone(), "deferred", reply.clone()));
                    self.defer(r.attempts, reply)
                }
            } else if let Some((_, reply)) = exp.failed.first() {
                log.push((r.address.clone(), "bounced", reply.clone()));
                RcptOutcome::Bounced {
                    reply: reply.clone(),
                }
            } else {
                RcptOutcome::Bounced {
                    reply: "5.1.1 mailbox unavailable".into(),
                }
            };
            if let (true, RcptOutcome::Deferred { reply, .. }) = (expired, &outcome) {
                failed.push((
                    r.idx,
                    r.address.clone(),
                    format!("4.4.7 message expired in queue: {reply}"),
                ));
                outcomes.push((
                    r.idx,
                    RcptOutcome::Bounced {
                        reply: reply.clone(),
                    },
                ));
                continue;
            }
            outcomes.push((r.idx, outcome));
        }
        if outcomes.is_empty() {
            self.release(msg.id);
            return;
        }
        let mut bounces = self.report(&msg, &failed, ReportKind::Failed);
        if self
            .config
            .retry
            .warning_due(msg.received_at, now, msg.warned)
        {
            let delayed: Vec<(u32, String, String)> = outcomes
                .iter()
                .filter_map(|(idx, o)| match o {
                    RcptOutcome::Deferred { reply, .. } => {
                        let r = msg.recipients.iter().find(|r| r.idx == *idx)?;
                        Some((r.idx, r.address.clone(), reply.clone()))
                    }
                    _ => None,
                })
                .collect();
            if !delayed.is_empty() {
                let retry_until = msg.received_at + self.config.retry.bounce_after.as_secs() as i64;
                info!(queue_id = %msg.id, to = %msg.reverse_path, waiting = delayed.len(), "delay warning");
                bounces.extend(self.report(&msg, &delayed, ReportKind::Delayed { retry_until }));
                msg.warned = true;
            }
        }
        let bounce_ids: Vec<QueueId> = bounces.iter().map(|b| b.id).collect();
        let id = msg.id;
        let received_at = msg.received_at;
        let in_flight = self.in_flight.clone();
        let sender = self.sender.clone();
        let metrics = self.config.metrics.clone();
        self.store.record(msg, outcomes, bounces, move |result| {
            let delay_ms = (unix_now() - received_at).max(0) * 1000;
            match result {
                Ok(()) => {
                    for (to, status, dsn) in &log {
                        metrics.delivery(status);
                        info!(queue_id = %id, to = %to, status, dsn = %dsn, relay = "local", delay_ms, "delivery");
                    }
                    if requeue {
                        // New recipients from an expansion get their first attempt now.
                        let _ = sender.send(Notice::Queued(id));
                    }
                    for b in bounce_ids {
                        info!(queue_id = %id, bounce_id = %b, "bounce report queued");
                        let _ = sender.send(Notice::Queued(b));
                    }
                }
                Err(e) => warn!(queue_id = %id, error = %e, "cannot record delivery; will retry"),
            }
            let mut ids = in_flight.ids.lock().unwrap_or_else(|e| e.into_inner());
            ids.remove(&id);
            in_flight.changed.notify_all();
        });
    }

    fn release(&self, id: QueueId) {
        let mut ids = self.in_flight.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.remove(&id);
        self.in_flight.changed.notify_all();
    }

    /// A temporary failure: the recipient waits for its next attempt. (Giving up is
    /// decided for the whole message, with `RetryPolicy::expired`, before this.)
    fn defer(&self, attempts: u32, reply: &str) -> RcptOutcome {
        RcptOutcome::Deferred {
            reply: reply.to_string(),
            next_attempt: unix_now() + self.config.retry.wait(attempts).as_secs() as i64,
        }
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
        if !self.store.is_local_domain(domain)? {
            if !out.remote.iter().any(|r| r == address) {
                out.remote.push(address.to_string());
            }
            return Ok(());
        }
        match self.store.lookup(address)? {
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
            None if local == "postmaster" => match &self.config.postmaster {
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

    /// The report to the sender about `recipients` (recipient index, final address,
    /// reply): none for a message with the null reverse path, nor when no recipient asked
    /// for this kind (DSN NOTIFY, RFC 3461); see `dsn::report_for`.
    fn report(
        &self,
        msg: &QueuedMessage,
        recipients: &[(u32, String, String)],
        kind: ReportKind,
    ) -> Vec<NewMessage> {
        if recipients.is_empty() {
            return Vec::new();
        }
        if msg.reverse_path.is_empty() {
            info!(queue_id = %msg.id, "no report for a message with a null reverse path");
            return Vec::new();
        }
        let listed: Vec<ReportRecipient<'_>> = recipients
            .iter()
            .filter_map(|(idx, fin, reply)| {
                let r = msg.recipients.iter().find(|r| r.idx == *idx)?;
                Some(ReportRecipient {
                    original: &r.orig_address,
                    final_address: fin,
                    reply,
                    notify: &r.notify,
                    orcpt: &r.orcpt,
                    remote_mta: None,
                })
            })
            .collect();
        let report = report_for(
            &self.store,
            &self.config.hostname,
            msg,
            kind,
            &listed,
            unix_now(),
        );
        if report.is_none() {
            info!(queue_id = %msg.id, "no report: the sender asked for none (notify)");
        }
        report.into_iter().collect()
    }
}
