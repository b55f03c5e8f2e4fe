//! Password and client-secret hashing: argon2id with a random salt, in the PHC string format.
//! Hashing is slow on purpose, so it runs on the blocking pool, never on a request's thread;
//! an unknown account still costs one verification, so timing does not reveal who exists.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::LazyLock;

/// Longest password or secret accepted (argon2 would take anything; a 10 MB one is abuse).
pub const MAX_LEN: usize = 1024;
/// Shortest password a shopper may choose.
pub const MIN_PASSWORD_LEN: usize = 8;

/// A hash to verify against when the account does not exist.
static DECOY: LazyLock<String> =
    LazyLock::new(|| hash_now("decoy-password-never-matches").unwrap_or_default());

fn hash_now(secret: &str) -> Option<String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .ok()
        .map(|h| h.to_string())
}

/// The argon2id PHC string of `secret`.
pub async fn hash(secret: String) -> Option<String> {
    tokio::task::spawn_blocking(move || hash_now(&secret))
        .await
        .ok()
        .flatten()
}

/// Whether `secret` matches `stored` (`None`: the account does not exist; a decoy is checked).
pub async fn verify(secret: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let exists = stored.is_some();
        let phc = stored.unwrap_or_else(|| DECOY.clone());
        let ok = Argon2::default()
            .verify_password(secret.as_bytes(), phc.as_str())
            .is_ok();
        ok && exists
    })
    .await
    .unwrap_or(false)
}

/// A random secret for a new client (URL-safe, 256 bits).
pub fn new_secret() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
