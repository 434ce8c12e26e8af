use std::path::PathBuf;

/// Everything the store can fail at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed or the database could not be reached.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The schema migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A database call took longer than the limit given.
    #[error("database did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A file or directory could not be used.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done, e.g. `cannot create`.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The embedded cluster needs `initdb`, `pg_ctl` and `postgres`, and none
    /// were found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install PostgreSQL \
         (Debian/Ubuntu: `apt-get install postgresql`), put its bin directory on PATH or make \
         `pg_config --bindir` find it, or set DATABASE_URL to use an existing server"
    )]
    PostgresNotFound,
    /// The data directory (its path and mode) cannot be entered by the
    /// `postgres` user the embedded cluster runs as.
    #[error(
        "the embedded PostgreSQL runs as the `postgres` user, which cannot enter {0} (mode {1:o}): \
         choose a --data-dir it can reach (e.g. under /var/lib or /srv), make that directory \
         traversable (chmod o+x), or set DATABASE_URL"
    )]
    DataDirUnreachable(std::path::PathBuf, u32),
    /// Running as root without a `postgres` user to run the embedded cluster as.
    #[error(
        "running as root and there is no `postgres` system user to run the embedded PostgreSQL as \
         (PostgreSQL refuses root): install the postgresql package (it creates the user), run \
         hotline as an unprivileged user, or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    /// An external command (`initdb`, `pg_ctl`, …) failed.
    #[error("{command} failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// Input the store refuses (bad id, unknown agent in a queue, …); the
    /// message is meant for the user.
    #[error("{0}")]
    Invalid(String),
    /// The agent, queue, … does not exist.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// The sort of thing: `agent`, `queue`, …
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// It exists already.
    #[error("{what} {id:?} already exists")]
    Conflict {
        /// The sort of thing: `agent`, `queue`, …
        what: &'static str,
        /// The id already taken.
        id: String,
    },
    /// An event could not be written as JSON (to the spool or `call_events`).
    #[error("cannot encode a call event: {0}")]
    Encode(serde_json::Error),
    /// Password hashing failed (never a wrong password: that is `Ok(None)`).
    #[error("password hashing: {0}")]
    Hash(String),
}

impl StoreError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
