//! Call records: the database (a `DATABASE_URL` or the embedded cluster under
//! `<data-dir>/pg`), migrations, and the writer fed from the call events.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hotline_events::CallEvent;
use hotline_store::{EmbeddedOptions, EmbeddedPostgres, Store, Writer, WriterConfig, WriterStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Config, ServeArgs};

/// The embedded cluster's database.
const EMBEDDED_DB: &str = "hotline";

/// Where the database is, for the commands that need nothing else
/// (`migrate`, `seed-demo`, `agents …`): found as `serve` finds it, from the
/// same flags, variables and config file.
/// `Debug` prints `***` for the database URL (it may hold a password).
#[derive(clap::Args, Default, Clone)]
pub struct DbArgs {
    /// `serve`'s TOML config file; only its database_url and data_dir matter here.
    #[arg(long, env = "HOTLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data dir whose embedded PostgreSQL (<DIR>/pg) to use [default: ./data].
    #[arg(long, env = "HOTLINE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL; without one, the embedded cluster under the data dir.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

impl std::fmt::Debug for DbArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbArgs")
            .field("config", &self.config)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|_| "***"))
            .finish()
    }
}

impl DbArgs {
    /// (database URL, data dir), with `serve`'s precedence: flag, env,
    /// config file, default.
    pub fn resolve(self) -> anyhow::Result<(Option<String>, PathBuf)> {
        let cfg = Config::resolve(ServeArgs {
            config: self.config,
            data_dir: self.data_dir,
            database_url: self.database_url,
            ..ServeArgs::default()
        })?;
        Ok((cfg.database_url, cfg.data_dir))
    }
}

/// The database in use, and the embedded cluster if we run one.
pub struct Database {
    pub store: Store,
    embedded: Option<EmbeddedGuard>,
}

/// Stops the embedded cluster when dropped. `hotline serve` owns the cluster
/// even when it found it running (a crashed predecessor left it); `migrate`
/// and `seed-demo` leave a cluster they found running to its gateway.
struct EmbeddedGuard(EmbeddedPostgres, bool);

impl Drop for EmbeddedGuard {
    fn drop(&mut self) {
        if self.0.reused && !self.1 {
            return;
        }
        match self.0.stop() {
            Ok(()) => tracing::info!("embedded PostgreSQL stopped"),
            Err(e) => tracing::error!(error = %e, "cannot stop the embedded PostgreSQL"),
        }
    }
}

impl Database {
    /// Opens the database: `url` if given, else the embedded cluster under
    /// `<data_dir>/pg` (initialised on first run). With `strict`, an external
    /// server that does not answer is an error; otherwise the writer spools
    /// until it does. `serving`: we are the gateway (own the embedded cluster).
    pub async fn open(
        url: Option<&str>,
        data_dir: &Path,
        strict: bool,
        serving: bool,
    ) -> anyhow::Result<Self> {
        match url {
            Some(url) => {
                let options = Store::options_from_url(url).context("invalid DATABASE_URL")?;
                let store = Store::connect_lazy(options, Duration::from_secs(2));
                match tokio::time::timeout(Duration::from_secs(10), store.migrate()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) if strict => return Err(e).context("cannot migrate the database"),
                    Err(_) if strict => {
                        anyhow::bail!("the database at DATABASE_URL did not answer in 10 s")
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "database not ready; call records go to the spool until it is")
                    }
                    Err(_) => tracing::warn!(
                        "database did not answer in 10 s; call records go to the spool until it does"
                    ),
                }
                Ok(Self {
                    store,
                    embedded: None,
                })
            }
            None => {
                let dir = data_dir.join("pg");
                let pg = tokio::task::spawn_blocking(move || {
                    EmbeddedPostgres::start(&dir, EmbeddedOptions::default())
                })
                .await?
                .context("cannot run the embedded PostgreSQL (or set DATABASE_URL)")?;
                let guard = EmbeddedGuard(pg, serving);
                guard
                    .0
                    .ensure_database(EMBEDDED_DB)
                    .await
                    .context("cannot create the embedded database")?;
                let store = Store::connect_lazy(
                    guard.0.connect_options(EMBEDDED_DB),
                    Duration::from_secs(2),
                );
                store
                    .migrate()
                    .await
                    .context("cannot migrate the embedded database")?;
                tracing::info!(url = %guard.0.url(EMBEDDED_DB), "embedded PostgreSQL ready");
                Ok(Self {
                    store,
                    embedded: Some(guard),
                })
            }
        }
    }

    /// Closes the pool and stops the embedded cluster (if ours).
    pub async fn close(mut self) {
        self.store.close().await;
        if let Some(guard) = self.embedded.take() {
            let _ = tokio::task::spawn_blocking(move || drop(guard)).await;
        }
    }
}

/// The running writer.
pub struct Records {
    db: Database,
    writer: JoinHandle<Arc<WriterStats>>,
    /// The writer's counters and its spool, for `/metrics`.
    stats: Arc<WriterStats>,
    spool_dir: PathBuf,
    tx: Option<mpsc::Sender<CallEvent>>,
}

impl Records {
    /// The database, for the flows' lookups.
    pub fn store(&self) -> Store {
        self.db.store.clone()
    }

    /// The writer's counters and its spool directory (for `/metrics`).
    pub fn writer_stats(&self) -> (Arc<WriterStats>, PathBuf) {
        (self.stats.clone(), self.spool_dir.clone())
    }

    /// Opens the database and starts the writer (which first replays a spool
    /// left by a crash and closes the calls it interrupted).
    /// `node` is this gateway's name (`--node-name`): its calls are
    /// recorded under it and recovery closes only its calls.
    /// With `recording_keys`, the writer seals every recording and
    /// voicemail with the keyring's current key (docs/security.md).
    pub async fn start(
        url: Option<&str>,
        data_dir: &Path,
        recording_keys: Option<Arc<hotline_store::Keyring>>,
        node: &str,
    ) -> anyhow::Result<Self> {
        let db = Database::open(url, data_dir, false, true).await?;
        let writer = Writer::new(
            db.store.clone(),
            &data_dir.join("spool"),
            WriterConfig {
                // Recovery links the WAV a crash left behind (issue 9 #10).
                recordings_dir: Some(data_dir.join("recordings")),
                recording_keys,
                ..WriterConfig::new(node)
            },
        )
        .context("cannot open the spool")?;
        let (tx, rx) = mpsc::channel(4096);
        let stats = writer.stats();
        let writer = tokio::spawn(writer.run(rx));
        tracing::info!(node = %node, "call-record writer started");
        Ok(Self {
            db,
            writer,
            stats,
            spool_dir: data_dir.join("spool"),
            tx: Some(tx),
        })
    }

    /// Tees call events: every event goes to the writer and to the returned
    /// receiver (the JSON-lines log). Both are bounded; a slow consumer slows
    /// the calls' event emission rather than dropping events.
    /// `board` takes every event too (the live feed, live.rs).
    pub fn tee(
        &mut self,
        mut rx: mpsc::Receiver<CallEvent>,
        board: crate::live::SharedBoard,
    ) -> mpsc::Receiver<CallEvent> {
        let to_writer = self.tx.take().expect("tee is called once");
        let (to_log, log_rx) = mpsc::channel(4096);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(256);
            while rx.recv_many(&mut batch, 256).await > 0 {
                let t0 = crate::live::thread_cpu();
                if let Ok(mut b) = board.lock() {
                    for ev in &batch {
                        b.on_event(ev);
                    }
                }
                crate::live::count_cpu(crate::live::thread_cpu().saturating_sub(t0));
                for ev in batch.drain(..) {
                    crate::metrics::on_event(&ev);
                    let _ = to_log.send(ev.clone()).await;
                    if to_writer.send(ev).await.is_err() {
                        tracing::error!("call-record writer is gone; event not recorded");
                    }
                }
            }
        });
        log_rx
    }

    /// Waits for the writer to finish (after every event sender is gone),
    /// then stops the database.
    pub async fn finish(mut self) {
        drop(self.tx.take());
        match tokio::time::timeout(Duration::from_secs(15), &mut self.writer).await {
            Ok(Ok(stats)) => {
                use std::sync::atomic::Ordering::Relaxed;
                tracing::info!(
                    written = stats.written.load(Relaxed),
                    spooled = stats.spooled.load(Relaxed),
                    replayed = stats.replayed.load(Relaxed),
                    interrupted = stats.interrupted.load(Relaxed),
                    "call-record writer finished"
                );
            }
            Ok(Err(e)) => tracing::error!(error = %e, "call-record writer failed"),
            Err(_) => tracing::warn!(
                "call-record writer did not finish in time; the spool keeps the rest"
            ),
        }
        self.db.close().await;
    }
}

/// Returns once the migrations are applied, retrying every `retry`: the
/// tables a background task (`what`) uses come with them, and the writer
/// may still be running them (sqlx serialises concurrent runs).
pub(crate) async fn migrated(store: &Store, what: &str, retry: Duration) {
    while let Err(e) = store.migrate().await {
        tracing::warn!(error = %e, "{what}: database not ready; retrying");
        tokio::time::sleep(retry).await;
    }
}

/// Keeps this node's lease (migration 0016) every third of `ttl`, and on
/// every renewal closes the open calls of any node whose lease expired
/// (docs/architecture.md, "Nodes and leases"). A renewal that fails costs a
/// warning: past `ttl` without one, other nodes take this one for dead.
pub fn spawn_lease(store: Store, node: String, ttl: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = (ttl / 3).max(Duration::from_secs(1));
        migrated(&store, "node lease", every).await;
        let mut fresh = true;
        let mut failing = false;
        loop {
            match store.renew_lease(&node, ttl, fresh).await {
                Ok(()) => {
                    if fresh {
                        tracing::info!(node = %node, ttl = ?ttl, "node lease taken");
                    } else if failing {
                        tracing::info!(node = %node, "node lease renewed again");
                    }
                    fresh = false;
                    failing = false;
                }
                Err(e) => {
                    failing = true;
                    tracing::warn!(
                        node = %node, error = %e,
                        "node lease not renewed: past {ttl:?} without a renewal, other nodes \
                         take this node for dead and close its calls"
                    );
                }
            }
            loop {
                match store.take_over_expired(&node).await {
                    Ok(Some(t)) => tracing::warn!(
                        dead_node = %t.node,
                        expired_at = %t.expired_at,
                        calls = t.calls.len(),
                        "a node's lease expired: its open calls are closed as interrupted"
                    ),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "closing an expired node's calls failed; retrying");
                        break;
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// `hotline migrate`.
pub async fn migrate(url: Option<&str>, data_dir: &Path) -> anyhow::Result<()> {
    let db = Database::open(url, data_dir, true, false).await?;
    let applied = hotline_store::MIGRATOR.iter().count();
    db.close().await;
    println!("migrations up to date ({applied} known)");
    Ok(())
}

/// `hotline seed-demo`'s flags.
#[derive(clap::Args, Debug)]
pub struct SeedDemoArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Also make sure N made-up finished calls exist (spread over the last
    /// 90 days, with their events), for trying and measuring the call
    /// search. Calls are numbered: a second run with the same N adds
    /// nothing, a larger N adds the difference.
    #[arg(long, value_name = "N")]
    pub calls: Option<u64>,
}

/// `hotline seed-demo`.
pub async fn seed_demo(
    url: Option<&str>,
    data_dir: &Path,
    calls: Option<u64>,
) -> anyhow::Result<()> {
    let db = Database::open(url, data_dir, true, false).await?;
    let mut res = db.store.seed_demo().await;
    let mut seeded = None;
    if let (Ok(_), Some(n)) = (&res, calls) {
        let started = std::time::Instant::now();
        let mut last = std::time::Instant::now();
        match db
            .store
            .seed_calls(n, |done, n| {
                if last.elapsed() >= Duration::from_secs(5) {
                    last = std::time::Instant::now();
                    let _ = writeln!(std::io::stderr(), "calls: {done}/{n}");
                }
            })
            .await
        {
            Ok(r) => seeded = Some((r, started.elapsed())),
            Err(e) => res = Err(e),
        }
    }
    db.close().await;
    let n = res.context("cannot insert the demo data")?;
    println!(
        "demo data: {} customers, {} subscriptions, {} orders inserted (existing rows kept)",
        n.customers, n.subscriptions, n.orders
    );
    println!(
        "queues of the shipped flow: {} ({} created)",
        Store::DEMO_QUEUES.join(", "),
        n.queues
    );
    let (id, name, password) = Store::DEMO_AGENT;
    println!(
        "demo agent {id} ({name}){}: log in at http://<http-listen>/agent as {id} / {password}",
        if n.agents > 0 { " added" } else { " kept" }
    );
    let _ = writeln!(
        std::io::stderr(),
        "warning: the demo agent's password is public; for demos only. \
         Remove it before real use: hotline agents remove {id}"
    );
    if let Some((r, took)) = seeded {
        println!(
            "demo calls: {} inserted with {} events in {:.1} s ({} were there already)",
            r.inserted,
            r.events,
            took.as_secs_f64(),
            r.existing
        );
    }
    Ok(())
}
