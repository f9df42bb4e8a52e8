//! From a send request (JSON or multipart) to the message to send: the recipient, the
//! content (text, media fetched or decoded and checked, a list) and the options.

use base64::Engine as _;
use bytes::Bytes;

use super::dto::*;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::domain::{ContactCard, Location, MediaKind};
use crate::domain::{Jid, RecipientError, recipient};
use crate::engine::{ListMessage, ListRow, ListSection, Media, OutgoingContent, OutgoingMessage, Quoted};
use crate::gateway::PhoneHandle;
use crate::media::{self, MediaError, MediaFile};

/// A send request, whichever way it came.
pub(super) struct SendInput {
    pub(super) recipient: Option<String>,
    pub(super) message: Option<String>,
    pub(super) country: Option<String>,
    pub(super) jid: Option<String>,
    pub(super) media_link: Option<String>,
    pub(super) media: Option<MediaFile>,
    pub(super) media_type: Option<MediaKind>,
    pub(super) file_name: Option<String>,
    pub(super) list: Option<ListRequest>,
    pub(super) location: Option<LocationRequest>,
    pub(super) contacts: Option<Vec<ContactCardRequest>>,
    pub(super) options: MessageOptions,
}

pub(super) fn resolve(recipient: Option<&str>, country: Option<&str>, jid: Option<&str>) -> Result<Jid, ApiError> {
    recipient::resolve(recipient, country, jid).map_err(|err| {
        let code = if matches!(err, RecipientError::Missing) {
            "recipient_required"
        } else {
            "invalid_recipient"
        };
        ApiError::bad_request(code, err.to_string())
    })
}

pub(super) fn json_input(req: SendMessageRequest) -> Result<SendInput, ApiError> {
    let media = match req.media.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(encoded) => Some(decode_base64_media(encoded)?),
        None => None,
    };
    Ok(SendInput {
        recipient: req.recipient,
        message: req.message,
        country: req.country,
        jid: req.jid,
        media_link: req.media_link,
        media,
        media_type: req.media_type,
        file_name: req.file_name,
        list: req.list,
        location: req.location,
        contacts: req.contacts,
        options: req.message_options.unwrap_or_default(),
    })
}

pub(super) async fn form_input(form: SendMessageForm) -> Result<SendInput, ApiError> {
    let media_type = match form.media_type.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(kind) => Some(parse_media_kind(kind)?),
        None => None,
    };
    let media = match form.media {
        Some(upload) => {
            let declared_mime = upload.content_type().map(|m| m.to_ascii_lowercase());
            let file_name = upload.file_name().map(str::to_owned);
            let data = upload.into_vec().await.map_err(|err| {
                ApiError::bad_request("invalid_media", format!("the upload could not be read: {err}"))
            })?;
            Some(MediaFile {
                data: Bytes::from(data),
                declared_mime,
                file_name,
            })
        }
        None => None,
    };
    Ok(SendInput {
        recipient: form.recipient,
        message: form.message,
        country: form.country,
        jid: form.jid,
        media_link: form.media_link,
        media,
        media_type,
        file_name: form.file_name,
        list: form.list.map(|f| f.0),
        location: form.location.map(|f| f.0),
        contacts: form.contacts.map(|f| f.0),
        options: form.message_options.map(|f| f.0).unwrap_or_default(),
    })
}

fn parse_media_kind(kind: &str) -> Result<MediaKind, ApiError> {
    kind.parse()
        .map_err(|why: String| ApiError::bad_request("invalid_media_type", why))
}

fn decode_base64_media(encoded: &str) -> Result<MediaFile, ApiError> {
    let (declared_mime, data) = match encoded.strip_prefix("data:").and_then(|rest| rest.split_once(',')) {
        Some((meta, data)) => (
            meta.strip_suffix(";base64")
                .map(|m| m.trim().to_ascii_lowercase())
                .filter(|m| !m.is_empty()),
            data,
        ),
        None => (None, encoded),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| ApiError::bad_request("invalid_media", "`media` is not valid base64 (or a base64 data: URL)"))?;
    Ok(MediaFile {
        data: Bytes::from(bytes),
        declared_mime,
        file_name: None,
    })
}

/// Turns a request into the message to send: recipient, content, options.
pub(super) async fn build_message(
    state: &AppState,
    phone: &PhoneHandle,
    input: SendInput,
) -> Result<OutgoingMessage, ApiError> {
    let to = resolve(
        input.recipient.as_deref(),
        input.country.as_deref(),
        input.jid.as_deref(),
    )?;
    let text = input.message.filter(|m| !m.trim().is_empty());
    let options = input.options;
    let link = input.media_link.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if input.media.is_some() && link.is_some() {
        return Err(ApiError::bad_request(
            "invalid_message",
            "send either `media` or `mediaLink`, not both",
        ));
    }
    let has_media = input.media.is_some() || link.is_some();
    let kinds = [
        input.list.is_some(),
        has_media,
        input.location.is_some(),
        input.contacts.is_some(),
    ];
    if kinds.iter().filter(|given| **given).count() > 1 {
        return Err(ApiError::bad_request(
            "invalid_message",
            "send one of `list`, media, `location` or `contacts`, not several",
        ));
    }
    let content = if let Some(place) = input.location {
        location_content(place)?
    } else if let Some(cards) = input.contacts {
        contacts_content(cards)?
    } else if let Some(list) = input.list {
        if has_media {
            return Err(ApiError::bad_request(
                "invalid_message",
                "a list message cannot carry media",
            ));
        }
        list_content(list, text)?
    } else if has_media {
        let file = match (input.media, link) {
            (Some(file), _) => file,
            (None, Some(link)) => fetch_media(state, &link).await?,
            (None, None) => return Err(ApiError::bad_request("invalid_message", "no media given")),
        };
        media_content(
            state,
            file,
            input.media_type,
            input.file_name,
            text,
            options.voice_note.unwrap_or(false),
        )?
    } else {
        OutgoingContent::Text(
            text.ok_or_else(|| ApiError::bad_request("message_required", "`message` is required for a text message"))?,
        )
    };
    let quoted_id = options
        .quoted_message_id
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    if quoted_id.as_ref().is_some_and(|q| q.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "invalid_message",
            "`quotedMessageId` is not a message id",
        ));
    }
    // The quoted message's sender and text let WhatsApp show the quote; the history
    // knows them when the message went through this gateway.
    let quoted = match &quoted_id {
        Some(id) => phone.message(id).await?.map(|quoted| Quoted {
            sender: quoted.sender.parse().ok(),
            kind: quoted.kind,
            text: quoted.text,
            mime: quoted.media.as_ref().map(|m| m.mime.clone()),
            file_name: quoted.media.and_then(|m| m.file_name),
        }),
        None => None,
    };
    let mentions = options
        .mentions
        .unwrap_or_default()
        .iter()
        .map(|m| resolve(Some(m), None, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OutgoingMessage {
        id: options.message_id,
        to,
        content,
        quoted,
        quoted_id,
        mentions,
        link_preview: options.link_preview.unwrap_or(true),
    })
}

fn location_content(place: LocationRequest) -> Result<OutgoingContent, ApiError> {
    if !place.latitude.is_finite() || !place.longitude.is_finite() {
        return Err(ApiError::bad_request("invalid_location", "coordinates are numbers"));
    }
    let clean = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(OutgoingContent::Location(Location {
        latitude: place.latitude,
        longitude: place.longitude,
        name: clean(place.name),
        address: clean(place.address),
    }))
}

fn contacts_content(cards: Vec<ContactCardRequest>) -> Result<OutgoingContent, ApiError> {
    let mut out = Vec::with_capacity(cards.len());
    for card in cards {
        let name = card.name.trim().to_owned();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "invalid_contact",
                "a contact card needs a `name`",
            ));
        }
        match (card.vcard.filter(|v| !v.trim().is_empty()), card.phones) {
            (Some(vcard), None) => {
                if !vcard.trim_start().starts_with("BEGIN:VCARD") {
                    return Err(ApiError::bad_request(
                        "invalid_contact",
                        "`vcard` is a vCard (BEGIN:VCARD … END:VCARD)",
                    ));
                }
                out.push(ContactCard { name, vcard });
            }
            (None, Some(phones)) if !phones.is_empty() => {
                let mut digits = Vec::with_capacity(phones.len());
                for phone in &phones {
                    let jid = resolve(Some(phone), None, None)?;
                    let number = jid.phone_digits().ok_or_else(|| {
                        ApiError::bad_request("invalid_contact", format!("`{phone}` is not a phone number"))
                    })?;
                    digits.push(number.to_owned());
                }
                out.push(ContactCard::of(&name, &digits));
            }
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_contact",
                    "a contact card has `phones` or a `vcard`, one of them",
                ));
            }
        }
    }
    Ok(OutgoingContent::Contacts(out))
}

async fn fetch_media(state: &AppState, link: &str) -> Result<MediaFile, ApiError> {
    let max = state.config.limits.max_media_bytes;
    media::fetch(&state.http, link, max).await.map_err(|err| match err {
        MediaError::TooLarge(_) => ApiError::payload_too_large("media_too_large", err.to_string()),
        MediaError::Url(_) => ApiError::bad_request("invalid_media_link", err.to_string()),
        _ => ApiError::bad_request("media_unreachable", err.to_string()),
    })
}

fn media_content(
    state: &AppState,
    file: MediaFile,
    requested: Option<MediaKind>,
    file_name: Option<String>,
    caption: Option<String>,
    voice_note: bool,
) -> Result<OutgoingContent, ApiError> {
    let max = state.config.limits.max_media_bytes;
    if file.data.len() > max {
        return Err(ApiError::payload_too_large(
            "media_too_large",
            format!("the media is larger than {max} bytes (limits.max_media_bytes)"),
        ));
    }
    if file.data.is_empty() {
        return Err(ApiError::bad_request("invalid_media", "the media is empty"));
    }
    let mime = media::mime_of(&file);
    let kind = requested.unwrap_or_else(|| media::kind_of(&mime));
    if !state.config.limits.allowed_media.contains(&kind) {
        return Err(ApiError::unsupported_media_type(
            "media_type_not_allowed",
            format!("{} messages are not allowed here (limits.allowed_media)", kind.as_str()),
        ));
    }
    let fits = match kind {
        MediaKind::Image => mime.starts_with("image/"),
        MediaKind::Video => mime.starts_with("video/"),
        MediaKind::Audio => mime.starts_with("audio/"),
        MediaKind::Sticker => mime == "image/webp",
        MediaKind::Document => true,
    };
    if !fits {
        return Err(ApiError::unsupported_media_type(
            "media_type_mismatch",
            format!("the file is {mime}, which cannot be sent as {}", kind.as_str()),
        ));
    }
    if voice_note && kind != MediaKind::Audio {
        return Err(ApiError::bad_request(
            "invalid_message",
            "`voiceNote` applies to audio only",
        ));
    }
    // WhatsApp plays voice notes in Opus only: other audio would arrive as a voice note
    // that cannot be played.
    if voice_note && !matches!(mime.as_str(), "audio/ogg" | "audio/opus") {
        return Err(ApiError::unsupported_media_type(
            "voice_note_needs_opus",
            format!(
                "a voice note must be Opus audio in Ogg (audio/ogg), not {mime}; convert it first (for example `ffmpeg -i in -c:a libopus out.ogg`) or send it as plain audio"
            ),
        ));
    }
    let file_name = file_name.or(file.file_name).and_then(|n| media::clean_file_name(&n));
    Ok(OutgoingContent::Media(Media {
        kind,
        data: file.data,
        mime,
        file_name,
        caption: if matches!(kind, MediaKind::Audio | MediaKind::Sticker) {
            None
        } else {
            caption
        },
        voice_note,
    }))
}

fn list_content(list: ListRequest, text: Option<String>) -> Result<OutgoingContent, ApiError> {
    let total_rows: usize = list.sections.iter().map(|s| s.rows.len()).sum();
    if total_rows > 10 {
        return Err(ApiError::bad_request(
            "invalid_list",
            "a list may have at most 10 rows in all",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for row in list.sections.iter().flat_map(|s| &s.rows) {
        if !ids.insert(row.id.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_list",
                format!("row id `{}` is used twice", row.id),
            ));
        }
    }
    let body = list
        .body
        .filter(|b| !b.trim().is_empty())
        .or(text)
        .ok_or_else(|| ApiError::bad_request("invalid_list", "a list message needs `list.body` or `message`"))?;
    Ok(OutgoingContent::List(ListMessage {
        title: list.title,
        body,
        footer: list.footer,
        button_text: list.button_text,
        sections: list
            .sections
            .into_iter()
            .map(|s| ListSection {
                title: s.title,
                rows: s
                    .rows
                    .into_iter()
                    .map(|r| ListRow {
                        id: r.id,
                        title: r.title,
                        description: r.description,
                    })
                    .collect(),
            })
            .collect(),
    }))
}
