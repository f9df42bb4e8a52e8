//! `/api/v1/user/phones/{phone}/…`: send messages (text, media, lists), show typing,
//! check numbers on WhatsApp, read the message history, download a message's file and
//! act on a message (react).

mod actions;
mod compose;
mod dto;
mod media;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::ApiTags;
use super::error::statuses::*;
use super::error::{ApiError, Errors};
use super::pagination::{Pagination, page_params};
use super::phones::PhonePath;
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::domain::Jid;
use crate::engine::Lookup;
pub use actions::ActionsApi;
use compose::{build_message, form_input, json_input, resolve};
pub use dto::*;
pub use media::MediaApi;

#[derive(Default)]
pub struct MessagesApi;

/// Most numbers one has-whatsapp request may check.
const MAX_LOOKUPS: usize = 50;

#[OpenApi(tag = "ApiTags::Messages")]
impl MessagesApi {
    /// Send a message
    ///
    /// Sends text, media (by `mediaLink`, base64 `media`, or a multipart upload) or a list
    /// message, optionally replying to a message and mentioning people. Answers once
    /// WhatsApp accepted the message. Recipient rules: with `@` a JID; without `@` but with
    /// `country` a validated phone number; otherwise 7–15 digits with country code.
    #[oai(path = "/user/phones/:phone/message", method = "post", operation_id = "sendMessage")]
    async fn send(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: SendBody,
    ) -> Result<Json<SentView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT | TOO_MANY_REQUESTS }>> {
        let phone = state.gateway.phone(&phone.0.0)?;
        let input = match body {
            SendBody::Json(Json(req)) => json_input(req)?,
            SendBody::Multipart(form) => form_input(form).await?,
        };
        let message = build_message(&state, &phone, input).await?;
        let sent = phone.send(message, state.config.http.request_timeout).await?;
        Ok(Json(sent.into()))
    }

    /// Show typing
    ///
    /// Shows "typing…" to the recipient (`isTyping: true`) or clears it.
    #[oai(path = "/user/phones/:phone/typing", method = "post", operation_id = "sendTyping")]
    async fn typing(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: Json<TypingRequest>,
    ) -> Result<Json<TypingView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT }>> {
        let body = body.0;
        let chat = resolve(body.recipient.as_deref(), body.country.as_deref(), body.jid.as_deref())?;
        let typing = body.is_typing;
        state.gateway.phone(&phone.0.0)?.typing(chat.clone(), typing).await?;
        Ok(Json(TypingView {
            recipient: chat.to_string(),
            state: if typing { "composing" } else { "paused" }.to_owned(),
        }))
    }

    /// Check numbers on WhatsApp
    ///
    /// Whether a number (`recipient`) or up to 50 numbers (`recipients`) have WhatsApp.
    /// Answers are cached briefly (`cache.lookup_ttl`).
    #[oai(
        path = "/user/phones/:phone/has-whatsapp",
        method = "post",
        operation_id = "hasWhatsapp"
    )]
    async fn has_whatsapp(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: Json<HasWhatsappRequest>,
    ) -> Result<Json<HasWhatsappView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT }>> {
        let body = body.0;
        let (asked, batch) = match (body.recipient, body.recipients) {
            (Some(one), None) => (vec![one], false),
            (None, Some(many)) if !many.is_empty() => (many, true),
            (None, Some(_)) => {
                return Err(ApiError::bad_request("invalid_recipient", "`recipients` is empty").into());
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_recipient",
                    "send either `recipient` or `recipients`, not both",
                )
                .into());
            }
            (None, None) => {
                return Err(
                    ApiError::bad_request("invalid_recipient", "`recipient` or `recipients` is required").into(),
                );
            }
        };
        if asked.len() > MAX_LOOKUPS {
            return Err(ApiError::bad_request(
                "too_many_recipients",
                format!("at most {MAX_LOOKUPS} numbers per request"),
            )
            .into());
        }
        let mut numbers = Vec::with_capacity(asked.len());
        for item in &asked {
            let jid = resolve(Some(item), body.country.as_deref(), None)?;
            let digits = jid
                .phone_digits()
                .ok_or_else(|| ApiError::bad_request("invalid_recipient", format!("`{item}` is not a phone number")))?;
            numbers.push(digits.to_owned());
        }
        let found: Vec<Lookup> = state.gateway.phone(&phone.0.0)?.lookup(numbers.clone()).await?;
        let mut checks: Vec<NumberCheck> = asked
            .into_iter()
            .zip(numbers)
            .map(|(recipient, number)| {
                let lookup = found.iter().find(|l| l.number == number);
                NumberCheck {
                    recipient,
                    jid: lookup.map_or_else(|| Jid::user(&number).to_string(), |l| l.jid.to_string()),
                    exists: lookup.is_some_and(|l| l.exists),
                    lid: lookup.and_then(|l| l.lid.as_ref().map(ToString::to_string)),
                    is_business: lookup.and_then(|l| l.is_business),
                }
            })
            .collect();
        Ok(Json(if batch {
            HasWhatsappView::Many(NumberCheckList { data: checks })
        } else {
            HasWhatsappView::One(checks.remove(0))
        }))
    }

    /// Message history
    ///
    /// Every message the phone sent and received, newest first, with delivery status kept
    /// up to date from receipts. Filter by chat with `recipient` (and `country`) or `jid`.
    #[oai(path = "/user/phones/:phone/messages", method = "get", operation_id = "listMessages")]
    #[allow(clippy::too_many_arguments)]
    async fn history(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
        page: Query<Option<u64>>,
        /// Messages per page (default 20; larger values are capped at `messaging.history_max_limit`).
        #[oai(validator(minimum(value = "1")))]
        limit: Query<Option<u64>>,
        /// Only this chat: a JID, a number with `country`, or digits with country code.
        recipient: Query<Option<String>>,
        country: Query<Option<String>>,
        /// Only this chat, by JID.
        jid: Query<Option<String>>,
    ) -> Result<Json<MessagePage>, Errors<{ SIGNED_IN | PHONE }>> {
        let phone = state.gateway.phone(&phone.0.0)?;
        let (page, limit) = page_params(page.0, limit.0, 20, state.config.messaging.history_max_limit)?;
        let chat = if recipient.0.is_some() || jid.0.is_some() {
            Some(resolve(recipient.0.as_deref(), country.0.as_deref(), jid.0.as_deref())?.to_string())
        } else {
            None
        };
        let (rows, total) = phone.history(chat.as_deref(), page, limit).await?;
        Ok(Json(MessagePage {
            data: rows.into_iter().map(MessageView::from).collect(),
            pagination: Pagination::new(page, limit, total),
        }))
    }
}
