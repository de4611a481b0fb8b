//! The crate's one error type: why a command line was refused.
//!
//! None of these end a session: each becomes a "-ERR" response (built in
//! `session::reply::reply_for`) and the session goes on, until too many of them.

/// Why a command line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    /// The keyword is not a POP3 command we know.
    #[error("unknown command")]
    UnknownCommand,
    /// The keyword is known but its arguments are malformed.
    #[error("{0}")]
    Syntax(&'static str),
    /// A line over its length limit (RFC 2449 §4: 255 octets with its CRLF).
    #[error("line too long")]
    LineTooLong,
    /// A control character inside the line, or octets that are not UTF-8.
    #[error("invalid characters in command")]
    InvalidCharacters,
}
