//! Message content decoders: DATA (dot-unstuffing and end detection) and BDAT chunks.
//!
//! [`DataDecoder`] reads what follows a DATA command's 354 reply, up to and including the
//! end marker `<CRLF>.<CRLF>` (RFC 5321 §4.1.1.4), where the CRLF that ended the DATA
//! line counts as the first CRLF. It removes one leading dot from each line (§4.5.2).
//!
//! Only the exact sequence CR LF "." CR LF ends the data. Bare CR and bare LF (§2.3.8) are
//! never line ends: a message that holds one is consumed to the real end marker and then
//! refused, so that no "\n.\r\n"-style variant can end a message early and smuggle a
//! second one (the SMTP smuggling attacks of 2023). The decoder is a small automaton fed
//! byte by byte, so its result cannot depend on how the input is split.
//!
//! [`ChunkDecoder`] counts off the octets of one BDAT chunk (RFC 3030 §2): binary, no dot
//! handling, no line checks.

use crate::error::Error;

/// Where the DATA automaton stands, given the last octets seen (the stream starts after a
/// CRLF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The last two octets were CR LF: a new line starts.
    LineStart,
    /// CR LF ".": either a stuffed dot or the start of the end marker.
    Dot,
    /// CR LF "." CR: an LF now ends the data.
    DotCr,
    /// A CR inside a line: an LF now ends the line.
    Cr,
    /// Inside a line.
    Mid,
}

/// Decodes DATA content under the message size and text line limits.
#[derive(Debug)]
pub struct DataDecoder {
    state: State,
    done: bool,
    max_message_size: usize,
    max_text_line: usize,
    body: Vec<u8>,
    /// Octets of the current line as received, CRLF included (RFC 5321 §4.5.3.1.6).
    line_len: usize,
    /// Content octets seen, stored or not.
    size: usize,
    bare_line_ending: bool,
    line_too_long: bool,
    too_large: bool,
}

impl DataDecoder {
    /// A decoder that stores at most `max_message_size` octets and allows lines of at
    /// most `max_text_line` octets including CRLF; 0 allows lines of any length.
    pub fn new(max_message_size: usize, max_text_line: usize) -> Self {
        DataDecoder {
            state: State::LineStart,
            done: false,
            max_message_size,
            max_text_line,
            body: Vec::new(),
            line_len: 0,
            size: 0,
            bare_line_ending: false,
            line_too_long: false,
            too_large: false,
        }
    }

    /// Feeds received octets. Returns `Some(n)` when the end marker ends at `input[n - 1]`;
    /// the octets after it belong to the next command and are not consumed. Returns `None`
    /// when all of `input` was consumed and the end was not reached yet.
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        if self.done {
            return Some(0);
        }
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Mid {
                // Fast path: copy the run of ordinary octets up to the next CR or LF.
                let rest = &input[i..];
                let n = rest
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(rest.len());
                if n > 0 {
                    self.count_line(n);
                    self.push(&rest[..n]);
                    i += n;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            self.count_line(1);
            if self.step(b) {
                self.done = true;
                return Some(i);
            }
        }
        None
    }

    /// True once the end marker was read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes the content decoded since the last call (dot-unstuffed, CRLF line ends), so
    /// that a long message need not be held whole. Once the message is known to be
    /// refused, nothing more comes.
    pub fn take_body(&mut self) -> Vec<u8> {
        // The next input is likely as large as the last one: room for it at once.
        let room = self.body.len();
        std::mem::replace(&mut self.body, Vec::with_capacity(room))
    }

    /// The rest of the message content (dot-unstuffed, CRLF line ends, without the final
    /// ".CRLF") not taken yet, or why the message must be refused. Call once
    /// [`is_done`](Self::is_done).
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        if self.bare_line_ending {
            Err(Error::BareLineEndingInData)
        } else if self.line_too_long {
            Err(Error::LineTooLong)
        } else if self.too_large {
            Err(Error::MessageTooLarge)
        } else {
            Ok(self.body)
        }
    }

    fn count_line(&mut self, n: usize) {
        self.line_len = self.line_len.saturating_add(n);
        if self.max_text_line != 0 && self.line_len > self.max_text_line {
            self.line_too_long = true;
        }
    }

    /// Advances the automaton by one octet; true when it completed the end marker.
    fn step(&mut self, b: u8) -> bool {
        match self.state {
            State::LineStart if b == b'.' => self.state = State::Dot,
            State::Dot if b == b'\r' => self.state = State::DotCr,
            State::DotCr if b == b'\n' => return true,
            State::Cr if b == b'\n' => {
                self.push(b"\r\n");
                self.state = State::LineStart;
                self.line_len = 0;
            }
            State::Cr | State::DotCr => {
                // A CR not followed by LF.
                self.bare_line_ending = true;
                self.in_line(b);
            }
            // RFC 5321 §4.5.2: the first dot of a line is removed; `b` is content.
            State::LineStart | State::Dot | State::Mid => self.in_line(b),
        }
        false
    }

    /// An octet inside a line (or starting one).
    fn in_line(&mut self, b: u8) {
        match b {
            b'\r' => self.state = State::Cr,
            b'\n' => {
                // A bare LF: not a line end, so what follows is not at a line start.
                self.bare_line_ending = true;
                self.state = State::Mid;
            }
            _ => {
                self.push(&[b]);
                self.state = State::Mid;
            }
        }
    }

    fn push(&mut self, octets: &[u8]) {
        self.size = self.size.saturating_add(octets.len());
        if self.size > self.max_message_size {
            self.too_large = true;
        }
        if self.bare_line_ending || self.line_too_long || self.too_large {
            // The message will be refused: keep nothing, so memory stays bounded.
            if !self.body.is_empty() {
                self.body = Vec::new();
            }
            return;
        }
        self.body.extend_from_slice(octets);
    }
}

/// Counts off the octets of one BDAT chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDecoder {
    remaining: u64,
}

impl ChunkDecoder {
    /// A decoder for a chunk of `size` octets.
    pub fn new(size: u64) -> Self {
        ChunkDecoder { remaining: size }
    }

    /// Takes the part of `input` that belongs to the chunk; the rest is the next command.
    pub fn take<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        let n = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(input.len());
        self.remaining -= n as u64;
        &input[..n]
    }

    /// Octets still to come.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// True once the whole chunk was read.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What feeding produced: the outcome (`None` when the end never came) and the tail.
    type Run = (Outcome, Vec<u8>);
    type Outcome = Option<Result<Vec<u8>, Error>>;

    /// Feeds `pieces` in order; returns the outcome and the unconsumed tail, or `None` as
    /// the outcome when the end was never found.
    fn run(pieces: &[&[u8]], max_size: usize, max_line: usize) -> Run {
        let mut d = DataDecoder::new(max_size, max_line);
        let mut tail = Vec::new();
        for piece in pieces {
            if d.is_done() {
                tail.extend_from_slice(piece);
                continue;
            }
            if let Some(n) = d.feed(piece) {
                tail.extend_from_slice(&piece[n..]);
            }
        }
        let done = d.is_done();
        (done.then(|| d.finish()), tail)
    }

    /// Runs `input` whole, one octet at a time and split at every point; all must agree.
    fn decode(input: &[u8], max_size: usize, max_line: usize) -> Run {
        let whole = run(&[input], max_size, max_line);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            run(&bytes, max_size, max_line),
            whole,
            "one octet at a time: {input:?}"
        );
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(
                run(&[a, b], max_size, max_line),
                whole,
                "split at {cut}: {input:?}"
            );
        }
        whole
    }

    fn ok(body: &[u8]) -> Outcome {
        Some(Ok(body.to_vec()))
    }

    #[test]
    fn data_ends_only_at_crlf_dot_crlf() {
        let table: &[(&[u8], Outcome, &[u8])] = &[
            (b".\r\n", ok(b""), b""),
            (b".\r\nQUIT\r\n", ok(b""), b"QUIT\r\n"),
            (b"hello\r\n.\r\n", ok(b"hello\r\n"), b""),
            (b"a\r\nb\r\n.\r\nNOOP\r\n", ok(b"a\r\nb\r\n"), b"NOOP\r\n"),
            (b"\r\n.\r\n", ok(b"\r\n"), b""),
            (b"hello\r\n", None, b""),
            (b"hello\r\n.", None, b""),
            (b"hello\r\n.\r", None, b""),
            (b"hello.\r\n", None, b""),
            (b"", None, b""),
        ];
        for (input, want, tail) in table {
            let (got, rest) = decode(input, 1000, 1000);
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(&rest, tail, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn leading_dots_are_unstuffed() {
        let table: &[(&[u8], &[u8])] = &[
            (b"..\r\n.\r\n", b".\r\n"),
            (b"...\r\n.\r\n", b"..\r\n"),
            (b".hidden\r\n.\r\n", b"hidden\r\n"),
            (b"a.b\r\n.\r\n", b"a.b\r\n"),
            (b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n"),
            (b"a\r\n. \r\n.\r\n", b"a\r\n \r\n"),
            (b"x\r\n..\r\n..\r\n.\r\n", b"x\r\n.\r\n.\r\n"),
        ];
        for (input, want) in table {
            assert_eq!(
                decode(input, 1000, 1000),
                (ok(want), Vec::new()),
                "{input:?}"
            );
        }
    }

    #[test]
    fn smuggling_variants_never_end_the_data() {
        // Each would end the data early in a lax server; here none does, so the data runs
        // to the real end marker and the message is refused as a whole.
        let variants: &[&[u8]] = &[
            b"a\n.\r\nMAIL FROM:<x@evil.example>\r\n",
            b"a\r\n.\nMAIL FROM:<x@evil.example>\r\n",
            b"a\n.\nMAIL FROM:<x@evil.example>\r\n",
            b"a\r.\r\nMAIL FROM:<x@evil.example>\r\n",
            b"a\r\n.\rMAIL FROM:<x@evil.example>\r\n",
            b"a\r\n.\r\r\nX\r\n",
            b".\nMAIL FROM:<x@evil.example>\r\n",
            b"a\n\r\n.\n\r\n",
            b"a\r\n\n.\r\n",
        ];
        for v in variants {
            // Without a real end marker, the data goes on.
            assert_eq!(
                decode(v, 1000, 1000).0,
                None,
                "ended early: {:?}",
                String::from_utf8_lossy(v)
            );
            let mut input = v.to_vec();
            input.extend_from_slice(b"\r\n.\r\nRSET\r\n");
            assert_eq!(
                decode(&input, 1000, 1000),
                (Some(Err(Error::BareLineEndingInData)), b"RSET\r\n".to_vec()),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn an_end_marker_right_after_a_bare_ending_still_ends() {
        // "\r\r\n.\r\n" holds a real "\r\n.\r\n": it ends there, refused for the bare CR.
        assert_eq!(
            decode(b"a\r\r\n.\r\nQUIT\r\n", 1000, 1000),
            (Some(Err(Error::BareLineEndingInData)), b"QUIT\r\n".to_vec())
        );
        assert_eq!(
            decode(b"\n.\r\n.\r\n", 1000, 1000),
            (Some(Err(Error::BareLineEndingInData)), Vec::new())
        );
    }

    #[test]
    fn bare_cr_and_lf_anywhere_refuse_the_message() {
        for input in [
            &b"a\nb\r\n.\r\n"[..],
            b"a\rb\r\n.\r\n",
            b"\n.\r\n.\r\n",
            b"\r.\r\n.\r\n",
            b"abc\r\r\n.\r\n",
            b"..\n\r\n.\r\n",
        ] {
            assert_eq!(
                decode(input, 1000, 1000).0,
                Some(Err(Error::BareLineEndingInData)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn limits_are_checked_but_the_data_is_consumed() {
        // 10 octets of content allowed: "0123456789" is 10 without CRLF, 12 with.
        assert_eq!(
            decode(b"01234567\r\n.\r\n", 10, 1000).0,
            ok(b"01234567\r\n")
        );
        assert_eq!(
            decode(b"0123456789\r\n.\r\nQUIT\r\n", 10, 1000),
            (Some(Err(Error::MessageTooLarge)), b"QUIT\r\n".to_vec())
        );
        // Lines of 8 octets with CRLF are allowed, 9 are not; the dot counts as received.
        assert_eq!(decode(b"123456\r\n.\r\n", 1000, 8).0, ok(b"123456\r\n"));
        assert_eq!(
            decode(b"1234567\r\n.\r\n", 1000, 8).0,
            Some(Err(Error::LineTooLong))
        );
        assert_eq!(
            decode(b"..23456\r\n.\r\n", 1000, 8).0,
            Some(Err(Error::LineTooLong))
        );
        // A bare line ending is reported before the other faults.
        assert_eq!(
            decode(b"123456789\n\r\n.\r\n", 5, 8).0,
            Some(Err(Error::BareLineEndingInData))
        );
    }

    #[test]
    fn a_zero_line_limit_allows_lines_as_long_as_the_message() {
        let line = [vec![b'x'; 100_000], b"\r\n".to_vec()].concat();
        let input = [line.as_slice(), b".\r\n"].concat();
        assert_eq!(run(&[&input], 200_000, 0).0, ok(&line));
        assert_eq!(
            run(&[&input], 50_000, 0).0,
            Some(Err(Error::MessageTooLarge))
        );
    }

    #[test]
    fn refused_content_is_not_kept() {
        let mut d = DataDecoder::new(100, 100_000);
        let big = vec![b'x'; 10_000];
        assert_eq!(d.feed(&big), None);
        assert!(d.body.is_empty());
        assert_eq!(d.feed(b"\r\n.\r\n"), Some(5));
        assert_eq!(d.finish(), Err(Error::MessageTooLarge));
    }

    #[test]
    fn the_end_is_the_first_crlf_dot_crlf_for_every_short_input() {
        // Exhaustive over short strings of the octets that matter: the decoder ends exactly
        // where "\r\n" + input first holds "\r\n.\r\n", and flags bare endings exactly when
        // the data before it has a CR or LF outside a CRLF pair.
        let alphabet = [b'\r', b'\n', b'.', b'a'];
        for len in 0..=7u32 {
            for mut code in 0..4usize.pow(len) {
                let mut input = Vec::new();
                for _ in 0..len {
                    input.push(alphabet[code % 4]);
                    code /= 4;
                }
                let framed = [b"\r\n".as_slice(), &input].concat();
                let end = framed.windows(5).position(|w| w == b"\r\n.\r\n");
                let (got, tail) = decode(&input, 1000, 1000);
                match end {
                    None => assert_eq!(got, None, "{input:?}"),
                    Some(at) => {
                        // The content is what precedes the marker's final ".CRLF".
                        let content = &framed[2..at + 2];
                        assert_eq!(tail, &framed[at + 5..], "{input:?}");
                        let stripped = content.split(|&b| b == b'\n').count() - 1
                            == content.windows(2).filter(|w| w == b"\r\n").count()
                            && content.iter().filter(|&&b| b == b'\r').count()
                                == content.windows(2).filter(|w| w == b"\r\n").count();
                        match got {
                            Some(Ok(body)) => {
                                assert!(stripped, "{input:?} accepted");
                                let mut want = Vec::new();
                                let lines = content.split(|&b| b == b'\n');
                                for line in lines.take_while(|l| !l.is_empty()) {
                                    want.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
                                    want.push(b'\n');
                                }
                                assert_eq!(body, want, "{input:?}");
                            }
                            Some(Err(Error::BareLineEndingInData)) => {
                                assert!(!stripped, "{input:?} refused")
                            }
                            other => panic!("{input:?}: {other:?}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn chunks_take_exactly_their_size() {
        let mut c = ChunkDecoder::new(5);
        assert_eq!(c.take(b"ab"), b"ab");
        assert_eq!(c.remaining(), 3);
        assert_eq!(c.take(b"c\r\nQUIT\r\n"), b"c\r\n");
        assert!(c.is_done());
        assert_eq!(c.take(b"more"), b"");
        let mut empty = ChunkDecoder::new(0);
        assert!(empty.is_done());
        assert_eq!(empty.take(b"x"), b"");
    }
}
