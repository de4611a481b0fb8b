//! Delivery status reports (RFC 3464) read back with mail-parser, for tests that check
//! what the sender was told.

use mail_parser::{Message, MimeHeaders};

/// The delivery-status part's field groups: per message first, then one per recipient,
/// each as (name, value) in order.
pub fn status_fields(m: &Message<'_>) -> Vec<Vec<(String, String)>> {
    let part = m
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.subtype() == Some("delivery-status"))
        })
        .expect("a delivery-status part");
    std::str::from_utf8(part.contents())
        .expect("a delivery-status part in ASCII")
        .split("\r\n\r\n")
        .filter(|g| !g.trim().is_empty())
        .map(|g| {
            g.lines()
                .map(|l| {
                    let (k, v) = l.split_once(':').expect("a field");
                    (k.to_string(), v.trim().to_string())
                })
                .collect()
        })
        .collect()
}

/// The value of field `name` (any case) in one group.
pub fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
