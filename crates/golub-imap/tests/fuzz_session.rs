//! Fuzz target: the whole IMAP session, with a driver that answers every event the way
//! imapd would (logins succeed or fail in turn, SELECT selects, IDLE idles, every other
//! command completes). Input: the seed commands mangled by random edits, or seeds run
//! together, cut at random points. Checked: no panic; output stays bounded by the input
//! (no response grows without the client sending more); after the session closes it
//! takes no more input and gives no more events.

use golub_fuzzkit as support;

use golub_imap::frame::FrameLimits;
use golub_imap::{AuthFailure, Command, Event, ImapConfig, Session, Status};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::time::{Duration, Instant};

fn config() -> ImapConfig {
    ImapConfig {
        tls_active: true,
        limits: FrameLimits {
            max_line: 512,
            max_literal: 2048,
            max_command: 4096,
            stream_literal: 1024,
        },
        capabilities: vec!["IDLE".into()],
        ..ImapConfig::default()
    }
}

/// Answers the session's events as a driver would.
fn drive(s: &mut Session, turn: &mut u32) {
    while let Some(e) = s.poll_event() {
        *turn += 1;
        match e {
            Event::AuthAttempted { .. } | Event::CredentialsNeeded { .. } => {
                if turn.is_multiple_of(2) {
                    s.auth_succeeded();
                } else {
                    s.auth_failed(AuthFailure::Invalid);
                }
            }
            Event::Command { command, .. } => match command {
                Command::Select { read_only, .. } => {
                    s.output().extend_from_slice(b"* 0 EXISTS\r\n");
                    s.select(read_only);
                    s.complete(Status::Ok, Some("READ-WRITE"), "SELECT completed");
                }
                Command::Close | Command::Unselect => {
                    s.unselect();
                    s.complete(Status::Ok, None, "done");
                }
                Command::Idle => s.idle(),
                Command::Fetch(_) if turn.is_multiple_of(3) => s.resume_later(),
                _ => s.complete(Status::Ok, None, "done"),
            },
            Event::Resume => s.complete(Status::Ok, None, "FETCH completed"),
            Event::AppendStart { .. } => {
                if turn.is_multiple_of(2) {
                    s.append_accept();
                } else {
                    s.append_refuse(Status::No, Some("TRYCREATE"), "No such mailbox");
                }
            }
            Event::AppendEnd { ok } => {
                let status = if ok { Status::Ok } else { Status::Bad };
                s.complete(status, None, "APPEND done");
            }
            Event::AppendData(_) | Event::StartTls | Event::IdleEnded => {}
        }
    }
}

fn check(input: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    let mut out = Vec::new();
    s.poll_output(&mut out);
    let greeting = out.len();
    let mut points: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut at = 0;
    let mut turn = 0;
    for p in points {
        s.handle_input(&input[at..p], now);
        at = p;
        drive(&mut s, &mut turn);
        s.poll_output(&mut out);
        if s.is_closed() {
            let before = out.len();
            s.handle_input(b"a NOOP\r\n", now);
            prop_assert!(s.poll_event().is_none(), "events after close");
            s.poll_output(&mut out);
            prop_assert_eq!(out.len(), before, "output after close");
            break;
        }
    }
    // Each input octet (or line) gets at most a few responses of bounded size.
    let bound = greeting + 64 * 1024 + 400 * input.len();
    prop_assert!(
        out.len() <= bound,
        "{} octets out for {} in",
        out.len(),
        input.len()
    );
    s.handle_timeout(now + Duration::from_secs(3600));
    Ok(())
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, text) in support::seeds(env!("CARGO_MANIFEST_DIR"), "command") {
        for line in support::seed_lines(&text) {
            out.push(support::unescape(line));
        }
    }
    assert!(!out.is_empty(), "the seed corpus is there");
    out
}

/// A few seeds in a row, each with up to three random edits.
fn sessions() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    let one = (
        prop::sample::select(seeds),
        prop::collection::vec((0..3u8, any::<prop::sample::Index>(), any::<u8>()), 0..3),
    )
        .prop_map(|(mut s, edits)| {
            for (kind, at, byte) in edits {
                let i = at.index(s.len() + 1);
                match kind {
                    0 => s.insert(i, byte),
                    1 => s.truncate(i),
                    _ => {
                        if let Some(b) = s.get_mut(i) {
                            *b = byte;
                        }
                    }
                }
            }
            s
        });
    prop::collection::vec(
        prop_oneof![
            4 => one,
            1 => Just(b"a1 APPEND INBOX {1500}\r\n".to_vec()),
            1 => Just(b"a2 APPEND INBOX (\\Seen) {1100+}\r\n".to_vec()),
            1 => Just(vec![b'm'; 700]),
            1 => Just(b"DONE\r\n".to_vec()),
            1 => Just(b"*\r\n".to_vec()),
            1 => Just(b"AHVzZXIAcHc=\r\n".to_vec()),
        ],
        1..12,
    )
    .prop_map(|v| v.concat())
}

#[test]
fn mangled_sessions_never_panic_and_stay_bounded() {
    support::fuzz(
        "imap_session",
        400,
        (sessions(), prop::collection::vec(any::<usize>(), 0..6)),
        |(input, cuts)| check(&input, &cuts),
    );
}

#[test]
fn arbitrary_octets_never_panic_a_session() {
    support::fuzz(
        "imap_session_octets",
        300,
        (
            prop::collection::vec(any::<u8>(), 0..600),
            prop::collection::vec(any::<usize>(), 0..6),
        ),
        |(input, cuts)| check(&input, &cuts),
    );
}
