//! IMAP transcripts: every file `tests/imap_transcripts/*.txt` is played, in name order,
//! against a fresh Golub server started in-process on 127.0.0.1 port 0 (plaintext logins
//! allowed), over one TCP connection, checking every line the server sends.
//!
//! The format is the fuzzkit transcript format of the SMTP and POP3 crates
//! (`golub_fuzzkit::transcript`), with these differences for IMAP:
//!
//! - `C: text` sends `text` and CRLF in one write; `C- text` sends `text` alone; `C:`
//!   alone sends CRLF. A client literal is written as IMAP has it: a `C:` line ending in
//!   `{n}` (answered by an `S: + ...` continuation line) or `{n+}`, then the literal's
//!   octets on the following `C:`/`C-` lines (each `C:` line counts its CRLF), and the
//!   rest of the command after them.
//! - `S: text` is the next line the server sent, without its CRLF. `S:` alone is an
//!   empty line. `{*}` in the expected text matches any run of octets (possibly none):
//!   it is kept for values that vary from run to run (the INTERNALDATE and size of mail
//!   that came in by SMTP, whose `Received:` header carries the time).
//! - `{$name}` in an `S:` line matches a run of digits: the first time, any, and binds
//!   `name` to it for the rest of the transcript; after that, only that value. In `C:`
//!   and `C-` lines it stands for the bound value. It is for UIDVALIDITY, which comes
//!   from the clock: `S: * OK [UIDVALIDITY {$inbox}] UIDs valid` binds it, then
//!   `[APPENDUID {$inbox} 4]` checks it and `C: a9 SELECT INBOX (QRESYNC ({$inbox} 3))`
//!   sends it.
//! - Server literals: when a server line ends in `{n}` (or `~{n}`, RFC 3516), the runner
//!   reads exactly n octets as the literal, whatever they hold, and then the rest of the
//!   response up to its CRLF. The transcript shows all of it split at CRLF, as the server
//!   sent it: the `{n}` line, one `S:` line per CRLF-ended line of the literal, and a last
//!   line made of the literal's unterminated tail (if any) and what follows the literal,
//!   e.g. `S: * 1 FETCH (BODY[TEXT] {6}`, `S: Hello`, `S: )`. Octets inside a literal are
//!   never taken for another literal's `{n}`.
//! - Text is taken literally, so IMAP's backslashes need no escaping (`\Seen`). The only
//!   escape is `\xHH`, for one octet (`\x0D`, `\x00`, `\xFF`, `+\x20` for a trailing
//!   space). This is why the lines are not parsed with `golub_fuzzkit::transcript`, whose
//!   escapes would take `\Seen` for a bad `\S`.
//! - `#` starts a comment; blank lines are ignored.
//!
//! Directives:
//! - `! deliver N`: N more of the fixed test messages ([`MESSAGES`], in turn) are sent to
//!   alice@example.org by SMTP, one at a time, each waited for in her INBOX.
//! - `! append N`: N more of the fixed messages are appended to alice's INBOX over a
//!   second IMAP connection, with their fixed INTERNALDATE, so that their sizes and dates
//!   are known exactly.
//! - `! closed`: the server has closed the connection (and sent nothing more). Every
//!   transcript ends with it, so that no unexpected line can go unnoticed.
//!
//! Before each client write the runner also checks that no unmatched server output has
//! already arrived. Every read has a deadline ([`DEADLINE`]); nothing sleeps for a fixed
//! time. The test user is alice@example.org with password `pw`.

use golub_testkit::{ImapClient, TestServer};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one read may wait for the server.
const DEADLINE: Duration = Duration::from_secs(10);

/// The test user.
const USER: &str = "alice@example.org";

/// One fixed test message: its INTERNALDATE when appended, and its text (CRLF lines).
struct Message {
    date: &'static str,
    text: &'static str,
}

/// The fixed messages of `! deliver` and `! append`, used in turn (the n-th message of a
/// transcript is `MESSAGES[(n - 1) % len]`).
const MESSAGES: &[Message] = &[
    Message {
        date: "07-Dec-2026 09:00:00 +0000",
        text: "From: Bob <bob@example.org>\r\n\
               To: Alice <alice@example.org>\r\n\
               Subject: Lunch plans\r\n\
               Date: Mon, 07 Dec 2026 09:00:00 +0000\r\n\
               Message-ID: <m1@example.org>\r\n\
               \r\n\
               Shall we meet at noon?\r\n",
    },
    Message {
        date: "08-Dec-2026 10:30:00 +0100",
        text: "From: Carol <carol@remote.example>\r\n\
               To: alice@example.org\r\n\
               Cc: Bob <bob@example.org>\r\n\
               Subject: Report\r\n\
               Date: Tue, 08 Dec 2026 10:30:00 +0100\r\n\
               Message-ID: <m2@remote.example>\r\n\
               MIME-Version: 1.0\r\n\
               Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
               \r\n\
               --b1\r\n\
               Content-Type: text/plain; charset=us-ascii\r\n\
               \r\n\
               See the attached report.\r\n\
               --b1\r\n\
               Content-Type: application/octet-stream; name=\"r.bin\"\r\n\
               Content-Transfer-Encoding: base64\r\n\
               \r\n\
               AAEC/w==\r\n\
               --b1--\r\n",
    },
    Message {
        date: "09-Dec-2026 18:45:00 -0500",
        text: "From: Dave <dave@remote.example>\r\n\
               To: alice@example.org\r\n\
               Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
               Date: Wed, 09 Dec 2026 18:45:00 -0500\r\n\
               Message-ID: <m3@remote.example>\r\n\
               MIME-Version: 1.0\r\n\
               Content-Type: text/plain; charset=utf-8\r\n\
               Content-Transfer-Encoding: 8bit\r\n\
               \r\n\
               Viele Gr\u{fc}\u{df}e aus K\u{f6}ln.\r\n",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap_transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("transcript directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let mut failures = String::new();
    let mut failed = 0;
    let mut checked = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("transcript text");
        match run(&text).await {
            Ok(n) => checked += n,
            Err((line, e)) => {
                failed += 1;
                writeln!(failures, "{}:{line}: {e}", path.display()).unwrap();
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{failed} of {} IMAP transcripts failed:\n{failures}",
        files.len()
    );
    println!(
        "{} transcripts, {checked} server lines checked",
        files.len()
    );
}

/// One meaningful transcript line.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    /// Octets the client sends in one write.
    Client(Vec<u8>),
    /// The next server line, without CRLF; `{*}` matches any run of octets.
    Server(Vec<u8>),
    /// `! name arg`.
    Directive(&'a str, &'a str),
}

/// Parses one line; `None` for blank lines and comments.
fn parse_line(line: &str) -> Result<Option<Line<'_>>, String> {
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if let Some(text) = line.strip_prefix("C: ").or((line == "C:").then_some("")) {
        let mut data = unescape(text)?;
        data.extend_from_slice(b"\r\n");
        return Ok(Some(Line::Client(data)));
    }
    if let Some(text) = line.strip_prefix("C- ") {
        return Ok(Some(Line::Client(unescape(text)?)));
    }
    if let Some(text) = line.strip_prefix("S: ").or((line == "S:").then_some("")) {
        return Ok(Some(Line::Server(unescape(text)?)));
    }
    if let Some(directive) = line.strip_prefix("! ") {
        let (name, arg) = directive.split_once(' ').unwrap_or((directive, ""));
        return Ok(Some(Line::Directive(name, arg)));
    }
    Err("unknown line (not C:, C-, S:, !, # or blank)".into())
}

/// Undoes `\xHH`; every other character stands for itself.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("\\x") {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let hex = rest.get(i + 2..i + 4).unwrap_or("");
        let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape \\x{hex}"))?;
        out.push(byte);
        rest = &rest[i + 4..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

/// Values bound by `{$name}` in `S:` lines.
type Vars = HashMap<String, Vec<u8>>;

/// Whether `got` matches `want`, where `{*}` in `want` matches any run of octets and
/// `{$name}` a run of digits: the value bound to `name`, or any, which is then bound.
/// `vars` changes only on a match.
fn matches(want: &[u8], got: &[u8], vars: &mut Vars) -> bool {
    let star = find(want, b"{*}");
    let var = find(want, b"{$");
    let (i, is_star) = match (star, var) {
        (None, None) => return want == got,
        (Some(s), Some(v)) if v < s => (v, false),
        (Some(s), _) => (s, true),
        (None, Some(v)) => (v, false),
    };
    let Some(rest) = got.strip_prefix(&want[..i]) else {
        return false;
    };
    if is_star {
        let tail = &want[i + 3..];
        return (0..=rest.len()).any(|skip| try_match(tail, &rest[skip..], vars));
    }
    let Some(len) = want[i..].iter().position(|&b| b == b'}') else {
        return false;
    };
    let name = String::from_utf8_lossy(&want[i + 2..i + len]).into_owned();
    let tail = &want[i + len + 1..];
    if let Some(value) = vars.get(&name) {
        return match rest.strip_prefix(value.as_slice()) {
            Some(after) => matches(tail, after, vars),
            None => false,
        };
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=digits).rev().any(|n| {
        let mut bound = vars.clone();
        bound.insert(name.clone(), rest[..n].to_vec());
        try_match(tail, &rest[n..], &mut bound) && {
            *vars = bound;
            true
        }
    })
}

/// [`matches`] on a copy of `vars`, kept only on a match.
fn try_match(want: &[u8], got: &[u8], vars: &mut Vars) -> bool {
    let mut copy = vars.clone();
    let ok = matches(want, got, &mut copy);
    if ok {
        *vars = copy;
    }
    ok
}

/// Client octets with each `{$name}` replaced by its bound value.
fn substitute(data: &[u8], vars: &Vars) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = find(rest, b"{$") {
        out.extend_from_slice(&rest[..i]);
        let len = rest[i..]
            .iter()
            .position(|&b| b == b'}')
            .ok_or("unterminated {$")?;
        let name = String::from_utf8_lossy(&rest[i + 2..i + len]);
        let value = vars
            .get(&*name)
            .ok_or_else(|| format!("{{${name}}} is not bound yet"))?;
        out.extend_from_slice(value);
        rest = &rest[i + len + 1..];
    }
    out.extend_from_slice(rest);
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of a literal announced at the end of `line` (`{n}` or `~{n}`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Octets shown as a transcript line would write them.
fn show(bytes: &[u8]) -> String {
    let mut s = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                c if c.is_ascii_control() => write!(s, "\\x{:02X}", c as u32).unwrap(),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            write!(s, "\\x{b:02X}").unwrap();
        }
    }
    s
}

/// The client side of the transcript's connection, with the server lines read so far
/// and not yet matched.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    lines: VecDeque<Vec<u8>>,
}

impl Connection {
    /// Reads more octets into the buffer; `Ok(false)` at end of file.
    async fn fill(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk))
            .await
            .map_err(|_| format!("nothing from the server within {DEADLINE:?}"))?
            .map_err(|e| format!("read: {e}"))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The octets up to the next CRLF (which is consumed); `None` at end of file.
    async fn raw_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(p) = find(&self.buf, b"\r\n") {
                let line = self.buf[..p].to_vec();
                self.buf.drain(..p + 2);
                return Ok(Some(line));
            }
            if !self.fill().await? {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(format!(
                        "connection closed after an unterminated line: {}",
                        show(&self.buf)
                    )),
                };
            }
        }
    }

    /// Exactly `n` octets.
    async fn exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(format!("connection closed inside a literal of {n} octets"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads one whole response (with its literals) into `lines`; `false` at end of file.
    async fn read_response(&mut self) -> Result<bool, String> {
        let mut current = Vec::new();
        loop {
            let Some(line) = self.raw_line().await? else {
                return match current.is_empty() {
                    true => Ok(false),
                    false => Err("connection closed inside a response".into()),
                };
            };
            let literal = literal_len(&line);
            current.extend_from_slice(&line);
            let Some(n) = literal else {
                self.lines.push_back(current);
                return Ok(true);
            };
            self.lines.push_back(std::mem::take(&mut current));
            let octets = self.exact(n).await?;
            let mut rest = &octets[..];
            while let Some(p) = find(rest, b"\r\n") {
                self.lines.push_back(rest[..p].to_vec());
                rest = &rest[p + 2..];
            }
            current = rest.to_vec();
        }
    }

    /// The next server line; `None` at end of file.
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.lines.is_empty() && !self.read_response().await? {
            return Ok(None);
        }
        Ok(self.lines.pop_front())
    }

    /// Fails if server output that no `S:` line matched has already arrived.
    fn nothing_pending(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = self.stream.try_read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let extra = self.lines.front().cloned().or_else(|| {
            (!self.buf.is_empty()).then(|| {
                let end = find(&self.buf, b"\r\n").unwrap_or(self.buf.len());
                self.buf[..end].to_vec()
            })
        });
        match extra {
            Some(extra) => Err(format!(
                "unexpected server line before this write: {}",
                show(&extra)
            )),
            None => Ok(()),
        }
    }
}

/// Plays one transcript against a fresh server; the number of server lines checked, or
/// the failing line number and what went wrong.
async fn run(text: &str) -> Result<usize, (usize, String)> {
    let t = TestServer::start_with(|c| c.auth.allow_plaintext = true).await;
    let stream = TcpStream::connect(t.addr("imap"))
        .await
        .map_err(|e| (0, format!("connect: {e}")))?;
    let mut conn = Connection {
        stream,
        buf: Vec::new(),
        lines: VecDeque::new(),
    };
    let mut vars = Vars::new();
    let mut used = 0;
    let mut checked = 0;
    let mut closed = false;
    let mut last = 0;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let parsed = parse_line(line).map_err(|e| (n, format!("{line}\n    {e}")))?;
        let Some(parsed) = parsed else { continue };
        last = n;
        if closed {
            return Err((n, "a line after `! closed`".into()));
        }
        let step = match parsed {
            Line::Client(data) => match substitute(&data, &vars) {
                Ok(data) => send(&mut conn, &data).await,
                Err(e) => Err(e),
            },
            Line::Server(want) => {
                checked += 1;
                expect(&mut conn, &want, &mut vars).await
            }
            Line::Directive("closed", _) => {
                closed = true;
                match conn.next_line().await {
                    Ok(None) => Ok(()),
                    Ok(Some(got)) => Err(format!(
                        "expected the connection closed\n    received: {}",
                        show(&got)
                    )),
                    Err(e) => Err(e),
                }
            }
            Line::Directive("deliver", arg) => deliver(&t, arg, &mut used).await,
            Line::Directive("append", arg) => append(&t, arg, &mut used).await,
            Line::Directive(name, _) => Err(format!("unknown directive {name}")),
        };
        step.map_err(|e| (n, format!("{line}\n    {e}")))?;
    }
    if !closed {
        return Err((last, "the transcript must end with `! closed`".into()));
    }
    Ok(checked)
}

async fn send(conn: &mut Connection, data: &[u8]) -> Result<(), String> {
    conn.nothing_pending()?;
    conn.stream
        .write_all(data)
        .await
        .map_err(|e| format!("write: {e}"))
}

async fn expect(conn: &mut Connection, want: &[u8], vars: &mut Vars) -> Result<(), String> {
    match conn.next_line().await? {
        Some(got) if matches(want, &got, vars) => Ok(()),
        Some(got) => Err(format!(
            "expected: {}\n    received: {}",
            show(want),
            show(&got)
        )),
        None => Err(format!(
            "expected: {}\n    received: the connection closed",
            show(want)
        )),
    }
}

fn count(arg: &str) -> Result<usize, String> {
    arg.parse()
        .map_err(|_| format!("bad message count {arg:?}"))
}

/// The `n`-th fixed message of a transcript (0-based).
fn message(n: usize) -> &'static Message {
    &MESSAGES[n % MESSAGES.len()]
}

/// `! deliver N`: by SMTP, one message at a time, each awaited in the INBOX.
async fn deliver(t: &TestServer, arg: &str, used: &mut usize) -> Result<(), String> {
    for _ in 0..count(arg)? {
        let before = t.inbox(USER).len();
        // The SMTP client sends the text with a final CRLF of its own.
        let text = message(*used).text.trim_end_matches("\r\n");
        t.deliver(USER, text).await;
        t.wait_for_inbox(USER, before + 1).await;
        *used += 1;
    }
    Ok(())
}

/// `! append N`: by APPEND on a second connection, with the fixed INTERNALDATE.
async fn append(t: &TestServer, arg: &str, used: &mut usize) -> Result<(), String> {
    let mut c = ImapClient::connect(t.addr("imap")).await;
    c.login(USER, "pw").await;
    for _ in 0..count(arg)? {
        let m = message(*used);
        let tag = format!("x{used}");
        let cmd = format!(
            "{tag} APPEND INBOX \"{}\" {{{}+}}\r\n{}\r\n",
            m.date,
            m.text.len(),
            m.text
        );
        c.send(cmd.as_bytes()).await;
        let r = c.until_tagged(&tag).await;
        if !r
            .last()
            .is_some_and(|l| l.starts_with(&format!("{tag} OK")))
        {
            return Err(format!("APPEND failed: {r:?}"));
        }
        *used += 1;
    }
    c.cmd("LOGOUT").await;
    Ok(())
}

#[test]
fn wildcards_and_literal_lengths() {
    let mut v = Vars::new();
    assert!(matches(b"a {*} c", b"a b c", &mut v));
    assert!(matches(b"a {*} c", b"a  c", &mut v));
    assert!(matches(b"{*}", b"", &mut v));
    assert!(matches(b"x{*}y{*}z", b"xayyybz", &mut v));
    assert!(!matches(b"a {*} c", b"a b d", &mut v));
    assert!(!matches(b"abc", b"abcd", &mut v));
    assert!(v.is_empty());
    assert!(!matches(b"[UIDVALIDITY {$uv}]", b"[UIDVALIDITY x]", &mut v));
    assert!(v.is_empty());
    assert!(matches(
        b"[UIDVALIDITY {$uv}]",
        b"[UIDVALIDITY 1234]",
        &mut v
    ));
    assert_eq!(v["uv"], b"1234");
    assert!(matches(
        b"[COPYUID {$uv} {*}]",
        b"[COPYUID 1234 1 2]",
        &mut v
    ));
    assert!(!matches(
        b"[COPYUID {$uv} {*}]",
        b"[COPYUID 1235 1 2]",
        &mut v
    ));
    assert!(matches(b"{$a}{$b}x", b"12x", &mut v));
    assert_eq!((&v["a"][..], &v["b"][..]), (&b"1"[..], &b"2"[..]));
    assert_eq!(
        substitute(b"SELECT INBOX (QRESYNC ({$uv} 3))", &v),
        Ok(b"SELECT INBOX (QRESYNC (1234 3))".to_vec())
    );
    assert!(substitute(b"{$nope}", &v).is_err());
    assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}"), Some(12));
    assert_eq!(literal_len(b"* 1 FETCH (BINARY[2] ~{4}"), Some(4));
    assert_eq!(literal_len(b"a {x}"), None);
    assert_eq!(literal_len(b"a {}"), None);
    assert_eq!(
        unescape("\\Seen \\x00\\xFF"),
        Ok(b"\\Seen \x00\xFF".to_vec())
    );
    assert!(unescape("\\xZZ").is_err());
}
