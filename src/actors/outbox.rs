//! The durable webhook outbox. [`Outbox::record`] writes an event's delivery in the
//! caller's transaction, next to the fact it reports (a stored message, a status change),
//! so an accepted event is never lost; after the commit [`Outbox::dispatch`] hands it to
//! the webhook dispatcher. Which webhook receives which event lives in memory here and is
//! reloaded whenever webhooks change, so recording costs no extra read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, DbErr};
use sha2::Sha256;

use super::Slot;
use super::webhook::DispatcherMsg;
use crate::db::webhooks::{self, NewDelivery, WebhookWithServices, delivery};
use crate::domain::{DeliveryStatus, EventKind, Service};
use crate::events::GatewayEvent;

/// Where an event kind goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
}

#[derive(Default)]
pub struct Outbox {
    by_kind: RwLock<HashMap<Service, Arc<Target>>>,
    by_webhook: RwLock<HashMap<String, Arc<Target>>>,
    /// The dispatcher actor, published by the root supervisor.
    pub dispatcher: Slot<DispatcherMsg>,
    /// Deliveries the dispatcher holds (pending or in flight), for the health report.
    pub pending: std::sync::atomic::AtomicU64,
}

impl Outbox {
    /// Replaces the routing with the webhooks as stored now.
    pub fn reload(&self, hooks: &[WebhookWithServices]) {
        let mut by_kind = HashMap::new();
        let mut by_webhook = HashMap::new();
        for hook in hooks {
            let target = Arc::new(Target {
                webhook_id: hook.webhook.id.clone(),
                url: hook.webhook.url.clone(),
                secret: hook.webhook.secret.clone(),
            });
            for service in &hook.services {
                by_kind.insert(*service, Arc::clone(&target));
            }
            by_webhook.insert(hook.webhook.id.clone(), target);
        }
        *self.by_kind.write().unwrap_or_else(std::sync::PoisonError::into_inner) = by_kind;
        *self
            .by_webhook
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = by_webhook;
    }

    pub async fn load(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        self.reload(&webhooks::all(db).await?);
        Ok(())
    }

    /// The current URL and secret of a webhook (deleted webhooks have none).
    pub fn target(&self, webhook_id: &str) -> Option<Arc<Target>> {
        self.by_webhook
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(webhook_id)
            .cloned()
    }

    /// Whether a webhook receives this kind of event.
    pub fn wants(&self, kind: Service) -> bool {
        self.target_for(kind).is_some()
    }

    fn target_for(&self, kind: Service) -> Option<Arc<Target>> {
        self.by_kind
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&kind)
            .cloned()
    }

    /// Writes the event's delivery in the caller's transaction, if a webhook wants it.
    pub async fn record(
        &self,
        db: &impl ConnectionTrait,
        event: &GatewayEvent,
    ) -> Result<Option<delivery::Model>, DbErr> {
        let EventKind::Service(service) = event.event else {
            return Ok(None);
        };
        let Some(target) = self.target_for(service) else {
            return Ok(None);
        };
        let payload = serde_json::to_string(event).map_err(|e| DbErr::Custom(e.to_string()))?;
        let row = webhooks::insert_delivery(
            db,
            NewDelivery {
                event_id: &event.id.to_string(),
                webhook_id: &target.webhook_id,
                event: event.event.as_str(),
                phone: event.phone.as_ref().map(|p| p.as_str()),
                payload: &payload,
                status: DeliveryStatus::Pending,
            },
        )
        .await?;
        Ok(Some(row))
    }

    /// Writes a webhook's test ping. It is logged as a failed attempt until the answer says
    /// otherwise, so that a crash mid-request leaves no pending ping to retry: a ping is
    /// sent once, by [`DispatcherMsg::Ping`].
    pub async fn record_ping(
        &self,
        db: &impl ConnectionTrait,
        webhook_id: &str,
        event: &GatewayEvent,
    ) -> Result<delivery::Model, DbErr> {
        let payload = serde_json::to_string(event).map_err(|e| DbErr::Custom(e.to_string()))?;
        webhooks::insert_delivery(
            db,
            NewDelivery {
                event_id: &event.id.to_string(),
                webhook_id,
                event: event.event.as_str(),
                phone: None,
                payload: &payload,
                status: DeliveryStatus::Failed,
            },
        )
        .await
    }

    /// The dispatcher, while it runs.
    pub fn dispatcher(&self) -> Option<ractor::ActorRef<DispatcherMsg>> {
        self.dispatcher
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Hands committed deliveries to the dispatcher. If it is not running they wait in the
    /// database, and the dispatcher picks them up when it starts.
    pub fn dispatch(&self, rows: Vec<delivery::Model>) {
        if rows.is_empty() {
            return;
        }
        if let Some(dispatcher) = self.dispatcher() {
            let _ = dispatcher.cast(DispatcherMsg::Deliver(rows));
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`, the `X-Wagate-Signature` header.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_reference_value() {
        // Python: hmac.new(b"whsec_test", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "sha256=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
