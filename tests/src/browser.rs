//! Headless Debian `chromium` and the node driver `tests/driver/agents.mjs`
//! (playwright-core over CDP, never a downloaded browser) for the agent
//! softphone tests.
//!
//! * [`Chromium`] runs the browser in its own process group with a fake
//!   microphone (a WAV file) and a CDP port; dropping it (or
//!   [`Chromium::kill`]) ends the whole group, by its id.
//! * [`AgentDriver`] is the node process: one JSON command a line on its
//!   stdin, one `REPLY {json}` line back on its stdout; every other line it
//!   prints (page console, errors, steps) is kept for failure messages.

use crate::package_root;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Why the browser tests cannot run here (`None`: they can).
pub fn missing_browser_tools() -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!(
            "{CHROMIUM} is missing (apt-get install chromium; tests/run does)"
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is missing (apt-get install nodejs npm; tests/run does)".into());
    }
    None
}

/// Whether the browser test `test` can run: `true` with chromium and node.
/// Without them it fails (a test must not read as passed without having
/// run) unless `HOTLINE_ALLOW_SKIP=1`, which CI never sets: then it says
/// SKIPPED and returns `false`.
pub fn require_browser_tools(test: &str) -> bool {
    let Some(why) = missing_browser_tools() else {
        return true;
    };
    assert!(
        std::env::var_os("HOTLINE_ALLOW_SKIP").is_some_and(|v| v == "1"),
        "{test} needs a browser: {why} (set HOTLINE_ALLOW_SKIP=1 to skip instead)"
    );
    eprintln!("SKIPPED {test}: {why} (HOTLINE_ALLOW_SKIP=1)");
    false
}

/// Starts the browser test `test`: `None` when it may skip
/// ([`require_browser_tools`]), else a guard that keeps the binary's other
/// browser tests waiting until this one ends. Each runs a gateway, SIPp and
/// Chromium and times what it sees; two at once on CI's two cores would
/// measure each other.
pub fn browser_test(test: &str) -> Option<MutexGuard<'static, ()>> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if !require_browser_tools(test) {
        return None;
    }
    // A failed test poisons the lock; the next one still runs.
    Some(ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner))
}

/// [`browser_test`] for a test that drives Chromium through the Playwright
/// driver: also installs the driver (npm), failing the test if it cannot.
pub fn playwright_test(test: &str) -> Option<MutexGuard<'static, ()>> {
    let guard = browser_test(test)?;
    assert!(
        ensure_driver(),
        "npm install of playwright-core in {}",
        driver_dir().display()
    );
    Some(guard)
}

/// A mono 16-bit WAV of a sine tone (48 kHz), for `--use-file-for-fake-audio-capture`.
pub fn write_tone_wav(path: &Path, hz: f64, secs: u32, amplitude: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    for i in 0..48_000 * secs {
        let s = (2.0 * std::f64::consts::PI * hz * f64::from(i) / 48_000.0).sin() * amplitude;
        w.write_sample(s as i16).expect("write sample");
    }
    w.finalize().expect("finalize WAV");
}

/// Headless Chromium in its own process group.
pub struct Chromium {
    child: Option<Child>,
    /// The DevTools WebSocket address (`ws://127.0.0.1:…/devtools/browser/…`).
    pub cdp: String,
}

impl Chromium {
    /// Starts Chromium with a fresh profile under `dir` and `mic_wav` as its
    /// microphone (flags from /work/shared/FINDINGS.md, "str0m + Chromium").
    pub fn start(mic_wav: &Path, dir: &Path) -> Chromium {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).expect("create chromium profile dir");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-background-networking",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                // The HTTPS tests' self-signed certificate (e2e/tls.rs).
                "--ignore-certificate-errors",
            ])
            .arg(format!(
                "--use-file-for-fake-audio-capture={}",
                mic_wav.display()
            ))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMIUM}: {e}"));
        let stderr = child.stderr.take().expect("chromium stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("ws://") {
                    let _ = tx.send(line[i..].trim().to_string());
                }
            }
        });
        let mut browser = Chromium {
            child: Some(child),
            cdp: String::new(),
        };
        browser.cdp = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed its DevTools address within 30 s");
        browser
    }

    /// Kills the browser's whole process group (SIGKILL: like a crash or a
    /// closed laptop lid, nothing is closed politely) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id();
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id();
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // Its children take about a second to go; take the rest of the group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }
}

/// `tests/driver/`.
pub fn driver_dir() -> PathBuf {
    package_root().join("driver")
}

/// `npm install` playwright-core into `tests/driver` (no browser download)
/// unless it is there already. Once per test process: the tests of one
/// binary run in parallel and must not race two installs into one dir.
pub fn ensure_driver() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(install_driver)
}

fn install_driver() -> bool {
    let dir = driver_dir();
    // playwright-core (Chromium over CDP) and puppeteer-core (Firefox over
    // WebDriver BiDi, tests/e2e/admin_firefox.rs).
    let markers = [
        dir.join("node_modules/playwright-core/package.json"),
        dir.join("node_modules/puppeteer-core/package.json"),
    ];
    let installed = || markers.iter().all(|m| m.exists());
    if installed() {
        return true;
    }
    let ok = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefer-offline",
        ])
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("PUPPETEER_SKIP_DOWNLOAD", "1")
        .current_dir(&dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok && installed()
}

/// The node driver of agent pages (`tests/driver/agents.mjs`).
pub struct AgentDriver {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: mpsc::Receiver<Value>,
    log: Arc<Mutex<Vec<String>>>,
    next_id: u64,
}

impl AgentDriver {
    /// Starts the driver against the gateway at `base` (`http://127.0.0.1:PORT`)
    /// and the browser's CDP address.
    pub fn start(base: &str, browser: &Chromium) -> AgentDriver {
        Self::start_script("agents.mjs", base, browser)
    }

    /// Another driver script of `tests/driver/` speaking the same protocol
    /// (e.g. `flows.mjs`, the admin console's Flows pages).
    pub fn start_script(script: &str, base: &str, browser: &Chromium) -> AgentDriver {
        Self::start_node(script, &[base, &browser.cdp])
    }

    /// A driver script of `tests/driver/` with its own arguments (e.g.
    /// `firefox.mjs`, which launches its browser itself).
    pub fn start_node(script: &str, args: &[&str]) -> AgentDriver {
        let mut child = Command::new("node")
            .arg(driver_dir().join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start node: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, replies) = mpsc::channel();
        let stdout = child.stdout.take().expect("driver stdout");
        let stderr = child.stderr.take().expect("driver stderr");
        let out_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(json) = line.strip_prefix("REPLY ") {
                    let v = serde_json::from_str(json).unwrap_or_else(
                        |e| json!({"ok": false, "error": format!("bad reply {json}: {e}")}),
                    );
                    let _ = tx.send(v);
                } else {
                    out_log.lock().unwrap().push(line);
                }
            }
        });
        let err_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                err_log.lock().unwrap().push(format!("STDERR {line}"));
            }
        });
        let stdin = child.stdin.take();
        AgentDriver {
            child,
            stdin,
            replies,
            log,
            next_id: 1,
        }
    }

    /// What the driver printed besides its replies (the last `max` lines).
    pub fn log_tail(&self, max: usize) -> String {
        let log = self.log.lock().unwrap();
        let start = log.len().saturating_sub(max);
        log[start..].join("\n")
    }

    /// Sends `cmd` (an object with `op`) and waits for its reply; `Err`
    /// with the reply (or a timeout) when it did not succeed.
    pub fn try_cmd(&mut self, mut cmd: Value, timeout: Duration) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        cmd["id"] = json!(id);
        let line = format!("{cmd}\n");
        let stdin = self.stdin.as_mut().ok_or("driver stdin closed")?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("write to driver: {e}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(v) if v["id"] == json!(id) => {
                    return if v["ok"] == json!(true) {
                        Ok(v)
                    } else {
                        Err(format!("{cmd} failed: {v}"))
                    };
                }
                Ok(_) => continue, // a late reply to an earlier, timed-out command
                Err(_) => return Err(format!("{cmd}: no reply within {timeout:?}")),
            }
        }
    }

    /// [`AgentDriver::try_cmd`], panicking with the driver's log on failure.
    pub fn cmd(&mut self, cmd: Value, timeout: Duration) -> Value {
        match self.try_cmd(cmd, timeout) {
            Ok(v) => v,
            Err(e) => panic!("{e}\n--- driver log ---\n{}", self.log_tail(80)),
        }
    }
}

impl Drop for AgentDriver {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: the driver exits on its own
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
