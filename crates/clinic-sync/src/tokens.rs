//! Where the server's tokens live.
//!
//! - Access tokens stay in memory only; they are short-lived.
//! - Refresh tokens go to the OS keychain (Secret Service or the kernel
//!   keyring on Linux, through `keyring`). Where no keychain works (a
//!   headless Linux without Secret Service), they are kept in memory for
//!   this session only, and the status bar says so. A token is never
//!   written to disk in plain text.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// A place for secrets.
pub trait SecretStore: Send + Sync {
    /// The secret under `key`, if any.
    fn get(&self, key: &str) -> Option<String>;
    /// Stores `value` under `key`; `false` if the store failed.
    fn set(&self, key: &str, value: &str) -> bool;
    /// Removes the secret under `key`.
    fn delete(&self, key: &str);
    /// Whether secrets survive a restart of the app.
    fn persistent(&self) -> bool;
}

/// The OS keychain.
pub struct Keychain {
    service: String,
}

impl Keychain {
    /// The keychain, if it works here: a probe entry is written, read back
    /// and removed.
    pub fn open(service: &str) -> Option<Keychain> {
        let k = Keychain {
            service: service.to_owned(),
        };
        let probe = format!("probe-{}", Uuid::now_v7());
        let ok = k.set(&probe, "probe") && k.get(&probe).as_deref() == Some("probe");
        k.delete(&probe);
        ok.then_some(k)
    }

    fn entry(&self, key: &str) -> Option<keyring::Entry> {
        keyring::Entry::new(&self.service, key).ok()
    }
}

impl SecretStore for Keychain {
    fn get(&self, key: &str) -> Option<String> {
        self.entry(key)?.get_password().ok()
    }

    fn set(&self, key: &str, value: &str) -> bool {
        self.entry(key)
            .is_some_and(|e| e.set_password(value).is_ok())
    }

    fn delete(&self, key: &str) {
        if let Some(e) = self.entry(key) {
            let _ = e.delete_credential();
        }
    }

    fn persistent(&self) -> bool {
        true
    }
}

/// Secrets for this session only.
#[derive(Default)]
pub struct SessionOnly {
    map: Mutex<HashMap<String, String>>,
}

impl SecretStore for SessionOnly {
    fn get(&self, key: &str) -> Option<String> {
        self.map.lock().expect("not poisoned").get(key).cloned()
    }

    fn set(&self, key: &str, value: &str) -> bool {
        self.map
            .lock()
            .expect("not poisoned")
            .insert(key.to_owned(), value.to_owned());
        true
    }

    fn delete(&self, key: &str) {
        self.map.lock().expect("not poisoned").remove(key);
    }

    fn persistent(&self) -> bool {
        false
    }
}

/// The keychain if it works here, otherwise session-only memory.
pub fn default_store() -> Box<dyn SecretStore> {
    match Keychain::open("org.clinic.workstation") {
        Some(k) => Box::new(k),
        None => {
            tracing::warn!(
                "no OS keychain available; server tokens are kept for this session only"
            );
            Box::new(SessionOnly::default())
        }
    }
}

/// The key under which `user`'s refresh token is kept in the keychain.
pub fn refresh_token_key(user: Uuid) -> String {
    format!("refresh-token|{user}")
}

/// Tokens of the users who signed in online on this workstation.
///
/// Keys are user ids: a workstation is enrolled with one server for life.
pub struct Vault {
    secrets: Box<dyn SecretStore>,
    access: Mutex<HashMap<Uuid, (String, Instant)>>,
}

impl Vault {
    /// A vault over `secrets`.
    pub fn new(secrets: Box<dyn SecretStore>) -> Vault {
        Vault {
            secrets,
            access: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, user: Uuid) -> String {
        refresh_token_key(user)
    }

    /// Whether refresh tokens survive a restart.
    pub fn persistent(&self) -> bool {
        self.secrets.persistent()
    }

    /// Keeps a fresh pair of tokens.
    pub fn store(&self, user: Uuid, access: &str, expires_in: i64, refresh: &str) {
        // Treat the token as expired a little early, so a call never races
        // its expiry.
        let life =
            Duration::from_secs(expires_in.max(0) as u64).saturating_sub(Duration::from_secs(30));
        self.access
            .lock()
            .expect("not poisoned")
            .insert(user, (access.to_owned(), Instant::now() + life));
        if !self.secrets.set(&self.key(user), refresh) {
            tracing::warn!(%user, "could not store a refresh token in the keychain");
        }
    }

    /// Keeps the tokens of a sign-in or a refresh.
    pub fn keep(&self, t: &clinic_domain::sync::TokenResponse) {
        self.store(t.user.id, &t.access_token, t.expires_in, &t.refresh_token);
    }

    /// A still-valid access token of `user`.
    pub fn access(&self, user: Uuid) -> Option<String> {
        let map = self.access.lock().expect("not poisoned");
        map.get(&user)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(t, _)| t.clone())
    }

    /// The refresh token of `user`.
    pub fn refresh_token(&self, user: Uuid) -> Option<String> {
        self.secrets.get(&self.key(user))
    }

    /// Forgets `user`'s access token (the server refused it).
    pub fn expire(&self, user: Uuid) {
        self.access.lock().expect("not poisoned").remove(&user);
    }

    /// Forgets everything of `user` (the refresh token was refused).
    pub fn forget(&self, user: Uuid) {
        self.expire(user);
        self.secrets.delete(&self.key(user));
    }

    /// Users with a valid access token in memory; any of them may read the
    /// clinic's feed.
    pub fn users_with_access(&self) -> Vec<Uuid> {
        let now = Instant::now();
        self.access
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(_, (_, exp))| *exp > now)
            .map(|(u, _)| *u)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vault_keeps_refresh_tokens_in_its_store_and_access_tokens_in_memory() {
        let v = Vault::new(Box::new(SessionOnly::default()));
        let u = Uuid::now_v7();
        v.store(u, "acc", 900, "ref");
        assert_eq!(v.access(u).as_deref(), Some("acc"));
        assert_eq!(v.refresh_token(u).as_deref(), Some("ref"));
        v.expire(u);
        assert_eq!(v.access(u), None);
        assert_eq!(v.refresh_token(u).as_deref(), Some("ref"));
        v.forget(u);
        assert_eq!(v.refresh_token(u), None);
        assert!(!v.persistent());
    }

    #[test]
    fn an_access_token_near_its_expiry_is_not_handed_out() {
        let v = Vault::new(Box::new(SessionOnly::default()));
        let u = Uuid::now_v7();
        v.store(u, "acc", 20, "ref");
        assert_eq!(v.access(u), None, "20 s left is inside the 30 s margin");
    }
}
