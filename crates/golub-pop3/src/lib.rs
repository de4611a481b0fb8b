//! Sans-IO POP3 (RFC 1939) for Golub, with CAPA and its extensions (RFC 2449), STLS
//! (RFC 2595) and SASL authentication (RFC 5034: PLAIN and LOGIN).
//!
//! Nothing here does I/O or reads a clock. `golub-server`'s pop3d driver feeds received
//! octets to a [`Session`], writes out its responses, answers its [`Event`]s (check
//! credentials and lock the maildrop, read a message, remove the deleted messages), does
//! the TLS handshake when asked and arms its timer.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod command;
mod content;
mod error;
mod session;

pub use session::{AuthFailure, Event, MessageInfo, Pop3Config, Session};
