//! The AUTHORIZATION state (RFC 1939 §4, §7): USER/PASS, APOP (refused), and AUTH
//! (RFC 5034) with the SASL exchanges for PLAIN (RFC 4616) and LOGIN; then the driver's
//! decision.
//!
//! The session frames and decodes the responses; checking the credentials and locking
//! the maildrop is the driver's, through [`Event::AuthAttempted`]. The password only ever
//! travels in a [`Secret`], so no `Debug` print shows it.

use std::mem;

use golub_types::Secret;

use super::{AuthFailure, Event, Maildrop, MessageInfo, Pending, Phase, Session, State, reply};
use golub_types::sasl::{self, non_empty_utf8, parse_plain};

/// RFC 5034 §4: a client response may be 12288 octets, here not counting its CRLF.
pub(super) const MAX_SASL_LINE: usize = 12288 + 2;

/// LOGIN's challenges, "Username:" and "Password:" in base64.
const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

/// The SASL mechanisms we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mechanism {
    /// RFC 4616.
    Plain,
    /// draft-murchison-sasl-login: user name and password, each after a challenge.
    Login,
}

impl Mechanism {
    pub(super) fn name(self) -> &'static str {
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
    LoginPassword { user: String },
}

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
            Some(user) => self.attempted("USER", String::new(), user, password),
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
        let exchange = match mechanism {
            Mechanism::Plain => Exchange::Plain,
            Mechanism::Login => Exchange::LoginUsername,
        };
        match initial_response {
            // RFC 5034 §4: "=" is an initial response of zero length.
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
        let max = MAX_SASL_LINE.max(self.config.max_line);
        let Some(line) = self.take_line(max) else {
            return false;
        };
        let Phase::Sasl(exchange) = mem::replace(&mut self.phase, Phase::Command) else {
            return false;
        };
        // A line that cannot be a response ends the exchange with its error.
        match line {
            // RFC 5034 §4: "*" cancels the exchange.
            Ok(line) if line == "*" => self.fail(reply::AUTH_CANCELLED),
            Ok(line) => self.respond(exchange, sasl::decode_base64(line.as_bytes())),
            Err(e) => self.err(reply::reply_for(&e)),
        }
        true
    }

    /// Accepts the pending credentials: the maildrop is locked and the session enters
    /// TRANSACTION state with `maildrop`, in the order the client numbers it.
    pub fn auth_succeeded(&mut self, maildrop: Vec<MessageInfo>) {
        let Some(Pending::Auth { user }) = self.take_pending(|p| matches!(p, Pending::Auth { .. }))
        else {
            return;
        };
        self.state = State::Transaction(Maildrop {
            user,
            deleted: vec![false; maildrop.len()],
            messages: maildrop,
        });
        self.ok(reply::LOCKED);
        self.process();
    }

    /// Refuses the pending credentials; the session stays in AUTHORIZATION state, except
    /// for [`AuthFailure::Blocked`], which closes it.
    pub fn auth_failed(&mut self, why: AuthFailure) {
        if self
            .take_pending(|p| matches!(p, Pending::Auth { .. }))
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
        let mut out = Vec::new();
        for m in &self.config.sasl_mechanisms {
            if let Some(m) = Mechanism::from_name(m)
                && !out.contains(&m)
            {
                out.push(m);
            }
        }
        out
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
    fn challenge(&mut self, exchange: Exchange, base64: &str) {
        self.output.extend_from_slice(b"+ ");
        self.output.extend_from_slice(base64.as_bytes());
        self.output.extend_from_slice(b"\r\n");
        self.phase = Phase::Sasl(exchange);
    }

    /// Goes on with a decoded client response.
    fn respond(&mut self, exchange: Exchange, response: Result<Vec<u8>, sasl::InvalidBase64>) {
        let Ok(response) = response else {
            return self.err(reply::BAD_BASE64);
        };
        match exchange {
            Exchange::Plain => match parse_plain(response) {
                Some((authzid, user, password)) => {
                    self.attempted(Mechanism::Plain.name(), authzid, user, password);
                }
                None => self.err(reply::BAD_SASL_RESPONSE),
            },
            Exchange::LoginUsername => match non_empty_utf8(response) {
                Some(user) => self.challenge(Exchange::LoginPassword { user }, LOGIN_PASSWORD),
                None => self.err(reply::BAD_SASL_RESPONSE),
            },
            Exchange::LoginPassword { user } => match non_empty_utf8(response) {
                Some(password) => {
                    self.attempted(
                        Mechanism::Login.name(),
                        String::new(),
                        user,
                        Secret::new(password),
                    );
                }
                None => self.err(reply::BAD_SASL_RESPONSE),
            },
        }
    }

    /// The credentials are complete: ask the driver.
    fn attempted(
        &mut self,
        mechanism: &str,
        authzid: String,
        user: String,
        password: Secret<String>,
    ) {
        self.events.push_back(Event::AuthAttempted {
            mechanism: mechanism.to_string(),
            authzid,
            user: user.clone(),
            password,
        });
        self.pending = Some(Pending::Auth { user });
    }
}
