//! Delivery: takes queued messages and settles each recipient.
//!
//! One thread (the runner, [`local`]) takes queue ids as smtpd commits them and scans the
//! queue for due retries; it resolves each recipient against the directory and delivers
//! local ones into mailboxes. Remote recipients go to [`remote`], which speaks SMTP to
//! their destinations on the tokio runtime. A message is worked on by one of them at a
//! time (it is "in flight" until its outcomes are committed): local outcomes first, then
//! the remote ones, each committed with the bounce and delay reports they call for.

mod local;
mod remote;
mod runner;
mod tls;

pub use remote::{OutboundSettings, Relay};

use crate::dsn::{ReportKind, ReportRecipient, report_for};
use crate::metrics::Metrics;
use crate::queue::{Decision, RetryPolicy};
use golub_smtp::client::Outcome;
use golub_store::{NewMessage, QueuedMessage, RcptOutcome, Store, unix_now};
use golub_types::{QueueId, Reply};
use remote::{Outbound, RcptResult};
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
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
    /// Told of every local delivery once it has committed.
    pub changes: Arc<crate::changes::MailboxChanges>,
}

/// Most messages whose outcome is being worked on or committed at once.
const MAX_IN_FLIGHT: usize = 20_000;

/// What the runner is told.
enum Notice {
    /// A message was committed to the queue (or got new recipients).
    Queued(QueueId),
    /// A message was committed to the queue, as it stands there.
    Message(Box<QueuedMessage>),
    /// Scan the queue now.
    Scan,
    /// Finish and return.
    Stop,
}

/// A handle to delivery.
pub struct Delivery {
    sender: Mutex<Option<mpsc::Sender<Notice>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    core: Arc<Core>,
}

/// Messages being worked on: they must not be picked up again until their outcome is in
/// the store.
#[derive(Default)]
struct InFlight {
    ids: Mutex<HashSet<QueueId>>,
    changed: Condvar,
}

impl InFlight {
    /// Claims `id`; false if it is already in flight. Waits while too many are.
    fn claim(&self, id: QueueId) -> bool {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.contains(&id) {
            return false;
        }
        while ids.len() >= MAX_IN_FLIGHT {
            ids = self.changed.wait(ids).unwrap_or_else(|e| e.into_inner());
        }
        ids.insert(id)
    }

    fn release(&self, id: QueueId) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.remove(&id);
        self.changed.notify_all();
    }

    fn contains(&self, id: QueueId) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Waits until nothing is in flight, or `timeout` has passed.
    fn wait_empty(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        while !ids.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            ids = self
                .changed
                .wait_timeout(ids, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Delivery {
    /// Starts the runner (it first resumes whatever the queue holds) and outbound
    /// delivery on the current tokio runtime.
    pub fn start(
        store: Store,
        config: DeliveryConfig,
        outbound: OutboundSettings,
        resolver: crate::dns::HickoryResolver,
    ) -> std::io::Result<Arc<Delivery>> {
        let (sender, receiver) = mpsc::channel();
        let core = Arc::new(Core {
            outbound: Outbound::new(outbound, store.clone(), resolver),
            store,
            config,
            in_flight: InFlight::default(),
            sender: sender.clone(),
        });
        let runner = runner::Runner::new(core.clone());
        let thread = std::thread::Builder::new()
            .name("golub-delivery".into())
            .spawn(move || runner.run(receiver))?;
        Ok(Arc::new(Delivery {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            core,
        }))
    }

    fn send(&self, notice: Notice) {
        if let Some(s) = self
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = s.send(notice);
        }
    }

    /// Tells delivery that `id` has been committed to the queue.
    pub fn notify(&self, id: QueueId) {
        self.send(Notice::Queued(id));
    }

    /// Hands delivery a message just committed to the queue (no need to read it back).
    pub fn queued(&self, msg: QueuedMessage) {
        self.send(Notice::Message(Box::new(msg)));
    }

    /// Scans the queue now, and tries suspended destinations again.
    pub fn scan_now(&self) {
        self.core.outbound.resume_all();
        self.send(Notice::Scan);
    }

    /// True for a domain with a route of its own (`[routes]`): its mail is relayed.
    pub fn is_routed(&self, domain: &str) -> bool {
        self.core.outbound.is_routed(domain)
    }

    /// Stops taking new work, abandons outbound connections (what they had not finished
    /// is tried again after a restart) and waits until every outcome reached is committed.
    pub fn shutdown(&self) {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(s) = sender {
            let _ = s.send(Notice::Stop);
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        self.core.outbound.shutdown();
        self.core.in_flight.wait_empty(Duration::from_secs(30));
    }
}

/// One recipient's log line, written once its outcome is committed.
struct LogLine {
    to: String,
    status: &'static str,
    reply: String,
    relay: String,
}

/// A recipient to report on: its index in the entry, the final address, the reply, and
/// the server that gave the reply (none for our own).
type Reported = (u32, String, String, Option<String>);

/// What the runner and outbound delivery share.
struct Core {
    store: Store,
    config: DeliveryConfig,
    in_flight: InFlight,
    /// For bounces and re-queued messages: back to the runner.
    sender: mpsc::Sender<Notice>,
    outbound: Outbound,
}

/// One attempt's results for a message, to commit.
struct Settlement {
    msg: QueuedMessage,
    outcomes: Vec<(u32, RcptOutcome)>,
    failed: Vec<Reported>,
    log: Vec<LogLine>,
    /// New recipients were added: they are tried once the message is released.
    requeue: bool,
    /// Remote recipients to hand to outbound delivery once this is committed.
    remote: Vec<(u32, String)>,
    /// Recipients delivered (`Delivered`) or relayed to a server without DSN
    /// (`Relayed`) that asked to hear of it (NOTIFY=SUCCESS).
    succeeded: Vec<(ReportKind, Reported)>,
}

/// True when a recipient asked for a report of its success (RFC 3461 NOTIFY=SUCCESS).
fn wants_success(notify: &str) -> bool {
    notify.split(',').any(|w| w.eq_ignore_ascii_case("SUCCESS"))
}

impl Core {
    /// Commits a settlement with its reports; then hands the remote recipients on, or
    /// releases the message.
    fn settle(self: &Arc<Self>, s: Settlement) {
        let Settlement {
            mut msg,
            outcomes,
            failed,
            log,
            requeue,
            remote,
            succeeded,
        } = s;
        let id = msg.id;
        if outcomes.is_empty() {
            if remote.is_empty() {
                self.release(id, requeue);
            } else {
                self.send_remote(Arc::new(msg), remote, requeue);
            }
            return;
        }
        let now = unix_now();
        let mut reports = self.report(&msg, &failed, ReportKind::Failed);
        for kind in [ReportKind::Delivered, ReportKind::Relayed] {
            let these: Vec<Reported> = succeeded
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, r)| r.clone())
                .collect();
            reports.extend(self.report(&msg, &these, kind));
        }
        if self
            .config
            .retry
            .warning_due(msg.received_at, now, msg.warned)
        {
            let delayed: Vec<Reported> = outcomes
                .iter()
                .filter_map(|(idx, o)| match o {
                    RcptOutcome::Deferred { reply, .. } => {
                        let r = msg.recipients.iter().find(|r| r.idx == *idx)?;
                        Some((r.idx, r.address.clone(), reply.clone(), None))
                    }
                    _ => None,
                })
                .collect();
            if !delayed.is_empty() {
                let retry_until = msg.received_at + self.config.retry.bounce_after.as_secs() as i64;
                info!(queue_id = %id, to = %msg.reverse_path, waiting = delayed.len(), "delay warning");
                reports.extend(self.report(&msg, &delayed, ReportKind::Delayed { retry_until }));
                msg.warned = true;
            }
        }
        let report_ids: Vec<QueueId> = reports.iter().map(|b| b.id).collect();
        let received_at = msg.received_at;
        let after = (!remote.is_empty()).then(|| (Arc::new(msg.clone()), remote));
        let mut users: Vec<i64> = outcomes
            .iter()
            .flat_map(|(_, o)| match o {
                RcptOutcome::Delivered(copies) | RcptOutcome::Expanded { copies, .. } => {
                    copies.as_slice()
                }
                _ => &[],
            })
            .map(|(user, _)| *user)
            .collect();
        users.sort_unstable();
        users.dedup();
        let core = self.clone();
        self.store.record(msg, outcomes, reports, move |result| {
            let delay_ms = (unix_now() - received_at).max(0) * 1000;
            match result {
                Ok(()) => {
                    for user in users {
                        core.config.changes.changed(user);
                    }
                    for l in &log {
                        core.config.metrics.delivery(l.status);
                        info!(queue_id = %id, to = %l.to, status = l.status, dsn = %l.reply, relay = %l.relay, delay_ms, "delivery");
                    }
                    for b in report_ids {
                        info!(queue_id = %id, report_id = %b, "report queued");
                        let _ = core.sender.send(Notice::Queued(b));
                    }
                    match after {
                        Some((msg, remote)) => core.send_remote(msg, remote, requeue),
                        None => core.release(id, requeue),
                    }
                }
                Err(e) => {
                    warn!(queue_id = %id, error = %e, "cannot record delivery; will retry");
                    core.release(id, false);
                }
            }
        });
    }

    /// The message is done for now; with `requeue`, its new recipients get their first
    /// attempt at once.
    fn release(&self, id: QueueId, requeue: bool) {
        self.in_flight.release(id);
        if requeue {
            let _ = self.sender.send(Notice::Queued(id));
        }
    }

    /// Hands remote recipients to outbound delivery; the message stays in flight.
    fn send_remote(
        self: &Arc<Self>,
        msg: Arc<QueuedMessage>,
        rcpts: Vec<(u32, String)>,
        requeue: bool,
    ) {
        let core = self.clone();
        let m = msg.clone();
        self.outbound.submit(
            msg,
            rcpts,
            Box::new(move |results| core.remote_done(&m, results, requeue)),
        );
    }

    /// Outbound delivery's results for a message: each recipient delivered, deferred
    /// or failed, committed like a local attempt.
    fn remote_done(
        self: &Arc<Self>,
        msg: &QueuedMessage,
        results: Option<Vec<RcptResult>>,
        requeue: bool,
    ) {
        let Some(results) = results else {
            // Shutting down: nothing recorded, the message is tried again after a restart.
            self.release(msg.id, false);
            return;
        };
        let now = unix_now();
        let mut outcomes = Vec::new();
        let mut failed = Vec::new();
        let mut succeeded = Vec::new();
        let mut log = Vec::new();
        for r in results {
            let Some(rcpt) = msg.recipients.iter().find(|q| q.idx == r.idx) else {
                continue;
            };
            let relay = r.remote.clone().unwrap_or_else(|| "none".into());
            let text = describe(&r.outcome, r.remote.as_deref());
            // Reports name the server by its host name and quote its whole reply.
            let mta = r
                .remote
                .as_deref()
                .map(|h| h.split('[').next().unwrap_or(h).to_string());
            let said = match &mta {
                Some(_) => {
                    let reply = r.outcome.reply();
                    match reply.enhanced {
                        Some(e) => format!("{} {e} {}", reply.code, remote::reply_text(reply)),
                        None => format!("{} {}", reply.code, remote::reply_text(reply)),
                    }
                }
                None => text.clone(),
            };
            let code = r.outcome.reply().code;
            let decision = self
                .config
                .retry
                .decide(msg.received_at, rcpt.attempts, code, now);
            let (outcome, status) = match decision {
                Decision::Delivered => {
                    if !r.dsn_passed && wants_success(&rcpt.notify) {
                        succeeded.push((
                            ReportKind::Relayed,
                            (rcpt.idx, rcpt.address.clone(), said, mta),
                        ));
                    }
                    (RcptOutcome::Delivered(Vec::new()), "sent")
                }
                Decision::Failed => {
                    failed.push((rcpt.idx, rcpt.address.clone(), said, mta));
                    (
                        RcptOutcome::Bounced {
                            reply: text.clone(),
                        },
                        "bounced",
                    )
                }
                Decision::Expired => {
                    let reply = format!("4.4.7 message expired in queue: {text}");
                    failed.push((rcpt.idx, rcpt.address.clone(), reply.clone(), None));
                    (RcptOutcome::Bounced { reply }, "expired")
                }
                Decision::Deferred { next_attempt } => (
                    RcptOutcome::Deferred {
                        reply: text.clone(),
                        next_attempt,
                    },
                    "deferred",
                ),
            };
            outcomes.push((r.idx, outcome));
            log.push(LogLine {
                to: r.address,
                status,
                reply: text,
                relay,
            });
        }
        self.settle(Settlement {
            msg: msg.clone(),
            outcomes,
            failed,
            log,
            requeue,
            remote: Vec::new(),
            succeeded,
        });
    }

    /// The report to the sender about `recipients`: none for a message with the null
    /// reverse path, nor when no recipient asked for this kind (DSN NOTIFY, RFC 3461).
    fn report(
        &self,
        msg: &QueuedMessage,
        recipients: &[Reported],
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
            .filter_map(|(idx, fin, reply, mta)| {
                let r = msg.recipients.iter().find(|r| r.idx == *idx)?;
                Some(ReportRecipient {
                    original: &r.orig_address,
                    final_address: fin,
                    reply,
                    notify: &r.notify,
                    orcpt: &r.orcpt,
                    remote_mta: mta.as_deref(),
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

/// A remote outcome as the queue and reports keep it: the enhanced status code first (a
/// report's `Status:`), then who said what.
fn describe(outcome: &Outcome, remote: Option<&str>) -> String {
    let reply: &Reply = outcome.reply();
    let enhanced = reply.enhanced.map(|e| e.to_string()).unwrap_or_else(|| {
        match reply.code / 100 {
            2 => "2.0.0",
            5 => "5.0.0",
            _ => "4.0.0",
        }
        .to_string()
    });
    let text = remote::reply_text(reply);
    match remote {
        Some(host) => format!("{enhanced} host {host} said: {} {text}", reply.code),
        None => format!("{enhanced} {text}"),
    }
}
