//! `/api/v1/user/webhooks`: where events are delivered, their delivery log, redelivery and
//! a signed test ping. One webhook per service.

use std::time::Instant;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use rand::Rng;

use super::ApiTags;
use super::auth::Confirmation;
use super::error::ApiError;
use super::pagination::{Pagination, page_params};
use crate::actors::webhook::{Outcome, attempt};
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::db::webhooks::{self, NewDelivery, WebhookWithServices, delivery};
use crate::events::{self, EventKind, GatewayEvent, PingData};

#[derive(Default)]
pub struct WebhooksApi;

/// An event a webhook can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum)]
pub enum Service {
    /// A message arrived at one of the phones.
    #[oai(rename = "message.received")]
    MessageReceived,
    /// A phone sent a message (through the API or from the phone itself).
    #[oai(rename = "message.sent")]
    MessageSent,
    /// A sent message was delivered or read, or failed.
    #[oai(rename = "message.status")]
    MessageStatus,
    /// A phone's connection changed: QR code (with a count), pairing code, connected,
    /// reconnecting, disconnected, logged out, failed.
    #[oai(rename = "phone.status")]
    PhoneStatus,
}

impl Service {
    fn kind(self) -> EventKind {
        match self {
            Service::MessageReceived => EventKind::MessageReceived,
            Service::MessageSent => EventKind::MessageSent,
            Service::MessageStatus => EventKind::MessageStatus,
            Service::PhoneStatus => EventKind::PhoneStatus,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            Service::MessageReceived,
            Service::MessageSent,
            Service::MessageStatus,
            Service::PhoneStatus,
        ]
        .into_iter()
        .find(|s| s.kind().as_str() == name)
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookRequest {
    /// Where to POST events: an http(s) URL.
    #[oai(validator(min_length = 1, max_length = 2048))]
    url: String,
    /// The events to receive.
    #[oai(validator(min_items = 1, max_items = 4))]
    services: Vec<Service>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookView {
    id: String,
    url: String,
    services: Vec<Service>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<WebhookWithServices> for WebhookView {
    fn from(w: WebhookWithServices) -> Self {
        Self {
            services: w.services.iter().filter_map(|s| Service::parse(s)).collect(),
            id: w.webhook.id,
            url: w.webhook.url,
            created_at: w.webhook.created_at,
            updated_at: w.webhook.updated_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookCreatedView {
    #[oai(flatten)]
    webhook: WebhookView,
    /// The signing secret: shown only now. Verify each request's `X-Wagate-Signature`
    /// (`sha256=` + hex HMAC-SHA256 of `"{X-Wagate-Timestamp}.{body}"` with this secret).
    secret: String,
}

#[derive(ApiResponse)]
pub enum WebhookCreated {
    /// Created; the signing secret is in the body, shown only this once.
    #[oai(status = 201)]
    Created(Json<WebhookCreatedView>),
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookList {
    data: Vec<WebhookView>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SecretView {
    id: String,
    /// The new signing secret, shown only now; the old one stops working at once.
    secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting to be sent, or to be retried.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after `webhooks.give_up_after` of failed attempts; redeliver it by hand.
    Failed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => webhooks::PENDING,
            DeliveryStatus::Delivered => webhooks::DELIVERED,
            DeliveryStatus::Failed => webhooks::FAILED,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            webhooks::DELIVERED => DeliveryStatus::Delivered,
            webhooks::FAILED => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeliveryView {
    /// The event id, sent as `X-Wagate-Delivery`; the same on every retry.
    id: String,
    /// The event, e.g. `message.received` (or `ping` for test pings).
    event: String,
    /// The phone the event is about.
    phone: Option<String>,
    status: DeliveryStatus,
    /// Attempts made so far.
    attempts: i32,
    /// HTTP status of the last attempt, if the receiver answered.
    last_status_code: Option<i32>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// When the next attempt is due, while pending.
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<delivery::Model> for DeliveryView {
    fn from(row: delivery::Model) -> Self {
        let status = DeliveryStatus::parse(&row.status);
        Self {
            id: row.event_id,
            event: row.event,
            phone: row.phone,
            next_attempt_at: (status == DeliveryStatus::Pending).then_some(row.next_attempt_at),
            status,
            attempts: row.attempts,
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            created_at: row.created_at,
            updated_at: row.updated_at,
            delivered_at: row.delivered_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeliveryPage {
    /// Newest first.
    data: Vec<DeliveryView>,
    pagination: Pagination,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RedeliveredView {
    /// How many deliveries were put back in the queue.
    requeued: u64,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TestResult {
    /// Whether the receiver answered 2xx.
    delivered: bool,
    status_code: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
    /// The ping's delivery id, as sent in `X-Wagate-Delivery`.
    delivery_id: String,
}

#[OpenApi(prefix_path = "/user/webhooks", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// List webhooks
    ///
    /// Every webhook and the services it receives (secrets are never shown again).
    #[oai(path = "/", method = "get", operation_id = "listWebhooks")]
    async fn list(&self, _owner: Owner, state: Data<&AppState>) -> Result<Json<WebhookList>, ApiError> {
        let hooks = webhooks::all(&state.db).await?;
        Ok(Json(WebhookList {
            data: hooks.into_iter().map(WebhookView::from).collect(),
        }))
    }

    /// Create a webhook
    ///
    /// Events of the chosen services are POSTed to `url`, signed, retried until delivered.
    /// Only one webhook per service: a service already taken answers 409 `webhook_exists`
    /// with the existing webhook's id (replace it with `PUT`).
    #[oai(path = "/", method = "post", operation_id = "createWebhook")]
    async fn create(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        body: Json<WebhookRequest>,
    ) -> Result<WebhookCreated, ApiError> {
        let (url, services) = validate(&state, body.0)?;
        let _serialised = state.webhook_edits.lock().await;
        ensure_free(&state, &services, None).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let secret = new_secret();
        webhooks::insert(&state.db, &id, &url, &secret, &services).await?;
        reload(&state).await?;
        let created = webhooks::find(&state.db, &id).await?.ok_or_else(|| not_found(&id))?;
        Ok(WebhookCreated::Created(Json(WebhookCreatedView {
            webhook: created.into(),
            secret,
        })))
    }

    /// Replace a webhook
    ///
    /// Sets the webhook's URL and services. Its secret and pending deliveries stay.
    #[oai(path = "/:id", method = "put", operation_id = "updateWebhook")]
    async fn update(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        id: Path<String>,
        body: Json<WebhookRequest>,
    ) -> Result<Json<WebhookView>, ApiError> {
        checked(&id)?;
        let (url, services) = validate(&state, body.0)?;
        let _serialised = state.webhook_edits.lock().await;
        webhooks::find(&state.db, &id).await?.ok_or_else(|| not_found(&id))?;
        ensure_free(&state, &services, Some(&id)).await?;
        webhooks::update(&state.db, &id, &url, &services).await?;
        reload(&state).await?;
        let updated = webhooks::find(&state.db, &id).await?.ok_or_else(|| not_found(&id))?;
        Ok(Json(updated.into()))
    }

    /// Delete a webhook
    ///
    /// Stops deliveries to it; its pending deliveries are dropped.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteWebhook")]
    async fn delete(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Json<Confirmation>, ApiError> {
        checked(&id)?;
        let _serialised = state.webhook_edits.lock().await;
        if !webhooks::delete(&state.db, &id).await? {
            return Err(not_found(&id));
        }
        reload(&state).await?;
        Ok(Confirmation::new("webhook deleted"))
    }

    /// Rotate the signing secret
    ///
    /// Issues a new secret, shown only in this answer; retries of pending deliveries are
    /// signed with it too.
    #[oai(path = "/:id/rotate-secret", method = "post", operation_id = "rotateWebhookSecret")]
    async fn rotate_secret(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Json<SecretView>, ApiError> {
        checked(&id)?;
        let _serialised = state.webhook_edits.lock().await;
        webhooks::find(&state.db, &id).await?.ok_or_else(|| not_found(&id))?;
        let secret = new_secret();
        webhooks::set_secret(&state.db, &id, &secret).await?;
        reload(&state).await?;
        Ok(Json(SecretView { id: id.0, secret }))
    }

    /// Delivery log
    ///
    /// The webhook's deliveries, newest first: event, status, attempts, the last response
    /// code or error, and times.
    #[oai(path = "/:id/deliveries", method = "get", operation_id = "listWebhookDeliveries")]
    async fn deliveries(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        id: Path<String>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
        page: Query<Option<u64>>,
        /// Deliveries per page (default 20, at most 100).
        #[oai(validator(minimum(value = "1")))]
        limit: Query<Option<u64>>,
        /// Only deliveries in this state.
        status: Query<Option<DeliveryStatus>>,
    ) -> Result<Json<DeliveryPage>, ApiError> {
        checked(&id)?;
        webhooks::find(&state.db, &id).await?.ok_or_else(|| not_found(&id))?;
        let (page, limit) = page_params(page.0, limit.0, 20, 100)?;
        let offset = (page - 1).saturating_mul(limit);
        let (rows, total) = webhooks::page(&state.db, &id, status.0.map(DeliveryStatus::as_str), offset, limit).await?;
        Ok(Json(DeliveryPage {
            data: rows.into_iter().map(DeliveryView::from).collect(),
            pagination: Pagination::new(page, limit, total),
        }))
    }

    /// Redeliver
    ///
    /// Puts a delivery back in the queue (whatever its state), to be sent again with the
    /// same `X-Wagate-Delivery` id.
    #[oai(
        path = "/:id/deliveries/:delivery_id/redeliver",
        method = "post",
        operation_id = "redeliverWebhookDelivery"
    )]
    async fn redeliver(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        id: Path<String>,
        /// The delivery (event) id.
        delivery_id: Path<String>,
    ) -> Result<Json<DeliveryView>, ApiError> {
        checked(&id)?;
        if uuid::Uuid::parse_str(&delivery_id).is_err() {
            return Err(ApiError::not_found(
                "delivery_not_found",
                "this webhook has no delivery with that id",
            ));
        }
        let row = webhooks::requeue(&state.db, &id, &delivery_id)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery_not_found", "this webhook has no delivery with that id"))?;
        state.phones.shared().outbox.dispatch(vec![row.clone()]);
        Ok(Json(row.into()))
    }

    /// Redeliver many
    ///
    /// Puts every delivery of the webhook in the given state (`failed` by default) back in
    /// the queue, oldest first, each for a new run of attempts with the same
    /// `X-Wagate-Delivery` id as before. Test pings are not sent again.
    #[oai(
        path = "/:id/deliveries/redeliver",
        method = "post",
        operation_id = "redeliverWebhookDeliveries"
    )]
    async fn redeliver_all(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        id: Path<String>,
        /// Which deliveries: `failed` (given up) or `delivered` (to replay them).
        status: Query<Option<DeliveryStatus>>,
    ) -> Result<Json<RedeliveredView>, ApiError> {
        checked(&id)?;
        let status = status.0.unwrap_or(DeliveryStatus::Failed);
        if status == DeliveryStatus::Pending {
            return Err(ApiError::bad_request(
                "invalid_status",
                "pending deliveries are queued already; choose status=failed or status=delivered",
            ));
        }
        webhooks::find(&state.db, &id).await?.ok_or_else(|| not_found(&id))?;
        let rows = webhooks::requeue_all(&state.db, &id, status.as_str()).await?;
        let requeued = rows.len() as u64;
        state.phones.shared().outbox.dispatch(rows);
        Ok(Json(RedeliveredView { requeued }))
    }

    /// Send a test ping
    ///
    /// POSTs a signed `ping` event to the webhook now and reports how the receiver answered.
    /// The ping appears in the delivery log; it is not retried.
    #[oai(path = "/:id/test", method = "post", operation_id = "testWebhook")]
    async fn test(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Json<TestResult>, ApiError> {
        checked(&id)?;
        let hook = webhooks::find(&state.db, &id).await?.ok_or_else(|| not_found(&id))?;
        // The same envelope as every event, so a receiver parses a ping like the rest.
        let event = GatewayEvent::new(
            EventKind::Ping,
            None,
            events::data(&PingData {
                message: "a test ping from wagate".into(),
                webhook_id: hook.webhook.id.clone(),
            }),
        );
        let event_id = event.id.to_string();
        let payload = serde_json::to_string(&event).map_err(|e| ApiError::internal(&e))?;
        // Logged as a failed attempt until the answer says otherwise, so a crash
        // mid-request does not leave a pending ping for the dispatcher to retry.
        let row = webhooks::insert_delivery(
            &state.db,
            NewDelivery {
                event_id: &event_id,
                webhook_id: &hook.webhook.id,
                event: EventKind::Ping.as_str(),
                phone: None,
                payload: &payload,
                status: webhooks::FAILED,
            },
        )
        .await?;
        let started = Instant::now();
        let outcome = attempt(&state.webhook_client, &hook.webhook.url, &hook.webhook.secret, &row).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let result = match outcome {
            Outcome::Delivered(code) => {
                webhooks::mark_delivered(&state.db, &[(row.id, 1, code)]).await?;
                TestResult {
                    delivered: true,
                    status_code: Some(code),
                    error: None,
                    duration_ms,
                    delivery_id: event_id,
                }
            }
            Outcome::Failed { code, error } => {
                webhooks::record_failure(&state.db, row.id, 1, code, &error, None).await?;
                TestResult {
                    delivered: false,
                    status_code: code,
                    error: Some(error),
                    duration_ms,
                    delivery_id: event_id,
                }
            }
            Outcome::Gone => return Err(not_found(&id)),
        };
        Ok(Json(result))
    }
}

fn validate(state: &AppState, req: WebhookRequest) -> Result<(String, Vec<String>), ApiError> {
    let url = state
        .http
        .policy()
        .parse(&req.url)
        .map_err(|err| ApiError::bad_request("invalid_webhook_url", err.to_string()))?;
    let mut services: Vec<String> = req.services.iter().map(|s| s.kind().as_str().to_owned()).collect();
    services.sort();
    services.dedup();
    Ok((url.to_string(), services))
}

async fn ensure_free(state: &AppState, services: &[String], except: Option<&str>) -> Result<(), ApiError> {
    if let Some(taken) = webhooks::taken(&state.db, services, except).await? {
        return Err(ApiError::conflict(
            "webhook_exists",
            format!(
                "webhook {} already receives {}; replace it with PUT /api/v1/user/webhooks/{}",
                taken.webhook_id, taken.service, taken.webhook_id
            ),
        )
        .with_existing_id(taken.webhook_id));
    }
    Ok(())
}

async fn reload(state: &AppState) -> Result<(), ApiError> {
    state.phones.shared().outbox.load(&state.db).await?;
    Ok(())
}

/// Webhook ids are UUIDs: anything else names no webhook (and never reaches a query).
fn checked(id: &str) -> Result<&str, ApiError> {
    uuid::Uuid::parse_str(id).map(|_| id).map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("webhook_not_found", format!("no webhook has the id {id}"))
}

fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}
