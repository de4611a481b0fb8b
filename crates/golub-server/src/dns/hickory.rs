//! The `Resolver` on hickory-resolver: the configured servers, or the system's.

use super::{LookupError, Mx, Resolver};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How the resolver is built.
#[derive(Debug, Clone)]
pub struct ResolverSetup {
    /// The servers to ask (UDP, then TCP on truncation); empty: /etc/resolv.conf.
    pub servers: Vec<SocketAddr>,
    /// How long one query may take.
    pub timeout: Duration,
    /// How many times a query is tried.
    pub attempts: usize,
}

impl From<&crate::config::DnsConfig> for ResolverSetup {
    fn from(c: &crate::config::DnsConfig) -> Self {
        ResolverSetup {
            servers: c.servers.clone(),
            timeout: c.timeout.0,
            ..ResolverSetup::default()
        }
    }
}

impl Default for ResolverSetup {
    fn default() -> Self {
        ResolverSetup {
            servers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

/// A [`Resolver`] asking real DNS servers through hickory-resolver.
#[derive(Clone)]
pub struct HickoryResolver {
    inner: TokioResolver,
}

impl HickoryResolver {
    /// Builds the resolver; without configured servers, from the system's configuration.
    pub fn new(setup: &ResolverSetup) -> Result<HickoryResolver, String> {
        let mut builder = if setup.servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| format!("/etc/resolv.conf: {e}"))?
        } else {
            let servers = setup
                .servers
                .iter()
                .map(|addr| {
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut ns.connections {
                        c.port = addr.port();
                    }
                    ns
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = setup.timeout;
        opts.attempts = setup.attempts.max(1);
        // Mail domains are absolute: no search list.
        opts.ndots = 0;
        let inner = builder.build().map_err(|e| e.to_string())?;
        Ok(HickoryResolver { inner })
    }
}

/// Absolute form, so that no search domain is appended.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn classify(e: NetError) -> LookupError {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(n)) if n.response_code == ResponseCode::NXDomain => {
            LookupError::NoSuchName
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => LookupError::NoRecords,
        other => LookupError::Temporary(other.to_string()),
    }
}

impl Resolver for HickoryResolver {
    async fn mx(&self, domain: &str) -> Result<Vec<Mx>, LookupError> {
        let lookup = self.inner.mx_lookup(fqdn(domain)).await.map_err(classify)?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(Mx {
                    preference: mx.preference,
                    exchange: mx.exchange.to_ascii(),
                }),
                _ => None,
            })
            .collect())
    }

    async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let name = fqdn(host);
        let (v4, v6) = tokio::join!(
            self.inner.ipv4_lookup(name.as_str()),
            self.inner.ipv6_lookup(name.as_str())
        );
        let mut addrs = Vec::new();
        let mut errors = Vec::new();
        for result in [v4, v6] {
            match result {
                Ok(lookup) => addrs.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(e) => errors.push(classify(e)),
            }
        }
        if !addrs.is_empty() {
            return Ok(addrs);
        }
        if errors.contains(&LookupError::NoSuchName) {
            return Err(LookupError::NoSuchName);
        }
        if let Some(t) = errors
            .iter()
            .find(|e| matches!(e, LookupError::Temporary(_)))
        {
            return Err(t.clone());
        }
        Err(LookupError::NoRecords)
    }
}
