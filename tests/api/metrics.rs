use serde_json::json;

use crate::helpers::{builder, send, spawn_app_with_password};

#[tokio::test]
async fn metrics_need_a_token_and_report_what_happened() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.get("/metrics", None).await.assert_error(401, "unauthorized");
    app.post(
        "/api/v1/sandbox/accounts",
        Some(&token),
        json!({"phone": "+12015550150", "name": "Alice"}),
    )
    .await;
    app.pair_phone(&token, "+12015550101").await;
    app.post(
        "/api/v1/user/phones/+12015550101/message",
        Some(&token),
        json!({"recipient": "+12015550150", "message": "hi"}),
    )
    .await
    .assert_status(200);
    app.post(
        "/api/v1/sandbox/phones/+12015550101/inbound",
        Some(&token),
        json!({"from": "+12015550150", "message": "yo"}),
    )
    .await
    .assert_status(200);
    app.get("/api/v1/health", None).await;
    let resp = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for expected in [
        r#"wagate_http_requests_total{operation="health",method="GET",status="200"} 1"#,
        r#"wagate_http_requests_total{operation="sendMessage",method="POST",status="200"} 1"#,
        r#"wagate_http_request_duration_seconds_count{operation="sendMessage"} 1"#,
        r#"wagate_phones{status="connected"} 1"#,
        r#"wagate_phones{status="failed"} 0"#,
        "wagate_messages_sent_total 1",
        "wagate_messages_received_total 1",
        "wagate_session_restarts_total 0",
        "wagate_outbox_depth 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[tokio::test]
async fn a_separate_metrics_address_serves_them_without_a_token() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = builder()
        .with("metrics.listen", format!("127.0.0.1:{port}"))
        .spawn()
        .await;
    app.set_first_password().await;
    let text = crate::helpers::eventually(crate::helpers::DEADLINE, || async {
        match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            Ok(resp) => {
                assert_eq!(resp.status(), 200);
                Ok(resp.text().await.unwrap())
            }
            Err(err) => Err(format!("the metrics address does not answer: {err}")),
        }
    })
    .await;
    assert!(text.contains("wagate_outbox_depth"), "{text}");
    // The main address still wants a token.
    send(app.client.get(app.url("/metrics")))
        .await
        .assert_error(401, "unauthorized");
}
