//! Small value types shared by every Golub crate: domains, mailboxes, paths, envelopes,
//! queue ids, RFC 3463 enhanced status codes, SMTP replies and secrets.
//!
//! Nothing here does I/O. Values that have a syntax are parsed once, at the edge, and
//! cannot be constructed invalid afterwards.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod address;
pub mod dsn;
mod reply;
pub mod sasl;

pub use address::{AddressError, Domain, ForwardPath, Mailbox, ReversePath};
pub use dsn::{MessageDsn, Notify, Orcpt, RcptDsn, Ret};
pub use reply::{EnhancedCode, Reply};

use std::fmt;
use std::str::FromStr;

/// The envelope of one mail transaction: who it is from and whom it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub reverse_path: ReversePath,
    pub forward_paths: Vec<ForwardPath>,
    /// The client asked for SMTPUTF8 (RFC 6531) on MAIL.
    pub smtputf8: bool,
    /// BODY=8BITMIME was given on MAIL (RFC 6152).
    pub eight_bit: bool,
    /// RET and ENVID from MAIL (RFC 3461).
    pub dsn: MessageDsn,
    /// NOTIFY and ORCPT of each forward path, at the same index. May be shorter than
    /// `forward_paths` (e.g. empty in an envelope built by hand): a missing entry is a
    /// recipient without DSN parameters; use [`Envelope::rcpt_dsn`].
    pub rcpt_dsn: Vec<RcptDsn>,
}

impl Envelope {
    /// The DSN parameters of forward path `i`; none when there are none at that index.
    pub fn rcpt_dsn(&self, i: usize) -> RcptDsn {
        self.rcpt_dsn.get(i).cloned().unwrap_or_default()
    }
}

/// Identifies one queued message in logs, in the `Received:` header and in the store.
///
/// Displayed as 16 upper-case hex digits so that it greps well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u64);

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

impl FromStr for QueueId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(QueueId)
    }
}

/// A value that must never reach a log: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    /// The wrapped value; call sites that use it are the ones to audit.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_id_round_trips_through_its_text() {
        let id = QueueId(0x1234_ABCD_0042);
        assert_eq!(id.to_string(), "00001234ABCD0042");
        assert_eq!(id.to_string().parse::<QueueId>().ok(), Some(id));
    }

    #[test]
    fn secret_debug_hides_the_value() {
        let s = Secret::new("hunter2".to_string());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
