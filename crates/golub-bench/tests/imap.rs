//! Runs the IMAP generator against a small fake IMAP server with three messages.
//!
//! The fake answers LOGIN, SELECT, FETCH 1:* (UID FLAGS), UID FETCH with a literal,
//! UID SEARCH, UID STORE, APPEND (synchronizing literal), NOOP, IDLE/DONE and LOGOUT,
//! and refuses a wrong password with NO.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use golub_bench::imap::Step;
use golub_bench::pop3::Password;
use golub_bench::report::Kind;
use golub_bench::{ImapOpts, run_imap};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const MAX_CONNECTIONS: usize = 100;
const MAX_LINES: usize = 10_000;
const TEST_LIMIT: Duration = Duration::from_secs(30);
const BODY: &str = "Subject: alpha\r\n\r\nhello\r\n";

#[derive(Debug, Default)]
struct Seen {
    appends: usize,
    idles_done: usize,
}

async fn start() -> (SocketAddr, Arc<Mutex<Seen>>) {
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
    (addr, seen)
}

async fn serve(stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let mut s = BufReader::new(stream);
    let mut out = String::from("* OK fake IMAP ready\r\n");
    let mut line = String::new();
    for _ in 0..MAX_LINES {
        if s.get_mut().write_all(out.as_bytes()).await.is_err() {
            return;
        }
        out.clear();
        line.clear();
        match s.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let l = line.trim_end().to_owned();
        let (tag, cmd) = l.split_once(' ').unwrap_or((&l, ""));
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("LOGIN ") {
            if cmd.ends_with("\"pw\"") {
                out = format!("{tag} OK logged in\r\n");
            } else {
                out = format!("{tag} NO [AUTHENTICATIONFAILED] no\r\n");
            }
        } else if upper.starts_with("SELECT ") {
            out = format!("* 3 EXISTS\r\n* OK [UIDNEXT 13] next\r\n{tag} OK [READ-WRITE] done\r\n");
        } else if upper == "FETCH 1:* (UID FLAGS)" {
            out = format!(
                "* 1 FETCH (UID 10 FLAGS (\\Seen))\r\n* 2 FETCH (UID 11 FLAGS ())\r\n\
                 * 3 FETCH (FLAGS () UID 12)\r\n{tag} OK done\r\n"
            );
        } else if upper.starts_with("UID FETCH ") {
            let uid = cmd.split(' ').nth(2).unwrap();
            out = format!(
                "* 1 FETCH (UID {uid} BODY[] {{{}}}\r\n{BODY})\r\n{tag} OK done\r\n",
                BODY.len()
            );
        } else if upper.starts_with("UID SEARCH ") {
            out = format!("* SEARCH 10 12\r\n{tag} OK done\r\n");
        } else if upper.starts_with("UID STORE ") {
            out = format!("* 1 FETCH (UID 10 FLAGS ())\r\n{tag} OK done\r\n");
        } else if upper.starts_with("APPEND ") {
            let n: usize = cmd
                .rsplit_once('{')
                .unwrap()
                .1
                .trim_end_matches('}')
                .parse()
                .unwrap();
            s.get_mut().write_all(b"+ go ahead\r\n").await.unwrap();
            let mut body = vec![0; n + 2];
            if s.read_exact(&mut body).await.is_err() {
                return;
            }
            seen.lock().unwrap().appends += 1;
            out = format!("{tag} OK [APPENDUID 1 99] done\r\n");
        } else if upper == "IDLE" {
            s.get_mut()
                .write_all(b"+ idling\r\n* 4 EXISTS\r\n")
                .await
                .unwrap();
            line.clear();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 || line.trim_end() != "DONE" {
                return;
            }
            seen.lock().unwrap().idles_done += 1;
            out = format!("{tag} OK IDLE terminated\r\n");
        } else if upper == "NOOP" {
            out = format!("{tag} OK done\r\n");
        } else if upper == "LOGOUT" {
            let _ = s
                .get_mut()
                .write_all(format!("* BYE bye\r\n{tag} OK done\r\n").as_bytes())
                .await;
            return;
        } else {
            out = format!("{tag} BAD unknown\r\n");
        }
    }
}

fn opts(addr: SocketAddr, password: &str) -> ImapOpts {
    let mut o = ImapOpts::new(addr.to_string(), "u@example.org", Password::new(password));
    o.sessions = 2;
    o.rounds = 4;
    o.append_every = 2;
    o.time_limit = TEST_LIMIT;
    o.io_timeout = Duration::from_secs(5);
    o
}

fn ok(r: &golub_bench::ImapReport, k: Kind) -> u64 {
    r.kinds
        .iter()
        .find(|(kk, _)| *kk == k)
        .map_or(0, |(_, t)| t.ok)
}

#[tokio::test]
async fn the_whole_mix_runs_without_errors() {
    let (addr, seen) = start().await;
    let r = tokio::time::timeout(TEST_LIMIT, run_imap(opts(addr, "pw")))
        .await
        .unwrap()
        .unwrap();
    assert!(r.all_done(), "{}", r.human());
    assert_eq!(r.rounds_done, 8);
    assert_eq!(ok(&r, Kind::Login), 2);
    for k in [
        Kind::Select,
        Kind::FetchFlags,
        Kind::FetchBody,
        Kind::Search,
    ] {
        assert_eq!(ok(&r, k), 8, "{k:?}");
    }
    assert_eq!(ok(&r, Kind::Append), 4);
    assert_eq!(seen.lock().unwrap().appends, 4);
    let fetch = &r
        .kinds
        .iter()
        .find(|(k, _)| *k == Kind::FetchBody)
        .unwrap()
        .1;
    assert_eq!(fetch.bytes, 8 * BODY.len() as u64);
    let flags = &r
        .kinds
        .iter()
        .find(|(k, _)| *k == Kind::FetchFlags)
        .unwrap()
        .1;
    assert_eq!(
        flags.results,
        8 * 3,
        "every UID is seen, wherever it stands"
    );
    assert!(r.json().contains("\"commands_per_s\":"));
}

#[tokio::test]
async fn relogin_logs_in_every_round() {
    let (addr, _) = start().await;
    let mut o = opts(addr, "pw");
    o.relogin = true;
    o.mix = vec![Step::Select, Step::Noop];
    let r = run_imap(o).await.unwrap();
    assert!(r.all_done(), "{}", r.human());
    assert_eq!((ok(&r, Kind::Login), ok(&r, Kind::Logout)), (8, 8));
}

#[tokio::test]
async fn a_refused_login_is_counted_and_ends_the_round() {
    let (addr, _) = start().await;
    let mut o = opts(addr, "wrong");
    o.sessions = 1;
    let r = run_imap(o).await.unwrap();
    assert!(!r.all_done());
    assert_eq!(r.rounds_done, 0);
    assert_eq!(r.round_errors.get("refused login"), 4);
}

#[tokio::test]
async fn idle_sessions_idle_until_the_mix_is_done() {
    let (addr, seen) = start().await;
    let mut o = opts(addr, "pw");
    o.idle = 3;
    let r = run_imap(o).await.unwrap();
    assert!(r.all_done(), "{}", r.human());
    assert_eq!((r.idle_reached, r.idle_at_end), (3, 3));
    assert_eq!(seen.lock().unwrap().idles_done, 3);
}
