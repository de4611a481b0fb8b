//! Metrics: counters, gauges and histograms of what the server does, kept in a
//! prometheus-client registry and served as OpenMetrics text on `GET /metrics` when
//! `[metrics] listen` is set (see [`http`]). The stages record with one call each
//! (`connection_opened`, `message`, `delivery`, `auth`, ...); recording is a few atomic
//! operations and happens whether or not the endpoint is on. The queue's size is not
//! counted as it changes but read from the store at each scrape, so it cannot drift.

pub mod http;

use golub_store::{CommitObserver, RcptStatus, Store};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use tracing::warn;

/// One label (`listener="smtp"`, `class="2xx"`, ...).
type Label = [(&'static str, &'static str); 1];
/// Two labels (`protocol="smtp",result="success"`).
type Labels2 = [(&'static str, &'static str); 2];

/// Every metric Golub exports, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections_open: Family<Label, Gauge>,
    connections: Family<Label, Counter>,
    connections_refused: Family<Label, Counter>,
    messages: Family<Label, Counter>,
    recipients_refused: Family<Label, Counter>,
    delivery: Family<Label, Counter>,
    queue: Family<Label, Gauge>,
    auth: Family<Labels2, Counter>,
    commit_duration: Histogram,
    commit_batch: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("golub");
        let m = Metrics {
            connections_open: Family::default(),
            connections: Family::default(),
            connections_refused: Family::default(),
            messages: Family::default(),
            recipients_refused: Family::default(),
            delivery: Family::default(),
            queue: Family::default(),
            auth: Family::default(),
            // 100 µs to about 3.3 s: an fsync on a fast disk up to a stalled one.
            commit_duration: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            // 1 to 1024 jobs, the largest batch the writer takes by default.
            commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            registry: Registry::default(),
        };
        registry.register(
            "connections_open",
            "Connections open now, by listener",
            m.connections_open.clone(),
        );
        registry.register(
            "connections",
            "Connections accepted, by listener",
            m.connections.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused by the connection limits, by listener",
            m.connections_refused.clone(),
        );
        registry.register(
            "smtp_messages",
            "Messages at the end of DATA/BDAT, by reply class (2xx: queued)",
            m.messages.clone(),
        );
        registry.register(
            "smtp_recipients_refused",
            "RCPT TO commands refused, by reply class",
            m.recipients_refused.clone(),
        );
        registry.register(
            "delivery_recipients",
            "Local delivery outcomes of recipients (delivered, deferred, failed)",
            m.delivery.clone(),
        );
        registry.register(
            "queue_recipients",
            "Recipients in the queue, by state",
            m.queue.clone(),
        );
        registry.register("auth", "Logins, by protocol and result", m.auth.clone());
        registry.register_with_unit(
            "store_commit_duration",
            "Time the store's COMMIT (with its fsync) took",
            Unit::Seconds,
            m.commit_duration.clone(),
        );
        registry.register(
            "store_commit_batch_size",
            "Write jobs per committed store transaction (group commit)",
            m.commit_batch.clone(),
        );
        for state in ["pending", "deferred", "delivered", "bounced"] {
            m.queue.get_or_create(&[("state", state)]).set(0);
        }
        Metrics { registry, ..m }
    }

    /// Counts an accepted connection on `listener` (refused or not by the limits); the
    /// returned guard keeps it in `connections_open` until dropped.
    pub fn connection_opened(&self, listener: &'static str, refused: bool) -> OpenConnection {
        let label = [("listener", listener)];
        self.connections.get_or_create(&label).inc();
        if refused {
            self.connections_refused.get_or_create(&label).inc();
        }
        let open = self.connections_open.get_or_create_owned(&label);
        open.inc();
        OpenConnection(open)
    }

    /// Counts the reply to a message at the end of DATA/BDAT (2xx: it is queued).
    pub fn message(&self, code: u16) {
        self.messages.get_or_create(&[("class", class(code))]).inc();
    }

    /// Counts a refused RCPT TO.
    pub fn recipient_refused(&self, code: u16) {
        self.recipients_refused
            .get_or_create(&[("class", class(code))])
            .inc();
    }

    /// Counts one recipient's delivery outcome as logged: `delivered`, `deferred` or
    /// `bounced` (exported as `failed`).
    pub fn delivery(&self, status: &str) {
        let outcome = match status {
            "delivered" => "delivered",
            // Taken by a remote server.
            "sent" => "sent",
            "deferred" => "deferred",
            _ => "failed",
        };
        self.delivery.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts a login: success, or failure for wrong credentials. Attempts refused while
    /// the throttle blocks the client are not counted.
    pub fn auth(&self, protocol: &'static str, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.auth
            .get_or_create(&[("protocol", protocol), ("result", result)])
            .inc();
    }

    /// The hook the store's writer calls after each COMMIT.
    pub fn commit_observer(self: &Arc<Self>) -> CommitObserver {
        let m = self.clone();
        CommitObserver(Arc::new(move |took, jobs| {
            m.commit_duration.observe(took.as_secs_f64());
            m.commit_batch.observe(jobs as f64);
        }))
    }

    /// Reads the queue's size from `store` and encodes every metric as OpenMetrics text.
    /// Blocks on a store read: call it off the async runtime.
    pub fn render(&self, store: &Store) -> String {
        match store.queue_counts() {
            Ok(counts) => {
                for (status, n) in counts {
                    self.queue
                        .get_or_create(&[("state", state_name(status))])
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            Err(e) => warn!(error = %e, "metrics: cannot count the queue"),
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Keeps one connection counted in `connections_open`.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn class(code: u16) -> &'static str {
    match code / 100 {
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

fn state_name(s: RcptStatus) -> &'static str {
    match s {
        RcptStatus::Pending => "pending",
        RcptStatus::Deferred => "deferred",
        RcptStatus::Delivered => "delivered",
        RcptStatus::Bounced => "bounced",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_text_with_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = Arc::new(Metrics::new());
        let open = m.connection_opened("smtp", false);
        m.connection_opened("pop3", true);
        m.message(250);
        m.message(451);
        m.recipient_refused(550);
        m.delivery("delivered");
        m.delivery("bounced");
        m.auth("smtp", false);
        (m.commit_observer().0)(std::time::Duration::from_millis(2), 3);
        let text = m.render(&store);
        for line in [
            r#"golub_connections_total{listener="smtp"} 1"#,
            r#"golub_connections_open{listener="smtp"} 1"#,
            r#"golub_connections_open{listener="pop3"} 0"#,
            r#"golub_connections_refused_total{listener="pop3"} 1"#,
            r#"golub_smtp_messages_total{class="2xx"} 1"#,
            r#"golub_smtp_messages_total{class="4xx"} 1"#,
            r#"golub_smtp_recipients_refused_total{class="5xx"} 1"#,
            r#"golub_delivery_recipients_total{outcome="delivered"} 1"#,
            r#"golub_delivery_recipients_total{outcome="failed"} 1"#,
            r#"golub_auth_total{protocol="smtp",result="failure"} 1"#,
            r#"golub_queue_recipients{state="pending"} 0"#,
            "golub_store_commit_duration_seconds_count 1",
            "golub_store_commit_batch_size_count 1",
            "golub_store_commit_batch_size_sum 3.0",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
        drop(open);
        assert!(
            m.render(&store)
                .contains(r#"golub_connections_open{listener="smtp"} 0"#)
        );
    }

    #[test]
    fn reply_codes_fall_into_classes() {
        assert_eq!(class(250), "2xx");
        assert_eq!(class(354), "3xx");
        assert_eq!(class(452), "4xx");
        assert_eq!(class(554), "5xx");
    }
}
