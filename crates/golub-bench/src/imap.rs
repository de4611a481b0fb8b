//! IMAP load generator: sessions that run a client's command mix, and sessions that IDLE.
//!
//! [`run_imap`] spawns one tokio task per mix session and one per IDLE session. A mix
//! session logs in once (or at every round with `relogin`) and then repeats rounds of
//! the commands in [`ImapOpts::mix`]: SELECT, `FETCH 1:* (UID FLAGS)`, a
//! `UID FETCH <uid> (BODY.PEEK[])` of a UID seen in that FETCH, `UID SEARCH SUBJECT
//! <word>`, `UID STORE <uid> +FLAGS (\Seen)` and `-FLAGS` in turn, an APPEND every
//! `append_every` rounds, NOOP. Every command is timed from its first byte sent to its
//! tagged reply; a tagged NO or BAD counts as an error of that command and the round
//! goes on, a broken connection ends the round (the next one reconnects).
//!
//! An IDLE session logs in, selects the mailbox, sends IDLE (RFC 2177) and reads what
//! the server pushes until the mix sessions are done (or the time limit with no mix
//! sessions), then sends DONE and LOGOUT.
//!
//! Responses are read one line at a time under a size cap; a line that ends in a
//! literal (`{n}` or `{n+}`, RFC 9051 §4.3) has its `n` bytes read and counted, and the
//! line goes on after them.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::control::Control;
use crate::pop3::Password;
use crate::report::{Errors, ImapReport, Kind, KindTally};
use crate::wire::{self, WireError};

/// Longest response line accepted, literals excluded: `* SEARCH` of 100,000 UIDs is
/// about 700 KB.
const MAX_LINE: usize = 16 << 20;
/// Largest literal accepted (a message body).
const MAX_LITERAL: u64 = 1 << 30;
/// IDLE sessions connecting and logging in at once, so that a thousand of them do not
/// overflow a listen backlog.
const IDLE_SETUP_CONCURRENCY: usize = 50;

/// Words the subjects of `bench/imap-fill.py` are made of; `UID SEARCH SUBJECT` asks
/// for them in turn. Each is in about a tenth of the subjects there.
pub const SEARCH_WORDS: [&str; 12] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima",
];

/// One step of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// SELECT the mailbox.
    Select,
    /// `FETCH 1:* (UID FLAGS)`: the UIDs the next steps choose from.
    FetchFlags,
    /// `UID FETCH <uid> (BODY.PEEK[])` of one UID of the last FETCH.
    FetchBody,
    /// `UID SEARCH SUBJECT <word>`.
    Search,
    /// `UID STORE <uid> +FLAGS (\Seen)`, and `-FLAGS` the next round.
    Store,
    /// APPEND a small message, every `append_every` rounds.
    Append,
    /// NOOP.
    Noop,
}

impl Step {
    /// Every step, in round order.
    pub const ALL: [Step; 7] = [
        Step::Select,
        Step::FetchFlags,
        Step::FetchBody,
        Step::Search,
        Step::Store,
        Step::Append,
        Step::Noop,
    ];

    /// The name used by `--mix` and in reports.
    pub fn name(self) -> &'static str {
        self.kind().name()
    }

    fn kind(self) -> Kind {
        match self {
            Step::Select => Kind::Select,
            Step::FetchFlags => Kind::FetchFlags,
            Step::FetchBody => Kind::FetchBody,
            Step::Search => Kind::Search,
            Step::Store => Kind::Store,
            Step::Append => Kind::Append,
            Step::Noop => Kind::Noop,
        }
    }
}

/// Parses a `--mix` list such as `select,fetch_flags,noop`; `all` is every step.
pub fn parse_mix(s: &str) -> anyhow::Result<Vec<Step>> {
    if s.trim() == "all" {
        return Ok(Step::ALL.to_vec());
    }
    let mut mix = Vec::new();
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let Some(step) = Step::ALL.iter().find(|st| st.name() == word) else {
            let names: Vec<&str> = Step::ALL.iter().map(|st| st.name()).collect();
            bail!("unknown --mix step {word:?}; known: {}", names.join(", "));
        };
        if !mix.contains(step) {
            mix.push(*step);
        }
    }
    // Round order, whatever the order given.
    mix.sort_by_key(|st| Step::ALL.iter().position(|a| a == st));
    Ok(mix)
}

/// Expands a user template: `{n}` becomes the session index mod `count`.
pub fn users(template: &str, count: usize) -> anyhow::Result<Vec<String>> {
    ensure!(count > 0, "--user-count must be at least 1");
    if !template.contains("{n}") {
        ensure!(count == 1, "--user-count needs {{n}} in --user");
        return Ok(vec![template.to_owned()]);
    }
    Ok((0..count)
        .map(|i| template.replace("{n}", &i.to_string()))
        .collect())
}

/// What to run, and against what.
#[derive(Debug, Clone)]
pub struct ImapOpts {
    /// Server address, `host:port`.
    pub addr: String,
    /// Concurrent mix sessions (may be 0 with `idle` > 0).
    pub sessions: usize,
    /// Extra sessions that sit in IDLE for the whole run.
    pub idle: usize,
    /// Login names; session `i` uses entry `i mod len`.
    pub users: Vec<String>,
    /// Password of every user.
    pub password: Password,
    /// Mailbox to SELECT and APPEND to.
    pub mailbox: String,
    /// The steps of a round.
    pub mix: Vec<Step>,
    /// Log in (on a new connection) at every round instead of once per session.
    pub relogin: bool,
    /// Rounds per session; 0 for as many as the time limit allows.
    pub rounds: u64,
    /// APPEND at one round in this many (per session); 0 never.
    pub append_every: u64,
    /// Bytes of each appended message.
    pub append_size: usize,
    /// Sessions stop after their current round once this has passed.
    pub time_limit: Duration,
    /// Longest wait for a connect, a line, or a write.
    pub io_timeout: Duration,
    /// Failed rounds in a row, over all sessions, that stop the run.
    pub max_consecutive_errors: u32,
}

impl ImapOpts {
    /// One session, the whole mix, 30 seconds.
    pub fn new(addr: impl Into<String>, user: impl Into<String>, password: Password) -> Self {
        ImapOpts {
            addr: addr.into(),
            sessions: 1,
            idle: 0,
            users: vec![user.into()],
            password,
            mailbox: "INBOX".to_owned(),
            mix: Step::ALL.to_vec(),
            relogin: false,
            rounds: 0,
            append_every: 10,
            append_size: 2048,
            time_limit: Duration::from_secs(30),
            io_timeout: Duration::from_secs(30),
            max_consecutive_errors: 100,
        }
    }
}

/// Runs the sessions `opts` describes and reports how it went.
///
/// Fails only for bad options or an address that does not resolve; failures of
/// commands and connections are counted in the report.
pub async fn run_imap(opts: ImapOpts) -> anyhow::Result<ImapReport> {
    ensure!(
        opts.sessions > 0 || opts.idle > 0,
        "--sessions or --idle must be at least 1"
    );
    ensure!(!opts.users.is_empty(), "no user to log in as");
    for s in opts
        .users
        .iter()
        .map(String::as_str)
        .chain([opts.password.expose(), opts.mailbox.as_str()])
    {
        ensure!(
            !s.is_empty()
                && !s
                    .bytes()
                    .any(|b| b.is_ascii_control() || b == b'"' || b == b'\\'),
            "user, password and mailbox must be non-empty, without control characters, quotes or backslashes"
        );
    }
    let addr = tokio::net::lookup_host(&opts.addr)
        .await
        .with_context(|| format!("cannot resolve {}", opts.addr))?
        .next()
        .with_context(|| format!("{} resolves to no address", opts.addr))?;

    let plan = Arc::new(Plan {
        addr,
        users: opts.users.clone(),
        password: opts.password.expose().to_owned(),
        mailbox: opts.mailbox.clone(),
        mix: opts.mix.clone(),
        relogin: opts.relogin,
        rounds: if opts.rounds == 0 {
            u64::MAX
        } else {
            opts.rounds
        },
        append_every: opts.append_every,
        append_size: opts.append_size,
        io_timeout: opts.io_timeout,
    });
    let start = Instant::now();
    let control = Arc::new(Control::new(
        u64::MAX,
        start + opts.time_limit,
        opts.max_consecutive_errors,
    ));
    // Tells IDLE sessions to finish: when the mix sessions are done, or at the limit.
    let (finish_tx, finish_rx) = watch::channel(false);
    let idle_state = Arc::new(IdleState {
        wanted: opts.idle,
        ..IdleState::default()
    });
    let setup = Arc::new(Semaphore::new(IDLE_SETUP_CONCURRENCY));
    let mut idlers = JoinSet::new();
    for i in 0..opts.idle {
        idlers.spawn(idle_session(
            Arc::clone(&plan),
            opts.sessions + i,
            Arc::clone(&idle_state),
            Arc::clone(&setup),
            finish_rx.clone(),
        ));
    }
    let mut tasks = JoinSet::new();
    for i in 0..opts.sessions {
        tasks.spawn(session(Arc::clone(&plan), i, Arc::clone(&control)));
    }
    let mut total = SessionTally::default();
    while let Some(joined) = tasks.join_next().await {
        total.merge(&joined.context("session task failed")?);
    }
    let mix_elapsed = start.elapsed();
    // Every IDLE session reaches IDLE or fails (bounded by the I/O timeout) before the
    // count at the end is taken.
    while idle_state.settled.load(Ordering::Relaxed) < opts.idle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if opts.sessions == 0 {
        // Only IDLE sessions: hold them for the time limit once all have settled.
        tokio::time::sleep(opts.time_limit).await;
    }
    let idle_at_end = idle_state.idling.load(Ordering::Relaxed);
    let _ = finish_tx.send(true);
    let mut idle_errors = Errors::default();
    while let Some(joined) = idlers.join_next().await {
        if let Err(key) = joined.context("idle task failed")? {
            idle_errors.add(key);
        }
    }
    Ok(ImapReport {
        sessions: opts.sessions,
        relogin: opts.relogin,
        mix: opts.mix.iter().map(|s| s.name()).collect(),
        rounds_done: total.rounds_ok,
        kinds: total.kinds,
        round_errors: total.round_errors,
        elapsed: if opts.sessions == 0 {
            start.elapsed()
        } else {
            mix_elapsed
        },
        idle: opts.idle,
        idle_reached: idle_state.reached.load(Ordering::Relaxed),
        idle_at_end,
        idle_pushed: idle_state.pushed.load(Ordering::Relaxed),
        idle_errors,
        stopped: control.outcome(),
    })
}

/// What every session uses, computed once per run.
struct Plan {
    addr: SocketAddr,
    users: Vec<String>,
    /// Never logged.
    password: String,
    mailbox: String,
    mix: Vec<Step>,
    relogin: bool,
    rounds: u64,
    append_every: u64,
    append_size: usize,
    io_timeout: Duration,
}

impl Plan {
    fn user(&self, index: usize) -> &str {
        &self.users[index % self.users.len()]
    }
}

/// What one mix session did.
#[derive(Debug, Default)]
struct SessionTally {
    rounds_ok: u64,
    /// Per command kind: successes, errors, latency.
    kinds: Vec<(Kind, KindTally)>,
    /// Rounds that ended early, by why.
    round_errors: Errors,
}

impl SessionTally {
    fn kind(&mut self, k: Kind) -> &mut KindTally {
        if let Some(i) = self.kinds.iter().position(|(kk, _)| *kk == k) {
            return &mut self.kinds[i].1;
        }
        self.kinds.push((k, KindTally::default()));
        // invariant: just pushed.
        &mut self.kinds.last_mut().expect("just pushed").1
    }

    fn merge(&mut self, other: &SessionTally) {
        self.rounds_ok += other.rounds_ok;
        for (k, t) in &other.kinds {
            self.kind(*k).merge(t);
        }
        self.round_errors.merge(&other.round_errors);
        self.kinds.sort_by_key(|(k, _)| *k);
    }
}

/// Shared counters of the IDLE sessions.
#[derive(Debug, Default)]
struct IdleState {
    /// IDLE sessions asked for.
    wanted: usize,
    /// Sessions whose IDLE was accepted (`+`), ever.
    reached: AtomicUsize,
    /// Sessions in IDLE now.
    idling: AtomicUsize,
    /// Untagged responses received while idling.
    pushed: AtomicU64,
    /// Sessions that reached IDLE or failed before it.
    settled: AtomicUsize,
}

/// A small deterministic generator (xorshift64*), one per session.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x % n.max(1) as u64) as usize
    }
}

/// Why a round or an IDLE session ended early.
#[derive(Debug)]
enum Failure {
    Connect,
    Wire(WireError),
    /// The server's answer was not IMAP, or the greeting was not OK.
    Protocol,
    /// LOGIN or SELECT was refused: the session cannot go on.
    Refused(Kind),
}

impl Failure {
    fn key(&self) -> String {
        match self {
            Failure::Connect => "connect".to_owned(),
            Failure::Wire(e) => e.key().to_owned(),
            Failure::Protocol => "protocol".to_owned(),
            Failure::Refused(k) => format!("refused {}", k.name()),
        }
    }
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Failure::Wire(e)
    }
}

/// The tagged status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    No,
    Bad,
}

/// What a command's untagged responses said that the session uses.
#[derive(Debug, Default)]
struct Untagged {
    /// UIDs of `* n FETCH (... UID u ...)`.
    uids: Vec<u32>,
    /// Numbers in `* SEARCH`.
    search_hits: u64,
    /// Bytes of literals (message text).
    literal_bytes: u64,
    /// Untagged responses of any kind.
    count: u64,
}

/// An open IMAP connection.
struct Conn {
    stream: BufReader<TcpStream>,
    buf: Vec<u8>,
    io_timeout: Duration,
    next_tag: u32,
}

impl Conn {
    /// Connects and reads the greeting, which must be `* OK`.
    async fn open(plan: &Plan) -> Result<Conn, Failure> {
        let tcp = wire::timed(plan.io_timeout, TcpStream::connect(plan.addr))
            .await
            .map_err(|_| Failure::Connect)?;
        tcp.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let mut conn = Conn {
            stream: BufReader::new(tcp),
            buf: Vec::with_capacity(4096),
            io_timeout: plan.io_timeout,
            next_tag: 0,
        };
        let mut lits = 0;
        conn.read_response_line(&mut lits).await?;
        if !conn.buf.starts_with(b"* OK") {
            return Err(Failure::Protocol);
        }
        Ok(conn)
    }

    fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("a{:05}", self.next_tag)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        wire::timed(self.io_timeout, self.stream.get_mut().write_all(bytes)).await?;
        Ok(())
    }

    /// Reads one response line into `buf`, with literals left out and their sizes added
    /// to `literal_bytes`.
    async fn read_response_line(&mut self, literal_bytes: &mut u64) -> Result<(), Failure> {
        read_response_line(
            &mut self.stream,
            &mut self.buf,
            self.io_timeout,
            literal_bytes,
        )
        .await
    }

    /// Sends `tag command\r\n` and reads up to the tagged reply.
    async fn command(&mut self, command: &str) -> Result<(Status, Untagged), Failure> {
        let tag = self.tag();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        self.until_tagged(&tag).await
    }

    /// Reads responses up to the one tagged `tag`, collecting what the session uses.
    async fn until_tagged(&mut self, tag: &str) -> Result<(Status, Untagged), Failure> {
        let mut u = Untagged::default();
        loop {
            self.read_response_line(&mut u.literal_bytes).await?;
            let line = wire::trim_eol(&self.buf);
            if let Some(rest) = line.strip_prefix(b"* ") {
                u.count += 1;
                note_untagged(rest, &mut u);
            } else if let Some(rest) = line
                .strip_prefix(tag.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            {
                return Ok((parse_status(rest).ok_or(Failure::Protocol)?, u));
            } else if !line.starts_with(b"+") {
                return Err(Failure::Protocol);
            }
        }
    }

    /// Reads up to a continuation request (`+`); a tagged reply first is a refusal.
    async fn until_continuation(&mut self, tag: &str) -> Result<Option<Status>, Failure> {
        let mut lits = 0;
        loop {
            self.read_response_line(&mut lits).await?;
            let line = wire::trim_eol(&self.buf);
            if line.starts_with(b"+") {
                return Ok(None);
            }
            if let Some(rest) = line
                .strip_prefix(tag.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            {
                return Ok(Some(parse_status(rest).ok_or(Failure::Protocol)?));
            }
            if !line.starts_with(b"* ") {
                return Err(Failure::Protocol);
            }
        }
    }

    async fn login(&mut self, plan: &Plan, index: usize) -> Result<(), Failure> {
        let cmd = format!("LOGIN \"{}\" \"{}\"", plan.user(index), plan.password);
        let (status, _) = self.command(&cmd).await?;
        if status != Status::Ok {
            return Err(Failure::Refused(Kind::Login));
        }
        Ok(())
    }

    async fn logout(&mut self) -> Result<(), Failure> {
        let (status, _) = self.command("LOGOUT").await?;
        if status != Status::Ok {
            return Err(Failure::Protocol);
        }
        Ok(())
    }
}

/// Reads one response line (RFC 9051 §4.3): when it ends in a literal's `{n}` or `{n+}`,
/// the `n` bytes are read and counted but not kept, and the line goes on after them.
async fn read_response_line<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: Duration,
    literal_bytes: &mut u64,
) -> Result<(), Failure>
where
    R: AsyncBufRead + Unpin,
{
    buf.clear();
    loop {
        let start = buf.len();
        let cap = MAX_LINE.saturating_sub(start);
        if cap == 0 {
            return Err(Failure::Wire(WireError::LineTooLong));
        }
        let n = wire::timed(
            limit,
            (&mut *reader).take(cap as u64).read_until(b'\n', buf),
        )
        .await?;
        match buf.last() {
            Some(b'\n') => {}
            _ if n == 0 => return Err(Failure::Wire(WireError::Closed)),
            _ if buf.len() >= MAX_LINE => return Err(Failure::Wire(WireError::LineTooLong)),
            _ => return Err(Failure::Wire(WireError::Closed)),
        }
        let Some(size) = literal_size(wire::trim_eol(&buf[start..])) else {
            return Ok(());
        };
        if size > MAX_LITERAL {
            return Err(Failure::Protocol);
        }
        let copied = wire::timed(
            limit,
            tokio::io::copy(&mut (&mut *reader).take(size), &mut tokio::io::sink()),
        )
        .await?;
        if copied != size {
            return Err(Failure::Wire(WireError::Closed));
        }
        *literal_bytes += size;
        // Keep the line's text without the CRLF; the rest of the line follows.
        let keep = start + wire::trim_eol(&buf[start..]).len();
        buf.truncate(keep);
    }
}

/// The size of a literal announced at the end of a line: `{123}` or `{123+}`.
fn literal_size(line: &[u8]) -> Option<u64> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `OK ...`, `NO ...` or `BAD ...` after a tag.
fn parse_status(rest: &[u8]) -> Option<Status> {
    let word = rest.split(|&b| b == b' ').next()?;
    match word.to_ascii_uppercase().as_slice() {
        b"OK" => Some(Status::Ok),
        b"NO" => Some(Status::No),
        b"BAD" => Some(Status::Bad),
        _ => None,
    }
}

/// Notes the UIDs of a FETCH response and the hits of a SEARCH response.
fn note_untagged(rest: &[u8], u: &mut Untagged) {
    if let Some(hits) = rest.strip_prefix(b"SEARCH") {
        u.search_hits += hits.split(|&b| b == b' ').filter(|w| !w.is_empty()).count() as u64;
        return;
    }
    let mut words = rest.split(|&b| b == b' ');
    let (Some(_n), Some(fetch)) = (words.next(), words.next()) else {
        return;
    };
    if !fetch.eq_ignore_ascii_case(b"FETCH") {
        return;
    }
    // `UID` is an item name wherever it stands in the list.
    let mut prev_uid = false;
    for w in words {
        let w = w.trim_ascii_start();
        let w = w.strip_prefix(b"(").unwrap_or(w);
        if prev_uid {
            let digits: Vec<u8> = w.iter().copied().take_while(u8::is_ascii_digit).collect();
            if let Some(uid) = std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.parse().ok())
            {
                u.uids.push(uid);
            }
            return;
        }
        prev_uid = w.eq_ignore_ascii_case(b"UID");
    }
}

/// One mix session: its rounds, one connection for all of them unless `relogin`.
async fn session(plan: Arc<Plan>, index: usize, control: Arc<Control>) -> SessionTally {
    let mut tally = SessionTally::default();
    let mut rng = Rng::new(index as u64 + 1);
    let mut conn: Option<Conn> = None;
    let mut uids: Vec<u32> = Vec::new();
    let mut round_no = 0u64;
    while round_no < plan.rounds {
        if control.claim().is_none() {
            break;
        }
        round_no += 1;
        let result = round(
            &plan, index, round_no, &mut conn, &mut uids, &mut rng, &mut tally,
        )
        .await;
        match result {
            Ok(()) => {
                tally.rounds_ok += 1;
                control.succeeded();
            }
            Err(f) => {
                tally.round_errors.add(f.key());
                conn = None;
                control.failed();
            }
        }
    }
    if let Some(mut c) = conn.take() {
        // A failed LOGOUT is counted by timed_step; the session ends either way.
        let _ = timed_step(&mut tally, Kind::Logout, c.logout()).await;
    }
    tally
}

/// Times one command that either works or ends the round.
async fn timed_step<F>(tally: &mut SessionTally, kind: Kind, fut: F) -> Result<(), Failure>
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    let t = Instant::now();
    let r = fut.await;
    let k = tally.kind(kind);
    match &r {
        Ok(()) => {
            k.ok += 1;
            k.latency.record(t.elapsed());
        }
        Err(f) => k.errors.add(f.key()),
    }
    r
}

/// One round of the mix; it connects and logs in first when there is no connection.
async fn round(
    plan: &Plan,
    index: usize,
    round_no: u64,
    conn: &mut Option<Conn>,
    uids: &mut Vec<u32>,
    rng: &mut Rng,
    tally: &mut SessionTally,
) -> Result<(), Failure> {
    if conn.is_none() {
        let mut c = Conn::open(plan).await?;
        timed_step(tally, Kind::Login, c.login(plan, index)).await?;
        *conn = Some(c);
        if !plan.mix.contains(&Step::Select) {
            // The other steps need a selected mailbox.
            let c = conn.as_mut().ok_or(Failure::Protocol)?;
            let (status, _) = c.command(&format!("SELECT \"{}\"", plan.mailbox)).await?;
            if status != Status::Ok {
                return Err(Failure::Refused(Kind::Select));
            }
        }
    }
    let c = conn.as_mut().ok_or(Failure::Protocol)?;
    for &step in &plan.mix {
        let (cmd, append): (String, Option<Vec<u8>>) = match step {
            Step::Select => (format!("SELECT \"{}\"", plan.mailbox), None),
            Step::FetchFlags => ("FETCH 1:* (UID FLAGS)".to_owned(), None),
            Step::FetchBody => {
                let Some(&uid) = uids.get(rng.below(uids.len())) else {
                    continue;
                };
                (format!("UID FETCH {uid} (BODY.PEEK[])"), None)
            }
            Step::Search => {
                let word = SEARCH_WORDS[(index + round_no as usize) % SEARCH_WORDS.len()];
                (format!("UID SEARCH SUBJECT {word}"), None)
            }
            Step::Store => {
                let Some(&uid) = uids.get(rng.below(uids.len())) else {
                    continue;
                };
                let sign = if round_no % 2 == 1 { '+' } else { '-' };
                (format!("UID STORE {uid} {sign}FLAGS (\\Seen)"), None)
            }
            Step::Append => {
                if plan.append_every == 0 || !round_no.is_multiple_of(plan.append_every) {
                    continue;
                }
                let msg = append_message(index, round_no, plan.append_size);
                (
                    format!("APPEND \"{}\" {{{}}}", plan.mailbox, msg.len()),
                    Some(msg),
                )
            }
            Step::Noop => ("NOOP".to_owned(), None),
        };
        let t = Instant::now();
        let (status, untagged) = match append {
            None => c.command(&cmd).await,
            Some(msg) => {
                let tag = c.tag();
                c.send(format!("{tag} {cmd}\r\n").as_bytes()).await?;
                match c.until_continuation(&tag).await? {
                    Some(status) => Ok((status, Untagged::default())),
                    None => {
                        let mut body = msg;
                        body.extend_from_slice(b"\r\n");
                        c.send(&body).await?;
                        c.until_tagged(&tag).await
                    }
                }
            }
        }
        .inspect_err(|f| tally.kind(step.kind()).errors.add(f.key()))?;
        let k = tally.kind(step.kind());
        match status {
            Status::Ok => {
                k.ok += 1;
                k.latency.record(t.elapsed());
                k.bytes += untagged.literal_bytes;
                k.results += match step {
                    Step::FetchFlags => untagged.uids.len() as u64,
                    Step::Search => untagged.search_hits,
                    _ => 0,
                };
            }
            Status::No => k.errors.add("NO"),
            Status::Bad => k.errors.add("BAD"),
        }
        if status != Status::Ok && step == Step::Select {
            return Err(Failure::Refused(Kind::Select));
        }
        if step == Step::FetchFlags && status == Status::Ok {
            *uids = untagged.uids;
        }
    }
    if plan.relogin
        && let Some(mut c) = conn.take()
    {
        timed_step(tally, Kind::Logout, c.logout()).await?;
    }
    Ok(())
}

/// A small message for APPEND, `size` bytes (at least its headers), CRLF lines.
fn append_message(index: usize, round_no: u64, size: usize) -> Vec<u8> {
    let word = SEARCH_WORDS[(index + round_no as usize) % SEARCH_WORDS.len()];
    let mut m = String::new();
    let _ = write!(
        m,
        "From: bench@example.org\r\nTo: user@example.org\r\n\
         Subject: appended {word} {index}-{round_no}\r\n\
         Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <append-{index}-{round_no}@bench.example>\r\n\r\n"
    );
    let line = "appended by golub-bench imap to measure APPEND under load\r\n";
    while m.len() + line.len() <= size {
        m.push_str(line);
    }
    m.into_bytes()
}

/// One IDLE session: log in, select, IDLE until told to finish, DONE, LOGOUT.
async fn idle_session(
    plan: Arc<Plan>,
    index: usize,
    state: Arc<IdleState>,
    setup: Arc<Semaphore>,
    mut finish: watch::Receiver<bool>,
) -> Result<(), String> {
    let setup_result = async {
        // invariant: the semaphore is never closed.
        let _permit = setup.acquire().await.expect("semaphore open");
        let mut c = Conn::open(&plan).await.map_err(|f| f.key())?;
        c.login(&plan, index).await.map_err(|f| f.key())?;
        let (status, _) = c
            .command(&format!("SELECT \"{}\"", plan.mailbox))
            .await
            .map_err(|f| f.key())?;
        if status != Status::Ok {
            return Err(Failure::Refused(Kind::Select).key());
        }
        let tag = c.tag();
        c.send(format!("{tag} IDLE\r\n").as_bytes())
            .await
            .map_err(|f| f.key())?;
        match c.until_continuation(&tag).await.map_err(|f| f.key())? {
            None => {}
            Some(_) => return Err("refused idle".to_owned()),
        }
        Ok((c, tag))
    }
    .await;
    state.settled.fetch_add(1, Ordering::Relaxed);
    let mut conn = setup_result?;
    if state.reached.fetch_add(1, Ordering::Relaxed) + 1 == state.wanted {
        // bench/imap.sh waits for this line before it measures the server's memory.
        eprintln!("idle: {} sessions in IDLE", state.wanted);
    }
    state.idling.fetch_add(1, Ordering::Relaxed);
    let result = idle_until_finish(&mut conn.0, &state, &mut finish).await;
    state.idling.fetch_sub(1, Ordering::Relaxed);
    result.map_err(|f| f.key())?;
    let (c, tag) = &mut conn;
    c.send(b"DONE\r\n").await.map_err(|f| f.key())?;
    let (status, _) = c.until_tagged(tag).await.map_err(|f| f.key())?;
    if status != Status::Ok {
        return Err("idle not ended ok".to_owned());
    }
    c.logout().await.map_err(|f| f.key())
}

/// Reads what the server pushes during IDLE until `finish` turns true.
async fn idle_until_finish(
    c: &mut Conn,
    state: &IdleState,
    finish: &mut watch::Receiver<bool>,
) -> Result<(), Failure> {
    loop {
        if *finish.borrow() {
            return Ok(());
        }
        let mut lits = 0;
        tokio::select! {
            changed = finish.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            // No io_timeout here: an idle server says nothing for minutes.
            r = read_response_line(&mut c.stream, &mut c.buf, Duration::from_secs(86_400), &mut lits) => {
                r?;
                if !c.buf.starts_with(b"* ") {
                    return Err(Failure::Protocol);
                }
                state.pushed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn literal_sizes_are_found_at_line_end() {
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(literal_size(b"a APPEND INBOX {7+}"), Some(7));
        assert_eq!(literal_size(b"* OK {x}"), None);
        assert_eq!(literal_size(b"* OK done"), None);
        assert_eq!(literal_size(b"* OK {}"), None);
    }

    #[tokio::test]
    async fn a_literal_is_counted_and_the_line_goes_on() {
        let mut r = BufReader::new(&b"* 1 FETCH (UID 7 BODY[] {5}\r\nab\r\nc)\r\nnext\r\n"[..]);
        let mut buf = Vec::new();
        let mut lits = 0;
        read_response_line(&mut r, &mut buf, T, &mut lits)
            .await
            .unwrap();
        assert_eq!(buf, b"* 1 FETCH (UID 7 BODY[] {5})\r\n");
        assert_eq!(lits, 5);
        read_response_line(&mut r, &mut buf, T, &mut lits)
            .await
            .unwrap();
        assert_eq!(buf, b"next\r\n");
    }

    #[test]
    fn fetch_uids_and_search_hits_are_noted() {
        let mut u = Untagged::default();
        note_untagged(b"1 FETCH (UID 17 FLAGS (\\Seen))", &mut u);
        note_untagged(b"2 FETCH (FLAGS () UID 18)", &mut u);
        note_untagged(b"3 EXISTS", &mut u);
        note_untagged(b"SEARCH 4 9 12", &mut u);
        note_untagged(b"SEARCH", &mut u);
        assert_eq!(u.uids, [17, 18]);
        assert_eq!(u.search_hits, 3);
    }

    #[test]
    fn statuses_are_parsed() {
        assert_eq!(parse_status(b"OK done"), Some(Status::Ok));
        assert_eq!(parse_status(b"no [TRYCREATE] x"), Some(Status::No));
        assert_eq!(parse_status(b"BAD"), Some(Status::Bad));
        assert_eq!(parse_status(b"PREAUTH"), None);
    }

    #[test]
    fn mix_is_parsed_in_round_order() {
        let m = parse_mix("noop, select,search").unwrap();
        assert_eq!(m, [Step::Select, Step::Search, Step::Noop]);
        assert_eq!(parse_mix("all").unwrap(), Step::ALL);
        assert!(parse_mix("select,frobnicate").is_err());
    }

    #[test]
    fn user_templates_expand() {
        assert_eq!(
            users("u{n}@x.org", 3).unwrap(),
            ["u0@x.org", "u1@x.org", "u2@x.org"]
        );
        assert_eq!(users("u@x.org", 1).unwrap(), ["u@x.org"]);
        assert!(users("u@x.org", 2).is_err());
    }

    #[test]
    fn appended_messages_have_the_asked_size_or_just_headers() {
        let m = append_message(1, 10, 2048);
        assert!(m.len() <= 2048 && m.len() > 1900, "{}", m.len());
        assert!(m.starts_with(b"From: "));
        assert!(append_message(1, 10, 10).ends_with(b"\r\n\r\n"));
    }
}
