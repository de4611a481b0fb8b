//! Sans-IO IMAP for Golub: IMAP4rev1 (RFC 3501), IMAP4rev2 (RFC 9051) on ENABLE, and the
//! extensions modern clients use.
//!
//! Nothing here does I/O or reads a clock. The crate frames and parses commands
//! ([`frame`], [`parse`]), holds the types they parse into ([`command`]), renders the
//! MIME views FETCH asks for ([`mime`]) and encodes responses ([`encode`]). The parser is
//! our own: imap-codec 2.0 (alpha) parses neither LIST-EXTENDED (RFC 5258) nor ESEARCH's
//! RETURN options (RFC 4731), both of which Golub serves.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod command;
pub mod frame;
pub mod mailbox_name;
pub mod parse;
pub mod mime;
