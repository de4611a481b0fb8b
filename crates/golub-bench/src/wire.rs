//! Bounded line I/O shared by the SMTP and POP3 clients.
//!
//! Every read has a size cap and a deadline, so a silent or babbling server can
//! slow a run down but never hang it or make it allocate without limit.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt};

/// Why a read or write on the wire failed.
#[derive(Debug)]
pub enum WireError {
    /// The socket reported an error.
    Io(io::Error),
    /// The peer did not answer within the I/O timeout.
    Timeout,
    /// The peer closed the connection.
    Closed,
    /// A line exceeded the cap before its LF arrived.
    LineTooLong,
}

impl WireError {
    /// Short key under which this failure is counted in a report.
    pub fn key(&self) -> &'static str {
        match self {
            WireError::Io(_) => "io",
            WireError::Timeout => "timeout",
            WireError::Closed => "closed",
            WireError::LineTooLong => "protocol",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "i/o error: {e}"),
            WireError::Timeout => f.write_str("timed out"),
            WireError::Closed => f.write_str("connection closed by peer"),
            WireError::LineTooLong => f.write_str("line too long"),
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

/// Runs an I/O future under `limit`, mapping both failure kinds to [`WireError`].
pub async fn timed<T>(
    limit: Duration,
    fut: impl Future<Output = io::Result<T>>,
) -> Result<T, WireError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(WireError::Io(e)),
        Err(_) => Err(WireError::Timeout),
    }
}

/// Reads one line, LF included, into `buf` (cleared first).
///
/// At most `cap` bytes are read; a line that has not ended by then is
/// [`WireError::LineTooLong`], and end of stream before any LF is
/// [`WireError::Closed`].
pub async fn read_line<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
    limit: Duration,
) -> Result<(), WireError>
where
    R: AsyncBufRead + AsyncRead + Unpin,
{
    buf.clear();
    let cap = u64::try_from(cap).unwrap_or(u64::MAX);
    timed(limit, (&mut *reader).take(cap).read_until(b'\n', buf)).await?;
    match buf.last() {
        Some(b'\n') => Ok(()),
        None => Err(WireError::Closed),
        Some(_) if buf.len() as u64 >= cap => Err(WireError::LineTooLong),
        Some(_) => Err(WireError::Closed),
    }
}

/// Strips a trailing CRLF (or bare LF) from a line.
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn lines_are_read_one_at_a_time() {
        let mut r = BufReader::new(&b"one\r\ntwo\n"[..]);
        let mut buf = Vec::new();
        read_line(&mut r, &mut buf, 100, T).await.unwrap();
        assert_eq!(buf, b"one\r\n");
        read_line(&mut r, &mut buf, 100, T).await.unwrap();
        assert_eq!(trim_eol(&buf), b"two");
        assert!(matches!(
            read_line(&mut r, &mut buf, 100, T).await,
            Err(WireError::Closed)
        ));
    }

    #[tokio::test]
    async fn overlong_line_is_refused() {
        let mut r = BufReader::new(&b"0123456789\r\n"[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut buf, 4, T).await,
            Err(WireError::LineTooLong)
        ));
    }

    #[tokio::test]
    async fn unterminated_last_line_is_a_close() {
        let mut r = BufReader::new(&b"partial"[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut buf, 100, T).await,
            Err(WireError::Closed)
        ));
    }
}
