//! `/api/v1/user/phones/{phone}/messages/{messageId}/…` and `…/chats/{chatId}/…`: what a
//! phone does to messages of its history: react to one, mark one or a chat read.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::super::ApiTags;
use super::super::error::statuses::*;
use super::super::error::{ApiError, Errors};
use super::super::phones::PhonePath;
use super::SentView;
use crate::api::AppState;
use crate::api::scheme::Owner;

#[derive(Default)]
pub struct ActionsApi;

/// A reaction to a message.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReactionRequest {
    /// One emoji, e.g. `👍`; an empty string takes the phone's reaction back.
    #[oai(validator(max_length = 32))]
    emoji: String,
}

/// How many received messages were marked read.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReadView {
    /// Messages marked read now (those read before are not counted again).
    read: u64,
}

/// Most messages one chat read marks at once.
const READ_BATCH: u64 = 1_000;

#[OpenApi(tag = "ApiTags::Messages")]
impl ActionsApi {
    /// Mark a message read
    ///
    /// Sends a read receipt for a received message: its sender sees it read (blue ticks,
    /// when their privacy settings allow). History shows it `read`. 409 `invalid_target`
    /// for a message this phone sent.
    #[oai(
        path = "/user/phones/:phone/messages/:message_id/read",
        method = "post",
        operation_id = "markMessageRead"
    )]
    async fn read_message(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        /// The message's WhatsApp id.
        message_id: Path<String>,
    ) -> Result<Json<ReadView>, Errors<{ SIGNED_IN | PHONE | CONFLICT }>> {
        let read = state.gateway.phone(&phone.0.0)?.mark_read(&message_id.0).await?;
        Ok(Json(ReadView { read }))
    }

    /// Mark a chat read
    ///
    /// Sends read receipts for every received message of the chat not yet read (up to
    /// 1,000 at once, oldest first; call again for more). `chatId` is a JID (a person or a
    /// group) or a phone number with country code.
    #[oai(
        path = "/user/phones/:phone/chats/:chat_id/read",
        method = "post",
        operation_id = "markChatRead"
    )]
    async fn read_chat(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        /// The chat: a JID, or a phone number with country code.
        chat_id: Path<String>,
    ) -> Result<Json<ReadView>, Errors<{ SIGNED_IN | PHONE | CONFLICT }>> {
        let chat = super::compose::resolve(Some(&chat_id.0), None, None)?;
        let read = state
            .gateway
            .phone(&phone.0.0)?
            .mark_chat_read(&chat, READ_BATCH)
            .await?;
        Ok(Json(ReadView { read }))
    }

    /// React to a message
    ///
    /// Reacts with an emoji to a message of this phone's history (received or sent),
    /// in its chat; an empty `emoji` takes the reaction back. Sent like any message (paced,
    /// answered once WhatsApp accepted it) and kept in history as `reaction` (or
    /// `reaction_removed`) with `targetId`. 404 `message_not_found` for an id the history
    /// does not hold; 409 `invalid_target` for a reaction.
    #[oai(
        path = "/user/phones/:phone/messages/:message_id/reaction",
        method = "post",
        operation_id = "reactToMessage"
    )]
    async fn react(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        /// The message's WhatsApp id.
        message_id: Path<String>,
        body: Json<ReactionRequest>,
    ) -> Result<Json<SentView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT | TOO_MANY_REQUESTS }>> {
        let emoji = body.0.emoji.trim().to_owned();
        if emoji.chars().any(|c| c.is_control() || c.is_ascii_alphabetic()) || emoji.chars().count() > 16 {
            return Err(
                ApiError::bad_request("invalid_emoji", "`emoji` is one emoji, or empty to take it back").into(),
            );
        }
        let phone = state.gateway.phone(&phone.0.0)?;
        let sent = phone
            .react(&message_id.0, emoji, state.config.http.request_timeout)
            .await?;
        Ok(Json(sent.into()))
    }
}
