//! golub-bench: load generators for SMTP submission, POP3 retrieval and IMAP clients.
//!
//! The binary (`main.rs`) parses the command line into [`SmtpOpts`], [`Pop3Opts`]
//! or [`ImapOpts`], calls [`run_smtp`], [`run_pop3`] or [`run_imap`], and prints the
//! report.
//! The functions are public so tests can run them against fake servers.

pub mod control;
pub mod imap;
pub mod message;
pub mod pop3;
pub mod report;
pub mod smtp;
pub mod wire;

pub use imap::{ImapOpts, run_imap};
pub use pop3::{Pop3Opts, run_pop3};
pub use report::{ImapReport, Pop3Report, SmtpReport};
pub use smtp::{SmtpOpts, run_smtp};
