//! The network side of Golub: the only crate with sockets, tokio and a clock. It wires the
//! stages together: listeners → smtpd → cleanup → queue (durable, group-committed) →
//! delivery (local mailboxes).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cleanup;
pub mod config;
pub mod delivery;
pub mod dsn;
pub mod queue;
pub mod smtpd;

pub use config::{Config, ConfigError};

use delivery::{Delivery, DeliveryConfig};
use golub_smtp::SessionConfig;
use golub_store::{Store, StoreOptions};
use smtpd::ConnectionLimiter;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the store in {dir}: {cause}")]
    Store {
        dir: std::path::PathBuf,
        cause: golub_store::Error,
    },
    #[error("cannot listen on {addr} ({proto}): {cause}")]
    Listen {
        addr: SocketAddr,
        proto: &'static str,
        cause: std::io::Error,
    },
    #[error("cannot start the delivery thread: {0}")]
    Delivery(std::io::Error),
}

/// What every session and stage shares.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub delivery: Arc<Delivery>,
    pub session_config: SessionConfig,
    pub limiter: Arc<ConnectionLimiter>,
    session_ids: AtomicU64,
}

impl Shared {
    fn next_session_id(&self) -> u64 {
        self.session_ids.fetch_add(1, Ordering::Relaxed)
    }
}

/// A started server: its bound addresses, and the way to stop it.
pub struct Server {
    shared: Arc<Shared>,
    /// The addresses the SMTP listeners are bound to (with the real port for port 0).
    pub smtp_addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Opens the store, resumes the queue and binds every configured listener.
    pub async fn start(config: Config) -> Result<Server, Error> {
        let store = Store::open_with(
            &config.data_dir,
            StoreOptions {
                inline_body_limit: config.store.inline_body_limit,
                max_database_size: config.store.max_database_size,
                ..StoreOptions::default()
            },
        )
        .map_err(|cause| Error::Store {
            dir: config.data_dir.clone(),
            cause,
        })?;
        let delivery = Delivery::start(
            store.clone(),
            DeliveryConfig {
                hostname: config.hostname.clone(),
                postmaster: config.postmaster.clone(),
                max_lifetime: Duration::from_secs(config.queue.max_lifetime),
                retry_initial: Duration::from_secs(config.queue.retry_initial),
                retry_max: Duration::from_secs(config.queue.retry_max),
                scan_interval: Duration::from_secs(30),
            },
        )
        .map_err(Error::Delivery)?;
        let session_config = SessionConfig {
            hostname: config.hostname.clone(),
            max_message_size: config.limits.max_message_size,
            max_recipients: config.limits.max_recipients,
            max_command_line: config.limits.max_command_line,
            max_text_line: config.limits.max_text_line,
            max_errors: config.limits.max_errors,
            command_timeout: config.command_timeout(),
            data_timeout: config.data_timeout(),
            vrfy_enabled: config.smtp.vrfy,
            expn_enabled: config.smtp.expn,
            extra_ehlo: Vec::new(),
        };
        let limiter = ConnectionLimiter::new(
            config.limits.max_connections,
            config.limits.max_connections_per_ip,
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut listeners = Vec::new();
        for addr in &config.listen.smtp {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|cause| Error::Listen {
                    addr: *addr,
                    proto: "smtp",
                    cause,
                })?;
            listeners.push(l);
        }
        let shared = Arc::new(Shared {
            config,
            store,
            delivery,
            session_config,
            limiter,
            session_ids: AtomicU64::new(1),
        });
        let mut tasks = JoinSet::new();
        let mut smtp_addrs = Vec::new();
        for l in listeners {
            let addr = l.local_addr().map_err(|cause| Error::Listen {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                proto: "smtp",
                cause,
            })?;
            info!(proto = "smtp", addr = %addr, "listening");
            smtp_addrs.push(addr);
            tasks.spawn(smtpd::serve(l, shared.clone(), shutdown_rx.clone()));
        }
        Ok(Server {
            shared,
            smtp_addrs,
            shutdown,
            tasks,
        })
    }

    /// The store this server uses.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Stops listening, tells open sessions (421), and lets delivery finish what it has
    /// submitted. Anything still queued resumes at the next start.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        // Give sessions a moment to send their 421 and finish a message in flight.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.shared.limiter.open() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delivery = self.shared.delivery.clone();
        let _ = tokio::task::spawn_blocking(move || delivery.shutdown()).await;
    }
}
