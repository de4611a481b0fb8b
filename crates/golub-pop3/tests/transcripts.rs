//! Runs every `tests/transcripts/*.txt` against a POP3 session and a tiny fake driver.
//!
//! The runner (`golub_fuzzkit::transcript`) reads `C:`, `C-`, `S:`, `#`, `! advance N`,
//! `! closed`, `! open` and `! shutdown` as its documentation says; POP3 adds:
//! - `! config key[=value] ...` before anything else: `plaintext` (allow_plaintext_auth),
//!   `stls`, `tls_active`, `hostname=`, `max_errors=`, `max_line=`, `command_timeout=`
//!   (seconds), `login_delay=`, `expire=` (empty: none), `mechs=PLAIN,LOGIN` (empty: none).
//! - `! tls` completes the TLS handshake (`tls_established`) after `StlsRequested`.
//! - `! user NAME|none` checks `user`; `! attempt MECH AUTHZID USER` checks the last
//!   `AuthAttempted` (`-` for an empty field).
//! - `! updates N` checks how many `UpdateRequested` came; `! deleted 0,2|-` checks the
//!   last one's indexes (`-`: none).
//! - `! unreadable` makes the driver answer the next `ContentNeeded` with
//!   `content_unavailable`; `! update_fails` makes it answer `update_done(false)`.
//! - `! timeout N|none` checks `poll_timeout` (N seconds from now);
//!   `! pending true|false` checks `wants_decision`.
//!
//! The driver: "alice@example.org" with password "secret" gets a three-message maildrop
//! (`tests/fixtures/plain.eml`, `dot-lines.eml`, `long-body.eml`), "locked@example.org"
//! gets `InUse`, "temp@example.org" `TempFail`, "blocked@example.org" `Blocked`, anything
//! else `Invalid`.

use std::time::Instant;

use golub_fuzzkit::transcript::{self, attempt_fields};
use golub_pop3::{AuthFailure, Event, MessageInfo, Pop3Config, Session};
use golub_types::sasl::Credential;
use golub_types::sasl::scram::ScramCredentials;

#[path = "support/config.rs"]
mod config;

const FIXTURES: [(&str, &[u8]); 3] = [
    ("msg-1-plain", include_bytes!("fixtures/plain.eml")),
    ("msg-2-dots", include_bytes!("fixtures/dot-lines.eml")),
    ("msg-3-long", include_bytes!("fixtures/long-body.eml")),
];

/// The size a client receives: every line ends in CRLF (RFC 1939 §11).
fn crlf_size(content: &[u8]) -> u64 {
    let mut size = 0u64;
    let mut previous = 0u8;
    for &b in content {
        size += if b == b'\n' && previous != b'\r' {
            2
        } else {
            1
        };
        previous = b;
    }
    if !content.is_empty() && previous != b'\n' {
        size += if previous == b'\r' { 1 } else { 2 };
    }
    size
}

fn maildrop() -> Vec<MessageInfo> {
    FIXTURES
        .iter()
        .map(|(uid, content)| MessageInfo {
            size: crlf_size(content),
            uid: uid.to_string(),
        })
        .collect()
}

struct Driver {
    session: Session,
    /// `StlsRequested` seen and not yet answered by `! tls`.
    tls_requested: bool,
    /// The last `AuthAttempted`: mechanism, authzid, user.
    attempt: Option<[String; 3]>,
    updates: Vec<Vec<usize>>,
    unreadable: bool,
    update_fails: bool,
}

impl transcript::Driver for Driver {
    type Config = Pop3Config;

    fn config() -> Pop3Config {
        config::base()
    }

    fn configure(config: &mut Pop3Config, words: &str) -> Result<(), String> {
        config::configure(config, words)
    }

    fn start(config: Pop3Config, now: Instant) -> Self {
        Driver {
            session: Session::new(config, now),
            tls_requested: false,
            attempt: None,
            updates: Vec::new(),
            unreadable: false,
            update_fails: false,
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
                Event::StlsRequested => self.tls_requested = true,
                Event::AuthAttempted {
                    mechanism,
                    authzid,
                    user,
                    credential,
                } => {
                    let right = match &credential {
                        Credential::Password(password) => {
                            assert!(!format!("{password:?}").contains(password.expose().as_str()));
                            password.expose() == "secret"
                        }
                        Credential::Scram { verified } => *verified,
                    };
                    match (user.as_str(), right) {
                        ("alice@example.org", true) => s.auth_succeeded(maildrop()),
                        ("locked@example.org", _) => s.auth_failed(AuthFailure::InUse),
                        ("temp@example.org", _) => s.auth_failed(AuthFailure::TempFail),
                        ("blocked@example.org", _) => s.auth_failed(AuthFailure::Blocked),
                        _ => s.auth_failed(AuthFailure::Invalid),
                    }
                    self.attempt = Some([mechanism, authzid, user]);
                }
                Event::CredentialsNeeded { user, .. } => {
                    // A fixed salt and nonce make SCRAM exchanges reproducible here.
                    let creds = if user == "alice@example.org" {
                        ScramCredentials::derive("secret", b"transcript-salt!", 4096)
                    } else {
                        ScramCredentials::decoy(&user, b"transcripts")
                    };
                    s.scram_credentials(creds, "servernonce");
                }
                Event::ContentNeeded { index, .. } => {
                    match FIXTURES.get(index) {
                        Some((_, content)) if !self.unreadable => {
                            s.provide_content(content.to_vec());
                        }
                        _ => s.content_unavailable(),
                    }
                    self.unreadable = false;
                }
                Event::UpdateRequested { deleted } => {
                    self.updates.push(deleted);
                    s.update_done(!self.update_fails);
                }
            }
        }
        s.poll_output(out);
    }

    fn directive(&mut self, name: &str, arg: &str, now: Instant) -> Result<(), String> {
        match name {
            "timeout" => {
                let got = self
                    .session
                    .poll_timeout()
                    .map(|t| t.duration_since(now).as_secs().to_string())
                    .unwrap_or_else(|| "none".to_string());
                if got != arg {
                    return Err(format!("poll_timeout() is {got}"));
                }
            }
            "pending" => {
                let pending = self.session.wants_decision();
                if pending.to_string() != arg {
                    return Err(format!("wants_decision() is {pending}"));
                }
            }
            "unreadable" => self.unreadable = true,
            "update_fails" => self.update_fails = true,
            "tls" => {
                if !std::mem::take(&mut self.tls_requested) {
                    return Err("no StlsRequested event to answer".into());
                }
                self.session.tls_established(now);
            }
            "user" => {
                let got = self.session.user().unwrap_or("none").to_string();
                if got != arg {
                    return Err(format!("user() is {got}"));
                }
            }
            "attempt" => match &self.attempt {
                Some(got) if got[..] == attempt_fields(arg)[..] => {}
                got => return Err(format!("last auth attempt was {got:?}")),
            },
            "updates" => {
                let n: usize = arg.parse().map_err(|_| "bad count")?;
                if self.updates.len() != n {
                    return Err(format!("{} updates requested", self.updates.len()));
                }
            }
            "deleted" => {
                let want: Vec<usize> = if arg == "-" {
                    Vec::new()
                } else {
                    arg.split(',')
                        .map(|n| n.parse().map_err(|_| "bad index"))
                        .collect::<Result<_, _>>()?
                };
                match self.updates.last() {
                    Some(got) if *got == want => {}
                    got => return Err(format!("last update deleted {got:?}")),
                }
            }
            _ => return Err(format!("unknown directive {name}")),
        }
        Ok(())
    }
}

#[test]
fn fixture_sizes_count_crlf_line_ends() {
    assert_eq!(crlf_size(b""), 0);
    assert_eq!(crlf_size(b"a\n"), 3);
    assert_eq!(crlf_size(b"a\r\n"), 3);
    assert_eq!(crlf_size(b"a"), 3);
    assert_eq!(crlf_size(b"a\r"), 3);
    let sizes: Vec<u64> = maildrop().iter().map(|m| m.size).collect();
    assert_eq!(sizes, [127, 122, 111]);
}

#[test]
fn transcripts() {
    transcript::run_all::<Driver>(env!("CARGO_MANIFEST_DIR"));
}
