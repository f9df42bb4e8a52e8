use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::json;
use wagate::auth::jwt::{Claims, Jwt, TokenKind};
use wagate::db::settings::{self, Key};

use crate::helpers::{PASSWORD, builder, send, spawn_app, spawn_app_with_password};

const CHANGE: &str = "/api/v1/auth/change-password";
const LOGIN: &str = "/api/v1/auth/login";
const TOKENS: &str = "/api/v1/auth/tokens";
const RESOURCES: &str = "/api/v1/health/resources";

#[tokio::test]
async fn protected_routes_answer_403_password_not_set_until_a_password_exists() {
    let app = spawn_app().await;
    app.get(RESOURCES, None).await.assert_error(403, "password_not_set");
    app.get(TOKENS, Some("whatever"))
        .await
        .assert_error(403, "password_not_set");
    app.post(LOGIN, None, json!({"password": "anything-at-all"}))
        .await
        .assert_error(403, "password_not_set");
    app.post(
        "/api/v1/auth/generate-token",
        None,
        json!({"password": "anything-at-all"}),
    )
    .await
    .assert_error(403, "password_not_set");
}

#[tokio::test]
async fn first_password_is_set_from_loopback_with_blank_old_password() {
    let app = spawn_app().await;
    app.post(CHANGE, None, json!({"oldPassword": "", "newPassword": PASSWORD}))
        .await
        .assert_status(200);
    let token = app.token().await;
    app.get(RESOURCES, Some(&token)).await.assert_status(200);
}

#[tokio::test]
async fn a_loopback_caller_through_a_proxy_or_a_rebound_name_needs_the_setup_code() {
    let app = spawn_app().await;
    let change = |headers: &[(&str, &str)]| {
        let mut req = app.client.post(app.url(CHANGE)).json(&json!({"newPassword": PASSWORD}));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        send(req)
    };
    // A page whose domain was rebound to 127.0.0.1 still names itself in Host; a reverse
    // proxy on the same host forwards for someone else. Neither is the owner's own machine.
    for headers in [
        vec![("host", "evil.example")],
        vec![("host", "wagate.example.com:443")],
        vec![("x-forwarded-for", "203.0.113.9")],
        vec![("x-real-ip", "203.0.113.9")],
        vec![("forwarded", "for=203.0.113.9;proto=https")],
        vec![("x-forwarded-host", "wagate.example.com")],
    ] {
        change(&headers).await.assert_error(403, "setup_code_required");
    }
    assert!(app.state.auth.setup_code().is_some(), "nothing was set");
    // Through the proxy, the printed setup code works.
    let code = app.state.auth.setup_code().unwrap();
    let req = app
        .client
        .post(app.url(CHANGE))
        .header("host", "wagate.example.com")
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"newPassword": PASSWORD, "setupCode": code}));
    send(req).await.assert_status(200);
    // And a plain local caller naming a loopback host needs none (on a fresh instance).
    let fresh = spawn_app().await;
    let req = fresh
        .client
        .post(fresh.url(CHANGE))
        .header("host", "localhost")
        .json(&json!({"newPassword": PASSWORD}));
    send(req).await.assert_status(200);
}

#[tokio::test]
async fn first_password_from_remote_needs_the_one_time_setup_code() {
    let app = builder().with("auth.allow_loopback_setup", false).spawn().await;
    let code = app
        .state
        .auth
        .setup_code()
        .expect("setup code while no password is set");
    app.post(CHANGE, None, json!({"newPassword": PASSWORD}))
        .await
        .assert_error(403, "setup_code_required");
    app.post(
        CHANGE,
        None,
        json!({"newPassword": PASSWORD, "setupCode": "WRONGCODE1"}),
    )
    .await
    .assert_error(403, "setup_code_required");
    app.post(CHANGE, None, json!({"newPassword": PASSWORD, "setupCode": code}))
        .await
        .assert_status(200);
    assert!(app.state.auth.setup_code().is_none(), "the code is spent");
    // Once a password exists, the setup code no longer replaces the old password.
    app.post(
        CHANGE,
        None,
        json!({"newPassword": "another password", "setupCode": code}),
    )
    .await
    .assert_error(400, "old_password_required");
}

#[tokio::test]
async fn new_passwords_shorter_than_8_characters_are_refused() {
    let app = spawn_app().await;
    app.post(CHANGE, None, json!({"newPassword": "1234567"}))
        .await
        .assert_error(400, "password_too_short");
    app.post(CHANGE, None, json!({"newPassword": "12345678"}))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn login_with_wrong_password_returns_401() {
    let app = spawn_app_with_password().await;
    app.post(LOGIN, None, json!({"password": "not the password"}))
        .await
        .assert_error(401, "invalid_password");
}

#[tokio::test]
async fn login_returns_the_token_and_an_httponly_strict_cookie() {
    let app = spawn_app_with_password().await;
    let resp = app.login().await;
    resp.assert_status(200);
    let token = resp.body["token"].as_str().unwrap();
    assert_eq!(resp.body["tokenType"], "Bearer");
    assert_eq!(resp.body["expiresIn"], 24 * 3600);
    let cookie = resp.header("set-cookie").unwrap();
    assert!(cookie.starts_with(&format!("wagate_session={token}")), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not Secure unless configured: {cookie}");
}

#[tokio::test]
async fn over_https_the_cookie_is_secure_host_prefixed_and_hsts_is_sent() {
    let app = builder().with("auth.cookie_secure", true).spawn().await;
    app.set_first_password().await;
    let resp = app.login().await;
    let cookie = resp.header("set-cookie").unwrap().to_owned();
    let token = resp.body["token"].as_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("__Host-wagate_session={token}")),
        "{cookie}"
    );
    for attribute in ["Secure", "Path=/", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(
        resp.header("strict-transport-security"),
        Some("max-age=31536000"),
        "no HSTS over HTTPS"
    );
    // Only the prefixed cookie counts: a plain one may have been planted by a subdomain.
    let with = |name: &str| {
        app.client
            .get(app.url(RESOURCES))
            .header("Cookie", format!("{name}={token}"))
    };
    send(with("__Host-wagate_session")).await.assert_status(200);
    send(with("wagate_session")).await.assert_error(401, "unauthorized");
    // Without the setting: the plain name, and no HSTS (plain HTTP must keep working).
    let plain = spawn_app_with_password().await;
    let resp = plain.login().await;
    assert!(resp.header("set-cookie").unwrap().starts_with("wagate_session="));
    assert!(resp.header("strict-transport-security").is_none());
}

#[tokio::test]
async fn bearer_header_and_cookie_both_authenticate() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    app.get(RESOURCES, Some(&token)).await.assert_status(200);
    let by_cookie = app
        .client
        .get(app.url(RESOURCES))
        .header("Cookie", format!("theme=dark; wagate_session={token}"));
    send(by_cookie).await.assert_status(200);
    app.get(RESOURCES, None).await.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_cookie_only_counts_for_changes_made_from_the_servers_own_pages() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    let own = app.base.clone();
    let cookie = format!("wagate_session={token}");
    let add = |origin: Option<&str>, referer: Option<&str>, phone: &str| {
        let mut req = app
            .client
            .post(app.url("/api/v1/user/phones"))
            .header("Cookie", &cookie)
            .json(&json!({"phone": phone}));
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        if let Some(referer) = referer {
            req = req.header("Referer", referer);
        }
        send(req)
    };
    // Another site, another port of the same host (SameSite ignores ports), no origin at all.
    let other_port = own.replace(&app.base[app.base.rfind(':').unwrap()..], ":3000");
    for (origin, referer) in [
        (Some("https://evil.example"), None),
        (Some(other_port.as_str()), None),
        (Some("null"), None),
        (None, Some("https://evil.example/page")),
        (None, None),
    ] {
        add(origin, referer, "+12015550111")
            .await
            .assert_error(403, "cross_origin_refused");
    }
    app.get("/api/v1/user/phones/+12015550111", Some(&token))
        .await
        .assert_error(404, "phone_not_found");
    // The dashboard's own page: Origin (or Referer) is this server.
    add(Some(own.as_str()), None, "+12015550111").await.assert_status(201);
    add(None, Some(&format!("{own}/")), "+12015550112")
        .await
        .assert_status(201);
    // Reading with the cookie needs no origin; Bearer requests never do.
    let read = app.client.get(app.url(RESOURCES)).header("Cookie", &cookie);
    send(read).await.assert_status(200);
    app.post("/api/v1/user/phones", Some(&token), json!({"phone": "+12015550113"}))
        .await
        .assert_status(201);

    // The live event stream: a cross-site page cannot open it with the cookie.
    let url = app.url("/api/v1/ws").replacen("http://", "ws://", 1);
    let upgrade = |origin: &str| {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
        request.headers_mut().insert("Cookie", cookie.parse().unwrap());
        request.headers_mut().insert("Origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    assert!(
        upgrade("https://evil.example").await.is_err(),
        "a cross-site page opened the stream"
    );
    assert!(upgrade(&own).await.is_ok(), "the dashboard could not open the stream");
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_with_retry_after() {
    let app = builder()
        .with("auth.login_max_failures", 3)
        .with("auth.login_window", "1h")
        .spawn()
        .await;
    app.set_first_password().await;
    for _ in 0..3 {
        app.post(LOGIN, None, json!({"password": "wrong password"}))
            .await
            .assert_error(401, "invalid_password");
    }
    let resp = app.login().await;
    resp.assert_error(429, "too_many_requests");
    let retry: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 3000 && retry <= 3601, "Retry-After {retry}");
    // Password checks elsewhere share the limit.
    app.post("/api/v1/auth/generate-token", None, json!({"password": PASSWORD}))
        .await
        .assert_error(429, "too_many_requests");
}

/// A login attempt as a client behind the test's trusted proxy (the loopback peer).
async fn login_from(app: &crate::helpers::TestApp, client: &str, password: &str) -> crate::helpers::Response {
    send(
        app.client
            .post(app.url(LOGIN))
            .header("x-forwarded-for", client)
            .json(&json!({"password": password})),
    )
    .await
}

#[tokio::test]
async fn parallel_wrong_guesses_from_one_address_reach_argon2_at_most_the_limit() {
    let app = builder()
        .with("auth.login_max_failures", 10)
        .with("auth.login_window", "1h")
        .spawn()
        .await;
    app.set_first_password().await;
    let guesses = (0..200).map(|i| {
        let app = &app;
        async move {
            app.post(LOGIN, None, json!({"password": format!("wrong guess {i}")}))
                .await
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let checked = answers.iter().filter(|r| r.status == 401).count();
    let refused = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        checked + refused,
        200,
        "other answers: {:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        checked <= 10,
        "{checked} guesses were checked against the password, the limit is 10"
    );
    app.login().await.assert_error(429, "too_many_requests");
}

#[tokio::test]
async fn password_hashes_are_bounded_and_the_overflow_is_told_to_retry() {
    let app = builder()
        .with("server.trusted_proxies", vec!["127.0.0.1/32"])
        .with("auth.max_concurrent_hashes", 1)
        .with("auth.hash_queue", 1)
        .with("auth.account_backoff_after", 1000)
        .spawn()
        .await;
    app.set_first_password().await;
    let guesses = (0..40).map(|i| {
        let app = &app;
        async move { login_from(app, &format!("203.0.113.{i}"), "wrong password").await }
    });
    let answers = futures::future::join_all(guesses).await;
    let busy: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(
        answers.iter().all(|r| r.status == 401 || r.status == 429),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        !busy.is_empty(),
        "40 parallel checks with one hashing slot and a queue of one all ran"
    );
    for resp in busy {
        resp.assert_error(429, "too_many_requests");
        assert!(
            resp.body["error"]["message"].as_str().unwrap().contains("hash_queue"),
            "{}",
            resp.body
        );
        assert_eq!(resp.header("retry-after"), Some("1"));
    }
    // A busy answer is not a guess: that address may try at once.
    login_from(&app, "203.0.113.250", PASSWORD).await.assert_status(200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_and_each_ipv6_64_has_its_own_throttle() {
    let app = builder()
        .with("server.trusted_proxies", vec!["127.0.0.1/32"])
        .with("auth.login_max_failures", 2)
        .with("auth.login_window", "1h")
        .spawn()
        .await;
    app.set_first_password().await;
    for _ in 0..2 {
        login_from(&app, "203.0.113.1", "wrong password")
            .await
            .assert_status(401);
    }
    login_from(&app, "203.0.113.1", PASSWORD)
        .await
        .assert_error(429, "too_many_requests");
    // A header the proxy does not write (here `Forwarded`) is the client's own: ignored.
    send(
        app.client
            .post(app.url(LOGIN))
            .header("x-forwarded-for", "203.0.113.1")
            .header("forwarded", "for=203.0.113.77")
            .json(&json!({"password": PASSWORD})),
    )
    .await
    .assert_error(429, "too_many_requests");
    login_from(&app, "203.0.113.2", PASSWORD).await.assert_status(200);
    // One subscriber's /64 is one address, however many addresses it uses.
    login_from(&app, "2001:db8:1:2::1", "wrong password")
        .await
        .assert_status(401);
    login_from(&app, "2001:db8:1:2::2", "wrong password")
        .await
        .assert_status(401);
    login_from(&app, "2001:db8:1:2:ffff::99", PASSWORD)
        .await
        .assert_error(429, "too_many_requests");
    login_from(&app, "2001:db8:1:3::1", PASSWORD).await.assert_status(200);
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
    let app = builder()
        .with("auth.login_max_failures", 2)
        .with("auth.login_window", "1h")
        .spawn()
        .await;
    app.set_first_password().await;
    login_from(&app, "203.0.113.1", "wrong password")
        .await
        .assert_status(401);
    login_from(&app, "203.0.113.2", "wrong password")
        .await
        .assert_status(401);
    login_from(&app, "203.0.113.3", PASSWORD)
        .await
        .assert_error(429, "too_many_requests");
}

#[tokio::test]
async fn guesses_from_many_addresses_slow_every_attempt_but_never_lock_the_owner_out() {
    let app = builder()
        .with("server.trusted_proxies", vec!["127.0.0.1/32"])
        .with("auth.login_max_failures", 2)
        .with("auth.account_backoff_after", 3)
        .with("auth.account_backoff_max", "300ms")
        .spawn()
        .await;
    app.set_first_password().await;
    assert!(app.state.auth.login_delay().is_zero());
    for i in 0..8 {
        login_from(&app, &format!("198.51.100.{i}"), "wrong password")
            .await
            .assert_status(401);
    }
    let delay = app.state.auth.login_delay();
    assert!(
        !delay.is_zero() && delay <= std::time::Duration::from_millis(300),
        "{delay:?}"
    );
    // Delayed, not locked: the owner still gets in, from anywhere.
    login_from(&app, "192.0.2.77", PASSWORD).await.assert_status(200);
}

#[tokio::test]
async fn a_host_outside_allowed_hosts_gets_421() {
    let app = builder()
        .with("server.allowed_hosts", vec!["wagate.example", "127.0.0.1"])
        .spawn()
        .await;
    let with_host = |host: &'static str| send(app.client.get(app.url("/api/v1/health")).header("host", host));
    with_host("evil.example").await.assert_error(421, "host_not_allowed");
    with_host("wagate.example:8443").await.assert_status(200);
    app.get("/api/v1/health", None).await.assert_status(200);
    // Nothing else is reached either: not the dashboard, not the first-password route.
    send(app.client.get(app.url("/")).header("host", "evil.example"))
        .await
        .assert_error(421, "host_not_allowed");
    send(
        app.client
            .post(app.url(CHANGE))
            .header("host", "rebound.example")
            .json(&json!({"newPassword": PASSWORD})),
    )
    .await
    .assert_error(421, "host_not_allowed");
    assert!(!app.state.auth.password_set());
}

#[tokio::test]
async fn a_correct_password_clears_earlier_failures() {
    let app = builder().with("auth.login_max_failures", 2).spawn().await;
    app.set_first_password().await;
    app.post(LOGIN, None, json!({"password": "wrong password"}))
        .await
        .assert_status(401);
    app.login().await.assert_status(200);
    app.post(LOGIN, None, json!({"password": "wrong password"}))
        .await
        .assert_status(401);
    app.login().await.assert_status(200);
}

async fn signing_key(app: &crate::helpers::TestApp) -> Jwt {
    let secret = settings::get(&app.state.db, Key::JwtSecret).await.unwrap().unwrap();
    Jwt::new(&hex::decode(secret).unwrap())
}

fn session_claims(exp_offset: i64, epoch: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: "owner".into(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        exp: Some(now + exp_offset),
        kind: TokenKind::Session,
        epoch: Some(epoch),
    }
}

#[tokio::test]
async fn tampered_unsigned_expired_and_foreign_tokens_are_rejected() {
    let app = spawn_app_with_password().await;
    let good = app.token().await;
    app.get(RESOURCES, Some(&good)).await.assert_status(200);

    // Tampered: same signature, payload changed to a later expiry.
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["exp"] = json!(payload["exp"].as_i64().unwrap() + 3600);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    app.get(RESOURCES, Some(&tampered))
        .await
        .assert_error(401, "invalid_token");

    // alg: none with a valid-looking payload.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    app.get(RESOURCES, Some(&unsigned))
        .await
        .assert_error(401, "invalid_token");

    // Expired, but signed with the server's own key.
    let key = signing_key(&app).await;
    let expired = key.encode(&session_claims(-3600, 1)).unwrap();
    app.get(RESOURCES, Some(&expired))
        .await
        .assert_error(401, "invalid_token");
    let fresh = key.encode(&session_claims(3600, 1)).unwrap();
    app.get(RESOURCES, Some(&fresh)).await.assert_status(200);

    // Signed by another secret.
    let foreign = Jwt::new(b"some other server").encode(&session_claims(3600, 1)).unwrap();
    app.get(RESOURCES, Some(&foreign))
        .await
        .assert_error(401, "invalid_token");

    // A session token without an expiry is not a session token.
    let mut endless = session_claims(0, 1);
    endless.exp = None;
    let endless = key.encode(&endless).unwrap();
    app.get(RESOURCES, Some(&endless))
        .await
        .assert_error(401, "invalid_token");

    app.get(RESOURCES, Some("not-a-jwt"))
        .await
        .assert_error(401, "invalid_token");
}

#[tokio::test]
async fn logout_revokes_that_session_and_clears_the_cookie() {
    let app = spawn_app_with_password().await;
    let first = app.token().await;
    let second = app.token().await;
    let resp = app
        .request(Method::POST, "/api/v1/auth/logout", Some(&first), None)
        .await;
    resp.assert_status(200);
    let cookie = resp.header("set-cookie").unwrap();
    assert!(cookie.starts_with("wagate_session=;"), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    app.get(RESOURCES, Some(&first))
        .await
        .assert_error(401, "invalid_token");
    app.get(RESOURCES, Some(&second)).await.assert_status(200);

    // The revocation is durable.
    let app = app.restart().await;
    app.get(RESOURCES, Some(&first))
        .await
        .assert_error(401, "invalid_token");
    app.get(RESOURCES, Some(&second)).await.assert_status(200);
}

#[tokio::test]
async fn logout_without_credentials_still_clears_the_cookie() {
    let app = spawn_app_with_password().await;
    let resp = app.request(Method::POST, "/api/v1/auth/logout", None, None).await;
    resp.assert_status(200);
    assert!(resp.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn change_password_ends_every_session_but_keeps_permanent_tokens() {
    let app = spawn_app_with_password().await;
    let session = app.token().await;
    let permanent = app
        .post("/api/v1/auth/generate-token", None, json!({"password": PASSWORD}))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();

    app.post(CHANGE, None, json!({"newPassword": "a brand new password"}))
        .await
        .assert_error(400, "old_password_required");
    app.post(
        CHANGE,
        None,
        json!({"oldPassword": "wrong password", "newPassword": "a brand new password"}),
    )
    .await
    .assert_error(401, "invalid_password");
    let resp = app
        .post(
            CHANGE,
            None,
            json!({"oldPassword": PASSWORD, "newPassword": "a brand new password"}),
        )
        .await;
    resp.assert_status(200);
    assert!(resp.header("set-cookie").unwrap().contains("Max-Age=0"));

    app.get(RESOURCES, Some(&session))
        .await
        .assert_error(401, "invalid_token");
    app.get(RESOURCES, Some(&permanent)).await.assert_status(200);
    app.login().await.assert_error(401, "invalid_password");
    app.post(LOGIN, None, json!({"password": "a brand new password"}))
        .await
        .assert_status(200);

    // Still ended after a restart.
    let app = app.restart().await;
    app.get(RESOURCES, Some(&session))
        .await
        .assert_error(401, "invalid_token");
    app.get(RESOURCES, Some(&permanent)).await.assert_status(200);
}

#[tokio::test]
async fn generated_tokens_are_permanent_listed_and_revocable() {
    let app = spawn_app_with_password().await;
    let resp = app
        .post(
            "/api/v1/auth/generate-token",
            None,
            json!({"password": PASSWORD, "name": "crm"}),
        )
        .await;
    resp.assert_status(200);
    assert!(resp.body.get("expiresIn").is_some(), "expiresIn is present");
    assert!(resp.body["expiresIn"].is_null(), "expiresIn is null: {}", resp.body);
    let token = resp.body["token"].as_str().unwrap().to_owned();
    let id = resp.body["id"].as_str().unwrap().to_owned();
    assert_eq!(resp.body["name"], "crm");

    let list = app.get(TOKENS, Some(&token)).await;
    list.assert_status(200);
    let entries = list.body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], id.as_str());
    assert!(entries[0].get("token").is_none(), "the token is never shown again");

    app.post(
        "/api/v1/auth/generate-token",
        None,
        json!({"password": "wrong password"}),
    )
    .await
    .assert_error(401, "invalid_password");

    let session = app.token().await;
    app.delete(&format!("{TOKENS}/{id}"), Some(&session))
        .await
        .assert_status(200);
    app.get(RESOURCES, Some(&token))
        .await
        .assert_error(401, "invalid_token");
    app.delete(&format!("{TOKENS}/{id}"), Some(&session))
        .await
        .assert_error(404, "token_not_found");
    let list = app.get(TOKENS, Some(&session)).await;
    assert!(list.body["data"].as_array().unwrap().is_empty());

    let app = app.restart().await;
    app.get(RESOURCES, Some(&token))
        .await
        .assert_error(401, "invalid_token");
}

#[tokio::test]
async fn verify_reports_validity_of_the_query_token_or_the_callers_own() {
    let app = spawn_app_with_password().await;
    let token = app.token().await;
    let verify = |q: String, t: Option<String>| {
        let app = &app;
        async move { app.get(&format!("/api/v1/auth/verify{q}"), t.as_deref()).await }
    };
    let resp = verify(format!("?token={token}"), None).await;
    resp.assert_status(200);
    assert_eq!(resp.body, json!({"data": {"valid": true, "passwordSet": true}}));
    assert_eq!(
        verify("?token=garbage".into(), None).await.body,
        json!({"data": {"valid": false, "passwordSet": true}})
    );
    assert_eq!(
        verify(String::new(), Some(token.clone())).await.body["data"]["valid"],
        true
    );
    assert_eq!(verify(String::new(), None).await.body["data"]["valid"], false);
    app.request(Method::POST, "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(
        verify(format!("?token={token}"), None).await.body["data"]["valid"],
        false
    );
}

#[tokio::test]
async fn session_tokens_expire_after_the_configured_ttl() {
    let app = builder().with("auth.session_ttl", "1h").spawn().await;
    app.set_first_password().await;
    let resp = app.login().await;
    assert_eq!(resp.body["expiresIn"], 3600);
    assert!(resp.header("set-cookie").unwrap().contains("Max-Age=3600"));
}
