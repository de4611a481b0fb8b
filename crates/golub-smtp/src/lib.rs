//! Sans-IO SMTP (RFC 5321) for Golub: the command codec, the DATA/BDAT content decoders,
//! the server session state machine with STARTTLS (RFC 3207) and AUTH (RFC 4954), and the
//! client session of outbound delivery ([`ClientSession`]).
//!
//! Nothing here does I/O or reads a clock. `golub-server`'s smtpd driver feeds received
//! octets to a [`Session`], writes out its replies, answers its [`Event`]s (accept or
//! reject a sender, a recipient, a message, check credentials), does the TLS handshake
//! when asked and arms its timer.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod body;
pub mod client;
pub mod codec;
pub mod error;
pub mod server;

pub use client::{ClientConfig, ClientEvent, ClientSession};
pub use error::{Error, ReplyError};
pub use server::{Event, MailKind, Session, SessionConfig};
