//! The framer: cuts the client's byte stream into whole commands before any parsing.
//!
//! An IMAP command is one or more lines: a line ending in a literal announcement (`{n}`,
//! `{n+}`, `~{n}`) is followed by n octets and then the rest of the command. The framer
//! knows only that much of the grammar. It hands out each complete command exactly as
//! received ([`Frame::Command`], for [`crate::parse::command`]), asks the session to send a
//! continuation request for a synchronizing literal ([`Frame::Continue`]), and refuses
//! what is over [`FrameLimits`] ([`Frame::Rejected`]) before buffering it. Sans-IO: the
//! driver [`Framer::push`]es what it read and takes events with [`Framer::next`].
//!
//! Failure: a line over the limit is skipped up to its LF; a synchronizing literal over the
//! limit is refused without "+", so the client sends no data and framing resumes at the
//! next line (RFC 3501 §7.5). A non-synchronizing literal (RFC 7888) over the limit cannot
//! be skipped safely: that error is fatal, the session says BYE, and the framer takes no
//! more input.

use crate::parse::is_tag_char;

/// Size limits for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// One line, without its line end and without the literals that follow it.
    pub max_line: usize,
    /// One literal.
    pub max_literal: u64,
    /// All lines, line ends and literals of one command.
    pub max_command: usize,
    /// An APPEND whose message literal is larger than this (announced on the command's
    /// first line) is handed out in pieces ([`Frame::StreamStart`]) instead of being
    /// buffered whole; `u64::MAX` never streams.
    pub stream_literal: u64,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_command: 65 * 1024 * 1024,
            stream_literal: 256 * 1024,
        }
    }
}

/// What the framer has for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete command: its lines with their line ends and literal octets inline,
    /// exactly as received.
    Command(Vec<u8>),
    /// A synchronizing literal was announced within the limits: send "+ ..."; the framer
    /// waits for its octets.
    Continue,
    /// A command refused whole. `tag` is its tag when it had a valid one.
    Rejected {
        tag: Option<String>,
        error: FrameError,
    },
    /// An APPEND with a large message literal: its first line (with the announcement and
    /// line end). The session answers with [`Framer::stream_accept`] (then the octets
    /// come as [`Frame::StreamData`], and [`Frame::StreamEnd`] after them) or
    /// [`Framer::stream_refuse`].
    StreamStart {
        head: Vec<u8>,
        size: u64,
        sync: bool,
    },
    /// The next octets of the streamed literal, as they arrived.
    StreamData(Vec<u8>),
    /// The literal is complete and its command line ended: `trailing_ok` when nothing
    /// but the line end followed it.
    StreamEnd { trailing_ok: bool },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("line too long")]
    LineTooLong,
    #[error("literal too large ({size} octets)")]
    LiteralTooLarge { size: u64 },
    #[error("command too long")]
    CommandTooLong,
    /// The stream cannot be resynchronised (a non-synchronizing literal was over a limit):
    /// the session sends BYE and closes; the framer takes no more input.
    #[error("{0}, cannot resynchronise")]
    Fatal(Box<FrameError>),
}

impl FrameError {
    /// Whether the session must close.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::Fatal(_))
    }
}

/// Octets of a skipped line kept to see whether it announced a literal.
const TAIL: usize = 32;

#[derive(Debug)]
enum State {
    /// Looking for the end of a line.
    Line,
    /// Taking the octets of a literal.
    Literal { remaining: u64 },
    /// Discarding a line over a limit up to its LF; then the error is reported.
    Skip {
        tag: Option<String>,
        /// Octets of the line so far, its line end not counted.
        line_len: usize,
        /// The last octets of the line, to tell whether it announced a literal.
        tail: Vec<u8>,
        /// A raw line for [`Framer::next_line`]: no literal, no tag.
        raw: bool,
    },
    /// After a fatal error: nothing more is taken.
    Closed,
    /// A streamed literal was announced; the session decides.
    StreamWait { size: u64, sync: bool },
    /// Handing out a streamed literal's octets.
    Stream { remaining: u64 },
    /// Dropping a refused non-synchronizing literal's octets.
    Discard { remaining: u64 },
    /// After a streamed or dropped literal: the rest of its line; `report` as StreamEnd.
    StreamTail { report: bool },
}

/// Splits input into commands (see the module documentation).
#[derive(Debug)]
pub struct Framer {
    limits: FrameLimits,
    buf: Vec<u8>,
    /// Where the command being framed starts in `buf`; what is before was handed out.
    start: usize,
    /// Where its current line starts.
    line_start: usize,
    /// How far `buf` was examined: searched for LF, or taken as literal octets.
    scanned: usize,
    state: State,
    /// An event found by `push` (the end of a skipped line).
    pending: Option<Frame>,
}

impl Framer {
    pub fn new(limits: FrameLimits) -> Framer {
        Framer {
            limits,
            buf: Vec::new(),
            start: 0,
            line_start: 0,
            scanned: 0,
            state: State::Line,
            pending: None,
        }
    }

    /// Appends input as read from the client.
    pub fn push(&mut self, mut data: &[u8]) {
        match &mut self.state {
            State::Closed => return,
            State::Skip {
                tag,
                line_len,
                tail,
                raw,
            } => {
                // Nothing of the command is buffered while skipping: drop up to the LF.
                let Some(lf) = data.iter().position(|&b| b == b'\n') else {
                    *line_len += data.len();
                    keep_tail(tail, data);
                    return;
                };
                *line_len += lf;
                keep_tail(tail, &data[..lf]);
                data = &data[lf + 1..];
                let cr = tail.ends_with(b"\r");
                let line = tail.strip_suffix(b"\r").unwrap_or(tail);
                // We skip only what is surely over a limit; the line limit is reported first,
                // as `line_ended` does for a line that came whole.
                let error = if *line_len - usize::from(cr) > self.limits.max_line {
                    FrameError::LineTooLong
                } else {
                    FrameError::CommandTooLong
                };
                let (tag, raw, fatal) = (tag.take(), *raw, line.ends_with(b"+}"));
                if raw {
                    self.pending = Some(Frame::Rejected { tag: None, error });
                    self.state = State::Line;
                } else if fatal {
                    // A non-synchronizing literal follows that we cannot tell from commands.
                    self.pending = Some(Frame::Rejected {
                        tag,
                        error: FrameError::Fatal(Box::new(error)),
                    });
                    self.close();
                    return;
                } else {
                    self.pending = Some(Frame::Rejected { tag, error });
                    self.state = State::Line;
                }
            }
            State::Line
            | State::Literal { .. }
            | State::StreamWait { .. }
            | State::Stream { .. }
            | State::Discard { .. }
            | State::StreamTail { .. } => {}
        }
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// Drops the octets handed out once they are at least half the buffer, so each octet
    /// is moved a bounded number of times.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        if self.start == self.buf.len() {
            self.buf.clear();
        } else if self.start >= self.buf.len() - self.start {
            self.buf.drain(..self.start);
        } else {
            return;
        }
        self.line_start -= self.start;
        self.scanned -= self.start;
        self.start = 0;
    }

    /// The next event, or `None` when more input is needed (or after a fatal error).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Frame> {
        if let Some(f) = self.pending.take() {
            return Some(f);
        }
        loop {
            match self.state {
                State::Closed | State::Skip { .. } | State::StreamWait { .. } => return None,
                State::Stream { remaining } | State::Discard { remaining } => {
                    let avail = (self.buf.len() - self.scanned) as u64;
                    let take = avail.min(remaining);
                    if take == 0 {
                        return None;
                    }
                    // `take` is at most what is buffered, so it fits a usize.
                    let from = self.scanned;
                    let to = from + take as usize;
                    let streaming = matches!(self.state, State::Stream { .. });
                    let data = streaming.then(|| self.buf[from..to].to_vec());
                    self.start = to;
                    self.line_start = to;
                    self.scanned = to;
                    self.state = if take == remaining {
                        State::StreamTail { report: streaming }
                    } else if streaming {
                        State::Stream {
                            remaining: remaining - take,
                        }
                    } else {
                        State::Discard {
                            remaining: remaining - take,
                        }
                    };
                    if let Some(data) = data {
                        return Some(Frame::StreamData(data));
                    }
                }
                State::StreamTail { report } => {
                    let lf = self.find_lf(true)?;
                    let line = &self.buf[self.line_start..lf];
                    let trailing_ok = line.is_empty() || line == b"\r";
                    self.start = lf + 1;
                    self.line_start = lf + 1;
                    self.scanned = lf + 1;
                    self.state = State::Line;
                    if report {
                        return Some(Frame::StreamEnd { trailing_ok });
                    }
                }
                State::Literal { remaining } => {
                    let avail = (self.buf.len() - self.scanned) as u64;
                    let take = avail.min(remaining);
                    // `take` is at most what is buffered, so it fits a usize.
                    self.scanned += take as usize;
                    if take < remaining {
                        self.state = State::Literal {
                            remaining: remaining - take,
                        };
                        return None;
                    }
                    self.state = State::Line;
                    self.line_start = self.scanned;
                }
                State::Line => {
                    let lf = self.find_lf(false)?;
                    if let Some(f) = self.line_ended(lf) {
                        return Some(f);
                    }
                }
            }
        }
    }

    /// Searches the current line for its LF; `None` when more input is needed, also when
    /// the line is surely over a limit and the framer now skips it.
    fn find_lf(&mut self, raw: bool) -> Option<usize> {
        if let Some(i) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            return Some(self.scanned + i);
        }
        self.scanned = self.buf.len();
        let line = &self.buf[self.line_start..];
        // One octet of slack: a final CR may be the start of the line end.
        let over = line.len() > self.limits.max_line.saturating_add(1)
            || (!raw && self.buf.len() - self.start > self.limits.max_command);
        if !over {
            return None;
        }
        let tag = if raw { None } else { self.tag() };
        let mut tail = Vec::with_capacity(TAIL);
        keep_tail(&mut tail, line);
        self.state = State::Skip {
            tag,
            line_len: line.len(),
            tail,
            raw,
        };
        self.buf.truncate(self.start);
        self.line_start = self.start;
        self.scanned = self.start;
        None
    }

    /// The tag of the command being framed, looked for where both limits allow, so that
    /// it does not depend on how the input was cut.
    fn tag(&self) -> Option<String> {
        let window = self.limits.max_line.min(self.limits.max_command);
        let command = &self.buf[self.start..];
        tag_of(&command[..command.len().min(window)])
    }

    /// After a fatal error: no more input is taken.
    fn close(&mut self) {
        self.state = State::Closed;
        self.buf = Vec::new();
        self.start = 0;
        self.line_start = 0;
        self.scanned = 0;
    }

    /// A line of the command ended at `lf`: the command is complete, or a literal follows,
    /// or a limit refuses it.
    fn line_ended(&mut self, lf: usize) -> Option<Frame> {
        let end = lf + 1;
        let line = &self.buf[self.line_start..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let literal = literal_announcement(line);
        let total = end - self.start;
        let error = if line.len() > self.limits.max_line {
            Some(FrameError::LineTooLong)
        } else if total > self.limits.max_command {
            Some(FrameError::CommandTooLong)
        } else {
            match literal {
                Some((size, _)) if size > self.limits.max_literal => {
                    Some(FrameError::LiteralTooLarge { size })
                }
                Some((size, _)) if size > (self.limits.max_command - total) as u64 => {
                    Some(FrameError::CommandTooLong)
                }
                _ => None,
            }
        };
        if let Some(error) = error {
            // The same test as for a skipped line: a final "+}" may announce octets that
            // follow without waiting, which we cannot tell from commands.
            let fatal = line.ends_with(b"+}");
            let tag = self.tag();
            if fatal {
                self.close();
                return Some(Frame::Rejected {
                    tag,
                    error: FrameError::Fatal(Box::new(error)),
                });
            }
            self.start = end;
            self.line_start = end;
            self.scanned = end;
            return Some(Frame::Rejected { tag, error });
        }
        self.scanned = end;
        if let Some((size, sync)) = literal
            && size > self.limits.stream_literal
            && self.line_start == self.start
            && is_append(line)
        {
            let head = self.buf[self.start..end].to_vec();
            self.start = end;
            self.line_start = end;
            self.state = State::StreamWait { size, sync };
            return Some(Frame::StreamStart { head, size, sync });
        }
        match literal {
            None => {
                let command = if self.start == 0 && end == self.buf.len() {
                    std::mem::take(&mut self.buf)
                } else {
                    self.buf[self.start..end].to_vec()
                };
                if self.buf.is_empty() {
                    self.start = 0;
                    self.line_start = 0;
                    self.scanned = 0;
                } else {
                    self.start = end;
                    self.line_start = end;
                }
                Some(Frame::Command(command))
            }
            Some((size, sync)) => {
                self.state = State::Literal { remaining: size };
                sync.then_some(Frame::Continue)
            }
        }
    }

    /// One raw line, without its line end and without literal interpretation: a SASL
    /// response during AUTHENTICATE, or IDLE's DONE. Call only between commands. A line
    /// over `max_line` is skipped and reported as `Err(LineTooLong)`.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        if let Some(f) = self.pending.take() {
            return match f {
                Frame::Rejected { error, .. } => Some(Err(error)),
                other => {
                    self.pending = Some(other);
                    None
                }
            };
        }
        if !matches!(self.state, State::Line) {
            return None;
        }
        match self.find_lf(true) {
            Some(lf) => {
                let line = &self.buf[self.line_start..lf];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let result = if line.len() > self.limits.max_line {
                    Err(FrameError::LineTooLong)
                } else {
                    Ok(line.to_vec())
                };
                self.start = lf + 1;
                self.line_start = lf + 1;
                self.scanned = lf + 1;
                Some(result)
            }
            None => None,
        }
    }

    /// The session takes the streamed literal announced by [`Frame::StreamStart`] (and
    /// sends "+ " first for a synchronizing one).
    pub fn stream_accept(&mut self) {
        if let State::StreamWait { size, .. } = self.state {
            self.state = State::Stream { remaining: size };
        }
    }

    /// The session refused the streamed APPEND: a synchronizing literal is never sent
    /// (no "+" went out); a non-synchronizing one is dropped as it arrives.
    pub fn stream_refuse(&mut self) {
        if let State::StreamWait { size, sync } = self.state {
            self.state = if sync {
                State::Line
            } else {
                State::Discard { remaining: size }
            };
        }
    }

    /// Octets buffered and not handed out yet (for tests and metrics).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Keeps the last [`TAIL`] octets of a line seen in pieces.
fn keep_tail(tail: &mut Vec<u8>, data: &[u8]) {
    let data = &data[data.len().saturating_sub(TAIL)..];
    let excess = (tail.len() + data.len()).saturating_sub(TAIL);
    tail.drain(..excess);
    tail.extend_from_slice(data);
}

/// A literal announced at the end of a line (without its line end): its size (saturated
/// to `u64::MAX`) and whether it is synchronizing. Accepts `{n}`, `{n+}`, `~{n}`.
pub(crate) fn literal_announcement(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let (inner, sync) = match inner.strip_suffix(b"+") {
        Some(rest) => (rest, false),
        None => (inner, true),
    };
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add((d - b'0') as u64)
    });
    Some((size, sync))
}

/// Whether a command's first line is an APPEND: `tag SP APPEND SP`.
fn is_append(line: &[u8]) -> bool {
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let rest = &line[sp + 1..];
    rest.len() > 7 && rest[..7].eq_ignore_ascii_case(b"APPEND ")
}

/// The tag of a command, from the start of its first line, if valid.
fn tag_of(command: &[u8]) -> Option<String> {
    let end = command
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))?;
    let tag = &command[..end];
    (!tag.is_empty() && tag.iter().all(|&b| is_tag_char(b)))
        .then(|| String::from_utf8_lossy(tag).into_owned())
}

#[cfg(test)]
mod tests;
