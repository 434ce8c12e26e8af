//! The desk's message protocol: everything that reaches the desk
//! ([`DeskInput`]), what it tells a call ([`DeskNotice`]), the outbound leg
//! it asks for ([`DialRequest`], over a [`Dialer`] the binary wires to the
//! call router), and the callback book's two directions ([`BookedCallback`]
//! in, [`CallbackProgress`] out).
//!
//! These are the only types the call actor, the agent socket route and the
//! binary share with the desk; the desk itself never names a call actor or
//! the router.

use std::net::SocketAddr;
use std::time::Duration;

use hotline_routing::{AgentConfig, Overflow, QueueConfig};
use hotline_webphone::AgentLeg;
use hotline_webphone::monitor::MonitorMode;
use hotline_webphone::protocol::{CallbackSummary, ClientMsg, QueueSummary, ServerMsg};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// What an agent's softphone socket reports (see `/agent/ws`).
#[derive(Debug)]
pub enum AgentSocketEvent {
    /// A socket opened; the desk speaks to the page through `tx`.
    Connected {
        /// The agent's id (their login).
        agent: String,
        /// Tells this socket apart from the agent's other (older or newer) sockets.
        conn: u64,
        /// Where the desk sends the page its messages.
        tx: mpsc::Sender<ServerMsg>,
    },
    /// A message from the agent's page.
    Message {
        /// The agent whose page sent it.
        agent: String,
        /// The socket it came on.
        conn: u64,
        /// What the page asked for.
        msg: ClientMsg,
    },
    /// A socket closed.
    Disconnected {
        /// The agent whose socket closed.
        agent: String,
        /// The socket that closed.
        conn: u64,
        /// Lost without a goodbye (a network blip, a half-open socket): the
        /// agent's call is held for [`crate::RECONNECT_GRACE`] in case the
        /// page comes back. Otherwise (logout, tab closed) the agent is gone now.
        dropped: bool,
    },
}

/// A call the flow hands to a queue: what the desk keeps of it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CallInfo {
    /// The gateway's id of the call.
    pub call: String,
    /// The queue the flow's `enqueue` node named.
    pub queue: String,
    /// Higher is served first, from the flow's `enqueue` node.
    pub priority: i64,
    /// The flow's issue type, which skills-based queues route on; `None` when the
    /// flow set none.
    pub issue_type: Option<String>,
    /// Shown to the agent: the caller's number.
    pub caller: String,
    /// `caller` is a number a callback can dial (`+` and 5–15 digits); a
    /// SIP user name is not, and a callback overflow becomes voicemail.
    pub dialable: bool,
    /// Where the call came from (the trunk): a callback dials back through it
    /// unless `--callback-via` says otherwise.
    pub reply_via: SocketAddr,
    /// The IVR path, for the agent's offer card.
    pub path: Vec<String>,
    /// What the lookups found and the flow's enqueue data.
    pub data: Value,
}

/// A call the flow hands to a queue, with the channel its notices go to.
pub struct QueuedCall {
    /// What the desk keeps of the call.
    pub info: CallInfo,
    /// Where the desk's [`DeskNotice`]s for this call go.
    pub notices: mpsc::Sender<DeskNotice>,
}

/// What the desk tells a call actor.
pub enum DeskNotice {
    /// No queue of that name: the actor falls back to holding.
    UnknownQueue,
    /// The caller's place (1 = next); `estimated_wait` only when the queue
    /// has handle times to base it on.
    Position {
        /// 1 is next.
        position: usize,
        /// `None` until the queue has finished a call.
        estimated_wait: Option<Duration>,
    },
    /// The call rings `agent`.
    Offered {
        /// The agent being rung.
        agent: String,
    },
    /// An offer to `agent` ended: accepted, declined, timed out or withdrawn.
    OfferEnded {
        /// The agent who was offered the call.
        agent: String,
        /// `accepted`, `declined`, `timeout` or `withdrawn`, for the `offer_outcome`
        /// event.
        outcome: &'static str,
    },
    /// The agent accepted; their audio leg follows.
    Accepted {
        /// The agent who accepted.
        agent: String,
    },
    /// The agent's audio leg (made by the desk's task, never by its core).
    Leg {
        /// The agent on the call.
        agent: String,
        /// The WebRTC audio to bridge with the caller's RTP.
        leg: AgentLeg,
    },
    /// The agent hung up: the actor ends the caller's side, or keeps the
    /// caller for the satisfaction survey.
    AgentHungUp {
        /// The agent who hung up.
        agent: String,
        /// The call's queue, when its `survey` setting is on: the caller
        /// hears the survey before the call ends.
        survey: Option<String>,
    },
    /// The agent's page went away mid-call: back in the queue, or released.
    AgentLost {
        /// The agent who was lost.
        agent: String,
        /// `true` when the call waits in its queue again (hold music resumes).
        requeued: bool,
    },
    /// The call waited its queue's max wait: the actor carries out `target`.
    Overflow {
        /// Voicemail, callback, hang-up, or another queue (then the call stays queued).
        target: Overflow,
    },
    /// The agent put the caller on hold (`on`) or took them off it.
    Hold {
        /// `true` when the hold starts.
        on: bool,
    },
    /// The agent muted (`on`) or unmuted their microphone.
    Mute {
        /// `true` when muted.
        on: bool,
    },
    /// The agent paused (`on`) or resumed the call's recording.
    RecordingPause {
        /// The agent who pressed the button.
        agent: String,
        /// `true` to silence the recording, `false` to resume it.
        on: bool,
    },
    /// The agent pressed a key on their page's keypad: the actor sends it to the
    /// caller's side as DTMF.
    Dtmf {
        /// `0`–`9`, `*`, `#` or `A`–`D`.
        digit: char,
    },
    /// A supervisor joins, switches mode on, or leaves the call (relayed
    /// by the desk's task from `/admin/monitor/ws`, never by its core).
    Monitor {
        /// The supervisor's (or admin's) login.
        supervisor: String,
        /// What they asked for.
        action: MonitorAction,
    },
    /// The agent left wrap-up for this call (submitted, or the timer ran out).
    WrapUpDone {
        /// The agent who wrapped up.
        agent: String,
        /// The wrap-up form's code; `None` when the timer ran out.
        disposition: Option<String>,
        /// The agent's notes; may be empty.
        notes: String,
        /// Whole seconds from the end of the talk to the form or the timer.
        seconds: u64,
    },
}

impl std::fmt::Debug for DeskNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeskNotice::UnknownQueue => f.write_str("UnknownQueue"),
            DeskNotice::Position {
                position,
                estimated_wait,
            } => write!(f, "Position({position}, {estimated_wait:?})"),
            DeskNotice::Offered { agent } => write!(f, "Offered({agent})"),
            DeskNotice::OfferEnded { agent, outcome } => {
                write!(f, "OfferEnded({agent}, {outcome})")
            }
            DeskNotice::Accepted { agent } => write!(f, "Accepted({agent})"),
            DeskNotice::Leg { agent, .. } => write!(f, "Leg({agent})"),
            DeskNotice::AgentHungUp {
                agent,
                survey: None,
            } => write!(f, "AgentHungUp({agent})"),
            DeskNotice::AgentHungUp {
                agent,
                survey: Some(queue),
            } => write!(f, "AgentHungUp({agent}, survey of {queue})"),
            DeskNotice::AgentLost { agent, requeued } => {
                write!(f, "AgentLost({agent}, {requeued})")
            }
            DeskNotice::Overflow { target } => write!(f, "Overflow({target:?})"),
            DeskNotice::Hold { on } => write!(f, "Hold({on})"),
            DeskNotice::Mute { on } => write!(f, "Mute({on})"),
            DeskNotice::RecordingPause { agent, on } => {
                write!(f, "RecordingPause({agent}, {on})")
            }
            DeskNotice::Dtmf { digit } => write!(f, "Dtmf({digit})"),
            DeskNotice::Monitor { supervisor, action } => {
                write!(f, "Monitor({supervisor}, {action:?})")
            }
            DeskNotice::WrapUpDone {
                agent,
                disposition,
                notes,
                seconds,
            } => write!(
                f,
                "WrapUpDone({agent}, {disposition:?}, {notes:?}, {seconds})"
            ),
        }
    }
}

/// A supervisor's request about a call they monitor.
pub enum MonitorAction {
    /// Join in `mode` with this audio leg (the hub session `session`);
    /// `status` hears what became of it, ending with one
    /// [`MonitorStatus::Stopped`] (`not_on_call` when the call has no agent
    /// bridged or is unknown).
    Start {
        /// Listen, whisper or barge.
        mode: MonitorMode,
        /// The supervisor's WebRTC audio, on the agents' media hub.
        leg: AgentLeg,
        /// The hub session of `leg`, closed when the leg leaves the call.
        session: String,
        /// Where the call reports the leg's progress (the socket tells the page).
        status: mpsc::UnboundedSender<MonitorStatus>,
    },
    /// Switch mode on the same leg.
    Mode(MonitorMode),
    /// Leave the call.
    Stop,
}

/// What became of a supervisor's leg, reported by the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorStatus {
    /// The call took the leg: audio flows in this mode.
    Started(MonitorMode),
    /// A mode switch took effect.
    Mode(MonitorMode),
    /// The leg left the call (the last status): `supervisor`, `call_ended`,
    /// `agent_lost`, `media_lost`, `replaced` or `not_on_call`.
    Stopped(String),
}

impl std::fmt::Debug for MonitorAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorAction::Start { mode, session, .. } => {
                write!(f, "Start({}, {session})", mode.as_str())
            }
            MonitorAction::Mode(mode) => write!(f, "Mode({})", mode.as_str()),
            MonitorAction::Stop => f.write_str("Stop"),
        }
    }
}

/// One callback attempt: the outbound leg the desk asks for when an agent
/// accepted a callback entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialRequest {
    /// The desk's id of the entry: the original call's id.
    pub entry: String,
    /// The number to call.
    pub number: String,
    /// Where to send the INVITE (`host:port` of the trunk).
    pub via: SocketAddr,
    /// The agent who accepted it.
    pub agent: String,
    /// The queue the callback entry waits in.
    pub queue: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// A [`DialRequest`] on its way, with the channel the new leg hears the
/// desk on.
#[derive(Debug)]
pub struct DialOrder {
    /// What to dial.
    pub request: DialRequest,
    /// Where the desk's notices for the new leg arrive.
    pub notices: mpsc::Receiver<DeskNotice>,
}

/// Where the desk sends [`DialOrder`]s: the binary makes one from the call
/// router's end of the channel ([`Dialer::new`]) and hands it to the desk
/// with [`DeskInput::SetDialer`].
#[derive(Clone, Debug)]
pub struct Dialer {
    tx: mpsc::Sender<DialOrder>,
    /// The trunk callbacks go through; `None`: back where the call came from.
    pub via: Option<SocketAddr>,
}

impl Dialer {
    /// A dialer that sends orders to `tx`; `via` is the `--callback-via` trunk,
    /// if any.
    pub fn new(tx: mpsc::Sender<DialOrder>, via: Option<SocketAddr>) -> Self {
        Self { tx, via }
    }

    /// Starts a callback leg; false when the router is gone or swamped.
    pub fn dial(&self, order: DialOrder) -> bool {
        self.tx.try_send(order).is_ok()
    }
}

/// A booked callback the desk should hold: due, not finished, not cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookedCallback {
    /// The desk's entry id: the id of the call that booked it (a queue
    /// overflow's entry has the same id, so it is never held twice).
    pub entry: String,
    /// Dialable (`+` and 5–15 digits): the book stores nothing else.
    pub number: String,
    /// `None`: the first configured queue.
    pub queue: Option<String>,
    /// Attempts already dialled (before a restart).
    pub attempts: u32,
    /// The trunk the booking call came in on, when known; `--callback-via`
    /// wins over it.
    pub via: Option<SocketAddr>,
    /// What the agent's offer shows: the slot chosen.
    pub slot: String,
    /// When the caller joined the queue, for an entry that keeps a caller's
    /// place (a queue overflow); it goes back where that puts it (after a
    /// restart or a change of cluster leader). `None`: at the back.
    pub queued_since: Option<std::time::SystemTime>,
}

/// A step of a callback the desk holds, keyed by its entry (the booking
/// call's id), in the order they happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackProgress {
    /// The booking call's id.
    pub entry: String,
    /// `queued`, `dialing`, `done` or `abandoned` (the `callbacks` states).
    pub state: &'static str,
    /// Attempts dialled so far.
    pub attempts: u32,
    /// The agent who accepted the entry; `None` while it waits.
    pub agent: Option<String>,
    /// `answered`, `no answer`, `no queue` …
    pub result: Option<String>,
}

/// The live part of an agent's overview (the `/agent/ws` route adds their
/// calls today from the records).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeskOverview {
    /// The queues the agent is a member of, by name.
    pub queues: Vec<QueueSummary>,
    /// Callback entries waiting in those queues, oldest first.
    pub callbacks: Vec<CallbackSummary>,
    /// Wrap-ups this agent finished since the desk started, and the last
    /// one's call: when it moves, that call's record is about to change.
    pub finished: u64,
    /// The call of the last wrap-up in `finished`; `None` before the first.
    pub last_finished: Option<String>,
}

/// Everything that reaches the desk's task.
pub enum DeskInput {
    /// A call for a queue, from the flow's `enqueue` node.
    Enqueue(QueuedCall),
    /// The call is over (caller or gateway hung up).
    CallEnded {
        /// The gateway's id of the call.
        call: String,
    },
    /// The agent's audio leg is up.
    LegConnected {
        /// The call whose agent leg connected.
        call: String,
        /// The agent on it.
        agent: String,
    },
    /// What an agent's softphone socket reports.
    Agent(AgentSocketEvent),
    /// A callback leg ended: the customer talked to the agent (`answered`)
    /// or did not answer. `attempt` as in its [`DialRequest`].
    CallbackEnded {
        /// The booking call's id.
        entry: String,
        /// Which attempt ended (1 for the first).
        attempt: u32,
        /// `true` when the customer talked to the agent.
        answered: bool,
    },
    /// The customer picked up the callback leg of `attempt`.
    CallbackAnswered {
        /// The booking call's id.
        entry: String,
        /// Which attempt (1 for the first).
        attempt: u32,
    },
    /// How callbacks are dialled (sent once the router is up).
    SetDialer(Dialer),
    /// Where the desk reports each step of the callbacks it holds (the
    /// binary writes them to the `callbacks` table).
    SetCallbackBook(mpsc::UnboundedSender<CallbackProgress>),
    /// The book's open callbacks that are due (the desk takes those it does
    /// not hold yet) and the entries admins cancelled lately (dropped if
    /// still waiting).
    Booked {
        /// Open bookings now due.
        due: Vec<BookedCallback>,
        /// Entry ids of bookings admins cancelled.
        cancelled: Vec<String>,
    },
    /// Which numbers callbacks may dial and the hourly cap (`--dial-allow`,
    /// `--dial-max-per-hour`); until sent, [`crate::DialPolicy::default`].
    SetDialPolicy(crate::DialPolicy),
    /// Queue and agent configuration (at start and after admin changes).
    Configure {
        /// Every queue, replacing the previous set.
        queues: Vec<QueueConfig>,
        /// Every agent, replacing the previous set.
        agents: Vec<AgentConfig>,
    },
    /// A supervisor's monitoring request, passed on to the call's actor
    /// as [`DeskNotice::Monitor`] (the core takes no part: monitoring is no
    /// routing decision). An unknown call: `status` hears `not_on_call`.
    Monitor {
        /// The desk's id of the call.
        call: String,
        /// The supervisor's (or admin's) login.
        supervisor: String,
        /// What they asked for.
        action: MonitorAction,
    },
    /// Whether `call` is on this node (a supervisor's console asks before
    /// it answers a monitor offer with this node's hub; see
    /// [`crate::DeskHandle::call_here`]).
    CallHere {
        /// The desk's id of the call.
        call: String,
        /// The answer.
        reply: oneshot::Sender<bool>,
    },
    /// A supervisor's request about a call on another node (docs:
    /// [`crate::cluster::DeskMail::Monitor`]): it goes to `to` when the
    /// console knows the call's node (from its first reply), else where
    /// this node's desk knows the call is (or to the leader).
    MonitorElsewhere {
        /// The call's node, once known.
        to: Option<String>,
        /// The supervisor's (or admin's) login.
        supervisor: String,
        /// The desk's id of the call.
        call: String,
        /// The console's monitor session.
        session: String,
        /// What they asked for.
        request: MonitorRequest,
        /// With a start: where the session's replies go, with the node
        /// that sent each (the last: [`MonitorReply::is_last`]).
        replies: Option<mpsc::UnboundedSender<(String, MonitorReply)>>,
    },
    /// What `agent`'s page shows when idle (see [`crate::DeskHandle::overview`]).
    Overview {
        /// The agent whose page asks.
        agent: String,
        /// Where the overview goes.
        reply: oneshot::Sender<DeskOverview>,
    },
    /// Every queue's waiting calls (for `/metrics`; see
    /// [`crate::DeskHandle::queue_depths`]).
    QueueDepths {
        /// Where the depths go, one per queue, by name.
        reply: oneshot::Sender<Vec<QueueDepth>>,
    },
}

/// One queue's load right now (a `/metrics` scrape's view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue's name.
    pub queue: String,
    /// Calls not yet connected to an agent, callback entries included.
    pub waiting: usize,
    /// How long the longest-waiting of them has waited.
    pub longest_wait: Duration,
    /// Members available for an offer now.
    pub agents_available: usize,
}

/// A supervisor's request about a call on another node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MonitorRequest {
    /// Join in `mode`; `sdp` is the console's WebRTC offer, answered by
    /// the media hub of the call's node.
    Start {
        /// Listen, whisper or barge.
        mode: MonitorMode,
        /// The SDP offer.
        sdp: String,
    },
    /// Switch mode on the same leg.
    Mode {
        /// The new mode.
        mode: MonitorMode,
    },
    /// Leave the call.
    Stop,
}

/// What became of a monitor request on the call's node, for the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum MonitorReply {
    /// The hub there answered the offer.
    Answer {
        /// The SDP answer (ICE-lite, a host candidate on the call's node).
        sdp: String,
    },
    /// The offer could not be answered.
    Failed {
        /// Why.
        message: String,
    },
    /// What the call reported ([`MonitorStatus`]); `Stopped` is the last.
    Status {
        /// The status.
        status: WireMonitorStatus,
    },
}

/// [`MonitorStatus`] on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "is", rename_all = "snake_case")]
pub enum WireMonitorStatus {
    /// See [`MonitorStatus::Started`].
    Started {
        /// The mode.
        mode: MonitorMode,
    },
    /// See [`MonitorStatus::Mode`].
    Mode {
        /// The mode.
        mode: MonitorMode,
    },
    /// See [`MonitorStatus::Stopped`].
    Stopped {
        /// Why.
        reason: String,
    },
}

impl From<MonitorStatus> for WireMonitorStatus {
    fn from(s: MonitorStatus) -> Self {
        match s {
            MonitorStatus::Started(mode) => WireMonitorStatus::Started { mode },
            MonitorStatus::Mode(mode) => WireMonitorStatus::Mode { mode },
            MonitorStatus::Stopped(reason) => WireMonitorStatus::Stopped { reason },
        }
    }
}

impl From<WireMonitorStatus> for MonitorStatus {
    fn from(s: WireMonitorStatus) -> Self {
        match s {
            WireMonitorStatus::Started { mode } => MonitorStatus::Started(mode),
            WireMonitorStatus::Mode { mode } => MonitorStatus::Mode(mode),
            WireMonitorStatus::Stopped { reason } => MonitorStatus::Stopped(reason),
        }
    }
}

impl MonitorReply {
    /// The last reply of a session: nothing follows it.
    pub fn is_last(&self) -> bool {
        matches!(
            self,
            MonitorReply::Failed { .. }
                | MonitorReply::Status {
                    status: WireMonitorStatus::Stopped { .. }
                }
        )
    }
}
