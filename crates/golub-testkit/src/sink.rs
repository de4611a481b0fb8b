//! A scriptable SMTP server for outbound delivery tests: it takes mail on a loopback
//! address, keeps what it received, and answers as the test says (a RCPT refused or
//! deferred, EHLO refused, a failing final reply). Waiting for mail polls with a deadline.

use crate::DEADLINE;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The content, dot-unstuffed, with CRLF line ends.
    pub data: Vec<u8>,
    /// Which connection (counted from 1) it came over.
    pub connection: usize,
}

/// Decides a reply from an address and how many times the sink has seen it before.
pub type Rule = Arc<dyn Fn(&str, usize) -> String + Send + Sync>;

/// How the sink answers.
#[derive(Clone)]
pub struct Behaviour {
    /// Refuse EHLO with 502 (the client must fall back to HELO).
    pub refuse_ehlo: bool,
    /// The reply to RCPT TO for an address.
    pub rcpt: Rule,
    /// The reply to the final dot, by the first recipient's address.
    pub data: Rule,
    /// Close the connection after each message's final reply, without waiting for QUIT
    /// (as a server whose idle timer ran out).
    pub close_after_message: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            refuse_ehlo: false,
            rcpt: Arc::new(|_, _| "250 2.1.5 ok".into()),
            data: Arc::new(|_, _| "250 2.0.0 queued".into()),
            close_after_message: false,
        }
    }
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    connections: usize,
    rcpt_seen: HashMap<String, usize>,
    data_seen: HashMap<String, usize>,
    /// Every RCPT address in the order received (refused ones too).
    rcpts: Vec<String>,
}

/// A running sink; it stops when dropped.
pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// A sink on `bind` (e.g. `127.0.0.2:0`).
    pub async fn start(bind: &str, behaviour: Behaviour) -> Sink {
        let listener = TcpListener::bind(bind).await.expect("bind sink");
        Sink::on(listener, behaviour)
    }

    /// A sink on a listener the test bound itself.
    pub fn on(listener: TcpListener, behaviour: Behaviour) -> Sink {
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = {
                    let mut s = st.lock().unwrap();
                    s.connections += 1;
                    s.connections
                };
                let (st, b) = (st.clone(), behaviour.clone());
                tokio::spawn(async move {
                    let _ = session(stream, n, &b, &st).await;
                });
            }
        });
        Sink { addr, state, task }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Every RCPT address received so far, refused ones too.
    pub fn rcpts(&self) -> Vec<String> {
        self.state.lock().unwrap().rcpts.clone()
    }

    /// Waits until at least `n` messages arrived (panics after the deadline).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "sink got {} of {n} messages",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `f` holds of the RCPTs seen (panics after the deadline).
    pub async fn wait_for_rcpts(&self, f: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let r = self.rcpts();
            if f(&r) {
                return r;
            }
            assert!(start.elapsed() < DEADLINE, "RCPTs seen: {r:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn session(
    stream: TcpStream,
    connection: usize,
    b: &Behaviour,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = text.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            if b.refuse_ehlo {
                "502 5.5.1 EHLO not implemented".to_string()
            } else {
                "250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10000000\r\n250 ENHANCEDSTATUSCODES"
                    .to_string()
            }
        } else if upper.starts_with("HELO") {
            "250 sink.test".to_string()
        } else if upper.starts_with("MAIL FROM:") {
            from = path(&text[10..]);
            to.clear();
            "250 2.1.0 ok".to_string()
        } else if upper.starts_with("RCPT TO:") {
            let addr = path(&text[8..]);
            let seen = {
                let mut s = state.lock().unwrap();
                s.rcpts.push(addr.clone());
                let c = s.rcpt_seen.entry(addr.clone()).or_insert(0);
                *c += 1;
                *c - 1
            };
            let reply = (b.rcpt)(&addr, seen);
            if reply.starts_with('2') {
                to.push(addr);
            }
            reply
        } else if upper == "DATA" {
            if to.is_empty() {
                "554 5.5.1 no valid recipients".to_string()
            } else {
                w.write_all(b"354 go ahead\r\n").await?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if r.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    let l = line.strip_prefix(b".").unwrap_or(&line);
                    data.extend_from_slice(l);
                }
                let first = to[0].clone();
                let seen = {
                    let mut s = state.lock().unwrap();
                    let c = s.data_seen.entry(first.clone()).or_insert(0);
                    *c += 1;
                    *c - 1
                };
                let reply = (b.data)(&first, seen);
                if reply.starts_with('2') {
                    state.lock().unwrap().messages.push(Received {
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        data,
                        connection,
                    });
                }
                if b.close_after_message {
                    w.write_all(format!("{reply}\r\n").as_bytes()).await?;
                    return Ok(());
                }
                reply
            }
        } else if upper == "RSET" || upper == "NOOP" {
            to.clear();
            "250 2.0.0 ok".to_string()
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 command not recognized".to_string()
        };
        w.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// The address inside `<...>`, parameters dropped.
fn path(s: &str) -> String {
    let s = s.trim();
    let inner = s
        .strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or(s);
    inner.to_string()
}
