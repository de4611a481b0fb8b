//! STARTTLS (RFC 3207): the command, and the reset once the driver's handshake is done.
//!
//! The session does no TLS itself. On STARTTLS it queues 220, emits
//! [`Event::StartTlsRequested`] and drops all input until [`Session::tls_established`].

use std::time::Instant;

use super::{Event, Phase, Session, reply};

impl Session {
    /// The STARTTLS command (RFC 3207 §4).
    pub(super) fn starttls(&mut self) {
        if self.tls {
            return self.send(reply::already_tls());
        }
        if !self.config.starttls_available {
            return self.send(reply::tls_not_available());
        }
        // RFC 3207 §4 lets us refuse it mid-transaction; the reset would lose it anyway.
        if self.transaction.is_some() {
            return self.send(reply::starttls_in_transaction());
        }
        self.send(reply::ready_to_start_tls());
        if self.closed {
            return;
        }
        self.phase = Phase::Tls;
        // RFC 3207 §4.2, CVE-2011-0411: whatever the client pipelined after STARTTLS
        // came in plaintext and must not be taken as sent over TLS.
        self.start = self.input.len();
        self.skipping = false;
        self.events.push_back(Event::StartTlsRequested);
    }

    /// The TLS handshake after STARTTLS succeeded. RFC 3207 §4.2: the session forgets all
    /// it knew from the client (greeting, transaction, authentication) and drops octets
    /// received before; no new greeting is sent. Ignored unless STARTTLS was accepted.
    pub fn tls_established(&mut self, now: Instant) {
        if self.closed || !matches!(self.phase, Phase::Tls) {
            return;
        }
        self.now = Some(now);
        self.tls = true;
        self.phase = Phase::Command;
        self.greeting = None;
        self.drop_transaction();
        self.authenticated = None;
        self.input.clear();
        self.start = 0;
        self.skipping = false;
        self.process();
    }

    /// True when the connection is TLS: implicit TLS, or after STARTTLS and
    /// [`tls_established`](Self::tls_established).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// True when EHLO lists STARTTLS.
    pub(super) fn starttls_offered(&self) -> bool {
        self.config.starttls_available && !self.tls
    }
}
