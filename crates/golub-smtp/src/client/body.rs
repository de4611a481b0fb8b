//! The DATA content encoder of the client (RFC 5321 §4.5.2, §2.3.8): dot-stuffing, line
//! ends made CRLF, and the terminating ".CRLF".
//!
//! The driver hands the message in pieces cut anywhere; the encoder keeps the one octet of
//! state a cut can split (a CR waiting for its LF) and whether a line is starting. A bare
//! LF or a bare CR becomes CRLF, so that no receiver can read our message's end, or another
//! message, differently than we meant it (SMTP smuggling, outbound side).

/// Encodes one message's content for DATA (or, without the dots, for BDAT).
#[derive(Debug)]
pub struct DotStuffer {
    /// Double a leading "." (DATA); BDAT sends lines as they are.
    stuff: bool,
    /// The next octet starts a line: a "." there is doubled.
    line_start: bool,
    /// The last octet was a CR; the next one tells whether it ends a line or stands alone.
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer::new()
    }
}

impl DotStuffer {
    pub fn new() -> Self {
        DotStuffer {
            stuff: true,
            line_start: true,
            pending_cr: false,
        }
    }

    /// Line ends made CRLF but no dot-stuffing and no terminating dot: BDAT content
    /// (RFC 3030), whose length is counted instead.
    pub fn for_bdat() -> Self {
        DotStuffer {
            stuff: false,
            ..DotStuffer::new()
        }
    }

    /// Appends the wire form of the next content octets to `out`.
    pub fn encode(&mut self, data: &[u8], out: &mut Vec<u8>) {
        out.reserve(data.len() + data.len() / 64 + 2);
        for &b in data {
            if self.pending_cr {
                self.pending_cr = false;
                // A CR followed by LF ends a line; a lone CR is made a line end too.
                out.extend_from_slice(b"\r\n");
                self.line_start = true;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                }
                b'.' if self.line_start && self.stuff => {
                    // RFC 5321 §4.5.2: a line starting with "." gets another one.
                    out.extend_from_slice(b"..");
                    self.line_start = false;
                }
                _ => {
                    out.push(b);
                    self.line_start = false;
                }
            }
        }
    }

    /// Ends the content: a last line without its CRLF gets one, then ".CRLF" (DATA).
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        if self.stuff {
            out.extend_from_slice(b".\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::DataDecoder;

    fn encode_cut(pieces: &[&[u8]]) -> Vec<u8> {
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        for p in pieces {
            s.encode(p, &mut out);
        }
        s.finish(&mut out);
        out
    }

    fn encode(data: &[u8]) -> Vec<u8> {
        encode_cut(&[data])
    }

    /// What a strict receiver (our own DATA decoder) reads back from the wire form.
    fn decode(wire: &[u8]) -> Vec<u8> {
        let mut d = DataDecoder::new(1 << 20, 0);
        let used = d.feed(wire).expect("the end of data is found");
        assert_eq!(used, wire.len(), "the end of data is the last line");
        d.finish().expect("a strict receiver accepts it")
    }

    const SAMPLES: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.b\r\n..\r\n", b"a\r\n..b\r\n...\r\n.\r\n"),
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n.\r\n", b"a\r\n..\r\n.\r\n"),
        (b"a\r", b"a\r\n.\r\n"),
        (b"\r\r\n\n", b"\r\n\r\n\r\n.\r\n"),
        (b"x.y\r\n", b"x.y\r\n.\r\n"),
        (b"\n.\r\n", b"\r\n..\r\n.\r\n"),
    ];

    #[test]
    fn dots_are_stuffed_and_line_ends_made_crlf() {
        for (input, wire) in SAMPLES {
            assert_eq!(encode(input), *wire, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn every_cut_gives_the_same_wire_form() {
        for (input, wire) in SAMPLES {
            for i in 0..=input.len() {
                assert_eq!(encode_cut(&[&input[..i], &input[i..]]), *wire);
                for j in i..=input.len() {
                    let three: [&[u8]; 3] = [&input[..i], &input[i..j], &input[j..]];
                    assert_eq!(encode_cut(&three), *wire);
                }
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(encode_cut(&bytes), *wire);
        }
    }

    #[test]
    fn smuggling_attempts_reach_the_receiver_as_plain_lines() {
        for input in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r\n.\nRCPT TO:<x@y>\r\n",
            b"a\n.\r\nDATA\r\n",
            b"a\r.\rQUIT\r",
            b"a\r\n.\r\r\nb",
        ] {
            let wire = encode(input);
            let body = decode(&wire);
            // Nothing ended early (`decode` read to the last line), and every line end
            // the receiver sees is CRLF.
            assert!(body.ends_with(b"\r\n"));
            for (i, &b) in body.iter().enumerate() {
                match b {
                    b'\r' => assert_eq!(body.get(i + 1), Some(&b'\n')),
                    b'\n' => assert_eq!(body[i - 1], b'\r'),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn crlf_content_round_trips_through_the_receiver() {
        let input = b"Subject: x\r\n\r\n.\r\n..\r\n. x\r\nend\r\n";
        assert_eq!(decode(&encode(input)), input);
    }
}
