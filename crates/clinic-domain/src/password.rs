//! Argon2id password hashes, shared by the workstation and the server so both
//! store and check passwords the same way. The caller supplies the random
//! salt: this crate does no I/O, randomness included.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A valid hash of no one's password, checked against when a user name is
/// unknown so that a wrong name takes as long as a wrong password.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Z0dQbYpJ3iT3m2QMXsFwkqzHiDnlN9H8gBtA4UdpXsA";

/// Hashes `password` with Argon2id (default parameters) and `salt`, as a
/// PHC string (`$argon2id$v=19$...`). `None` only if the salt is unusable,
/// which 16 bytes never are.
pub fn hash_password(password: &str, salt: [u8; 16]) -> Option<String> {
    let salt = SaltString::encode_b64(&salt).ok()?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}

/// Checks a password against a stored PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse battery", [7; 16]).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("anything", "not a hash"));
    }
}
