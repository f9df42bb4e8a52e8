//! The command line: `serve` (the default), `openapi`, `migrate`, `password set`.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::app::App;
use crate::config::{Config, LogFormat, Overrides};
use crate::{api, auth, db};

#[derive(Debug, Parser)]
#[command(
    name = "wagate",
    version,
    about = "Self-hosted multi-phone WhatsApp HTTP API gateway"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A TOML file that overrides the built-in defaults (see config/default.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the database and the phones' key stores.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (what `wagate` does without a subcommand).
    Serve(ServeArgs),
    /// Print the OpenAPI spec as JSON.
    Openapi,
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage the owner's password.
    Password {
        #[command(subcommand)]
        action: PasswordAction,
    },
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// List the migrations and whether each is applied.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum PasswordAction {
    /// Set the owner's password, read from standard input. Ends every session; restart a
    /// running server for it to notice.
    Set,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        // Whatever the server writes into the data directory is the login: private.
        crate::private::restrict_new_files();
        let listen = match &self.command {
            Some(Command::Serve(args)) => args.listen,
            _ => self.serve.listen,
        };
        let overrides = Overrides {
            config_file: self.config.clone(),
            data_dir: self.data_dir.clone(),
            listen,
        };
        match self.command {
            Some(Command::Openapi) => {
                print!("{}", api::spec_json());
                Ok(())
            }
            Some(Command::Migrate { action }) => {
                let config = load(&overrides)?;
                init_tracing(&config);
                migrate(&config, action).await
            }
            Some(Command::Password {
                action: PasswordAction::Set,
            }) => {
                let config = load(&overrides)?;
                init_tracing(&config);
                set_password(&config).await
            }
            Some(Command::Serve(_)) | None => {
                let config = load(&overrides)?;
                init_tracing(&config);
                serve(config).await
            }
        }
    }
}

fn load(overrides: &Overrides) -> anyhow::Result<Config> {
    Ok(Config::load(overrides)?)
}

pub fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    let state = app.state().clone();
    let host = match state.config.listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let base = format!("http://{host}:{}", app.port());
    tracing::info!(url = %base, engine = ?state.config.engine, "wagate is listening");
    eprintln!("\n  wagate is running at {base}/");
    eprintln!("  API docs (Swagger UI): {base}/docs   spec: {base}/api/v1/openapi.json");
    if let Some(code) = state.auth.setup_code() {
        eprintln!("\n  No password is set yet. Set one from this machine:");
        eprintln!(
            "    curl -X POST {base}/api/v1/auth/change-password -H 'Content-Type: application/json' \\\n      -d '{{\"newPassword\":\"<at least 8 characters>\"}}'"
        );
        eprintln!("  From another machine, add \"setupCode\":\"{code}\" (valid until a password is set).");
        eprintln!("  Or run: wagate password set");
    }
    eprintln!();
    app.run(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

async fn migrate(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
    let conn = db::connect(config).await.context("cannot connect to the database")?;
    if let MigrateAction::Up = action {
        db::migrate(&conn).await.context("migration failed")?;
    }
    for (name, applied) in db::migration_status(&conn).await? {
        println!("{}  {name}", if applied { "applied" } else { "pending" });
    }
    Ok(())
}

/// Turns the terminal's echo off until dropped.
struct HiddenInput {
    saved: Option<nix::sys::termios::Termios>,
}

impl HiddenInput {
    fn start(stdin: &std::io::Stdin) -> Self {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin).ok();
        if let Some(saved) = &saved {
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            let _ = tcsetattr(stdin, SetArg::TCSAFLUSH, &quiet);
        }
        Self { saved }
    }
}

impl Drop for HiddenInput {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSAFLUSH, saved);
        }
    }
}

async fn set_password(config: &Config) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut input = String::new();
    if stdin.is_terminal() {
        // Typed, not shown: the password must not stay on the screen or in a recording.
        // Echo goes off before the prompt, so nothing typed after it can show.
        let _hidden = HiddenInput::start(&stdin);
        eprint!("New password (at least {} characters): ", auth::password::MIN_LENGTH);
        stdin.read_line(&mut input)?;
        eprintln!();
    } else {
        stdin.lock().read_to_string(&mut input)?;
    }
    let password = input.trim_end_matches(['\r', '\n']).to_owned();
    auth::validate_new_password(&password).map_err(|err| anyhow::anyhow!("{err}"))?;
    let conn = db::connect(config).await.context("cannot connect to the database")?;
    db::migrate(&conn).await.context("migration failed")?;
    auth::store_password(&conn, password)
        .await
        .map_err(|err| anyhow::anyhow!("cannot store the password: {err}"))?;
    println!("password set; every session has ended");
    Ok(())
}
