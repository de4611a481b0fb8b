//! Fuzz target: the DATA and BDAT content decoders (`body`).
//!
//! Any input cut anywhere decodes as it does whole (outcome and unconsumed tail); the end
//! is exactly the first CRLF "." CRLF counting the DATA line's CRLF, and a message with a
//! bare CR or LF before it is refused; once done, the decoder consumes nothing more, so no
//! input yields two messages; a body of CRLF lines without bare CR or LF, dot-stuffed
//! here, decodes back to itself. BDAT chunks take exactly their size however cut.
//! Seeds: `tests/corpus/body/*.txt`, each file one escaped input (lines joined by CRLF).

use golub_fuzzkit as support;

use golub_smtp::Error;
use golub_smtp::body::{ChunkDecoder, DataDecoder};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

type Outcome = Option<Result<Vec<u8>, Error>>;

/// Feeds `pieces` in order; the outcome (`None` if the end never came) and the tail.
fn run(
    pieces: &[&[u8]],
    max_size: usize,
    max_line: usize,
) -> Result<(Outcome, Vec<u8>), TestCaseError> {
    let mut d = DataDecoder::new(max_size, max_line);
    let mut tail = Vec::new();
    for piece in pieces {
        if d.is_done() {
            // Done: nothing more is consumed, so no second message can start here.
            prop_assert_eq!(d.feed(piece), Some(0));
            tail.extend_from_slice(piece);
            continue;
        }
        match d.feed(piece) {
            Some(n) => {
                prop_assert!(n <= piece.len() && d.is_done());
                tail.extend_from_slice(&piece[n..]);
            }
            None => prop_assert!(!d.is_done()),
        }
    }
    let done = d.is_done();
    Ok((done.then(|| d.finish()), tail))
}

/// Cuts `input` at `cuts` (indexes, any order).
fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts.into_iter().chain([input.len()]) {
        out.push(&input[at..c]);
        at = c;
    }
    out
}

/// The model: where the end is and whether the content has bare CR or LF.
fn model(input: &[u8]) -> Option<(Vec<u8>, bool, Vec<u8>)> {
    let framed = [b"\r\n".as_slice(), input].concat();
    let at = framed.windows(5).position(|w| w == b"\r\n.\r\n")?;
    let content = &framed[2..at + 2];
    let crlf = content.windows(2).filter(|w| w == b"\r\n").count();
    let bare = content.iter().filter(|&&b| b == b'\n').count() != crlf
        || content.iter().filter(|&&b| b == b'\r').count() != crlf;
    let mut body = Vec::new();
    for line in content.split_inclusive(|&b| b == b'\n') {
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    Some((body, bare, framed[at + 5..].to_vec()))
}

fn check_data(
    input: &[u8],
    cuts: &[usize],
    max_size: usize,
    max_line: usize,
) -> Result<(), TestCaseError> {
    let whole = run(&[input], max_size, max_line)?;
    prop_assert_eq!(
        &run(&pieces(input, cuts), max_size, max_line)?,
        &whole,
        "cut at {:?}",
        cuts
    );
    let octets: Vec<&[u8]> = input.chunks(1).collect();
    prop_assert_eq!(
        &run(&octets, max_size, max_line)?,
        &whole,
        "one octet at a time"
    );
    let (outcome, tail) = whole;
    match model(input) {
        None => prop_assert!(outcome.is_none(), "ended without an end marker"),
        Some((body, bare, want_tail)) => {
            prop_assert_eq!(tail, want_tail);
            match outcome {
                None => prop_assert!(false, "missed the end marker"),
                Some(Err(Error::BareLineEndingInData)) => prop_assert!(bare),
                Some(Ok(got)) => {
                    prop_assert!(!bare, "accepted a bare line ending");
                    prop_assert!(got.len() <= max_size);
                    prop_assert_eq!(got, body);
                }
                Some(Err(Error::MessageTooLarge)) => {
                    prop_assert!(!bare && body.len() > max_size)
                }
                Some(Err(Error::LineTooLong)) => prop_assert!(!bare),
                Some(Err(e)) => prop_assert!(false, "unexpected {:?}", e),
            }
        }
    }
    Ok(())
}

/// Dot-stuffs CRLF lines and adds the end marker (RFC 5321 §4.5.2).
fn stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn check_chunk(size: u64, input: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut c = ChunkDecoder::new(size);
    let mut taken = Vec::new();
    for piece in pieces(input, cuts) {
        let part = c.take(piece);
        prop_assert!(piece.starts_with(part));
        taken.extend_from_slice(part);
        if part.len() < piece.len() {
            prop_assert!(c.is_done());
        }
    }
    let want = (size.min(input.len() as u64)) as usize;
    prop_assert_eq!(&taken[..], &input[..want]);
    prop_assert_eq!(c.remaining(), size - want as u64);
    prop_assert_eq!(c.is_done(), want as u64 == size);
    Ok(())
}

#[test]
fn body_seeds_decode_alike_however_cut() {
    let mut n = 0;
    for (path, text) in support::seeds(env!("CARGO_MANIFEST_DIR"), "body") {
        let input = support::unescape(
            &support::seed_lines(&text)
                .collect::<Vec<_>>()
                .join("\\r\\n"),
        );
        let all_cuts: Vec<usize> = (0..=input.len()).collect();
        for (size, line) in [(1 << 20, 1000), (16, 1000), (1 << 20, 8)] {
            check_data(&input, &[input.len() / 2], size, line)
                .and_then(|()| check_data(&input, &all_cuts, size, line))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        check_chunk(input.len() as u64 / 2, &input, &[1, 3]).unwrap();
        n += 1;
    }
    assert!(n >= 10, "only {n} body seeds");
}

fn data_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(vec![b'\r', b'\n', b'.', b'a']), 0..64),
        2 => prop::collection::vec(
            prop::sample::select(vec![
                &b"\r\n"[..], b".", b"\r\n.\r\n", b"\n.\n", b"\r.\r", b"\n", b"\r", b"..", b"text",
                b"\r\n.\n", b"\n.\r\n", b"MAIL FROM:<x@y.z>\r\n", b"\x00", b"\xff",
            ]).prop_map(<[u8]>::to_vec),
            0..24,
        ).prop_map(|v| v.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..300, 0..8)
}

#[test]
fn data_decodes_alike_however_cut_and_ends_where_the_model_says() {
    let limits = prop::sample::select(vec![
        (1usize << 20, 1000usize),
        (0, 1000),
        (10, 1000),
        (1 << 20, 3),
        (1 << 20, 8),
        (5, 5),
    ]);
    support::fuzz(
        "smtp_body_data",
        1500,
        (data_input(), cuts(), limits),
        |(input, cuts, (size, line))| check_data(&input, &cuts, size, line),
    );
}

#[test]
fn clean_bodies_round_trip_through_dot_stuffing() {
    let line = prop_oneof![
        "[ -~]{0,20}",
        prop::sample::select(vec![".", "..", ".x", " .", "...."]).prop_map(String::from),
    ];
    let body = prop::collection::vec(line, 0..12).prop_map(|lines| {
        lines
            .iter()
            .flat_map(|l| [l.as_bytes(), b"\r\n"])
            .flatten()
            .copied()
            .collect::<Vec<u8>>()
    });
    let after = prop::sample::select(vec![&b""[..], b"QUIT\r\n", b".\r\n", b"\r\n.\r\n"]);
    support::fuzz(
        "smtp_body_stuffing",
        1500,
        (body, after, cuts()),
        |(body, after, cuts)| {
            let mut input = stuff(&body);
            input.extend_from_slice(after);
            let (outcome, tail) = run(&pieces(&input, &cuts), 1 << 20, 1 << 20)?;
            prop_assert_eq!(outcome, Some(Ok(body)));
            prop_assert_eq!(&tail[..], after);
            Ok(())
        },
    );
}

#[test]
fn chunks_take_their_size_however_cut() {
    let input = prop::collection::vec(any::<u8>(), 0..300);
    support::fuzz(
        "smtp_body_chunk",
        1500,
        (0u64..400, input, cuts()),
        |(size, input, cuts)| check_chunk(size, &input, &cuts),
    );
}
