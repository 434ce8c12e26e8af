//! `hotline`: the gateway binary. Wires the crates together; holds no protocol logic.

mod config;
mod http;
mod serve;

use clap::{Parser, Subcommand};

/// Hotline: a SIP IVR gateway for a knowledge-subscription hotline.
#[derive(Parser, Debug)]
#[command(name = "hotline", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway: SIP (UDP and TCP), RTP media, the HTTP listener.
    Serve(config::ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOTLINE_LOG")
                .unwrap_or_else(|_| "info,rsipstack=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => {
            let cfg = config::Config::resolve(args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve::serve(cfg))
        }
    }
}
