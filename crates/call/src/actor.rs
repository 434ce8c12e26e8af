//! The call actor: the thin async shell around one call's [`CallCore`].
//!
//! Concurrency model (as in mini-redis' `Handler`): one task per call,
//! sharing nothing with other calls but the read-only [`CallContext`]. The
//! task owns what the core must not: the RTP socket (drained on the shared
//! [`MediaClock`]'s tick, every 40 ms, its frames queued with the pacer),
//! the SIP and desk channels, the agent leg's channels, lookup tasks,
//! recorder files and the one timer. It feeds each happening into the core
//! and carries the core's outputs out in order: call events stamped and
//! sent, SIP commands through [`SipHandle`], desk messages. Every decision
//! is the core's (`core/`).

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hotline_desk::{DeskInput, DeskNotice, DialRequest, MonitorAction, MonitorStatus, QueuedCall};
use hotline_ivr::LookupSource;
use hotline_media::{CallRecorder, PortLease, RtpPacket, alaw_decode, ulaw_encode};
use hotline_sip::{
    CallKey, Codec, Direction, IncomingCall, Party, Peer, RemoteMedia, SipEvent, Transport,
};
use hotline_webphone::{AgentEvent, AgentLeg, AgentSender};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

use crate::clock::{BATCH, MediaClock, Paced};
use crate::context::CallContext;
use crate::core::{CallCore, CallInput, CallOutput, RecorderFor, RtpError, SipCommand};
use crate::event::CallEventStamper;
use crate::recv::{self, RecvBatch};
use crate::rtp::bind_rtp;
use crate::rtp_meter::RtpMeter;
use crate::srtp::{self, CallSrtp};

/// A call's SIP events, boxed: tokio allocates a channel's slots 32 at a
/// time whatever its bound, and a boxed event is 8 bytes of slot where a
/// `SipEvent` is ~250 (a call gets a handful of events, one allocation
/// each).
pub(crate) type CallEvents = mpsc::Receiver<Box<SipEvent>>;

/// Datagrams read per media tick at most (a call sends 2 per 40 ms).
const MAX_RECV_PER_TICK: usize = 64;

thread_local! {
    /// The receive buffers of the calls this worker thread runs, used only
    /// between two awaits.
    static RECV: std::cell::RefCell<RecvBatch> = const { std::cell::RefCell::new(RecvBatch::new()) };
}

/// Datagrams read past one that left the core with outputs: copied out of
/// the thread's buffers (rare: a digit, a relatch) so the outputs are
/// carried out before the core sees them.
type Carried = Vec<(SocketAddr, Vec<u8>)>;

/// Runs one call to its end. Spawned by the router for each new INVITE.
pub async fn run_call(ctx: Arc<CallContext>, incoming: IncomingCall, rx: CallEvents) {
    let span = tracing::info_span!("call", call_id = %incoming.call);
    let call_id = Uuid::new_v4();
    let log = CallEventStamper::new(call_id, incoming.call.0.to_string(), ctx.events.clone());
    let flow = (ctx.flows)(&incoming);
    let core = {
        let _entered = span.enter();
        CallCore::inbound(ctx.core_config(call_id), &incoming, flow)
    };
    CallShell::new(ctx, incoming.call.clone(), core, log, rx, None)
        .run()
        .instrument(span)
        .await
}

/// Runs one callback attempt to its end. Spawned by the router (inside the
/// call's span), which has already routed `key`'s SIP events to `rx`.
pub(crate) async fn run_callback(
    ctx: Arc<CallContext>,
    key: CallKey,
    job: DialRequest,
    rx: CallEvents,
    notices: mpsc::Receiver<DeskNotice>,
) {
    let call_id = Uuid::new_v4();
    let log = CallEventStamper::new(call_id, key.0.to_string(), ctx.events.clone());
    // The flow factory picks by call; a callback leg is "called" by the
    // number it dials (its media is only known once answered).
    let as_call = IncomingCall {
        call: key.clone(),
        caller: Party {
            user: job.number.clone(),
            display_name: None,
        },
        callee: job.number.clone(),
        offer: RemoteMedia {
            rtp_addr: job.via,
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: None,
            direction: Direction::SendRecv,
            srtp: None,
        },
        peer: Peer {
            transport: Transport::Udp,
            addr: job.via,
            conn: 0,
        },
    };
    let flow = (ctx.flows)(&as_call);
    let core = CallCore::callback(ctx.core_config(call_id), key.clone(), &job, flow);
    CallShell::new(ctx, key, core, log, rx, Some(notices))
        .run()
        .await
}

/// A lookup's answer, delivered back to the shell by the task that ran it.
type LookupAnswer = (u64, Result<Map<String, Value>, String>);

/// The call's RTP socket, shared with the pacer, on a leased port.
struct Rtp {
    socket: StdUdpSocket,
    paced: Paced,
    _lease: PortLease,
}

/// A supervisor's audio leg's channels (the core decides who hears it).
struct MonitorLeg {
    supervisor: String,
    to_supervisor: AgentSender,
    from_supervisor: mpsc::Receiver<Vec<u8>>,
    events: mpsc::UnboundedReceiver<AgentEvent>,
    /// The hub session, closed when the leg leaves.
    session: String,
    status: mpsc::UnboundedSender<MonitorStatus>,
}

/// The agent's audio leg's channels (the core knows whether it is bridged).
struct Leg {
    to_agent: AgentSender,
    from_agent: mpsc::Receiver<Vec<u8>>,
    events: mpsc::UnboundedReceiver<AgentEvent>,
}

struct CallShell {
    ctx: Arc<CallContext>,
    key: CallKey,
    core: CallCore,
    log: CallEventStamper,
    rx: CallEvents,
    sip_open: bool,
    notices: Option<mpsc::Receiver<DeskNotice>>,
    leg: Option<Leg>,
    monitor: Option<MonitorLeg>,
    rtp: Option<Rtp>,
    /// SRTP contexts while the caller's media has SDES keys.
    srtp: Option<Box<CallSrtp>>,
    /// Made at the first lookup (most calls make none; a channel costs
    /// ~2 KiB of slots).
    lookup_tx: Option<mpsc::Sender<LookupAnswer>>,
    lookup_rx: Option<mpsc::Receiver<LookupAnswer>>,
    /// The call's share of the RTP counters of `/metrics`.
    meter: RtpMeter,
}

impl CallShell {
    fn new(
        ctx: Arc<CallContext>,
        key: CallKey,
        core: CallCore,
        log: CallEventStamper,
        rx: CallEvents,
        notices: Option<mpsc::Receiver<DeskNotice>>,
    ) -> Box<Self> {
        Box::new(Self {
            ctx,
            key,
            core,
            log,
            rx,
            sip_open: true,
            notices,
            leg: None,
            monitor: None,
            rtp: None,
            srtp: None,
            lookup_tx: None,
            lookup_rx: None,
            meter: RtpMeter::default(),
        })
    }

    /// Boxed: a by-value `self` would be kept twice in the task's future
    /// (the argument and its binding), ~7 KiB per call each.
    async fn run(mut self: Box<Self>) {
        self.drain().await;
        // The clock is joined when the media starts (a receiver cloned then
        // sees only the ticks that follow).
        let mut clock: Option<MediaClock> = None;
        let mut last_frame = 0;
        let mut shutdown = self.ctx.shutdown.clone();
        let mut shutdown_open = true;
        let mut out = Vec::with_capacity(256);
        // One timer for the call's life, moved only when its deadline does:
        // re-arming a fresh one on every 20 ms wake-up costs more than the
        // media work itself (measured with 500 calls waiting for a digit).
        let far = || tokio::time::Instant::now() + Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        while !self.core.is_over() {
            let timer = self.core.poll_timeout();
            if timer != armed {
                armed = timer;
                let at = timer
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(far);
                sleep.as_mut().reset(at);
            }
            let talking = self.core.is_talking();
            if talking && clock.is_none() {
                let c = self.ctx.clock.clone();
                last_frame = c.now_index();
                clock = Some(c);
            }
            let bridged = self.core.agent_bridged();
            tokio::select! {
                ev = self.rx.recv(), if self.sip_open => match ev {
                    Some(ev) => self.input(CallInput::Sip(*ev)).await,
                    None => {
                        self.sip_open = false;
                        self.input(CallInput::SipGone).await;
                    }
                },
                frame = next_tick(&mut clock), if talking => match frame {
                    Some(frame) => {
                        self.on_received().await;
                        let late = self.on_frames(frame, &mut last_frame, &mut out).await;
                        self.meter.observe(self.core.media_stats(), late);
                    }
                    None => self.input(CallInput::ClockStopped).await,
                },
                Some((id, result)) = recv(&mut self.lookup_rx) => {
                    self.input(CallInput::LookupResult { id, result }).await;
                }
                notice = recv(&mut self.notices) => match notice {
                    Some(DeskNotice::Leg { agent, leg }) => {
                        self.leg = Some(Leg::from(leg));
                        self.input(CallInput::AgentLeg { agent }).await;
                    }
                    Some(DeskNotice::Monitor {
                        supervisor,
                        action: MonitorAction::Start { mode, leg, session, status },
                    }) => {
                        self.replace_monitor(MonitorLeg {
                            supervisor: supervisor.clone(),
                            to_supervisor: leg.to_agent,
                            from_supervisor: leg.from_agent,
                            events: leg.events,
                            session,
                            status,
                        })
                        .await;
                        self.input(CallInput::MonitorStart { supervisor, mode }).await;
                    }
                    Some(n) => self.input(CallInput::Desk(n)).await,
                    None => {
                        self.notices = None;
                        self.input(CallInput::DeskGone).await;
                    }
                },
                from = from_agent(&mut self.leg, bridged) => match from {
                    FromAgent::Frame(frame) => self.input(CallInput::AgentAudio(&frame)).await,
                    FromAgent::Event(ev) => self.input(CallInput::AgentLegEvent(ev)).await,
                },
                from = from_monitor(&mut self.monitor) => match from {
                    FromAgent::Frame(frame) => self.input(CallInput::MonitorAudio(&frame)).await,
                    FromAgent::Event(ev) => self.input(CallInput::MonitorLegEvent(ev)).await,
                },
                _ = &mut sleep, if armed.is_some() => {
                    // Fired: re-arm from the next deadline on the next turn.
                    armed = None;
                    sleep.as_mut().reset(far());
                    self.input(CallInput::Timeout).await;
                }
                changed = shutdown.changed(), if shutdown_open => {
                    if changed.is_err() {
                        shutdown_open = false;
                    } else if *shutdown.borrow() {
                        self.input(CallInput::Shutdown).await;
                    }
                }
            }
        }
        self.meter.flush();
    }

    /// Feeds one input to the core and carries out what it asks.
    async fn input(&mut self, input: CallInput<'_>) {
        self.core.handle(Instant::now(), Utc::now(), input);
        self.drain().await;
    }

    /// Reads what the caller sent since the last media tick (bounded, so a
    /// flood cannot starve the call's other work): a batch per system
    /// call, and no further call once a batch comes back short (the
    /// socket is empty).
    async fn on_received(&mut self) {
        let mut budget = MAX_RECV_PER_TICK;
        while budget > 0 {
            let asked = budget.min(recv::BATCH);
            let (read, carried) = self.receive_batch(asked);
            budget -= read.min(budget);
            self.drain().await;
            for (from, mut datagram) in carried {
                if !self.core.is_talking() {
                    return;
                }
                if self.feed(from, &mut datagram) {
                    self.drain().await;
                }
            }
            if read < asked || !self.core.is_talking() {
                return;
            }
        }
    }

    /// Reads up to `max` datagrams into the worker thread's buffers and
    /// feeds them to the core, all without awaiting (no call keeps a
    /// receive buffer of its own). Feeding stops at the first datagram that
    /// leaves the core with outputs; the ones after it are returned, copied,
    /// for after those are carried out. Returns how many were read.
    fn receive_batch(&mut self, max: usize) -> (usize, Carried) {
        RECV.with_borrow_mut(|batch| {
            let mut carried = Carried::new();
            let Some(rtp) = &self.rtp else {
                return (0, carried);
            };
            let read = match batch.recv(&rtp.socket, max) {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "RTP receive error");
                    return (0, carried);
                }
            };
            for i in 0..read {
                let Some((datagram, from)) = batch.get_mut(i) else {
                    continue;
                };
                if !carried.is_empty() || self.core.has_output() {
                    carried.push((from, datagram.to_vec()));
                } else if self.core.is_talking() {
                    self.feed(from, datagram);
                }
            }
            (read, carried)
        })
    }

    /// One datagram from the caller: SRTP-checked and decrypted in place
    /// (forgeries dropped), forwarded to the agent, fed to the core.
    /// Returns whether the core took it.
    fn feed(&mut self, from: SocketAddr, datagram: &mut [u8]) -> bool {
        let keys = self.core.caller_media().and_then(|m| m.srtp);
        let Some(n) = srtp::incoming(&mut self.srtp, keys, datagram) else {
            return false;
        };
        let datagram = &datagram[..n];
        self.forward_to_agent(datagram);
        self.core.handle(
            Instant::now(),
            Utc::now(),
            CallInput::Rtp { from, datagram },
        );
        true
    }

    /// Produces the frames up to [`BATCH`] ticks ahead of `frame` and hands
    /// them to the pacer, each for the tick it is due on. Returns the frames
    /// owed beyond one batch: late, because the actor woke late.
    async fn on_frames(&mut self, frame: u64, last: &mut u64, out: &mut Vec<u8>) -> u64 {
        let target = frame + BATCH;
        let late = target.saturating_sub(*last).saturating_sub(BATCH);
        // Catch up on frames a late wake-up missed, but never more than a
        // second's worth (50 frames, `target` included).
        let first = (*last + 1).max(target.saturating_sub(49));
        *last = target.max(*last);
        for due in first..=target {
            if !self.core.is_talking() {
                return late;
            }
            out.clear();
            let to = self.core.media_frame(Instant::now(), Utc::now(), out);
            let keys = self.core.caller_media().and_then(|m| m.srtp);
            if let Some(to) = to
                && srtp::outgoing(&mut self.srtp, keys, out)
                && let Some(rtp) = &self.rtp
            {
                rtp.paced.push(due, to, out);
            }
            self.drain().await;
        }
        late
    }

    /// The caller's voice, to the agent: the RTP payload as it came when
    /// both sides speak PCMU (the agent leg is PCMU only); PCMA is
    /// converted per sample.
    fn forward_to_agent(&mut self, datagram: &[u8]) {
        let Some(leg) = &self.leg else { return };
        if !self.core.caller_to_agent() {
            return;
        }
        let Some(offer) = self.core.caller_media() else {
            return;
        };
        let Ok(pkt) = RtpPacket::parse(datagram) else {
            return;
        };
        if pkt.payload_type != offer.payload_type || pkt.payload.is_empty() {
            return;
        }
        // Per packet: converted on the stack, not in a fresh Vec.
        let mut converted = [0u8; 2048];
        let pcmu = match offer.codec {
            Codec::Pcmu => pkt.payload,
            Codec::Pcma => {
                let n = pkt.payload.len().min(converted.len());
                for (out, &a) in converted.iter_mut().zip(&pkt.payload[..n]) {
                    *out = ulaw_encode(alaw_decode(a));
                }
                &converted[..n]
            }
        };
        if self.core.monitored() {
            return self.forward_monitored(pcmu);
        }
        leg.to_agent.send(pcmu);
    }

    /// A caller frame while a supervisor is on: the core mixes what the
    /// agent and the supervisor hear (core/monitor.rs).
    fn forward_monitored(&mut self, pcmu: &[u8]) {
        let (mut to_agent, mut to_sup) = (Vec::new(), Vec::new());
        let route = self
            .core
            .route_caller_frame(pcmu, &mut to_agent, &mut to_sup);
        if let Some(leg) = &self.leg {
            leg.to_agent
                .send(if route.agent_mixed { &to_agent } else { pcmu });
        }
        if let (true, Some(m)) = (route.supervisor, &self.monitor) {
            m.to_supervisor.send(&to_sup);
        }
    }

    /// A new supervisor leg replaces any other (its hub session is closed).
    async fn replace_monitor(&mut self, leg: MonitorLeg) {
        if let Some(old) = self.monitor.replace(leg) {
            self.close_monitor(old).await;
        }
    }

    async fn close_monitor(&self, m: MonitorLeg) {
        tracing::debug!(supervisor = %m.supervisor, "supervisor leg closed");
        if let Some(desk) = &self.ctx.desk {
            desk.hub().close(&m.session).await;
        }
    }

    /// Carries out the core's outputs, in order. Those with a result feed
    /// it back at once, so the core sees it before anything else happens.
    async fn drain(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                CallOutput::Emit(data, node) => self.log.emit(data, node.as_deref()).await,
                CallOutput::BindRtp { peer } => {
                    let bound = self.bind(peer);
                    self.core
                        .handle(Instant::now(), Utc::now(), CallInput::RtpBound(bound));
                }
                CallOutput::Sip(cmd) => self.sip(cmd).await,
                CallOutput::CreateRecorder { kind, path } => {
                    let created = match kind {
                        RecorderFor::Call => CallRecorder::create(&path),
                        RecorderFor::Voicemail => CallRecorder::create_mono(&path),
                    };
                    let result = created.map_err(|e| e.to_string());
                    let input = CallInput::RecorderCreated { kind, result };
                    self.core.handle(Instant::now(), Utc::now(), input);
                }
                CallOutput::Lookup {
                    id,
                    source,
                    params,
                    timeout,
                } => self.spawn_lookup(id, source, params, timeout),
                CallOutput::Enqueue(info) => {
                    if let Some(desk) = &self.ctx.desk {
                        let (tx, rx) = mpsc::channel(64);
                        self.notices = Some(rx);
                        desk.send(DeskInput::Enqueue(QueuedCall { info, notices: tx }))
                            .await;
                    }
                }
                CallOutput::Desk(input) => {
                    if let Some(desk) = &self.ctx.desk {
                        desk.send(input).await;
                    }
                }
                CallOutput::CloseAgentLeg { hub_session } => {
                    self.leg = None;
                    if let (Some(session), Some(desk)) = (hub_session, &self.ctx.desk) {
                        desk.hub().close(&session).await;
                    }
                }
                CallOutput::Monitor(status) => {
                    let stopped = matches!(status, MonitorStatus::Stopped(_));
                    if let Some(m) = &self.monitor {
                        let _ = m.status.send(status);
                    }
                    if stopped && let Some(m) = self.monitor.take() {
                        self.close_monitor(m).await;
                    }
                }
                CallOutput::ReleaseRtp => self.rtp = None,
                CallOutput::Done => {}
            }
        }
    }

    async fn sip(&mut self, cmd: SipCommand) {
        let sip = &self.ctx.sip;
        let key = self.key.clone();
        let result = match cmd {
            SipCommand::Ring => return sip.ring(key).await,
            SipCommand::Reject { code } => return sip.reject(key, code).await,
            SipCommand::Hangup => return sip.hangup(key).await,
            SipCommand::Answer { local_rtp } => {
                let r = sip.answer(key, local_rtp).await;
                CallInput::AnswerResult(r.map_err(|e| e.to_string()))
            }
            SipCommand::Refer { target } => {
                let r = sip.refer(key, target).await;
                CallInput::ReferResult(r.map_err(|e| e.to_string()))
            }
            SipCommand::Originate(req) => {
                let r = sip.originate(*req).await;
                CallInput::OriginateResult(r.map(|_| ()).map_err(|e| e.to_string()))
            }
        };
        self.core.handle(Instant::now(), Utc::now(), result);
    }

    /// Binds the call's RTP socket towards `peer` and shares it with the pacer.
    fn bind(&mut self, peer: SocketAddr) -> Result<SocketAddr, RtpError> {
        let (socket, lease) =
            bind_rtp(&self.ctx, peer).map_err(|e| RtpError::NoPort(e.to_string()))?;
        let local = socket
            .local_addr()
            .map_err(|e| RtpError::Socket(e.to_string()))?;
        let paced = socket
            .try_clone()
            .map_err(|e| RtpError::Socket(e.to_string()))?;
        let paced = self.ctx.clock.pace(paced);
        self.rtp = Some(Rtp {
            socket,
            paced,
            _lease: lease,
        });
        Ok(local)
    }

    fn spawn_lookup(
        &mut self,
        id: u64,
        source: LookupSource,
        params: Map<String, Value>,
        timeout: Duration,
    ) {
        let fut = self.ctx.lookups.lookup(source, params, timeout);
        let tx = match &self.lookup_tx {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = mpsc::channel(4);
                self.lookup_rx = Some(rx);
                self.lookup_tx.insert(tx).clone()
            }
        };
        tokio::spawn(
            async move {
                // The interpreter gives up on its own at `timeout`; this bound
                // only keeps a hung lookup from living forever.
                let result = tokio::time::timeout(timeout + Duration::from_secs(1), fut)
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()));
                let _ = tx.send((id, result)).await;
            }
            .in_current_span(),
        );
    }
}

impl From<AgentLeg> for Leg {
    fn from(leg: AgentLeg) -> Self {
        Self {
            to_agent: leg.to_agent,
            from_agent: leg.from_agent,
            events: leg.events,
        }
    }
}

/// The clock's next tick; pending while the call has no media.
async fn next_tick(clock: &mut Option<MediaClock>) -> Option<u64> {
    match clock {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// Receives from an optional channel; pending while there is none.
async fn recv<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The supervisor leg's next frame or event; pending while there is none.
async fn from_monitor(leg: &mut Option<MonitorLeg>) -> FromAgent {
    let Some(l) = leg else {
        return std::future::pending().await;
    };
    tokio::select! {
        Some(frame) = l.from_supervisor.recv() => FromAgent::Frame(frame),
        Some(ev) = l.events.recv() => FromAgent::Event(ev),
        else => std::future::pending().await,
    }
}

/// What the agent's leg delivers: the agent's audio, or news of the leg.
enum FromAgent {
    Frame(Vec<u8>),
    Event(AgentEvent),
}

/// The leg's next frame, or (once `bridged`) its next event; pending while
/// there is no leg. Frames are drained even before the bridge (a callback
/// leg's agent speaks while it rings), so audio never arrives late; events
/// wait for the bridge, which reports them.
async fn from_agent(leg: &mut Option<Leg>, bridged: bool) -> FromAgent {
    let Some(l) = leg else {
        return std::future::pending().await;
    };
    tokio::select! {
        Some(frame) = l.from_agent.recv() => FromAgent::Frame(frame),
        Some(ev) = l.events.recv(), if bridged => FromAgent::Event(ev),
        else => std::future::pending().await,
    }
}
