//! Network plumbing shared by every protocol: the accept loop and connection limits, TLS
//! setup, the stream type that can be upgraded from plaintext to TLS in the middle of a
//! session (STARTTLS, STLS), and the one driver loop that runs every sans-IO session.

pub mod limits;
pub mod listener;
pub mod session;
pub mod stream;
pub mod tls;
