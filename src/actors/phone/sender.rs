//! The phone's send queue: a task that hands queued messages to the engine one at a
//! time, pacing them when pacing is on, and reports each result back to the phone actor,
//! which stores it. Each phone has its own queue, so one phone's bulk send never delays
//! another phone.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::PhoneMsg;
use crate::actors::{PhoneError, Reply};
use crate::db::messages::Model as StoredMessage;
use crate::engine::{EngineError, OutgoingMessage, Session};

pub struct SendJob {
    pub message: OutgoingMessage,
    pub reply: Reply<StoredMessage>,
}

/// How far apart paced sends go (`messaging.send_interval`, plus up to `send_jitter`),
/// when `messaging.pacing` turns pacing on.
#[derive(Debug, Clone, Copy)]
pub struct Spacing {
    pub interval: Duration,
    pub jitter: Duration,
}

pub struct SendQueue {
    tx: mpsc::Sender<SendJob>,
    pacing: Option<Spacing>,
    /// The longest a caller may be kept waiting in the queue.
    max_wait: Duration,
    /// With pacing: the earliest slot a message accepted now would get (each accepted
    /// message reserves one interval, its jitter at most). Reserving at acceptance makes
    /// the wait a caller is promised independent of when the task takes a message off
    /// the channel.
    next_free: std::sync::Mutex<Instant>,
}

impl SendQueue {
    pub fn start(
        session: Arc<dyn Session>,
        actor: ActorRef<PhoneMsg>,
        pacing: Option<Spacing>,
        capacity: usize,
        max_wait: Duration,
        send_timeout: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity);
        tokio::spawn(run(rx, session, actor, pacing, send_timeout));
        Self {
            tx,
            pacing,
            max_wait,
            next_free: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Queues a message, or refuses it when the queue is full or the wait would be too long.
    pub fn push(&self, job: SendJob) {
        // Held through the hand-over, so a slot is reserved only for a message queued.
        let mut next_free = self.next_free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let slot = (*next_free).max(now);
        if self.pacing.is_some() {
            // Its turn must come with time left for the send itself (a quarter of the
            // wait allowed), or the caller would time out waiting for it.
            let (wait, allowed) = (slot - now, self.max_wait - self.max_wait / 4);
            if wait > allowed {
                let _ = job.reply.send(Err(PhoneError::QueueFull(wait - allowed)));
                return;
            }
        }
        match self.tx.try_send(job) {
            Ok(()) => {
                if let Some(pacing) = self.pacing {
                    *next_free = slot + pacing.interval + pacing.jitter;
                }
            }
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                let _ = job.reply.send(Err(PhoneError::QueueFull(Duration::from_secs(1))));
            }
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<SendJob>,
    session: Arc<dyn Session>,
    actor: ActorRef<PhoneMsg>,
    pacing: Option<Spacing>,
    send_timeout: Duration,
) {
    let mut next_slot = Instant::now();
    while let Some(job) = rx.recv().await {
        if pacing.is_some() {
            tokio::time::sleep_until(next_slot).await;
        }
        let result = match tokio::time::timeout(send_timeout, session.send(job.message.clone())).await {
            Ok(result) => result,
            Err(_) => Err(EngineError::Timeout),
        };
        if let Some(pacing) = pacing {
            let jitter = if pacing.jitter.is_zero() {
                Duration::ZERO
            } else {
                pacing.jitter.mul_f64(rand::rng().random_range(0.0..1.0))
            };
            next_slot = Instant::now() + pacing.interval + jitter;
        }
        let sent = PhoneMsg::Sent {
            message: job.message,
            result,
            reply: job.reply,
        };
        if actor.cast(sent).is_err() {
            // The actor is gone; its successor starts a new queue.
            return;
        }
    }
}
