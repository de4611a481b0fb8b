//! An unknown user costs as much as a wrong password: `verify_password` checks the
//! password against a dummy argon2 hash when the address does not exist, so the answer's
//! timing does not tell which addresses are users.
//!
//! The work done is not observable from outside the crate, so this compares times: the
//! median of five interleaved tries of each, whose ratio must be within 0.5..2.0 (in one
//! of up to three rounds, as a shared machine's load can disturb one). Both sides are one
//! argon2 verification with the same parameters; skipping it for unknown users makes that
//! side a database lookup only, hundreds of times faster, which this catches.

use golub_store::{Store, hash_password};
use std::time::{Duration, Instant};

fn timed(store: &Store, address: &str, password: &str) -> Duration {
    let start = Instant::now();
    let user = store.verify_password(address, password).unwrap();
    let took = start.elapsed();
    assert!(user.is_none(), "{address} must not log in");
    took
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Five tries of each, interleaved so that a change in the machine's load hits both;
/// returns the ratio of the medians, unknown user over wrong password.
fn ratio(store: &Store) -> (f64, Duration, Duration) {
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        wrong.push(timed(store, "alice@example.org", "wrong"));
        unknown.push(timed(store, "nobody@example.org", "wrong"));
    }
    let (w, u) = (median(wrong), median(unknown));
    (u.as_secs_f64() / w.as_secs_f64(), w, u)
}

#[test]
fn an_unknown_user_costs_the_same_as_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.add_domain("example.org").unwrap();
    store
        .add_user("alice@example.org", "", hash_password("right").unwrap())
        .unwrap();
    assert!(
        store
            .verify_password("alice@example.org", "right")
            .unwrap()
            .is_some()
    );
    // Warm up: the dummy hash is made on first use.
    let _ = store.verify_password("nobody@example.org", "x");
    let _ = store.verify_password("alice@example.org", "x");

    // Other work on a shared machine can disturb one round; a missing dummy check makes
    // every round fail (the unknown user then costs a lookup, not a hash).
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (r, w, u) = ratio(&store);
        eprintln!("login_timing: wrong password {w:?}, unknown user {u:?}, ratio {r:.2}");
        rounds.push(r);
        if (0.5..2.0).contains(&r) {
            return;
        }
    }
    panic!("an unknown user does not cost what a wrong password does: ratios {rounds:?}");
}
