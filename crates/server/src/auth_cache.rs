//! Principals recently authenticated, kept for a few seconds so that a busy API client (a
//! switch asking `POST /api/v1/rate` thousands of times a second) is not looked up in the
//! database on every request. The cost: a key revoked or a session ended *on another server*
//! keeps working here for at most [`TTL`]; on this server both take effect at once
//! ([`AuthCache::forget_key`], [`AuthCache::forget_session`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::principal::Principal;

/// Longest time a cached principal is trusted without asking the store again.
pub const TTL: Duration = Duration::from_secs(5);
/// Entries kept at most per kind; beyond, the cache is cleared (and refills).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
struct Entry {
    principal: Principal,
    /// The digest the credential must match (an API key's secret hash; a session's own key).
    digest: [u8; 32],
    /// A hard end (the key's or the session's expiry), epoch ms.
    expires_ms: Option<i64>,
    at: Instant,
}

#[derive(Debug, Default)]
pub struct AuthCache {
    keys: Mutex<HashMap<String, Entry>>,
    sessions: Mutex<HashMap<[u8; 32], Entry>>,
}

fn fresh(e: &Entry, now_ms: i64) -> bool {
    e.at.elapsed() < TTL && e.expires_ms.is_none_or(|t| t > now_ms)
}

impl AuthCache {
    /// The principal of an API key, if cached and `digest` is its secret's.
    pub fn key(&self, prefix: &str, digest: &[u8; 32], now_ms: i64) -> Option<Principal> {
        let m = self.keys.lock().ok()?;
        let e = m.get(prefix)?;
        (fresh(e, now_ms) && crate::secrets::same(&e.digest, digest)).then(|| e.principal.clone())
    }

    pub fn put_key(&self, prefix: &str, digest: [u8; 32], expires_ms: Option<i64>, p: &Principal) {
        if let Ok(mut m) = self.keys.lock() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(
                prefix.to_string(),
                Entry {
                    principal: p.clone(),
                    digest,
                    expires_ms,
                    at: Instant::now(),
                },
            );
        }
    }

    pub fn forget_key(&self, prefix: &str) {
        if let Ok(mut m) = self.keys.lock() {
            m.remove(prefix);
        }
    }

    /// The principal of a session, by its token's digest.
    pub fn session(&self, digest: &[u8; 32], now_ms: i64) -> Option<Principal> {
        let m = self.sessions.lock().ok()?;
        let e = m.get(digest)?;
        fresh(e, now_ms).then(|| e.principal.clone())
    }

    pub fn put_session(&self, digest: [u8; 32], p: &Principal) {
        if let Ok(mut m) = self.sessions.lock() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(
                digest,
                Entry {
                    principal: p.clone(),
                    digest,
                    expires_ms: None,
                    at: Instant::now(),
                },
            );
        }
    }

    pub fn forget_session(&self, digest: &[u8; 32]) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(digest);
        }
    }
}
