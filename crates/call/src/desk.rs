//! The agent desk: the shell around the ACD (`hotline-routing`), the agents'
//! softphone sockets and the agent media hub (`hotline-webphone`).
//!
//! One task owns the [`Acd`]; call actors and agent sockets talk to it over
//! one channel, so every routing decision is taken in one place, in order —
//! which is what makes "two agents answer one call" impossible rather than
//! unlikely. The desk relays: ACD actions become messages to the agents'
//! pages and notices to the call actors; the actors own the audio bridge.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_routing::{
    Acd, AcdAction, AgentConfig, AgentId, AgentState, AgentView, CallId, Overflow, QueueConfig,
    QueueName,
};
use hotline_webphone::protocol::{
    AgentState as PageState, CallbackSummary, ClientMsg, QueueSummary, ServerMsg,
};
use hotline_webphone::{AgentLeg, AgentMediaHub};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::actor::CallbackJob;
use crate::book::{BookedCallback, CallbackProgress};
use crate::router::Dialer;

/// What an agent's softphone socket reports (see `/agent/ws`).
#[derive(Debug)]
pub enum AgentSocketEvent {
    /// A socket opened; the desk speaks to the page through `tx`.
    Connected {
        agent: String,
        conn: u64,
        tx: mpsc::Sender<ServerMsg>,
    },
    Message {
        agent: String,
        conn: u64,
        msg: ClientMsg,
    },
    Disconnected {
        agent: String,
        conn: u64,
        /// Lost without a goodbye (a network blip, a half-open socket): the
        /// agent's call is held for [`RECONNECT_GRACE`] in case the page
        /// comes back. Otherwise (logout, tab closed) the agent is gone now.
        dropped: bool,
    },
}

/// How long an agent whose page dropped off mid-call (or while ringing or
/// wrapping up) keeps that call before the desk takes them for gone.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(10);

/// After a dropped page, when to look at the agent's audio, and how long
/// without a frame (a live page sends one every 20 ms) means the browser
/// is gone.
const MEDIA_CHECK_AFTER: Duration = Duration::from_millis(300);
const MEDIA_SILENT: Duration = Duration::from_millis(250);

/// A call the flow hands to a queue.
pub struct QueuedCall {
    pub call: String,
    pub queue: String,
    pub priority: i64,
    pub issue_type: Option<String>,
    /// Shown to the agent: the caller's number, the IVR path, what the
    /// lookups found and the flow's enqueue data.
    pub caller: String,
    /// Where the call came from (the trunk): a callback dials back through it
    /// unless `--callback-via` says otherwise.
    pub reply_via: SocketAddr,
    pub path: Vec<String>,
    pub data: Value,
    pub notices: mpsc::Sender<DeskNotice>,
}

/// What the desk tells a call actor.
pub enum DeskNotice {
    /// No queue of that name: the actor falls back to holding.
    UnknownQueue,
    /// The caller's place (1 = next); `estimated_wait` only when the queue
    /// has handle times to base it on.
    Position {
        position: usize,
        estimated_wait: Option<Duration>,
    },
    Offered {
        agent: String,
    },
    OfferEnded {
        agent: String,
        outcome: &'static str,
    },
    /// The agent accepted; their audio leg follows.
    Accepted {
        agent: String,
    },
    Leg {
        agent: String,
        leg: AgentLeg,
    },
    AgentHungUp {
        agent: String,
    },
    /// The agent's page went away mid-call: back in the queue, or released.
    AgentLost {
        agent: String,
        requeued: bool,
    },
    Overflow {
        target: Overflow,
    },
    Hold {
        on: bool,
    },
    Mute {
        on: bool,
    },
    Dtmf {
        digit: char,
    },
    /// The agent left wrap-up for this call (submitted, or the timer ran out).
    WrapUpDone {
        agent: String,
        disposition: Option<String>,
        notes: String,
        seconds: u64,
    },
}

/// Everything that reaches the desk.
pub enum DeskInput {
    Enqueue(QueuedCall),
    /// The call is over (caller or gateway hung up).
    CallEnded {
        call: String,
    },
    /// The agent's audio leg is up.
    LegConnected {
        call: String,
        agent: String,
    },
    Agent(AgentSocketEvent),
    /// A callback leg ended: the customer talked to the agent (`answered`)
    /// or did not answer. `attempt` as in its [`CallbackJob`].
    CallbackEnded {
        entry: String,
        attempt: u32,
        answered: bool,
    },
    /// The customer picked up the callback leg of `attempt`.
    CallbackAnswered {
        entry: String,
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
        due: Vec<BookedCallback>,
        cancelled: Vec<String>,
    },
    /// The media check after `agent`'s page dropped off: their browser
    /// sent no audio lately (`silent`), so it is gone, not blipping.
    MediaCheck {
        agent: String,
        silent: bool,
    },
    /// Queue and agent configuration (at start and after admin changes).
    Configure {
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
    },
    /// What `agent`'s page shows when idle (see [`DeskHandle::overview`]).
    Overview {
        agent: String,
        reply: oneshot::Sender<DeskOverview>,
    },
}

/// The live part of an agent's overview (the `/agent/ws` route adds their
/// calls today from the records).
#[derive(Debug, Clone, Default)]
pub struct DeskOverview {
    /// The queues the agent is a member of, by name.
    pub queues: Vec<QueueSummary>,
    /// Callback entries waiting in those queues, oldest first.
    pub callbacks: Vec<CallbackSummary>,
    /// Wrap-ups this agent finished since the desk started, and the last
    /// one's call: when it moves, that call's record is about to change.
    pub finished: u64,
    pub last_finished: Option<String>,
}

/// Cloned into call actors, the agent socket route and the admin API.
#[derive(Clone)]
pub struct DeskHandle {
    tx: mpsc::Sender<DeskInput>,
    states: watch::Receiver<Vec<AgentView>>,
    hub: AgentMediaHub,
}

impl DeskHandle {
    pub async fn send(&self, input: DeskInput) {
        if self.tx.send(input).await.is_err() {
            tracing::error!("agent desk is gone");
        }
    }

    /// Live agent states (for the admin API); wakes on every change.
    pub fn watch_states(&self) -> watch::Receiver<Vec<AgentView>> {
        self.states.clone()
    }

    pub fn hub(&self) -> &AgentMediaHub {
        &self.hub
    }

    /// `agent`'s queues and the callbacks in them; `None` if the desk is gone.
    pub async fn overview(&self, agent: &str) -> Option<DeskOverview> {
        let (reply, rx) = oneshot::channel();
        let input = DeskInput::Overview {
            agent: agent.to_owned(),
            reply,
        };
        self.tx.send(input).await.ok()?;
        rx.await.ok()
    }
}

struct DeskCall {
    queued: QueuedCall,
    agent: Option<AgentId>,
    /// When the live offer (ring) ends, for the page's countdown.
    offer_expires: Option<Instant>,
    /// Set once the call became a callback entry: attempts dialled so far.
    callback: Option<u32>,
    /// The current callback attempt's customer picked up.
    callback_answered: bool,
}

impl DeskCall {
    fn new(queued: QueuedCall, callback: Option<u32>) -> Self {
        DeskCall {
            queued,
            agent: None,
            offer_expires: None,
            callback,
            callback_answered: false,
        }
    }
}

/// Sends a callback step to the book, if there is one (a closed book costs
/// the report, not the call).
fn report(
    book: &Option<mpsc::UnboundedSender<CallbackProgress>>,
    call: &CallId,
    state: &'static str,
    attempts: u32,
    agent: Option<&str>,
    result: Option<&str>,
) {
    if let Some(book) = book {
        let _ = book.send(CallbackProgress {
            entry: call.as_str().to_owned(),
            state,
            attempts,
            agent: agent.map(str::to_owned),
            result: result.map(str::to_owned),
        });
    }
}

/// An agent's wrap-up: the call, since when, and (disposition, notes) once submitted.
type WrapUp = (CallId, Instant, Option<(String, String)>);

struct Socket {
    conn: u64,
    tx: mpsc::Sender<ServerMsg>,
}

/// The desk task's state.
pub struct AgentDesk {
    acd: Acd,
    hub: AgentMediaHub,
    sockets: HashMap<AgentId, Socket>,
    calls: HashMap<CallId, DeskCall>,
    /// Agents in wrap-up: for which call, since when, what they submitted.
    wrapping: HashMap<AgentId, WrapUp>,
    states: watch::Sender<Vec<AgentView>>,
    /// Instant ↔ wall clock, for the page's Unix-millisecond times.
    epoch: (Instant, SystemTime),
    /// Places callback legs; `None` until the router is up.
    dialer: Option<Dialer>,
    /// Where callback steps go (the `callbacks` table); `None`: nowhere.
    book: Option<mpsc::UnboundedSender<CallbackProgress>>,
    /// Due bookings no queue could take (logged once; tried again after
    /// the next configuration change).
    unplaced: std::collections::HashSet<String>,
    /// Agents whose page dropped off, until when they may come back.
    grace: HashMap<AgentId, Instant>,
    /// Calls to forget (if done) once the ACD's actions of this turn are out.
    pending_forget: Vec<CallId>,
    /// The desk's own input, for checks it starts (weak: the desk ends
    /// when every handle is gone).
    me: Option<mpsc::WeakSender<DeskInput>>,
    /// Per agent: wrap-ups finished and the last one's call (for the overview).
    finished: HashMap<AgentId, (u64, CallId)>,
}

impl AgentDesk {
    /// Starts the desk on the current runtime.
    pub fn start(
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
        hub: AgentMediaHub,
    ) -> DeskHandle {
        let (tx, rx) = mpsc::channel(1024);
        let (states, states_rx) = watch::channel(Vec::new());
        let desk = AgentDesk {
            acd: Acd::new(queues, agents),
            hub: hub.clone(),
            sockets: HashMap::new(),
            calls: HashMap::new(),
            wrapping: HashMap::new(),
            states,
            epoch: (Instant::now(), SystemTime::now()),
            dialer: None,
            book: None,
            unplaced: Default::default(),
            grace: HashMap::new(),
            pending_forget: Vec::new(),
            me: Some(tx.downgrade()),
            finished: HashMap::new(),
        };
        tokio::spawn(desk.run(rx));
        DeskHandle {
            tx,
            states: states_rx,
            hub,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<DeskInput>) {
        self.publish_states();
        loop {
            let deadline = self
                .acd
                .poll_timeout()
                .into_iter()
                .chain(self.grace.values().copied())
                .min();
            let sleep = async move {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => self.on_input(input).await,
                    None => break,
                },
                _ = sleep => {
                    let now = Instant::now();
                    self.acd.handle_timeout(now);
                    self.expire_grace(now);
                }
            }
            self.drain_actions().await;
            for call in std::mem::take(&mut self.pending_forget) {
                self.forget_if_done(&call);
            }
        }
    }

    async fn on_input(&mut self, input: DeskInput) {
        let now = Instant::now();
        match input {
            DeskInput::Enqueue(q) => {
                let call = CallId::new(q.call.clone());
                let queue = QueueName::new(q.queue.clone());
                let r =
                    self.acd
                        .enqueue(call.clone(), &queue, q.priority, q.issue_type.clone(), now);
                match r {
                    Ok(()) => {
                        self.calls.insert(call, DeskCall::new(q, None));
                    }
                    Err(e) => {
                        tracing::warn!(call = %q.call, queue = %q.queue, error = %e, "cannot queue the call");
                        let _ = q.notices.send(DeskNotice::UnknownQueue).await;
                    }
                }
            }
            DeskInput::CallEnded { call } => {
                let call = CallId::new(call);
                // The caller who asked for a callback hung up: the entry
                // (perhaps already with an agent dialling) lives on.
                if self.calls.get(&call).is_some_and(|c| c.callback.is_some()) {
                    return;
                }
                if let Some(agent) = self.calls.get(&call).and_then(|c| c.agent.clone()) {
                    self.to_agent(
                        &agent,
                        ServerMsg::Ended {
                            call: call.as_str().to_owned(),
                            by: "caller".into(),
                        },
                    )
                    .await;
                }
                self.acd.call_ended(&call, now);
                // Forgotten once the ACD's actions are out: a connected
                // call stays while its agent wraps up.
                self.pending_forget.push(call);
            }
            DeskInput::CallbackEnded {
                entry,
                attempt,
                answered,
            } => {
                let call = CallId::new(entry);
                // A leg of an earlier attempt (its agent was lost, the entry
                // went back and another agent is dialling now) has no say.
                let current = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.callback == Some(attempt) && c.agent.is_some());
                if !current {
                    return;
                }
                if let Some(agent) = self.calls.get(&call).and_then(|c| c.agent.clone()) {
                    let by = if answered { "caller" } else { "no_answer" };
                    self.to_agent(
                        &agent,
                        ServerMsg::Ended {
                            call: call.as_str().to_owned(),
                            by: by.into(),
                        },
                    )
                    .await;
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
            DeskInput::CallbackAnswered { entry, attempt } => {
                if let Some(c) = self.calls.get_mut(&CallId::new(entry))
                    && c.callback == Some(attempt)
                {
                    c.callback_answered = true;
                }
            }
            DeskInput::SetDialer(dialer) => self.dialer = Some(dialer),
            DeskInput::SetCallbackBook(book) => self.book = Some(book),
            DeskInput::Booked { due, cancelled } => self.take_booked(due, cancelled, now),
            DeskInput::MediaCheck { agent, silent } => {
                let id = AgentId::new(agent);
                if silent && self.grace.remove(&id).is_some() && !self.sockets.contains_key(&id) {
                    tracing::info!(agent = %id.as_str(), "agent's browser is gone too (no audio from it)");
                    self.acd.agent_disconnected(&id, now);
                }
            }
            DeskInput::LegConnected { call, agent } => {
                self.to_agent(&AgentId::new(agent), ServerMsg::Connected { call })
                    .await;
            }
            DeskInput::Agent(ev) => self.on_agent(ev, now).await,
            DeskInput::Configure { queues, agents } => {
                // A queue may exist now for bookings that had none.
                self.unplaced.clear();
                // What the admin removed (or deactivated) leaves the ACD too;
                // an agent on a call finishes it first (the ACD sees to that).
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
                    let _ = self.acd.remove_agent(&a, now);
                    // A removed agent's open page is told it is offline.
                }
                self.publish_states();
            }
            DeskInput::Overview { agent, reply } => {
                let _ = reply.send(self.overview(&AgentId::new(agent), now));
            }
        }
    }

    /// The agent's queues (waiting callers, longest wait, agents
    /// available) and the callback entries in them.
    fn overview(&self, agent: &AgentId, now: Instant) -> DeskOverview {
        let mut out = DeskOverview::default();
        if let Some((n, call)) = self.finished.get(agent) {
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
            .filter(|q| q.members.contains(agent))
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
                        .map(|d| d.queued.caller.clone())
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

    async fn on_agent(&mut self, ev: AgentSocketEvent, now: Instant) {
        match ev {
            AgentSocketEvent::Connected { agent, conn, tx } => {
                let id = AgentId::new(agent.clone());
                if self.acd.agent(&id).is_none() {
                    self.acd
                        .upsert_agent(AgentConfig::new(id.clone(), agent.clone()), now);
                }
                if self.grace.remove(&id).is_some() {
                    tracing::info!(agent = %id.as_str(), "agent page back within the grace period");
                }
                self.sockets.insert(id.clone(), Socket { conn, tx });
                if let Some(view) = self.acd.agent(&id)
                    && view.state == AgentState::Offline
                {
                    let _ = self.acd.agent_login(&id, now);
                }
            }
            AgentSocketEvent::Disconnected {
                agent,
                conn,
                dropped,
            } => {
                let id = AgentId::new(agent);
                if self.sockets.get(&id).is_some_and(|s| s.conn == conn) {
                    self.sockets.remove(&id);
                    let busy = self.acd.agent(&id).is_some_and(|v| {
                        matches!(
                            v.state,
                            AgentState::Ringing { .. }
                                | AgentState::OnCall { .. }
                                | AgentState::WrapUp { .. }
                        )
                    });
                    if dropped && busy {
                        tracing::info!(agent = %id.as_str(), grace_s = RECONNECT_GRACE.as_secs(), "agent page dropped off; holding their call");
                        if let Some(AgentState::OnCall { call }) =
                            self.acd.agent(&id).map(|v| v.state)
                        {
                            self.check_media(&id, &call);
                        }
                        self.grace.insert(id, now + RECONNECT_GRACE);
                    } else {
                        self.acd.agent_disconnected(&id, now);
                    }
                }
            }
            AgentSocketEvent::Message { agent, conn, msg } => {
                let id = AgentId::new(agent);
                if self.sockets.get(&id).is_none_or(|s| s.conn != conn) {
                    return; // a stale socket of a reconnected page
                }
                if let Err(message) = self.on_message(&id, msg, now).await {
                    self.to_agent(&id, ServerMsg::Error { message }).await;
                }
            }
        }
    }

    async fn on_message(
        &mut self,
        agent: &AgentId,
        msg: ClientMsg,
        now: Instant,
    ) -> Result<(), String> {
        let current = self.acd.agent(agent).map(|v| v.state);
        match msg {
            ClientMsg::Hello {} => {
                if let Some(state) = current {
                    self.send_state(agent, &state, now).await;
                    if let AgentState::Ringing { call } = &state
                        && let Some(offer) = self.offer_message(call, now)
                    {
                        self.to_agent(agent, offer).await;
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
                let Some(notices) = self.calls.get(&call_id).map(|c| c.queued.notices.clone())
                else {
                    return Err(format!("call {call} is gone"));
                };
                let hub = self.hub.clone();
                let page = self.sockets.get(agent).map(|s| s.tx.clone());
                let agent = agent.as_str().to_owned();
                // The hub answers after a round trip to its task: do not hold the desk.
                tokio::spawn(async move {
                    match hub.accept_offer(&format!("{agent}/{call}"), &sdp).await {
                        Ok(leg) => {
                            if let Some(page) = &page {
                                let _ = page
                                    .send(ServerMsg::SdpAnswer {
                                        call: call.clone(),
                                        sdp: leg.answer_sdp.clone(),
                                    })
                                    .await;
                            }
                            let _ = notices.send(DeskNotice::Leg { agent, leg }).await;
                        }
                        Err(e) => {
                            tracing::warn!(%agent, %call, error = %e, "agent SDP refused");
                            if let Some(page) = &page {
                                let _ = page
                                    .send(ServerMsg::Error {
                                        message: format!("audio could not be set up: {e}"),
                                    })
                                    .await;
                            }
                        }
                    }
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
                )
                .await;
                Ok(())
            }
            ClientMsg::Hold { on } => self.notify_current(current, DeskNotice::Hold { on }).await,
            ClientMsg::Mute { on } => self.notify_current(current, DeskNotice::Mute { on }).await,
            ClientMsg::Dtmf { digit } => {
                let Some(d) = digit.chars().next().filter(|_| digit.chars().count() == 1) else {
                    return Err(format!("not one key: {digit:?}"));
                };
                self.notify_current(current, DeskNotice::Dtmf { digit: d })
                    .await
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

    async fn notify_current(
        &mut self,
        state: Option<AgentState>,
        notice: DeskNotice,
    ) -> Result<(), String> {
        match state {
            Some(AgentState::OnCall { call }) => {
                self.notify(&call, notice).await;
                Ok(())
            }
            _ => Err("no call in progress".into()),
        }
    }

    async fn drain_actions(&mut self) {
        let mut changed = false;
        while let Some(action) = self.acd.poll_action() {
            let now = Instant::now();
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
                        self.to_agent(&agent, msg).await;
                    }
                    self.notify(
                        &call,
                        DeskNotice::Offered {
                            agent: agent.as_str().to_owned(),
                        },
                    )
                    .await;
                }
                AcdAction::Withdraw { call, agent } => {
                    self.to_agent(
                        &agent,
                        ServerMsg::OfferWithdrawn {
                            call: call.as_str().to_owned(),
                        },
                    )
                    .await;
                }
                AcdAction::Connect { call, agent } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.agent = Some(agent.clone());
                    }
                    if self.calls.get(&call).is_some_and(|c| c.callback.is_some()) {
                        self.dial_callback(&call, &agent, now);
                        continue;
                    }
                    self.notify(
                        &call,
                        DeskNotice::Accepted {
                            agent: agent.as_str().to_owned(),
                        },
                    )
                    .await;
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
                    )
                    .await;
                }
                AcdAction::Overflow { call, target } => {
                    // A callback needs a number to dial: a caller ID that is
                    // a SIP user name (`caller`) gets voicemail instead, and
                    // the entry the ACD kept is let go.
                    let undialable = matches!(target, Overflow::Callback)
                        && self
                            .calls
                            .get(&call)
                            .is_some_and(|c| !hotline_ivr::callback::is_dialable(&c.queued.caller));
                    let target = if undialable {
                        tracing::info!(call = %call.as_str(), "no number to call back: voicemail instead");
                        self.acd.cancel_callback(&call, now);
                        Overflow::Voicemail
                    } else {
                        target
                    };
                    let callback = matches!(target, Overflow::Callback);
                    self.notify(&call, DeskNotice::Overflow { target }).await;
                    if callback && let Some(c) = self.calls.get_mut(&call) {
                        // The entry keeps its place; the caller hangs up and
                        // hears nothing more of it (a closed channel).
                        c.callback = Some(0);
                        c.queued.notices = mpsc::channel(1).0;
                    }
                    self.forget_if_done(&call);
                }
                AcdAction::CallbackAbandoned { call, attempts } => {
                    tracing::warn!(call = %call.as_str(), attempts, "callback abandoned: the customer never answered");
                    self.progress(&call, "abandoned", attempts, None, None);
                    self.forget_if_done(&call);
                }
                AcdAction::AgentState { agent, state, .. } => {
                    changed = true;
                    self.on_agent_state(&agent, &state, now).await;
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
                    )
                    .await;
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
                    )
                    .await;
                }
            }
        }
        if changed {
            self.publish_states();
        }
    }

    async fn on_agent_state(&mut self, agent: &AgentId, state: &AgentState, now: Instant) {
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
            )
            .await;
            let n = self.finished.get(agent).map_or(0, |f| f.0) + 1;
            self.finished.insert(agent.clone(), (n, call.clone()));
            self.forget_if_done(&call);
        }
        if let AgentState::WrapUp { call, until } = state {
            self.wrapping
                .insert(agent.clone(), (call.clone(), now, None));
            self.to_agent(
                agent,
                ServerMsg::WrapUp {
                    call: call.as_str().to_owned(),
                    until: self.unix_ms(*until),
                },
            )
            .await;
        }
        self.send_state(agent, state, now).await;
    }

    async fn send_state(&mut self, agent: &AgentId, state: &AgentState, now: Instant) {
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
        self.to_agent(agent, msg).await;
    }

    /// Shortly after an on-call agent's page dropped off: if their browser
    /// has stopped sending audio too, it is gone (closed, crashed), and
    /// holding the call would only leave the caller in silence.
    fn check_media(&self, agent: &AgentId, call: &CallId) {
        let hub = self.hub.clone();
        let session = format!("{}/{}", agent.as_str(), call.as_str());
        let agent = agent.as_str().to_owned();
        let Some(desk) = self.me.clone() else {
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(MEDIA_CHECK_AFTER).await;
            let since = hub.since_last_media(&session).await;
            // No session (the page never set up audio): unknown, keep the grace.
            let silent = since.is_some_and(|d| d >= MEDIA_SILENT);
            if let Some(desk) = desk.upgrade() {
                let _ = desk.send(DeskInput::MediaCheck { agent, silent }).await;
            }
        });
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
        if self.acd.call(call).is_none() && !self.wrapping.values().any(|(c, ..)| c == call) {
            self.calls.remove(call);
        }
    }

    /// `agent` accepted a callback entry: the router dials the customer,
    /// and the new leg hears the desk from now on.
    /// Reports a step of callback entry `call` to the book.
    fn progress(
        &self,
        call: &CallId,
        state: &'static str,
        attempts: u32,
        agent: Option<AgentId>,
        result: Option<&str>,
    ) {
        let agent = agent.as_ref().map(AgentId::as_str);
        report(&self.book, call, state, attempts, agent, result);
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
            let queued = QueuedCall {
                call: b.entry.clone(),
                queue,
                priority: 0,
                issue_type: None,
                caller: b.number.clone(),
                // Unknown trunk: the dialler's --callback-via must say.
                reply_via: b.via.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                path: vec![format!("callback booked for {}", b.slot)],
                data: serde_json::json!({ "flow": { "callback": { "number": b.number, "slot": b.slot } } }),
                // Nobody on the line: notices have nowhere to go.
                notices: mpsc::channel(1).0,
            };
            self.calls
                .insert(call.clone(), DeskCall::new(queued, Some(b.attempts)));
            self.progress(&call, "queued", b.attempts, None, None);
        }
    }

    fn dial_callback(&mut self, call: &CallId, agent: &AgentId, now: Instant) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let attempt = c.callback.unwrap_or(0) + 1;
        c.callback = Some(attempt);
        c.callback_answered = false;
        let book = self.book.clone();
        report(&book, call, "dialing", attempt, Some(agent.as_str()), None);
        let (tx, rx) = mpsc::channel(64);
        c.queued.notices = tx;
        let dialled = match &self.dialer {
            Some(dialer) => {
                let job = CallbackJob {
                    entry: call.as_str().to_owned(),
                    number: c.queued.caller.clone(),
                    via: dialer.via.unwrap_or(c.queued.reply_via),
                    agent: agent.as_str().to_owned(),
                    queue: c.queued.queue.clone(),
                    attempt,
                };
                dialer.dial(job, rx)
            }
            None => false,
        };
        if !dialled {
            tracing::error!(call = %call.as_str(), "cannot place the callback");
            self.acd.callback_failed(call, now);
        }
    }

    fn offer_message(&self, call: &CallId, now: Instant) -> Option<ServerMsg> {
        let c = self.calls.get(call)?;
        let expires = c
            .offer_expires
            .map(|t| t.saturating_duration_since(now).as_millis() as u64)
            .unwrap_or(0);
        Some(ServerMsg::Offer {
            call: call.as_str().to_owned(),
            caller: c.queued.caller.clone(),
            issue_type: c.queued.issue_type.clone(),
            path: c.queued.path.clone(),
            data: c.queued.data.clone(),
            expires_in_ms: expires,
            callback: c.callback.is_some(),
        })
    }

    async fn to_agent(&self, agent: &AgentId, msg: ServerMsg) {
        if let Some(s) = self.sockets.get(agent) {
            // A page that cannot keep up loses messages, not the desk's time;
            // it catches up with `hello` after reconnecting.
            if s.tx.try_send(msg).is_err() {
                tracing::warn!(agent = %agent.as_str(), "agent page is not reading; message dropped");
            }
        }
    }

    async fn notify(&self, call: &CallId, notice: DeskNotice) {
        if let Some(c) = self.calls.get(call) {
            // A closed channel: a callback entry whose caller has hung up.
            if let Err(mpsc::error::TrySendError::Full(_)) = c.queued.notices.try_send(notice) {
                tracing::warn!(call = %call.as_str(), "call actor is not reading desk notices");
            }
        }
    }

    fn publish_states(&self) {
        let views: Vec<AgentView> = self.acd.agents().collect();
        self.states.send_replace(views);
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
}
