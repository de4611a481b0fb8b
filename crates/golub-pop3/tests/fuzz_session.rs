//! Fuzz target: the POP3 session, driven like pop3d drives it.
//!
//! Client octets (USER/PASS, AUTH PLAIN/LOGIN with random base64, STLS, STAT, LIST, RETR,
//! TOP, DELE, UIDL, RSET, NOOP, QUIT, garbage, long lines) are cut at random points and
//! fed with random time advances; every decision is answered at random (a random
//! maildrop or a refusal, random message octets or unavailable, update ok or not, a
//! decision of the wrong kind, shutdown), and so is the TLS handshake. Checked: no
//! panic; every response line starts with "+OK", "-ERR" or "+ ", or belongs to a
//! multi-line response that ends with ".": there no line is a lone "." and a line
//! starting with "." is stuffed; a RETR body is the message with CRLF line ends; output
//! never stops mid-line and has no bare LF; ContentNeeded and UpdateRequested name
//! messages of the maildrop; no timer while a decision is pending; after `is_closed()`
//! nothing comes out any more; the heap the session keeps stays under 2 × (SASL line +
//! read size) + 2 × largest output + 16 KiB.
//!
//! Seeds: the client side (`C:`, `C-` and `! config` lines) of every
//! `tests/transcripts/*.txt`, then the hand-written `tests/corpus/session/*.txt` in the
//! same syntax; each runs whole and one octet at a time,
//! accepting every decision and then refusing every one.

use golub_fuzzkit as support;

#[path = "support/config.rs"]
mod config;

use std::time::{Duration, Instant};

use golub_pop3::{AuthFailure, Event, MessageInfo, Pop3Config, Session};
use golub_types::sasl::encode_base64;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

/// RFC 5034 §4's 12288 octets and CRLF: the longest line the session keeps.
const MAX_SASL_LINE: usize = 12290;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Auth,
    Credentials,
    Content { top: bool },
    Update,
}

/// What the driver answers with: maildrops and message contents to pick from.
#[derive(Debug, Clone)]
struct Answers {
    decisions: Vec<u8>,
    maildrops: Vec<Vec<MessageInfo>>,
    contents: Vec<Vec<u8>>,
}

struct Driver {
    session: Session,
    now: Instant,
    output: Vec<u8>,
    held: isize,
    largest_read: usize,
    largest_output: usize,
    answers: Answers,
    next: usize,
    pending: Option<Pending>,
    maildrop_len: usize,
    /// The bodies RETR must show, in order.
    retr_bodies: Vec<Vec<u8>>,
    tls_requested: bool,
    gone: bool,
    silent: bool,
}

/// The message as a multi-line body shows it: every line ends in CRLF.
fn crlf_lines(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if content.is_empty() {
        return out;
    }
    for line in content
        .strip_suffix(b"\n")
        .unwrap_or(content)
        .split(|&b| b == b'\n')
    {
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Driver {
    fn new(config: Pop3Config, answers: Answers) -> Result<Driver, TestCaseError> {
        let now = Instant::now();
        let before = support::live();
        let session = Session::new(config, now);
        let held = support::live() - before;
        let mut d = Driver {
            session,
            now,
            output: Vec::new(),
            held,
            largest_read: 0,
            largest_output: 0,
            answers,
            next: 0,
            pending: None,
            maildrop_len: 0,
            retr_bodies: Vec::new(),
            tls_requested: false,
            gone: false,
            silent: false,
        };
        d.settle()?;
        Ok(d)
    }

    fn call<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> R {
        self.silent = self.session.is_closed();
        let before = support::live();
        let r = f(&mut self.session);
        self.held += support::live() - before;
        r
    }

    fn bound(&self) -> isize {
        (2 * (MAX_SASL_LINE + self.largest_read) + 2 * self.largest_output + 16 * 1024) as isize
    }

    fn decision(&mut self) -> u8 {
        let d = self
            .answers
            .decisions
            .get(self.next % self.answers.decisions.len().max(1));
        self.next += 1;
        d.copied().unwrap_or(0)
    }

    fn poll(&mut self) -> Result<(), TestCaseError> {
        let before = support::live();
        let mut out = Vec::new();
        self.session.poll_output(&mut out);
        let mut seen = Vec::with_capacity(4);
        let maildrop_len = self.maildrop_len;
        let mut bad = None;
        while let Some(event) = self.session.poll_event() {
            let p = match event {
                Event::StlsRequested => None,
                Event::AuthAttempted { .. } => Some(Pending::Auth),
                Event::CredentialsNeeded { .. } => Some(Pending::Credentials),
                Event::ContentNeeded { index, top } => {
                    if index >= maildrop_len {
                        bad = Some(format!("content of message {index} of {maildrop_len}"));
                    }
                    Some(Pending::Content { top: top.is_some() })
                }
                Event::UpdateRequested { deleted } => {
                    if !deleted.windows(2).all(|w| w[0] < w[1])
                        || deleted.iter().any(|&i| i >= maildrop_len)
                    {
                        bad = Some(format!("update of {deleted:?} of {maildrop_len}"));
                    }
                    Some(Pending::Update)
                }
            };
            if seen.len() < seen.capacity() {
                seen.push(p);
            }
        }
        self.held += support::live()
            - before
            - out.capacity() as isize
            - (seen.capacity() * size_of::<Option<Pending>>()) as isize;
        if let Some(bad) = bad {
            return Err(TestCaseError::fail(bad));
        }
        if !out.is_empty() {
            prop_assert!(
                out.ends_with(b"\r\n"),
                "output cut mid-line: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        if self.silent {
            prop_assert!(
                out.is_empty(),
                "output after close: {:?}",
                String::from_utf8_lossy(&out)
            );
            prop_assert!(seen.is_empty(), "events after close");
        }
        self.largest_output = self.largest_output.max(out.len());
        self.output.extend_from_slice(&out);
        for p in seen {
            match p {
                None => self.tls_requested = true,
                Some(p) => self.pending = Some(p),
            }
        }
        prop_assert!(
            self.held <= self.bound(),
            "session holds {} octets, bound {}",
            self.held,
            self.bound()
        );
        Ok(())
    }

    fn settle(&mut self) -> Result<(), TestCaseError> {
        loop {
            self.poll()?;
            if self.session.is_closed() {
                prop_assert!(
                    self.session.poll_timeout().is_none(),
                    "timer armed after close"
                );
                return Ok(());
            }
            if !self.session.wants_decision() {
                return Ok(());
            }
            prop_assert!(
                self.session.poll_timeout().is_none(),
                "timer armed during a decision"
            );
            self.decide()?;
        }
    }

    fn decide(&mut self) -> Result<(), TestCaseError> {
        let d = self.decision();
        let pending = self.pending.take();
        if d == 255 {
            self.call(|s| s.shutdown());
            return Ok(());
        }
        if d % 16 >= 13 {
            let late = self.now + Duration::from_secs(86_400);
            self.call(|s| {
                s.handle_timeout(late);
                match pending {
                    Some(Pending::Auth | Pending::Credentials) => s.provide_content(b"x".to_vec()),
                    Some(Pending::Content { .. }) => s.auth_succeeded(Vec::new()),
                    _ => s.content_unavailable(),
                }
            });
            prop_assert!(
                self.session.wants_decision(),
                "a stray call took the decision"
            );
            let before = self.output.len();
            self.poll()?;
            prop_assert_eq!(self.output.len(), before, "a stray call made output");
        }
        let pick = (d / 16) as usize;
        // Three in four decisions accept, so that sessions get far.
        let accept = pick % 4 != 3;
        match pending {
            Some(Pending::Auth) if accept => {
                let drops = &self.answers.maildrops;
                let maildrop = drops
                    .get(pick / 2 % drops.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                self.maildrop_len = maildrop.len();
                self.call(move |s| s.auth_succeeded(maildrop.clone()));
            }
            Some(Pending::Auth) => {
                let why = [
                    AuthFailure::Invalid,
                    AuthFailure::InUse,
                    AuthFailure::TempFail,
                    AuthFailure::Blocked,
                ][pick / 2 % 4];
                self.call(|s| s.auth_failed(why));
            }
            Some(Pending::Credentials) if accept => self.call(|s| {
                s.scram_credentials(
                    golub_types::sasl::scram::ScramCredentials::derive("pw", b"salt", 1),
                    "nonce",
                )
            }),
            Some(Pending::Credentials) => self.call(|s| s.auth_failed(AuthFailure::TempFail)),
            Some(Pending::Content { top }) if accept => {
                let contents = &self.answers.contents;
                let content = contents
                    .get(pick / 2 % contents.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                if !top {
                    self.retr_bodies.push(crlf_lines(&content));
                }
                self.call(move |s| s.provide_content(content.clone()));
            }
            Some(Pending::Content { .. }) => self.call(|s| s.content_unavailable()),
            Some(Pending::Update) => self.call(|s| s.update_done(accept)),
            None => prop_assert!(false, "a decision is wanted but no event asked for one"),
        }
        Ok(())
    }

    fn read(&mut self, chunk: &[u8], advance: u64) -> Result<(), TestCaseError> {
        if self.gone {
            return Ok(());
        }
        if self.tls_requested {
            self.tls_requested = false;
            if self.decision() % 8 == 7 {
                self.gone = true;
                return Ok(());
            }
            let before = self.output.len();
            let now = self.now;
            self.call(|s| s.tls_established(now));
            self.settle()?;
            prop_assert_eq!(
                self.output.len(),
                before,
                "output right after the handshake"
            );
        }
        if advance > 0 {
            self.now += Duration::from_secs(advance);
            let now = self.now;
            self.call(|s| s.handle_timeout(now));
            self.settle()?;
        }
        self.largest_read = self.largest_read.max(chunk.len());
        let now = self.now;
        self.call(|s| s.handle_input(chunk, now));
        self.settle()
    }

    fn finish(mut self) -> Result<Vec<u8>, TestCaseError> {
        if !self.gone {
            if !self.session.is_closed() {
                self.call(|s| s.shutdown());
                self.settle()?;
                prop_assert!(self.session.is_closed(), "shutdown did not close");
            }
            let end = self.output.len();
            let later = self.now + Duration::from_secs(86_400);
            self.call(|s| {
                s.handle_input(b"NOOP\r\nQUIT\r\n", later);
                s.handle_timeout(later);
                s.shutdown();
                s.auth_succeeded(Vec::new());
                s.provide_content(b"x".to_vec());
                s.update_done(true);
                s.tls_established(later);
            });
            self.poll()?;
            prop_assert_eq!(self.output.len(), end, "output after close");
        }
        check_responses(&self.output, &self.retr_bodies)?;
        Ok(self.output)
    }
}

/// True for the "+OK" texts that a multi-line body follows.
fn opens_multiline(text: &str) -> bool {
    let numbers = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    matches!(
        text,
        "capability list follows"
            | "supported mechanisms follow"
            | "unique-id listing follows"
            | "top of message follows"
    ) || text.strip_suffix(" octets").is_some_and(numbers)
        || text
            .strip_suffix(" octets)")
            .and_then(|t| t.split_once(" messages ("))
            .is_some_and(|(a, b)| numbers(a) && numbers(b))
}

fn check_responses(output: &[u8], retr_bodies: &[Vec<u8>]) -> Result<(), TestCaseError> {
    if output.is_empty() {
        return Ok(());
    }
    prop_assert!(output.ends_with(b"\r\n"), "output does not end in CRLF");
    let mut retr = retr_bodies.iter();
    // Inside a multi-line body: the body so far, and the RETR body it must equal.
    let mut body: Option<(Vec<u8>, Option<&Vec<u8>>)> = None;
    for line in output[..output.len() - 1].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").ok_or_else(|| {
            TestCaseError::fail(format!(
                "bare LF before {:?}",
                String::from_utf8_lossy(line)
            ))
        })?;
        let shown = String::from_utf8_lossy(line);
        if let Some((got, want)) = &mut body {
            if line == b"." {
                if let Some(want) = want {
                    prop_assert_eq!(
                        String::from_utf8_lossy(got),
                        String::from_utf8_lossy(want),
                        "RETR body"
                    );
                }
                body = None;
            } else {
                let unstuffed = if line.starts_with(b".") {
                    prop_assert!(line.starts_with(b".."), "unstuffed body line {:?}", shown);
                    &line[1..]
                } else {
                    line
                };
                got.extend_from_slice(unstuffed);
                got.extend_from_slice(b"\r\n");
            }
            continue;
        }
        prop_assert!(!line.contains(&b'\r'), "CR in a status line {:?}", shown);
        if line == b"+OK" || line.starts_with(b"+OK ") {
            let text = std::str::from_utf8(&line[line.len().min(4)..]).unwrap_or("");
            if opens_multiline(text) {
                let want = if text
                    .strip_suffix(" octets")
                    .is_some_and(|n| !n.contains(' '))
                {
                    Some(
                        retr.next()
                            .ok_or_else(|| TestCaseError::fail("RETR response without content"))?,
                    )
                } else {
                    None
                };
                body = Some((Vec::new(), want));
            }
        } else {
            prop_assert!(
                line == b"-ERR" || line.starts_with(b"-ERR ") || line.starts_with(b"+ "),
                "bad response line {:?}",
                shown
            );
        }
    }
    prop_assert!(body.is_none(), "output ends inside a multi-line response");
    prop_assert!(
        retr.next().is_none(),
        "content provided but no RETR response"
    );
    Ok(())
}

/// A seed's configuration and client octets.
fn parse_seed(text: &str) -> (Pop3Config, Vec<u8>) {
    let (words, input) = support::transcript::client_side(text);
    let mut config = config::base();
    for line in words {
        config::configure(&mut config, &line).unwrap_or_else(|e| panic!("{e}"));
    }
    (config, input)
}

fn run(
    config: &Pop3Config,
    reads: &[&[u8]],
    advances: &[u64],
    answers: Answers,
) -> Result<Vec<u8>, TestCaseError> {
    let mut driver = Driver::new(config.clone(), answers)?;
    for (i, read) in reads.iter().enumerate() {
        let advance = advances
            .get(i % advances.len().max(1))
            .copied()
            .unwrap_or(0);
        driver.read(read, advance)?;
    }
    driver.finish()
}

fn fixture_answers(decisions: Vec<u8>) -> Answers {
    let contents: Vec<Vec<u8>> = vec![
        include_bytes!("fixtures/plain.eml").to_vec(),
        include_bytes!("fixtures/dot-lines.eml").to_vec(),
        include_bytes!("fixtures/long-body.eml").to_vec(),
    ];
    let maildrop = contents
        .iter()
        .enumerate()
        .map(|(i, c)| MessageInfo {
            size: c.len() as u64,
            uid: format!("uid-{i}"),
        })
        .collect();
    Answers {
        decisions,
        maildrops: vec![maildrop],
        contents,
    }
}

#[test]
fn session_seeds_keep_the_response_grammar() {
    let seeds = support::session_seeds(env!("CARGO_MANIFEST_DIR"));
    assert!(seeds.len() >= 20, "only {} session seeds", seeds.len());
    for (path, text) in seeds {
        let (config, input) = parse_seed(&text);
        let fail = |e: TestCaseError| panic!("{}: {e}", path.display());
        for decisions in [vec![0u8], vec![16u8], vec![0, 17, 2, 13, 32, 1]] {
            let whole = run(&config, &[&input], &[0], fixture_answers(decisions.clone()))
                .unwrap_or_else(fail);
            let octets: Vec<&[u8]> = input.chunks(1).collect();
            let one_by_one = run(&config, &octets, &[0], fixture_answers(decisions.clone()))
                .unwrap_or_else(fail);
            if decisions == [0] && !text.to_ascii_uppercase().contains("STLS") {
                assert_eq!(
                    String::from_utf8_lossy(&whole),
                    String::from_utf8_lossy(&one_by_one),
                    "{}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn large_inputs_keep_memory_bounded() {
    let config = Pop3Config {
        allow_plaintext_auth: true,
        stls_available: true,
        ..Pop3Config::default()
    };
    let cases: Vec<(&str, String, String)> = vec![
        ("no line end", String::new(), "z".repeat(4096)),
        (
            "auth line without end",
            String::new(),
            format!("AUTH PLAIN {}", "A".repeat(4090)),
        ),
        (
            "sasl line without end",
            "AUTH PLAIN\r\n".into(),
            "A".repeat(4096),
        ),
        ("after stls", "STLS\r\n".into(), "NOOP\r\n".repeat(600)),
        (
            "pipelined retr",
            "USER a\r\nPASS b\r\n".into(),
            "RETR 1\r\nTOP 1 2\r\nLIST\r\nUIDL\r\nRSET\r\n".repeat(100),
        ),
    ];
    for (name, head, body) in cases {
        let mut driver = Driver::new(config.clone(), fixture_answers(vec![0])).unwrap();
        driver.read(head.as_bytes(), 0).unwrap();
        driver.tls_requested = false;
        let mut sent = head.len();
        let mut worst = 0;
        while sent < 4 * 1024 * 1024 && !driver.session.is_closed() {
            for piece in body.as_bytes().chunks(4096) {
                driver
                    .read(piece, 0)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                sent += piece.len();
            }
            worst = worst.max(driver.held);
        }
        eprintln!(
            "{name}: {sent} octets sent, at most {worst} held (bound {})",
            driver.bound()
        );
        driver.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn sasl_response() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(vec!["", "admin"]),
            prop::sample::select(vec!["alice@example.org", "", "x\0y"]),
            prop::sample::select(vec!["secret", "", "pass word"]),
        )
            .prop_map(|(z, c, p)| encode_base64(format!("{z}\0{c}\0{p}").as_bytes())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| encode_base64(&b)),
        "[A-Za-z0-9+/=]{0,24}",
        Just("=".to_string()),
        Just("*".to_string()),
    ]
}

/// Mostly well-formed pieces: sessions that log in and read messages.
fn valid_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(b"USER alice@example.org\r\nPASS secret\r\n".to_vec()),
        1 => Just(b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n".to_vec()),
        4 => (prop::sample::select(vec!["RETR", "RETR", "RETR", "TOP", "DELE", "LIST", "UIDL"]), 1u64..4, 0u64..4)
            .prop_map(|(c, n, m)| {
                let line = if c == "TOP" { format!("{c} {n} {m}\r\n") } else { format!("{c} {n}\r\n") };
                line.into_bytes()
            }),
        1 => prop::sample::select(vec![&b"STAT\r\n"[..], b"LIST\r\n", b"UIDL\r\n", b"RSET\r\n", b"CAPA\r\n", b"STLS\r\n", b"QUIT\r\n"])
            .prop_map(<[u8]>::to_vec),
        1 => piece(),
    ]
}

/// One piece of what a client sends.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let line = |s: String| {
        let mut v = s.into_bytes();
        v.extend_from_slice(b"\r\n");
        v
    };
    let number = prop_oneof![0u64..6, Just(u64::MAX), Just(4_294_967_297)];
    prop_oneof![
        3 => Just(line("USER alice@example.org".into())),
        3 => "[ -~]{0,12}".prop_map(move |p| line(format!("PASS {p}"))),
        2 => prop::sample::select(vec!["AUTH PLAIN", "AUTH LOGIN", "AUTH", "AUTH CRAM-MD5", "auth plain"])
            .prop_map(move |s| line(s.into())),
        2 => sasl_response().prop_map(move |r| line(format!("AUTH PLAIN {r}"))),
        2 => sasl_response().prop_map(line),
        1 => Just(b"STLS\r\nUSER injected\r\n".to_vec()),
        6 => (prop::sample::select(vec!["RETR", "TOP", "DELE", "LIST", "UIDL", "retr", "top"]), number.clone(), prop::option::of(number))
            .prop_map(move |(c, n, m)| line(match m { Some(m) => format!("{c} {n} {m}"), None => format!("{c} {n}") })),
        3 => prop::sample::select(vec!["STAT", "LIST", "UIDL", "RSET", "NOOP", "QUIT", "CAPA", "STLS", "APOP a b", "TOP 1", "XTND"])
            .prop_map(move |s| line(s.into())),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::collection::vec(prop::sample::select(vec![b'\r', b'\n', b'.', b'a', b' ', b'\t', 0]), 0..20),
        1 => (200usize..3000, prop::bool::ANY).prop_map(|(n, end)| {
            let mut v = vec![b'L'; n];
            if end { v.extend_from_slice(b"\r\n"); }
            v
        }),
        1 => (1000usize..15_000).prop_map(|n| { let mut v = b"AUTH PLAIN ".to_vec(); v.extend(std::iter::repeat_n(b'Q', n)); v }),
    ]
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(
            prop::sample::select(vec![
                &b"Subject: x\r\n"[..],
                b"\r\n",
                b"\n",
                b"\r",
                b".",
                b"..",
                b".\r\n",
                b".\n",
                b"body line",
                b"\r\n.\r\n",
                b"\x00\xff",
                b"From: a\n",
            ])
            .prop_map(<[u8]>::to_vec),
            0..20,
        )
        .prop_map(|v| v.concat()),
        prop::collection::vec(any::<u8>(), 0..100),
    ]
}

fn maildrop() -> impl Strategy<Value = Vec<MessageInfo>> {
    let info = (prop_oneof![0u64..5000, Just(u64::MAX)], "[!-~]{1,70}")
        .prop_map(|(size, uid)| MessageInfo { size, uid });
    prop_oneof![
        1 => Just(Vec::new()),
        4 => prop::collection::vec(info, 1..5),
    ]
}

fn config() -> impl Strategy<Value = Pop3Config> {
    (
        (any::<bool>(), any::<bool>(), prop::bool::weighted(0.8)),
        prop::sample::select(vec![
            vec![],
            vec!["PLAIN"],
            vec!["LOGIN", "PLAIN", "PLAIN"],
            vec!["CRAM-MD5"],
        ]),
        prop::sample::select(vec![16usize, 64, 255, 255, 255]),
        0usize..15,
        prop::option::of(0u32..900),
    )
        .prop_map(
            |((stls, tls, plain), mechs, max_line, max_errors, login_delay)| Pop3Config {
                stls_available: stls,
                tls_active: tls,
                allow_plaintext_auth: plain,
                sasl_mechanisms: mechs.into_iter().map(String::from).collect(),
                max_line,
                max_errors,
                login_delay,
                ..Pop3Config::default()
            },
        )
}

#[derive(Debug, Clone)]
struct Case {
    config: Pop3Config,
    input: Vec<u8>,
    cuts: Vec<prop::sample::Index>,
    advances: Vec<u64>,
    answers: Answers,
}

fn case() -> impl Strategy<Value = Case> {
    (
        config(),
        prop_oneof![
            prop::collection::vec(piece(), 0..24),
            prop::collection::vec(valid_piece(), 1..16).prop_map(|mut v| {
                v.insert(0, b"USER alice@example.org\r\nPASS secret\r\n".to_vec());
                v
            }),
        ],
        prop::collection::vec(any::<prop::sample::Index>(), 0..24),
        prop::collection::vec(prop_oneof![6 => Just(0u64), 1 => 1u64..900], 1..6),
        (
            prop::collection::vec(any::<u8>(), 1..16),
            prop::collection::vec(maildrop(), 1..3),
            prop::collection::vec(message(), 1..4),
        ),
    )
        .prop_map(
            |(config, pieces, cuts, advances, (decisions, maildrops, contents))| Case {
                config,
                input: pieces.concat(),
                cuts,
                advances,
                answers: Answers {
                    decisions,
                    maildrops,
                    contents,
                },
            },
        )
}

#[test]
fn random_sessions_keep_the_response_grammar_and_bounded_memory() {
    support::fuzz("pop3_session", 150, case(), |c| {
        let mut cuts: Vec<usize> = c.cuts.iter().map(|i| i.index(c.input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut reads = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([c.input.len()]) {
            reads.push(&c.input[at..cut]);
            at = cut;
        }
        run(&c.config, &reads, &c.advances, c.answers.clone()).map(|_| ())
    });
}
