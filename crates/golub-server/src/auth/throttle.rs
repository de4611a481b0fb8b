//! Slows down and then blocks repeated failed logins, per client address.
//!
//! A client address that keeps failing is slowed down (each failure doubles the delay
//! before the next failure is answered) and, past `max_failures`, blocked for
//! `block_time` (the session gets 421). Failures are also counted per account, but an
//! account's count only slows down addresses that are failing themselves: it never
//! blocks or delays anyone, so a guessing run against alice@ from other addresses cannot
//! lock alice out. The right password from an address that has not been failing is
//! always checked and answered at once. Entries are forgotten after `block_time` without
//! failures. Time is an argument, for tests.

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
    /// Failures from one client address after which it is blocked.
    pub max_failures: u32,
    /// How long a block lasts, and how long failures are remembered.
    pub block_time: Duration,
}

/// What to do with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead; after a failure, wait this long before answering.
    Allow { failure_delay: Duration },
    /// Refuse without checking: too many failures from this address lately.
    Blocked,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// Every failure from one client address, whatever the account.
    Ip(IpAddr),
    /// Failures against one account, from any address.
    Account(String),
}

/// Failure counts per client address and per account.
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
        let from_ip = self.failures(&mut map, &Key::Ip(ip), now);
        if from_ip >= self.config.max_failures {
            return Verdict::Blocked;
        }
        // An address that is failing itself is slowed down by the account's count too
        // (a guessing run spread over many addresses); a clean address is not: its
        // failures are answered after the first step only.
        let n = if from_ip > 0 {
            from_ip.max(self.failures(&mut map, &Key::Account(account.to_lowercase()), now))
        } else {
            0
        };
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

    /// A successful login clears the account's record (not the address's: one good
    /// password must not reset a guesser's count for other accounts).
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
    fn delays_grow_then_the_address_is_blocked_then_forgotten() {
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
        let later = now + Duration::from_secs(61);
        assert_eq!(delay(t.check(ip, "e@x", later)), Duration::from_millis(100));
    }

    #[test]
    fn guessing_from_one_address_never_locks_the_account_out_elsewhere() {
        let t = throttle();
        let now = Instant::now();
        let guesser: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..50 {
            t.failed(guesser, "alice@x", now);
        }
        assert_eq!(t.check(guesser, "alice@x", now), Verdict::Blocked);
        // Alice from her own address: not blocked, and not even slowed down.
        let alice: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            delay(t.check(alice, "alice@x", now)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_spread_out_run_slows_down_the_failing_addresses_only() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..3u8 {
            t.failed(IpAddr::from([198, 51, 100, i]), "Alice@x", now);
        }
        // One of the guessers tries again: slowed by the account's three failures.
        assert_eq!(
            delay(t.check(IpAddr::from([198, 51, 100, 0]), "alice@x", now)),
            Duration::from_millis(800)
        );
        // A clean address: no block, first-step delay only.
        assert_eq!(
            delay(t.check("203.0.113.9".parse().unwrap(), "alice@x", now)),
            Duration::from_millis(100)
        );
        t.succeeded("alice@x");
        assert_eq!(
            delay(t.check(IpAddr::from([198, 51, 100, 0]), "alice@x", now)),
            Duration::from_millis(200)
        );
    }
}
