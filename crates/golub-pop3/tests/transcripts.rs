//! Runs every `tests/transcripts/*.txt` against a POP3 session and a tiny fake driver.
//!
//! Transcript lines:
//! - `C: text` the client sends `text` and CRLF, in one write; `C- text` sends it
//!   without CRLF. Escapes: `\r`, `\n`, `\t`, `\\`, `\xHH`.
//! - `S: text` the next line the server sent, exactly (without its CRLF). Every output line
//!   must be matched before the client's next write and by the end of the file.
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
//! - `! advance N` moves the clock N seconds on and calls `handle_timeout`;
//!   `! timeout N|none` checks `poll_timeout` (N seconds from now).
//! - `! closed` / `! open` check `is_closed`; `! shutdown` calls `shutdown`;
//!   `! pending true|false` checks `wants_decision`.
//! - `#` starts a comment; blank lines are ignored.
//!
//! The driver: "alice@example.org" with password "secret" gets a three-message maildrop
//! (`tests/fixtures/plain.eml`, `dot-lines.eml`, `long-body.eml`), "locked@example.org"
//! gets `InUse`, "temp@example.org" `TempFail`, "blocked@example.org" `Blocked`, anything
//! else `Invalid`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use golub_pop3::{AuthFailure, Event, MessageInfo, Pop3Config, Session};
use golub_types::sasl::Credential;
use golub_types::sasl::scram::ScramCredentials;

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

struct Runner {
    config: Pop3Config,
    session: Option<Session>,
    now: Instant,
    output: VecDeque<String>,
    /// `StlsRequested` seen and not yet answered by `! tls`.
    tls_requested: bool,
    /// The last `AuthAttempted`: mechanism, authzid, user.
    attempt: Option<[String; 3]>,
    updates: Vec<Vec<usize>>,
    unreadable: bool,
    update_fails: bool,
}

fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).map_err(|_| format!("bad \\x{hex}"))?);
            }
            other => return Err(format!("bad escape \\{other:?}")),
        }
    }
    Ok(out)
}

impl Runner {
    fn new() -> Self {
        Runner {
            config: Pop3Config {
                hostname: "pop.example".to_string(),
                ..Pop3Config::default()
            },
            session: None,
            now: Instant::now(),
            output: VecDeque::new(),
            tls_requested: false,
            attempt: None,
            updates: Vec::new(),
            unreadable: false,
            update_fails: false,
        }
    }

    fn configure(&mut self, words: &str) -> Result<(), String> {
        if self.session.is_some() {
            return Err("config after the session started".into());
        }
        for word in words.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            let num = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("bad number in {word}"))
            };
            let c = &mut self.config;
            match key {
                "plaintext" => c.allow_plaintext_auth = true,
                "stls" => c.stls_available = true,
                "tls_active" => c.tls_active = true,
                "hostname" => c.hostname = value.to_string(),
                "max_errors" => c.max_errors = num()? as usize,
                "max_line" => c.max_line = num()? as usize,
                "command_timeout" => c.command_timeout = Duration::from_secs(num()?),
                "login_delay" => c.login_delay = Some(num()? as u32),
                "expire" if value.is_empty() => c.expire = None,
                "expire" => c.expire = Some(value.to_string()),
                "mechs" if value.is_empty() => c.sasl_mechanisms = Vec::new(),
                "mechs" => c.sasl_mechanisms = value.split(',').map(str::to_string).collect(),
                _ => return Err(format!("unknown config {word}")),
            }
        }
        Ok(())
    }

    fn session(&mut self) -> &mut Session {
        if self.session.is_none() {
            self.session = Some(Session::new(self.config.clone(), self.now));
        }
        self.collect();
        self.session.as_mut().unwrap()
    }

    /// Answers events as the fake driver does and gathers the output lines.
    fn collect(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
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
        let mut out = Vec::new();
        s.poll_output(&mut out);
        let text = String::from_utf8_lossy(&out);
        let mut rest = &*text;
        while let Some((line, tail)) = rest.split_once("\r\n") {
            self.output.push_back(line.to_string());
            rest = tail;
        }
        if !rest.is_empty() {
            self.output.push_back(format!("<unterminated: {rest:?}>"));
        }
    }

    fn step(&mut self, line: &str) -> Result<(), String> {
        if line.trim().is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let client = match line {
            "C:" => Some(""),
            _ => line.strip_prefix("C: ").or(line.strip_prefix("C- ")),
        };
        if let Some(text) = client {
            let mut data = unescape(text)?;
            if !line.starts_with("C- ") {
                data.extend_from_slice(b"\r\n");
            }
            self.session();
            if let Some(extra) = self.output.front() {
                return Err(format!(
                    "unexpected server output before this write: {extra:?}"
                ));
            }
            let now = self.now;
            self.session().handle_input(&data, now);
            self.collect();
            return Ok(());
        }
        if let Some(want) = line.strip_prefix("S: ").or((line == "S:").then_some("")) {
            self.session();
            let want = String::from_utf8(unescape(want)?).map_err(|e| e.to_string())?;
            return match self.output.pop_front() {
                Some(got) if got == want => Ok(()),
                Some(got) => Err(format!("expected {want:?}, got {got:?}")),
                None => Err(format!("expected {want:?}, got nothing")),
            };
        }
        let Some(directive) = line.strip_prefix("! ") else {
            return Err("unknown line".into());
        };
        let (name, arg) = directive.split_once(' ').unwrap_or((directive, ""));
        if name == "config" {
            return self.configure(arg);
        }
        self.session();
        match name {
            "advance" => {
                let secs = arg.parse().map_err(|_| "bad seconds")?;
                self.now += Duration::from_secs(secs);
                let now = self.now;
                self.session().handle_timeout(now);
                self.collect();
            }
            "timeout" => {
                let now = self.now;
                let got = self
                    .session()
                    .poll_timeout()
                    .map(|t| t.duration_since(now).as_secs().to_string())
                    .unwrap_or_else(|| "none".to_string());
                if got != arg {
                    return Err(format!("poll_timeout() is {got}"));
                }
            }
            "closed" | "open" => {
                let closed = self.session().is_closed();
                if closed != (name == "closed") {
                    return Err(format!("session is_closed() is {closed}"));
                }
            }
            "pending" => {
                let pending = self.session().wants_decision();
                if pending.to_string() != arg {
                    return Err(format!("wants_decision() is {pending}"));
                }
            }
            "shutdown" => {
                self.session().shutdown();
                self.collect();
            }
            "unreadable" => self.unreadable = true,
            "update_fails" => self.update_fails = true,
            "tls" => {
                if !std::mem::take(&mut self.tls_requested) {
                    return Err("no StlsRequested event to answer".into());
                }
                let now = self.now;
                self.session().tls_established(now);
                self.collect();
            }
            "user" => {
                let got = self.session().user().unwrap_or("none").to_string();
                if got != arg {
                    return Err(format!("user() is {got}"));
                }
            }
            "attempt" => {
                let want: Vec<String> = arg
                    .split(' ')
                    .map(|w| if w == "-" { "" } else { w }.to_string())
                    .collect();
                match &self.attempt {
                    Some(got) if got[..] == want[..] => {}
                    got => return Err(format!("last auth attempt was {got:?}")),
                }
            }
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

    fn finish(&mut self) -> Result<(), String> {
        self.session();
        match self.output.front() {
            Some(extra) => Err(format!("unmatched server output at the end: {extra:?}")),
            None => Ok(()),
        }
    }
}

fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut runner = Runner::new();
    for (i, line) in text.lines().enumerate() {
        runner
            .step(line)
            .map_err(|e| format!("line {}: {line}\n    {e}", i + 1))?;
    }
    runner.finish()
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let mut failures = String::new();
    for file in &files {
        if let Err(e) = run_file(file) {
            let name = file.file_name().unwrap().to_string_lossy();
            writeln!(failures, "{name}: {e}").unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} transcripts failed:\n{failures}",
        failures.lines().filter(|l| !l.starts_with(' ')).count(),
        files.len()
    );
}
