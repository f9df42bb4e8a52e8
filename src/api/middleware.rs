//! Cross-cutting HTTP concerns: one tracing span per request, the `Host` check, the body
//! size limit and the request timeout. Query strings are never logged: `?token=` may
//! carry a credential.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use poem::http::{Method, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use super::client::client_ip;
use super::error::{ApiError, Rejection};
use crate::api::AppState;
use crate::api::scheme::presented_token;
use crate::metrics::{Metrics, OperationLabels, RequestLabels};
use poem_openapi::OperationId;
use std::sync::Arc;

/// Logs method, path, status and latency of every request inside its own span, and
/// counts it in the metrics by operation.
pub async fn trace_requests<E: Endpoint>(next: E, req: Request, metrics: Arc<Metrics>) -> poem::Result<Response> {
    let method = method_label(req.method());
    let path = req.uri().path().to_owned();
    let client = client_ip(&req);
    let span = tracing::info_span!("http", %method, %path, %client);
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
                method: method.to_owned(),
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

/// The method as a metric label: methods nobody defined become `OTHER`, so a caller
/// cannot mint new label values (each one a time series kept for ever).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", Method::as_str)
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

/// Body size limits: the send-message route may carry media, every other route gets the
/// default, and a request without a valid token gets the small one whatever its route.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub message: usize,
}

/// Most bytes of body a request without a valid token may send: enough to log in.
pub const UNAUTHENTICATED_BODY_LIMIT: usize = 64 * 1024;

impl BodyLimits {
    /// The limit for `req`: decided from its route and its token before a byte of its
    /// body is read.
    fn for_request(&self, req: &Request) -> usize {
        let authenticated = req.data::<AppState>().is_some_and(|state| {
            presented_token(req, state.auth.cookie_secure()).is_some_and(|t| state.auth.authenticate(&t).is_ok())
        });
        if !authenticated {
            self.default.min(UNAUTHENTICATED_BODY_LIMIT)
        } else if is_send_message(req) {
            self.message
        } else {
            self.default
        }
    }
}

/// `POST /api/v1/user/phones/{phone}/message`, the one route that takes media.
fn is_send_message(req: &Request) -> bool {
    req.method() == Method::POST
        && super::routes::find(req.method(), req.uri().path()).is_some_and(|r| r.operation_id == "sendMessage")
}

/// Refuses bodies over the request's limit with 413: at once when `Content-Length` says
/// so, and otherwise as the handler streams the body, which is never buffered here.
pub async fn limit_body<E: Endpoint>(next: E, mut req: Request, limits: BodyLimits) -> poem::Result<Response> {
    let limit = limits.for_request(&req);
    let too_large = || {
        Rejection(ApiError::payload_too_large(
            "payload_too_large",
            if limit == UNAUTHENTICATED_BODY_LIMIT {
                format!("the request body is larger than {limit} bytes, the most accepted without a valid token")
            } else {
                format!(
                    "the request body is larger than {limit} bytes (http.body_limit, or limits.max_media_bytes for messages)"
                )
            },
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large().into());
    }
    let exceeded = std::sync::Arc::new(AtomicBool::new(false));
    let body = req.take_body();
    if !body.is_empty() {
        let flag = std::sync::Arc::clone(&exceeded);
        let mut seen = 0usize;
        let capped = body.into_bytes_stream().map(move |chunk| {
            let chunk = chunk?;
            seen = seen.saturating_add(chunk.len());
            if seen > limit {
                flag.store(true, Ordering::Release);
                return Err(std::io::Error::other("the request body is too large"));
            }
            Ok(chunk)
        });
        req.set_body(Body::from_bytes_stream(capped));
    }
    let resp = next.call(req).await.map(IntoResponse::into_response);
    // The handler failed reading past the limit: say so, not "invalid JSON".
    if exceeded.load(Ordering::Acquire) {
        return Err(too_large().into());
    }
    resp
}

/// `server.allowed_hosts`: the names this server answers to (empty: any).
#[derive(Debug, Default)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    pub fn new(hosts: &[String]) -> Self {
        Self(hosts.iter().map(|h| host_name(h.trim()).to_ascii_lowercase()).collect())
    }

    fn allows(&self, host: Option<&str>) -> bool {
        self.0.is_empty()
            || host.is_some_and(|h| self.0.iter().any(|allowed| allowed.eq_ignore_ascii_case(host_name(h))))
    }
}

/// The name in a `Host` value, without its port: `example.com:8080` → `example.com`,
/// `[::1]:8080` → `::1`.
fn host_name(host: &str) -> &str {
    let host = match host.strip_prefix('[') {
        Some(rest) => return rest.split(']').next().unwrap_or_default(),
        None => host,
    };
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
    .trim_end_matches('.')
}

/// Answers 421 to a request naming a host the server is not configured for: a page that
/// rebinds its own domain to this server's address still sends its own name.
pub async fn check_host<E: Endpoint>(
    next: E,
    req: Request,
    hosts: std::sync::Arc<AllowedHosts>,
) -> poem::Result<Response> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host());
    if !hosts.allows(host) {
        let body = serde_json::json!({"error": {
            "code": "host_not_allowed",
            "message": "this server does not answer to that host name (server.allowed_hosts)",
        }});
        return Ok(Response::builder()
            .status(StatusCode::MISDIRECTED_REQUEST)
            .content_type("application/json")
            .body(body.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_send_route_takes_media() {
        let request =
            |method: Method, path: &str| Request::builder().method(method).uri(path.parse().unwrap()).finish();
        assert!(is_send_message(&request(
            Method::POST,
            "/api/v1/user/phones/+12015550123/message"
        )));
        for path in [
            "/api/v1/user/phones//message",
            "/api/v1/anything/message",
            "/x/message",
            "/api/v1/user/phones/+1/message/extra",
        ] {
            assert!(!is_send_message(&request(Method::POST, path)), "{path}");
        }
        assert!(!is_send_message(&request(
            Method::GET,
            "/api/v1/user/phones/+12015550123/message"
        )));
    }

    #[test]
    fn hosts_match_without_their_port() {
        let hosts = AllowedHosts::new(&["Wagate.Example.com".into(), "127.0.0.1".into(), "[::1]".into()]);
        for ok in [
            "wagate.example.com",
            "wagate.example.com:8443",
            "127.0.0.1:8080",
            "[::1]:8080",
            "WAGATE.example.com.",
        ] {
            assert!(hosts.allows(Some(ok)), "{ok}");
        }
        for bad in ["evil.example", "wagate.example.com.evil.example", "localhost"] {
            assert!(!hosts.allows(Some(bad)), "{bad}");
        }
        assert!(!hosts.allows(None));
        assert!(AllowedHosts::new(&[]).allows(Some("anything")));
        assert_eq!(method_label(&Method::from_bytes(b"FOO").unwrap()), "OTHER");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
