//! Runs the SMTP generator against a small fake SMTP server started in the test.
//!
//! The fake speaks just enough SMTP (220, EHLO, MAIL, RCPT, DATA, 250 after
//! the dot, QUIT) and records what it received, so the tests can check that
//! the generator sent exactly the messages its report claims.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use golub_bench::report::Stop;
use golub_bench::{SmtpOpts, SmtpReport, run_smtp};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Connections the fake accepts before it stops listening.
const MAX_CONNECTIONS: usize = 1000;
/// Lines the fake reads on one connection before it hangs up.
const MAX_LINES: usize = 100_000;
/// Upper bound on any test; hitting it is a failure, not a wait.
const TEST_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
struct Behaviour {
    /// Advertise PIPELINING in the EHLO reply.
    pipelining: bool,
    /// Answer 550 to RCPT for this address.
    reject_rcpt: Option<String>,
}

#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    /// Size of each accepted message, dot-stuffing undone.
    sizes: Vec<usize>,
    /// Recipients of each accepted message.
    rcpts: Vec<usize>,
    message_ids: HashSet<String>,
    /// Commands that arrived while an earlier one was still unanswered.
    pipelined: usize,
    quits: usize,
}

struct FakeSmtp {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl FakeSmtp {
    async fn start(behaviour: Behaviour) -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, behaviour.clone(), Arc::clone(&shared)));
            }
        });
        FakeSmtp { addr, seen }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

async fn serve(stream: TcpStream, behaviour: Behaviour, seen: Arc<Mutex<Seen>>) {
    let mut stream = BufReader::new(stream);
    // A multi-line greeting exercises the client's reply parser.
    let _ = stream
        .get_mut()
        .write_all(b"220-fake.example ESMTP\r\n220 ready\r\n")
        .await;
    let mut line = String::new();
    let mut mail = false;
    let mut rcpts = 0;
    for _ in 0..MAX_LINES {
        line.clear();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !stream.buffer().is_empty() {
            seen.lock().unwrap().pipelined += 1;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO ") {
            if behaviour.pipelining {
                b"250-fake.example\r\n250-SIZE 10000000\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
            } else {
                b"250-fake.example\r\n250 8BITMIME\r\n"
            }
        } else if upper.starts_with("MAIL FROM:<") {
            mail = true;
            rcpts = 0;
            b"250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT TO:<") {
            let rejected = behaviour
                .reject_rcpt
                .as_ref()
                .is_some_and(|r| line.contains(&format!("<{r}>")));
            if !mail {
                b"503 5.5.1 need MAIL\r\n"
            } else if rejected {
                b"550 5.1.1 no such user\r\n"
            } else {
                rcpts += 1;
                b"250 2.1.5 ok\r\n"
            }
        } else if upper == "DATA\r\n" {
            if rcpts == 0 {
                b"554 5.5.1 no valid recipients\r\n"
            } else {
                let _ = stream.get_mut().write_all(b"354 go ahead\r\n").await;
                let Some((size, id)) = read_data(&mut stream).await else {
                    return;
                };
                let mut s = seen.lock().unwrap();
                s.sizes.push(size);
                s.rcpts.push(rcpts);
                s.message_ids.insert(id);
                mail = false;
                b"250 2.0.0 queued\r\n"
            }
        } else if upper == "QUIT\r\n" {
            seen.lock().unwrap().quits += 1;
            let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"500 5.5.2 what\r\n"
        };
        if stream.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}

/// Reads message data up to the lone dot; returns its unstuffed size and Message-ID.
async fn read_data(stream: &mut BufReader<TcpStream>) -> Option<(usize, String)> {
    let mut size = 0;
    let mut id = String::new();
    let mut line = String::new();
    for _ in 0..MAX_LINES {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        assert!(line.ends_with("\r\n"), "bare LF in {line:?}");
        if line == ".\r\n" {
            return Some((size, id));
        }
        let text = line.strip_prefix('.').unwrap_or(&line);
        if let Some(v) = text.strip_prefix("Message-ID: ") {
            id = v.trim_end().to_owned();
        }
        size += text.len();
    }
    None
}

fn opts(fake: &FakeSmtp, reuse: bool, pipelining: bool) -> SmtpOpts {
    let mut o = SmtpOpts::new(fake.addr.to_string());
    o.sessions = 4;
    o.messages = 20;
    o.size = 2000;
    o.reuse = reuse;
    o.pipelining = pipelining;
    o.forward_paths = vec!["user0@example.org".into(), "user1@example.org".into()];
    o
}

async fn run(o: SmtpOpts) -> anyhow::Result<SmtpReport> {
    tokio::time::timeout(TEST_LIMIT, run_smtp(o))
        .await
        .expect("run finished within the test limit")
}

async fn twenty_messages_arrive(reuse: bool, pipelining: bool) {
    let fake = FakeSmtp::start(Behaviour {
        pipelining: true,
        ..Behaviour::default()
    })
    .await;
    let report = run(opts(&fake, reuse, pipelining)).await.unwrap();

    assert_eq!(report.accepted, 20, "{}", report.human());
    assert_eq!(report.errors.total(), 0, "{}", report.human());
    assert!(report.all_accepted());
    assert_eq!(report.stopped, Stop::Completed);
    assert_eq!(report.latency.count(), 20);
    assert_eq!(report.size, 2000);
    let seen = fake.seen();
    assert_eq!(seen.sizes, vec![2000; 20]);
    assert_eq!(seen.rcpts, vec![2; 20]);
    assert_eq!(seen.message_ids.len(), 20, "Message-IDs are unique");
    if reuse {
        assert!((1..=4).contains(&seen.connections), "{}", seen.connections);
    } else {
        assert_eq!(seen.connections, 20);
    }
    if !pipelining {
        assert_eq!(seen.pipelined, 0, "commands waited for their replies");
    }
}

#[tokio::test]
async fn new_connection_per_message_delivers_twenty() {
    twenty_messages_arrive(false, false).await;
}

#[tokio::test]
async fn new_connection_pipelined_delivers_twenty() {
    twenty_messages_arrive(false, true).await;
}

#[tokio::test]
async fn reused_connections_deliver_twenty() {
    twenty_messages_arrive(true, false).await;
}

#[tokio::test]
async fn reused_pipelined_connections_deliver_twenty() {
    twenty_messages_arrive(true, true).await;
}

#[tokio::test]
async fn sessions_quit_their_connections() {
    let fake = FakeSmtp::start(Behaviour::default()).await;
    run(opts(&fake, true, false)).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.quits, seen.connections);
}

#[tokio::test]
async fn pipelining_without_the_extension_is_an_error() {
    let fake = FakeSmtp::start(Behaviour::default()).await;
    let err = run(opts(&fake, true, true)).await.unwrap_err();
    assert!(err.to_string().contains("PIPELINING"), "{err}");
    assert!(fake.seen().sizes.is_empty());
}

#[tokio::test]
async fn rejected_recipient_counts_errors_by_code() {
    for pipelining in [false, true] {
        let fake = FakeSmtp::start(Behaviour {
            pipelining: true,
            reject_rcpt: Some("user1@example.org".into()),
        })
        .await;
        let report = run(opts(&fake, true, pipelining)).await.unwrap();
        assert_eq!(report.accepted, 0);
        assert_eq!(report.errors.get("550"), 20, "{}", report.human());
        assert!(!report.all_accepted());
        assert!(report.json().contains("\"errors\":{\"550\":20}"));
        assert!(fake.seen().sizes.is_empty());
    }
}

#[tokio::test]
async fn too_many_consecutive_errors_stop_the_run() {
    let fake = FakeSmtp::start(Behaviour {
        reject_rcpt: Some("user0@example.org".into()),
        ..Behaviour::default()
    })
    .await;
    let mut o = opts(&fake, false, false);
    o.sessions = 1;
    o.max_consecutive_errors = 5;
    let report = run(o).await.unwrap();
    assert_eq!(report.errors.get("550"), 5);
    assert_eq!(report.stopped, Stop::ConsecutiveErrors);
    assert_eq!(fake.seen().connections, 5);
}

#[tokio::test]
async fn passed_time_limit_sends_nothing() {
    let fake = FakeSmtp::start(Behaviour::default()).await;
    let mut o = opts(&fake, false, false);
    o.time_limit = Duration::ZERO;
    let report = run(o).await.unwrap();
    assert_eq!(report.accepted, 0);
    assert_eq!(report.stopped, Stop::TimeLimit);
    assert_eq!(fake.seen().connections, 0);
}

#[tokio::test]
async fn refused_connections_count_as_connect_errors() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let mut o = SmtpOpts::new(addr.to_string());
    o.messages = 3;
    let report = run(o).await.unwrap();
    assert_eq!(report.errors.get("connect"), 3, "{}", report.human());
}
