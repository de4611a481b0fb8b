//! Runs the POP3 generator against a small fake POP3 server holding three messages.
//!
//! The fake follows RFC 1939 for USER, PASS, STAT, RETR (dot-stuffed
//! multi-line responses) and QUIT, and records what it was asked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use golub_bench::pop3::Password;
use golub_bench::report::Stop;
use golub_bench::{Pop3Opts, Pop3Report, run_pop3};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const MAX_CONNECTIONS: usize = 1000;
const MAX_LINES: usize = 10_000;
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// The maildrop; the second message has a line that needs dot-stuffing.
const MAILDROP: [&str; 3] = [
    "From: a@example.org\r\nSubject: one\r\n\r\nhello\r\n",
    "From: b@example.org\r\nSubject: two\r\n\r\n.starts with a dot\r\n..two dots\r\n",
    "From: c@example.org\r\nSubject: three\r\n\r\nline one\r\nline two\r\n\r\nbye\r\n",
];

#[derive(Debug, Default)]
struct Seen {
    logins: usize,
    retrs: usize,
    deles: usize,
    quits: usize,
}

struct FakePop3 {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl FakePop3 {
    async fn start() -> FakePop3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        FakePop3 { addr, seen }
    }
}

async fn serve(stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let mut stream = BufReader::new(stream);
    let mut out = b"+OK fake POP3 ready\r\n".to_vec();
    let mut line = String::new();
    let mut user_ok = false;
    let mut authed = false;
    for _ in 0..MAX_LINES {
        if stream.get_mut().write_all(&out).await.is_err() {
            return;
        }
        out.clear();
        line.clear();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (cmd, arg) = line
            .trim_end()
            .split_once(' ')
            .unwrap_or((line.trim_end(), ""));
        match (cmd.to_ascii_uppercase().as_str(), authed) {
            ("USER", false) => {
                user_ok = arg == "u@example.org";
                out.extend_from_slice(b"+OK\r\n");
            }
            ("PASS", false) if user_ok && arg == "pw" => {
                authed = true;
                seen.lock().unwrap().logins += 1;
                out.extend_from_slice(b"+OK logged in\r\n");
            }
            ("PASS", false) => out.extend_from_slice(b"-ERR [AUTH] invalid login\r\n"),
            ("STAT", true) => {
                let octets: usize = MAILDROP.iter().map(|m| m.len()).sum();
                out.extend_from_slice(format!("+OK {} {octets}\r\n", MAILDROP.len()).as_bytes());
            }
            ("RETR", true) => match arg
                .parse::<usize>()
                .ok()
                .and_then(|n| MAILDROP.get(n.wrapping_sub(1)))
            {
                Some(msg) => {
                    seen.lock().unwrap().retrs += 1;
                    out.extend_from_slice(format!("+OK {} octets\r\n", msg.len()).as_bytes());
                    for l in msg.split_inclusive("\r\n") {
                        if l.starts_with('.') {
                            out.push(b'.');
                        }
                        out.extend_from_slice(l.as_bytes());
                    }
                    out.extend_from_slice(b".\r\n");
                }
                None => out.extend_from_slice(b"-ERR no such message\r\n"),
            },
            ("DELE", true) => {
                seen.lock().unwrap().deles += 1;
                out.extend_from_slice(b"+OK marked\r\n");
            }
            ("QUIT", _) => {
                seen.lock().unwrap().quits += 1;
                let _ = stream.get_mut().write_all(b"+OK bye\r\n").await;
                return;
            }
            _ => out.extend_from_slice(b"-ERR not now\r\n"),
        }
    }
}

fn opts(fake: &FakePop3, password: &str) -> Pop3Opts {
    let mut o = Pop3Opts::new(
        fake.addr.to_string(),
        "u@example.org",
        Password::new(password),
    );
    o.sessions = 4;
    o.rounds = 3;
    o
}

async fn run(o: Pop3Opts) -> Pop3Report {
    tokio::time::timeout(TEST_LIMIT, run_pop3(o))
        .await
        .expect("run finished within the test limit")
        .unwrap()
}

#[tokio::test]
async fn every_round_retrieves_the_whole_maildrop() {
    let fake = FakePop3::start().await;
    let report = run(opts(&fake, "pw")).await;

    let maildrop_bytes: u64 = MAILDROP.iter().map(|m| m.len() as u64).sum();
    assert_eq!(report.rounds_done, 12, "{}", report.human());
    assert_eq!(report.messages, 36);
    assert_eq!(report.bytes, 12 * maildrop_bytes, "dot-stuffing undone");
    assert_eq!(report.errors.total(), 0);
    assert_eq!(report.latency.count(), 12);
    assert_eq!(report.stopped, Stop::Completed);
    assert!(report.all_done());
    let seen = fake.seen.lock().unwrap();
    assert_eq!((seen.logins, seen.retrs, seen.quits), (12, 36, 12));
    assert_eq!(seen.deles, 0, "mail is left in place");
}

#[tokio::test]
async fn wrong_password_fails_every_round() {
    let fake = FakePop3::start().await;
    let report = run(opts(&fake, "nope")).await;
    assert_eq!(report.rounds_done, 0);
    assert_eq!(report.errors.get("-ERR pass"), 12, "{}", report.human());
    assert!(!report.all_done());
    assert!(report.json().contains("\"errors\":{\"-ERR pass\":12}"));
    assert_eq!(fake.seen.lock().unwrap().retrs, 0);
}

#[tokio::test]
async fn passed_time_limit_runs_no_round() {
    let fake = FakePop3::start().await;
    let mut o = opts(&fake, "pw");
    o.time_limit = Duration::ZERO;
    let report = run(o).await;
    assert_eq!(report.rounds_done, 0);
    assert_eq!(report.stopped, Stop::TimeLimit);
    assert_eq!(fake.seen.lock().unwrap().logins, 0);
}
