//! `wa-emulator serve --listen 127.0.0.1:PORT`: runs the emulator until interrupted.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wa_emulator::{Config, Emulator};

#[derive(Parser)]
#[command(
    name = "wa-emulator",
    about = "WhatsApp's side of the wire, for testing whatsapp-rust clients offline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the emulated network and its control API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:7780")]
        listen: SocketAddr,
        /// QR references offered to a device that needs pairing (WhatsApp offers 6: 60 s + 5 × 20 s).
        #[arg(long, default_value_t = 6)]
        qr_refs: usize,
        /// How long a linking step waits for the device's answer.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        answer_timeout: Duration,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    match Cli::parse().command {
        Command::Serve {
            listen,
            qr_refs,
            answer_timeout,
        } => {
            let emulator = Emulator::start(
                listen,
                Config {
                    qr_refs,
                    answer_timeout,
                },
            )
            .await?;
            println!("control: {}/control/health", emulator.url());
            println!("clients: {}", emulator.ws_url());
            println!(
                "point a gateway at it: WAGATE_WHATSAPP__SERVER_URL={}",
                emulator.ws_url()
            );
            tokio::signal::ctrl_c().await?;
            emulator.stop();
        }
    }
    Ok(())
}
