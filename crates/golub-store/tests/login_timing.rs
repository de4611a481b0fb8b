//! An unknown user costs as much as a wrong password: `verify_password` checks the
//! password against a dummy argon2 hash (made by `hash_password`, so with the same
//! parameters) when the address does not exist, so the answer's timing does not tell
//! which addresses are users. The store counts its argon2 verifications; each kind of
//! failed login must cost exactly one.

use golub_store::{Store, hash_password, password_checks};

#[test]
fn an_unknown_user_costs_one_argon2_verification_like_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.add_domain("example.org").unwrap();
    store
        .add_user("alice@example.org", "", hash_password("right").unwrap())
        .unwrap();
    // Tests in this binary run alone, so the counter moves only for these calls.
    for (address, password, expect_user) in [
        ("alice@example.org", "wrong", false),
        ("nobody@example.org", "wrong", false),
        ("nobody@elsewhere.example", "right", false),
        ("alice@example.org", "right", true),
    ] {
        let before = password_checks();
        let user = store.verify_password(address, password).unwrap();
        assert_eq!(user.is_some(), expect_user, "{address}");
        assert_eq!(
            password_checks() - before,
            1,
            "{address}: one argon2 verification"
        );
    }
}
