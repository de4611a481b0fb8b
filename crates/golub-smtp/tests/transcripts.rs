//! Runs every `tests/transcripts/*.txt` against a server session and a tiny fake driver.
//!
//! Transcript lines:
//! - `C: text` the client sends `text` and CRLF, in one write; `C- text` sends it
//!   without CRLF. Escapes: `\r`, `\n`, `\t`, `\\`, `\xHH`.
//! - `S: text` the next line the server sent, exactly (without its CRLF). Every output line
//!   must be matched before the client's next write and by the end of the file.
//! - `! config key[=value] ...` before anything else: `vrfy`, `expn`, `hostname=`,
//!   `max_message_size=`, `max_recipients=`, `max_command_line=`, `max_text_line=`,
//!   `max_errors=`, `command_timeout=` and `data_timeout=` (seconds), `ehlo=KEYWORD`
//!   (`_` stands for a space), `starttls`, `tls_active`, `auth` (PLAIN and LOGIN) or
//!   `auth=MECH,MECH`, `auth_without_tls`, `auth_required`.
//! - `! tls` completes the TLS handshake (`tls_established`) after `StartTlsRequested`;
//!   `! is_tls true|false` checks `is_tls`.
//! - `! authenticated NAME|none` checks `authenticated`; `! attempt MECH AUTHZID AUTHCID`
//!   checks the last `AuthAttempted` (`-` for an empty field).
//! - `! advance N` moves the clock N seconds on and calls `handle_timeout`.
//! - `! closed` / `! open` check `is_closed`; `! shutdown` calls `shutdown`.
//! - `! messages N` checks how many messages were accepted so far; `! body text` (escaped),
//!   `! protocol P`, `! helo NAME`, `! rcpts a@b,c@d` and `! from PATH` check the last one.
//! - `#` starts a comment; blank lines are ignored.
//!
//! The driver accepts every MAIL except from local part "blocked" (550 5.7.1), refuses RCPT
//! to local part "unknown" (550 5.1.1), accepts every message as queue id 0x42 unless its
//! body holds "X-Reject: yes" (554 5.7.1), and answers VRFY and EXPN with fixed replies.
//! AUTH succeeds for authcid "alice@example.org" with password "secret"; anything else
//! gets 535 5.7.8.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use golub_smtp::{Event, Session, SessionConfig};
use golub_types::{EnhancedCode, Envelope, QueueId, Reply};

struct Received {
    envelope: Envelope,
    body: Vec<u8>,
    helo: String,
    protocol: &'static str,
}

struct Runner {
    config: SessionConfig,
    session: Option<Session>,
    now: Instant,
    output: VecDeque<String>,
    messages: Vec<Received>,
    /// The message whose content is arriving.
    started: Option<Received>,
    /// `StartTlsRequested` seen and not yet answered by `! tls`.
    tls_requested: bool,
    /// The last `AuthAttempted`: mechanism, authzid, authcid.
    attempt: Option<[String; 3]>,
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
            config: SessionConfig {
                hostname: "mx.example".to_string(),
                ..SessionConfig::default()
            },
            session: None,
            now: Instant::now(),
            output: VecDeque::new(),
            messages: Vec::new(),
            started: None,
            tls_requested: false,
            attempt: None,
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
                "vrfy" => c.vrfy_enabled = true,
                "expn" => c.expn_enabled = true,
                "hostname" => c.hostname = value.to_string(),
                "max_message_size" => c.max_message_size = num()? as usize,
                "max_recipients" => c.max_recipients = num()? as usize,
                "max_command_line" => c.max_command_line = num()? as usize,
                "max_text_line" => c.max_text_line = num()? as usize,
                "max_errors" => c.max_errors = num()? as usize,
                "command_timeout" => c.command_timeout = Duration::from_secs(num()?),
                "data_timeout" => c.data_timeout = Duration::from_secs(num()?),
                "ehlo" => c.extra_ehlo.push(value.replace('_', " ")),
                "starttls" => c.starttls_available = true,
                "tls_active" => c.tls_active = true,
                "auth" if value.is_empty() => {
                    c.auth_mechanisms = vec!["PLAIN".into(), "LOGIN".into()];
                }
                "auth" => c.auth_mechanisms = value.split(',').map(str::to_string).collect(),
                "auth_without_tls" => c.auth_without_tls = true,
                "auth_required" => c.auth_required = true,
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
                    password,
                } => {
                    assert!(!format!("{password:?}").contains(password.expose().as_str()));
                    if authcid == "alice@example.org" && password.expose() == "secret" {
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

    fn last(&self) -> Result<&Received, String> {
        self.messages
            .last()
            .ok_or_else(|| "no message received".to_string())
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
            "closed" | "open" => {
                let closed = self.session().is_closed();
                if closed != (name == "closed") {
                    return Err(format!("session is_closed() is {closed}"));
                }
            }
            "shutdown" => {
                self.session().shutdown();
                self.collect();
            }
            "tls" => {
                if !std::mem::take(&mut self.tls_requested) {
                    return Err("no StartTlsRequested event to answer".into());
                }
                let now = self.now;
                self.session().tls_established(now);
                self.collect();
            }
            "is_tls" => {
                let tls = self.session().is_tls();
                if tls.to_string() != arg {
                    return Err(format!("is_tls() is {tls}"));
                }
            }
            "authenticated" => {
                let got = self.session().authenticated().unwrap_or("none").to_string();
                if got != arg {
                    return Err(format!("authenticated() is {got}"));
                }
            }
            "attempt" => {
                let want: Vec<String> = arg
                    .split(' ')
                    .map(|w| {
                        if w == "-" {
                            String::new()
                        } else {
                            w.to_string()
                        }
                    })
                    .collect();
                match &self.attempt {
                    Some(got) if got[..] == want[..] => {}
                    got => return Err(format!("last auth attempt was {got:?}")),
                }
            }
            "messages" => {
                let n: usize = arg.parse().map_err(|_| "bad count")?;
                if self.messages.len() != n {
                    return Err(format!("{} messages received", self.messages.len()));
                }
            }
            "body" => {
                let want = unescape(arg)?;
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
            "protocol" | "helo" => {}
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
