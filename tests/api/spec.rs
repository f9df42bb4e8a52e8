use serde_json::Value;

use crate::helpers::spawn_app;

fn committed_spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    std::fs::read_to_string(path).expect("openapi/openapi.json is committed")
}

#[test]
fn committed_spec_matches_the_code() {
    assert!(
        committed_spec() == wagate::api::spec_json(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test]
async fn live_spec_is_the_committed_spec() {
    let app = spawn_app().await;
    let live: Value = app.get("/api/v1/openapi.json", None).await.body;
    let committed: Value = serde_json::from_str(&committed_spec()).unwrap();
    assert_eq!(live, committed);
}

#[test]
fn every_operation_is_documented_for_sdk_generators() {
    let spec: Value = serde_json::from_str(&wagate::api::spec_json()).unwrap();
    let public = [
        "health",
        "login",
        "generateToken",
        "changePassword",
        "verifyToken",
        "logout",
    ];
    let mut ids = std::collections::HashSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        assert!(path.starts_with("/api/v1/"), "{path}");
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: operationId"));
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{id}: summary");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{id}: tags");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2') || k == "101"),
                "{id}: a success response"
            );
            // Public operations say so (`security: []`) rather than leave it to a default.
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{id}: no explicit security"));
            let secured = !security.is_empty();
            assert_eq!(secured, !public.contains(&id), "{id}: security requirement");
            if secured {
                assert!(responses.contains_key("401"), "{id}: documents 401");
                assert!(responses.contains_key("403"), "{id}: documents 403");
            }
            // Each operation lists the errors it can answer, not every error there is:
            // 413 and 415 only with a request body, 429 only where something is throttled
            // or queued, 404 only with an id or a phone in the path (or the sandbox,
            // which is absent unless enabled), 409 only where a state can conflict (a read of stored data cannot).
            let has_body = op.get("requestBody").is_some();
            for status in ["413", "415"] {
                assert_eq!(responses.contains_key(status), has_body, "{id}: {status}");
            }
            let throttled = [
                "login",
                "generateToken",
                "changePassword",
                "sendMessage",
                "reactToMessage",
            ];
            assert_eq!(responses.contains_key("429"), throttled.contains(&id), "{id}: 429");
            if !path.contains('{') && !id.starts_with("sandbox") {
                assert!(!responses.contains_key("404"), "{id}: 404 without an id in the path");
            }
            let reads_stored_data = ["listPhones", "getPhone", "listMessages", "listContacts", "listWebhooks"];
            if reads_stored_data.contains(&id) {
                assert!(!responses.contains_key("409"), "{id}: 409 where nothing can conflict");
            }
        }
    }
    // OpenAPI 3.0, as declared: no 3.1-only fields; the webhooks are `x-webhooks`.
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.0."),
        "{}",
        spec["openapi"]
    );
    assert!(spec["info"].get("summary").is_none() && spec.get("webhooks").is_none());
    assert!(spec["servers"].as_array().is_some_and(|s| !s.is_empty()), "servers");
    assert!(
        spec["x-webhooks"]["event"]["post"]["requestBody"].is_object(),
        "webhook payloads are documented"
    );
    // Webhook bodies are told apart by `event`: each value names one schema, whose
    // `event` allows exactly the values that name it.
    let body = &spec["components"]["schemas"]["WebhookBody"];
    assert_eq!(body["discriminator"]["propertyName"], "event", "{body}");
    let mapping = body["discriminator"]["mapping"].as_object().unwrap();
    let variants: Vec<&str> = body["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["$ref"].as_str().unwrap())
        .collect();
    for event in [
        "message.received",
        "message.sent",
        "message.status",
        "message.media",
        "phone.status",
        "ping",
    ] {
        let target = mapping[event]
            .as_str()
            .unwrap_or_else(|| panic!("{event} is not mapped"));
        assert!(variants.contains(&target), "{event} -> {target}");
        let name = target.rsplit('/').next().unwrap();
        let kind = &spec["components"]["schemas"][name]["properties"]["event"];
        let kind = match kind.get("$ref").and_then(Value::as_str) {
            Some(r) => &spec["components"]["schemas"][r.rsplit('/').next().unwrap()],
            None => kind,
        };
        let values = kind["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}.event: {kind}"));
        assert!(values.iter().any(|v| v == event), "{name}.event allows {event}: {kind}");
        let named: Vec<&String> = mapping.iter().filter(|(_, t)| *t == target).map(|(e, _)| e).collect();
        assert_eq!(
            values.len(),
            named.len(),
            "{name}.event allows only its own events: {kind}"
        );
    }
    for scheme in ["bearerAuth", "cookieAuth"] {
        assert!(spec["components"]["securitySchemes"][scheme].is_object(), "{scheme}");
    }
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger"), "Swagger UI page");
}
