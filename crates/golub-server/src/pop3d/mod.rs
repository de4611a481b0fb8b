//! pop3d: the POP3 listeners (pop3 with STLS, pop3s with implicit TLS). The protocol is
//! golub-pop3's sans-IO `Session`, run by the shared loop in `net::session`; this module
//! answers its events: logins (throttled like submission), the maildrop (the user's INBOX of the IMAP
//! model, so UIDLs are `UIDVALIDITY.UID` and stay the same forever), message content, and
//! the UPDATE state, whose deletions are expunges visible to IMAP at once.
//!
//! RFC 1939 §8: the maildrop is locked per user for the session; a second POP3 login gets
//! `-ERR [IN-USE]`. The lock is POP3's own and never blocks IMAP.

use crate::Shared;
use crate::auth::{self, LoginFailure};
use crate::net::listener::{Accepted, accept_loop};
use crate::net::session::{Handler, Opened, drive, open};
use crate::reads;
use golub_pop3::{AuthFailure, Event, MessageInfo, Pop3Config, Session};
use golub_store::{Store, User};
use golub_types::sasl::Credential;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
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
        sasl_mechanisms: ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
            .map(String::from)
            .to_vec(),
        ..Pop3Config::default()
    }
}

async fn session(a: Accepted, implicit_tls: bool) {
    let refusal =
        |_: &Shared| b"-ERR [SYS/TEMP] too many connections, try again later\r\n".to_vec();
    let Some(Opened {
        conn,
        peer,
        permit,
        shared,
        shutdown,
        ..
    }) = open(a, implicit_tls, refusal).await
    else {
        return;
    };
    let mut session = Session::new(pop3_config(&shared, implicit_tls), Instant::now());
    let mut driver = Driver {
        shared: &shared,
        peer: peer.ip(),
        maildrop: None,
    };
    // A dropped connection never reaches UPDATE: nothing is deleted.
    if let Err(e) = drive(&mut driver, &mut session, conn, permit, &shared, shutdown).await {
        debug!(error = %e, "session ended with an i/o error");
    }
}

/// The logged-in user's maildrop: the INBOX as it was at login.
struct Maildrop {
    user: User,
    folder_id: i64,
    uids: Vec<u32>,
    infos: Vec<MessageInfo>,
    /// The index of the last RETR, to tell a client that retrieves in order.
    last_retrieved: Option<usize>,
    /// Bodies read ahead of such a client, by index.
    read_ahead: Vec<(usize, Vec<u8>)>,
    _lock: MaildropLock,
}

/// The most bodies, and bytes, read ahead of a client that retrieves in order.
const READ_AHEAD_MESSAGES: usize = 16;
const READ_AHEAD_BYTES: u64 = 512 * 1024;

impl Maildrop {
    /// The body of message `index`, if it was read ahead.
    fn take_read_ahead(&mut self, index: usize) -> Option<Vec<u8>> {
        let at = self.read_ahead.iter().position(|(i, _)| *i == index)?;
        Some(self.read_ahead.swap_remove(at).1)
    }

    /// Message `index` and the ones after it to read in one go: bodies inside the
    /// database, up to the read-ahead limits.
    fn read_ahead_from(&self, index: usize, inline_limit: u64) -> Vec<(usize, u32)> {
        let mut bytes = 0;
        let mut wanted = Vec::new();
        for (i, (&uid, info)) in self.uids.iter().zip(&self.infos).enumerate().skip(index) {
            let first = i == index;
            if !first
                && (info.size > inline_limit
                    || wanted.len() >= READ_AHEAD_MESSAGES
                    || bytes + info.size > READ_AHEAD_BYTES)
            {
                break;
            }
            bytes += info.size;
            wanted.push((i, uid));
        }
        wanted
    }

    /// Keeps the bodies read after message `index`'s (those that could be read; a failed
    /// one is read again, and its error reported, when it is asked for), and returns it.
    fn keep_read_ahead(
        &mut self,
        index: usize,
        bodies: Vec<(usize, golub_store::Result<Vec<u8>>)>,
    ) -> golub_store::Result<Vec<u8>> {
        let mut wanted = Err(golub_store::Error::Internal(
            "a read lost its result".into(),
        ));
        self.read_ahead.clear();
        for (i, body) in bodies {
            if i == index {
                wanted = body;
            } else if let Ok(body) = body {
                self.read_ahead.push((i, body));
            }
        }
        wanted
    }
}

struct Driver<'a> {
    shared: &'a Shared,
    peer: std::net::IpAddr,
    maildrop: Option<Maildrop>,
}

impl Handler for Driver<'_> {
    type Session = Session;

    fn is_tls_request(event: &Event) -> bool {
        matches!(event, Event::StlsRequested)
    }

    async fn handle(&mut self, session: &mut Session, event: Event) {
        self.handle_event(session, event).await
    }
}

impl Driver<'_> {
    async fn handle_event(&mut self, session: &mut Session, event: Event) {
        match event {
            Event::StlsRequested => {}
            Event::AuthAttempted {
                mechanism,
                authzid,
                user,
                credential,
            } => {
                let failure = self.login(&mechanism, &authzid, &user, &credential).await;
                match failure {
                    None => {
                        let drop = self.maildrop.as_ref().map(|m| m.uids.len()).unwrap_or(0);
                        info!(user = %user, messages = drop, "maildrop opened");
                        let infos = self.maildrop_infos();
                        session.auth_succeeded(infos);
                    }
                    Some(why) => session.auth_failed(why),
                }
            }
            Event::CredentialsNeeded { user, .. } => {
                match auth::scram_credentials(self.shared, "pop3", self.peer, &user).await {
                    Ok((creds, nonce)) => session.scram_credentials(creds, &nonce),
                    Err(why) => session.auth_failed(auth_failure(why)),
                }
            }
            Event::ContentNeeded { index, top } => {
                let shared = self.shared;
                let Some(m) = &mut self.maildrop else {
                    session.content_unavailable();
                    return;
                };
                let Some(&uid) = m.uids.get(index) else {
                    session.content_unavailable();
                    return;
                };
                let sequential = top.is_none() && m.last_retrieved.is_some_and(|l| l + 1 == index);
                m.last_retrieved = top.is_none().then_some(index);
                if let Some(c) = m.take_read_ahead(index) {
                    session.provide_content(c);
                    return;
                }
                let folder = m.folder_id;
                let inline_limit = shared.store.options().inline_body_limit as u64;
                let inline = m.infos.get(index).is_some_and(|i| i.size <= inline_limit);
                // Both off the runtime: bodies inside the database on the store's reader
                // threads; a body in a file, which may be large, on tokio's blocking
                // threads, so that it never keeps the reader threads from other sessions.
                let content = if inline {
                    // A client retrieving the maildrop in order gets the next bodies read
                    // with this one: one hand-off for many RETRs.
                    let wanted = if sequential {
                        m.read_ahead_from(index, inline_limit)
                    } else {
                        vec![(index, uid)]
                    };
                    let read = reads::read(&shared.store, move |s| {
                        Ok(wanted
                            .into_iter()
                            .map(|(i, uid)| (i, s.message_content(folder, uid)))
                            .collect::<Vec<_>>())
                    })
                    .await;
                    match read {
                        Ok(bodies) => m.keep_read_ahead(index, bodies),
                        Err(e) => Err(e),
                    }
                } else {
                    let store = shared.store.clone();
                    tokio::task::spawn_blocking(move || store.message_content(folder, uid))
                        .await
                        .unwrap_or_else(|e| Err(golub_store::Error::Internal(e.to_string())))
                };
                match content {
                    Ok(c) => session.provide_content(c),
                    Err(e) => {
                        warn!(uid, error = %e, "cannot read message");
                        session.content_unavailable();
                    }
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
                let user_id = m.user.id;
                let result = tokio::task::spawn_blocking(move || store.expunge(folder, uids)).await;
                match result {
                    Ok(Ok(removed)) => {
                        self.shared.changes.changed(user_id);
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
        credential: &Credential,
    ) -> Option<AuthFailure> {
        // A new login lets go of the maildrop of an earlier one the client abandoned.
        self.maildrop = None;
        let shared = self.shared;
        let attempt = auth::Attempt {
            proto: "pop3",
            ip: self.peer,
            mechanism,
            authzid,
            authcid: user,
            credential,
        };
        let account = match auth::login(shared, attempt).await {
            Ok(account) => account,
            Err(why) => return Some(auth_failure(why)),
        };
        let Some(lock) = shared.pop3_locks.try_lock(account.id) else {
            info!(user = %account.address, "maildrop in use");
            return Some(AuthFailure::InUse);
        };
        match load_maildrop(&shared.store, account, lock).await {
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

/// POP3's answer to a refused login.
fn auth_failure(why: LoginFailure) -> AuthFailure {
    match why {
        LoginFailure::Blocked => AuthFailure::Blocked,
        LoginFailure::Invalid => AuthFailure::Invalid,
        LoginFailure::TempFail => AuthFailure::TempFail,
    }
}

/// Reads the user's INBOX (on the store's reader threads) into a maildrop.
async fn load_maildrop(
    store: &Store,
    user: User,
    lock: MaildropLock,
) -> golub_store::Result<Maildrop> {
    let user_id = user.id;
    let (folder, messages) = reads::read(store, move |s| {
        let folder = s
            .folder(user_id, "INBOX")?
            .ok_or_else(|| golub_store::Error::NotFound("INBOX".into()))?;
        let messages = s.messages(folder.id)?;
        Ok((folder, messages))
    })
    .await?;
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
        last_retrieved: None,
        read_ahead: Vec::new(),
        _lock: lock,
    })
}
