//! `/api/v1/user/webhooks`: where events are delivered, their delivery log, redelivery and
//! a signed test ping. One webhook per service.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::Confirmation;
use super::error::statuses::*;
use super::error::{ApiError, Errors};
use super::pagination::{Pagination, page_params};
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::domain::{Delivery, DeliveryStatus, Service, Webhook};

#[derive(Default)]
pub struct WebhooksApi;

/// A webhook's URL and the events it receives.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookRequest {
    /// Where to POST events: an http(s) URL.
    #[oai(validator(min_length = 1, max_length = 2048))]
    url: String,
    /// The events to receive.
    #[oai(validator(min_items = 1, max_items = 5))]
    services: Vec<Service>,
}

/// A webhook: where events are POSTed, and which ones (never its secret).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookView {
    /// The webhook's id.
    id: String,
    /// Where events are POSTed.
    url: String,
    services: Vec<Service>,
    /// When the webhook was created.
    created_at: DateTime<Utc>,
    /// When its URL, services or secret last changed.
    updated_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookView {
    fn from(webhook: Webhook) -> Self {
        Self {
            id: webhook.id,
            url: webhook.url,
            services: webhook.services,
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
        }
    }
}

/// A new webhook, with its signing secret (shown only now).
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

/// Every webhook, with the services it receives.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookList {
    data: Vec<WebhookView>,
}

/// A webhook's new signing secret.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SecretView {
    /// The webhook's id.
    id: String,
    /// The new signing secret, shown only now; the old one stops working at once.
    secret: String,
}

/// One webhook delivery: an event sent (or to be sent) to the webhook, with its attempts.
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
    /// When the event was recorded.
    created_at: DateTime<Utc>,
    /// When the delivery last changed.
    updated_at: DateTime<Utc>,
    /// When the receiver answered 2xx.
    delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> Self {
        Self {
            id: delivery.id,
            event: delivery.event,
            phone: delivery.phone,
            status: delivery.status,
            attempts: delivery.attempts,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            next_attempt_at: delivery.next_attempt_at,
            created_at: delivery.created_at,
            updated_at: delivery.updated_at,
            delivered_at: delivery.delivered_at,
        }
    }
}

/// A page of a webhook's deliveries.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeliveryPage {
    /// Newest first.
    data: Vec<DeliveryView>,
    pagination: Pagination,
}

/// How many deliveries went back in the queue.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RedeliveredView {
    /// How many deliveries were put back in the queue.
    requeued: u64,
}

/// How the webhook answered a test ping.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TestResult {
    /// Whether the receiver answered 2xx.
    delivered: bool,
    /// The receiver's HTTP status, if it answered.
    status_code: Option<u16>,
    /// Why the ping was not delivered.
    error: Option<String>,
    /// How long the attempt took, in milliseconds.
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
    async fn list(&self, _owner: Owner, state: Data<&AppState>) -> Result<Json<WebhookList>, Errors<{ SIGNED_IN }>> {
        let hooks = state.gateway.webhooks().await?;
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
    ) -> Result<WebhookCreated, Errors<{ SIGNED_IN | BODY | CONFLICT }>> {
        let created = state.gateway.create_webhook(&body.url, &body.services).await?;
        Ok(WebhookCreated::Created(Json(WebhookCreatedView {
            webhook: created.webhook.into(),
            secret: created.secret,
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
    ) -> Result<Json<WebhookView>, Errors<{ SIGNED_IN | BODY | NOT_FOUND | CONFLICT }>> {
        let updated = state.gateway.update_webhook(&id, &body.url, &body.services).await?;
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
    ) -> Result<Json<Confirmation>, Errors<{ SIGNED_IN | NOT_FOUND }>> {
        state.gateway.delete_webhook(&id).await?;
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
    ) -> Result<Json<SecretView>, Errors<{ SIGNED_IN | NOT_FOUND }>> {
        let secret = state.gateway.rotate_webhook_secret(&id).await?;
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
    ) -> Result<Json<DeliveryPage>, Errors<{ SIGNED_IN | BAD_REQUEST | NOT_FOUND }>> {
        let (page, limit) = page_params(page.0, limit.0, 20, 100)?;
        let offset = (page - 1).saturating_mul(limit);
        let status = status.0;
        let (rows, total) = state.gateway.deliveries(&id, status, offset, limit).await?;
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
    ) -> Result<Json<DeliveryView>, Errors<{ SIGNED_IN | NOT_FOUND }>> {
        let row = state.gateway.redeliver(&id, &delivery_id).await?;
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
    ) -> Result<Json<RedeliveredView>, Errors<{ SIGNED_IN | BAD_REQUEST | NOT_FOUND }>> {
        let status = status.0.unwrap_or(DeliveryStatus::Failed);
        if status == DeliveryStatus::Pending {
            return Err(ApiError::bad_request(
                "invalid_status",
                "pending deliveries are queued already; choose status=failed or status=delivered",
            )
            .into());
        }
        let requeued = state.gateway.redeliver_all(&id, status).await?;
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
    ) -> Result<Json<TestResult>, Errors<{ SIGNED_IN | NOT_FOUND }>> {
        let ping = state.gateway.ping_webhook(&id).await?;
        let duration_ms = u64::try_from(ping.duration.as_millis()).unwrap_or(u64::MAX);
        Ok(Json(TestResult {
            delivered: ping.delivered,
            status_code: ping.status_code,
            error: ping.error,
            duration_ms,
            delivery_id: ping.delivery_id,
        }))
    }
}
