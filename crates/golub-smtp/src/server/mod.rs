//! The SMTP server session (RFC 5321 §3, §4.1), sans-IO.
//!
//! The driver feeds received octets to [`Session::handle_input`], takes replies from
//! [`Session::poll_output`] and events from [`Session::poll_event`], and answers the events
//! that need a decision (`accept_*`, [`Session::answer`], [`Session::reject`]). Time is an
//! argument: the driver arms [`Session::poll_timeout`] and calls
//! [`Session::handle_timeout`]. Nothing here reads a clock or does I/O.
//!
//! Input is processed strictly in order, one command at a time (PIPELINING, RFC 2920): when
//! an event needs a decision, processing stops until the decision arrives, so replies are
//! never reordered. Input received meanwhile is buffered; a driver keeps memory bounded by
//! not reading while [`Session::wants_decision`] is true.
//!
//! A message's content is not held whole: from [`Event::MessageStarted`] on, the octets
//! (dot-unstuffed for DATA, as sent for BDAT) come out as [`Event::BodyReceived`] pieces as
//! they arrive, at most one input's worth each, and the transaction ends with
//! [`Event::MessageReceived`] (a decision) or [`Event::MessageAborted`]. The driver decides
//! where the pieces go (memory for small messages, a file for large ones).
//!
//! STARTTLS (RFC 3207) is a handoff: after [`Event::StartTlsRequested`] the session takes no
//! input until the driver has done the handshake and called [`Session::tls_established`].
//! AUTH (RFC 4954) runs its SASL exchange here and asks the driver to check the
//! credentials with [`Event::AuthAttempted`].

mod auth;
mod commands;
mod reply;
mod tls;

use std::collections::VecDeque;
use std::mem;
use std::time::{Duration, Instant};

use golub_types::sasl::{Credential, Exchange};
use golub_types::{Envelope, ForwardPath, MessageDsn, QueueId, RcptDsn, Reply, ReversePath};

use crate::body::{ChunkDecoder, DataDecoder};
use crate::error::Error;

pub use crate::codec::command::MailKind;

/// Limits and advertised features of one session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our name, in the greeting, EHLO and 421 replies.
    pub hostname: String,
    /// Advertised as SIZE (RFC 1870); larger messages get 552 5.3.4.
    pub max_message_size: usize,
    /// Recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100).
    pub max_recipients: usize,
    /// Command line length including CRLF (RFC 5321 §4.5.3.1.4: 512).
    pub max_command_line: usize,
    /// Text line length in DATA including CRLF; 0 (the default) is no limit but the
    /// message size. RFC 5321 §4.5.3.1.6 asks for at least 1000, and much real mail has
    /// longer lines, which Postfix, Stalwart and Dovecot accept too.
    pub max_text_line: usize,
    /// More protocol errors than this close the session with 421 4.7.0.
    pub max_errors: usize,
    /// Wait for a command (RFC 5321 §4.5.3.2.7: 5 minutes).
    pub command_timeout: Duration,
    /// Wait between data blocks (RFC 5321 §4.5.3.2.5: 3 minutes).
    pub data_timeout: Duration,
    /// VRFY asks the driver (an event) instead of answering 252.
    pub vrfy_enabled: bool,
    /// EXPN asks the driver (an event) instead of answering 252.
    pub expn_enabled: bool,
    /// This client may ask for a queue run with ETRN (RFC 1985): it is offered in EHLO
    /// and asks the driver (an event); otherwise ETRN gets 459.
    pub etrn_enabled: bool,
    /// EHLO keywords the driver offers on top of ours.
    pub extra_ehlo: Vec<String>,
    /// Offer and accept STARTTLS (RFC 3207) while the connection is not TLS yet.
    pub starttls_available: bool,
    /// The connection is TLS from the start (implicit TLS, RFC 8314 §3.3, port 465).
    pub tls_active: bool,
    /// SASL mechanisms to offer with AUTH (RFC 4954): "PLAIN" (RFC 4616) and "LOGIN" are
    /// implemented, others are left out. Empty: no AUTH at all.
    pub auth_mechanisms: Vec<String>,
    /// Offer AUTH on a plaintext connection too; passwords then cross in the clear.
    pub auth_without_tls: bool,
    /// MAIL before a successful AUTH gets 530 5.7.0 (submission, RFC 6409 §4.3).
    pub auth_required: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            hostname: "localhost".to_string(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_command_line: 512,
            max_text_line: 0,
            max_errors: 10,
            command_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(3 * 60),
            vrfy_enabled: false,
            expn_enabled: false,
            etrn_enabled: false,
            extra_ehlo: Vec::new(),
            starttls_available: false,
            tls_active: false,
            auth_mechanisms: Vec::new(),
            auth_without_tls: false,
            auth_required: false,
        }
    }
}

/// What happened in the session; some events need a decision.
#[derive(Debug)]
pub enum Event {
    /// HELO/EHLO accepted (informational; no decision needed).
    Greeted { name: String, extended: bool },
    /// MAIL/SEND/SOML/SAML parsed and valid. Decision: `accept_mail()` or `reject(reply)`.
    MailFrom {
        reverse_path: ReversePath,
        kind: MailKind,
        size: Option<u64>,
        smtputf8: bool,
        eight_bit: bool,
    },
    /// RCPT parsed and valid. Decision: `accept_rcpt()` or `reject(reply)`.
    RcptTo { forward_path: ForwardPath },
    /// VRFY when enabled. Decision: `answer(reply)`.
    Vrfy { query: String },
    /// EXPN when enabled. Decision: `answer(reply)`.
    Expn { list: String },
    /// ETRN for a domain (RFC 1985), when enabled: start delivering what waits for it.
    /// `domain` is lowercase; `@domain` arrives as `domain`. Decision: `answer(reply)`,
    /// 250 once the queue run has started, 458 if it cannot be.
    EtrnRequested { domain: String },
    /// A message's content starts: DATA got its 354, or the first BDAT chunk was taken.
    /// The envelope is complete. Informational; [`Event::BodyReceived`] pieces follow, then
    /// [`Event::MessageReceived`] or [`Event::MessageAborted`].
    ///
    /// `protocol` is the Received header's "with" (RFC 3848, RFC 6531 §3.7.3): "SMTP"
    /// after HELO; after EHLO "ESMTP" or "UTF8SMTP", with "S" for TLS, "A" for AUTH or
    /// "SA" for both appended.
    MessageStarted {
        envelope: Envelope,
        helo: String,
        protocol: &'static str,
    },
    /// The next octets of the started message's content: dot-unstuffed with CRLF line ends
    /// as received for DATA, the chunk octets as sent for BDAT (bare LFs included), never
    /// the final ".CRLF". Informational; never empty.
    BodyReceived { octets: Vec<u8> },
    /// The started message arrived whole and within limits (the end of DATA, or BDAT ...
    /// LAST); every octet came in a [`Event::BodyReceived`] before, `size` of them.
    /// Decision: `accept_message(queue_id)` or `reject(reply)`.
    MessageReceived { size: u64 },
    /// The started message will not come: it was refused (too large, bare line ending,
    /// line too long), or the transaction was reset (RSET, HELO, STARTTLS, a closed
    /// session). Informational: the driver throws away what it kept of the content.
    MessageAborted,
    /// STARTTLS accepted (RFC 3207): "220 2.0.0 ready to start TLS" is queued and no input
    /// is processed any more. The driver writes out the output, does the TLS handshake and
    /// calls `tls_established(now)`; if the handshake fails, it closes the connection.
    StartTlsRequested,
    /// The client sent credentials with AUTH (RFC 4954). `authzid` is empty when the client
    /// gave none (always for LOGIN). Decision: `auth_succeeded()` (235 2.7.0, or SCRAM's
    /// last challenge first) or `reject(reply)`, e.g. 535 5.7.8 for bad credentials.
    AuthAttempted {
        mechanism: String,
        authzid: String,
        authcid: String,
        credential: Credential,
    },
    /// SCRAM-SHA-256 needs the stored credentials of `authcid`. Decision:
    /// `scram_credentials(credentials, server_nonce)` (a decoy for an unknown user, so
    /// that the exchange does not tell), or `reject(reply)`.
    CredentialsNeeded { mechanism: String, authcid: String },
}

/// The client's HELO/EHLO.
#[derive(Debug, Clone)]
struct Greeting {
    name: String,
    extended: bool,
}

/// One mail transaction, from an accepted MAIL to its final reply (RFC 5321 §3.3).
#[derive(Debug)]
struct Transaction {
    reverse_path: ReversePath,
    kind: MailKind,
    smtputf8: bool,
    eight_bit: bool,
    /// RET and ENVID (RFC 3461).
    dsn: MessageDsn,
    forward_paths: Vec<ForwardPath>,
    /// NOTIFY and ORCPT of each accepted forward path, at the same index.
    rcpt_dsn: Vec<RcptDsn>,
    /// A BDAT chunk was taken; DATA is no longer allowed (RFC 3030 §2).
    chunked: bool,
    /// `MessageStarted` was sent: its end must be told too.
    started: bool,
    /// Content octets taken so far.
    size: u64,
    /// BDAT octets not yet handed out as `BodyReceived`.
    body: Vec<u8>,
}

/// The event waiting for the driver's decision.
#[derive(Debug)]
enum Pending {
    Mail(Transaction),
    Rcpt(ForwardPath, RcptDsn),
    Verify,
    Etrn,
    Message,
    /// AUTH credentials, for this authentication identity.
    Auth {
        authcid: String,
        exchange: Box<Exchange>,
    },
    /// SCRAM waits for the user's stored credentials.
    Credentials {
        exchange: Box<Exchange>,
    },
}

/// What the next input octets are.
#[derive(Debug)]
enum Phase {
    Command,
    /// A SASL response line of an AUTH exchange (RFC 4954 §4); `verified` holds the
    /// authentication identity once only the client's acknowledgement is missing.
    Sasl {
        exchange: Box<Exchange>,
        verified: Option<String>,
    },
    /// STARTTLS was accepted; input is dropped until the handshake is done.
    Tls,
    Data(DataDecoder),
    Chunk {
        decoder: ChunkDecoder,
        size: u64,
        last: bool,
        /// When set, the chunk is consumed and thrown away, then this reply is sent.
        refusal: Option<Refusal>,
    },
}

/// Why a BDAT chunk is consumed without being kept.
#[derive(Debug)]
struct Refusal {
    reply: Reply,
    /// The transaction ends with the reply (a size overflow).
    reset: bool,
}

/// One SMTP server session.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    /// Received octets not processed yet; `start` is where processing stands.
    input: Vec<u8>,
    start: usize,
    output: Vec<u8>,
    events: VecDeque<Event>,
    phase: Phase,
    /// Discarding the rest of an over-long line up to its LF.
    skipping: bool,
    pending: Option<Pending>,
    greeting: Option<Greeting>,
    transaction: Option<Transaction>,
    /// The connection is TLS (implicit, or after STARTTLS).
    tls: bool,
    /// The authentication identity after a successful AUTH.
    authenticated: Option<String>,
    errors: usize,
    /// The last time the driver told us; decisions carry none.
    now: Option<Instant>,
    deadline: Option<Instant>,
    closed: bool,
}

impl Session {
    /// A new session; the 220 greeting is queued.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let mut s = Session::blank(config, Some(now));
        let greeting = reply::greeting(&s.config.hostname);
        s.send(greeting);
        s.arm_deadline();
        s
    }

    /// A session that only sends `reply` (e.g. 421 4.3.2 too many connections) and is
    /// closed.
    pub fn refuse(config: SessionConfig, reply: Reply) -> Self {
        let mut s = Session::blank(config, None);
        s.send(reply);
        s.close();
        s
    }

    fn blank(config: SessionConfig, now: Option<Instant>) -> Self {
        Session {
            tls: config.tls_active,
            config,
            input: Vec::new(),
            start: 0,
            output: Vec::new(),
            events: VecDeque::new(),
            phase: Phase::Command,
            skipping: false,
            pending: None,
            greeting: None,
            transaction: None,
            authenticated: None,
            errors: 0,
            now,
            deadline: None,
            closed: false,
        }
    }

    /// Buffers received octets and processes them as far as possible.
    /// Between STARTTLS and [`tls_established`](Self::tls_established) the octets are
    /// dropped: they were sent before the handshake (RFC 3207 §4.2).
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if self.closed || matches!(self.phase, Phase::Tls) {
            return;
        }
        self.now = Some(now);
        self.input.extend_from_slice(data);
        self.process();
    }

    /// Closes the session with 421 4.4.2 if `now` is past the deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if self.closed || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        let r = reply::timeout(&self.config.hostname);
        self.send(r);
        self.close();
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the reply octets produced so far to `out`.
    pub fn poll_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.output);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout); none while a decision is
    /// pending, while waiting for the TLS handshake, or once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// True after QUIT's 221 or any 421: flush the output and close the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True while an event waits for its decision.
    pub fn wants_decision(&self) -> bool {
        self.pending.is_some()
    }

    /// Accepts the pending MAIL (250 2.1.0); the transaction starts.
    pub fn accept_mail(&mut self) {
        if let Some(Pending::Mail(tx)) = self.take_pending(|p| matches!(p, Pending::Mail(_))) {
            self.transaction = Some(tx);
            self.decided(reply::sender_ok());
        }
    }

    /// Accepts the pending RCPT (250 2.1.5).
    pub fn accept_rcpt(&mut self) {
        if let Some(Pending::Rcpt(path, dsn)) =
            self.take_pending(|p| matches!(p, Pending::Rcpt(..)))
        {
            if let Some(tx) = &mut self.transaction {
                tx.forward_paths.push(path);
                tx.rcpt_dsn.push(dsn);
            }
            self.decided(reply::recipient_ok());
        }
    }

    /// Accepts the pending message as queued under `id` (250 2.0.0); the transaction ends.
    pub fn accept_message(&mut self, id: QueueId) {
        if self
            .take_pending(|p| matches!(p, Pending::Message))
            .is_some()
        {
            self.decided(reply::queued(id));
        }
    }

    /// Answers the pending VRFY, EXPN or ETRN.
    pub fn answer(&mut self, reply: Reply) {
        if self
            .take_pending(|p| matches!(p, Pending::Verify | Pending::Etrn))
            .is_some()
        {
            self.decided(reply);
        }
    }

    /// Refuses whatever decision is pending with `reply`. A refused MAIL starts no
    /// transaction, a refused RCPT leaves it as it was, a refused message ends it.
    pub fn reject(&mut self, reply: Reply) {
        if self.take_pending(|_| true).is_some() {
            self.decided(reply);
        }
    }

    /// Closes the session with 421 4.3.2, dropping any pending decision.
    pub fn shutdown(&mut self) {
        if self.closed {
            return;
        }
        let r = reply::shutting_down(&self.config.hostname);
        self.send(r);
        self.close();
    }

    fn take_pending(&mut self, wanted: impl Fn(&Pending) -> bool) -> Option<Pending> {
        if self.closed || !self.pending.as_ref().is_some_and(wanted) {
            return None;
        }
        let pending = self.pending.take();
        if matches!(pending, Some(Pending::Message)) {
            // RFC 5321 §4.1.1.4: the message's final reply ends the transaction.
            self.transaction = None;
        }
        pending
    }

    /// Sends the decision's reply and goes on with the buffered input.
    fn decided(&mut self, reply: Reply) {
        self.send(reply);
        self.process();
    }

    /// Processes buffered input until it runs out, a decision is needed or we close.
    fn process(&mut self) {
        let mut progressed_any = false;
        while !self.closed && self.pending.is_none() {
            let progressed = match self.phase {
                Phase::Command => self.read_command(),
                Phase::Sasl { .. } => self.read_sasl(),
                Phase::Tls => {
                    // RFC 3207 §4.2, CVE-2011-0411: what follows STARTTLS is plaintext.
                    self.start = self.input.len();
                    false
                }
                Phase::Data(_) => self.read_data(),
                Phase::Chunk { .. } => self.read_chunk(),
            };
            if !progressed {
                break;
            }
            progressed_any = true;
        }
        self.flush_body();
        if self.closed {
            self.input = Vec::new();
        } else {
            self.input.drain(..self.start);
        }
        self.start = 0;
        self.rearm_deadline(progressed_any);
    }

    /// RFC 5321 §4.5.3.2.7 times the wait for the next *command*: a client that trickles
    /// a line a byte at a time must not hold its connection forever, so in the command
    /// phases the timer restarts only when a whole line was handled. In DATA each block
    /// restarts it (§4.5.3.2.5).
    fn rearm_deadline(&mut self, progressed: bool) {
        let keep = matches!(self.phase, Phase::Command | Phase::Sasl { .. })
            && !progressed
            && self.deadline.is_some()
            && !self.closed
            && self.pending.is_none();
        if !keep {
            self.arm_deadline();
        }
    }

    fn arm_deadline(&mut self) {
        let timeout = match self.phase {
            Phase::Command | Phase::Sasl { .. } => Some(self.config.command_timeout),
            Phase::Data(_) | Phase::Chunk { .. } => Some(self.config.data_timeout),
            // The driver times the handshake.
            Phase::Tls => None,
        };
        self.deadline = match (self.now, timeout, self.closed || self.pending.is_some()) {
            (Some(now), Some(timeout), false) => Some(now + timeout),
            _ => None,
        };
    }

    /// Frames one command line and handles it; false when no whole line is buffered.
    fn read_command(&mut self) -> bool {
        match self.take_line(self.config.max_command_line) {
            None => false,
            Some(Ok(line)) => {
                self.handle_line(&line);
                true
            }
            Some(Err(e)) => {
                self.send(reply::reply_for(&e));
                true
            }
        }
    }

    /// Takes one line of at most `max` octets with its CRLF off the buffered input, or
    /// none when no whole line is buffered yet.
    fn take_line(&mut self, max: usize) -> Option<Result<String, Error>> {
        let buffered = &self.input[self.start..];
        let Some(lf) = buffered.iter().position(|&b| b == b'\n') else {
            // RFC 5321 §4.5.3.1.4: frame before parsing, under the cap.
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
            // RFC 5321 §2.3.8: lines end in CRLF; CR and LF appear nowhere else.
            match line.strip_suffix(b"\r") {
                Some(line) if !line.contains(&b'\r') => std::str::from_utf8(line)
                    .map_err(|_| Error::InvalidUtf8)
                    .map(str::to_string),
                _ => Err(Error::BareLineEnding),
            }
        })
    }

    /// Feeds buffered input to the DATA decoder; false when it needs more.
    fn read_data(&mut self) -> bool {
        let Phase::Data(decoder) = &mut self.phase else {
            return false;
        };
        let buffered = &self.input[self.start..];
        let Some(n) = decoder.feed(buffered) else {
            self.start = self.input.len();
            return false;
        };
        self.start += n;
        let Phase::Data(decoder) = mem::replace(&mut self.phase, Phase::Command) else {
            return false;
        };
        match decoder.finish() {
            Ok(rest) => {
                self.data_received(rest);
                self.message_received();
            }
            Err(e) => {
                self.drop_transaction();
                self.send(reply::reply_for(&e));
            }
        }
        true
    }

    /// Takes buffered octets of the current BDAT chunk; false when it needs more.
    fn read_chunk(&mut self) -> bool {
        let Phase::Chunk {
            decoder, refusal, ..
        } = &mut self.phase
        else {
            return false;
        };
        let part = decoder.take(&self.input[self.start..]);
        self.start += part.len();
        if refusal.is_none()
            && let Some(tx) = &mut self.transaction
        {
            tx.body.extend_from_slice(part);
            tx.size += part.len() as u64;
        }
        if !decoder.is_done() {
            return false;
        }
        let Phase::Chunk {
            size,
            last,
            refusal,
            ..
        } = mem::replace(&mut self.phase, Phase::Command)
        else {
            return false;
        };
        match refusal {
            Some(Refusal { reply, reset }) => {
                if reset {
                    self.drop_transaction();
                }
                self.send(reply);
            }
            None if last => {
                self.flush_body();
                self.message_received();
            }
            None => self.send(reply::chunk_received(size)),
        }
        true
    }

    /// The message's content starts (DATA's 354, the first BDAT chunk): tell the driver,
    /// with the envelope that is complete now.
    fn message_started(&mut self) {
        let Some(tx) = &mut self.transaction else {
            return;
        };
        tx.started = true;
        let tx = &*tx;
        let extended = self.greeting.as_ref().is_some_and(|g| g.extended);
        let protocol = protocol(
            extended,
            tx.smtputf8,
            self.tls,
            self.authenticated.is_some(),
        );
        let envelope = Envelope {
            reverse_path: tx.reverse_path.clone(),
            forward_paths: tx.forward_paths.clone(),
            smtputf8: tx.smtputf8,
            eight_bit: tx.eight_bit,
            dsn: tx.dsn.clone(),
            rcpt_dsn: tx.rcpt_dsn.clone(),
        };
        self.events.push_back(Event::MessageStarted {
            envelope,
            helo: self
                .greeting
                .as_ref()
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            protocol,
        });
    }

    /// Hands content octets of the started message to the driver.
    fn body_received(&mut self, octets: Vec<u8>) {
        if !octets.is_empty() && self.transaction.as_ref().is_some_and(|tx| tx.started) {
            self.events.push_back(Event::BodyReceived { octets });
        }
    }

    /// Hands out the content taken since the last call (DATA's decoder, BDAT's chunks),
    /// so that the session holds at most one input's worth of it.
    fn flush_body(&mut self) {
        match &mut self.phase {
            Phase::Data(decoder) => {
                let octets = decoder.take_body();
                self.data_received(octets);
            }
            _ => {
                if let Some(tx) = &mut self.transaction {
                    let octets = mem::take(&mut tx.body);
                    self.body_received(octets);
                }
            }
        }
    }

    /// Content decoded from DATA: counted here (BDAT counts as chunks arrive).
    fn data_received(&mut self, octets: Vec<u8>) {
        if let Some(tx) = &mut self.transaction {
            tx.size += octets.len() as u64;
        }
        self.body_received(octets);
    }

    /// A whole message is in: ask the driver.
    fn message_received(&mut self) {
        let Some(tx) = &self.transaction else {
            return;
        };
        self.events
            .push_back(Event::MessageReceived { size: tx.size });
        self.pending = Some(Pending::Message);
    }

    /// Ends the transaction without a message (RFC 5321 §4.1.1.5 and the refusals); the
    /// driver hears of it when the content had started.
    fn drop_transaction(&mut self) {
        if let Some(tx) = self.transaction.take()
            && tx.started
        {
            self.events.push_back(Event::MessageAborted);
        }
    }

    /// Queues a reply; protocol errors count towards `max_errors`.
    fn send(&mut self, r: Reply) {
        r.write_to(&mut self.output);
        if reply::counts_as_error(&r) {
            self.errors += 1;
            if self.errors > self.config.max_errors {
                let r = reply::too_many_errors(&self.config.hostname);
                r.write_to(&mut self.output);
                self.close();
            }
        }
    }

    fn close(&mut self) {
        self.closed = true;
        if matches!(self.pending, Some(Pending::Message)) {
            // The driver is deciding on this message and ends it itself.
            self.transaction = None;
        } else {
            self.drop_transaction();
        }
        self.pending = None;
        self.deadline = None;
        self.input = Vec::new();
        self.start = 0;
    }
}

/// The Received header's "with" keyword (RFC 3848 §2, RFC 6531 §3.7.3).
fn protocol(extended: bool, smtputf8: bool, tls: bool, authenticated: bool) -> &'static str {
    if !extended {
        // RFC 3848 defines no SMTPS or SMTPA: HELO is plain SMTP.
        return "SMTP";
    }
    match (smtputf8, tls, authenticated) {
        (false, false, false) => "ESMTP",
        (false, true, false) => "ESMTPS",
        (false, false, true) => "ESMTPA",
        (false, true, true) => "ESMTPSA",
        (true, false, false) => "UTF8SMTP",
        (true, true, false) => "UTF8SMTPS",
        (true, false, true) => "UTF8SMTPA",
        (true, true, true) => "UTF8SMTPSA",
    }
}

#[cfg(test)]
mod tests;
