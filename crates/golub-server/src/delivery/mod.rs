//! Delivery: takes queued messages and settles each recipient. Local recipients (users,
//! aliases, mailing lists) are delivered into mailboxes; remote ones wait in the queue for
//! the outbound stage. Failures for good produce a bounce report to the sender.

mod local;

pub use local::{Delivery, DeliveryConfig};
