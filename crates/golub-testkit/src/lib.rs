//! Test helpers: [`TestServer`] runs a whole Golub server on 127.0.0.1 port 0 with its
//! data in a temporary directory, and [`SmtpClient`] is a raw line client for edge cases
//! that real clients will not send. Waiting is always polling with a deadline.

use golub_server::{Config, Server};
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
/// pop3 and pop3s on 127.0.0.1:0, no IMAP listener, data under `dir`.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config {
        hostname: "mx.example.org".into(),
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.listen.smtp = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.submission = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.submissions = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.imap.clear();
    config.listen.imaps.clear();
    config.listen.pop3 = vec!["127.0.0.1:0".parse().expect("address")];
    config.listen.pop3s = vec!["127.0.0.1:0".parse().expect("address")];
    config
}

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

/// A raw SMTP line client: sends exactly the bytes it is given.
pub struct SmtpClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl SmtpClient {
    pub async fn connect(addr: SocketAddr) -> SmtpClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        SmtpClient {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects from a chosen local address (any of 127.0.0.0/8 works on loopback), so
    /// that a test can play several clients.
    pub async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> SmtpClient {
        let socket = match source {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .expect("socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind the source address");
        let stream = socket.connect(addr).await.expect("connect");
        SmtpClient {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one whole reply (all its lines); `None` if the server closed first.
    pub async fn reply(&mut self) -> Option<String> {
        let mut lines = String::new();
        loop {
            let line = self.line().await?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push_str(&line);
            if last {
                return Some(lines);
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

    /// True once the server has closed the connection (reading returns end of file).
    pub async fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Standard base64 with padding (RFC 4648 §4), for SASL responses in tests.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
