//! The embedded default database: a PostgreSQL cluster of our own under
//! `<data-dir>/pg`, listening on a unix socket only.
//!
//! The server binaries are found on PATH, via `pg_config --bindir`, or under
//! `/usr/lib/postgresql/<version>/bin`. PostgreSQL refuses to run as root, so
//! when we are root every server command runs as the `postgres` system user
//! (the cluster directory is chowned to it).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::StoreError;

/// The superuser the embedded cluster is created with (trust auth, socket only).
pub const EMBEDDED_USER: &str = "hotline";
/// The port only names the socket file (`.s.PGSQL.<port>`); nothing listens on TCP.
const PORT: u16 = 5432;
/// `sun_path` is 108 bytes with the NUL; keep a margin.
const MAX_SOCKET_PATH: usize = 100;

/// Where `initdb`, `pg_ctl` and `postgres` are.
#[derive(Clone, Debug)]
pub struct PgBinaries {
    /// The directory holding the binaries (`pg_config --bindir`).
    pub bindir: PathBuf,
}

impl PgBinaries {
    /// PATH first, then `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`.
    pub fn find() -> Result<Self, StoreError> {
        let complete = |dir: &Path| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| dir.join(b).is_file())
        };
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if complete(&dir) {
                    return Ok(Self { bindir: dir });
                }
            }
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
            && out.status.success()
        {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if complete(&dir) {
                return Ok(Self { bindir: dir });
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let dir = e.path().join("bin");
                complete(&dir).then_some((v, dir))
            })
            .collect();
        versions.sort();
        versions
            .pop()
            .map(|(_, bindir)| Self { bindir })
            .ok_or(StoreError::PostgresNotFound)
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

/// The user the server runs as: ourselves, or `postgres` when we are root.
#[derive(Clone, Copy, Debug)]
struct RunAs {
    uid: u32,
    gid: u32,
    switch: bool,
}

impl RunAs {
    fn resolve() -> Result<Self, StoreError> {
        let me = std::fs::metadata("/proc/self")
            .map_err(|e| StoreError::io("cannot stat", "/proc/self", e))?;
        if me.uid() != 0 {
            return Ok(Self {
                uid: me.uid(),
                gid: me.gid(),
                switch: false,
            });
        }
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| StoreError::io("cannot read", "/etc/passwd", e))?;
        passwd
            .lines()
            .find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() > 3 && f[0] == "postgres").then(|| {
                    Some(Self {
                        uid: f[2].parse().ok()?,
                        gid: f[3].parse().ok()?,
                        switch: true,
                    })
                })?
            })
            .ok_or(StoreError::NoUnprivilegedUser)
    }

    /// The server user must be able to walk down to its cluster: a data dir
    /// under a root-only directory (e.g. /root or a `mktemp -d`) fails later
    /// with a bare "permission denied" otherwise.
    fn check_reachable(&self, dir: &Path) -> Result<(), StoreError> {
        if !self.switch {
            return Ok(());
        }
        for ancestor in dir.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(ancestor) else {
                continue;
            };
            let mode = meta.mode();
            let can_enter = if meta.uid() == self.uid {
                mode & 0o100 != 0
            } else if meta.gid() == self.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !can_enter {
                return Err(StoreError::DataDirUnreachable(
                    ancestor.to_owned(),
                    mode & 0o7777,
                ));
            }
        }
        Ok(())
    }

    fn chown(&self, path: &Path) -> Result<(), StoreError> {
        if self.switch {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
                .map_err(|e| StoreError::io("cannot chown", path, e))?;
        }
        Ok(())
    }
}

/// Options for [`EmbeddedPostgres::start`].
#[derive(Clone, Debug, Default)]
pub struct EmbeddedOptions {
    /// Trade durability for speed (fsync off): for throwaway test clusters only.
    pub unsafe_fast: bool,
}

/// A running cluster under a directory of ours.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    dir: PathBuf,
    socket_dir: PathBuf,
    bins: PgBinaries,
    run_as: RunAs,
    options: EmbeddedOptions,
    /// True when the cluster was already running when we came (e.g. after a crash).
    pub reused: bool,
}

impl EmbeddedPostgres {
    /// Inits (first run) and starts the cluster in `dir`, or adopts it if it is
    /// already running (a previous process died without stopping it).
    pub fn start(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let bins = PgBinaries::find()?;
        let run_as = RunAs::resolve()?;
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| StoreError::io("cannot resolve", dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::io("cannot chmod", &dir, e))?;
        run_as.chown(&dir)?;
        run_as.check_reachable(&dir)?;
        let socket_dir = socket_dir_for(&dir, run_as)?;
        let mut pg = Self {
            dir,
            socket_dir,
            bins,
            run_as,
            options,
            reused: false,
        };
        if !pg.dir.join("PG_VERSION").exists() {
            pg.initdb()?;
        }
        if pg.running() {
            pg.reused = true;
            tracing::info!(dir = %pg.dir.display(), "embedded PostgreSQL already running; adopting it");
        } else {
            pg.pg_ctl_start()?;
        }
        Ok(pg)
    }

    /// The cluster directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory holding the server's socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Connection options for `database` over the unix socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(EMBEDDED_USER)
            .database(database)
    }

    /// A `postgres://` URL for `database` (for psql and logs).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{EMBEDDED_USER}@localhost:{PORT}/{database}?host={}",
            self.socket_dir.display()
        )
    }

    /// Creates `database` unless it exists. Names are `[A-Za-z0-9_]+`.
    pub async fn ensure_database(&self, database: &str) -> Result<(), StoreError> {
        create_database(self.connect_options("postgres"), database).await
    }

    fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(self.bins.bin(bin));
        if self.run_as.switch {
            cmd.uid(self.run_as.uid).gid(self.run_as.gid);
        }
        // Out of our process group: a Ctrl-C meant for us must not reach the
        // server before we have flushed the last records into it.
        cmd.process_group(0)
            .current_dir(&self.dir)
            .env_remove("PGDATA")
            // Under systemd (Type=notify) the socket is the gateway's: a
            // postgres built with systemd support would otherwise report
            // READY=1 on it before the gateway is ready.
            .env_remove("NOTIFY_SOCKET")
            .env("LC_ALL", "C");
        cmd
    }

    fn initdb(&self) -> Result<(), StoreError> {
        tracing::info!(dir = %self.dir.display(), "creating the embedded PostgreSQL cluster");
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.dir).args([
            "-U",
            EMBEDDED_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        if self.options.unsafe_fast {
            cmd.arg("--no-sync");
        }
        run(cmd, "initdb")
    }

    /// Whether a server is running on this cluster (`pg_ctl status`).
    pub fn running(&self) -> bool {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("status").arg("-D").arg(&self.dir);
        cmd.output().map(|o| o.status.success()).unwrap_or(false)
    }

    fn pg_ctl_start(&self) -> Result<(), StoreError> {
        let mut opts = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c port={PORT}",
            self.socket_dir.display()
        );
        if self.options.unsafe_fast {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("start")
            .arg("-D")
            .arg(&self.dir)
            .args(["-w", "-t", "60", "-s", "-l"])
            .arg(self.dir.join("postgres.log"))
            .arg("-o")
            .arg(opts);
        run(cmd, "pg_ctl start").map_err(|e| self.with_log(e))
    }

    /// Starts the server again after [`stop`](Self::stop) (tests: an outage).
    pub fn restart(&self) -> Result<(), StoreError> {
        self.pg_ctl_start()
    }

    /// Stops the server (`pg_ctl stop -m fast`): sessions are ended, committed
    /// data is safe.
    pub fn stop(&self) -> Result<(), StoreError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "fast", "-w", "-t", "60", "-s"]);
        run(cmd, "pg_ctl stop")
    }

    fn with_log(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Command {
                command,
                status,
                mut output,
            } => {
                let log =
                    std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                for line in tail.into_iter().rev() {
                    output.push_str("\n  log: ");
                    output.push_str(line);
                }
                StoreError::Command {
                    command,
                    status,
                    output,
                }
            }
            e => e,
        }
    }
}

/// The socket goes in the cluster directory unless that path is too long for
/// a unix socket (or needs quoting); then in a short directory under /tmp
/// named after the cluster, so two clusters never share one.
fn socket_dir_for(dir: &Path, run_as: RunAs) -> Result<PathBuf, StoreError> {
    let s = dir.to_string_lossy();
    let socket_len = s.len() + format!("/.s.PGSQL.{PORT}.lock").len();
    if socket_len <= MAX_SOCKET_PATH && !s.contains(['\'', '"', '\\', '$', '`']) {
        return Ok(dir.to_owned());
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(s.as_bytes());
    let short = PathBuf::from(format!(
        "/tmp/hotline-pg-{}",
        hash[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    std::fs::create_dir_all(&short).map_err(|e| StoreError::io("cannot create", &short, e))?;
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| StoreError::io("cannot chmod", &short, e))?;
    run_as.chown(&short)?;
    tracing::info!(socket_dir = %short.display(), "data dir path too long for a unix socket; using a short one");
    Ok(short)
}

fn run(mut cmd: Command, what: &str) -> Result<(), StoreError> {
    let out: Output = cmd.output().map_err(|e| StoreError::Command {
        command: what.to_owned(),
        status: "not started".into(),
        output: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        output.push('\n');
        output.push_str(stdout.trim());
    }
    Err(StoreError::Command {
        command: what.to_owned(),
        status: out.status.to_string(),
        output,
    })
}

/// `CREATE DATABASE name` unless it exists, connected with `admin`.
pub async fn create_database(admin: PgConnectOptions, name: &str) -> Result<(), StoreError> {
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?}"
    );
    let mut conn = PgConnection::connect_with(&admin).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        match sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
        {
            Ok(_) => {}
            // Lost a race with another creator: fine.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await?;
    Ok(())
}
