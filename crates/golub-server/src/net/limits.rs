//! Connection limits: all listeners together, and per client IP address (trusted
//! networks are exempt from the latter).

use crate::config::Network;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a connection over a limit waits for a place before it is refused: a client
/// that ends a session and reconnects at once must not be refused because the old
/// session's end has not been seen yet.
const ADMISSION_GRACE: Duration = Duration::from_millis(500);

/// Counts open connections; a [`Permit`] gives its place back when dropped.
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    trusted: Vec<Network>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection.
pub struct Permit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyConnections,
    TooManyFromIp,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_ip: usize, trusted: Vec<Network>) -> Arc<Self> {
        Arc::new(ConnectionLimiter {
            max_total,
            max_per_ip,
            trusted,
            state: Mutex::new(State::default()),
        })
    }

    /// Admits a connection from `ip` if it is within the limits, waiting a moment for a
    /// place to be given back before refusing it.
    pub async fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let deadline = tokio::time::Instant::now() + ADMISSION_GRACE;
        loop {
            match self.try_admit(ip) {
                Ok(p) => return Ok(p),
                Err(why) if tokio::time::Instant::now() >= deadline => return Err(why),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    pub fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.total >= self.max_total {
            return Err(Refusal::TooManyConnections);
        }
        let trusted = self.trusted.iter().any(|n| n.contains(ip));
        let n = s.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip && !trusted {
            return Err(Refusal::TooManyFromIp);
        }
        *n += 1;
        s.total += 1;
        Ok(Permit {
            limiter: self.clone(),
            ip,
        })
    }

    pub fn open(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.limiter.state.lock().unwrap_or_else(|e| e.into_inner());
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_permits_give_their_place_back() {
        let l = ConnectionLimiter::new(3, 2, Vec::new());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = l.try_admit(a).unwrap();
        let _p2 = l.try_admit(a).unwrap();
        assert_eq!(l.try_admit(a).err(), Some(Refusal::TooManyFromIp));
        let _p3 = l.try_admit(b).unwrap();
        assert_eq!(l.try_admit(b).err(), Some(Refusal::TooManyConnections));
        drop(p1);
        assert!(l.try_admit(a).is_ok());
    }

    #[test]
    fn trusted_networks_skip_the_per_address_limit_only() {
        let l = ConnectionLimiter::new(4, 1, vec!["127.0.0.0/8".parse().unwrap()]);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        let _a = l.try_admit(local).unwrap();
        let _b = l.try_admit(local).unwrap();
        let _c = l.try_admit(other).unwrap();
        assert_eq!(l.try_admit(other).err(), Some(Refusal::TooManyFromIp));
        let _d = l.try_admit(local).unwrap();
        assert_eq!(l.try_admit(local).err(), Some(Refusal::TooManyConnections));
    }
}
