//! Fuzz target: the IMAP framer and command parser, driven as imapd drives them.
//!
//! Input (seed commands, mangled by random edits, grammar-shaped token soup, or arbitrary
//! octets) is pushed into a [`Framer`] cut at random points, and every complete command
//! goes through [`parse::command`]. Checked: no panic; the frames do not depend on how the
//! input was cut (whole, random pieces, one octet at a time); a command's octets are
//! within the limits and a parse error carries the command's own tag or none; the heap the
//! framer keeps stays under 2 × (max_command + largest piece) + 16 KiB; after a fatal
//! error nothing more comes out. Seeds: `tests/corpus/command/*.txt`, one escaped command
//! per line; each seed also runs whole and one octet at a time.

use golub_fuzzkit as support;

use golub_imap::frame::{Frame, FrameLimits, Framer};
use golub_imap::parse;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

const LIMITS: FrameLimits = FrameLimits {
    max_line: 512,
    max_literal: 2048,
    max_command: 4096,
    stream_literal: u64::MAX,
};

/// Everything the framer gives for `input` cut at `cuts` (offsets, any order), with the
/// largest heap it held between calls.
fn run(input: &[u8], cuts: &[usize]) -> Result<(Vec<Frame>, isize), TestCaseError> {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let before = support::live();
    let mut framer = Framer::new(LIMITS);
    let mut frames = Vec::new();
    let mut largest_piece = 0;
    let mut held_max = 0;
    let mut at = 0;
    for p in points {
        let piece = &input[at..p];
        at = p;
        largest_piece = largest_piece.max(piece.len());
        framer.push(piece);
        // What the frames hold belongs to the caller and is not counted below.
        frames.extend(std::iter::from_fn(|| framer.next()));
        let frames_heap: usize = frames
            .iter()
            .map(|f| match f {
                Frame::Command(c) => c.capacity(),
                Frame::Rejected { tag, .. } => tag.as_ref().map_or(0, |t| t.capacity()) + 64,
                Frame::StreamStart { head, .. } => head.capacity(),
                Frame::StreamData(d) => d.capacity(),
                Frame::Continue | Frame::StreamEnd { .. } => 0,
            })
            .sum::<usize>()
            + frames.capacity() * std::mem::size_of::<Frame>();
        let held = support::live() - before - frames_heap as isize;
        held_max = held_max.max(held);
        let bound = (2 * (LIMITS.max_command + largest_piece) + 16 * 1024) as isize;
        prop_assert!(held <= bound, "framer holds {held} octets, bound {bound}");
    }
    drop(framer);
    Ok((frames, held_max))
}

/// Frames for all cuttings agree; every command parses without panic and within limits.
fn check(input: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let (whole, _) = run(input, &[])?;
    let (pieces, _) = run(input, cuts)?;
    prop_assert_eq!(&pieces, &whole, "cut at {:?}", cuts);
    if input.len() <= 4096 {
        let every: Vec<usize> = (0..input.len()).collect();
        let (bytewise, _) = run(input, &every)?;
        prop_assert_eq!(&bytewise, &whole, "one octet at a time");
    }
    let mut fatal = false;
    for f in &whole {
        prop_assert!(!fatal, "a frame after a fatal error: {:?}", f);
        match f {
            Frame::Command(c) => {
                prop_assert!(c.len() <= LIMITS.max_command);
                prop_assert!(c.ends_with(b"\n"));
                match parse::command(c) {
                    Ok(t) => {
                        let head = format!("{} ", t.tag);
                        prop_assert!(c.starts_with(head.as_bytes()), "tag {}", t.tag);
                    }
                    Err(e) => {
                        if let Some(tag) = &e.tag {
                            prop_assert!(c.starts_with(tag.as_bytes()));
                        }
                        prop_assert!(!e.message.is_empty() && e.message.len() < 200);
                    }
                }
            }
            Frame::Rejected { error, .. } => fatal = error.is_fatal(),
            // Streaming is off in these limits.
            Frame::StreamStart { .. } | Frame::StreamData(_) | Frame::StreamEnd { .. } => {
                prop_assert!(false, "a stream frame with streaming off: {:?}", f);
            }
            Frame::Continue => {}
        }
    }
    Ok(())
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, text) in support::seeds(env!("CARGO_MANIFEST_DIR"), "command") {
        for line in support::seed_lines(&text) {
            out.push(support::unescape(line));
        }
    }
    out
}

#[test]
fn seeds_frame_and_parse_whole_and_octet_by_octet() {
    let seeds = seeds();
    assert!(seeds.len() > 50, "only {} seeds", seeds.len());
    let mut accepted = 0;
    for s in &seeds {
        check(s, &[1, 7, 30]).unwrap_or_else(|e| panic!("{}: {e}", support::escape(s)));
        let (frames, _) = run(s, &[]).unwrap();
        accepted += frames
            .iter()
            .filter(|f| matches!(f, Frame::Command(c) if parse::command(c).is_ok()))
            .count();
    }
    // The RFC examples all parse.
    assert!(accepted >= 50, "only {accepted} seeds parse");
    // All seeds in one stream frame like each alone.
    let all: Vec<u8> = seeds.concat();
    check(&all, &[3, 100, 1000, 5000]).unwrap();
}

/// Pieces of the grammar, and some that break it.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "a1", " ", "  ", "\r\n", "\n", "\r", "(", ")", "[", "]", "<", ">", "{", "}", "\"",
            "\\", "*", "%", "$", ":", ",", ".", "+", "-", "~", "NIL", "UID", "FETCH", "SEARCH",
            "STORE", "COPY", "MOVE", "SELECT", "LIST", "APPEND", "LOGIN", "AUTHENTICATE",
            "STATUS", "ID", "ENABLE", "RETURN", "CHARSET", "NOT", "OR", "SEEN", "HEADER",
            "SINCE", "1-Feb-1994", "\"07-Feb-1994 21:52:25 -0800\"", "BODY[", "BODY.PEEK[",
            "BINARY[", "HEADER.FIELDS", "MIME", "TEXT", "<0.10>", "FLAGS", "+FLAGS.SILENT",
            "\\Seen", "\\*", "\\Recent", "QRESYNC", "CONDSTORE", "CHANGEDSINCE", "VANISHED",
            "UNCHANGEDSINCE", "MODSEQ", "1", "0", "1:*", "4294967295", "4294967296",
            "9223372036854775808", "{0}\r\n", "{3}\r\n", "{3+}\r\n", "~{3}\r\n", "{5000}\r\n",
            "{5000+}\r\n", "{2147483648}\r\n", "\x00", "\u{e9}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => "[a-zA-Z0-9]{1,8}".prop_map(String::into_bytes),
        1 => prop::sample::select(vec![100usize, 511, 512, 513, 600, 2100])
            .prop_map(|n| vec![b'x'; n]),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(token(), 0..40).prop_map(|t| t.concat())
}

/// A seed, then up to four random edits: insert a token, delete, truncate, flip an octet.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    (
        prop::sample::select(seeds),
        prop::collection::vec(
            (0..4u8, any::<prop::sample::Index>(), token(), any::<u8>()),
            0..4,
        ),
    )
        .prop_map(|(mut s, edits)| {
            for (kind, at, tok, byte) in edits {
                let i = at.index(s.len() + 1);
                match kind {
                    0 => {
                        s.splice(i..i, tok);
                    }
                    1 => {
                        let end = (i + tok.len()).min(s.len());
                        s.drain(i..end);
                    }
                    2 => s.truncate(i),
                    _ => {
                        if let Some(b) = s.get_mut(i) {
                            *b = byte;
                        }
                    }
                }
            }
            s
        })
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..8)
}

#[test]
fn mangled_seed_commands_never_panic_and_frame_the_same_however_cut() {
    support::fuzz("imap_mangled", 600, (mangled(), cuts()), |(input, cuts)| {
        check(&input, &cuts)
    });
}

#[test]
fn grammar_soup_never_panics_and_frames_the_same_however_cut() {
    support::fuzz("imap_soup", 600, (soup(), cuts()), |(input, cuts)| {
        check(&input, &cuts)
    });
}

#[test]
fn arbitrary_octets_never_panic() {
    support::fuzz(
        "imap_octets",
        600,
        (prop::collection::vec(any::<u8>(), 0..600), cuts()),
        |(input, cuts)| {
            let _ = parse::command(&input);
            check(&input, &cuts)
        },
    );
}

#[test]
fn large_inputs_keep_memory_bounded() {
    // An endless line, a stream of literals over the limit, and a flood of small commands.
    let mut endless = b"a LOGIN ".to_vec();
    endless.extend(std::iter::repeat_n(b'x', 1 << 20));
    let mut literals = Vec::new();
    for i in 0..200 {
        literals.extend_from_slice(format!("a{i} APPEND INBOX {{{}}}\r\n", 1 << 30).as_bytes());
    }
    let mut flood = Vec::new();
    for i in 0..50_000 {
        flood.extend_from_slice(format!("a{i} NOOP\r\n").as_bytes());
    }
    for input in [endless, literals, flood] {
        let cuts: Vec<usize> = (0..input.len()).step_by(4096).collect();
        let (_, held) = run(&input, &cuts).unwrap();
        assert!(
            held < 2 * (LIMITS.max_command + 4096) as isize + 16 * 1024,
            "{held}"
        );
    }
}
