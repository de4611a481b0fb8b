//! The SMTP client session for outbound delivery (RFC 5321 §3, §4), sans-IO.
//!
//! `delivery::remote` connects to a destination, feeds the server's octets to
//! [`ClientSession::handle_input`], writes out what [`ClientSession::poll_output`] gives and
//! answers [`ClientEvent`]s; time is an argument and the driver arms
//! [`ClientSession::poll_timeout`]. Nothing here reads a clock or does I/O.
//!
//! One session delivers any number of messages over one connection: the driver submits
//! each with [`ClientSession::send`] (they wait their turn), streams its content after
//! [`ClientEvent::BodyRequested`] with [`ClientSession::body_chunk`] and
//! [`ClientSession::body_end`], and gets one [`ClientEvent::MessageCompleted`] per message
//! with the outcome of every recipient. [`ClientSession::quit`] ends the session once the
//! submitted messages are done.
//!
//! When the connection drops, the driver calls [`ClientSession::handle_close`].
//!
//! Every reply is read with the reply parser (`codec::reply`). A reply that does not parse,
//! comes when none is expected, or a 421 ends the connection: the message in flight and the
//! waiting ones complete with a temporary failure (unknown errors are temporary), and
//! [`ClientEvent::Closed`] says why.

mod body;
mod extensions;
mod transaction;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use golub_types::{EnhancedCode, Envelope, ForwardPath, Reply};

use crate::codec::reply::{MAX_LINE, ReplyParser};

pub use body::DotStuffer;
pub use extensions::Extensions;

/// When to use STARTTLS (RFC 3207).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Never ask for TLS.
    Off,
    /// Use STARTTLS when the server offers it; go on in plaintext when it does not.
    Opportunistic,
    /// Fail the connection (temporarily) when STARTTLS is not offered or refused.
    Required,
}

/// A user name and password for AUTH (RFC 4954) at a smart host.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// Send them without TLS too (a relay on this machine); otherwise a session without
    /// TLS fails instead of giving the password away.
    pub allow_plaintext: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish_non_exhaustive()
    }
}

/// Our name and the timeouts of one client session.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Our name, sent with EHLO/HELO.
    pub hostname: String,
    pub tls: TlsPolicy,
    /// Authenticate with these (PLAIN, else LOGIN) before the first message.
    pub auth: Option<Credentials>,
    /// Wait for the 220 greeting (RFC 5321 §4.5.3.2.1: 5 minutes).
    pub greeting_timeout: Duration,
    /// Wait for the reply to EHLO, HELO, STARTTLS, RSET and QUIT (RFC 5321 §4.5.3.2 sets
    /// none; 5 minutes like MAIL).
    pub command_timeout: Duration,
    /// Wait for the reply to MAIL (§4.5.3.2.2: 5 minutes).
    pub mail_timeout: Duration,
    /// Wait for the reply to each RCPT (§4.5.3.2.3: 5 minutes).
    pub rcpt_timeout: Duration,
    /// Wait for DATA's 354 (§4.5.3.2.4: 2 minutes).
    pub data_timeout: Duration,
    /// Most time between two pieces of content from the driver (§4.5.3.2.5: 3 minutes);
    /// a driver that cannot write out the last piece stops handing new ones.
    pub block_timeout: Duration,
    /// Wait for the reply to the final ".CRLF" (§4.5.3.2.6: 10 minutes).
    pub final_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            hostname: "localhost".to_string(),
            tls: TlsPolicy::Opportunistic,
            auth: None,
            greeting_timeout: Duration::from_secs(5 * 60),
            command_timeout: Duration::from_secs(5 * 60),
            mail_timeout: Duration::from_secs(5 * 60),
            rcpt_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(2 * 60),
            block_timeout: Duration::from_secs(3 * 60),
            final_timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// The outcome of one recipient or one message, with the reply that decided it. Replies
/// the client made up itself (a refusal before sending, a timeout, a broken connection)
/// carry an enhanced code too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2yz: the server took it.
    Accepted(Reply),
    /// 4yz, or a failure of the connection: try again later.
    Temporary(Reply),
    /// 5yz: do not try again; bounce.
    Permanent(Reply),
}

impl Outcome {
    /// The outcome a reply stands for; 3yz where a final reply is due counts as temporary.
    pub fn of(reply: Reply) -> Self {
        match reply.code {
            200..=299 => Outcome::Accepted(reply),
            500..=599 => Outcome::Permanent(reply),
            _ => Outcome::Temporary(reply),
        }
    }

    pub fn reply(&self) -> &Reply {
        match self {
            Outcome::Accepted(r) | Outcome::Temporary(r) | Outcome::Permanent(r) => r,
        }
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self, Outcome::Accepted(_))
    }
}

/// Names a message submitted with [`ClientSession::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// What happened in the client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server answered EHLO (or HELO: no extensions), again after STARTTLS.
    Greeted { extensions: Extensions, tls: bool },
    /// The server is ready for TLS (RFC 3207): the driver writes out the output, does the
    /// handshake and calls `tls_established(now)`, or drops the connection if it fails.
    StartTlsRequested,
    /// The server answered RCPT for recipient `index` of message `id` (informational; the
    /// final outcome comes with [`ClientEvent::MessageCompleted`]).
    RecipientReplied {
        id: MessageId,
        index: usize,
        outcome: Outcome,
    },
    /// DATA got its 354: the driver streams message `id` with `body_chunk` and ends it
    /// with `body_end`.
    BodyRequested { id: MessageId },
    /// Message `id` is done. `recipients` holds each recipient's final outcome, in the
    /// order given: a recipient refused at RCPT keeps that reply, the others get the
    /// message's. `outcome` is the message's: accepted when the server took it for at
    /// least one recipient, else what ended it.
    MessageCompleted {
        id: MessageId,
        outcome: Outcome,
        recipients: Vec<(ForwardPath, Outcome)>,
    },
    /// The session is over: after QUIT (`error` none) or because the connection failed
    /// (`error` says why). Write out what output is left (a QUIT after a refusing
    /// greeting), then close the connection. A message submitted later completes at once
    /// with a temporary failure.
    Closed { error: Option<Reply> },
}

/// The reply the oldest command in flight waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    /// AUTH's final reply, or (LOGIN) the 334 asking for the user name or password.
    Auth(AuthStep),
    Rset,
    Mail,
    Rcpt(usize),
    Data,
    /// The final dot of a message's content.
    Dot,
    /// The dot sent after an unwanted 354 (RFC 2920 §3.1); the reply does not count.
    DotIgnored,
    /// A BDAT chunk before the last (RFC 3030).
    Bdat,
    /// BDAT ... LAST: the final reply.
    BdatLast,
    Quit,
}

/// Where an AUTH exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthStep {
    /// The final 235 (PLAIN with its initial response, or LOGIN after the password).
    Done,
    /// LOGIN: the 334 asking for the user name.
    LoginUser,
    /// LOGIN: the 334 asking for the password.
    LoginPassword,
}

/// Where the session stands, apart from the replies it waits for.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Greeting, EHLO/HELO and STARTTLS are under way.
    Opening,
    /// The driver does the TLS handshake; input is dropped.
    Handshake,
    /// Ready for MAIL (a transaction may be in flight).
    Ready,
    /// The driver streams the current message's content.
    Body,
    /// QUIT is sent.
    Quitting,
    Closed,
}

/// One submitted message.
#[derive(Debug)]
struct Submitted {
    id: MessageId,
    envelope: Envelope,
    size: Option<u64>,
}

/// The transaction in flight (RFC 5321 §3.3).
#[derive(Debug)]
struct Transaction {
    msg: Submitted,
    /// The reply to MAIL, once in.
    mail: Option<Outcome>,
    /// The reply to each RCPT, once in.
    rcpts: Vec<Option<Outcome>>,
    /// Next recipient whose RCPT is to be sent (without PIPELINING, one at a time).
    next_rcpt: usize,
    /// DATA was sent.
    data_sent: bool,
    encoder: Option<DotStuffer>,
    /// The content goes as BDAT chunks (CHUNKING and PIPELINING offered).
    bdat: bool,
    /// An earlier BDAT chunk was refused: the transaction's outcome.
    bdat_failed: Option<Outcome>,
}

impl Transaction {
    fn any_accepted(&self) -> bool {
        self.rcpts.iter().flatten().any(Outcome::is_accepted)
    }
}

/// One SMTP client session over one connection.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    input: Vec<u8>,
    parser: ReplyParser,
    output: Vec<u8>,
    events: VecDeque<ClientEvent>,
    phase: Phase,
    expect: VecDeque<Expect>,
    extensions: Extensions,
    tls: bool,
    queue: VecDeque<Submitted>,
    current: Option<Transaction>,
    /// MAIL was accepted in a transaction that did not end with the final reply: RSET
    /// before the next MAIL (RFC 5321 §4.1.1.5).
    needs_rset: bool,
    /// AUTH succeeded (or is not wanted).
    authenticated: bool,
    quit_asked: bool,
    next_id: u64,
    now: Instant,
    deadline: Option<Instant>,
}

impl ClientSession {
    /// A session on a fresh connection: it waits for the server's 220.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let mut s = ClientSession {
            config,
            input: Vec::new(),
            parser: ReplyParser::new(),
            output: Vec::new(),
            events: VecDeque::new(),
            phase: Phase::Opening,
            expect: VecDeque::from([Expect::Greeting]),
            extensions: Extensions::default(),
            tls: false,
            queue: VecDeque::new(),
            current: None,
            needs_rset: false,
            authenticated: false,
            quit_asked: false,
            next_id: 0,
            now,
            deadline: None,
        };
        s.arm();
        s
    }

    /// Takes the server's octets and handles every whole reply in them.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if matches!(self.phase, Phase::Closed | Phase::Handshake) {
            return;
        }
        self.now = now;
        self.input.extend_from_slice(data);
        let mut start = 0;
        while !matches!(self.phase, Phase::Closed | Phase::Handshake) {
            let rest = &self.input[start..];
            let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() >= MAX_LINE {
                    self.fail(local(421, EnhancedCode(4, 4, 0), "reply line too long"));
                }
                break;
            };
            let line = &rest[..=lf];
            start += lf + 1;
            match self.parser.push_line(line) {
                Ok(None) => {}
                Ok(Some(reply)) => self.handle_reply(reply),
                Err(e) => self.fail(local(421, EnhancedCode(4, 4, 0), e.to_string())),
            }
        }
        if matches!(self.phase, Phase::Closed | Phase::Handshake) {
            // RFC 3207 §4.2: what came before the handshake is not trusted after it.
            self.input = Vec::new();
        } else {
            self.input.drain(..start);
        }
        self.arm();
    }

    /// The server closed the connection: a failure unless QUIT was answered.
    pub fn handle_close(&mut self, now: Instant) {
        self.now = now;
        if self.phase == Phase::Quitting {
            self.close(None);
        } else {
            self.fail(local(
                421,
                EnhancedCode(4, 4, 2),
                "connection closed by the server",
            ));
        }
    }

    /// Fails the connection if `now` is past the deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        let what = match self.expect.front() {
            Some(Expect::Greeting) => "timed out waiting for the greeting",
            Some(Expect::Mail) => "timed out waiting for the reply to MAIL",
            Some(Expect::Rcpt(_)) => "timed out waiting for the reply to RCPT",
            Some(Expect::Data) => "timed out waiting for the reply to DATA",
            Some(Expect::Dot | Expect::DotIgnored | Expect::Bdat | Expect::BdatLast) => {
                "timed out waiting for the reply to the end of data"
            }
            None if self.phase == Phase::Body => "timed out sending the message content",
            _ => "timed out waiting for a reply",
        };
        self.fail(local(421, EnhancedCode(4, 4, 2), what));
        self.arm();
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Appends the command octets produced so far to `out`.
    pub fn poll_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.output);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): while a reply or the next
    /// piece of content is awaited.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once [`ClientEvent::Closed`] was queued.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True when the opening (greeting, EHLO/HELO, STARTTLS as the policy wants) is done
    /// and nothing is in flight: a message sent now starts at once.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready && self.expect.is_empty() && self.current.is_none()
    }

    /// True once the TLS handshake after STARTTLS succeeded.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// What the server offered in its last EHLO reply.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Submits a message; it is sent when the ones before it are done. `size` is the
    /// content's size when known (sent as SIZE=, RFC 1870).
    pub fn send(&mut self, envelope: Envelope, size: Option<u64>, now: Instant) -> MessageId {
        let id = MessageId(self.next_id);
        self.next_id += 1;
        let msg = Submitted { id, envelope, size };
        if self.phase == Phase::Closed || self.quit_asked {
            let r = local(
                421,
                EnhancedCode(4, 4, 0),
                "connection closed before sending",
            );
            self.complete(msg, Outcome::Temporary(r));
            return id;
        }
        self.now = now;
        self.queue.push_back(msg);
        self.pump();
        self.arm();
        id
    }

    /// The next piece of the current message's content, as stored (CRLF or LF line ends);
    /// dot-stuffed and with every line end made CRLF on the way out.
    pub fn body_chunk(&mut self, data: &[u8], now: Instant) {
        if self.phase != Phase::Body {
            return;
        }
        self.now = now;
        let Some(tx) = self.current.as_mut() else {
            return;
        };
        if let Some(enc) = tx.encoder.as_mut() {
            if tx.bdat {
                let mut chunk = Vec::with_capacity(data.len() + data.len() / 64 + 2);
                enc.encode(data, &mut chunk);
                if !chunk.is_empty() {
                    self.output
                        .extend_from_slice(format!("BDAT {}\r\n", chunk.len()).as_bytes());
                    self.output.extend_from_slice(&chunk);
                    self.expect.push_back(Expect::Bdat);
                }
            } else {
                enc.encode(data, &mut self.output);
            }
        }
        self.arm();
    }

    /// The current message's content is all given: ".CRLF" goes out.
    pub fn body_end(&mut self, now: Instant) {
        if self.phase != Phase::Body {
            return;
        }
        self.now = now;
        let bdat = self.current.as_ref().is_some_and(|tx| tx.bdat);
        if let Some(enc) = self.current.as_mut().and_then(|tx| tx.encoder.take()) {
            if bdat {
                let mut last = Vec::new();
                enc.finish(&mut last);
                self.output
                    .extend_from_slice(format!("BDAT {} LAST\r\n", last.len()).as_bytes());
                self.output.extend_from_slice(&last);
            } else {
                enc.finish(&mut self.output);
            }
        }
        self.expect
            .push_back(if bdat { Expect::BdatLast } else { Expect::Dot });
        self.phase = Phase::Ready;
        self.arm();
    }

    /// The TLS handshake the driver did after [`ClientEvent::StartTlsRequested`] succeeded:
    /// EHLO again, as the server forgot all it knew (RFC 3207 §4.2).
    pub fn tls_established(&mut self, now: Instant) {
        if self.phase != Phase::Handshake {
            return;
        }
        self.now = now;
        self.tls = true;
        self.extensions = Extensions::default();
        self.phase = Phase::Opening;
        self.command(&format!("EHLO {}", self.config.hostname), Expect::Ehlo);
        self.arm();
    }

    /// Ends the session with QUIT once the submitted messages are done.
    pub fn quit(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        self.now = now;
        self.quit_asked = true;
        self.pump();
        self.arm();
    }

    fn handle_reply(&mut self, reply: Reply) {
        let Some(expect) = self.expect.pop_front() else {
            // Nothing was asked: a 421 on its way out, a refusal in the middle of the
            // content, or a confused server. The server's own failure text is kept.
            let r = if reply.code >= 400 {
                reply
            } else {
                local(
                    421,
                    EnhancedCode(4, 5, 0),
                    "unexpected reply from the server",
                )
            };
            self.fail(r);
            return;
        };
        if reply.code == 421 && expect != Expect::Quit {
            // RFC 5321 §3.8: the server is closing the connection.
            self.fail(reply);
            return;
        }
        match expect {
            Expect::Greeting => {
                if reply.code == 220 {
                    self.command(&format!("EHLO {}", self.config.hostname), Expect::Ehlo);
                } else {
                    // RFC 5321 §3.1: after a 554 greeting the client sends QUIT.
                    self.output.extend_from_slice(b"QUIT\r\n");
                    self.fail(reply);
                }
            }
            Expect::Ehlo => match reply.code {
                200..=299 => {
                    self.extensions = Extensions::parse(&reply);
                    self.greeted();
                }
                500..=599 => {
                    self.command(&format!("HELO {}", self.config.hostname), Expect::Helo);
                }
                _ => self.fail(reply),
            },
            Expect::Helo => {
                if (200..300).contains(&reply.code) {
                    self.extensions = Extensions::default();
                    self.greeted();
                } else {
                    self.fail(reply);
                }
            }
            Expect::StartTls => {
                if reply.code == 220 {
                    self.phase = Phase::Handshake;
                    self.parser = ReplyParser::new();
                    self.events.push_back(ClientEvent::StartTlsRequested);
                } else if self.config.tls == TlsPolicy::Required {
                    self.fail(as_temporary(reply));
                } else {
                    self.ready();
                }
            }
            Expect::Auth(step) => self.auth_replied(step, reply),
            Expect::Rset => {
                if reply.code < 200 || reply.code > 299 {
                    self.fail(as_temporary(reply));
                } else {
                    self.pump();
                }
            }
            Expect::Mail => self.mail_replied(reply),
            Expect::Rcpt(i) => self.rcpt_replied(i, reply),
            Expect::Data => self.data_replied(reply),
            Expect::Dot | Expect::BdatLast => self.dot_replied(reply),
            Expect::Bdat => self.bdat_replied(reply),
            Expect::DotIgnored => {
                self.needs_rset = false;
                self.end_failed_transaction();
            }
            Expect::Quit => self.close(None),
        }
    }

    /// EHLO or HELO is done: STARTTLS first if wanted, else ready.
    fn greeted(&mut self) {
        self.events.push_back(ClientEvent::Greeted {
            extensions: self.extensions.clone(),
            tls: self.tls,
        });
        if self.tls || self.config.tls == TlsPolicy::Off {
            self.ready();
        } else if self.extensions.starttls {
            self.command("STARTTLS", Expect::StartTls);
        } else if self.config.tls == TlsPolicy::Required {
            self.fail(local(
                421,
                EnhancedCode(4, 7, 0),
                "server does not offer STARTTLS",
            ));
        } else {
            self.ready();
        }
    }

    fn ready(&mut self) {
        if !self.authenticated && self.config.auth.is_some() {
            self.authenticate();
            return;
        }
        self.phase = Phase::Ready;
        self.pump();
    }

    /// AUTH with PLAIN (initial response, RFC 4954 §4) or LOGIN, whichever is offered.
    fn authenticate(&mut self) {
        let Some(creds) = self.config.auth.clone() else {
            return;
        };
        if !self.tls && !creds.allow_plaintext {
            self.fail(local(
                451,
                EnhancedCode(4, 7, 0),
                "not sending the relay password without TLS",
            ));
            return;
        }
        let offered = |m: &str| self.extensions.auth.iter().any(|a| a == m);
        if offered("PLAIN") {
            let mut raw = Vec::new();
            raw.push(0);
            raw.extend_from_slice(creds.user.as_bytes());
            raw.push(0);
            raw.extend_from_slice(creds.password.as_bytes());
            let line = format!("AUTH PLAIN {}", golub_types::sasl::encode_base64(&raw));
            self.command(&line, Expect::Auth(AuthStep::Done));
        } else if offered("LOGIN") {
            self.command("AUTH LOGIN", Expect::Auth(AuthStep::LoginUser));
        } else {
            self.fail(local(
                451,
                EnhancedCode(4, 7, 0),
                "the relay offers neither AUTH PLAIN nor AUTH LOGIN",
            ));
        }
    }

    fn auth_replied(&mut self, step: AuthStep, reply: Reply) {
        let Some(creds) = self.config.auth.clone() else {
            return;
        };
        match (step, reply.code) {
            (AuthStep::Done, 235) => {
                self.authenticated = true;
                self.ready();
            }
            (AuthStep::LoginUser, 334) => {
                let line = golub_types::sasl::encode_base64(creds.user.as_bytes());
                self.command(&line, Expect::Auth(AuthStep::LoginPassword));
            }
            (AuthStep::LoginPassword, 334) => {
                let line = golub_types::sasl::encode_base64(creds.password.as_bytes());
                self.command(&line, Expect::Auth(AuthStep::Done));
            }
            // A refused login is a setup problem here, not the message's: try again later.
            _ => self.fail(as_temporary(reply)),
        }
    }

    fn command(&mut self, line: &str, expect: Expect) {
        self.output.extend_from_slice(line.as_bytes());
        self.output.extend_from_slice(b"\r\n");
        self.expect.push_back(expect);
    }

    /// The connection failed: every message not done completes with a temporary failure.
    fn fail(&mut self, reply: Reply) {
        if self.phase == Phase::Closed {
            return;
        }
        let outcome = Outcome::Temporary(as_temporary(reply.clone()));
        if self.current.is_some() {
            // A message whose final reply did not come is not delivered (RFC 5321 §6.1).
            self.finish_without_pump(outcome.clone());
        }
        while let Some(msg) = self.queue.pop_front() {
            self.complete(msg, outcome.clone());
        }
        self.close(Some(reply));
    }

    fn finish_without_pump(&mut self, outcome: Outcome) {
        self.phase = Phase::Closed;
        self.finish(outcome);
    }

    fn close(&mut self, error: Option<Reply>) {
        self.phase = Phase::Closed;
        self.expect.clear();
        self.input = Vec::new();
        self.deadline = None;
        self.events.push_back(ClientEvent::Closed { error });
    }

    /// Sets the deadline for what is awaited now.
    fn arm(&mut self) {
        let timeout = match (&self.phase, self.expect.front()) {
            (Phase::Closed | Phase::Handshake, _) => None,
            (_, Some(e)) => Some(match e {
                Expect::Greeting => self.config.greeting_timeout,
                Expect::Mail => self.config.mail_timeout,
                Expect::Rcpt(_) => self.config.rcpt_timeout,
                Expect::Data => self.config.data_timeout,
                Expect::Dot | Expect::DotIgnored | Expect::Bdat | Expect::BdatLast => {
                    self.config.final_timeout
                }
                Expect::Ehlo
                | Expect::Helo
                | Expect::StartTls
                | Expect::Auth(_)
                | Expect::Rset
                | Expect::Quit => self.config.command_timeout,
            }),
            (Phase::Body, None) => Some(self.config.block_timeout),
            _ => None,
        };
        self.deadline = timeout.map(|t| self.now + t);
    }
}

/// A reply the client makes up itself.
fn local(code: u16, enhanced: EnhancedCode, text: impl Into<String>) -> Reply {
    Reply::new(code, enhanced, text)
}

/// A failure that ends the connection is temporary whatever the server said (a 5yz
/// greeting means "try another MX", RFC 5321 §3.1), keeping its text.
fn as_temporary(reply: Reply) -> Reply {
    if reply.is_transient() {
        return reply;
    }
    let enhanced = reply.enhanced.map(|e| EnhancedCode(4, e.1, e.2));
    Reply {
        code: 451,
        enhanced: enhanced.or(Some(EnhancedCode(4, 0, 0))),
        lines: reply.lines,
    }
}

#[cfg(test)]
mod tests;
