//! POP3 load generator: sessions that log in and retrieve the whole maildrop.
//!
//! [`run_pop3`] spawns one tokio task per session. Each round connects, reads
//! the greeting, logs in with USER/PASS, asks STAT, RETRs every message
//! (reading each multi-line response to its terminating dot and undoing the
//! dot-stuffing, RFC 1939 §3), and QUITs without DELE so the mail stays for
//! the next round.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::control::Control;
use crate::report::{Pop3Report, Tally};
use crate::wire::{self, WireError};

/// Longest status line accepted; RFC 1939 §3 allows 512 octets.
const MAX_STATUS_LINE: usize = 4096;
/// Longest line inside a message; RFC 5322 allows 1000, real mail exceeds it.
const MAX_MESSAGE_LINE: usize = 1 << 20;
/// Largest message accepted from RETR.
const MAX_MESSAGE: u64 = 1 << 30;

/// A password, kept out of `Debug` output.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }

    /// The password itself, for the line that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

/// Where to log in and how much to retrieve.
#[derive(Debug, Clone)]
pub struct Pop3Opts {
    /// Server address, `host:port`.
    pub addr: String,
    /// Concurrent sessions, all logging in as the same user.
    pub sessions: usize,
    /// Mailbox name for USER.
    pub user: String,
    /// Password for PASS.
    pub password: Password,
    /// Rounds per session.
    pub rounds: u64,
    /// Sessions stop after their current round once this has passed.
    pub time_limit: Duration,
    /// Longest wait for a connect, a line, or a write.
    pub io_timeout: Duration,
    /// Failed rounds in a row, over all sessions, that stop the run.
    pub max_consecutive_errors: u32,
}

impl Pop3Opts {
    /// One session, ten rounds, as the CLI defaults.
    pub fn new(addr: impl Into<String>, user: impl Into<String>, password: Password) -> Self {
        Pop3Opts {
            addr: addr.into(),
            sessions: 1,
            user: user.into(),
            password,
            rounds: 10,
            time_limit: Duration::from_secs(120),
            io_timeout: Duration::from_secs(30),
            max_consecutive_errors: 100,
        }
    }
}

/// Runs the rounds `opts` describes and reports how it went.
///
/// Fails only for bad options or an address that does not resolve; failed
/// rounds are counted in the report.
pub async fn run_pop3(opts: Pop3Opts) -> anyhow::Result<Pop3Report> {
    ensure!(opts.sessions > 0, "--sessions must be at least 1");
    for (what, s) in [("--user", &opts.user), ("--password", &opts.password.0)] {
        ensure!(
            !s.is_empty() && !s.bytes().any(|b| b.is_ascii_control()),
            "{what} must be non-empty and free of control characters"
        );
    }
    let addr = tokio::net::lookup_host(&opts.addr)
        .await
        .with_context(|| format!("cannot resolve {}", opts.addr))?
        .next()
        .with_context(|| format!("{} resolves to no address", opts.addr))?;

    let plan = Arc::new(Plan {
        addr,
        user: format!("USER {}\r\n", opts.user).into_bytes(),
        pass: format!("PASS {}\r\n", opts.password.0).into_bytes(),
        rounds: opts.rounds,
        io_timeout: opts.io_timeout,
    });
    let start = Instant::now();
    // Rounds are per session, so the shared budget is not what bounds them.
    let control = Arc::new(Control::new(
        u64::MAX,
        start + opts.time_limit,
        opts.max_consecutive_errors,
    ));
    let mut tasks = JoinSet::new();
    for _ in 0..opts.sessions {
        tasks.spawn(session(Arc::clone(&plan), Arc::clone(&control)));
    }
    let mut total = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        total.merge(&joined.context("session task failed")?);
    }
    Ok(Pop3Report {
        sessions: opts.sessions,
        rounds: opts.rounds,
        rounds_done: total.ok,
        messages: total.messages,
        bytes: total.bytes,
        errors: total.errors,
        elapsed: start.elapsed(),
        latency: total.latency,
        stopped: control.outcome(),
    })
}

/// What every session sends, computed once per run.
struct Plan {
    addr: SocketAddr,
    /// `USER <name>\r\n`.
    user: Vec<u8>,
    /// `PASS <password>\r\n`; never logged.
    pass: Vec<u8>,
    rounds: u64,
    io_timeout: Duration,
}

/// One session: its rounds, one connection each.
async fn session(plan: Arc<Plan>, control: Arc<Control>) -> Tally {
    let mut tally = Tally::default();
    for _ in 0..plan.rounds {
        if control.claim().is_none() {
            break;
        }
        let start = Instant::now();
        match round(&plan, &mut tally).await {
            Ok(()) => {
                tally.ok += 1;
                tally.latency.record(start.elapsed());
                control.succeeded();
            }
            Err(failure) => {
                tally.errors.add(failure.key());
                control.failed();
            }
        }
    }
    tally
}

/// Connect, log in, retrieve everything, quit. Retrieved messages count even
/// if a later step fails.
async fn round(plan: &Plan, tally: &mut Tally) -> Result<(), Failure> {
    let tcp = wire::timed(plan.io_timeout, TcpStream::connect(plan.addr))
        .await
        .map_err(|_| Failure::Connect)?;
    tcp.set_nodelay(true).map_err(|_| Failure::Connect)?;
    let mut conn = Conn {
        stream: BufReader::new(tcp),
        buf: Vec::with_capacity(512),
        io_timeout: plan.io_timeout,
    };
    conn.ok("greeting").await?;
    conn.command(&plan.user, "user").await?;
    conn.command(&plan.pass, "pass").await?;
    let stat = conn.command(b"STAT\r\n", "stat").await?;
    let (count, _octets) = parse_stat(&stat).ok_or(Failure::Malformed)?;
    for n in 1..=count {
        conn.send(format!("RETR {n}\r\n").as_bytes()).await?;
        conn.ok("retr").await?;
        let bytes = read_multiline(&mut conn.stream, &mut conn.buf, conn.io_timeout).await?;
        tally.messages += 1;
        tally.bytes += bytes;
    }
    conn.command(b"QUIT\r\n", "quit").await?;
    Ok(())
}

/// Why a round failed.
#[derive(Debug)]
enum Failure {
    /// Connecting failed.
    Connect,
    /// Reading or writing failed.
    Wire(WireError),
    /// The server said `-ERR` to the named step.
    Err(&'static str),
    /// The server's answer was not POP3.
    Malformed,
}

impl Failure {
    fn key(&self) -> String {
        match self {
            Failure::Connect => "connect".to_owned(),
            Failure::Wire(e) => e.key().to_owned(),
            Failure::Err(step) => format!("-ERR {step}"),
            Failure::Malformed => "protocol".to_owned(),
        }
    }
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Failure::Wire(e)
    }
}

/// An open POP3 connection.
struct Conn {
    stream: BufReader<TcpStream>,
    /// Line buffer reused for every read.
    buf: Vec<u8>,
    io_timeout: Duration,
}

impl Conn {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        wire::timed(self.io_timeout, self.stream.get_mut().write_all(bytes)).await?;
        Ok(())
    }

    /// Reads a status line; `+OK` gives its text, `-ERR` fails as `step`.
    async fn ok(&mut self, step: &'static str) -> Result<String, Failure> {
        wire::read_line(
            &mut self.stream,
            &mut self.buf,
            MAX_STATUS_LINE,
            self.io_timeout,
        )
        .await?;
        parse_status(wire::trim_eol(&self.buf), step)
    }

    async fn command(&mut self, line: &[u8], step: &'static str) -> Result<String, Failure> {
        self.send(line).await?;
        self.ok(step).await
    }
}

/// Splits a status line (RFC 1939 §3): `+OK text` or `-ERR text`.
fn parse_status(line: &[u8], step: &'static str) -> Result<String, Failure> {
    let text = |rest: &[u8]| String::from_utf8_lossy(rest.trim_ascii_start()).into_owned();
    if let Some(rest) = line.strip_prefix(b"+OK") {
        if rest.first().is_none_or(|&b| b == b' ') {
            return Ok(text(rest));
        }
    } else if let Some(rest) = line.strip_prefix(b"-ERR")
        && rest.first().is_none_or(|&b| b == b' ')
    {
        return Err(Failure::Err(step));
    }
    Err(Failure::Malformed)
}

/// Parses the text of a STAT reply: `nn mm` (RFC 1939 §5).
fn parse_stat(text: &str) -> Option<(u64, u64)> {
    let mut words = text.split_ascii_whitespace();
    let count = words.next()?.parse().ok()?;
    let octets = words.next()?.parse().ok()?;
    Some((count, octets))
}

/// Reads a multi-line response body up to its `.` line, returning the size of
/// the message with dot-stuffing undone (RFC 1939 §3) and the final dot line
/// left out.
async fn read_multiline<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> Result<u64, Failure>
where
    R: AsyncBufRead + AsyncRead + Unpin,
{
    let mut total = 0u64;
    // Each pass consumes at least one byte, so MAX_MESSAGE bounds the loop.
    while total <= MAX_MESSAGE {
        wire::read_line(reader, buf, MAX_MESSAGE_LINE, limit).await?;
        let line = buf.as_slice();
        if wire::trim_eol(line) == b"." {
            return Ok(total);
        }
        let unstuffed = if line.starts_with(b".") {
            &line[1..]
        } else {
            line
        };
        total += unstuffed.len() as u64;
    }
    Err(Failure::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn status_lines_are_split() {
        assert_eq!(parse_status(b"+OK 2 320", "stat").unwrap(), "2 320");
        assert_eq!(parse_status(b"+OK", "user").unwrap(), "");
        assert!(matches!(
            parse_status(b"-ERR no", "pass"),
            Err(Failure::Err("pass"))
        ));
        assert!(matches!(
            parse_status(b"+OKAY", "user"),
            Err(Failure::Malformed)
        ));
        assert!(matches!(
            parse_status(b"hello", "user"),
            Err(Failure::Malformed)
        ));
    }

    #[test]
    fn stat_gives_count_and_size() {
        assert_eq!(parse_stat("2 320"), Some((2, 320)));
        assert_eq!(parse_stat("2"), None);
        assert_eq!(parse_stat("x 3"), None);
    }

    #[tokio::test]
    async fn multiline_body_is_unstuffed_and_ends_at_the_dot() {
        let mut r =
            BufReader::new(&b"Subject: x\r\n\r\n..leading dot\r\nend\r\n.\r\n+OK next\r\n"[..]);
        let n = read_multiline(&mut r, &mut Vec::new(), T).await.unwrap();
        assert_eq!(
            n,
            ("Subject: x\r\n\r\n.leading dot\r\nend\r\n").len() as u64
        );
    }

    #[tokio::test]
    async fn multiline_body_cut_short_fails() {
        let mut r = BufReader::new(&b"line\r\n"[..]);
        assert!(matches!(
            read_multiline(&mut r, &mut Vec::new(), T).await,
            Err(Failure::Wire(WireError::Closed))
        ));
    }

    #[test]
    fn password_is_hidden_from_debug() {
        let opts = Pop3Opts::new("127.0.0.1:110", "u@example.org", Password::new("s3cret"));
        assert!(!format!("{opts:?}").contains("s3cret"));
    }
}
