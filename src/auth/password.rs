//! Password hashing with argon2id. Hashing is deliberately slow, so it always runs on the
//! blocking pool, never on an async worker thread.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest password accepted for the owner account, in characters.
pub const MIN_LENGTH: usize = 8;
/// Longest password accepted; bounds the hashing work one request can cause.
pub const MAX_LENGTH: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password worker failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Returns the PHC string of an argon2id hash with a fresh random salt.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| PasswordError::Hash(err.to_string()))
    })
    .await?
}

/// True when `password` matches the stored PHC hash. A malformed hash never matches.
pub async fn verify(password: String, phc: String) -> Result<bool, PasswordError> {
    let matched = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await?;
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let phc = hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), phc.clone()).await.unwrap());
        assert!(!verify("wrong horse".into(), phc).await.unwrap());
        assert!(!verify("x".into(), "not a hash".into()).await.unwrap());
    }
}
