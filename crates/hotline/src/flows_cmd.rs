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
    /// The gateway's TOML config file (as `hotline serve --config`): its
    /// `flows_dir`, `sounds_dir` and `dial_allow` apply where no flag or
    /// environment variable sets them, so a simulation books callbacks to
    /// exactly the numbers the gateway would dial.
    #[arg(long, env = "HOTLINE_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
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
        /// Numbers a callback may be booked to, as `hotline serve
        /// --dial-allow` (repeatable; in the environment, `;` between
        /// patterns) [default: the gateway's default].
        #[arg(
            long = "dial-allow",
            env = "HOTLINE_DIAL_ALLOW",
            value_name = "REGEX",
            value_delimiter = ';'
        )]
        dial_allow: Vec<String>,
    },
    /// Print a flow as a Mermaid flowchart (needs no audio).
    Graph {
        /// A flow file, or a flow name in the flows dir.
        flow: String,
    },
    /// Import every *.yaml of DIR into the database as new published
    /// versions (`<name>.yaml` is flow `<name>`); unchanged files create
    /// nothing, invalid ones are refused with every error (exit 1).
    Import {
        /// The directory to read [default: the flows dir].
        dir: Option<PathBuf>,
        /// Do not check that prompts exist under the sounds dir.
        #[arg(long)]
        skip_prompts: bool,
        #[command(flatten)]
        db: crate::records::DbArgs,
    },
    /// Write the published version of every flow to DIR as `<name>.yaml`,
    /// byte for byte as saved (import then export gives the same files).
    Export {
        /// The directory to write (created if missing).
        dir: PathBuf,
        #[command(flatten)]
        db: crate::records::DbArgs,
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

pub fn run(mut args: FlowsArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => crate::config::flows_settings(path)?,
        None => crate::config::FlowsFileSettings::default(),
    };
    args.sounds_dir = args.sounds_dir.or(file.sounds_dir);
    let flows_dir = args
        .flows_dir
        .or(file.flows_dir)
        .unwrap_or_else(|| "ivr-flows".into());
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
            dial_allow,
        } => {
            let dial_allow = if dial_allow.is_empty() {
                file.dial_allow.unwrap_or_default()
            } else {
                dial_allow
            };
            let policy = if dial_allow.is_empty() {
                hotline_desk::DialPolicy::default()
            } else {
                hotline_desk::DialPolicy::new(
                    &dial_allow,
                    file.dial_max_per_hour
                        .unwrap_or(hotline_desk::policy::DEFAULT_DIAL_MAX_PER_HOUR),
                )?
            };
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
                dial_check: Some(hotline_ivr::callback::DialCheck::new(move |n| {
                    policy.allows(n)
                })),
                ..SimOptions::default()
            };
            let transcript = sim::simulate(flow, &opts).map_err(anyhow::Error::msg)?;
            print!("{}", transcript.render());
            Ok(())
        }
        FlowsCommand::Import {
            dir,
            skip_prompts,
            db,
        } => {
            let dir = dir.unwrap_or(flows_dir);
            let sounds = (!skip_prompts).then(|| SoundsDir::resolve(args.sounds_dir, &dir));
            if let Some(s) = sounds.as_ref().filter(|s| !s.exists) {
                bail!("{}", s.missing());
            }
            let sounds_dir = sounds.map(|s| s.dir);
            tokio::runtime::Runtime::new()?.block_on(import(&dir, sounds_dir.as_deref(), db))
        }
        FlowsCommand::Export { dir, db } => {
            tokio::runtime::Runtime::new()?.block_on(export(&dir, db))
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

/// `hotline flows import DIR`: prints one line per file; exit 1 when a
/// file was refused (the others are imported).
async fn import(
    dir: &Path,
    sounds_dir: Option<&Path>,
    db: crate::records::DbArgs,
) -> anyhow::Result<()> {
    let files = flow_files(&[dir.to_owned()]).map_err(|e| anyhow::anyhow!("{e}"))?;
    if files.is_empty() {
        bail!("no flow files (*.yaml) in {}", dir.display());
    }
    let (url, data_dir) = db.resolve()?;
    let db = crate::records::Database::open(url.as_deref(), &data_dir, true, false).await?;
    let author = crate::privacy_cmd::cli_actor();
    let res = import_files(&db.store, &files, sounds_dir, &author).await;
    if let Ok((_, refused)) = &res {
        let _ = db
            .store
            .audit_from(
                &author,
                "flow_import",
                Some(&dir.display().to_string()),
                serde_json::json!({ "files": files.len(), "refused": refused }),
                None,
            )
            .await;
    }
    db.close().await;
    let (lines, refused) = res?;
    for l in lines {
        println!("{l}");
    }
    if refused > 0 {
        eprintln!("{refused} file(s) refused");
        std::process::exit(1);
    }
    Ok(())
}

/// Imports `files` as published versions (`Source::Cli`): what happened to
/// each, one line per file, and how many were refused.
async fn import_files(
    store: &hotline_store::Store,
    files: &[PathBuf],
    sounds_dir: Option<&Path>,
    author: &str,
) -> anyhow::Result<(Vec<String>, usize)> {
    use hotline_store::flow_versions::{Imported, Source, valid_flow_name};
    let opts = LoadOptions {
        sounds_dir: sounds_dir.map(Path::to_owned),
    };
    let mut lines = Vec::new();
    let mut refused = 0;
    for file in files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) = valid_flow_name(&name) {
            lines.push(format!("{}: refused: {e}", file.display()));
            refused += 1;
            continue;
        }
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        match hotline_ivr::load_str(file, &text, &opts) {
            Ok(flow) if flow.name != name => {
                lines.push(format!(
                    "{}: refused: the flow is called `{}`; the file name must be the flow's name",
                    file.display(),
                    flow.name
                ));
                refused += 1;
                continue;
            }
            Ok(_) => {}
            Err(errors) => {
                lines.extend(errors.0.iter().map(ToString::to_string));
                lines.push(format!("{}: refused", file.display()));
                refused += 1;
                continue;
            }
        }
        let done = store
            .import_flow_text(&name, &text, author, Source::Cli, true)
            .await
            .with_context(|| format!("cannot import {name}"))?;
        lines.push(match done {
            Imported::Unchanged => format!("{name}: unchanged"),
            Imported::Published(v) => format!("{name}: published v{}", v.version),
            Imported::Draft { draft, .. } => format!("{name}: saved as draft v{}", draft.version),
        });
    }
    Ok((lines, refused))
}

/// `hotline flows export DIR`.
async fn export(dir: &Path, db: crate::records::DbArgs) -> anyhow::Result<()> {
    let (url, data_dir) = db.resolve()?;
    let db = crate::records::Database::open(url.as_deref(), &data_dir, true, false).await?;
    let res = export_published(&db.store, dir).await;
    db.close().await;
    let lines = res?;
    if lines.is_empty() {
        eprintln!("no published flows");
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// Writes the published set to `dir` as `<name>.yaml`, byte for byte.
async fn export_published(store: &hotline_store::Store, dir: &Path) -> anyhow::Result<Vec<String>> {
    let published = store
        .published_flows()
        .await
        .context("cannot read the published flows")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut lines = Vec::new();
    for v in &published {
        let path = dir.join(format!("{}.yaml", v.flow));
        std::fs::write(&path, v.yaml.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        lines.push(format!(
            "{}: v{} ({} by {})",
            path.display(),
            v.version,
            v.created_at.to_rfc3339(),
            v.author
        ));
    }
    Ok(lines)
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
pub(crate) fn parse_at(s: &str) -> anyhow::Result<DateTime<Utc>> {
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

    /// `hotline flows import` then `export`: the same bytes; importing
    /// unchanged files again creates nothing; an edit makes one version.
    #[tokio::test]
    async fn import_then_export_gives_identical_files() {
        let db = hotline_store::testing::fresh_db().await;
        db.store.migrate().await.unwrap();
        let root = hotline_store::testing::TestCluster::shared().scratch("flows-roundtrip");
        let (src, out) = (root.join("src"), root.join("out"));
        std::fs::create_dir_all(&src).unwrap();
        let repo = Path::new(&crate::test_support::manifest_dir()).join("../..");
        let sounds = repo.join("sounds");
        let main = std::fs::read(repo.join("ivr-flows/main.yaml")).unwrap();
        std::fs::write(src.join("main.yaml"), &main).unwrap();
        // CRLF, trailing spaces, a non-ASCII comment and no final newline.
        let odd = "# 热线 \r\nflow: odd   \r\nstart: bye\r\nnodes:\r\n  bye:\r\n    type: hangup\r\n    prompt: goodbye";
        std::fs::write(src.join("odd.yaml"), odd).unwrap();
        let files = flow_files(std::slice::from_ref(&src)).unwrap();

        let (lines, refused) = import_files(&db.store, &files, Some(&sounds), "cli:test")
            .await
            .unwrap();
        assert_eq!(refused, 0, "{lines:?}");
        assert_eq!(lines, ["main: published v1", "odd: published v1"]);
        let (lines, _) = import_files(&db.store, &files, Some(&sounds), "cli:test")
            .await
            .unwrap();
        assert_eq!(lines, ["main: unchanged", "odd: unchanged"]);
        assert_eq!(db.store.flow_versions("main").await.unwrap().len(), 1);

        let written = export_published(&db.store, &out).await.unwrap();
        assert_eq!(written.len(), 2, "{written:?}");
        assert_eq!(std::fs::read(out.join("main.yaml")).unwrap(), main);
        assert_eq!(std::fs::read(out.join("odd.yaml")).unwrap(), odd.as_bytes());

        std::fs::write(src.join("odd.yaml"), odd.replace("goodbye", "thank-you")).unwrap();
        let (lines, _) = import_files(&db.store, &files, Some(&sounds), "cli:test")
            .await
            .unwrap();
        assert_eq!(lines, ["main: unchanged", "odd: published v2"]);
        let v = db.store.published_flow("odd").await.unwrap().unwrap();
        assert_eq!((v.author.as_str(), v.source.as_str()), ("cli:test", "cli"));

        // An invalid file is refused with its position; nothing is created.
        std::fs::write(
            src.join("odd.yaml"),
            "flow: odd\nstart: nowhere\nnodes: {}\n",
        )
        .unwrap();
        let (lines, refused) = import_files(&db.store, &files, Some(&sounds), "cli:test")
            .await
            .unwrap();
        assert_eq!(refused, 1);
        assert!(lines.iter().any(|l| l.contains("odd.yaml:2:")), "{lines:?}");
        assert_eq!(db.store.flow_versions("odd").await.unwrap().len(), 2);
    }
}
