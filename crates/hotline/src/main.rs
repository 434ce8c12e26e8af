//! `hotline`: the gateway binary. Wires the crates together; holds no protocol logic.

// Mounted into http::router by serve.rs (admin::routes, agent_auth::agent_auth_routes).
mod admin;
mod admin_auth;
mod admin_pages;
mod agent_auth;
mod agent_ws;
mod agents_cmd;
mod api;
mod audit;
mod callback_book;
#[cfg(test)]
mod test_support {
    /// The package's directory as `cargo test` gives it at run time (the
    /// compile-time one is stale when a shared target dir reuses this test
    /// binary for a checkout elsewhere).
    pub fn manifest_dir() -> String {
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
    }
}
mod calls_api;
mod cluster;
mod config;
mod desk;
mod edge_api;
mod flows_api;
mod flows_cmd;
mod http;
mod https;
mod ivr;
mod live;
mod live_board;
mod login_limit;
mod metrics;
mod monitor_ws;
mod openapi;
mod privacy_cmd;
mod prompts_api;
mod recording_api;
mod records;
mod reports_api;
mod retention;
mod serve;
mod tls;
mod voicemail_api;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Hotline: a SIP IVR gateway for a knowledge-subscription hotline.
#[derive(Parser, Debug)]
#[command(name = "hotline", version, about, propagate_version = true)]
struct Cli {
    /// Log progress too: INFO for the database commands (quiet but for
    /// warnings otherwise), DEBUG for the gateway's own crates under `serve`.
    /// `HOTLINE_LOG` (an env-filter) overrides both.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// How log lines are written to stderr: `text` (one readable line per
    /// event) or `json` (one JSON object per line, with the event's fields
    /// and its spans, e.g. the call's `call_id`, for log shippers).
    #[arg(long, global = true, value_enum, env = "HOTLINE_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

// Parsed once at start: the size of `serve`'s flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway: SIP (UDP and TCP), RTP media, the HTTP listener.
    Serve(config::ServeArgs),
    /// Check, simulate or graph IVR flows (YAML) without a call.
    Flows(flows_cmd::FlowsArgs),
    /// Apply the database migrations (DATABASE_URL, or the embedded cluster under --data-dir).
    Migrate(records::DbArgs),
    /// Insert demo customers, subscriptions and orders, the queues the shipped
    /// flow uses and a demo agent (idempotent); with --calls N, N made-up calls.
    SeedDemo(records::SeedDemoArgs),
    /// Add, list, remove agents or set their password (same database as `migrate`).
    Agents(agents_cmd::AgentsArgs),
    /// Erase a customer: delete their recordings and voicemail, mask their
    /// number everywhere (records, events, event log, spool, callbacks,
    /// customers); audited. Idempotent; --dry-run lists without changing.
    Erase(privacy_cmd::EraseArgs),
    /// Recordings at rest: `verify` checks every recording's sha256.
    Recordings(privacy_cmd::RecordingsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_));
    let default_filter = match (serving, cli.verbose) {
        (true, false) => "info,rsipstack=warn,sqlx=warn",
        (true, true) => {
            "info,rsipstack=warn,sqlx=warn,hotline=debug,hotline_sip=debug,hotline_media=debug,\
             hotline_call=debug,hotline_ivr=debug,hotline_routing=debug,hotline_store=debug,\
             hotline_webphone=debug"
        }
        // A command's answer is its output; how it got there only on request.
        (false, false) => "warn,sqlx=warn",
        (false, true) => "info,sqlx=warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOTLINE_LOG")
        .unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log write that fails (stderr on a full disk) must cost the log
        // line, not the task: tracing-subscriber's fallback report of the
        // failure uses eprintln!, which panics when stderr fails.
        .log_internal_errors(false);
    match cli.log_format {
        // Colour codes only for a person at a terminal, not in files or pipes.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line: timestamp, level, target, fields (message
        // included), the innermost span and the list of spans (a call's
        // `call` span carries its Call-ID as `call_id`).
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the whole context chain on one line. Never `{:?}`: that
            // adds anyhow's backtrace when RUST_BACKTRACE is set, and a user
            // error (a bad flag, no database) is not a bug to debug.
            let _ = writeln!(std::io::stderr(), "error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated like `{:#}`, but without a
/// cause its parent's message already ends with (errors that print their
/// source too would otherwise say it twice).
fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if text.is_empty() {
            text = msg;
        } else if !text.ends_with(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
    }
    text
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Flows(args) => flows_cmd::run(args),
        Command::Agents(args) => agents_cmd::run(args),
        Command::Erase(args) => privacy_cmd::erase(args),
        Command::Recordings(args) => privacy_cmd::recordings(args),
        Command::Migrate(args) => {
            let (url, data_dir) = args.resolve()?;
            tokio::runtime::Runtime::new()?.block_on(records::migrate(url.as_deref(), &data_dir))
        }
        Command::SeedDemo(args) => {
            let calls = args.calls;
            let (url, data_dir) = args.db.resolve()?;
            tokio::runtime::Runtime::new()?.block_on(records::seed_demo(
                url.as_deref(),
                &data_dir,
                calls,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_says_each_cause_once() {
        let io = std::io::Error::other("Not a directory");
        let e = anyhow::Error::new(io).context("cannot create /x/pg: Not a directory");
        let e = e.context("cannot run the embedded PostgreSQL");
        assert_eq!(
            chain(&e),
            "cannot run the embedded PostgreSQL: cannot create /x/pg: Not a directory"
        );
        assert_eq!(chain(&anyhow::anyhow!("a").context("b")), "b: a");
    }
}
