//! The tokio shell over real loopback sockets.

use std::net::SocketAddr;
use std::time::Duration;

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use hotline_sip::{EndReason, Originate, SipConfig, SipEvent, SipServer, TcpFramer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn invite(transport: &str, from: SocketAddr, call_id: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {from};branch=z9hG4bK{call_id};rport\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:alice@{from}>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn config() -> SipConfig {
    SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..SipConfig::default()
    }
}

#[tokio::test]
async fn udp_invite_answer() {
    let (handle, mut events) = SipServer::bind(config()).await.unwrap();
    let server = handle.local_addr();
    assert_ne!(server.port(), 0);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    sock.send_to(invite("UDP", me, "udp-1").as_bytes(), server)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 100 Trying"));
    let Some(SipEvent::Incoming(inc)) = timeout(WAIT, events.recv()).await.unwrap() else {
        panic!("expected Incoming")
    };
    assert_eq!(inc.callee, "100");
    handle
        .answer(inc.call.clone(), "127.0.0.1:30000".parse().unwrap())
        .await
        .expect("a fresh call can be answered");
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let ok = String::from_utf8_lossy(&buf[..n]);
    assert!(ok.starts_with("SIP/2.0 200 OK"), "{ok}");
    assert!(ok.contains("m=audio 30000 RTP/AVP 0 101"));
    handle.shutdown().await;
}

#[tokio::test]
async fn tcp_invite_answer() {
    let (handle, mut events) = SipServer::bind(config()).await.unwrap();
    let mut stream = TcpStream::connect(handle.local_addr()).await.unwrap();
    let me = stream.local_addr().unwrap();
    stream
        .write_all(invite("TCP", me, "tcp-1").as_bytes())
        .await
        .unwrap();
    let mut framer = TcpFramer::new();
    let mut buf = vec![0u8; 4096];
    let mut next = async || loop {
        if let Some(m) = framer.pop().unwrap() {
            return String::from_utf8(m).unwrap();
        }
        let n = timeout(WAIT, stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed");
        framer.push(&buf[..n]);
    };
    assert!(next().await.starts_with("SIP/2.0 100 Trying"));
    let Some(SipEvent::Incoming(inc)) = timeout(WAIT, events.recv()).await.unwrap() else {
        panic!("expected Incoming")
    };
    assert_eq!(inc.peer.transport, hotline_sip::Transport::Tcp);
    handle
        .answer(inc.call.clone(), "127.0.0.1:30002".parse().unwrap())
        .await
        .expect("a fresh call can be answered");
    let ok = next().await;
    assert!(ok.starts_with("SIP/2.0 200 OK"), "{ok}");
    assert!(ok.contains(";transport=tcp>"));
    handle.shutdown().await;
}

/// `sipp` from PATH (or the usual install locations). A missing SIPp fails
/// the test that needs it (`tests/run` installs it: Debian `sip-tester`);
/// only `HOTLINE_ALLOW_SKIP=1`, which CI never sets, turns that into a skip.
fn find_sipp(test: &str) -> Option<PathBuf> {
    let found = find_sipp_binary();
    if found.is_none() {
        assert!(
            std::env::var_os("HOTLINE_ALLOW_SKIP").is_some_and(|v| v == "1"),
            "{test} needs sipp, which is not installed: apt-get install sip-tester \
             (tests/run does; set HOTLINE_ALLOW_SKIP=1 to skip instead)"
        );
        eprintln!("SKIPPED {test}: sipp is not installed (HOTLINE_ALLOW_SKIP=1)");
    }
    found
}

/// From PATH only, as every other test finds its tools.
fn find_sipp_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("sipp"))
        .find(|p| p.is_file())
}

/// A UDP port free right now on loopback. SIPp's defaults (5060, media
/// 6000) may be taken by a running gateway.
fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Blind transfer against SIPp as the caller (`tests/sipp/uac_refer.xml`):
/// INVITE → answer → REFER → 202 + NOTIFY(sipfrag 200) → hangup → BYE/200.
#[tokio::test]
async fn refer_with_sipp() {
    let Some(sipp) = find_sipp("refer_with_sipp") else {
        return;
    };
    let (handle, mut events) = SipServer::bind(config()).await.unwrap();
    let scenario = &format!("{}/tests/sipp/uac_refer.xml", manifest_dir());
    let free_port = || free_port().to_string();
    let dir = std::env::temp_dir().join(format!("hotline-sip-refer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = tokio::process::Command::new(sipp)
        .current_dir(&dir)
        .arg(handle.local_addr().to_string())
        .arg("-sf")
        .arg(scenario)
        .args([
            "-m",
            "1",
            "-l",
            "1",
            "-i",
            "127.0.0.1",
            "-s",
            "100",
            "-t",
            "u1",
        ])
        .args(["-p", &free_port(), "-mp", &free_port()])
        .args(["-timeout", "20s", "-timeout_error", "-nostdin"])
        .args(["-trace_msg", "-message_file"])
        .arg(dir.join("msg.log"))
        .args(["-trace_err", "-error_file"])
        .arg(dir.join("errors.log"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sipp");

    let mut next = async || {
        timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("SIP event in time")
            .expect("event channel open")
    };
    let SipEvent::Incoming(inc) = next().await else {
        panic!("expected Incoming")
    };
    let call = inc.call.clone();
    handle
        .answer(call.clone(), "127.0.0.1:30004".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(next().await, SipEvent::Confirmed { call: call.clone() });
    handle
        .refer(call.clone(), "sip:billing@10.0.0.5".to_string())
        .await
        .expect("REFER in a confirmed dialog");
    // SIPp sends 202 then NOTIFY; the order of the two events is not part of the API.
    let mut got = vec![next().await, next().await];
    got.sort_by_key(|e| matches!(e, SipEvent::TransferProgress { .. }));
    assert_eq!(
        got,
        vec![
            SipEvent::TransferAccepted { call: call.clone() },
            SipEvent::TransferProgress {
                call: call.clone(),
                code: 200
            },
        ]
    );
    handle.hangup(call.clone()).await;
    assert_eq!(
        next().await,
        SipEvent::Ended {
            call,
            reason: EndReason::LocalBye
        }
    );
    let status = timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("sipp exits")
        .unwrap();
    let errors = std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();
    assert!(
        status.success(),
        "sipp failed: {status}\n{errors}\n(messages in {})",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    handle.shutdown().await;
}

/// SIPp as the called party (UAS) on loopback UDP, for outbound calls.
struct SippUas {
    child: tokio::process::Child,
    port: u16,
    media_port: u16,
    dir: PathBuf,
}

impl SippUas {
    /// Starts `tests/sipp/<scenario>` for one call; `None` (after a skip
    /// line) when `sipp` is not installed.
    fn start(scenario: &str, test: &str) -> Option<SippUas> {
        let sipp = find_sipp(test)?;
        let scenario = Path::new(&manifest_dir()).join("tests/sipp").join(scenario);
        let dir = std::env::temp_dir().join(format!("hotline-sip-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (port, media_port) = (free_port(), free_port());
        let child = tokio::process::Command::new(sipp)
            .current_dir(&dir)
            .arg("-sf")
            .arg(scenario)
            .args(["-m", "1", "-i", "127.0.0.1", "-t", "u1"])
            .args(["-p", &port.to_string(), "-mp", &media_port.to_string()])
            .args(["-timeout", "20s", "-timeout_error", "-nostdin"])
            .args(["-trace_msg", "-message_file"])
            .arg(dir.join("msg.log"))
            .args(["-trace_err", "-error_file"])
            .arg(dir.join("errors.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sipp");
        Some(SippUas {
            child,
            port,
            media_port,
            dir,
        })
    }

    /// Where to send the INVITE. Sent before SIPp has bound its port, it is
    /// simply retransmitted (Timer A).
    fn target(&self) -> String {
        format!("sip:1000@127.0.0.1:{}", self.port)
    }

    /// Waits for SIPp to finish and asserts it succeeded.
    async fn finish(mut self) {
        let status: ExitStatus = timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("sipp exits")
            .unwrap();
        let errors = std::fs::read_to_string(self.dir.join("errors.log")).unwrap_or_default();
        assert!(
            status.success(),
            "sipp failed: {status}\n{errors}\n(messages in {})",
            self.dir.display()
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn originate_to(target: String) -> Originate {
    Originate {
        call_id: None,
        target,
        from_user: "hotline".to_string(),
        from_display: Some("Hotline".to_string()),
        local_rtp: "127.0.0.1:30006".parse().unwrap(),
        ring_timeout: Duration::from_secs(10),
    }
}

/// Outbound call to SIPp as the callee (`tests/sipp/uas_answer_bye.xml`):
/// INVITE → 180 → 200 → ACK, then SIPp hangs up (BYE → 200).
#[tokio::test]
async fn originate_answered_with_sipp() {
    let Some(sipp) = SippUas::start("uas_answer_bye.xml", "originate_answered_with_sipp") else {
        return;
    };
    let (handle, mut events) = SipServer::bind(config()).await.unwrap();
    let mut next = async || {
        timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("SIP event in time")
            .expect("event channel open")
    };
    let call = handle
        .originate(originate_to(sipp.target()))
        .await
        .expect("a usable outbound call");
    assert_eq!(
        next().await,
        SipEvent::Ringing {
            call: call.clone(),
            code: 180
        }
    );
    let SipEvent::OutboundAnswered {
        call: answered,
        media,
    } = next().await
    else {
        panic!("expected OutboundAnswered")
    };
    assert_eq!(answered, call);
    assert_eq!(
        media.rtp_addr,
        SocketAddr::from(([127, 0, 0, 1], sipp.media_port))
    );
    assert_eq!(media.codec, hotline_sip::Codec::Pcmu);
    assert_eq!(media.dtmf_payload_type, Some(101));
    assert_eq!(
        next().await,
        SipEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }
    );
    sipp.finish().await;
    handle.shutdown().await;
}

/// Outbound call refused by SIPp (`tests/sipp/uas_busy.xml`): 486 → ACK.
#[tokio::test]
async fn originate_busy_with_sipp() {
    let Some(sipp) = SippUas::start("uas_busy.xml", "originate_busy_with_sipp") else {
        return;
    };
    let (handle, mut events) = SipServer::bind(config()).await.unwrap();
    let call = handle
        .originate(originate_to(sipp.target()))
        .await
        .expect("a usable outbound call");
    let ev = timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("SIP event in time")
        .expect("event channel open");
    assert_eq!(
        ev,
        SipEvent::OutboundFailed {
            call,
            code: 486,
            reason: "Busy Here".to_string()
        }
    );
    sipp.finish().await;
    // Nothing else of the call follows.
    assert!(
        timeout(Duration::from_millis(300), events.recv())
            .await
            .is_err()
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn originate_refuses_unusable_targets() {
    let (handle, _events) = SipServer::bind(config()).await.unwrap();
    let err = handle
        .originate(originate_to("sip:1000@example.com".to_string()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, hotline_sip::SipError::InvalidOriginate(_)),
        "{err}"
    );
    handle.shutdown().await;
}

/// The package's directory as `cargo test` gives it at run time (the
/// compile-time one is stale when a shared target dir reuses this test
/// binary for a checkout elsewhere).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
