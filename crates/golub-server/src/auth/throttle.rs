//! Slows down and then blocks repeated failed logins. Each failure of a client IP or an
//! account doubles the delay before the next failure is answered; past `max_failures`
//! the IP or account is blocked for `block_time` (the session gets 421). Entries are
//! forgotten after `block_time` without failures. Time is an argument, for tests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Throttling policy.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Delay after the first failure; doubles with each further one.
    pub initial_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Failures after which the IP or account is blocked.
    pub max_failures: u32,
    /// How long a block lasts, and how long failures are remembered.
    pub block_time: Duration,
}

/// What to do with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead; after a failure, wait this long before answering.
    Allow { failure_delay: Duration },
    /// Refuse without checking: too many failures lately.
    Blocked,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Account(String),
}

/// Failure counts per IP and per account.
pub struct AuthThrottle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl AuthThrottle {
    pub fn new(config: ThrottleConfig) -> AuthThrottle {
        AuthThrottle {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self, map: &mut HashMap<Key, Entry>, key: &Key, now: Instant) -> u32 {
        match map.get(key) {
            Some(e) if now.duration_since(e.last) < self.config.block_time => e.failures,
            Some(_) => {
                map.remove(key);
                0
            }
            None => 0,
        }
    }

    /// Decides on an attempt by `account` from `ip`.
    pub fn check(&self, ip: IpAddr, account: &str, now: Instant) -> Verdict {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let n = self
            .failures(&mut map, &Key::Ip(ip), now)
            .max(self.failures(&mut map, &Key::Account(account.to_lowercase()), now));
        if n >= self.config.max_failures {
            return Verdict::Blocked;
        }
        let delay = self
            .config
            .initial_delay
            .saturating_mul(1u32 << n.min(16))
            .min(self.config.max_delay);
        Verdict::Allow {
            failure_delay: delay,
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&self, ip: IpAddr, account: &str, now: Instant) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Forget stale entries now and then so that the map stays small.
        if map.len() > 10_000 {
            let keep = self.config.block_time;
            map.retain(|_, e| now.duration_since(e.last) < keep);
        }
        for key in [Key::Ip(ip), Key::Account(account.to_lowercase())] {
            let n = self.failures(&mut map, &key, now);
            map.insert(
                key,
                Entry {
                    failures: n + 1,
                    last: now,
                },
            );
        }
    }

    /// A successful login clears the account's record (not the IP's: one good password
    /// must not reset a guesser's count for other accounts).
    pub fn succeeded(&self, account: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&Key::Account(account.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> AuthThrottle {
        AuthThrottle::new(ThrottleConfig {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_failures: 4,
            block_time: Duration::from_secs(60),
        })
    }

    fn delay(v: Verdict) -> Duration {
        match v {
            Verdict::Allow { failure_delay } => failure_delay,
            Verdict::Blocked => panic!("blocked"),
        }
    }

    #[test]
    fn delays_grow_then_the_ip_is_blocked_then_forgotten() {
        let t = throttle();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        assert_eq!(delay(t.check(ip, "a@x", now)), Duration::from_millis(100));
        t.failed(ip, "a@x", now);
        assert_eq!(delay(t.check(ip, "b@x", now)), Duration::from_millis(200));
        t.failed(ip, "b@x", now);
        t.failed(ip, "c@x", now);
        assert_eq!(delay(t.check(ip, "d@x", now)), Duration::from_millis(800));
        t.failed(ip, "d@x", now);
        assert_eq!(t.check(ip, "e@x", now), Verdict::Blocked);
        // Another IP guessing one of those accounts is slowed by the account's count.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            delay(t.check(other, "a@x", now)),
            Duration::from_millis(200)
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(delay(t.check(ip, "e@x", later)), Duration::from_millis(100));
    }

    #[test]
    fn an_account_is_blocked_whatever_the_ip() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..4u8 {
            t.failed(IpAddr::from([198, 51, 100, i]), "Alice@x", now);
        }
        assert_eq!(
            t.check("203.0.113.9".parse().unwrap(), "alice@x", now),
            Verdict::Blocked
        );
        t.succeeded("alice@x");
        assert!(matches!(
            t.check("203.0.113.9".parse().unwrap(), "alice@x", now),
            Verdict::Allow { .. }
        ));
    }
}
