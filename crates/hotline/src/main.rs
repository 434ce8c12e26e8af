//! `hotline`: the gateway binary. Wires the crates together; holds no protocol logic.

// Mounted into http::router by serve.rs (admin::routes, agent_auth::agent_auth_routes).
mod admin;
mod agent_auth;
mod agent_ws;
mod agents_cmd;
mod config;
mod desk;
mod flows_cmd;
mod http;
mod ivr;
mod records;
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
    /// Check, simulate or graph IVR flows (YAML) without a call.
    Flows(flows_cmd::FlowsArgs),
    /// Apply the database migrations (DATABASE_URL, or the embedded cluster under --data-dir).
    Migrate(config::ServeArgs),
    /// Insert demo customers, subscriptions and orders (idempotent).
    SeedDemo(config::ServeArgs),
    /// Add or list agents (same database as `migrate`).
    Agents(agents_cmd::AgentsArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOTLINE_LOG")
                .unwrap_or_else(|_| "info,rsipstack=warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        // A log write that fails (stderr on a full disk) must cost the log
        // line, not the task: tracing-subscriber's fallback report of the
        // failure uses eprintln!, which panics when stderr fails.
        .log_internal_errors(false)
        .init();
    match cli.command {
        Command::Flows(args) => flows_cmd::run(args),
        Command::Agents(args) => agents_cmd::run(args),
        Command::Migrate(args) => {
            let cfg = config::Config::resolve(args)?;
            tokio::runtime::Runtime::new()?
                .block_on(records::migrate(cfg.database_url.as_deref(), &cfg.data_dir))
        }
        Command::SeedDemo(args) => {
            let cfg = config::Config::resolve(args)?;
            tokio::runtime::Runtime::new()?.block_on(records::seed_demo(
                cfg.database_url.as_deref(),
                &cfg.data_dir,
            ))
        }
        Command::Serve(args) => {
            let cfg = config::Config::resolve(args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve::serve(cfg))
        }
    }
}
