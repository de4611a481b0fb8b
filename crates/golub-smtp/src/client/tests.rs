//! Transcript-style tests of the client session against scripted server replies, and a
//! pair test against our own server session.

use std::time::{Duration, Instant};

use golub_types::{EnhancedCode, Envelope, ForwardPath, QueueId, Reply, ReversePath};

use super::*;

const EHLO_PIPELINING: &str = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n\
    250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n";
const EHLO_PLAIN: &str = "250-mx.example\r\n250 SIZE\r\n";

/// A `MessageCompleted` event's fields.
type Completed = (MessageId, Outcome, Vec<(ForwardPath, Outcome)>);

/// A client session with a simulated clock.
struct Client {
    s: ClientSession,
    t0: Instant,
    now: Instant,
}

impl Client {
    fn new(config: ClientConfig) -> Self {
        let t0 = Instant::now();
        Client {
            s: ClientSession::new(config, t0),
            t0,
            now: t0,
        }
    }

    fn plain() -> Self {
        Client::new(ClientConfig {
            hostname: "out.example".into(),
            tls: TlsPolicy::Off,
            ..ClientConfig::default()
        })
    }

    /// Greeting and EHLO done with this EHLO reply; the output so far is checked.
    fn opened(ehlo: &str) -> Self {
        let mut c = Client::plain();
        c.server("220 mx.example ESMTP\r\n");
        assert_eq!(c.out(), "EHLO out.example\r\n");
        c.server(ehlo);
        assert_eq!(c.out(), "");
        c
    }

    fn server(&mut self, wire: &str) {
        self.s.handle_input(wire.as_bytes(), self.now);
    }

    fn out(&mut self) -> String {
        let mut v = Vec::new();
        self.s.poll_output(&mut v);
        String::from_utf8(v).unwrap()
    }

    fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// The `MessageCompleted` events so far (others dropped).
    fn completed(&mut self) -> Vec<Completed> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::MessageCompleted {
                    id,
                    outcome,
                    recipients,
                } => Some((id, outcome, recipients)),
                _ => None,
            })
            .collect()
    }

    fn send(&mut self, from: &str, to: &[&str]) -> MessageId {
        let envelope = envelope(from, to);
        self.s.send(envelope, Some(100), self.now)
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.s.handle_timeout(self.now);
    }
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        reverse_path: ReversePath::parse(from, true).unwrap(),
        forward_paths: to
            .iter()
            .map(|p| ForwardPath::parse(p, true).unwrap())
            .collect(),
        smtputf8: false,
        eight_bit: false,
        dsn: Default::default(),
        rcpt_dsn: Vec::new(),
    }
}

fn code(o: &Outcome) -> (char, u16) {
    let kind = match o {
        Outcome::Accepted(_) => 'A',
        Outcome::Temporary(_) => 'T',
        Outcome::Permanent(_) => 'P',
    };
    (kind, o.reply().code)
}

#[test]
fn ehlo_keywords_are_read() {
    let mut c = Client::opened(EHLO_PIPELINING);
    let e = c.s.extensions().clone();
    assert_eq!(
        e,
        Extensions {
            size: Some(1000),
            pipelining: true,
            eight_bit_mime: true,
            smtputf8: true,
            starttls: false,
            chunking: false,
            enhanced_status_codes: true,
            dsn: false,
            auth: Vec::new(),
        }
    );
    assert!(matches!(
        c.events()[..],
        [ClientEvent::Greeted { tls: false, .. }]
    ));
}

#[test]
fn pipelined_message_goes_in_one_flush_and_a_4xx_rcpt_keeps_its_reply() {
    let mut c = Client::opened(EHLO_PIPELINING);
    let id = c.send(
        "<a@out.example>",
        &["<b@mx.example>", "<c@mx.example>", "<d@mx.example>"],
    );
    assert_eq!(
        c.out(),
        "MAIL FROM:<a@out.example> SIZE=100\r\nRCPT TO:<b@mx.example>\r\n\
         RCPT TO:<c@mx.example>\r\nRCPT TO:<d@mx.example>\r\nDATA\r\n"
    );
    c.server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n450 4.2.1 try later\r\n250 2.1.5 ok\r\n354 go\r\n");
    let events = c.events();
    assert!(events.contains(&ClientEvent::BodyRequested { id }));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::RecipientReplied { .. }))
            .count(),
        3
    );
    c.s.body_chunk(b"Subject: x\n\n.hi", c.now);
    c.s.body_end(c.now);
    assert_eq!(c.out(), "Subject: x\r\n\r\n..hi\r\n.\r\n");
    c.server("250 2.0.0 queued as 1\r\n");
    let done = c.completed();
    assert_eq!(done.len(), 1);
    let (got, outcome, rcpts) = &done[0];
    assert_eq!(*got, id);
    assert_eq!(code(outcome), ('A', 250));
    let codes: Vec<_> = rcpts.iter().map(|(_, o)| code(o)).collect();
    assert_eq!(codes, [('A', 250), ('T', 450), ('A', 250)]);
    assert_eq!(
        rcpts[1].1.reply(),
        &Reply::new(450, EnhancedCode(4, 2, 1), "try later")
    );
    c.s.quit(c.now);
    assert_eq!(c.out(), "QUIT\r\n");
    c.server("221 2.0.0 bye\r\n");
    assert_eq!(c.events(), [ClientEvent::Closed { error: None }]);
    assert!(c.s.is_closed());
    assert_eq!(c.s.poll_timeout(), None);
}

#[test]
fn without_pipelining_each_command_waits_for_its_reply() {
    let mut c = Client::opened(EHLO_PLAIN);
    c.send("<a@out.example>", &["<b@mx.example>", "<c@mx.example>"]);
    assert_eq!(c.out(), "MAIL FROM:<a@out.example> SIZE=100\r\n");
    c.server("250 ok\r\n");
    assert_eq!(c.out(), "RCPT TO:<b@mx.example>\r\n");
    c.server("550 5.1.1 no such user\r\n");
    assert_eq!(c.out(), "RCPT TO:<c@mx.example>\r\n");
    c.server("250 ok\r\n");
    assert_eq!(c.out(), "DATA\r\n");
    c.server("354 go\r\n");
    c.s.body_chunk(b"hello", c.now);
    c.s.body_end(c.now);
    assert_eq!(c.out(), "hello\r\n.\r\n");
    c.server("250 ok\r\n");
    let done = c.completed();
    let codes: Vec<_> = done[0].2.iter().map(|(_, o)| code(o)).collect();
    assert_eq!(codes, [('P', 550), ('A', 250)]);
    assert_eq!(done[0].2[0].1.reply().enhanced, Some(EnhancedCode(5, 1, 1)));
}

#[test]
fn all_recipients_refused_sends_no_data_and_rset_comes_before_the_next_mail() {
    let mut c = Client::opened(EHLO_PLAIN);
    c.send("<a@out.example>", &["<b@mx.example>"]);
    c.send("<a@out.example>", &["<c@mx.example>"]);
    assert_eq!(c.out(), "MAIL FROM:<a@out.example> SIZE=100\r\n");
    c.server("250 ok\r\n");
    assert_eq!(c.out(), "RCPT TO:<b@mx.example>\r\n");
    c.server("550 5.1.1 unknown\r\n");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('P', 550));
    assert_eq!(c.out(), "RSET\r\n");
    c.server("250 ok\r\n");
    assert_eq!(c.out(), "MAIL FROM:<a@out.example> SIZE=100\r\n");
}

#[test]
fn a_5xx_mail_fails_every_recipient_with_its_reply() {
    let mut c = Client::opened(EHLO_PIPELINING);
    c.send("<a@out.example>", &["<b@mx.example>", "<c@mx.example>"]);
    c.out();
    c.server("550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n554 5.5.1 no valid recipients\r\n");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('P', 550));
    for (_, o) in &done[0].2 {
        assert_eq!(o.reply().lines, ["sender refused"]);
    }
    // No transaction was opened: the next message starts with MAIL.
    c.send("<a@out.example>", &["<b@mx.example>"]);
    assert!(c.out().starts_with("MAIL FROM:"));
}

#[test]
fn pipelined_354_without_valid_recipients_gets_an_empty_message() {
    let mut c = Client::opened(EHLO_PIPELINING);
    c.send("<a@out.example>", &["<b@mx.example>"]);
    c.out();
    c.server("250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n");
    assert_eq!(c.out(), ".\r\n");
    assert!(c.completed().is_empty());
    c.server("554 5.5.1 no recipients\r\n");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('P', 550));
}

#[test]
fn a_421_mid_session_fails_the_message_in_flight_and_the_waiting_ones() {
    let mut c = Client::opened(EHLO_PIPELINING);
    let first = c.send("<a@out.example>", &["<b@mx.example>"]);
    let second = c.send("<a@out.example>", &["<c@mx.example>"]);
    c.out();
    c.server("250 ok\r\n421 4.3.2 shutting down\r\n");
    let events = c.events();
    let ids: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::MessageCompleted { id, outcome, .. } => {
                assert_eq!(code(outcome), ('T', 421));
                Some(*id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(ids, [first, second]);
    assert!(matches!(
        events.last(),
        Some(ClientEvent::Closed { error: Some(r) }) if r.code == 421
    ));
    assert!(c.s.is_closed());
    c.server("250 ok\r\n");
    assert!(c.events().is_empty());
}

#[test]
fn ehlo_refused_falls_back_to_helo() {
    let mut c = Client::plain();
    c.server("220 old.example\r\n");
    assert_eq!(c.out(), "EHLO out.example\r\n");
    c.server("502 command not implemented\r\n");
    assert_eq!(c.out(), "HELO out.example\r\n");
    c.server("250 old.example\r\n");
    assert_eq!(c.s.extensions(), &Extensions::default());
    c.send("<a@out.example>", &["<b@mx.example>"]);
    // No SIZE= without the extension.
    assert_eq!(c.out(), "MAIL FROM:<a@out.example>\r\n");
}

#[test]
fn a_greeting_other_than_220_fails_the_connection() {
    let mut c = Client::plain();
    c.send("<a@out.example>", &["<b@mx.example>"]);
    c.server("554 5.7.1 no service\r\n");
    assert_eq!(c.out(), "QUIT\r\n");
    let events = c.events();
    assert!(matches!(
        &events[0],
        ClientEvent::MessageCompleted { outcome: Outcome::Temporary(r), .. } if r.code == 451
    ));
    assert!(matches!(
        &events[1],
        ClientEvent::Closed { error: Some(r) } if r.code == 554
    ));
}

#[test]
fn starttls_is_a_step_the_driver_performs_then_ehlo_again() {
    let mut c = Client::new(ClientConfig {
        hostname: "out.example".into(),
        tls: TlsPolicy::Required,
        ..ClientConfig::default()
    });
    c.send("<a@out.example>", &["<b@mx.example>"]);
    c.server("220 mx.example\r\n");
    assert_eq!(c.out(), "EHLO out.example\r\n");
    c.server("250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
    assert_eq!(c.out(), "STARTTLS\r\n");
    // Octets after the 220 were sent before the handshake: never read (RFC 3207 §4.2).
    c.server("220 2.0.0 go ahead\r\n250 injected\r\n");
    let events = c.events();
    assert_eq!(events.last(), Some(&ClientEvent::StartTlsRequested));
    assert_eq!(c.s.poll_timeout(), None);
    c.server("250 also dropped\r\n");
    c.s.tls_established(c.now);
    assert_eq!(c.out(), "EHLO out.example\r\n");
    c.server("250-mx.example\r\n250 SIZE 0\r\n");
    assert!(matches!(
        c.events()[..],
        [ClientEvent::Greeted { tls: true, .. }]
    ));
    assert_eq!(c.out(), "MAIL FROM:<a@out.example> SIZE=100\r\n");
}

#[test]
fn required_tls_without_starttls_fails_temporarily() {
    let mut c = Client::new(ClientConfig {
        tls: TlsPolicy::Required,
        ..ClientConfig::default()
    });
    c.server("220 mx.example\r\n");
    c.out();
    c.server("250 mx.example\r\n");
    assert!(matches!(
        c.events().last(),
        Some(ClientEvent::Closed { error: Some(r) }) if r.code == 421
    ));
}

#[test]
fn opportunistic_tls_goes_on_in_plaintext_when_starttls_is_refused() {
    let mut c = Client::new(ClientConfig::default());
    c.server("220 mx.example\r\n");
    c.out();
    c.server("250-mx.example\r\n250 STARTTLS\r\n");
    assert_eq!(c.out(), "STARTTLS\r\n");
    c.server("454 4.7.0 TLS not available\r\n");
    c.send("<a@out.example>", &["<b@mx.example>"]);
    assert_eq!(c.out(), "MAIL FROM:<a@out.example>\r\n");
}

#[test]
fn an_smtputf8_message_is_refused_before_mail_when_the_server_lacks_it() {
    let mut c = Client::opened(EHLO_PLAIN);
    let id = c.send("<a@out.example>", &["<δοκιμή@mx.example>"]);
    assert_eq!(c.out(), "");
    let done = c.completed();
    assert_eq!(done[0].0, id);
    assert_eq!(code(&done[0].1), ('P', 553));
    assert_eq!(done[0].1.reply().enhanced, Some(EnhancedCode(5, 6, 7)));
    // The next message goes on over the same connection.
    c.send("<a@out.example>", &["<b@mx.example>"]);
    assert!(c.out().starts_with("MAIL FROM:"));
}

#[test]
fn smtputf8_and_8bitmime_are_asked_for_when_offered() {
    let mut c = Client::opened(EHLO_PIPELINING);
    let mut env = envelope("<a@out.example>", &["<δοκιμή@mx.example>"]);
    env.eight_bit = true;
    c.s.send(env, None, c.now);
    assert!(
        c.out()
            .starts_with("MAIL FROM:<a@out.example> BODY=8BITMIME SMTPUTF8\r\n")
    );
}

#[test]
fn a_message_over_the_advertised_size_is_not_sent() {
    let mut c = Client::opened(EHLO_PIPELINING);
    c.s.send(envelope("<>", &["<b@mx.example>"]), Some(1001), c.now);
    assert_eq!(c.out(), "");
    assert_eq!(code(&c.completed()[0].1), ('P', 552));
}

#[test]
fn timeouts_follow_rfc_5321_and_fail_temporarily() {
    let mut c = Client::plain();
    assert_eq!(c.s.poll_timeout(), Some(c.t0 + Duration::from_secs(300)));
    c.advance(299);
    assert!(!c.s.is_closed());
    c.server("220 mx.example\r\n");
    c.server(EHLO_PLAIN);
    c.out();
    // Idle: no timer.
    assert_eq!(c.s.poll_timeout(), None);
    c.send("<a@out.example>", &["<b@mx.example>"]);
    assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(300)));
    c.server("250 ok\r\n");
    assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(300)));
    c.server("250 ok\r\n");
    assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(120)));
    c.server("354 go\r\n");
    assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(180)));
    c.advance(100);
    c.s.body_chunk(b"x", c.now);
    assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(180)));
    c.s.body_end(c.now);
    assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(600)));
    c.advance(599);
    assert!(!c.s.is_closed());
    c.advance(1);
    assert!(c.s.is_closed());
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('T', 421));
    assert_eq!(done[0].1.reply().enhanced, Some(EnhancedCode(4, 4, 2)));
}

#[test]
fn a_stalled_body_times_out() {
    let mut c = Client::opened(EHLO_PIPELINING);
    c.send("<a@out.example>", &["<b@mx.example>"]);
    c.server("250 ok\r\n250 ok\r\n354 go\r\n");
    c.advance(180);
    assert!(c.s.is_closed());
    assert_eq!(code(&c.completed()[0].1), ('T', 421));
}

#[test]
fn garbage_and_over_long_replies_fail_the_connection() {
    for wire in [
        "hello\r\n".to_string(),
        "250-a\r\n251 b\r\n".to_string(),
        format!("220 {}\r\n", "x".repeat(5000)),
        "2".repeat(5000),
    ] {
        let mut c = Client::plain();
        c.send("<a@out.example>", &["<b@mx.example>"]);
        c.server(&wire);
        assert!(c.s.is_closed(), "{wire:.20}");
        let events = c.events();
        assert!(matches!(
            &events[0],
            ClientEvent::MessageCompleted { outcome: Outcome::Temporary(r), .. } if r.code == 421
        ));
    }
}

#[test]
fn replies_cut_anywhere_are_read_the_same() {
    let script = "220 mx.example\r\n250-mx.example\r\n250 PIPELINING\r\n\
                  250 ok\r\n250 ok\r\n354 go\r\n";
    for i in 0..script.len() {
        let mut c = Client::plain();
        c.send("<a@out.example>", &["<b@mx.example>"]);
        c.server(&script[..i]);
        c.server(&script[i..]);
        assert!(
            c.events()
                .contains(&ClientEvent::BodyRequested { id: MessageId(0) }),
            "cut at {i}"
        );
    }
}

#[test]
fn a_refusal_in_the_middle_of_the_content_fails_the_message_temporarily() {
    let mut c = Client::opened(EHLO_PIPELINING);
    c.send("<a@out.example>", &["<b@mx.example>"]);
    c.server("250 ok\r\n250 ok\r\n354 go\r\n");
    c.s.body_chunk(b"part", c.now);
    c.server("554 5.3.4 too much\r\n");
    let events = c.events();
    assert!(matches!(
        &events[..],
        [
            ..,
            ClientEvent::MessageCompleted { outcome: Outcome::Temporary(r), .. },
            ClientEvent::Closed { error: Some(e) },
        ] if r.code == 451 && e.code == 554 && r.lines == ["too much"]
    ));
    // Later pieces go nowhere.
    c.out();
    c.s.body_chunk(b"more", c.now);
    c.s.body_end(c.now);
    assert_eq!(c.out(), "");
}

#[test]
fn an_unsolicited_reply_fails_the_connection() {
    let mut c = Client::opened(EHLO_PLAIN);
    c.server("250 what\r\n");
    assert!(c.s.is_closed());
}

#[test]
fn a_close_without_quit_fails_the_message_in_flight() {
    let mut c = Client::opened(EHLO_PLAIN);
    c.send("<a@out.example>", &["<b@mx.example>"]);
    c.s.handle_close(c.now);
    assert_eq!(code(&c.completed()[0].1), ('T', 421));
}

/// Feeds each session's output to the other until neither has more to say; returns what
/// the server session queued, and answers the server's events like a permissive smtpd.
fn exchange(
    client: &mut ClientSession,
    server: &mut crate::Session,
    now: Instant,
    received: &mut Vec<(Envelope, Vec<u8>)>,
    events: &mut Vec<ClientEvent>,
    bodies: &[&[u8]],
) {
    use crate::Event;
    let mut started: Option<(Envelope, Vec<u8>)> = None;
    loop {
        let mut moved = false;
        let mut wire = Vec::new();
        server.poll_output(&mut wire);
        if !wire.is_empty() {
            moved = true;
            client.handle_input(&wire, now);
        }
        while let Some(e) = client.poll_event() {
            moved = true;
            if e == ClientEvent::StartTlsRequested {
                // The handshake, in memory: the server side is done already.
                client.tls_established(now);
            }
            if let ClientEvent::BodyRequested { id } = &e {
                let body = bodies[id.0 as usize];
                for piece in body.chunks(7) {
                    client.body_chunk(piece, now);
                }
                client.body_end(now);
            }
            events.push(e);
        }
        let mut wire = Vec::new();
        client.poll_output(&mut wire);
        if !wire.is_empty() {
            moved = true;
            server.handle_input(&wire, now);
        }
        while let Some(e) = server.poll_event() {
            moved = true;
            match e {
                Event::StartTlsRequested => server.tls_established(now),
                Event::MailFrom { .. } => server.accept_mail(),
                Event::RcptTo { forward_path } => {
                    if forward_path.to_string().contains("unknown") {
                        server.reject(Reply::new(550, EnhancedCode(5, 1, 1), "no such user"));
                    } else {
                        server.accept_rcpt();
                    }
                }
                Event::MessageStarted { envelope, .. } => started = Some((envelope, Vec::new())),
                Event::BodyReceived { octets } => {
                    started.as_mut().unwrap().1.extend_from_slice(&octets)
                }
                Event::MessageReceived { .. } => {
                    received.push(started.take().unwrap());
                    server.accept_message(QueueId(received.len() as u64));
                }
                _ => {}
            }
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn our_client_delivers_two_messages_to_our_server_over_one_connection() {
    let now = Instant::now();
    let mut server = crate::Session::new(
        crate::SessionConfig {
            hostname: "mx.example".into(),
            ..crate::SessionConfig::default()
        },
        now,
    );
    let mut client = ClientSession::new(
        ClientConfig {
            hostname: "out.example".into(),
            tls: TlsPolicy::Opportunistic,
            ..ClientConfig::default()
        },
        now,
    );
    let bodies: [&[u8]; 2] = [
        b"Subject: one\r\n\r\n.leading dot\r\n.\r\nbare\nlf\n",
        b"Subject: two\n\nno final line end",
    ];
    client.send(
        envelope(
            "<a@out.example>",
            &["<b@mx.example>", "<unknown@mx.example>"],
        ),
        Some(bodies[0].len() as u64),
        now,
    );
    client.send(
        envelope("<>", &["<c@mx.example>"]),
        Some(bodies[1].len() as u64),
        now,
    );
    client.quit(now);
    let mut received = Vec::new();
    let mut events = Vec::new();
    exchange(
        &mut client,
        &mut server,
        now,
        &mut received,
        &mut events,
        &bodies,
    );
    assert!(client.is_closed());
    assert!(server.is_closed());
    assert_eq!(events.last(), Some(&ClientEvent::Closed { error: None }));
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].1,
        b"Subject: one\r\n\r\n.leading dot\r\n.\r\nbare\r\nlf\r\n"
    );
    assert_eq!(received[0].0.forward_paths.len(), 1);
    assert_eq!(received[1].1, b"Subject: two\r\n\r\nno final line end\r\n");
    assert_eq!(received[1].0.reverse_path, ReversePath::Null);
    let completed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::MessageCompleted {
                id,
                outcome,
                recipients,
            } => Some((
                *id,
                code(outcome),
                recipients.iter().map(|(_, o)| code(o)).collect::<Vec<_>>(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        completed,
        [
            (MessageId(0), ('A', 250), vec![('A', 250), ('P', 550)]),
            (MessageId(1), ('A', 250), vec![('A', 250)]),
        ]
    );
}

#[test]
fn our_client_starts_tls_with_our_server_and_sends_utf8_addresses() {
    let now = Instant::now();
    let mut server = crate::Session::new(
        crate::SessionConfig {
            hostname: "mx.example".into(),
            starttls_available: true,
            ..crate::SessionConfig::default()
        },
        now,
    );
    let mut client = ClientSession::new(
        ClientConfig {
            hostname: "out.example".into(),
            tls: TlsPolicy::Required,
            ..ClientConfig::default()
        },
        now,
    );
    let bodies: [&[u8]; 1] = [b"Subject: \xce\xb1\r\n\r\nhi\r\n"];
    let mut env = envelope("<a@out.example>", &["<δοκιμή@mx.example>"]);
    env.eight_bit = true;
    client.send(env, None, now);
    client.quit(now);
    let mut received = Vec::new();
    let mut events = Vec::new();
    exchange(
        &mut client,
        &mut server,
        now,
        &mut received,
        &mut events,
        &bodies,
    );
    assert!(server.is_tls());
    assert!(events.contains(&ClientEvent::StartTlsRequested));
    assert_eq!(received.len(), 1);
    assert!(received[0].0.smtputf8);
    assert!(received[0].0.eight_bit);
    assert_eq!(received[0].1, bodies[0]);
    assert_eq!(events.last(), Some(&ClientEvent::Closed { error: None }));
}

fn with_auth(allow_plaintext: bool) -> Client {
    Client::new(ClientConfig {
        hostname: "out.example".into(),
        tls: TlsPolicy::Off,
        auth: Some(Credentials {
            user: "relay@example.org".into(),
            password: "secret".into(),
            allow_plaintext,
        }),
        ..ClientConfig::default()
    })
}

#[test]
fn auth_plain_goes_first_and_mail_waits_for_235() {
    let mut c = with_auth(true);
    c.send("<a@example.org>", &["<b@example.net>"]);
    c.server("220 relay ESMTP\r\n");
    assert_eq!(c.out(), "EHLO out.example\r\n");
    c.server("250-relay\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n");
    // base64 of "\0relay@example.org\0secret"
    assert_eq!(
        c.out(),
        "AUTH PLAIN AHJlbGF5QGV4YW1wbGUub3JnAHNlY3JldA==\r\n"
    );
    assert!(!c.s.is_ready());
    c.server("235 2.7.0 ok\r\n");
    assert!(c.out().starts_with("MAIL FROM:<a@example.org>"));
}

#[test]
fn auth_login_answers_both_prompts() {
    let mut c = with_auth(true);
    c.server("220 relay ESMTP\r\n");
    c.out();
    c.server("250-relay\r\n250 AUTH LOGIN\r\n");
    assert_eq!(c.out(), "AUTH LOGIN\r\n");
    c.server("334 VXNlcm5hbWU6\r\n");
    assert_eq!(c.out(), "cmVsYXlAZXhhbXBsZS5vcmc=\r\n");
    c.server("334 UGFzc3dvcmQ6\r\n");
    assert_eq!(c.out(), "c2VjcmV0\r\n");
    c.server("235 2.7.0 ok\r\n");
    assert!(c.s.is_ready());
}

#[test]
fn a_refused_login_or_no_tls_defers_and_never_leaks_the_password() {
    let mut c = with_auth(true);
    c.send("<a@example.org>", &["<b@example.net>"]);
    c.server("220 relay ESMTP\r\n");
    c.out();
    c.server("250-relay\r\n250 AUTH PLAIN\r\n");
    c.out();
    c.server("535 5.7.8 bad credentials\r\n");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('T', 451), "a setup problem is temporary");

    let mut c = with_auth(false);
    c.send("<a@example.org>", &["<b@example.net>"]);
    c.server("220 relay ESMTP\r\n");
    c.out();
    c.server("250-relay\r\n250 AUTH PLAIN\r\n");
    assert!(!c.out().contains("AUTH"), "no password over plaintext");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('T', 451));
    assert_eq!(done[0].1.reply().enhanced, Some(EnhancedCode(4, 7, 0)));
}

#[test]
fn dsn_requests_are_passed_on_only_to_a_server_offering_dsn() {
    use golub_types::dsn::{MessageDsn, Notify, Orcpt, RcptDsn, Ret};
    let mut env = envelope("<a@example.org>", &["<b@example.net>", "<c@example.net>"]);
    env.dsn = MessageDsn {
        ret: Some(Ret::Hdrs),
        envid: Some("id+1 x".into()),
    };
    env.rcpt_dsn = vec![RcptDsn {
        notify: Some(Notify {
            success: true,
            failure: true,
            delay: false,
        }),
        orcpt: Orcpt::from_decoded("rfc822;b@example.net"),
    }];
    let mut c = Client::opened("250-mx.example\r\n250-DSN\r\n250 PIPELINING\r\n");
    c.s.send(env.clone(), None, c.now);
    assert_eq!(
        c.out(),
        "MAIL FROM:<a@example.org> RET=HDRS ENVID=id+2B1+20x\r\n\
         RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.net\r\n\
         RCPT TO:<c@example.net>\r\nDATA\r\n"
    );
    let mut c = Client::opened("250-mx.example\r\n250 PIPELINING\r\n");
    c.s.send(env, None, c.now);
    assert_eq!(
        c.out(),
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
    );
}

const EHLO_CHUNKING: &str = "250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n";

#[test]
fn with_chunking_the_content_goes_as_bdat_without_dot_stuffing() {
    let mut c = Client::opened(EHLO_CHUNKING);
    let id = c.send("<a@example.org>", &["<b@example.net>", "<c@example.net>"]);
    assert_eq!(
        c.out(),
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\n",
        "no DATA"
    );
    c.server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
    assert!(c.completed().is_empty());
    c.server("550 5.1.1 no such user\r\n");
    assert!(matches!(
        c.events().last(),
        Some(ClientEvent::BodyRequested { id: b }) if *b == id
    ));
    c.s.body_chunk(b"Subject: x\n\n.line\r\n", c.now);
    c.s.body_chunk(b"end", c.now);
    c.s.body_end(c.now);
    assert_eq!(
        c.out(),
        "BDAT 21\r\nSubject: x\r\n\r\n.line\r\nBDAT 3\r\nendBDAT 2 LAST\r\n\r\n"
    );
    c.server("250 2.0.0 21 octets\r\n250 2.0.0 3 octets\r\n250 2.0.0 queued\r\n");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('A', 250));
    assert_eq!(code(&done[0].2[0].1), ('A', 250));
    assert_eq!(code(&done[0].2[1].1), ('P', 550));
}

#[test]
fn a_refused_chunk_decides_the_message_and_no_recipient_means_no_bdat() {
    let mut c = Client::opened(EHLO_CHUNKING);
    c.send("<a@example.org>", &["<b@example.net>"]);
    c.out();
    c.server("250 ok\r\n250 ok\r\n");
    c.events();
    c.s.body_chunk(b"x\r\n", c.now);
    c.s.body_end(c.now);
    c.out();
    c.server("552 5.3.4 too big\r\n554 5.5.1 no transaction\r\n");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('P', 552));

    let mut c = Client::opened(EHLO_CHUNKING);
    c.send("<a@example.org>", &["<b@example.net>"]);
    c.out();
    c.server("250 ok\r\n450 4.2.0 busy\r\n");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('T', 450));
    assert_eq!(c.out(), "", "no BDAT when nobody took the message");
    // MAIL refused: the last RCPT reply ends it.
    let mut c = Client::opened(EHLO_CHUNKING);
    c.send("<a@example.org>", &["<b@example.net>"]);
    c.out();
    c.server("550 5.7.1 no\r\n503 5.5.1 need MAIL\r\n");
    let done = c.completed();
    assert_eq!(code(&done[0].1), ('P', 550));
}
