//! `hotline flows check|simulate|graph`: work on IVR flows without a call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use hotline_ivr::registry::{flow_files, load_all};
use hotline_ivr::{Flow, LoadOptions, SimOptions, graph, load_file, sim};

#[derive(Args, Debug)]
pub struct FlowsArgs {
    /// Where flows live when named rather than given as files [default: ./ivr-flows].
    #[arg(long, env = "HOTLINE_FLOWS_DIR", value_name = "DIR", global = true)]
    flows_dir: Option<PathBuf>,
    /// Prompt WAV files by language (en/…, zh/…) [default: ./sounds].
    #[arg(long, env = "HOTLINE_SOUNDS_DIR", value_name = "DIR", global = true)]
    sounds_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: FlowsCommand,
}

#[derive(Subcommand, Debug)]
enum FlowsCommand {
    /// Check flow files (or every *.yaml in directories); print every error as
    /// file:line:column: message and exit 1 if there is any.
    Check {
        /// Files or directories [default: the flows dir].
        paths: Vec<PathBuf>,
        /// Do not check that prompts exist under the sounds dir.
        #[arg(long)]
        skip_prompts: bool,
    },
    /// Walk a flow as a caller would, with a fake clock, and print the path.
    Simulate {
        /// A flow file, or a flow name in the flows dir.
        flow: String,
        /// Keys, space-separated: `1`, `1234#` (quick succession), `-` (silence),
        /// `~1` (pressed during a prompt).
        #[arg(long, default_value = "")]
        digits: String,
        /// When the call happens, e.g. 2026-12-25T10:00+08:00 [default: now].
        #[arg(long)]
        at: Option<String>,
        /// The caller's number.
        #[arg(long, default_value = "+8613800000000")]
        caller: String,
        /// The number dialled.
        #[arg(long, default_value = "hotline")]
        callee: String,
        /// Start in this language.
        #[arg(long)]
        language: Option<String>,
        /// Lookup answers (YAML or JSON): subscriber_by_caller_id, order_by_number, webhook.
        #[arg(long, value_name = "FILE")]
        fixtures: Option<PathBuf>,
    },
    /// Print a flow as a Mermaid flowchart.
    Graph {
        /// A flow file, or a flow name in the flows dir.
        flow: String,
    },
}

pub fn run(args: FlowsArgs) -> anyhow::Result<()> {
    let flows_dir = args.flows_dir.unwrap_or_else(|| "ivr-flows".into());
    let sounds_dir = args.sounds_dir.unwrap_or_else(|| "sounds".into());
    match args.command {
        FlowsCommand::Check {
            paths,
            skip_prompts,
        } => {
            let paths = if paths.is_empty() {
                vec![flows_dir]
            } else {
                paths
            };
            let opts = LoadOptions {
                sounds_dir: (!skip_prompts).then_some(sounds_dir),
            };
            let files = match flow_files(&paths) {
                Ok(f) => f,
                Err(e) => {
                    println!("{e}");
                    std::process::exit(1);
                }
            };
            if files.is_empty() {
                bail!(
                    "no flow files (*.yaml) in {}",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let (flows, errors) = load_all(&files, &opts);
            for e in &errors {
                println!("{e}");
            }
            if !errors.is_empty() {
                eprintln!("{} error(s) in {} file(s)", errors.len(), files.len());
                std::process::exit(1);
            }
            for f in &flows {
                eprintln!(
                    "ok {} ({}, {} nodes, version {})",
                    f.name,
                    f.path.display(),
                    f.nodes.len(),
                    f.version
                );
            }
            Ok(())
        }
        FlowsCommand::Simulate {
            flow,
            digits,
            at,
            caller,
            callee,
            language,
            fixtures,
        } => {
            let flow = open_flow(&flow, &flows_dir, &sounds_dir)?;
            let at = match at {
                Some(s) => parse_at(&s)?,
                None => Utc::now(),
            };
            let fixtures = match fixtures {
                Some(p) => sim::Fixtures::load(&p).map_err(anyhow::Error::msg)?,
                None => sim::Fixtures::default(),
            };
            let opts = SimOptions {
                digits,
                at,
                caller,
                callee,
                language,
                fixtures,
                sounds_dir: Some(sounds_dir),
                ..SimOptions::default()
            };
            let transcript = sim::simulate(flow, &opts).map_err(anyhow::Error::msg)?;
            print!("{}", transcript.render());
            Ok(())
        }
        FlowsCommand::Graph { flow } => {
            let flow = open_flow(&flow, &flows_dir, &sounds_dir)?;
            print!("{}", graph::mermaid(&flow));
            Ok(())
        }
    }
}

/// A path to a file, else `<flows_dir>/<name>.yaml`; loaded with the prompt check.
fn open_flow(flow: &str, flows_dir: &Path, sounds_dir: &Path) -> anyhow::Result<Arc<Flow>> {
    let direct = PathBuf::from(flow);
    let path = if direct.is_file() {
        direct
    } else {
        flows_dir.join(format!("{flow}.yaml"))
    };
    let opts = LoadOptions {
        sounds_dir: Some(sounds_dir.to_owned()),
    };
    match load_file(&path, &opts) {
        Ok(f) => Ok(Arc::new(f)),
        Err(e) => bail!("{e}"),
    }
}

/// RFC 3339 with or without seconds (`2026-12-25T10:00+08:00`, `…Z`).
fn parse_at(s: &str) -> anyhow::Result<DateTime<Utc>> {
    let t = s.trim().replace(' ', "T");
    let t = t
        .strip_suffix('Z')
        .map(|x| format!("{x}+00:00"))
        .unwrap_or(t);
    for fmt in [
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%:z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(&t, fmt) {
            return Ok(d.with_timezone(&Utc));
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .with_context(|| {
            format!("--at {s:?}: use a time with its offset, like 2026-12-25T10:00+08:00")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_accepts_minutes_and_z() {
        assert_eq!(
            parse_at("2026-12-25T10:00+08:00").unwrap().to_rfc3339(),
            "2026-12-25T02:00:00+00:00"
        );
        assert_eq!(
            parse_at("2026-12-25T02:00:30Z").unwrap().to_rfc3339(),
            "2026-12-25T02:00:30+00:00"
        );
        assert!(parse_at("tomorrow").is_err());
    }
}
