//! The AUTHORIZATION state (RFC 1939 §4, §7): USER/PASS, APOP (refused), and AUTH
//! (RFC 5034), framing golub-types' SASL [`Exchange`] (PLAIN, LOGIN, SCRAM-SHA-256) in
//! "+ " continuations; then the driver's decision.
//!
//! The session frames and decodes the responses; checking the credentials and locking
//! the maildrop is the driver's, through [`Event::AuthAttempted`]. The password only ever
//! travels in a [`Secret`], so no `Debug` print shows it.

use std::mem;

use golub_types::Secret;

use super::{AuthFailure, Event, Maildrop, MessageInfo, Pending, Phase, Session, State, reply};
use golub_types::sasl::scram::ScramCredentials;
use golub_types::sasl::{self, Attempt, Credential, Exchange, Mechanism, Step};

/// RFC 5034 §4: a client response may be 12288 octets, here not counting its CRLF.
pub(super) const MAX_SASL_LINE: usize = 12288 + 2;

impl Session {
    /// USER (RFC 1939 §7).
    pub(super) fn user_command(&mut self, name: String) {
        if !self.login_allowed() {
            return;
        }
        self.state = State::Authorization { user: Some(name) };
        self.ok(reply::SEND_PASS);
    }

    /// PASS (RFC 1939 §7): only right after an accepted USER.
    pub(super) fn pass(&mut self, password: Secret<String>) {
        if !self.login_allowed() {
            return;
        }
        let State::Authorization { user } = &mut self.state else {
            return;
        };
        match user.take() {
            Some(user) => {
                let attempt = Attempt {
                    authzid: String::new(),
                    authcid: user,
                    credential: Credential::Password(password),
                };
                self.attempted(None, "USER".to_string(), attempt)
            }
            None => self.err(reply::USER_FIRST),
        }
    }

    /// APOP (RFC 1939 §7) would need the plaintext password; the directory keeps hashes.
    pub(super) fn apop(&mut self) {
        if matches!(self.state, State::Authorization { .. }) {
            self.err(reply::APOP_NOT_SUPPORTED);
        } else {
            self.err(reply::WRONG_STATE);
        }
    }

    /// AUTH (RFC 5034 §4); without a mechanism, the list of mechanisms.
    pub(super) fn auth(&mut self, mechanism: Option<String>, initial_response: Option<String>) {
        if !self.login_allowed() {
            return;
        }
        self.state = State::Authorization { user: None };
        let offered = self.mechanisms();
        let Some(mechanism) = mechanism else {
            self.ok(reply::MECHANISMS_FOLLOW);
            let names: Vec<String> = offered.iter().map(|m| m.name().to_string()).collect();
            return self.multiline_list(&names);
        };
        let Some(mechanism) = Mechanism::from_name(&mechanism).filter(|m| offered.contains(m))
        else {
            return self.err(reply::UNKNOWN_MECHANISM);
        };
        let mut exchange = Box::new(Exchange::new(mechanism));
        match initial_response {
            // RFC 5034 §4: "=" is an initial response of zero length.
            Some(r) if r == "=" => self.respond(exchange, Ok(Vec::new())),
            Some(r) => self.respond(exchange, sasl::decode_base64(r.as_bytes())),
            None => {
                let step = exchange.start();
                self.step(exchange, step);
            }
        }
    }

    /// Takes one SASL response line; false when no whole line is buffered.
    pub(super) fn read_sasl(&mut self) -> bool {
        let max = MAX_SASL_LINE.max(self.config.max_line);
        let Some(line) = self.take_line(max) else {
            return false;
        };
        let Phase::Sasl { exchange, verified } = mem::replace(&mut self.phase, Phase::Command)
        else {
            return false;
        };
        // A line that cannot be a response ends the exchange with its error.
        match line {
            // RFC 5034 §4: "*" cancels the exchange.
            Ok(line) if line == "*" => self.fail(reply::AUTH_CANCELLED),
            Ok(line) => {
                let response = sasl::decode_base64(line.as_bytes());
                match verified {
                    Some((user, maildrop)) => self.acknowledged(exchange, user, maildrop, response),
                    None => self.respond(exchange, response),
                }
            }
            Err(e) => self.err(reply::reply_for(&e)),
        }
        true
    }

    /// Gives a SCRAM exchange the user's stored credentials (after
    /// [`Event::CredentialsNeeded`]); `server_nonce` is random, printable, without ','.
    pub fn scram_credentials(&mut self, credentials: ScramCredentials, server_nonce: &str) {
        if let Some(Pending::Credentials { mut exchange }) =
            self.take_pending(|p| matches!(p, Pending::Credentials { .. }))
        {
            let step = exchange.credentials(credentials, server_nonce);
            self.step(exchange, step);
            self.process();
        }
    }

    /// Accepts the pending credentials: the maildrop is locked and the session enters
    /// TRANSACTION state with `maildrop`, in the order the client numbers it.
    /// For SCRAM the server's last message goes first as a "+ " continuation, and the
    /// maildrop is entered once the client acknowledges it.
    pub fn auth_succeeded(&mut self, maildrop: Vec<MessageInfo>) {
        let Some(Pending::Auth { user, exchange }) =
            self.take_pending(|p| matches!(p, Pending::Auth { .. }))
        else {
            return;
        };
        match exchange {
            Some(mut exchange) => match exchange.server_final() {
                Some(last) => self.challenge(exchange, Some((user, maildrop)), &last),
                None => self.enter_transaction(user, maildrop),
            },
            None => self.enter_transaction(user, maildrop),
        }
        self.process();
    }

    /// The login is complete: TRANSACTION state with the locked maildrop.
    fn enter_transaction(&mut self, user: String, maildrop: Vec<MessageInfo>) {
        self.state = State::Transaction(Maildrop {
            user,
            deleted: vec![false; maildrop.len()],
            messages: maildrop,
        });
        self.ok(reply::LOCKED);
    }

    /// Refuses the pending credentials; the session stays in AUTHORIZATION state, except
    /// for [`AuthFailure::Blocked`], which closes it.
    pub fn auth_failed(&mut self, why: AuthFailure) {
        if self
            .take_pending(|p| matches!(p, Pending::Auth { .. } | Pending::Credentials { .. }))
            .is_none()
        {
            return;
        }
        self.state = State::Authorization { user: None };
        match why {
            AuthFailure::Invalid => self.fail(reply::AUTH_INVALID),
            AuthFailure::InUse => self.fail(reply::AUTH_IN_USE),
            AuthFailure::TempFail => self.fail(reply::AUTH_TEMPFAIL),
            AuthFailure::Blocked => {
                self.fail(reply::AUTH_BLOCKED);
                return self.close();
            }
        }
        self.process();
    }

    /// True when USER/PASS and AUTH may be used on this connection.
    pub(super) fn plaintext_ok(&self) -> bool {
        self.tls || self.config.allow_plaintext_auth
    }

    /// The configured mechanisms we implement, in the configured order, once each.
    pub(super) fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::list(&self.config.sasl_mechanisms)
    }

    /// Checks the state and the connection for a login command; refuses it if need be.
    fn login_allowed(&mut self) -> bool {
        if !matches!(self.state, State::Authorization { .. }) {
            self.err(reply::WRONG_STATE);
            return false;
        }
        if !self.plaintext_ok() {
            if self.stls_offered() {
                self.err(reply::PLAINTEXT_REFUSED_STLS);
            } else {
                self.err(reply::PLAINTEXT_REFUSED);
            }
            return false;
        }
        true
    }

    /// Sends a "+ " continuation with a challenge and waits for the response line.
    fn challenge(
        &mut self,
        exchange: Box<Exchange>,
        verified: Option<(String, Vec<MessageInfo>)>,
        data: &[u8],
    ) {
        self.output.extend_from_slice(b"+ ");
        self.output
            .extend_from_slice(sasl::encode_base64(data).as_bytes());
        self.output.extend_from_slice(b"\r\n");
        self.phase = Phase::Sasl { exchange, verified };
    }

    /// Goes on with a decoded client response.
    fn respond(
        &mut self,
        mut exchange: Box<Exchange>,
        response: Result<Vec<u8>, sasl::InvalidBase64>,
    ) {
        let Ok(response) = response else {
            return self.err(reply::BAD_BASE64);
        };
        let step = exchange.respond(response);
        self.step(exchange, step);
    }

    /// The client's (empty) answer to SCRAM's last message completes the login.
    fn acknowledged(
        &mut self,
        mut exchange: Box<Exchange>,
        user: String,
        maildrop: Vec<MessageInfo>,
        response: Result<Vec<u8>, sasl::InvalidBase64>,
    ) {
        let Ok(response) = response else {
            return self.err(reply::BAD_BASE64);
        };
        match exchange.respond(response) {
            Step::Done => self.enter_transaction(user, maildrop),
            _ => self.err(reply::BAD_SASL_RESPONSE),
        }
    }

    /// Acts on what the exchange wants next.
    fn step(&mut self, exchange: Box<Exchange>, step: Step) {
        let mechanism = exchange.mechanism().name().to_string();
        match step {
            Step::Challenge(data) => self.challenge(exchange, None, &data),
            Step::Attempt(attempt) => self.attempted(Some(exchange), mechanism, attempt),
            Step::NeedCredentials { authcid, .. } => {
                self.events.push_back(Event::CredentialsNeeded {
                    mechanism,
                    user: authcid,
                });
                self.pending = Some(Pending::Credentials { exchange });
            }
            Step::Done | Step::Malformed => self.err(reply::BAD_SASL_RESPONSE),
        }
    }

    /// The credentials are complete: ask the driver.
    fn attempted(&mut self, exchange: Option<Box<Exchange>>, mechanism: String, attempt: Attempt) {
        let Attempt {
            authzid,
            authcid: user,
            credential,
        } = attempt;
        self.events.push_back(Event::AuthAttempted {
            mechanism,
            authzid,
            user: user.clone(),
            credential,
        });
        self.pending = Some(Pending::Auth { user, exchange });
    }
}
