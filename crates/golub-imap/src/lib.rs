//! Sans-IO IMAP for Golub: IMAP4rev1 (RFC 3501), IMAP4rev2 (RFC 9051) on ENABLE, and the
//! extensions modern clients use.
//!
//! Nothing here does I/O or reads a clock. The crate frames and parses commands
//! ([`frame`], [`parse`]) into the types of [`command`], runs the connection states
//! ([`session`]), keeps a selected mailbox's numbering ([`view`]), renders what FETCH
//! and SEARCH need from a message ([`mime`], [`fetch`], [`search`]) and encodes responses
//! ([`encode`]). golub-server's imapd feeds it octets and answers its events from the
//! store.
//!
//! The parser is our own. imap-codec 2.0 (alpha; imap-next 0.3 builds on it) parses
//! neither LIST-EXTENDED (RFC 5258: selection options, several patterns, RETURN) nor
//! ESEARCH's RETURN options (RFC 4731), both of which Golub serves, and its command types
//! would be converted into ours anyway for the session's decisions.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod command;
pub mod encode;
pub mod fetch;
pub mod frame;
pub mod mailbox_name;
pub mod mime;
pub mod parse;
pub mod search;
pub mod session;
pub mod view;

pub use command::{Command, Tagged};
pub use session::{AuthFailure, Enabled, Event, ImapConfig, Session, State, Status};
