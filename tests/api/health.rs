use crate::helpers::{spawn_app, spawn_app_with_password};

#[tokio::test]
async fn health_is_public_and_reports_ok_with_an_rfc3339_timestamp() {
    let app = spawn_app().await;
    let resp = app.get("/api/v1/health", None).await;
    resp.assert_status(200);
    assert_eq!(resp.body["status"], "ok");
    let timestamp = resp.body["timestamp"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(timestamp).expect("RFC 3339");
    let age = chrono::Utc::now().signed_duration_since(parsed);
    assert!(age.num_seconds().abs() < 60, "timestamp is now: {timestamp}");
    assert_eq!(resp.body.as_object().unwrap().len(), 2, "{}", resp.body);
}

#[tokio::test]
async fn resources_need_authentication_and_report_cpu_memory_and_uptime() {
    let app = spawn_app_with_password().await;
    app.get("/api/v1/health/resources", None)
        .await
        .assert_error(401, "unauthorized");
    let token = app.token().await;
    // The first reading is taken in the background at start-up.
    let body = crate::helpers::eventually(crate::helpers::DEADLINE, || async {
        let resp = app.get("/api/v1/health/resources", Some(&token)).await;
        resp.assert_status(200);
        match resp.body["measuredAt"].is_null() {
            false => Ok(resp.body),
            true => Err(format!("no reading yet: {}", resp.body)),
        }
    })
    .await;
    assert!(body["cpu"]["cores"].as_u64().unwrap() >= 1);
    assert!(body["memory"]["totalBytes"].as_u64().unwrap() > 0);
    assert!(body["process"]["rssBytes"].as_u64().unwrap() > 0);
    assert_eq!(body["process"]["pid"].as_u64().unwrap(), u64::from(std::process::id()));
    assert!(body["uptimeSeconds"].is_u64());
}
