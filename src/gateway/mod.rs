//! The use cases, between the HTTP API and the parts that carry them out. A handler parses
//! and validates a request, calls one method here and renders the answer; this layer talks
//! to the phone actors, the database and the webhook outbox. Everything a phone does goes
//! through its [`PhoneHandle`], so one type decides where a phone's calls are carried out.
//!
//! Nothing here knows HTTP: errors are [`Error`], mapped to responses by the API alone.

mod error;
pub mod phones;
pub mod webhooks;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::actors::Phones;
pub use crate::actors::cache::Cached;
use crate::config::Config;
use crate::db;
use crate::events::{EventBus, GatewayEvent};
use crate::net;
pub use error::Error;
pub use phones::PhoneHandle;

/// The gateway's use cases, shared by every request.
pub struct Gateway {
    phones: Arc<Phones>,
    db: DatabaseConnection,
    config: Arc<Config>,
    events: EventBus,
    /// Which URLs a webhook may have (`network.*`).
    url_policy: net::UrlPolicy,
    /// Serialises webhook changes, so "one webhook per service" holds.
    webhook_edits: tokio::sync::Mutex<()>,
    /// The pending deliveries counted last, and when: the health report counts them at
    /// most once per `health.refresh_interval`, however often it is asked.
    pending_count: tokio::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

impl Gateway {
    pub fn new(
        phones: Arc<Phones>,
        db: DatabaseConnection,
        config: Arc<Config>,
        events: EventBus,
        url_policy: net::UrlPolicy,
    ) -> Self {
        Self {
            phones,
            db,
            config,
            events,
            url_policy,
            webhook_edits: tokio::sync::Mutex::new(()),
            pending_count: tokio::sync::Mutex::new(None),
        }
    }

    /// Every event as it happens (the live stream; webhooks have the outbox).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<GatewayEvent>> {
        self.events.subscribe()
    }

    /// What the health report shows of the phones and deliveries.
    pub async fn health(&self) -> Result<Health, Error> {
        Ok(Health {
            phones: self.phones.counts(),
            session_restarts: self.phones.restarts(),
            running_sessions: self.phones.running() as u64,
            webhook_deliveries: self.pending_deliveries().await?,
            webhook_deliveries_held: self.held_deliveries(),
        })
    }

    /// Deliveries waiting in the database, counted at most once per refresh interval;
    /// callers meanwhile share the one count (and wait for it while it runs).
    async fn pending_deliveries(&self) -> Result<u64, Error> {
        let mut last = self.pending_count.lock().await;
        if let Some((at, count)) = *last
            && at.elapsed() < self.config.health.refresh_interval
        {
            return Ok(count);
        }
        let count = db::webhooks::count_pending(&self.db).await?;
        *last = Some((std::time::Instant::now(), count));
        Ok(count)
    }

    /// Deliveries the dispatcher holds in memory (pending or in flight).
    pub fn held_deliveries(&self) -> u64 {
        self.phones
            .shared()
            .outbox
            .pending
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The counters, for the request middleware to count into.
    pub fn metrics(&self) -> Arc<crate::metrics::Metrics> {
        Arc::clone(&self.phones.shared().metrics)
    }

    /// The metrics in Prometheus' text format, with the gauges read now.
    pub fn metrics_text(&self) -> String {
        let shared = self.phones.shared();
        shared.metrics.render(self.phones.counts(), self.held_deliveries())
    }
}

/// The phones and deliveries, for the health report.
#[derive(Debug, Clone)]
pub struct Health {
    pub phones: std::collections::BTreeMap<crate::domain::PhoneStatus, u64>,
    pub session_restarts: u64,
    pub running_sessions: u64,
    /// Deliveries waiting in the database (pending).
    pub webhook_deliveries: u64,
    /// Deliveries the dispatcher holds in memory.
    pub webhook_deliveries_held: u64,
}
