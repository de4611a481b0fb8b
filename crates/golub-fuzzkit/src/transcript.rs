//! The transcript runner shared by the protocol crates: it walks `tests/transcripts/*.txt`,
//! parses their lines, feeds the client's octets to a session through a protocol's fake
//! [`Driver`] and matches what the server sent, reporting failures as `file:line`.
//!
//! Transcript lines:
//! - `C: text` the client sends `text` and CRLF, in one write; `C- text` sends it without
//!   CRLF; `C:` alone sends an empty line.
//! - `S: text` the next line the server sent, exactly (without its CRLF); `S:` alone an
//!   empty line. Every output line must be matched before the client's next write and by
//!   the end of the file.
//! - `! config words...` before anything else, read by [`Driver::configure`].
//! - `! advance N` moves the clock N seconds on and calls [`Driver::timeout`];
//!   `! closed` / `! open` check [`Driver::is_closed`]; `! shutdown` calls
//!   [`Driver::shutdown`]; any other `! name arg` goes to [`Driver::directive`].
//! - `#` starts a comment; blank lines are ignored.
//!
//! `C:` and `S:` text is unescaped with [`crate::try_unescape`]: `\r`, `\n`, `\t`, `\\`,
//! `\xHH`, `\{N*TEXT}`.
//!
//! The fuzz targets take their seeds from the same files: [`client_side`] gives a
//! transcript's `! config` words and the octets its client sends.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::try_unescape;

/// One meaningful transcript line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Octets the client sends in one write (CRLF included for `C:`).
    Client(Vec<u8>),
    /// The next line the server must have sent, without its CRLF.
    Server(String),
    /// `! name arg`.
    Directive { name: &'a str, arg: &'a str },
}

/// Parses one transcript line; `None` for blank lines and comments.
pub fn parse_line(line: &str) -> Result<Option<Line<'_>>, String> {
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if line == "C:" {
        return Ok(Some(Line::Client(b"\r\n".to_vec())));
    }
    if let Some(text) = line.strip_prefix("C: ") {
        let mut data = try_unescape(text)?;
        data.extend_from_slice(b"\r\n");
        return Ok(Some(Line::Client(data)));
    }
    if let Some(text) = line.strip_prefix("C- ") {
        return Ok(Some(Line::Client(try_unescape(text)?)));
    }
    if let Some(text) = line.strip_prefix("S: ").or((line == "S:").then_some("")) {
        let want = String::from_utf8(try_unescape(text)?).map_err(|e| e.to_string())?;
        return Ok(Some(Line::Server(want)));
    }
    if let Some(directive) = line.strip_prefix("! ") {
        let (name, arg) = directive.split_once(' ').unwrap_or((directive, ""));
        return Ok(Some(Line::Directive { name, arg }));
    }
    Err("unknown line".into())
}

/// A transcript's `! config` words (each line's, in order) and all the octets its client
/// sends, concatenated. Panics on a line the runner would refuse.
pub fn client_side(text: &str) -> (Vec<String>, Vec<u8>) {
    let mut config = Vec::new();
    let mut input = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line).unwrap_or_else(|e| panic!("line {}: {line}: {e}", i + 1)) {
            Some(Line::Client(data)) => input.extend_from_slice(&data),
            Some(Line::Directive {
                name: "config",
                arg,
            }) => config.push(arg.to_string()),
            _ => {}
        }
    }
    (config, input)
}

/// The files `<crate_dir>/tests/transcripts/*.txt`, sorted by name, with their text.
/// Pass `env!("CARGO_MANIFEST_DIR")`.
pub fn transcripts(crate_dir: &str) -> Vec<(PathBuf, String)> {
    crate::text_files(&Path::new(crate_dir).join("tests/transcripts"))
}

/// A protocol's session with the tiny fake driver that answers its events.
pub trait Driver: Sized {
    /// The session's configuration.
    type Config;
    /// The configuration before any `! config` line.
    fn config() -> Self::Config;
    /// Applies the words of one `! config` line.
    fn configure(config: &mut Self::Config, words: &str) -> Result<(), String>;
    /// Starts the session at `now`; called before the first line that is not `! config`.
    fn start(config: Self::Config, now: Instant) -> Self;
    /// Feeds client octets.
    fn input(&mut self, data: &[u8], now: Instant);
    /// Calls the session's `handle_timeout`.
    fn timeout(&mut self, now: Instant);
    /// Calls the session's `shutdown`.
    fn shutdown(&mut self);
    /// The session's `is_closed`.
    fn is_closed(&mut self) -> bool;
    /// Answers pending events as the fake driver does and appends the output to `out`.
    fn collect(&mut self, out: &mut Vec<u8>);
    /// A protocol's own `! name arg` directive.
    fn directive(&mut self, name: &str, arg: &str, now: Instant) -> Result<(), String>;
}

/// Splits the `! attempt` argument: space-separated fields, `-` for an empty one.
pub fn attempt_fields(arg: &str) -> Vec<String> {
    arg.split(' ')
        .map(|w| if w == "-" { "" } else { w }.to_string())
        .collect()
}

enum State<D: Driver> {
    Configuring(Option<D::Config>),
    Running(D),
}

/// Runs one transcript through `D`.
struct Runner<D: Driver> {
    state: State<D>,
    now: Instant,
    output: VecDeque<String>,
}

impl<D: Driver> Runner<D> {
    fn new() -> Self {
        Runner {
            state: State::Configuring(Some(D::config())),
            now: Instant::now(),
            output: VecDeque::new(),
        }
    }

    /// The running session, started on first use, with its output collected.
    fn driver(&mut self) -> &mut D {
        if let State::Configuring(config) = &mut self.state {
            // invariant: the configuration is taken only here, when the state changes.
            let config = config.take().expect("configuration present");
            self.state = State::Running(D::start(config, self.now));
        }
        let State::Running(driver) = &mut self.state else {
            unreachable!("started above")
        };
        let mut out = Vec::new();
        driver.collect(&mut out);
        let text = String::from_utf8_lossy(&out);
        let mut rest = &*text;
        while let Some((line, tail)) = rest.split_once("\r\n") {
            self.output.push_back(line.to_string());
            rest = tail;
        }
        if !rest.is_empty() {
            self.output.push_back(format!("<unterminated: {rest:?}>"));
        }
        driver
    }

    fn step(&mut self, line: &str) -> Result<(), String> {
        let Some(line) = parse_line(line)? else {
            return Ok(());
        };
        let now = self.now;
        match line {
            Line::Client(data) => {
                self.driver();
                if let Some(extra) = self.output.front() {
                    return Err(format!(
                        "unexpected server output before this write: {extra:?}"
                    ));
                }
                self.driver().input(&data, now);
                self.driver();
            }
            Line::Server(want) => {
                self.driver();
                return match self.output.pop_front() {
                    Some(got) if got == want => Ok(()),
                    Some(got) => Err(format!("expected {want:?}, got {got:?}")),
                    None => Err(format!("expected {want:?}, got nothing")),
                };
            }
            Line::Directive {
                name: "config",
                arg,
            } => match &mut self.state {
                State::Configuring(Some(config)) => D::configure(config, arg)?,
                _ => return Err("config after the session started".into()),
            },
            Line::Directive {
                name: "advance",
                arg,
            } => {
                let secs = arg.parse().map_err(|_| "bad seconds")?;
                self.now += Duration::from_secs(secs);
                let now = self.now;
                self.driver().timeout(now);
                self.driver();
            }
            Line::Directive {
                name: name @ ("closed" | "open"),
                ..
            } => {
                let closed = self.driver().is_closed();
                if closed != (name == "closed") {
                    return Err(format!("session is_closed() is {closed}"));
                }
            }
            Line::Directive {
                name: "shutdown", ..
            } => {
                self.driver().shutdown();
                self.driver();
            }
            Line::Directive { name, arg } => {
                self.driver().directive(name, arg, now)?;
                self.driver();
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        self.driver();
        match self.output.front() {
            Some(extra) => Err(format!("unmatched server output at the end: {extra:?}")),
            None => Ok(()),
        }
    }
}

/// Runs one transcript's text through `D`; the error names the failing line.
pub fn run<D: Driver>(text: &str) -> Result<(), String> {
    let mut runner = Runner::<D>::new();
    for (i, line) in text.lines().enumerate() {
        runner
            .step(line)
            .map_err(|e| format!("{}: {line}\n    {e}", i + 1))?;
    }
    runner.finish().map_err(|e| format!("end\n    {e}"))
}

/// Runs every `<crate_dir>/tests/transcripts/*.txt` through `D`; panics listing each
/// failing transcript as `path:line`.
pub fn run_all<D: Driver>(crate_dir: &str) {
    let files = transcripts(crate_dir);
    let mut failures = String::new();
    let mut failed = 0;
    for (path, text) in &files {
        if let Err(e) = run::<D>(text) {
            failed += 1;
            writeln!(failures, "{}:{e}", path.display()).unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{failed} of {} transcripts failed:\n{failures}",
        files.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_escapes() {
        assert_eq!(parse_line("# note"), Ok(None));
        assert_eq!(parse_line("  "), Ok(None));
        assert_eq!(parse_line("C:"), Ok(Some(Line::Client(b"\r\n".to_vec()))));
        assert_eq!(
            parse_line("C: a\\tb"),
            Ok(Some(Line::Client(b"a\tb\r\n".to_vec())))
        );
        assert_eq!(
            parse_line("C- \\x00\\{3*x}"),
            Ok(Some(Line::Client(b"\0xxx".to_vec())))
        );
        assert_eq!(parse_line("S:"), Ok(Some(Line::Server(String::new()))));
        assert_eq!(
            parse_line("S: 250 ok"),
            Ok(Some(Line::Server("250 ok".into())))
        );
        assert_eq!(
            parse_line("! advance 30"),
            Ok(Some(Line::Directive {
                name: "advance",
                arg: "30"
            }))
        );
        assert!(parse_line("X: what").is_err());
        assert!(parse_line("C: \\q").is_err());
    }

    #[test]
    fn client_side_keeps_config_and_client_octets() {
        let (config, input) =
            client_side("! config vrfy\nS: 220 hi\nC: EHLO a\n! open\nC- x\nS: 250 ok\n");
        assert_eq!(config, ["vrfy"]);
        assert_eq!(input, b"EHLO a\r\nx");
    }

    /// An echo session: each input line comes back prefixed by "> ".
    struct Echo {
        pending: Vec<u8>,
        closed: bool,
        prefix: String,
    }

    impl Driver for Echo {
        type Config = String;
        fn config() -> String {
            "> ".into()
        }
        fn configure(config: &mut String, words: &str) -> Result<(), String> {
            *config = format!("{words} ");
            Ok(())
        }
        fn start(prefix: String, _: Instant) -> Self {
            Echo {
                pending: b"hello\r\n".to_vec(),
                closed: false,
                prefix,
            }
        }
        fn input(&mut self, data: &[u8], _: Instant) {
            self.pending.extend_from_slice(self.prefix.as_bytes());
            self.pending.extend_from_slice(data);
        }
        fn timeout(&mut self, _: Instant) {
            self.closed = true;
        }
        fn shutdown(&mut self) {
            self.closed = true;
        }
        fn is_closed(&mut self) -> bool {
            self.closed
        }
        fn collect(&mut self, out: &mut Vec<u8>) {
            out.append(&mut self.pending);
        }
        fn directive(&mut self, name: &str, _: &str, _: Instant) -> Result<(), String> {
            Err(format!("unknown directive {name}"))
        }
    }

    #[test]
    fn runner_matches_and_reports_the_line() {
        assert_eq!(run::<Echo>("S: hello\nC: hi\nS: > hi\n! open\n"), Ok(()));
        assert_eq!(
            run::<Echo>("! config >>\nS: hello\nC: hi\nS: >> hi\n! advance 5\n! closed\n"),
            Ok(())
        );
        let err = run::<Echo>("S: hello\nC: a\nC: b\n").unwrap_err();
        assert!(err.starts_with("3: C: b\n"), "{err}");
        let err = run::<Echo>("S: hello\nC: a\n").unwrap_err();
        assert!(err.contains("unmatched server output"), "{err}");
        let err = run::<Echo>("S: hello\n! config x\n").unwrap_err();
        assert!(err.contains("config after"), "{err}");
        let err = run::<Echo>("! frob\n").unwrap_err();
        assert!(err.contains("unknown directive frob"), "{err}");
    }
}
