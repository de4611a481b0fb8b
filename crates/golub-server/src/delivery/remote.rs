//! Outbound delivery: SMTP to the recipient domain's MX, to a route's host, or to the
//! smart host.
//!
//! Recipients are grouped by destination (a domain, or the host a route or the smart host
//! names). Each destination has a queue of jobs (one message, its recipients there) and at
//! most `max_connections_per_domain` connections, all destinations together at most
//! `max_connections`. A connection takes job after job from its destination's queue, up
//! to `max_messages_per_connection`, and stays open `idle_timeout` for more before QUIT.
//! A destination that cannot be reached at all is suspended for the next retry wait: the
//! jobs queued for it, and those that come meanwhile, are deferred at once instead of each
//! trying again.
//!
//! The SMTP conversation is [`golub_smtp::client::ClientSession`]; this module does the
//! I/O, the TLS handshake, and streams each body from the store in pieces.

use super::tls;
use crate::dns::{self, HickoryResolver, Local, Resolver, RouteError, Target};
use crate::queue::RetryPolicy;
use golub_smtp::client::{
    ClientConfig, ClientEvent, ClientSession, Credentials, Outcome, TlsPolicy,
};
use golub_store::{BlobSource, QueuedMessage, Store};
use golub_types::dsn::{self as dsn, MessageDsn, Orcpt, RcptDsn, Ret};
use golub_types::{EnhancedCode, Envelope, ForwardPath, Reply, ReversePath};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{Notify, Semaphore, watch};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::{debug, info};

/// Most recipients in one transaction; more go in further transactions (RFC 5321
/// §4.5.3.1.8: servers must take at least 100).
const MAX_RCPTS_PER_TRANSACTION: usize = 100;
/// Most addresses tried for one destination in one attempt, MXes together (as Postfix's
/// smtp_mx_address_limit).
const MAX_ADDRESSES_TRIED: usize = 5;
/// Longest time the DNS lookups of one destination may take together.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(120);
/// Size of the pieces a body file is read and sent in.
const BODY_PIECE: usize = 64 * 1024;

/// A fixed next hop: a route's host or the smart host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    /// The route's own TLS policy; `None`: the global one.
    pub tls: Option<TlsPolicy>,
    /// User name and password for AUTH there (the smart host's).
    pub login: Option<(String, String)>,
}

/// What outbound delivery needs to know.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub client: ClientConfig,
    pub remote_port: u16,
    /// All remote mail goes here when set.
    pub relay: Option<Relay>,
    /// Domains whose mail goes to a fixed host (lower case).
    pub routes: HashMap<String, Relay>,
    pub max_connections: usize,
    pub max_per_destination: usize,
    pub max_messages_per_connection: usize,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long an unreachable destination is suspended, by how often it failed.
    pub retry: RetryPolicy,
    /// This host, for MX loop checks.
    pub local: Local,
}

/// The outcome of one recipient of a job.
#[derive(Debug, Clone)]
pub struct RcptResult {
    pub idx: u32,
    pub address: String,
    pub outcome: Outcome,
    /// The server that gave the reply, as `host[address]:port`; none when the reply was
    /// made here (no route, no connection).
    pub remote: Option<String>,
    /// The server offers DSN and was given the recipient's requests: it reports success
    /// itself (RFC 3461 §5.2).
    pub dsn_passed: bool,
}

/// Called once per submitted message with the outcome of every recipient given, or
/// `None` when delivery stopped (shutdown) before all were done: nothing is recorded then
/// and the message is tried again after a restart.
pub type Done = Box<dyn FnOnce(Option<Vec<RcptResult>>) + Send>;

/// Recipients of one message bound for one destination: its key, next hop, recipients.
type Group = (String, Hop, Vec<(u32, String)>);

/// The outbound side: takes messages and delivers them over SMTP.
#[derive(Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

struct Inner {
    settings: OutboundSettings,
    store: Store,
    resolver: HickoryResolver,
    tls: TlsConnector,
    runtime: Handle,
    global: Arc<Semaphore>,
    destinations: Mutex<HashMap<String, Destination>>,
    stop: watch::Sender<bool>,
}

/// Where a destination's mail goes.
#[derive(Debug, Clone)]
enum Hop {
    /// The MXes of this domain (or an address literal).
    Mx(String),
    Relay(Relay),
}

struct Destination {
    hop: Hop,
    jobs: VecDeque<Job>,
    /// Workers running for it (each with or working towards one connection).
    workers: usize,
    /// Workers waiting for a job on an open connection.
    idle: usize,
    wake: Arc<Notify>,
    /// Until when it is not tried, and why.
    suspended: Option<(Instant, Reply)>,
    /// Connection attempts that failed in a row.
    failures: u32,
}

/// One message's recipients at one destination.
struct Job {
    msg: Arc<QueuedMessage>,
    rcpts: Vec<(u32, String)>,
    tracker: Arc<Tracker>,
    /// Already tried once on a kept connection that turned out to be gone.
    retried: bool,
}

/// Gathers the jobs of one message and calls its `Done` when the last is finished.
struct Tracker {
    state: Mutex<TrackerState>,
}

struct TrackerState {
    remaining: usize,
    results: Vec<RcptResult>,
    abandoned: bool,
    done: Option<Done>,
}

impl Tracker {
    fn finish(&self, results: Option<Vec<RcptResult>>) {
        let done = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match results {
                Some(r) => st.results.extend(r),
                None => st.abandoned = true,
            }
            st.remaining -= 1;
            if st.remaining > 0 {
                return;
            }
            let results = std::mem::take(&mut st.results);
            st.done
                .take()
                .map(|d| (d, (!st.abandoned).then_some(results)))
        };
        if let Some((done, results)) = done {
            done(results);
        }
    }
}

impl Job {
    /// Every recipient of the job gets `outcome`.
    fn finish_all(self, outcome: Outcome, remote: Option<String>) {
        let results = all(&self, outcome, remote);
        self.tracker.finish(Some(results));
    }

    fn abandon(self) {
        self.tracker.finish(None);
    }
}

impl Outbound {
    /// Outbound delivery on the current tokio runtime.
    pub fn new(settings: OutboundSettings, store: Store, resolver: HickoryResolver) -> Outbound {
        let (stop, _) = watch::channel(false);
        Outbound {
            inner: Arc::new(Inner {
                global: Arc::new(Semaphore::new(settings.max_connections)),
                settings,
                store,
                resolver,
                tls: tls::connector(),
                runtime: Handle::current(),
                destinations: Mutex::new(HashMap::new()),
                stop,
            }),
        }
    }

    /// True for a domain that has a route of its own.
    pub fn is_routed(&self, domain: &str) -> bool {
        self.inner.settings.routes.contains_key(domain)
    }

    /// Delivers `rcpts` (index in the entry, address) of `msg`; `done` gets the outcomes.
    /// Callable from any thread.
    pub fn submit(&self, msg: Arc<QueuedMessage>, rcpts: Vec<(u32, String)>, done: Done) {
        let mut groups: Vec<Group> = Vec::new();
        for (idx, address) in rcpts {
            let (key, hop) = self.inner.destination(&address);
            match groups
                .iter_mut()
                .find(|(k, _, g)| *k == key && g.len() < MAX_RCPTS_PER_TRANSACTION)
            {
                Some((_, _, g)) => g.push((idx, address)),
                None => groups.push((key, hop, vec![(idx, address)])),
            }
        }
        if groups.is_empty() {
            done(Some(Vec::new()));
            return;
        }
        let tracker = Arc::new(Tracker {
            state: Mutex::new(TrackerState {
                remaining: groups.len(),
                results: Vec::new(),
                abandoned: false,
                done: Some(done),
            }),
        });
        for (key, hop, rcpts) in groups {
            let job = Job {
                msg: msg.clone(),
                rcpts,
                tracker: tracker.clone(),
                retried: false,
            };
            self.inner.enqueue(key, hop, job);
        }
    }

    /// Forgets every suspension, so that a flush tries each destination again.
    pub fn resume_all(&self) {
        let mut dests = self.inner.lock();
        for d in dests.values_mut() {
            d.suspended = None;
        }
    }

    /// Stops: queued jobs are abandoned, connections close where they stand.
    pub fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let jobs: Vec<Job> = {
            let mut dests = self.inner.lock();
            dests.values_mut().flat_map(|d| d.jobs.drain(..)).collect()
        };
        for j in jobs {
            j.abandon();
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Destination>> {
        self.destinations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The destination of `address`: its key and next hop.
    /// A domain's own route comes first, then the smart host, then its MX (as Postfix's
    /// transport_maps come before relayhost).
    fn destination(&self, address: &str) -> (String, Hop) {
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        if let Some(r) = self
            .settings
            .routes
            .get(&domain)
            .or(self.settings.relay.as_ref())
        {
            return (format!("[{}]:{}", r.host, r.port), Hop::Relay(r.clone()));
        }
        (domain.clone(), Hop::Mx(domain))
    }

    fn enqueue(self: &Arc<Self>, key: String, hop: Hop, job: Job) {
        if *self.stop.borrow() {
            job.abandon();
            return;
        }
        let mut dests = self.lock();
        let d = dests.entry(key.clone()).or_insert_with(|| Destination {
            hop,
            jobs: VecDeque::new(),
            workers: 0,
            idle: 0,
            wake: Arc::new(Notify::new()),
            suspended: None,
            failures: 0,
        });
        if let Some((until, reply)) = &d.suspended {
            if Instant::now() < *until {
                let reply = suspended_reply(reply);
                drop(dests);
                job.finish_all(Outcome::Temporary(reply), None);
                return;
            }
            d.suspended = None;
        }
        d.jobs.push_back(job);
        if d.idle > 0 {
            d.wake.notify_one();
        }
        if d.jobs.len() > d.idle && d.workers < self.settings.max_per_destination {
            d.workers += 1;
            let hop = d.hop.clone();
            let inner = self.clone();
            self.runtime
                .spawn(async move { inner.work(key, hop).await });
        }
    }

    /// One worker: a connection to the destination, job after job.
    async fn work(self: Arc<Self>, key: String, hop: Hop) {
        let mut stop = self.stop.subscribe();
        let Ok(_permit) = self.global.clone().acquire_owned().await else {
            return;
        };
        let mut conn: Option<Connection> = None;
        let mut sent = 0usize;
        let mut next = None;
        loop {
            let job = match next.take() {
                Some(j) => j,
                None => match self.next_job(&key, conn.is_some(), &mut stop).await {
                    Some(j) => j,
                    None => break,
                },
            };
            if conn.is_none() {
                let connected = tokio::select! {
                    c = self.connect(&hop) => Some(c),
                    _ = stop.wait_for(|s| *s) => None,
                };
                match connected {
                    None => {
                        job.abandon();
                        continue;
                    }
                    Some(Ok(c)) => {
                        if let Some(d) = self.lock().get_mut(&key) {
                            d.failures = 0;
                        }
                        conn = Some(c);
                        sent = 0;
                    }
                    Some(Err(ConnectError::Permanent(reply))) => {
                        job.finish_all(Outcome::Permanent(reply), None);
                        continue;
                    }
                    Some(Err(ConnectError::Temporary(reply, remote))) => {
                        let rest = self.suspend(&key, &reply);
                        job.finish_all(Outcome::Temporary(reply.clone()), remote);
                        let later = suspended_reply(&reply);
                        for j in rest {
                            j.finish_all(Outcome::Temporary(later.clone()), None);
                        }
                        return;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let reused = sent > 0;
            let delivered = tokio::select! {
                results = c.deliver(&self, &job) => Some(results),
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(results) = delivered else {
                job.abandon();
                continue;
            };
            sent += 1;
            let closed = c.session.is_closed();
            if (closed || sent >= self.settings.max_messages_per_connection)
                && let Some(mut c) = conn.take()
            {
                c.quit().await;
            }
            // A kept connection the peer dropped while it was idle fails the next message
            // at once: that message gets one more try on a new connection.
            if reused
                && closed
                && !job.retried
                && results
                    .iter()
                    .all(|r| matches!(r.outcome, Outcome::Temporary(_)))
            {
                debug!(destination = %key, "kept connection lost; trying a new one");
                next = Some(Job {
                    retried: true,
                    ..job
                });
                continue;
            }
            job.tracker.finish(Some(results));
        }
        if let Some(mut c) = conn {
            c.quit().await;
        }
    }

    /// The next job for a worker; `None` when there is none (after waiting up to the
    /// idle time on an open connection), and the worker is counted out.
    async fn next_job(
        &self,
        key: &str,
        connected: bool,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Job> {
        let deadline = tokio::time::Instant::now() + self.settings.idle_timeout;
        loop {
            let wake = {
                let mut dests = self.lock();
                let d = dests.get_mut(key)?;
                if !*stop.borrow()
                    && let Some(j) = d.jobs.pop_front()
                {
                    return Some(j);
                }
                if !connected || *stop.borrow() || tokio::time::Instant::now() >= deadline {
                    d.workers -= 1;
                    if d.workers == 0 && d.jobs.is_empty() && d.suspended.is_none() {
                        dests.remove(key);
                    }
                    return None;
                }
                d.idle += 1;
                d.wake.clone()
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = stop.changed() => {}
            }
            if let Some(d) = self.lock().get_mut(key) {
                d.idle -= 1;
            }
        }
    }

    /// The destination could not be reached: it is suspended for the next retry wait;
    /// returns the jobs queued for it, and counts the calling worker out.
    fn suspend(&self, key: &str, reply: &Reply) -> Vec<Job> {
        let mut dests = self.lock();
        let Some(d) = dests.get_mut(key) else {
            return Vec::new();
        };
        d.failures += 1;
        let wait = self.settings.retry.wait(d.failures - 1);
        d.suspended = Some((Instant::now() + wait, reply.clone()));
        d.workers -= 1;
        info!(destination = %key, reply = %reply_text(reply), suspended_s = wait.as_secs(), "destination unreachable; suspended");
        d.jobs.drain(..).collect()
    }

    /// Opens a connection to the first host of `hop` that answers and gets ready.
    async fn connect(&self, hop: &Hop) -> Result<Connection, ConnectError> {
        let (targets, policy, login) = match hop {
            Hop::Relay(r) => (
                self.relay_targets(r).await?,
                r.tls.unwrap_or(self.settings.client.tls),
                r.login.clone(),
            ),
            Hop::Mx(domain) => {
                let mut random = dns::std_random();
                let lookup = dns::route(
                    &self.resolver,
                    domain,
                    self.settings.remote_port,
                    &self.settings.local,
                    &mut random,
                );
                // Each query has its timeout; a domain with many MXes gets a cap too.
                let targets = tokio::time::timeout(ROUTE_TIMEOUT, lookup)
                    .await
                    .map_err(|_| {
                        ConnectError::Temporary(
                            Reply::new(
                                451,
                                EnhancedCode(4, 4, 3),
                                format!("DNS lookups for {domain} took too long"),
                            ),
                            None,
                        )
                    })?
                    .map_err(|e| route_error(&e))?;
                (targets, self.settings.client.tls, None)
            }
        };
        let mut last = None;
        let mut addrs: Vec<(&Target, IpAddr)> = Vec::new();
        for t in &targets {
            for a in &t.addrs {
                addrs.push((t, *a));
            }
        }
        addrs.truncate(MAX_ADDRESSES_TRIED);
        for (target, addr) in addrs {
            let peer = SocketAddr::new(addr, target.port);
            let remote = format!("{}[{}]:{}", target.host, addr, target.port);
            match self.open(target, peer, policy, login.as_ref()).await {
                Ok(c) => return Ok(c),
                Err(Failure::Tls(reply)) if policy == TlsPolicy::Opportunistic => {
                    // A peer whose TLS is broken still gets the mail, in plaintext, as
                    // Postfix does at its "may" level.
                    debug!(remote = %remote, reply = %reply_text(&reply), "TLS failed; plaintext");
                    match self
                        .open(target, peer, TlsPolicy::Off, login.as_ref())
                        .await
                    {
                        Ok(c) => return Ok(c),
                        Err(Failure::Tls(r) | Failure::Other(r)) => last = Some((r, remote)),
                    }
                }
                Err(Failure::Tls(r) | Failure::Other(r)) => last = Some((r, remote)),
            }
        }
        let (reply, remote) = last.unwrap_or_else(|| {
            (
                Reply::new(451, EnhancedCode(4, 4, 1), "no address to connect to"),
                String::new(),
            )
        });
        Err(ConnectError::Temporary(
            reply,
            Some(remote).filter(|r| !r.is_empty()),
        ))
    }

    /// The addresses of a fixed next hop (its A/AAAA records, no MX lookup).
    async fn relay_targets(&self, r: &Relay) -> Result<Vec<Target>, ConnectError> {
        let addrs = match r.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self.resolver.ips(&r.host).await.map_err(|e| {
                ConnectError::Temporary(
                    Reply::new(
                        451,
                        EnhancedCode(4, 4, 3),
                        format!("cannot resolve {}: {e}", r.host),
                    ),
                    None,
                )
            })?,
        };
        Ok(vec![Target {
            host: r.host.clone(),
            addrs,
            port: r.port,
        }])
    }

    /// Connects to one address and runs the opening of the session.
    async fn open(
        &self,
        target: &Target,
        peer: SocketAddr,
        policy: TlsPolicy,
        login: Option<&(String, String)>,
    ) -> Result<Connection, Failure> {
        let remote = format!("{}[{}]:{}", target.host, peer.ip(), peer.port());
        let tcp =
            match tokio::time::timeout(self.settings.connect_timeout, TcpStream::connect(peer))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return Err(Failure::Other(Reply::new(
                        451,
                        EnhancedCode(4, 4, 1),
                        format!("connect to {remote}: {e}"),
                    )));
                }
                Err(_) => {
                    return Err(Failure::Other(Reply::new(
                        451,
                        EnhancedCode(4, 4, 1),
                        format!("connect to {remote}: timed out"),
                    )));
                }
            };
        let _ = tcp.set_nodelay(true);
        let config = ClientConfig {
            tls: policy,
            // The password goes only over TLS, or to a relay on this machine.
            auth: login.map(|(user, password)| Credentials {
                user: user.clone(),
                password: password.clone(),
                allow_plaintext: peer.ip().is_loopback(),
            }),
            ..self.settings.client.clone()
        };
        let mut c = Connection {
            session: ClientSession::new(config, Instant::now()),
            stream: Stream::Plain(tcp),
            buf: vec![0; 16 * 1024],
            out: Vec::new(),
            remote,
            host: target.host.clone(),
            ip: peer.ip(),
        };
        c.opening(&self.tls).await?;
        debug!(remote = %c.remote, tls = c.session.is_tls(), "connected");
        Ok(c)
    }
}

/// Why no connection could be had.
enum ConnectError {
    /// Deliver to nobody (a null MX, no such domain, a loop): bounce.
    Permanent(Reply),
    /// Try again later; the reply and the host that gave it.
    Temporary(Reply, Option<String>),
}

/// Why one connection failed.
enum Failure {
    /// The TLS handshake failed (after the peer said 220 to STARTTLS).
    Tls(Reply),
    Other(Reply),
}

fn route_error(e: &RouteError) -> ConnectError {
    if e.is_permanent() {
        ConnectError::Permanent(e.reply())
    } else {
        ConnectError::Temporary(e.reply(), None)
    }
}

/// The reply for mail to a suspended destination.
fn suspended_reply(reason: &Reply) -> Reply {
    let code = if reason.is_transient() {
        reason.code
    } else {
        451
    };
    Reply {
        code,
        enhanced: reason.enhanced.or(Some(EnhancedCode(4, 4, 1))),
        lines: vec![format!(
            "delivery temporarily suspended: {}",
            reply_text(reason)
        )],
    }
}

/// A reply's text on one line.
pub fn reply_text(reply: &Reply) -> String {
    reply.lines.join(" ")
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Gone => Ok(0),
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(data).await,
            Stream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Gone => Ok(()),
        };
    }
}

/// One SMTP connection to a peer.
struct Connection {
    session: ClientSession,
    stream: Stream,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// `host[address]:port`, for logs and reports.
    remote: String,
    host: String,
    ip: IpAddr,
}

impl Connection {
    /// Writes out what the session has produced; a write error closes the session.
    async fn flush(&mut self) {
        self.session.poll_output(&mut self.out);
        if self.out.is_empty() {
            return;
        }
        let r = self.stream.write_all(&self.out).await;
        self.out.clear();
        if r.is_err() {
            self.session.handle_close(Instant::now());
        }
    }

    /// Writes out what is pending, then reads once (or times out) and hands the result to
    /// the session.
    async fn read(&mut self) {
        self.flush().await;
        if self.session.is_closed() {
            return;
        }
        let read = match self.session.poll_timeout() {
            Some(deadline) => {
                let at = tokio::time::Instant::from_std(deadline);
                match tokio::time::timeout_at(at, self.stream.read(&mut self.buf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        self.session.handle_timeout(Instant::now());
                        return;
                    }
                }
            }
            None => self.stream.read(&mut self.buf).await,
        };
        match read {
            Ok(0) | Err(_) => self.session.handle_close(Instant::now()),
            Ok(n) => self.session.handle_input(&self.buf[..n], Instant::now()),
        }
    }

    /// Greeting, EHLO/HELO and STARTTLS: until the session is ready for mail.
    async fn opening(&mut self, tls: &TlsConnector) -> Result<(), Failure> {
        loop {
            self.flush().await;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::StartTlsRequested => self.handshake(tls).await?,
                    ClientEvent::Closed { error } => {
                        self.flush().await;
                        self.stream.shutdown().await;
                        return Err(Failure::Other(error.unwrap_or_else(|| {
                            Reply::new(451, EnhancedCode(4, 4, 2), "connection closed")
                        })));
                    }
                    _ => {}
                }
            }
            if self.session.is_ready() {
                return Ok(());
            }
            self.read().await;
        }
    }

    async fn handshake(&mut self, tls: &TlsConnector) -> Result<(), Failure> {
        self.flush().await;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(Failure::Other(Reply::new(
                451,
                EnhancedCode(4, 7, 0),
                "STARTTLS on a connection that is not plaintext",
            )));
        };
        let name = tls::server_name(&self.host, self.ip);
        let timeout = Duration::from_secs(60);
        match tokio::time::timeout(timeout, tls.connect(name, tcp)).await {
            Ok(Ok(s)) => {
                self.stream = Stream::Tls(Box::new(s));
                self.session.tls_established(Instant::now());
                Ok(())
            }
            Ok(Err(e)) => Err(Failure::Tls(Reply::new(
                451,
                EnhancedCode(4, 7, 5),
                format!("TLS handshake with {} failed: {e}", self.remote),
            ))),
            Err(_) => Err(Failure::Tls(Reply::new(
                451,
                EnhancedCode(4, 7, 5),
                format!("TLS handshake with {} timed out", self.remote),
            ))),
        }
    }

    /// Sends one job's message to its recipients.
    async fn deliver(&mut self, inner: &Inner, job: &Job) -> Vec<RcptResult> {
        let msg = &job.msg;
        let remote = Some(self.remote.clone());
        let mut results = Vec::new();
        let reverse_path = match ReversePath::parse(&format!("<{}>", msg.reverse_path), true) {
            Ok(p) => p,
            Err(e) => {
                let r = Reply::new(
                    550,
                    EnhancedCode(5, 1, 7),
                    format!("bad sender address: {e}"),
                );
                return all(job, Outcome::Permanent(r), None);
            }
        };
        let mut paths = Vec::new();
        let mut rcpt_dsn = Vec::new();
        let mut sent = Vec::new();
        for (idx, address) in &job.rcpts {
            match golub_types::Mailbox::parse(address, true) {
                Ok(m) => {
                    paths.push(ForwardPath::Mailbox(m));
                    rcpt_dsn.push(rcpt_dsn_of(msg, *idx));
                    sent.push((*idx, address.clone()));
                }
                Err(e) => results.push(RcptResult {
                    idx: *idx,
                    address: address.clone(),
                    outcome: Outcome::Permanent(Reply::new(
                        550,
                        EnhancedCode(5, 1, 3),
                        format!("bad recipient address: {e}"),
                    )),
                    remote: None,
                    dsn_passed: false,
                }),
            }
        }
        if paths.is_empty() {
            return results;
        }
        let envelope = Envelope {
            reverse_path,
            forward_paths: paths,
            smtputf8: msg.smtputf8,
            // Stored content may be 8-bit; a server offering 8BITMIME is told so.
            eight_bit: true,
            dsn: MessageDsn {
                ret: Ret::parse(&msg.ret).ok(),
                envid: Some(msg.envid.clone()).filter(|e| !e.is_empty()),
            },
            rcpt_dsn,
        };
        let id = self
            .session
            .send(envelope, Some(msg.blob_size), Instant::now());
        loop {
            self.flush().await;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::BodyRequested { id: b } if b == id => {
                        if let Err(reply) = self.send_body(inner, msg).await {
                            // The content cannot be read: drop the connection rather
                            // than end a message that is not whole.
                            self.stream.shutdown().await;
                            self.stream = Stream::Gone;
                            self.session.handle_close(Instant::now());
                            while self.session.poll_event().is_some() {}
                            results.extend(sent.iter().map(|(idx, address)| RcptResult {
                                idx: *idx,
                                address: address.clone(),
                                outcome: Outcome::Temporary(reply.clone()),
                                remote: None,
                                dsn_passed: false,
                            }));
                            return results;
                        }
                    }
                    ClientEvent::MessageCompleted {
                        id: done,
                        recipients,
                        ..
                    } if done == id => {
                        let dsn_passed = self.session.extensions().dsn;
                        for ((idx, address), (_, outcome)) in sent.iter().zip(recipients) {
                            results.push(RcptResult {
                                idx: *idx,
                                address: address.clone(),
                                outcome,
                                remote: remote.clone(),
                                dsn_passed,
                            });
                        }
                        return results;
                    }
                    _ => {}
                }
            }
            self.read().await;
        }
    }

    /// Streams the message content into the session, piece by piece.
    async fn send_body(&mut self, inner: &Inner, msg: &QueuedMessage) -> Result<(), Reply> {
        let blob = msg.blob_id;
        let unreadable = |e: String| {
            Reply::new(
                451,
                EnhancedCode(4, 3, 0),
                format!("cannot read the queued message: {e}"),
            )
        };
        let source = crate::reads::read(&inner.store, move |s| s.blob_source(blob))
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        match source {
            BlobSource::Inline(data) => {
                // Small bodies go out with the final dot in one write.
                for piece in data.chunks(BODY_PIECE) {
                    self.session.body_chunk(piece, Instant::now());
                    if data.len() > BODY_PIECE {
                        self.flush().await;
                    }
                }
            }
            BlobSource::File(path) => {
                let mut file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| unreadable(e.to_string()))?;
                let mut piece = vec![0; BODY_PIECE];
                loop {
                    let n = file
                        .read(&mut piece)
                        .await
                        .map_err(|e| unreadable(e.to_string()))?;
                    if n == 0 {
                        break;
                    }
                    self.session.body_chunk(&piece[..n], Instant::now());
                    self.flush().await;
                    if self.session.is_closed() {
                        break;
                    }
                }
            }
        }
        self.session.body_end(Instant::now());
        Ok(())
    }

    /// QUIT, and close after its reply (or a short wait).
    async fn quit(&mut self) {
        if !self.session.is_closed() {
            self.session.quit(Instant::now());
            let wait = async {
                while !self.session.is_closed() {
                    self.flush().await;
                    while self.session.poll_event().is_some() {}
                    if self.session.is_closed() {
                        break;
                    }
                    self.read().await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
        self.stream.shutdown().await;
    }
}

/// A queued recipient's DSN requests, as the client passes them on.
fn rcpt_dsn_of(msg: &QueuedMessage, idx: u32) -> RcptDsn {
    let Some(r) = msg.recipients.iter().find(|r| r.idx == idx) else {
        return RcptDsn::default();
    };
    RcptDsn {
        notify: Some(&r.notify)
            .filter(|n| !n.is_empty())
            .and_then(|n| dsn::Notify::parse(n).ok()),
        orcpt: Some(&r.orcpt)
            .filter(|o| !o.is_empty())
            .and_then(|o| Orcpt::from_decoded(o)),
    }
}

fn all(job: &Job, outcome: Outcome, remote: Option<String>) -> Vec<RcptResult> {
    job.rcpts
        .iter()
        .map(|(idx, address)| RcptResult {
            idx: *idx,
            address: address.clone(),
            outcome: outcome.clone(),
            remote: remote.clone(),
            dsn_passed: false,
        })
        .collect()
}
