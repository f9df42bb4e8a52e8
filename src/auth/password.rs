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
/// A slot is held by the hashing thread itself, so a request given up half-way (a
/// timeout, a closed connection) frees its slot only when its hash is done.
pub struct Gate {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

/// Counts a waiter while it waits, however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// `running` 0 means one slot per CPU.
    pub fn new(running: usize, queue: usize) -> Self {
        let running = match running {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Self {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(running)),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, PasswordError> {
        if let Ok(slot) = std::sync::Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(slot);
        }
        let waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            return Err(PasswordError::Busy);
        }
        let slot = std::sync::Arc::clone(&self.slots).acquire_owned().await;
        drop(waiting);
        slot.map_err(|_| PasswordError::Busy)
    }

    /// [`hash`] in a slot.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let slot = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hash_now(&password)
        })
        .await?
    }

    /// [`verify`] in a slot.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, PasswordError> {
        let slot = self.slot().await?;
        let matched = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            verify_now(&password, &phc)
        })
        .await?;
        Ok(matched)
    }
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| PasswordError::Hash(err.to_string()))
}

fn verify_now(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Returns the PHC string of an argon2id hash with a fresh random salt.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash_now(&password)).await?
}

/// True when `password` matches the stored PHC hash. A malformed hash never matches.
pub async fn verify(password: String, phc: String) -> Result<bool, PasswordError> {
    Ok(tokio::task::spawn_blocking(move || verify_now(&password, &phc)).await?)
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
    async fn the_gate_refuses_beyond_its_queue_and_a_given_up_wait_leaves_no_trace() {
        let gate = Gate::new(1, 1);
        let held = std::sync::Arc::clone(&gate.slots).try_acquire_owned().unwrap();
        // A waiter that gives up (a request timed out) must not keep its place.
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(20), gate.slot()).await;
        assert!(gave_up.is_err());
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
        let queued = gate.slot();
        tokio::pin!(queued);
        assert!(futures::poll!(&mut queued).is_pending());
        assert!(matches!(gate.slot().await, Err(PasswordError::Busy)));
        drop(held);
        assert!(queued.await.is_ok());
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
    }
}
