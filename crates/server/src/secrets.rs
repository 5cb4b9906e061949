//! Passwords, session tokens and API-key secrets: how they are made, hashed and compared.
//!
//! Passwords are hashed with argon2id (memory-hard; its PHC string carries salt and
//! parameters) on the blocking pool, so a login never stalls the async threads. Session tokens
//! and key secrets are 256 random bits: a fast SHA-256 is then enough to keep them, and is what
//! the store holds.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted: argon2's cost is per byte, and a megabyte "password" is an attack.
pub const MAX_PASSWORD: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("password must be {MIN_PASSWORD}..={MAX_PASSWORD} characters")]
    PasswordLength,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the system random source failed: {0}")]
    Random(String),
}

/// An argon2id PHC string for `password` (on the blocking pool).
pub async fn hash_password(password: String) -> Result<String, SecretError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(SecretError::PasswordLength);
    }
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| SecretError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| SecretError::Hash(e.to_string()))?
}

/// Whether `password` matches the PHC string (on the blocking pool). A malformed stored hash
/// never matches.
pub async fn verify_password(password: String, phc: String) -> bool {
    if password.len() > MAX_PASSWORD * 4 {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A PHC string of a random password nobody knows: verified against when a login names no
/// user, so that answering "no such user" takes as long as "wrong password".
pub async fn decoy_hash() -> String {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY
        .get_or_init(|| async {
            let pw = random_token().unwrap_or_else(|_| "decoy-password-000".into());
            hash_password(pw).await.unwrap_or_default()
        })
        .await
        .clone()
}

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> Result<String, SecretError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// A short random identifier (8 lowercase base32-ish characters) for key prefixes.
pub fn random_prefix() -> Result<String, SecretError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(b.iter()
        .map(|x| ALPHABET[usize::from(*x) % ALPHABET.len()] as char)
        .collect())
}

pub fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Equality without an early exit (for digests).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// The form of an API key: `toll_<prefix>_<secret>`.
pub const KEY_TAG: &str = "toll_";

/// Splits a presented API key into prefix and secret.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_TAG)?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == 8 && secret.len() >= 32).then_some((prefix, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_round_trip_and_refusals() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse".into(), h.clone()).await);
        assert!(!verify_password("correct horsf".into(), h).await);
        assert!(!verify_password("x".into(), "not a phc string".into()).await);
        assert!(matches!(
            hash_password("short".into()).await,
            Err(SecretError::PasswordLength)
        ));
    }

    #[test]
    fn keys_split_only_in_their_form() {
        let secret = random_token().unwrap();
        let prefix = random_prefix().unwrap();
        let key = format!("{KEY_TAG}{prefix}_{secret}");
        assert_eq!(split_key(&key), Some((prefix.as_str(), secret.as_str())));
        assert_eq!(split_key("toll_abc_def"), None);
        assert_eq!(split_key(&secret), None);
        assert!(same(&sha256("a"), &sha256("a")));
        assert!(!same(&sha256("a"), &sha256("b")));
    }
}
