//! Fuzz target: the SMTP client session, driven like a delivery driver drives it.
//!
//! Server octets (well-formed replies of every class, multi-line EHLO replies with random
//! keywords, 421s, garbage, over-long lines, random octets) are cut at random points and
//! interleaved with random driver actions: submit a message, stream content pieces (random
//! octets, bare CR and LF, dots), end it, finish the TLS handshake, quit, a timeout, the
//! server closing. Checked: no panic; every submitted message completes exactly once, with
//! one outcome per recipient; `Closed` comes once, and after it only the outcomes of
//! messages submitted late, and nothing more is written; what goes on the wire never holds
//! a bare CR or LF.
//!
//! Also: content cut anywhere goes through the dot-stuffing encoder and our strict DATA
//! decoder and comes out with every line end CRLF and nothing else changed.

use golub_fuzzkit as support;

use std::time::{Duration, Instant};

use golub_smtp::body::DataDecoder;
use golub_smtp::client::{ClientConfig, ClientEvent, ClientSession, DotStuffer, TlsPolicy};
use golub_types::{Envelope, ForwardPath, ReversePath};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

#[derive(Debug, Clone)]
enum Step {
    /// Server octets.
    Server(Vec<u8>),
    /// Submit a message with this many recipients (one of them non-ASCII when `utf8`).
    Send {
        rcpts: usize,
        utf8: bool,
    },
    Chunk(Vec<u8>),
    End,
    Tls,
    Quit,
    Advance(u64),
    Close,
}

fn reply() -> impl Strategy<Value = Vec<u8>> {
    let code = prop::sample::select(vec![
        220u16, 221, 250, 251, 354, 421, 450, 451, 452, 500, 502, 503, 550, 552, 553, 554,
    ]);
    let keyword = prop::sample::select(vec![
        "PIPELINING",
        "SIZE 100",
        "SIZE",
        "SIZE x",
        "8BITMIME",
        "SMTPUTF8",
        "STARTTLS",
        "CHUNKING",
        "ENHANCEDSTATUSCODES",
        "",
    ]);
    prop_oneof![
        4 => (code.clone(), "[ -~]{0,20}")
            .prop_map(|(c, t)| format!("{c} {t}\r\n").into_bytes()),
        2 => (code.clone(), "[0-9]\\.[0-9]{1,3}\\.[0-9]{1,3}", "[ -~]{0,10}")
            .prop_map(|(c, e, t)| format!("{c} {e} {t}\r\n").into_bytes()),
        2 => prop::collection::vec(keyword, 0..6).prop_map(|kws| {
            let mut s = String::new();
            for k in &kws {
                s.push_str(&format!("250-{k}\r\n"));
            }
            s.push_str("250 mx.example\r\n");
            s.into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => (1usize..6000).prop_map(|n| {
            let mut v = b"250 ".to_vec();
            v.extend(std::iter::repeat_n(b'x', n));
            v.extend_from_slice(b"\r\n");
            v
        }),
        1 => Just(b"250-a\r\n251 b\r\n".to_vec()),
        1 => Just(b"354\n".to_vec()),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => reply().prop_map(Step::Server),
        2 => (0usize..4, any::<bool>()).prop_map(|(rcpts, utf8)| Step::Send { rcpts, utf8 }),
        2 => prop::collection::vec(
            prop::sample::select(vec![b'.', b'\r', b'\n', b'a', 0xC3]),
            0..30
        )
        .prop_map(Step::Chunk),
        1 => Just(Step::End),
        1 => Just(Step::Tls),
        1 => Just(Step::Quit),
        1 => (0u64..700).prop_map(Step::Advance),
        1 => Just(Step::Close),
    ]
}

fn envelope(rcpts: usize, utf8: bool) -> Envelope {
    let forward_paths = (0..rcpts)
        .map(|i| {
            let p = if utf8 && i == 0 {
                "<δοκιμή@mx.example>".to_string()
            } else {
                format!("<r{i}@mx.example>")
            };
            ForwardPath::parse(&p, true).unwrap()
        })
        .collect();
    Envelope {
        reverse_path: ReversePath::parse("<a@out.example>", true).unwrap(),
        forward_paths,
        smtputf8: false,
        eight_bit: false,
        dsn: Default::default(),
        rcpt_dsn: Vec::new(),
    }
}

fn check(steps: &[Step], config: ClientConfig) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    let mut now = t0;
    let mut s = ClientSession::new(config, now);
    // Per message: its recipient count and how often it completed.
    let mut sent: Vec<(usize, usize)> = Vec::new();
    let mut closed = false;
    let mut in_body = false;
    let mut wire = Vec::new();
    let drain = |s: &mut ClientSession,
                 sent: &mut Vec<(usize, usize)>,
                 closed: &mut bool,
                 in_body: &mut bool,
                 wire: &mut Vec<u8>|
     -> Result<(), TestCaseError> {
        let before = wire.len();
        s.poll_output(wire);
        prop_assert!(
            !*closed || wire.len() == before,
            "output after Closed: {:?}",
            String::from_utf8_lossy(&wire[before..])
        );
        while let Some(e) = s.poll_event() {
            // A message submitted after the end still gets its (temporary) outcome.
            prop_assert!(
                !*closed || matches!(e, ClientEvent::MessageCompleted { .. }),
                "event after Closed: {e:?}"
            );
            match e {
                ClientEvent::MessageCompleted { id, recipients, .. } => {
                    let m = sent.get_mut(id.0 as usize);
                    prop_assert!(m.is_some(), "unknown message {id:?}");
                    let m = m.unwrap();
                    prop_assert_eq!(recipients.len(), m.0);
                    m.1 += 1;
                    prop_assert_eq!(m.1, 1, "message {:?} completed twice", id);
                    *in_body = false;
                }
                ClientEvent::BodyRequested { .. } => *in_body = true,
                ClientEvent::Closed { .. } => *closed = true,
                _ => {}
            }
        }
        Ok(())
    };
    for step in steps {
        match step {
            Step::Server(octets) => s.handle_input(octets, now),
            Step::Send { rcpts, utf8 } => {
                let id = s.send(envelope(*rcpts, *utf8), Some(10), now);
                prop_assert_eq!(id.0 as usize, sent.len());
                sent.push((*rcpts, 0));
            }
            Step::Chunk(octets) => s.body_chunk(octets, now),
            Step::End => s.body_end(now),
            Step::Tls => s.tls_established(now),
            Step::Quit => s.quit(now),
            Step::Advance(secs) => {
                now += Duration::from_secs(*secs);
                s.handle_timeout(now);
            }
            Step::Close => s.handle_close(now),
        }
        drain(&mut s, &mut sent, &mut closed, &mut in_body, &mut wire)?;
        if let Some(deadline) = s.poll_timeout() {
            prop_assert!(deadline >= now, "deadline in the past");
        }
    }
    s.handle_close(now);
    drain(&mut s, &mut sent, &mut closed, &mut in_body, &mut wire)?;
    prop_assert!(closed, "not closed after the connection closed");
    prop_assert!(s.is_closed());
    for (i, (_, n)) in sent.iter().enumerate() {
        prop_assert_eq!(*n, 1, "message {} completed {} times", i, n);
    }
    // Commands and content alike: every CR is followed by LF and every LF preceded by CR.
    for (i, &b) in wire.iter().enumerate() {
        match b {
            b'\r' => prop_assert_eq!(wire.get(i + 1), Some(&b'\n')),
            b'\n' => prop_assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {}", i),
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn random_server_replies_and_driver_actions_keep_the_client_sound() {
    let policy = prop::sample::select(vec![
        TlsPolicy::Off,
        TlsPolicy::Opportunistic,
        TlsPolicy::Required,
    ]);
    support::fuzz(
        "smtp_client",
        1500,
        (prop::collection::vec(step(), 0..40), policy),
        |(steps, tls)| {
            check(
                &steps,
                ClientConfig {
                    hostname: "out.example".into(),
                    tls,
                    ..ClientConfig::default()
                },
            )
        },
    );
}

#[test]
fn a_likely_conversation_delivers() {
    let steps = [
        Step::Send {
            rcpts: 2,
            utf8: false,
        },
        Step::Server(b"220 mx.example\r\n".to_vec()),
        Step::Server(b"250-mx.example\r\n250 PIPELINING\r\n".to_vec()),
        Step::Server(b"250 ok\r\n250 ok\r\n450 later\r\n354 go\r\n".to_vec()),
        Step::Chunk(b"a\r\n.\n\r".to_vec()),
        Step::End,
        Step::Server(b"250 ok\r\n".to_vec()),
        Step::Quit,
        Step::Server(b"221 bye\r\n".to_vec()),
    ];
    check(&steps, ClientConfig::default()).unwrap();
}

/// The content a receiver should read for `input`: every CRLF, lone CR and lone LF a line
/// end, and a line end at the end.
fn normalized(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn content_cut_anywhere_reaches_a_strict_receiver_normalized() {
    let content = prop::collection::vec(
        prop::sample::select(vec![b'.', b'\r', b'\n', b'a', b' ']),
        0..60,
    );
    let cuts = prop::collection::vec(0usize..60, 0..6);
    support::fuzz(
        "smtp_client_content",
        1500,
        (content, cuts),
        |(input, mut cuts)| {
            cuts.retain(|&c| c <= input.len());
            cuts.sort_unstable();
            let mut stuffer = DotStuffer::new();
            let mut wire = Vec::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([input.len()]) {
                stuffer.encode(&input[from..c], &mut wire);
                from = c;
            }
            stuffer.finish(&mut wire);
            let mut decoder = DataDecoder::new(1 << 20, 0);
            prop_assert_eq!(
                decoder.feed(&wire),
                Some(wire.len()),
                "ends at the last line"
            );
            let body = decoder.finish();
            prop_assert_eq!(body, Ok(normalized(&input)));
            Ok(())
        },
    );
}
