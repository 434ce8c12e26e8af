//! The call core: one call's decisions as a value, with no socket, file,
//! channel or clock of its own (the shape of `quinn-proto`'s `Connection`).
//!
//! Inputs go in with [`CallCore::handle`] (SIP events, the caller's RTP,
//! desk notices, lookup answers, the results of what the core asked for)
//! with the current instant and wall-clock time; what must be done comes
//! out of [`CallCore::poll_output`] in order (call events, SIP commands,
//! desk messages, files to create); [`CallCore::poll_timeout`] says when to
//! wake it with [`CallInput::Timeout`]. The media hot path has its own
//! method, [`CallCore::media_frame`], which writes the next frame into the
//! shell's buffer (no allocation per frame).
//!
//! The core owns the call's `MediaSession` and IVR `Interpreter` (both
//! sans-IO) and reads prompts from the in-memory `PromptCache`. Anything
//! needing a file or a socket is an output whose result comes back as an
//! input: the RTP socket ([`CallOutput::BindRtp`] → [`CallInput::RtpBound`]),
//! the recorders, SIP answer/refer/originate, lookups, the desk queue.
//!
//! Inbound calls ([`CallCore::inbound`]) and callback legs
//! ([`CallCore::callback`]) are the same core from two constructors.
//!
//! Files, each importing only this one and `state.rs` (no cycle):
//! `flow.rs` carries out the interpreter's actions (prompts, voicemail,
//! transfer, closing); `agent.rs` the desk's notices, the bridge, hold and
//! mute, position prompts and overflow; `callback.rs` the outbound leg's
//! dialling; `finish.rs` the hang-up, the recording and the wrap-up wait;
//! `pause.rs` silencing the recording (secure gathers, the agent's button);
//! `monitor.rs` a supervisor's listen / whisper / barge (who hears whom, the
//! mixing); `survey.rs` the satisfaction survey after the agent or at a
//! flow's `survey` node.
//!
//! Guarantees: events come out in the order the call lived them, exactly
//! one `hangup` and one `call_ended` per call, `call_ended` last; after
//! [`CallOutput::Done`] nothing more comes out.

mod agent;
mod callback;
mod finish;
mod flow;
mod mixing;
mod monitor;
mod pause;
mod state;
mod survey;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hotline_desk::{CallInfo, DeskInput, DeskNotice};
use hotline_ivr::{CallVars, Flow, Interpreter, LookupSource};
use hotline_media::{CallRecorder, MediaConfig, MediaEvent, MediaSession, PromptCache};
use hotline_sip::{
    CallKey, Direction, EndReason, IncomingCall, Originate, RemoteMedia, SipEvent, Transport,
};
use hotline_webphone::AgentEvent;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::{EndedBy, EventData};
use state::{AgentSide, Dial, FlowState, Party, Phase, RecordingPauses, Survey};

pub use mixing::{CallerRoute, MIX_FIFO_SAMPLES};
pub use state::Ending;

/// What a core needs to know of the gateway (read-only, per call).
#[derive(Clone)]
pub struct CoreConfig {
    /// The call record's id (names the recording and voicemail files).
    pub call_id: Uuid,
    /// This gateway's name in `call_started`.
    pub node: String,
    /// Hang up (ended by timeout, `rtp_timeout`) when no RTP arrives from
    /// the caller for this long.
    pub rtp_timeout: Duration,
    /// Ring (180) this long before the 200 OK; zero answers at once.
    pub answer_delay: Duration,
    /// How long a queued caller no agent can answer is held.
    pub queue_max_wait: Duration,
    /// `--force-hours`: what every `hours` node answers; `None` reads the
    /// clock.
    pub forced_hours: Option<hotline_ivr::ForcedHours>,
    /// The numbers the flow's `callback` nodes may book (`--dial-allow`).
    pub dial_check: Option<hotline_ivr::callback::DialCheck>,
    /// Where the call's stereo recording is created, as `<call_id>.wav`.
    pub recordings_dir: PathBuf,
    /// Where voicemail messages are created, as `<call_id>-<n>.wav`.
    pub voicemail_dir: PathBuf,
    /// An agent desk exists (else queued callers are held until max wait).
    pub has_desk: bool,
    /// The decoded prompts the flow and the queue play, by name.
    pub prompts: Arc<PromptCache>,
}

/// Why the shell has no RTP socket for the call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// No port could be bound.
    #[error("no RTP port: {0}")]
    NoPort(String),
    /// The socket has no address or cannot be shared with the pacer.
    #[error("RTP socket: {0}")]
    Socket(String),
}

/// What a recorder the core asked for is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecorderFor {
    /// The call's stereo recording.
    Call,
    /// A mono recording of the caller: a voicemail message or a survey
    /// comment.
    Voicemail,
}

/// A SIP command for the call's dialog.
#[derive(Clone, Debug, PartialEq)]
pub enum SipCommand {
    /// Send 180 Ringing (while `answer_delay` runs).
    Ring,
    /// Answer with our RTP address; the result comes back as `AnswerResult`.
    Answer {
        /// Where we receive the caller's RTP; put in the answer's SDP.
        local_rtp: SocketAddr,
    },
    /// Refuse the unanswered INVITE (we have no RTP socket for it).
    Reject {
        /// The final response: 503 when no port was free, 500 when the
        /// socket failed.
        code: u16,
    },
    /// End the dialog: BYE once answered, 480 before, a CANCEL for a
    /// callback leg still ringing.
    Hangup,
    /// Blind transfer; the result comes back as `ReferResult`.
    Refer {
        /// The `Refer-To` URI, from the flow's transfer node.
        target: String,
    },
    /// Dial a callback leg; the result comes back as `OriginateResult`.
    Originate(Box<Originate>),
}

/// Something the core hears of.
pub enum CallInput<'a> {
    /// The shell bound (or failed to bind) the call's RTP socket.
    RtpBound(Result<SocketAddr, RtpError>),
    /// The 200 OK of [`SipCommand::Answer`] went out, or why the call could
    /// no longer be answered (typically a CANCEL won the race).
    AnswerResult(Result<(), String>),
    /// The REFER of [`SipCommand::Refer`] went out (its outcome follows as
    /// `Transfer*` SIP events), or why it could not be sent.
    ReferResult(Result<(), String>),
    /// The INVITE of [`SipCommand::Originate`] went out (ringing and answer
    /// follow as SIP events), or why the request was unusable.
    OriginateResult(Result<(), String>),
    /// A recorder asked for with [`CallOutput::CreateRecorder`].
    RecorderCreated {
        /// The `kind` it was asked for with.
        kind: RecorderFor,
        /// The open WAV writer, or why the file could not be created.
        result: Result<CallRecorder, String>,
    },
    /// A SIP event of this call's dialog (the router routes by Call-ID).
    Sip(SipEvent),
    /// The SIP event channel closed.
    SipGone,
    /// One datagram from the RTP socket.
    Rtp {
        /// The datagram's source address.
        from: SocketAddr,
        /// The whole RTP packet, header included.
        datagram: &'a [u8],
    },
    /// A lookup's answer.
    LookupResult {
        /// The `id` of the [`CallOutput::Lookup`] it answers.
        id: u64,
        /// The fields found, or a short error text recorded with the call.
        result: Result<Map<String, Value>, String>,
    },
    /// A desk notice (an agent's audio leg comes as [`CallInput::AgentLeg`]:
    /// its channels stay in the shell).
    Desk(DeskNotice),
    /// The desk's notice channel closed.
    DeskGone,
    /// The agent's audio leg arrived (the shell keeps its channels).
    AgentLeg {
        /// The id of the agent whose page connected.
        agent: String,
    },
    /// One PCMU frame of the agent's voice.
    AgentAudio(&'a [u8]),
    /// News of the agent's audio leg.
    AgentLegEvent(AgentEvent),
    /// A supervisor's audio leg arrived (the shell keeps its channels):
    /// answered with [`CallOutput::Monitor`].
    MonitorStart {
        /// The supervisor's (or admin's) login.
        supervisor: String,
        /// Listen, whisper or barge.
        mode: hotline_webphone::monitor::MonitorMode,
    },
    /// One PCMU frame of the supervisor's voice.
    MonitorAudio(&'a [u8]),
    /// News of the supervisor's audio leg.
    MonitorLegEvent(AgentEvent),
    /// [`CallCore::poll_timeout`]'s instant passed.
    Timeout,
    /// The media clock stopped.
    ClockStopped,
    /// The gateway ends every call now.
    Shutdown,
}

/// Something the shell must do, in order.
pub enum CallOutput {
    /// A call event, stamped by the shell; `node` is the IVR node.
    Emit(EventData, Option<String>),
    /// Bind an RTP socket on the address that routes to `peer`; answer
    /// with [`CallInput::RtpBound`].
    BindRtp {
        /// Where the INVITE came from, or the trunk a callback leg dials
        /// through.
        peer: SocketAddr,
    },
    /// Send a command on the call's dialog; `Answer`, `Refer` and
    /// `Originate` answer with their `*Result` input.
    Sip(SipCommand),
    /// Create a recorder at `path`; answer with [`CallInput::RecorderCreated`].
    CreateRecorder {
        /// Echoed in the answer.
        kind: RecorderFor,
        /// The WAV to create: `<recordings>/<call id>.wav`, or
        /// `<voicemail>/<call id>-<n>.wav` for the call's nth message.
        path: PathBuf,
    },
    /// Run a lookup; answer with [`CallInput::LookupResult`] (a hung one
    /// may be answered with an error a second after `timeout`).
    Lookup {
        /// Chosen by the interpreter; echoed in the answer.
        id: u64,
        /// What to ask: subscriber by caller id, order by number, webhook.
        source: LookupSource,
        /// The flow node's params, rendered for this call.
        params: Map<String, Value>,
        /// How long the flow waits before it takes the node's failure branch.
        timeout: Duration,
    },
    /// Join the desk's queue with this call (the shell opens the notice
    /// channel). Only when the config has a desk.
    Enqueue(CallInfo),
    /// Tell the desk (only when the config has a desk).
    Desk(DeskInput),
    /// Drop the agent leg's channels; close its session in the media hub
    /// when `hub_session` says which.
    CloseAgentLeg {
        /// `<agent>/<desk call id>`; `None` when there is no desk, or the
        /// leg disconnected or arrived after the call ended.
        hub_session: Option<String>,
    },
    /// What became of the supervisor's leg, for their page; after
    /// `Stopped` the shell drops the leg and closes its hub session.
    Monitor(hotline_desk::MonitorStatus),
    /// The media is over: drop the RTP socket, the pacer and the port.
    ReleaseRtp,
    /// The call is over; nothing more comes out.
    Done,
}

impl std::fmt::Debug for CallOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallOutput::Emit(data, node) => f.debug_tuple("Emit").field(data).field(node).finish(),
            CallOutput::BindRtp { peer } => write!(f, "BindRtp({peer})"),
            CallOutput::Sip(cmd) => f.debug_tuple("Sip").field(cmd).finish(),
            CallOutput::CreateRecorder { kind, path } => {
                write!(f, "CreateRecorder({kind:?}, {})", path.display())
            }
            CallOutput::Lookup { id, source, .. } => write!(f, "Lookup({id}, {source:?})"),
            CallOutput::Enqueue(info) => write!(f, "Enqueue({})", info.queue),
            CallOutput::Desk(input) => write!(f, "Desk({})", desk_input_name(input)),
            CallOutput::CloseAgentLeg { hub_session } => {
                write!(f, "CloseAgentLeg({hub_session:?})")
            }
            CallOutput::Monitor(status) => f.debug_tuple("Monitor").field(status).finish(),
            CallOutput::ReleaseRtp => f.write_str("ReleaseRtp"),
            CallOutput::Done => f.write_str("Done"),
        }
    }
}

/// A desk message's name, for logs and test failures.
pub fn desk_input_name(input: &DeskInput) -> &'static str {
    match input {
        DeskInput::Enqueue(_) => "Enqueue",
        DeskInput::CallEnded { .. } => "CallEnded",
        DeskInput::LegConnected { .. } => "LegConnected",
        DeskInput::CallbackEnded { answered: true, .. } => "CallbackEnded(answered)",
        DeskInput::CallbackEnded { .. } => "CallbackEnded(not answered)",
        DeskInput::CallbackAnswered { .. } => "CallbackAnswered",
        _ => "other",
    }
}

/// One call's decisions. See the module documentation.
pub struct CallCore {
    cfg: CoreConfig,
    call: CallKey,
    party: Party,
    phase: Phase,
    interp: Interpreter,
    media: Option<MediaSession>,
    local_rtp: Option<SocketAddr>,
    ending: Option<Ending>,
    flow: FlowState,
    agent: AgentSide,
    dial: Option<Dial>,
    pauses: RecordingPauses,
    survey: Option<Survey>,
    /// A supervisor on the agent's call (monitor.rs).
    monitor: Option<mixing::Monitor>,
    out: VecDeque<CallOutput>,
}

/// How long a call that failed before answer waits for its dialog to end.
const WAIT_ENDED: Duration = Duration::from_secs(40);

impl CallCore {
    fn new(cfg: CoreConfig, call: CallKey, party: Party, flow: Arc<Flow>) -> Self {
        let interp = Interpreter::new(
            flow,
            CallVars {
                caller: party.caller.clone(),
                callee: party.callee.clone(),
                language: None,
                extra: Vec::new(),
                forced_hours: cfg.forced_hours,
                dial_check: cfg.dial_check.clone(),
            },
        );
        Self {
            cfg,
            call,
            party,
            phase: Phase::BindingRtp,
            interp,
            media: None,
            local_rtp: None,
            ending: None,
            flow: FlowState::default(),
            agent: AgentSide::default(),
            dial: None,
            pauses: RecordingPauses::default(),
            survey: None,
            monitor: None,
            out: VecDeque::new(),
        }
    }

    /// An inbound call, running `flow`. Asks for its RTP socket.
    pub fn inbound(cfg: CoreConfig, incoming: &IncomingCall, flow: Arc<Flow>) -> Self {
        let party = Party {
            caller: incoming.caller.user.clone(),
            caller_name: incoming.caller.display_name.clone(),
            callee: incoming.callee.clone(),
            transport: match incoming.peer.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
                Transport::Tls => "tls",
            },
            peer: incoming.peer.addr,
            offer: Some(incoming.offer),
        };
        let mut core = Self::new(cfg, incoming.call.clone(), party, flow);
        core.emit(
            EventData::CallStarted {
                caller: core.party.caller.clone(),
                caller_name: Some(core.party.caller_name.clone()),
                callee: core.party.callee.clone(),
                transport: core.party.transport.into(),
                source: core.party.peer.to_string(),
                node: Some(core.cfg.node.clone()),
                direction: None,
                callback_of: None,
                attempt: None,
                queue: None,
                srtp: core.party.offer.is_some_and(|o| o.srtp.is_some()),
            },
            None,
        );
        tracing::info!(caller = %core.party.caller, callee = %core.party.callee, "incoming call");
        core.push(CallOutput::BindRtp {
            peer: core.party.peer,
        });
        core
    }

    /// Queues an output.
    fn push(&mut self, out: CallOutput) {
        self.out.push_back(out);
    }

    /// Queues a call event at `node`.
    fn emit(&mut self, data: EventData, node: Option<&str>) {
        self.out
            .push_back(CallOutput::Emit(data, node.map(str::to_owned)));
    }

    /// Queues a call event at the flow's current node.
    fn emit_here(&mut self, data: EventData) {
        let node = self.interp.current_node().map(str::to_owned);
        self.out.push_back(CallOutput::Emit(data, node));
    }

    /// Queues a message for the desk, when there is one.
    fn tell_desk(&mut self, input: DeskInput) {
        if self.cfg.has_desk {
            self.push(CallOutput::Desk(input));
        }
    }

    fn sip(&mut self, cmd: SipCommand) {
        self.push(CallOutput::Sip(cmd));
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.out.pop_front()
    }

    /// True while outputs wait to be polled.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// When to call [`CallInput::Timeout`] next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Ringing { until } => Some(*until),
            Phase::WaitingEnd { deadline, .. } => Some(*deadline),
            Phase::Talking => self.flow_deadline(),
            Phase::WrapUp { deadline, .. } => Some(*deadline),
            Phase::BindingRtp | Phase::Answering | Phase::Dialing | Phase::Over => None,
        }
    }

    /// True while the call has media: the shell reads its socket and
    /// produces frames.
    pub fn is_talking(&self) -> bool {
        matches!(self.phase, Phase::Talking)
    }

    /// True once the call is over ([`CallOutput::Done`] is queued).
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Over)
    }

    /// An agent's audio leg is bridged: the shell listens to its events.
    pub fn agent_bridged(&self) -> bool {
        self.agent.bridge.is_some()
    }

    /// The caller's voice goes to the agent now (bridged, not on hold).
    pub fn caller_to_agent(&self) -> bool {
        self.agent.bridge.as_ref().is_some_and(|b| !b.held)
    }

    /// The caller's media session's counters (for `/metrics`), while it has one.
    pub fn media_stats(&self) -> Option<hotline_media::MediaStats> {
        self.media.as_ref().map(MediaSession::stats)
    }

    /// The caller's negotiated media (a callback's once answered).
    pub fn caller_media(&self) -> Option<&RemoteMedia> {
        self.party.offer.as_ref()
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, wall: DateTime<Utc>, input: CallInput<'_>) {
        match input {
            CallInput::RtpBound(r) => self.on_rtp_bound(now, r),
            CallInput::AnswerResult(r) => self.on_answer_result(now, r),
            CallInput::ReferResult(r) => self.on_refer_result(now, wall, r),
            CallInput::OriginateResult(r) => self.on_originate_result(now, r),
            CallInput::RecorderCreated { kind, result } => {
                self.on_recorder(now, wall, kind, result)
            }
            CallInput::Sip(ev) => self.on_sip(now, wall, ev),
            CallInput::SipGone => self.on_sip_gone(now, wall),
            CallInput::Rtp { from, datagram } => {
                if !self.is_talking() {
                    return;
                }
                let Some(media) = self.media.as_mut() else {
                    return;
                };
                for ev in media.on_rtp(now, from, datagram) {
                    self.on_media(now, wall, ev);
                    if self.ending.is_some() {
                        break;
                    }
                }
            }
            CallInput::LookupResult { id, result } => self.on_lookup(now, wall, id, result),
            CallInput::Desk(notice) => self.on_notice(now, wall, notice),
            CallInput::DeskGone => self.on_desk_gone(now, wall),
            CallInput::AgentLeg { agent } => self.on_agent_leg(now, agent),
            CallInput::AgentAudio(frame) => self.on_agent_audio(frame),
            CallInput::AgentLegEvent(ev) => self.on_leg_event(ev),
            CallInput::MonitorStart { supervisor, mode } => self.on_monitor_start(supervisor, mode),
            CallInput::MonitorAudio(frame) => self.on_monitor_audio(frame),
            CallInput::MonitorLegEvent(ev) => self.on_monitor_leg_event(ev),
            CallInput::Timeout => self.on_timeout(now, wall),
            CallInput::ClockStopped => {
                if self.is_talking() {
                    self.end(Ending::new(EndedBy::Gateway, "clock_stopped"));
                }
            }
            CallInput::Shutdown => self.on_shutdown(),
        }
        self.settle(now, wall);
    }

    /// The media hot path: the next 20 ms frame into `out`; `Some(to)` when
    /// it must be sent. Media events it raises are handled at once.
    pub fn media_frame(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        if !self.is_talking() {
            return None;
        }
        let media = self.media.as_mut()?;
        let tick = media.on_tick(now, out);
        for ev in tick.events {
            self.on_media(now, wall, ev);
            if self.ending.is_some() {
                break;
            }
        }
        self.settle(now, wall);
        tick.send_to
    }

    /// Records that the talk is over (the first ending wins); [`Self::settle`]
    /// closes the call once the current input is handled.
    fn end(&mut self, ending: Ending) {
        if self.ending.is_none() {
            self.ending = Some(ending);
        }
    }

    fn on_rtp_bound(&mut self, now: Instant, r: Result<SocketAddr, RtpError>) {
        if !matches!(self.phase, Phase::BindingRtp) {
            return;
        }
        if self.dial.is_some() {
            return self.dial_from(now, r);
        }
        match r {
            Ok(local) => {
                self.local_rtp = Some(local);
                if self.cfg.answer_delay.is_zero() {
                    self.answer();
                } else {
                    self.sip(SipCommand::Ring);
                    self.phase = Phase::Ringing {
                        until: now + self.cfg.answer_delay,
                    };
                }
            }
            Err(e) => {
                let (code, cause) = match &e {
                    RtpError::NoPort(_) => (503, "no_rtp_port"),
                    RtpError::Socket(_) => (500, "rtp_socket"),
                };
                tracing::error!(error = %e, "no RTP socket for the call");
                self.sip(SipCommand::Reject { code });
                self.wait_ended(now, Ending::new(EndedBy::Gateway, cause), false);
            }
        }
    }

    fn answer(&mut self) {
        let Some(local_rtp) = self.local_rtp else {
            return;
        };
        self.phase = Phase::Answering;
        self.sip(SipCommand::Answer { local_rtp });
    }

    fn on_answer_result(&mut self, now: Instant, r: Result<(), String>) {
        if !matches!(self.phase, Phase::Answering) {
            return;
        }
        match r {
            Ok(()) => {
                let rtp = self.local_rtp.map(|a| a.to_string()).unwrap_or_default();
                self.emit(EventData::Answered { rtp }, None);
                self.open_media(now);
                // Until the ACK confirms the call, neither play nor time out
                // on RTP: a caller that never ACKs is ended by timer H, not
                // by silence.
                if let Some(media) = self.media.as_mut() {
                    media.set_direction(false, false);
                }
                self.phase = Phase::Talking;
            }
            Err(e) => {
                // Typically a CANCEL that overtook the answer: the dialog says how it ended.
                tracing::info!(error = %e, "call could not be answered");
                self.wait_ended(now, Ending::new(EndedBy::Gateway, "answer_failed"), true);
            }
        }
    }

    /// Waits (bounded) for the dialog of a call that failed before answer.
    fn wait_ended(&mut self, now: Instant, fallback: Ending, use_reason: bool) {
        self.phase = Phase::WaitingEnd {
            deadline: now + WAIT_ENDED,
            fallback,
            use_reason,
        };
    }

    /// The call's media session towards its caller, recorded to
    /// `<recordings>/<call id>.wav`.
    fn open_media(&mut self, now: Instant) {
        let Some(remote) = self.party.offer else {
            return;
        };
        self.media = Some(MediaSession::new(
            MediaConfig {
                codec: match remote.codec {
                    hotline_sip::Codec::Pcmu => hotline_media::Codec::Pcmu,
                    hotline_sip::Codec::Pcma => hotline_media::Codec::Pcma,
                },
                payload_type: remote.payload_type,
                dtmf_payload_type: remote.dtmf_payload_type,
                remote: remote.rtp_addr,
                inactivity_timeout: self.cfg.rtp_timeout,
            },
            now,
        ));
        let path = self
            .cfg
            .recordings_dir
            .join(format!("{}.wav", self.cfg.call_id));
        self.push(CallOutput::CreateRecorder {
            kind: RecorderFor::Call,
            path,
        });
    }

    fn on_recorder(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        kind: RecorderFor,
        result: Result<CallRecorder, String>,
    ) {
        match kind {
            RecorderFor::Call => match (result, self.media.as_mut()) {
                (Ok(rec), Some(media)) => media.set_recorder(rec),
                (Ok(_), None) => {}
                (Err(e), _) => tracing::error!(error = %e, "cannot record call"),
            },
            RecorderFor::Voicemail if self.survey_wants_recorder() => {
                self.on_comment_recorder(now, wall, result)
            }
            RecorderFor::Voicemail => self.on_voicemail_recorder(now, wall, result),
        }
    }

    fn on_sip(&mut self, now: Instant, wall: DateTime<Utc>, ev: SipEvent) {
        match &self.phase {
            Phase::Ringing { .. } => {
                if let SipEvent::Ended { reason, .. } = ev {
                    self.close(now, ending_from(reason));
                }
                return;
            }
            Phase::WaitingEnd {
                fallback,
                use_reason,
                ..
            } => {
                if let SipEvent::Ended { reason, .. } = ev {
                    let ending = if *use_reason {
                        ending_from(reason)
                    } else {
                        fallback.clone()
                    };
                    self.close(now, ending);
                }
                return;
            }
            Phase::Dialing | Phase::BindingRtp if self.dial.is_some() => {
                return self.on_dial_sip(now, ev);
            }
            Phase::Talking => {}
            _ => return,
        }
        match ev {
            SipEvent::Confirmed { .. } => {
                if !self.flow.started {
                    self.flow.started = true;
                    if let (Some(media), Some(offer)) = (self.media.as_mut(), self.party.offer) {
                        apply_direction(media, offer.direction);
                    }
                    self.flow_started(now, wall);
                }
            }
            SipEvent::Digit {
                digit, duration_ms, ..
            } => self.on_digit(now, wall, digit, duration_ms, "info"),
            SipEvent::MediaChanged { media: remote, .. } => {
                if let Some(media) = self.media.as_mut() {
                    media.set_remote(remote.rtp_addr);
                    apply_direction(media, remote.direction);
                }
                self.emit(
                    EventData::MediaChanged {
                        direction: direction_name(remote.direction).into(),
                        rtp: remote.rtp_addr.to_string(),
                    },
                    None,
                );
            }
            SipEvent::TransferAccepted { .. } => self.on_transfer(None),
            SipEvent::TransferProgress { code, .. } => self.on_transfer(Some(code)),
            SipEvent::TransferFailed { code, .. } => self.on_transfer_failed(code),
            SipEvent::Ended { reason, .. } => self.end(ending_from(reason)),
            // Not for an answered call: the router spawns cores for new
            // calls, and a callback leg's dialling is over.
            SipEvent::Incoming(_)
            | SipEvent::Ringing { .. }
            | SipEvent::OutboundAnswered { .. }
            | SipEvent::OutboundFailed { .. } => {}
        }
    }

    fn on_sip_gone(&mut self, now: Instant, _wall: DateTime<Utc>) {
        match &self.phase {
            Phase::Ringing { .. } => self.close(now, Ending::new(EndedBy::Gateway, "sip_gone")),
            Phase::WaitingEnd { fallback, .. } => {
                let ending = fallback.clone();
                self.close(now, ending);
            }
            Phase::Dialing | Phase::BindingRtp if self.dial.is_some() => self.dial_sip_gone(now),
            Phase::Talking => self.end(Ending::new(EndedBy::Gateway, "sip_gone")),
            _ => {}
        }
    }

    fn on_media(&mut self, now: Instant, wall: DateTime<Utc>, ev: MediaEvent) {
        match ev {
            // The duration is only known when the event ends; the digit is
            // reported on its first packet (or, in-band, at detection), so
            // none is recorded.
            MediaEvent::Digit(d) => self.on_digit(now, wall, d.digit, None, d.transport.as_str()),
            MediaEvent::PromptFinished { interrupted } => {
                self.prompt_finished(now, wall, interrupted)
            }
            MediaEvent::InactivityTimeout => {
                tracing::warn!("no RTP from the caller; hanging up");
                self.sip(SipCommand::Hangup);
                self.end(Ending::new(EndedBy::Timeout, "rtp_timeout"));
            }
        }
    }

    fn on_timeout(&mut self, now: Instant, wall: DateTime<Utc>) {
        match &self.phase {
            Phase::Ringing { until } if *until <= now => self.answer(),
            Phase::WaitingEnd {
                deadline, fallback, ..
            } if *deadline <= now => {
                let ending = fallback.clone();
                self.close(now, ending);
            }
            Phase::Talking => self.on_flow_timer(now, wall),
            Phase::WrapUp { deadline, .. } if *deadline <= now => self.wrap_up_done(now, None),
            _ => {}
        }
    }

    fn on_shutdown(&mut self) {
        match self.phase {
            Phase::Talking => {
                self.sip(SipCommand::Hangup);
                self.end(Ending::new(EndedBy::Gateway, "shutdown"));
            }
            Phase::Dialing => self.sip(SipCommand::Hangup),
            _ => {}
        }
    }

    /// After each input: a talk that ended is closed.
    fn settle(&mut self, now: Instant, wall: DateTime<Utc>) {
        if let Some(ending) = self.ending.take() {
            if self.is_talking() {
                let ending = self.survey_cut_short(ending);
                self.end_talk(now, wall);
                self.close(now, ending);
            } else {
                tracing::error!(?ending, phase = ?self.phase, "an ending outside the talk; ignored");
            }
        }
        #[cfg(debug_assertions)]
        if let Err(e) = self.check_invariants() {
            tracing::error!(error = %e, "call core invariant broken");
        }
    }

    /// What must hold between inputs. The tests check it after every
    /// input; debug builds log a breach (never panic: a call is live).
    pub fn check_invariants(&self) -> Result<(), String> {
        let talking = self.is_talking();
        if self.media.is_some() != talking {
            return Err(format!(
                "media {} in {:?}",
                self.media.is_some(),
                self.phase
            ));
        }
        if self.survey.is_some() && !talking {
            return Err(format!("a survey in {:?}", self.phase));
        }
        if matches!(
            self.survey.as_ref().map(|s| &s.step),
            Some(state::SurveyStep::Commenting { .. })
        ) && !self.media.as_ref().is_some_and(|m| m.is_capturing())
        {
            return Err("a survey comment without a capture".into());
        }
        if self.agent.bridge.is_some() && !talking {
            return Err(format!("a bridge in {:?}", self.phase));
        }
        if self.monitor.is_some() && self.agent.bridge.is_none() {
            return Err("a supervisor on a call with no agent bridged".into());
        }
        if self.ending.is_some() {
            return Err("an ending left unsettled".into());
        }
        if matches!(self.flow.voicemail, state::Voicemail::Recording { .. })
            && !self.media.as_ref().is_some_and(|m| m.is_capturing())
        {
            return Err("a voicemail recording without a capture".into());
        }
        if self.pauses.any() != self.media.as_ref().is_some_and(|m| m.is_recording_paused()) {
            return Err(format!(
                "recording pauses {:?} but the media's pause is not the same",
                self.pauses
            ));
        }
        if self.dial.is_some() && !matches!(self.phase, Phase::BindingRtp | Phase::Dialing) {
            return Err(format!("dialling in {:?}", self.phase));
        }
        if matches!(self.phase, Phase::WrapUp { .. })
            && (self.agent.answered_by.is_none() || !self.agent.attached)
        {
            return Err("a wrap-up wait with no agent or desk".into());
        }
        Ok(())
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
