//! Password hashing with argon2id. Hashing is deliberately slow and takes ~19 MiB, so it
//! runs on the blocking pool, never on an async worker thread, and the server's hashes go
//! through a [`Gate`] that bounds how many run and wait at once.

use std::sync::atomic::{AtomicUsize, Ordering};

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
    #[error("too many password checks are waiting")]
    Busy,
}

/// At most `running` hashes at once and `queue` more waiting; the rest are refused at once
/// with [`PasswordError::Busy`], so a burst of requests cannot take the server's memory.
pub struct Gate {
    slots: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    queue: usize,
}

impl Gate {
    /// `running` 0 means one slot per CPU.
    pub fn new(running: usize, queue: usize) -> Self {
        let running = match running {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Self {
            slots: tokio::sync::Semaphore::new(running),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    /// Waits for a slot (when the queue has room) and runs `work` in it.
    pub async fn run<T>(&self, work: impl Future<Output = Result<T, PasswordError>>) -> Result<T, PasswordError> {
        let _slot = match self.slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(PasswordError::Busy);
                }
                let slot = self.slots.acquire().await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                slot.map_err(|_| PasswordError::Busy)?
            }
        };
        work.await
    }
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

    #[tokio::test]
    async fn the_gate_refuses_beyond_its_queue() {
        let gate = std::sync::Arc::new(Gate::new(1, 1));
        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn({
            let gate = std::sync::Arc::clone(&gate);
            async move { gate.run(async { Ok(held.await.is_ok()) }).await }
        });
        while gate.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued = tokio::spawn({
            let gate = std::sync::Arc::clone(&gate);
            async move { gate.run(async { Ok(2) }).await }
        });
        while gate.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(gate.run(async { Ok(3) }).await, Err(PasswordError::Busy)));
        release.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        assert_eq!(queued.await.unwrap().unwrap(), 2);
    }
}
