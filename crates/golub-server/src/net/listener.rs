//! The accept loop every protocol shares: it takes connections until shutdown, admits
//! them against the connection limits (all listeners together, and per client IP), and
//! runs each in its own task inside a `session` span.

use crate::Shared;
use crate::net::limits::{Permit, Refusal};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{Instrument, info_span, warn};

/// How many connections may wait to be accepted. Tokio's default (128) overflows when a
/// few hundred clients connect at once, and each overflow costs the client a SYN
/// retransmit (1 s).
const BACKLOG: u32 = 4096;

/// Binds a listening socket with a deep accept backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// One accepted connection, admitted or not.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Holds the connection's place in the limits until dropped; `Err` if over a limit.
    pub permit: Result<Permit, Refusal>,
    pub shared: Arc<Shared>,
    pub shutdown: watch::Receiver<bool>,
}

/// Accepts connections on `listener` until shutdown and hands each to `handle`.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    proto: &'static str,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handle = Arc::new(handle);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(error = %e, proto, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = shared.next_session_id();
        let span = info_span!("session", id, proto, peer = %peer);
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let handle = handle.clone();
        let task = async move {
            let permit = shared.limiter.admit(peer.ip()).await;
            if let Err(why) = &permit {
                warn!(?why, proto, "connection refused by limit");
            }
            let open = shared.metrics.connection_opened(proto, permit.is_err());
            handle(Accepted {
                stream,
                peer,
                permit,
                shared,
                shutdown,
            })
            .await;
            drop(open);
        };
        tokio::spawn(task.instrument(span));
    }
}
