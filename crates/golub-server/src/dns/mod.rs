//! Where outbound mail goes: the `Resolver` trait (MX, A/AAAA lookups), its hickory-backed
//! implementation, and `route`, which turns a recipient domain or address literal into
//! the hosts to try, in order, as RFC 5321 §5.1 and RFC 7505 (null MX) say.
//!
//! The ordering and selection are the pure function [`order_mx`] over looked-up records;
//! [`route`] only adds the lookups.

mod hickory;

pub use hickory::{HickoryResolver, ResolverSetup};

use golub_types::{EnhancedCode, Reply};
use std::future::Future;
use std::net::IpAddr;

/// Why a lookup found nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// NXDOMAIN: the name does not exist.
    #[error("no such domain")]
    NoSuchName,
    /// The name exists but has no records of the asked type.
    #[error("no records")]
    NoRecords,
    /// SERVFAIL, a timeout, an unreachable server: try again later.
    #[error("temporary DNS failure: {0}")]
    Temporary(String),
}

/// One MX record. `exchange` is lower case without the trailing dot; the null MX's
/// exchange (`.`) is the empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    pub exchange: String,
}

/// The DNS questions outbound routing asks.
pub trait Resolver: Send + Sync {
    /// The MX records of `domain`.
    fn mx(&self, domain: &str) -> impl Future<Output = Result<Vec<Mx>, LookupError>> + Send;
    /// The A and AAAA addresses of `host`.
    fn ips(&self, host: &str) -> impl Future<Output = Result<Vec<IpAddr>, LookupError>> + Send;
}

/// One host to try: its name (the MX host, for TLS/SNI; the address for a literal) and
/// its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub addrs: Vec<IpAddr>,
    pub port: u16,
}

/// Why a destination has no route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The domain publishes a null MX (RFC 7505): it accepts no mail.
    #[error("{0} does not accept mail (null MX)")]
    NullMx(String),
    /// NXDOMAIN, or not a valid domain or address literal.
    #[error("no such domain: {0}")]
    NoSuchDomain(String),
    /// Every MX host (or the domain itself) has no address.
    #[error("no address for the mail hosts of {0}")]
    NoAddress(String),
    /// An MX at or before our own preference points back at this host.
    #[error("mail for {0} loops back to this host")]
    Loop(String),
    /// SERVFAIL, a timeout: try again later.
    #[error("temporary DNS failure for {domain}: {reason}")]
    Temporary { domain: String, reason: String },
}

impl RouteError {
    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, RouteError::Temporary { .. })
    }

    /// The reply a bounce or delay report carries.
    pub fn reply(&self) -> Reply {
        let (code, enhanced) = match self {
            RouteError::NullMx(_) => (556, EnhancedCode(5, 1, 10)),
            RouteError::NoSuchDomain(_) => (550, EnhancedCode(5, 1, 2)),
            RouteError::NoAddress(_) => (550, EnhancedCode(5, 4, 4)),
            RouteError::Loop(_) => (550, EnhancedCode(5, 4, 6)),
            RouteError::Temporary { .. } => (451, EnhancedCode(4, 4, 3)),
        };
        Reply::new(code, enhanced, self.to_string())
    }
}

/// What counts as this host when an MX is checked for a loop.
#[derive(Debug, Clone, Default)]
pub struct Local {
    /// Our host names (the configured `hostname`), any case, with or without a final dot.
    pub hostnames: Vec<String>,
    /// Addresses we listen on; unspecified addresses (0.0.0.0, ::) are ignored.
    pub addrs: Vec<IpAddr>,
}

impl Local {
    /// This host as the configuration describes it: the `hostname` and the addresses the
    /// SMTP listeners are bound to (a wildcard listener adds none).
    pub fn from_config(config: &crate::config::Config) -> Local {
        Local {
            hostnames: vec![config.hostname.clone()],
            addrs: config
                .listen
                .smtp
                .iter()
                .map(|a| a.ip())
                .filter(|ip| !ip.is_unspecified())
                .collect(),
        }
    }

    fn is_name(&self, host: &str) -> bool {
        self.hostnames.iter().any(|h| normalize(h) == host)
    }

    fn has_addr(&self, addrs: &[IpAddr]) -> bool {
        self.addrs
            .iter()
            .any(|a| !a.is_unspecified() && addrs.contains(a))
    }
}

/// Lower case, without the final dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// RFC 5321 §5.1 over looked-up MX records: most preferred first, equal preferences in
/// random order (`random(n)` returns a number below `n`); a lone null MX is an error; an
/// MX naming this host drops itself and every MX not more preferred (and it is a loop
/// error if nothing is left).
pub fn order_mx(
    domain: &str,
    mut records: Vec<Mx>,
    local: &Local,
    random: &mut dyn FnMut(usize) -> usize,
) -> Result<Vec<Mx>, RouteError> {
    for r in &mut records {
        r.exchange = normalize(&r.exchange);
    }
    if records.len() == 1 && records[0].exchange.is_empty() {
        return Err(RouteError::NullMx(domain.to_owned()));
    }
    // A null MX among others is a misconfiguration; the others are still usable.
    records.retain(|r| !r.exchange.is_empty());
    if records.is_empty() {
        return Err(RouteError::NullMx(domain.to_owned()));
    }
    if let Some(own) = records
        .iter()
        .filter(|r| local.is_name(&r.exchange))
        .map(|r| r.preference)
        .min()
    {
        records.retain(|r| r.preference < own);
        if records.is_empty() {
            return Err(RouteError::Loop(domain.to_owned()));
        }
    }
    records.sort_by_key(|r| r.preference);
    let mut start = 0;
    while start < records.len() {
        let pref = records[start].preference;
        let end = records[start..]
            .iter()
            .position(|r| r.preference != pref)
            .map_or(records.len(), |n| start + n);
        // Fisher–Yates over the group of equal preference.
        for i in (start + 1..end).rev() {
            let j = start + random(i - start + 1).min(i - start);
            records.swap(i, j);
        }
        start = end;
    }
    Ok(records)
}

/// What `route` was asked for: a domain or an address literal.
enum Destination {
    Domain(String),
    Address(IpAddr),
}

fn destination(dest: &str) -> Option<Destination> {
    if let Some(inner) = dest.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ip = match inner.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => IpAddr::V6(inner[5..].parse().ok()?),
            _ => IpAddr::V4(inner.parse().ok()?),
        };
        return Some(Destination::Address(ip));
    }
    let mut name = normalize(dest);
    if !name.is_ascii() {
        // An internationalized domain (RFC 6531 mail) is looked up by its A-labels.
        name = idna::domain_to_ascii(&name).ok()?;
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(Destination::Domain(name))
}

/// The hosts to try for `dest` (a domain, or an address literal `[192.0.2.1]` /
/// `[IPv6:2001:db8::1]`), in order, each on `port`. A literal goes to its address without
/// DNS. An MX whose addresses cannot be found is skipped.
pub async fn route<R: Resolver>(
    resolver: &R,
    dest: &str,
    port: u16,
    local: &Local,
    random: &mut (dyn FnMut(usize) -> usize + Send),
) -> Result<Vec<Target>, RouteError> {
    let domain = match destination(dest) {
        None => return Err(RouteError::NoSuchDomain(dest.to_owned())),
        Some(Destination::Address(ip)) => {
            if local.has_addr(&[ip]) {
                return Err(RouteError::Loop(dest.to_owned()));
            }
            return Ok(vec![Target {
                host: ip.to_string(),
                addrs: vec![ip],
                port,
            }]);
        }
        Some(Destination::Domain(d)) => d,
    };
    let temporary = |reason: String| RouteError::Temporary {
        domain: domain.clone(),
        reason,
    };
    let records = match resolver.mx(&domain).await {
        Ok(records) if !records.is_empty() => records,
        Ok(_) | Err(LookupError::NoRecords) => {
            // No MX: the domain itself is the implicit MX.
            return match resolver.ips(&domain).await {
                Ok(addrs) if !addrs.is_empty() => {
                    if local.is_name(&domain) || local.has_addr(&addrs) {
                        return Err(RouteError::Loop(domain));
                    }
                    Ok(vec![Target {
                        host: domain,
                        addrs,
                        port,
                    }])
                }
                Ok(_) | Err(LookupError::NoRecords) => Err(RouteError::NoAddress(domain)),
                Err(LookupError::NoSuchName) => Err(RouteError::NoSuchDomain(domain)),
                Err(LookupError::Temporary(r)) => Err(temporary(r)),
            };
        }
        Err(LookupError::NoSuchName) => return Err(RouteError::NoSuchDomain(domain)),
        Err(LookupError::Temporary(r)) => return Err(temporary(r)),
    };
    let ordered = order_mx(&domain, records, local, random)?;
    let mut targets: Vec<(u16, Target)> = Vec::new();
    let mut failure = None;
    for mx in ordered {
        match resolver.ips(&mx.exchange).await {
            Ok(addrs) if !addrs.is_empty() => {
                if local.has_addr(&addrs) {
                    // This MX is us: it and everything not more preferred are dropped.
                    targets.retain(|(p, _)| *p < mx.preference);
                    if targets.is_empty() {
                        return Err(RouteError::Loop(domain));
                    }
                    break;
                }
                targets.push((
                    mx.preference,
                    Target {
                        host: mx.exchange,
                        addrs,
                        port,
                    },
                ));
            }
            Ok(_) | Err(LookupError::NoRecords) | Err(LookupError::NoSuchName) => {}
            Err(LookupError::Temporary(r)) => failure = Some(r),
        }
    }
    if targets.is_empty() {
        return Err(match failure {
            Some(r) => temporary(r),
            None => RouteError::NoAddress(domain),
        });
    }
    Ok(targets.into_iter().map(|(_, t)| t).collect())
}

/// A random source for [`route`] and [`order_mx`] from the standard library's randomly
/// keyed hasher (no cryptographic quality needed to spread load over equal MXes).
pub fn std_random() -> impl FnMut(usize) -> usize + Send {
    use std::hash::{BuildHasher, Hasher};
    let mut state = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        | 1;
    move |n| {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if n == 0 {
            0
        } else {
            (state % n as u64) as usize
        }
    }
}

#[cfg(test)]
mod tests;
