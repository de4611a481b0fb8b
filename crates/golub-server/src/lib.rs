//! The network side of Golub: the only crate with sockets, tokio and a clock. It wires the
//! stages together: listeners → smtpd → cleanup → queue (durable, group-committed) →
//! delivery (local mailboxes).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod changes;
pub mod cleanup;
pub mod config;
pub mod control;
pub mod delivery;
pub mod dns;
pub mod dsn;
pub mod imapd;
pub mod metrics;
pub mod net;
pub mod pop3d;
pub mod queue;
pub mod reads;
pub mod smtpd;

pub use config::{Config, ConfigError};

use auth::{AuthThrottle, ThrottleConfig};
use delivery::{Delivery, DeliveryConfig};
use golub_smtp::SessionConfig;
use golub_store::{Store, StoreOptions};
use metrics::Metrics;
use net::limits::ConnectionLimiter;
use net::tls::{Tls, TlsError};
use smtpd::Service;
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
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot open the control socket {path}: {cause}")]
    Control {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
}

/// What every session and stage shares.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub delivery: Arc<Delivery>,
    pub session_config: SessionConfig,
    pub limiter: Arc<ConnectionLimiter>,
    pub tls: Tls,
    pub auth_throttle: AuthThrottle,
    /// Successful password checks, remembered for a minute.
    pub login_cache: auth::LoginCache,
    pub pop3_locks: Arc<pop3d::MaildropLocks>,
    /// Wakes IMAP sessions when their user's mailboxes change.
    pub changes: Arc<changes::MailboxChanges>,
    pub metrics: Arc<Metrics>,
    session_ids: AtomicU64,
}

impl Shared {
    /// The SMTP session settings for one service.
    pub fn smtp_session_config(&self, service: Service) -> SessionConfig {
        service.session_config(
            &self.session_config,
            self.config.smtp.auth,
            self.config.auth.allow_plaintext,
        )
    }

    fn next_session_id(&self) -> u64 {
        self.session_ids.fetch_add(1, Ordering::Relaxed)
    }
}

/// What a listening socket serves.
#[derive(Debug, Clone, Copy)]
enum Listener {
    Smtp(Service),
    Pop3 { implicit_tls: bool },
    Imap { implicit_tls: bool },
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Smtp(s) => s.name(),
            Listener::Pop3 {
                implicit_tls: false,
            } => "pop3",
            Listener::Pop3 { implicit_tls: true } => "pop3s",
            Listener::Imap {
                implicit_tls: false,
            } => "imap",
            Listener::Imap { implicit_tls: true } => "imaps",
        }
    }
}

/// Outbound delivery's settings from the configuration.
fn outbound_settings(config: &Config) -> delivery::OutboundSettings {
    use golub_smtp::client::TlsPolicy;
    let policy = |m: config::TlsMode| match m {
        config::TlsMode::None => TlsPolicy::Off,
        config::TlsMode::Opportunistic => TlsPolicy::Opportunistic,
        config::TlsMode::Require => TlsPolicy::Required,
    };
    let d = &config.delivery;
    // Both were checked when the configuration was loaded.
    let relay = |host: &str, tls: Option<config::TlsMode>| {
        config::parse_host_port(host, 25)
            .ok()
            .map(|(host, port)| delivery::Relay {
                host,
                port,
                tls: tls.map(policy),
                login: None,
            })
    };
    let login = d.relay_user.clone().zip(d.relay_password.clone());
    delivery::OutboundSettings {
        client: golub_smtp::client::ClientConfig {
            hostname: config.hostname.clone(),
            tls: policy(d.tls),
            ..Default::default()
        },
        remote_port: d.remote_port,
        relay: d
            .relay_host
            .as_deref()
            .and_then(|h| relay(h, None))
            .map(|r| delivery::Relay { login, ..r }),
        routes: config
            .routes
            .iter()
            .filter_map(|(domain, r)| {
                Some((domain.to_ascii_lowercase(), relay(r.host(), r.tls())?))
            })
            .collect(),
        max_connections: d.max_connections,
        max_per_destination: d.max_connections_per_domain,
        max_messages_per_connection: d.max_messages_per_connection,
        connect_timeout: d.connect_timeout.0,
        idle_timeout: d.idle_timeout.0,
        retry: queue::RetryPolicy {
            schedule: config.queue.retry.iter().map(|d| d.0).collect(),
            bounce_after: config.queue.bounce_after.0,
            warn_after: None,
        },
        local: dns::Local::from_config(config),
    }
}

/// A started server: its bound addresses, and the way to stop it.
pub struct Server {
    shared: Arc<Shared>,
    /// The addresses the SMTP (port 25 role) listeners are bound to (the real port for 0).
    pub smtp_addrs: Vec<SocketAddr>,
    /// Every bound listener with its protocol name (`smtp`, `submission`, ...).
    pub listeners: Vec<(&'static str, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Opens the store, resumes the queue and binds every configured listener.
    pub async fn start(config: Config) -> Result<Server, Error> {
        let metrics = Arc::new(Metrics::new());
        let store = Store::open_with(
            &config.data_dir,
            StoreOptions {
                inline_body_limit: config.store.inline_body_limit,
                max_database_size: config.store.max_database_size,
                reader_threads: config.store.reader_threads,
                commit_observer: Some(metrics.commit_observer()),
                ..StoreOptions::default()
            },
        )
        .map_err(|cause| Error::Store {
            dir: config.data_dir.clone(),
            cause,
        })?;
        let control_path = control::socket_path(&config.data_dir);
        // Bound before delivery starts, so that a second server on the same data
        // directory stops here, before it touches the queue. Any other failure (a path
        // too long for a Unix socket, say) leaves the server without its control socket,
        // and the queue commands then work on the store directly.
        let control_listener = match control::bind(&config.data_dir) {
            Ok(l) => Some(l),
            Err(cause) if cause.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(Error::Control {
                    path: control_path,
                    cause,
                });
            }
            Err(e) => {
                tracing::error!(path = %control_path.display(), error = %e, "cannot open the control socket; running without it");
                None
            }
        };
        let changes = Arc::new(changes::MailboxChanges::default());
        let delivery = Delivery::start(
            store.clone(),
            DeliveryConfig {
                hostname: config.hostname.clone(),
                postmaster: config.postmaster.clone(),
                retry: queue::RetryPolicy {
                    schedule: config.queue.retry.iter().map(|d| d.0).collect(),
                    bounce_after: config.queue.bounce_after.0,
                    warn_after: Some(config.queue.warn_after.0).filter(|d| !d.is_zero()),
                },
                scan_interval: config.queue.scan_interval.0,
                metrics: metrics.clone(),
                changes: changes.clone(),
            },
            outbound_settings(&config),
            dns::HickoryResolver::new(&dns::ResolverSetup::from(&config.dns))
                .map_err(|e| Error::Delivery(std::io::Error::other(format!("DNS: {e}"))))?,
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
            ..SessionConfig::default()
        };
        let tls = Tls::setup(
            config.tls.cert.as_deref(),
            config.tls.key.as_deref(),
            &config.data_dir,
            &config.hostname,
        )?;
        let auth_throttle = AuthThrottle::new(ThrottleConfig {
            initial_delay: Duration::from_millis(config.auth.failure_delay_ms),
            max_delay: Duration::from_secs(8)
                .max(Duration::from_millis(config.auth.failure_delay_ms)),
            max_failures: config.auth.max_failures,
            block_time: Duration::from_secs(config.auth.block_seconds),
        });
        let limiter = ConnectionLimiter::new(
            config.limits.max_connections,
            config.limits.max_connections_per_ip,
            config.limits.trusted_networks.clone(),
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut listeners = Vec::new();
        for (service, addrs) in [
            (Service::Smtp, &config.listen.smtp),
            (Service::Submission, &config.listen.submission),
            (Service::Submissions, &config.listen.submissions),
        ] {
            for addr in addrs {
                let l = net::listener::bind(*addr).map_err(|cause| Error::Listen {
                    addr: *addr,
                    proto: service.name(),
                    cause,
                })?;
                listeners.push((Listener::Smtp(service), l));
            }
        }
        for (implicit_tls, addrs) in [(false, &config.listen.pop3), (true, &config.listen.pop3s)] {
            for addr in addrs {
                let l = net::listener::bind(*addr).map_err(|cause| Error::Listen {
                    addr: *addr,
                    proto: if implicit_tls { "pop3s" } else { "pop3" },
                    cause,
                })?;
                listeners.push((Listener::Pop3 { implicit_tls }, l));
            }
        }
        for (implicit_tls, addrs) in [(false, &config.listen.imap), (true, &config.listen.imaps)] {
            for addr in addrs {
                let l = net::listener::bind(*addr).map_err(|cause| Error::Listen {
                    addr: *addr,
                    proto: if implicit_tls { "imaps" } else { "imap" },
                    cause,
                })?;
                listeners.push((Listener::Imap { implicit_tls }, l));
            }
        }
        let metrics_listener = match config.metrics.listen {
            Some(addr) => Some(net::listener::bind(addr).map_err(|cause| Error::Listen {
                addr,
                proto: "metrics",
                cause,
            })?),
            None => None,
        };
        let shared = Arc::new(Shared {
            config,
            store,
            delivery,
            session_config,
            limiter,
            tls,
            auth_throttle,
            login_cache: auth::LoginCache::default(),
            pop3_locks: Arc::new(pop3d::MaildropLocks::default()),
            changes,
            metrics,
            session_ids: AtomicU64::new(1),
        });
        let mut tasks = JoinSet::new();
        let mut smtp_addrs = Vec::new();
        let mut bound = Vec::new();
        for (kind, l) in listeners {
            let addr = l.local_addr().map_err(|cause| Error::Listen {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                proto: kind.name(),
                cause,
            })?;
            info!(proto = kind.name(), addr = %addr, "listening");
            bound.push((kind.name(), addr));
            match kind {
                Listener::Smtp(service) => {
                    if service == Service::Smtp {
                        smtp_addrs.push(addr);
                    }
                    tasks.spawn(smtpd::serve(
                        l,
                        service,
                        shared.clone(),
                        shutdown_rx.clone(),
                    ));
                }
                Listener::Imap { implicit_tls } => {
                    tasks.spawn(imapd::serve(
                        l,
                        implicit_tls,
                        shared.clone(),
                        shutdown_rx.clone(),
                    ));
                }
                Listener::Pop3 { implicit_tls } => {
                    tasks.spawn(pop3d::serve(
                        l,
                        implicit_tls,
                        shared.clone(),
                        shutdown_rx.clone(),
                    ));
                }
            }
        }
        if let Some(l) = metrics_listener {
            let addr = l.local_addr().map_err(|cause| Error::Listen {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                proto: "metrics",
                cause,
            })?;
            info!(proto = "metrics", addr = %addr, "listening");
            bound.push(("metrics", addr));
            tasks.spawn(metrics::http::serve(
                l,
                shared.metrics.clone(),
                shared.store.clone(),
                shutdown_rx.clone(),
            ));
        }
        if let Some(l) = control_listener {
            info!(path = %control_path.display(), "control socket ready");
            tasks.spawn(control::serve(
                l,
                control_path,
                shared.store.clone(),
                shared.delivery.clone(),
                shared.config.hostname.clone(),
                shutdown_rx.clone(),
            ));
        }
        Ok(Server {
            shared,
            smtp_addrs,
            listeners: bound,
            shutdown,
            tasks,
        })
    }

    /// The first bound address of protocol `proto` (`smtp`, `submission`, ...).
    pub fn addr(&self, proto: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(p, _)| *p == proto)
            .map(|(_, a)| *a)
    }

    /// Re-reads the TLS certificate and key (on SIGHUP).
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        self.shared.tls.reload()
    }

    /// The TLS certificate files in use.
    pub fn tls_source(&self) -> &net::tls::TlsSource {
        self.shared.tls.source()
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
