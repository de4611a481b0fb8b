//! imapd: the IMAP listeners (imap with STARTTLS, imaps with implicit TLS). The protocol
//! is golub-imap's sans-IO `Session`, run by the shared loop in `net::session`; this
//! module answers its events: logins (the one login path and throttle of every
//! protocol), and the mailbox commands, on the store's mailbox operations.
//!
//! A selected mailbox is a [`MailboxView`]: the session's numbering of its messages. It
//! follows the store by reading what changed since its highest modseq whenever this
//! user's mailboxes changed ([`crate::changes`]), and reports those changes as untagged
//! responses at the moments RFC 9051 §7 allows: after each command, and at once while
//! the client IDLEs.

mod commands;
mod list;

use crate::Shared;
use crate::auth::{self, LoginFailure};
use crate::net::listener::{Accepted, accept_loop};
use crate::net::session::{Handler, Opened, drive, open};
use crate::reads;
use golub_imap::view::{Changes, Entry, Flags, MailboxView, Report};
use golub_imap::{AuthFailure, Command, Event, ImapConfig, Session, State, Status};
use golub_store::{Store, User};
use golub_types::sasl::Credential;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// The capabilities served once logged in, beyond the session's own.
const CAPABILITIES: &[&str] = &[
    "IDLE",
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "MOVE",
    "CHILDREN",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "ESEARCH",
    "CONDSTORE",
    "QRESYNC",
    "BINARY",
    "STATUS=SIZE",
    "UTF8=ACCEPT",
];

/// Accepts IMAP connections on `listener` until shutdown; `implicit_tls` for imaps.
pub async fn serve(
    listener: TcpListener,
    implicit_tls: bool,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let proto = if implicit_tls { "imaps" } else { "imap" };
    accept_loop(listener, proto, shared, shutdown, move |a| {
        session(a, implicit_tls)
    })
    .await
}

fn imap_config(shared: &Shared, implicit_tls: bool) -> ImapConfig {
    let mut limits = golub_imap::frame::FrameLimits::default();
    // An APPEND literal is a message: the message size limit applies.
    limits.max_literal = shared.config.limits.max_message_size as u64;
    limits.max_command = shared
        .config
        .limits
        .max_message_size
        .saturating_add(1 << 20);
    ImapConfig {
        hostname: shared.config.hostname.clone(),
        starttls_available: !implicit_tls,
        tls_active: implicit_tls,
        allow_plaintext_auth: shared.config.auth.allow_plaintext,
        timeout: shared
            .config
            .pop3_timeout()
            .max(std::time::Duration::from_secs(30 * 60)),
        limits,
        capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        ..ImapConfig::default()
    }
}

async fn session(a: Accepted, implicit_tls: bool) {
    let refusal =
        |_: &Shared| b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n".to_vec();
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
    let mut session = Session::new(imap_config(&shared, implicit_tls), Instant::now());
    let mut driver = Driver {
        shared: &shared,
        peer: peer.ip(),
        user: None,
        wake: None,
        selected: None,
        resume: None,
        dirty: false,
        append: None,
    };
    if let Err(e) = drive(&mut driver, &mut session, conn, permit, &shared, shutdown).await {
        debug!(error = %e, "session ended with an i/o error");
    }
}

/// The selected mailbox.
pub(crate) struct Selected {
    pub folder_id: i64,
    pub read_only: bool,
    pub view: MailboxView,
    /// SEARCHRES (RFC 5182): the UIDs of the last SEARCH RETURN (SAVE), ascending.
    pub saved: Vec<u32>,
}

/// A command answered in parts (a long FETCH): what is left.
pub(crate) enum Resume {
    Fetch(commands::FetchJob),
}

pub(crate) struct Driver<'a> {
    pub shared: &'a Shared,
    pub peer: std::net::IpAddr,
    pub user: Option<User>,
    /// Wakes the session when this user's mailboxes change.
    pub wake: Option<watch::Receiver<u64>>,
    pub selected: Option<Selected>,
    pub resume: Option<Resume>,
    /// The mailboxes changed since the view last looked.
    pub dirty: bool,
    /// A streamed APPEND being written.
    pub append: Option<commands::AppendJob>,
}

impl Handler for Driver<'_> {
    type Session = Session;

    fn is_tls_request(event: &Event) -> bool {
        matches!(event, Event::StartTls)
    }

    async fn handle(&mut self, session: &mut Session, event: Event) {
        match event {
            Event::StartTls | Event::IdleEnded => {}
            Event::AuthAttempted {
                mechanism,
                authzid,
                user,
                credential,
            } => match self.login(&mechanism, &authzid, &user, &credential).await {
                Ok(()) => session.auth_succeeded(),
                Err(why) => session.auth_failed(why),
            },
            Event::CredentialsNeeded { user, .. } => {
                match auth::scram_credentials(self.shared, "imap", self.peer, &user).await {
                    Ok((creds, nonce)) => session.scram_credentials(creds, &nonce),
                    Err(why) => session.auth_failed(auth_failure(why)),
                }
            }
            Event::Command { tag, command } => self.command(session, tag, command).await,
            Event::Resume => self.resume(session).await,
            Event::AppendStart {
                mailbox,
                flags,
                date,
                size,
                ..
            } => {
                self.append_start(session, &mailbox, flags, date, size)
                    .await
            }
            Event::AppendData(data) => self.append_data(&data),
            Event::AppendEnd { ok } => {
                let done = self.append_end(ok).await;
                self.finish(session, Some(done), true).await;
            }
        }
    }

    fn wake_channel(&mut self) -> Option<&mut watch::Receiver<u64>> {
        self.wake.as_mut()
    }

    async fn woken(&mut self, session: &mut Session) {
        // Seen now, so that the channel does not wake the loop again; read with the
        // next command's response, or at once while the client IDLEs.
        if let Some(w) = &mut self.wake {
            w.borrow_and_update();
        }
        self.dirty = true;
        if session.is_idle() {
            self.sync(session, true).await;
        }
    }
}

/// IMAP's answer to a refused login.
fn auth_failure(why: LoginFailure) -> AuthFailure {
    match why {
        LoginFailure::Blocked => AuthFailure::Blocked,
        LoginFailure::Invalid => AuthFailure::Invalid,
        LoginFailure::TempFail => AuthFailure::TempFail,
    }
}

/// Runs a blocking store call (a write, which waits for its group commit, or a long
/// read) on tokio's blocking threads.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> golub_store::Result<T> + Send + 'static,
) -> golub_store::Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .unwrap_or_else(|e| Err(golub_store::Error::Internal(e.to_string())))
}

/// The view's form of the store's message state.
pub(crate) fn entry(m: &golub_store::MessageFlags) -> Entry {
    Entry {
        uid: m.uid,
        flags: Flags::from_store(&m.flags),
        modseq: m.modseq,
        recent: false,
    }
}

impl Driver<'_> {
    async fn login(
        &mut self,
        mechanism: &str,
        authzid: &str,
        user: &str,
        credential: &Credential,
    ) -> Result<(), AuthFailure> {
        let attempt = auth::Attempt {
            proto: "imap",
            ip: self.peer,
            mechanism,
            authzid,
            authcid: user,
            credential,
        };
        let account = auth::login(self.shared, attempt)
            .await
            .map_err(auth_failure)?;
        self.wake = Some(self.shared.changes.watch(account.id));
        self.user = Some(account);
        Ok(())
    }

    pub(crate) fn user_id(&self) -> i64 {
        self.user.as_ref().map_or(-1, |u| u.id)
    }

    /// Tells every session of this user (this one too) that its mailboxes changed.
    pub(crate) fn changed(&self) {
        if let Some(u) = &self.user {
            self.shared.changes.changed(u.id);
        }
    }

    /// How this session wants changes reported.
    pub(crate) fn report(&self, session: &Session, expunge: bool) -> Report {
        let enabled = session.enabled();
        Report {
            expunge,
            condstore: enabled.condstore,
            qresync: enabled.qresync,
            recent: !enabled.imap4rev2,
        }
    }

    /// Brings the selected mailbox's view up to date and writes what changed.
    /// `expunge`: expunges may be reported now.
    pub(crate) async fn sync(&mut self, session: &mut Session, expunge: bool) {
        let report = self.report(session, expunge);
        if let Some(w) = &mut self.wake
            && w.has_changed().unwrap_or(false)
        {
            w.borrow_and_update();
            self.dirty = true;
        }
        let Some(sel) = &mut self.selected else {
            return;
        };
        if !self.dirty {
            // Nothing changed since the last look; only expunges held back may be due.
            if expunge && sel.view.has_pending_expunges() {
                sel.view.apply(Changes::default(), report, session.output());
            }
            return;
        }
        self.dirty = false;
        let (folder, since) = (sel.folder_id, sel.view.highestmodseq);
        let changes = reads::read(&self.shared.store, move |s| {
            let c = s.changes_since(folder, since)?;
            let uidnext = s.folder_by_id(folder)?.map_or(0, |f| f.uidnext);
            Ok((c, uidnext))
        })
        .await;
        match changes {
            Ok((c, uidnext)) => {
                // New messages are \Recent in the first read-write session to see them.
                let largest = sel.view.largest_uid();
                let newest = c
                    .changed
                    .iter()
                    .map(|m| m.uid)
                    .filter(|&u| u > largest)
                    .max();
                let mut recent_from = None;
                if let Some(newest) = newest
                    && !sel.read_only
                    && report.recent
                {
                    let upto = newest.saturating_add(1);
                    match blocking(&self.shared.store, move |s| s.claim_recent(folder, upto)).await
                    {
                        Ok(from) => recent_from = Some(from),
                        Err(e) => warn!(error = %e, "cannot claim recent messages"),
                    }
                }
                let changes = Changes {
                    changed: c.changed.iter().map(entry).collect(),
                    vanished: c.vanished,
                    highestmodseq: c.highestmodseq,
                    uidnext,
                    recent_from,
                };
                sel.view.apply(changes, report, session.output());
            }
            Err(e) => warn!(error = %e, "cannot read mailbox changes"),
        }
    }

    async fn command(&mut self, session: &mut Session, _tag: String, command: Command) {
        // Only commands by sequence number hold back expunges (RFC 9051 §7.5.1).
        let expunge_ok = match &command {
            Command::Fetch(f) => f.uid,
            Command::Store(s) => s.uid,
            Command::Search(s) => s.uid,
            Command::Copy { uid, .. } | Command::Move { uid, .. } => *uid,
            _ => true,
        };
        if matches!(command, Command::Idle) {
            self.sync(session, true).await;
            session.idle();
            return;
        }
        let done = self.run(session, command).await;
        self.finish(session, done, expunge_ok).await;
    }

    /// Reports what changed, then the tagged response; nothing while the command goes on
    /// in parts.
    pub(crate) async fn finish(
        &mut self,
        session: &mut Session,
        done: Option<Done>,
        expunge_ok: bool,
    ) {
        if let Some((status, code, text)) = done {
            self.sync(session, expunge_ok).await;
            session.complete(status, code.as_deref(), &text);
        }
    }

    async fn resume(&mut self, session: &mut Session) {
        match self.resume.take() {
            Some(Resume::Fetch(job)) => {
                let uid = job.uid;
                let done = self.fetch_more(session, job).await;
                self.finish(session, done, uid).await;
            }
            None => session.complete(Status::Ok, None, "Completed"),
        }
    }
}

/// What the driver tells the session when a command is done: status, code, text.
pub(crate) type Done = (Status, Option<String>, String);

pub(crate) fn ok(text: &str) -> Done {
    (Status::Ok, None, text.to_string())
}

pub(crate) fn no(code: Option<&str>, text: &str) -> Done {
    (Status::No, code.map(str::to_string), text.to_string())
}

pub(crate) fn bad(text: &str) -> Done {
    (Status::Bad, None, text.to_string())
}

/// A store failure, as the client hears of it.
pub(crate) fn server_bug(e: golub_store::Error) -> Done {
    warn!(error = %e, "imap: store failure");
    no(Some("SERVERBUG"), "Internal error, try again later")
}

/// Whether the session is in the state to run a command on the selected mailbox.
pub(crate) fn selected_read_only(session: &Session) -> bool {
    matches!(session.state(), State::Selected { read_only: true })
}

pub(crate) fn log_select(user: &str, name: &str, messages: usize) {
    info!(user, mailbox = name, messages, "mailbox selected");
}
