use std::time::{Duration, Instant};

use super::*;

fn config() -> Pop3Config {
    Pop3Config {
        hostname: "pop.example".to_string(),
        allow_plaintext_auth: true,
        ..Pop3Config::default()
    }
}

fn maildrop() -> Vec<MessageInfo> {
    vec![
        MessageInfo {
            size: 20,
            uid: "u1".into(),
        },
        MessageInfo {
            size: 30,
            uid: "u2".into(),
        },
    ]
}

fn output(s: &mut Session) -> String {
    let mut out = Vec::new();
    s.poll_output(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers every event: any credentials are good, content is "Subject: n\r\n\r\nbody\r\n",
/// updates succeed. Returns the events' names in order.
fn drive(s: &mut Session) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(event) = s.poll_event() {
        match event {
            Event::StlsRequested => seen.push("stls".to_string()),
            Event::AuthAttempted { user, .. } => {
                seen.push(format!("auth {user}"));
                s.auth_succeeded(maildrop());
            }
            Event::ContentNeeded { index, top } => {
                seen.push(format!("content {index} {top:?}"));
                s.provide_content(format!("Subject: {index}\r\n\r\nbody\r\n").into_bytes());
            }
            Event::UpdateRequested { deleted } => {
                seen.push(format!("update {deleted:?}"));
                s.update_done(true);
            }
            Event::CredentialsNeeded { user, .. } => {
                seen.push(format!("credentials {user}"));
                s.auth_failed(AuthFailure::TempFail);
            }
        }
    }
    seen
}

/// A session in TRANSACTION state with the greeting and login read.
fn logged_in(now: Instant) -> Session {
    let mut s = Session::new(config(), now);
    s.handle_input(b"USER a\r\nPASS b\r\n", now);
    drive(&mut s);
    output(&mut s);
    s
}

#[test]
fn greeting_has_no_apop_timestamp() {
    let mut s = Session::new(config(), Instant::now());
    assert_eq!(output(&mut s), "+OK pop.example POP3 server ready\r\n");
    assert!(!s.is_closed());
    assert!(!s.wants_decision());
}

#[test]
fn pipelined_commands_get_their_replies_in_order() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    output(&mut s);
    s.handle_input(
        b"CAPA\r\nUSER a\r\nPASS b\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nLIST\r\nTOP 2 0\r\nUIDL 2\r\nQUIT\r\n",
        now,
    );
    // Processing stopped at PASS until its decision.
    assert!(s.wants_decision());
    assert_eq!(s.poll_timeout(), None);
    let events = drive(&mut s);
    assert_eq!(
        events,
        [
            "auth a",
            "content 0 None",
            "content 1 Some(0)",
            "update [0]"
        ]
    );
    let out = output(&mut s);
    let want = concat!(
        "+OK capability list follows\r\n",
        "TOP\r\nUIDL\r\nUSER\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n",
        "PIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION Golub\r\n.\r\n",
        "+OK send PASS\r\n",
        "+OK maildrop locked and ready\r\n",
        "+OK 2 50\r\n",
        "+OK 20 octets\r\nSubject: 0\r\n\r\nbody\r\n.\r\n",
        "+OK message 1 deleted\r\n",
        "+OK 1 messages (30 octets)\r\n2 30\r\n.\r\n",
        "+OK top of message follows\r\nSubject: 1\r\n\r\n.\r\n",
        "+OK 2 u2\r\n",
        "+OK pop.example POP3 server signing off\r\n",
    );
    assert_eq!(out, want);
    assert!(s.is_closed());
    assert_eq!(s.user(), Some("a"));
}

#[test]
fn input_split_anywhere_gives_the_same_replies() {
    let script: &[u8] = b"USER a\r\nPASS b c\r\nSTAT\nLIST 2\r\nNOOP\r\nQUIT\r\n";
    let now = Instant::now();
    let whole = {
        let mut s = Session::new(config(), now);
        s.handle_input(script, now);
        drive(&mut s);
        output(&mut s)
    };
    for cut in 0..script.len() {
        let mut s = Session::new(config(), now);
        s.handle_input(&script[..cut], now);
        drive(&mut s);
        s.handle_input(&script[cut..], now);
        drive(&mut s);
        assert_eq!(output(&mut s), whole, "cut at {cut}");
    }
    assert!(whole.ends_with("+OK 2 30\r\n+OK\r\n+OK pop.example POP3 server signing off\r\n"));
}

#[test]
fn password_reaches_the_driver_whole_but_not_debug() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    s.handle_input(b"USER alice\r\nPASS  two words \r\n", now);
    match s.poll_event() {
        Some(e @ Event::AuthAttempted { .. }) => {
            assert!(!format!("{e:?}").contains("two words"));
            assert!(!format!("{s:?}").contains("two words"));
            let Event::AuthAttempted {
                mechanism,
                authzid,
                user,
                credential: Credential::Password(password),
            } = e
            else {
                unreachable!()
            };
            assert_eq!(
                (mechanism.as_str(), authzid.as_str(), user.as_str()),
                ("USER", "", "alice")
            );
            assert_eq!(password.expose(), " two words ");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn decisions_with_nothing_pending_do_nothing() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    output(&mut s);
    s.auth_succeeded(maildrop());
    s.auth_failed(AuthFailure::Blocked);
    s.provide_content(b"x".to_vec());
    s.content_unavailable();
    s.update_done(true);
    s.tls_established(now);
    assert_eq!(output(&mut s), "");
    assert!(!s.is_closed());
    assert_eq!(s.user(), None);
    // A decision of the wrong kind does nothing either.
    let mut s = logged_in(now);
    s.handle_input(b"RETR 1\r\n", now);
    assert!(s.wants_decision());
    s.auth_succeeded(Vec::new());
    s.update_done(false);
    assert_eq!(output(&mut s), "");
    s.content_unavailable();
    assert_eq!(output(&mut s), "-ERR [SYS/TEMP] cannot read message\r\n");
}

#[test]
fn overlong_lines_are_refused_and_skipped() {
    let now = Instant::now();
    let mut s = logged_in(now);
    let mut long = b"LIST ".to_vec();
    long.resize(300, b'1');
    s.handle_input(&long, now);
    assert_eq!(output(&mut s), "");
    s.handle_input(b"11111\r\nSTAT\r\n", now);
    assert_eq!(output(&mut s), "-ERR line too long\r\n+OK 2 50\r\n");
    // 255 octets with the CRLF fit, 256 do not.
    let mut line = b"NOOP".to_vec();
    line.resize(253, b' ');
    line.extend_from_slice(b"\r\n");
    s.handle_input(&line, now);
    assert_eq!(output(&mut s), "+OK\r\n");
    line.insert(0, b' ');
    s.handle_input(&line, now);
    assert_eq!(output(&mut s), "-ERR line too long\r\n");
}

#[test]
fn long_auth_lines_are_allowed_up_to_the_sasl_limit() {
    let now = Instant::now();
    let mut s = Session::new(config(), now);
    output(&mut s);
    let mut line = b"AUTH PLAIN ".to_vec();
    line.resize(1000, b'A');
    line.extend_from_slice(b"\r\n");
    s.handle_input(&line, now);
    assert_eq!(output(&mut s), "-ERR cannot decode base64 response\r\n");
    let mut line = b"AUTH PLAIN ".to_vec();
    line.resize(13000, b'A');
    line.extend_from_slice(b"\r\n");
    s.handle_input(&line, now);
    assert_eq!(output(&mut s), "-ERR line too long\r\n");
}

#[test]
fn control_characters_and_bad_utf8_are_refused() {
    let now = Instant::now();
    let mut s = logged_in(now);
    s.handle_input(b"NO\0OP\r\nNOOP\rX\r\nNOOP \xff\r\nNOOP\r\n", now);
    assert_eq!(
        output(&mut s),
        "-ERR invalid characters in command\r\n".repeat(3) + "+OK\r\n"
    );
}

#[test]
fn timeout_closes_without_update() {
    let now = Instant::now();
    let mut s = logged_in(now);
    s.handle_input(b"DELE 1\r\n", now);
    output(&mut s);
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(600));
    s.handle_timeout(deadline - Duration::from_secs(1));
    assert!(!s.is_closed());
    s.handle_timeout(deadline);
    assert!(s.is_closed());
    assert_eq!(output(&mut s), "-ERR autologout timer expired\r\n");
    assert!(s.poll_event().is_none());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn each_command_restarts_the_timer() {
    let now = Instant::now();
    let mut s = logged_in(now);
    let later = now + Duration::from_secs(500);
    s.handle_input(b"NO", later);
    assert_eq!(s.poll_timeout(), Some(later + Duration::from_secs(600)));
}

#[test]
fn shutdown_drops_a_pending_decision() {
    let now = Instant::now();
    let mut s = logged_in(now);
    s.handle_input(b"DELE 2\r\nQUIT\r\n", now);
    assert!(matches!(
        s.poll_event(),
        Some(Event::UpdateRequested { .. })
    ));
    s.shutdown();
    s.update_done(true);
    assert_eq!(
        output(&mut s),
        "+OK message 2 deleted\r\n-ERR [SYS/TEMP] server shutting down\r\n"
    );
    assert!(s.is_closed());
    assert!(!s.wants_decision());
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
        b"USER alice\r\n",
        b"PASS secret\r\n",
        b"PASS\r\n",
        b"APOP a b\r\n",
        b"AUTH\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN\r\n",
        b"AUTH PLAIN AGEAYg==\r\n",
        b"AUTH CRAM-MD5\r\n",
        b"AGEAYg==\r\n",
        b"YQ==\r\n",
        b"*\r\n",
        b"STLS\r\n",
        b"CAPA\r\n",
        b"STAT\r\n",
        b"LIST\r\n",
        b"LIST 1\r\n",
        b"LIST 0\r\n",
        b"UIDL\r\n",
        b"UIDL 3\r\n",
        b"RETR 1\r\n",
        b"RETR 2\r\n",
        b"TOP 1 0\r\n",
        b"TOP 2 1\r\n",
        b"TOP 9 9\r\n",
        b"DELE 1\r\n",
        b"DELE 2\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"QUIT\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b".",
        b" ",
        b"x",
        b"\xff",
        b"\xc3",
        b"\0",
        b"99999999999999999999999999",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let now = Instant::now();
        let config = Pop3Config {
            stls_available: round % 3 != 0,
            tls_active: round % 5 == 0,
            allow_plaintext_auth: round % 2 == 0,
            sasl_mechanisms: match round % 4 {
                0 => Vec::new(),
                1 => vec!["LOGIN".into(), "X".into(), "login".into()],
                _ => vec!["PLAIN".into(), "LOGIN".into()],
            },
            login_delay: (round % 6 == 0).then_some(900),
            expire: (round % 7 != 0).then(|| "NEVER".into()),
            max_line: [0, 1, 5, 20, 255][round % 5],
            max_errors: round % 8,
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
            while let Some(event) = s.poll_event() {
                match (event, rng.below(4)) {
                    (Event::StlsRequested, 0) => {}
                    (Event::StlsRequested, _) => s.tls_established(now),
                    (Event::AuthAttempted { .. }, 0) => s.auth_failed(AuthFailure::Invalid),
                    (Event::AuthAttempted { .. }, 1) => s.auth_failed(AuthFailure::Blocked),
                    (Event::AuthAttempted { .. }, _) => s.auth_succeeded(maildrop()),
                    (Event::ContentNeeded { .. }, 0) => s.content_unavailable(),
                    (Event::ContentNeeded { .. }, _) => {
                        let len = rng.below(input.len() + 1);
                        s.provide_content(input[..len].to_vec());
                    }
                    (Event::UpdateRequested { .. }, n) => s.update_done(n > 0),
                    (Event::CredentialsNeeded { .. }, 0) => s.auth_failed(AuthFailure::Blocked),
                    (Event::CredentialsNeeded { .. }, _) => s.scram_credentials(
                        golub_types::sasl::scram::ScramCredentials::derive("pw", b"s", 1),
                        "nonce",
                    ),
                }
            }
            rest = tail;
        }
        if rng.below(2) == 0 {
            s.handle_timeout(now + Duration::from_secs(1000));
            assert!(s.is_closed() || s.wants_decision() || s.poll_timeout().is_none());
        }
        let out = output(&mut s);
        assert!(out.ends_with("\r\n"), "{out:?}");
        assert!(!(s.wants_decision() && s.is_closed()));
    }
}
