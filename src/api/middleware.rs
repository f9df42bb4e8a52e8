//! Cross-cutting HTTP concerns: one tracing span per request, the body size limit and the
//! request timeout. Query strings are never logged: `?token=` may carry a credential.

use std::time::{Duration, Instant};

use poem::http::header;
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use super::error::{ApiError, Rejection};
use crate::metrics::{Metrics, OperationLabels, RequestLabels};
use poem_openapi::OperationId;
use std::sync::Arc;

/// Logs method, path, status and latency of every request inside its own span, and
/// counts it in the metrics by operation.
pub async fn trace_requests<E: Endpoint>(next: E, req: Request, metrics: Arc<Metrics>) -> poem::Result<Response> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("http", %method, %path);
    async move {
        let started = Instant::now();
        let resp = next.call(req).await.map(IntoResponse::into_response);
        let (status, operation) = match &resp {
            Ok(r) => (r.status(), r.data::<OperationId>().map(|o| o.0)),
            Err(e) => (e.status(), e.data::<OperationId>().map(|o| o.0)),
        };
        let elapsed = started.elapsed();
        let operation = operation.unwrap_or_else(|| route_kind(&path)).to_owned();
        metrics
            .http_requests
            .get_or_create(&RequestLabels {
                operation: operation.clone(),
                method: method.to_string(),
                status: status.as_u16(),
            })
            .inc();
        metrics
            .http_latency
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request");
        }
        resp
    }
    .instrument(span)
    .await
}

/// A label for requests that are not API operations, without their variable parts.
fn route_kind(path: &str) -> &'static str {
    match path {
        "/" => "dashboard",
        "/metrics" => "metrics",
        p if p.starts_with("/assets/") => "dashboard",
        p if p.starts_with("/docs") => "docs",
        "/api/v1/openapi.json" => "spec",
        _ => "other",
    }
}

/// Body size limits: one for the send-message route, which may carry media, one for the rest.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub message: usize,
}

/// Refuses bodies over the route's limit with 413: at once when `Content-Length` says so,
/// and while reading when the body is chunked.
pub async fn limit_body<E: Endpoint>(next: E, mut req: Request, limits: BodyLimits) -> poem::Result<Response> {
    let limit = if req.method() == poem::http::Method::POST && req.uri().path().ends_with("/message") {
        limits.message
    } else {
        limits.default
    };
    let too_large = || {
        Rejection(ApiError::payload_too_large(
            "payload_too_large",
            format!(
                "the request body is larger than {limit} bytes (http.body_limit, or limits.max_media_bytes for messages)"
            ),
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => return Err(too_large().into()),
        Some(_) => {}
        None => {
            let body = req.take_body();
            if !body.is_empty() {
                let mut buf = Vec::new();
                let read = body
                    .into_async_read()
                    .take(limit as u64 + 1)
                    .read_to_end(&mut buf)
                    .await;
                if read.is_err() {
                    return Err(Rejection(ApiError::bad_request(
                        "invalid_request",
                        "the request body could not be read",
                    ))
                    .into());
                }
                if buf.len() > limit {
                    return Err(too_large().into());
                }
                req.set_body(Body::from(buf));
            }
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Answers 503 when a request takes longer than `timeout`.
pub async fn time_out<E: Endpoint>(next: E, req: Request, timeout: Duration) -> poem::Result<Response> {
    match tokio::time::timeout(timeout, next.call(req)).await {
        Ok(resp) => resp.map(IntoResponse::into_response),
        Err(_) => Err(Rejection(ApiError::unavailable(
            "request_timeout",
            format!("the request did not finish within {timeout:?}; retry later"),
        ))
        .into()),
    }
}
