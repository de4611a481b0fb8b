//! Test messages: plausible RFC 5322 text of an exact size, and recipient lists.
//!
//! A [`MessageFactory`] is built once per run. Its headers have a fixed width
//! (zero-padded sequence number and date fields), so the body is generated
//! once and every message of the run has the same length; only the
//! `Subject`, `Date` and `Message-ID` headers change. Body lines are at most
//! 76 characters, end in CRLF and never start with `.`, so the text goes on
//! the wire without dot-stuffing (RFC 5321 §4.5.2).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};

/// Longest body line, without its CRLF (RFC 5322 §2.1.1 recommends 78).
pub const MAX_BODY_LINE: usize = 76;

/// Words the body is made of, indexed by length minus one, so a line can be
/// filled to an exact width with one word.
const WORD_OF_LEN: [&str; 12] = [
    "a",
    "to",
    "the",
    "mail",
    "queue",
    "server",
    "message",
    "delivery",
    "recipient",
    "throughput",
    "destination",
    "transmission",
];

/// More words, for variety; none longer than [`WORD_OF_LEN`]'s last.
const WORDS: [&str; 24] = [
    "the",
    "relay",
    "accepted",
    "message",
    "for",
    "delivery",
    "and",
    "queued",
    "it",
    "on",
    "disk",
    "before",
    "replying",
    "with",
    "a",
    "reply",
    "code",
    "every",
    "recipient",
    "gets",
    "its",
    "own",
    "status",
    "line",
];

const MAX_WORD: usize = WORD_OF_LEN.len();

/// Builds the messages of one run.
#[derive(Debug, Clone)]
pub struct MessageFactory {
    /// `From:` and `To:` lines, fixed for the run.
    address_headers: String,
    /// Right-hand side of every `Message-ID`.
    domain: String,
    /// Distinguishes this run's Message-IDs from other runs'.
    run_id: u64,
    /// Blank separator line plus body, shared by every message.
    body: Vec<u8>,
    /// Total length of each message in bytes.
    len: usize,
}

impl MessageFactory {
    /// Prepares messages of `size` bytes from `reverse_path` to `forward_paths`.
    ///
    /// The size is exact unless it is smaller than the headers (then the
    /// message is headers only) or one byte more than them (then it is two
    /// bytes longer, as a body line needs at least its CRLF); [`Self::len`]
    /// tells the real length.
    pub fn new(
        reverse_path: &str,
        forward_paths: &[String],
        size: usize,
        domain: &str,
        run_id: u64,
    ) -> Self {
        let mut address_headers = format!("From: {reverse_path}\r\nTo: ");
        for (i, fp) in forward_paths.iter().enumerate() {
            if i > 0 {
                // Fold after each address so the header stays short (RFC 5322 §2.2.3).
                address_headers.push_str(",\r\n ");
            }
            address_headers.push_str(fp);
        }
        address_headers.push_str("\r\n");
        let mut factory = MessageFactory {
            address_headers,
            domain: domain.to_owned(),
            run_id,
            body: Vec::new(),
            len: 0,
        };
        let mut headers = Vec::new();
        factory.write_headers(0, UNIX_EPOCH, &mut headers);
        let mut rest = size.saturating_sub(headers.len() + 2);
        if rest == 1 {
            rest = 2;
        }
        factory.body = b"\r\n".to_vec();
        write_body(rest, &mut factory.body);
        factory.len = headers.len() + factory.body.len();
        factory
    }

    /// Length in bytes of every message this factory writes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if messages are empty, which they never are (headers are always there).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends message number `seq`, dated `now`, to `out`.
    pub fn write(&self, seq: u64, now: SystemTime, out: &mut Vec<u8>) {
        out.reserve(self.len + 3);
        self.write_headers(seq, now, out);
        out.extend_from_slice(&self.body);
    }

    fn write_headers(&self, seq: u64, now: SystemTime, out: &mut Vec<u8>) {
        // Widths are fixed (for up to 10^10 messages and years up to 9999), so
        // the headers of every message have the length measured in `new`.
        let mut h = String::with_capacity(self.address_headers.len() + 200);
        h.push_str(&self.address_headers);
        let _ = write!(
            h,
            "Subject: golub-bench message {seq:010}\r\n\
             Date: {}\r\n\
             Message-ID: <{seq:010}.{:016x}@{}>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n",
            rfc5322_date(now),
            self.run_id,
            self.domain,
        );
        out.extend_from_slice(h.as_bytes());
    }
}

/// Appends `len` bytes of CRLF-terminated text lines to `out`; `len` must not be 1.
fn write_body(mut len: usize, out: &mut Vec<u8>) {
    debug_assert_ne!(len, 1, "a body line needs at least its CRLF");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut line_no = 0usize;
    while len >= 2 {
        // A blank line now and then, to make paragraphs.
        if line_no % 9 == 8 && len > MAX_BODY_LINE + 4 {
            out.extend_from_slice(b"\r\n");
            len -= 2;
            line_no += 1;
            continue;
        }
        let mut width = (len - 2).min(MAX_BODY_LINE);
        if len - (width + 2) == 1 {
            // Never leave a single byte, which no line could fill.
            width -= 1;
        }
        fill_line(width, &mut rng, out);
        out.extend_from_slice(b"\r\n");
        len -= width + 2;
        line_no += 1;
    }
}

/// Appends exactly `width` bytes of words separated by spaces.
fn fill_line(width: usize, rng: &mut XorShift, out: &mut Vec<u8>) {
    let mut used = 0;
    while width - used > MAX_WORD + 1 {
        if used > 0 {
            out.push(b' ');
            used += 1;
        }
        let w = WORDS[rng.below(WORDS.len())];
        out.extend_from_slice(w.as_bytes());
        used += w.len();
    }
    let gap = width - used;
    match (gap, used) {
        (0, _) => {}
        (g, 0) if g <= MAX_WORD => out.extend_from_slice(WORD_OF_LEN[g - 1].as_bytes()),
        (g, 0) => {
            out.extend_from_slice(WORD_OF_LEN[g - 2].as_bytes());
            out.push(b',');
        }
        (1, _) => out.push(b','),
        (g, _) => {
            out.push(b' ');
            out.extend_from_slice(WORD_OF_LEN[g - 2].as_bytes());
        }
    }
}

/// Small deterministic generator: the body only has to look varied.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // Truncation is fine: the result is reduced modulo `n` anyway.
        (self.0 % n as u64) as usize
    }
}

/// Formats `t` as an RFC 5322 §3.3 date in UTC, with a two-digit day.
pub fn rfc5322_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Converts days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Expands `--to` into `rcpts` forward-paths.
///
/// `template` is a comma-separated list; recipient `i` (0-based) is entry
/// `i mod len` with every `{n}` replaced by `i`. So `user{n}@example.org`
/// with 3 recipients gives `user0@…`, `user1@…`, `user2@…`. A list that
/// would repeat an address is refused.
pub fn forward_paths(template: &str, rcpts: usize) -> anyhow::Result<Vec<String>> {
    ensure!(rcpts > 0, "--rcpts must be at least 1");
    let entries: Vec<&str> = template.split(',').map(str::trim).collect();
    let paths: Vec<String> = (0..rcpts)
        .map(|i| entries[i % entries.len()].replace("{n}", &i.to_string()))
        .collect();
    for p in &paths {
        check_mailbox(p).with_context(|| format!("bad recipient {p:?}"))?;
    }
    let mut sorted = paths.clone();
    sorted.sort();
    sorted.dedup();
    ensure!(
        sorted.len() == paths.len(),
        "--to {template:?} repeats addresses for {rcpts} recipients; use {{n}} or list more"
    );
    Ok(paths)
}

/// Refuses text that would break the SMTP command line or the headers.
pub fn check_mailbox(addr: &str) -> anyhow::Result<()> {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        bail!("no @ in address");
    };
    ensure!(
        !local.is_empty() && !domain.is_empty(),
        "empty local part or domain"
    );
    ensure!(
        addr.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b',')),
        "address must be printable ASCII without <, > or ,"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn factory(size: usize) -> MessageFactory {
        let to = vec!["user@example.org".to_owned()];
        MessageFactory::new("bench@example.org", &to, size, "bench.example", 42)
    }

    fn build(f: &MessageFactory, seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        f.write(seq, SystemTime::now(), &mut out);
        out
    }

    #[test]
    fn messages_have_the_requested_size() {
        for size in [300, 301, 302, 379, 380, 381, 1000, 4096, 100_000] {
            let f = factory(size);
            assert_eq!(f.len(), size, "size {size}");
            assert_eq!(build(&f, 7).len(), size, "size {size}");
            assert_eq!(build(&f, 12_345_678).len(), size, "size {size}");
        }
    }

    #[test]
    fn one_byte_over_the_headers_gives_a_blank_line() {
        let base = factory(0).len();
        assert_eq!(factory(base).len(), base);
        assert_eq!(factory(base + 1).len(), base + 2);
        assert_eq!(factory(base + 2).len(), base + 2);
        assert_eq!(factory(base + 3).len(), base + 3);
    }

    #[test]
    fn tiny_sizes_give_headers_only() {
        let f = factory(10);
        let m = build(&f, 1);
        assert_eq!(m.len(), f.len());
        assert!(m.ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn body_lines_are_short_crlf_and_never_start_with_a_dot() {
        let m = build(&factory(50_000), 3);
        let text = std::str::from_utf8(&m).unwrap();
        assert!(text.ends_with("\r\n"));
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        for line in body.split_terminator("\r\n") {
            assert!(line.len() <= MAX_BODY_LINE, "{line:?}");
            assert!(!line.starts_with('.'), "{line:?}");
            assert!(!line.contains('\r') && !line.contains('\n'));
        }
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    }

    #[test]
    fn headers_carry_a_unique_message_id() {
        let f = factory(1000);
        let a = String::from_utf8(build(&f, 1)).unwrap();
        let b = String::from_utf8(build(&f, 2)).unwrap();
        let id = |m: &str| {
            m.lines()
                .find(|l| l.starts_with("Message-ID: "))
                .unwrap()
                .to_owned()
        };
        assert_ne!(id(&a), id(&b));
        assert!(id(&a).ends_with("@bench.example>"));
        for h in [
            "From: bench@example.org",
            "To: user@example.org",
            "Subject: ",
            "Date: ",
        ] {
            assert!(a.contains(h), "{h}");
        }
    }

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(rfc5322_date(t), "Thu, 29 Feb 2024 12:34:56 +0000");
    }

    #[test]
    fn recipient_template_expands_index() {
        let p = forward_paths("user{n}@example.org", 3).unwrap();
        assert_eq!(
            p,
            [
                "user0@example.org",
                "user1@example.org",
                "user2@example.org"
            ]
        );
        let p = forward_paths("a@x.org, b@x.org", 2).unwrap();
        assert_eq!(p, ["a@x.org", "b@x.org"]);
        assert_eq!(forward_paths("u@x.org", 1).unwrap(), ["u@x.org"]);
    }

    #[test]
    fn recipient_template_refuses_repeats_and_junk() {
        assert!(forward_paths("u@x.org", 2).is_err());
        assert!(forward_paths("u@x.org", 0).is_err());
        assert!(forward_paths("no-at-sign", 1).is_err());
        assert!(forward_paths("a b@x.org", 1).is_err());
    }
}
