//! A directory of flows, loaded into immutable versions and reloaded in place.
//!
//! Each call takes an `Arc<Flow>` when it starts and keeps it, so a reload
//! never disturbs a call in progress. A file that fails to load keeps its
//! previous version live and its errors are returned for logging.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::{ErrorKind, FlowError, FlowErrors};
use crate::flow::Flow;
use crate::load::{LoadOptions, load_file};

/// The flow files in `paths`: files as given, directories' `*.yaml`/`*.yml` (sorted).
pub fn flow_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FlowErrors> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut files: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| {
                            f.is_file()
                                && matches!(
                                    f.extension().and_then(|e| e.to_str()),
                                    Some("yaml" | "yml")
                                )
                        })
                        .collect();
                    files.sort();
                    out.extend(files);
                }
                Err(e) => errors.push(FlowError {
                    file: p.clone(),
                    pos: None,
                    message: format!("cannot read directory: {e}"),
                    kind: ErrorKind::Flow,
                }),
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            errors.push(FlowError {
                file: p.clone(),
                pos: None,
                message: "no such file or directory".into(),
                kind: ErrorKind::Flow,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FlowErrors(errors))
    }
}

/// Loads every file; returns the good flows and every error (including two files naming the same flow).
pub fn load_all(files: &[PathBuf], opts: &LoadOptions) -> (Vec<Flow>, Vec<FlowError>) {
    let mut flows: Vec<Flow> = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file(f, opts) {
            Ok(flow) => {
                if let Some(other) = flows.iter().find(|o| o.name == flow.name) {
                    errors.push(FlowError {
                        file: f.clone(),
                        pos: None,
                        message: format!(
                            "flow `{}` is also defined in {}",
                            flow.name,
                            other.path.display()
                        ),
                        kind: ErrorKind::Flow,
                    });
                } else {
                    flows.push(flow);
                }
            }
            Err(e) => errors.extend(e.0),
        }
    }
    (flows, errors)
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Flows with a new version (name, version).
    pub updated: Vec<(String, String)>,
    /// Flows gone because their file was removed.
    pub removed: Vec<String>,
    /// Problems; the flows they concern keep their previous version.
    pub errors: Vec<FlowError>,
}

/// The flows of one directory, by name.
pub struct FlowSet {
    dir: PathBuf,
    opts: LoadOptions,
    flows: BTreeMap<String, Arc<Flow>>,
    /// Which file each flow came from, so a deleted file removes its flow.
    stamps: Vec<(PathBuf, Option<SystemTime>, u64)>,
}

impl FlowSet {
    /// Loads a directory; fails with every error if any file is invalid
    /// (at start-up there is no previous version to fall back on).
    pub fn load(dir: &Path, opts: LoadOptions) -> Result<Self, FlowErrors> {
        let (set, report) = Self::open(dir, opts);
        if report.errors.is_empty() {
            Ok(set)
        } else {
            Err(FlowErrors(report.errors))
        }
    }

    /// Loads a directory, keeping the valid flows live and reporting the
    /// invalid ones (a gateway keeps answering with what it can).
    pub fn open(dir: &Path, opts: LoadOptions) -> (Self, ReloadReport) {
        let mut set = FlowSet {
            dir: dir.to_owned(),
            opts,
            flows: BTreeMap::new(),
            stamps: Vec::new(),
        };
        let report = set.reload();
        (set, report)
    }

    /// The current version of a flow.
    pub fn get(&self, name: &str) -> Option<Arc<Flow>> {
        self.flows.get(name).cloned()
    }

    /// The names of the flows loaded, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.flows.keys().map(String::as_str)
    }

    /// The directory the flows are loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory again. Valid files replace their flow (if the
    /// content changed); invalid ones leave the previous version in place.
    pub fn reload(&mut self) -> ReloadReport {
        let mut report = ReloadReport::default();
        self.stamps = self.scan();
        let files = match flow_files(std::slice::from_ref(&self.dir)) {
            Ok(f) => f,
            Err(e) => {
                report.errors = e.0;
                return report;
            }
        };
        let mut seen_files = Vec::new();
        for f in &files {
            match load_file(f, &self.opts) {
                Ok(flow) => {
                    seen_files.push(f.clone());
                    if let Some(other) = self.flows.get(&flow.name)
                        && other.path != flow.path
                        && files.contains(&other.path)
                    {
                        report.errors.push(FlowError {
                            file: f.clone(),
                            pos: None,
                            message: format!(
                                "flow `{}` is also defined in {}",
                                flow.name,
                                other.path.display()
                            ),
                            kind: ErrorKind::Flow,
                        });
                        continue;
                    }
                    let changed = self
                        .flows
                        .get(&flow.name)
                        .is_none_or(|o| o.version != flow.version);
                    if changed {
                        report
                            .updated
                            .push((flow.name.clone(), flow.version.clone()));
                        self.flows.insert(flow.name.clone(), Arc::new(flow));
                    }
                }
                Err(e) => {
                    seen_files.push(f.clone());
                    report.errors.extend(e.0);
                }
            }
        }
        let gone: Vec<String> = self
            .flows
            .iter()
            .filter(|(_, f)| !seen_files.contains(&f.path))
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.flows.remove(&name);
            report.removed.push(name);
        }
        report
    }

    /// Reloads only when a file was added, removed or modified since the last
    /// look (mtime and size); meant for a poll every couple of seconds.
    pub fn reload_if_changed(&mut self) -> Option<ReloadReport> {
        if self.scan() == self.stamps {
            return None;
        }
        Some(self.reload())
    }

    fn scan(&self) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
        let files = flow_files(std::slice::from_ref(&self.dir)).unwrap_or_default();
        files
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let mtime = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map(|m| m.len()).unwrap_or(0);
                (f, mtime, len)
            })
            .collect()
    }
}
