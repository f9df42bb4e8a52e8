//! Request payloads poem-openapi does not provide: an optional JSON body.

use poem::{Request, RequestBody};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

/// A JSON body that may be left out entirely (no body, no `Content-Type`): then it is
/// `T::default()`. A body that is present must be valid JSON for `T` (`null` is not).
pub struct OptionalJson<T>(pub T);

impl<'a, T: ParseFromJSON + Type + Default> ApiExtractor<'a> for OptionalJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Json<T> as Payload>::CONTENT_TYPE,
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let headers = request.headers();
        let length = headers
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if length == 0 && headers.get(poem::http::header::TRANSFER_ENCODING).is_none() {
            return Ok(Self(T::default()));
        }
        let Json(value) = <Json<T> as ApiExtractor>::from_request(request, body, param_opts).await?;
        Ok(Self(value))
    }
}

impl<T> std::ops::Deref for OptionalJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
