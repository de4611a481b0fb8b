//! `golub sendmail`: the classic sendmail interface that cron, PHP's mail() and scripts
//! use. It reads a message from stdin, completes its header section (Received, and Date,
//! Message-ID and From when missing), turns LF line ends into CRLF and puts it into the
//! queue by opening the store directly, as the admin commands do. A running server is
//! then asked over the control socket to deliver it at once; without one, it goes at the
//! server's next start.
//!
//! How it fails: exit 64 (EX_USAGE) for bad arguments or addresses, 75 (EX_TEMPFAIL) when
//! the store cannot be opened or the message cannot be queued (nothing was queued then),
//! 78 (EX_CONFIG) for a configuration that does not load. A large message is written to
//! a body file as it is read, never held whole in memory.

use anyhow::{Context, Result, anyhow};
use golub_server::Config;
use golub_server::cleanup::rfc5322_date;
use golub_server::control::{Request, Response};
use golub_store::{BlobWriter, BodyRef, NewMessage, NewRecipient, Store, StoreOptions, unix_now};
use golub_types::{Mailbox, Notify, QueueId, Ret};
use std::io::{BufRead, Read};
use std::process::ExitCode;

/// sysexits.h: the command was used incorrectly.
const EX_USAGE: u8 = 64;
/// sysexits.h: a temporary failure; the caller may try again later.
const EX_TEMPFAIL: u8 = 75;
/// sysexits.h: the configuration is broken.
const EX_CONFIG: u8 = 78;

/// The longest piece of a line taken at once: longer lines are handled in pieces, so a
/// message without line ends cannot fill the memory.
const MAX_PIECE: u64 = 64 * 1024;
/// The most header section kept in memory to look at; beyond it, the rest is body.
const MAX_HEADER_SECTION: usize = 1024 * 1024;

/// The arguments of `golub sendmail`, as sendmail and Postfix take them.
#[derive(clap::Args, Debug, Default)]
pub struct SendmailArgs {
    /// Also take recipients from the To, Cc and Bcc headers.
    #[arg(short = 't')]
    pub extract: bool,
    /// A line with a single dot does not end the message (also -oi).
    #[arg(short = 'i')]
    pub ignore_dots: bool,
    /// The envelope sender (-f '<>' for none); by default the invoking user at the
    /// configured hostname. -r is the old name.
    #[arg(short = 'f', short_alias = 'r', value_name = "SENDER")]
    pub from: Option<String>,
    /// The sender's full name, for the From header added when the message has none.
    #[arg(short = 'F', value_name = "NAME")]
    pub full_name: Option<String>,
    /// Sendmail options: -oi is -i; the others (-odb, -oem, ...) are accepted and ignored.
    #[arg(short = 'o', value_name = "OPTION")]
    pub options: Vec<String>,
    /// Say what happened (the queue id, and whether a server took it at once).
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Accepted and ignored: body type (-B 8BITMIME).
    #[arg(short = 'B', value_name = "TYPE", hide = true)]
    pub body_type: Option<String>,
    /// Accepted and ignored: delivery mode (-bm is the only one there is).
    #[arg(short = 'b', value_name = "MODE", hide = true)]
    pub mode: Option<String>,
    /// Delivery status notifications wanted for every recipient (RFC 3461): "never",
    /// or a list of "success", "failure" and "delay".
    #[arg(short = 'N', value_name = "NOTIFY")]
    pub notify: Option<String>,
    /// How much of the message a failure report returns: "full" or "hdrs".
    #[arg(short = 'R', value_name = "RET")]
    pub ret: Option<String>,
    /// An envelope id that reports name (RFC 3461 ENVID).
    #[arg(short = 'V', value_name = "ENVID")]
    pub envid: Option<String>,
    /// Accepted and ignored: hop count, log file, -m, -n, -U.
    #[arg(short = 'h', value_name = "HOPS", hide = true)]
    pub hops: Option<String>,
    #[arg(short = 'X', value_name = "FILE", hide = true)]
    pub log_file: Option<String>,
    #[arg(short = 'm', hide = true)]
    pub me_too: bool,
    #[arg(short = 'n', hide = true)]
    pub no_aliases: bool,
    #[arg(short = 'U', hide = true)]
    pub initial_submission: bool,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Recipients ("a@example.org", "Name <a@example.org>", or several separated by commas).
    pub recipients: Vec<String>,
}

/// Runs `golub sendmail`; the exit code follows sysexits.h.
pub fn run(config: Result<Config>, args: SendmailArgs, input: &mut impl BufRead) -> ExitCode {
    let config = match config {
        Ok(c) => c,
        Err(e) => return fail(EX_CONFIG, e),
    };
    let ignore_dots = args.ignore_dots || args.options.iter().any(|o| o == "i");
    if let Some(mode) = args.mode.as_deref().filter(|m| *m != "m") {
        return fail(
            EX_USAGE,
            anyhow!("-b{mode}: only -bm (deliver mail) is supported"),
        );
    }
    let dsn = match Dsn::from_args(&args) {
        Ok(d) => d,
        Err(e) => return fail(EX_USAGE, e),
    };
    let sender = match envelope_sender(args.from.as_deref(), &config.hostname) {
        Ok(s) => s,
        Err(e) => return fail(EX_USAGE, e),
    };
    let mut recipients = Vec::new();
    for r in &args.recipients {
        if let Err(e) = add_recipients(&mut recipients, r, &config.hostname) {
            return fail(EX_USAGE, e);
        }
    }
    if !args.extract && recipients.is_empty() {
        return fail(
            EX_USAGE,
            anyhow!("no recipients given (name them, or use -t)"),
        );
    }
    let store = match Store::open_with(
        &config.data_dir,
        StoreOptions {
            inline_body_limit: config.store.inline_body_limit,
            max_database_size: config.store.max_database_size,
            ..StoreOptions::default()
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            let e = anyhow!(e).context(format!(
                "cannot open the data directory {}",
                config.data_dir.display()
            ));
            return fail(EX_TEMPFAIL, e);
        }
    };
    let id = golub_server::queue::new_queue_id();
    let mut sink = Sink::new(&store);
    let header = Prelude {
        id,
        hostname: &config.hostname,
        user: &invoking_user(),
        sender: &sender,
        full_name: args.full_name.as_deref(),
        now: unix_now(),
    };
    let read = match read_message(input, ignore_dots, &header, &mut sink) {
        Ok(r) => r,
        Err(e) => return fail(EX_TEMPFAIL, e),
    };
    if args.extract {
        for value in &read.recipient_fields {
            if let Err(e) = add_recipients(&mut recipients, value, &config.hostname) {
                return fail(EX_USAGE, e);
            }
        }
    }
    if recipients.is_empty() {
        return fail(EX_USAGE, anyhow!("no recipients in the message's headers"));
    }
    let smtputf8 = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    let body = match sink.finish() {
        Ok(b) => b,
        Err(e) => return fail(EX_TEMPFAIL, e),
    };
    let nrcpt = recipients.len();
    let msg = NewMessage {
        id,
        reverse_path: sender.clone(),
        recipients: recipients
            .into_iter()
            .map(|address| NewRecipient {
                address,
                notify: dsn.notify.clone(),
                orcpt: String::new(),
            })
            .collect(),
        smtputf8,
        eight_bit: read.eight_bit,
        body,
        envid: dsn.envid,
        ret: dsn.ret,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    store.enqueue(msg, move |r| {
        let _ = tx.send(r.map(|_| ()));
    });
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return fail(EX_TEMPFAIL, anyhow!(e).context("cannot queue the message")),
        Err(_) => return fail(EX_TEMPFAIL, anyhow!("the store stopped before queueing")),
    }
    drop(store);
    // The message is queued: what follows only decides whether it goes now or at the
    // server's next start.
    let said = match crate::ask_server(&config, &Request::Flush(Some(id))) {
        Ok(Some(Response::Ok(_))) => "handed to the running server".to_string(),
        Ok(Some(Response::Err(e))) => format!("the server said: {e}"),
        Ok(None) => "no server running: it goes at the next start".to_string(),
        // Due now: a server that runs picks it up at its next queue scan.
        Err(e) => format!("cannot reach the server ({e:#}): it goes at its next queue scan"),
    };
    if args.verbose {
        eprintln!(
            "golub sendmail: queued as {id} from <{sender}> for {nrcpt} recipient(s), {} bytes; {said}",
            read.size
        );
    }
    ExitCode::SUCCESS
}

/// The DSN requests of -N, -R and -V, as the queue keeps them (empty: not given).
#[derive(Debug, Default)]
struct Dsn {
    notify: String,
    ret: String,
    envid: String,
}

impl Dsn {
    fn from_args(args: &SendmailArgs) -> Result<Dsn> {
        let notify = match &args.notify {
            Some(n) => Notify::parse(n)
                .map_err(|e| anyhow!("-N {n}: {}", e.as_str()))?
                .to_string(),
            None => String::new(),
        };
        let ret = match &args.ret {
            Some(r) => Ret::parse(r)
                .map_err(|e| anyhow!("-R {r}: {}", e.as_str()))?
                .as_str()
                .to_string(),
            None => String::new(),
        };
        // RFC 3461 §4.4: printable ASCII, at most 100 characters.
        let envid = args.envid.clone().unwrap_or_default();
        if envid.len() > 100 || !envid.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(anyhow!(
                "-V: an envelope id is at most 100 printable ASCII characters"
            ));
        }
        Ok(Dsn { notify, ret, envid })
    }
}

fn fail(code: u8, e: anyhow::Error) -> ExitCode {
    eprintln!("golub sendmail: {e:#}");
    ExitCode::from(code)
}

/// The user who runs the command, by the environment (as Postfix's sendmail does when
/// it cannot ask the system): USER, then LOGNAME, else root.
fn invoking_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string())
}

/// The envelope sender: `-f` (empty or `<>` for the null path; a bare name gets the
/// hostname), else the invoking user at the hostname.
fn envelope_sender(given: Option<&str>, hostname: &str) -> Result<String> {
    let raw = match given {
        Some(f) => f
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
        None => invoking_user(),
    };
    if raw.is_empty() {
        return Ok(String::new());
    }
    qualify(&raw, hostname)
}

/// A mailbox in canonical form; a name without a domain is at `hostname`.
fn qualify(address: &str, hostname: &str) -> Result<String> {
    let full = if address.contains('@') {
        address.to_string()
    } else {
        format!("{address}@{hostname}")
    };
    let m = Mailbox::parse(&full, true).map_err(|e| anyhow!("{address:?}: not an address: {e}"))?;
    Ok(m.canonical())
}

/// Adds the addresses of an address list (a header value or an argument) not yet there.
fn add_recipients(out: &mut Vec<String>, list: &str, hostname: &str) -> Result<()> {
    for a in address_list(list) {
        let a = qualify(&a, hostname)?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(())
}

/// The addresses of an RFC 5322 §3.4 address list, good enough for what people write:
/// `a@x`, `Name <a@x>`, `"Last, First" <a@x>`, comments, groups (`team: a@x, b@y;`).
fn address_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut angle: Option<String> = None;
    let mut in_angle = false;
    let mut quoted = false;
    let mut comment = 0usize;
    let mut escaped = false;
    let mut flush = |current: &mut String, angle: &mut Option<String>| {
        let a = angle.take().unwrap_or_else(|| current.trim().to_string());
        let a = a.trim().to_string();
        if !a.is_empty() {
            out.push(a);
        }
        current.clear();
    };
    for c in value.chars() {
        if escaped {
            escaped = false;
            if in_angle || angle.is_none() {
                current.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => {
                escaped = true;
                if quoted {
                    current.push(c);
                }
            }
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            _ if quoted => current.push(c),
            '<' => {
                in_angle = true;
                current.clear();
            }
            '>' if in_angle => {
                in_angle = false;
                angle = Some(std::mem::take(&mut current));
            }
            // A group's display name ends at the colon; its members follow.
            ':' if !in_angle => current.clear(),
            ',' | ';' if !in_angle => flush(&mut current, &mut angle),
            _ if angle.is_some() => {}
            _ => current.push(c),
        }
    }
    flush(&mut current, &mut angle);
    out
}

/// What the header section added in front of the message says.
struct Prelude<'a> {
    id: QueueId,
    hostname: &'a str,
    user: &'a str,
    /// The envelope sender, empty for the null path.
    sender: &'a str,
    full_name: Option<&'a str>,
    now: i64,
}

/// What reading the message found.
#[derive(Debug, Default)]
struct ReadMessage {
    /// The (unfolded) values of To, Cc and Bcc, for -t.
    recipient_fields: Vec<String>,
    /// Octets written, added headers included.
    size: u64,
    /// An octet over 127 was seen.
    eight_bit: bool,
}

/// Where the message goes as it is read: memory while it is small, then a body file.
struct Sink<'a> {
    store: &'a Store,
    memory: Vec<u8>,
    file: Option<BlobWriter>,
    size: u64,
    eight_bit: bool,
}

impl<'a> Sink<'a> {
    fn new(store: &'a Store) -> Sink<'a> {
        Sink {
            store,
            memory: Vec::new(),
            file: None,
            size: 0,
            eight_bit: false,
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.size += data.len() as u64;
        self.eight_bit |= !data.is_ascii();
        if let Some(f) = &mut self.file {
            return f.write(data).context("cannot write the body file");
        }
        if self.memory.len() + data.len() <= self.store.options().inline_body_limit {
            self.memory.extend_from_slice(data);
            return Ok(());
        }
        // Too large for the database: from here on it goes to a file.
        let mut f = self
            .store
            .create_body()
            .context("cannot create a body file")?;
        f.write(&std::mem::take(&mut self.memory))
            .and_then(|()| f.write(data))
            .context("cannot write the body file")?;
        self.file = Some(f);
        Ok(())
    }

    fn finish(&mut self) -> Result<BodyRef> {
        match self.file.take() {
            Some(f) => f.finish().context("cannot store the body file"),
            None => Ok(BodyRef::Inline(std::mem::take(&mut self.memory))),
        }
    }
}

/// Reads one line (or a piece of a very long one) with its LF; empty at the end.
fn read_piece(input: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    input
        .by_ref()
        .take(MAX_PIECE)
        .read_until(b'\n', buf)
        .context("cannot read the message from stdin")?;
    Ok(())
}

/// The lines of the input with CRLF line ends, up to its end or (without `-i`) a line
/// holding a single dot.
struct Lines<'r, R> {
    input: &'r mut R,
    ignore_dots: bool,
    buf: Vec<u8>,
    /// The last piece ended its line.
    at_line_start: bool,
    done: bool,
}

impl<R: BufRead> Lines<'_, R> {
    /// The next line or piece, CRLF-terminated when it ends a line; None at the end.
    fn next(&mut self) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        read_piece(self.input, &mut self.buf)?;
        if self.buf.is_empty() {
            self.done = true;
            return Ok(None);
        }
        let start = self.at_line_start;
        let mut piece = std::mem::take(&mut self.buf);
        self.at_line_start = piece.ends_with(b"\n");
        if self.at_line_start {
            piece.pop();
            if piece.ends_with(b"\r") {
                piece.pop();
            }
            // Without -i, as sendmail: a line of one dot ends the message.
            if start && !self.ignore_dots && piece == b"." {
                self.done = true;
                return Ok(None);
            }
            piece.extend_from_slice(b"\r\n");
        } else if (piece.len() as u64) < MAX_PIECE {
            // The last line had no line end: it gets one.
            self.at_line_start = true;
            if start && !self.ignore_dots && piece == b"." {
                self.done = true;
                return Ok(None);
            }
            piece.extend_from_slice(b"\r\n");
        }
        Ok(Some(piece))
    }
}

/// The field name of a header line, if it is one (RFC 5322 §2.2: printable ASCII but
/// the colon, then a colon).
fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    let name = name.strip_suffix(b" ").unwrap_or(name);
    (!name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))).then_some(name)
}

/// Reads the message from `input` into `sink`: the added header fields first, the
/// message's own header section without Bcc, the missing Date, Message-ID and From, and
/// the body as it comes.
fn read_message(
    input: &mut impl BufRead,
    ignore_dots: bool,
    p: &Prelude<'_>,
    sink: &mut Sink<'_>,
) -> Result<ReadMessage> {
    let mut lines = Lines {
        input,
        ignore_dots,
        buf: Vec::new(),
        at_line_start: true,
        done: false,
    };
    // The header section: fields (with their continuation lines), kept to look at.
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut kept = 0usize;
    let mut first_body_line = None;
    let mut first = true;
    while let Some(line) = lines.next()? {
        if first && line.starts_with(b"From ") {
            // An mbox separator some programs put in front: not part of the message.
            first = false;
            continue;
        }
        first = false;
        if line == b"\r\n" {
            break;
        }
        let continuation = line.starts_with(b" ") || line.starts_with(b"\t");
        if continuation
            && kept < MAX_HEADER_SECTION
            && let Some(last) = fields.last_mut()
        {
            last.extend_from_slice(&line);
        } else if !continuation && field_name(&line).is_some() && kept < MAX_HEADER_SECTION {
            fields.push(line.clone());
        } else {
            first_body_line = Some(line);
            break;
        }
        kept += line.len();
    }
    let mut read = ReadMessage::default();
    let has = |name: &str| {
        fields
            .iter()
            .any(|f| field_name(f).is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes())))
    };
    let head = format!(
        "Received: by {} (Golub sendmail, from user {})\r\n\tid {}; {}\r\n",
        p.hostname,
        p.user.replace(['(', ')', '\r', '\n'], ""),
        p.id,
        rfc5322_date(p.now)
    );
    let mut tail = String::new();
    if !has("date") {
        tail.push_str(&format!("Date: {}\r\n", rfc5322_date(p.now)));
    }
    if !has("message-id") {
        tail.push_str(&format!("Message-ID: <{}@{}>\r\n", p.id, p.hostname));
    }
    if !has("from") && !p.sender.is_empty() {
        match p.full_name.map(|n| n.replace(['\\', '"', '\r', '\n'], "")) {
            Some(name) if !name.is_empty() => {
                tail.push_str(&format!("From: \"{name}\" <{}>\r\n", p.sender))
            }
            _ => tail.push_str(&format!("From: <{}>\r\n", p.sender)),
        }
    }
    sink.write(head.as_bytes())?;
    for f in &fields {
        let name = field_name(f).unwrap_or_default().to_ascii_lowercase();
        if matches!(name.as_slice(), b"to" | b"cc" | b"bcc") {
            let value = &f[f.iter().position(|&b| b == b':').map_or(0, |c| c + 1)..];
            let unfolded = String::from_utf8_lossy(value).replace("\r\n", "");
            read.recipient_fields.push(unfolded);
        }
        // Bcc recipients are not shown to the others.
        if name != b"bcc" {
            sink.write(f)?;
        }
    }
    sink.write(tail.as_bytes())?;
    // The blank line that ends the header section, where the input had one or not.
    sink.write(b"\r\n")?;
    if let Some(line) = first_body_line {
        sink.write(&line)?;
    }
    while let Some(line) = lines.next()? {
        sink.write(&line)?;
    }
    read.size = sink.size;
    read.eight_bit = sink.eight_bit;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prelude() -> Prelude<'static> {
        Prelude {
            id: QueueId(0xABC),
            hostname: "mx.example.org",
            user: "alice",
            sender: "alice@mx.example.org",
            full_name: Some("Alice L"),
            now: 0,
        }
    }

    /// Reads `input` into a store in a temp dir; the stored message as text.
    fn read(input: &[u8], ignore_dots: bool) -> (String, ReadMessage) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut sink = Sink::new(&store);
        let mut input = input;
        let r = read_message(&mut input, ignore_dots, &prelude(), &mut sink).unwrap();
        let BodyRef::Inline(body) = sink.finish().unwrap() else {
            panic!("a small body stays in memory");
        };
        (String::from_utf8(body).unwrap(), r)
    }

    #[test]
    fn headers_are_completed_bcc_removed_and_lf_becomes_crlf() {
        let (m, r) = read(
            b"To: Bob <bob@example.org>, carol@example.org\nBcc: dave@example.org,\n\tBcc2@example.org\nSubject: hi\n\nbody\n",
            false,
        );
        assert!(
            m.starts_with(
                "Received: by mx.example.org (Golub sendmail, from user alice)\r\n\tid 0000000000000ABC; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
            ),
            "{m}"
        );
        assert!(m.contains("To: Bob <bob@example.org>, carol@example.org\r\nSubject: hi\r\n"));
        assert!(!m.contains("dave"), "{m}");
        assert!(m.contains("Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"));
        assert!(m.contains("Message-ID: <0000000000000ABC@mx.example.org>\r\n"));
        assert!(m.contains("From: \"Alice L\" <alice@mx.example.org>\r\n"));
        assert!(m.ends_with("\r\n\r\nbody\r\n"), "{m}");
        assert!(!m.replace("\r\n", "").contains('\n'));
        assert_eq!(r.recipient_fields.len(), 2);
        let mut all = Vec::new();
        for f in &r.recipient_fields {
            add_recipients(&mut all, f, "mx.example.org").unwrap();
        }
        assert_eq!(
            all,
            [
                "bob@example.org",
                "carol@example.org",
                "dave@example.org",
                "bcc2@example.org"
            ]
        );
        assert!(!r.eight_bit);
    }

    #[test]
    fn present_headers_are_not_added_again() {
        let (m, _) = read(
            b"From: x@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nmessage-id: <a@b>\r\n\r\nhi\r\n",
            false,
        );
        assert_eq!(m.matches("Date:").count(), 1);
        assert_eq!(m.matches("From:").count(), 1);
        assert_eq!(m.to_lowercase().matches("message-id:").count(), 1);
    }

    #[test]
    fn a_lone_dot_ends_the_input_unless_dots_are_ignored() {
        let input = b"Subject: dots\n\none\n.\ntwo\n";
        let (m, _) = read(input, false);
        assert!(m.ends_with("\r\n\r\none\r\n"), "{m}");
        let (m, _) = read(input, true);
        assert!(m.ends_with("\r\n\r\none\r\n.\r\ntwo\r\n"), "{m}");
        let (m, _) = read(b"Subject: x\n\n..\n. \n", false);
        assert!(m.ends_with("\r\n\r\n..\r\n. \r\n"), "only a lone dot: {m}");
    }

    #[test]
    fn a_message_without_headers_gets_a_blank_line_before_its_body() {
        let (m, _) = read(b"just text\nmore", false);
        assert!(
            m.ends_with("From: \"Alice L\" <alice@mx.example.org>\r\n\r\njust text\r\nmore\r\n"),
            "{m}"
        );
    }

    #[test]
    fn a_large_message_goes_to_a_body_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            dir.path(),
            StoreOptions {
                inline_body_limit: 1000,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let mut input = Vec::from(&b"Subject: big\n\n"[..]);
        for _ in 0..500 {
            input.extend_from_slice("line with \u{e9}\n".as_bytes());
        }
        let mut sink = Sink::new(&store);
        let r = read_message(&mut &input[..], false, &prelude(), &mut sink).unwrap();
        assert!(r.eight_bit);
        let BodyRef::File { size, .. } = sink.finish().unwrap() else {
            panic!("a large body goes to a file");
        };
        assert_eq!(size, r.size);
    }

    #[test]
    fn address_lists_as_people_write_them() {
        let cases: &[(&str, &[&str])] = &[
            ("a@x.example", &["a@x.example"]),
            ("a@x.example, b@y.example", &["a@x.example", "b@y.example"]),
            (
                "\"Last, First\" <a@x.example>, B (the boss) <b@y.example>",
                &["a@x.example", "b@y.example"],
            ),
            ("c@z.example (Carol)", &["c@z.example"]),
            (
                "team: a@x.example, b@y.example;, d@w.example",
                &["a@x.example", "b@y.example", "d@w.example"],
            ),
            ("undisclosed-recipients:;", &[]),
            ("", &[]),
        ];
        for (list, want) in cases {
            assert_eq!(address_list(list), *want, "{list}");
        }
    }

    #[test]
    fn dsn_flags_become_the_queues_requests() {
        let args = SendmailArgs {
            notify: Some("failure,delay".into()),
            ret: Some("hdrs".into()),
            envid: Some("cron-42".into()),
            ..SendmailArgs::default()
        };
        let d = Dsn::from_args(&args).unwrap();
        assert_eq!(
            (d.notify.as_str(), d.ret.as_str(), d.envid.as_str()),
            ("FAILURE,DELAY", "HDRS", "cron-42")
        );
        let none = Dsn::from_args(&SendmailArgs::default()).unwrap();
        assert_eq!((none.notify, none.ret, none.envid), Default::default());
        for bad in [
            SendmailArgs {
                notify: Some("sometimes".into()),
                ..SendmailArgs::default()
            },
            SendmailArgs {
                ret: Some("all".into()),
                ..SendmailArgs::default()
            },
            SendmailArgs {
                envid: Some("has space".into()),
                ..SendmailArgs::default()
            },
        ] {
            assert!(Dsn::from_args(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn senders_and_recipients_are_qualified_with_the_hostname() {
        assert_eq!(envelope_sender(Some("<>"), "mx.example.org").unwrap(), "");
        assert_eq!(
            envelope_sender(Some("cron"), "mx.example.org").unwrap(),
            "cron@mx.example.org"
        );
        assert_eq!(
            envelope_sender(Some("<Bob@Example.ORG>"), "mx.example.org").unwrap(),
            "bob@example.org"
        );
        assert!(envelope_sender(Some("a b@@c"), "mx.example.org").is_err());
    }
}
