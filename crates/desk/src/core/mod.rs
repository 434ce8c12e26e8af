//! [`DeskCore`]: every decision the agent desk takes, as a sans-IO state
//! machine over routing's [`Acd`].
//!
//! Inputs come in with the current time ([`DeskCore::handle`],
//! [`DeskCore::handle_timeout`]); what to do goes out as [`DeskOutput`]s
//! ([`DeskCore::poll_output`]) and the next wake-up as
//! [`DeskCore::poll_timeout`]. The core holds no channel, socket or task:
//! the shell ([`crate::AgentDesk`]) keeps the agents' page senders and the
//! calls' notice senders, and carries the outputs out in order.
//!
//! On top of the ACD the core owns: the agents' pages (which connection is
//! current, a stale socket's messages ignored), the reconnect grace of an
//! agent whose page dropped off, wrap-up forms (what was submitted, for how
//! long), callback attempts (numbering, the book's progress), and the
//! offer card each agent sees.
//!
//! Guarantees (checked by [`DeskCore::check_invariants`] in the seeded race
//! test): a call the ACD holds is with the same agent for the desk and the
//! ACD; an agent in wrap-up has a wrap-up form for exactly that call, and
//! every form belongs to an agent wrapping it up; every call the ACD holds
//! is known to the desk (its offer card, its notices), so a call is
//! forgotten only once the ACD let go of it and its wrap-up is done.
//!
//! Files: this one holds the types, the entry points and the small helpers;
//! `agents.rs` the pages, grace and wrap-up forms; `actions.rs` the ACD's
//! actions carried out; `callbacks.rs` callback entries; `invariants.rs`
//! the guarantees. Each child imports only this module.

mod actions;
mod agents;
mod callbacks;
mod invariants;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use hotline_routing::{
    Acd, AcdAction, AgentConfig, AgentId, AgentState, AgentView, CallId, Overflow, QueueConfig,
    QueueName,
};
use hotline_webphone::protocol::{
    AgentState as PageState, CallbackSummary, ClientMsg, QueueSummary, ServerMsg,
};

use crate::policy::{DialLog, DialPolicy};
use crate::protocol::{
    BookedCallback, CallInfo, CallbackProgress, DeskNotice, DeskOverview, DialRequest,
};

/// How long an agent whose page dropped off mid-call (or while ringing or
/// wrapping up) keeps that call before the desk takes them for gone.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(10);

/// An input to the core: what the desk's task heard, stripped of channels.
/// A follower sends its leader these (see `crate::cluster`); the
/// configuration, due bookings and dial policy never travel (every node
/// reads them from the database), so they fail to serialise.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum CoreInput {
    /// A call for a queue (its notice channel stays with the task).
    Enqueue(CallInfo),
    /// A call already bridged to `agent` on its node, as a new ACD leader
    /// hears of it (`crate::cluster`): held on that agent, who is offered
    /// nothing else until it ends.
    Restore {
        /// The call.
        info: CallInfo,
        /// The agent talking to the caller.
        agent: String,
    },
    /// A call that waited `waited_ms` on its node before a new ACD leader
    /// heard of it (`crate::cluster`): it takes the place that wait gives
    /// it, and keeps its max wait from when it first queued.
    Rejoin {
        /// The call.
        info: CallInfo,
        /// How long it has waited, in milliseconds.
        waited_ms: u64,
    },
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
    /// An agent's page connected (`conn` tells its sockets apart).
    AgentConnected {
        /// The agent's id (their login).
        agent: String,
        /// The new socket.
        conn: u64,
    },
    /// A message from an agent's page.
    AgentMessage {
        /// The agent whose page sent it.
        agent: String,
        /// The socket it came on; messages from a replaced socket are ignored.
        conn: u64,
        /// What the page asked for.
        msg: ClientMsg,
    },
    /// An agent's page went away; `dropped`: without a goodbye.
    AgentDisconnected {
        /// The agent whose socket closed.
        agent: String,
        /// The socket that closed.
        conn: u64,
        /// `true` when lost without a goodbye: the agent's call is held for
        /// [`RECONNECT_GRACE`].
        dropped: bool,
    },
    /// A callback leg ended; the customer talked (`answered`) or not.
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
    /// The leg asked for with [`DeskOutput::Dial`] could not be placed (no
    /// dialer yet, or the router is gone or swamped).
    DialFailed {
        /// The booking call's id.
        entry: String,
        /// The attempt that could not be placed.
        attempt: u32,
    },
    /// Due bookings and lately cancelled entries (see `DeskInput::Booked`).
    #[serde(skip)]
    Booked {
        /// Open bookings now due.
        due: Vec<BookedCallback>,
        /// Entry ids of bookings admins cancelled.
        cancelled: Vec<String>,
    },
    /// The answer to [`DeskOutput::CheckMedia`]: `agent`'s browser sent no
    /// audio lately (`silent`), so it is gone, not blipping.
    MediaCheck {
        /// The agent whose page dropped off.
        agent: String,
        /// `true` when their browser sent no audio lately.
        silent: bool,
    },
    /// Which numbers callbacks may dial, and how many legs an hour.
    #[serde(skip)]
    SetDialPolicy(DialPolicy),
    /// Queue and agent configuration (at start and after admin changes).
    #[serde(skip)]
    Configure {
        /// Every queue, replacing the previous set.
        queues: Vec<QueueConfig>,
        /// Every agent, replacing the previous set.
        agents: Vec<AgentConfig>,
    },
}

/// What the core asks its shell to do, in order.
#[derive(Debug)]
pub enum DeskOutput {
    /// Send `msg` to `agent`'s page (if it has one).
    ToAgent {
        /// The agent to tell.
        agent: AgentId,
        /// What to send.
        msg: ServerMsg,
    },
    /// Tell `call`'s actor (if it still listens).
    Notify {
        /// The call whose actor is told.
        call: CallId,
        /// What to tell it.
        notice: DeskNotice,
    },
    /// Place a callback leg; its notices go to the new leg from now on. If
    /// it cannot be placed, answer with [`CoreInput::DialFailed`].
    Dial(DialRequest),
    /// Nobody is on `call`'s line any more (a callback entry whose caller
    /// hangs up): drop its notice channel, keep the entry.
    Detach {
        /// The callback entry whose caller hung up.
        call: CallId,
    },
    /// The desk let go of `call`: drop its notice channel.
    Forget {
        /// The call the desk no longer holds.
        call: CallId,
    },
    /// A step of a callback entry, for the book.
    Progress(CallbackProgress),
    /// `agent`'s page dropped off while on `call`: shortly, look whether
    /// their browser still sends audio and answer with
    /// [`CoreInput::MediaCheck`].
    CheckMedia {
        /// The agent whose page dropped off.
        agent: AgentId,
        /// The call they are on.
        call: CallId,
    },
    /// `agent` (on `call`) offers WebRTC audio: have the media hub answer
    /// it, send the answer to the page and the leg to the call.
    AcceptSdp {
        /// The agent who sent the offer.
        agent: AgentId,
        /// The call the audio is for.
        call: CallId,
        /// The browser's SDP offer.
        sdp: String,
    },
    /// Agent states changed: publish [`DeskCore::agent_views`].
    StatesChanged,
}

struct DeskCall {
    info: CallInfo,
    agent: Option<AgentId>,
    /// When the live offer (ring) ends, for the page's countdown.
    offer_expires: Option<Instant>,
    /// Set once the call became a callback entry: attempts dialled so far.
    callback: Option<u32>,
    /// The current callback attempt's customer picked up.
    callback_answered: bool,
}

impl DeskCall {
    pub(super) fn new(info: CallInfo, callback: Option<u32>) -> Self {
        DeskCall {
            info,
            agent: None,
            offer_expires: None,
            callback,
            callback_answered: false,
        }
    }
}

/// An agent's wrap-up: the call, since when, and (disposition, notes) once submitted.
type WrapUp = (CallId, Instant, Option<(String, String)>);

/// The agent desk's decisions; see the module docs.
pub struct DeskCore {
    acd: Acd,
    /// Each agent's current page connection.
    sockets: HashMap<AgentId, u64>,
    calls: HashMap<CallId, DeskCall>,
    /// Agents in wrap-up: for which call, since when, what they submitted.
    wrapping: HashMap<AgentId, WrapUp>,
    /// Instant ↔ wall clock, for the page's Unix-millisecond times.
    epoch: (Instant, SystemTime),
    /// Due bookings no queue could take (logged once; tried again after
    /// the next configuration change).
    unplaced: HashSet<String>,
    /// Agents whose page dropped off, until when they may come back.
    grace: HashMap<AgentId, Instant>,
    /// Calls to forget (if done) once the ACD's actions of this turn are out.
    pending_forget: Vec<CallId>,
    /// Per agent: wrap-ups finished and the last one's call (for the overview).
    finished: HashMap<AgentId, (u64, CallId)>,
    out: VecDeque<DeskOutput>,
    /// The numbers callbacks may dial and the hourly cap (toll fraud).
    dial_policy: DialPolicy,
    /// Legs placed in the last hour.
    dial_log: DialLog,
}

impl DeskCore {
    /// A desk over `queues` and `agents`; `epoch` pairs an instant with the
    /// wall clock at that instant (the pages show Unix times).
    pub fn new(
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
        epoch: (Instant, SystemTime),
    ) -> Self {
        let mut out = VecDeque::new();
        out.push_back(DeskOutput::StatesChanged);
        DeskCore {
            acd: Acd::new(queues, agents),
            sockets: HashMap::new(),
            calls: HashMap::new(),
            wrapping: HashMap::new(),
            epoch,
            unplaced: HashSet::new(),
            grace: HashMap::new(),
            pending_forget: Vec::new(),
            finished: HashMap::new(),
            out,
            dial_policy: DialPolicy::default(),
            dial_log: DialLog::default(),
        }
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<DeskOutput> {
        self.out.pop_front()
    }

    /// When to call [`DeskCore::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.acd
            .poll_timeout()
            .into_iter()
            .chain(self.grace.values().copied())
            .min()
    }

    /// Fires what is due at `now`: offer timeouts, max waits, wrap-up ends,
    /// callback retries, reconnect graces.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.acd.handle_timeout(now);
        self.expire_grace(now);
        self.settle(now);
    }

    /// Takes one input at `now`.
    pub fn handle(&mut self, now: Instant, input: CoreInput) {
        self.on_input(input, now);
        self.settle(now);
    }

    /// Every agent's live state (for the admin API).
    pub fn agent_views(&self) -> Vec<AgentView> {
        self.acd.agents().collect()
    }

    /// The ACD under the desk (read-only: for views and tests).
    pub fn acd(&self) -> &Acd {
        &self.acd
    }

    /// Starts `queue`'s wait estimates from handle times measured by
    /// another desk (a new cluster leader takes the last one's).
    pub fn seed_handle_times(&mut self, queue: &str, times: &[Duration]) {
        self.acd
            .seed_handle_times(&QueueName::new(queue.to_owned()), times);
    }

    /// Whether the desk still holds `call` (queued, ringing, talking, or in
    /// its agent's wrap-up).
    pub fn holds(&self, call: &str) -> bool {
        self.calls.contains_key(&CallId::new(call.to_owned()))
    }

    /// Agents whose page dropped off and who may still come back.
    pub fn in_grace(&self, agent: &str) -> bool {
        self.grace.contains_key(&AgentId::new(agent.to_owned()))
    }

    /// The ACD's actions of this turn out, then calls that are done forgotten.
    pub(super) fn settle(&mut self, now: Instant) {
        self.drain_actions(now);
        for call in std::mem::take(&mut self.pending_forget) {
            self.forget_if_done(&call);
        }
    }

    /// A call joins its queue, having waited `waited` elsewhere already.
    fn enqueue(&mut self, info: CallInfo, waited: Duration, now: Instant) {
        let call = CallId::new(info.call.clone());
        let queue = QueueName::new(info.queue.clone());
        let r = self.acd.rejoin(
            call.clone(),
            &queue,
            info.priority,
            info.issue_type.clone(),
            waited,
            now,
        );
        match r {
            Ok(()) => {
                self.calls.insert(call, DeskCall::new(info, None));
            }
            Err(e) => {
                tracing::warn!(call = %info.call, queue = %info.queue, error = %e, "cannot queue the call");
                self.out.push_back(DeskOutput::Notify {
                    call: call.clone(),
                    notice: DeskNotice::UnknownQueue,
                });
                self.out.push_back(DeskOutput::Forget { call });
            }
        }
    }

    pub(super) fn on_input(&mut self, input: CoreInput, now: Instant) {
        match input {
            CoreInput::Enqueue(info) => self.enqueue(info, Duration::ZERO, now),
            CoreInput::Rejoin { info, waited_ms } => {
                // Announced twice (a leader that decided on): already in place.
                if !self.holds(&info.call) {
                    self.enqueue(info, Duration::from_millis(waited_ms), now)
                }
            }
            CoreInput::Restore { info, agent } => {
                let call = CallId::new(info.call.clone());
                let id = AgentId::new(agent.clone());
                if self.acd.agent(&id).is_none() {
                    self.acd
                        .upsert_agent(AgentConfig::new(id.clone(), agent), now);
                }
                let queue = QueueName::new(info.queue.clone());
                let r = self.acd.restore_on_call(
                    call.clone(),
                    &queue,
                    info.priority,
                    info.issue_type.clone(),
                    &id,
                    now,
                );
                match r {
                    Ok(()) => {
                        let mut held = DeskCall::new(info, None);
                        held.agent = Some(id);
                        self.calls.insert(call, held);
                    }
                    Err(e) => {
                        tracing::warn!(call = %info.call, agent = %id.as_str(), error = %e, "bridged call not restored")
                    }
                }
            }
            CoreInput::CallEnded { call } => {
                let call = CallId::new(call);
                // The caller who asked for a callback hung up: the entry
                // (perhaps already with an agent dialling) lives on.
                if self.calls.get(&call).is_some_and(|c| c.callback.is_some()) {
                    return;
                }
                if let Some(agent) = self.calls.get(&call).and_then(|c| c.agent.clone()) {
                    self.tell_agent(
                        &agent,
                        ServerMsg::Ended {
                            call: call.as_str().to_owned(),
                            by: "caller".into(),
                        },
                    );
                }
                self.acd.call_ended(&call, now);
                // Forgotten once the ACD's actions are out: a connected
                // call stays while its agent wraps up.
                self.pending_forget.push(call);
            }
            CoreInput::CallbackEnded {
                entry,
                attempt,
                answered,
            } => self.callback_ended(CallId::new(entry), attempt, answered, now),
            CoreInput::CallbackAnswered { entry, attempt } => {
                if let Some(c) = self.calls.get_mut(&CallId::new(entry))
                    && c.callback == Some(attempt)
                {
                    c.callback_answered = true;
                }
            }
            CoreInput::DialFailed { entry, attempt } => {
                let call = CallId::new(entry);
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.callback == Some(attempt))
                {
                    tracing::error!(call = %call.as_str(), "cannot place the callback");
                    self.acd.callback_failed(&call, now);
                }
            }
            CoreInput::Booked { due, cancelled } => self.take_booked(due, cancelled, now),
            CoreInput::MediaCheck { agent, silent } => {
                let id = AgentId::new(agent);
                if silent && self.grace.remove(&id).is_some() && !self.sockets.contains_key(&id) {
                    tracing::info!(agent = %id.as_str(), "agent's browser is gone too (no audio from it)");
                    self.acd.agent_disconnected(&id, now);
                }
            }
            CoreInput::LegConnected { call, agent } => {
                self.tell_agent(&AgentId::new(agent), ServerMsg::Connected { call });
            }
            CoreInput::AgentConnected { agent, conn } => self.agent_connected(agent, conn, now),
            CoreInput::AgentDisconnected {
                agent,
                conn,
                dropped,
            } => self.agent_disconnected(AgentId::new(agent), conn, dropped, now),
            CoreInput::AgentMessage { agent, conn, msg } => {
                let id = AgentId::new(agent);
                if self.sockets.get(&id) != Some(&conn) {
                    return; // a stale socket of a reconnected page
                }
                if let Err(message) = self.on_message(&id, msg, now) {
                    self.tell_agent(&id, ServerMsg::Error { message });
                }
            }
            CoreInput::Configure { queues, agents } => self.configure(queues, agents, now),
            CoreInput::SetDialPolicy(policy) => self.dial_policy = policy,
        }
    }

    pub(super) fn configure(
        &mut self,
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
        now: Instant,
    ) {
        // A queue may exist now for bookings that had none.
        self.unplaced.clear();
        // What the admin removed (or deactivated) leaves the ACD too; an
        // agent on a call finishes it first (the ACD sees to that).
        let keep_agents: Vec<AgentId> = agents.iter().map(|a| a.id.clone()).collect();
        let gone_agents: Vec<AgentId> = self
            .acd
            .agents()
            .filter(|v| !v.removed && !keep_agents.contains(&v.id))
            .map(|v| v.id)
            .collect();
        let keep_queues: Vec<QueueName> = queues.iter().map(|q| q.name.clone()).collect();
        let gone_queues: Vec<QueueName> = self
            .acd
            .queues()
            .filter(|q| !keep_queues.contains(&q.name))
            .map(|q| q.name)
            .collect();
        for a in agents {
            self.acd.upsert_agent(a, now);
        }
        for q in queues {
            self.acd.upsert_queue(q, now);
        }
        for q in gone_queues {
            let _ = self.acd.remove_queue(&q, now);
        }
        for a in gone_agents {
            // A removed agent's open page is told it is offline.
            let _ = self.acd.remove_agent(&a, now);
        }
        self.out.push_back(DeskOutput::StatesChanged);
    }

    /// Drops the desk's side of a call the ACD let go of, unless its agent
    /// still wraps it up (so the wrap-up reaches the record).
    pub(super) fn forget_if_done(&mut self, call: &CallId) {
        if self.acd.call(call).is_none()
            && !self.wrapping.values().any(|(c, ..)| c == call)
            && self.calls.remove(call).is_some()
        {
            self.out
                .push_back(DeskOutput::Forget { call: call.clone() });
        }
    }

    /// Reports a step of callback entry `call` to the book.
    pub(super) fn progress(
        &mut self,
        call: &CallId,
        state: &'static str,
        attempts: u32,
        agent: Option<AgentId>,
        result: Option<&str>,
    ) {
        self.out.push_back(DeskOutput::Progress(CallbackProgress {
            entry: call.as_str().to_owned(),
            state,
            attempts,
            agent: agent.map(|a| a.as_str().to_owned()),
            result: result.map(str::to_owned),
        }));
    }

    pub(super) fn tell_agent(&mut self, agent: &AgentId, msg: ServerMsg) {
        if self.sockets.contains_key(agent) {
            self.out.push_back(DeskOutput::ToAgent {
                agent: agent.clone(),
                msg,
            });
        }
    }

    pub(super) fn notify(&mut self, call: &CallId, notice: DeskNotice) {
        if self.calls.contains_key(call) {
            self.out.push_back(DeskOutput::Notify {
                call: call.clone(),
                notice,
            });
        }
    }

    pub(super) fn unix_ms(&self, at: Instant) -> u64 {
        crate::clock::unix_ms(crate::clock::wall_at(self.epoch, at))
    }
}
