//! Scoped permanent tokens: every operation of the spec tried with a token of each scope
//! (403 `insufficient_scope` exactly where the scope does not cover it), and tokens limited
//! to phones, which cannot see or reach any other phone.

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, send, spawn_app_with_password};
use crate::security::{operations, plausible};

const A: &str = "+12015550101";
const B: &str = "+12015550102";
const ALICE: &str = "+12015550150";

/// What each operation needs, written out here rather than read from the code under test.
fn expected_scope(method: &Method, operation: &str) -> &'static str {
    match operation {
        "listTokens" | "revokeToken" => "admin",
        "sendMessage" | "sendTyping" | "hasWhatsapp" | "reactToMessage" | "markMessageRead" | "markChatRead" => "send",
        "addPhone"
        | "deletePhone"
        | "connectPhone"
        | "disconnectPhone"
        | "logoutPhone"
        | "createWebhook"
        | "updateWebhook"
        | "deleteWebhook"
        | "rotateWebhookSecret"
        | "redeliverWebhookDelivery"
        | "redeliverWebhookDeliveries"
        | "testWebhook"
        | "sandboxCreateAccount"
        | "sandboxScan"
        | "sandboxInbound"
        | "sandboxFault"
        | "sandboxCreateGroup" => "manage",
        _ if *method == Method::GET => "read",
        other => panic!("{other} has no expected scope: add it to this table"),
    }
}

async fn mint(app: &TestApp, body: Value) -> Value {
    let mut body = body;
    body["password"] = PASSWORD.into();
    let resp = app.post("/api/v1/auth/generate-token", None, body).await;
    resp.assert_status(200);
    resp.body
}

#[tokio::test]
async fn every_operation_answers_403_exactly_where_the_tokens_scope_does_not_reach() {
    let app = spawn_app_with_password().await;
    let owner = app.token().await;
    app.add_phone(&owner, A).await;
    let mut tokens = Vec::new();
    for scope in ["read", "send", "manage", "admin"] {
        let minted = mint(&app, json!({"name": scope, "scopes": [scope]})).await;
        assert_eq!(minted["scopes"], json!([scope]));
        tokens.push((scope, minted["token"].as_str().unwrap().to_owned()));
    }
    let mut tried = 0;
    for (method, path, op) in operations() {
        if op["security"].as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        let id = op["operationId"].as_str().unwrap();
        let needed = expected_scope(&method, id);
        assert_eq!(op["x-wagate-scope"], needed, "the spec documents {id}'s scope");
        for (scope, token) in &tokens {
            let mut req = app
                .client
                .request(method.clone(), app.url(&plausible(&path)))
                .bearer_auth(token);
            if method != Method::GET && method != Method::DELETE {
                req = req.json(&json!({}));
            }
            let resp = send(req).await;
            let refused = resp.status == 403 && resp.body["error"]["code"] == "insufficient_scope";
            let allowed = *scope == "admin" || *scope == needed;
            assert_eq!(
                refused, !allowed,
                "{method} {path} ({id}) with a `{scope}` token answered {} {}",
                resp.status, resp.body
            );
            if refused {
                let message = resp.body["error"]["message"].as_str().unwrap();
                assert!(message.contains(&format!("`{needed}`")), "{message}");
            }
            tried += 1;
        }
    }
    assert!(tried > 100, "only {tried} requests");
}

#[tokio::test]
async fn a_token_limited_to_phones_cannot_see_or_reach_the_others() {
    let app = spawn_app_with_password().await;
    let owner = app.token().await;
    app.post(
        "/api/v1/sandbox/accounts",
        Some(&owner),
        json!({"phone": ALICE, "name": "Alice"}),
    )
    .await
    .assert_status(201);
    app.pair_phone(&owner, A).await;
    app.pair_phone(&owner, B).await;
    let minted = mint(
        &app,
        json!({"name": "tenant a", "scopes": ["read", "send", "manage"], "phones": ["12015550101"]}),
    )
    .await;
    assert_eq!(minted["phones"], json!([A]), "stored in E.164");
    let token = minted["token"].as_str().unwrap().to_owned();

    let phones = app.get("/api/v1/user/phones", Some(&token)).await.body;
    let listed: Vec<&str> = phones["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phone"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [A]);
    app.get(&format!("/api/v1/user/phones/{A}/messages"), Some(&token))
        .await
        .assert_status(200);
    // Another phone, added or not, is simply not there.
    let other = app.get(&format!("/api/v1/user/phones/{B}"), Some(&token)).await;
    other.assert_error(404, "phone_not_found");
    let missing = app.get("/api/v1/user/phones/+12015550177", Some(&token)).await;
    missing.assert_error(404, "phone_not_found");
    app.post(
        &format!("/api/v1/user/phones/%2B{}/message", &B[1..]),
        Some(&token),
        json!({"recipient": ALICE, "message": "hi"}),
    )
    .await
    .assert_error(404, "phone_not_found");
    // However the number is written: digits percent-encoded, or not a number at all.
    let encoded: String = B[1..].bytes().map(|b| format!("%{b:02X}")).collect();
    app.get(&format!("/api/v1/user/phones/{encoded}/messages"), Some(&token))
        .await
        .assert_error(404, "phone_not_found");
    app.get("/api/v1/user/phones/%zz/messages", Some(&token))
        .await
        .assert_error(404, "phone_not_found");
    // The metrics cover every phone.
    let metrics = send(app.client.get(app.url("/metrics")).bearer_auth(&token)).await;
    assert_eq!(metrics.status, 403);
    // Operations about every phone are refused; adding only its own phones is allowed.
    app.post(
        "/api/v1/user/webhooks",
        Some(&token),
        json!({"url": "http://127.0.0.1:9/x", "services": ["message.received"]}),
    )
    .await
    .assert_error(403, "insufficient_scope");
    app.get("/api/v1/user/contacts", Some(&token))
        .await
        .assert_error(403, "insufficient_scope");
    app.post("/api/v1/user/phones", Some(&token), json!({"phone": "+12015550103"}))
        .await
        .assert_error(403, "insufficient_scope");

    // The event stream carries only its phones' events.
    let url = app.url("/api/v1/ws").replacen("http://", "ws://", 1);
    let mut stream = crate::webhooks::open_stream(&url, &token).await;
    for (phone, text) in [(B, "to b"), (A, "to a")] {
        app.post(
            &format!("/api/v1/sandbox/phones/{phone}/inbound"),
            Some(&owner),
            json!({"from": ALICE, "message": text}),
        )
        .await
        .assert_status(200);
    }
    let first = tokio::time::timeout(crate::helpers::DEADLINE, async {
        loop {
            let message = stream.next().await.unwrap().unwrap();
            if let Ok(text) = message.to_text() {
                let event: Value = serde_json::from_str(text).unwrap_or_default();
                if event["event"] == "message.received" {
                    return event;
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(first["phone"], A, "{first}");
    assert_eq!(first["data"]["text"], "to a");

    // The owner's token list shows what each token may do; older tokens may do everything.
    let list = app.get("/api/v1/auth/tokens", Some(&owner)).await.body;
    let tenant = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "tenant a")
        .unwrap();
    assert_eq!(tenant["scopes"], json!(["read", "send", "manage"]));
    assert_eq!(tenant["phones"], json!([A]));
    let everything = mint(&app, json!({"name": "all"})).await;
    assert_eq!(everything["scopes"], json!(["admin"]));
    assert!(everything.get("phones").is_none_or(Value::is_null), "{everything}");
}

#[tokio::test]
async fn bad_scope_requests_are_refused_clearly() {
    let app = spawn_app_with_password().await;
    for (body, code) in [
        (json!({"scopes": []}), "invalid_request"),
        (json!({"scopes": ["root"]}), "invalid_request"),
        (json!({"phones": ["not a phone"]}), "invalid_phone"),
        (json!({"phones": []}), "invalid_request"),
    ] {
        let mut body = body;
        body["password"] = PASSWORD.into();
        app.post("/api/v1/auth/generate-token", None, body)
            .await
            .assert_error(400, code);
    }
}

#[tokio::test]
async fn tokens_minted_before_scopes_keep_full_access() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    use wagate::db::tokens::api_token;
    let app = spawn_app_with_password().await;
    let minted = mint(&app, json!({"name": "old", "scopes": ["read"]})).await;
    let token = minted["token"].as_str().unwrap().to_owned();
    // As a token row from before the scopes migration looks.
    api_token::Entity::update_many()
        .col_expr(api_token::Column::Scopes, Expr::value(Option::<String>::None))
        .filter(api_token::Column::Id.eq(minted["id"].as_str().unwrap()))
        .exec(&app.state.db)
        .await
        .unwrap();
    let app = app.restart().await;
    let list = app.get("/api/v1/auth/tokens", Some(&token)).await;
    list.assert_status(200);
    assert_eq!(list.body["data"][0]["scopes"], json!(["admin"]), "{}", list.body);
}
