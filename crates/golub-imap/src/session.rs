//! The IMAP server session, sans-IO: framing, tags, the connection states of RFC 9051 §3
//! (not authenticated, authenticated, selected, logout), STARTTLS, LOGIN, AUTHENTICATE
//! (with SASL-IR), ENABLE, ID, CAPABILITY, LOGOUT and IDLE's continuation and DONE.
//!
//! Every command that touches mailboxes goes to the driver as [`Event::Command`], after
//! the session has checked that the command is allowed in the current state. The driver
//! writes the untagged responses into [`Session::output`] and ends the command with
//! [`Session::complete`]. Input is processed strictly in order, one command at a time:
//! while a command waits for the driver nothing else is read from the buffered input,
//! so responses are never reordered. A driver that answers a long command in parts calls
//! [`Session::resume_later`] and gets [`Event::Resume`] once the output so far has been
//! written out.

use std::collections::VecDeque;
use std::mem;
use std::time::{Duration, Instant};

use golub_types::sasl::scram::ScramCredentials;
use golub_types::sasl::{self, Attempt, Credential, Exchange, Mechanism, Step};

use crate::command::{Command, Tagged};
use crate::frame::{Frame, FrameError, FrameLimits, Framer};
use crate::parse;

/// Limits and advertised features of one session.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// Our name, in the greeting.
    pub hostname: String,
    /// Offer and accept STARTTLS while the connection is not TLS yet.
    pub starttls_available: bool,
    /// The connection is TLS from the start (imaps, RFC 8314).
    pub tls_active: bool,
    /// Allow LOGIN and AUTHENTICATE without TLS (passwords then cross in the clear).
    pub allow_plaintext_auth: bool,
    /// SASL mechanisms to offer: PLAIN, LOGIN and SCRAM-SHA-256 are implemented.
    pub sasl_mechanisms: Vec<String>,
    /// RFC 9051 §5.4: the autologout timer, at least 30 minutes once authenticated.
    pub timeout: Duration,
    /// Before authentication a shorter timer is allowed; this one.
    pub login_timeout: Duration,
    /// Framing limits: line, literal and command sizes.
    pub limits: FrameLimits,
    /// More refused commands (BAD) than this in a row end the session.
    pub max_errors: usize,
    /// Extra capabilities the driver serves, advertised once authenticated.
    pub capabilities: Vec<String>,
    /// While IDLE, "* OK Still here" this often, so that middleboxes keep the
    /// connection (as Dovecot does every two minutes).
    pub idle_keepalive: Duration,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".to_string(),
            starttls_available: false,
            tls_active: false,
            allow_plaintext_auth: false,
            sasl_mechanisms: ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
                .map(String::from)
                .to_vec(),
            timeout: Duration::from_secs(30 * 60),
            login_timeout: Duration::from_secs(60),
            limits: FrameLimits::default(),
            max_errors: 20,
            capabilities: Vec::new(),
            idle_keepalive: Duration::from_secs(120),
        }
    }
}

/// Why the driver refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Unknown user or wrong password.
    Invalid,
    /// The directory or the store failed; try again later.
    TempFail,
    /// Too many failed logins from this client: the session is closed.
    Blocked,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// What the session needs from the driver.
#[derive(Debug)]
pub enum Event {
    /// STARTTLS accepted: the OK is queued; no input is processed until
    /// [`Session::tls_established`].
    StartTls,
    /// LOGIN or AUTHENTICATE. Decision: [`Session::auth_succeeded`] or
    /// [`Session::auth_failed`].
    AuthAttempted {
        mechanism: String,
        authzid: String,
        user: String,
        credential: Credential,
    },
    /// SCRAM needs the user's stored credentials. Decision:
    /// [`Session::scram_credentials`] (a decoy for an unknown user) or
    /// [`Session::auth_failed`].
    CredentialsNeeded { mechanism: String, user: String },
    /// A command for the driver, allowed in the current state. Decision: untagged
    /// responses in [`Session::output`], then [`Session::complete`].
    Command { tag: String, command: Command },
    /// The driver asked to go on with the current command ([`Session::resume_later`]).
    Resume,
    /// IDLE ended with DONE (or by the session closing); the driver stops reporting.
    IdleEnded,
    /// An APPEND whose message is streamed (larger than `stream_literal`). Decision:
    /// [`Session::append_accept`] (the octets follow as [`Event::AppendData`], then
    /// [`Event::AppendEnd`]) or [`Session::append_refuse`].
    AppendStart {
        tag: String,
        mailbox: Vec<u8>,
        flags: Vec<String>,
        date: Option<i64>,
        size: u64,
    },
    /// The next octets of the streamed message, in order.
    AppendData(Vec<u8>),
    /// The streamed message is complete (`ok`: its command ended properly). Decision:
    /// [`Session::complete`].
    AppendEnd { ok: bool },
}

/// The connection states of RFC 9051 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    NotAuthenticated,
    Authenticated,
    Selected { read_only: bool },
}

/// What ENABLE turned on (RFC 5161).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enabled {
    pub condstore: bool,
    pub qresync: bool,
    pub imap4rev2: bool,
    pub utf8: bool,
}

#[derive(Debug)]
enum Pending {
    Auth {
        tag: String,
        exchange: Option<Box<Exchange>>,
    },
    Credentials {
        tag: String,
        exchange: Box<Exchange>,
    },
    Command {
        tag: String,
    },
    /// A streamed APPEND waits to be accepted or refused.
    AppendStart {
        tag: String,
        sync: bool,
    },
}

#[derive(Debug)]
enum Phase {
    Command,
    /// A SASL response line; `verified` once only SCRAM's acknowledgement is missing.
    Sasl {
        tag: String,
        exchange: Box<Exchange>,
        verified: bool,
    },
    /// IDLE (RFC 2177): waiting for DONE.
    Idle {
        tag: String,
    },
    /// STARTTLS accepted; input is dropped until the handshake is done.
    Tls,
    /// A streamed APPEND's message is arriving.
    Stream {
        tag: String,
    },
}

/// One IMAP server session.
#[derive(Debug)]
pub struct Session {
    config: ImapConfig,
    framer: Framer,
    output: Vec<u8>,
    events: VecDeque<Event>,
    phase: Phase,
    state: State,
    pending: Option<Pending>,
    enabled: Enabled,
    tls: bool,
    errors: usize,
    now: Instant,
    deadline: Option<Instant>,
    /// The next "* OK Still here" while IDLE.
    keepalive: Option<Instant>,
    closed: bool,
}

/// RFC 4954 / RFC 9051: a SASL response line may be long (SCRAM, Kerberos).
const MAX_SASL_LINE: usize = 12 * 1024;

impl Session {
    /// A new session; the greeting is queued.
    pub fn new(config: ImapConfig, now: Instant) -> Self {
        let mut s = Session {
            framer: Framer::new(config.limits),
            tls: config.tls_active,
            config,
            output: Vec::new(),
            events: VecDeque::new(),
            phase: Phase::Command,
            state: State::NotAuthenticated,
            pending: None,
            enabled: Enabled::default(),
            errors: 0,
            now,
            deadline: None,
            keepalive: None,
            closed: false,
        };
        let caps = s.capabilities();
        let greeting = format!(
            "* OK [CAPABILITY {caps}] {} Golub IMAP ready\r\n",
            s.config.hostname
        );
        s.output.extend_from_slice(greeting.as_bytes());
        s.arm_deadline();
        s
    }

    /// Buffers received octets and processes them as far as possible.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if self.closed || matches!(self.phase, Phase::Tls) {
            return;
        }
        self.now = now;
        self.framer.push(data);
        self.process();
    }

    /// Past the deadline: BYE and closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.closed {
            return;
        }
        if let Some(k) = self.keepalive
            && now >= k
            && self.is_idle()
        {
            self.output.extend_from_slice(b"* OK Still here\r\n");
            self.keepalive = now.checked_add(self.config.idle_keepalive);
        }
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.bye("Autologout; idle for too long");
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.output);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.deadline, self.keepalive.filter(|_| self.is_idle())) {
            (Some(d), Some(k)) => Some(d.min(k)),
            (d, k) => d.or(k),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The server is stopping: BYE and closed.
    pub fn shutdown(&mut self) {
        if !self.closed {
            self.bye("Server shutting down");
        }
    }

    /// The STARTTLS handshake is done.
    pub fn tls_established(&mut self, now: Instant) {
        self.now = now;
        self.tls = true;
        self.phase = Phase::Command;
        // RFC 9051 §6.2.1: anything the client sent before the handshake is discarded.
        self.framer = Framer::new(self.config.limits);
        self.arm_deadline();
    }

    /// Where untagged responses go; each must end with CRLF.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn enabled(&self) -> Enabled {
        self.enabled
    }

    /// Mailbox names are UTF-8 on the wire (IMAP4rev2 or UTF8=ACCEPT enabled).
    pub fn utf8_names(&self) -> bool {
        self.enabled.imap4rev2 || self.enabled.utf8
    }

    /// CONDSTORE was enabled by a command that implies it (RFC 7162 §3.1); true if it
    /// was not on before (the driver then reports HIGHESTMODSEQ, RFC 7162 §3.1.2.1).
    pub fn enable_condstore(&mut self) -> bool {
        !std::mem::replace(&mut self.enabled.condstore, true)
    }

    /// True while IDLE waits for DONE.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle { .. })
    }

    /// The tag of the command the driver is answering.
    pub fn current_tag(&self) -> Option<&str> {
        match &self.pending {
            Some(Pending::Command { tag }) => Some(tag),
            _ => None,
        }
    }

    /// A mailbox is selected (SELECT or EXAMINE succeeded).
    pub fn select(&mut self, read_only: bool) {
        if self.state != State::NotAuthenticated {
            self.state = State::Selected { read_only };
        }
    }

    /// No mailbox is selected any more (CLOSE, UNSELECT, a failed SELECT).
    pub fn unselect(&mut self) {
        if self.state != State::NotAuthenticated {
            self.state = State::Authenticated;
        }
    }

    /// Ends the pending command with its tagged status response.
    pub fn complete(&mut self, status: Status, code: Option<&str>, text: &str) {
        let Some(Pending::Command { tag }) =
            self.take_pending(|p| matches!(p, Pending::Command { .. }))
        else {
            return;
        };
        self.tagged(&tag, status, code, text);
        if status == Status::Bad {
            self.count_error();
        } else {
            self.errors = 0;
        }
        self.process();
    }

    /// The pending command goes on later: [`Event::Resume`] comes once what is in the
    /// output has been written.
    pub fn resume_later(&mut self) {
        if matches!(self.pending, Some(Pending::Command { .. })) {
            self.events.push_back(Event::Resume);
        }
    }

    /// Takes the streamed APPEND's message: "+ " for a synchronizing literal, then
    /// [`Event::AppendData`] as the octets arrive.
    pub fn append_accept(&mut self) {
        let Some(Pending::AppendStart { tag, sync }) =
            self.take_pending(|p| matches!(p, Pending::AppendStart { .. }))
        else {
            return;
        };
        if sync {
            self.output
                .extend_from_slice(b"+ Ready for literal data\r\n");
        }
        self.framer.stream_accept();
        self.phase = Phase::Stream { tag };
        self.process();
    }

    /// Refuses the streamed APPEND with its tagged response; the message is not read
    /// (a non-synchronizing one is dropped as it arrives).
    pub fn append_refuse(&mut self, status: Status, code: Option<&str>, text: &str) {
        let Some(Pending::AppendStart { tag, .. }) =
            self.take_pending(|p| matches!(p, Pending::AppendStart { .. }))
        else {
            return;
        };
        self.framer.stream_refuse();
        self.tagged(&tag, status, code, text);
        self.process();
    }

    /// IDLE was accepted by the driver: "+ idling" and wait for DONE. The pending IDLE
    /// command stays open until then.
    pub fn idle(&mut self) {
        let Some(Pending::Command { tag }) =
            self.take_pending(|p| matches!(p, Pending::Command { .. }))
        else {
            return;
        };
        self.output.extend_from_slice(b"+ idling\r\n");
        self.phase = Phase::Idle { tag };
        self.keepalive = self.now.checked_add(self.config.idle_keepalive);
        self.process();
    }

    /// Accepts the pending credentials: authenticated state.
    pub fn auth_succeeded(&mut self) {
        let Some(Pending::Auth { tag, exchange }) =
            self.take_pending(|p| matches!(p, Pending::Auth { .. }))
        else {
            return;
        };
        match exchange.map(|mut e| (e.server_final(), e)) {
            Some((Some(last), exchange)) => {
                self.challenge(tag, exchange, true, &last);
            }
            _ => self.logged_in(&tag),
        }
        self.process();
    }

    /// Refuses the pending credentials.
    pub fn auth_failed(&mut self, why: AuthFailure) {
        let tag = match self
            .take_pending(|p| matches!(p, Pending::Auth { .. } | Pending::Credentials { .. }))
        {
            Some(Pending::Auth { tag, .. } | Pending::Credentials { tag, .. }) => tag,
            _ => return,
        };
        match why {
            AuthFailure::Invalid => self.tagged(
                &tag,
                Status::No,
                Some("AUTHENTICATIONFAILED"),
                "Authentication failed",
            ),
            AuthFailure::TempFail => self.tagged(
                &tag,
                Status::No,
                Some("UNAVAILABLE"),
                "Temporary authentication failure, try again later",
            ),
            AuthFailure::Blocked => {
                self.tagged(
                    &tag,
                    Status::No,
                    Some("AUTHENTICATIONFAILED"),
                    "Too many failed logins",
                );
                return self.bye("Too many failed logins");
            }
        }
        self.process();
    }

    /// Gives a SCRAM exchange the user's stored credentials.
    pub fn scram_credentials(&mut self, credentials: ScramCredentials, server_nonce: &str) {
        if let Some(Pending::Credentials { tag, mut exchange }) =
            self.take_pending(|p| matches!(p, Pending::Credentials { .. }))
        {
            let step = exchange.credentials(credentials, server_nonce);
            self.step(tag, exchange, step);
            self.process();
        }
    }

    /// The capabilities for the current state (RFC 9051 §7.2.2).
    pub fn capabilities(&self) -> String {
        let mut caps = vec![
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
        ];
        let plaintext_ok = self.tls || self.config.allow_plaintext_auth;
        if self.state == State::NotAuthenticated {
            if !self.tls && self.config.starttls_available {
                caps.push("STARTTLS");
            }
            if !plaintext_ok {
                caps.push("LOGINDISABLED");
            }
        }
        let mut out = caps.join(" ");
        if self.state == State::NotAuthenticated {
            if plaintext_ok {
                for m in self.mechanisms() {
                    out.push_str(" AUTH=");
                    out.push_str(m.name());
                }
            }
        } else {
            for c in &self.config.capabilities {
                out.push(' ');
                out.push_str(c);
            }
        }
        out
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::list(&self.config.sasl_mechanisms)
    }

    fn take_pending(&mut self, wanted: impl Fn(&Pending) -> bool) -> Option<Pending> {
        if self.closed || !self.pending.as_ref().is_some_and(wanted) {
            return None;
        }
        self.pending.take()
    }

    fn process(&mut self) {
        while !self.closed && self.pending.is_none() {
            let progressed = match self.phase {
                Phase::Command => self.read_command(),
                Phase::Sasl { .. } => self.read_sasl(),
                Phase::Idle { .. } => self.read_idle(),
                Phase::Stream { .. } => self.read_stream(),
                Phase::Tls => false,
            };
            if !progressed {
                break;
            }
        }
        self.arm_deadline();
    }

    fn arm_deadline(&mut self) {
        let waiting = self.closed || self.pending.is_some() || matches!(self.phase, Phase::Tls);
        let timeout = if self.state == State::NotAuthenticated {
            self.config.login_timeout
        } else {
            self.config.timeout
        };
        self.deadline = if waiting {
            None
        } else {
            self.now.checked_add(timeout)
        };
    }

    fn read_command(&mut self) -> bool {
        let Some(frame) = self.framer.next() else {
            return false;
        };
        match frame {
            Frame::Continue => {
                self.output
                    .extend_from_slice(b"+ Ready for literal data\r\n");
            }
            Frame::Command(bytes) => match parse::command(&bytes) {
                Ok(Tagged { tag, command }) => self.handle_command(tag, command),
                Err(e) => {
                    let tag = e.tag.clone().unwrap_or_else(|| "*".to_string());
                    self.tagged(&tag, Status::Bad, None, &e.message);
                    self.count_error();
                }
            },
            Frame::Rejected { tag, error } => self.rejected(tag, error),
            Frame::StreamStart { head, size, sync } => self.append_start(head, size, sync),
            // Only in the stream phase.
            Frame::StreamData(_) | Frame::StreamEnd { .. } => {}
        }
        true
    }

    /// A streamed APPEND's first line: parsed with an empty literal in place of the
    /// message, then the driver decides.
    fn append_start(&mut self, head: Vec<u8>, size: u64, sync: bool) {
        let open = head.iter().rposition(|&b| b == b'{').unwrap_or(head.len());
        let mut probe = head[..open].to_vec();
        probe.extend_from_slice(b"{0}\r\n\r\n");
        match parse::command(&probe) {
            Ok(Tagged {
                tag,
                command:
                    Command::Append {
                        mailbox,
                        flags,
                        date,
                        ..
                    },
            }) if self.state != State::NotAuthenticated => {
                self.events.push_back(Event::AppendStart {
                    tag: tag.clone(),
                    mailbox,
                    flags,
                    date,
                    size,
                });
                self.pending = Some(Pending::AppendStart { tag, sync });
            }
            Ok(Tagged { tag, .. }) => {
                self.framer.stream_refuse();
                self.tagged(&tag, Status::Bad, None, "Log in first");
                self.count_error();
            }
            Err(e) => {
                self.framer.stream_refuse();
                let tag = e.tag.clone().unwrap_or_else(|| "*".to_string());
                self.tagged(&tag, Status::Bad, None, &e.message);
                self.count_error();
            }
        }
    }

    fn read_stream(&mut self) -> bool {
        let Some(frame) = self.framer.next() else {
            return false;
        };
        match frame {
            Frame::StreamData(data) => self.events.push_back(Event::AppendData(data)),
            other => {
                let Phase::Stream { tag } = mem::replace(&mut self.phase, Phase::Command) else {
                    return false;
                };
                let ok = matches!(other, Frame::StreamEnd { trailing_ok: true });
                self.events.push_back(Event::AppendEnd { ok });
                self.pending = Some(Pending::Command { tag });
            }
        }
        true
    }

    fn rejected(&mut self, tag: Option<String>, error: FrameError) {
        let tag = tag.unwrap_or_else(|| "*".to_string());
        match error {
            FrameError::LineTooLong => {
                self.tagged(&tag, Status::Bad, None, "Command line too long");
                self.count_error();
            }
            FrameError::LiteralTooLarge { .. } if !error.is_fatal() => {
                self.tagged(&tag, Status::No, Some("TOOBIG"), "Literal too large");
            }
            _ if error.is_fatal() => self.bye("Command too large"),
            _ => {
                self.tagged(&tag, Status::Bad, None, "Command too large");
                self.count_error();
            }
        }
    }

    fn read_sasl(&mut self) -> bool {
        let Some(line) = self.framer.next_line() else {
            return false;
        };
        let Phase::Sasl {
            tag,
            exchange,
            verified,
        } = mem::replace(&mut self.phase, Phase::Command)
        else {
            return false;
        };
        let line = match line {
            Ok(line) if line.len() <= MAX_SASL_LINE => line,
            _ => {
                self.tagged(&tag, Status::Bad, None, "SASL response too long");
                self.count_error();
                return true;
            }
        };
        // RFC 9051 §6.2.2: "*" cancels the exchange.
        if line == b"*" {
            self.tagged(&tag, Status::Bad, None, "Authentication cancelled");
            return true;
        }
        let response = sasl::decode_base64(&line);
        if verified {
            self.acknowledged(tag, exchange, response);
        } else {
            self.respond(tag, exchange, response);
        }
        true
    }

    fn read_idle(&mut self) -> bool {
        let Some(line) = self.framer.next_line() else {
            return false;
        };
        let Phase::Idle { tag } = mem::replace(&mut self.phase, Phase::Command) else {
            return false;
        };
        self.events.push_back(Event::IdleEnded);
        match line {
            Ok(l) if l.eq_ignore_ascii_case(b"DONE") => {
                self.tagged(&tag, Status::Ok, None, "IDLE terminated");
            }
            _ => {
                self.tagged(&tag, Status::Bad, None, "Expected DONE");
                self.count_error();
            }
        }
        true
    }

    fn handle_command(&mut self, tag: String, command: Command) {
        let authenticated = self.state != State::NotAuthenticated;
        let selected = matches!(self.state, State::Selected { .. });
        match command {
            Command::Capability => {
                let caps = self.capabilities();
                self.untagged(&format!("CAPABILITY {caps}"));
                self.tagged(&tag, Status::Ok, None, "Capability completed");
            }
            Command::Logout => {
                self.untagged("BYE Logging out");
                self.tagged(&tag, Status::Ok, None, "Logout completed");
                self.close();
            }
            Command::Noop if !selected => {
                self.tagged(&tag, Status::Ok, None, "NOOP completed");
            }
            Command::Id(_) => {
                self.untagged("ID (\"name\" \"Golub\")");
                self.tagged(&tag, Status::Ok, None, "ID completed");
            }
            Command::StartTls => self.starttls(tag),
            Command::Login { user, password } => self.login(tag, user, password),
            Command::Authenticate { mechanism, initial } => {
                self.authenticate(tag, mechanism, initial)
            }
            Command::Enable(caps) if authenticated => self.enable(tag, caps),
            _ if !authenticated => {
                self.tagged(&tag, Status::Bad, None, "Log in first");
                self.count_error();
            }
            Command::Check
            | Command::Close
            | Command::Unselect
            | Command::Expunge { .. }
            | Command::Search(_)
            | Command::Fetch(_)
            | Command::Store(_)
            | Command::Copy { .. }
            | Command::Move { .. }
                if !selected =>
            {
                self.tagged(&tag, Status::Bad, None, "No mailbox selected");
                self.count_error();
            }
            command => {
                self.events.push_back(Event::Command {
                    tag: tag.clone(),
                    command,
                });
                self.pending = Some(Pending::Command { tag });
            }
        }
    }

    fn starttls(&mut self, tag: String) {
        if self.tls {
            self.tagged(&tag, Status::Bad, None, "TLS is already active");
            self.count_error();
        } else if !self.config.starttls_available {
            self.tagged(&tag, Status::Bad, None, "STARTTLS is not available");
            self.count_error();
        } else if self.state != State::NotAuthenticated {
            self.tagged(&tag, Status::Bad, None, "Already logged in");
            self.count_error();
        } else {
            self.tagged(&tag, Status::Ok, None, "Begin TLS negotiation now");
            self.phase = Phase::Tls;
            self.events.push_back(Event::StartTls);
        }
    }

    /// Checks the state and the connection for LOGIN or AUTHENTICATE.
    fn login_allowed(&mut self, tag: &str) -> bool {
        if self.state != State::NotAuthenticated {
            self.tagged(tag, Status::Bad, None, "Already logged in");
            self.count_error();
            return false;
        }
        if !(self.tls || self.config.allow_plaintext_auth) {
            self.tagged(
                tag,
                Status::No,
                Some("PRIVACYREQUIRED"),
                "Use STARTTLS or the imaps port first",
            );
            return false;
        }
        true
    }

    fn login(&mut self, tag: String, user: Vec<u8>, password: Vec<u8>) {
        if !self.login_allowed(&tag) {
            return;
        }
        let (Ok(user), Ok(password)) = (String::from_utf8(user), String::from_utf8(password))
        else {
            return self.tagged(
                &tag,
                Status::No,
                Some("AUTHENTICATIONFAILED"),
                "Authentication failed",
            );
        };
        let attempt = Attempt {
            authzid: String::new(),
            authcid: user,
            credential: Credential::Password(golub_types::Secret::new(password)),
        };
        self.attempted(tag, None, "LOGIN".to_string(), attempt);
    }

    fn authenticate(&mut self, tag: String, mechanism: String, initial: Option<Vec<u8>>) {
        if !self.login_allowed(&tag) {
            return;
        }
        let offered = self.mechanisms();
        let Some(mechanism) = Mechanism::from_name(&mechanism).filter(|m| offered.contains(m))
        else {
            self.tagged(
                &tag,
                Status::No,
                None,
                "Unsupported authentication mechanism",
            );
            return;
        };
        let mut exchange = Box::new(Exchange::new(mechanism));
        match initial {
            Some(r) if r == b"=" => self.respond(tag, exchange, Ok(Vec::new())),
            Some(r) => self.respond(tag, exchange, sasl::decode_base64(&r)),
            None => {
                let step = exchange.start();
                self.step(tag, exchange, step);
            }
        }
    }

    fn respond(
        &mut self,
        tag: String,
        mut exchange: Box<Exchange>,
        response: Result<Vec<u8>, sasl::InvalidBase64>,
    ) {
        let Ok(response) = response else {
            self.tagged(&tag, Status::Bad, None, "Invalid base64");
            return self.count_error();
        };
        let step = exchange.respond(response);
        self.step(tag, exchange, step);
    }

    fn acknowledged(
        &mut self,
        tag: String,
        mut exchange: Box<Exchange>,
        response: Result<Vec<u8>, sasl::InvalidBase64>,
    ) {
        match response.map(|r| exchange.respond(r)) {
            Ok(Step::Done) => self.logged_in(&tag),
            _ => {
                self.tagged(&tag, Status::Bad, None, "Unexpected SASL response");
                self.count_error();
            }
        }
    }

    fn step(&mut self, tag: String, exchange: Box<Exchange>, step: Step) {
        let mechanism = exchange.mechanism().name().to_string();
        match step {
            Step::Challenge(data) => self.challenge(tag, exchange, false, &data),
            Step::Attempt(attempt) => self.attempted(tag, Some(exchange), mechanism, attempt),
            Step::NeedCredentials { authcid, .. } => {
                self.events.push_back(Event::CredentialsNeeded {
                    mechanism,
                    user: authcid,
                });
                self.pending = Some(Pending::Credentials { tag, exchange });
            }
            Step::Done | Step::Malformed => {
                self.tagged(&tag, Status::Bad, None, "Malformed SASL response");
                self.count_error();
            }
        }
    }

    fn challenge(&mut self, tag: String, exchange: Box<Exchange>, verified: bool, data: &[u8]) {
        self.output.extend_from_slice(b"+ ");
        self.output
            .extend_from_slice(sasl::encode_base64(data).as_bytes());
        self.output.extend_from_slice(b"\r\n");
        self.phase = Phase::Sasl {
            tag,
            exchange,
            verified,
        };
    }

    fn attempted(
        &mut self,
        tag: String,
        exchange: Option<Box<Exchange>>,
        mechanism: String,
        attempt: Attempt,
    ) {
        let Attempt {
            authzid,
            authcid,
            credential,
        } = attempt;
        self.events.push_back(Event::AuthAttempted {
            mechanism,
            authzid,
            user: authcid,
            credential,
        });
        self.pending = Some(Pending::Auth { tag, exchange });
    }

    fn logged_in(&mut self, tag: &str) {
        self.state = State::Authenticated;
        let caps = self.capabilities();
        let code = format!("CAPABILITY {caps}");
        self.tagged(tag, Status::Ok, Some(&code), "Logged in");
    }

    fn enable(&mut self, tag: String, caps: Vec<String>) {
        let mut enabled = Vec::new();
        for cap in caps {
            let flag = match cap.as_str() {
                "CONDSTORE" => &mut self.enabled.condstore,
                "QRESYNC" => &mut self.enabled.qresync,
                "IMAP4REV2" => &mut self.enabled.imap4rev2,
                "UTF8=ACCEPT" => &mut self.enabled.utf8,
                _ => continue,
            };
            if !*flag {
                *flag = true;
                enabled.push(cap);
            }
        }
        if self.enabled.qresync {
            self.enabled.condstore = true;
        }
        if !enabled.is_empty() {
            self.untagged(&format!("ENABLED {}", enabled.join(" ")));
        }
        self.tagged(&tag, Status::Ok, None, "ENABLE completed");
    }

    fn untagged(&mut self, text: &str) {
        self.output.extend_from_slice(b"* ");
        self.output.extend_from_slice(text.as_bytes());
        self.output.extend_from_slice(b"\r\n");
    }

    fn tagged(&mut self, tag: &str, status: Status, code: Option<&str>, text: &str) {
        let status = match status {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        };
        self.output.extend_from_slice(tag.as_bytes());
        self.output.push(b' ');
        self.output.extend_from_slice(status.as_bytes());
        if let Some(code) = code {
            self.output.extend_from_slice(b" [");
            self.output.extend_from_slice(code.as_bytes());
            self.output.push(b']');
        }
        self.output.push(b' ');
        self.output.extend_from_slice(text.as_bytes());
        self.output.extend_from_slice(b"\r\n");
    }

    fn count_error(&mut self) {
        self.errors += 1;
        if self.errors > self.config.max_errors {
            self.bye("Too many invalid commands");
        }
    }

    fn bye(&mut self, text: &str) {
        if matches!(self.phase, Phase::Idle { .. }) {
            self.events.push_back(Event::IdleEnded);
        }
        self.untagged(&format!("BYE {text}"));
        self.close();
    }

    fn close(&mut self) {
        self.closed = true;
        self.pending = None;
        self.deadline = None;
        self.phase = Phase::Command;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(tls: bool) -> Session {
        Session::new(
            ImapConfig {
                tls_active: tls,
                starttls_available: !tls,
                capabilities: vec!["IDLE".into()],
                ..ImapConfig::default()
            },
            Instant::now(),
        )
    }

    fn out(s: &mut Session) -> String {
        let mut v = Vec::new();
        s.poll_output(&mut v);
        String::from_utf8(v).unwrap()
    }

    fn input(s: &mut Session, text: &str) -> String {
        s.handle_input(text.as_bytes(), Instant::now());
        out(s)
    }

    fn login(s: &mut Session) {
        input(s, "a LOGIN alice pw\r\n");
        match s.poll_event() {
            Some(Event::AuthAttempted { user, .. }) => assert_eq!(user, "alice"),
            e => panic!("{e:?}"),
        }
        s.auth_succeeded();
        assert!(out(s).starts_with("a OK [CAPABILITY "));
    }

    #[test]
    fn greeting_and_capabilities_follow_the_state() {
        let mut s = session(false);
        let g = out(&mut s);
        assert!(g.starts_with("* OK [CAPABILITY IMAP4rev1 "), "{g}");
        assert!(g.contains("STARTTLS") && g.contains("LOGINDISABLED"), "{g}");
        let r = input(&mut s, "a LOGIN alice pw\r\n");
        assert_eq!(
            r,
            "a NO [PRIVACYREQUIRED] Use STARTTLS or the imaps port first\r\n"
        );
        let r = input(&mut s, "b STARTTLS\r\nc NOOP\r\n");
        assert_eq!(r, "b OK Begin TLS negotiation now\r\n");
        assert!(matches!(s.poll_event(), Some(Event::StartTls)));
        s.tls_established(Instant::now());
        let r = input(&mut s, "d CAPABILITY\r\n");
        assert!(!r.contains("STARTTLS") && r.contains("AUTH=PLAIN"), "{r}");
        assert!(!r.contains("IDLE"), "extensions only once logged in: {r}");
        login(&mut s);
        let r = input(&mut s, "e CAPABILITY\r\n");
        assert!(r.contains(" IDLE") && !r.contains("AUTH="), "{r}");
    }

    #[test]
    fn commands_wait_for_the_driver_in_order() {
        let mut s = session(true);
        out(&mut s);
        login(&mut s);
        let r = input(&mut s, "b SELECT INBOX\r\nc NOOP\r\n");
        assert_eq!(r, "");
        match s.poll_event() {
            Some(Event::Command { tag, command }) => {
                assert_eq!(tag, "b");
                assert!(matches!(command, Command::Select { .. }));
            }
            e => panic!("{e:?}"),
        }
        assert!(s.poll_event().is_none(), "c waits for b");
        s.output().extend_from_slice(b"* 0 EXISTS\r\n");
        s.select(false);
        s.complete(Status::Ok, Some("READ-WRITE"), "SELECT completed");
        assert_eq!(
            out(&mut s),
            "* 0 EXISTS\r\nb OK [READ-WRITE] SELECT completed\r\n"
        );
        // NOOP in the selected state goes to the driver (for updates).
        assert!(matches!(s.poll_event(), Some(Event::Command { .. })));
    }

    #[test]
    fn state_rules_are_checked_before_the_driver_sees_a_command() {
        let mut s = session(true);
        out(&mut s);
        let r = input(&mut s, "a SELECT INBOX\r\n");
        assert_eq!(r, "a BAD Log in first\r\n");
        login(&mut s);
        let r = input(&mut s, "b FETCH 1 FLAGS\r\n");
        assert_eq!(r, "b BAD No mailbox selected\r\n");
        let r = input(&mut s, "c LOGIN x y\r\n");
        assert_eq!(r, "c BAD Already logged in\r\n");
        assert!(s.poll_event().is_none());
    }

    #[test]
    fn literals_get_a_continuation() {
        let mut s = session(true);
        out(&mut s);
        let r = input(&mut s, "a LOGIN {5}\r\n");
        assert_eq!(r, "+ Ready for literal data\r\n");
        input(&mut s, "alice {2}\r\n");
        input(&mut s, "pw\r\n");
        match s.poll_event() {
            Some(Event::AuthAttempted { user, .. }) => assert_eq!(user, "alice"),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn authenticate_plain_with_and_without_initial_response() {
        let mut s = session(true);
        out(&mut s);
        let ir = sasl::encode_base64(b"\0alice\0pw");
        input(&mut s, &format!("a AUTHENTICATE PLAIN {ir}\r\n"));
        assert!(matches!(s.poll_event(), Some(Event::AuthAttempted { .. })));
        s.auth_failed(AuthFailure::Invalid);
        assert_eq!(
            out(&mut s),
            "a NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
        );
        let r = input(&mut s, "b AUTHENTICATE PLAIN\r\n");
        assert_eq!(r, "+ \r\n");
        input(&mut s, &format!("{ir}\r\n"));
        assert!(matches!(s.poll_event(), Some(Event::AuthAttempted { .. })));
        s.auth_succeeded();
        assert!(out(&mut s).starts_with("b OK [CAPABILITY"));
        assert_eq!(s.state(), State::Authenticated);
        let r = input(&mut s, "c AUTHENTICATE PLAIN\r\n");
        assert_eq!(r, "c BAD Already logged in\r\n");
    }

    #[test]
    fn idle_waits_for_done() {
        let mut s = session(true);
        out(&mut s);
        login(&mut s);
        input(&mut s, "b IDLE\r\n");
        assert!(matches!(
            s.poll_event(),
            Some(Event::Command {
                command: Command::Idle,
                ..
            })
        ));
        s.idle();
        assert_eq!(out(&mut s), "+ idling\r\n");
        assert!(s.is_idle());
        s.output().extend_from_slice(b"* 1 EXISTS\r\n");
        assert_eq!(
            input(&mut s, "DONE\r\n"),
            "* 1 EXISTS\r\nb OK IDLE terminated\r\n"
        );
        assert!(matches!(s.poll_event(), Some(Event::IdleEnded)));
        assert!(!s.is_idle());
    }

    #[test]
    fn idle_says_still_here_every_keepalive() {
        let mut s = session(true);
        out(&mut s);
        login(&mut s);
        input(&mut s, "b IDLE\r\n");
        s.poll_event();
        s.idle();
        out(&mut s);
        let k = s.poll_timeout().unwrap();
        s.handle_timeout(k);
        assert_eq!(out(&mut s), "* OK Still here\r\n");
        assert!(s.poll_timeout().unwrap() > k);
        assert!(!s.is_closed());
    }

    #[test]
    fn enable_reports_what_it_turned_on() {
        let mut s = session(true);
        out(&mut s);
        login(&mut s);
        let r = input(&mut s, "b ENABLE QRESYNC X-UNKNOWN\r\n");
        assert_eq!(r, "* ENABLED QRESYNC\r\nb OK ENABLE completed\r\n");
        assert!(s.enabled().qresync && s.enabled().condstore);
        let r = input(&mut s, "c ENABLE QRESYNC\r\n");
        assert_eq!(r, "c OK ENABLE completed\r\n");
    }

    #[test]
    fn too_many_bad_commands_end_the_session() {
        let mut s = session(true);
        out(&mut s);
        let flood = "x FOO\r\n".repeat(30);
        let r = input(&mut s, &flood);
        assert!(r.ends_with("* BYE Too many invalid commands\r\n"), "{r}");
        assert!(s.is_closed());
    }

    #[test]
    fn autologout_after_the_timeout() {
        let mut s = session(true);
        out(&mut s);
        let d = s.poll_timeout().unwrap();
        s.handle_timeout(d);
        assert!(out(&mut s).starts_with("* BYE"));
        assert!(s.is_closed());
    }
}
