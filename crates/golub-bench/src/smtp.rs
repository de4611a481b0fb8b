//! SMTP load generator: concurrent sessions submitting generated messages.
//!
//! [`run_smtp`] spawns one tokio task per session. Each task claims message
//! numbers from the shared [`Control`] and delivers them, over a new
//! connection per message or over one kept connection (`reuse`), with or
//! without RFC 2920 pipelining. An unexpected reply fails that message (counted
//! by reply code) and drops the connection; the session goes on with a new one.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::control::Control;
use crate::message::{MessageFactory, check_mailbox};
use crate::report::{SmtpReport, Tally};
use crate::wire::{self, WireError};
use golub_smtp::codec::reply::{self, ReplyParser};

/// What to send, where, and how.
#[derive(Debug, Clone)]
pub struct SmtpOpts {
    /// Server address, `host:port`.
    pub addr: String,
    /// Concurrent sessions.
    pub sessions: usize,
    /// Messages to send in total, over all sessions.
    pub messages: u64,
    /// Bytes per message.
    pub size: usize,
    /// Keep each session's connection for all its messages.
    pub reuse: bool,
    /// Send MAIL, RCPT and DATA in one write (RFC 2920).
    pub pipelining: bool,
    /// MAIL FROM address.
    pub reverse_path: String,
    /// RCPT TO addresses, one command each.
    pub forward_paths: Vec<String>,
    /// Name given in EHLO.
    pub helo: String,
    /// Sessions stop after their current message once this has passed.
    pub time_limit: Duration,
    /// Longest wait for a connect, a reply, or a write.
    pub io_timeout: Duration,
    /// Failures in a row, over all sessions, that stop the run.
    pub max_consecutive_errors: u32,
}

impl SmtpOpts {
    /// One session sending one 4 KiB message to `user@example.org`, as the CLI defaults.
    pub fn new(addr: impl Into<String>) -> Self {
        SmtpOpts {
            addr: addr.into(),
            sessions: 1,
            messages: 1,
            size: 4096,
            reuse: false,
            pipelining: false,
            reverse_path: "bench@example.org".to_owned(),
            forward_paths: vec!["user@example.org".to_owned()],
            helo: "bench.example".to_owned(),
            time_limit: Duration::from_secs(120),
            io_timeout: Duration::from_secs(30),
            max_consecutive_errors: 100,
        }
    }
}

/// Sends the messages `opts` describes and reports how it went.
///
/// Fails only when the run cannot be made at all: bad options, an address
/// that does not resolve, or a server that does not offer PIPELINING when it
/// was asked for. Failed messages are counted in the report instead.
pub async fn run_smtp(opts: SmtpOpts) -> anyhow::Result<SmtpReport> {
    ensure!(opts.sessions > 0, "--sessions must be at least 1");
    ensure!(
        !opts.forward_paths.is_empty(),
        "at least one recipient is needed"
    );
    check_mailbox(&opts.reverse_path).context("bad --from")?;
    for fp in &opts.forward_paths {
        check_mailbox(fp).with_context(|| format!("bad recipient {fp:?}"))?;
    }
    ensure!(
        !opts.helo.is_empty() && opts.helo.bytes().all(|b| b.is_ascii_graphic()),
        "--helo must be a printable name without spaces"
    );
    let addr = tokio::net::lookup_host(&opts.addr)
        .await
        .with_context(|| format!("cannot resolve {}", opts.addr))?
        .next()
        .with_context(|| format!("{} resolves to no address", opts.addr))?;

    let plan = Arc::new(Plan::new(&opts, addr));
    let start = Instant::now();
    let control = Arc::new(Control::new(
        opts.messages,
        start + opts.time_limit,
        opts.max_consecutive_errors,
    ));
    let mut tasks = JoinSet::new();
    for _ in 0..opts.sessions {
        tasks.spawn(session(Arc::clone(&plan), Arc::clone(&control)));
    }
    let mut total = Tally::default();
    let mut fatal = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.context("session task failed")? {
            Ok(tally) => total.merge(&tally),
            Err(e) => fatal = Some(e),
        }
    }
    if let Some(e) = fatal {
        bail!("{e}");
    }
    Ok(SmtpReport {
        sessions: opts.sessions,
        messages: opts.messages,
        size: plan.factory.len(),
        rcpts: opts.forward_paths.len(),
        pipelining: opts.pipelining,
        reuse: opts.reuse,
        accepted: total.ok,
        errors: total.errors,
        elapsed: start.elapsed(),
        latency: total.latency,
        stopped: control.outcome(),
    })
}

/// Everything a session needs, computed once per run.
#[derive(Debug)]
struct Plan {
    addr: SocketAddr,
    factory: MessageFactory,
    /// `EHLO <helo>\r\n`.
    ehlo: Vec<u8>,
    /// `MAIL FROM:<…>\r\n`.
    mail: Vec<u8>,
    /// One `RCPT TO:<…>\r\n` per recipient.
    rcpts: Vec<Vec<u8>>,
    /// MAIL, RCPTs and DATA together, for pipelining.
    batch: Vec<u8>,
    reuse: bool,
    pipelining: bool,
    io_timeout: Duration,
}

impl Plan {
    fn new(opts: &SmtpOpts, addr: SocketAddr) -> Self {
        let run_id = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 40);
        let mail = format!("MAIL FROM:<{}>\r\n", opts.reverse_path).into_bytes();
        let rcpts: Vec<Vec<u8>> = opts
            .forward_paths
            .iter()
            .map(|fp| format!("RCPT TO:<{fp}>\r\n").into_bytes())
            .collect();
        let mut batch = mail.clone();
        rcpts.iter().for_each(|r| batch.extend_from_slice(r));
        batch.extend_from_slice(b"DATA\r\n");
        Plan {
            addr,
            factory: MessageFactory::new(
                &opts.reverse_path,
                &opts.forward_paths,
                opts.size,
                &opts.helo,
                run_id,
            ),
            ehlo: format!("EHLO {}\r\n", opts.helo).into_bytes(),
            mail,
            rcpts,
            batch,
            reuse: opts.reuse,
            pipelining: opts.pipelining,
            io_timeout: opts.io_timeout,
        }
    }

    /// Delivers `data` (message plus final dot), opening a connection if there is none.
    ///
    /// Returns the latency: from the MAIL command on a kept connection, from
    /// the connect otherwise, until the 250 after the final dot.
    async fn deliver(&self, slot: &mut Option<Conn>, data: &[u8]) -> Result<Duration, Failure> {
        let connect_start = Instant::now();
        let conn = match slot {
            Some(conn) => conn,
            None => slot.insert(Conn::open(self).await?),
        };
        let start = if self.reuse {
            Instant::now()
        } else {
            connect_start
        };
        if self.pipelining {
            conn.pipelined_envelope(self).await?;
        } else {
            conn.envelope(self).await?;
        }
        conn.send(data).await?;
        conn.expect(&[250]).await?;
        let latency = start.elapsed();
        if !self.reuse
            && let Some(conn) = slot.take()
        {
            conn.quit().await;
        }
        Ok(latency)
    }
}

/// One session: claim, deliver, count, until told to stop.
async fn session(plan: Arc<Plan>, control: Arc<Control>) -> Result<Tally, Failure> {
    let mut tally = Tally::default();
    let mut conn = None;
    let mut data = Vec::with_capacity(plan.factory.len() + 3);
    while let Some(seq) = control.claim() {
        data.clear();
        plan.factory.write(seq, SystemTime::now(), &mut data);
        // The body never has a line starting with '.', so no stuffing is needed.
        data.extend_from_slice(b".\r\n");
        match plan.deliver(&mut conn, &data).await {
            Ok(latency) => {
                tally.ok += 1;
                tally.latency.record(latency);
                control.succeeded();
            }
            Err(Failure::NoPipelining) => {
                control.abort();
                return Err(Failure::NoPipelining);
            }
            Err(failure) => {
                // Dropping the connection aborts whatever transaction was open.
                conn = None;
                tally.errors.add(failure.key());
                control.failed();
            }
        }
    }
    if let Some(conn) = conn {
        conn.quit().await;
    }
    Ok(tally)
}

/// Why a message was not accepted.
#[derive(Debug)]
enum Failure {
    /// Connecting failed.
    Connect(WireError),
    /// Reading or writing failed.
    Wire(WireError),
    /// The server answered with an unexpected code.
    Reply(u16),
    /// The server's reply was not SMTP.
    Malformed,
    /// PIPELINING was asked for and the server does not offer it; ends the run.
    NoPipelining,
}

impl Failure {
    fn key(&self) -> String {
        match self {
            Failure::Connect(_) => "connect".to_owned(),
            Failure::Wire(e) => e.key().to_owned(),
            Failure::Reply(code) => code.to_string(),
            Failure::Malformed => "protocol".to_owned(),
            Failure::NoPipelining => "no-pipelining".to_owned(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::Wire(e) => e.fmt(f),
            Failure::Reply(code) => write!(f, "unexpected reply {code}"),
            Failure::Malformed => f.write_str("malformed reply"),
            Failure::NoPipelining => {
                f.write_str("server does not advertise PIPELINING (RFC 2920) in its EHLO reply")
            }
        }
    }
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Failure::Wire(e)
    }
}

/// A complete SMTP reply (RFC 5321 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// Text of each line, after the code, its separator and the enhanced code if any.
    pub lines: Vec<String>,
}

impl Reply {
    /// True if an EHLO reply lists `keyword` (RFC 5321 §4.1.1.1), case-insensitively.
    pub fn has_extension(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|l| {
            l.split_ascii_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    }
}

/// Reads one reply, all its `ddd-` lines up to the `ddd ` line, with golub-smtp's reply
/// parser (which also bounds the line length and the number of lines).
async fn read_reply<R>(reader: &mut R, buf: &mut Vec<u8>, limit: Duration) -> Result<Reply, Failure>
where
    R: tokio::io::AsyncBufRead + tokio::io::AsyncRead + Unpin,
{
    let mut parser = ReplyParser::new();
    loop {
        wire::read_line(reader, buf, reply::MAX_LINE, limit).await?;
        if let Some(reply) = parser.push_line(buf).map_err(|_| Failure::Malformed)? {
            return Ok(Reply {
                code: reply.code,
                lines: reply.lines,
            });
        }
    }
}

/// An open SMTP connection past EHLO.
#[derive(Debug)]
struct Conn {
    stream: BufReader<TcpStream>,
    /// Line buffer reused for every reply.
    buf: Vec<u8>,
    io_timeout: Duration,
}

impl Conn {
    /// Connects, reads the 220 greeting, and says EHLO.
    async fn open(plan: &Plan) -> Result<Conn, Failure> {
        let tcp = wire::timed(plan.io_timeout, TcpStream::connect(plan.addr))
            .await
            .map_err(Failure::Connect)?;
        // Commands are small writes that must go out at once.
        tcp.set_nodelay(true)
            .map_err(|e| Failure::Connect(e.into()))?;
        let mut conn = Conn {
            stream: BufReader::new(tcp),
            buf: Vec::with_capacity(512),
            io_timeout: plan.io_timeout,
        };
        conn.expect(&[220]).await?;
        conn.send(&plan.ehlo).await?;
        let ehlo = conn.expect(&[250]).await?;
        if plan.pipelining && !ehlo.has_extension("PIPELINING") {
            return Err(Failure::NoPipelining);
        }
        Ok(conn)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        wire::timed(self.io_timeout, self.stream.get_mut().write_all(bytes)).await?;
        Ok(())
    }

    async fn reply(&mut self) -> Result<Reply, Failure> {
        read_reply(&mut self.stream, &mut self.buf, self.io_timeout).await
    }

    /// Reads a reply and fails unless its code is one of `codes`.
    async fn expect(&mut self, codes: &[u16]) -> Result<Reply, Failure> {
        let reply = self.reply().await?;
        if codes.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(Failure::Reply(reply.code))
        }
    }

    /// MAIL, each RCPT, DATA, one at a time, each waiting for its reply.
    async fn envelope(&mut self, plan: &Plan) -> Result<(), Failure> {
        self.send(&plan.mail).await?;
        self.expect(&[250]).await?;
        for rcpt in &plan.rcpts {
            self.send(rcpt).await?;
            // 251: user not local, will forward (RFC 5321 §4.2.2).
            self.expect(&[250, 251]).await?;
        }
        self.send(b"DATA\r\n").await?;
        self.expect(&[354]).await?;
        Ok(())
    }

    /// MAIL, RCPTs and DATA in one write, then their replies in order (RFC 2920 §3.1).
    async fn pipelined_envelope(&mut self, plan: &Plan) -> Result<(), Failure> {
        self.send(&plan.batch).await?;
        let mut first_bad = None;
        let expected = std::iter::once(&[250u16][..])
            .chain(plan.rcpts.iter().map(|_| &[250u16, 251][..]))
            .chain(std::iter::once(&[354u16][..]));
        for codes in expected {
            match self.reply().await {
                Ok(reply) if codes.contains(&reply.code) => {}
                Ok(reply) => {
                    first_bad.get_or_insert(reply.code);
                }
                // A server may close after a 421; the code it gave is the better report.
                Err(e) => return Err(first_bad.map_or(e, Failure::Reply)),
            }
        }
        match first_bad {
            None => Ok(()),
            Some(code) => Err(Failure::Reply(code)),
        }
    }

    /// Says QUIT and waits briefly for the 221; failures no longer matter here.
    async fn quit(mut self) {
        if self.send(b"QUIT\r\n").await.is_ok() {
            let _ = self.reply().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Reply, Failure> {
        let mut r = BufReader::new(bytes);
        read_reply(&mut r, &mut Vec::new(), Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn multi_line_reply_is_read_to_its_last_line() {
        let reply = parse(b"250-mx.example greets you\r\n250-SIZE 1000\r\n250-pipelining\r\n250 8BITMIME\r\n221 bye\r\n")
            .await
            .unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines.len(), 4);
        assert!(reply.has_extension("PIPELINING"));
        assert!(reply.has_extension("size"));
        assert!(!reply.has_extension("CHUNKING"));
    }

    #[tokio::test]
    async fn greeting_domain_is_not_an_extension() {
        let reply = parse(b"250-PIPELINING\r\n250 SIZE\r\n").await.unwrap();
        assert!(!reply.has_extension("PIPELINING"));
    }

    #[tokio::test]
    async fn bare_code_line_ends_a_reply() {
        let reply = parse(b"354\r\n").await.unwrap();
        assert_eq!(reply.code, 354);
        assert_eq!(reply.lines, [""]);
    }

    #[tokio::test]
    async fn malformed_replies_are_refused() {
        for bad in [
            &b"25 ok\r\n"[..],
            b"abc ok\r\n",
            b"250x ok\r\n",
            b"250-one\r\n251 two\r\n",
            b"650 six\r\n",
        ] {
            assert!(
                matches!(parse(bad).await, Err(Failure::Malformed)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn reply_cut_short_is_a_wire_failure() {
        assert!(matches!(
            parse(b"250-one\r\n").await,
            Err(Failure::Wire(WireError::Closed))
        ));
    }
}
