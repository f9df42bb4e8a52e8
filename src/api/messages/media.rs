//! `GET /api/v1/user/phones/{phone}/messages/{messageId}/media`: a message's kept file,
//! received or sent, whole or the byte range asked for.

use std::io::SeekFrom;

use poem::Body;
use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::{ApiResponse, OpenApi};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::super::ApiTags;
use super::super::error::statuses::*;
use super::super::error::{ApiError, ErrorBody, Errors};
use super::super::phones::PhonePath;
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::gateway::phones::MediaFile;

#[derive(Default)]
pub struct MediaApi;

/// A file's bytes, with its own type as `Content-Type` (the spec says
/// `application/octet-stream`: the real type is the file's, e.g. `image/jpeg`).
pub struct FileBody {
    body: Body,
    mime: String,
}

impl Payload for FileBody {
    const CONTENT_TYPE: &'static str = "application/octet-stream";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            format: Some("binary"),
            ..MetaSchema::new("string")
        }))
    }
}

impl poem::IntoResponse for FileBody {
    fn into_response(self) -> poem::Response {
        // The type is the sender's word for it: browsers must not guess another.
        poem::Response::builder()
            .content_type(self.mime)
            .header("X-Content-Type-Options", "nosniff")
            .body(self.body)
    }
}

#[derive(ApiResponse)]
pub enum MediaResponse {
    /// The whole file, with its MIME type as `Content-Type`.
    #[oai(status = 200)]
    Whole(
        FileBody,
        /// The file's size in bytes.
        #[oai(header = "Content-Length")]
        u64,
        /// `attachment`, with the file's name when it has one.
        #[oai(header = "Content-Disposition")]
        String,
        /// `bytes`: ranges may be asked for with `Range`.
        #[oai(header = "Accept-Ranges")]
        String,
        /// The file's SHA-256, quoted.
        #[oai(header = "ETag")]
        Option<String>,
    ),
    /// The byte range asked for with `Range` (one range; several are answered whole).
    #[oai(status = 206)]
    Part(
        FileBody,
        /// The part's size in bytes.
        #[oai(header = "Content-Length")]
        u64,
        /// `bytes {first}-{last}/{size}`.
        #[oai(header = "Content-Range")]
        String,
        /// `attachment`, with the file's name when it has one.
        #[oai(header = "Content-Disposition")]
        String,
        /// The file's SHA-256, quoted.
        #[oai(header = "ETag")]
        Option<String>,
    ),
    /// The range asked for starts past the end of the file.
    #[oai(status = 416)]
    RangeNotSatisfiable(
        Json<ErrorBody>,
        /// `bytes */{size}`.
        #[oai(header = "Content-Range")]
        String,
    ),
}

#[OpenApi(tag = "ApiTags::Messages")]
impl MediaApi {
    /// Download a message's file
    ///
    /// The file of a received message, once the phone downloaded it (`media.status` is
    /// `stored` in history and in the `message.media` event), or of a message this phone
    /// sent. Supports `Range` (one byte range). 404 `no_media` for a message without a
    /// file, 404 `media_not_kept` for one skipped (`media.download`) or whose download
    /// failed, 409 `media_pending` while it is being downloaded.
    #[oai(
        path = "/user/phones/:phone/messages/:message_id/media",
        method = "get",
        operation_id = "getMessageMedia"
    )]
    async fn media(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        /// The message's WhatsApp id.
        message_id: Path<String>,
        /// One byte range, e.g. `bytes=0-1023`, `bytes=1024-` or `bytes=-500`.
        #[oai(name = "Range")]
        range: Header<Option<String>>,
    ) -> Result<MediaResponse, Errors<{ SIGNED_IN | PHONE | CONFLICT }>> {
        let file = state.gateway.phone(&phone.0.0)?.media(&message_id.0).await?;
        respond(file, range.0.as_deref()).await.map_err(Into::into)
    }
}

async fn respond(media: MediaFile, range: Option<&str>) -> Result<MediaResponse, ApiError> {
    let size = media.size;
    let disposition = disposition(media.file_name.as_deref());
    let etag = media.sha256.as_ref().map(|sha| format!("\"{sha}\""));
    let read_error = |e: std::io::Error| ApiError::internal(&e);
    let mut file = media.file;
    match range.map(|r| byte_range(r, size)) {
        Some(Range::Unsatisfiable) => Ok(MediaResponse::RangeNotSatisfiable(
            Json(ErrorBody::new(
                "range_not_satisfiable",
                format!("the range is outside the file, which has {size} bytes"),
            )),
            format!("bytes */{size}"),
        )),
        Some(Range::Bytes(first, last)) => {
            file.seek(SeekFrom::Start(first)).await.map_err(read_error)?;
            let length = last - first + 1;
            let body = FileBody {
                body: Body::from_async_read(file.take(length)),
                mime: media.mime,
            };
            Ok(MediaResponse::Part(
                body,
                length,
                format!("bytes {first}-{last}/{size}"),
                disposition,
                etag,
            ))
        }
        Some(Range::Whole) | None => {
            let body = FileBody {
                body: Body::from_async_read(file),
                mime: media.mime,
            };
            Ok(MediaResponse::Whole(body, size, disposition, "bytes".into(), etag))
        }
    }
}

/// `attachment`, with the name as plain ASCII and, when it has more, RFC 8187's UTF-8 form.
fn disposition(name: Option<&str>) -> String {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return "attachment".into();
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // RFC 8187's attr-char: what a `filename*` value keeps as it is.
    const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(name, ATTR_CHAR);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Answer with the whole file (no usable range, or several).
    Whole,
    /// The bytes from `first` to `last`, both included.
    Bytes(u64, u64),
    /// The range starts past the end.
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 §14.2) for a file of `size` bytes. What cannot be
/// read is ignored (the whole file is sent), as the RFC allows.
fn byte_range(header: &str, size: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => Range::Unsatisfiable,
            Some(_) if size == 0 => Range::Unsatisfiable,
            Some(n) => Range::Bytes(size - n.min(size), size - 1),
            None => Range::Whole,
        },
        // `a-`: from a to the end.
        (false, true) => match number(first) {
            Some(a) if a < size => Range::Bytes(a, size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a > b => Range::Whole,
            (Some(a), Some(b)) if a < size => Range::Bytes(a, b.min(size - 1)),
            (Some(_), Some(_)) => Range::Unsatisfiable,
            _ => Range::Whole,
        },
        (true, true) => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-9", 100), Range::Bytes(0, 9));
        assert_eq!(byte_range("bytes=90-200", 100), Range::Bytes(90, 99));
        assert_eq!(byte_range("bytes=10-", 100), Range::Bytes(10, 99));
        assert_eq!(byte_range("bytes=-10", 100), Range::Bytes(90, 99));
        assert_eq!(byte_range("bytes=-500", 100), Range::Bytes(0, 99));
        assert_eq!(byte_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=100-200", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-", 0), Range::Unsatisfiable);
        // Not understood, or several ranges: the whole file.
        assert_eq!(byte_range("bytes=9-1", 100), Range::Whole);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Range::Whole);
        assert_eq!(byte_range("items=0-1", 100), Range::Whole);
        assert_eq!(byte_range("bytes=x-1", 100), Range::Whole);
        assert_eq!(byte_range("bytes=-", 100), Range::Whole);
    }

    #[test]
    fn a_file_name_is_offered_plain_and_in_utf_8() {
        assert_eq!(disposition(None), "attachment");
        assert_eq!(
            disposition(Some("invoice 7.pdf")),
            "attachment; filename=\"invoice 7.pdf\"; filename*=UTF-8''invoice%207.pdf"
        );
        assert_eq!(
            disposition(Some("r\u{e9}sum\u{e9}\".pdf")),
            "attachment; filename=\"r_sum__.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%22.pdf"
        );
    }
}
