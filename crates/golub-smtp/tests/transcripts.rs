//! Runs every `tests/transcripts/*.txt` against a server session and a tiny fake driver.
//!
//! The runner (`golub_fuzzkit::transcript`) reads `C:`, `C-`, `S:`, `#`, `! advance N`,
//! `! closed`, `! open` and `! shutdown` as its documentation says; SMTP adds:
//! - `! config key[=value] ...` before anything else: `vrfy`, `expn`, `etrn`, `hostname=`,
//!   `max_message_size=`, `max_recipients=`, `max_command_line=`, `max_text_line=`,
//!   `max_errors=`, `command_timeout=` and `data_timeout=` (seconds), `ehlo=KEYWORD`
//!   (`_` stands for a space), `starttls`, `tls_active`, `auth` (PLAIN and LOGIN) or
//!   `auth=MECH,MECH`, `auth_without_tls`, `auth_required`.
//! - `! tls` completes the TLS handshake (`tls_established`) after `StartTlsRequested`;
//!   `! is_tls true|false` checks `is_tls`.
//! - `! authenticated NAME|none` checks `authenticated`; `! attempt MECH AUTHZID AUTHCID`
//!   checks the last `AuthAttempted` (`-` for an empty field).
//! - `! messages N` checks how many messages were accepted so far; `! body text` (escaped),
//!   `! protocol P`, `! helo NAME`, `! rcpts a@b,c@d` and `! from PATH` check the last one.
//! - `! dsn RET ENVID` checks the last message's RET and decoded ENVID; `! rcpt_dsn
//!   NOTIFY/ORCPT ...` its recipients' NOTIFY and decoded ORCPT, one word each (`-` for a
//!   parameter not given).
//!
//! The driver accepts every MAIL except from local part "blocked" (550 5.7.1), refuses RCPT
//! to local part "unknown" (550 5.1.1), accepts every message as queue id 0x42 unless its
//! body holds "X-Reject: yes" (554 5.7.1), answers VRFY and EXPN with fixed replies, and
//! ETRN with 250 "Queuing for node DOMAIN started" (458 for domain "stuck.example").
//! AUTH succeeds for authcid "alice@example.org" with password "secret"; anything else
//! gets 535 5.7.8. For SCRAM-SHA-256 alice's credentials use the salt "transcript-salt!"
//! and 4096 iterations, and the server nonce is always "servernonce".

use std::time::Instant;

use golub_fuzzkit::transcript::{self, attempt_fields};
use golub_smtp::{Event, Session, SessionConfig};
use golub_types::sasl::Credential;
use golub_types::sasl::scram::ScramCredentials;
use golub_types::{EnhancedCode, Envelope, QueueId, Reply};

#[path = "support/config.rs"]
mod config;

struct Received {
    envelope: Envelope,
    body: Vec<u8>,
    helo: String,
    protocol: &'static str,
}

struct Driver {
    session: Session,
    messages: Vec<Received>,
    /// The message whose content is arriving.
    started: Option<Received>,
    /// `StartTlsRequested` seen and not yet answered by `! tls`.
    tls_requested: bool,
    /// The last `AuthAttempted`: mechanism, authzid, authcid.
    attempt: Option<[String; 3]>,
}

impl Driver {
    fn last(&self) -> Result<&Received, String> {
        self.messages
            .last()
            .ok_or_else(|| "no message received".to_string())
    }
}

impl transcript::Driver for Driver {
    type Config = SessionConfig;

    fn config() -> SessionConfig {
        config::base()
    }

    fn configure(config: &mut SessionConfig, words: &str) -> Result<(), String> {
        config::configure(config, words)
    }

    fn start(config: SessionConfig, now: Instant) -> Self {
        Driver {
            session: Session::new(config, now),
            messages: Vec::new(),
            started: None,
            tls_requested: false,
            attempt: None,
        }
    }

    fn input(&mut self, data: &[u8], now: Instant) {
        self.session.handle_input(data, now);
    }

    fn timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }

    fn shutdown(&mut self) {
        self.session.shutdown();
    }

    fn is_closed(&mut self) -> bool {
        self.session.is_closed()
    }

    /// Answers events as the fake driver does and gathers the output.
    fn collect(&mut self, out: &mut Vec<u8>) {
        let s = &mut self.session;
        while let Some(event) = s.poll_event() {
            match event {
                Event::Greeted { .. } => {}
                Event::MailFrom { reverse_path, .. } => {
                    if reverse_path
                        .mailbox()
                        .is_some_and(|m| m.local_part() == "blocked")
                    {
                        s.reject(Reply::new(550, EnhancedCode(5, 7, 1), "sender blocked"));
                    } else {
                        s.accept_mail();
                    }
                }
                Event::RcptTo { forward_path } => {
                    if forward_path
                        .mailbox()
                        .is_some_and(|m| m.local_part() == "unknown")
                    {
                        s.reject(Reply::new(550, EnhancedCode(5, 1, 1), "no such user"));
                    } else {
                        s.accept_rcpt();
                    }
                }
                Event::Vrfy { query } => {
                    s.answer(Reply::new(
                        250,
                        EnhancedCode(2, 1, 5),
                        format!("<{query}@mx.example>"),
                    ));
                }
                Event::Expn { list } => {
                    let mut r =
                        Reply::new(250, EnhancedCode(2, 1, 5), format!("<{list}-1@mx.example>"));
                    r.lines.push(format!("<{list}-2@mx.example>"));
                    s.answer(r);
                }
                Event::EtrnRequested { domain } => {
                    s.answer(if domain == "stuck.example" {
                        Reply::new(
                            458,
                            EnhancedCode(4, 3, 0),
                            format!("Unable to queue messages for node {domain}"),
                        )
                    } else {
                        Reply::new(
                            250,
                            EnhancedCode(2, 0, 0),
                            format!("Queuing for node {domain} started"),
                        )
                    });
                }
                Event::MessageStarted {
                    envelope,
                    helo,
                    protocol,
                } => {
                    assert!(self.started.is_none(), "a message started twice");
                    self.started = Some(Received {
                        envelope,
                        body: Vec::new(),
                        helo,
                        protocol,
                    });
                }
                Event::BodyReceived { octets } => {
                    let started = self.started.as_mut().expect("body outside a message");
                    started.body.extend_from_slice(&octets);
                }
                Event::MessageAborted => {
                    assert!(self.started.take().is_some(), "abort without a message");
                }
                Event::MessageReceived { size } => {
                    let received = self.started.take().expect("message not started");
                    assert_eq!(received.body.len() as u64, size);
                    if received.body.windows(13).any(|w| w == b"X-Reject: yes") {
                        s.reject(Reply::new(554, EnhancedCode(5, 7, 1), "message refused"));
                    } else {
                        self.messages.push(received);
                        s.accept_message(QueueId(0x42));
                    }
                }
                Event::StartTlsRequested => self.tls_requested = true,
                Event::AuthAttempted {
                    mechanism,
                    authzid,
                    authcid,
                    credential,
                } => {
                    let right = match &credential {
                        Credential::Password(password) => {
                            assert!(!format!("{password:?}").contains(password.expose().as_str()));
                            password.expose() == "secret"
                        }
                        Credential::Scram { verified } => *verified,
                    };
                    if authcid == "alice@example.org" && right {
                        s.auth_succeeded();
                    } else {
                        s.reject(Reply::new(
                            535,
                            EnhancedCode(5, 7, 8),
                            "authentication credentials invalid",
                        ));
                    }
                    self.attempt = Some([mechanism, authzid, authcid]);
                }
                Event::CredentialsNeeded { authcid, .. } => {
                    // A fixed salt and nonce make SCRAM exchanges reproducible here.
                    let creds = if authcid == "alice@example.org" {
                        ScramCredentials::derive("secret", b"transcript-salt!", 4096)
                    } else {
                        ScramCredentials::decoy(&authcid, b"transcripts")
                    };
                    s.scram_credentials(creds, "servernonce");
                }
            }
        }
        s.poll_output(out);
    }

    fn directive(&mut self, name: &str, arg: &str, now: Instant) -> Result<(), String> {
        match name {
            "tls" => {
                if !std::mem::take(&mut self.tls_requested) {
                    return Err("no StartTlsRequested event to answer".into());
                }
                self.session.tls_established(now);
            }
            "is_tls" => {
                let tls = self.session.is_tls();
                if tls.to_string() != arg {
                    return Err(format!("is_tls() is {tls}"));
                }
            }
            "authenticated" => {
                let got = self.session.authenticated().unwrap_or("none").to_string();
                if got != arg {
                    return Err(format!("authenticated() is {got}"));
                }
            }
            "attempt" => match &self.attempt {
                Some(got) if got[..] == attempt_fields(arg)[..] => {}
                got => return Err(format!("last auth attempt was {got:?}")),
            },
            "messages" => {
                let n: usize = arg.parse().map_err(|_| "bad count")?;
                if self.messages.len() != n {
                    return Err(format!("{} messages received", self.messages.len()));
                }
            }
            "body" => {
                let want = golub_fuzzkit::try_unescape(arg)?;
                let got = &self.last()?.body;
                if *got != want {
                    return Err(format!("body is {:?}", String::from_utf8_lossy(got)));
                }
            }
            "protocol" if self.last()?.protocol != arg => {
                return Err(format!("protocol is {}", self.last()?.protocol));
            }
            "helo" if self.last()?.helo != arg => {
                return Err(format!("helo is {}", self.last()?.helo));
            }
            "from" => {
                let got = self.last()?.envelope.reverse_path.to_string();
                if got != arg {
                    return Err(format!("reverse path is {got}"));
                }
            }
            "rcpts" => {
                let got: Vec<String> = self
                    .last()?
                    .envelope
                    .forward_paths
                    .iter()
                    .map(|p| p.to_string())
                    .collect();
                let want: Vec<String> = arg.split(',').map(|a| format!("<{a}>")).collect();
                if got != want {
                    return Err(format!("forward paths are {got:?}"));
                }
            }
            "dsn" => {
                let dsn = &self.last()?.envelope.dsn;
                let got = format!(
                    "{} {}",
                    dsn.ret.map(|r| r.to_string()).as_deref().unwrap_or("-"),
                    dsn.envid.as_deref().unwrap_or("-")
                );
                if got != arg {
                    return Err(format!("dsn is {got}"));
                }
            }
            "rcpt_dsn" => {
                let envelope = &self.last()?.envelope;
                let got: Vec<String> = (0..envelope.forward_paths.len())
                    .map(|i| {
                        let d = envelope.rcpt_dsn(i);
                        format!(
                            "{}/{}",
                            d.notify.map(|n| n.to_string()).as_deref().unwrap_or("-"),
                            d.orcpt.map(|o| o.to_string()).as_deref().unwrap_or("-")
                        )
                    })
                    .collect();
                if got.join(" ") != arg {
                    return Err(format!("recipients' dsn is {}", got.join(" ")));
                }
            }
            "protocol" | "helo" => {}
            _ => return Err(format!("unknown directive {name}")),
        }
        Ok(())
    }
}

#[test]
fn transcripts() {
    transcript::run_all::<Driver>(env!("CARGO_MANIFEST_DIR"));
}
