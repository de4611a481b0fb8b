//! The crate's one error type: why a command line or a message was refused.
//!
//! None of these end a session. RFC 5321 §4.2.4 wants a reply and the session to go on;
//! `server::reply_for` turns each of them into that reply, with generic text.

use golub_types::AddressError;

/// Why a command line or a received message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The verb is not one we know (RFC 5321 §4.2.4: 500).
    #[error("command not recognized")]
    UnknownCommand,
    /// The verb is known but its arguments are malformed (501).
    #[error("syntax error in arguments: {0}")]
    Syntax(&'static str),
    /// The MAIL reverse-path did not parse.
    #[error("bad sender address: {0}")]
    BadSender(AddressError),
    /// The RCPT forward-path did not parse.
    #[error("bad recipient address: {0}")]
    BadRecipient(AddressError),
    /// A MAIL or RCPT parameter we do not implement (RFC 5321 §4.1.1.11: 555).
    #[error("parameter not recognized: {0}")]
    UnknownParameter(String),
    /// A line ending that is not CRLF, or a CR inside a command line (RFC 5321 §2.3.8).
    #[error("bare cr or lf")]
    BareLineEnding,
    /// A command line that is not UTF-8.
    #[error("command is not utf-8")]
    InvalidUtf8,
    /// A command or text line over its length limit (RFC 5321 §4.5.3.1.4, §4.5.3.1.6).
    #[error("line too long")]
    LineTooLong,
    /// The message is larger than the advertised SIZE (RFC 1870).
    #[error("message too large")]
    MessageTooLarge,
    /// The message held a bare CR or LF (RFC 5321 §2.3.8, §4.1.1.4).
    #[error("bare cr or lf in message")]
    BareLineEndingInData,
}

/// Why octets from a server are not an SMTP reply (RFC 5321 §4.2); the client gives up on
/// that connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line does not start with a code 200 to 599 followed by a space, `-` or its end.
    #[error("malformed reply line")]
    Malformed,
    /// A continuation line carries another code than the first line.
    #[error("reply code changed within a multi-line reply")]
    CodeChanged,
    /// A line, or the number of lines, over its limit.
    #[error("reply too long")]
    TooLong,
}
