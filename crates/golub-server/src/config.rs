//! Configuration: a TOML file whose every key has a safe default, so that an absent file
//! is a working server on 127.0.0.1. Unknown keys are errors (a typo must not silently
//! fall back to a default).

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The name this server greets with and writes into `Received:`.
    pub hostname: String,
    /// Where the database and large bodies live.
    pub data_dir: PathBuf,
    /// Where mail for a local domain's `postmaster` goes when the domain has no such user
    /// or alias.
    pub postmaster: Option<String>,
    pub listen: Listen,
    pub limits: Limits,
    pub smtp: Smtp,
    pub queue: Queue,
    pub store: StoreConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub submission: Submission,
    pub metrics: MetricsConfig,
    pub dns: DnsConfig,
    pub delivery: OutboundConfig,
    /// Domains relayed to a fixed host instead of their MX: Golub accepts their mail from
    /// anyone and passes it on (a gateway or backup MX in front of another server).
    pub routes: std::collections::BTreeMap<String, RouteConfig>,
}

/// How outbound connections use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Never.
    None,
    /// When the peer offers it; its certificate is not checked (RFC 7435).
    Opportunistic,
    /// Only deliver over TLS; a peer without STARTTLS defers.
    Require,
}

/// Outbound delivery to other mail servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// The port an MX is reached on.
    pub remote_port: u16,
    /// `host:port` of a smart host that takes all remote mail instead of the MXes.
    pub relay_host: Option<String>,
    /// User name and password for AUTH at the smart host.
    pub relay_user: Option<String>,
    pub relay_password: Option<String>,
    pub tls: TlsMode,
    /// Most outbound connections at once, all destinations together.
    pub max_connections: usize,
    /// Most connections at once to one destination (a domain, or a route's host).
    pub max_connections_per_domain: usize,
    /// Messages sent over one connection before it is closed and a new one opened.
    pub max_messages_per_connection: usize,
    /// How long a TCP connection to a peer may take.
    pub connect_timeout: HumanDuration,
    /// How long an idle connection is kept for more mail to the same destination.
    pub idle_timeout: HumanDuration,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            remote_port: 25,
            relay_host: None,
            relay_user: None,
            relay_password: None,
            tls: TlsMode::Opportunistic,
            max_connections: 100,
            max_connections_per_domain: 10,
            max_messages_per_connection: 100,
            connect_timeout: HumanDuration::secs(30),
            idle_timeout: HumanDuration::secs(2),
        }
    }
}

/// Where a routed domain's mail goes: `"host:port"`, or a table with the TLS policy too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RouteConfig {
    Host(String),
    Table {
        host: String,
        #[serde(default)]
        tls: Option<TlsMode>,
    },
}

impl RouteConfig {
    pub fn host(&self) -> &str {
        match self {
            RouteConfig::Host(h) | RouteConfig::Table { host: h, .. } => h,
        }
    }

    pub fn tls(&self) -> Option<TlsMode> {
        match self {
            RouteConfig::Host(_) => None,
            RouteConfig::Table { tls, .. } => *tls,
        }
    }
}

/// Splits `host:port`, `host` (port `default_port`), `[v6]:port` or `[v6]`.
pub fn parse_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = || format!("{s:?} is not host:port");
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err(bad()),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
        None => default_port,
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// The DNS servers outbound delivery asks for MX and address records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// `ip:port` of the servers to ask; empty: the system's (/etc/resolv.conf).
    pub servers: Vec<SocketAddr>,
    /// How long one DNS query may take before it counts as a temporary failure.
    pub timeout: HumanDuration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout: HumanDuration::secs(5),
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served (OpenMetrics text); absent: no endpoint.
    pub listen: Option<SocketAddr>,
}

/// The certificate every TLS listener and STARTTLS use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the certificate and its chain. Without cert and key, a self-signed
    /// certificate for `hostname` is made in `data_dir/tls` on first start.
    pub cert: Option<PathBuf>,
    /// PEM file with the private key.
    pub key: Option<PathBuf>,
}

/// Login policy for every protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Allow passwords over connections that are not encrypted (default: refused).
    pub allow_plaintext: bool,
    /// Failed logins (per client IP or per account) before further attempts are blocked.
    pub max_failures: u32,
    /// Seconds a block lasts, and how long failures are remembered.
    pub block_seconds: u64,
    /// Milliseconds the answer to the first failed login is delayed; doubles each time.
    pub failure_delay_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_plaintext: false,
            max_failures: 10,
            block_seconds: 900,
            failure_delay_ms: 500,
        }
    }
}

/// What authenticated users may send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Submission {
    /// MAIL FROM must be the user's own address or an alias that reaches the user.
    pub enforce_sender: bool,
    /// Users (`alice@example.org`) or whole domains (`example.org`) exempt from
    /// `enforce_sender`.
    pub any_sender: Vec<String>,
}

impl Default for Submission {
    fn default() -> Self {
        Submission {
            enforce_sender: true,
            any_sender: Vec::new(),
        }
    }
}

/// Listeners, one key per protocol as IANA names them. An absent key keeps its default;
/// an empty list turns the protocol off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub smtp: Vec<SocketAddr>,
    pub submission: Vec<SocketAddr>,
    pub submissions: Vec<SocketAddr>,
    pub imap: Vec<SocketAddr>,
    pub imaps: Vec<SocketAddr>,
    pub pop3: Vec<SocketAddr>,
    pub pop3s: Vec<SocketAddr>,
}

fn addrs(s: &[&str]) -> Vec<SocketAddr> {
    s.iter().filter_map(|a| a.parse().ok()).collect()
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            smtp: addrs(&["127.0.0.1:2525"]),
            submission: addrs(&["127.0.0.1:2587"]),
            submissions: addrs(&["127.0.0.1:2465"]),
            imap: addrs(&["127.0.0.1:2143"]),
            imaps: addrs(&["127.0.0.1:2993"]),
            pop3: addrs(&["127.0.0.1:2110"]),
            pop3s: addrs(&["127.0.0.1:2995"]),
        }
    }
}

/// Protocol and resource limits (RFC 5321 §4.5.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted, in bytes (advertised as SIZE).
    pub max_message_size: usize,
    /// Recipients per transaction (RFC 5321 §4.5.3.1.8: at least 100).
    pub max_recipients: usize,
    /// Command line length including CRLF.
    pub max_command_line: usize,
    /// Text line length in DATA including CRLF; 0 (the default) is no limit but
    /// `max_message_size`.
    pub max_text_line: usize,
    /// Protocol errors a session may make before it is closed with 421.
    pub max_errors: usize,
    /// Seconds to wait for the next command.
    pub command_timeout: u64,
    /// Seconds to wait for the next block of DATA.
    pub data_timeout: u64,
    /// Connections open at once, all listeners together.
    pub max_connections: usize,
    /// Connections open at once from one client IP address.
    pub max_connections_per_ip: usize,
    /// Client networks exempt from `max_connections_per_ip` (only from that limit), as
    /// Postfix exempts $mynetworks.
    pub trusted_networks: Vec<Network>,
}

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`); a bare address is
/// a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// True when `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network like 192.0.2.0/24"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Network, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_command_line: 512,
            max_text_line: 0,
            max_errors: 10,
            command_timeout: 300,
            data_timeout: 180,
            max_connections: 1000,
            max_connections_per_ip: 50,
            trusted_networks: ["127.0.0.1/32", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
        }
    }
}

/// SMTP service options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// Answer VRFY with the user's name and address (off: 252, as most public servers).
    pub vrfy: bool,
    /// Answer EXPN with a mailing list's members.
    pub expn: bool,
    /// Offer AUTH on the `smtp` listener too (after STARTTLS), so that users may submit
    /// there; relaying without AUTH stays refused.
    pub auth: bool,
    /// Clients that may ask for a queue run with ETRN (RFC 1985); empty: nobody.
    pub etrn_networks: Vec<Network>,
}

impl Smtp {
    /// True when a client at `ip` may use ETRN.
    pub fn etrn_allowed(&self, ip: IpAddr) -> bool {
        self.etrn_networks.iter().any(|n| n.contains(ip))
    }
}

/// The longest a session timer may be set to (one day): longer makes no sense for a
/// connection, and keeps deadline arithmetic far from overflow.
const MAX_TIMEOUT: u64 = 24 * 3600;

/// The longest a queue or block period may be (one year).
const MAX_QUEUE_TIME: u64 = 366 * 24 * 3600;

/// A length of time as people write it in configuration: a number and a unit, `s`,
/// `m`, `h` or `d` ("30s", "5m", "4h", "5d"); a bare number of seconds is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(n: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(n))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<HumanDuration, String> {
        let bad = || format!("{s:?} is not a duration like \"30s\", \"5m\", \"4h\" or \"5d\"");
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let n: u64 = t[..digits].parse().map_err(|_| bad())?;
        let unit = match t[digits..].trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 24 * 3600,
            _ => return Err(bad()),
        };
        n.checked_mul(unit).map(HumanDuration::secs).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(n) => Ok(HumanDuration::secs(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Queue and retry policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    /// Waits between the attempts of a deferred recipient: the first after the first
    /// temporary failure, and so on; the last one repeats.
    pub retry: Vec<HumanDuration>,
    /// How long a message may wait in the queue; then what is still undelivered is
    /// returned to the sender.
    pub bounce_after: HumanDuration,
    /// After how long the sender is told, once, that a message is still waiting ("0":
    /// never).
    pub warn_after: HumanDuration,
    /// How often the queue is scanned for recipients whose retry time has come (new mail
    /// is delivered at once, without waiting for a scan).
    pub scan_interval: HumanDuration,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            // About every 15 minutes at first, then hourly: the classic design's figures.
            retry: vec![
                HumanDuration::secs(300),
                HumanDuration::secs(900),
                HumanDuration::secs(1800),
                HumanDuration::secs(3600),
            ],
            bounce_after: HumanDuration::secs(5 * 24 * 3600),
            warn_after: HumanDuration::secs(4 * 3600),
            scan_interval: HumanDuration::secs(30),
        }
    }
}

/// Storage options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Bodies larger than this many bytes are kept as files rather than in the database.
    pub inline_body_limit: usize,
    /// A cap on the database's size in bytes; 0 means only the disk limits it. When the
    /// cap or the disk is reached, new mail gets 452 4.3.1 and nothing accepted is lost.
    pub max_database_size: u64,
    /// Threads that run the sessions' directory and mailbox reads, each with its own
    /// read-only connection, so that no read waits for the disk on an async worker.
    pub reader_threads: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            inline_body_limit: 1024 * 1024,
            max_database_size: 0,
            reader_threads: 2,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: system_hostname(),
            data_dir: PathBuf::from("golub-data"),
            postmaster: None,
            listen: Listen::default(),
            limits: Limits::default(),
            smtp: Smtp::default(),
            queue: Queue::default(),
            store: StoreConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            submission: Submission::default(),
            metrics: MetricsConfig::default(),
            dns: DnsConfig::default(),
            delivery: OutboundConfig::default(),
            routes: Default::default(),
        }
    }
}

/// The machine's host name, or `localhost` when it cannot be read.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message: message.to_string(),
        };
        if self.hostname.is_empty() || self.hostname.contains(char::is_whitespace) {
            return Err(invalid("hostname", "must be a host name without spaces"));
        }
        let l = &self.limits;
        if l.max_recipients < 1 {
            return Err(invalid("limits.max_recipients", "must be at least 1"));
        }
        if l.max_command_line < 512 {
            return Err(invalid(
                "limits.max_command_line",
                "must be at least 512 (RFC 5321 §4.5.3.1.4)",
            ));
        }
        if l.max_text_line != 0 && l.max_text_line < 1000 {
            return Err(invalid(
                "limits.max_text_line",
                "must be 0 (no limit) or at least 1000 (RFC 5321 §4.5.3.1.6)",
            ));
        }
        if l.max_message_size < 1024 {
            return Err(invalid(
                "limits.max_message_size",
                "must be at least 1024 bytes",
            ));
        }
        if l.max_connections < 1 || l.max_connections_per_ip < 1 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        if !(1..=60).contains(&self.dns.timeout.0.as_secs()) {
            return Err(invalid("dns.timeout", "must be from 1s to 60s"));
        }
        if !(1..=64).contains(&self.store.reader_threads) {
            return Err(invalid("store.reader_threads", "must be from 1 to 64"));
        }
        for (key, value, max) in [
            ("limits.command_timeout", l.command_timeout, MAX_TIMEOUT),
            ("limits.data_timeout", l.data_timeout, MAX_TIMEOUT),
            (
                "queue.scan_interval",
                self.queue.scan_interval.0.as_secs(),
                MAX_TIMEOUT,
            ),
            (
                "queue.bounce_after",
                self.queue.bounce_after.0.as_secs(),
                MAX_QUEUE_TIME,
            ),
            (
                "auth.block_seconds",
                self.auth.block_seconds,
                MAX_QUEUE_TIME,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key,
                    message: format!("must be 1 to {max} seconds"),
                });
            }
        }
        if self.queue.warn_after.0.as_secs() > MAX_QUEUE_TIME {
            return Err(invalid(
                "queue.warn_after",
                "must be at most 366d (\"0\": off)",
            ));
        }
        if self.queue.retry.is_empty()
            || self
                .queue
                .retry
                .iter()
                .any(|d| !(1..=MAX_QUEUE_TIME).contains(&d.0.as_secs()))
        {
            return Err(invalid(
                "queue.retry",
                "must list one or more waits, each from 1s to 366d",
            ));
        }
        if self.auth.failure_delay_ms > 60_000 {
            return Err(invalid(
                "auth.failure_delay_ms",
                "must be at most 60000 milliseconds",
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(invalid("tls", "give both cert and key, or neither"));
        }
        let d = &self.delivery;
        if d.max_connections < 1
            || d.max_connections_per_domain < 1
            || d.max_messages_per_connection < 1
        {
            return Err(invalid(
                "delivery",
                "max_connections, max_connections_per_domain and max_messages_per_connection must be at least 1",
            ));
        }
        if d.remote_port == 0 {
            return Err(invalid("delivery.remote_port", "must be a port number"));
        }
        if !(1..=MAX_TIMEOUT).contains(&d.connect_timeout.0.as_secs())
            || d.idle_timeout.0.as_secs() > MAX_TIMEOUT
        {
            return Err(invalid(
                "delivery",
                "connect_timeout must be 1s to 1d, idle_timeout at most 1d",
            ));
        }
        if let Some(h) = &d.relay_host {
            parse_host_port(h, 25).map_err(|m| invalid("delivery.relay_host", &m))?;
        }
        if d.relay_user.is_some() != d.relay_password.is_some() {
            return Err(invalid(
                "delivery",
                "give both relay_user and relay_password, or neither",
            ));
        }
        for (domain, route) in &self.routes {
            if domain.is_empty() || domain.contains(['@', ' ']) {
                return Err(invalid("routes", "keys must be domain names"));
            }
            parse_host_port(route.host(), 25).map_err(|m| invalid("routes", &m))?;
        }
        if self.auth.max_failures < 1 {
            return Err(invalid("auth.max_failures", "must be at least 1"));
        }
        if let Some(p) = &self.postmaster
            && golub_types::Mailbox::parse(p, true).is_err()
        {
            return Err(invalid(
                "postmaster",
                "must be an address like admin@example.org",
            ));
        }
        Ok(())
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.command_timeout)
    }

    /// POP3's autologout timer: at least 10 minutes (RFC 1939 §3).
    pub fn pop3_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.command_timeout.max(600))
    }

    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.data_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.smtp, addrs(&["127.0.0.1:2525"]));
        assert_eq!(c.limits.max_message_size, 25 * 1024 * 1024);
        assert_eq!(c.limits.max_recipients, 100);
        assert_eq!(c.data_dir, PathBuf::from("golub-data"));
    }

    #[test]
    fn absent_listen_key_keeps_its_default_and_empty_list_turns_it_off() {
        let c = parse("[listen]\nsmtp = []\n").unwrap();
        assert!(c.listen.smtp.is_empty());
        assert_eq!(c.listen.pop3, addrs(&["127.0.0.1:2110"]));
    }

    #[test]
    fn example_file_parses_and_documents_the_defaults() {
        let text = include_str!("../../../golub.example.toml");
        let c = parse(text).unwrap();
        let d = Config::default();
        assert_eq!(c.hostname, "mx.example.org");
        assert_eq!(c.data_dir, d.data_dir);
        assert_eq!(c.listen.smtp, d.listen.smtp);
        assert_eq!(c.limits.max_message_size, d.limits.max_message_size);
        assert_eq!(c.limits.max_recipients, d.limits.max_recipients);
        assert_eq!(c.limits.command_timeout, d.limits.command_timeout);
        assert_eq!(
            c.limits.max_connections_per_ip,
            d.limits.max_connections_per_ip
        );
        assert_eq!(c.queue.retry, d.queue.retry);
        assert_eq!(c.queue.bounce_after, d.queue.bounce_after);
        assert_eq!(c.queue.warn_after, d.queue.warn_after);
        assert_eq!(c.queue.scan_interval, d.queue.scan_interval);
        assert_eq!(c.store.inline_body_limit, d.store.inline_body_limit);
        assert_eq!(c.store.reader_threads, d.store.reader_threads);
        assert_eq!(c.metrics.listen, None);
        assert!(c.dns.servers.is_empty());
        assert_eq!(c.dns.timeout, d.dns.timeout);
    }

    #[test]
    fn metrics_endpoint_is_off_unless_listen_is_set() {
        assert_eq!(parse("").unwrap().metrics.listen, None);
        let c = parse("[metrics]\nlisten = \"127.0.0.1:9187\"\n").unwrap();
        assert_eq!(c.metrics.listen, "127.0.0.1:9187".parse().ok());
        assert!(parse("[metrics]\nport = 9187\n").is_err());
    }

    #[test]
    fn dns_servers_default_to_the_system_resolver() {
        let c = parse("").unwrap();
        assert!(c.dns.servers.is_empty());
        assert_eq!(c.dns.timeout, HumanDuration::secs(5));
        let c = parse("[dns]\nservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\ntimeout = \"2s\"\n")
            .unwrap();
        assert_eq!(c.dns.servers, addrs(&["127.0.0.1:5353", "[::1]:53"]));
        assert_eq!(c.dns.timeout, HumanDuration::secs(2));
        assert!(parse("[dns]\nserver = []\n").is_err());
        assert!(parse("[dns]\nservers = [\"127.0.0.1\"]\n").is_err());
        let e = parse("[dns]\ntimeout = \"0\"\n").unwrap_err().to_string();
        assert!(e.contains("dns.timeout"), "{e}");
    }

    #[test]
    fn durations_are_written_as_people_write_them() {
        let d = |s: &str| s.parse::<HumanDuration>().map(|h| h.0.as_secs());
        assert_eq!(d("2s"), Ok(2));
        assert_eq!(d("5m"), Ok(300));
        assert_eq!(d("4h"), Ok(4 * 3600));
        assert_eq!(d("5d"), Ok(5 * 86400));
        assert_eq!(d("90"), Ok(90));
        assert_eq!(d("0"), Ok(0));
        for bad in ["", "m", "5x", "-5m", "5.5h", "1w", "99999999999999999999d"] {
            assert!(d(bad).is_err(), "{bad}");
        }
        let c = parse(
            "[queue]\nretry = [\"1m\", \"10m\"]\nbounce_after = \"2d\"\nscan_interval = 15\n",
        )
        .unwrap();
        assert_eq!(
            c.queue.retry,
            vec![HumanDuration::secs(60), HumanDuration::secs(600)]
        );
        assert_eq!(c.queue.bounce_after, HumanDuration::secs(2 * 86400));
        assert_eq!(c.queue.warn_after, HumanDuration::secs(4 * 3600));
        assert_eq!(c.queue.scan_interval, HumanDuration::secs(15));
        let c = parse("[queue]\nwarn_after = \"0\"\n").unwrap();
        assert_eq!(c.queue.warn_after, HumanDuration::secs(0));
        let e = parse("[queue]\nretry = []\n").unwrap_err().to_string();
        assert!(e.contains("queue.retry"), "{e}");
        let e = parse("[queue]\nbounce_after = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("soon"), "{e}");
        let e = parse("[queue]\nmax_lifetime = 100\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_lifetime"), "{e}");
    }

    #[test]
    fn networks_parse_and_contain_their_addresses() {
        let n = |s: &str| s.parse::<Network>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(n("192.0.2.0/24").contains(ip("192.0.2.200")));
        assert!(!n("192.0.2.0/24").contains(ip("192.0.3.1")));
        assert!(n("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!n("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(n("0.0.0.0/0").contains(ip("203.0.113.5")));
        assert!(!n("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(n("127.0.0.0/8").contains(ip("::ffff:127.0.0.9")));
        assert!(n("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!n("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(n("::/0").contains(ip("::1")));
        for bad in ["", "192.0.2.0/33", "::/129", "host/8", "192.0.2.0/x"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        let c = parse("[limits]\ntrusted_networks = [\"10.0.0.0/8\"]\n").unwrap();
        assert_eq!(c.limits.trusted_networks, vec![n("10.0.0.0/8")]);
        let d = Config::default().limits.trusted_networks;
        assert_eq!(d, vec![n("127.0.0.1/32"), n("::1/128")]);
        let c = parse("[smtp]\netrn_networks = [\"192.0.2.0/24\"]\n").unwrap();
        assert!(c.smtp.etrn_allowed(ip("192.0.2.7")));
        assert!(!c.smtp.etrn_allowed(ip("127.0.0.1")));
        assert!(!Config::default().smtp.etrn_allowed(ip("127.0.0.1")));
        let e = parse("[limits]\ntrusted_networks = [\"10.0.0.0/99\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("prefix"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = parse("[limits]\nmax_mesage_size = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_mesage_size"), "{e}");
        let e = parse("[limits]\nmax_recipients = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_recipients"), "{e}");
        let e = parse("[listen]\nsmtp = [\"nonsense\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("test.toml"), "{e}");
        for key in ["command_timeout", "data_timeout"] {
            let e = parse(&format!("[limits]\n{key} = 18446744073709551615\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("limits.{key}")), "{e}");
        }
        let e = parse("[queue]\nscan_interval = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("queue.scan_interval"), "{e}");
        let e = parse("[store]\nreader_threads = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("store.reader_threads"), "{e}");
        let e = parse("hostname = 12\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
