//! Wire formats: SMTP command lines, and replies as a client reads them. Replies are
//! written by `golub_types::Reply`.

pub mod command;
pub mod reply;
