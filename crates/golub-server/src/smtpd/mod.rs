//! smtpd: the SMTP listeners (smtp, submission, submissions) and the driver loop of each
//! session. The protocol itself is golub-smtp's sans-IO `Session`; this module feeds it
//! bytes, answers its events with decisions (policy, authentication, queue), writes its
//! output, arms its timer, and does the TLS handshakes.

mod policy;

use crate::Shared;
use crate::auth::{self, LoginFailure};
use crate::cleanup::{TraceInfo, now_unix, received_header};
use crate::net::limits::Permit;
use crate::net::listener::{Accepted, accept_loop};
use crate::net::stream::{Conn, ReadBuffer, TlsInfo, Waited, handshake, wait};
use crate::queue::{enqueue, new_queue_id};
use golub_smtp::{Event, Session, SessionConfig};
use golub_store::{Error as StoreError, NewMessage, User};
use golub_types::{EnhancedCode, ForwardPath, Reply};
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
    let Accepted {
        stream,
        peer,
        permit,
        shared,
        shutdown,
    } = a;
    let config = shared.smtp_session_config(service);
    let Ok(permit) = permit else {
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
        candidate: None,
        permit: Some(permit),
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
    /// The user whose credentials were accepted, until the session is authenticated.
    candidate: Option<User>,
    /// The connection's place in the limits, given back as soon as the session ends.
    permit: Option<Permit>,
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
            if session.is_closed() {
                // The place is free before the client sees the last reply, so that it
                // may reconnect at once.
                self.permit = None;
            }
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
                match policy::check_recipient(&shared.store, &forward_path, authenticated) {
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
            Event::MessageReceived {
                envelope,
                body,
                helo,
                protocol,
            } => self.message(session, envelope, body, helo, protocol).await,
        }
    }

    async fn message(
        &mut self,
        session: &mut Session,
        envelope: golub_types::Envelope,
        body: Vec<u8>,
        helo: String,
        protocol: &'static str,
    ) {
        let shared = self.shared;
        let id = new_queue_id();
        let recipients = policy::canonical_recipients(
            &shared.store,
            &shared.config.hostname,
            &envelope.forward_paths,
        )
        .await;
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
            helo: &helo,
            peer: self.peer.ip(),
            hostname: &shared.config.hostname,
            protocol,
            tls: tls.as_deref(),
            id,
            single_recipient: single,
            unix_time: now_unix(),
        });
        let mut content = Vec::with_capacity(trace.len() + body.len());
        content.extend_from_slice(trace.as_bytes());
        append_with_crlf(&mut content, &body);
        drop(body);
        let size = content.len();
        let body = if size > shared.store.options().inline_body_limit {
            let store = shared.store.clone();
            match tokio::task::spawn_blocking(move || store.prepare_body(content)).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::WriterGone),
            }
        } else {
            Ok(golub_store::BodyRef::Inline(content))
        };
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

/// Appends `body` with every bare LF made CRLF. DATA never holds one (it is refused), but
/// BDAT chunks may; stored messages have one line-end form, so that the sizes POP3 and
/// IMAP report are the octets the client receives.
fn append_with_crlf(out: &mut Vec<u8>, body: &[u8]) {
    let mut prev = 0u8;
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' && prev != b'\r' {
            out.extend_from_slice(&body[start..i]);
            out.extend_from_slice(b"\r\n");
            start = i + 1;
        }
        prev = b;
    }
    out.extend_from_slice(&body[start..]);
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

#[cfg(test)]
mod tests {
    use super::append_with_crlf;

    #[test]
    fn bare_lf_becomes_crlf_and_crlf_stays() {
        for (input, want) in [
            (&b"a\nb\r\nc\n"[..], &b"a\r\nb\r\nc\r\n"[..]),
            (b"\n\n", b"\r\n\r\n"),
            (b"no line end", b"no line end"),
            (b"\r\n", b"\r\n"),
            (b"", b""),
        ] {
            let mut out = b"H: v\r\n".to_vec();
            append_with_crlf(&mut out, input);
            assert_eq!(&out[6..], want, "{input:?}");
        }
    }
}
