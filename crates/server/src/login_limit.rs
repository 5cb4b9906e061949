//! Failed logins per client address: after [`MAX_ATTEMPTS`] failures in [`WINDOW`] the address
//! waits for the window to end, so a password cannot be guessed quickly from one address
//! (successful logins do not count: an office behind one NAT address signs in freely). Per-user lockout (after failures in a row,
//! whatever the address) is the store's, on the user row.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_ATTEMPTS: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; beyond, the table is cleared of finished windows.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Default)]
pub struct LoginLimiter {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl LoginLimiter {
    /// Whether `ip` may try now; `Err(seconds)` when it must wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Ok(m) = self.windows.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        match m.get(&ip) {
            Some((start, n)) if *n >= MAX_ATTEMPTS && now.duration_since(*start) < WINDOW => {
                let wait = WINDOW.saturating_sub(now.duration_since(*start));
                Err(wait.as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let Ok(mut m) = self.windows.lock() else {
            return;
        };
        let now = Instant::now();
        if m.len() >= MAX_TRACKED {
            m.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let e = m.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_ten_failures_in_a_minute_the_address_waits_and_others_do_not() {
        let l = LoginLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_ATTEMPTS {
            assert!(l.check(a).is_ok());
            l.failed(a);
        }
        let wait = l.check(a).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.check(b).is_ok());
    }
}
