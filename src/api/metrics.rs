//! `/metrics`: the counters in Prometheus' text format, for a token that may read every
//! phone (or for anyone on the separate `metrics.listen` listener).

use poem::http::StatusCode;
use poem::{IntoResponse, Request, Response, handler, web::Data};

use super::error::ApiError;
use super::scheme::presented_token;
use crate::auth::Auth;
use crate::gateway::Gateway;

/// `GET /metrics`: needs a token unless served on its own listener (`metrics.listen`).
#[handler]
pub async fn scrape(
    req: &Request,
    gateway: Data<&std::sync::Arc<Gateway>>,
    auth: Data<&Option<std::sync::Arc<Auth>>>,
) -> Response {
    if let Some(auth) = auth.0 {
        let grant = presented_token(req, auth.cookie_secure()).and_then(|t| auth.authorize(&t).ok());
        let Some((_, grant)) = grant else {
            return ApiError::unauthorized(
                "unauthorized",
                "send `Authorization: Bearer <token>` to read the metrics",
            )
            .into_response();
        };
        // The figures cover every phone: a token limited to some may not read them.
        if !grant.allows(crate::auth::scope::Scope::Read) || !grant.all_phones() {
            return ApiError::forbidden(
                "insufficient_scope",
                "the metrics need a token with the `read` scope for every phone",
            )
            .into_response();
        }
    }
    Response::builder()
        .status(StatusCode::OK)
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(gateway.metrics_text())
}
