//! smtpd: the SMTP listeners (smtp, submission, submissions) and the driver loop of each
//! session. The protocol itself is golub-smtp's sans-IO `Session`; this module feeds it
//! bytes, answers its events with decisions (policy, authentication, queue), writes its
//! output, arms its timer, and does the TLS handshakes.

mod incoming;
pub(crate) mod limits;
mod policy;

pub use limits::ConnectionLimiter;

use crate::Shared;
use crate::auth::{self, Verdict};
use crate::cleanup::{TraceInfo, now_unix, received_header};
use crate::net::listener::{Accepted, accept_loop};
use crate::net::stream::{Conn, ReadBuffer, TlsInfo, Waited, handshake, wait};
use crate::queue::{enqueue, new_queue_id};
use golub_smtp::{Event, Session, SessionConfig};
use golub_store::{Error as StoreError, NewMessage, User};
use golub_types::{EnhancedCode, Envelope, ForwardPath, Reply};
use incoming::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// The three SMTP services, as IANA names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Port 25: mail from other servers; STARTTLS offered, AUTH only if configured.
    Smtp,
    /// Port 587 (RFC 6409): STARTTLS, then AUTH before MAIL.
    Submission,
    /// Port 465 (RFC 8314): TLS from the first byte, then AUTH before MAIL.
    Submissions,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Submissions => "submissions",
        }
    }

    /// The session settings of this service.
    pub fn session_config(
        self,
        base: &SessionConfig,
        shared_auth: bool,
        plaintext_auth: bool,
    ) -> SessionConfig {
        let mechanisms = vec!["PLAIN".to_string(), "LOGIN".to_string()];
        let mut c = base.clone();
        c.auth_without_tls = plaintext_auth;
        match self {
            Service::Smtp => {
                c.starttls_available = true;
                c.auth_mechanisms = if shared_auth { mechanisms } else { Vec::new() };
            }
            Service::Submission => {
                c.starttls_available = true;
                c.auth_mechanisms = mechanisms;
                c.auth_required = true;
            }
            Service::Submissions => {
                c.tls_active = true;
                c.auth_mechanisms = mechanisms;
                c.auth_required = true;
            }
        }
        c
    }
}

/// Accepts connections on `listener` until shutdown.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, service.name(), shared, shutdown, move |a| {
        session(a, service)
    })
    .await
}

async fn session(a: Accepted, service: Service) {
    let Accepted {
        stream,
        peer,
        permit,
        shared,
        shutdown,
    } = a;
    let config = shared.smtp_session_config(service);
    let Ok(_permit) = permit else {
        let reply = Reply::new(
            421,
            EnhancedCode(4, 7, 0),
            format!(
                "{} too many connections, try again later",
                shared.config.hostname
            ),
        );
        let mut session = Session::refuse(config, reply);
        let mut out = Vec::new();
        session.poll_output(&mut out);
        let mut stream = stream;
        let _ = stream.write_all(&out).await;
        let _ = stream.shutdown().await;
        return;
    };
    let mut conn = Conn::Plain(stream);
    let mut tls = None;
    if service == Service::Submissions {
        tls = handshake(
            &mut conn,
            shared.tls.acceptor(),
            shared.config.command_timeout(),
        )
        .await;
        if tls.is_none() {
            return;
        }
    }
    let mut driver = Driver {
        shared: &shared,
        peer,
        tls,
        user: None,
        message: None,
    };
    if let Err(e) = driver.run(conn, config, shutdown).await {
        debug!(error = %e, "session ended with an i/o error");
    }
}

/// One session's connection-level state.
struct Driver<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    /// The user who authenticated, if any.
    user: Option<User>,
    /// The message being received: its envelope and content so far.
    message: Option<(Envelope, Incoming)>,
}

impl Driver<'_> {
    async fn run(
        &mut self,
        mut conn: Conn,
        config: SessionConfig,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        debug!("connected");
        let mut session = Session::new(config, Instant::now());
        let mut buf = ReadBuffer::default();
        let mut out = Vec::new();
        let mut shutting_down = *shutdown.borrow();
        if shutting_down {
            session.shutdown();
        }
        loop {
            while let Some(event) = session.poll_event() {
                if let Event::StartTlsRequested = event {
                    session.poll_output(&mut out);
                    conn.write_all(&out).await?;
                    conn.flush().await?;
                    out.clear();
                    let acceptor = self.shared.tls.acceptor();
                    let timeout = self.shared.config.command_timeout();
                    let Some(info) = handshake(&mut conn, acceptor, timeout).await else {
                        return Ok(());
                    };
                    self.tls = Some(info);
                    session.tls_established(Instant::now());
                    continue;
                }
                self.handle_event(&mut session, event).await;
            }
            session.poll_output(&mut out);
            if !out.is_empty() {
                conn.write_all(&out).await?;
                conn.flush().await?;
                out.clear();
            }
            if session.is_closed() {
                let _ = conn.shutdown().await;
                debug!("closed");
                return Ok(());
            }
            let deadline = session.poll_timeout();
            match wait(&mut conn, &mut buf, deadline, &mut shutdown, shutting_down).await? {
                Waited::Input(n) => {
                    session.handle_input(buf.filled(n), Instant::now());
                    buf.consumed(n);
                }
                Waited::Closed => {
                    debug!("client closed the connection");
                    return Ok(());
                }
                Waited::Timeout => session.handle_timeout(Instant::now()),
                Waited::Shutdown => {
                    shutting_down = true;
                    session.shutdown();
                }
            }
        }
    }

    async fn handle_event(&mut self, session: &mut Session, event: Event) {
        let shared = self.shared;
        match event {
            Event::Greeted { name, extended } => debug!(helo = %name, extended, "greeted"),
            Event::StartTlsRequested => {}
            Event::AuthAttempted {
                mechanism,
                authzid,
                authcid,
                password,
            } => {
                let ip = self.peer.ip();
                let failure_delay = match shared.auth_throttle.check(ip, &authcid, Instant::now()) {
                    Verdict::Allow { failure_delay } => failure_delay,
                    Verdict::Blocked => {
                        warn!(user = %authcid, ip = %ip, "login refused: too many failures");
                        session.reject(Reply::new(
                            421,
                            EnhancedCode(4, 7, 0),
                            "too many failed logins, try again later",
                        ));
                        session.shutdown();
                        return;
                    }
                };
                if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(&authcid) {
                    warn!(user = %authcid, authzid = %authzid, ip = %ip, "login refused: authorization identity differs");
                    session.reject(Reply::new(
                        535,
                        EnhancedCode(5, 7, 8),
                        "authentication credentials invalid",
                    ));
                    return;
                }
                match auth::verify(&shared.store, &authcid, password.expose()).await {
                    Ok(Some(user)) => {
                        info!(user = %user.address, ip = %ip, mechanism = %mechanism, "login succeeded");
                        shared.auth_throttle.succeeded(&authcid);
                        self.user = Some(user);
                        session.auth_succeeded();
                    }
                    Ok(None) => {
                        warn!(user = %authcid, ip = %ip, mechanism = %mechanism, "login failed");
                        shared.auth_throttle.failed(ip, &authcid, Instant::now());
                        tokio::time::sleep(failure_delay).await;
                        session.reject(Reply::new(
                            535,
                            EnhancedCode(5, 7, 8),
                            "authentication credentials invalid",
                        ));
                    }
                    Err(e) => {
                        warn!(user = %authcid, error = %e, "password check failed");
                        session.reject(Reply::new(
                            454,
                            EnhancedCode(4, 7, 0),
                            "temporary authentication failure",
                        ));
                    }
                }
            }
            Event::MailFrom { reverse_path, .. } => {
                debug!(from = %reverse_path, "mail from");
                if let Some(user) = &self.user
                    && let Err(reply) = policy::check_sender(
                        &shared.store,
                        &shared.config.submission,
                        user,
                        &reverse_path,
                    )
                {
                    info!(user = %user.address, from = %reverse_path, "sender refused");
                    session.reject(reply);
                    return;
                }
                session.accept_mail();
            }
            Event::RcptTo { forward_path } => {
                match policy::check_recipient(&shared.store, &forward_path, self.user.is_some()) {
                    Ok(()) => {
                        debug!(to = %forward_path, "recipient accepted");
                        session.accept_rcpt();
                    }
                    Err(reply) => {
                        info!(to = %forward_path, status = reply.code, "recipient refused");
                        session.reject(reply);
                    }
                }
            }
            Event::Vrfy { query } => session.answer(policy::vrfy(&shared.store, &query)),
            Event::Expn { list } => session.answer(policy::expn(&shared.store, &list)),
            Event::MessageStarted {
                envelope,
                helo,
                protocol,
            } => self.message_started(envelope, &helo, protocol),
            Event::BodyReceived { octets } => {
                if let Some((_, incoming)) = &mut self.message {
                    incoming.push(&shared.store, &octets).await;
                }
            }
            Event::MessageAborted => self.message = None,
            Event::MessageReceived { .. } => self.message(session).await,
        }
    }

    /// The envelope is complete and the content starts: the queue id is given now, as the
    /// Received header that opens the content names it.
    fn message_started(&mut self, envelope: Envelope, helo: &str, protocol: &'static str) {
        let shared = self.shared;
        let id = new_queue_id();
        let single = match envelope.forward_paths.as_slice() {
            [ForwardPath::Mailbox(m)] => Some(m.to_string()),
            [ForwardPath::Postmaster] => Some("postmaster".to_string()),
            _ => None,
        };
        let tls = self
            .tls
            .as_ref()
            .map(|t| format!("using {} with cipher {}", t.version, t.cipher));
        let trace = received_header(&TraceInfo {
            helo,
            peer: self.peer.ip(),
            hostname: &shared.config.hostname,
            protocol,
            tls: tls.as_deref(),
            id,
            single_recipient: single,
            unix_time: now_unix(),
        });
        self.message = Some((envelope, Incoming::new(id, trace)));
    }

    /// The whole message is in: its body on stable storage, then the queue entry, then 250.
    async fn message(&mut self, session: &mut Session) {
        let shared = self.shared;
        let Some((envelope, incoming)) = self.message.take() else {
            // invariant: the session sends MessageStarted before MessageReceived.
            session.reject(reply_for_store_error(&StoreError::WriterGone));
            return;
        };
        let id = incoming.id;
        let size = incoming.size();
        let recipients: Vec<String> = envelope
            .forward_paths
            .iter()
            .map(|p| policy::canonical_recipient(&shared.store, &shared.config.hostname, p))
            .collect();
        let body = incoming.finish().await;
        let from = envelope
            .reverse_path
            .mailbox()
            .map(|m| m.to_string())
            .unwrap_or_default();
        let result = match body {
            Ok(body) => {
                let msg = NewMessage {
                    id,
                    reverse_path: from.clone(),
                    recipients,
                    smtputf8: envelope.smtputf8,
                    eight_bit: envelope.eight_bit,
                    body,
                };
                enqueue(&shared.store, msg).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(queued) => {
                let id = queued.id;
                let user = self.user.as_ref().map(|u| u.address.as_str()).unwrap_or("");
                info!(queue_id = %id, from = %from, size, nrcpt = envelope.forward_paths.len(), user, "message accepted");
                session.accept_message(id);
                shared.delivery.queued(queued);
            }
            Err(e) => {
                let reply = reply_for_store_error(&e);
                warn!(queue_id = %id, error = %e, status = reply.code, "message not queued");
                session.reject(reply);
            }
        }
    }
}

/// The reply a client sees when the store fails: generic text, the detail goes to the log.
fn reply_for_store_error(e: &StoreError) -> Reply {
    match e {
        StoreError::StorageFull => Reply::new(
            452,
            EnhancedCode(4, 3, 1),
            "insufficient system storage, try again later",
        ),
        _ => Reply::new(
            451,
            EnhancedCode(4, 3, 0),
            "local error in processing, try again later",
        ),
    }
}
