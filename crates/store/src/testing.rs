//! Test support: one throwaway PostgreSQL cluster per test process, a fresh
//! database for each test.
//!
//! ```no_run
//! # async fn t() {
//! let db = hotline_store::testing::fresh_db().await;   // CREATE DATABASE test_<random>
//! db.store.migrate().await.unwrap();
//! # }
//! ```
//!
//! The cluster lives in a temp dir, listens on a unix socket only, runs with
//! fsync off, and is killed and removed by a small watchdog when the test
//! process exits (statics are never dropped, so the process cannot do it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::embedded::{EmbeddedOptions, EmbeddedPostgres};
use crate::{Store, create_database};

/// A throwaway cluster, removed with its directory when the process exits.
pub struct TestCluster {
    /// The running cluster.
    pub pg: EmbeddedPostgres,
    root: PathBuf,
}

impl TestCluster {
    /// Starts a private cluster (several seconds: initdb). Prefer
    /// [`shared`](Self::shared) unless the test stops the server.
    pub fn start() -> Self {
        let root = std::env::temp_dir().join(format!(
            "hotline-test-pg-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        let pg = EmbeddedPostgres::start(&root.join("pg"), EmbeddedOptions { unsafe_fast: true })
            .unwrap_or_else(|e| panic!("cannot start a test PostgreSQL cluster: {e}"));
        watchdog(&root, pg.dir());
        Self { pg, root }
    }

    /// The cluster shared by the tests of this process.
    pub fn shared() -> &'static TestCluster {
        static SHARED: OnceLock<TestCluster> = OnceLock::new();
        SHARED.get_or_init(TestCluster::start)
    }

    /// A temp directory under the cluster's root (for spools, data dirs).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.root.join(format!("{name}-{:08x}", fastrand::u32(..)));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// A new empty database on this cluster.
    pub async fn fresh_db(&self) -> TestDb {
        let name = format!("test_{:016x}", fastrand::u64(..));
        create_database(self.pg.connect_options("postgres"), &name)
            .await
            .expect("CREATE DATABASE");
        let options = self.pg.connect_options(&name);
        TestDb {
            store: Store::connect_lazy(options.clone(), Duration::from_secs(2)),
            options,
            name,
        }
    }
}

/// A database of one test's own.
pub struct TestDb {
    /// A store on the database.
    pub store: Store,
    /// How to connect to it (for a second pool or a writer).
    pub options: PgConnectOptions,
    /// The database's name, unique to the test.
    pub name: String,
}

/// A fresh database on the process's shared cluster.
pub async fn fresh_db() -> TestDb {
    TestCluster::shared().fresh_db().await
}

/// Kills the postmaster (SIGQUIT: immediate) and removes `root` once this
/// process is gone.
fn watchdog(root: &Path, cluster: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         pm=$(head -1 '{pidfile}' 2>/dev/null); [ -n \"$pm\" ] && kill -QUIT \"$pm\" 2>/dev/null; \
         sleep 1; rm -rf '{root}'",
        pid = std::process::id(),
        pidfile = cluster.join("postmaster.pid").display(),
        root = root.display(),
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let _ = cmd.spawn();
}
