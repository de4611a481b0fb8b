//! Wire formats: SMTP command lines. Replies are written by `golub_types::Reply`.

pub mod command;
