//! The control socket: how `golub queue flush|hold|release|delete` and `golub sendmail`
//! reach a running server. It is a Unix socket, `<data_dir>/control.sock`, readable by
//! the server's own user only (mode 0600), with one request line per connection and one
//! reply line, `OK <text>` or `ERR <text>`:
//!
//! ```text
//! FLUSH | FLUSH <ID> | FLUSH-DOMAIN <domain> | HOLD <ID> | RELEASE <ID> | DELETE <ID> | DELETE-SILENT <ID>
//! ```
//!
//! Each request is a store change followed by a nudge to delivery (scan now, or deliver
//! this new report). [`execute`] does both and is also what the CLI runs on the store
//! directly when no server is listening; delivery then picks the change up at its next
//! start.

use crate::delivery::Delivery;
use crate::dsn::{ReportKind, ReportRecipient, report_for};
use golub_store::{Flush, NewMessage, QueuedMessage, RcptStatus, Store, unix_now};
use golub_types::QueueId;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "control.sock";

/// The longest request line taken; real ones are a few dozen octets.
const MAX_REQUEST: usize = 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// What the sender is told of each recipient of a deleted message.
pub const DELETED_REPLY: &str = "5.0.0 deleted from the queue by the administrator";

/// The control socket of the data directory `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Make every open recipient (`None`) or one entry's due now.
    Flush(Option<QueueId>),
    /// Make the open recipients at a domain due now.
    FlushDomain(String),
    Hold(QueueId),
    Release(QueueId),
    /// Remove an entry; unless `silent`, its sender gets a bounce report.
    Delete {
        id: QueueId,
        silent: bool,
    },
}

impl Request {
    /// Parses a request line (without its line end); the error is the reply text.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_ascii_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let arg = words.next();
        if words.next().is_some() {
            return Err("too many arguments".into());
        }
        let id = |arg: Option<&str>| -> Result<QueueId, String> {
            let a = arg.ok_or_else(|| format!("{verb} needs a queue id"))?;
            a.parse()
                .map_err(|_| format!("{a}: not a queue id (see golub queue list)"))
        };
        match verb.as_str() {
            "FLUSH" => match arg {
                None => Ok(Request::Flush(None)),
                Some(_) => Ok(Request::Flush(Some(id(arg)?))),
            },
            "FLUSH-DOMAIN" => {
                let d = arg.ok_or("FLUSH-DOMAIN needs a domain")?;
                golub_types::Domain::parse(d, true)
                    .map_err(|e| format!("{d}: not a domain: {e}"))?;
                Ok(Request::FlushDomain(d.to_ascii_lowercase()))
            }
            "HOLD" => Ok(Request::Hold(id(arg)?)),
            "RELEASE" => Ok(Request::Release(id(arg)?)),
            "DELETE" => Ok(Request::Delete {
                id: id(arg)?,
                silent: false,
            }),
            "DELETE-SILENT" => Ok(Request::Delete {
                id: id(arg)?,
                silent: true,
            }),
            "" => Err("empty request".into()),
            _ => Err(format!("unknown request {verb}")),
        }
    }

    /// The request as a line (without its line end), as [`Request::parse`] reads it.
    pub fn to_line(&self) -> String {
        match self {
            Request::Flush(None) => "FLUSH".into(),
            Request::Flush(Some(id)) => format!("FLUSH {id}"),
            Request::FlushDomain(d) => format!("FLUSH-DOMAIN {d}"),
            Request::Hold(id) => format!("HOLD {id}"),
            Request::Release(id) => format!("RELEASE {id}"),
            Request::Delete { id, silent: false } => format!("DELETE {id}"),
            Request::Delete { id, silent: true } => format!("DELETE-SILENT {id}"),
        }
    }
}

/// The reply to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Ok(String),
    Err(String),
}

impl Response {
    /// The reply line (without its line end).
    pub fn to_line(&self) -> String {
        match self {
            Response::Ok(t) => format!("OK {t}"),
            Response::Err(t) => format!("ERR {t}"),
        }
    }

    /// Reads a reply line; anything else is an error reply.
    pub fn parse(line: &str) -> Response {
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(t) = line.strip_prefix("OK") {
            Response::Ok(t.trim_start().to_string())
        } else if let Some(t) = line.strip_prefix("ERR") {
            Response::Err(t.trim_start().to_string())
        } else {
            Response::Err(format!("unexpected reply {line:?}"))
        }
    }
}

/// Runs `request` on `store`, then tells `delivery` (when a server runs) what became due.
/// `hostname` names this host in a bounce report.
pub async fn execute(
    store: &Store,
    delivery: Option<&Delivery>,
    hostname: &str,
    request: Request,
) -> Response {
    match run(store, delivery, hostname, &request).await {
        Ok(r) => r,
        Err(e) => {
            warn!(request = %request.to_line(), error = %e, "control request failed");
            Response::Err(format!("store error: {e}"))
        }
    }
}

async fn run(
    store: &Store,
    delivery: Option<&Delivery>,
    hostname: &str,
    request: &Request,
) -> golub_store::Result<Response> {
    let scan = || {
        if let Some(d) = delivery {
            d.scan_now();
        }
    };
    Ok(match request {
        Request::Flush(None) => {
            let n = blocking(store, |s| s.flush_messages(Flush::All)).await?;
            info!(recipients = n, "queue flushed");
            scan();
            Response::Ok(format!("{n} recipient(s) due now"))
        }
        Request::Flush(Some(id)) => {
            let id = *id;
            match blocking(store, move |s| s.queued_message(id)).await? {
                None => not_queued(id),
                Some(m) if m.held => {
                    Response::Err(format!("{id} is on hold; release it to deliver it"))
                }
                Some(_) => {
                    let n = blocking(store, move |s| s.flush_messages(Flush::Message(id))).await?;
                    info!(queue_id = %id, recipients = n, "queue entry flushed");
                    scan();
                    Response::Ok(format!("{id}: {n} recipient(s) due now"))
                }
            }
        }
        Request::FlushDomain(domain) => {
            let d = domain.clone();
            let n = blocking(store, move |s| s.flush_messages(Flush::Domain(d))).await?;
            info!(domain = %domain, recipients = n, "queue flushed for a domain");
            scan();
            Response::Ok(format!("{domain}: {n} recipient(s) due now"))
        }
        Request::Hold(id) => {
            let id = *id;
            if blocking(store, move |s| s.hold_message(id)).await? {
                info!(queue_id = %id, "queue entry held");
                Response::Ok(format!("{id} held"))
            } else {
                not_queued(id)
            }
        }
        Request::Release(id) => {
            let id = *id;
            if blocking(store, move |s| s.release_message(id)).await? {
                info!(queue_id = %id, "queue entry released");
                scan();
                Response::Ok(format!("{id} released"))
            } else {
                not_queued(id)
            }
        }
        Request::Delete { id, silent } => delete(store, delivery, hostname, *id, *silent).await?,
    })
}

async fn delete(
    store: &Store,
    delivery: Option<&Delivery>,
    hostname: &str,
    id: QueueId,
    silent: bool,
) -> golub_store::Result<Response> {
    // The report quotes the original, which must be read while it is still there: the
    // deletion may drop the body. So it is made from the entry as it stands just before.
    let report = if silent {
        None
    } else {
        let Some(snapshot) = blocking(store, move |s| s.queued_message(id)).await? else {
            return Ok(not_queued(id));
        };
        let hostname = hostname.to_string();
        blocking(store, move |s| Ok(deletion_report(s, &hostname, &snapshot))).await?
    };
    let Some(msg) = blocking(store, move |s| s.delete_message(id)).await? else {
        return Ok(not_queued(id));
    };
    let open = msg
        .recipients
        .iter()
        .filter(|r| matches!(r.status, RcptStatus::Pending | RcptStatus::Deferred))
        .count();
    info!(queue_id = %id, from = %msg.reverse_path, nrcpt = open, silent, "queue entry deleted");
    if silent {
        return Ok(Response::Ok(format!("{id} deleted, no report sent")));
    }
    let Some(report) = report else {
        return Ok(Response::Ok(format!(
            "{id} deleted, no report (null sender, no open recipient, or NOTIFY)"
        )));
    };
    let report_id = report.id;
    crate::queue::enqueue(store, report).await?;
    info!(queue_id = %id, bounce_id = %report_id, "bounce report queued");
    if let Some(d) = delivery {
        d.notify(report_id);
    }
    Ok(Response::Ok(format!(
        "{id} deleted, bounce {report_id} queued to <{}>",
        msg.reverse_path
    )))
}

/// The bounce report for an entry about to be deleted: its open recipients failed
/// ([`DELETED_REPLY`]). None for a message with the null reverse path (a report is never
/// answered with a report), when no recipient is left, or when none asked for failure
/// reports (DSN NOTIFY). Reads the original from the store (blocking).
pub fn deletion_report(store: &Store, hostname: &str, msg: &QueuedMessage) -> Option<NewMessage> {
    let failed: Vec<ReportRecipient<'_>> = msg
        .recipients
        .iter()
        .filter(|r| matches!(r.status, RcptStatus::Pending | RcptStatus::Deferred))
        .map(|r| ReportRecipient {
            original: &r.orig_address,
            final_address: &r.address,
            reply: DELETED_REPLY,
            notify: &r.notify,
            orcpt: &r.orcpt,
            remote_mta: None,
        })
        .collect();
    if failed.is_empty() {
        return None;
    }
    report_for(
        store,
        hostname,
        msg,
        ReportKind::Failed,
        &failed,
        unix_now(),
    )
}

fn not_queued(id: QueueId) -> Response {
    Response::Err(format!("{id}: no such message in the queue"))
}

/// Runs a blocking store call off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> golub_store::Result<T> + Send + 'static,
) -> golub_store::Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .unwrap_or_else(|e| {
            Err(golub_store::Error::Internal(format!(
                "a control task failed: {e}"
            )))
        })
}

/// Binds the control socket of `data_dir`, mode 0600. A socket file that no server
/// answers on is what a crash left: it is replaced. One that answers belongs to another
/// server on the same data directory, which is refused.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = socket_path(data_dir);
    if std::os::unix::net::UnixStream::connect(&path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "{} answers: another server uses this data directory",
                path.display()
            ),
        ));
    }
    // Bound under a temporary name and given its mode before it is renamed into place,
    // so that no client can ever connect while it is open to others.
    let temp = data_dir.join(format!("{SOCKET_NAME}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp)?;
    use std::os::unix::fs::PermissionsExt;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(listener)
}

/// Answers control requests until shutdown, then removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    store: Store,
    delivery: Arc<Delivery>,
    hostname: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (store, delivery, hostname) =
                        (store.clone(), delivery.clone(), hostname.clone());
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, &store, &delivery, &hostname).await {
                            debug!(error = %e, "control connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Requests under way finish: each is one short store change.
    while connections.join_next().await.is_some() {}
    if let Err(e) = std::fs::remove_file(&path) {
        warn!(path = %path.display(), error = %e, "cannot remove the control socket");
    }
}

async fn connection(
    stream: UnixStream,
    store: &Store,
    delivery: &Delivery,
    hostname: &str,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
    let response = match read {
        Err(_) => Response::Err("timed out waiting for the request".into()),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) if !line.ends_with(b"\n") && line.len() >= MAX_REQUEST => {
            Response::Err("request too long".into())
        }
        Ok(Ok(_)) => match std::str::from_utf8(&line)
            .map_err(|_| "request is not utf-8".to_string())
            .and_then(|l| Request::parse(l.trim_end_matches(['\r', '\n'])))
        {
            Ok(request) => execute(store, Some(delivery), hostname, request).await,
            Err(why) => Response::Err(why),
        },
    };
    write
        .write_all(format!("{}\n", response.to_line()).as_bytes())
        .await?;
    write.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_print_back() {
        let id: QueueId = "0000000000000ABC".parse().unwrap();
        for (line, req) in [
            ("FLUSH", Request::Flush(None)),
            ("FLUSH 0000000000000ABC", Request::Flush(Some(id))),
            (
                "FLUSH-DOMAIN far.example",
                Request::FlushDomain("far.example".into()),
            ),
            ("HOLD 0000000000000ABC", Request::Hold(id)),
            ("RELEASE 0000000000000ABC", Request::Release(id)),
            (
                "DELETE 0000000000000ABC",
                Request::Delete { id, silent: false },
            ),
            (
                "DELETE-SILENT 0000000000000ABC",
                Request::Delete { id, silent: true },
            ),
        ] {
            assert_eq!(Request::parse(line), Ok(req.clone()), "{line}");
            assert_eq!(req.to_line(), line);
        }
        assert_eq!(
            Request::parse("flush-domain FAR.example"),
            Ok(Request::FlushDomain("far.example".into()))
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (line, says) in [
            ("", "empty"),
            ("HOLD", "needs a queue id"),
            ("HOLD xyz", "not a queue id"),
            ("FLUSH 1 2", "too many"),
            ("FLUSH-DOMAIN", "needs a domain"),
            ("FLUSH-DOMAIN bad..domain", "not a domain"),
            ("SHUTDOWN", "unknown request"),
        ] {
            let e = Request::parse(line).unwrap_err();
            assert!(e.contains(says), "{line:?}: {e}");
        }
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::Ok("3 due".into()),
            Response::Err("no such".into()),
        ] {
            assert_eq!(Response::parse(&format!("{}\n", r.to_line())), r);
        }
        assert!(matches!(Response::parse("HELLO"), Response::Err(_)));
    }
}
