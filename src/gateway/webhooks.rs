//! Webhooks: where events are delivered (one webhook per service), their delivery log,
//! redelivery, and the test ping, which is an event like any other: recorded by the
//! outbox and sent by the dispatcher, in the same envelope.

use std::time::Duration;

use rand::Rng;

use super::{Error, Gateway};
use crate::actors::call;
use crate::actors::webhook::{DispatcherMsg, Outcome};
use crate::db::webhooks::{self, WebhookWithServices};
use crate::domain::{Delivery, DeliveryStatus, EventKind, Service, Webhook};
use crate::events::{self, GatewayEvent, PingData};

/// How a test ping went.
#[derive(Debug, Clone)]
pub struct PingResult {
    pub delivery_id: String,
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why the ping was not delivered.
    pub error: Option<String>,
    pub duration: Duration,
}

/// A new webhook and its signing secret, shown this once.
#[derive(Debug, Clone)]
pub struct Created {
    pub webhook: Webhook,
    pub secret: String,
}

impl Gateway {
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, Error> {
        Ok(webhooks::all(&self.db).await?.into_iter().map(Webhook::from).collect())
    }

    /// Adds a webhook for `services` (none may be taken by another webhook).
    pub async fn create_webhook(&self, url: &str, services: &[Service]) -> Result<Created, Error> {
        let (url, services) = self.checked_webhook(url, services)?;
        let _serialised = self.webhook_edits.lock().await;
        self.ensure_free(&services, None).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let secret = new_secret();
        webhooks::insert(&self.db, &id, &url, &secret, &services).await?;
        self.reload_webhooks().await?;
        let webhook = self.webhook(&id).await?.into();
        Ok(Created { webhook, secret })
    }

    /// Sets a webhook's URL and services; its secret and pending deliveries stay.
    pub async fn update_webhook(&self, id: &str, url: &str, services: &[Service]) -> Result<Webhook, Error> {
        let id = checked_id(id)?;
        let (url, services) = self.checked_webhook(url, services)?;
        let _serialised = self.webhook_edits.lock().await;
        self.webhook(id).await?;
        self.ensure_free(&services, Some(id)).await?;
        webhooks::update(&self.db, id, &url, &services).await?;
        self.reload_webhooks().await?;
        Ok(self.webhook(id).await?.into())
    }

    /// Deletes a webhook and drops its pending deliveries.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), Error> {
        let id = checked_id(id)?;
        let _serialised = self.webhook_edits.lock().await;
        if !webhooks::delete(&self.db, id).await? {
            return Err(Error::WebhookNotFound(id.to_owned()));
        }
        self.reload_webhooks().await
    }

    /// Issues a new signing secret; retries of pending deliveries are signed with it.
    pub async fn rotate_webhook_secret(&self, id: &str) -> Result<String, Error> {
        let id = checked_id(id)?;
        let _serialised = self.webhook_edits.lock().await;
        self.webhook(id).await?;
        let secret = new_secret();
        webhooks::set_secret(&self.db, id, &secret).await?;
        self.reload_webhooks().await?;
        Ok(secret)
    }

    /// A page of the webhook's deliveries (`offset`, `limit`), newest first, and the total.
    pub async fn deliveries(
        &self,
        id: &str,
        status: Option<DeliveryStatus>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Delivery>, u64), Error> {
        let id = checked_id(id)?;
        self.webhook(id).await?;
        let (rows, total) = webhooks::page(&self.db, id, status, offset, limit).await?;
        Ok((rows.into_iter().map(Delivery::from).collect(), total))
    }

    /// Puts one delivery back in the queue, to be sent again with the same id.
    pub async fn redeliver(&self, id: &str, delivery_id: &str) -> Result<Delivery, Error> {
        let id = checked_id(id)?;
        if uuid::Uuid::parse_str(delivery_id).is_err() {
            return Err(Error::DeliveryNotFound);
        }
        let row = webhooks::requeue(&self.db, id, delivery_id)
            .await?
            .ok_or(Error::DeliveryNotFound)?;
        self.outbox().dispatch(vec![row.clone()]);
        Ok(row.into())
    }

    /// Puts every delivery of the webhook in `status` (failed or delivered) back in the
    /// queue, oldest first; test pings are not sent again. Answers how many.
    pub async fn redeliver_all(&self, id: &str, status: DeliveryStatus) -> Result<u64, Error> {
        let id = checked_id(id)?;
        self.webhook(id).await?;
        let rows = webhooks::requeue_all(&self.db, id, status).await?;
        let requeued = rows.len() as u64;
        self.outbox().dispatch(rows);
        Ok(requeued)
    }

    /// Sends a `ping` event to the webhook now, through the outbox and the dispatcher
    /// like every event, once (never retried), and reports how the receiver answered.
    pub async fn ping_webhook(&self, id: &str) -> Result<PingResult, Error> {
        let id = checked_id(id)?;
        let hook = self.webhook(id).await?;
        let event = GatewayEvent::new(
            EventKind::Ping,
            None,
            events::data(&PingData {
                message: "a test ping from wagate".into(),
                webhook_id: hook.webhook.id.clone(),
            }),
        );
        let row = self.outbox().record_ping(&self.db, &hook.webhook.id, &event).await?;
        let dispatcher = self.outbox().dispatcher().ok_or(Error::DispatcherUnavailable)?;
        // The attempt has the webhook timeout (connect included); the answer may wait
        // for the log to be written too.
        let webhooks = &self.config.webhooks;
        let wait = webhooks.timeout + self.config.network.connect_timeout + self.config.phones.call_timeout;
        let (outcome, duration) = call(&dispatcher, wait, |reply| DispatcherMsg::Ping { row, reply })
            .await
            .map_err(|_| Error::DispatcherUnavailable)?;
        let (delivered, status_code, error) = match outcome {
            Outcome::Delivered(code) => (true, Some(code), None),
            Outcome::Failed { code, error } => (false, code, Some(error)),
            // Deleted while the ping was on its way.
            Outcome::Gone => return Err(Error::WebhookNotFound(id.to_owned())),
        };
        Ok(PingResult {
            delivery_id: event.id.to_string(),
            delivered,
            status_code,
            error,
            duration,
        })
    }

    async fn webhook(&self, id: &str) -> Result<WebhookWithServices, Error> {
        webhooks::find(&self.db, id)
            .await?
            .ok_or_else(|| Error::WebhookNotFound(id.to_owned()))
    }

    /// The URL as the network rules accept it, and the services sorted without repeats.
    fn checked_webhook(&self, url: &str, services: &[Service]) -> Result<(String, Vec<Service>), Error> {
        let url = self
            .url_policy
            .parse(url)
            .map_err(|err| Error::InvalidWebhookUrl(err.to_string()))?;
        let mut services = services.to_vec();
        services.sort();
        services.dedup();
        Ok((url.to_string(), services))
    }

    async fn ensure_free(&self, services: &[Service], except: Option<&str>) -> Result<(), Error> {
        match webhooks::taken(&self.db, services, except).await? {
            Some(taken) => Err(Error::WebhookTaken {
                webhook_id: taken.webhook_id,
                service: taken.service,
            }),
            None => Ok(()),
        }
    }

    async fn reload_webhooks(&self) -> Result<(), Error> {
        Ok(self.outbox().load(&self.db).await?)
    }

    fn outbox(&self) -> &crate::actors::outbox::Outbox {
        &self.phones.shared().outbox
    }
}

/// Webhook ids are UUIDs: anything else names no webhook (and never reaches a query).
fn checked_id(id: &str) -> Result<&str, Error> {
    uuid::Uuid::parse_str(id)
        .map(|_| id)
        .map_err(|_| Error::WebhookNotFound(id.to_owned()))
}

fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}
