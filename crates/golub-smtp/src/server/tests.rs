//! In-memory tests of the session: pipelining, decisions, timeouts.

use std::time::{Duration, Instant};

use golub_types::sasl::Credential;
use golub_types::sasl::scram::ScramCredentials;
use golub_types::{EnhancedCode, ForwardPath, QueueId, Reply};

use super::*;

fn config() -> SessionConfig {
    SessionConfig {
        hostname: "mx.example".to_string(),
        ..SessionConfig::default()
    }
}

fn output(s: &mut Session) -> String {
    let mut out = Vec::new();
    s.poll_output(&mut out);
    String::from_utf8(out).unwrap()
}

type Message = (Envelope, Vec<u8>);

thread_local! {
    /// The message whose content is arriving, across calls of `drive` (one session per
    /// test, and each test on its own thread).
    static STARTED: std::cell::RefCell<Option<Message>> = const { std::cell::RefCell::new(None) };
}

/// Answers every event like a permissive driver; returns the messages received.
fn drive(s: &mut Session) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut started = STARTED.take();
    while let Some(event) = s.poll_event() {
        match event {
            Event::Greeted { .. } => {}
            Event::MailFrom { .. } => s.accept_mail(),
            Event::RcptTo { .. } => s.accept_rcpt(),
            Event::Vrfy { .. } | Event::Expn { .. } => {
                s.answer(Reply::new(252, EnhancedCode(2, 5, 0), "maybe"))
            }
            Event::EtrnRequested { domain } => s.answer(Reply::new(
                250,
                EnhancedCode(2, 0, 0),
                format!("Queuing for node {domain} started"),
            )),
            Event::MessageStarted { envelope, .. } => {
                assert!(started.is_none(), "started twice");
                started = Some((envelope, Vec::new()));
            }
            Event::BodyReceived { octets } => {
                let (_, body) = started.as_mut().expect("body outside a message");
                body.extend_from_slice(&octets);
            }
            Event::MessageAborted => {
                assert!(started.take().is_some(), "abort without a message");
            }
            Event::MessageReceived { size } => {
                let (envelope, body) = started.take().expect("message not started");
                assert_eq!(body.len() as u64, size);
                messages.push((envelope, body));
                s.accept_message(QueueId(7));
            }
            Event::StartTlsRequested => {
                let now = s.now.unwrap_or_else(Instant::now);
                s.tls_established(now);
            }
            Event::AuthAttempted { .. } => s.auth_succeeded(),
            Event::CredentialsNeeded { .. } => {
                s.scram_credentials(ScramCredentials::derive("pw", b"salt", 1), "nonce")
            }
        }
    }
    STARTED.set(started);
    messages
}

#[test]
fn a_pipelined_transaction_in_one_write_is_answered_in_order() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    s.handle_input(
        b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@mx.example>\r\n\
          RCPT TO:<c@mx.example>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
        now,
    );
    let messages = drive(&mut s);
    let out = output(&mut s);
    let codes: Vec<&str> = out.lines().map(|l| &l[..4]).collect();
    assert_eq!(
        codes,
        [
            "220 ", "250-", "250-", "250-", "250-", "250-", "250-", "250-", "250-", "250 ", "250 ",
            "250 ", "250 ", "354 ", "250 ", "221 "
        ]
    );
    assert!(out.ends_with("250 2.0.0 Ok: queued as 0000000000000007\r\n221 2.0.0 Bye\r\n"));
    assert!(s.is_closed());
    assert_eq!(messages.len(), 1);
    let (envelope, body) = &messages[0];
    assert_eq!(envelope.forward_paths.len(), 2);
    assert_eq!(body, b"Subject: hi\r\n\r\n.dot\r\n");
}

#[test]
fn processing_waits_for_each_decision() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    output(&mut s);
    s.handle_input(
        b"HELO c\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@mx.example>\r\n",
        now,
    );
    assert!(matches!(
        s.poll_event(),
        Some(Event::Greeted {
            extended: false,
            ..
        })
    ));
    assert!(matches!(s.poll_event(), Some(Event::MailFrom { .. })));
    assert!(s.poll_event().is_none());
    assert!(s.wants_decision());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(output(&mut s), "250 mx.example\r\n");
    // Decisions that are not pending change nothing.
    s.accept_rcpt();
    s.accept_message(QueueId(1));
    s.answer(Reply::new(250, EnhancedCode(2, 0, 0), "x"));
    assert_eq!(output(&mut s), "");
    s.accept_mail();
    assert_eq!(output(&mut s), "250 2.1.0 ok\r\n");
    let Some(Event::RcptTo { forward_path }) = s.poll_event() else {
        panic!("no rcpt event");
    };
    assert_eq!(forward_path.to_string(), "<b@mx.example>");
    s.reject(Reply::new(550, EnhancedCode(5, 1, 1), "no such user"));
    assert_eq!(output(&mut s), "550 5.1.1 no such user\r\n");
    assert!(!s.wants_decision());
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(300)));
}

#[test]
fn deadlines_follow_the_phase() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(300)));
    let t1 = t0 + Duration::from_secs(10);
    s.handle_input(b"EHLO c\r\nMAIL FROM:<>\r\n", t1);
    drive(&mut s);
    s.handle_input(b"RCPT TO:<b@mx.example>\r\nDATA\r\n", t1);
    drive(&mut s);
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(180)));
    s.handle_timeout(t1 + Duration::from_secs(179));
    assert!(!s.is_closed());
    s.handle_timeout(t1 + Duration::from_secs(180));
    assert!(s.is_closed());
    assert!(
        output(&mut s)
            .ends_with("354 End data with <CR><LF>.<CR><LF>\r\n421 4.4.2 mx.example timeout\r\n")
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_refused_session_sends_its_reply_and_is_closed() {
    let r = Reply::new(421, EnhancedCode(4, 3, 2), "too many connections");
    let mut s = Session::refuse(config(), r);
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
    s.handle_input(b"EHLO c\r\n", Instant::now());
    assert_eq!(output(&mut s), "421 4.3.2 too many connections\r\n");
}

#[test]
fn shutdown_drops_a_pending_decision() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    s.handle_input(b"EHLO c\r\nMAIL FROM:<>\r\n", now);
    assert!(s.wants_decision());
    s.shutdown();
    assert!(s.is_closed() && !s.wants_decision());
    s.accept_mail();
    assert!(output(&mut s).ends_with("250 HELP\r\n421 4.3.2 mx.example shutting down\r\n"));
}

#[test]
fn bdat_chunks_split_anywhere_make_one_message() {
    let input: &[u8] = b"EHLO c\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@mx.example>\r\n\
        BDAT 5\r\nab\r\ncBDAT 3 LAST\r\n.\r\nQUIT\r\n";
    for cut in 0..input.len() {
        let now = Instant::now();
        let mut s = Session::new(config(), now);
        let mut messages = Vec::new();
        for part in [&input[..cut], &input[cut..]] {
            s.handle_input(part, now);
            messages.extend(drive(&mut s));
        }
        assert_eq!(messages.len(), 1, "cut at {cut}");
        assert_eq!(messages[0].1, b"ab\r\nc.\r\n", "cut at {cut}");
        assert!(s.is_closed());
        let rcpt = &messages[0].0.forward_paths;
        assert!(matches!(&rcpt[..], [ForwardPath::Mailbox(_)]));
    }
}

#[test]
fn bounded_memory_for_a_huge_message() {
    let now = Instant::now();
    let mut s = Session::new(
        SessionConfig {
            max_message_size: 1000,
            ..config()
        },
        now,
    );
    s.handle_input(
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@mx.example>\r\nDATA\r\n",
        now,
    );
    drive(&mut s);
    let line = [b"x".repeat(98).as_slice(), b"\r\n"].concat();
    for _ in 0..1000 {
        s.handle_input(&line, now);
        assert!(s.input.is_empty());
    }
    s.handle_input(b".\r\n", now);
    assert!(drive(&mut s).is_empty());
    assert!(output(&mut s).ends_with(
        "354 End data with <CR><LF>.<CR><LF>\r\n552 5.3.4 message size exceeds fixed limit\r\n"
    ));
}

/// A small deterministic generator, so the random test needs no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_input_never_panics_and_replies_stay_whole() {
    let pieces: &[&[u8]] = &[
        b"EHLO c\r\n",
        b"HELO c\r\n",
        b"MAIL FROM:<a@c.example>\r\n",
        b"MAIL FROM:<a@c.example> SIZE=5 BODY=8BITMIME SMTPUTF8\r\n",
        b"SEND FROM:<>\r\n",
        b"RCPT TO:<b@mx.example>\r\n",
        b"RCPT TO:<\"q\\\"x\"@[192.0.2.1]>\r\n",
        b"DATA\r\n",
        b"BDAT 3\r\n",
        b"BDAT 2 LAST\r\n",
        b"BDAT 0 LAST\r\n",
        b"RSET\r\n",
        b"VRFY x\r\n",
        b"HELP\r\n",
        b"\r\n.\r\n",
        b".\r\n",
        b"..\r\n",
        b"\n",
        b"\r",
        b".",
        b"x",
        b"\xff",
        b"\xc3",
        b"STARTTLS\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN\r\n",
        b"AUTH PLAIN AGEAYg==\r\n",
        b"AGEAYg==\r\n",
        b"*\r\n",
        b"MAIL FROM:<> AUTH=<>\r\n",
        b"QUIT\r\n",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..2000 {
        let now = Instant::now();
        let config = SessionConfig {
            max_message_size: 40,
            max_recipients: 2,
            max_command_line: 40,
            max_text_line: 20,
            max_errors: 5,
            vrfy_enabled: round % 2 == 0,
            starttls_available: round % 3 != 0,
            tls_active: round % 5 == 0,
            auth_mechanisms: if round % 4 == 0 {
                Vec::new()
            } else {
                vec!["PLAIN".into(), "LOGIN".into()]
            },
            auth_without_tls: round % 7 == 0,
            auth_required: round % 2 == 1,
            ..config()
        };
        let mut s = Session::new(config, now);
        let mut input = Vec::new();
        for _ in 0..rng.below(40) {
            input.extend_from_slice(pieces[rng.below(pieces.len())]);
        }
        let mut rest = &input[..];
        while !rest.is_empty() {
            let (part, tail) = rest.split_at(1 + rng.below(rest.len()));
            s.handle_input(part, now);
            drive(&mut s);
            rest = tail;
        }
        if rng.below(2) == 0 {
            s.handle_timeout(now + Duration::from_secs(1000));
            assert!(s.is_closed());
        }
        let out = output(&mut s);
        assert!(out.ends_with("\r\n"), "{out:?}");
        assert!(!s.wants_decision() || !s.is_closed());
    }
}

fn tls_auth_config() -> SessionConfig {
    SessionConfig {
        starttls_available: true,
        auth_mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
        ..config()
    }
}

#[test]
fn nothing_is_processed_or_timed_between_starttls_and_the_handshake() {
    let t0 = Instant::now();
    let mut s = Session::new(tls_auth_config(), t0);
    output(&mut s);
    s.handle_input(b"EHLO c\r\nSTARTTLS\r\nNOOP\r\n", t0);
    assert!(matches!(s.poll_event(), Some(Event::Greeted { .. })));
    assert!(matches!(s.poll_event(), Some(Event::StartTlsRequested)));
    assert!(output(&mut s).ends_with("250 STARTTLS\r\n220 2.0.0 ready to start TLS\r\n"));
    assert_eq!(s.poll_timeout(), None);
    s.handle_input(b"NOOP\r\nNO", t0);
    s.handle_timeout(t0 + Duration::from_secs(10_000));
    assert!(!s.is_closed());
    assert!(s.input.is_empty());
    assert_eq!(output(&mut s), "");
    assert!(!s.is_tls());
    let t1 = t0 + Duration::from_secs(5);
    s.tls_established(t1);
    assert!(s.is_tls());
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(300)));
    // The half "NO" is gone too.
    s.handle_input(b"OP\r\n", t1);
    assert_eq!(output(&mut s), "500 5.5.1 command not recognized\r\n");
    // A second call, without STARTTLS, changes nothing.
    s.handle_input(b"EHLO c\r\n", t1);
    drive(&mut s);
    s.tls_established(t1);
    s.handle_input(b"MAIL FROM:<>\r\n", t1);
    drive(&mut s);
    assert!(output(&mut s).ends_with("250 2.1.0 ok\r\n"));
}

#[test]
fn tls_established_is_ignored_without_starttls() {
    let now = Instant::now();
    let mut s = Session::new(tls_auth_config(), now);
    s.handle_input(b"EHLO c\r\n", now);
    drive(&mut s);
    s.tls_established(now);
    assert!(!s.is_tls());
    s.handle_input(b"MAIL FROM:<>\r\n", now);
    drive(&mut s);
    assert!(output(&mut s).ends_with("250 2.1.0 ok\r\n"));
}

/// A PLAIN response of `len` base64 octets for authcid "alice", password "pp" and
/// then "ppp" per four octets more.
fn plain_response(len: usize) -> Vec<u8> {
    let mut text = b"AGFsaWNlAHBw".to_vec();
    while text.len() < len {
        text.extend_from_slice(b"cHBw");
    }
    assert_eq!(text.len(), len);
    text
}

#[test]
fn sasl_responses_may_be_longer_than_a_command_line() {
    let now = Instant::now();
    let config = SessionConfig {
        tls_active: true,
        max_command_line: 64,
        ..tls_auth_config()
    };
    let mut s = Session::new(config, now);
    s.handle_input(b"EHLO c\r\nAUTH PLAIN\r\n", now);
    drive(&mut s);
    assert!(output(&mut s).ends_with("334 \r\n"));
    // RFC 4954 §4: 12288 octets; the session frames in parts as they come.
    let line = [plain_response(12288), b"\r\n".to_vec()].concat();
    for part in line.chunks(1000) {
        s.handle_input(part, now);
    }
    let Some(Event::AuthAttempted {
        mechanism,
        authzid,
        authcid,
        credential: Credential::Password(password),
    }) = s.poll_event()
    else {
        panic!("no auth attempt");
    };
    assert_eq!((&*mechanism, &*authzid, &*authcid), ("PLAIN", "", "alice"));
    assert_eq!(password.expose().len(), 12288 / 4 * 3 - 7);
    assert!(s.wants_decision() && s.poll_timeout().is_none());
    s.reject(Reply::new(535, EnhancedCode(5, 7, 8), "no"));
    assert_eq!(output(&mut s), "535 5.7.8 no\r\n");
    assert_eq!(s.authenticated(), None);
    // One octet more is refused, and the session is at commands again.
    s.handle_input(b"AUTH PLAIN\r\n", now);
    let line = [plain_response(12292), b"\r\nNOOP\r\n".to_vec()].concat();
    for part in line.chunks(1000) {
        s.handle_input(part, now);
    }
    assert!(s.poll_event().is_none());
    assert_eq!(
        output(&mut s),
        "334 \r\n500 5.5.6 authentication exchange line is too long\r\n250 2.0.0 ok\r\n"
    );
}

#[test]
fn the_password_is_in_no_debug_output() {
    let now = Instant::now();
    let config = SessionConfig {
        tls_active: true,
        ..tls_auth_config()
    };
    let mut s = Session::new(config, now);
    // "\0alice\0hunter2", then LOGIN with "hunter2" as the password.
    s.handle_input(b"EHLO c\r\nAUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n", now);
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("AGFsaWNlAGh1bnRlcjI"),
        "{debug}"
    );
    drive(&mut s);
    assert_eq!(s.authenticated(), Some("alice"));
    let mut s = Session::new(tls_auth_config(), now);
    s.handle_input(b"EHLO c\r\n", now);
    s.tls = true;
    s.handle_input(b"AUTH LOGIN YWxpY2U=\r\naHVudGVyMg==\r\n", now);
    while let Some(event) = s.poll_event() {
        let debug = format!("{event:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        if let Event::AuthAttempted {
            credential: Credential::Password(password),
            ..
        } = event
        {
            assert_eq!(password.expose(), "hunter2");
        }
    }
    assert!(!format!("{s:?}").contains("aHVudGVyMg"));
}

#[test]
fn refused_credentials_do_not_count_as_protocol_errors() {
    let now = Instant::now();
    let config = SessionConfig {
        tls_active: true,
        max_errors: 1,
        ..tls_auth_config()
    };
    let mut s = Session::new(config, now);
    s.handle_input(b"EHLO c\r\n", now);
    drive(&mut s);
    for _ in 0..5 {
        s.handle_input(b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n", now);
        assert!(matches!(s.poll_event(), Some(Event::AuthAttempted { .. })));
        s.reject(Reply::new(535, EnhancedCode(5, 7, 8), "no"));
    }
    assert!(!s.is_closed());
}

#[test]
fn protocol_names_follow_rfc_3848_and_6531() {
    let table = [
        ((false, false, false, false), "SMTP"),
        ((false, true, true, true), "SMTP"),
        ((true, false, false, false), "ESMTP"),
        ((true, false, true, false), "ESMTPS"),
        ((true, false, false, true), "ESMTPA"),
        ((true, false, true, true), "ESMTPSA"),
        ((true, true, false, false), "UTF8SMTP"),
        ((true, true, true, false), "UTF8SMTPS"),
        ((true, true, false, true), "UTF8SMTPA"),
        ((true, true, true, true), "UTF8SMTPSA"),
    ];
    for ((extended, smtputf8, tls, auth), want) in table {
        assert_eq!(protocol(extended, smtputf8, tls, auth), want);
    }
}

/// The events of one call, as short names; body pieces show their octets.
fn event_names(s: &mut Session) -> Vec<String> {
    let mut names = Vec::new();
    while let Some(event) = s.poll_event() {
        names.push(match event {
            Event::MessageStarted { .. } => "started".to_string(),
            Event::BodyReceived { octets } => String::from_utf8(octets).unwrap(),
            Event::MessageReceived { size } => format!("received {size}"),
            Event::MessageAborted => "aborted".to_string(),
            Event::MailFrom { .. } => {
                s.accept_mail();
                "mail".to_string()
            }
            Event::RcptTo { .. } => {
                s.accept_rcpt();
                "rcpt".to_string()
            }
            other => format!("{other:?}"),
        });
    }
    names
}

#[test]
fn data_content_comes_out_as_it_arrives_not_at_the_end() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    s.handle_input(b"EHLO c\r\nMAIL FROM:<>\r\n", now);
    assert_eq!(event_names(&mut s)[1..], ["mail"]);
    s.handle_input(b"RCPT TO:<b@mx.example>\r\nDATA\r\nSubject: a\r\n", now);
    assert_eq!(event_names(&mut s), ["rcpt", "started", "Subject: a\r\n"]);
    s.handle_input(b"\r\n..dot\r", now);
    assert_eq!(event_names(&mut s), ["\r\n.dot"]);
    s.handle_input(b"\n.\r\nNOOP\r\n", now);
    assert_eq!(event_names(&mut s), ["\r\n", "received 20"]);
    s.accept_message(QueueId(1));
    assert!(
        output(&mut s).ends_with("250 2.0.0 Ok: queued as 0000000000000001\r\n250 2.0.0 ok\r\n")
    );
}

#[test]
fn bdat_chunks_come_out_as_sent_and_rset_aborts_the_message() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    s.handle_input(b"EHLO c\r\nMAIL FROM:<>\r\n", now);
    event_names(&mut s);
    s.handle_input(b"RCPT TO:<b@mx.example>\r\nBDAT 6\r\na\nb", now);
    assert_eq!(event_names(&mut s), ["rcpt", "started", "a\nb"]);
    s.handle_input(b"\r\nc", now);
    assert_eq!(event_names(&mut s), ["\r\nc"]);
    s.handle_input(b"BDAT 2\r\nxyRSET\r\nMAIL FROM:<>\r\n", now);
    // What was not handed out yet when the message ends unfinished is not handed out.
    assert_eq!(event_names(&mut s), ["aborted", "mail"]);
    // A refusal after the content started aborts it too.
    s.handle_input(b"RCPT TO:<b@mx.example>\r\nDATA\r\nbare\nLF\r\n.\r\n", now);
    assert_eq!(event_names(&mut s), ["rcpt", "started", "aborted"]);
    assert!(
        output(&mut s)
            .ends_with("550 5.6.11 message contains bare CR or LF; use CRLF line ends\r\n")
    );
}
