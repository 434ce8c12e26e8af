//! Shared harness for the Hotline end-to-end tests.
//!
//! * [`Gateway`] starts the real `hotline` binary on free ports with a fresh data dir.
//! * [`Sipp`] runs a SIPp scenario from `tests/sipp/` against it, optionally capturing
//!   the RTP (and SIP) that reaches SIPp with `tcpdump`.
//! * [`pcap`], [`rtp`] and [`wav`] hold small readers/writers used to build caller
//!   audio and to check what the gateway sent and recorded; the packet-level parts
//!   (G.711, RTP, RFC 4733, pcap) are re-exported from `hotline-testpeer`, shared
//!   with the load generator and independent of the gateway's crates.
//! * [`rawsip`] is a tiny UDP SIP client for cases SIPp is awkward at (malformed input,
//!   retransmissions, 503 during drain), on `hotline-testpeer`'s SIP message text.
//! * [`browser`] runs headless Chromium and the node driver of agent pages;
//!   [`flows`] makes flows dirs with fixed office hours; [`db`] reads the
//!   embedded database with `psql`.
//! * [`tls`] makes self-signed certificates (openssl) and is a blocking
//!   TLS client for the HTTPS and SIP-over-TLS tests.
//! * [`kamailio`] runs Kamailio (deploy/kamailio/kamailio.cfg) in front of
//!   gateways, as tests/cluster and the cross-node agent tests use it.
//! * [`script`] builds SIPp callers that follow a script of steps (keys as
//!   SIP INFO, caller audio, pauses, hang-up).

pub mod browser;
pub mod db;
pub mod events;
pub mod flows;
pub mod gateway;
pub mod kamailio;
pub mod pcap;
pub mod ports;
pub mod rawsip;
pub mod rtp;
pub mod script;
pub mod sipp;
pub mod tls;
pub mod wav;

pub use events::{
    Event, assert_call_log_well_formed, assert_in_order, assert_well_formed, dump,
    parse_rfc3339_micros,
};
pub use gateway::Gateway;
pub use sipp::{Capture, Sipp, SippRun, Transport};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether a test whose tool is missing may skip: only with
/// `HOTLINE_ALLOW_SKIP=1`, which CI never sets. Otherwise a missing tool
/// fails the test (`tests/run` installs every tool a test uses), so a test
/// never reads as passed without having run.
pub fn require_tool(tool: &str, install: &str, test: &str) -> bool {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if on_path {
        return true;
    }
    assert!(
        std::env::var_os("HOTLINE_ALLOW_SKIP").is_some_and(|v| v == "1"),
        "{test} needs {tool}, which is not on PATH: {install} \
         (tests/run installs it; set HOTLINE_ALLOW_SKIP=1 to skip instead)"
    );
    eprintln!("SKIPPED {test}: {tool} is missing (HOTLINE_ALLOW_SKIP=1)");
    false
}

/// `/work/main/tests` (the package root), for locating `sipp/*.xml`.
pub fn package_root() -> PathBuf {
    PathBuf::from(manifest_dir())
}

/// The workspace root (parent of the package root): `sounds/`, `ivr-flows/`.
pub fn workspace_root() -> PathBuf {
    package_root()
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A unique string for this process + call, usable in file names and SIP Call-IDs.
pub fn unique_token(label: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let clean: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{clean}-{}-{n}-{nanos:x}", std::process::id())
}

/// A scratch directory removed on drop, unless the thread is panicking or
/// `HOTLINE_E2E_KEEP` is set (then its path is printed for post-mortems).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir()
            .join("hotline-e2e")
            .join(unique_token(label));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("HOTLINE_E2E_KEEP").is_some() {
            eprintln!("[e2e] keeping {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Poll `f` every 50 ms until it returns `Some`, or `None` after `timeout`.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Last `max` bytes of a text file (lossy), for failure messages.
pub fn file_tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Send a signal to a process with `kill(1)` (avoids a libc dependency).
pub fn send_signal(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The package's directory as `cargo test` gives it at run time (the
/// compile-time one is stale when a shared target dir reuses this test
/// binary for a checkout elsewhere).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
