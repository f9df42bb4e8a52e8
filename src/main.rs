//! The `wagate` binary: parse the command line and run it.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = wagate::cli::Cli::parse();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
