//! AUTH (RFC 4954): the command, the SASL exchange for PLAIN (RFC 4616) and LOGIN, and
//! the driver's decision.
//!
//! The session frames and decodes the responses; checking the credentials is the
//! driver's, through [`Event::AuthAttempted`]. The password only ever travels in a
//! [`Secret`], so no `Debug` print shows it.

use std::mem;

use golub_types::Secret;

use super::{Event, Pending, Phase, Session, reply};
use crate::error::Error;
use golub_types::sasl::{self, non_empty_utf8, parse_plain};

/// RFC 4954 §4: a response line may hold 12288 octets, here not counting its CRLF.
const MAX_SASL_LINE: usize = 12288 + 2;

/// LOGIN's challenges, "Username:" and "Password:" in base64.
const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

/// The SASL mechanisms we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    /// RFC 4616.
    Plain,
    /// draft-murchison-sasl-login: user name and password, each after a challenge.
    Login,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    fn from_name(name: &str) -> Option<Mechanism> {
        [Mechanism::Plain, Mechanism::Login]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// Which client response the next line of an AUTH exchange is.
#[derive(Debug)]
pub(super) enum Exchange {
    /// PLAIN's only response, after an empty challenge.
    Plain,
    /// LOGIN's user name.
    LoginUsername,
    /// LOGIN's password, for this user name.
    LoginPassword { authcid: String },
}

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
        let exchange = match mechanism {
            Mechanism::Plain => Exchange::Plain,
            Mechanism::Login => Exchange::LoginUsername,
        };
        match initial_response {
            // RFC 4954 §4: "=" is an initial response of zero length.
            Some(r) if r == "=" => self.respond(exchange, Ok(Vec::new())),
            Some(r) => self.respond(exchange, sasl::decode_base64(r.as_bytes())),
            None => {
                let challenge = match mechanism {
                    Mechanism::Plain => "",
                    Mechanism::Login => LOGIN_USERNAME,
                };
                self.challenge(exchange, challenge);
            }
        }
    }

    /// Takes one SASL response line; false when no whole line is buffered.
    pub(super) fn read_sasl(&mut self) -> bool {
        let Some(line) = self.take_line(MAX_SASL_LINE) else {
            return false;
        };
        let Phase::Sasl(exchange) = mem::replace(&mut self.phase, Phase::Command) else {
            return false;
        };
        // A line that cannot be a response ends the exchange with its error.
        match line {
            // RFC 4954 §4: "*" cancels the exchange.
            Ok(line) if line == "*" => self.send(reply::auth_cancelled()),
            Ok(line) => self.respond(exchange, sasl::decode_base64(line.as_bytes())),
            Err(Error::LineTooLong) => self.send(reply::sasl_line_too_long()),
            Err(e) => self.send(reply::reply_for(&e)),
        }
        true
    }

    /// Accepts the pending AUTH (235 2.7.0): the session is authenticated from now on.
    pub fn auth_succeeded(&mut self) {
        if let Some(Pending::Auth { authcid }) =
            self.take_pending(|p| matches!(p, Pending::Auth { .. }))
        {
            self.authenticated = Some(authcid);
            self.decided(reply::auth_succeeded());
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
        let mut out = Vec::new();
        for m in self.config.auth_mechanisms.iter() {
            if let Some(m) = Mechanism::from_name(m)
                && !out.contains(&m)
            {
                out.push(m);
            }
        }
        out
    }

    /// Sends a 334 challenge and waits for the response line.
    fn challenge(&mut self, exchange: Exchange, base64: &str) {
        self.send(reply::sasl_challenge(base64));
        self.phase = Phase::Sasl(exchange);
    }

    /// Goes on with a decoded client response.
    fn respond(&mut self, exchange: Exchange, response: Result<Vec<u8>, sasl::InvalidBase64>) {
        let Ok(response) = response else {
            return self.send(reply::bad_base64());
        };
        match exchange {
            Exchange::Plain => match parse_plain(response) {
                Some((authzid, authcid, password)) => {
                    self.attempted(Mechanism::Plain, authzid, authcid, password);
                }
                None => self.send(reply::bad_sasl_response()),
            },
            Exchange::LoginUsername => match non_empty_utf8(response) {
                Some(authcid) => {
                    self.challenge(Exchange::LoginPassword { authcid }, LOGIN_PASSWORD)
                }
                None => self.send(reply::bad_sasl_response()),
            },
            Exchange::LoginPassword { authcid } => match non_empty_utf8(response) {
                Some(password) => {
                    self.attempted(
                        Mechanism::Login,
                        String::new(),
                        authcid,
                        Secret::new(password),
                    );
                }
                None => self.send(reply::bad_sasl_response()),
            },
        }
    }

    /// The credentials are complete: ask the driver.
    fn attempted(
        &mut self,
        mechanism: Mechanism,
        authzid: String,
        authcid: String,
        password: Secret<String>,
    ) {
        self.events.push_back(Event::AuthAttempted {
            mechanism: mechanism.name().to_string(),
            authzid,
            authcid: authcid.clone(),
            password,
        });
        self.pending = Some(Pending::Auth { authcid });
    }
}
