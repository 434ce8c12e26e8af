//! Kamailio in front of gateways (issue 15): deploy/kamailio/kamailio.cfg
//! as shipped, its settings given with -A, listening on [`PROXY_IP`] (a
//! loopback address other than the gateways', as a separate host would be)
//! and dispatching to the gateways it is given.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll_until;

/// The proxy's trunk-facing address: another loopback address than the
/// gateways' (127.0.0.1), as a separate host would be.
pub const PROXY_IP: &str = "127.0.0.2";

/// The proxy's probe interval and INVITE timeout (given with -A below).
pub const PROBE_SECS: u64 = 1;
pub const INVITE_TIMEOUT_MS: u64 = 1500;
/// How long after a node is back until no probe sent while it was down can
/// still take it out.
pub const PROXY_SETTLE: Duration = Duration::from_millis(PROBE_SECS * 1000 + INVITE_TIMEOUT_MS);

pub struct Kamailio {
    child: Child,
    log: std::path::PathBuf,
}

impl Kamailio {
    pub fn start(dir: &Path, port: u16, gateways: &[std::net::SocketAddr]) -> Kamailio {
        let list = dir.join("dispatcher.list");
        let text: String = gateways.iter().map(|g| format!("1 sip:{g}\n")).collect();
        std::fs::write(&list, text).unwrap();
        let cfg = crate::workspace_root().join("deploy/kamailio/kamailio.cfg");
        let log = dir.join("kamailio.log");
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        let mut cmd = Command::new("kamailio");
        // Its own process group, so that Drop reaches the forked workers.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .arg("-f")
            .arg(&cfg)
            // Foreground, logging to stderr; its own runtime dir.
            .args(["-DD", "-E", "-Y"])
            .arg(&run)
            .args(["-A", &format!("LISTEN_UDP=udp:{PROXY_IP}:{port}")])
            .args(["-A", &format!("LISTEN_TCP=tcp:{PROXY_IP}:{port}")])
            .args(["-A", &format!("DISPATCHER_LIST=\"{}\"", list.display())])
            .args(["-A", &format!("PROBE_SECS={PROBE_SECS}")])
            .args(["-A", &format!("INVITE_TIMEOUT_MS={INVITE_TIMEOUT_MS}")])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .expect("start kamailio");
        let k = Kamailio { child, log };
        let up = poll_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&k.log)
                .ok()
                .filter(|l| l.contains("INFO: <core>") || l.contains("Listening on"))
                .map(|_| ())
        });
        assert!(up.is_some(), "kamailio did not start:\n{}", k.log_tail());
        k
    }

    pub fn log_tail(&self) -> String {
        crate::file_tail(&self.log, 40)
    }
}

impl Drop for Kamailio {
    /// Kamailio forks its workers: killing the main process alone left
    /// them running (ten per test run), so the whole process group goes.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
