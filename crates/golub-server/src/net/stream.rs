//! A connection that is plaintext or TLS, and can become TLS once (STARTTLS).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client connection.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while an upgrade is under way (or after it failed).
    Gone,
}

/// What the TLS handshake settled on, for logs and the `Received:` header.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

impl Conn {
    /// Runs the TLS handshake over a plaintext connection.
    pub async fn upgrade(&mut self, acceptor: TlsAcceptor) -> io::Result<TlsInfo> {
        match std::mem::replace(self, Conn::Gone) {
            Conn::Plain(tcp) => {
                let tls = acceptor.accept(tcp).await?;
                let info = tls_info(&tls);
                *self = Conn::Tls(Box::new(tls));
                Ok(info)
            }
            other => {
                *self = other;
                Err(io::Error::other("connection is not plaintext"))
            }
        }
    }
}

/// Runs the TLS handshake of an implicit-TLS listener (or a STARTTLS/STLS upgrade),
/// bounded by `timeout`; `None` if it failed (logged at debug level).
pub async fn handshake(
    conn: &mut Conn,
    acceptor: TlsAcceptor,
    timeout: std::time::Duration,
) -> Option<TlsInfo> {
    match tokio::time::timeout(timeout, conn.upgrade(acceptor)).await {
        Ok(Ok(info)) => {
            tracing::debug!(version = %info.version, cipher = %info.cipher, "tls established");
            Some(info)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "tls handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("tls handshake timed out");
            None
        }
    }
}

/// The negotiated version and cipher suite of a finished handshake.
pub fn tls_info(tls: &TlsStream<TcpStream>) -> TlsInfo {
    let (_, conn) = tls.get_ref();
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_else(|| "unknown".to_string());
    TlsInfo { version, cipher }
}

/// What a driver's wait for the client ended with.
pub enum Waited {
    /// This many octets arrived, at the start of the read buffer.
    Input(usize),
    /// The client closed the connection.
    Closed,
    /// The protocol session's deadline passed.
    Timeout,
    /// The server is shutting down.
    Shutdown,
    /// The handler's wake-up channel changed (IMAP: the mailboxes changed).
    Woken,
}

/// The largest a session's read buffer grows to.
const MAX_READ_BUFFER: usize = 64 * 1024;

/// A session's read buffer: small at first (most sessions are idle or send short
/// commands), grown once when a read fills it, for message data.
pub struct ReadBuffer(Vec<u8>);

impl Default for ReadBuffer {
    fn default() -> Self {
        ReadBuffer(vec![0u8; 1024])
    }
}

impl ReadBuffer {
    /// The octets of the last `Waited::Input(n)`.
    pub fn filled(&self, n: usize) -> &[u8] {
        &self.0[..n.min(self.0.len())]
    }

    /// Call after handling `n` octets: a read that filled the buffer grows it.
    pub fn consumed(&mut self, n: usize) {
        if n == self.0.len() && self.0.len() < MAX_READ_BUFFER {
            self.0.resize(MAX_READ_BUFFER, 0);
        }
    }
}

/// Waits for input on `conn`, the session's `deadline`, shutdown (only while
/// `!shutting_down`) or a change on `wake`: the select every protocol driver makes between two turns.
pub async fn wait(
    conn: &mut Conn,
    buf: &mut ReadBuffer,
    deadline: Option<std::time::Instant>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    shutting_down: bool,
    wake: Option<&mut tokio::sync::watch::Receiver<u64>>,
) -> io::Result<Waited> {
    use tokio::io::AsyncReadExt;
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    };
    let woken = async {
        match wake {
            // A closed channel never wakes anyone again.
            Some(w) => {
                if w.changed().await.is_err() {
                    std::future::pending::<()>().await
                }
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = conn.read(&mut buf.0) => match r? {
            0 => Ok(Waited::Closed),
            n => Ok(Waited::Input(n)),
        },
        _ = sleep => Ok(Waited::Timeout),
        _ = shutdown.changed(), if !shutting_down => Ok(Waited::Shutdown),
        _ = woken => Ok(Waited::Woken),
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Gone => Poll::Ready(Ok(())),
        }
    }
}
