//! Local delivery: a recipient address resolved against the directory, through aliases
//! and mailing lists, down to the users whose INBOX gets a copy and the remote addresses
//! left for outbound delivery; and the lines a local copy starts with.

use super::Core;
use golub_store::{Recipient, User};
use tracing::warn;

/// Deepest alias chain followed before it counts as a loop.
const MAX_ALIAS_DEPTH: usize = 20;

/// A recipient after alias and list expansion.
#[derive(Default)]
pub(super) struct Expansion {
    pub users: Vec<User>,
    pub remote: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub deferred: Vec<(String, String)>,
}

/// `Return-Path:` and `Delivered-To:`, the per-copy prefix of a local delivery.
pub(super) fn prefix(reverse_path: &str, user: &str) -> Vec<u8> {
    format!("Return-Path: <{reverse_path}>\r\nDelivered-To: {user}\r\n").into_bytes()
}

/// Follows aliases and lists from `address` down to users and remote addresses.
pub(super) fn expand(core: &Core, address: &str) -> golub_store::Result<Expansion> {
    let mut out = Expansion::default();
    let mut path = Vec::new();
    expand_into(core, address, &mut path, &mut out)?;
    Ok(out)
}

fn expand_into(
    core: &Core,
    address: &str,
    path: &mut Vec<String>,
    out: &mut Expansion,
) -> golub_store::Result<()> {
    if path.iter().any(|p| p == address) || path.len() >= MAX_ALIAS_DEPTH {
        warn!(to = %address, chain = %path.join(" -> "), "alias loop detected");
        out.failed
            .push((address.to_string(), "5.4.6 alias loop detected".into()));
        return Ok(());
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        out.failed
            .push((address.to_string(), "5.1.3 bad destination address".into()));
        return Ok(());
    };
    if !core.store.is_local_domain(domain)? {
        if !out.remote.iter().any(|r| r == address) {
            out.remote.push(address.to_string());
        }
        return Ok(());
    }
    match core.store.lookup(address)? {
        Some(Recipient::User(u)) => {
            if !out.users.iter().any(|x| x.id == u.id) {
                out.users.push(u);
            }
        }
        Some(Recipient::Alias(targets)) => {
            path.push(address.to_string());
            for t in targets {
                expand_into(core, &t, path, out)?;
            }
            path.pop();
        }
        None if local == "postmaster" => match &core.config.postmaster {
            Some(pm) if pm.to_lowercase() != address => {
                path.push(address.to_string());
                expand_into(core, &pm.to_lowercase(), path, out)?;
                path.pop();
            }
            _ => out.deferred.push((
                address.to_string(),
                "4.3.0 no mailbox for postmaster; add a user or alias, or set postmaster in the config".into(),
            )),
        },
        None => out
            .failed
            .push((address.to_string(), "5.1.1 mailbox unavailable".into())),
    }
    Ok(())
}
