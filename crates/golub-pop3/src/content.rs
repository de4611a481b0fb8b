//! Multi-line response bodies (RFC 1939 §3): line-end normalisation, byte-stuffing and
//! the terminating ".", and TOP's cut of a message (RFC 1939 §7).
//!
//! A message comes from the store as it was delivered; here every line leaves with CRLF,
//! so a message stored with bare LFs still reaches the client well-formed and a body
//! line "." can never end the response early.

/// Appends `content` to `out` as a multi-line body: each line ends in CRLF (a bare LF
/// becomes CRLF, a last line without a line end gets one), a line that starts with "."
/// gets one more (RFC 1939 §3), and ".CRLF" ends it all.
pub(crate) fn write_multiline(out: &mut Vec<u8>, content: &[u8]) {
    out.reserve(content.len() + content.len() / 32 + 3);
    for line in lines(content) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// The lines of `content`, each without its LF; a final LF starts no empty line.
fn lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    let count = if content.is_empty() { 0 } else { usize::MAX };
    content
        .strip_suffix(b"\n")
        .unwrap_or(content)
        .split(|&b| b == b'\n')
        .take(count)
}

/// TOP (RFC 1939 §7): the header section, the blank line after it, and the first
/// `body_lines` lines of the body; the whole message when it has fewer.
pub(crate) fn top(content: &[u8], body_lines: u64) -> &[u8] {
    let mut pos = 0;
    let mut in_body = false;
    let mut remaining = body_lines;
    while pos < content.len() {
        if in_body {
            if remaining == 0 {
                return &content[..pos];
            }
            remaining -= 1;
        }
        let end = content[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(content.len(), |i| pos + i + 1);
        let line = &content[pos..end];
        if !in_body && matches!(line, b"\n" | b"\r\n") {
            in_body = true;
        }
        pos = end;
    }
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multiline(content: &[u8]) -> String {
        let mut out = Vec::new();
        write_multiline(&mut out, content);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn content_is_normalised_and_dot_stuffed() {
        let table: &[(&[u8], &str)] = &[
            (b"", ".\r\n"),
            (b"\r\n", "\r\n.\r\n"),
            (b"\n", "\r\n.\r\n"),
            (b"a\r\nb\r\n", "a\r\nb\r\n.\r\n"),
            (b"a\nb\n", "a\r\nb\r\n.\r\n"),
            (b"a\r\nb", "a\r\nb\r\n.\r\n"),
            (b"a\nb\r", "a\r\nb\r\n.\r\n"),
            (b"a\n\n\nb\n", "a\r\n\r\n\r\nb\r\n.\r\n"),
            (b".\r\n", "..\r\n.\r\n"),
            (b".", "..\r\n.\r\n"),
            (b"a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n"),
            (b"..x\r\n", "...x\r\n.\r\n"),
            (b" .x\r\n", " .x\r\n.\r\n"),
            (b"a\r\n.\r\n\r\n", "a\r\n..\r\n\r\n.\r\n"),
            // A CR inside a line is not a line end; it stays.
            (b"a\rb\r\n", "a\rb\r\n.\r\n"),
            (b"\r\n.\r\n", "\r\n..\r\n.\r\n"),
        ];
        for (content, want) in table {
            assert_eq!(
                multiline(content),
                *want,
                "{:?}",
                String::from_utf8_lossy(content)
            );
        }
    }

    #[test]
    fn top_keeps_headers_blank_line_and_m_body_lines() {
        let msg: &[u8] = b"From: a\r\nSubject: s\r\n\r\none\r\ntwo\r\nthree\r\n";
        let table: &[(&[u8], u64, &[u8])] = &[
            (msg, 0, b"From: a\r\nSubject: s\r\n\r\n"),
            (msg, 1, b"From: a\r\nSubject: s\r\n\r\none\r\n"),
            (msg, 2, b"From: a\r\nSubject: s\r\n\r\none\r\ntwo\r\n"),
            (msg, 3, msg),
            (msg, 4, msg),
            (msg, u64::MAX, msg),
            // Bare LFs count as line ends too.
            (b"A: b\n\nx\ny\n", 1, b"A: b\n\nx\n"),
            // No blank line: all of it is the header section.
            (b"A: b\r\nC: d\r\n", 0, b"A: b\r\nC: d\r\n"),
            (b"A: b", 0, b"A: b"),
            // An empty body, and a body without a final line end.
            (b"A: b\r\n\r\n", 0, b"A: b\r\n\r\n"),
            (b"A: b\r\n\r\n", 5, b"A: b\r\n\r\n"),
            (b"A: b\r\n\r\nlast", 0, b"A: b\r\n\r\n"),
            (b"A: b\r\n\r\nlast", 1, b"A: b\r\n\r\nlast"),
            // Blank lines in the body are body lines.
            (b"A: b\r\n\r\n\r\n\r\nx\r\n", 2, b"A: b\r\n\r\n\r\n\r\n"),
            // A message that starts with the blank line has no headers.
            (b"\r\nbody\r\n", 0, b"\r\n"),
            (b"", 3, b""),
        ];
        for (content, m, want) in table {
            assert_eq!(
                top(content, *m),
                *want,
                "{:?} {m}",
                String::from_utf8_lossy(content)
            );
        }
    }

    #[test]
    fn top_then_stuffing_gives_a_whole_response() {
        let msg = b"Subject: dots\n\n.hidden\n.\nafter\n";
        let mut out = Vec::new();
        write_multiline(&mut out, top(msg, 2));
        assert_eq!(out, b"Subject: dots\r\n\r\n..hidden\r\n..\r\n.\r\n");
    }
}
