//! Start/stop the real `hotline` binary.

use crate::events::{Event, read_events};
use crate::{TempDir, file_tail, poll_until, ports, send_signal, workspace_root};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Path of the `hotline` binary: `$HOTLINE_BIN`, else `<target>/debug/hotline` derived
/// from this test executable (`<target>/debug/deps/<test>-<hash>`).
pub fn hotline_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HOTLINE_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "HOTLINE_BIN={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| {
            if deps.ends_with("deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .expect("test executable has a parent dir");
    let bin = profile_dir.join("hotline");
    assert!(
        bin.is_file(),
        "gateway binary not found at {}: build it with `cargo build -p hotline` \
         (same CARGO_TARGET_DIR and profile as the tests), or set HOTLINE_BIN",
        bin.display()
    );
    bin
}

/// A running gateway with its own ports and data dir. Killed on drop.
pub struct Gateway {
    child: Option<Child>,
    exit: Option<ExitStatus>,
    pub label: String,
    pub sip_port: u16,
    pub http_port: u16,
    pub rtp_ports: (u16, u16),
    dir: TempDir,
    /// The extra arguments it was started with (for [`Gateway::restart`]).
    extra: Vec<String>,
    /// Started with `--tls-cert`: the HTTP listener speaks HTTPS.
    pub https: bool,
}

impl Gateway {
    /// Start with the default arguments (the built-in flow); `label` names the
    /// temp dir (use the test name).
    pub fn start(label: &str) -> Gateway {
        Self::start_with(label, &[])
    }

    /// Start with extra CLI arguments appended after the standard ones.
    pub fn start_with(label: &str, extra_args: &[&str]) -> Gateway {
        Self::start_logging_to(label, extra_args, None)
    }

    /// As [`Gateway::start_with`], with the gateway's stdout and stderr on
    /// `log` (e.g. `/dev/full`) instead of `gateway.log`.
    pub fn start_logging_to(
        label: &str,
        extra_args: &[&str],
        log: Option<std::fs::File>,
    ) -> Gateway {
        let mut dir = TempDir::new(label);
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let log_path = dir.path().join("gateway.log");
        let retry_on_port_race = log.is_none();
        let mut log = log;
        let mut attempt = 1;
        loop {
            let sip_port = ports::free_port();
            let http_port = ports::free_port();
            let rtp_ports = ports::rtp_range();
            let log = match log.take() {
                Some(f) => f,
                None => std::fs::File::create(&log_path).expect("create gateway log"),
            };
            let child = Self::spawn(
                dir.path(),
                (sip_port, http_port, rtp_ports),
                extra_args,
                log,
            );
            let mut gw = Self::running(
                label,
                dir,
                (sip_port, http_port, rtp_ports),
                child,
                extra_args,
            );
            // Generous: a first start runs initdb, and CI has two busy cores.
            match gw.try_healthy(Duration::from_secs(45)) {
                Ok(()) => return gw,
                // Another process took a port between the probe and the bind:
                // not what the test is about, so start again on fresh ports.
                Err(e)
                    if retry_on_port_race
                        && attempt < 3
                        && gw.exit.is_some()
                        && gw.log_tail().contains("Address already in use") =>
                {
                    eprintln!(
                        "[e2e] gateway `{label}` lost a port race (attempt {attempt}), \
                         starting again on fresh ports: {}",
                        e.lines().next().unwrap_or_default()
                    );
                    attempt += 1;
                    // Keep the data dir (the embedded cluster is reused).
                    dir = std::mem::replace(&mut gw.dir, TempDir::new(label));
                    drop(gw);
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Spawns the gateway with the default arguments and no `DATABASE_URL`
    /// (so it starts its embedded PostgreSQL in a fresh data dir) and
    /// returns at once, before it is healthy: for tests of what happens
    /// during start-up (with [`Gateway::wait_log`] to wait for the moment
    /// they need).
    pub fn spawn_starting(label: &str) -> Gateway {
        let dir = TempDir::new(label);
        std::fs::create_dir_all(dir.path().join("data")).expect("create data dir");
        let log =
            std::fs::File::create(dir.path().join("gateway.log")).expect("create gateway log");
        let (sip_port, http_port, rtp_ports) =
            (ports::free_port(), ports::free_port(), ports::rtp_range());
        let child = Self::command(dir.path(), (sip_port, http_port, rtp_ports), &[], log)
            .env_remove("DATABASE_URL")
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", hotline_bin().display()));
        Self::running(label, dir, (sip_port, http_port, rtp_ports), child, &[])
    }

    /// The handle on a gateway just spawned.
    fn running(
        label: &str,
        dir: TempDir,
        (sip_port, http_port, rtp_ports): (u16, u16, (u16, u16)),
        child: Child,
        extra_args: &[&str],
    ) -> Gateway {
        Gateway {
            child: Some(child),
            exit: None,
            label: label.to_string(),
            sip_port,
            http_port,
            rtp_ports,
            dir,
            extra: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            https: extra_args.contains(&"--tls-cert"),
        }
    }

    /// Waits until the gateway's log holds `needle`; panics with the log's
    /// tail when it does not within `timeout` or the gateway exits first.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let found = poll_until(timeout, || {
            if std::fs::read_to_string(self.log_path()).is_ok_and(|l| l.contains(needle)) {
                return Some(true);
            }
            self.try_wait().map(|_| false)
        });
        match found {
            Some(true) => {}
            Some(false) => panic!(
                "gateway exited before its log said `{needle}`; log:\n{}",
                self.log_tail()
            ),
            None => panic!(
                "gateway's log did not say `{needle}` within {timeout:?}; log:\n{}",
                self.log_tail()
            ),
        }
    }

    /// Stops the gateway (SIGTERM, drained) and starts it again on the same
    /// ports, data dir and arguments; its log goes on in the same file.
    pub fn restart(&mut self) {
        self.sigterm();
        let status = self.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| {
            panic!(
                "gateway still running 30 s after SIGTERM:\n{}",
                self.log_tail()
            )
        });
        assert!(status.success(), "exit {status}:\n{}", self.log_tail());
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.log_path())
            .expect("open gateway log");
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let child = Self::spawn(
            self.dir.path(),
            (self.sip_port, self.http_port, self.rtp_ports),
            &extra,
            log,
        );
        self.child = Some(child);
        self.exit = None;
        self.wait_healthy(Duration::from_secs(45));
    }

    fn spawn(
        dir: &Path,
        ports: (u16, u16, (u16, u16)),
        extra_args: &[&str],
        log: std::fs::File,
    ) -> Child {
        let bin = hotline_bin();
        Self::command(dir, ports, extra_args, log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()))
    }

    /// The gateway's command line as the tests start it.
    fn command(
        dir: &Path,
        (sip_port, http_port, rtp_ports): (u16, u16, (u16, u16)),
        extra_args: &[&str],
        log: std::fs::File,
    ) -> Command {
        let bin = hotline_bin();
        let root = workspace_root();
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--sip-listen")
            .arg(format!("127.0.0.1:{sip_port}"))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--rtp-ports")
            .arg(format!("{}-{}", rtp_ports.0, rtp_ports.1))
            // Relative, as an operator types it (`deploy/run` uses `data`):
            // what the gateway stores must not depend on its working directory.
            .current_dir(dir)
            .arg("--data-dir")
            .arg("data");
        // The repo's prompts, unless the test brings its own (uploads).
        if !extra_args.contains(&"--sounds-dir") {
            cmd.arg("--sounds-dir").arg(root.join("sounds"));
        }
        // The repo's flows, unless the test brings its own (clap refuses a flag twice).
        if !extra_args.contains(&"--flows-dir") {
            cmd.arg("--flows-dir").arg(root.join("ivr-flows"));
        }
        // The call-core tests exercise the built-in flow; IVR tests name theirs.
        if !extra_args.contains(&"--entry-flow") {
            cmd.arg("--entry-flow").arg("builtin");
        }
        cmd.args(extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log fd"))
            .stderr(log);
        if std::env::var_os("HOTLINE_LOG").is_none() {
            cmd.env(
                "HOTLINE_LOG",
                "info,hotline_sip=debug,rsipstack=warn,sqlx=warn",
            );
        }
        cmd
    }

    fn wait_healthy(&mut self, timeout: Duration) {
        if let Err(e) = self.try_healthy(timeout) {
            panic!("{e}");
        }
    }

    fn try_healthy(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            if let Some(status) = self.try_wait() {
                return Err(format!(
                    "gateway exited during startup with {status}; log:\n{}",
                    self.log_tail()
                ));
            }
            match self.http_get("/healthz") {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => last = format!("HTTP {code}: {body}"),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "gateway not healthy after {timeout:?} (last: {last}); log:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Plain HTTP/1.0-style GET on the HTTP listener: (status, body).
    pub fn http_get(&self, path: &str) -> Result<(u16, String), String> {
        self.http_request("GET", path, &[], None)
    }

    /// One HTTP request on the HTTP listener (`Connection: close`, the body
    /// sent as JSON when given): (status, body). Bodies must not be chunked.
    pub fn http_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        json_body: Option<&str>,
    ) -> Result<(u16, String), String> {
        let text = self.http_exchange(method, path, headers, json_body)?;
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad HTTP response: {text:?}"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or("")
            .to_string();
        Ok((code, body))
    }

    /// One request as [`Gateway::http_request`] (over TLS when the gateway
    /// has a certificate): the whole answer, status line and headers included.
    pub fn http_exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        json_body: Option<&str>,
    ) -> Result<String, String> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.http_port).into();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.http_port
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(body) = json_body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        if self.https {
            let (mut s, _) = crate::tls::connect(addr, &[b"http/1.1"])?;
            let buf = crate::tls::exchange(&mut s, req.as_bytes())?;
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        // Generous: an admin write hashes a password with argon2 (debug build).
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.set_write_timeout(Some(Duration::from_secs(2))).ok();
        s.write_all(req.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    pub fn sip_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.sip_port).into()
    }

    /// The test's scratch dir (gateway log, SIPp files, pcaps); `data/` is the gateway's.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    /// The flow versions this gateway logged as loaded (`flow loaded …
    /// version=vN`, not the start-up `entry flow loaded`), in order: a test
    /// waits for a publish to be live by watching this list grow.
    pub fn loaded_flow_versions(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("flow loaded") && !l.contains("entry flow loaded"))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("version="))
                    .map(|v| {
                        v.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                            .to_owned()
                    })
            })
            .collect()
    }

    pub fn log_tail(&self) -> String {
        file_tail(&self.log_path(), 8000)
    }

    pub fn events_path(&self) -> PathBuf {
        self.data_dir().join("call-events.jsonl")
    }

    pub fn all_events(&self) -> Vec<Event> {
        read_events(&self.events_path()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Events whose `sip_call_id` is `sip_call_id`, in file order.
    pub fn events_for(&self, sip_call_id: &str) -> Vec<Event> {
        self.all_events()
            .into_iter()
            .filter(|e| e.sip_call_id() == sip_call_id)
            .collect()
    }

    /// Wait until the call has an event of `kind`; panics with the events so far.
    pub fn wait_event(&self, sip_call_id: &str, kind: &str, timeout: Duration) -> Event {
        poll_until(timeout, || {
            self.events_for(sip_call_id).into_iter().find(|e| e.kind() == kind)
        })
        .unwrap_or_else(|| {
            panic!(
                "no `{kind}` event for Call-ID {sip_call_id} within {timeout:?}; events:\n{}\n--- gateway log tail ---\n{}",
                self.format_events(sip_call_id),
                self.log_tail()
            )
        })
    }

    /// Wait for `call_ended` and return all the call's events.
    pub fn wait_call_ended(&self, sip_call_id: &str, timeout: Duration) -> Vec<Event> {
        self.wait_event(sip_call_id, "call_ended", timeout);
        self.events_for(sip_call_id)
    }

    pub fn format_events(&self, sip_call_id: &str) -> String {
        let evs = self.events_for(sip_call_id);
        if evs.is_empty() {
            let all = self.all_events();
            return format!(
                "  (none for this Call-ID; {} event(s) in the log in total; sip_call_ids: {:?})",
                all.len(),
                all.iter()
                    .map(|e| e.sip_call_id().to_string())
                    .collect::<std::collections::BTreeSet<_>>()
            );
        }
        crate::events::dump(&evs)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `Some(status)` once the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    self.exit = Some(st);
                }
            }
        }
        self.exit
    }

    pub fn is_alive(&mut self) -> bool {
        self.try_wait().is_none()
    }

    pub fn sigterm(&self) {
        if let Some(pid) = self.pid() {
            send_signal(pid, "TERM");
        }
    }

    /// Wait for the process to exit; `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll_until(timeout, || self.try_wait())
    }
}

impl Gateway {
    /// The embedded PostgreSQL (`<data>/pg`) outlives a killed gateway: stop
    /// it (SIGQUIT, immediate) so no test leaves a server running.
    pub fn stop_embedded_db(&self) {
        let pid_file = self.data_dir().join("pg").join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
        {
            send_signal(pid, "QUIT");
            poll_until(Duration::from_secs(5), || {
                (!pid_file.exists()).then_some(())
            });
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.is_alive() {
            self.sigterm();
            if self.wait_exit(Duration::from_secs(3)).is_none() {
                if let Some(child) = self.child.as_mut() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        self.stop_embedded_db();
        if std::thread::panicking() {
            eprintln!(
                "[e2e] gateway `{}` (sip {}, http {}, rtp {}-{}) dir {}\n--- gateway log tail ---\n{}",
                self.label,
                self.sip_port,
                self.http_port,
                self.rtp_ports.0,
                self.rtp_ports.1,
                self.dir.path().display(),
                self.log_tail()
            );
        }
    }
}

impl Gateway {
    /// `hotline seed-demo` against this gateway's data dir while it runs (the
    /// seeder adopts the gateway's embedded PostgreSQL through its unix socket
    /// and leaves it running): demo customers (caller `sipp` is "Demo
    /// Caller"), subscriptions and orders (`A-10001` paid, …). Idempotent.
    pub fn seed_demo(&self) {
        let mut child = Command::new(hotline_bin())
            .arg("seed-demo")
            .arg("--data-dir")
            .arg(self.data_dir())
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn hotline seed-demo: {e}"));
        let status = poll_until(Duration::from_secs(30), || child.try_wait().ok().flatten());
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hotline seed-demo did not finish in 30 s");
        };
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut out);
        }
        assert!(
            status.success(),
            "hotline seed-demo failed ({status}):\n{out}"
        );
    }
}
