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

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_routing::{
    Acd, AcdAction, AgentConfig, AgentId, AgentState, AgentView, CallId, Overflow, QueueConfig,
    QueueName,
};
use hotline_webphone::protocol::{
    AgentState as PageState, CallbackSummary, ClientMsg, QueueSummary, ServerMsg,
};

use crate::protocol::{
    BookedCallback, CallInfo, CallbackProgress, DeskNotice, DeskOverview, DialRequest,
};

/// How long an agent whose page dropped off mid-call (or while ringing or
/// wrapping up) keeps that call before the desk takes them for gone.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(10);

/// An input to the core: what the desk's task heard, stripped of channels.
#[derive(Debug, Clone)]
pub enum CoreInput {
    /// A call for a queue (its notice channel stays with the task).
    Enqueue(CallInfo),
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
    /// Queue and agent configuration (at start and after admin changes).
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
    fn new(info: CallInfo, callback: Option<u32>) -> Self {
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
    fn settle(&mut self, now: Instant) {
        self.drain_actions(now);
        for call in std::mem::take(&mut self.pending_forget) {
            self.forget_if_done(&call);
        }
    }

    fn on_input(&mut self, input: CoreInput, now: Instant) {
        match input {
            CoreInput::Enqueue(info) => {
                let call = CallId::new(info.call.clone());
                let queue = QueueName::new(info.queue.clone());
                let r = self.acd.enqueue(
                    call.clone(),
                    &queue,
                    info.priority,
                    info.issue_type.clone(),
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
        }
    }

    fn callback_ended(&mut self, call: CallId, attempt: u32, answered: bool, now: Instant) {
        // A leg of an earlier attempt (its agent was lost, the entry went
        // back and another agent is dialling now) has no say.
        let current = self
            .calls
            .get(&call)
            .is_some_and(|c| c.callback == Some(attempt) && c.agent.is_some());
        if !current {
            return;
        }
        if let Some(agent) = self.calls.get(&call).and_then(|c| c.agent.clone()) {
            let by = if answered { "caller" } else { "no_answer" };
            self.tell_agent(
                &agent,
                ServerMsg::Ended {
                    call: call.as_str().to_owned(),
                    by: by.into(),
                },
            );
        }
        let (attempts, agent) = self
            .calls
            .get(&call)
            .map(|c| (c.callback.unwrap_or(attempt), c.agent.clone()))
            .unwrap_or((attempt, None));
        if answered {
            self.acd.callback_done(&call, now);
            self.progress(&call, "done", attempts, agent, Some("answered"));
        } else {
            self.acd.callback_failed(&call, now);
            // Back in its place (or abandoned: the ACD says so next).
            self.progress(&call, "queued", attempts, agent, Some("no answer"));
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.agent = None;
        }
        self.pending_forget.push(call);
    }

    fn configure(&mut self, queues: Vec<QueueConfig>, agents: Vec<AgentConfig>, now: Instant) {
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

    /// The agent's queues (waiting callers, longest wait, agents
    /// available) and the callback entries in them.
    pub fn overview(&self, agent: &str, now: Instant) -> DeskOverview {
        let agent = AgentId::new(agent.to_owned());
        let mut out = DeskOverview::default();
        if let Some((n, call)) = self.finished.get(&agent) {
            out.finished = *n;
            out.last_finished = Some(call.as_str().to_owned());
        }
        let available = |id: &AgentId| {
            self.acd
                .agent(id)
                .is_some_and(|v| v.state == AgentState::Available)
        };
        let mut queues: Vec<_> = self
            .acd
            .queues()
            .filter(|q| q.members.contains(&agent))
            .collect();
        queues.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        for q in queues {
            let callers: Vec<_> = q.waiting.iter().filter(|c| !c.callback).collect();
            let callbacks: Vec<_> = q.waiting.iter().filter(|c| c.callback).collect();
            out.queues.push(QueueSummary {
                name: q.name.as_str().to_owned(),
                waiting: callers.len(),
                longest_wait_s: callers
                    .iter()
                    .map(|c| c.waited(now).as_secs())
                    .max()
                    .unwrap_or(0),
                agents_available: q.members.iter().filter(|m| available(m)).count(),
                callbacks: callbacks.len(),
            });
            for c in callbacks {
                out.callbacks.push(CallbackSummary {
                    call: c.call.as_str().to_owned(),
                    queue: q.name.as_str().to_owned(),
                    caller: self
                        .calls
                        .get(&c.call)
                        .map(|d| d.info.caller.clone())
                        .unwrap_or_default(),
                    issue_type: c.issue_type.clone(),
                    waited_s: c.waited(now).as_secs(),
                    attempts: c.attempts,
                    position: c.position,
                });
            }
        }
        out.callbacks.sort_by_key(|c| std::cmp::Reverse(c.waited_s));
        out
    }

    fn agent_connected(&mut self, agent: String, conn: u64, now: Instant) {
        let id = AgentId::new(agent.clone());
        if self.acd.agent(&id).is_none() {
            self.acd
                .upsert_agent(AgentConfig::new(id.clone(), agent), now);
        }
        if self.grace.remove(&id).is_some() {
            tracing::info!(agent = %id.as_str(), "agent page back within the grace period");
        }
        self.sockets.insert(id.clone(), conn);
        if let Some(view) = self.acd.agent(&id)
            && view.state == AgentState::Offline
        {
            let _ = self.acd.agent_login(&id, now);
        }
    }

    fn agent_disconnected(&mut self, id: AgentId, conn: u64, dropped: bool, now: Instant) {
        if self.sockets.get(&id) != Some(&conn) {
            return;
        }
        self.sockets.remove(&id);
        let state = self.acd.agent(&id).map(|v| v.state);
        let busy = matches!(
            state,
            Some(
                AgentState::Ringing { .. } | AgentState::OnCall { .. } | AgentState::WrapUp { .. }
            )
        );
        if dropped && busy {
            tracing::info!(agent = %id.as_str(), grace_s = RECONNECT_GRACE.as_secs(), "agent page dropped off; holding their call");
            if let Some(AgentState::OnCall { call }) = state {
                self.out.push_back(DeskOutput::CheckMedia {
                    agent: id.clone(),
                    call,
                });
            }
            self.grace.insert(id, now + RECONNECT_GRACE);
        } else {
            self.acd.agent_disconnected(&id, now);
        }
    }

    fn on_message(&mut self, agent: &AgentId, msg: ClientMsg, now: Instant) -> Result<(), String> {
        let current = self.acd.agent(agent).map(|v| v.state);
        match msg {
            ClientMsg::Hello {} => {
                if let Some(state) = current {
                    self.send_state(agent, &state, now);
                    if let AgentState::Ringing { call } = &state
                        && let Some(offer) = self.offer_message(call, now)
                    {
                        self.tell_agent(agent, offer);
                    }
                }
                Ok(())
            }
            ClientMsg::Available { on: true, .. } => self
                .acd
                .set_available(agent, now)
                .map_err(|e| e.to_string()),
            ClientMsg::Available { on: false, reason } => self
                .acd
                .set_away(agent, reason.unwrap_or_else(|| "away".into()), now)
                .map_err(|e| e.to_string()),
            ClientMsg::Answer { call } => self
                .acd
                .accept(agent, &CallId::new(call), now)
                .map_err(|e| e.to_string()),
            ClientMsg::Decline { call } => self
                .acd
                .decline(agent, &CallId::new(call), now)
                .map_err(|e| e.to_string()),
            ClientMsg::SdpOffer { call, sdp } => {
                let call_id = CallId::new(call.clone());
                if current
                    != Some(AgentState::OnCall {
                        call: call_id.clone(),
                    })
                {
                    return Err(format!("not on call {call}"));
                }
                if !self.calls.contains_key(&call_id) {
                    return Err(format!("call {call} is gone"));
                }
                self.out.push_back(DeskOutput::AcceptSdp {
                    agent: agent.clone(),
                    call: call_id,
                    sdp,
                });
                Ok(())
            }
            ClientMsg::Hangup { call } => {
                let call_id = CallId::new(call);
                let ringing_callback = self
                    .calls
                    .get(&call_id)
                    .is_some_and(|c| c.callback.is_some() && !c.callback_answered);
                if ringing_callback {
                    // The agent gave up while the customer's phone rang: an
                    // attempt without an answer; the entry keeps its place.
                    if current
                        != Some(AgentState::OnCall {
                            call: call_id.clone(),
                        })
                    {
                        return Err(format!("not on call {}", call_id.as_str()));
                    }
                    self.acd.callback_failed(&call_id, now);
                } else {
                    self.acd
                        .agent_hung_up(agent, &call_id, now)
                        .map_err(|e| e.to_string())?;
                }
                self.notify(
                    &call_id,
                    DeskNotice::AgentHungUp {
                        agent: agent.as_str().to_owned(),
                    },
                );
                Ok(())
            }
            ClientMsg::Hold { on } => self.notify_current(current, DeskNotice::Hold { on }),
            ClientMsg::Mute { on } => self.notify_current(current, DeskNotice::Mute { on }),
            ClientMsg::Dtmf { digit } => {
                let Some(d) = digit.chars().next().filter(|_| digit.chars().count() == 1) else {
                    return Err(format!("not one key: {digit:?}"));
                };
                self.notify_current(current, DeskNotice::Dtmf { digit: d })
            }
            ClientMsg::WrapUp {
                call,
                disposition,
                notes,
            } => {
                let call_id = CallId::new(call);
                match self.wrapping.get_mut(agent) {
                    Some((c, _, submitted)) if *c == call_id => {
                        *submitted = Some((disposition, notes));
                    }
                    _ => return Err("not in wrap-up for that call".into()),
                }
                self.acd.wrap_up_done(agent, now).map_err(|e| e.to_string())
            }
            // Answered by the socket itself.
            ClientMsg::Ping {} => Ok(()),
        }
    }

    fn notify_current(
        &mut self,
        state: Option<AgentState>,
        notice: DeskNotice,
    ) -> Result<(), String> {
        match state {
            Some(AgentState::OnCall { call }) => {
                self.notify(&call, notice);
                Ok(())
            }
            _ => Err("no call in progress".into()),
        }
    }

    fn drain_actions(&mut self, now: Instant) {
        let mut changed = false;
        while let Some(action) = self.acd.poll_action() {
            match action {
                AcdAction::Offer {
                    call,
                    agent,
                    expires,
                    ..
                } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.offer_expires = Some(expires);
                    }
                    if let Some(msg) = self.offer_message(&call, now) {
                        self.tell_agent(&agent, msg);
                    }
                    self.notify(
                        &call,
                        DeskNotice::Offered {
                            agent: agent.as_str().to_owned(),
                        },
                    );
                }
                AcdAction::Withdraw { call, agent } => {
                    self.tell_agent(
                        &agent,
                        ServerMsg::OfferWithdrawn {
                            call: call.as_str().to_owned(),
                        },
                    );
                }
                AcdAction::Connect { call, agent } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.agent = Some(agent.clone());
                    }
                    if self.calls.get(&call).is_some_and(|c| c.callback.is_some()) {
                        self.dial_callback(&call, &agent);
                        continue;
                    }
                    self.notify(
                        &call,
                        DeskNotice::Accepted {
                            agent: agent.as_str().to_owned(),
                        },
                    );
                }
                AcdAction::OfferTimedOut { .. } => {}
                AcdAction::Position {
                    call,
                    position,
                    estimated_wait,
                } => {
                    self.notify(
                        &call,
                        DeskNotice::Position {
                            position,
                            estimated_wait,
                        },
                    );
                }
                AcdAction::Overflow { call, target } => self.overflow(call, target, now),
                AcdAction::CallbackAbandoned { call, attempts } => {
                    tracing::warn!(call = %call.as_str(), attempts, "callback abandoned: the customer never answered");
                    self.progress(&call, "abandoned", attempts, None, None);
                    self.forget_if_done(&call);
                }
                AcdAction::AgentState { agent, state, .. } => {
                    changed = true;
                    self.on_agent_state(&agent, &state, now);
                }
                AcdAction::AgentLost {
                    call,
                    agent,
                    requeued,
                } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.agent = None;
                    }
                    self.notify(
                        &call,
                        DeskNotice::AgentLost {
                            agent: agent.as_str().to_owned(),
                            requeued,
                        },
                    );
                    if !requeued {
                        self.forget_if_done(&call);
                    }
                }
                AcdAction::OfferOutcome {
                    call,
                    agent,
                    outcome,
                    ..
                } => {
                    self.notify(
                        &call,
                        DeskNotice::OfferEnded {
                            agent: agent.as_str().to_owned(),
                            outcome: outcome.name(),
                        },
                    );
                }
            }
        }
        if changed {
            self.out.push_back(DeskOutput::StatesChanged);
        }
    }

    fn overflow(&mut self, call: CallId, target: Overflow, now: Instant) {
        // A callback needs a number to dial: a caller ID that is a SIP user
        // name (`caller`) gets voicemail instead, and the entry the ACD kept
        // is let go.
        let undialable = matches!(target, Overflow::Callback)
            && self.calls.get(&call).is_some_and(|c| !c.info.dialable);
        let target = if undialable {
            tracing::info!(call = %call.as_str(), "no number to call back: voicemail instead");
            self.acd.cancel_callback(&call, now);
            Overflow::Voicemail
        } else {
            target
        };
        let callback = matches!(target, Overflow::Callback);
        self.notify(&call, DeskNotice::Overflow { target });
        if callback && let Some(c) = self.calls.get_mut(&call) {
            // The entry keeps its place; the caller hangs up and hears
            // nothing more of it.
            c.callback = Some(0);
            self.out
                .push_back(DeskOutput::Detach { call: call.clone() });
        }
        self.forget_if_done(&call);
    }

    fn on_agent_state(&mut self, agent: &AgentId, state: &AgentState, now: Instant) {
        // Leaving wrap-up closes the call's record on the actor's side.
        if !matches!(state, AgentState::WrapUp { .. })
            && let Some((call, since, submitted)) = self.wrapping.remove(agent)
        {
            let (disposition, notes) = match submitted {
                Some((d, n)) => (Some(d), n),
                None => (None, String::new()),
            };
            self.notify(
                &call,
                DeskNotice::WrapUpDone {
                    agent: agent.as_str().to_owned(),
                    disposition,
                    notes,
                    seconds: now.saturating_duration_since(since).as_secs(),
                },
            );
            let n = self.finished.get(agent).map_or(0, |f| f.0) + 1;
            self.finished.insert(agent.clone(), (n, call.clone()));
            self.forget_if_done(&call);
        }
        if let AgentState::WrapUp { call, until } = state {
            self.wrapping
                .insert(agent.clone(), (call.clone(), now, None));
            self.tell_agent(
                agent,
                ServerMsg::WrapUp {
                    call: call.as_str().to_owned(),
                    until: self.unix_ms(*until),
                },
            );
        }
        self.send_state(agent, state, now);
    }

    fn send_state(&mut self, agent: &AgentId, state: &AgentState, now: Instant) {
        let (page, reason) = match state {
            AgentState::Offline => (PageState::Offline, None),
            AgentState::Available => (PageState::Available, None),
            AgentState::Ringing { .. } => (PageState::Ringing, None),
            AgentState::OnCall { .. } => (PageState::OnCall, None),
            AgentState::WrapUp { .. } => (PageState::WrapUp, None),
            AgentState::Away { reason } => (PageState::Away, Some(reason.clone())),
        };
        let since = self.acd.agent(agent).and_then(|v| v.since).unwrap_or(now);
        let msg = ServerMsg::State {
            state: page,
            since: self.unix_ms(since),
            reason,
        };
        self.tell_agent(agent, msg);
    }

    /// Agents whose page did not come back in time are gone.
    fn expire_grace(&mut self, now: Instant) {
        let expired: Vec<AgentId> = self
            .grace
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(a, _)| a.clone())
            .collect();
        for agent in expired {
            self.grace.remove(&agent);
            if !self.sockets.contains_key(&agent) {
                tracing::info!(agent = %agent.as_str(), "agent page did not come back");
                self.acd.agent_disconnected(&agent, now);
            }
        }
    }

    /// Drops the desk's side of a call the ACD let go of, unless its agent
    /// still wraps it up (so the wrap-up reaches the record).
    fn forget_if_done(&mut self, call: &CallId) {
        if self.acd.call(call).is_none()
            && !self.wrapping.values().any(|(c, ..)| c == call)
            && self.calls.remove(call).is_some()
        {
            self.out
                .push_back(DeskOutput::Forget { call: call.clone() });
        }
    }

    /// Reports a step of callback entry `call` to the book.
    fn progress(
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

    /// Takes the due bookings the desk does not hold yet as callback
    /// entries, and drops cancelled ones still waiting for an agent.
    fn take_booked(&mut self, due: Vec<BookedCallback>, cancelled: Vec<String>, now: Instant) {
        for entry in cancelled {
            let call = CallId::new(entry);
            let waiting = self
                .calls
                .get(&call)
                .is_some_and(|c| c.callback.is_some() && c.agent.is_none());
            if waiting {
                tracing::info!(call = %call.as_str(), "callback cancelled by an admin");
                self.acd.cancel_callback(&call, now);
                self.calls.remove(&call);
                self.out.push_back(DeskOutput::Forget { call });
            }
        }
        for b in due {
            let call = CallId::new(b.entry.clone());
            if self.calls.contains_key(&call) || self.unplaced.contains(&b.entry) {
                continue;
            }
            let queue = match b
                .queue
                .clone()
                .or_else(|| self.acd.queues().next().map(|q| q.name.as_str().to_owned()))
            {
                Some(q) => q,
                None => {
                    tracing::warn!(call = %call.as_str(), "a due callback has no queue to go to");
                    self.unplaced.insert(b.entry);
                    continue;
                }
            };
            if let Err(e) = self.acd.enqueue_callback(
                call.clone(),
                &QueueName::new(queue.clone()),
                b.attempts,
                now,
            ) {
                tracing::warn!(call = %call.as_str(), %queue, error = %e, "cannot queue a due callback");
                self.unplaced.insert(b.entry);
                continue;
            }
            tracing::info!(call = %call.as_str(), %queue, attempts = b.attempts, "booked callback due: queued");
            let info = CallInfo {
                call: b.entry.clone(),
                queue,
                priority: 0,
                issue_type: None,
                caller: b.number.clone(),
                dialable: true,
                // Unknown trunk: the dialler's --callback-via must say.
                reply_via: b
                    .via
                    .unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
                path: vec![format!("callback booked for {}", b.slot)],
                data: serde_json::json!({ "flow": { "callback": { "number": b.number, "slot": b.slot } } }),
            };
            self.calls
                .insert(call.clone(), DeskCall::new(info, Some(b.attempts)));
            self.progress(&call, "queued", b.attempts, None, None);
        }
    }

    /// `agent` accepted callback entry `call`: the shell dials the
    /// customer, and the new leg hears the desk from now on.
    fn dial_callback(&mut self, call: &CallId, agent: &AgentId) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let attempt = c.callback.unwrap_or(0) + 1;
        c.callback = Some(attempt);
        c.callback_answered = false;
        let request = DialRequest {
            entry: call.as_str().to_owned(),
            number: c.info.caller.clone(),
            via: c.info.reply_via,
            agent: agent.as_str().to_owned(),
            queue: c.info.queue.clone(),
            attempt,
        };
        self.progress(call, "dialing", attempt, Some(agent.clone()), None);
        self.out.push_back(DeskOutput::Dial(request));
    }

    fn offer_message(&self, call: &CallId, now: Instant) -> Option<ServerMsg> {
        let c = self.calls.get(call)?;
        let expires = c
            .offer_expires
            .map(|t| t.saturating_duration_since(now).as_millis() as u64)
            .unwrap_or(0);
        Some(ServerMsg::Offer {
            call: call.as_str().to_owned(),
            caller: c.info.caller.clone(),
            issue_type: c.info.issue_type.clone(),
            path: c.info.path.clone(),
            data: c.info.data.clone(),
            expires_in_ms: expires,
            callback: c.callback.is_some(),
        })
    }

    fn tell_agent(&mut self, agent: &AgentId, msg: ServerMsg) {
        if self.sockets.contains_key(agent) {
            self.out.push_back(DeskOutput::ToAgent {
                agent: agent.clone(),
                msg,
            });
        }
    }

    fn notify(&mut self, call: &CallId, notice: DeskNotice) {
        if self.calls.contains_key(call) {
            self.out.push_back(DeskOutput::Notify {
                call: call.clone(),
                notice,
            });
        }
    }

    fn unix_ms(&self, at: Instant) -> u64 {
        let wall = match at.checked_duration_since(self.epoch.0) {
            Some(d) => self.epoch.1 + d,
            None => self.epoch.1 - self.epoch.0.duration_since(at),
        };
        wall.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// The desk's guarantees (see the module docs) and the ACD's own.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.acd.check_invariants()?;
        for (id, c) in &self.calls {
            // A callback entry keeps its agent until the leg reports back;
            // a call the ACD let go of waits for its actor's last word.
            if let (Some(agent), Some(view), None) = (&c.agent, self.acd.call(id), c.callback)
                && view.agent.as_ref() != Some(agent)
            {
                return Err(format!(
                    "call {} is with {} for the desk but with {:?} for the ACD",
                    id.as_str(),
                    agent.as_str(),
                    view.agent
                ));
            }
        }
        for (agent, (call, ..)) in &self.wrapping {
            match self.acd.agent(agent).map(|v| v.state) {
                Some(AgentState::WrapUp { call: c, .. }) if &c == call => {}
                other => {
                    return Err(format!(
                        "agent {} has a wrap-up form for {} but is {other:?}",
                        agent.as_str(),
                        call.as_str()
                    ));
                }
            }
        }
        for v in self.acd.agents() {
            if let AgentState::WrapUp { call, .. } = &v.state
                && self.wrapping.get(&v.id).is_none_or(|(c, ..)| c != call)
            {
                return Err(format!(
                    "agent {} wraps up {} without a form",
                    v.id.as_str(),
                    call.as_str()
                ));
            }
        }
        for v in self.acd.calls() {
            if !self.calls.contains_key(&v.call) {
                return Err(format!(
                    "the ACD holds {} but the desk forgot it",
                    v.call.as_str()
                ));
            }
        }
        Ok(())
    }
}
