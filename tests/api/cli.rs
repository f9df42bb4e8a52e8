use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_wagate");

fn wagate(args: &[&str], data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("WAGATE_DATABASE_URL")
        .env("RUST_LOG", "warn");
    cmd
}

/// Runs `wagate password set` with `password` on stdin, on the data dir's SQLite file or on
/// `database_url`.
fn password_set(data_dir: &std::path::Path, database_url: Option<&str>, password: &str) -> std::process::Output {
    let mut cmd = wagate(&["password", "set"], data_dir);
    if let Some(url) = database_url {
        cmd.env("WAGATE_DATABASE_URL", url);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn password_set_on_a_terminal_does_not_show_the_password() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = wagate(&["password", "set"], dir.path())
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let mut terminal = std::fs::File::from(pty.master);
    let mut shown = Vec::new();
    let mut buf = [0u8; 1024];
    // Type only once the prompt shows (echo is off by then).
    while !String::from_utf8_lossy(&shown).contains("New password") {
        let n = terminal.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&shown));
        shown.extend_from_slice(&buf[..n]);
    }
    terminal.write_all(b"a long passphrase\n").unwrap();
    // Everything the terminal shows until the command ends (then reading fails with EIO).
    while let Ok(n) = terminal.read(&mut buf) {
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&buf[..n]);
    }
    assert!(child.wait().unwrap().success());
    let shown = String::from_utf8_lossy(&shown);
    assert!(shown.contains("password set"), "{shown}");
    assert!(!shown.contains("a long passphrase"), "the password was shown: {shown}");
}

#[test]
fn openapi_prints_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let out = wagate(&["openapi"], dir.path()).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), wagate::api::spec_json());
}

#[test]
fn migrate_up_then_status_lists_applied_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let status = wagate(&["migrate", "status"], dir.path()).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let text = String::from_utf8(status.stdout).unwrap();
    assert!(text.contains("pending  m20261126_000001_auth"), "{text}");

    let up = wagate(&["migrate", "up"], dir.path()).output().unwrap();
    assert!(up.status.success());
    let text = String::from_utf8(up.stdout).unwrap();
    assert!(text.contains("applied  m20261126_000001_auth"), "{text}");
    assert!(!text.contains("pending"), "{text}");
}

#[test]
fn password_set_reads_stdin_and_refuses_short_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let set = |password: &str| password_set(dir.path(), None, password);
    let short = set("short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("too short"));
    let ok = set("a long enough password");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[tokio::test]
async fn a_password_set_by_the_cli_works_for_login() {
    let dir = tempfile::tempdir().unwrap();
    let set = password_set(dir.path(), None, "from the command line");
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));

    let config = wagate::config::Config::from_figment(
        wagate::config::Config::base()
            .merge(figment::providers::Serialized::default("listen", "127.0.0.1:0"))
            .merge(figment::providers::Serialized::default("data_dir", dir.path())),
    )
    .unwrap();
    let app = wagate::app::App::build(config).await.unwrap();
    let auth = app.state().auth.clone();
    assert!(auth.password_set());
    auth.login("127.0.0.1".parse().unwrap(), "from the command line".into())
        .await
        .expect("login with the CLI's password");
}

#[tokio::test]
async fn a_password_set_by_the_cli_ends_a_running_servers_sessions() {
    let app = crate::helpers::builder()
        .with("auth.reload_interval", "50ms")
        .spawn()
        .await;
    app.set_first_password().await;
    let old = app.token().await;
    app.get("/api/v1/health/resources", Some(&old)).await.assert_status(200);

    let set = password_set(&app.data_dir, Some(&app.database_url), "set beside the server");
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));

    // Within a few reload intervals the old session is over, without a restart.
    crate::helpers::eventually(crate::helpers::DEADLINE, || async {
        match app.get("/api/v1/health/resources", Some(&old)).await.status.as_u16() {
            401 => Ok(()),
            status => Err(format!("the old session still works ({status})")),
        }
    })
    .await;
    app.post(
        "/api/v1/auth/login",
        None,
        serde_json::json!({"password": crate::helpers::PASSWORD}),
    )
    .await
    .assert_status(401);
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            serde_json::json!({"password": "set beside the server"}),
        )
        .await;
    login.assert_status(200);
    let new = login.body["token"].as_str().unwrap().to_owned();
    app.get("/api/v1/health/resources", Some(&new)).await.assert_status(200);
}

#[test]
fn a_bad_config_value_fails_at_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = wagate(&["serve"], dir.path())
        .env("WAGATE_LIMITS__MAX_PHONES", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("limits.max_phones"), "{stderr}");

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[auth]\nsesion_ttl = \"1h\"\n").unwrap();
    let out = wagate(&["serve", "--config", file.to_str().unwrap()], dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sesion_ttl"), "{stderr}");
}
