//! The live IVR flows (hot-reloaded from the flows dir) and the lookups they
//! may ask for (the records database, webhooks).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hotline_call::{BoxFuture, FlowFactory, LookupProvider};
use hotline_ivr::{Flow, FlowSet, LoadOptions, LookupSource, ReloadReport};
use hotline_store::Store;
use serde_json::{Map, Value};

/// How often the flows dir is checked for edits.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The flows new calls get: the entry flow from the flows dir, else the built-in one.
pub struct LiveFlows {
    set: RwLock<FlowSet>,
    entry: String,
    builtin: Arc<Flow>,
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
            set: RwLock::new(set),
            entry,
            builtin: Arc::new(builtin),
        });
        match live.current() {
            _ if live.entry == "builtin" => tracing::info!("calls get the built-in flow"),
            f if Arc::ptr_eq(&f, &live.builtin) => tracing::warn!(
                entry = %live.entry,
                dir = %dir.display(),
                "entry flow not found; calls get the built-in flow"
            ),
            f => tracing::info!(flow = %f.name, version = %f.version, "entry flow loaded"),
        }
        live
    }

    /// The version a new call starts with (and keeps).
    pub fn current(&self) -> Arc<Flow> {
        if self.entry == "builtin" {
            return self.builtin.clone();
        }
        let set = self.set.read().unwrap_or_else(|p| p.into_inner());
        set.get(&self.entry).unwrap_or_else(|| self.builtin.clone())
    }

    pub fn factory(self: &Arc<Self>) -> FlowFactory {
        let live = self.clone();
        Arc::new(move |_| live.current())
    }

    /// Polls the flows dir; a changed valid file is live for new calls, an
    /// invalid one is refused (its errors logged) and the previous version stays.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let live = self.clone();
            let report = tokio::task::spawn_blocking(move || {
                let mut set = live.set.write().unwrap_or_else(|p| p.into_inner());
                set.reload_if_changed()
            })
            .await;
            if let Ok(Some(report)) = report {
                log_report(&report);
            }
        }
    }
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
