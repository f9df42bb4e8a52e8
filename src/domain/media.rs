//! The kinds of media a message can carry: one type for the configuration
//! (`limits.allowed_media`), the API (`mediaType`), the engines and the sandbox; and where
//! a message's file stands.

use std::str::FromStr;

use sea_orm::entity::prelude::StringLen;
use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// Send the media as this kind; inferred from the file when omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename = "MediaType", rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    pub const ALL: [MediaKind; 5] = [
        MediaKind::Image,
        MediaKind::Video,
        MediaKind::Audio,
        MediaKind::Document,
        MediaKind::Sticker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// Any case: `Image` is `image`.
impl FromStr for MediaKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("`{s}` is not a media type: use image, video, audio, document or sticker"))
    }
}

/// Where a message's file stands: received files are downloaded after the message is
/// stored; sent files are kept as they are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, poem_openapi::Enum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    /// Being downloaded, or waiting for a retry.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Kept: the media route serves it.
    #[sea_orm(string_value = "stored")]
    Stored,
    /// Could not be downloaded (`media.attempts` ran out, or WhatsApp no longer has it).
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Not downloaded, by `media.download` or `media.max_download_bytes`.
    #[sea_orm(string_value = "skipped")]
    Skipped,
}
