//! One call, caller side: INVITE (Timer A retransmissions), ACK, media on
//! the shared media thread, a digit, then the expected end — the gateway's
//! BYE (answered by the dispatcher) or our own BYE at `call_secs`.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::rtp::{self, Cmd, MediaReport};
use crate::sip::{self, Dialog, Kind, Msg};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_B: Duration = Duration::from_secs(32);

/// How a call is expected to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// The flow hangs up (built-in flow: after reading the digit back).
    GatewayBye,
    /// The caller hangs up at `call_secs`.
    CallerBye,
}

pub struct CallConfig {
    pub call_secs: f64,
    pub digit_at: Option<f64>,
    pub digit: char,
    pub expect: Expect,
    pub prefix: String,
}

/// Everything the calls share.
pub struct Shared {
    pub sock: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub target: SocketAddr,
    pub routes: Mutex<HashMap<String, mpsc::UnboundedSender<Msg>>>,
    pub media: std::sync::mpsc::Sender<Cmd>,
    pub ports: Option<Mutex<Vec<u16>>>,
    pub cfg: CallConfig,
    pub active: AtomicUsize,
    pub max_active: AtomicUsize,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CallResult {
    pub call_id: String,
    pub answered: bool,
    pub walked: bool,
    pub setup_ms: Option<f64>,
    pub invite_retransmissions: u32,
    pub bye_retransmissions: u32,
    pub ended_by: Option<&'static str>,
    pub failure: Option<String>,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub rtp_lost: u64,
    pub talk_secs: f64,
}

/// Reads the shared SIP socket: answers the gateway's BYEs at once (200 OK,
/// stateless, also for calls already gone) and routes everything else to its
/// call by Call-ID. Runs until the socket fails.
pub async fn dispatch(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from) = match shared.sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("loadgen: SIP receive failed: {e}");
                return;
            }
        };
        let Some(msg) = sip::parse(&buf[..n], Instant::now()) else {
            continue;
        };
        if let Kind::Request(method) = &msg.kind {
            if method == "ACK" {
                continue;
            }
            // BYE, OPTIONS, INFO…: 200 OK.
            let _ = shared.sock.send_to(sip::ok_to(&msg).as_bytes(), from).await;
        }
        let route = shared
            .routes
            .lock()
            .ok()
            .and_then(|r| r.get(&msg.call_id).cloned());
        if let Some(tx) = route {
            let _ = tx.send(msg);
        }
    }
}

fn bind_rtp(shared: &Shared) -> Result<(StdUdpSocket, Option<u16>), String> {
    let ip = shared.local.ip();
    let (sock, port) = match &shared.ports {
        Some(pool) => {
            let port = pool
                .lock()
                .map_err(|_| "port pool poisoned".to_string())?
                .pop()
                .ok_or_else(|| "no free RTP port".to_string())?;
            match StdUdpSocket::bind((ip, port)) {
                Ok(s) => (s, Some(port)),
                Err(e) => {
                    if let Ok(mut p) = pool.lock() {
                        p.insert(0, port);
                    }
                    return Err(format!("bind RTP {port}: {e}"));
                }
            }
        }
        None => (
            StdUdpSocket::bind((ip, 0)).map_err(|e| format!("bind RTP: {e}"))?,
            None,
        ),
    };
    sock.set_nonblocking(true)
        .map_err(|e| format!("RTP nonblocking: {e}"))?;
    rtp::enable_timestamps(&sock).map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    Ok((sock, port))
}

/// Places one call and follows it to its end.
pub async fn run_call(shared: Arc<Shared>, id: u64) -> CallResult {
    let now = shared.active.fetch_add(1, Ordering::Relaxed) + 1;
    shared.max_active.fetch_max(now, Ordering::Relaxed);
    let call_id = format!(
        "{}-{id}-{:08x}@{}",
        shared.cfg.prefix,
        fastrand::u32(..),
        shared.local.ip()
    );
    let (tx, rx) = mpsc::unbounded_channel();
    if let Ok(mut r) = shared.routes.lock() {
        r.insert(call_id.clone(), tx);
    }
    let mut res = CallResult {
        call_id: call_id.clone(),
        ..Default::default()
    };
    let port = place(&shared, id, &call_id, rx, &mut res).await;
    if let Ok(mut r) = shared.routes.lock() {
        r.remove(&call_id);
    }
    if let (Some(port), Some(pool)) = (port, &shared.ports) {
        if let Ok(mut p) = pool.lock() {
            p.insert(0, port);
        }
    }
    shared.active.fetch_sub(1, Ordering::Relaxed);
    res
}

async fn send(shared: &Shared, text: &str) {
    let _ = shared.sock.send_to(text.as_bytes(), shared.target).await;
}

/// Returns the pooled RTP port to give back.
async fn place(
    shared: &Shared,
    id: u64,
    call_id: &str,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    res: &mut CallResult,
) -> Option<u16> {
    let cfg = &shared.cfg;
    let (rtp_sock, port) = match bind_rtp(shared) {
        Ok(s) => s,
        Err(e) => {
            res.failure = Some(e);
            return None;
        }
    };
    let rtp_addr = rtp_sock.local_addr().ok()?;
    let mut dialog = Dialog {
        local: shared.local,
        target: shared.target,
        call_id: call_id.to_owned(),
        from_tag: format!("{:08x}", fastrand::u32(..)),
        to_tag: None,
        remote_uri: None,
    };
    let invite_branch = sip::branch();
    let invite = dialog.invite(&invite_branch, rtp_addr);
    let t0 = Instant::now();
    send(shared, &invite).await;

    // INVITE client transaction (RFC 3261 §17.1.1): Timer A doubles from T1
    // until a provisional response; Timer B gives up at 64·T1.
    let mut retransmit = true;
    let mut interval = T1;
    let mut next = t0 + interval;
    let answer = loop {
        let deadline = if retransmit {
            next.min(t0 + TIMER_B)
        } else {
            t0 + TIMER_B
        };
        tokio::select! {
            m = rx.recv() => {
                let Some(m) = m else { return port };
                if m.cseq_method != "INVITE" { continue; }
                match m.kind {
                    Kind::Response(100..=199) => retransmit = false,
                    Kind::Response(200..=299) => break m,
                    Kind::Response(code) => {
                        dialog.to_tag = m.to_tag.clone();
                        send(shared, &dialog.ack(&invite_branch)).await;
                        res.failure = Some(format!("INVITE answered {code}"));
                        return port;
                    }
                    Kind::Request(_) => {}
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                if Instant::now() >= t0 + TIMER_B {
                    res.failure = Some("INVITE timed out (timer B)".into());
                    return port;
                }
                send(shared, &invite).await;
                res.invite_retransmissions += 1;
                interval *= 2;
                next = Instant::now() + interval;
            }
        }
    };
    res.answered = true;
    res.setup_ms = Some(answer.at.duration_since(t0).as_secs_f64() * 1000.0);
    dialog.to_tag = answer.to_tag.clone();
    dialog.remote_uri = answer.contact.clone();
    let ack = dialog.ack(&sip::branch());
    send(shared, &ack).await;
    let Some(remote) = sip::sdp_audio(&answer.body) else {
        res.failure = Some("200 OK without an audio address".into());
        send(shared, &dialog.bye(&sip::branch())).await;
        return port;
    };
    let answered_at = Instant::now();
    let digit_frame = cfg.digit_at.map(|s| (s * 50.0).round() as u32);
    let _ = shared.media.send(Cmd::Add {
        id,
        socket: rtp_sock,
        remote,
        digit_frame,
        event: rtp::dtmf_event(cfg.digit).unwrap_or(1),
    });

    // Talk until the gateway hangs up or our time is up.
    let hangup_at = answered_at + Duration::from_secs_f64(cfg.call_secs);
    let mut gateway_bye = false;
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(m) = m else { break };
                match (&m.kind, m.cseq_method.as_str()) {
                    (Kind::Request(method), _) if method == "BYE" => {
                        gateway_bye = true;
                        break;
                    }
                    // A retransmitted 200 OK: our ACK was lost.
                    (Kind::Response(200..=299), "INVITE") => send(shared, &ack).await,
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(hangup_at.into()) => break,
        }
    }
    res.talk_secs = answered_at.elapsed().as_secs_f64();
    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
    let _ = shared.media.send(Cmd::Remove {
        id,
        reply: reply_tx,
    });
    let media: MediaReport = reply_rx.await.unwrap_or_default();
    res.rtp_sent = media.sent;
    res.rtp_received = media.received;
    res.rtp_lost = media.lost;

    if gateway_bye {
        res.ended_by = Some("gateway");
    } else {
        res.ended_by = Some("caller");
        // Non-INVITE client transaction (§17.1.2): Timer E doubles to T2, Timer F at 64·T1.
        let bye_branch = sip::branch();
        let bye = dialog.bye(&bye_branch);
        let b0 = Instant::now();
        send(shared, &bye).await;
        let mut interval = T1;
        let mut next = b0 + interval;
        let ok = loop {
            tokio::select! {
                m = rx.recv() => {
                    let Some(m) = m else { break false };
                    if m.cseq_method == "BYE" {
                        if let Kind::Response(200..=699) = m.kind { break true; }
                    }
                }
                _ = tokio::time::sleep_until(next.min(b0 + TIMER_B).into()) => {
                    if Instant::now() >= b0 + TIMER_B { break false; }
                    send(shared, &bye).await;
                    res.bye_retransmissions += 1;
                    interval = (interval * 2).min(T2);
                    next = Instant::now() + interval;
                }
            }
        };
        if !ok {
            res.failure = Some("BYE not answered".into());
            return port;
        }
    }

    // Did the call walk? Audio both ways most of the call, the digit sent
    // when one was due, and the end we expected.
    let expected_packets = res.talk_secs * 50.0;
    if res.failure.is_none() {
        if media.received == 0 {
            res.failure = Some("no audio from the gateway".into());
        } else if (media.received as f64) < 0.9 * expected_packets - 10.0 {
            res.failure = Some(format!(
                "too little audio: {} packets in {:.1} s",
                media.received, res.talk_secs
            ));
        } else if cfg.digit_at.is_some_and(|d| d < res.talk_secs) && !media.digit_sent {
            res.failure = Some("digit not sent".into());
        } else if cfg.expect == Expect::GatewayBye && !gateway_bye {
            res.failure = Some("no BYE from the gateway by call-secs".into());
        } else if cfg.expect == Expect::CallerBye && gateway_bye {
            res.failure = Some(format!("gateway hung up after {:.1} s", res.talk_secs));
        }
    }
    res.walked = res.failure.is_none();
    port
}
