//! pop3d: the POP3 listeners (pop3 with STLS, pop3s with implicit TLS) and the driver of
//! each session. The protocol is golub-pop3's sans-IO `Session`; this module answers its
//! events: logins (throttled like submission), the maildrop (the user's INBOX of the IMAP
//! model, so UIDLs are `UIDVALIDITY.UID` and stay the same forever), message content, and
//! the UPDATE state, whose deletions are expunges visible to IMAP at once.
//!
//! RFC 1939 §8: the maildrop is locked per user for the session; a second POP3 login gets
//! `-ERR [IN-USE]`. The lock is POP3's own and never blocks IMAP.

use crate::Shared;
use crate::auth::{self, Verdict};
use crate::net::listener::{Accepted, accept_loop};
use crate::net::stream::{Conn, ReadBuffer, Waited, handshake, wait};
use golub_pop3::{AuthFailure, Event, MessageInfo, Pop3Config, Session};
use golub_store::{Store, User};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// Users whose maildrop a POP3 session holds.
#[derive(Default)]
pub struct MaildropLocks {
    held: Mutex<HashSet<i64>>,
}

/// A held maildrop lock; released when dropped.
pub struct MaildropLock {
    locks: Arc<MaildropLocks>,
    user: i64,
}

impl MaildropLocks {
    pub fn try_lock(self: &Arc<Self>, user: i64) -> Option<MaildropLock> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(user).then(|| MaildropLock {
            locks: self.clone(),
            user,
        })
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.user);
    }
}

/// Accepts POP3 connections on `listener` until shutdown; `implicit_tls` for pop3s.
pub async fn serve(
    listener: TcpListener,
    implicit_tls: bool,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let proto = if implicit_tls { "pop3s" } else { "pop3" };
    accept_loop(listener, proto, shared, shutdown, move |a| {
        session(a, implicit_tls)
    })
    .await
}

fn pop3_config(shared: &Shared, implicit_tls: bool) -> Pop3Config {
    Pop3Config {
        hostname: shared.config.hostname.clone(),
        stls_available: !implicit_tls,
        tls_active: implicit_tls,
        allow_plaintext_auth: shared.config.auth.allow_plaintext,
        command_timeout: shared.config.pop3_timeout(),
        ..Pop3Config::default()
    }
}

async fn session(a: Accepted, implicit_tls: bool) {
    let Accepted {
        stream,
        peer,
        permit,
        shared,
        shutdown,
    } = a;
    let Ok(_permit) = permit else {
        let mut stream = stream;
        let _ = stream
            .write_all(b"-ERR [SYS/TEMP] too many connections, try again later\r\n")
            .await;
        let _ = stream.shutdown().await;
        return;
    };
    let mut conn = Conn::Plain(stream);
    if implicit_tls {
        let timeout = shared.config.command_timeout();
        if handshake(&mut conn, shared.tls.acceptor(), timeout)
            .await
            .is_none()
        {
            return;
        }
    }
    let mut driver = Driver {
        shared: &shared,
        peer: peer.ip(),
        maildrop: None,
    };
    let config = pop3_config(&shared, implicit_tls);
    if let Err(e) = driver.run(conn, config, shutdown).await {
        debug!(error = %e, "session ended with an i/o error");
    }
}

/// The logged-in user's maildrop: the INBOX as it was at login.
struct Maildrop {
    user: User,
    folder_id: i64,
    uids: Vec<u32>,
    infos: Vec<MessageInfo>,
    _lock: MaildropLock,
}

struct Driver<'a> {
    shared: &'a Shared,
    peer: std::net::IpAddr,
    maildrop: Option<Maildrop>,
}

impl Driver<'_> {
    async fn run(
        &mut self,
        mut conn: Conn,
        config: Pop3Config,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let mut session = Session::new(config, Instant::now());
        let mut buf = ReadBuffer::default();
        let mut out = Vec::new();
        let mut shutting_down = *shutdown.borrow();
        if shutting_down {
            session.shutdown();
        }
        loop {
            while let Some(event) = session.poll_event() {
                if let Event::StlsRequested = event {
                    session.poll_output(&mut out);
                    conn.write_all(&out).await?;
                    conn.flush().await?;
                    out.clear();
                    let acceptor = self.shared.tls.acceptor();
                    let timeout = self.shared.config.command_timeout();
                    if handshake(&mut conn, acceptor, timeout).await.is_none() {
                        return Ok(());
                    }
                    session.tls_established(Instant::now());
                    continue;
                }
                self.handle_event(&mut session, event).await;
                // Large retrievals go out as they are produced.
                session.poll_output(&mut out);
                if out.len() > 64 * 1024 {
                    conn.write_all(&out).await?;
                    out.clear();
                }
            }
            session.poll_output(&mut out);
            if !out.is_empty() {
                conn.write_all(&out).await?;
                conn.flush().await?;
                out.clear();
            }
            if session.is_closed() {
                let _ = conn.shutdown().await;
                return Ok(());
            }
            let deadline = session.poll_timeout();
            match wait(&mut conn, &mut buf, deadline, &mut shutdown, shutting_down).await? {
                Waited::Input(n) => {
                    session.handle_input(buf.filled(n), Instant::now());
                    buf.consumed(n);
                }
                // A dropped connection never reaches UPDATE: nothing is deleted.
                Waited::Closed => return Ok(()),
                Waited::Timeout => session.handle_timeout(Instant::now()),
                Waited::Shutdown => {
                    shutting_down = true;
                    session.shutdown();
                }
            }
        }
    }

    async fn handle_event(&mut self, session: &mut Session, event: Event) {
        match event {
            Event::StlsRequested => {}
            Event::AuthAttempted {
                mechanism,
                authzid,
                user,
                password,
            } => {
                let failure = self
                    .login(&mechanism, &authzid, &user, password.expose())
                    .await;
                match failure {
                    None => {
                        let drop = self.maildrop.as_ref().map(|m| m.uids.len()).unwrap_or(0);
                        info!(user = %user, ip = %self.peer, mechanism = %mechanism, messages = drop, "login succeeded");
                        let infos = self.maildrop_infos();
                        session.auth_succeeded(infos);
                    }
                    Some(why) => session.auth_failed(why),
                }
            }
            Event::ContentNeeded { index, .. } => {
                let Some(m) = &self.maildrop else {
                    session.content_unavailable();
                    return;
                };
                let Some(&uid) = m.uids.get(index) else {
                    session.content_unavailable();
                    return;
                };
                let folder = m.folder_id;
                let inline = m.infos.get(index).is_some_and(|i| {
                    i.size <= self.shared.store.options().inline_body_limit as u64
                });
                // A body inside the database is read in microseconds: no thread hand-off.
                // A body in a file may take a disk read: off the runtime.
                let content = if inline {
                    Ok(self.shared.store.message_content(folder, uid))
                } else {
                    let store = self.shared.store.clone();
                    tokio::task::spawn_blocking(move || store.message_content(folder, uid)).await
                };
                match content {
                    Ok(Ok(c)) => session.provide_content(c),
                    Ok(Err(e)) => {
                        warn!(uid, error = %e, "cannot read message");
                        session.content_unavailable();
                    }
                    Err(_) => session.content_unavailable(),
                }
            }
            Event::UpdateRequested { deleted } => {
                let Some(m) = &self.maildrop else {
                    session.update_done(true);
                    return;
                };
                if deleted.is_empty() {
                    session.update_done(true);
                    return;
                }
                let uids: Vec<u32> = deleted
                    .iter()
                    .filter_map(|&i| m.uids.get(i).copied())
                    .collect();
                let n = uids.len();
                let store = self.shared.store.clone();
                let folder = m.folder_id;
                let user = m.user.address.clone();
                let result = tokio::task::spawn_blocking(move || store.expunge(folder, uids)).await;
                match result {
                    Ok(Ok(removed)) => {
                        // Fewer removed than asked means another client (IMAP) expunged some
                        // first: they are gone either way.
                        info!(user = %user, deleted = removed, requested = n, "pop3 update");
                        session.update_done(true);
                    }
                    Ok(Err(e)) => {
                        warn!(user = %user, error = %e, "pop3 update failed");
                        session.update_done(false);
                    }
                    Err(_) => session.update_done(false),
                }
            }
        }
    }

    /// Checks the credentials, locks the maildrop and loads it; the failure kind if not.
    async fn login(
        &mut self,
        mechanism: &str,
        authzid: &str,
        user: &str,
        password: &str,
    ) -> Option<AuthFailure> {
        let shared = self.shared;
        let failure_delay = match shared.auth_throttle.check(self.peer, user, Instant::now()) {
            Verdict::Allow { failure_delay } => failure_delay,
            Verdict::Blocked => {
                warn!(user = %user, ip = %self.peer, "login refused: too many failures");
                return Some(AuthFailure::Blocked);
            }
        };
        let checked = if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(user) {
            Ok(None)
        } else {
            auth::verify(&shared.store, user, password).await
        };
        let account = match checked {
            Ok(Some(u)) => u,
            Ok(None) => {
                warn!(user = %user, ip = %self.peer, mechanism, "login failed");
                shared.metrics.auth("pop3", false);
                shared.auth_throttle.failed(self.peer, user, Instant::now());
                tokio::time::sleep(failure_delay).await;
                return Some(AuthFailure::Invalid);
            }
            Err(e) => {
                warn!(user = %user, error = %e, "password check failed");
                return Some(AuthFailure::TempFail);
            }
        };
        shared.auth_throttle.succeeded(user);
        shared.metrics.auth("pop3", true);
        let Some(lock) = shared.pop3_locks.try_lock(account.id) else {
            info!(user = %account.address, "maildrop in use");
            return Some(AuthFailure::InUse);
        };
        match load_maildrop(&shared.store, account, lock) {
            Ok(m) => {
                self.maildrop = Some(m);
                None
            }
            Err(e) => {
                warn!(user = %user, error = %e, "cannot load the maildrop");
                Some(AuthFailure::TempFail)
            }
        }
    }

    fn maildrop_infos(&self) -> Vec<MessageInfo> {
        self.maildrop
            .as_ref()
            .map(|m| m.infos.clone())
            .unwrap_or_default()
    }
}

fn load_maildrop(store: &Store, user: User, lock: MaildropLock) -> golub_store::Result<Maildrop> {
    let folder = store
        .folder(user.id, "INBOX")?
        .ok_or_else(|| golub_store::Error::NotFound("INBOX".into()))?;
    let messages = store.messages(folder.id)?;
    Ok(Maildrop {
        infos: messages
            .iter()
            .map(|m| MessageInfo {
                size: m.size,
                uid: format!("{}.{}", folder.uidvalidity, m.uid),
            })
            .collect(),
        uids: messages.iter().map(|m| m.uid).collect(),
        user,
        folder_id: folder.id,
        _lock: lock,
    })
}
