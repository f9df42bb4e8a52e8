//! `/api/v1/ws`: the live event stream, and the description of the webhook requests the
//! server makes (the same events, as documented payloads in the spec's `webhooks`).

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use std::time::Duration;

use poem::Request;
use poem::web::Data;
use poem::web::websocket::{BoxWebSocketUpgraded, CloseCode, Message, WebSocket};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi, Union, Webhook};
use tokio::sync::broadcast::error::RecvError;

use super::ApiTags;
use super::error::Errors;
use super::error::statuses::*;
use crate::api::AppState;
use crate::api::scheme::{Owner, presented_token};
use crate::domain::{EventKind, Service};
use crate::events::{MessageEventData, PhoneStatusData, PingData};

/// How often an open stream checks that its token is still valid (logout, a password
/// change, revocation and expiry end it within this time).
const RECHECK: Duration = Duration::from_secs(1);

/// The close code of a stream whose token stopped being valid.
const SESSION_ENDED: u16 = 4001;

#[derive(Default)]
pub struct EventsApi;

#[OpenApi(tag = "ApiTags::Events")]
impl EventsApi {
    /// Live events (WebSocket)
    ///
    /// Upgrades to a WebSocket that streams every event as a JSON text message,
    /// `{"id","event","phone","timestamp","data"}`: the same events webhooks receive
    /// (`phone.status` with QR codes and connection changes, `message.received`,
    /// `message.sent`, `message.status`, `message.media`). Authenticate with the session cookie or a Bearer
    /// token. A client too slow to keep up is sent `{"event":"lagged","missed":N}`. When
    /// the token stops being valid (logout, password change, revocation, expiry) the
    /// stream is closed with code 4001.
    #[oai(path = "/ws", method = "get", operation_id = "streamEvents")]
    async fn stream(
        &self,
        owner: Owner,
        state: Data<&AppState>,
        req: &Request,
        ws: WebSocket,
    ) -> Result<BoxWebSocketUpgraded, Errors<{ SIGNED_IN | BAD_REQUEST }>> {
        let grant = owner.grant;
        let mut events = state.gateway.subscribe();
        let token = presented_token(req, state.auth.cookie_secure()).unwrap_or_default();
        let auth = std::sync::Arc::clone(&state.auth);
        Ok(ws
            .on_upgrade(move |socket| async move {
                let (mut sink, mut incoming) = socket.split();
                let mut recheck = tokio::time::interval(RECHECK);
                loop {
                    tokio::select! {
                        _ = recheck.tick() => {
                            if auth.authenticate(&token).is_err() {
                                let close = Some((CloseCode::from(SESSION_ENDED), "the session ended; log in again".to_owned()));
                                let _ = sink.send(Message::Close(close)).await;
                                break;
                            }
                        }
                        event = events.recv() => {
                            let text = match event {
                                // A phone-limited token sees only its phones' events.
                                Ok(event) if !grant.all_phones()
                                    && !event.phone.as_ref().is_some_and(|p| grant.allows_phone(p.as_str())) => continue,
                                Ok(event) => serde_json::to_string(&*event).unwrap_or_default(),
                                Err(RecvError::Lagged(missed)) => serde_json::json!({"event": "lagged", "missed": missed}).to_string(),
                                Err(RecvError::Closed) => break,
                            };
                            if sink.send(Message::Text(text)).await.is_err() {
                                break;
                            }
                        }
                        message = incoming.next() => match message {
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                            Some(Ok(Message::Ping(data))) => {
                                let _ = sink.send(Message::Pong(data)).await;
                            }
                            Some(Ok(_)) => {}
                        },
                    }
                }
            })
            .boxed())
    }
}

/// The events about messages.
#[derive(Debug, Clone, Copy, Enum)]
pub enum MessageEventKind {
    /// A message arrived at one of the phones (it is stored before the request).
    #[oai(rename = "message.received")]
    MessageReceived,
    /// A phone sent a message, through the API or from the phone itself.
    #[oai(rename = "message.sent")]
    MessageSent,
    /// A sent message was delivered or read, or failed.
    #[oai(rename = "message.status")]
    MessageStatus,
    /// A received file was downloaded and kept (`media.status` is `stored`), or could not
    /// be (`failed`).
    #[oai(rename = "message.media")]
    MessageMedia,
}

/// The event about a phone's connection.
#[derive(Debug, Clone, Copy, Enum)]
pub enum PhoneStatusEventKind {
    #[oai(rename = "phone.status")]
    PhoneStatus,
}

/// The event of a test ping.
#[derive(Debug, Clone, Copy, Enum)]
pub enum PingEventKind {
    #[oai(rename = "ping")]
    Ping,
}

/// The body of every message webhook request.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessageEvent {
    /// The event id; also the `X-Wagate-Delivery` header, the same on every retry.
    id: String,
    event: MessageEventKind,
    /// The gateway phone, E.164.
    phone: String,
    /// When the event happened.
    timestamp: DateTime<Utc>,
    data: MessageEventData,
}

/// The body of a `phone.status` webhook request.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PhoneStatusEvent {
    /// The event id; also the `X-Wagate-Delivery` header, the same on every retry.
    id: String,
    event: PhoneStatusEventKind,
    /// The gateway phone, E.164.
    phone: String,
    /// When the event happened.
    timestamp: DateTime<Utc>,
    data: PhoneStatusData,
}

/// The body of a test ping (`POST /user/webhooks/{id}/test`): the envelope of every event,
/// without a phone.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PingEvent {
    /// The event id; also the `X-Wagate-Delivery` header.
    id: String,
    event: PingEventKind,
    /// Always null: a ping is about no phone.
    phone: Option<String>,
    /// When the event happened.
    timestamp: DateTime<Utc>,
    data: PingData,
}

/// The body of a webhook request: a message event, a phone event or a test ping, told
/// apart by `event` (see [`spec_json`](super::spec_json), which adds the discriminator).
#[derive(Debug, Union)]
#[oai(one_of)]
pub enum WebhookBody {
    Message(Box<MessageEvent>),
    Phone(PhoneStatusEvent),
    Ping(PingEvent),
}

/// The schema of [`WebhookBody`] a kind of event has: every event the gateway emits names
/// one, so the discriminator cannot miss an event.
pub fn webhook_schema(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Service(
            Service::MessageReceived | Service::MessageSent | Service::MessageStatus | Service::MessageMedia,
        ) => "MessageEvent",
        EventKind::Service(Service::PhoneStatus) => "PhoneStatusEvent",
        EventKind::Ping => "PingEvent",
    }
}

/// Requests the server makes to your webhook URL.
#[Webhook(tag = "ApiTags::Webhooks")]
pub trait WagateWebhooks: Sync {
    /// An event for your webhook
    ///
    /// POSTed to the URL of the webhook that receives the event's service:
    /// `message.received` (a message arrived; it is stored before this request),
    /// `message.sent` (a phone sent a message, through the API or from the phone),
    /// `message.status` (a sent message was delivered, read, or refused: `failed`),
    /// `message.media` (a received file was downloaded: `media.status` is `stored`, with
    /// its `url`; or `failed`) and `phone.status` (connection changes, QR codes with a count, pairing codes), and
    /// `ping` (a test ping, sent on request).
    ///
    /// Headers: `X-Wagate-Event` (the event name), `X-Wagate-Delivery` (the event id,
    /// the same on every retry: use it to drop duplicates), `X-Wagate-Timestamp` (unix
    /// seconds) and `X-Wagate-Signature`: `sha256=` and the hex HMAC-SHA256 of
    /// `"{X-Wagate-Timestamp}.{raw body}"` keyed with the webhook's secret. Answer 2xx to
    /// acknowledge; anything else, or no answer in time, is retried with backoff. Each
    /// phone's events arrive in order.
    #[oai(name = "event", method = "post", operation_id = "onEvent")]
    fn event(&self, body: Json<WebhookBody>);
}
