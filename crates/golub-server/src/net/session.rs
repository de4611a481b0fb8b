//! The one driver loop every protocol runs: connection admission and implicit TLS, then
//! feed the sans-IO session its input, answer its events through the protocol's
//! [`Handler`], write its output, arm its timer, do the STARTTLS/STLS handshake when it
//! asks, and close it on shutdown. A protocol brings its session type and its handler;
//! the loop is the same for SMTP, POP3 and IMAP.

use super::limits::Permit;
use super::listener::Accepted;
use super::stream::{Conn, ReadBuffer, TlsInfo, Waited, handshake, wait};
use crate::Shared;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::debug;

/// Output beyond this is written out between events, so that a long answer (a large
/// RETR or FETCH) streams instead of piling up.
const FLUSH_AT: usize = 64 * 1024;

/// What the driver loop needs of a protocol's sans-IO session.
pub trait SansIo: Send {
    type Event: Send;
    fn poll_event(&mut self) -> Option<Self::Event>;
    fn poll_output(&mut self, out: &mut Vec<u8>);
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_input(&mut self, input: &[u8], now: Instant);
    fn handle_timeout(&mut self, now: Instant);
    fn is_closed(&self) -> bool;
    /// The server is stopping: say so and close.
    fn shutdown(&mut self);
    fn tls_established(&mut self, now: Instant);
}

/// A protocol's answers to its session's events.
pub trait Handler: Send {
    type Session: SansIo;

    /// True for the event that asks for the TLS handshake (STARTTLS, STLS): the loop
    /// writes out what the session has queued, runs the handshake, and tells the
    /// session; the handler does not see the event.
    fn is_tls_request(event: &<Self::Session as SansIo>::Event) -> bool;

    /// The handshake of implicit TLS or of an upgrade is done.
    fn tls_started(&mut self, _info: TlsInfo) {}

    /// A channel whose changes wake the session between commands (IMAP: its mailboxes
    /// changed); none for protocols that only answer their client.
    fn wake_channel(&mut self) -> Option<&mut watch::Receiver<u64>> {
        None
    }

    /// The wake-up channel changed.
    fn woken(&mut self, _session: &mut Self::Session) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Answers one event with the session's decision.
    fn handle(
        &mut self,
        session: &mut Self::Session,
        event: <Self::Session as SansIo>::Event,
    ) -> impl Future<Output = ()> + Send;
}

/// An admitted connection, after its implicit TLS handshake if any.
pub struct Opened {
    pub conn: Conn,
    pub peer: SocketAddr,
    pub permit: Permit,
    pub shared: Arc<Shared>,
    pub shutdown: watch::Receiver<bool>,
    /// The handshake's outcome, for implicit-TLS listeners.
    pub tls: Option<TlsInfo>,
}

/// Admits an accepted connection: a connection over a limit gets `refusal(shared)` and
/// is closed; on an implicit-TLS listener the handshake runs first. `None` when the
/// connection ends here.
pub async fn open(
    a: Accepted,
    implicit_tls: bool,
    refusal: impl FnOnce(&Shared) -> Vec<u8>,
) -> Option<Opened> {
    let Accepted {
        mut stream,
        peer,
        permit,
        shared,
        shutdown,
    } = a;
    let permit = match permit {
        Ok(p) => p,
        Err(_) => {
            let _ = stream.write_all(&refusal(&shared)).await;
            let _ = stream.shutdown().await;
            return None;
        }
    };
    let mut conn = Conn::Plain(stream);
    let mut tls = None;
    if implicit_tls {
        let timeout = shared.config.command_timeout();
        tls = Some(handshake(&mut conn, shared.tls.acceptor(), timeout).await?);
    }
    Some(Opened {
        conn,
        peer,
        permit,
        shared,
        shutdown,
        tls,
    })
}

/// Runs `session` on `conn` until it closes, the client goes away, or an I/O error.
/// The connection's place in the limits is given back as soon as the session is closed,
/// before its last reply is written, so that the client may reconnect at once.
pub async fn drive<H: Handler>(
    handler: &mut H,
    session: &mut H::Session,
    mut conn: Conn,
    permit: Permit,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut permit = Some(permit);
    let mut buf = ReadBuffer::default();
    let mut out = Vec::new();
    let mut shutting_down = *shutdown.borrow();
    if shutting_down {
        session.shutdown();
    }
    loop {
        while let Some(event) = session.poll_event() {
            if H::is_tls_request(&event) {
                session.poll_output(&mut out);
                conn.write_all(&out).await?;
                conn.flush().await?;
                out.clear();
                let acceptor = shared.tls.acceptor();
                let timeout = shared.config.command_timeout();
                let Some(info) = handshake(&mut conn, acceptor, timeout).await else {
                    return Ok(());
                };
                handler.tls_started(info);
                session.tls_established(Instant::now());
                continue;
            }
            handler.handle(session, event).await;
            session.poll_output(&mut out);
            if out.len() > FLUSH_AT {
                conn.write_all(&out).await?;
                out.clear();
            }
        }
        session.poll_output(&mut out);
        if session.is_closed() {
            permit = None;
        }
        if !out.is_empty() {
            conn.write_all(&out).await?;
            conn.flush().await?;
            out.clear();
        }
        if session.is_closed() {
            let _ = conn.shutdown().await;
            debug!("closed");
            drop(permit);
            return Ok(());
        }
        let deadline = session.poll_timeout();
        let wake = handler.wake_channel();
        match wait(
            &mut conn,
            &mut buf,
            deadline,
            &mut shutdown,
            shutting_down,
            wake,
        )
        .await?
        {
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
            Waited::Woken => handler.woken(session).await,
        }
    }
}

/// Both protocol crates' sessions have these methods under these names.
macro_rules! sans_io {
    ($session:ty, $event:ty) => {
        impl SansIo for $session {
            type Event = $event;
            fn poll_event(&mut self) -> Option<$event> {
                <$session>::poll_event(self)
            }
            fn poll_output(&mut self, out: &mut Vec<u8>) {
                <$session>::poll_output(self, out)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$session>::poll_timeout(self)
            }
            fn handle_input(&mut self, input: &[u8], now: Instant) {
                <$session>::handle_input(self, input, now)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$session>::handle_timeout(self, now)
            }
            fn is_closed(&self) -> bool {
                <$session>::is_closed(self)
            }
            fn shutdown(&mut self) {
                <$session>::shutdown(self)
            }
            fn tls_established(&mut self, now: Instant) {
                <$session>::tls_established(self, now)
            }
        }
    };
}

sans_io!(golub_smtp::Session, golub_smtp::Event);
sans_io!(golub_pop3::Session, golub_pop3::Event);
sans_io!(golub_imap::Session, golub_imap::Event);
