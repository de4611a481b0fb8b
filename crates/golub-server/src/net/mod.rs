//! Network plumbing shared by every protocol: TLS setup and the stream type that can be
//! upgraded from plaintext to TLS in the middle of a session (STARTTLS, STLS).

pub mod limits;
pub mod listener;
pub mod stream;
pub mod tls;
