//! golub-bench: load generators for SMTP submission and POP3 retrieval.
//!
//! The binary (`main.rs`) parses the command line into [`SmtpOpts`] or
//! [`Pop3Opts`], calls [`run_smtp`] or [`run_pop3`], and prints the report.
//! The functions are public so tests can run them against fake servers.

pub mod control;
pub mod message;
pub mod pop3;
pub mod report;
pub mod smtp;
pub mod wire;

pub use pop3::{Pop3Opts, run_pop3};
pub use report::{Pop3Report, SmtpReport};
pub use smtp::{SmtpOpts, run_smtp};
