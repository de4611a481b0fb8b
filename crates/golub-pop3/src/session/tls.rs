//! STLS (RFC 2595 §4): the command, and the reset once the driver's handshake is done.
//!
//! The session does no TLS itself. On STLS it queues "+OK", emits
//! [`Event::StlsRequested`] and drops all input until [`Session::tls_established`].

use std::time::Instant;

use super::{Event, Phase, Session, State, reply};

impl Session {
    /// STLS: only in AUTHORIZATION state, when offered and not on TLS yet.
    pub(super) fn stls(&mut self) {
        if !matches!(self.state, State::Authorization { .. }) {
            return self.err(reply::WRONG_STATE);
        }
        if self.tls {
            return self.err(reply::TLS_ACTIVE);
        }
        if !self.config.stls_available {
            return self.err(reply::STLS_UNAVAILABLE);
        }
        self.ok(reply::BEGIN_TLS);
        self.phase = Phase::Tls;
        // RFC 2595 §4 (and CVE-2011-0411): whatever the client pipelined after STLS came
        // in the clear and must never be taken as sent over TLS.
        self.start = self.input.len();
        self.skipping = false;
        self.events.push_back(Event::StlsRequested);
    }

    /// The TLS handshake after STLS succeeded: input received before it is forgotten, as
    /// is a USER waiting for its PASS; the session stays in AUTHORIZATION state and sends
    /// no new greeting. Ignored unless STLS was accepted.
    pub fn tls_established(&mut self, now: Instant) {
        if self.closed || !matches!(self.phase, Phase::Tls) {
            return;
        }
        self.now = now;
        self.tls = true;
        self.phase = Phase::Command;
        self.state = State::Authorization { user: None };
        self.input.clear();
        self.start = 0;
        self.skipping = false;
        self.process();
    }

    /// True when CAPA lists STLS.
    pub(super) fn stls_offered(&self) -> bool {
        self.config.stls_available && !self.tls
    }
}
