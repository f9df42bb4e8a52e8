use reqwest::Method;

use crate::helpers::{builder, send, spawn_app_with_password};

const LOGIN: &str = "/api/v1/auth/login";

#[tokio::test]
async fn malformed_json_is_a_400_json_error() {
    let app = spawn_app_with_password().await;
    let req = app
        .client
        .post(app.url(LOGIN))
        .header("Content-Type", "application/json")
        .body("{\"password\":");
    send(req).await.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_missing_field_is_a_400_json_error() {
    let app = spawn_app_with_password().await;
    let resp = app.post(LOGIN, None, serde_json::json!({})).await;
    resp.assert_error(400, "invalid_request");
    assert!(resp.body["error"]["message"].as_str().unwrap().contains("LoginRequest"));
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415_json_error() {
    let app = spawn_app_with_password().await;
    let req = app
        .client
        .post(app.url(LOGIN))
        .header("Content-Type", "text/plain")
        .body("password");
    send(req).await.assert_error(415, "unsupported_content_type");
}

#[tokio::test]
async fn unknown_api_routes_are_404_json_errors() {
    let app = spawn_app_with_password().await;
    app.get("/api/v1/does-not-exist", None)
        .await
        .assert_error(404, "not_found");
    app.get("/api/v2/health", None).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_json_error() {
    let app = spawn_app_with_password().await;
    app.request(Method::DELETE, "/api/v1/health", None, None)
        .await
        .assert_error(405, "method_not_allowed");
    app.get(LOGIN, None).await.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn an_oversized_body_is_a_413_json_error_with_or_without_content_length() {
    let app = builder().with("http.body_limit", 2048).spawn().await;
    app.set_first_password().await;
    let big = format!("{{\"password\":\"{}\"}}", "x".repeat(4096));
    let req = app
        .client
        .post(app.url(LOGIN))
        .header("Content-Type", "application/json")
        .body(big.clone());
    send(req).await.assert_error(413, "payload_too_large");

    // Chunked: no Content-Length, so the limit applies while reading.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let req = app
        .client
        .post(app.url(LOGIN))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream));
    send(req).await.assert_error(413, "payload_too_large");

    // A body under the limit still works.
    app.login().await.assert_status(200);
}
