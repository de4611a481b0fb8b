//! AUTH (RFC 4954): the command, the framing of the SASL exchange (334 challenges,
//! base64 response lines, "*" to cancel), and the driver's decisions. The mechanisms
//! themselves (PLAIN, LOGIN, SCRAM-SHA-256) are golub-types' [`Exchange`], which POP3
//! and IMAP use too.
//!
//! Checking credentials is the driver's, through [`Event::AuthAttempted`] (and, for
//! SCRAM, [`Event::CredentialsNeeded`] first). A password only ever travels in a
//! `Secret`, so no `Debug` print shows it.

use std::mem;

use super::{Event, Pending, Phase, Session, reply};
use crate::error::Error;
use golub_types::sasl::scram::ScramCredentials;
use golub_types::sasl::{self, Attempt, Exchange, Mechanism, Step};

/// RFC 4954 §4: a response line may hold 12288 octets, here not counting its CRLF.
const MAX_SASL_LINE: usize = 12288 + 2;

impl Session {
    /// The AUTH command (RFC 4954 §4).
    pub(super) fn auth(&mut self, mechanism: &str, initial_response: Option<String>) {
        let offered = self.mechanisms();
        if offered.is_empty() {
            return self.send(reply::auth_not_enabled());
        }
        if !self.greeting.as_ref().is_some_and(|g| g.extended) {
            return self.send(reply::auth_needs_ehlo());
        }
        if self.authenticated.is_some() {
            return self.send(reply::already_authenticated());
        }
        if self.transaction.is_some() {
            return self.send(reply::auth_in_transaction());
        }
        if !self.tls && !self.config.auth_without_tls {
            return self.send(reply::encryption_required());
        }
        let Some(mechanism) = Mechanism::from_name(mechanism).filter(|m| offered.contains(m))
        else {
            return self.send(reply::unknown_mechanism());
        };
        let mut exchange = Box::new(Exchange::new(mechanism));
        match initial_response {
            // RFC 4954 §4: "=" is an initial response of zero length.
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
        let Some(line) = self.take_line(MAX_SASL_LINE) else {
            return false;
        };
        let Phase::Sasl { exchange, verified } = mem::replace(&mut self.phase, Phase::Command)
        else {
            return false;
        };
        // A line that cannot be a response ends the exchange with its error.
        match line {
            // RFC 4954 §4: "*" cancels the exchange.
            Ok(line) if line == "*" => self.send(reply::auth_cancelled()),
            Ok(line) => {
                let response = sasl::decode_base64(line.as_bytes());
                match verified {
                    Some(authcid) => self.acknowledged(exchange, authcid, response),
                    None => self.respond(exchange, response),
                }
            }
            Err(Error::LineTooLong) => self.send(reply::sasl_line_too_long()),
            Err(e) => self.send(reply::reply_for(&e)),
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

    /// Accepts the pending AUTH: 235 2.7.0, and the session is authenticated from now on.
    /// For SCRAM the server's last message goes first as a challenge, and the session is
    /// authenticated once the client acknowledges it.
    pub fn auth_succeeded(&mut self) {
        let Some(Pending::Auth {
            authcid,
            mut exchange,
        }) = self.take_pending(|p| matches!(p, Pending::Auth { .. }))
        else {
            return;
        };
        match exchange.server_final() {
            Some(last) => {
                self.challenge(exchange, Some(authcid), &last);
                self.process();
            }
            None => {
                self.authenticated = Some(authcid);
                self.decided(reply::auth_succeeded());
            }
        }
    }

    /// The authentication identity (authcid) once AUTH succeeded.
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// True when EHLO lists AUTH.
    pub(super) fn auth_offered(&self) -> bool {
        (self.tls || self.config.auth_without_tls) && !self.mechanisms().is_empty()
    }

    /// The EHLO keyword: "AUTH" and the mechanisms (RFC 4954 §3).
    pub(super) fn auth_keyword(&self) -> String {
        let mut keyword = "AUTH".to_string();
        for m in self.mechanisms() {
            keyword.push(' ');
            keyword.push_str(m.name());
        }
        keyword
    }

    /// The configured mechanisms we implement, in the configured order, once each.
    fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::list(&self.config.auth_mechanisms)
    }

    /// Sends a 334 challenge and waits for the response line.
    fn challenge(&mut self, exchange: Box<Exchange>, verified: Option<String>, data: &[u8]) {
        self.send(reply::sasl_challenge(&sasl::encode_base64(data)));
        self.phase = Phase::Sasl { exchange, verified };
    }

    /// Goes on with a decoded client response.
    fn respond(
        &mut self,
        mut exchange: Box<Exchange>,
        response: Result<Vec<u8>, sasl::InvalidBase64>,
    ) {
        let Ok(response) = response else {
            return self.send(reply::bad_base64());
        };
        let step = exchange.respond(response);
        self.step(exchange, step);
    }

    /// The client's (empty) answer to SCRAM's last message ends the exchange.
    fn acknowledged(
        &mut self,
        mut exchange: Box<Exchange>,
        authcid: String,
        response: Result<Vec<u8>, sasl::InvalidBase64>,
    ) {
        let Ok(response) = response else {
            return self.send(reply::bad_base64());
        };
        match exchange.respond(response) {
            Step::Done => {
                self.authenticated = Some(authcid);
                self.send(reply::auth_succeeded());
            }
            _ => self.send(reply::bad_sasl_response()),
        }
    }

    /// Acts on what the exchange wants next.
    fn step(&mut self, exchange: Box<Exchange>, step: Step) {
        let mechanism = exchange.mechanism().name().to_string();
        match step {
            Step::Challenge(data) => self.challenge(exchange, None, &data),
            Step::Attempt(attempt) => self.attempted(exchange, mechanism, attempt),
            Step::NeedCredentials { authcid, .. } => {
                self.events
                    .push_back(Event::CredentialsNeeded { mechanism, authcid });
                self.pending = Some(Pending::Credentials { exchange });
            }
            Step::Done | Step::Malformed => self.send(reply::bad_sasl_response()),
        }
    }

    /// The credentials are complete: ask the driver.
    fn attempted(&mut self, exchange: Box<Exchange>, mechanism: String, attempt: Attempt) {
        let Attempt {
            authzid,
            authcid,
            credential,
        } = attempt;
        self.events.push_back(Event::AuthAttempted {
            mechanism,
            authzid,
            authcid: authcid.clone(),
            credential,
        });
        self.pending = Some(Pending::Auth { authcid, exchange });
    }
}
