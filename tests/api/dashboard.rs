//! The dashboard in a real browser: Debian's Chromium, driven over WebDriver (chromedriver)
//! against a server on the sandbox engine. Screenshots of each step are saved under
//! `target/tmp/screenshots/` so a failing run can be looked at.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them). Without a chromedriver
//! the test says so and passes, unless `WAGATE_REQUIRE_BROWSER=1` (set by CI) makes that
//! a failure.

use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{DEADLINE, PASSWORD, TestApp, eventually, spawn_app};

const A: &str = "+12015550101";
const NEW_PASSWORD: &str = "a different passphrase";

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Option<String> {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    std::path::Path::new(&path).exists().then_some(path)
}

async fn start_driver(path: &str) -> Driver {
    let port = crate::helpers::free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    eventually(DEADLINE, || async {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => Ok(()),
            Err(err) => Err(format!("chromedriver does not listen: {err}")),
        }
    })
    .await;
    driver
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

struct Page {
    client: Client,
    shots: std::path::PathBuf,
    step: usize,
}

impl Page {
    async fn shot(&mut self, name: &str) {
        self.step += 1;
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.step)), png);
        }
    }

    /// Waits until the element is displayed (present is not enough: views are hidden).
    async fn visible(&self, css: &str) -> fantoccini::elements::Element {
        eventually(DEADLINE, || async {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) if element.is_displayed().await.unwrap_or(false) => Ok(element),
                Ok(_) => Err(format!("{css} is hidden")),
                Err(_) => Err(format!("{css} is missing")),
            }
        })
        .await
    }

    /// An attribute of the visible element, looked up again if a re-render replaced it.
    async fn attribute(&self, css: &str, name: &str) -> String {
        eventually(DEADLINE, || async {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(Some(value)) = element.attr(name).await
            {
                return Ok(value);
            }
            Err(format!("{css} has no {name} attribute"))
        })
        .await
    }

    async fn text_of(&self, css: &str, expected: &str) {
        eventually(DEADLINE, || async {
            let actual = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => "<missing>".into(),
            };
            match actual.contains(expected) {
                true => Ok(()),
                false => Err(format!("{css} shows {actual:?}, not {expected:?}")),
            }
        })
        .await
    }

    async fn fill(&self, css: &str, value: &str) {
        let input = self.visible(css).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// Clicks the element, finding it again if a re-render replaced it in between.
    async fn click(&self, css: &str) {
        eventually(DEADLINE, || async {
            match self.visible(css).await.click().await {
                Ok(()) => Ok(()),
                Err(err) => Err(format!("cannot click {css}: {err}")),
            }
        })
        .await
    }
}

#[tokio::test]
async fn a_person_can_do_everything_from_the_dashboard() {
    let Some(driver_path) = chromedriver() else {
        assert!(
            std::env::var("WAGATE_REQUIRE_BROWSER").is_err(),
            "WAGATE_REQUIRE_BROWSER is set but no chromedriver: apt-get install chromium chromium-driver"
        );
        eprintln!("SKIPPED: no chromedriver (apt-get install chromium chromium-driver)");
        return;
    };
    let app = spawn_app().await;
    let driver = start_driver(&driver_path).await;
    let profile = tempfile::tempdir().unwrap();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut page = Page {
        client: browser(&driver, profile.path()).await,
        shots,
        step: 0,
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run(&app, &mut page))).await;
    page.shot(if outcome.is_ok() { "done" } else { "failure" }).await;
    let _ = page.client.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn run(app: &TestApp, page: &mut Page) {
    // First run: set the password.
    page.client.goto(&app.url("/")).await.unwrap();
    page.visible("#setup-view").await;
    page.shot("setup").await;
    page.fill("#setup-password", PASSWORD).await;
    page.click("#setup-form button[type=submit]").await;
    page.visible("#app-view").await;
    page.text_of("#phones-empty", "No phone numbers yet").await;
    page.text_of("#quota-phones", "0 / 10").await;
    page.text_of("#quota-media", "image, video, audio, document, sticker")
        .await;
    page.shot("empty").await;

    // Log out and back in.
    page.click("#logout").await;
    page.visible("#login-view").await;
    page.fill("#login-password", "not the password").await;
    page.click("#login-form button[type=submit]").await;
    page.text_of("#login-error", "wrong").await;
    page.fill("#login-password", PASSWORD).await;
    page.click("#login-form button[type=submit]").await;
    page.visible("#app-view").await;

    // Add a phone, with a validation error first.
    page.fill("#add-phone", "12345").await;
    page.click("#add-phone-form button[type=submit]").await;
    page.text_of("#add-phone-error", "not a valid phone number").await;
    page.fill("#add-phone", A).await;
    page.click("#add-phone-form button[type=submit]").await;
    page.visible(&format!("li[data-phone='{A}']")).await;
    page.text_of("#quota-phones", "1 / 10").await;
    assert!(
        !page
            .client
            .find(Locator::Css("#phones-empty"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );

    // Connect: the QR code shows; the owner scans it; the page turns connected by itself.
    page.click(&format!("li[data-phone='{A}'] .actions button")).await;
    let qr = format!("li[data-phone='{A}'] img.qr");
    page.visible(&qr).await;
    // The list re-renders on every status event, so the element is looked up afresh.
    assert!(page.attribute(&qr, "src").await.starts_with("data:image/png;base64,"));
    page.shot("qr").await;
    let token = app.token().await;
    app.post(&format!("/api/v1/sandbox/phones/{A}/scan"), Some(&token), json!({}))
        .await
        .assert_status(200);
    page.visible(&format!("li[data-phone='{A}'] .badge[data-status='connected']"))
        .await;
    page.shot("connected").await;

    // Webhook: set it, then replace it.
    page.fill("#webhook-url", "http://127.0.0.1:9/first").await;
    page.click("#webhook-form button[type=submit]").await;
    page.text_of("#webhook-current", "http://127.0.0.1:9/first").await;
    page.text_of("#webhook-secret-value", "whsec_").await;
    page.text_of("#webhook-save", "Replace webhook").await;
    page.fill("#webhook-url", "http://127.0.0.1:9/second").await;
    page.click("#webhook-form button[type=submit]").await;
    page.text_of("#webhook-current", "http://127.0.0.1:9/second").await;
    page.click("#webhook-test").await;
    page.text_of("#webhook-test-result", "Not delivered").await;
    page.text_of("#deliveries", "ping").await;
    let hooks = app.get("/api/v1/user/webhooks", Some(&token)).await.body;
    assert_eq!(
        hooks["data"].as_array().unwrap().len(),
        1,
        "replaced, not added: {hooks}"
    );
    page.shot("webhook").await;

    // Groups.
    app.post(
        "/api/v1/sandbox/accounts",
        Some(&token),
        json!({"phone": "+12015550150", "name": "Alice"}),
    )
    .await
    .assert_status(201);
    app.post(
        "/api/v1/sandbox/groups",
        Some(&token),
        json!({"subject": "Team", "members": [A, "+12015550150"]}),
    )
    .await
    .assert_status(201);
    page.click("#groups-form button[type=submit]").await;
    page.text_of("#group-list", "Team — 2 member(s)").await;
    page.click("#group-list button").await;
    page.text_of("#group-detail", "12015550150@s.whatsapp.net").await;
    page.shot("groups").await;

    // A permanent token, used with the API.
    page.fill("#token-password", PASSWORD).await;
    page.fill("#token-name", "from the dashboard").await;
    // Read and send (checked by default), on one phone.
    page.fill("#token-phones", A).await;
    page.click("#token-form button[type=submit]").await;
    let value = page.visible("#token-value").await.prop("value").await.unwrap().unwrap();
    assert!(value.len() > 40, "a JWT: {value}");
    app.get("/api/v1/health/resources", Some(&value))
        .await
        .assert_status(200);
    app.get(&format!("/api/v1/user/phones/{A}"), Some(&value))
        .await
        .assert_status(200);
    app.get("/api/v1/auth/tokens", Some(&value))
        .await
        .assert_error(403, "insufficient_scope");
    app.get("/api/v1/user/phones/+12015550177", Some(&value))
        .await
        .assert_error(404, "phone_not_found");
    page.text_of("#token-list", "from the dashboard · read, send").await;
    page.text_of("#token-list", A).await;
    page.shot("token").await;

    // The API documentation comes from the live spec.
    page.text_of("#routes", "/api/v1/user/phones/{phone}/message").await;
    page.text_of("#routes", "Send a message").await;

    // Change the password: the session ends, the new password works.
    page.fill("#password-old", PASSWORD).await;
    page.fill("#password-new", NEW_PASSWORD).await;
    page.click("#password-form button[type=submit]").await;
    page.visible("#login-view").await;
    page.text_of("#status", "Password changed").await;
    page.fill("#login-password", NEW_PASSWORD).await;
    page.click("#login-form button[type=submit]").await;
    page.visible("#app-view").await;
    page.visible(&format!("li[data-phone='{A}']")).await;
    page.shot("after-password-change").await;
}
