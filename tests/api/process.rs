//! The gateway as a child process on a port of its own, so a test can kill it (`kill -9`),
//! signal it, and start it again on the same data.

use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::{DEADLINE, PASSWORD, Response, eventually, send};

/// The gateway as its own process, so it can be killed or signalled.
pub struct Process {
    pub child: Child,
    pub base: String,
    pub token: Option<String>,
}

impl Process {
    pub async fn start(port: u16, dir: &std::path::Path, database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wagate"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir)
            .env("WAGATE_ENGINE", "sandbox")
            .env("WAGATE_DATABASE_URL", database_url)
            // Quick retries, and a retry budget measured in time that no slow machine
            // exhausts while a test keeps a receiver down: tests here are about nothing
            // being lost, never about giving up.
            .env("WAGATE_WEBHOOKS__BACKOFF_MIN", "20ms")
            .env("WAGATE_WEBHOOKS__BACKOFF_MAX", "200ms")
            .env("WAGATE_WEBHOOKS__GIVE_UP_AFTER", "24h")
            .env("WAGATE_SANDBOX__CONNECT_DELAY", "10ms")
            .env("WAGATE_NETWORK__ALLOW_PRIVATE", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            cmd.env(key, value);
        }
        let process = Self {
            child: cmd.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            token: None,
        };
        eventually(DEADLINE, || async {
            match reqwest::get(format!("{}/api/v1/health", process.base)).await {
                Ok(_) => Ok(()),
                Err(err) => Err(format!("the gateway does not answer: {err}")),
            }
        })
        .await;
        process
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        let mut req = reqwest::Client::new().post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        send(req).await
    }

    pub async fn get(&self, path: &str) -> Response {
        send(
            reqwest::Client::new()
                .get(format!("{}{path}", self.base))
                .bearer_auth(self.token.as_deref().unwrap_or_default()),
        )
        .await
    }

    pub async fn log_in(&mut self, first: bool) {
        if first {
            self.post("/api/v1/auth/change-password", json!({"newPassword": PASSWORD}))
                .await
                .assert_status(200);
        }
        let token = self
            .post("/api/v1/auth/generate-token", json!({"password": PASSWORD}))
            .await
            .body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        self.token = Some(token);
    }

    pub async fn wait_connected(&self, phone: &str) {
        eventually(DEADLINE, || async {
            let view = self.get(&format!("/api/v1/user/phones/{phone}")).await.body;
            if view["status"] == "connected" {
                Ok(())
            } else {
                Err(format!("{phone} is not connected: {view}"))
            }
        })
        .await;
    }

    pub async fn pair(&self, phone: &str) {
        self.post("/api/v1/user/phones", json!({"phone": phone}))
            .await
            .assert_status(201);
        self.post(&format!("/api/v1/user/phones/{phone}/connect"), json!({}))
            .await
            .assert_status(200);
        self.post(&format!("/api/v1/sandbox/phones/{phone}/scan"), json!({}))
            .await
            .assert_status(200);
        self.wait_connected(phone).await;
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Open file descriptors and resident memory (KiB) of a process.
pub fn fds_and_rss(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (fds, rss_kib)
}
