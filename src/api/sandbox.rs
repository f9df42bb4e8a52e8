//! `/api/v1/sandbox`: control of the simulated WhatsApp network. Every route answers 404
//! `sandbox_disabled` unless `engine = "sandbox"`.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use super::auth::Confirmation;
use super::error::statuses::*;
use super::error::{ApiError, Errors};
use super::phones::PhonePath;
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::domain::{ContactCard, Details, Location, MediaKind, PhoneNumber};
use crate::engine::sandbox::{Fault, Received, SandboxError, SandboxNetwork};
use crate::engine::{InboundContent, OutgoingContent};

#[derive(Default)]
pub struct SandboxApi;

/// A virtual account to register on the sandbox network.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CreateAccountRequest {
    /// The virtual account's number, with country code.
    #[oai(validator(max_length = 32))]
    phone: String,
    /// The name it shows (its push name).
    #[oai(validator(min_length = 1, max_length = 100))]
    name: String,
}

/// A virtual account on the sandbox network.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AccountView {
    /// The account's number in E.164 form.
    phone: String,
    /// The account's JID.
    jid: String,
    /// The name it shows (its push name).
    name: String,
    /// When the account was registered.
    created_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum AccountCreated {
    /// The account exists on the sandbox network.
    #[oai(status = 201)]
    Created(Json<AccountView>),
}

/// The media of a received message (its metadata).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReceivedMediaView {
    /// image, video, audio, document or sticker.
    kind: String,
    /// The file's MIME type.
    mime_type: String,
    /// The file's name, when it has one.
    file_name: Option<String>,
    /// Size in bytes.
    size: u64,
    /// Sent as a voice note.
    voice_note: bool,
}

/// A row of a received list message.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReceivedListRowView {
    /// The row's id, returned in the reply when it is picked.
    id: String,
    /// The row's title.
    title: String,
    /// The row's description.
    description: Option<String>,
}

/// A section of a received list message.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReceivedListSectionView {
    /// The section's title.
    title: String,
    rows: Vec<ReceivedListRowView>,
}

/// A received list message: a button that opens sections of rows to pick from.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReceivedListView {
    /// The header above the body; empty for none.
    title: String,
    /// The text above the button.
    body: String,
    /// The text below the body.
    footer: Option<String>,
    /// The button's label.
    button_text: String,
    sections: Vec<ReceivedListSectionView>,
}

/// A message a virtual account received from a gateway phone.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReceivedView {
    /// The message id the sending phone got back.
    id: String,
    /// The gateway phone that sent it.
    from: String,
    /// The group it was sent to, for group messages.
    group: Option<String>,
    /// text, media, list, reaction, location or contacts.
    r#type: String,
    /// The text, the media's caption, or the list's body.
    text: Option<String>,
    media: Option<ReceivedMediaView>,
    list: Option<ReceivedListView>,
    /// The id of the message this one replies to.
    quoted_id: Option<String>,
    /// For a reaction: the message reacted to (`text` is the emoji, absent when the
    /// reaction is taken back).
    target_id: Option<String>,
    location: Option<Location>,
    contacts: Option<Vec<ContactCard>>,
    /// The people @mentioned (JIDs).
    mentions: Vec<String>,
    /// Whether a preview of the first link was asked for.
    link_preview: bool,
    /// When the account received it.
    received_at: DateTime<Utc>,
}

impl From<Received> for ReceivedView {
    fn from(r: Received) -> Self {
        let message = r.message;
        let target_id = match &message.content {
            OutgoingContent::Reaction { target, .. } => Some(target.id.clone()),
            _ => None,
        };
        let (location, contacts) = match &message.content {
            OutgoingContent::Location(place) => (Some(place.clone()), None),
            OutgoingContent::Contacts(cards) => (None, Some(cards.clone())),
            _ => (None, None),
        };
        let (kind, text, media, list) = match message.content {
            OutgoingContent::Reaction { emoji, .. } => ("reaction", Some(emoji).filter(|e| !e.is_empty()), None, None),
            OutgoingContent::Location(place) => ("location", Some(place.text()), None, None),
            OutgoingContent::Contacts(cards) => ("contacts", Some(Details::Contacts(cards).text()), None, None),
            OutgoingContent::Text(text) => ("text", Some(text), None, None),
            OutgoingContent::Media(m) => (
                "media",
                m.caption,
                Some(ReceivedMediaView {
                    kind: m.kind.as_str().to_owned(),
                    mime_type: m.mime,
                    file_name: m.file_name,
                    size: m.data.len() as u64,
                    voice_note: m.voice_note,
                }),
                None,
            ),
            OutgoingContent::List(l) => (
                "list",
                Some(l.body.clone()),
                None,
                Some(ReceivedListView {
                    title: l.title,
                    body: l.body,
                    footer: l.footer,
                    button_text: l.button_text,
                    sections: l
                        .sections
                        .into_iter()
                        .map(|s| ReceivedListSectionView {
                            title: s.title,
                            rows: s
                                .rows
                                .into_iter()
                                .map(|row| ReceivedListRowView {
                                    id: row.id,
                                    title: row.title,
                                    description: row.description,
                                })
                                .collect(),
                        })
                        .collect(),
                }),
            ),
        };
        Self {
            id: r.id,
            from: r.from.to_string(),
            group: r.group.map(|g| g.to_string()),
            r#type: kind.to_owned(),
            text,
            media,
            list,
            quoted_id: message.quoted_id,
            target_id,
            location,
            contacts,
            mentions: message.mentions.iter().map(ToString::to_string).collect(),
            link_preview: message.link_preview,
            received_at: r.received_at,
        }
    }
}

/// What a virtual account received, who is typing to it, and which of its messages were
/// read.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReceivedList {
    /// Oldest first.
    data: Vec<ReceivedView>,
    /// The gateway phones showing "typing…" to this account now.
    typing: Vec<String>,
    /// The account's messages gateway phones marked read, in the order they did.
    read: Vec<ReadReceiptView>,
}

/// A message of the virtual account that a gateway phone read.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReadReceiptView {
    /// The message id.
    id: String,
    /// The gateway phone that read it.
    by: String,
}

/// The metadata of a media message sent by a virtual account.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InboundMediaRequest {
    kind: MediaKind,
    /// The file's MIME type.
    #[oai(validator(max_length = 100))]
    mime_type: String,
    /// The file's name.
    #[oai(validator(max_length = 255))]
    file_name: Option<String>,
    /// Size in bytes (the file's, when `dataBase64` is given).
    size: Option<u64>,
    /// The file itself, base64: kept on the sandbox's media server for the phone to
    /// download. Without it the message carries no file.
    data_base64: Option<String>,
}

/// A message a virtual account sends to a gateway phone: text, media, a reaction or a list reply.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InboundRequest {
    /// The virtual account that sends the message.
    #[oai(validator(max_length = 32))]
    from: String,
    /// The text, or the caption of the media (empty for a reaction or a list reply).
    #[oai(default, validator(max_length = 65536))]
    message: String,
    /// Send a media message (its metadata) instead of text.
    media: Option<InboundMediaRequest>,
    /// React to a message instead (no `emoji` removes the reaction).
    reaction: Option<InboundReactionRequest>,
    /// Pick a row of a list message instead.
    list_reply: Option<InboundListReplyRequest>,
    /// Share a place instead.
    location: Option<Location>,
}

/// A reaction to a message, or its removal.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InboundReactionRequest {
    /// The message reacted to.
    #[oai(validator(min_length = 1, max_length = 128))]
    message_id: String,
    /// The emoji; omitted or empty removes the reaction.
    #[oai(validator(max_length = 32))]
    emoji: Option<String>,
}

/// The row picked from a list message.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InboundListReplyRequest {
    /// The id of the row picked.
    #[oai(validator(min_length = 1, max_length = 200))]
    row_id: String,
    /// The row's title, as the person saw it.
    #[oai(validator(max_length = 200))]
    title: Option<String>,
}

/// The injected message, and whether the gateway stored it yet.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InboundView {
    /// The message id.
    id: String,
    /// True when the gateway stored it; false while it waits for the phone to connect.
    delivered: bool,
}

/// A fault to inject into a phone's session.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
pub enum FaultKind {
    /// The network drops; the session must reconnect by itself.
    Disconnect,
    /// The session fails; the supervisor must restart it.
    Crash,
    /// The device is unlinked on the phone.
    Logout,
    /// The phone's media downloads fail until `media_up`.
    MediaDown,
    /// The phone's media downloads work again.
    MediaUp,
}

/// The fault to inject.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct FaultRequest {
    kind: FaultKind,
}

/// A group to create on the sandbox network.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CreateGroupRequest {
    /// The group's name.
    #[oai(validator(min_length = 1, max_length = 100))]
    subject: String,
    /// Gateway phones and/or virtual accounts.
    #[oai(validator(min_items = 1, max_items = 1024))]
    members: Vec<String>,
}

/// A group on the sandbox network.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SandboxGroupView {
    /// The group's JID (`…@g.us`).
    jid: String,
    /// The group's name.
    subject: String,
    /// The members' numbers (E.164): gateway phones and virtual accounts.
    members: Vec<String>,
    /// When the group was created.
    created_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum GroupCreated {
    /// The group exists on the sandbox network.
    #[oai(status = 201)]
    Created(Json<SandboxGroupView>),
}

#[OpenApi(prefix_path = "/sandbox", tag = "ApiTags::Sandbox")]
impl SandboxApi {
    /// Register a virtual account
    ///
    /// Creates a WhatsApp account on the sandbox network. Numbers that are neither virtual
    /// accounts nor linked gateway phones are "not on WhatsApp".
    #[oai(path = "/accounts", method = "post", operation_id = "sandboxCreateAccount")]
    async fn create_account(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        body: Json<CreateAccountRequest>,
    ) -> Result<AccountCreated, Errors<{ SIGNED_IN | BODY | NOT_FOUND | CONFLICT }>> {
        let network = sandbox(&state)?;
        let phone = body_phone(&body.0.phone)?;
        let account = network
            .register(phone, body.0.name.trim().to_owned())
            .map_err(sandbox_error)?;
        Ok(AccountCreated::Created(Json(AccountView {
            jid: account.phone.jid().to_string(),
            phone: account.phone.to_string(),
            name: account.name,
            created_at: account.created_at,
        })))
    }

    /// Messages a virtual account received
    ///
    /// What gateway phones sent to this virtual account, oldest first.
    #[oai(
        path = "/accounts/:phone/messages",
        method = "get",
        operation_id = "sandboxAccountMessages"
    )]
    async fn account_messages(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
    ) -> Result<Json<ReceivedList>, Errors<{ SIGNED_IN | PHONE }>> {
        let network = sandbox(&state)?;
        let phone = phone.0.0;
        let received = network.received(&phone).map_err(sandbox_error)?;
        Ok(Json(ReceivedList {
            data: received.into_iter().map(ReceivedView::from).collect(),
            typing: network.typing_to(&phone).iter().map(ToString::to_string).collect(),
            read: network
                .read_by(&phone)
                .into_iter()
                .map(|(by, id)| ReadReceiptView { id, by: by.to_string() })
                .collect(),
        }))
    }

    /// Scan the QR code
    ///
    /// The phone's owner scans the current QR code (or enters the pairing code): pairing
    /// completes and the phone connects. 409 when the phone is not pairing.
    #[oai(path = "/phones/:phone/scan", method = "post", operation_id = "sandboxScan")]
    async fn scan(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
    ) -> Result<Json<Confirmation>, Errors<{ SIGNED_IN | PHONE | CONFLICT }>> {
        let network = sandbox(&state)?;
        let phone = gateway_phone(&state, phone.0.0)?;
        network.scan(&phone).map_err(sandbox_error)?;
        Ok(Confirmation::new(format!("{phone} paired")))
    }

    /// Send a message to a gateway phone
    ///
    /// A virtual account sends a message to this gateway phone. Answers once the gateway
    /// stored it; while the phone is offline the message waits, as on WhatsApp.
    #[oai(path = "/phones/:phone/inbound", method = "post", operation_id = "sandboxInbound")]
    async fn inbound(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: Json<InboundRequest>,
    ) -> Result<Json<InboundView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT }>> {
        let network = sandbox(&state)?;
        let phone = gateway_phone(&state, phone.0.0)?;
        let body = body.0;
        let from = body_phone(&body.from)?;
        let content = match (body.media, body.reaction, body.list_reply, body.location) {
            (None, None, None, None) => InboundContent::Text(body.message),
            (None, None, None, Some(place)) => {
                if !(-90.0..=90.0).contains(&place.latitude) || !(-180.0..=180.0).contains(&place.longitude) {
                    return Err(ApiError::bad_request("invalid_location", "coordinates out of range").into());
                }
                InboundContent::Location(place)
            }
            (Some(media), None, None, None) => {
                let data = match &media.data_base64 {
                    Some(encoded) => Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(encoded.trim())
                            .map_err(|_| ApiError::bad_request("invalid_media", "`dataBase64` is not valid base64"))?,
                    ),
                    None => None,
                };
                InboundContent::Media {
                    kind: media.kind,
                    mime: media.mime_type,
                    file_name: media.file_name,
                    caption: Some(body.message).filter(|c| !c.is_empty()),
                    size: data.as_ref().map(|d| d.len() as u64).or(media.size),
                    stored: data.map(|d| network.keep_media(d.into())),
                }
            }
            (None, Some(reaction), None, None) => InboundContent::Reaction {
                target_id: reaction.message_id,
                emoji: reaction.emoji.filter(|e| !e.is_empty()),
            },
            (None, None, Some(reply), None) => InboundContent::ListReply {
                row_id: Some(reply.row_id),
                title: reply.title,
            },
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_message",
                    "send one of `media`, `reaction`, `listReply` or `location`, not several",
                )
                .into());
            }
        };
        let injected = network
            .inject_inbound(&phone, &from, content)
            .await
            .map_err(sandbox_error)?;
        Ok(Json(InboundView {
            id: injected.id,
            delivered: injected.delivered,
        }))
    }

    /// Inject a fault
    ///
    /// `disconnect` drops the network (the session must reconnect by itself), `crash` fails
    /// the session (its supervisor must restart it), `logout` unlinks the device on the phone,
    /// `media_down` makes the phone's media downloads fail until `media_up`.
    #[oai(path = "/phones/:phone/faults", method = "post", operation_id = "sandboxFault")]
    async fn fault(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: Json<FaultRequest>,
    ) -> Result<Json<Confirmation>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT }>> {
        let network = sandbox(&state)?;
        let phone = gateway_phone(&state, phone.0.0)?;
        let fault = match body.0.kind {
            FaultKind::Disconnect => Fault::Disconnect,
            FaultKind::Crash => Fault::Crash,
            FaultKind::Logout => Fault::Logout,
            FaultKind::MediaDown => Fault::MediaDown,
            FaultKind::MediaUp => Fault::MediaUp,
        };
        network.inject_fault(&phone, fault).map_err(sandbox_error)?;
        Ok(Confirmation::new(format!("fault injected into {phone}")))
    }

    /// Create a group
    ///
    /// A group whose members are gateway phones and/or virtual accounts.
    #[oai(path = "/groups", method = "post", operation_id = "sandboxCreateGroup")]
    async fn create_group(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        body: Json<CreateGroupRequest>,
    ) -> Result<GroupCreated, Errors<{ SIGNED_IN | BODY | NOT_FOUND | CONFLICT }>> {
        let network = sandbox(&state)?;
        let members = body
            .0
            .members
            .iter()
            .map(|m| body_phone(m))
            .collect::<Result<Vec<_>, _>>()?;
        let group = network
            .create_group(body.0.subject.trim().to_owned(), members)
            .map_err(sandbox_error)?;
        Ok(GroupCreated::Created(Json(SandboxGroupView {
            jid: group.jid.to_string(),
            subject: group.subject,
            members: group.members.iter().map(ToString::to_string).collect(),
            created_at: group.created_at,
        })))
    }
}

fn sandbox(state: &AppState) -> Result<Arc<SandboxNetwork>, ApiError> {
    state.sandbox.clone().ok_or_else(|| {
        ApiError::not_found(
            "sandbox_disabled",
            "the sandbox is not active; start the server with engine = \"sandbox\" (WAGATE_ENGINE=sandbox)",
        )
    })
}

fn body_phone(input: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(input, None).map_err(|err| ApiError::bad_request("invalid_phone", err.to_string()))
}

/// A `{phone}` that must be one of the gateway's phones.
fn gateway_phone(state: &AppState, phone: PhoneNumber) -> Result<PhoneNumber, ApiError> {
    state.gateway.phone(&phone)?;
    Ok(phone)
}

fn sandbox_error(err: SandboxError) -> ApiError {
    let message = err.to_string();
    match err {
        SandboxError::UnknownAccount(_) => ApiError::not_found("account_not_found", message),
        SandboxError::AccountExists(_) => ApiError::conflict("account_exists", message),
        SandboxError::NoSession(_) => ApiError::conflict("no_session", message),
        SandboxError::NotPairing(_) => ApiError::conflict("not_pairing", message),
        SandboxError::NotConnected(_) => ApiError::conflict("phone_not_connected", message),
        SandboxError::NotLinked(_) => ApiError::conflict("phone_not_linked", message),
        SandboxError::EmptyGroup | SandboxError::UnknownMember(_) => ApiError::bad_request("invalid_members", message),
        SandboxError::NotStored => ApiError::unavailable("not_stored", message),
        SandboxError::Storage(_) => ApiError::internal(&err),
    }
}
