//! smtpd: the SMTP listeners (smtp, submission, submissions). The protocol itself is
//! golub-smtp's sans-IO `Session`, run by the shared loop in `net::session`; this module
//! is its [`Handler`]: it answers the session's events with decisions (policy,
//! authentication, queue).

mod incoming;
mod policy;

use crate::Shared;
use crate::auth::{self, LoginFailure};
use crate::cleanup::{TraceInfo, now_unix, received_header};
use crate::net::listener::{Accepted, accept_loop};
use crate::net::session::{Handler, Opened, drive, open};
use crate::net::stream::TlsInfo;
use crate::queue::{enqueue, new_queue_id};
use golub_smtp::{Event, Session, SessionConfig};
use golub_store::{Error as StoreError, NewMessage, NewRecipient, User};
use golub_types::{EnhancedCode, Envelope, ForwardPath, Reply};
use incoming::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
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
        let mechanisms = ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
            .map(String::from)
            .to_vec();
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
    let refusal = |shared: &Shared| {
        let reply = Reply::new(
            421,
            EnhancedCode(4, 7, 0),
            format!(
                "{} too many connections, try again later",
                shared.config.hostname
            ),
        );
        let mut session = Session::refuse(shared.smtp_session_config(service), reply);
        let mut out = Vec::new();
        session.poll_output(&mut out);
        out
    };
    let implicit_tls = service == Service::Submissions;
    let Some(Opened {
        conn,
        peer,
        permit,
        shared,
        shutdown,
        tls,
    }) = open(a, implicit_tls, refusal).await
    else {
        return;
    };
    debug!("connected");
    let mut config = shared.smtp_session_config(service);
    config.etrn_enabled = shared.config.smtp.etrn_allowed(peer.ip());
    let mut session = Session::new(config, Instant::now());
    let mut driver = Driver {
        shared: &shared,
        peer,
        tls,
        user: None,
        candidate: None,
        message: None,
    };
    if let Err(e) = drive(&mut driver, &mut session, conn, permit, &shared, shutdown).await {
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
    /// The user whose credentials were accepted, until the session is authenticated.
    candidate: Option<User>,
    /// The message being received: its envelope and content so far.
    message: Option<(Envelope, Incoming)>,
}

impl Handler for Driver<'_> {
    type Session = Session;

    fn is_tls_request(event: &Event) -> bool {
        matches!(event, Event::StartTlsRequested)
    }

    fn tls_started(&mut self, info: TlsInfo) {
        self.tls = Some(info);
    }

    async fn handle(&mut self, session: &mut Session, event: Event) {
        self.handle_event(session, event).await
    }
}

impl Driver<'_> {
    async fn handle_event(&mut self, session: &mut Session, event: Event) {
        let shared = self.shared;
        if self.user.is_none() && session.authenticated().is_some() {
            self.user = self.candidate.take();
        }
        match event {
            Event::Greeted { name, extended } => debug!(helo = %name, extended, "greeted"),
            Event::StartTlsRequested => {}
            Event::AuthAttempted {
                mechanism,
                authzid,
                authcid,
                credential,
            } => {
                let attempt = auth::Attempt {
                    proto: "smtp",
                    ip: self.peer.ip(),
                    mechanism: &mechanism,
                    authzid: &authzid,
                    authcid: &authcid,
                    credential: &credential,
                };
                match auth::login(shared, attempt).await {
                    Ok(user) => {
                        // The session may still wait for the client to acknowledge
                        // SCRAM's last message: the user counts once it is authenticated.
                        self.candidate = Some(user);
                        session.auth_succeeded();
                    }
                    Err(why) => refuse_login(session, why),
                }
            }
            Event::CredentialsNeeded { authcid, .. } => {
                match auth::scram_credentials(shared, "smtp", self.peer.ip(), &authcid).await {
                    Ok((creds, nonce)) => session.scram_credentials(creds, &nonce),
                    Err(why) => refuse_login(session, why),
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
                    .await
                {
                    info!(user = %user.address, from = %reverse_path, "sender refused");
                    session.reject(reply);
                    return;
                }
                session.accept_mail();
            }
            Event::RcptTo { forward_path } => {
                let authenticated = self.user.is_some();
                match policy::check_recipient(&shared.store, &forward_path, authenticated, |d| {
                    shared.delivery.is_routed(d)
                }) {
                    Ok(()) => {
                        debug!(to = %forward_path, "recipient accepted");
                        session.accept_rcpt();
                    }
                    Err(reply) => {
                        info!(to = %forward_path, status = reply.code, "recipient refused");
                        shared.metrics.recipient_refused(reply.code);
                        session.reject(reply);
                    }
                }
            }
            Event::Vrfy { query } => session.answer(policy::vrfy(&shared.store, &query).await),
            Event::Expn { list } => session.answer(policy::expn(&shared.store, &list).await),
            Event::EtrnRequested { domain } => session.answer(etrn(shared, domain).await),
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
        let recipients = policy::canonical_recipients(
            &shared.store,
            &shared.config.hostname,
            &envelope.forward_paths,
        )
        .await
        .into_iter()
        .enumerate()
        .map(|(i, address)| {
            // DSN requests (RFC 3461) go into the queue as their text, '' when not given.
            let dsn = envelope.rcpt_dsn(i);
            NewRecipient {
                address,
                notify: dsn.notify.map(|n| n.to_string()).unwrap_or_default(),
                orcpt: dsn.orcpt.map(|o| o.to_string()).unwrap_or_default(),
            }
        })
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
                    envid: envelope.dsn.envid.clone().unwrap_or_default(),
                    ret: envelope
                        .dsn
                        .ret
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_default(),
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
                shared.metrics.message(250);
                shared.delivery.queued(queued);
            }
            Err(e) => {
                let reply = reply_for_store_error(&e);
                warn!(queue_id = %id, error = %e, status = reply.code, "message not queued");
                shared.metrics.message(reply.code);
                session.reject(reply);
            }
        }
    }
}

/// ETRN (RFC 1985): makes what waits for `domain` due now and wakes delivery.
async fn etrn(shared: &Shared, domain: String) -> Reply {
    let store = shared.store.clone();
    let d = domain.clone();
    let flushed =
        tokio::task::spawn_blocking(move || store.flush_messages(golub_store::Flush::Domain(d)))
            .await;
    match flushed {
        Ok(Ok(n)) => {
            info!(domain = %domain, recipients = n, "etrn: queue run started");
            shared.delivery.scan_now();
            Reply::new(
                250,
                EnhancedCode(2, 0, 0),
                format!("Queuing for node {domain} started"),
            )
        }
        Ok(Err(e)) => {
            warn!(domain = %domain, error = %e, "etrn: cannot flush the queue");
            etrn_unable(&domain)
        }
        Err(e) => {
            warn!(domain = %domain, error = %e, "etrn: the flush task failed");
            etrn_unable(&domain)
        }
    }
}

/// RFC 1985 §5: 458 when the queue run cannot be started.
fn etrn_unable(domain: &str) -> Reply {
    Reply::new(
        458,
        EnhancedCode(4, 3, 0),
        format!("Unable to queue messages for node {domain}"),
    )
}

/// Refuses a login; a blocked address is also disconnected.
fn refuse_login(session: &mut Session, why: LoginFailure) {
    session.reject(login_refusal(why));
    if why == LoginFailure::Blocked {
        session.shutdown();
    }
}

/// The reply to a refused login.
fn login_refusal(why: LoginFailure) -> Reply {
    match why {
        LoginFailure::Blocked => Reply::new(
            421,
            EnhancedCode(4, 7, 0),
            "too many failed logins, try again later",
        ),
        LoginFailure::Invalid => Reply::new(
            535,
            EnhancedCode(5, 7, 8),
            "authentication credentials invalid",
        ),
        LoginFailure::TempFail => Reply::new(
            454,
            EnhancedCode(4, 7, 0),
            "temporary authentication failure",
        ),
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
