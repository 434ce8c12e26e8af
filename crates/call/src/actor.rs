//! The call actor: one task per call, owning its dialog handle, RTP socket,
//! media session, IVR interpreter and event stamper.
//!
//! Concurrency model (as in mini-redis' `Handler`): nothing here is shared
//! with other calls except the read-only [`CallContext`]. The actor reacts
//! to SIP events routed to it by Call-ID, the shared [`MediaClock`]'s
//! tick (every 40 ms: it then drains the datagrams its own RTP socket
//! received and queues its next frames with the pacer), lookup answers,
//! desk notices, the agent bridge and its one timer — and turns them into
//! interpreter events, media commands and call events. How the interpreter's actions are carried out lives in
//! `actor/ivr.rs`.

mod agent;
mod callback;
mod ivr;

pub(crate) use callback::run_callback;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_ivr::{CallVars, Interpreter};
use hotline_media::{
    CallRecorder, MediaConfig, MediaEvent, MediaSession, PortLease, PromptCache, RtpPortPool,
};
use hotline_sip::{
    CallKey, Direction, EndReason, IncomingCall, RemoteMedia, SipEvent, SipHandle, Transport,
};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use uuid::Uuid;

use crate::clock::{BATCH, MediaClock, PacedStream};
use crate::event::{CallEventStamper, EndedBy, EventData, EventSink};
use crate::flow::{FlowFactory, LookupProvider};
use agent::AgentSide;
use hotline_desk::DeskHandle;

/// Datagrams read per media tick at most (a call sends 2 per 40 ms).
const MAX_RECV_PER_TICK: usize = 64;
use ivr::{FlowState, Stage};

/// Per-call knobs from the configuration.
#[derive(Clone, Debug)]
pub struct CallSettings {
    /// Hang up when no RTP arrives for this long.
    pub rtp_timeout: Duration,
    /// Ring this long (180) before answering; 0 answers at once.
    pub answer_delay: Duration,
    /// Address put in our SDP; `None` picks the interface that routes to the caller.
    pub media_ip: Option<IpAddr>,
    /// Until agents answer queues: how long a queued caller waits before
    /// being told no one is free.
    pub queue_max_wait: Duration,
    /// `--force-hours`: every `hours` node answers this.
    pub forced_hours: Option<hotline_ivr::ForcedHours>,
    /// This gateway's name in the records (`call_started`'s `node`): the
    /// same name crash recovery closes open calls under, so the binary
    /// sets both from one place (`HOTLINE_NODE`, else the host name).
    pub node: String,
}

/// What every call shares, read-only.
pub struct CallContext {
    pub sip: SipHandle,
    pub prompts: Arc<PromptCache>,
    pub ports: Arc<RtpPortPool>,
    pub events: EventSink,
    pub recordings_dir: PathBuf,
    pub voicemail_dir: PathBuf,
    pub clock: MediaClock,
    pub settings: CallSettings,
    pub flows: FlowFactory,
    pub lookups: Arc<dyn LookupProvider>,
    /// Agents answer queued calls here; `None` holds queued callers with
    /// music until `queue_max_wait` (no agents configured).
    pub desk: Option<DeskHandle>,
    /// Flips to true when the gateway must end every call now.
    pub shutdown: watch::Receiver<bool>,
}

/// Runs one call to its end. Spawned by the router for each new INVITE.
pub async fn run_call(ctx: Arc<CallContext>, incoming: IncomingCall, rx: mpsc::Receiver<SipEvent>) {
    let span = tracing::info_span!("call", call_id = %incoming.call);
    CallActor::new(ctx, incoming, rx)
        .run()
        .instrument(span)
        .await
}

/// How a call is ending, before it is recorded.
struct Ending {
    by: EndedBy,
    cause: String,
}

impl Ending {
    fn new(by: EndedBy, cause: &str) -> Self {
        Self {
            by,
            cause: cause.to_owned(),
        }
    }
}

/// A lookup's answer, delivered back to the actor by the task that ran it.
type LookupAnswer = (u64, Result<Map<String, Value>, String>);

struct CallActor {
    ctx: Arc<CallContext>,
    key: CallKey,
    incoming: IncomingCall,
    rx: mpsc::Receiver<SipEvent>,
    log: CallEventStamper,
    interp: Interpreter,
    flow: FlowState,
    lookup_tx: mpsc::Sender<LookupAnswer>,
    lookup_rx: mpsc::Receiver<LookupAnswer>,
    agent: AgentSide,
    started: bool,
}

impl CallActor {
    fn new(ctx: Arc<CallContext>, incoming: IncomingCall, rx: mpsc::Receiver<SipEvent>) -> Self {
        let log = CallEventStamper::new(
            Uuid::new_v4(),
            incoming.call.0.to_string(),
            ctx.events.clone(),
        );
        Self::with_log(ctx, incoming, rx, log)
    }

    fn with_log(
        ctx: Arc<CallContext>,
        incoming: IncomingCall,
        rx: mpsc::Receiver<SipEvent>,
        log: CallEventStamper,
    ) -> Self {
        let flow = (ctx.flows)(&incoming);
        let interp = Interpreter::new(
            flow,
            CallVars {
                caller: incoming.caller.user.clone(),
                callee: incoming.callee.clone(),
                language: None,
                extra: Vec::new(),
                forced_hours: ctx.settings.forced_hours,
            },
        );
        let (lookup_tx, lookup_rx) = mpsc::channel(4);
        Self {
            key: incoming.call.clone(),
            ctx,
            incoming,
            rx,
            log,
            interp,
            flow: FlowState::default(),
            lookup_tx,
            lookup_rx,
            agent: AgentSide::default(),
            started: false,
        }
    }

    async fn run(mut self) {
        let transport = match self.incoming.peer.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        self.log
            .emit(
                EventData::CallStarted {
                    caller: self.incoming.caller.user.clone(),
                    caller_name: Some(self.incoming.caller.display_name.clone()),
                    callee: self.incoming.callee.clone(),
                    transport: transport.into(),
                    source: self.incoming.peer.addr.to_string(),
                    node: Some(self.ctx.settings.node.clone()),
                    direction: None,
                    callback_of: None,
                    attempt: None,
                    queue: None,
                },
                None,
            )
            .await;
        tracing::info!(caller = %self.incoming.caller.user, callee = %self.incoming.callee, "incoming call");

        let (ending, media) = match self.answer_and_talk().await {
            Ok((ending, media)) => (ending, Some(media)),
            Err(ending) => (ending, None),
        };
        self.finish(ending, media).await;
    }

    /// Records how the call ended, closes its recording and waits for the
    /// agent's wrap-up.
    async fn finish(&mut self, ending: Ending, media: Option<MediaSession>) {
        self.log
            .emit(
                EventData::Hangup {
                    ended_by: ending.by,
                    cause: ending.cause.clone(),
                    recovered_at: None,
                },
                None,
            )
            .await;
        if let Some(media) = media {
            self.close_recording(media).await;
        }
        self.after_agent().await;
        self.log.emit(EventData::CallEnded {}, None).await;
        tracing::info!(ended_by = ending.by.as_str(), cause = %ending.cause, "call ended");
    }

    /// Rings, answers and runs the call. `Err` is a call that ended before answer.
    async fn answer_and_talk(&mut self) -> Result<(Ending, MediaSession), Ending> {
        let (socket, lease) = match self.bind_rtp().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for the call");
                self.ctx.sip.reject(self.key.clone(), 503).await;
                let _ = self.wait_ended().await;
                return Err(Ending::new(EndedBy::Gateway, "no_rtp_port"));
            }
        };

        if !self.ctx.settings.answer_delay.is_zero() {
            self.ctx.sip.ring(self.key.clone()).await;
            let until = tokio::time::sleep(self.ctx.settings.answer_delay);
            tokio::pin!(until);
            loop {
                tokio::select! {
                    _ = &mut until => break,
                    ev = self.rx.recv() => match ev {
                        Some(SipEvent::Ended { reason, .. }) => return Err(ending_from(reason)),
                        Some(_) => {}
                        None => return Err(Ending::new(EndedBy::Gateway, "sip_gone")),
                    }
                }
            }
        }

        let local = match socket.local_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "RTP socket has no address");
                self.ctx.sip.reject(self.key.clone(), 500).await;
                let _ = self.wait_ended().await;
                return Err(Ending::new(EndedBy::Gateway, "rtp_socket"));
            }
        };
        if let Err(e) = self.ctx.sip.answer(self.key.clone(), local).await {
            // Typically a CANCEL that overtook the answer: the dialog says how it ended.
            tracing::info!(error = %e, "call could not be answered");
            return Err(match self.wait_ended().await {
                Some(reason) => ending_from(reason),
                None => Ending::new(EndedBy::Gateway, "answer_failed"),
            });
        }
        self.log
            .emit(
                EventData::Answered {
                    rtp: local.to_string(),
                },
                None,
            )
            .await;

        let offer = self.incoming.offer;
        let mut media = self.open_media(&offer);
        // Until the ACK confirms the call, neither play nor time out on RTP:
        // a caller that never ACKs is ended by timer H, not by silence.
        media.set_direction(false, false);
        let ending = self.talk_on(socket, lease, &mut media).await;
        Ok((ending, media))
    }

    /// The call's media session towards `remote`, recorded to
    /// `<recordings>/<call id>.wav`.
    fn open_media(&self, remote: &RemoteMedia) -> MediaSession {
        let mut media = MediaSession::new(
            MediaConfig {
                codec: match remote.codec {
                    hotline_sip::Codec::Pcmu => hotline_media::Codec::Pcmu,
                    hotline_sip::Codec::Pcma => hotline_media::Codec::Pcma,
                },
                payload_type: remote.payload_type,
                dtmf_payload_type: remote.dtmf_payload_type,
                remote: remote.rtp_addr,
                inactivity_timeout: self.ctx.settings.rtp_timeout,
            },
            Instant::now(),
        );
        let rec_path = self
            .ctx
            .recordings_dir
            .join(format!("{}.wav", self.log.call_id));
        match CallRecorder::create(&rec_path) {
            Ok(rec) => media.set_recorder(rec),
            Err(e) => tracing::error!(error = %e, path = %rec_path.display(), "cannot record call"),
        }
        media
    }

    /// Runs the answered call on `socket` (shared with the pacer) until one
    /// side ends it; the port goes back to the pool afterwards.
    async fn talk_on(
        &mut self,
        socket: StdUdpSocket,
        lease: PortLease,
        media: &mut MediaSession,
    ) -> Ending {
        let paced = match socket.try_clone() {
            Ok(tx) => self.ctx.clock.pace(tx),
            Err(e) => {
                tracing::error!(error = %e, "cannot share the RTP socket with the pacer");
                self.ctx.sip.hangup(self.key.clone()).await;
                return Ending::new(EndedBy::Gateway, "rtp_socket");
            }
        };
        let ending = self.talk(&socket, &paced, media).await;
        drop(paced);
        drop(socket);
        drop(lease);
        ending
    }

    async fn close_recording(&mut self, media: MediaSession) {
        match media.finish() {
            Some(Ok(info)) => {
                self.log
                    .emit(
                        EventData::Recording {
                            path: info.path.display().to_string(),
                            duration_ms: info.duration_ms,
                            channels: info.channels,
                            sample_rate: info.sample_rate,
                            bytes: info.bytes,
                            sha256: None,
                            recovered: None,
                        },
                        None,
                    )
                    .await
            }
            Some(Err(e)) => tracing::error!(error = %e, "recording failed"),
            None => {}
        }
    }

    /// The answered call: media, flow and dialog until one side ends it.
    async fn talk(
        &mut self,
        socket: &StdUdpSocket,
        paced: &PacedStream,
        media: &mut MediaSession,
    ) -> Ending {
        let mut clock = self.ctx.clock.clone();
        let mut last_frame = clock.now_index();
        let mut shutdown = self.ctx.shutdown.clone();
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::with_capacity(256);
        // One timer for the call's life, moved only when its deadline does:
        // re-arming a fresh one on every 20 ms wake-up costs more than the
        // media work itself (measured with 500 calls waiting for a digit).
        let far = || tokio::time::Instant::now() + Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        let ending = loop {
            let timer = self.next_deadline();
            if timer != armed {
                armed = timer;
                let at = timer
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(far);
                sleep.as_mut().reset(at);
            }
            let outcome: Option<Ending> = tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.on_sip(ev, media).await,
                    None => Some(Ending::new(EndedBy::Gateway, "sip_gone")),
                },
                frame = clock.next() => match frame {
                    Some(frame) => match self.on_received(socket, media, &mut buf).await {
                        Some(ending) => Some(ending),
                        None => self.on_frames(frame, &mut last_frame, paced, media, &mut out).await,
                    },
                    None => Some(Ending::new(EndedBy::Gateway, "clock_stopped")),
                },
                Some((id, result)) = self.lookup_rx.recv() => {
                    self.on_lookup(id, result, media).await
                }
                notice = agent::recv(&mut self.agent.notices) => match notice {
                    Some(n) => self.on_desk(n, media).await,
                    None => {
                        self.agent.notices = None;
                        None
                    }
                },
                from = agent::recv_bridge(&mut self.agent.bridge) => match from {
                    agent::FromAgent::Frame(frame) => {
                        self.on_agent_audio(frame, media);
                        None
                    }
                    agent::FromAgent::Event(ev) => self.on_leg_event(ev, media).await,
                },
                _ = &mut sleep, if armed.is_some() => {
                    // Fired: re-arm from the next deadline on the next turn.
                    armed = None;
                    sleep.as_mut().reset(far());
                    self.on_timer(media).await
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        self.ctx.sip.hangup(self.key.clone()).await;
                        Some(Ending::new(EndedBy::Gateway, "shutdown"))
                    } else {
                        None
                    }
                }
            };
            if let Some(ending) = outcome {
                break ending;
            }
        };
        if self.flow.stage != Stage::Done {
            // The flow did not end the call itself: let it record how it ended.
            self.end_flow(media).await;
        } else if self.close_voicemail(media).await.is_some() {
            // A queue overflow's message the caller ended by hanging up (as
            // most do): it is kept, and the call's outcome is voicemail.
            self.log.emit(EventData::outcome("voicemail"), None).await;
        }
        self.leave_desk(media).await;
        ending
    }

    /// Reads what the caller sent since the last media tick (bounded, so a
    /// flood cannot starve the call's other work).
    async fn on_received(
        &mut self,
        socket: &StdUdpSocket,
        media: &mut MediaSession,
        buf: &mut [u8],
    ) -> Option<Ending> {
        for _ in 0..MAX_RECV_PER_TICK {
            let (n, from) = match socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
                Err(e) => {
                    tracing::debug!(error = %e, "RTP receive error");
                    return None;
                }
            };
            self.forward_to_agent(&buf[..n]);
            for ev in media.on_rtp(Instant::now(), from, &buf[..n]) {
                if let Some(ending) = self.on_media(ev, media).await {
                    return Some(ending);
                }
            }
        }
        None
    }

    /// Produces the frames up to [`BATCH`] ticks ahead of `frame` and hands
    /// them to the pacer, each for the tick it is due on.
    async fn on_frames(
        &mut self,
        frame: u64,
        last: &mut u64,
        paced: &PacedStream,
        media: &mut MediaSession,
        out: &mut Vec<u8>,
    ) -> Option<Ending> {
        let target = frame + BATCH;
        // Catch up on frames a late wake-up missed, but never more than a
        // second's worth (50 frames, `target` included).
        let first = (*last + 1).max(target.saturating_sub(49));
        *last = target.max(*last);
        for due in first..=target {
            out.clear();
            let tick = media.on_tick(Instant::now(), out);
            if let Some(to) = tick.send_to {
                paced.push(due, to, out);
            }
            for ev in tick.events {
                if let Some(ending) = self.on_media(ev, media).await {
                    return Some(ending);
                }
            }
        }
        None
    }

    async fn on_sip(&mut self, ev: SipEvent, media: &mut MediaSession) -> Option<Ending> {
        match ev {
            SipEvent::Confirmed { .. } => {
                if !self.started {
                    self.started = true;
                    apply_direction(media, self.incoming.offer.direction);
                    return self.flow_started(media).await;
                }
                None
            }
            SipEvent::Digit {
                digit, duration_ms, ..
            } => self.on_digit(digit, duration_ms, "info", media).await,
            SipEvent::MediaChanged { media: remote, .. } => {
                media.set_remote(remote.rtp_addr);
                apply_direction(media, remote.direction);
                self.log
                    .emit(
                        EventData::MediaChanged {
                            direction: direction_name(remote.direction).into(),
                            rtp: remote.rtp_addr.to_string(),
                        },
                        None,
                    )
                    .await;
                None
            }
            SipEvent::TransferAccepted { .. } => self.on_transfer(None, media).await,
            SipEvent::TransferProgress { code, .. } => self.on_transfer(Some(code), media).await,
            SipEvent::TransferFailed { code, .. } => self.on_transfer_failed(code, media).await,
            SipEvent::Ended { reason, .. } => Some(ending_from(reason)),
            // Not for an answered call: the router spawns actors for new
            // calls, and a callback leg handles its dialling itself.
            SipEvent::Incoming(_)
            | SipEvent::Ringing { .. }
            | SipEvent::OutboundAnswered { .. }
            | SipEvent::OutboundFailed { .. } => None,
        }
    }

    async fn on_media(&mut self, ev: MediaEvent, media: &mut MediaSession) -> Option<Ending> {
        match ev {
            // The duration is only known when the event ends; the digit is
            // reported on its first packet, so none is recorded.
            MediaEvent::Digit(d) => self.on_digit(d.digit, None, "rfc4733", media).await,
            MediaEvent::PromptFinished { interrupted } => {
                self.prompt_finished(interrupted, media).await
            }
            MediaEvent::InactivityTimeout => {
                tracing::warn!("no RTP from the caller; hanging up");
                self.ctx.sip.hangup(self.key.clone()).await;
                Some(Ending::new(EndedBy::Timeout, "rtp_timeout"))
            }
        }
    }

    /// Binds an RTP socket on a port from the pool.
    async fn bind_rtp(&self) -> std::io::Result<(StdUdpSocket, PortLease)> {
        bind_rtp(&self.ctx, self.incoming.peer.addr)
    }

    /// Waits (bounded) for the dialog to be gone and says why it went.
    async fn wait_ended(&mut self) -> Option<EndReason> {
        tokio::time::timeout(Duration::from_secs(40), async {
            while let Some(ev) = self.rx.recv().await {
                if let SipEvent::Ended { reason, .. } = ev {
                    return Some(reason);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

fn ending_from(reason: EndReason) -> Ending {
    match reason {
        EndReason::RemoteBye => Ending::new(EndedBy::Caller, "BYE"),
        EndReason::Cancelled => Ending::new(EndedBy::Caller, "CANCEL"),
        EndReason::AckTimeout => Ending::new(EndedBy::Timeout, "ack_timeout"),
        EndReason::LocalBye => Ending::new(EndedBy::Gateway, "BYE"),
        EndReason::Rejected { code } => Ending::new(EndedBy::Gateway, &code.to_string()),
    }
}

fn apply_direction(media: &mut MediaSession, offered: Direction) {
    // The offer's direction is the remote party's view: sendonly means they
    // send and we only receive (hold), so we stop sending.
    let (send, recv) = match offered {
        Direction::SendRecv => (true, true),
        Direction::SendOnly => (false, true),
        Direction::RecvOnly => (true, false),
        Direction::Inactive => (false, false),
    };
    media.set_direction(send, recv);
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::SendRecv => "sendrecv",
        Direction::SendOnly => "sendonly",
        Direction::RecvOnly => "recvonly",
        Direction::Inactive => "inactive",
    }
}

/// The local address the OS would use to reach `peer` (no packet is sent).
fn route_ip(peer: SocketAddr) -> IpAddr {
    let any: SocketAddr = if peer.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    StdUdpSocket::bind(any)
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Binds an RTP socket on a port from the pool, on the address that routes
/// to `peer` (or the configured media address).
fn bind_rtp(ctx: &CallContext, peer: SocketAddr) -> std::io::Result<(StdUdpSocket, PortLease)> {
    let ip = ctx.settings.media_ip.unwrap_or_else(|| route_ip(peer));
    let mut last_err = None;
    for _ in 0..8 {
        let Some(lease) = ctx.ports.lease() else {
            break;
        };
        match StdUdpSocket::bind(SocketAddr::new(ip, lease.port())) {
            Ok(s) => {
                // Non-blocking and outside the reactor: the actor drains
                // it on its media tick, never woken per packet.
                s.set_nonblocking(true)?;
                return Ok((s, lease));
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("RTP port range exhausted")))
}
