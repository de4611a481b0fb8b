//! Every response text the session sends, in one place.
//!
//! Texts are short and generic; RFC 2449 §8 response codes in brackets ([AUTH],
//! [IN-USE], [SYS/TEMP]) tell clients what kind of failure it was (RFC 3206).

use crate::error::Error;

/// The "-ERR" text for a refused command line.
pub(super) fn reply_for(e: &Error) -> &'static str {
    match e {
        Error::UnknownCommand => "unknown command",
        Error::Syntax(detail) => detail,
        Error::LineTooLong => "line too long",
        Error::InvalidCharacters => "invalid characters in command",
    }
}

pub(super) fn greeting(hostname: &str) -> String {
    format!("{hostname} POP3 server ready")
}

pub(super) fn signing_off(hostname: &str) -> String {
    format!("{hostname} POP3 server signing off")
}

pub(super) const WRONG_STATE: &str = "command not valid in this state";
pub(super) const TOO_MANY_ERRORS: &str = "too many errors";
pub(super) const AUTOLOGOUT: &str = "autologout timer expired";
pub(super) const SHUTTING_DOWN: &str = "[SYS/TEMP] server shutting down";

// AUTHORIZATION (RFC 1939 §4, §7; RFC 5034).
pub(super) const PLAINTEXT_REFUSED_STLS: &str =
    "[AUTH] plaintext authentication disallowed on non-secure connections; use STLS";
pub(super) const PLAINTEXT_REFUSED: &str =
    "[AUTH] plaintext authentication disallowed on non-secure connections";
pub(super) const SEND_PASS: &str = "send PASS";
pub(super) const USER_FIRST: &str = "send USER first";
pub(super) const APOP_NOT_SUPPORTED: &str = "APOP not supported";
pub(super) const MECHANISMS_FOLLOW: &str = "supported mechanisms follow";
pub(super) const UNKNOWN_MECHANISM: &str = "unrecognized authentication mechanism";
pub(super) const AUTH_CANCELLED: &str = "authentication cancelled";
pub(super) const BAD_BASE64: &str = "cannot decode base64 response";
pub(super) const BAD_SASL_RESPONSE: &str = "invalid authentication response";
pub(super) const LOCKED: &str = "maildrop locked and ready";
pub(super) const AUTH_INVALID: &str = "[AUTH] invalid user name or password";
pub(super) const AUTH_IN_USE: &str = "[IN-USE] mailbox is locked by another session";
pub(super) const AUTH_TEMPFAIL: &str = "[SYS/TEMP] temporary failure, try again later";
pub(super) const AUTH_BLOCKED: &str = "[AUTH] too many failed logins, try again later";

// STLS (RFC 2595 §4).
pub(super) const BEGIN_TLS: &str = "begin TLS negotiation";
pub(super) const TLS_ACTIVE: &str = "command not permitted when TLS active";
pub(super) const STLS_UNAVAILABLE: &str = "STLS not available";

// CAPA (RFC 2449 §5).
pub(super) const CAPABILITIES_FOLLOW: &str = "capability list follows";

// TRANSACTION (RFC 1939 §5) and UPDATE (§6).
pub(super) const NO_SUCH_MESSAGE: &str = "no such message";
pub(super) const ALREADY_DELETED: &str = "message already deleted";
pub(super) const UIDL_FOLLOWS: &str = "unique-id listing follows";
pub(super) const TOP_FOLLOWS: &str = "top of message follows";
pub(super) const CANNOT_READ: &str = "[SYS/TEMP] cannot read message";
pub(super) const NOT_REMOVED: &str = "[SYS/TEMP] some deleted messages not removed";
