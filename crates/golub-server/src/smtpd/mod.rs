//! smtpd: the SMTP listener and the driver loop of each session. The protocol itself is
//! golub-smtp's sans-IO `Session`; this module feeds it bytes, answers its events with
//! decisions (policy, queue), writes its output and arms its timer.

mod limits;
mod policy;

pub use limits::ConnectionLimiter;

use crate::Shared;
use crate::cleanup::{TraceInfo, now_unix, received_header};
use crate::queue::{enqueue, new_queue_id};
use golub_smtp::{Event, Session};
use golub_store::{Error as StoreError, NewMessage};
use golub_types::{EnhancedCode, ForwardPath, Reply};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

/// Accepts connections on `listener` until shutdown.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let id = shared.next_session_id();
        let span = info_span!("session", id, proto = "smtp", peer = %peer);
        tokio::spawn(
            async move {
                let permit = shared.limiter.try_admit(peer.ip());
                match permit {
                    Ok(_permit) => {
                        if let Err(e) = run_session(stream, peer, &shared, shutdown).await {
                            debug!(error = %e, "session ended with an i/o error");
                        }
                    }
                    Err(why) => {
                        warn!(?why, "connection refused by limit");
                        let reply = Reply::new(
                            421,
                            EnhancedCode(4, 7, 0),
                            format!(
                                "{} too many connections, try again later",
                                shared.config.hostname
                            ),
                        );
                        let mut session = Session::refuse(shared.session_config.clone(), reply);
                        let mut out = Vec::new();
                        session.poll_output(&mut out);
                        let mut stream = stream;
                        let _ = stream.write_all(&out).await;
                        let _ = stream.shutdown().await;
                    }
                }
            }
            .instrument(span),
        );
    }
}

async fn run_session(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    debug!("connected");
    let mut session = Session::new(shared.session_config.clone(), Instant::now());
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(4096);
    let mut shutting_down = *shutdown.borrow();
    if shutting_down {
        session.shutdown();
    }
    loop {
        while let Some(event) = session.poll_event() {
            handle_event(&mut session, event, peer, shared).await;
        }
        session.poll_output(&mut out);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if session.is_closed() {
            let _ = stream.shutdown().await;
            debug!("closed");
            return Ok(());
        }
        let deadline = session.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) => {
                    debug!("client closed the connection");
                    return Ok(());
                }
                Ok(n) => session.handle_input(&buf[..n], Instant::now()),
                Err(e) => return Err(e),
            },
            _ = sleep => session.handle_timeout(Instant::now()),
            _ = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                session.shutdown();
            }
        }
    }
}

async fn handle_event(session: &mut Session, event: Event, peer: SocketAddr, shared: &Shared) {
    match event {
        Event::Greeted { name, extended } => debug!(helo = %name, extended, "greeted"),
        Event::MailFrom { reverse_path, .. } => {
            debug!(from = %reverse_path, "mail from");
            session.accept_mail();
        }
        Event::RcptTo { forward_path } => {
            let store = shared.store.clone();
            let path = forward_path.clone();
            match policy::check_recipient(&store, &path) {
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
        Event::MessageReceived {
            envelope,
            body,
            helo,
            protocol,
        } => {
            let id = new_queue_id();
            let recipients: Vec<String> = envelope
                .forward_paths
                .iter()
                .map(|p| policy::canonical_recipient(&shared.store, &shared.config.hostname, p))
                .collect();
            let single = match envelope.forward_paths.as_slice() {
                [ForwardPath::Mailbox(m)] => Some(m.to_string()),
                [ForwardPath::Postmaster] => Some("postmaster".to_string()),
                _ => None,
            };
            let trace = received_header(&TraceInfo {
                helo: &helo,
                peer: peer.ip(),
                hostname: &shared.config.hostname,
                protocol,
                id,
                single_recipient: single,
                unix_time: now_unix(),
            });
            let mut content = Vec::with_capacity(trace.len() + body.len());
            content.extend_from_slice(trace.as_bytes());
            content.extend_from_slice(&body);
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
                Ok(id) => {
                    info!(queue_id = %id, from = %from, size, nrcpt = envelope.forward_paths.len(), "message accepted");
                    session.accept_message(id);
                    shared.delivery.notify(id);
                }
                Err(e) => {
                    let reply = reply_for_store_error(&e);
                    warn!(queue_id = %id, error = %e, status = reply.code, "message not queued");
                    session.reject(reply);
                }
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
