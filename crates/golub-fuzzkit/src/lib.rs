//! Shared by the tests of the protocol crates: the transcript runner ([`transcript`]), the
//! seed corpus reader, a proptest loop that can run for a wall-clock budget, and an
//! allocator that counts the live heap octets of each thread so a target can bound what the
//! code under test keeps.
//!
//! Environment: `PROPTEST_CASES` sets the cases per run (per batch with a budget);
//! `GOLUB_FUZZ_SECONDS` loops batches with fresh seeds until that many seconds passed;
//! `GOLUB_FUZZ_SEED` fixes the first seed (the default run uses seed 0, so `cargo test`
//! is reproducible). Progress goes to stderr every 10,000 cases (`--nocapture`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

pub mod transcript;

/// Counts live heap octets per thread; the tests in one binary run on separate threads.
pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    let _ = LIVE.try_with(|c| c.set(c.get() + n));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Live heap octets allocated by this thread and not freed yet.
pub fn live() -> isize {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// The seed files `<crate_dir>/tests/corpus/<target>/*.txt`, sorted by name, with their
/// text. Pass `env!("CARGO_MANIFEST_DIR")` of the crate whose corpus it is.
pub fn seeds(crate_dir: &str, target: &str) -> Vec<(PathBuf, String)> {
    text_files(&Path::new(crate_dir).join("tests/corpus").join(target))
}

/// The seeds of a session target: the transcripts `tests/transcripts/*.txt` followed by
/// the hand-written `tests/corpus/session/*.txt`, all in the transcript syntax.
pub fn session_seeds(crate_dir: &str) -> Vec<(PathBuf, String)> {
    let mut all = transcript::transcripts(crate_dir);
    all.extend(seeds(crate_dir, "session"));
    all
}

/// The `*.txt` files of `dir`, sorted by name, with their text; panics if there is none.
fn text_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no .txt files in {}", dir.display());
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// The lines of a seed file that are not blank and not `#` comments.
pub fn seed_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

/// Undoes the escapes of seed files and transcripts: `\r`, `\n`, `\t`, `\\`, `\xHH`,
/// and `\{N*TEXT}` for TEXT repeated N times (long lines). Panics on a bad escape.
pub fn unescape(s: &str) -> Vec<u8> {
    try_unescape(s).unwrap_or_else(|e| panic!("{e} in {s:?}"))
}

/// [`unescape`], with an error for a bad escape.
pub fn try_unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let esc = &rest[i + 1..];
        let (bytes, used): (Vec<u8>, usize) = match esc.as_bytes().first() {
            Some(b'r') => (b"\r".to_vec(), 1),
            Some(b'n') => (b"\n".to_vec(), 1),
            Some(b't') => (b"\t".to_vec(), 1),
            Some(b'\\') => (b"\\".to_vec(), 1),
            Some(b'x') => {
                let hex = esc.get(1..3).unwrap_or("");
                let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x{hex}"))?;
                (vec![byte], 3)
            }
            Some(b'{') => {
                let end = esc.find('}').ok_or("unterminated \\{")?;
                let (n, text) = esc[1..end].split_once('*').ok_or("\\{ needs N*TEXT}")?;
                let n: usize = n.parse().map_err(|_| format!("bad repeat count {n:?}"))?;
                (try_unescape(text)?.repeat(n), end + 1)
            }
            other => return Err(format!("bad escape \\{:?}", other.map(|&b| b as char))),
        };
        out.extend_from_slice(&bytes);
        rest = &esc[used..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

/// Escapes octets for a seed file line (the inverse of [`unescape`]).
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02X}")),
        }
    }
    s
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `test` on values of `strategy`: `default_cases` cases, or `PROPTEST_CASES`; with
/// `GOLUB_FUZZ_SECONDS`, batches of that many cases with new seeds until the time is up.
/// Panics with the shrunk failing value and the seed of its batch.
pub fn fuzz<S>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let cases = env_u64("PROPTEST_CASES").map_or(default_cases, |n| n.min(u32::MAX as u64) as u32);
    let budget = env_u64("GOLUB_FUZZ_SECONDS").map(Duration::from_secs);
    let first_seed = env_u64("GOLUB_FUZZ_SEED").unwrap_or_else(|| {
        if budget.is_some() {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        } else {
            0
        }
    });
    let started = Instant::now();
    let count = Cell::new(0u64);
    let mut batch = 0u64;
    loop {
        let seed = first_seed.wrapping_add(batch);
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let mut config = Config::with_cases(cases);
        config.failure_persistence = None;
        config.max_shrink_iters = 4096;
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        let result = runner.run(&strategy, |value| {
            let n = count.get() + 1;
            count.set(n);
            if n.is_multiple_of(10_000) {
                eprintln!("fuzz {name}: {n} cases, {}s", started.elapsed().as_secs());
            }
            test(value)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, value)) => {
                panic!("fuzz {name}: seed {seed} failed: {why}\nminimal input: {value:#?}")
            }
            Err(e) => panic!("fuzz {name}: seed {seed}: {e}"),
        }
        batch += 1;
        if budget.is_none_or(|b| started.elapsed() >= b) {
            break;
        }
    }
    eprintln!(
        "fuzz {name}: done, {} cases in {} batches, {}s, no failure",
        count.get(),
        batch,
        started.elapsed().as_secs()
    );
}
