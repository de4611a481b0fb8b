//! The content of the message a session is receiving, between the session's
//! `MessageStarted` and its end. It starts with our Received header and stays in memory
//! while it is small (up to the store's `inline_body_limit`, the size that goes into the
//! database anyway); past that, it is written to its body file as it arrives, in batches
//! of [`WRITE_BATCH`] octets, so a session holds about one batch however large the message.
//! The file is fsync'd when the message ends, before the 250 (the durability contract).
//!
//! File writes are blocking and run on tokio's blocking pool; the session reads no more
//! input meanwhile, which is the back-pressure. A message that is aborted (RSET, a
//! refusal, a dropped connection) drops its `Incoming`, and with it the partial file.

use golub_store::{BlobWriter, BodyRef, Error as StoreError, Store};
use golub_types::QueueId;
use std::mem;

/// Octets gathered before one write to the body file.
const WRITE_BATCH: usize = 256 * 1024;

/// One message's content on its way in.
pub(super) struct Incoming {
    /// Given when the content started, as the Received header says.
    pub id: QueueId,
    /// In memory: the whole content so far. Once spilled: what waits for the next write.
    buf: Vec<u8>,
    /// The last octet handed to `buf` was a CR (for bare LFs split across pieces).
    prev_cr: bool,
    /// The body file, once the content passed the inline limit.
    file: Option<BlobWriter>,
    /// Octets of content so far, Received header included.
    size: u64,
    /// A write failed: the rest is thrown away and the message gets a 4xx.
    failed: Option<StoreError>,
}

impl Incoming {
    /// Content that starts with the Received header `trace`.
    pub fn new(id: QueueId, trace: String) -> Self {
        let buf = trace.into_bytes();
        Incoming {
            id,
            size: buf.len() as u64,
            buf,
            prev_cr: false,
            file: None,
            failed: None,
        }
    }

    /// Octets of content so far, Received header included.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the next piece of the message (bare LFs made CRLF); spills to the body file
    /// once past the inline limit, and writes a batch when one is full.
    pub async fn push(&mut self, store: &Store, octets: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        let before = self.buf.len();
        // One allocation for the piece, not one per doubling as its lines are appended.
        self.buf.reserve(octets.len());
        append_with_crlf(&mut self.buf, octets, &mut self.prev_cr);
        self.size += (self.buf.len() - before) as u64;
        let full = match &self.file {
            None => self.buf.len() > store.options().inline_body_limit,
            Some(_) => self.buf.len() >= WRITE_BATCH,
        };
        if full && let Err(e) = self.write_out(store).await {
            self.fail(e);
        }
    }

    /// The whole content as the queue takes it: inline, or the body file on stable
    /// storage.
    pub async fn finish(mut self) -> Result<BodyRef, StoreError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(mut file) = self.file.take() else {
            return Ok(BodyRef::Inline(mem::take(&mut self.buf)));
        };
        let rest = mem::take(&mut self.buf);
        blocking(move || {
            file.write(&rest)?;
            file.finish()
        })
        .await
    }

    /// Writes `buf` to the body file, creating it first if needed; `buf` keeps its
    /// allocation (once spilled, at most one batch).
    async fn write_out(&mut self, store: &Store) -> Result<(), StoreError> {
        let file = self.file.take();
        let store = store.clone();
        let data = if file.is_none() {
            // The in-memory part may be up to the inline limit: let it go once written.
            mem::replace(&mut self.buf, Vec::with_capacity(WRITE_BATCH))
        } else {
            mem::take(&mut self.buf)
        };
        let (file, mut data) = blocking(move || {
            let mut file = match file {
                Some(f) => f,
                None => store.create_body()?,
            };
            file.write(&data)?;
            Ok((file, data))
        })
        .await?;
        self.file = Some(file);
        if self.buf.capacity() == 0 {
            data.clear();
            self.buf = data;
        }
        Ok(())
    }

    fn fail(&mut self, e: StoreError) {
        self.failed = Some(e);
        self.buf = Vec::new();
        // Dropping the writer removes its partial file.
        self.file = None;
    }
}

/// Runs blocking store I/O off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(StoreError::WriterGone))
}

/// Appends `body` with every bare LF made CRLF. DATA never holds one (it is refused), but
/// BDAT chunks may; stored messages have one line-end form, so that the sizes POP3 and
/// IMAP report are the octets the client receives. `prev_cr` says whether the octet
/// before `body` (the end of the previous piece) was a CR, and is updated, so a message
/// comes out the same however it was cut into pieces.
pub(super) fn append_with_crlf(out: &mut Vec<u8>, body: &[u8], prev_cr: &mut bool) {
    let mut start = 0;
    while let Some(at) = body[start..].iter().position(|&b| b == b'\n') {
        let lf = start + at;
        let after_cr = match lf.checked_sub(1) {
            Some(i) => body[i] == b'\r',
            None => *prev_cr,
        };
        out.extend_from_slice(&body[start..lf]);
        out.extend_from_slice(if after_cr { b"\n" } else { b"\r\n" });
        start = lf + 1;
    }
    out.extend_from_slice(&body[start..]);
    if let Some(&last) = body.last() {
        *prev_cr = last == b'\r';
    }
}

#[cfg(test)]
mod tests {
    use super::append_with_crlf;

    fn normalize(pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = b"H: v\r\n".to_vec();
        let mut prev_cr = false;
        for p in pieces {
            append_with_crlf(&mut out, p, &mut prev_cr);
        }
        out.split_off(6)
    }

    #[test]
    fn bare_lf_becomes_crlf_and_crlf_stays() {
        for (input, want) in [
            (&b"a\nb\r\nc\n"[..], &b"a\r\nb\r\nc\r\n"[..]),
            (b"\n\n", b"\r\n\r\n"),
            (b"no line end", b"no line end"),
            (b"\r\n", b"\r\n"),
            (b"\r\r\n\n\r", b"\r\r\n\r\n\r"),
            (b"", b""),
        ] {
            assert_eq!(normalize(&[input]), want, "{input:?}");
        }
    }

    #[test]
    fn pieces_cut_anywhere_give_the_same_content() {
        let input = b"\na\r\nb\n\r\r\nc\r\n\n.\r\n\r";
        let whole = normalize(&[input]);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(normalize(&[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(normalize(&bytes), whole);
    }
}
