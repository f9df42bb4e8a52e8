//! Conversions between the gateway's message types and WhatsApp's protobufs, both ways.
//! Pure functions, so every mapping is tested without a connection.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use whatsapp_rust::wacore::download::MediaType as WaMediaType;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::wacore::types::events::Receipt as WaReceipt;
use whatsapp_rust::wacore::types::message::MessageInfo;
use whatsapp_rust::wacore::types::presence::ReceiptType;
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::domain::{LID_SERVER, MessageKind, USER_SERVER};
use crate::engine::{
    ContactCard, InboundContent, InboundMessage, Jid, ListMessage, Location, Media, MediaKind, MediaRef, MessageKey,
    MessageStatus, OutgoingContent, OutgoingMessage, Quoted, Receipt,
};
use crate::media::probe::Probe;

/// What an upload to WhatsApp's media servers returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub url: String,
    pub direct_path: String,
    pub media_key: Vec<u8>,
    pub file_enc_sha256: Vec<u8>,
    pub file_sha256: Vec<u8>,
    pub file_length: u64,
    pub media_key_timestamp: i64,
    pub streaming_sidecar: Option<Vec<u8>>,
}

pub fn to_wa_jid(jid: &Jid) -> Result<whatsapp_rust::Jid, String> {
    whatsapp_rust::Jid::from_str(&jid.to_string()).map_err(|e| format!("{jid}: {e}"))
}

pub fn from_wa_jid(jid: &whatsapp_rust::Jid) -> Option<Jid> {
    let text = jid.to_string();
    // Drop a device suffix (`user:3@s.whatsapp.net`): the gateway addresses accounts.
    let (user, server) = text.split_once('@')?;
    let user = user.split(':').next().unwrap_or(user);
    format!("{user}@{server}").parse().ok()
}

pub fn wa_media_type(kind: MediaKind) -> WaMediaType {
    match kind {
        MediaKind::Image => WaMediaType::Image,
        MediaKind::Video => WaMediaType::Video,
        MediaKind::Audio => WaMediaType::Audio,
        MediaKind::Document => WaMediaType::Document,
        MediaKind::Sticker => WaMediaType::Sticker,
    }
}

/// The quote and mentions of a message, if it has any.
fn context(message: &OutgoingMessage) -> Option<wa::ContextInfo> {
    if message.quoted_id.is_none() && message.mentions.is_empty() {
        return None;
    }
    let quoted = message.quoted.as_ref();
    Some(wa::ContextInfo {
        stanza_id: message.quoted_id.clone(),
        participant: quoted.and_then(|q| q.sender.as_ref()).map(ToString::to_string),
        quoted_message: quoted
            .and_then(quoted_message)
            .map(MessageField::some)
            .unwrap_or_default(),
        mentioned_jid: message.mentions.iter().map(ToString::to_string).collect(),
        ..Default::default()
    })
}

/// What recipients see of a quoted message: its kind, with its caption or text (the
/// gateway keeps no media bytes to quote, only what the history holds).
fn quoted_message(quoted: &Quoted) -> Option<wa::Message> {
    let caption = quoted.text.clone();
    let mime = quoted.mime.clone();
    let mut message = wa::Message::default();
    match quoted.kind {
        MessageKind::Image => {
            message.image_message = MessageField::some(wa::message::ImageMessage {
                mimetype: mime,
                caption,
                ..Default::default()
            });
        }
        MessageKind::Video => {
            message.video_message = MessageField::some(wa::message::VideoMessage {
                mimetype: mime,
                caption,
                ..Default::default()
            });
        }
        MessageKind::Audio => {
            message.audio_message = MessageField::some(wa::message::AudioMessage {
                mimetype: mime,
                ..Default::default()
            });
        }
        MessageKind::Document => {
            message.document_message = MessageField::some(wa::message::DocumentMessage {
                mimetype: mime,
                title: quoted.file_name.clone(),
                file_name: quoted.file_name.clone(),
                caption,
                ..Default::default()
            });
        }
        MessageKind::Sticker => {
            message.sticker_message = MessageField::some(wa::message::StickerMessage {
                mimetype: mime,
                ..Default::default()
            });
        }
        _ => message.conversation = Some(caption?),
    }
    Some(message)
}

fn field(context: Option<wa::ContextInfo>) -> MessageField<wa::ContextInfo> {
    context.map(MessageField::some).unwrap_or_default()
}

/// A message for a group WhatsApp addresses by LID, with its members named by LID where
/// `lid_of` (phone-number user → LID user) knows them: each mention, its `@number` in the
/// text (which is how members' phones find and show the mention), and the author of a
/// quoted message.
pub fn address_by_lid(message: &mut OutgoingMessage, lid_of: impl Fn(&str) -> Option<String>) {
    if let Some(sender) = message.quoted.as_mut().and_then(|q| q.sender.as_mut())
        && sender.server() == USER_SERVER
        && let Some(lid) = lid_of(sender.user_part())
    {
        *sender = Jid::lid(&lid);
    }
    let mut renamed = Vec::new();
    for mention in &mut message.mentions {
        if mention.server() != USER_SERVER {
            continue;
        }
        if let Some(lid) = lid_of(mention.user_part()) {
            renamed.push((format!("@{}", mention.user_part()), format!("@{lid}")));
            *mention = Jid::lid(&lid);
        }
    }
    // `@number` as a whole token only: `@1201555015` is not in `@12015550151`.
    let rename = |text: &mut String| {
        for (from, to) in &renamed {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(at) = rest.find(from.as_str()) {
                let after = &rest[at + from.len()..];
                out.push_str(&rest[..at]);
                out.push_str(if after.starts_with(|c: char| c.is_ascii_digit()) {
                    from
                } else {
                    to
                });
                rest = after;
            }
            out.push_str(rest);
            *text = out;
        }
    };
    match &mut message.content {
        OutgoingContent::Text(text) => rename(text),
        OutgoingContent::Media(media) => {
            if let Some(caption) = &mut media.caption {
                rename(caption);
            }
        }
        OutgoingContent::List(list) => rename(&mut list.body),
        OutgoingContent::Reaction { .. } | OutgoingContent::Location(_) | OutgoingContent::Contacts(_) => {}
    }
}

/// The protobuf for a message; media must have been uploaded (and probed) already.
pub fn outgoing(message: &OutgoingMessage, uploaded: Option<(&Uploaded, &Probe)>) -> Result<wa::Message, String> {
    let context = context(message);
    match &message.content {
        OutgoingContent::Text(text) => Ok(text_message(text, context, message.link_preview)),
        OutgoingContent::Media(media) => {
            let (uploaded, probe) = uploaded.ok_or("media must be uploaded before it is sent")?;
            Ok(media_message(media, uploaded, probe, context))
        }
        OutgoingContent::List(list) => Ok(list_message(list, context)),
        OutgoingContent::Reaction { target, emoji } => Ok(reaction_message(&message.to, target, emoji)),
        OutgoingContent::Location(place) => Ok(wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(place.latitude),
                degrees_longitude: Some(place.longitude),
                name: place.name.clone(),
                address: place.address.clone(),
                context_info: field(context),
                ..Default::default()
            }),
            ..Default::default()
        }),
        OutgoingContent::Contacts(cards) => Ok(contacts_message(cards, context)),
    }
}

/// One contact card as a contact message; several as a contacts array.
fn contacts_message(cards: &[ContactCard], context: Option<wa::ContextInfo>) -> wa::Message {
    let card = |c: &ContactCard| wa::message::ContactMessage {
        display_name: Some(c.name.clone()),
        vcard: Some(c.vcard.clone()),
        ..Default::default()
    };
    if let [one] = cards {
        return wa::Message {
            contact_message: MessageField::some(wa::message::ContactMessage {
                context_info: field(context),
                ..card(one)
            }),
            ..Default::default()
        };
    }
    wa::Message {
        contacts_array_message: MessageField::some(wa::message::ContactsArrayMessage {
            display_name: Some(format!("{} contacts", cards.len())),
            contacts: cards.iter().map(card).collect(),
            context_info: field(context),
        }),
        ..Default::default()
    }
}

/// A reaction to `target` in the chat `to` (an empty emoji removes the reaction).
fn reaction_message(to: &Jid, target: &MessageKey, emoji: &str) -> wa::Message {
    wa::Message {
        reaction_message: MessageField::some(wa::message::ReactionMessage {
            key: MessageField::some(wa::MessageKey {
                remote_jid: Some(to.to_string()),
                from_me: Some(target.from_me),
                id: Some(target.id.clone()),
                participant: target.participant.as_ref().map(ToString::to_string),
            }),
            text: Some(emoji.to_owned()),
            sender_timestamp_ms: Some(chrono::Utc::now().timestamp_millis()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn text_message(text: &str, context: Option<wa::ContextInfo>, link_preview: bool) -> wa::Message {
    if context.is_none() && link_preview {
        return wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
    }
    wa::Message {
        extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
            text: Some(text.to_owned()),
            preview_type: (!link_preview).then_some(wa::message::extended_text_message::PreviewType::NONE),
            context_info: field(context),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A media message of type `$ty` carrying the upload's location and keys, the media's
/// type, and the given extra fields. (The crate's own builders in `whatsapp_rust::media`
/// take its `UploadResponse`, which cannot be built outside the crate, and have no sticker.)
macro_rules! uploaded_media {
    ($ty:ident, $up:expr, $media:expr, { $($field:ident: $value:expr),* $(,)? }) => {
        MessageField::some(wa::message::$ty {
            url: Some($up.url.clone()),
            direct_path: Some($up.direct_path.clone()),
            media_key: Some($up.media_key.clone()),
            file_enc_sha256: Some($up.file_enc_sha256.clone()),
            file_sha256: Some($up.file_sha256.clone()),
            file_length: Some($up.file_length),
            media_key_timestamp: Some($up.media_key_timestamp),
            mimetype: Some($media.mime.clone()),
            $($field: $value,)*
            ..Default::default()
        })
    };
}

/// WhatsApp plays a voice note only as Opus in Ogg, and wants the codec named.
const OPUS_MIME: &str = "audio/ogg; codecs=opus";

fn media_message(media: &Media, up: &Uploaded, probe: &Probe, context: Option<wa::ContextInfo>) -> wa::Message {
    let context_info = field(context);
    let mut message = wa::Message::default();
    match media.kind {
        MediaKind::Image => {
            message.image_message = uploaded_media!(ImageMessage, up, media, {
                caption: media.caption.clone(),
                width: probe.width,
                height: probe.height,
                jpeg_thumbnail: probe.thumbnail.clone(),
                context_info: context_info,
            });
        }
        MediaKind::Video => {
            message.video_message = uploaded_media!(VideoMessage, up, media, {
                caption: media.caption.clone(),
                width: probe.width,
                height: probe.height,
                seconds: probe.seconds,
                jpeg_thumbnail: probe.thumbnail.clone(),
                streaming_sidecar: up.streaming_sidecar.clone(),
                context_info: context_info,
            });
        }
        MediaKind::Audio => {
            let mut audio = uploaded_media!(AudioMessage, up, media, {
                ptt: Some(media.voice_note),
                seconds: probe.seconds,
                streaming_sidecar: up.streaming_sidecar.clone(),
                context_info: context_info,
            });
            // Opus in Ogg is named as WhatsApp's own clients name it, voice note or not.
            if (media.voice_note || crate::media::probe::is_ogg_opus(&media.data))
                && let Some(audio) = audio.as_option_mut()
            {
                audio.mimetype = Some(OPUS_MIME.to_owned());
            }
            message.audio_message = audio;
        }
        MediaKind::Document => {
            let name = media.file_name.clone().unwrap_or_else(|| "file".to_owned());
            message.document_message = uploaded_media!(DocumentMessage, up, media, {
                title: Some(name.clone()),
                file_name: Some(name),
                caption: media.caption.clone(),
                context_info: context_info,
            });
        }
        MediaKind::Sticker => {
            message.sticker_message = uploaded_media!(StickerMessage, up, media, {
                width: probe.width,
                height: probe.height,
                context_info: context_info,
            });
        }
    }
    message
}

/// A list as WhatsApp shows it today: an interactive message whose one native-flow
/// button (`single_select`) opens the sections. (The old bare `listMessage` is accepted
/// by the servers and never shown on phones.) The crate adds the `<biz>` node such a
/// message needs to be delivered.
fn list_message(list: &ListMessage, context: Option<wa::ContextInfo>) -> wa::Message {
    use wa::message::interactive_message::{Body, Footer, Header, InteractiveMessage as Payload, NativeFlowMessage};
    let sections: Vec<serde_json::Value> = list
        .sections
        .iter()
        .map(|section| {
            serde_json::json!({
                "title": section.title,
                "rows": section.rows.iter().map(|row| serde_json::json!({
                    "id": row.id,
                    "title": row.title,
                    "description": row.description.clone().unwrap_or_default(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let params = serde_json::json!({"title": list.button_text, "sections": sections});
    wa::Message {
        interactive_message: MessageField::some(wa::message::InteractiveMessage {
            header: MessageField::some(Header {
                title: Some(list.title.clone()).filter(|t| !t.is_empty()),
                has_media_attachment: Some(false),
                ..Default::default()
            }),
            body: MessageField::some(Body {
                text: Some(list.body.clone()),
            }),
            footer: match &list.footer {
                Some(text) => MessageField::some(Footer {
                    text: Some(text.clone()),
                    ..Default::default()
                }),
                None => MessageField::none(),
            },
            interactive_message: Some(Payload::NativeFlowMessage(Box::new(NativeFlowMessage {
                buttons: vec![
                    wa::message::interactive_message::native_flow_message::NativeFlowButton {
                        name: Some(LIST_FLOW.to_owned()),
                        button_params_json: Some(params.to_string()),
                    },
                ],
                message_version: Some(1),
                ..Default::default()
            }))),
            context_info: field(context),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The native flow of a list: pick one row.
const LIST_FLOW: &str = "single_select";

/// Phone numbers of accounts WhatsApp addresses by LID, by LID user (`2847…` → the
/// phone-number JID), from the crate's LID↔PN mapping; a message's own alternate
/// addresses come on top.
#[derive(Debug, Clone, Default)]
pub struct PhoneNumbers(HashMap<String, Jid>);

impl PhoneNumbers {
    pub fn insert(&mut self, lid_user: &str, phone: Jid) {
        self.0.insert(lid_user.to_owned(), phone);
    }

    fn of(&self, jid: &Jid) -> Option<Jid> {
        (jid.server() == LID_SERVER).then(|| self.0.get(jid.user_part()).cloned())?
    }
}

/// The LID JIDs of a message whose phone numbers the message itself does not carry: the
/// ones to look up in the crate's mapping before converting it.
pub fn unmapped_lids(info: &MessageInfo) -> Vec<whatsapp_rust::Jid> {
    let source = &info.source;
    let alt_is_pn = source.sender_alt.as_ref().is_some_and(|alt| alt.is_pn());
    let mut lids = Vec::new();
    if source.sender.is_lid() && !alt_is_pn {
        lids.push(source.sender.to_non_ad());
    }
    if source.chat.is_lid() && source.chat.user != source.sender.user && info.peer_recipient_pn.is_none() {
        lids.push(source.chat.to_non_ad());
    }
    lids
}

/// The gateway's view of a received message: every message is kept, those it cannot
/// read yet as [`InboundContent::Unsupported`] named by WhatsApp's kind. `None` for what
/// is not a conversation: status posts (`status@broadcast`) and newsletter posts, which
/// are not chats (and, defensively, addresses the gateway cannot parse, with a warning).
///
/// People are named by phone number where it is known (from the message's alternate
/// address or `numbers`), their LID kept beside: a person WhatsApp addresses by LID and
/// by phone number is one chat.
pub fn inbound(message: &wa::Message, info: &MessageInfo, numbers: &PhoneNumbers) -> Option<InboundMessage> {
    let source = &info.source;
    if source.chat.server == "broadcast" || source.chat.server == "newsletter" {
        return None;
    }
    let base = message.get_base_message();
    let content = inbound_content(base).unwrap_or_else(|| InboundContent::Unsupported { kind: raw_kind(base) });
    let (Some(sender), Some(chat)) = (from_wa_jid(&source.sender), from_wa_jid(&source.chat)) else {
        tracing::warn!(id = %info.id, chat = %source.chat, sender = %source.sender, "a message with addresses the gateway cannot read was not kept");
        return None;
    };
    let alt = source.sender_alt.as_ref().and_then(from_wa_jid);
    let (sender, sender_lid) = if sender.server() == LID_SERVER {
        let phone = alt
            .filter(|alt| alt.server() == USER_SERVER)
            .or_else(|| numbers.of(&sender));
        match phone {
            Some(phone) => (phone, Some(sender)),
            None => (sender.clone(), Some(sender)),
        }
    } else {
        (sender, alt.filter(|alt| alt.server() == LID_SERVER))
    };
    // A direct chat is the other person: the sender, or for this account's own messages
    // the recipient, by phone number where known.
    let chat = if chat.server() != LID_SERVER {
        chat
    } else if sender_lid.as_ref() == Some(&chat) {
        sender.clone()
    } else {
        // This account's own message to a LID: the stanza may name the peer's number.
        let peer = (source.is_from_me)
            .then(|| info.peer_recipient_pn.as_ref().and_then(from_wa_jid))
            .flatten()
            .filter(|pn| pn.server() == USER_SERVER);
        peer.or_else(|| numbers.of(&chat)).unwrap_or(chat)
    };
    Some(InboundMessage {
        id: info.id.clone(),
        chat,
        sender,
        sender_lid,
        push_name: Some(info.push_name.clone()).filter(|n| !n.is_empty()),
        timestamp: info.timestamp,
        from_me: source.is_from_me,
        quoted_id: quoted_id(base),
        content,
    })
}

fn inbound_content(m: &wa::Message) -> Option<InboundContent> {
    use wa::message::interactive_response_message::InteractiveResponseMessage as InteractiveResponse;
    if let Some(text) = m.text_content() {
        return Some(InboundContent::Text(text.to_owned()));
    }
    /// A media message of kind `$kind` with its common fields read, plus a file name and
    /// caption where the kind has them.
    macro_rules! media {
        ($kind:expr, $m:expr, $file_name:expr, $caption:expr) => {
            media(
                $kind,
                Received {
                    mime: $m.mimetype.as_deref(),
                    file_name: $file_name,
                    caption: $caption,
                    size: $m.file_length,
                    direct_path: $m.direct_path.as_deref(),
                    media_key: $m.media_key.as_deref(),
                    file_sha256: $m.file_sha256.as_deref(),
                    file_enc_sha256: $m.file_enc_sha256.as_deref(),
                    media_key_timestamp: $m.media_key_timestamp,
                },
            )
        };
    }
    if let Some(img) = m.image_message.as_option() {
        return Some(media!(MediaKind::Image, img, None, img.caption.clone()));
    }
    if let Some(video) = m.video_message.as_option() {
        return Some(media!(MediaKind::Video, video, None, video.caption.clone()));
    }
    if let Some(audio) = m.audio_message.as_option() {
        return Some(media!(MediaKind::Audio, audio, None, None));
    }
    if let Some(doc) = m.document_message.as_option() {
        return Some(media!(
            MediaKind::Document,
            doc,
            doc.file_name.clone(),
            doc.caption.clone()
        ));
    }
    if let Some(sticker) = m.sticker_message.as_option() {
        return Some(media!(MediaKind::Sticker, sticker, None, None));
    }
    if let Some(reply) = m.list_response_message.as_option() {
        return Some(InboundContent::ListReply {
            row_id: reply
                .single_select_reply
                .as_option()
                .and_then(|s| s.selected_row_id.clone()),
            title: reply.title.clone(),
        });
    }
    // A row picked from a list sent as an interactive message: its id in the flow's
    // answer, its title as the body. (Phones answer a single_select under that name; any
    // flow answer naming a picked id is read the same way, so a renamed flow keeps its row.)
    if let Some(reply) = m.interactive_response_message.as_option()
        && let Some(InteractiveResponse::NativeFlowResponseMessage(flow)) = &reply.interactive_response_message
        && let Some(params) = flow
            .params_json
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        && let Some(row_id) = params.get("id").and_then(serde_json::Value::as_str)
    {
        let title = reply.body.as_option().and_then(|b| b.text.clone()).or_else(|| {
            params
                .get("title")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        });
        return Some(InboundContent::ListReply {
            row_id: Some(row_id.to_owned()),
            title,
        });
    }
    if let Some(reaction) = m.reaction_message.as_option() {
        // A reaction without the message it is on cannot be read: kept as unsupported.
        let target_id = reaction.key.as_option().and_then(|key| key.id.clone())?;
        return Some(InboundContent::Reaction {
            target_id,
            // WhatsApp removes a reaction by sending an empty one.
            emoji: reaction.text.clone().filter(|t| !t.is_empty()),
        });
    }
    if let Some(place) = m.location_message.as_option()
        && let (Some(latitude), Some(longitude)) = (place.degrees_latitude, place.degrees_longitude)
        && latitude.is_finite()
        && longitude.is_finite()
    {
        return Some(InboundContent::Location(Location {
            latitude,
            longitude,
            name: place.name.clone().filter(|n| !n.is_empty()),
            address: place.address.clone().filter(|a| !a.is_empty()),
        }));
    }
    let card = |c: &wa::message::ContactMessage| ContactCard {
        name: c.display_name.clone().unwrap_or_default(),
        vcard: c.vcard.clone().unwrap_or_default(),
    };
    if let Some(contact) = m.contact_message.as_option() {
        return Some(InboundContent::Contacts(vec![card(contact)]));
    }
    if let Some(contacts) = m.contacts_array_message.as_option() {
        return Some(InboundContent::Contacts(contacts.contacts.iter().map(card).collect()));
    }
    if m.poll_creation_message.is_set() {
        return Some(InboundContent::Other {
            kind: MessageKind::Poll,
            text: m.poll_creation_message.as_option().and_then(|p| p.name.clone()),
        });
    }
    None
}

/// WhatsApp's name for the kind of a message the gateway cannot read yet: the protobuf
/// field that carries it (`ptvMessage`, `pollCreationMessageV3`, …), with the type of a
/// protocol message (`protocolMessage:REVOKE`).
pub fn raw_kind(m: &wa::Message) -> String {
    if let Some(protocol) = m.protocol_message.as_option() {
        return match protocol.r#type {
            Some(kind) => format!("protocolMessage:{kind:?}"),
            None => "protocolMessage".to_owned(),
        };
    }
    let kinds = [
        ("ptvMessage", m.ptv_message.is_set()),
        ("pollCreationMessageV2", m.poll_creation_message_v2.is_set()),
        ("pollCreationMessageV3", m.poll_creation_message_v3.is_set()),
        ("pollCreationMessageV4", m.poll_creation_message_v4.is_set()),
        ("pollCreationMessageV5", m.poll_creation_message_v5.is_set()),
        ("pollUpdateMessage", m.poll_update_message.is_set()),
        ("liveLocationMessage", m.live_location_message.is_set()),
        ("eventMessage", m.event_message.is_set()),
        ("encEventResponseMessage", m.enc_event_response_message.is_set()),
        ("albumMessage", m.album_message.is_set()),
        ("buttonsMessage", m.buttons_message.is_set()),
        ("buttonsResponseMessage", m.buttons_response_message.is_set()),
        ("interactiveMessage", m.interactive_message.is_set()),
        ("interactiveResponseMessage", m.interactive_response_message.is_set()),
        ("templateMessage", m.template_message.is_set()),
        ("templateButtonReplyMessage", m.template_button_reply_message.is_set()),
        ("listMessage", m.list_message.is_set()),
        ("reactionMessage", m.reaction_message.is_set()),
        ("groupInviteMessage", m.group_invite_message.is_set()),
        ("pinInChatMessage", m.pin_in_chat_message.is_set()),
        ("keepInChatMessage", m.keep_in_chat_message.is_set()),
        ("encReactionMessage", m.enc_reaction_message.is_set()),
        ("callLogMesssage", m.call_log_messsage.is_set()),
        (
            "scheduledCallCreationMessage",
            m.scheduled_call_creation_message.is_set(),
        ),
        ("requestPhoneNumberMessage", m.request_phone_number_message.is_set()),
        ("productMessage", m.product_message.is_set()),
        ("orderMessage", m.order_message.is_set()),
        ("highlyStructuredMessage", m.highly_structured_message.is_set()),
        ("stickerPackMessage", m.sticker_pack_message.is_set()),
        ("placeholderMessage", m.placeholder_message.is_set()),
        ("commentMessage", m.comment_message.is_set()),
        ("botInvokeMessage", m.bot_invoke_message.is_set()),
        ("editedMessage", m.edited_message.is_set()),
    ];
    kinds
        .iter()
        .find(|(_, set)| *set)
        .map_or_else(|| "unknown".to_owned(), |(kind, _)| (*kind).to_owned())
}

/// The fields every received media message has.
struct Received<'a> {
    mime: Option<&'a str>,
    file_name: Option<String>,
    caption: Option<String>,
    size: Option<u64>,
    direct_path: Option<&'a str>,
    media_key: Option<&'a [u8]>,
    file_sha256: Option<&'a [u8]>,
    file_enc_sha256: Option<&'a [u8]>,
    media_key_timestamp: Option<i64>,
}

fn media(kind: MediaKind, m: Received<'_>) -> InboundContent {
    // Without a path and a key the file cannot be fetched; without the hashes it cannot
    // be checked.
    let stored = match (m.direct_path, m.media_key, m.file_sha256, m.file_enc_sha256) {
        (Some(path), Some(key), Some(sha), Some(enc)) if !path.is_empty() && !key.is_empty() => Some(MediaRef {
            direct_path: path.to_owned(),
            media_key: key.to_vec(),
            file_sha256: sha.to_vec(),
            file_enc_sha256: enc.to_vec(),
            media_key_timestamp: m.media_key_timestamp,
        }),
        _ => None,
    };
    InboundContent::Media {
        kind,
        mime: m
            .mime
            .unwrap_or("application/octet-stream")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        file_name: m.file_name,
        caption: m.caption.filter(|c| !c.is_empty()),
        size: m.size,
        stored,
    }
}

/// The context (quote, mentions) of a message of any kind that has one.
fn context_of(m: &wa::Message) -> Option<&wa::ContextInfo> {
    macro_rules! first_context {
        ($($field:ident),+ $(,)?) => {
            [$(m.$field.as_option().and_then(|x| x.context_info.as_option())),+]
                .into_iter()
                .flatten()
                .next()
        };
    }
    first_context!(
        extended_text_message,
        image_message,
        video_message,
        ptv_message,
        audio_message,
        document_message,
        sticker_message,
        location_message,
        live_location_message,
        contact_message,
        contacts_array_message,
        buttons_message,
        buttons_response_message,
        list_message,
        list_response_message,
        interactive_message,
        template_button_reply_message,
        interactive_response_message,
        poll_creation_message,
        poll_creation_message_v2,
        poll_creation_message_v3,
        event_message,
        group_invite_message,
        product_message,
        order_message,
    )
}

fn quoted_id(m: &wa::Message) -> Option<String> {
    context_of(m)
        .and_then(|c| c.stanza_id.clone())
        .filter(|id| !id.is_empty())
}

/// Delivery and read receipts for our messages; others (retries, our own reads) are none.
pub fn receipt(receipt: &WaReceipt) -> Option<Receipt> {
    let status = match receipt.r#type {
        ReceiptType::Delivered => MessageStatus::Delivered,
        ReceiptType::Read | ReceiptType::Played => MessageStatus::Read,
        _ => return None,
    };
    Some(Receipt {
        chat: from_wa_jid(&receipt.source.chat)?,
        message_ids: receipt.message_ids.iter().map(ToString::to_string).collect(),
        status,
        timestamp: receipt.timestamp,
    })
}

/// Seconds since the epoch as a time, for group creation times.
pub fn unix_time(seconds: Option<u64>) -> Option<DateTime<Utc>> {
    seconds.and_then(|s| DateTime::from_timestamp(i64::try_from(s).ok()?, 0))
}

#[cfg(test)]
pub(super) mod tests {
    use bytes::Bytes;
    use whatsapp_rust::wacore::types::message::MessageSource;

    use super::*;
    use crate::engine::{ListRow, ListSection, Quoted};

    pub(in crate::engine::whatsapp) fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn message(content: OutgoingContent) -> OutgoingMessage {
        OutgoingMessage {
            id: None,
            to: jid("12015550150@s.whatsapp.net"),
            content,
            quoted_id: None,
            quoted: None,
            mentions: Vec::new(),
            link_preview: true,
        }
    }

    fn uploaded() -> Uploaded {
        Uploaded {
            url: "https://mmg.whatsapp.net/x".into(),
            direct_path: "/v/t62/x".into(),
            media_key: vec![1; 32],
            file_enc_sha256: vec![2; 32],
            file_sha256: vec![3; 32],
            file_length: 1234,
            media_key_timestamp: 1_700_000_000,
            streaming_sidecar: None,
        }
    }

    fn media(kind: MediaKind, mime: &str) -> OutgoingContent {
        OutgoingContent::Media(Media {
            kind,
            data: Bytes::from_static(b"data"),
            mime: mime.into(),
            file_name: Some("report.pdf".into()),
            caption: Some("a caption".into()),
            voice_note: kind == MediaKind::Audio,
        })
    }

    #[test]
    fn plain_text_is_a_conversation() {
        let wa = outgoing(&message(OutgoingContent::Text("hello".into())), None).unwrap();
        assert_eq!(wa.conversation.as_deref(), Some("hello"));
        assert!(!wa.extended_text_message.is_set());
    }

    #[test]
    fn quotes_mentions_and_no_preview_use_extended_text() {
        let mut m = message(OutgoingContent::Text("hi @12015550151".into()));
        m.quoted_id = Some("3EB0ABC".into());
        m.quoted = Some(Quoted {
            sender: Some(jid("12015550150@s.whatsapp.net")),
            kind: MessageKind::Text,
            text: Some("the question".into()),
            mime: None,
            file_name: None,
        });
        m.mentions = vec![jid("12015550151@s.whatsapp.net")];
        m.link_preview = false;
        let wa = outgoing(&m, None).unwrap();
        let ext = wa.extended_text_message.as_option().unwrap();
        assert_eq!(ext.text.as_deref(), Some("hi @12015550151"));
        assert_eq!(
            ext.preview_type,
            Some(wa::message::extended_text_message::PreviewType::NONE)
        );
        let ctx = ext.context_info.as_option().unwrap();
        assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0ABC"));
        assert_eq!(ctx.participant.as_deref(), Some("12015550150@s.whatsapp.net"));
        assert_eq!(
            ctx.quoted_message.as_option().unwrap().conversation.as_deref(),
            Some("the question")
        );
        assert_eq!(ctx.mentioned_jid, vec!["12015550151@s.whatsapp.net".to_owned()]);
    }

    #[test]
    fn each_media_kind_carries_its_upload_mimetype_and_caption() {
        let up = uploaded();
        let probed = Probe::default();
        let up = (&up, &probed);
        let image = outgoing(&message(media(MediaKind::Image, "image/png")), Some(up)).unwrap();
        let img = image.image_message.as_option().unwrap();
        assert_eq!(img.mimetype.as_deref(), Some("image/png"));
        assert_eq!(img.caption.as_deref(), Some("a caption"));
        assert_eq!(img.direct_path.as_deref(), Some("/v/t62/x"));
        assert_eq!(img.file_length, Some(1234));
        assert_eq!(img.media_key.as_deref(), Some(&[1u8; 32][..]));

        let video = outgoing(&message(media(MediaKind::Video, "video/mp4")), Some(up)).unwrap();
        assert_eq!(
            video.video_message.as_option().unwrap().mimetype.as_deref(),
            Some("video/mp4")
        );

        let audio = outgoing(&message(media(MediaKind::Audio, "audio/ogg")), Some(up)).unwrap();
        let aud = audio.audio_message.as_option().unwrap();
        assert_eq!(aud.ptt, Some(true), "voice note");
        assert_eq!(
            aud.mimetype.as_deref(),
            Some("audio/ogg; codecs=opus"),
            "what WhatsApp plays"
        );

        let doc = outgoing(&message(media(MediaKind::Document, "application/pdf")), Some(up)).unwrap();
        let d = doc.document_message.as_option().unwrap();
        assert_eq!(d.file_name.as_deref(), Some("report.pdf"));
        assert_eq!(d.caption.as_deref(), Some("a caption"));

        let sticker = outgoing(&message(media(MediaKind::Sticker, "image/webp")), Some(up)).unwrap();
        assert_eq!(
            sticker.sticker_message.as_option().unwrap().mimetype.as_deref(),
            Some("image/webp")
        );

        assert!(
            outgoing(&message(media(MediaKind::Image, "image/png")), None).is_err(),
            "upload first"
        );
    }

    #[test]
    fn media_carries_what_its_file_shows_and_quotes_of_media_show_as_media() {
        let up = uploaded();
        let probed = Probe {
            width: Some(640),
            height: Some(480),
            seconds: Some(9),
            thumbnail: Some(vec![0xFF, 0xD8]),
        };
        let image = outgoing(&message(media(MediaKind::Image, "image/png")), Some((&up, &probed))).unwrap();
        let img = image.image_message.as_option().unwrap();
        assert_eq!((img.width, img.height), (Some(640), Some(480)));
        assert_eq!(img.jpeg_thumbnail.as_deref(), Some(&[0xFF, 0xD8][..]));
        let video = outgoing(&message(media(MediaKind::Video, "video/mp4")), Some((&up, &probed))).unwrap();
        assert_eq!(video.video_message.as_option().unwrap().seconds, Some(9));
        let audio = outgoing(&message(media(MediaKind::Audio, "audio/ogg")), Some((&up, &probed))).unwrap();
        assert_eq!(audio.audio_message.as_option().unwrap().seconds, Some(9));

        let mut reply = message(OutgoingContent::Text("nice photo".into()));
        reply.quoted_id = Some("3EB0PHOTO".into());
        reply.quoted = Some(Quoted {
            sender: Some(jid("12015550150@s.whatsapp.net")),
            kind: MessageKind::Image,
            text: None,
            mime: Some("image/jpeg".into()),
            file_name: None,
        });
        let wa = outgoing(&reply, None).unwrap();
        let ctx = wa
            .extended_text_message
            .as_option()
            .unwrap()
            .context_info
            .as_option()
            .unwrap();
        let quoted = ctx.quoted_message.as_option().expect("the quote shows");
        assert_eq!(
            quoted.image_message.as_option().unwrap().mimetype.as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(ctx.participant.as_deref(), Some("12015550150@s.whatsapp.net"));
    }

    #[test]
    fn mentions_in_a_lid_group_name_members_by_lid_in_the_text_too() {
        let mut m = message(OutgoingContent::Text(
            "@12015550151 and @12015550152, lunch? (not @120155501510)".into(),
        ));
        m.to = jid("120363000000000001@g.us");
        m.mentions = vec![jid("12015550151@s.whatsapp.net"), jid("12015550152@s.whatsapp.net")];
        m.quoted_id = Some("3EB0EARLIER".into());
        m.quoted = Some(Quoted {
            sender: Some(jid("12015550151@s.whatsapp.net")),
            kind: MessageKind::Text,
            text: Some("earlier".into()),
            mime: None,
            file_name: None,
        });
        let lids = HashMap::from([("12015550151".to_owned(), "98765432109876".to_owned())]);
        address_by_lid(&mut m, |pn| lids.get(pn).cloned());
        assert_eq!(
            m.mentions,
            [jid("98765432109876@lid"), jid("12015550152@s.whatsapp.net")],
            "an unknown LID stays a number"
        );
        assert_eq!(
            m.content,
            OutgoingContent::Text("@98765432109876 and @12015550152, lunch? (not @120155501510)".into())
        );
        assert_eq!(
            m.quoted.unwrap().sender,
            Some(jid("98765432109876@lid")),
            "the quoted author by LID"
        );
    }

    #[test]
    fn a_list_becomes_an_interactive_single_select_and_its_answer_a_list_reply() {
        use wa::message::interactive_message::InteractiveMessage as Payload;
        use wa::message::interactive_response_message::{
            Body, InteractiveResponseMessage as Response, NativeFlowResponseMessage,
        };
        let list = OutgoingContent::List(ListMessage {
            title: "Menu".into(),
            body: "Pick one".into(),
            footer: Some("footer".into()),
            button_text: "Open".into(),
            sections: vec![ListSection {
                title: "Mains".into(),
                rows: vec![ListRow {
                    id: "m1".into(),
                    title: "Pasta".into(),
                    description: Some("fresh".into()),
                }],
            }],
        });
        let wa = outgoing(&message(list), None).unwrap();
        assert!(!wa.list_message.is_set(), "a bare list is never shown");
        let im = wa.interactive_message.as_option().unwrap();
        assert_eq!(im.header.as_option().unwrap().title.as_deref(), Some("Menu"));
        assert_eq!(im.body.as_option().unwrap().text.as_deref(), Some("Pick one"));
        assert_eq!(im.footer.as_option().unwrap().text.as_deref(), Some("footer"));
        let Some(Payload::NativeFlowMessage(flow)) = &im.interactive_message else {
            panic!("{im:?}");
        };
        assert_eq!(flow.buttons[0].name.as_deref(), Some("single_select"));
        let params: serde_json::Value =
            serde_json::from_str(flow.buttons[0].button_params_json.as_deref().unwrap()).unwrap();
        assert_eq!(params["title"], "Open");
        assert_eq!(params["sections"][0]["title"], "Mains");
        assert_eq!(params["sections"][0]["rows"][0]["id"], "m1");
        assert_eq!(params["sections"][0]["rows"][0]["description"], "fresh");

        let answer = wa::Message {
            interactive_response_message: MessageField::some(wa::message::InteractiveResponseMessage {
                body: MessageField::some(Body {
                    text: Some("Pasta".into()),
                    ..Default::default()
                }),
                interactive_response_message: Some(Response::NativeFlowResponseMessage(Box::new(
                    NativeFlowResponseMessage {
                        name: Some("single_select".into()),
                        params_json: Some(r#"{"id":"m1"}"#.into()),
                        version: Some(3),
                    },
                ))),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            read(&answer, &info("12015550150@s.whatsapp.net")).unwrap().content,
            InboundContent::ListReply {
                row_id: Some("m1".into()),
                title: Some("Pasta".into())
            }
        );
    }

    fn read(message: &wa::Message, info: &MessageInfo) -> Option<InboundMessage> {
        inbound(message, info, &PhoneNumbers::default())
    }

    /// A direct message's info from `sender`, id `3EB0FROMTHEM`, push name Alice.
    pub(in crate::engine::whatsapp) fn info(sender: &str) -> MessageInfo {
        let sender: whatsapp_rust::Jid = sender.parse().unwrap();
        MessageInfo {
            source: MessageSource {
                chat: sender.clone(),
                sender,
                ..Default::default()
            },
            id: "3EB0FROMTHEM".into(),
            push_name: "Alice".into(),
            timestamp: Utc::now(),
            ..Default::default()
        }
    }

    #[test]
    fn inbound_text_media_and_replies_are_read() {
        let text = wa::Message {
            conversation: Some("hello".into()),
            ..Default::default()
        };
        let got = read(&text, &info("12015550150@s.whatsapp.net")).unwrap();
        assert_eq!(got.content, InboundContent::Text("hello".into()));
        assert_eq!(got.sender, jid("12015550150@s.whatsapp.net"));
        assert_eq!(got.push_name.as_deref(), Some("Alice"));
        assert_eq!(got.id, "3EB0FROMTHEM");

        let reply = wa::Message {
            extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                text: Some("yes".into()),
                context_info: MessageField::some(wa::ContextInfo {
                    stanza_id: Some("3EB0MINE".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = read(&reply, &info("12015550150@s.whatsapp.net")).unwrap();
        assert_eq!(got.quoted_id.as_deref(), Some("3EB0MINE"));

        let document = wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                mimetype: Some("application/pdf".into()),
                file_name: Some("q3.pdf".into()),
                caption: Some("numbers".into()),
                file_length: Some(99),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = read(&document, &info("12015550150@s.whatsapp.net")).unwrap();
        assert_eq!(
            got.content,
            InboundContent::Media {
                kind: MediaKind::Document,
                mime: "application/pdf".into(),
                file_name: Some("q3.pdf".into()),
                caption: Some("numbers".into()),
                size: Some(99),
                stored: None,
            }
        );

        let voice = wa::Message {
            audio_message: MessageField::some(wa::message::AudioMessage {
                mimetype: Some("audio/ogg; codecs=opus".into()),
                ptt: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        match read(&voice, &info("12015550150@s.whatsapp.net")).unwrap().content {
            InboundContent::Media { kind, mime, .. } => {
                assert_eq!(kind, MediaKind::Audio);
                assert_eq!(mime, "audio/ogg");
            }
            other => panic!("{other:?}"),
        }

        let reaction = |emoji: &str| wa::Message {
            reaction_message: MessageField::some(wa::message::ReactionMessage {
                key: MessageField::some(wa::MessageKey {
                    id: Some("3EB0MINE".into()),
                    ..Default::default()
                }),
                text: Some(emoji.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            read(&reaction("👍"), &info("12015550150@s.whatsapp.net"))
                .unwrap()
                .content,
            InboundContent::Reaction {
                target_id: "3EB0MINE".into(),
                emoji: Some("👍".into())
            }
        );
        assert_eq!(
            read(&reaction(""), &info("12015550150@s.whatsapp.net"))
                .unwrap()
                .content,
            InboundContent::Reaction {
                target_id: "3EB0MINE".into(),
                emoji: None
            },
            "an empty reaction removes one"
        );
    }

    #[test]
    fn list_replies_keep_the_row_id_and_any_kind_keeps_its_quote() {
        use wa::message::list_response_message::SingleSelectReply;
        let reply = wa::Message {
            list_response_message: MessageField::some(wa::message::ListResponseMessage {
                title: Some("Pasta".into()),
                single_select_reply: MessageField::some(SingleSelectReply {
                    selected_row_id: Some("m1".into()),
                }),
                context_info: MessageField::some(wa::ContextInfo {
                    stanza_id: Some("3EB0LIST".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = read(&reply, &info("12015550150@s.whatsapp.net")).unwrap();
        assert_eq!(
            got.content,
            InboundContent::ListReply {
                row_id: Some("m1".into()),
                title: Some("Pasta".into())
            }
        );
        assert_eq!(got.quoted_id.as_deref(), Some("3EB0LIST"));
        let location = wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                context_info: MessageField::some(wa::ContextInfo {
                    stanza_id: Some("3EB0WHERE".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            read(&location, &info("12015550150@s.whatsapp.net"))
                .unwrap()
                .quoted_id
                .as_deref(),
            Some("3EB0WHERE")
        );
    }

    #[test]
    fn received_media_keeps_where_it_is_and_its_keys() {
        let image = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                mimetype: Some("image/jpeg".into()),
                direct_path: Some("/v/t62.7118-24/1".into()),
                media_key: Some(vec![7; 32]),
                file_sha256: Some(vec![8; 32]),
                file_enc_sha256: Some(vec![9; 32]),
                media_key_timestamp: Some(1_700_000_000),
                ..Default::default()
            }),
            ..Default::default()
        };
        match read(&image, &info("12015550150@s.whatsapp.net")).unwrap().content {
            InboundContent::Media { stored: Some(r), .. } => {
                assert_eq!(r.direct_path, "/v/t62.7118-24/1");
                assert_eq!(r.media_key, vec![7; 32]);
                assert_eq!(r.file_enc_sha256, vec![9; 32]);
                let json = serde_json::to_string(&r).unwrap();
                assert_eq!(serde_json::from_str::<MediaRef>(&json).unwrap(), r, "{json}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_the_gateway_cannot_read_is_kept_under_whatsapps_name_for_it() {
        let revoke = wa::Message {
            protocol_message: MessageField::some(wa::message::ProtocolMessage {
                r#type: Some(wa::message::protocol_message::Type::REVOKE),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = read(&revoke, &info("12015550150@s.whatsapp.net")).unwrap();
        assert_eq!(
            got.content,
            InboundContent::Unsupported {
                kind: "protocolMessage:REVOKE".into()
            }
        );
        let empty = read(&wa::Message::default(), &info("12015550150@s.whatsapp.net")).unwrap();
        assert_eq!(empty.content, InboundContent::Unsupported { kind: "unknown".into() });
        // From Meta AI (`@bot`): kept like any sender.
        let text = wa::Message {
            conversation: Some("hi".into()),
            ..Default::default()
        };
        assert!(read(&text, &info("13135550002@bot")).is_some());
    }

    #[test]
    fn status_and_newsletter_posts_are_not_conversations() {
        let text = wa::Message {
            conversation: Some("hi".into()),
            ..Default::default()
        };
        let mut status = info("12015550150@s.whatsapp.net");
        status.source.chat = "status@broadcast".parse().unwrap();
        assert!(read(&text, &status).is_none());
        let mut post = info("120363000000000777@newsletter");
        post.source.chat = "120363000000000777@newsletter".parse().unwrap();
        assert!(read(&text, &post).is_none());
    }

    #[test]
    fn a_person_known_by_lid_is_named_by_phone_number_with_the_lid_beside() {
        let text = wa::Message {
            conversation: Some("hi".into()),
            ..Default::default()
        };
        // The number from the message's alternate address.
        let mut i = info("98765432109876@lid");
        i.source.sender_alt = Some("12015550150@s.whatsapp.net".parse().unwrap());
        let got = read(&text, &i).unwrap();
        assert_eq!(got.sender, jid("12015550150@s.whatsapp.net"));
        assert_eq!(got.chat, jid("12015550150@s.whatsapp.net"), "one chat per person");
        assert_eq!(got.sender_lid, Some(jid("98765432109876@lid")));
        // The number from the mapping, when the message has none.
        let i = info("98765432109876@lid");
        assert_eq!(
            unmapped_lids(&i),
            vec!["98765432109876@lid".parse::<whatsapp_rust::Jid>().unwrap()]
        );
        let mut numbers = PhoneNumbers::default();
        numbers.insert("98765432109876", jid("12015550150@s.whatsapp.net"));
        let got = inbound(&text, &i, &numbers).unwrap();
        assert_eq!(got.chat, jid("12015550150@s.whatsapp.net"));
        // Unknown: the LID it is.
        let got = read(&text, &i).unwrap();
        assert_eq!(got.chat, jid("98765432109876@lid"));
        assert_eq!(got.sender_lid, Some(jid("98765432109876@lid")));
        // This account's own message to a LID: the chat is the recipient, by number.
        let mut own = info("11111111111111@lid");
        own.source.is_from_me = true;
        own.source.sender_alt = Some("12015550199@s.whatsapp.net".parse().unwrap());
        own.source.chat = "98765432109876@lid".parse().unwrap();
        own.source.recipient = Some(own.source.chat.clone());
        let got = inbound(&text, &own, &numbers).unwrap();
        assert_eq!(got.chat, jid("12015550150@s.whatsapp.net"));
        assert_eq!(got.sender, jid("12015550199@s.whatsapp.net"));
    }

    #[test]
    fn receipts_map_to_delivery_states() {
        let make = |kind: ReceiptType| {
            WaReceipt::builder()
                .source(MessageSource {
                    chat: "12015550150@s.whatsapp.net".parse().unwrap(),
                    sender: "12015550150@s.whatsapp.net".parse().unwrap(),
                    ..Default::default()
                })
                .message_ids(vec!["3EB0A".into(), "3EB0B".into()])
                .timestamp(Utc::now())
                .r#type(kind)
                .offline(false)
                .build()
        };
        let delivered = receipt(&make(ReceiptType::Delivered)).unwrap();
        assert_eq!(delivered.status, MessageStatus::Delivered);
        assert_eq!(delivered.message_ids, ["3EB0A", "3EB0B"]);
        assert_eq!(receipt(&make(ReceiptType::Read)).unwrap().status, MessageStatus::Read);
        assert_eq!(receipt(&make(ReceiptType::Played)).unwrap().status, MessageStatus::Read);
        assert!(receipt(&make(ReceiptType::Retry)).is_none());
        assert!(receipt(&make(ReceiptType::ReadSelf)).is_none());
    }
}
