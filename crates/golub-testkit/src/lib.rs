//! Test helpers: [`TestServer`] runs a whole Golub server on 127.0.0.1 port 0 with its
//! data in a temporary directory; [`SmtpClient`] and [`Pop3Client`] are raw line clients
//! for edge cases that real clients will not send ([`blocking`] has the same for plain
//! threads); [`serve::GolubProcess`] runs the `golub serve` binary; [`python`] runs the
//! real clients of Python's standard library. Waiting is always polling with a deadline.

pub mod blocking;
pub mod dns;
pub mod report;
pub mod serve;
pub mod sink;

use golub_server::{Config, Server};
use golub_smtp::codec::reply::ReplyParser;
use golub_store::{Store, hash_password};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something that should happen at once.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running server with its own data directory.
pub struct TestServer {
    pub server: Server,
    pub smtp: SocketAddr,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server for `example.org` with users `alice@` and `bob@` (password `pw`).
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server after `tweak` has changed the test configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        tweak(&mut config);
        {
            let store = Store::open(&config.data_dir).expect("store");
            seed(&store);
        }
        let server = Server::start(config).await.expect("server starts");
        let smtp = server.smtp_addrs[0];
        TestServer {
            server,
            smtp,
            _dir: dir,
        }
    }

    pub fn store(&self) -> &Store {
        self.server.store()
    }

    /// The INBOX contents of `user`, oldest first.
    pub fn inbox(&self, user: &str) -> Vec<Vec<u8>> {
        inbox(self.store(), user)
    }

    /// Polls until `user` has at least `n` messages in INBOX; panics at the deadline.
    pub async fn wait_for_inbox(&self, user: &str, n: usize) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let msgs = self.inbox(user);
            if msgs.len() >= n {
                return msgs;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{user} has {} messages, expected {n}",
                msgs.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls until the queue has no undelivered recipient left.
    pub async fn wait_for_empty_queue(&self) {
        let start = Instant::now();
        while self.store().queue_pending_count().expect("queue count") > 0 {
            assert!(start.elapsed() < DEADLINE, "queue did not drain");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn connect(&self) -> SmtpClient {
        SmtpClient::connect(self.smtp).await
    }

    /// Sends one message from `carol@remote.example` to `to` over SMTP; panics unless
    /// every step gets its positive reply.
    pub async fn deliver(&self, to: &str, body: &str) {
        let mut c = SmtpClient::greeted(self.smtp).await;
        let r = c.send_message("carol@remote.example", to, body).await;
        assert!(r.starts_with("250"), "{r}");
    }

    /// The bound address of a protocol (`smtp`, `submission`, `submissions`).
    pub fn addr(&self, proto: &str) -> SocketAddr {
        self.server.addr(proto).expect("listener is configured")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.server.config().data_dir
    }
}

/// A configuration for tests: hostname `mx.example.org`, smtp, submission, submissions,
/// pop3, pop3s, imap and imaps on 127.0.0.1:0, data under `dir`.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config {
        hostname: "mx.example.org".into(),
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.listen.smtp = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.submission = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.submissions = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.imap = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.imaps = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.pop3 = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.pop3s = vec!["127.0.0.1:0".parse().expect("address")];
    // Remote mail never leaves the machine: it goes to a loopback port where nothing
    // listens (and waits in the queue), and DNS is asked nowhere else either.
    config.delivery.relay_host = Some(UNREACHABLE.into());
    config.dns.servers = vec![UNREACHABLE.parse().expect("address")];
    config
}

/// A loopback address and port where nothing listens: connections are refused at once.
pub const UNREACHABLE: &str = "127.0.0.1:1";

/// Adds `example.org` with users alice and bob (password `pw`).
pub fn seed(store: &Store) {
    store.add_domain("example.org").expect("domain");
    let hash = hash_password("pw").expect("hash");
    store
        .add_user("alice@example.org", "Alice Liddell", hash.clone())
        .expect("alice");
    store.add_user("bob@example.org", "Bob", hash).expect("bob");
}

/// The INBOX contents of `user` in `store`, oldest first.
pub fn inbox(store: &Store, user: &str) -> Vec<Vec<u8>> {
    let Some(u) = store.user(user).expect("user lookup") else {
        return Vec::new();
    };
    let folder = store
        .folder(u.id, "INBOX")
        .expect("folder lookup")
        .expect("INBOX exists");
    store
        .messages(folder.id)
        .expect("messages")
        .iter()
        .map(|m| store.message_content(folder.id, m.uid).expect("content"))
        .collect()
}

/// A socket that reads lines, each read bounded by [`DEADLINE`].
struct LineStream {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl LineStream {
    async fn connect(addr: SocketAddr) -> LineStream {
        let stream = TcpStream::connect(addr).await.expect("connect");
        LineStream {
            stream,
            buf: Vec::new(),
        }
    }

    async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> LineStream {
        let socket = match source {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .expect("socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind the source address");
        let stream = socket.connect(addr).await.expect("connect");
        LineStream {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// One line with its line end; `None` if the server closed first.
    async fn line(&mut self) -> Option<String> {
        let start = Instant::now();
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=p).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            if start.elapsed() > DEADLINE {
                panic!("no reply within the deadline");
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk))
                .await
                .expect("reply within the deadline")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// A raw SMTP line client: sends exactly the bytes it is given.
pub struct SmtpClient {
    lines: LineStream,
}

impl SmtpClient {
    pub async fn connect(addr: SocketAddr) -> SmtpClient {
        SmtpClient {
            lines: LineStream::connect(addr).await,
        }
    }

    /// Connects, checks the 220 greeting and says `EHLO client.example`.
    pub async fn greeted(addr: SocketAddr) -> SmtpClient {
        let mut c = SmtpClient::connect(addr).await;
        assert_eq!(c.code().await, Some(220));
        let r = c.cmd("EHLO client.example").await;
        assert!(r.starts_with("250"), "{r}");
        c
    }

    /// Connects from a chosen local address (any of 127.0.0.0/8 works on loopback), so
    /// that a test can play several clients.
    pub async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> SmtpClient {
        SmtpClient {
            lines: LineStream::connect_from(addr, source).await,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.lines.send(bytes).await;
    }

    /// Reads one whole reply (all its lines, as they came); `None` if the server closed
    /// first. Panics on lines that are not an SMTP reply.
    pub async fn reply(&mut self) -> Option<String> {
        let mut parser = ReplyParser::new();
        let mut lines = String::new();
        loop {
            let line = self.lines.line().await?;
            lines.push_str(&line);
            match parser.push_line(line.as_bytes()) {
                Ok(Some(_)) => return Some(lines),
                Ok(None) => {}
                Err(e) => panic!("{e}: {lines:?}"),
            }
        }
    }

    /// Reads one reply and returns its code.
    pub async fn code(&mut self) -> Option<u16> {
        self.reply().await.and_then(|r| r.get(..3)?.parse().ok())
    }

    /// Sends `cmd` + CRLF and returns the reply.
    pub async fn cmd(&mut self, cmd: &str) -> String {
        self.send(format!("{cmd}\r\n").as_bytes()).await;
        self.reply().await.unwrap_or_default()
    }

    /// One transaction: MAIL, RCPT and DATA must succeed, then `body` and the final dot
    /// are sent; returns the reply to the end of the data.
    pub async fn send_message(&mut self, from: &str, to: &str, body: &str) -> String {
        self.envelope(from, to).await;
        let r = self.cmd("DATA").await;
        assert!(r.starts_with("354"), "{r}");
        self.send(format!("{body}\r\n.\r\n").as_bytes()).await;
        self.reply().await.unwrap_or_default()
    }

    /// MAIL FROM and RCPT TO, each answered 250.
    pub async fn envelope(&mut self, from: &str, to: &str) {
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert!(r.starts_with("250"), "{r}");
        let r = self.cmd(&format!("RCPT TO:<{to}>")).await;
        assert!(r.starts_with("250"), "{r}");
    }

    /// True once the server has closed the connection (reading returns end of file).
    pub async fn is_closed(&mut self) -> bool {
        self.lines.is_closed().await
    }
}

/// A raw POP3 line client: status lines, one per command.
pub struct Pop3Client {
    lines: LineStream,
}

impl Pop3Client {
    /// Connects and checks the `+OK` greeting.
    pub async fn connect(addr: SocketAddr) -> Pop3Client {
        Pop3Client::greeted(LineStream::connect(addr).await).await
    }

    /// Connects from a chosen local address, as [`SmtpClient::connect_from`].
    pub async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> Pop3Client {
        Pop3Client::greeted(LineStream::connect_from(addr, source).await).await
    }

    async fn greeted(mut lines: LineStream) -> Pop3Client {
        let greeting = lines.line().await.unwrap_or_default();
        assert!(greeting.starts_with("+OK"), "{greeting}");
        Pop3Client { lines }
    }

    /// Sends `cmd` + CRLF and returns the status line (empty if the server closed).
    pub async fn cmd(&mut self, cmd: &str) -> String {
        self.lines.send(format!("{cmd}\r\n").as_bytes()).await;
        self.lines.line().await.unwrap_or_default()
    }
}

/// A raw IMAP client: sends tagged commands, collects the lines up to the tagged
/// response. Literals in responses arrive as their lines.
pub struct ImapClient {
    lines: LineStream,
    next_tag: u32,
}

impl ImapClient {
    /// Connects and checks the `* OK` greeting.
    pub async fn connect(addr: SocketAddr) -> ImapClient {
        ImapClient::greeted(LineStream::connect(addr).await).await
    }

    /// Connects from a chosen local address, as [`SmtpClient::connect_from`].
    pub async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> ImapClient {
        ImapClient::greeted(LineStream::connect_from(addr, source).await).await
    }

    async fn greeted(mut lines: LineStream) -> ImapClient {
        let greeting = lines.line().await.unwrap_or_default();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        ImapClient { lines, next_tag: 1 }
    }

    /// Sends `cmd` with a fresh tag `aN`; returns every line up to and including the
    /// tagged response (which is last). Empty if the server closed first.
    pub async fn cmd(&mut self, cmd: &str) -> Vec<String> {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        self.lines.send(format!("{tag} {cmd}\r\n").as_bytes()).await;
        self.until_tagged(&tag).await
    }

    /// Sends raw octets (a command in parts, a literal, DONE).
    pub async fn send(&mut self, bytes: &[u8]) {
        self.lines.send(bytes).await;
    }

    /// The next line (without its CRLF), if any.
    pub async fn line(&mut self) -> Option<String> {
        let line = self.lines.line().await?;
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Lines up to and including the one starting with `tag `.
    pub async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        let prefix = format!("{tag} ");
        while let Some(line) = self.line().await {
            let done = line.starts_with(&prefix);
            out.push(line);
            if done {
                break;
            }
        }
        out
    }

    /// Logs in with LOGIN and checks the OK.
    pub async fn login(&mut self, user: &str, password: &str) {
        let r = self.cmd(&format!("LOGIN {user} {password}")).await;
        assert!(
            r.last().is_some_and(|l| l.contains(" OK ")),
            "login failed: {r:?}"
        );
    }

    /// True once the server has closed the connection.
    pub async fn is_closed(&mut self) -> bool {
        self.lines.is_closed().await
    }
}

/// Standard base64 with padding (RFC 4648 §4), for SASL responses in tests.
pub fn base64(bytes: &[u8]) -> String {
    golub_types::sasl::encode_base64(bytes)
}

/// Runs `python3 -c script args...` on a blocking thread; whether it succeeded, and its
/// stdout followed by its stderr.
pub async fn python(script: &str, args: &[String]) -> (bool, String) {
    python_with_input(script, args, Vec::new()).await
}

/// Like [`python`], with `input` written to the script's standard input.
pub async fn python_with_input(script: &str, args: &[String], input: Vec<u8>) -> (bool, String) {
    use std::process::Stdio;
    let mut command = std::process::Command::new("python3");
    command
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = command.spawn().expect("python3 runs");
        let mut stdin = child.stdin.take().expect("piped stdin");
        // A script that exits early closes its end: what it did not read does not matter.
        let _ = stdin.write_all(&input);
        drop(stdin);
        child.wait_with_output().expect("python3 ends")
    })
    .await
    .expect("python3 thread");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
