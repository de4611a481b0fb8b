use super::*;

fn small() -> FrameLimits {
    FrameLimits {
        max_line: 64,
        max_literal: 100,
        max_command: 200,
        stream_literal: u64::MAX,
    }
}

/// Every event for `input` pushed whole.
fn frames(limits: FrameLimits, input: &[u8]) -> Vec<Frame> {
    let mut f = Framer::new(limits);
    f.push(input);
    std::iter::from_fn(|| f.next()).collect()
}

/// Every event for `input` pushed one octet at a time.
fn frames_bytewise(limits: FrameLimits, input: &[u8]) -> Vec<Frame> {
    let mut f = Framer::new(limits);
    let mut out = Vec::new();
    for b in input {
        f.push(std::slice::from_ref(b));
        out.extend(std::iter::from_fn(|| f.next()));
    }
    out
}

fn cmd(s: &[u8]) -> Frame {
    Frame::Command(s.to_vec())
}

fn rejected(tag: Option<&str>, error: FrameError) -> Frame {
    Frame::Rejected {
        tag: tag.map(str::to_string),
        error,
    }
}

#[test]
fn pipelined_commands_come_out_one_by_one() {
    let input = b"a1 NOOP\r\na2 CAPABILITY\na3 LOGOUT\r\n";
    let expected = vec![
        cmd(b"a1 NOOP\r\n"),
        cmd(b"a2 CAPABILITY\n"),
        cmd(b"a3 LOGOUT\r\n"),
    ];
    assert_eq!(frames(small(), input), expected);
    assert_eq!(frames_bytewise(small(), input), expected);
}

#[test]
fn partial_line_waits_for_more() {
    let mut f = Framer::new(small());
    f.push(b"a1 NO");
    assert_eq!(f.next(), None);
    f.push(b"OP\r");
    assert_eq!(f.next(), None);
    f.push(b"\n");
    assert_eq!(f.next(), Some(cmd(b"a1 NOOP\r\n")));
    assert_eq!(f.next(), None);
    assert_eq!(f.buffered(), 0);
}

#[test]
fn synchronizing_literal_gives_continue_then_the_command() {
    // RFC 3501 §6.3.11's APPEND example, shortened.
    let input = b"A003 APPEND saved-messages (\\Seen) {12}\r\nHello Joe!\r\n\r\n";
    let expected = vec![Frame::Continue, cmd(input)];
    assert_eq!(frames(small(), input), expected);
    assert_eq!(frames_bytewise(small(), input), expected);

    let mut f = Framer::new(small());
    f.push(b"A003 APPEND x {12}\r\n");
    assert_eq!(f.next(), Some(Frame::Continue));
    assert_eq!(f.next(), None);
    f.push(b"Hello Joe!\r\n");
    assert_eq!(f.next(), None, "the line after the literal has not ended");
    f.push(b"\r\n");
    assert_eq!(
        f.next(),
        Some(cmd(b"A003 APPEND x {12}\r\nHello Joe!\r\n\r\n"))
    );
}

#[test]
fn literal_octets_are_not_scanned_for_line_ends_or_announcements() {
    let input = b"a LOGIN {5+}\r\n{1}\r\n {3}\r\n\n\n\r\nb NOOP\r\n";
    // "{1}\r\n" is the 5 octets; " {3}" then announces a synchronizing literal.
    let expected = vec![
        Frame::Continue,
        cmd(b"a LOGIN {5+}\r\n{1}\r\n {3}\r\n\n\n\r\n"),
        cmd(b"b NOOP\r\n"),
    ];
    assert_eq!(frames(small(), input), expected);
    assert_eq!(frames_bytewise(small(), input), expected);
}

#[test]
fn non_synchronizing_and_literal8_forms_are_framed() {
    let input = b"a APPEND x ~{3}\r\n\x00\x01\x02 {2+}\nab\r\n";
    // literal8 is synchronizing; the second literal is not.
    let expected = vec![Frame::Continue, cmd(input)];
    assert_eq!(frames(small(), input), expected);
    assert_eq!(frames_bytewise(small(), input), expected);
}

#[test]
fn zero_length_literal_works() {
    let input = b"a LOGIN {0}\r\n {0}\r\n\r\n";
    assert_eq!(
        frames(small(), input),
        vec![Frame::Continue, Frame::Continue, cmd(input)]
    );
}

#[test]
fn over_long_line_is_skipped_and_framing_resumes() {
    let mut input = b"t1 LOGIN ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100));
    input.extend_from_slice(b"\r\nt2 NOOP\r\n");
    let expected = vec![
        rejected(Some("t1"), FrameError::LineTooLong),
        cmd(b"t2 NOOP\r\n"),
    ];
    assert_eq!(frames(small(), &input), expected);
    assert_eq!(frames_bytewise(small(), &input), expected);
}

#[test]
fn line_of_exactly_max_line_is_accepted() {
    let mut line = b"t NOOP ".to_vec();
    line.resize(64, b'x');
    let mut input = line.clone();
    input.extend_from_slice(b"\r\n");
    assert_eq!(frames(small(), &input), vec![cmd(&input)]);
    assert_eq!(frames_bytewise(small(), &input), vec![cmd(&input)]);
    input.insert(0, b'y');
    assert_eq!(
        frames_bytewise(small(), &input),
        vec![rejected(Some("yt"), FrameError::LineTooLong)]
    );
}

#[test]
fn oversize_sync_literal_is_rejected_and_the_next_command_works() {
    let input = b"A1 APPEND INBOX {101}\r\nA2 NOOP\r\n";
    let expected = vec![
        rejected(Some("A1"), FrameError::LiteralTooLarge { size: 101 }),
        cmd(b"A2 NOOP\r\n"),
    ];
    assert_eq!(frames(small(), input), expected);
    assert_eq!(frames_bytewise(small(), input), expected);
}

#[test]
fn oversize_non_sync_literal_is_fatal() {
    let input = b"A1 APPEND INBOX {101+}\r\nxxxxx\r\nA2 NOOP\r\n";
    let expected = vec![rejected(
        Some("A1"),
        FrameError::Fatal(Box::new(FrameError::LiteralTooLarge { size: 101 })),
    )];
    assert_eq!(frames(small(), input), expected);
    assert_eq!(frames_bytewise(small(), input), expected);
    let mut f = Framer::new(small());
    f.push(input);
    assert!(matches!(f.next(), Some(Frame::Rejected { error, .. }) if error.is_fatal()));
    f.push(b"A3 NOOP\r\n");
    assert_eq!(f.next(), None, "nothing after a fatal error");
    assert_eq!(f.buffered(), 0);
}

#[test]
fn two_gigabyte_announcement_is_refused_before_buffering() {
    let mut f = Framer::new(FrameLimits::default());
    f.push(b"A1 APPEND INBOX {2147483648}\r\n");
    assert_eq!(
        f.next(),
        Some(rejected(
            Some("A1"),
            FrameError::LiteralTooLarge {
                size: 2_147_483_648
            }
        ))
    );
    assert_eq!(f.buffered(), 0);
    assert!(f.buf.capacity() < 4096, "{}", f.buf.capacity());
    f.push(b"A2 NOOP\r\n");
    assert_eq!(f.next(), Some(cmd(b"A2 NOOP\r\n")));

    // Digits beyond u64 saturate and are refused the same way.
    let mut f = Framer::new(FrameLimits::default());
    f.push(b"A1 APPEND INBOX {99999999999999999999999}\r\n");
    assert_eq!(
        f.next(),
        Some(rejected(
            Some("A1"),
            FrameError::LiteralTooLarge { size: u64::MAX }
        ))
    );
}

#[test]
fn literals_adding_up_over_max_command_are_refused() {
    // Each literal is within max_literal, together they pass max_command.
    let mut input = b"a LOGIN {90}\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'u', 90));
    input.extend_from_slice(b" {90}\r\n");
    input.extend(std::iter::repeat_n(b'p', 90));
    input.extend_from_slice(b"\r\nb NOOP\r\n");
    let got = frames(small(), &input);
    assert_eq!(got[0], Frame::Continue);
    assert_eq!(got[1], rejected(Some("a"), FrameError::CommandTooLong));
    // The client did not get "+", so it sends no second literal: the rest is lines,
    // here the literal's octets as the framer sees them.
    assert_eq!(frames_bytewise(small(), &input), got);
}

#[test]
fn over_long_line_ending_in_non_sync_literal_is_fatal() {
    let mut input = b"t1 APPEND x ".to_vec();
    input.extend(std::iter::repeat_n(b'(', 100));
    input.extend_from_slice(b" {5+}\r\nhello\r\n");
    let expected = vec![rejected(
        Some("t1"),
        FrameError::Fatal(Box::new(FrameError::LineTooLong)),
    )];
    assert_eq!(frames(small(), &input), expected);
    assert_eq!(frames_bytewise(small(), &input), expected);
}

#[test]
fn endless_line_keeps_memory_bounded() {
    let mut f = Framer::new(small());
    f.push(b"t1 LOGIN ");
    for _ in 0..10_000 {
        f.push(&[b'x'; 100]);
        assert_eq!(f.next(), None);
        assert!(f.buf.len() <= 200, "{}", f.buf.len());
    }
    f.push(b"\r\nt2 NOOP\r\n");
    assert_eq!(
        f.next(),
        Some(rejected(Some("t1"), FrameError::LineTooLong))
    );
    assert_eq!(f.next(), Some(cmd(b"t2 NOOP\r\n")));
}

#[test]
fn invalid_tag_is_not_reported() {
    let mut input = b"+bad ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100));
    input.extend_from_slice(b"\r\n");
    assert_eq!(
        frames(small(), &input),
        vec![rejected(None, FrameError::LineTooLong)]
    );
}

#[test]
fn next_line_takes_raw_lines() {
    let mut f = Framer::new(small());
    f.push(b"dGVzdA==\r\nDONE\n{5}\r\n");
    assert_eq!(f.next_line(), Some(Ok(b"dGVzdA==".to_vec())));
    assert_eq!(f.next_line(), Some(Ok(b"DONE".to_vec())));
    assert_eq!(f.next_line(), Some(Ok(b"{5}".to_vec())));
    assert_eq!(f.next_line(), None);
    f.push(&[b'x'; 100]);
    assert_eq!(f.next_line(), None);
    f.push(b"\r\na NOOP\r\n");
    assert_eq!(f.next_line(), Some(Err(FrameError::LineTooLong)));
    assert_eq!(f.next(), Some(cmd(b"a NOOP\r\n")));
}

#[test]
fn many_small_commands_are_framed_in_linear_time() {
    let mut input = Vec::new();
    for i in 0..100_000 {
        input.extend_from_slice(format!("a{i} NOOP\r\n").as_bytes());
    }
    let mut f = Framer::new(FrameLimits::default());
    let mut n = 0;
    for chunk in input.chunks(4096) {
        f.push(chunk);
        while let Some(frame) = f.next() {
            assert!(matches!(frame, Frame::Command(_)));
            n += 1;
        }
        assert!(f.buf.len() <= 2 * 4096 + 64, "{}", f.buf.len());
    }
    assert_eq!(n, 100_000);
}

#[test]
fn literal_announcement_forms() {
    assert_eq!(literal_announcement(b"a {5}"), Some((5, true)));
    assert_eq!(literal_announcement(b"a {5+}"), Some((5, false)));
    assert_eq!(literal_announcement(b"a ~{5}"), Some((5, true)));
    assert_eq!(literal_announcement(b"a {}"), None);
    assert_eq!(literal_announcement(b"a {5 }"), None);
    assert_eq!(literal_announcement(b"a {+}"), None);
    assert_eq!(literal_announcement(b"a 5}"), None);
    assert_eq!(literal_announcement(b"a {5}x"), None);
}

fn streaming() -> FrameLimits {
    FrameLimits {
        stream_literal: 8,
        ..small()
    }
}

/// Pushes `input` one octet at a time, answering StreamStart with `accept`; the frames
/// with the streamed octets joined into one StreamData.
fn streamed(input: &[u8], accept: bool) -> Vec<Frame> {
    let mut f = Framer::new(streaming());
    let mut out: Vec<Frame> = Vec::new();
    for b in input {
        f.push(std::slice::from_ref(b));
        while let Some(frame) = f.next() {
            match frame {
                Frame::StreamStart { .. } => {
                    out.push(frame);
                    if accept {
                        f.stream_accept();
                    } else {
                        f.stream_refuse();
                    }
                }
                Frame::StreamData(d) => match out.last_mut() {
                    Some(Frame::StreamData(all)) => all.extend_from_slice(&d),
                    _ => out.push(Frame::StreamData(d)),
                },
                other => out.push(other),
            }
        }
    }
    out
}

#[test]
fn a_large_append_literal_is_handed_out_in_pieces() {
    let input = b"a APPEND INBOX {12}\r\nhello, world\r\nb NOOP\r\n";
    assert_eq!(
        streamed(input, true),
        vec![
            Frame::StreamStart {
                head: b"a APPEND INBOX {12}\r\n".to_vec(),
                size: 12,
                sync: true
            },
            Frame::StreamData(b"hello, world".to_vec()),
            Frame::StreamEnd { trailing_ok: true },
            Frame::Command(b"b NOOP\r\n".to_vec()),
        ]
    );
    // Something after the literal on its line is reported.
    let frames = streamed(b"a APPEND INBOX {12+}\r\nhello, world x\r\n", true);
    assert_eq!(
        frames.last(),
        Some(&Frame::StreamEnd { trailing_ok: false })
    );
    // Small literals, and other commands' literals, are framed whole as before.
    let frames = streamed(b"a APPEND INBOX {3}\r\nabc\r\n", true);
    assert_eq!(
        frames,
        vec![
            Frame::Continue,
            Frame::Command(b"a APPEND INBOX {3}\r\nabc\r\n".to_vec())
        ]
    );
}

#[test]
fn a_refused_stream_sends_nothing_or_drops_what_comes() {
    // Synchronizing: the client waits for "+", which never comes; the next line is a
    // command.
    let frames = streamed(b"a APPEND X {12}\r\nb NOOP\r\n", false);
    assert_eq!(frames[1], Frame::Command(b"b NOOP\r\n".to_vec()));
    // Non-synchronizing: the octets come anyway and are dropped with their line end.
    let frames = streamed(b"a APPEND X {12+}\r\nhello, world\r\nb NOOP\r\n", false);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[1], Frame::Command(b"b NOOP\r\n".to_vec()));
}
