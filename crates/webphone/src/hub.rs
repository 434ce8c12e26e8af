//! [`AgentMediaHub`]: every agent's WebRTC peer on one UDP socket.
//!
//! One tokio task owns the socket and a `str0m::Rtc` per session. It
//! demultiplexes each datagram to the session whose `Rtc::accepts` it
//! (STUN by ufrag, then by the nominated remote address), feeds
//! `Input::Timeout(now)` after every wake-up, and drains `poll_output` to
//! `Timeout` after every mutation (str0m's single-mutation invariant).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::DtlsVersion;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::pacer::FramePacer;

/// PCMU's static payload type; the only codec the hub negotiates.
const PT_PCMU: Pt = Pt::new_with_value(0);
/// A 20 ms PCMU frame: 160 samples at 8 kHz, one byte each.
pub const FRAME_BYTES: usize = 160;

/// How the hub is set up. `Default` suits a gateway reachable on the
/// address it binds (tests, a LAN); set `advertise` when binding `0.0.0.0`.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The IP put in the host candidate. `None`: the bound IP, which must
    /// then be a concrete address (not `0.0.0.0`/`::`).
    pub advertise: Option<IpAddr>,
    /// ICE + DTLS must complete (and the browser's audio m-line appear)
    /// within this long after `accept_offer`, or the session is dropped
    /// with [`DisconnectReason::ConnectTimeout`].
    pub connect_timeout: Duration,
    /// No datagram from a connected browser for this long (it sends STUN
    /// consent checks every few seconds and RTP every 20 ms):
    /// [`DisconnectReason::Idle`].
    pub idle_timeout: Duration,
    /// How often [`AgentEvent::Stats`] is emitted per session.
    pub stats_interval: Duration,
    /// Frames buffered from the agent before the oldest are dropped (the
    /// bridge should drain every 20 ms; 50 = 1 s).
    pub from_agent_capacity: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            advertise: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(8),
            stats_interval: Duration::from_secs(5),
            from_agent_capacity: 50,
        }
    }
}

/// Why the hub could not be started or could not take an offer.
#[derive(Debug, thiserror::Error)]
pub enum WebphoneError {
    /// The shared UDP socket could not be bound.
    #[error("cannot bind the agent media socket: {0}")]
    Bind(#[source] std::io::Error),
    /// The socket is bound to an unspecified address (`0.0.0.0`) and no
    /// `advertise` address is set: the answer would have no reachable candidate.
    #[error("the media socket is bound to {0}; set HubConfig::advertise to a reachable IP")]
    NoAdvertisedAddress(SocketAddr),
    /// The browser's SDP could not be parsed.
    #[error("bad SDP offer: {0}")]
    BadOffer(String),
    /// The offer has no audio m-line the hub can answer with PCMU.
    #[error("the offer has no audio m-line the hub can answer with PCMU")]
    NoAudio,
    /// The hub task has stopped; nothing more can be done with it.
    #[error("the agent media hub has stopped")]
    HubGone,
}

/// Why a session ended. Anything but [`DisconnectReason::Closed`] means the
/// agent is lost mid-call: the call shell should treat it as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// ICE/DTLS did not complete within `connect_timeout`.
    ConnectTimeout,
    /// Nothing from the browser for `idle_timeout`, or ICE consent lost.
    Idle,
    /// The browser closed the peer connection (DTLS close_notify).
    RemoteClosed,
    /// str0m reported an error for this session (e.g. DTLS failure).
    Failed,
    /// `AgentMediaHub::close`, or a new offer replaced the session.
    Closed,
    /// The hub task ended.
    HubStopped,
}

/// Packet counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// PCMU frames received from the browser.
    pub frames_in: u64,
    /// PCMU frames written towards the browser.
    pub frames_out: u64,
    /// Frames from the bridge dropped because the peer was not yet (or no
    /// longer) ready, or had the wrong size.
    pub frames_dropped_out: u64,
    /// Frames from the browser dropped because the bridge did not drain
    /// `from_agent` fast enough.
    pub frames_dropped_in: u64,
    /// Datagrams received / sent on the shared socket for this session.
    pub datagrams_in: u64,
    /// Datagrams sent to the browser.
    pub datagrams_out: u64,
}

/// What happens to a session, in order: `Connected` once (ICE + DTLS up
/// and the browser's audio ready; frames flow both ways from then),
/// `Stats` now and then, `Disconnected` exactly once, last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// ICE and DTLS are up and the browser's audio is ready.
    Connected {
        /// From the hub taking the browser's offer to now.
        after: Duration,
    },
    /// The counters so far, sent every `stats_interval`.
    Stats(SessionStats),
    /// The session is over; nothing follows.
    Disconnected {
        /// Why it ended.
        reason: DisconnectReason,
        /// The final counters.
        stats: SessionStats,
    },
}

/// Sends 20 ms PCMU frames to one agent. Cheap to clone. Never blocks:
/// frames sent before the session is connected, or when the hub is
/// overloaded, are dropped; the hub spaces the rest a frame-time apart and
/// holds at most 100 ms (late audio is worse than a gap).
#[derive(Clone)]
pub struct AgentSender {
    session: Arc<str>,
    tx: mpsc::Sender<Cmd>,
}

impl AgentSender {
    /// Queue one PCMU frame (160 bytes = 20 ms, as received from the
    /// caller; the RTP timestamp is derived from when it is sent, so gaps
    /// in the caller's stream stay gaps). Returns false if it was dropped.
    pub fn send(&self, pcmu: &[u8]) -> bool {
        self.tx
            .try_send(Cmd::Frame {
                session: self.session.clone(),
                payload: pcmu.to_vec(),
            })
            .is_ok()
    }
}

/// One accepted agent peer: the SDP answer for the browser and the
/// session's audio and events.
pub struct AgentLeg {
    /// Send back to the browser (`sdp_answer`); ICE-lite with one host
    /// candidate, so no trickle is needed.
    pub answer_sdp: String,
    /// Caller → agent: PCMU payloads, 160 bytes / 20 ms.
    pub to_agent: AgentSender,
    /// Agent → caller (and the recorder's right channel): the browser's
    /// PCMU payloads exactly as received, usually 160 bytes / 20 ms.
    pub from_agent: mpsc::Receiver<Vec<u8>>,
    /// Connected / Stats / Disconnected.
    pub events: mpsc::UnboundedReceiver<AgentEvent>,
}

enum Cmd {
    Accept {
        session: Arc<str>,
        offer: String,
        reply: oneshot::Sender<Result<AgentLeg, WebphoneError>>,
    },
    Frame {
        session: Arc<str>,
        payload: Vec<u8>,
    },
    Close {
        session: Arc<str>,
    },
    LastMedia {
        session: Arc<str>,
        reply: oneshot::Sender<Option<Duration>>,
    },
}

/// Handle to the hub task. Cheap to clone; the task stops when the last
/// handle (including every [`AgentSender`]) is dropped.
#[derive(Clone)]
pub struct AgentMediaHub {
    tx: mpsc::Sender<Cmd>,
    local_addr: SocketAddr,
    candidate_addr: SocketAddr,
}

impl AgentMediaHub {
    /// Bind the shared UDP socket and start the hub task with defaults.
    pub async fn bind(addr: SocketAddr) -> Result<Self, WebphoneError> {
        Self::bind_with(addr, HubConfig::default()).await
    }

    /// Like [`AgentMediaHub::bind`], with settings other than the defaults.
    pub async fn bind_with(addr: SocketAddr, cfg: HubConfig) -> Result<Self, WebphoneError> {
        let socket = UdpSocket::bind(addr).await.map_err(WebphoneError::Bind)?;
        let local_addr = socket.local_addr().map_err(WebphoneError::Bind)?;
        let ip = match cfg.advertise {
            Some(ip) => ip,
            None if local_addr.ip().is_unspecified() => {
                return Err(WebphoneError::NoAdvertisedAddress(local_addr));
            }
            None => local_addr.ip(),
        };
        let candidate_addr = SocketAddr::new(ip, local_addr.port());
        let (tx, rx) = mpsc::channel(4096);
        let task = HubTask {
            socket,
            candidate_addr,
            cfg,
            sessions: HashMap::new(),
            cmd_tx: tx.downgrade(),
            scratch: Vec::new(),
        };
        tokio::spawn(task.run(rx));
        tracing::info!(%local_addr, %candidate_addr, "agent media hub listening");
        Ok(AgentMediaHub {
            tx,
            local_addr,
            candidate_addr,
        })
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address in the host candidate of every answer.
    pub fn candidate_addr(&self) -> SocketAddr {
        self.candidate_addr
    }

    /// Answer a browser's SDP offer (sendrecv audio, PCMU offered) for a new
    /// session `session` (any unique id, e.g. "agent-7/call-uuid"). An
    /// existing session with the same id is closed first.
    pub async fn accept_offer(
        &self,
        session: &str,
        sdp_offer: &str,
    ) -> Result<AgentLeg, WebphoneError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Accept {
                session: session.into(),
                offer: sdp_offer.to_owned(),
                reply,
            })
            .await
            .map_err(|_| WebphoneError::HubGone)?;
        rx.await.map_err(|_| WebphoneError::HubGone)?
    }

    /// How long ago the browser's last audio frame arrived on `session`;
    /// `None` for an unknown session or one that never sent audio. A live
    /// page sends a frame every 20 ms (silence included), so this tells a
    /// browser that is gone from one whose signalling socket merely dropped.
    pub async fn since_last_media(&self, session: &str) -> Option<Duration> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::LastMedia {
                session: session.into(),
                reply,
            })
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// End a session: DTLS close_notify to the browser, then
    /// `Disconnected { reason: Closed }`. Unknown ids are ignored.
    pub async fn close(&self, session: &str) {
        let _ = self
            .tx
            .send(Cmd::Close {
                session: session.into(),
            })
            .await;
    }
}

struct Session {
    rtc: Rtc,
    created: Instant,
    /// The browser's audio m-line, once `MediaAdded` has come.
    mid: Option<Mid>,
    ice_connected: bool,
    /// When frames may flow (Connected and MediaAdded both seen).
    ready_at: Option<Instant>,
    last_rx: Instant,
    /// When the browser's last audio frame arrived.
    last_media: Option<Instant>,
    next_timeout: Instant,
    next_stats: Instant,
    /// RTP clock (8 kHz samples since ready) of the next frame to write.
    next_ts: Option<u64>,
    /// Frames from the call, spaced a frame-time apart (pacer.rs).
    pacer: FramePacer,
    stats: SessionStats,
    from_agent: mpsc::Sender<Vec<u8>>,
    events: mpsc::UnboundedSender<AgentEvent>,
    closing: bool,
}

struct HubTask {
    socket: UdpSocket,
    candidate_addr: SocketAddr,
    cfg: HubConfig,
    sessions: HashMap<Arc<str>, Session>,
    cmd_tx: mpsc::WeakSender<Cmd>,
    /// Session ids a timeout visits, kept between wake-ups (the hub wakes
    /// every 20 ms per talking agent: no allocation per wake-up).
    scratch: Vec<Arc<str>>,
}

impl HubTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut buf = vec![0u8; 2000];
        loop {
            let next = self
                .sessions
                .values()
                .map(|s| {
                    s.pacer
                        .next_due()
                        .map_or(s.next_timeout, |d| d.min(s.next_timeout))
                })
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => self.on_datagram(source, &buf[..n]),
                    Err(e) => tracing::debug!(error = %e, "agent media recv"),
                },
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd),
                    None => break,
                },
                _ = tokio::time::sleep_until(next.into()) => {}
            }
            self.on_timeout(Instant::now());
        }
        for (_, mut s) in self.sessions.drain() {
            let _ = s.events.send(AgentEvent::Disconnected {
                reason: DisconnectReason::HubStopped,
                stats: s.stats,
            });
            let _ = s.rtc.close();
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Accept {
                session,
                offer,
                reply,
            } => {
                if let Some(old) = self.sessions.remove(&session) {
                    self.finish(old, DisconnectReason::Closed);
                }
                let r = self.accept(session, &offer);
                let _ = reply.send(r);
            }
            Cmd::Frame { session, payload } => {
                let now = Instant::now();
                let Some(s) = self.sessions.get_mut(&session) else {
                    return;
                };
                if s.pacer.push(now, payload) {
                    s.stats.frames_dropped_out += 1;
                }
                self.send_due(&session, now);
            }
            Cmd::LastMedia { session, reply } => {
                let since = self
                    .sessions
                    .get(&session)
                    .and_then(|s| s.last_media)
                    .map(|t| t.elapsed());
                let _ = reply.send(since);
            }
            Cmd::Close { session } => {
                if let Some(s) = self.sessions.remove(&session) {
                    self.finish(s, DisconnectReason::Closed);
                }
            }
        }
    }

    fn accept(&mut self, id: Arc<str>, offer: &str) -> Result<AgentLeg, WebphoneError> {
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| WebphoneError::BadOffer(e.to_string()))?;
        let now = Instant::now();
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            // Chromium offers DTLS 1.3 (with large post-quantum key
            // shares); Auto lets the first ClientHello pick 1.2 or 1.3.
            .set_dtls_version(DtlsVersion::Auto)
            .build(now);
        let cand = Candidate::host(self.candidate_addr, "udp")
            .map_err(|e| WebphoneError::BadOffer(format!("host candidate: {e}")))?;
        rtc.add_local_candidate(cand);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebphoneError::BadOffer(e.to_string()))?;
        let answer_sdp = answer.to_sdp_string();
        // A PCMU-only answer with no audio m-line is useless to us.
        if !answer_sdp.contains("m=audio") || !answer_sdp.contains("PCMU/8000") {
            return Err(WebphoneError::NoAudio);
        }
        let (from_tx, from_rx) = mpsc::channel(self.cfg.from_agent_capacity.max(1));
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let session = Session {
            rtc,
            created: now,
            mid: None,
            ice_connected: false,
            ready_at: None,
            last_rx: now,
            last_media: None,
            next_timeout: now,
            next_stats: now + self.cfg.stats_interval,
            next_ts: None,
            pacer: FramePacer::default(),
            stats: SessionStats::default(),
            from_agent: from_tx,
            events: ev_tx,
            closing: false,
        };
        self.sessions.insert(id.clone(), session);
        self.drain(&id, now);
        let Some(cmd_tx) = self.cmd_tx.upgrade() else {
            return Err(WebphoneError::HubGone);
        };
        tracing::debug!(session = %id, "agent offer accepted");
        Ok(AgentLeg {
            answer_sdp,
            to_agent: AgentSender {
                session: id,
                tx: cmd_tx,
            },
            from_agent: from_rx,
            events: ev_rx,
        })
    }

    fn on_datagram(&mut self, source: SocketAddr, data: &[u8]) {
        let now = Instant::now();
        let Ok(recv) = Receive::new(Protocol::Udp, source, self.candidate_addr, data) else {
            return; // not STUN/DTLS/RTP: ignore
        };
        let input = Input::Receive(now, recv);
        let Some(id) = self
            .sessions
            .iter()
            .find(|(_, s)| s.rtc.accepts(&input))
            .map(|(id, _)| id.clone())
        else {
            tracing::trace!(%source, "agent media datagram for no session");
            return;
        };
        let s = self.sessions.get_mut(&id).expect("found above");
        s.last_rx = now;
        s.stats.datagrams_in += 1;
        if let Err(e) = s.rtc.handle_input(input) {
            tracing::debug!(session = %id, error = %e, "agent media input rejected");
        }
        self.drain(&id, now);
    }

    /// Writes a session's frames whose slot has come (and sends them).
    fn send_due(&mut self, id: &Arc<str>, now: Instant) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let mut wrote = false;
        while let Some(frame) = s.pacer.pop_due(now) {
            s.write_frame(now, frame);
            wrote = true;
        }
        if wrote {
            self.drain(id, now);
        }
    }

    /// Frames due, timeouts and watchdogs of every session whose time has come.
    fn on_timeout(&mut self, now: Instant) {
        let mut ids = std::mem::take(&mut self.scratch);
        ids.extend(
            self.sessions
                .iter()
                .filter(|(_, s)| s.pacer.next_due().is_some_and(|d| d <= now))
                .map(|(id, _)| id.clone()),
        );
        for id in ids.drain(..) {
            self.send_due(&id, now);
        }
        ids.extend(
            self.sessions
                .iter()
                .filter(|(_, s)| s.next_timeout <= now)
                .map(|(id, _)| id.clone()),
        );
        for id in ids.drain(..) {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(session = %id, error = %e, "agent media timeout failed");
            }
            self.drain(&id, now);
        }
        self.scratch = ids;
        let cfg = &self.cfg;
        let mut lost = Vec::new();
        for (id, s) in self.sessions.iter_mut() {
            if s.ready_at.is_none() && now.duration_since(s.created) >= cfg.connect_timeout {
                lost.push((id.clone(), DisconnectReason::ConnectTimeout));
            } else if s.ready_at.is_some() && now.duration_since(s.last_rx) >= cfg.idle_timeout {
                lost.push((id.clone(), DisconnectReason::Idle));
            } else if now >= s.next_stats {
                s.next_stats = now + cfg.stats_interval;
                let _ = s.events.send(AgentEvent::Stats(s.stats));
            }
        }
        for (id, reason) in lost {
            if let Some(s) = self.sessions.remove(&id) {
                self.finish(s, reason);
            }
        }
    }

    /// Drain one session's output until `Timeout`: send datagrams, handle
    /// events. Ends the session if str0m fails or the peer closed.
    fn drain(&mut self, id: &Arc<str>, now: Instant) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let mut end = None;
        loop {
            if !s.rtc.is_alive() {
                end.get_or_insert(DisconnectReason::RemoteClosed);
                break;
            }
            match s.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    // Wake at least for the watchdogs and stats.
                    s.next_timeout = t.min(now + Duration::from_millis(500)).max(now);
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    s.stats.datagrams_out += 1;
                    if let Err(e) = self.socket.try_send_to(&t.contents, t.destination) {
                        tracing::debug!(error = %e, to = %t.destination, "agent media send");
                    }
                }
                Ok(Output::Event(ev)) => {
                    if let Some(reason) = s.on_event(id, ev, now) {
                        end = Some(reason);
                    }
                }
                Err(e) => {
                    tracing::warn!(session = %id, error = %e, "agent media session failed");
                    end = Some(DisconnectReason::Failed);
                    break;
                }
            }
        }
        if let Some(reason) = end {
            if let Some(s) = self.sessions.remove(id) {
                self.finish(s, reason);
            }
        }
    }

    /// Send close_notify (best effort), report `Disconnected`.
    fn finish(&mut self, mut s: Session, reason: DisconnectReason) {
        if !s.closing {
            s.closing = true;
            if s.rtc.close().is_ok() {
                // Flush the close output; ignore anything else.
                for _ in 0..32 {
                    match s.rtc.poll_output() {
                        Ok(Output::Transmit(t)) => {
                            let _ = self.socket.try_send_to(&t.contents, t.destination);
                        }
                        Ok(Output::Event(_)) => {}
                        _ => break,
                    }
                }
            }
        }
        tracing::info!(?reason, stats = ?s.stats, "agent media session ended");
        let _ = s.events.send(AgentEvent::Disconnected {
            reason,
            stats: s.stats,
        });
    }
}

impl Session {
    fn on_event(&mut self, id: &str, ev: Event, now: Instant) -> Option<DisconnectReason> {
        match ev {
            Event::Connected => {
                self.ice_connected = true;
                self.maybe_ready(id, now);
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Audio && self.mid.is_none() => {
                if m.direction == Direction::Inactive {
                    tracing::debug!(session = %id, "agent audio m-line inactive");
                }
                self.mid = Some(m.mid);
                self.maybe_ready(id, now);
            }
            Event::MediaData(d)
                if self.ready_at.is_some() && Some(d.mid) == self.mid && d.pt == PT_PCMU =>
            {
                self.stats.frames_in += 1;
                self.last_media = Some(now);
                if self.from_agent.try_send(d.data.to_vec()).is_err() {
                    self.stats.frames_dropped_in += 1;
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                if self.ready_at.is_some() =>
            {
                return Some(DisconnectReason::Idle);
            }
            Event::Closed => return Some(DisconnectReason::RemoteClosed),
            _ => {}
        }
        None
    }

    fn maybe_ready(&mut self, id: &str, now: Instant) {
        if self.ready_at.is_none() && self.ice_connected && self.mid.is_some() {
            self.ready_at = Some(now);
            self.last_rx = now;
            let after = now.duration_since(self.created);
            tracing::info!(session = %id, ?after, "agent media connected");
            let _ = self.events.send(AgentEvent::Connected { after });
        }
    }

    /// Write one frame on an absolute clock. RTP timestamps run on from the
    /// previous frame (contiguous, whatever the arrival jitter), except
    /// after a real gap (> 3 frames behind the wall clock since the session
    /// became ready), where they jump to the wall clock so a gap stays a gap.
    /// Takes the frame's buffer as it came from [`AgentSender::send`]:
    /// str0m keeps it, so a frame costs one allocation on its way.
    fn write_frame(&mut self, now: Instant, payload: Vec<u8>) {
        let (Some(ready), Some(mid)) = (self.ready_at, self.mid) else {
            self.stats.frames_dropped_out += 1;
            return;
        };
        if payload.is_empty() || payload.len() > 1200 {
            self.stats.frames_dropped_out += 1;
            return;
        }
        let wall = (now.duration_since(ready).as_micros() * 8 / 1000) as u64;
        let ts = match self.next_ts {
            Some(next) if wall < next + 3 * FRAME_BYTES as u64 => next,
            _ => wall,
        };
        let Some(writer) = self.rtc.writer(mid) else {
            self.stats.frames_dropped_out += 1;
            return;
        };
        let t = MediaTime::new(ts, Frequency::EIGHT_KHZ);
        let len = payload.len() as u64;
        match writer.write(PT_PCMU, now, t, payload) {
            Ok(()) => {
                self.next_ts = Some(ts + len);
                self.stats.frames_out += 1;
            }
            Err(e) => {
                tracing::debug!(error = %e, "agent media write");
                self.stats.frames_dropped_out += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_garbage_and_needs_a_concrete_address() {
        let hub = AgentMediaHub::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(hub.candidate_addr(), hub.local_addr());
        assert!(matches!(
            hub.accept_offer("s", "not sdp").await,
            Err(WebphoneError::BadOffer(_))
        ));
        hub.close("unknown").await; // ignored
        assert!(matches!(
            AgentMediaHub::bind("0.0.0.0:0".parse().unwrap()).await,
            Err(WebphoneError::NoAdvertisedAddress(_))
        ));
        let cfg = HubConfig {
            advertise: Some("192.0.2.7".parse().unwrap()),
            ..HubConfig::default()
        };
        let hub = AgentMediaHub::bind_with("0.0.0.0:0".parse().unwrap(), cfg)
            .await
            .unwrap();
        assert_eq!(hub.candidate_addr().ip().to_string(), "192.0.2.7");
    }

    #[test]
    fn every_asset_is_embedded() {
        for name in [
            "index.html",
            "app.js",
            "media.js",
            "signalling.js",
            "ring.js",
            "style.css",
        ] {
            let (_, body) = crate::http::asset(name).expect(name);
            assert!(!body.is_empty(), "{name}");
        }
        assert!(crate::http::asset("../Cargo.toml").is_none());
    }
}
