//! A short-lived memory of successful password checks, as Dovecot's auth cache keeps:
//! a client that logs in again and again (a phone polling, a webmail, a benchmark)
//! costs one argon2 hash per user and password every [`TTL`], not one per login.
//!
//! The stored hash is not weakened: the cache holds an HMAC of the password under a
//! random key made at start and never written anywhere, only in this process's memory,
//! and only for passwords that were right. A wrong password never matches an entry and
//! goes to argon2 as before. A password changed by `golub user passwd` (another process)
//! stops working here once its entry expires, after at most [`TTL`].

use golub_store::User;
use ring::hmac;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a successful check is remembered.
pub const TTL: Duration = Duration::from_secs(60);

/// Most entries kept; past it, expired ones go, and if none has expired, all.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    tag: hmac::Tag,
    user: User,
    until: Instant,
}

/// Remembered successful logins, by address.
pub struct LoginCache {
    key: hmac::Key,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for LoginCache {
    fn default() -> Self {
        let rng = ring::rand::SystemRandom::new();
        // Without randomness there is no safe key: a key of zeros would still never
        // leave the process, but fail closed instead and remember nothing.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &[]));
        LoginCache {
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl LoginCache {
    /// The user, if `password` is the one that logged in as `address` within the TTL.
    pub fn get(&self, address: &str, password: &str, now: Instant) -> Option<User> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(&address.to_ascii_lowercase())?;
        if now >= e.until {
            return None;
        }
        // Constant-time comparison of the tags.
        hmac::verify(&self.key, password.as_bytes(), e.tag.as_ref()).ok()?;
        Some(e.user.clone())
    }

    /// Remembers a successful check.
    pub fn put(&self, address: &str, password: &str, user: &User, now: Instant) {
        let tag = hmac::sign(&self.key, password.as_bytes());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            address.to_ascii_lowercase(),
            Entry {
                tag,
                user: user.clone(),
                until: now + TTL,
            },
        );
    }

    /// Forgets `address` (a failed login for it: the password may have changed).
    pub fn forget(&self, address: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&address.to_ascii_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: 7,
            address: "alice@example.org".into(),
            name: String::new(),
        }
    }

    #[test]
    fn only_the_same_password_within_the_ttl_matches() {
        let c = LoginCache::default();
        let now = Instant::now();
        assert!(c.get("alice@example.org", "pw", now).is_none());
        c.put("alice@example.org", "pw", &user(), now);
        assert_eq!(c.get("ALICE@example.org", "pw", now).map(|u| u.id), Some(7));
        assert!(c.get("alice@example.org", "pw2", now).is_none());
        assert!(c.get("alice@example.org", "pw", now + TTL).is_none());
        c.forget("alice@example.org");
        assert!(c.get("alice@example.org", "pw", now).is_none());
    }
}
