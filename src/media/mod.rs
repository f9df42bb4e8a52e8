//! Media: for outgoing messages, fetching a `mediaLink` with a size limit and deciding
//! what a file is (sniffed from its bytes first, then the declared type, then its name);
//! for every message with a file, the [`store`] that keeps it.

pub mod probe;
pub mod store;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use url::Url;

use crate::domain::MediaKind;
use crate::net;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("mediaLink refused: {0}")]
    Url(#[from] net::UrlError),
    #[error("mediaLink could not be fetched: {0}")]
    Unreachable(String),
    #[error("mediaLink answered HTTP {0}")]
    Status(u16),
    #[error("the media is larger than {0} bytes (limits.max_media_bytes)")]
    TooLarge(usize),
    #[error("the media is empty")]
    Empty,
}

/// A file to send.
#[derive(Debug, Clone)]
pub struct MediaFile {
    pub data: Bytes,
    /// The type the source declared (Content-Type header or upload part), if any.
    pub declared_mime: Option<String>,
    pub file_name: Option<String>,
}

/// Downloads a media link, refusing it as soon as it exceeds `max` bytes.
pub async fn fetch(client: &net::Outbound, link: &str, max: usize) -> Result<MediaFile, MediaError> {
    let url = client.check(link).await?;
    let resp = client.get(url).await.map_err(MediaError::Unreachable)?;
    if !resp.status().is_success() {
        return Err(MediaError::Status(resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|len| len > max as u64) {
        return Err(MediaError::TooLarge(max));
    }
    let declared_mime = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty());
    let file_name = resp
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(disposition_file_name)
        .or_else(|| url_file_name(resp.url()));
    let mut data = BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| MediaError::Unreachable(net::describe(&err)))?;
        if data.len() + chunk.len() > max {
            return Err(MediaError::TooLarge(max));
        }
        data.extend_from_slice(&chunk);
    }
    if data.is_empty() {
        return Err(MediaError::Empty);
    }
    Ok(MediaFile {
        data: data.freeze(),
        declared_mime,
        file_name,
    })
}

/// The file's MIME type: magic bytes first, then what the source declared.
pub fn mime_of(file: &MediaFile) -> String {
    if let Some(kind) = infer::get(&file.data) {
        // An Ogg file holding Opus is `audio/ogg` (its container), as files are named.
        return match kind.mime_type() {
            "audio/opus" => "audio/ogg",
            other => other,
        }
        .to_owned();
    }
    match file.declared_mime.as_deref() {
        Some(declared) if declared != "application/octet-stream" => declared.to_owned(),
        _ => match file
            .file_name
            .as_deref()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, ext)| ext.to_ascii_lowercase())
        {
            Some(ext) if ext == "txt" => "text/plain".to_owned(),
            Some(ext) if ext == "csv" => "text/csv".to_owned(),
            _ => "application/octet-stream".to_owned(),
        },
    }
}

/// The message kind a MIME type is sent as, unless the caller chose one.
pub fn kind_of(mime: &str) -> MediaKind {
    match mime.split('/').next() {
        Some("image") => MediaKind::Image,
        Some("video") => MediaKind::Video,
        Some("audio") => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

fn disposition_file_name(value: &str) -> Option<String> {
    value.split(';').map(str::trim).find_map(|part| {
        part.strip_prefix("filename=")
            .map(|name| name.trim_matches('"').to_owned())
            .filter(|name| !name.is_empty())
    })
}

fn url_file_name(url: &Url) -> Option<String> {
    url.path_segments()?
        .next_back()
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
}

/// A safe file name: no directories, no control characters, at most 255 bytes.
pub fn clean_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        return None;
    }
    let mut end = cleaned.len().min(255);
    while !cleaned.is_char_boundary(end) {
        end -= 1;
    }
    Some(cleaned[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_bytes_before_trusting_declarations() {
        let png = MediaFile {
            data: Bytes::from_static(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0]),
            declared_mime: Some("application/pdf".into()),
            file_name: None,
        };
        assert_eq!(mime_of(&png), "image/png");
        assert_eq!(kind_of("image/png"), MediaKind::Image);
        assert_eq!(kind_of("audio/ogg"), MediaKind::Audio);
        assert_eq!(kind_of("application/zip"), MediaKind::Document);
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_file_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_file_name("C:\\x\\report.pdf").as_deref(), Some("report.pdf"));
        assert_eq!(clean_file_name("a\u{0}b.txt").as_deref(), Some("ab.txt"));
        assert_eq!(clean_file_name(".."), None);
    }
}
