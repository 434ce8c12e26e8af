//! The live IVR flows and the lookups they may ask for (the records
//! database, webhooks).
//!
//! With a database (always, unless it cannot be reached at start) calls run
//! the published version of each flow in `flow_versions` (docs/flows.md,
//! "Versions and publishing"): a `LISTEN hotline_flows` reloads a flow the
//! moment a publish commits, on every gateway sharing the database. The
//! flows dir is still polled: a changed file is imported as a new version,
//! published if the published version came from the files too, else kept
//! as a draft (the console's version wins, and the log says so).
//! Without the database the flows dir is loaded directly, as before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use hotline_call::{BoxFuture, FlowFactory, LookupProvider};
use hotline_ivr::registry::flow_files;
use hotline_ivr::{Flow, FlowSet, LoadOptions, LookupSource, ReloadReport, load_str};
use hotline_store::Store;
use hotline_store::flow_versions::{Imported, Source, file_draft_notice, valid_flow_name};
use serde_json::{Map, Value};

/// How often the flows dir is checked for edits.
const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// How long the database may take to answer at start before the files are used.
const DB_START_TIMEOUT: Duration = Duration::from_secs(5);

/// The flows new calls get: the entry flow (published in the database, or
/// from the flows dir), else the built-in one.
pub struct LiveFlows {
    source: FlowSource,
    entry: String,
    builtin: Arc<Flow>,
}

enum FlowSource {
    /// The flows dir alone (no database at start).
    Files(RwLock<FlowSet>),
    /// The published versions in the database.
    Db(DbFlows),
}

type Stamp = (PathBuf, Option<SystemTime>, u64);

struct DbFlows {
    store: Store,
    dir: PathBuf,
    sounds_dir: PathBuf,
    /// The published version of each flow, as loaded (`version` is `v<N>`).
    flows: RwLock<BTreeMap<String, Arc<Flow>>>,
    /// The flows dir as last imported (mtime and size of each file).
    stamps: Mutex<Vec<Stamp>>,
}

impl LiveFlows {
    /// Loads the flows dir. Invalid files are logged and left out; the
    /// gateway answers with what is valid.
    pub fn open(dir: PathBuf, sounds_dir: PathBuf, entry: String, builtin: Flow) -> Arc<Self> {
        let (set, report) = FlowSet::open(
            &dir,
            LoadOptions {
                sounds_dir: Some(sounds_dir),
            },
        );
        log_report(&report);
        let live = Arc::new(Self {
            source: FlowSource::Files(RwLock::new(set)),
            entry,
            builtin: Arc::new(builtin),
        });
        live.log_entry(&dir);
        live
    }

    /// Runs the published flows of the database; on a first start (no
    /// version at all) the flows dir is imported as version 1 of each flow,
    /// published, author `import`. A database that does not answer within
    /// 5 s leaves the gateway on the files ([`LiveFlows::open`]), logged.
    pub async fn open_db(
        store: Store,
        dir: PathBuf,
        sounds_dir: PathBuf,
        entry: String,
        builtin: Flow,
    ) -> Arc<Self> {
        let empty = match tokio::time::timeout(DB_START_TIMEOUT, store.flow_versions_empty()).await
        {
            Ok(Ok(empty)) => empty,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, dir = %dir.display(), "flow versions unreadable: running the flows dir's files (no publishing until restart)");
                return Self::open(dir, sounds_dir, entry, builtin);
            }
            Err(_) => {
                tracing::warn!(dir = %dir.display(), "database did not answer in 5 s: running the flows dir's files (no publishing until restart)");
                return Self::open(dir, sounds_dir, entry, builtin);
            }
        };
        let db = DbFlows {
            store,
            dir: dir.clone(),
            sounds_dir,
            flows: RwLock::new(BTreeMap::new()),
            stamps: Mutex::new(Vec::new()),
        };
        if empty {
            tracing::info!(dir = %dir.display(), "no flow versions yet: importing the flows dir");
        }
        db.sync_files(empty).await;
        db.reload_all().await;
        let live = Arc::new(Self {
            source: FlowSource::Db(db),
            entry,
            builtin: Arc::new(builtin),
        });
        live.log_entry(&dir);
        live
    }

    fn log_entry(&self, dir: &Path) {
        match self.current() {
            _ if self.entry == "builtin" => tracing::info!("calls get the built-in flow"),
            f if Arc::ptr_eq(&f, &self.builtin) => tracing::warn!(
                entry = %self.entry,
                dir = %dir.display(),
                "entry flow not found; calls get the built-in flow"
            ),
            f => tracing::info!(flow = %f.name, version = %f.version, "entry flow loaded"),
        }
    }

    /// The version a new call starts with (and keeps).
    pub fn current(&self) -> Arc<Flow> {
        if self.entry == "builtin" {
            return self.builtin.clone();
        }
        let found = match &self.source {
            FlowSource::Files(set) => {
                let set = set.read().unwrap_or_else(|p| p.into_inner());
                set.get(&self.entry)
            }
            FlowSource::Db(db) => {
                let flows = db.flows.read().unwrap_or_else(|p| p.into_inner());
                flows.get(&self.entry).cloned()
            }
        };
        found.unwrap_or_else(|| self.builtin.clone())
    }

    pub fn factory(self: &Arc<Self>) -> FlowFactory {
        let live = self.clone();
        Arc::new(move |_| live.current())
    }

    /// Keeps the flows current: with the database, follows `hotline_flows`
    /// notifications and imports edited files; without it, polls the flows
    /// dir (a changed valid file is live for new calls, an invalid one is
    /// refused with its errors logged and the previous version stays).
    pub async fn watch(self: Arc<Self>) {
        if matches!(self.source, FlowSource::Db(_)) {
            tokio::spawn(self.clone().listen());
        }
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match &self.source {
                FlowSource::Files(_) => {
                    let live = self.clone();
                    let report = tokio::task::spawn_blocking(move || {
                        let FlowSource::Files(set) = &live.source else {
                            return None;
                        };
                        let mut set = set.write().unwrap_or_else(|p| p.into_inner());
                        set.reload_if_changed()
                    })
                    .await;
                    if let Ok(Some(report)) = report {
                        log_report(&report);
                    }
                }
                FlowSource::Db(db) => {
                    let now = scan(&db.dir);
                    let seen = db.stamps.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if now != seen {
                        db.sync_files(false).await;
                    }
                }
            }
        }
    }

    /// `LISTEN hotline_flows`: each notification names a flow whose published
    /// version changed. After every (re)connection everything is reloaded,
    /// so a publish made while the connection was down is not missed.
    async fn listen(self: Arc<Self>) {
        let FlowSource::Db(db) = &self.source else {
            return;
        };
        loop {
            let mut listener = match db.store.listen_flows().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN for flow publishes; retrying in 2 s");
                    tokio::time::sleep(RELOAD_EVERY).await;
                    continue;
                }
            };
            db.reload_all().await;
            loop {
                match listener.next().await {
                    Ok(Some(name)) => db.reload_flow(&name).await,
                    // The connection dropped; the next try_recv reconnects
                    // and listens again: reload what may have been missed.
                    Ok(None) => {
                        tracing::warn!("flow publish notifications interrupted; reconnecting");
                        db.reload_all().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "flow publish notifications failed; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    }
}

impl DbFlows {
    fn opts(&self) -> LoadOptions {
        LoadOptions {
            sounds_dir: Some(self.sounds_dir.clone()),
        }
    }

    /// Reloads every published flow whose version changed.
    async fn reload_all(&self) {
        match self.store.published_flows().await {
            Ok(all) => {
                for v in &all {
                    self.install(v);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the published flows"),
        }
    }

    /// Reloads one flow's published version (after a notification).
    async fn reload_flow(&self, name: &str) {
        match self.store.published_flow(name).await {
            Ok(Some(v)) => self.install(&v),
            Ok(None) => {}
            Err(e) => tracing::error!(flow = %name, error = %e, "cannot read the published flow"),
        }
    }

    /// Makes `v` live for new calls unless it is already; an invalid one
    /// (e.g. a prompt this gateway's sounds dir lacks) keeps the previous.
    fn install(&self, v: &hotline_store::FlowVersion) {
        let version = format!("v{}", v.version);
        let loaded = {
            let flows = self.flows.read().unwrap_or_else(|p| p.into_inner());
            flows.get(&v.flow).map(|f| f.version.clone())
        };
        if loaded.as_deref() == Some(version.as_str()) {
            return;
        }
        match crate::flows_api::load_version(v, Some(self.sounds_dir.as_path())) {
            Ok(flow) => {
                let mut flows = self.flows.write().unwrap_or_else(|p| p.into_inner());
                if flows.get(&v.flow).map(|f| f.version.as_str()) == Some(version.as_str()) {
                    return;
                }
                flows.insert(v.flow.clone(), Arc::new(flow));
                drop(flows);
                tracing::info!(flow = %v.flow, %version, author = %v.author, "flow loaded");
            }
            Err(errors) => {
                for e in errors {
                    tracing::error!(flow = %v.flow, %version, "flow refused: {e}");
                }
            }
        }
    }

    /// Imports the flows dir's files that changed (docs/flows.md: a file
    /// edit is published if the published version came from the files,
    /// else saved as a draft and the console's version wins).
    async fn sync_files(&self, first: bool) {
        let stamps = scan(&self.dir);
        let files = match flow_files(std::slice::from_ref(&self.dir)) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("flows dir: {e}");
                *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = stamps;
                return;
            }
        };
        let mut failed = false;
        for file in files {
            let Some(name) = file.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            if let Err(e) = valid_flow_name(&name) {
                tracing::warn!(file = %file.display(), "flow file not imported: {e}");
                continue;
            }
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("flow refused: {}: cannot read: {e}", file.display());
                    continue;
                }
            };
            let valid = match load_str(&file, &text, &self.opts()) {
                Ok(flow) if flow.name == name => true,
                Ok(flow) => {
                    tracing::error!(
                        "flow refused: {}: the flow is called `{}` but its file `{name}`: the file name is the flow's name",
                        file.display(),
                        flow.name
                    );
                    false
                }
                Err(errors) => {
                    for e in errors.0 {
                        tracing::error!("flow refused: {e}");
                    }
                    false
                }
            };
            let author = if first { "import" } else { "files" };
            match self
                .store
                .import_flow_text(&name, &text, author, Source::Files, valid)
                .await
            {
                Ok(Imported::Unchanged) => {}
                Ok(Imported::Published(v)) => {
                    tracing::info!(flow = %name, version = v.version, file = %file.display(), "flow file imported and published");
                    crate::metrics::flow_published("file");
                    // Live now; the notification makes it live elsewhere.
                    self.install(&v);
                }
                Ok(Imported::Draft { draft, published }) => match published {
                    Some(p) if valid => tracing::warn!(
                        flow = %name,
                        file = %file.display(),
                        "{}",
                        file_draft_notice(p, draft.version)
                    ),
                    _ => tracing::warn!(
                        flow = %name,
                        file = %file.display(),
                        "invalid flow file saved as draft v{}; published v{} stays",
                        draft.version,
                        published.map_or_else(|| "(none)".into(), |p| p.to_string())
                    ),
                },
                Err(e) => {
                    failed = true;
                    tracing::error!(flow = %name, error = %e, "cannot import the flow file; retrying");
                }
            }
        }
        // A failed import is retried at the next poll.
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) =
            if failed { Vec::new() } else { stamps };
    }
}

/// The flow files of `dir` with their mtime and size.
fn scan(dir: &Path) -> Vec<Stamp> {
    flow_files(&[dir.to_owned()])
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let mtime = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map(|m| m.len()).unwrap_or(0);
            (f, mtime, len)
        })
        .collect()
}

fn log_report(report: &ReloadReport) {
    for (name, version) in &report.updated {
        tracing::info!(flow = %name, %version, "flow loaded");
    }
    for name in &report.removed {
        tracing::warn!(flow = %name, "flow removed");
    }
    for e in &report.errors {
        tracing::error!("flow refused: {e}");
    }
}

/// Answers lookups from the records database and webhooks.
pub struct GatewayLookups {
    pub store: Store,
}

impl LookupProvider for GatewayLookups {
    fn lookup(
        &self,
        source: LookupSource,
        params: Map<String, Value>,
        timeout: Duration,
    ) -> BoxFuture<Result<Map<String, Value>, String>> {
        let store = self.store.clone();
        Box::pin(async move {
            let text = |key: &str| match params.get(key) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            let found = match &source {
                LookupSource::SubscriberByCallerId => {
                    store.subscriber_by_phone(&text("number")).await
                }
                LookupSource::OrderByNumber => store.order_by_number(&text("number")).await,
                LookupSource::Webhook { url } => {
                    return hotline_ivr::webhook::post_json(url, &params, timeout).await;
                }
            };
            match found {
                Ok(Some(m)) => Ok(m),
                // An empty object is "not found" to the flow.
                Ok(None) => Ok(Map::new()),
                Err(e) => Err(format!("{}: {e}", source.name())),
            }
        })
    }
}
