//! Fuzz target: the SMTP server session, driven like smtpd drives it.
//!
//! Client octets (valid commands, DATA bodies with dot, CR and LF variants, BDAT with
//! wrong counts, STARTTLS, AUTH with random base64, garbage, long lines) are cut at
//! random points and fed with random time advances; every decision is answered at random
//! (accept, reject, a decision that does not fit, a timeout, shutdown), and so is the TLS
//! handshake. Checked: no panic; the output is complete CRLF-terminated reply lines, each
//! a 3-digit code and " " or "-", multi-line replies keeping their code; no message over
//! the size limit is handed out; while a decision is pending there is no timer; after
//! `is_closed()` nothing comes out any more; and the heap the session keeps stays under
//! 2 × max_message_size + 2 × (SASL line + read size) + 2 × largest output + 16 KiB (the
//! factors 2 are `Vec` growth), however much was sent.
//!
//! Seeds: the client side (`C:`, `C-` and `! config` lines) of every
//! `tests/transcripts/*.txt`, then the hand-written `tests/corpus/session/*.txt` in the
//! same syntax. Each seed runs whole, one octet at a time and cut in three, accepting every
//! decision and then refusing every one.

use golub_fuzzkit as support;

#[path = "support/config.rs"]
mod config;

use std::time::{Duration, Instant};

use golub_smtp::{Event, Session, SessionConfig};
use golub_types::sasl::encode_base64;
use golub_types::{EnhancedCode, QueueId, Reply};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

/// RFC 4954 §4's 12288 octets and CRLF: the longest line the session keeps.
const MAX_SASL_LINE: usize = 12290;

/// What an event was, without holding on to its heap data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Greeted,
    Mail,
    Rcpt,
    Verify,
    /// `MessageStarted`.
    Started,
    /// `BodyReceived` with this many octets.
    Body(usize),
    /// `MessageReceived` of this size.
    Message(u64),
    Aborted,
    StartTls,
    Auth,
    Credentials,
}

fn kind(event: &Event, max_size: usize) -> Result<Kind, TestCaseError> {
    Ok(match event {
        Event::Greeted { .. } => Kind::Greeted,
        Event::MailFrom { .. } => Kind::Mail,
        Event::RcptTo { .. } => Kind::Rcpt,
        Event::Vrfy { .. } | Event::Expn { .. } | Event::EtrnRequested { .. } => Kind::Verify,
        Event::MessageStarted { envelope, .. } => {
            prop_assert!(
                !envelope.forward_paths.is_empty(),
                "message without recipients"
            );
            Kind::Started
        }
        Event::BodyReceived { octets } => {
            prop_assert!(!octets.is_empty(), "empty body piece");
            prop_assert!(octets.len() <= max_size, "piece of {} octets", octets.len());
            Kind::Body(octets.len())
        }
        Event::MessageReceived { size } => {
            prop_assert!(*size <= max_size as u64, "message of {size} octets");
            Kind::Message(*size)
        }
        Event::MessageAborted => Kind::Aborted,
        Event::StartTlsRequested => Kind::StartTls,
        Event::AuthAttempted { .. } => Kind::Auth,
        Event::CredentialsNeeded { .. } => Kind::Credentials,
    })
}

/// A fake smtpd: feeds the session, answers it and checks every step.
struct Driver {
    session: Session,
    config: SessionConfig,
    now: Instant,
    /// All output so far.
    output: Vec<u8>,
    /// Heap octets the session holds, as counted across its calls.
    held: isize,
    largest_read: usize,
    largest_output: usize,
    decisions: Vec<u8>,
    next: usize,
    pending: Option<Kind>,
    tls_requested: bool,
    /// The driver closed the connection (a failed TLS handshake).
    gone: bool,
    messages: usize,
    /// Octets of the started message so far, between `MessageStarted` and its end.
    streaming: Option<u64>,
    /// The session was closed before the last call: it must not say anything more.
    silent: bool,
}

impl Driver {
    fn new(config: SessionConfig, decisions: Vec<u8>) -> Result<Driver, TestCaseError> {
        let now = Instant::now();
        let before = support::live();
        let session = Session::new(config.clone(), now);
        let held = support::live() - before;
        let mut d = Driver {
            session,
            config,
            now,
            output: Vec::new(),
            held,
            largest_read: 0,
            largest_output: 0,
            decisions,
            next: 0,
            pending: None,
            tls_requested: false,
            gone: false,
            messages: 0,
            streaming: None,
            silent: false,
        };
        d.settle()?;
        Ok(d)
    }

    /// Runs `f` on the session, counting what it allocates and keeps.
    fn call<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> R {
        self.silent = self.session.is_closed();
        let before = support::live();
        let r = f(&mut self.session);
        self.held += support::live() - before;
        r
    }

    fn bound(&self) -> isize {
        (2 * self.config.max_message_size
            + 2 * (MAX_SASL_LINE + self.largest_read)
            + 2 * self.largest_output
            + 16 * 1024) as isize
    }

    fn check_held(&self) -> Result<(), TestCaseError> {
        prop_assert!(
            self.held <= self.bound(),
            "session holds {} octets, bound {}",
            self.held,
            self.bound()
        );
        Ok(())
    }

    fn decision(&mut self) -> u8 {
        let d = self.decisions.get(self.next % self.decisions.len().max(1));
        self.next += 1;
        d.copied().unwrap_or(0)
    }

    /// Takes output and events; fails on a reply cut in two or an oversized message.
    fn poll(&mut self) -> Result<(), TestCaseError> {
        let was_closed = self.silent;
        let before = support::live();
        let mut out = Vec::new();
        self.session.poll_output(&mut out);
        let mut kinds = Vec::new();
        let max = self.config.max_message_size;
        let mut bad = None;
        while let Some(event) = self.session.poll_event() {
            match kind(&event, max) {
                Ok(k) => kinds.push(k),
                Err(e) => bad = Some(e),
            }
        }
        self.held += support::live()
            - before
            - out.capacity() as isize
            - kinds.capacity() as isize * size_of::<Kind>() as isize;
        if let Some(e) = bad {
            return Err(e);
        }
        if !out.is_empty() {
            prop_assert!(
                out.ends_with(b"\r\n"),
                "output cut mid-line: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        self.largest_output = self.largest_output.max(out.len());
        if was_closed {
            prop_assert!(
                out.is_empty(),
                "output after close: {:?}",
                String::from_utf8_lossy(&out)
            );
            prop_assert!(kinds.is_empty(), "events after close: {:?}", kinds);
        }
        self.output.extend_from_slice(&out);
        for k in kinds {
            match k {
                Kind::Greeted => {}
                Kind::StartTls => self.tls_requested = true,
                Kind::Started => {
                    prop_assert!(self.streaming.is_none(), "a message started twice");
                    self.streaming = Some(0);
                }
                Kind::Body(n) => match &mut self.streaming {
                    Some(got) => *got += n as u64,
                    None => prop_assert!(false, "body octets outside a message"),
                },
                Kind::Aborted => {
                    prop_assert!(self.streaming.is_some(), "abort without a message");
                    self.streaming = None;
                }
                Kind::Message(size) => {
                    prop_assert_eq!(self.streaming.take(), Some(size), "octets handed out");
                    self.messages += 1;
                    self.pending = Some(k);
                }
                _ => self.pending = Some(k),
            }
        }
        self.check_held()
    }

    /// Polls and answers decisions until none is pending.
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
            // Neither a timeout nor a decision of the wrong kind does anything now.
            self.call(|s| {
                s.handle_timeout(late);
                match pending {
                    Some(Kind::Mail) => s.accept_rcpt(),
                    Some(Kind::Rcpt) => s.accept_message(QueueId(1)),
                    Some(Kind::Message(_)) => s.auth_succeeded(),
                    Some(Kind::Auth) | Some(Kind::Verify) => s.accept_mail(),
                    _ => s.answer(Reply::new(250, EnhancedCode(2, 0, 0), "x")),
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
        // Three in four decisions accept, so that sessions get far.
        let accept = (d / 16) % 4 != 3;
        self.call(|s| match (pending, accept) {
            (Some(Kind::Mail), true) => s.accept_mail(),
            (Some(Kind::Rcpt), true) => s.accept_rcpt(),
            (Some(Kind::Message(_)), true) => s.accept_message(QueueId(0x42)),
            (Some(Kind::Auth), true) => s.auth_succeeded(),
            (Some(Kind::Verify), true) => {
                s.answer(Reply::new(252, EnhancedCode(2, 1, 5), "cannot vrfy"))
            }
            (Some(Kind::Auth), false) => {
                s.reject(Reply::new(535, EnhancedCode(5, 7, 8), "bad credentials"))
            }
            (Some(Kind::Credentials), true) => s.scram_credentials(
                golub_types::sasl::scram::ScramCredentials::derive("pw", b"salt", 1),
                "nonce",
            ),
            _ => s.reject(Reply::new(550, EnhancedCode(5, 7, 1), "refused")),
        });
        Ok(())
    }

    /// One read: the handshake if one was asked for, the clock, then the octets.
    fn read(&mut self, chunk: &[u8], advance: u64) -> Result<(), TestCaseError> {
        if self.gone {
            return Ok(());
        }
        if self.tls_requested {
            self.tls_requested = false;
            if self.decision() % 8 == 7 {
                // The handshake failed: the driver drops the connection.
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

    /// Ends the connection and checks that a closed session stays silent.
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
                s.accept_mail();
                s.accept_message(QueueId(7));
                s.reject(Reply::new(550, EnhancedCode(5, 0, 0), "x"));
                s.tls_established(later);
            });
            self.poll()?;
            prop_assert_eq!(self.output.len(), end, "output after close");
        }
        check_replies(&self.output)?;
        Ok(self.output)
    }
}

/// Every line is CRLF-terminated, "ddd " or "ddd-" and text without CR or LF; a "-"
/// line is followed by a line with the same code.
fn check_replies(output: &[u8]) -> Result<(), TestCaseError> {
    if output.is_empty() {
        return Ok(());
    }
    prop_assert!(output.ends_with(b"\r\n"), "output does not end in CRLF");
    let mut open: Option<&[u8]> = None;
    for line in output[..output.len() - 1].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").ok_or_else(|| {
            TestCaseError::fail(format!(
                "bare LF in output before {:?}",
                String::from_utf8_lossy(line)
            ))
        })?;
        let shown = String::from_utf8_lossy(line);
        prop_assert!(!line.contains(&b'\r'), "bare CR in reply {:?}", shown);
        prop_assert!(line.len() >= 4, "short reply line {:?}", shown);
        prop_assert!(
            line[..3].iter().all(u8::is_ascii_digit),
            "no code: {:?}",
            shown
        );
        prop_assert!(
            matches!(line[0], b'2'..=b'5'),
            "bad code class: {:?}",
            shown
        );
        prop_assert!(matches!(line[3], b' ' | b'-'), "bad separator: {:?}", shown);
        if let Some(code) = open {
            prop_assert_eq!(
                code,
                &line[..3],
                "multi-line reply changed code at {:?}",
                shown
            );
        }
        open = (line[3] == b'-').then(|| &line[..3]);
    }
    prop_assert!(open.is_none(), "output ends inside a multi-line reply");
    Ok(())
}

/// A seed's configuration and client octets.
fn parse_seed(text: &str) -> (SessionConfig, Vec<u8>) {
    let (words, input) = support::transcript::client_side(text);
    let mut config = config::base();
    for line in words {
        config::configure(&mut config, &line).unwrap_or_else(|e| panic!("{e}"));
    }
    (config, input)
}

fn run(
    config: &SessionConfig,
    reads: &[&[u8]],
    advances: &[u64],
    decisions: Vec<u8>,
) -> Result<Vec<u8>, TestCaseError> {
    let mut driver = Driver::new(config.clone(), decisions)?;
    for (i, read) in reads.iter().enumerate() {
        let advance = advances
            .get(i % advances.len().max(1))
            .copied()
            .unwrap_or(0);
        driver.read(read, advance)?;
    }
    driver.finish()
}

#[test]
fn session_seeds_keep_the_reply_grammar() {
    let seeds = support::session_seeds(env!("CARGO_MANIFEST_DIR"));
    assert!(seeds.len() >= 20, "only {} session seeds", seeds.len());
    for (path, text) in seeds {
        let (config, input) = parse_seed(&text);
        let fail = |e: TestCaseError| panic!("{}: {e}", path.display());
        for decisions in [vec![0u8], vec![1u8], vec![0, 1, 2, 13, 4]] {
            let whole = run(&config, &[&input], &[0], decisions.clone()).unwrap_or_else(fail);
            let octets: Vec<&[u8]> = input.chunks(1).collect();
            let one_by_one = run(&config, &octets, &[0], decisions.clone()).unwrap_or_else(fail);
            // Accepting everything, the replies cannot depend on how the input was cut,
            // except where STARTTLS drops what was pipelined after it.
            if decisions == [0] && !text.to_ascii_uppercase().contains("STARTTLS") {
                assert_eq!(
                    String::from_utf8_lossy(&whole),
                    String::from_utf8_lossy(&one_by_one),
                    "{}",
                    path.display()
                );
            }
            let (a, rest) = input.split_at(input.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            run(&config, &[a, b, c], &[0, 200, 0], decisions).unwrap_or_else(fail);
        }
    }
}

#[test]
fn large_inputs_keep_memory_bounded() {
    let config = SessionConfig {
        hostname: "mx.example".into(),
        max_message_size: 64 * 1024,
        auth_mechanisms: vec!["PLAIN".into()],
        auth_without_tls: true,
        starttls_available: true,
        ..SessionConfig::default()
    };
    let tx = "EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@mx.example>\r\n";
    let line = format!("{}\r\n", "x".repeat(998));
    let bdat = format!("BDAT 60000\r\n{}", "y".repeat(60_000));
    let cases: Vec<(&str, String, String)> = vec![
        ("no line end", String::new(), "z".repeat(4096)),
        ("data over the limit", format!("{tx}DATA\r\n"), line.clone()),
        (
            "bdat without mail",
            "BDAT 100000000000\r\n".into(),
            "w".repeat(4096),
        ),
        ("bdat chunks over the limit", tx.into(), bdat),
        (
            "sasl line without end",
            "EHLO c\r\nAUTH PLAIN\r\n".into(),
            "A".repeat(4096),
        ),
        (
            "after starttls",
            "EHLO c\r\nSTARTTLS\r\n".into(),
            "NOOP\r\n".repeat(600),
        ),
        (
            "pipelined commands",
            String::new(),
            "NOOP\r\nRSET\r\n".repeat(300),
        ),
        (
            "long bad lines",
            String::new(),
            format!("{}\r\n", "v".repeat(4000)),
        ),
    ];
    for (name, head, body) in cases {
        let mut driver = Driver::new(config.clone(), vec![0]).unwrap();
        driver.read(head.as_bytes(), 0).unwrap();
        // Only the first STARTTLS case waits for a handshake that never comes.
        driver.tls_requested = false;
        let mut sent = head.len();
        let mut worst = 0;
        while sent < 8 * 1024 * 1024 && !driver.session.is_closed() {
            for piece in body.as_bytes().chunks(4096) {
                driver
                    .read(piece, 0)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                sent += piece.len();
            }
            worst = worst.max(driver.held);
        }
        driver
            .read(b"\r\n.\r\nQUIT\r\n", 0)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
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
            prop::sample::select(vec!["", "admin", "\0"]),
            prop::sample::select(vec!["alice@example.org", "", "bob", "x\0y"]),
            prop::sample::select(vec!["secret", "", "pass word", "\u{e9}"]),
        )
            .prop_map(|(z, c, p)| encode_base64(format!("{z}\0{c}\0{p}").as_bytes())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| encode_base64(&b)),
        "[A-Za-z0-9+/=]{0,24}",
        Just("=".to_string()),
        Just("*".to_string()),
    ]
}

fn address() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "<a@client.example>",
        "<>",
        "<b@mx.example>",
        "<Postmaster>",
        "<\"odd user\"@mx.example>",
        "<@relay.example:c@mx.example>",
        "<j\u{f6}rg@mx.example>",
        "<x@[192.0.2.1]>",
        "<broken",
        "<a@@b>",
    ])
    .prop_map(str::to_string)
}

/// Lines of a DATA body, with the line-ending and dot variants that smuggling tries.
fn body_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[ -~]{0,30}\r\n".prop_map(String::into_bytes),
        2 => prop::sample::select(vec![
            &b".\r\n"[..], b"..\r\n", b".hidden\r\n", b"\r\n", b"a\n.\r\n", b"a\r\n.\n", b"\n.\n",
            b"a\r.\r\n", b"\r\n.\r", b".\r\r\n", b"\n", b"\r", b"x\r\n.\r\nMAIL FROM:<e@v.il>\r\n",
            b"\r\n.\r\n", b"\x00\xff\r\n",
        ]).prop_map(<[u8]>::to_vec),
        1 => (0usize..1500).prop_map(|n| { let mut v = vec![b'l'; n]; v.extend_from_slice(b"\r\n"); v }),
    ]
}

/// A whole transaction, so that random sessions reach the message decision.
fn transaction() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["EHLO c.example\r\n", "HELO c.example\r\n", ""]),
        prop::collection::vec(body_line(), 0..4),
        prop::option::of((0usize..40, prop::bool::ANY)),
    )
        .prop_map(|(hello, lines, bdat)| {
            let mut v = format!("{hello}MAIL FROM:<a@c.example>\r\nRCPT TO:<b@mx.example>\r\n")
                .into_bytes();
            match bdat {
                Some((n, last)) => {
                    v.extend_from_slice(
                        format!("BDAT {n}{}\r\n", if last { " LAST" } else { "" }).as_bytes(),
                    );
                    v.extend(std::iter::repeat_n(b'b', n));
                }
                None => {
                    v.extend_from_slice(b"DATA\r\n");
                    v.extend(lines.concat());
                    v.extend_from_slice(b".\r\n");
                }
            }
            v
        })
}

/// Mostly well-formed pieces: sessions that get as far as messages and AUTH.
fn valid_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => transaction(),
        1 => Just(b"EHLO c.example\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n".to_vec()),
        1 => prop::sample::select(vec![&b"RSET\r\n"[..], b"NOOP\r\n", b"EHLO c.example\r\n", b"STARTTLS\r\n"])
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
    prop_oneof![
        2 => prop::sample::select(vec!["EHLO client.example", "HELO client.example", "ehlo x"])
            .prop_map(move |s| line(s.into())),
        3 => (
            prop::sample::select(vec!["MAIL FROM:", "SEND FROM:", "mail from: "]),
            address(),
            prop::sample::select(vec!["", " SIZE=100", " SIZE=99999999", " BODY=8BITMIME", " SMTPUTF8", " AUTH=<>", " FOO=1"]),
        ).prop_map(move |(v, a, p)| line(format!("{v}{a}{p}"))),
        3 => address().prop_map(move |a| line(format!("RCPT TO:{a}"))),
        2 => Just(line("DATA".into())),
        4 => transaction(),
        // EHLO and AUTH PLAIN with good-looking credentials.
        2 => Just(b"EHLO c.example\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n".to_vec()),
        3 => prop::collection::vec(body_line(), 0..6).prop_map(|lines| lines.concat()),
        2 => Just(b".\r\n".to_vec()),
        3 => (0u64..300, prop::bool::ANY, -3i64..4, any::<u8>()).prop_map(|(n, last, off, fill)| {
            let mut v = format!("BDAT {n}{}\r\n", if last { " LAST" } else { "" }).into_bytes();
            let m = (n as i64 + off).max(0) as usize;
            v.extend(std::iter::repeat_n(fill, m));
            v
        }),
        1 => Just(b"BDAT 0 LAST\r\n".to_vec()),
        1 => Just(b"BDAT 18446744073709551615\r\n".to_vec()),
        2 => prop::sample::select(vec!["RSET", "NOOP", "QUIT", "HELP", "VRFY joe", "EXPN staff", "STARTTLS", "STARTTLS x", "AUTH LOGIN", "AUTH PLAIN", "AUTH CRAM-MD5"])
            .prop_map(move |s| line(s.into())),
        2 => sasl_response().prop_map(move |r| line(format!("AUTH PLAIN {r}"))),
        2 => sasl_response().prop_map(line),
        1 => Just(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::collection::vec(prop::sample::select(vec![b'\r', b'\n', b'.', b'a', b' ']), 0..20),
        1 => (500usize..2000, prop::bool::ANY).prop_map(|(n, end)| {
            let mut v = vec![b'L'; n];
            if end { v.extend_from_slice(b"\r\n"); }
            v
        }),
        1 => (1000usize..20_000).prop_map(|n| vec![b'B'; n]),
    ]
}

fn config() -> impl Strategy<Value = SessionConfig> {
    let rarely = || prop::bool::weighted(0.2);
    (
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            rarely(),
            any::<bool>(),
            any::<bool>(),
        ),
        prop::sample::select(vec![
            vec![],
            vec!["PLAIN"],
            vec!["LOGIN"],
            vec!["PLAIN", "LOGIN", "CRAM-MD5"],
        ]),
        prop::sample::select(vec![0usize, 100, 1000, 5000, 5000]),
        prop::sample::select(vec![1usize, 2, 100]),
        prop::sample::select(vec![16usize, 64, 512, 512]),
        prop::sample::select(vec![0usize, 8, 100, 1000]),
        prop_oneof![0usize..3, 3usize..30],
    )
        .prop_map(
            |((tls, starttls, anotls, areq, vrfy, expn), mechs, size, rcpts, cmd, text, errors)| {
                SessionConfig {
                    hostname: "mx.example".into(),
                    max_message_size: size,
                    max_recipients: rcpts,
                    max_command_line: cmd,
                    max_text_line: text,
                    max_errors: errors,
                    vrfy_enabled: vrfy,
                    expn_enabled: expn,
                    starttls_available: starttls,
                    tls_active: tls,
                    auth_mechanisms: mechs.into_iter().map(String::from).collect(),
                    auth_without_tls: anotls,
                    auth_required: areq,
                    ..SessionConfig::default()
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Case {
    config: SessionConfig,
    input: Vec<u8>,
    cuts: Vec<prop::sample::Index>,
    advances: Vec<u64>,
    decisions: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        config(),
        prop_oneof![
            prop::collection::vec(piece(), 0..24),
            prop::collection::vec(valid_piece(), 1..12),
        ],
        prop::collection::vec(any::<prop::sample::Index>(), 0..24),
        prop::collection::vec(prop_oneof![6 => Just(0u64), 1 => 1u64..400], 1..6),
        prop::collection::vec(any::<u8>(), 1..16),
    )
        .prop_map(|(config, pieces, cuts, advances, decisions)| Case {
            config,
            input: pieces.concat(),
            cuts,
            advances,
            decisions,
        })
}

#[test]
fn random_sessions_keep_the_reply_grammar_and_bounded_memory() {
    support::fuzz("smtp_session", 200, case(), |c| {
        let mut cuts: Vec<usize> = c.cuts.iter().map(|i| i.index(c.input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut reads = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([c.input.len()]) {
            reads.push(&c.input[at..cut]);
            at = cut;
        }
        run(&c.config, &reads, &c.advances, c.decisions.clone()).map(|_| ())
    });
}
