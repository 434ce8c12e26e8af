//! `hotline flows check|simulate|graph`: work on IVR flows without a call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use hotline_ivr::registry::{flow_files, load_all};
use hotline_ivr::{ErrorKind, Flow, FlowError, LoadOptions, SimOptions, graph, load_file, sim};

#[derive(Args, Debug)]
pub struct FlowsArgs {
    /// Where flows live when named rather than given as files [default: ./ivr-flows].
    #[arg(long, env = "HOTLINE_FLOWS_DIR", value_name = "DIR", global = true)]
    flows_dir: Option<PathBuf>,
    /// Prompt WAV files by language (en/…, zh/…) [default: sounds/ next to the
    /// flows directory, else ./sounds].
    ///
    /// Without this flag (or HOTLINE_SOUNDS_DIR) prompts are looked up in
    /// `sounds/` next to the flows directory — `<flows dir>/../sounds`, where
    /// the flows directory is the one holding the flow file(s) given (for
    /// `check`, the first path), else --flows-dir — and then in `./sounds`.
    /// `check` says where it looked when prompts are missing; `graph` never
    /// reads audio.
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
    ///
    /// Prompts last as long as their WAV files in the sounds dir (and must
    /// exist there); with no sounds dir found, each lasts 1 s and none is checked.
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
    /// Print a flow as a Mermaid flowchart (needs no audio).
    Graph {
        /// A flow file, or a flow name in the flows dir.
        flow: String,
    },
}

/// The prompts directory, and how it was chosen (for messages).
#[derive(Debug)]
struct SoundsDir {
    /// The directory used (the first candidate when none exists).
    dir: PathBuf,
    /// True when given by --sounds-dir / HOTLINE_SOUNDS_DIR.
    given: bool,
    exists: bool,
    /// Every place looked at, absolute, in order.
    looked: Vec<PathBuf>,
}

impl SoundsDir {
    /// `--sounds-dir` if given; else `sounds/` next to `flows_dir`, then `./sounds`.
    fn resolve(given: Option<PathBuf>, flows_dir: &Path) -> Self {
        if let Some(dir) = given {
            let exists = dir.is_dir();
            return SoundsDir {
                looked: vec![absolute(&dir)],
                dir,
                given: true,
                exists,
            };
        }
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(parent) = absolute(flows_dir).parent() {
            candidates.push(parent.join("sounds"));
        }
        candidates.push(absolute(Path::new("sounds")));
        let mut looked: Vec<PathBuf> = Vec::new();
        for c in candidates {
            let c = absolute(&c);
            if !looked.contains(&c) {
                looked.push(c);
            }
        }
        let found = looked.iter().find(|c| c.is_dir()).cloned();
        SoundsDir {
            exists: found.is_some(),
            dir: found.unwrap_or_else(|| looked[0].clone()),
            given: false,
            looked,
        }
    }

    /// Where prompts were looked up, and how to point elsewhere.
    fn hint(&self) -> String {
        let how = if self.given {
            "given by --sounds-dir or HOTLINE_SOUNDS_DIR"
        } else {
            "found next to the flows directory or in the current one"
        };
        format!(
            "prompts were looked up in {} ({how}); pass --sounds-dir DIR if the recordings are elsewhere",
            self.dir.display()
        )
    }

    /// The one message for a sounds directory that does not exist.
    fn missing(&self) -> String {
        let places: Vec<String> = self
            .looked
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if self.given {
            format!(
                "{}: no such sounds directory (--sounds-dir or HOTLINE_SOUNDS_DIR), so prompts cannot be checked",
                places.join(", ")
            )
        } else {
            format!(
                "no sounds directory, so prompts cannot be checked: looked in {}; pass --sounds-dir DIR (or --skip-prompts)",
                places.join(" and ")
            )
        }
    }
}

/// The path made absolute for messages: canonical when it exists.
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_owned())
}

/// The directory holding `p` (itself when a directory).
fn dir_of(p: &Path) -> PathBuf {
    if p.is_dir() {
        return p.to_owned();
    }
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

pub fn run(args: FlowsArgs) -> anyhow::Result<()> {
    let flows_dir = args.flows_dir.unwrap_or_else(|| "ivr-flows".into());
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
            let sounds =
                (!skip_prompts).then(|| SoundsDir::resolve(args.sounds_dir, &dir_of(&paths[0])));
            let opts = LoadOptions {
                sounds_dir: sounds.as_ref().filter(|s| s.exists).map(|s| s.dir.clone()),
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
            let (flows, mut errors) = load_all(&files, &opts);
            // Every error of every file, in file, line and column order.
            errors.sort_by(|a, b| (&a.file, a.pos).cmp(&(&b.file, b.pos)));
            for e in &errors {
                println!("{e}");
            }
            let mut count = errors.len();
            // A missing sounds directory is one error, not one per prompt.
            if let Some(s) = sounds.as_ref().filter(|s| !s.exists) {
                println!("{}", s.missing());
                count += 1;
            }
            if count > 0 {
                if let Some(s) = &sounds
                    && s.exists
                    && errors.iter().any(|e| e.kind == ErrorKind::MissingRecording)
                {
                    eprintln!("{}", s.hint());
                }
                eprintln!("{count} error(s) in {} file(s)", files.len());
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
            if let Some(s) = &sounds {
                eprintln!("prompts found in {}", s.dir.display());
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
            let path = flow_path(&flow, &flows_dir);
            let sounds = SoundsDir::resolve(args.sounds_dir, &dir_of(&path));
            if !sounds.exists {
                if sounds.given {
                    bail!("{}", sounds.missing());
                }
                eprintln!(
                    "note: no sounds directory (looked in {}): prompts are not checked and each lasts 1 s; pass --sounds-dir DIR",
                    sounds
                        .looked
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" and ")
                );
            }
            let sounds_dir = sounds.exists.then(|| sounds.dir.clone());
            let flow = open_flow(&path, sounds_dir.clone()).map_err(|errors| {
                let mut msg = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n");
                if errors.iter().any(|e| e.kind == ErrorKind::MissingRecording) {
                    msg = format!("{msg}\n{}", sounds.hint());
                }
                anyhow::Error::msg(msg)
            })?;
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
                sounds_dir,
                ..SimOptions::default()
            };
            let transcript = sim::simulate(flow, &opts).map_err(anyhow::Error::msg)?;
            print!("{}", transcript.render());
            Ok(())
        }
        FlowsCommand::Graph { flow } => {
            // The structure only: no sounds directory is read or needed.
            let flow = open_flow(&flow_path(&flow, &flows_dir), None).map_err(|errors| {
                anyhow::Error::msg(
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
            print!("{}", graph::mermaid(&flow));
            Ok(())
        }
    }
}

/// A path to a file, else `<flows_dir>/<name>.yaml`.
fn flow_path(flow: &str, flows_dir: &Path) -> PathBuf {
    let direct = PathBuf::from(flow);
    if direct.is_file() {
        direct
    } else {
        flows_dir.join(format!("{flow}.yaml"))
    }
}

/// Loads a flow, checking its prompts under `sounds_dir` when given.
fn open_flow(path: &Path, sounds_dir: Option<PathBuf>) -> Result<Arc<Flow>, Vec<FlowError>> {
    load_file(path, &LoadOptions { sounds_dir })
        .map(Arc::new)
        .map_err(|e| e.0)
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
