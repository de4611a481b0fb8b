//! Who may send to whom: the RCPT decision on port 25. Local domains take mail for their
//! users, aliases, lists and postmaster; everything else is relaying, which is refused
//! until the client has authenticated (a later stage).

use golub_store::Store;
use golub_types::{EnhancedCode, ForwardPath, Reply};
use tracing::warn;

/// The canonical address for a forward path (`<Postmaster>` becomes the postmaster of this
/// host's domain, or of the first local domain).
pub fn canonical_recipient(store: &Store, hostname: &str, path: &ForwardPath) -> String {
    match path {
        ForwardPath::Mailbox(m) => m.canonical(),
        ForwardPath::Postmaster => {
            let host = hostname.to_lowercase();
            let domain = match store.is_local_domain(&host) {
                Ok(true) => Some(host.clone()),
                _ => store.list_domains().ok().and_then(|d| d.into_iter().next()),
            };
            format!("postmaster@{}", domain.unwrap_or(host))
        }
    }
}

/// Decides a RCPT: `Ok(())` to accept, or the reply to refuse with. Authenticated
/// clients may relay to any domain; nobody else may.
pub fn check_recipient(
    store: &Store,
    path: &ForwardPath,
    authenticated: bool,
) -> Result<(), Reply> {
    let ForwardPath::Mailbox(mailbox) = path else {
        // RFC 5321 §4.5.1: mail to <Postmaster> is always accepted.
        return Ok(());
    };
    let transient = |e: golub_store::Error| {
        warn!(error = %e, "directory lookup failed");
        Reply::new(
            451,
            EnhancedCode(4, 3, 0),
            "temporary failure, try again later",
        )
    };
    let domain = mailbox.domain().as_str();
    if !store.is_local_domain(domain).map_err(transient)? {
        if authenticated {
            return Ok(());
        }
        return Err(Reply::new(
            554,
            EnhancedCode(5, 7, 1),
            format!("<{mailbox}>: relay access denied"),
        ));
    }
    let canonical = mailbox.canonical();
    if store.lookup(&canonical).map_err(transient)?.is_some() {
        return Ok(());
    }
    if canonical.starts_with("postmaster@") {
        return Ok(());
    }
    Err(Reply::new(
        550,
        EnhancedCode(5, 1, 1),
        format!("<{mailbox}>: mailbox unavailable"),
    ))
}

/// Decides whether an authenticated `user` may use `reverse_path` as its sender: its own
/// address, an alias that reaches it, the null path, or anything if exempt.
pub fn check_sender(
    store: &Store,
    policy: &crate::config::Submission,
    user: &golub_store::User,
    reverse_path: &golub_types::ReversePath,
) -> Result<(), Reply> {
    let Some(mailbox) = reverse_path.mailbox() else {
        return Ok(());
    };
    if !policy.enforce_sender {
        return Ok(());
    }
    let user_domain = user.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if policy
        .any_sender
        .iter()
        .any(|e| e.eq_ignore_ascii_case(&user.address) || e.eq_ignore_ascii_case(user_domain))
    {
        return Ok(());
    }
    let sender = mailbox.canonical();
    if sender == user.address {
        return Ok(());
    }
    let refuse = || {
        Reply::new(
            553,
            EnhancedCode(5, 7, 1),
            format!(
                "<{mailbox}>: sender address not owned by user {}",
                user.address
            ),
        )
    };
    // An alias the user receives through is the user's too (e.g. a role address).
    let mut pending = vec![sender];
    let mut seen = std::collections::HashSet::new();
    while let Some(a) = pending.pop() {
        if !seen.insert(a.clone()) || seen.len() > 50 {
            continue;
        }
        match store.lookup(&a) {
            Ok(Some(golub_store::Recipient::User(u))) if u.id == user.id => return Ok(()),
            Ok(Some(golub_store::Recipient::Alias(targets))) => pending.extend(targets),
            Ok(_) => {}
            Err(_) => {
                return Err(Reply::new(
                    451,
                    EnhancedCode(4, 3, 0),
                    "temporary failure, try again later",
                ));
            }
        }
    }
    Err(refuse())
}

/// The VRFY answer for `query` (an address, with or without angle brackets).
pub fn vrfy(store: &Store, query: &str) -> Reply {
    let q = query.trim().trim_start_matches('<').trim_end_matches('>');
    let Ok(mailbox) = golub_types::Mailbox::parse(q, true) else {
        return Reply::new(553, EnhancedCode(5, 1, 3), "give a full address to verify");
    };
    match store.lookup(&mailbox.canonical()) {
        Ok(Some(golub_store::Recipient::User(u))) => {
            let text = if u.name.is_empty() {
                format!("<{}>", u.address)
            } else {
                format!("{} <{}>", u.name, u.address)
            };
            Reply::new(250, EnhancedCode(2, 1, 5), text)
        }
        Ok(Some(golub_store::Recipient::Alias(_))) => Reply::new(
            252,
            EnhancedCode(2, 1, 5),
            format!(
                "<{}> is an alias; mail will be delivered",
                mailbox.canonical()
            ),
        ),
        Ok(None) => Reply::new(550, EnhancedCode(5, 1, 1), "no such user here"),
        Err(_) => Reply::new(
            451,
            EnhancedCode(4, 3, 0),
            "temporary failure, try again later",
        ),
    }
}

/// The EXPN answer: one 250 line per member of a mailing list.
pub fn expn(store: &Store, list: &str) -> Reply {
    let q = list.trim().trim_start_matches('<').trim_end_matches('>');
    let Ok(mailbox) = golub_types::Mailbox::parse(q, true) else {
        return Reply::new(
            550,
            EnhancedCode(5, 1, 1),
            "give a full list address to expand",
        );
    };
    match store.lookup(&mailbox.canonical()) {
        Ok(Some(golub_store::Recipient::Alias(targets))) => {
            let mut r = Reply::new(250, EnhancedCode(2, 1, 5), "");
            r.lines = targets.iter().map(|t| format!("<{t}>")).collect();
            r
        }
        Ok(Some(golub_store::Recipient::User(_))) => Reply::new(
            550,
            EnhancedCode(5, 1, 1),
            "that is a user, not a mailing list",
        ),
        Ok(None) => Reply::new(550, EnhancedCode(5, 1, 1), "no such mailing list here"),
        Err(_) => Reply::new(
            451,
            EnhancedCode(4, 3, 0),
            "temporary failure, try again later",
        ),
    }
}
