//! Run SIPp scenarios (`tests/sipp/*.xml`) against a [`Gateway`], optionally capturing
//! with tcpdump the UDP that reaches SIPp (its media port and its SIP port).

use crate::gateway::Gateway;
use crate::pcap::{UdpDatagram, read_udp};
use crate::rtp::{RtpPacket, parse_rtp};
use crate::{file_tail, package_root, ports, send_signal, unique_token};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SIPP_BIN: &str = "sipp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A tcpdump process writing a pcap of loopback UDP to some destination ports.
pub struct Capture {
    child: Option<Child>,
    pub path: PathBuf,
}

impl Capture {
    /// Start capturing `udp and (dst port P1 or ...)` on `lo`; returns once tcpdump
    /// reports it is listening (panics after 10 s).
    pub fn start(path: &Path, dst_ports: &[u16]) -> Capture {
        let filter = format!(
            "udp and ({})",
            dst_ports
                .iter()
                .map(|p| format!("dst port {p}"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
        let mut child = Command::new("tcpdump")
            .args([
                "-i",
                "lo",
                "-n",
                "-U",
                "--immediate-mode",
                "-s",
                "0",
                "-B",
                "4096",
                "-Z",
                "root",
                "-w",
            ])
            .arg(path)
            .arg(&filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn tcpdump (apt-get install tcpdump): {e}"));
        let stderr = child.stderr.take().expect("tcpdump stderr");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(t) = &tx {
                    if t.send(line.clone()).is_err() || line.contains("listening on") {
                        tx = None;
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    panic!("tcpdump exited before listening: {seen:?}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("tcpdump not listening after 10 s: {seen:?}");
            }
        }
        Capture {
            child: Some(child),
            path: path.to_path_buf(),
        }
    }

    /// Stop tcpdump (SIGINT, so it flushes) and parse what it wrote.
    pub fn stop(mut self) -> Vec<UdpDatagram> {
        // Give in-flight packets a moment to be written.
        std::thread::sleep(Duration::from_millis(200));
        self.terminate();
        read_udp(&self.path).unwrap_or_else(|e| panic!("parse capture: {e}"))
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "INT");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Builder for one SIPp run (`-m 1`: a single call).
pub struct Sipp {
    scenario: String,
    target_ip: String,
    target_port: u16,
    dir: PathBuf,
    transport: Transport,
    vars: Vec<(String, String)>,
    extra: Vec<String>,
    capture: bool,
    timeout: Duration,
    local_port: Option<u16>,
}

impl Sipp {
    /// `scenario` is a file name in `tests/sipp/` (e.g. `"uac_caller_bye.xml"`).
    pub fn new(scenario: &str, gw: &Gateway) -> Sipp {
        Self::against(scenario, gw.sip_port, gw.dir())
    }

    /// Target any SIP endpoint on 127.0.0.1 (`target_port`); files go under `dir`.
    pub fn against(scenario: &str, target_port: u16, dir: &Path) -> Sipp {
        Sipp {
            scenario: scenario.to_string(),
            target_ip: "127.0.0.1".to_owned(),
            target_port,
            dir: dir.to_path_buf(),
            transport: Transport::Udp,
            vars: Vec::new(),
            extra: Vec::new(),
            capture: false,
            timeout: Duration::from_secs(90),
            local_port: None,
        }
    }

    /// Call `addr` instead (e.g. a proxy in front of the gateway); files
    /// still go under the gateway's dir.
    pub fn target(mut self, addr: std::net::SocketAddr) -> Self {
        self.target_ip = addr.ip().to_string();
        self.target_port = addr.port();
        self
    }

    /// SIPp's own SIP port (a free one by default): for a UAS the gateway
    /// must know before SIPp starts.
    pub fn local_port(mut self, port: u16) -> Self {
        self.local_port = Some(port);
        self
    }

    pub fn transport(mut self, t: Transport) -> Self {
        self.transport = t;
        self
    }

    /// Replace `{{KEY}}` in the scenario template with `value` (for attributes such as
    /// `play_pcap_audio` where SIPp expands no keywords).
    pub fn var(mut self, key: &str, value: impl Into<String>) -> Self {
        self.vars.push((key.to_string(), value.into()));
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra.push(a.into());
        self
    }

    /// Capture with tcpdump the UDP that arrives at SIPp's media and SIP ports.
    pub fn capture(mut self) -> Self {
        self.capture = true;
        self
    }

    /// Wall-clock limit for SIPp (it is killed after that).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Run to completion.
    pub fn run(self) -> SippRun {
        self.spawn().wait()
    }

    /// Start SIPp in the background; [`SippProcess::wait`] collects the result.
    pub fn spawn(self) -> SippProcess {
        let stem = self.scenario.trim_end_matches(".xml").to_string();
        let run_dir = self.dir.join(unique_token(&format!("sipp-{stem}")));
        std::fs::create_dir_all(&run_dir).expect("create sipp run dir");
        let template_path = package_root().join("sipp").join(&self.scenario);
        let mut xml = std::fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", template_path.display()));
        for (k, v) in &self.vars {
            xml = xml.replace(&format!("{{{{{k}}}}}"), v);
        }
        if let Some(i) = xml.find("{{") {
            panic!(
                "{}: unsubstituted template variable near {:?}",
                self.scenario,
                &xml[i..(i + 30).min(xml.len())]
            );
        }
        let scenario_path = run_dir.join(format!("{stem}.xml"));
        std::fs::write(&scenario_path, xml).expect("write scenario");

        let local_port = self.local_port.unwrap_or_else(ports::free_port);
        let media_port = ports::free_media_port();
        let token = unique_token(&stem);
        let call_id = format!("{token}-1");
        let capture = self
            .capture
            .then(|| Capture::start(&run_dir.join("capture.pcap"), &[media_port, local_port]));

        let mut cmd = Command::new(SIPP_BIN);
        cmd.current_dir(&run_dir)
            .arg(format!("{}:{}", self.target_ip, self.target_port))
            .arg("-sf")
            .arg(&scenario_path)
            .args(["-m", "1", "-l", "1", "-i", "127.0.0.1"])
            .arg("-p")
            .arg(local_port.to_string())
            .arg("-mp")
            .arg(media_port.to_string())
            .arg("-t")
            .arg(match self.transport {
                Transport::Udp => "u1",
                Transport::Tcp => "t1",
            })
            .arg("-cid_str")
            .arg(format!("{token}-%u"))
            .args(["-trace_err", "-error_file"])
            .arg(run_dir.join("errors.log"))
            .args(["-trace_screen", "-screen_file"])
            .arg(run_dir.join("screen.log"))
            .args(["-trace_msg", "-message_file"])
            .arg(run_dir.join("messages.log"))
            .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(run_dir.join("stdout.log")).expect("create sipp stdout"))
            .stderr(std::fs::File::create(run_dir.join("stderr.log")).expect("create sipp stderr"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn sipp (apt-get install sip-tester): {e}"));
        SippProcess {
            child: Some(child),
            started: Instant::now(),
            timeout: self.timeout,
            capture,
            run: SippRun {
                scenario: self.scenario,
                exit_code: None,
                timed_out: false,
                call_id,
                dir: run_dir,
                local_port,
                media_port,
                captured: Vec::new(),
                elapsed: Duration::ZERO,
            },
        }
    }
}

/// A SIPp run in progress.
pub struct SippProcess {
    child: Option<Child>,
    started: Instant,
    timeout: Duration,
    capture: Option<Capture>,
    run: SippRun,
}

impl SippProcess {
    /// The SIP Call-ID SIPp uses for its (single) call.
    pub fn call_id(&self) -> &str {
        &self.run.call_id
    }

    pub fn wait(mut self) -> SippRun {
        let mut child = self.child.take().expect("child");
        let status: Option<ExitStatus> = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break Some(st);
            }
            if self.started.elapsed() >= self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                self.run.timed_out = true;
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.run.elapsed = self.started.elapsed();
        self.run.exit_code = status.and_then(|s| s.code());
        if let Some(cap) = self.capture.take() {
            self.run.captured = cap.stop();
        }
        std::mem::replace(
            &mut self.run,
            SippRun {
                scenario: String::new(),
                exit_code: None,
                timed_out: false,
                call_id: String::new(),
                dir: PathBuf::new(),
                local_port: 0,
                media_port: 0,
                captured: Vec::new(),
                elapsed: Duration::ZERO,
            },
        )
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Result of a SIPp run.
#[derive(Debug)]
pub struct SippRun {
    pub scenario: String,
    /// SIPp's exit code: 0 = all calls succeeded, 1 = at least one failed, 97/99 = errors.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub call_id: String,
    pub dir: PathBuf,
    pub local_port: u16,
    pub media_port: u16,
    /// UDP captured towards SIPp (empty unless `.capture()`).
    pub captured: Vec<UdpDatagram>,
    pub elapsed: Duration,
}

impl SippRun {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// SIPp's error, screen and stderr logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = format!(
            "SIPp `{}` exit {:?}{} after {:?}; Call-ID {}; dir {}\n",
            self.scenario,
            self.exit_code,
            if self.timed_out {
                " (killed: timeout)"
            } else {
                ""
            },
            self.elapsed,
            self.call_id,
            self.dir.display()
        );
        for name in ["errors.log", "stderr.log", "screen.log", "messages.log"] {
            let p = self.dir.join(name);
            if p.exists() {
                out.push_str(&format!("--- {name} ---\n{}\n", file_tail(&p, 6000)));
            }
        }
        out
    }

    pub fn assert_success(&self) {
        assert!(self.succeeded(), "SIPp scenario failed\n{}", self.logs());
    }

    /// RTP that arrived at SIPp's media port, in capture order.
    pub fn rtp_received(&self) -> Vec<RtpPacket> {
        self.captured
            .iter()
            .filter(|d| d.dst_port == self.media_port)
            .filter_map(parse_rtp)
            .collect()
    }

    /// SIP datagrams (as text) that arrived at SIPp's SIP port.
    pub fn sip_received(&self) -> Vec<String> {
        self.captured
            .iter()
            .filter(|d| d.dst_port == self.local_port)
            .map(|d| String::from_utf8_lossy(&d.payload).into_owned())
            .collect()
    }
}
