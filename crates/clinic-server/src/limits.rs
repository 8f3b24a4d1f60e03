//! Fair shares of one server process: how many requests a user may have in
//! flight, one push per workstation at a time, and sign-in throttling per
//! account and per client address.
//!
//! The pool of database connections is the scarce thing: one workstation
//! flooding the server must get a quick `429` with `Retry-After`, never hold
//! connections that other users' reads wait for. These limits are per
//! process (each process has its own pool); the per-workstation push lock is
//! also taken in PostgreSQL, so it holds across processes.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// How long a client told to wait by a busy share waits, in seconds.
const BUSY_RETRY_SECONDS: u64 = 1;

/// The answer to a push while another push of the same workstation runs,
/// in this process or (found by the PostgreSQL lock) in another.
pub fn push_in_progress() -> ApiError {
    ApiError::Busy {
        retry_after: BUSY_RETRY_SECONDS,
        what: "a push from this workstation is in progress",
    }
}

/// Above this many tracked keys, keys not in use are forgotten.
const FORGET_ABOVE: usize = 10_000;

/// At most `per_key` concurrent holders per key; the next one is refused at
/// once instead of waiting.
struct Shares<K> {
    per_key: usize,
    keys: Mutex<HashMap<K, Arc<Semaphore>>>,
}

impl<K: Eq + Hash + Copy> Shares<K> {
    fn new(per_key: usize) -> Self {
        Self {
            per_key: per_key.max(1),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// A place for `key`, held until the returned value is dropped.
    fn take(&self, key: K, busy: impl FnOnce() -> ApiError) -> ApiResult<Held> {
        self.try_take(key)
            .map(|p| Held(Arc::new(p)))
            .ok_or_else(busy)
    }

    fn try_take(&self, key: K) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            if keys.len() > FORGET_ABOVE {
                // Only this map holds a semaphore nobody is using.
                keys.retain(|_, s| {
                    Arc::strong_count(s) > 1 || s.available_permits() < self.per_key
                });
            }
            keys.entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
                .clone()
        };
        semaphore.try_acquire_owned().ok()
    }
}

/// A fixed one-minute window of attempts per key.
struct Window<K> {
    per_minute: u32,
    keys: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Eq + Hash + Clone> Window<K> {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt; `Err(seconds)` to wait when the window is full.
    fn hit(&self, key: &K, now: Instant) -> Result<(), u64> {
        const MINUTE: Duration = Duration::from_secs(60);
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() > FORGET_ABOVE {
            keys.retain(|_, (start, _)| now.duration_since(*start) < MINUTE);
        }
        let entry = keys.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) >= MINUTE {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            let left = MINUTE.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Every limit of one process.
pub struct Limits {
    users: Shares<Uuid>,
    pushes: Shares<Uuid>,
    sign_in_accounts: Window<(String, String)>,
    sign_in_addresses: Window<IpAddr>,
    trusted_proxies: Vec<IpAddr>,
}

/// What a limited request holds until it ends.
#[derive(Debug, Clone)]
pub struct Held(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

impl Limits {
    /// Limits from the configuration.
    pub fn new(config: &crate::Config) -> Self {
        Self {
            users: Shares::new(config.max_requests_per_user),
            pushes: Shares::new(1),
            sign_in_accounts: Window::new(config.sign_ins_per_account_per_minute),
            sign_in_addresses: Window::new(config.sign_ins_per_address_per_minute),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// A place among the user's requests in flight, or `429`.
    pub fn user_request(&self, user: Uuid) -> ApiResult<Held> {
        self.users.take(user, || ApiError::Busy {
            retry_after: BUSY_RETRY_SECONDS,
            what: "this user has too many requests in progress",
        })
    }

    /// The workstation's one push in this process, or `429`.
    pub fn push(&self, workstation: Uuid) -> ApiResult<Held> {
        self.pushes.take(workstation, push_in_progress)
    }

    /// Counts a sign-in attempt for the account and the client address.
    pub fn sign_in(&self, clinic: &str, username: &str, address: Option<IpAddr>) -> ApiResult<()> {
        let now = Instant::now();
        let busy = |retry_after| ApiError::Busy {
            retry_after,
            what: "too many sign-in attempts; wait a moment",
        };
        if let Some(ip) = address {
            self.sign_in_addresses.hit(&ip, now).map_err(busy)?;
        }
        let account = (clinic.to_lowercase(), username.to_lowercase());
        self.sign_in_accounts.hit(&account, now).map_err(busy)
    }

    /// The client's address: the peer, or the `X-Real-IP` a trusted proxy
    /// (nginx in front of the server) set.
    pub fn client_address(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())?;
        if self.trusted_proxies.contains(&peer)
            && let Some(real) = parts
                .headers
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        {
            return Some(real);
        }
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_refuses_the_holder_beyond_its_size_until_one_ends() {
        let shares = Shares::new(2);
        let key = Uuid::now_v7();
        let a = shares.try_take(key).unwrap();
        let _b = shares.try_take(key).unwrap();
        assert!(shares.try_take(key).is_none());
        assert!(
            shares.try_take(Uuid::now_v7()).is_some(),
            "others are not affected"
        );
        drop(a);
        assert!(shares.try_take(key).is_some());
    }

    #[test]
    fn a_window_counts_attempts_per_minute() {
        let window = Window::new(3);
        let t = Instant::now();
        for _ in 0..3 {
            window.hit(&"k", t).unwrap();
        }
        let wait = window.hit(&"k", t + Duration::from_secs(20)).unwrap_err();
        assert_eq!(wait, 40);
        window.hit(&"other", t).unwrap();
        window.hit(&"k", t + Duration::from_secs(60)).unwrap();
    }
}
