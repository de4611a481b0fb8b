//! The POP3 server session (RFC 1939 §3–§6), sans-IO.
//!
//! The driver feeds received octets to [`Session::handle_input`], takes responses from
//! [`Session::poll_output`] and events from [`Session::poll_event`], and answers the events
//! that need a decision (`auth_succeeded`/`auth_failed`, `provide_content`/
//! `content_unavailable`, `update_done`). Time is an argument: the driver arms
//! [`Session::poll_timeout`] and calls [`Session::handle_timeout`].
//!
//! Input is processed strictly in order, one command at a time (PIPELINING, RFC 2449
//! §6.6): when an event needs a decision, processing stops until the decision arrives, so
//! responses are never reordered. A driver keeps memory bounded by not reading while
//! [`Session::wants_decision`] is true.
//!
//! The states are RFC 1939's: AUTHORIZATION until the driver locks a maildrop,
//! TRANSACTION after, UPDATE only after QUIT ([`Event::UpdateRequested`]). A session that
//! ends any other way (dropped connection, timeout, shutdown, too many errors) deletes
//! nothing.

mod auth;
mod reply;
mod tls;
mod transaction;

use std::collections::VecDeque;
use std::mem;
use std::time::{Duration, Instant};

use golub_types::sasl::{Credential, Exchange};

use crate::command::{self, Command};
use crate::error::Error;

/// Limits and advertised features of one session.
#[derive(Debug, Clone)]
pub struct Pop3Config {
    /// Our name, in the greeting and the sign-off.
    pub hostname: String,
    /// Offer and accept STLS (RFC 2595 §4) while the connection is not TLS yet.
    pub stls_available: bool,
    /// The connection is TLS from the start (pop3s, RFC 8314 §3.3, port 995).
    pub tls_active: bool,
    /// Allow USER/PASS and AUTH without TLS; passwords then cross in the clear.
    pub allow_plaintext_auth: bool,
    /// SASL mechanisms to offer (RFC 5034): "PLAIN" (RFC 4616) and "LOGIN" are
    /// implemented, others are left out.
    pub sasl_mechanisms: Vec<String>,
    /// Advertised as LOGIN-DELAY (RFC 2449 §6.5); the driver enforces it.
    pub login_delay: Option<u32>,
    /// Advertised as EXPIRE (RFC 2449 §6.7), e.g. "NEVER".
    pub expire: Option<String>,
    /// RFC 1939 §3: an autologout timer of at least 10 minutes.
    pub command_timeout: Duration,
    /// A command line with its CRLF (RFC 2449 §4: 255). AUTH lines and SASL responses may
    /// be up to 12288 octets (RFC 5034 §4).
    pub max_line: usize,
    /// More refused commands than this end the session with "-ERR too many errors".
    pub max_errors: usize,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            hostname: "localhost".to_string(),
            stls_available: false,
            tls_active: false,
            allow_plaintext_auth: false,
            sasl_mechanisms: vec!["PLAIN".to_string(), "LOGIN".to_string()],
            login_delay: None,
            expire: Some("NEVER".to_string()),
            command_timeout: Duration::from_secs(10 * 60),
            max_line: 255,
            max_errors: 10,
        }
    }
}

/// One message of a locked maildrop, in maildrop order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Octets as the client receives them (CRLF line ends), before byte-stuffing.
    pub size: u64,
    /// The unique-id for UIDL (RFC 1939 §7: 1 to 70 octets in 0x21..=0x7E).
    pub uid: String,
}

/// Why the driver refused the credentials or the maildrop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Unknown user or wrong password.
    Invalid,
    /// The maildrop is locked by another session (RFC 2449 §8.1.1).
    InUse,
    /// The directory or the store failed; try again later (RFC 3206 §4).
    TempFail,
    /// Too many failed logins: the session is closed.
    Blocked,
}

/// What happened in the session; all events but `StlsRequested` need a decision.
#[derive(Debug)]
pub enum Event {
    /// STLS accepted: "+OK begin TLS negotiation" is queued and no input is processed
    /// until `tls_established`. If the handshake fails, the driver closes the connection.
    StlsRequested,
    /// USER+PASS (mechanism "USER") or AUTH PLAIN / LOGIN / SCRAM-SHA-256. `authzid` is
    /// empty unless the client gave one. Decision: `auth_succeeded(maildrop)` or
    /// `auth_failed(why)`.
    AuthAttempted {
        mechanism: String,
        authzid: String,
        user: String,
        credential: Credential,
    },
    /// SCRAM-SHA-256 needs the stored credentials of `user`. Decision:
    /// `scram_credentials(credentials, server_nonce)` (a decoy for an unknown user) or
    /// `auth_failed(why)`.
    CredentialsNeeded { mechanism: String, user: String },
    /// RETR n (top: None) or TOP n m (top: Some(m)); index is 0-based into the maildrop.
    /// Decision: `provide_content(bytes)` or `content_unavailable()`.
    ContentNeeded { index: usize, top: Option<u64> },
    /// QUIT in TRANSACTION state: the UPDATE state (RFC 1939 §6). `deleted` holds the
    /// 0-based indexes marked with DELE, ascending. Decision: `update_done(ok)`.
    UpdateRequested { deleted: Vec<usize> },
}

/// A locked maildrop in TRANSACTION state.
#[derive(Debug)]
struct Maildrop {
    /// The authenticated user (the authentication identity).
    user: String,
    messages: Vec<MessageInfo>,
    /// Marked with DELE; parallel to `messages`.
    deleted: Vec<bool>,
}

/// RFC 1939's session states before UPDATE (which is a pending decision).
#[derive(Debug)]
enum State {
    /// The user name of an accepted USER waits for its PASS.
    Authorization {
        user: Option<String>,
    },
    Transaction(Maildrop),
}

/// The event waiting for the driver's decision.
#[derive(Debug)]
enum Pending {
    /// Credentials for this user; the SASL exchange they came from (none for USER/PASS).
    Auth {
        user: String,
        exchange: Option<Box<Exchange>>,
    },
    Credentials {
        exchange: Box<Exchange>,
    },
    Content {
        index: usize,
        top: Option<u64>,
    },
    Update,
}

/// What the next input octets are.
#[derive(Debug)]
enum Phase {
    Command,
    /// A SASL response line of an AUTH exchange (RFC 5034 §4); `verified` holds the
    /// user and maildrop once only the client's acknowledgement is missing (SCRAM).
    Sasl {
        exchange: Box<Exchange>,
        verified: Option<(String, Vec<MessageInfo>)>,
    },
    /// STLS was accepted; input is dropped until the handshake is done.
    Tls,
}

/// One POP3 server session.
#[derive(Debug)]
pub struct Session {
    config: Pop3Config,
    /// Received octets not processed yet; `start` is where processing stands.
    input: Vec<u8>,
    start: usize,
    output: Vec<u8>,
    events: VecDeque<Event>,
    phase: Phase,
    /// Discarding the rest of an over-long line up to its LF.
    skipping: bool,
    state: State,
    pending: Option<Pending>,
    /// The connection is TLS (pop3s, or after STLS).
    tls: bool,
    errors: usize,
    /// The last time the driver told us; decisions carry none.
    now: Instant,
    deadline: Option<Instant>,
    closed: bool,
}

impl Session {
    /// A new session in AUTHORIZATION state; the greeting is queued. No APOP timestamp:
    /// APOP is not offered.
    pub fn new(config: Pop3Config, now: Instant) -> Self {
        let mut s = Session {
            tls: config.tls_active,
            config,
            input: Vec::new(),
            start: 0,
            output: Vec::new(),
            events: VecDeque::new(),
            phase: Phase::Command,
            skipping: false,
            state: State::Authorization { user: None },
            pending: None,
            errors: 0,
            now,
            deadline: None,
            closed: false,
        };
        let greeting = reply::greeting(&s.config.hostname);
        s.ok(&greeting);
        s.arm_deadline();
        s
    }

    /// Buffers received octets and processes them as far as possible. Between STLS and
    /// [`tls_established`](Self::tls_established) the octets are dropped: they came
    /// before the handshake (RFC 2595 §4).
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if self.closed || matches!(self.phase, Phase::Tls) {
            return;
        }
        self.now = now;
        self.input.extend_from_slice(data);
        self.process();
    }

    /// Past the deadline: "-ERR autologout timer expired" and closed; nothing is deleted
    /// (RFC 1939 §3).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.closed || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.fail(reply::AUTOLOGOUT);
        self.close();
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the response octets produced so far to `out`.
    pub fn poll_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.output);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout); none while a decision is
    /// pending, while waiting for the TLS handshake, or once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once the session is over: flush the output and close the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True while an event waits for its decision.
    pub fn wants_decision(&self) -> bool {
        self.pending.is_some()
    }

    /// Answers the pending RETR or TOP with the whole message: "+OK", then the message
    /// (for TOP its header section, the blank line and the first m body lines) with CRLF
    /// line ends and byte-stuffed, then ".".
    pub fn provide_content(&mut self, content: Vec<u8>) {
        let Some(Pending::Content { index, top }) =
            self.take_pending(|p| matches!(p, Pending::Content { .. }))
        else {
            return;
        };
        let size = match &self.state {
            State::Transaction(m) => m.messages.get(index).map_or(0, |i| i.size),
            State::Authorization { .. } => 0,
        };
        match top {
            None => {
                self.ok(&format!("{size} octets"));
                crate::content::write_multiline(&mut self.output, &content);
            }
            Some(lines) => {
                self.ok(reply::TOP_FOLLOWS);
                crate::content::write_multiline(
                    &mut self.output,
                    crate::content::top(&content, lines),
                );
            }
        }
        self.process();
    }

    /// Answers the pending RETR or TOP: the message cannot be read now.
    pub fn content_unavailable(&mut self) {
        if self
            .take_pending(|p| matches!(p, Pending::Content { .. }))
            .is_some()
        {
            self.fail(reply::CANNOT_READ);
            self.process();
        }
    }

    /// Ends the UPDATE state: whether all messages marked deleted were removed. The
    /// session is closed either way (RFC 1939 §6).
    pub fn update_done(&mut self, ok: bool) {
        if self
            .take_pending(|p| matches!(p, Pending::Update))
            .is_none()
        {
            return;
        }
        if ok {
            let text = reply::signing_off(&self.config.hostname);
            self.ok(&text);
        } else {
            self.fail(reply::NOT_REMOVED);
        }
        self.close();
    }

    /// "-ERR [SYS/TEMP] server shutting down" and closed, dropping any pending decision;
    /// nothing is deleted.
    pub fn shutdown(&mut self) {
        if self.closed {
            return;
        }
        self.fail(reply::SHUTTING_DOWN);
        self.close();
    }

    /// The authenticated user (the authentication identity) once a maildrop is locked.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Transaction(m) => Some(&m.user),
            State::Authorization { .. } => None,
        }
    }

    fn take_pending(&mut self, wanted: impl Fn(&Pending) -> bool) -> Option<Pending> {
        if self.closed || !self.pending.as_ref().is_some_and(wanted) {
            return None;
        }
        self.pending.take()
    }

    /// Processes buffered input until it runs out, a decision is needed or we close.
    fn process(&mut self) {
        while !self.closed && self.pending.is_none() {
            let progressed = match self.phase {
                Phase::Command => self.read_command(),
                Phase::Sasl { .. } => self.read_sasl(),
                Phase::Tls => {
                    // RFC 2595 §4: what follows STLS in the clear is never executed.
                    self.start = self.input.len();
                    false
                }
            };
            if !progressed {
                break;
            }
        }
        if self.closed {
            self.input = Vec::new();
        } else {
            self.input.drain(..self.start.min(self.input.len()));
        }
        self.start = 0;
        self.arm_deadline();
    }

    fn arm_deadline(&mut self) {
        let waiting = self.closed || self.pending.is_some() || matches!(self.phase, Phase::Tls);
        self.deadline = if waiting {
            None
        } else {
            self.now.checked_add(self.config.command_timeout)
        };
    }

    /// Frames one command line and handles it; false when no whole line is buffered.
    fn read_command(&mut self) -> bool {
        // RFC 5034 §4: an AUTH line with its initial response may be longer than 255.
        let buffered = &self.input[self.start..];
        let max = if !self.skipping
            && buffered.len() >= 5
            && buffered[..5].eq_ignore_ascii_case(b"AUTH ")
        {
            auth::MAX_SASL_LINE.max(self.config.max_line)
        } else {
            self.config.max_line
        };
        match self.take_line(max) {
            None => false,
            Some(Ok(line)) => {
                match command::parse(&line) {
                    Ok(command) => self.handle_command(command),
                    Err(e) => self.err(reply::reply_for(&e)),
                }
                true
            }
            Some(Err(e)) => {
                self.err(reply::reply_for(&e));
                true
            }
        }
    }

    /// Takes one line of at most `max` octets with its line end off the buffered input,
    /// or none when no whole line is buffered yet. CRLF ends a line; so does a bare LF.
    fn take_line(&mut self, max: usize) -> Option<Result<String, Error>> {
        let buffered = self.input.get(self.start..).unwrap_or_default();
        let Some(lf) = buffered.iter().position(|&b| b == b'\n') else {
            // Frame before parsing, under the cap: an over-long line is never kept.
            if self.skipping || buffered.len() >= max {
                self.skipping = true;
                self.start = self.input.len();
            }
            return None;
        };
        let was_skipping = mem::replace(&mut self.skipping, false);
        let line = &buffered[..lf];
        self.start += lf + 1;
        Some(if was_skipping || lf + 1 > max {
            Err(Error::LineTooLong)
        } else {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                Err(Error::InvalidCharacters)
            } else {
                std::str::from_utf8(line)
                    .map(str::to_string)
                    .map_err(|_| Error::InvalidCharacters)
            }
        })
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Capa => self.capa(),
            Command::Quit => self.quit(),
            Command::User(name) => self.user_command(name),
            Command::Pass(password) => self.pass(password),
            Command::Apop => self.apop(),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response),
            Command::Stls => self.stls(),
            Command::Stat => self.stat(),
            Command::List(n) => self.list(n),
            Command::Retr(n) => self.retr(n),
            Command::Dele(n) => self.dele(n),
            Command::Noop => self.noop(),
            Command::Rset => self.rset(),
            Command::Top(n, lines) => self.top(n, lines),
            Command::Uidl(n) => self.uidl(n),
        }
    }

    /// CAPA (RFC 2449 §5), in any state.
    fn capa(&mut self) {
        let authorization = matches!(self.state, State::Authorization { .. });
        let login_usable = authorization && self.plaintext_ok();
        let mut lines = vec!["TOP".to_string(), "UIDL".to_string()];
        if login_usable {
            lines.push("USER".to_string());
            let mechanisms = self.mechanisms();
            if !mechanisms.is_empty() {
                let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
                lines.push(format!("SASL {}", names.join(" ")));
            }
        }
        lines.push("RESP-CODES".to_string());
        lines.push("AUTH-RESP-CODE".to_string());
        lines.push("PIPELINING".to_string());
        if let Some(expire) = &self.config.expire {
            lines.push(format!("EXPIRE {expire}"));
        }
        if let Some(delay) = self.config.login_delay {
            lines.push(format!("LOGIN-DELAY {delay}"));
        }
        if authorization && self.stls_offered() {
            lines.push("STLS".to_string());
        }
        lines.push("IMPLEMENTATION Golub".to_string());
        self.ok(reply::CAPABILITIES_FOLLOW);
        self.multiline_list(&lines);
    }

    /// QUIT: in AUTHORIZATION a plain goodbye; in TRANSACTION the UPDATE state.
    fn quit(&mut self) {
        match &self.state {
            State::Authorization { .. } => {
                let text = reply::signing_off(&self.config.hostname);
                self.ok(&text);
                self.close();
            }
            State::Transaction(m) => {
                let deleted = m
                    .deleted
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &d)| d.then_some(i))
                    .collect();
                self.events.push_back(Event::UpdateRequested { deleted });
                self.pending = Some(Pending::Update);
            }
        }
    }

    /// Queues "+OK text".
    fn ok(&mut self, text: &str) {
        self.status(b"+OK", text);
    }

    /// Queues "-ERR text" for a refused command; it counts towards `max_errors`.
    fn err(&mut self, text: &str) {
        self.status(b"-ERR", text);
        self.errors += 1;
        if self.errors > self.config.max_errors {
            self.fail(reply::TOO_MANY_ERRORS);
            self.close();
        }
    }

    /// Queues "-ERR text" for a failure that is not the client's fault.
    fn fail(&mut self, text: &str) {
        self.status(b"-ERR", text);
    }

    fn status(&mut self, indicator: &[u8], text: &str) {
        self.output.extend_from_slice(indicator);
        if !text.is_empty() {
            self.output.push(b' ');
            self.output.extend_from_slice(text.as_bytes());
        }
        self.output.extend_from_slice(b"\r\n");
    }

    /// The body of a multi-line response whose lines are ours (no line ends inside).
    fn multiline_list(&mut self, lines: &[String]) {
        let mut body = Vec::new();
        for line in lines {
            body.extend_from_slice(line.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        crate::content::write_multiline(&mut self.output, &body);
    }

    fn close(&mut self) {
        self.closed = true;
        self.pending = None;
        self.deadline = None;
        self.input = Vec::new();
        self.start = 0;
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests;
