//! Blocking SMTP and POP3 line clients for tests that run on plain threads (the
//! `golub serve` tests of the binary): `std::net` sockets with a read timeout, errors
//! returned so a test can tell a killed server from a wrong reply.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};

use golub_smtp::codec::reply::ReplyParser;

use crate::DEADLINE;

/// A socket that reads CRLF lines, each read bounded by [`DEADLINE`].
struct Lines {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Lines {
    fn connect(addr: impl ToSocketAddrs) -> io::Result<Lines> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(DEADLINE))?;
        Ok(Lines {
            w: stream.try_clone()?,
            r: BufReader::new(stream),
        })
    }

    /// One line with its line end; end of file is `UnexpectedEof`.
    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line)
    }
}

/// A raw blocking SMTP client: sends exactly what it is given, reads whole replies.
pub struct SmtpClient {
    lines: Lines,
}

impl SmtpClient {
    /// Connects; the greeting is left to read.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<SmtpClient> {
        Ok(SmtpClient {
            lines: Lines::connect(addr)?,
        })
    }

    /// Connects, checks the 220 greeting and says `EHLO client.example`.
    pub fn greeted(addr: impl ToSocketAddrs) -> io::Result<SmtpClient> {
        let mut c = SmtpClient::connect(addr)?;
        expect(c.reply()?, "220")?;
        expect(c.cmd("EHLO client.example")?, "250")?;
        Ok(c)
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.lines.w.write_all(bytes)
    }

    /// Reads one whole reply, all its lines as they came.
    pub fn reply(&mut self) -> io::Result<String> {
        let mut parser = ReplyParser::new();
        let mut text = String::new();
        loop {
            let line = self.lines.line()?;
            text.push_str(&line);
            let done = parser
                .push_line(line.as_bytes())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}: {line}")))?;
            if done.is_some() {
                return Ok(text);
            }
        }
    }

    /// Reads one reply and returns its code.
    pub fn code(&mut self) -> io::Result<u16> {
        let reply = self.reply()?;
        reply
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io::ErrorKind::InvalidData.into())
    }

    /// Sends `cmd` and CRLF and returns the reply.
    pub fn cmd(&mut self, cmd: &str) -> io::Result<String> {
        self.send(format!("{cmd}\r\n").as_bytes())?;
        self.reply()
    }
}

/// A raw blocking POP3 client (RFC 1939): status lines and multi-line responses.
pub struct Pop3Client {
    lines: Lines,
}

impl Pop3Client {
    /// Connects and checks the `+OK` greeting.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<Pop3Client> {
        let mut c = Pop3Client {
            lines: Lines::connect(addr)?,
        };
        expect(c.lines.line()?, "+OK")?;
        Ok(c)
    }

    /// Sends `cmd` and CRLF and returns the status line.
    pub fn cmd(&mut self, cmd: &str) -> io::Result<String> {
        self.lines.w.write_all(format!("{cmd}\r\n").as_bytes())?;
        self.lines.line()
    }

    /// `USER` and `PASS`; the reply to `PASS`.
    pub fn login(&mut self, user: &str, password: &str) -> io::Result<String> {
        expect(self.cmd(&format!("USER {user}"))?, "+OK")?;
        self.cmd(&format!("PASS {password}"))
    }

    /// Sends `cmd`; on `+OK` reads the multi-line body up to the lone `.` and returns it
    /// with the dot-stuffing undone and CRLF line ends (RFC 1939 §3).
    pub fn multi(&mut self, cmd: &str) -> io::Result<Vec<u8>> {
        expect(self.cmd(cmd)?, "+OK")?;
        let mut body = Vec::new();
        loop {
            let line = self.lines.line()?;
            if line == ".\r\n" {
                return Ok(body);
            }
            body.extend_from_slice(line.strip_prefix('.').unwrap_or(&line).as_bytes());
        }
    }
}

/// `Ok` if `reply` starts with `prefix`, else an error that quotes it.
fn expect(reply: String, prefix: &str) -> io::Result<String> {
    if reply.starts_with(prefix) {
        Ok(reply)
    } else {
        Err(io::Error::other(format!(
            "expected {prefix}, got {}",
            reply.trim_end()
        )))
    }
}
