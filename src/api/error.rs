//! The one error shape of the API, `{"error":{"code","message"}}`, for every failure:
//! operation errors ([`ApiError`]), request parsing errors (via `bad_request_handler`), and
//! whatever poem itself refuses (unknown route, wrong method, oversized body) via [`json_errors`].
//! A 500 is always a bug: its cause is logged and the caller gets an opaque message.

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::error::{ParseParamError, ParsePathError};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::actors::PhoneError;
use crate::engine::EngineError;

/// The body of every error response.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ErrorBody {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        body(code, message).0
    }
}

/// What went wrong.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ErrorDetail {
    /// Stable, machine-readable snake_case code, e.g. `invalid_password`.
    pub code: String,
    /// What went wrong and how to fix it, for people.
    pub message: String,
    /// The conflicting resource's id, for `webhook_exists`.
    #[oai(skip_serializing_if_is_none)]
    pub existing_id: Option<String>,
}

#[derive(Debug, Clone, ApiResponse)]
#[oai(bad_request_handler = "ApiError::from_request_error")]
pub enum ApiError {
    /// The request is malformed or a value is invalid.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, invalid, expired or revoked credentials, or a wrong password.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Not allowed: no password is set yet, a quota is exhausted, or setup needs the setup code.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The resource does not exist.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state (a duplicate, a wrong state).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body or media is larger than allowed.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The content type of the request or of its media is not accepted.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many attempts; retry after the number of seconds in `Retry-After`.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// An unexpected server error; its details are in the server log.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency (the database, a phone session) did not answer in time; retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// The error statuses an operation can answer, as bits for [`Errors`]. Each operation's
/// signature names its own, so the spec, and the SDKs generated from it, list only the
/// errors that can happen.
pub mod statuses {
    pub const BAD_REQUEST: u32 = 1 << 0;
    pub const UNAUTHORIZED: u32 = 1 << 1;
    pub const FORBIDDEN: u32 = 1 << 2;
    pub const NOT_FOUND: u32 = 1 << 3;
    pub const CONFLICT: u32 = 1 << 4;
    pub const PAYLOAD_TOO_LARGE: u32 = 1 << 5;
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 1 << 6;
    pub const TOO_MANY_REQUESTS: u32 = 1 << 7;
    pub const INTERNAL: u32 = 1 << 8;
    pub const UNAVAILABLE: u32 = 1 << 9;

    /// What any operation may answer: a bug (500), or its time ran out or the database
    /// is away (503).
    pub const ANY: u32 = INTERNAL | UNAVAILABLE;
    /// An operation that needs a token: 401 without a valid one, 403 without the scope
    /// (or before a password is set).
    pub const SIGNED_IN: u32 = ANY | UNAUTHORIZED | FORBIDDEN;
    /// A JSON body: malformed or invalid (400), too large (413), not JSON (415).
    pub const BODY: u32 = BAD_REQUEST | PAYLOAD_TOO_LARGE | UNSUPPORTED_MEDIA_TYPE;
    /// A `{phone}` in the path: not a phone number (400), not added (404).
    pub const PHONE: u32 = BAD_REQUEST | NOT_FOUND;

    /// The bit of an HTTP status (none for a status no operation answers with an error).
    pub const fn bit(status: u16) -> u32 {
        match status {
            400 => BAD_REQUEST,
            401 => UNAUTHORIZED,
            403 => FORBIDDEN,
            404 => NOT_FOUND,
            409 => CONFLICT,
            413 => PAYLOAD_TOO_LARGE,
            415 => UNSUPPORTED_MEDIA_TYPE,
            429 => TOO_MANY_REQUESTS,
            500 => INTERNAL,
            503 => UNAVAILABLE,
            _ => 0,
        }
    }
}

/// An operation's failure: an [`ApiError`], documented with only the statuses in `S` (see
/// [`statuses`]). Answering a status outside `S` is a bug in the documentation: it is
/// logged, and counted for the tests ([`undocumented`]).
#[derive(Debug, Clone)]
pub struct Errors<const S: u32>(pub ApiError);

impl<const S: u32> ApiResponse for Errors<S> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses
            .retain(|r| r.status.is_some_and(|status| statuses::bit(status) & S != 0));
        meta
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        ApiError::register(registry);
    }
}

impl<const S: u32, E: Into<ApiError>> From<E> for Errors<S> {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl<const S: u32> From<Errors<S>> for poem::Error {
    fn from(err: Errors<S>) -> Self {
        let status = err.0.status();
        if statuses::bit(status) & S == 0 {
            let code = err.0.body().error.code.clone();
            tracing::error!(status, %code, "an operation answered a status its spec does not list; this is a bug");
            UNDOCUMENTED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("{status} {code}: {}", err.0.body().error.message));
        }
        err.0.into()
    }
}

static UNDOCUMENTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The errors answered so far with a status their operation does not document (the test
/// suite fails on any).
pub fn undocumented() -> Vec<String> {
    UNDOCUMENTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn body(code: &str, message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.into(),
            existing_id: None,
        },
    })
}

impl ApiError {
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::BadRequest(body(code, message))
    }
    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        Self::Unauthorized(body(code, message))
    }
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::Forbidden(body(code, message))
    }
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::NotFound(body(code, message))
    }
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::Conflict(body(code, message))
    }
    pub fn payload_too_large(code: &str, message: impl Into<String>) -> Self {
        Self::PayloadTooLarge(body(code, message))
    }
    pub fn unsupported_media_type(code: &str, message: impl Into<String>) -> Self {
        Self::UnsupportedMediaType(body(code, message))
    }
    pub fn too_many_requests(retry_after_secs: u64, message: impl Into<String>) -> Self {
        Self::TooManyRequests(body("too_many_requests", message), retry_after_secs.max(1))
    }
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::Unavailable(body(code, message))
    }

    /// Logs the cause with its chain and returns the opaque 500 the caller sees.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(err) = source {
            chain.push_str(": ");
            chain.push_str(&err.to_string());
            source = err.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::Internal(body(
            "internal_error",
            "an unexpected error occurred; the details are in the server log",
        ))
    }

    /// Names the resource a conflict is about.
    pub fn with_existing_id(mut self, id: String) -> Self {
        if let Self::Conflict(body) = &mut self {
            body.0.error.existing_id = Some(id);
        }
        self
    }

    pub fn code(&self) -> &str {
        &self.body().error.code
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::TooManyRequests(..) => 429,
            Self::Internal(_) => 500,
            Self::Unavailable(_) => 503,
        }
    }

    fn body(&self) -> &ErrorBody {
        match self {
            Self::BadRequest(b)
            | Self::Unauthorized(b)
            | Self::Forbidden(b)
            | Self::NotFound(b)
            | Self::Conflict(b)
            | Self::PayloadTooLarge(b)
            | Self::UnsupportedMediaType(b)
            | Self::TooManyRequests(b, _)
            | Self::Internal(b)
            | Self::Unavailable(b) => &b.0,
        }
    }

    /// Turns the errors poem and poem-openapi raise while reading a request (bad JSON, a
    /// missing field, a wrong content type, a failed auth check) into the API's shape.
    pub fn from_request_error(err: poem::Error) -> Self {
        if let Some(Rejection(api_error)) = err.downcast_ref::<Rejection>() {
            return api_error.clone();
        }
        // A path segment that does not parse: of the path parameters only a `PhonePath` can
        // fail (the others are plain strings). The reason ends with the phone number's error.
        if let Some(path) = err.downcast_ref::<ParsePathError>() {
            let reason = path
                .reason
                .split_once(": ")
                .map_or(path.reason.as_str(), |(_, why)| why);
            return Self::bad_request(
                "invalid_phone",
                format!("{reason} (in a path: +12015550123, 12015550123 or %2B12015550123)"),
            );
        }
        let status = err.status();
        let message = err.to_string();
        match status {
            StatusCode::UNAUTHORIZED => Self::unauthorized(
                "unauthorized",
                "authentication required: send `Authorization: Bearer <token>` or the session cookie",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type(
                "unsupported_content_type",
                format!("{message}; send `Content-Type: application/json`"),
            ),
            StatusCode::PAYLOAD_TOO_LARGE => Self::payload_too_large(
                "payload_too_large",
                "the request body is larger than the server accepts (http.body_limit)",
            ),
            _ => {
                let parameter = err.downcast_ref::<ParseParamError>().map(|p| p.name);
                let (code, message) = parameter_error(parameter, message);
                Self::bad_request(code, message)
            }
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        match crate::db::Failure::of(&err) {
            // A pool that cannot hand out a connection means the database is down or
            // saturated, and a lock held too long means it is busy: both are retryable
            // 503s, not bugs.
            crate::db::Failure::Unavailable => {
                tracing::warn!(error = %err, "database unavailable");
                Self::unavailable(
                    "database_unavailable",
                    "the database is not available right now; retry shortly",
                )
            }
            // PostgreSQL refuses NUL in text: the input was bad, not the server.
            crate::db::Failure::UnstorableText => Self::bad_request(
                "invalid_request",
                "a text value contains a NUL character, which cannot be stored",
            ),
            crate::db::Failure::Other => Self::internal(&err),
        }
    }
}

/// The code for a request the spec's validators refused: parameters with their own
/// codes keep them, so the caller sees the same answer as from the handler's own checks.
fn parameter_error(parameter: Option<&str>, message: String) -> (&'static str, String) {
    match parameter {
        Some("limit") => ("invalid_limit", format!("`limit` must be at least 1 ({message})")),
        Some("page") => (
            "invalid_page",
            format!("`page` must be between 1 and 1000000000 ({message})"),
        ),
        _ => ("invalid_request", message),
    }
}

/// A handler panicked: that is a bug. The caller gets the usual opaque 500 instead of a
/// dropped connection; the panic itself is in the log.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send>) -> Response {
    tracing::error!("a request handler panicked; this is a bug");
    ApiError::Internal(body(
        "internal_error",
        "an unexpected error occurred; the details are in the server log",
    ))
    .into_response()
}

/// An [`ApiError`] travelling as a `poem::Error`, e.g. out of the auth extractor, so that
/// [`ApiError::from_request_error`] can recover it unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.body().error.message)]
pub struct Rejection(pub ApiError);

impl poem::error::ResponseError for Rejection {
    fn status(&self) -> StatusCode {
        self.0.clone().into_response().status()
    }

    fn as_response(&self) -> Response {
        self.0.clone().into_response()
    }
}

/// Middleware: renders every error that escaped the operations (unknown route, wrong
/// method, oversized body, …) as the JSON error shape.
pub async fn json_errors<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let mut resp = match next.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) if err.is_from_response() => err.into_response(),
        Err(err) => render_poem_error(err),
    };
    // RFC 9110: a 405 says which methods the resource does accept.
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = allowed_methods(&path)
        && let Ok(value) = poem::http::HeaderValue::from_str(&allow)
    {
        resp.headers_mut().insert(poem::http::header::ALLOW, value);
    }
    Ok(resp)
}

/// The methods the spec lists for the path, or GET for the dashboard's own pages.
fn allowed_methods(path: &str) -> Option<String> {
    super::routes::allowed_methods(path).or_else(|| (!path.starts_with(super::PREFIX)).then(|| "GET".to_owned()))
}

/// Route-level errors (no such route, wrong method, a server error) get their own codes;
/// everything about the request itself is read as [`ApiError::from_request_error`] does.
fn render_poem_error(err: poem::Error) -> Response {
    let status = err.status();
    let (code, message) = match status {
        _ if err.is::<Rejection>() => return ApiError::from_request_error(err).into_response(),
        StatusCode::NOT_FOUND => ("not_found", "no such route; see /docs for the API".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that HTTP method; see /docs".to_owned(),
        ),
        s if s.is_server_error() => {
            tracing::error!(error = %err, status = %s, "request failed");
            (
                "internal_error",
                "an unexpected error occurred; the details are in the server log".to_owned(),
            )
        }
        _ => return ApiError::from_request_error(err).into_response(),
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
            existing_id: None,
        },
    };
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::to_string(&body_json(&body)).unwrap_or_default())
}

fn body_json(body: &ErrorBody) -> serde_json::Value {
    serde_json::json!({"error": {"code": body.error.code, "message": body.error.message}})
}

impl From<PhoneError> for ApiError {
    fn from(err: PhoneError) -> Self {
        match err {
            PhoneError::NotFound(phone) => ApiError::not_found(
                "phone_not_found",
                format!("no phone {phone} has been added; add it with POST /api/v1/user/phones"),
            ),
            PhoneError::Exists(phone) => {
                ApiError::conflict("phone_exists", format!("the phone {phone} has already been added"))
            }
            PhoneError::QuotaExceeded(limit) => ApiError::forbidden(
                "quota_exceeded",
                format!("the phone quota ({limit}) is used up; delete a phone or raise limits.max_phones"),
            ),
            PhoneError::Restarting => ApiError::unavailable(
                "phone_restarting",
                "the phone's session is restarting; retry in a moment",
            ),
            PhoneError::Timeout => {
                ApiError::unavailable("phone_timeout", "the phone's session did not answer in time; retry")
            }
            PhoneError::NotConnected | PhoneError::Engine(EngineError::NotConnected) => ApiError::conflict(
                "phone_not_connected",
                "the phone is not connected to WhatsApp; connect it first",
            ),
            PhoneError::Engine(EngineError::Timeout) => {
                ApiError::unavailable("whatsapp_timeout", "WhatsApp did not answer in time; retry later")
            }
            PhoneError::Engine(EngineError::NotFound(what)) => {
                ApiError::not_found("not_found", format!("{what} was not found"))
            }
            PhoneError::Engine(EngineError::Rejected(why)) => {
                ApiError::bad_request("rejected_by_whatsapp", format!("WhatsApp refused the request: {why}"))
            }
            PhoneError::Engine(err @ (EngineError::Protocol(_) | EngineError::Storage(_))) => {
                tracing::warn!(error = %err, "engine error");
                ApiError::unavailable(
                    "engine_unavailable",
                    format!("the WhatsApp engine failed: {err}; retry later"),
                )
            }
            PhoneError::QueueFull(wait) => ApiError::too_many_requests(
                wait.as_secs().max(1),
                "the phone's send queue is full (messaging.queue_size, paced by messaging.send_interval); retry later",
            ),
            PhoneError::Db(err) => ApiError::from(std::sync::Arc::unwrap_or_clone(err)),
        }
    }
}

impl From<crate::gateway::Error> for ApiError {
    fn from(err: crate::gateway::Error) -> Self {
        use crate::gateway::Error;
        let message = err.to_string();
        match err {
            Error::Phone(err) => err.into(),
            Error::Db(err) => err.into(),
            Error::WebhookNotFound(_) => ApiError::not_found("webhook_not_found", message),
            Error::DeliveryNotFound => ApiError::not_found("delivery_not_found", message),
            Error::WebhookTaken { webhook_id, service } => ApiError::conflict(
                "webhook_exists",
                format!(
                    "webhook {webhook_id} already receives {}; replace it with PUT /api/v1/user/webhooks/{webhook_id}",
                    service.as_str()
                ),
            )
            .with_existing_id(webhook_id),
            Error::InvalidWebhookUrl(_) => ApiError::bad_request("invalid_webhook_url", message),
            Error::GroupNotFound => ApiError::not_found("group_not_found", message),
            Error::MessageNotFound(_) => ApiError::not_found("message_not_found", message),
            Error::NoMedia(_) => ApiError::not_found("no_media", message),
            Error::CannotAct(_) => ApiError::conflict("invalid_target", message),
            Error::MediaPending(_) => ApiError::conflict("media_pending", message),
            Error::MediaNotKept { .. } => ApiError::not_found("media_not_kept", message),
            Error::DispatcherUnavailable => ApiError::unavailable("webhooks_unavailable", message),
        }
    }
}
