//! The automatic call distributor: queues, agents and calls in queue as one
//! sans-IO state machine (inputs with the time in, actions and the next
//! wake-up out).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::action::{AcdAction, AgentState, OfferOutcome, REASON_NO_ANSWER, REASON_NOT_READY};
use crate::config::{AgentConfig, AgentLostPolicy, Overflow, QueueConfig, Strategy};
use crate::error::AcdError;
use crate::ids::{AgentId, CallId, QueueName};
use crate::view::{AgentView, CallView, QueueView};

/// How many recent handle times the average is taken over: recent enough to
/// follow a busy day, long enough not to jump with every call.
const HANDLE_TIME_WINDOW: usize = 20;

/// The ACD. See the crate documentation for how a shell drives it.
#[derive(Debug)]
pub struct Acd {
    queues: BTreeMap<QueueName, Queue>,
    agents: BTreeMap<AgentId, Agent>,
    calls: BTreeMap<CallId, Call>,
    actions: VecDeque<AcdAction>,
    /// The latest time seen; time never runs backwards inside the ACD even if
    /// a shell passes an older instant.
    clock: Option<Instant>,
    /// Arrival order, to break ties between calls queued at the same instant.
    next_seq: u64,
}

#[derive(Debug)]
struct Queue {
    config: QueueConfig,
    /// Index into `config.members` where the next round-robin search starts.
    rr_next: usize,
    handle_times: VecDeque<Duration>,
}

#[derive(Debug)]
struct Agent {
    config: AgentConfig,
    state: AgentState,
    since: Option<Instant>,
    /// Since when the agent has been free of work: what longest-idle orders
    /// by. A withdrawn or declined offer does not reset it.
    idle_since: Option<Instant>,
    /// Some exactly while `state` is `Ringing`.
    offer: Option<OfferClock>,
    /// Asked to go away while busy: applied when the work is done.
    pending_away: Option<String>,
    /// Some while `OnCall` or `WrapUp`: for the handle time and wrap-up.
    handling: Option<Handling>,
    /// Removed by an admin while on a call; deleted when the call ends.
    retiring: bool,
}

#[derive(Debug, Clone, Copy)]
struct OfferClock {
    offered_at: Instant,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct Handling {
    queue: QueueName,
    connected_at: Instant,
    /// Taken from the queue at connect, so later queue edits or removal do
    /// not change a call in progress.
    wrap_up: Duration,
}

#[derive(Debug)]
struct Call {
    queue: QueueName,
    priority: i64,
    issue_type: Option<String>,
    queued_at: Instant,
    deadline: Instant,
    seq: u64,
    /// Agents ringing for this call now.
    offers: BTreeSet<AgentId>,
    /// The agent talking to the caller.
    agent: Option<AgentId>,
    /// Agents offered this call in the current round: nobody is offered the
    /// same call twice until every staffed eligible member has had it.
    tried: BTreeSet<AgentId>,
    last_position: Option<usize>,
    /// Overflows into other queues so far; bounds overflow cycles.
    hops: usize,
    /// Some once the call is a callback entry: the caller hung up and is to
    /// be called back in this place. Never goes back to `None`.
    callback: Option<Callback>,
}

#[derive(Debug, Clone)]
struct Callback {
    /// Failed outbound attempts so far.
    attempts: u32,
    /// Not offered before this (after a failed attempt or a lost agent);
    /// cleared by its timer.
    retry_after: Option<Instant>,
    /// The queue it became a callback in: it never moves (never overflows).
    queue: QueueName,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    // Declared in the order same-instant timers fire: a callback due for a
    // retry is back in line before wrap-up frees an agent, and finishing
    // wrap-up frees an agent before an offer times out or a call overflows.
    Retry(CallId),
    WrapUp(AgentId),
    Offer(AgentId),
    MaxWait(CallId),
}

impl Acd {
    /// An ACD with these queues and agents, every agent offline.
    pub fn new(
        queues: impl IntoIterator<Item = QueueConfig>,
        agents: impl IntoIterator<Item = AgentConfig>,
    ) -> Self {
        let mut acd = Acd {
            queues: BTreeMap::new(),
            agents: BTreeMap::new(),
            calls: BTreeMap::new(),
            actions: VecDeque::new(),
            clock: None,
            next_seq: 0,
        };
        for q in queues {
            acd.queues.insert(q.name.clone(), Queue::new(q));
        }
        for a in agents {
            acd.agents.insert(a.id.clone(), Agent::new(a));
        }
        acd
    }

    // ----- outputs -------------------------------------------------------

    /// The next action for the shell, oldest first.
    pub fn poll_action(&mut self) -> Option<AcdAction> {
        self.actions.pop_front()
    }

    /// When [`Acd::handle_timeout`] should next be called: the earliest offer
    /// expiry, wrap-up end or max wait. `None` when nothing is timed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// Fires every timer due by `now`, in time order, each at its own instant.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.begin(now);
        self.end(now);
    }

    // ----- calls ---------------------------------------------------------

    /// A call enters `queue` (the flow's `enqueue` node). `issue_type` is the
    /// flow's issue type, which skills-based queues route on.
    pub fn enqueue(
        &mut self,
        call: CallId,
        queue: &QueueName,
        priority: i64,
        issue_type: Option<String>,
        now: Instant,
    ) -> Result<(), AcdError> {
        let now = self.begin(now);
        self.insert_call(call, queue, priority, issue_type, None, now)?;
        self.end(now);
        Ok(())
    }

    /// The caller hung up (or the call ended otherwise): offers are
    /// withdrawn, the call leaves its queue, its agent goes to wrap-up.
    /// Unknown calls are ignored: the ACD may have let go of it already.
    ///
    /// **Callback entries are not ended by this**, connected or not: once a
    /// call is a callback entry its caller's original leg no longer matters,
    /// and the shell reports that leg's hang-up here after the conversion
    /// (possibly after an agent has already accepted the callback). A
    /// callback entry leaves only by [`Acd::callback_done`],
    /// [`Acd::callback_failed`] (out of attempts), [`Acd::cancel_callback`],
    /// [`Acd::agent_hung_up`] or the removal of its queue.
    pub fn call_ended(&mut self, call: &CallId, now: Instant) {
        let now = self.begin(now);
        if let Some(c) = self.calls.get(call).filter(|c| c.callback.is_none()) {
            let agent = c.agent.clone();
            self.withdraw_all(call, now);
            self.calls.remove(call);
            if let Some(agent) = agent {
                self.after_call(&agent, now);
            }
        }
        self.end(now);
    }

    // ----- callbacks -----------------------------------------------------

    /// A callback booked earlier (in the IVR, or restored after a restart)
    /// is due: it enters `queue` as a callback entry at the back, with
    /// `attempts` already spent, and is offered to agents like a call. It
    /// never overflows and nobody hears positions for it.
    pub fn enqueue_callback(
        &mut self,
        call: CallId,
        queue: &QueueName,
        attempts: u32,
        now: Instant,
    ) -> Result<(), AcdError> {
        let now = self.begin(now);
        let callback = Callback {
            attempts,
            retry_after: None,
            queue: queue.clone(),
        };
        self.insert_call(call, queue, 0, None, Some(callback), now)?;
        self.end(now);
        Ok(())
    }

    /// The caller asked to be called back while waiting, keeping their
    /// place: the call becomes a callback entry in place (same queue,
    /// priority and arrival order), its offers are withdrawn, and it is
    /// offered to agents like a call. No action announces it (the shell
    /// asked); the shell then hangs up the caller's leg, and the
    /// [`Acd::call_ended`] for that leg leaves the entry alone.
    pub fn request_callback(&mut self, call: &CallId, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        let c = self
            .calls
            .get(call)
            .ok_or_else(|| AcdError::UnknownCall(call.clone()))?;
        if c.callback.is_some() {
            return Err(AcdError::AlreadyCallback(call.clone()));
        }
        if c.agent.is_some() {
            return Err(AcdError::AlreadyConnected(call.clone()));
        }
        self.make_callback(call, now);
        self.end(now);
        Ok(())
    }

    /// The outbound leg of callback entry `call` ended after the customer
    /// was connected to the agent: the entry leaves the ACD and the agent
    /// goes to wrap-up, as [`Acd::call_ended`] for a connected call. Ignored
    /// unless `call` is a callback entry connected to an agent (for
    /// instance after [`AcdAction::AgentLost`] put it back in its place).
    pub fn callback_done(&mut self, call: &CallId, now: Instant) {
        let now = self.begin(now);
        if let Some(agent) = self.connected_callback(call) {
            self.calls.remove(call);
            self.after_call(&agent, now);
        }
        self.end(now);
    }

    /// The outbound leg of callback entry `call` failed (busy, no answer)
    /// after an agent accepted it: the agent goes to wrap-up as after a
    /// call, and the entry goes back to its place with one more failed
    /// attempt, not offered again before the queue's
    /// [`QueueConfig::callback_retry`]. After
    /// [`QueueConfig::callback_attempts`] failed attempts (or if its queue
    /// was removed meanwhile) it leaves the ACD instead, with
    /// [`AcdAction::CallbackAbandoned`]. Ignored unless `call` is a callback
    /// entry connected to an agent.
    pub fn callback_failed(&mut self, call: &CallId, now: Instant) {
        let now = self.begin(now);
        if let Some(agent) = self.connected_callback(call) {
            let queues = &self.queues;
            let keep = self.calls.get_mut(call).is_some_and(|c| {
                let policy = queues
                    .get(&c.queue)
                    .map(|q| (q.config.callback_attempts.max(1), q.config.callback_retry));
                c.agent = None;
                c.tried.clear();
                c.last_position = None;
                let Some(cb) = c.callback.as_mut() else {
                    return false;
                };
                cb.attempts = cb.attempts.saturating_add(1);
                match policy {
                    Some((limit, retry)) if cb.attempts < limit => {
                        cb.retry_after = retry_at(now, retry);
                        true
                    }
                    _ => false,
                }
            });
            self.after_call(&agent, now);
            if !keep {
                self.abandon_callback(call);
            }
        }
        self.end(now);
    }

    /// The callback request is cancelled (by an admin or the customer):
    /// offers are withdrawn and the entry leaves the ACD; an agent already
    /// on it goes to wrap-up (the shell ends the outbound leg). Ignored
    /// unless `call` is a callback entry.
    pub fn cancel_callback(&mut self, call: &CallId, now: Instant) {
        let now = self.begin(now);
        if let Some(c) = self.calls.get(call).filter(|c| c.callback.is_some()) {
            let agent = c.agent.clone();
            self.withdraw_all(call, now);
            self.calls.remove(call);
            if let Some(agent) = agent {
                self.after_call(&agent, now);
            }
        }
        self.end(now);
    }

    // ----- agents --------------------------------------------------------

    /// The agent logged in. They start away ([`REASON_NOT_READY`]) until
    /// [`Acd::set_available`]; logging in again (a reconnect) keeps their state.
    pub fn agent_login(&mut self, agent: &AgentId, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        let a = self.agent_ref(agent)?;
        if a.state == AgentState::Offline {
            self.set_state(
                agent,
                AgentState::Away {
                    reason: REASON_NOT_READY.to_owned(),
                },
                now,
            );
        }
        self.end(now);
        Ok(())
    }

    /// The agent wants calls. While on a call or in wrap-up this cancels a
    /// pending [`Acd::set_away`]; they become available when the work is done.
    pub fn set_available(&mut self, agent: &AgentId, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        let a = self.agent_mut(agent)?;
        match a.state {
            AgentState::Offline => return Err(AcdError::NotLoggedIn(agent.clone())),
            AgentState::Away { .. } => self.set_state(agent, AgentState::Available, now),
            AgentState::OnCall { .. } | AgentState::WrapUp { .. } => a.pending_away = None,
            AgentState::Available | AgentState::Ringing { .. } => {}
        }
        self.end(now);
        Ok(())
    }

    /// The agent steps away. A ringing offer counts as declined; on a call
    /// or in wrap-up they go away when the work is done.
    pub fn set_away(
        &mut self,
        agent: &AgentId,
        reason: impl Into<String>,
        now: Instant,
    ) -> Result<(), AcdError> {
        let now = self.begin(now);
        let reason = reason.into();
        let a = self.agent_mut(agent)?;
        match a.state.clone() {
            AgentState::Offline => return Err(AcdError::NotLoggedIn(agent.clone())),
            AgentState::Available | AgentState::Away { .. } => {
                self.set_state(agent, AgentState::Away { reason }, now)
            }
            AgentState::Ringing { call } => self.end_offer(
                agent,
                &call,
                OfferOutcome::Declined,
                AgentState::Away { reason },
                now,
            ),
            AgentState::OnCall { .. } | AgentState::WrapUp { .. } => a.pending_away = Some(reason),
        }
        self.end(now);
        Ok(())
    }

    /// The agent logged out. Same effect as [`Acd::agent_disconnected`].
    pub fn agent_logout(&mut self, agent: &AgentId, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        self.agent_ref(agent)?;
        self.go_offline(agent, now);
        self.end(now);
        Ok(())
    }

    /// The agent's browser is gone. A ringing offer is withdrawn and the call
    /// offered elsewhere; a call in progress is requeued or released by its
    /// queue's [`AgentLostPolicy`] ([`AcdAction::AgentLost`]); the agent goes
    /// offline. Unknown agents are ignored.
    pub fn agent_disconnected(&mut self, agent: &AgentId, now: Instant) {
        let now = self.begin(now);
        if self.agents.contains_key(agent) {
            self.go_offline(agent, now);
        }
        self.end(now);
    }

    /// The agent answers `call`. Refused, changing nothing, unless the offer
    /// is live: not withdrawn, expired, declined or won by another agent.
    pub fn accept(&mut self, agent: &AgentId, call: &CallId, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        self.live_offer(agent, call)?;
        let queue = self.calls[call].queue.clone();
        let wrap_up = self
            .queues
            .get(&queue)
            .map_or(Duration::ZERO, |q| q.config.wrap_up);
        self.end_offer(
            agent,
            call,
            OfferOutcome::Accepted,
            AgentState::OnCall { call: call.clone() },
            now,
        );
        let a = self.agents.get_mut(agent).expect("live offer has an agent");
        a.handling = Some(Handling {
            queue,
            connected_at: now,
            wrap_up,
        });
        let c = self.calls.get_mut(call).expect("live offer has a call");
        c.agent = Some(agent.clone());
        c.last_position = None;
        self.actions.push_back(AcdAction::Connect {
            call: call.clone(),
            agent: agent.clone(),
        });
        // Ring-all: the first accept wins, the others stop ringing.
        self.withdraw_all(call, now);
        self.end(now);
        Ok(())
    }

    /// The agent declines `call`; it is offered to someone else and the
    /// agent is available again (but not offered this call again until the
    /// other staffed members have had it).
    pub fn decline(
        &mut self,
        agent: &AgentId,
        call: &CallId,
        now: Instant,
    ) -> Result<(), AcdError> {
        let now = self.begin(now);
        self.live_offer(agent, call)?;
        self.end_offer(
            agent,
            call,
            OfferOutcome::Declined,
            AgentState::Available,
            now,
        );
        self.end(now);
        Ok(())
    }

    /// The agent hung up `call`: the call leaves the ACD (the shell ends the
    /// caller's side) and the agent goes to wrap-up. For a callback entry
    /// this is the same as [`Acd::callback_done`]; a shell whose agent gives
    /// up before the customer answers reports [`Acd::callback_failed`].
    pub fn agent_hung_up(
        &mut self,
        agent: &AgentId,
        call: &CallId,
        now: Instant,
    ) -> Result<(), AcdError> {
        let now = self.begin(now);
        let a = self.agent_ref(agent)?;
        if a.state != (AgentState::OnCall { call: call.clone() }) {
            return Err(AcdError::NotOnCall {
                agent: agent.clone(),
                call: call.clone(),
            });
        }
        self.calls.remove(call);
        self.after_call(agent, now);
        self.end(now);
        Ok(())
    }

    /// The agent finished wrap-up before its timer.
    pub fn wrap_up_done(&mut self, agent: &AgentId, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        let a = self.agent_ref(agent)?;
        if !matches!(a.state, AgentState::WrapUp { .. }) {
            return Err(AcdError::NotInWrapUp(agent.clone()));
        }
        self.finish_wrap_up(agent, now);
        self.end(now);
        Ok(())
    }

    // ----- admin ---------------------------------------------------------

    /// Adds or replaces a queue. Waiting calls keep their deadlines. If a
    /// queue stops being ring-all, calls ringing several agents keep only
    /// their earliest offer.
    pub fn upsert_queue(&mut self, config: QueueConfig, now: Instant) {
        let now = self.begin(now);
        let name = config.name.clone();
        match self.queues.get_mut(&name) {
            Some(q) => q.config = config,
            None => {
                self.queues.insert(name.clone(), Queue::new(config));
            }
        }
        if self.queues[&name].config.strategy != Strategy::RingAll {
            let ringing: Vec<CallId> = self
                .calls
                .iter()
                .filter(|(_, c)| c.queue == name && c.offers.len() > 1)
                .map(|(id, _)| id.clone())
                .collect();
            for call in ringing {
                let mut offers: Vec<(Instant, AgentId)> = self.calls[&call]
                    .offers
                    .iter()
                    .map(|a| (self.agents[a].offer.expect("ringing").offered_at, a.clone()))
                    .collect();
                offers.sort();
                for (_, agent) in offers.into_iter().skip(1) {
                    self.withdraw(&agent, &call, now);
                }
            }
        }
        self.end(now);
    }

    /// Removes a queue. Its waiting calls overflow at once to its overflow
    /// target, except that [`Overflow::Callback`] becomes
    /// [`Overflow::Voicemail`] (there is no place left to keep); its waiting
    /// callback entries are given up ([`AcdAction::CallbackAbandoned`]);
    /// connected calls carry on.
    pub fn remove_queue(&mut self, name: &QueueName, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        let q = self
            .queues
            .remove(name)
            .ok_or_else(|| AcdError::UnknownQueue(name.clone()))?;
        let waiting: Vec<CallId> = self
            .ordered_calls()
            .into_iter()
            .filter(|id| self.calls[id].queue == *name)
            .collect();
        for call in waiting {
            if self.calls.get(&call).is_some_and(|c| c.callback.is_some()) {
                // Its place is gone with the queue.
                self.withdraw_all(&call, now);
                self.abandon_callback(&call);
                continue;
            }
            let target = match &q.config.overflow {
                // No place left to keep.
                Overflow::Callback => Overflow::Voicemail,
                other => other.clone(),
            };
            self.overflow(&call, target, now);
        }
        self.end(now);
        Ok(())
    }

    /// Adds an agent (offline) or updates one's name and skills, keeping its
    /// state. Re-adding an agent removed mid-call cancels the removal.
    pub fn upsert_agent(&mut self, config: AgentConfig, now: Instant) {
        let now = self.begin(now);
        match self.agents.get_mut(&config.id) {
            Some(a) => {
                a.config = config;
                a.retiring = false;
            }
            None => {
                self.agents.insert(config.id.clone(), Agent::new(config));
            }
        }
        self.end(now);
    }

    /// Removes an agent. A ringing offer is withdrawn and the call offered
    /// elsewhere. An agent on a call is not cut off: they get no new offers
    /// and are removed when the call ends (no wrap-up).
    pub fn remove_agent(&mut self, agent: &AgentId, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        let a = self.agent_mut(agent)?;
        if matches!(a.state, AgentState::OnCall { .. }) {
            a.retiring = true;
        } else {
            self.go_offline(agent, now);
            self.agents.remove(agent);
        }
        self.end(now);
        Ok(())
    }

    // ----- queries -------------------------------------------------------

    /// Place of a waiting call in its queue (1 = next); `None` if unknown or
    /// connected. Calls ringing an agent count: they are still waiting, and
    /// so do callback entries: they hold their place.
    pub fn position(&self, call: &CallId) -> Option<usize> {
        // Kept current by every input (see `refresh_positions`), so a
        // snapshot of many calls costs no re-ranking.
        let c = self.calls.get(call)?;
        c.agent.is_none().then_some(c.last_position).flatten()
    }

    /// Expected time until an agent picks up `call`: its position times the
    /// queue's average handle time, shared among the agents staffing it.
    /// `None` while the queue has no handle time yet: a figure with nothing
    /// behind it is a promise the caller will hold us to.
    pub fn estimated_wait(&self, call: &CallId) -> Option<Duration> {
        let position = self.position(call)?;
        self.estimate(&self.calls[call].queue, position)
    }

    pub fn agent(&self, agent: &AgentId) -> Option<AgentView> {
        self.agents.get(agent).map(|a| a.view())
    }

    /// Every agent, by id.
    pub fn agents(&self) -> impl Iterator<Item = AgentView> + '_ {
        self.agents.values().map(Agent::view)
    }

    pub fn call(&self, call: &CallId) -> Option<CallView> {
        self.calls.get(call).map(|c| self.call_view(call, c))
    }

    /// Every call the ACD holds (waiting, ringing or connected), by id.
    pub fn calls(&self) -> impl Iterator<Item = CallView> + '_ {
        self.calls.iter().map(|(id, c)| self.call_view(id, c))
    }

    pub fn queue(&self, name: &QueueName) -> Option<QueueView> {
        let q = self.queues.get(name)?;
        let mut waiting: Vec<CallView> = self
            .calls
            .iter()
            .filter(|(_, c)| c.queue == *name && c.agent.is_none())
            .map(|(id, c)| self.call_view(id, c))
            .collect();
        waiting.sort_by_key(|v| v.position);
        Some(QueueView {
            name: name.clone(),
            strategy: q.config.strategy,
            members: q.config.members.clone(),
            waiting,
            average_handle_time: q.average_handle_time(),
        })
    }

    /// Every queue, by name.
    pub fn queues(&self) -> impl Iterator<Item = QueueView> + '_ {
        self.queues.keys().filter_map(|name| self.queue(name))
    }

    pub fn queue_config(&self, name: &QueueName) -> Option<&QueueConfig> {
        self.queues.get(name).map(|q| &q.config)
    }

    /// Checks the ACD's internal invariants: offers and calls agree both
    /// ways, one live offer per call outside ring-all, no call (callback
    /// entries included) connected to two agents, no call left waiting while
    /// an agent could take it; a callback entry stays in the queue it became
    /// one in (it never overflows) and is neither offered nor connected
    /// while its retry delay runs, which is always in the future. For tests
    /// and debug assertions in the shell.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut on_call: BTreeMap<&CallId, &AgentId> = BTreeMap::new();
        for (id, a) in &self.agents {
            if let AgentState::OnCall { call } = &a.state
                && let Some(other) = on_call.insert(call, id)
            {
                return Err(format!("{call} connected to both {other} and {id}"));
            }
            match &a.state {
                AgentState::Ringing { call } => {
                    let c = self
                        .calls
                        .get(call)
                        .ok_or(format!("{id} rings for unknown call {call}"))?;
                    if !c.offers.contains(id) || c.agent.is_some() {
                        return Err(format!("{id} rings for {call} which has no such offer"));
                    }
                    if a.offer.is_none() {
                        return Err(format!("{id} rings without an offer clock"));
                    }
                }
                AgentState::OnCall { call } => {
                    let c = self
                        .calls
                        .get(call)
                        .ok_or(format!("{id} on unknown call {call}"))?;
                    if c.agent.as_ref() != Some(id) {
                        return Err(format!("{id} on {call} connected to {:?}", c.agent));
                    }
                    if a.handling.is_none() {
                        return Err(format!("{id} on call without handling"));
                    }
                }
                _ => {
                    if a.offer.is_some() {
                        return Err(format!("{id} has an offer clock while {:?}", a.state));
                    }
                }
            }
            if a.retiring && !matches!(a.state, AgentState::OnCall { .. }) {
                return Err(format!("{id} retiring while {:?}", a.state));
            }
        }
        let mut ranks = BTreeMap::new();
        let mut per_queue: BTreeMap<&QueueName, usize> = BTreeMap::new();
        for id in self.ordered_calls() {
            let r = per_queue.entry(&self.calls[&id].queue).or_insert(0);
            *r += 1;
            ranks.insert(id, *r);
        }
        for (id, c) in &self.calls {
            if let Some(cb) = &c.callback {
                if cb.queue != c.queue {
                    return Err(format!(
                        "callback {id} moved from {} to {}",
                        cb.queue, c.queue
                    ));
                }
                if let Some(at) = cb.retry_after {
                    if !c.offers.is_empty() || c.agent.is_some() {
                        return Err(format!("callback {id} served before its retry at {at:?}"));
                    }
                    if self.clock.is_none_or(|now| at <= now) {
                        return Err(format!("callback {id} retry overdue"));
                    }
                }
            }
            for agent in &c.offers {
                let a = self.agents.get(agent);
                if a.map(|a| &a.state) != Some(&AgentState::Ringing { call: id.clone() }) {
                    return Err(format!("{id} offered to {agent} who is not ringing for it"));
                }
            }
            if let Some(agent) = &c.agent {
                if !c.offers.is_empty() {
                    return Err(format!("{id} connected to {agent} but still offered"));
                }
                let a = self.agents.get(agent);
                if a.map(|a| &a.state) != Some(&AgentState::OnCall { call: id.clone() }) {
                    return Err(format!("{id} connected to {agent} who is not on it"));
                }
                continue;
            }
            let Some(q) = self.queues.get(&c.queue) else {
                return Err(format!("{id} waits in missing queue {}", c.queue));
            };
            if c.last_position != ranks.get(id).copied() {
                return Err(format!(
                    "{id} at {:?}, ranked {:?}",
                    c.last_position,
                    ranks.get(id)
                ));
            }
            let ring_all = q.config.strategy == Strategy::RingAll;
            if !ring_all && c.offers.len() > 1 {
                return Err(format!("{id} offered to {:?} outside ring-all", c.offers));
            }
            if c.retry_pending() {
                continue;
            }
            if (ring_all || c.offers.is_empty()) && !self.candidates(c).0.is_empty() {
                return Err(format!(
                    "{id} waits while {:?} could take it",
                    self.candidates(c).0
                ));
            }
        }
        Ok(())
    }

    // ----- the machine ---------------------------------------------------

    /// Every input starts here: time moves on and overdue timers fire first,
    /// so an accept after its offer expired is refused even if the shell has
    /// not called `handle_timeout` yet.
    fn begin(&mut self, now: Instant) -> Instant {
        let now = self.clock.map_or(now, |c| c.max(now));
        let mut fired = false;
        while let Some((due, timer)) = self.next_timer().filter(|(due, _)| *due <= now) {
            let at = self.clock.map_or(due, |c| c.max(due));
            self.clock = Some(at);
            self.fire(timer, at);
            self.dispatch(at);
            fired = true;
        }
        if fired {
            // A refused input returns before `end`; positions must still
            // reflect what the timers changed.
            self.refresh_positions();
        }
        self.clock = Some(now);
        now
    }

    /// Every input ends here: free agents take waiting calls and changed
    /// positions are announced.
    fn end(&mut self, now: Instant) {
        self.dispatch(now);
        self.refresh_positions();
    }

    fn next_timer(&self) -> Option<(Instant, Timer)> {
        let agents = self
            .agents
            .iter()
            .filter_map(|(id, a)| match (&a.state, a.offer) {
                (AgentState::WrapUp { until, .. }, _) => Some((*until, Timer::WrapUp(id.clone()))),
                (AgentState::Ringing { .. }, Some(o)) => {
                    Some((o.expires, Timer::Offer(id.clone())))
                }
                _ => None,
            });
        let calls = self
            .calls
            .iter()
            .filter(|(_, c)| c.agent.is_none())
            .filter_map(|(id, c)| match &c.callback {
                None => Some((c.deadline, Timer::MaxWait(id.clone()))),
                Some(cb) => cb.retry_after.map(|at| (at, Timer::Retry(id.clone()))),
            });
        agents.chain(calls).min()
    }

    fn fire(&mut self, timer: Timer, at: Instant) {
        match timer {
            Timer::Retry(call) => {
                if let Some(cb) = self.calls.get_mut(&call).and_then(|c| c.callback.as_mut()) {
                    cb.retry_after = None;
                }
            }
            Timer::WrapUp(agent) => self.finish_wrap_up(&agent, at),
            Timer::Offer(agent) => {
                if let AgentState::Ringing { call } = self.agents[&agent].state.clone() {
                    self.actions.push_back(AcdAction::OfferTimedOut {
                        call: call.clone(),
                        agent: agent.clone(),
                    });
                    let away = AgentState::Away {
                        reason: REASON_NO_ANSWER.to_owned(),
                    };
                    self.end_offer(&agent, &call, OfferOutcome::Timeout, away, at);
                }
            }
            Timer::MaxWait(call) => {
                let target = self.queues[&self.calls[&call].queue]
                    .config
                    .overflow
                    .clone();
                self.overflow(&call, target, at);
            }
        }
    }

    /// Waiting calls in service order: higher priority first, then longer wait.
    fn ordered_calls(&self) -> Vec<CallId> {
        let mut order: Vec<(_, CallId)> = self
            .calls
            .iter()
            .filter(|(_, c)| c.agent.is_none())
            .map(|(id, c)| (c.order_key(), id.clone()))
            .collect();
        order.sort();
        order.into_iter().map(|(_, id)| id).collect()
    }

    /// Offers waiting calls to free agents, best call first. Offers only
    /// ever take free agents, so one pass leaves no call that could be
    /// offered unoffered.
    fn dispatch(&mut self, at: Instant) {
        for call in self.ordered_calls() {
            let c = &self.calls[&call];
            if c.retry_pending() {
                continue;
            }
            let strategy = self.queues[&c.queue].config.strategy;
            if strategy != Strategy::RingAll && !c.offers.is_empty() {
                continue;
            }
            let (candidates, new_round) = self.candidates(c);
            if candidates.is_empty() {
                continue;
            }
            if new_round {
                self.calls.get_mut(&call).expect("listed").tried.clear();
            }
            let chosen = match strategy {
                Strategy::RingAll => candidates,
                Strategy::RoundRobin => vec![self.next_in_turn(&call, &candidates)],
                Strategy::LongestIdle | Strategy::SkillsPriority => {
                    // Candidates come in member order, so ties go to the
                    // earlier member.
                    let longest = candidates
                        .iter()
                        .min_by_key(|a| self.agents[*a].idle_since)
                        .expect("non-empty")
                        .clone();
                    vec![longest]
                }
            };
            for agent in chosen {
                self.offer(&agent, &call, at);
            }
        }
    }

    /// Free agents who may be offered `call` now, in member order, and
    /// whether they start a new round (everyone staffed has had it).
    fn candidates(&self, c: &Call) -> (Vec<AgentId>, bool) {
        let Some(q) = self.queues.get(&c.queue) else {
            return (Vec::new(), false);
        };
        // Most of the time nobody is free: answer that without allocating.
        let anyone_free = q.config.members.iter().any(|id| {
            self.agents
                .get(id)
                .is_some_and(|a| a.state == AgentState::Available)
        });
        if !anyone_free {
            return (Vec::new(), false);
        }
        let skill = q.config.required_skill(c.issue_type.as_deref());
        let members: Vec<(&AgentId, &Agent)> = q
            .config
            .members
            .iter()
            .enumerate()
            .filter(|(i, id)| !q.config.members[..*i].contains(id))
            .map(|(_, id)| id)
            .filter_map(|id| self.agents.get(id).map(|a| (id, a)))
            .filter(|(_, a)| !a.retiring && skill.is_none_or(|s| a.config.has_skill(s)))
            .collect();
        let free: Vec<AgentId> = members
            .iter()
            .filter(|(_, a)| a.state == AgentState::Available)
            .map(|(id, _)| (*id).clone())
            .collect();
        let untried: Vec<AgentId> = free
            .iter()
            .filter(|id| !c.tried.contains(*id))
            .cloned()
            .collect();
        if !untried.is_empty() {
            return (untried, false);
        }
        // Everyone free has had this call. Start over only when no staffed
        // member is still to try it and nobody is ringing for it: otherwise
        // a decliner would be rung again while a colleague is busy.
        let round_over = c.offers.is_empty()
            && !members
                .iter()
                .any(|(id, a)| a.state.is_staffed() && !c.tried.contains(*id));
        if round_over && !free.is_empty() {
            (free, true)
        } else {
            (Vec::new(), false)
        }
    }

    fn next_in_turn(&mut self, call: &CallId, candidates: &[AgentId]) -> AgentId {
        let q = self
            .queues
            .get_mut(&self.calls[call].queue)
            .expect("waiting call has a queue");
        let n = q.config.members.len();
        let start = q.rr_next % n.max(1);
        let (idx, agent) = (0..n)
            .map(|k| (start + k) % n)
            .map(|i| (i, &q.config.members[i]))
            .find(|(_, id)| candidates.contains(id))
            .expect("candidates are members");
        let agent = agent.clone();
        q.rr_next = (idx + 1) % n;
        agent
    }

    fn offer(&mut self, agent: &AgentId, call: &CallId, at: Instant) {
        let c = self.calls.get_mut(call).expect("offered call exists");
        c.offers.insert(agent.clone());
        c.tried.insert(agent.clone());
        let queue = c.queue.clone();
        let expires = at + self.queues[&queue].config.offer_timeout;
        self.agents
            .get_mut(agent)
            .expect("offered agent exists")
            .offer = Some(OfferClock {
            offered_at: at,
            expires,
        });
        self.set_state(agent, AgentState::Ringing { call: call.clone() }, at);
        self.actions.push_back(AcdAction::Offer {
            call: call.clone(),
            agent: agent.clone(),
            queue,
            expires,
        });
    }

    /// Ends a live offer with `outcome`, moving the agent to `next`.
    fn end_offer(
        &mut self,
        agent: &AgentId,
        call: &CallId,
        outcome: OfferOutcome,
        next: AgentState,
        at: Instant,
    ) {
        if let Some(c) = self.calls.get_mut(call) {
            c.offers.remove(agent);
        }
        let clock = self
            .agents
            .get_mut(agent)
            .and_then(|a| a.offer.take())
            .expect("ending a live offer");
        self.actions.push_back(AcdAction::OfferOutcome {
            call: call.clone(),
            agent: agent.clone(),
            outcome,
            offered_at: clock.offered_at,
            at,
        });
        self.set_state(agent, next, at);
    }

    /// Takes an offer back; the agent is free again.
    fn withdraw(&mut self, agent: &AgentId, call: &CallId, at: Instant) {
        self.actions.push_back(AcdAction::Withdraw {
            call: call.clone(),
            agent: agent.clone(),
        });
        self.end_offer(
            agent,
            call,
            OfferOutcome::Withdrawn,
            AgentState::Available,
            at,
        );
    }

    fn withdraw_all(&mut self, call: &CallId, at: Instant) {
        let ringing: Vec<AgentId> = self.calls[call].offers.iter().cloned().collect();
        for agent in ringing {
            self.withdraw(&agent, call, at);
        }
    }

    fn overflow(&mut self, call: &CallId, target: Overflow, at: Instant) {
        if self.calls.get(call).is_none_or(|c| c.callback.is_some()) {
            return; // a callback entry never overflows
        }
        if target == Overflow::Callback {
            self.make_callback(call, at);
            self.actions.push_back(AcdAction::Overflow {
                call: call.clone(),
                target,
            });
            return;
        }
        self.withdraw_all(call, at);
        let c = self.calls.get_mut(call).expect("overflowing call exists");
        let target = match target {
            Overflow::Queue(name) => match self.queues.get(&name) {
                Some(q) if c.hops < self.queues.len() => {
                    c.queue = name.clone();
                    c.deadline = at + q.config.max_wait;
                    c.tried.clear();
                    c.hops += 1;
                    c.last_position = None;
                    self.actions.push_back(AcdAction::Overflow {
                        call: call.clone(),
                        target: Overflow::Queue(name),
                    });
                    return;
                }
                _ => Overflow::Hangup,
            },
            other => other,
        };
        self.calls.remove(call);
        self.actions.push_back(AcdAction::Overflow {
            call: call.clone(),
            target,
        });
    }

    /// Makes waiting `call` a callback entry in place: same queue, priority,
    /// arrival time and order, so its position does not change.
    /// A new call (or callback entry) at the back of `queue`.
    fn insert_call(
        &mut self,
        call: CallId,
        queue: &QueueName,
        priority: i64,
        issue_type: Option<String>,
        callback: Option<Callback>,
        now: Instant,
    ) -> Result<(), AcdError> {
        if self.calls.contains_key(&call) {
            return Err(AcdError::AlreadyQueued(call));
        }
        let q = self
            .queues
            .get(queue)
            .ok_or_else(|| AcdError::UnknownQueue(queue.clone()))?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.calls.insert(
            call,
            Call {
                queue: queue.clone(),
                priority,
                issue_type,
                queued_at: now,
                deadline: now + q.config.max_wait,
                seq,
                offers: BTreeSet::new(),
                agent: None,
                tried: BTreeSet::new(),
                last_position: None,
                hops: 0,
                callback,
            },
        );
        Ok(())
    }

    fn make_callback(&mut self, call: &CallId, at: Instant) {
        self.withdraw_all(call, at);
        if let Some(c) = self.calls.get_mut(call) {
            c.tried.clear();
            c.callback = Some(Callback {
                attempts: 0,
                retry_after: None,
                queue: c.queue.clone(),
            });
        }
    }

    /// The agent talking on callback entry `call`, if it is one and connected.
    fn connected_callback(&self, call: &CallId) -> Option<AgentId> {
        self.calls
            .get(call)
            .filter(|c| c.callback.is_some())
            .and_then(|c| c.agent.clone())
    }

    /// Lets go of callback entry `call`, which has no offer and no agent.
    fn abandon_callback(&mut self, call: &CallId) {
        if let Some(c) = self.calls.remove(call) {
            let attempts = c.callback.map_or(0, |cb| cb.attempts);
            self.actions.push_back(AcdAction::CallbackAbandoned {
                call: call.clone(),
                attempts,
            });
        }
    }

    /// The agent's call is over (either side hung up).
    fn after_call(&mut self, agent: &AgentId, at: Instant) {
        let a = self.agents.get_mut(agent).expect("agent on call exists");
        let AgentState::OnCall { call } = a.state.clone() else {
            return;
        };
        let wrap_up = a.handling.as_ref().map_or(Duration::ZERO, |h| h.wrap_up);
        if a.retiring {
            self.finish_handling(agent, at);
            self.set_state(agent, AgentState::Offline, at);
            self.agents.remove(agent);
        } else if wrap_up.is_zero() {
            self.finish_wrap_up(agent, at);
        } else {
            let until = at + wrap_up;
            self.set_state(agent, AgentState::WrapUp { call, until }, at);
        }
    }

    fn finish_wrap_up(&mut self, agent: &AgentId, at: Instant) {
        self.finish_handling(agent, at);
        let a = self.agents.get_mut(agent).expect("agent exists");
        let next = match a.pending_away.take() {
            Some(reason) => AgentState::Away { reason },
            None => AgentState::Available,
        };
        self.set_state(agent, next, at);
    }

    /// Records the handle time (connect to end of wrap-up) for estimates.
    fn finish_handling(&mut self, agent: &AgentId, at: Instant) {
        let Some(h) = self.agents.get_mut(agent).and_then(|a| a.handling.take()) else {
            return;
        };
        if let Some(q) = self.queues.get_mut(&h.queue) {
            if q.handle_times.len() == HANDLE_TIME_WINDOW {
                q.handle_times.pop_front();
            }
            q.handle_times
                .push_back(at.saturating_duration_since(h.connected_at));
        }
    }

    fn go_offline(&mut self, agent: &AgentId, at: Instant) {
        let a = self.agents.get_mut(agent).expect("agent exists");
        a.pending_away = None;
        match a.state.clone() {
            AgentState::Offline => return,
            AgentState::Ringing { call } => self.withdraw(agent, &call, at),
            AgentState::OnCall { call } => {
                a.handling = None;
                self.lose_call(&call, agent, at);
            }
            AgentState::WrapUp { .. } => self.finish_handling(agent, at),
            AgentState::Available | AgentState::Away { .. } => {}
        }
        self.set_state(agent, AgentState::Offline, at);
        if self.agents[agent].retiring {
            self.agents.remove(agent);
        }
    }

    /// The agent talking on `call` vanished: the caller must not be left in
    /// silence, so the call is requeued or released by its queue's policy. A
    /// callback entry goes back to its place whatever the policy (given up
    /// only if its queue is gone).
    fn lose_call(&mut self, call: &CallId, agent: &AgentId, at: Instant) {
        let c = self.calls.get_mut(call).expect("connected call exists");
        if let Some(cb) = c.callback.as_mut() {
            // Nobody is on hold: back in its place whatever the policy, as
            // after a failed attempt but without counting one.
            let retry = self.queues.get(&c.queue).map(|q| q.config.callback_retry);
            if let Some(retry) = retry {
                cb.retry_after = retry_at(at, retry);
                c.agent = None;
                c.tried.clear();
                c.last_position = None;
            }
            self.actions.push_back(AcdAction::AgentLost {
                call: call.clone(),
                agent: agent.clone(),
                requeued: retry.is_some(),
            });
            if retry.is_none() {
                self.abandon_callback(call);
            }
            return;
        }
        let requeue = self
            .queues
            .get(&c.queue)
            .filter(|q| q.config.on_agent_lost == AgentLostPolicy::Requeue);
        let requeued = match requeue {
            Some(q) => {
                c.agent = None;
                c.tried.clear();
                c.deadline = at + q.config.max_wait;
                c.last_position = None;
                true
            }
            None => {
                self.calls.remove(call);
                false
            }
        };
        self.actions.push_back(AcdAction::AgentLost {
            call: call.clone(),
            agent: agent.clone(),
            requeued,
        });
    }

    fn set_state(&mut self, agent: &AgentId, state: AgentState, at: Instant) {
        let a = self.agents.get_mut(agent).expect("agent exists");
        let from_ringing = matches!(a.state, AgentState::Ringing { .. });
        if state == AgentState::Available && (!from_ringing || a.idle_since.is_none()) {
            a.idle_since = Some(at);
        }
        a.state = state.clone();
        a.since = Some(at);
        self.actions.push_back(AcdAction::AgentState {
            agent: agent.clone(),
            state,
            at,
        });
    }

    fn refresh_positions(&mut self) {
        let mut rank: BTreeMap<QueueName, usize> = BTreeMap::new();
        for call in self.ordered_calls() {
            let queue = self.calls[&call].queue.clone();
            let position = {
                let r = rank.entry(queue.clone()).or_insert(0);
                *r += 1;
                *r
            };
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            if c.last_position != Some(position) {
                c.last_position = Some(position);
                // A callback entry holds its place silently: nobody listens.
                // A caller whose call rings an agent hears no position: the
                // agent may pick up mid-sentence.
                if c.callback.is_none() && c.offers.is_empty() {
                    let estimated_wait = self.estimate(&queue, position);
                    self.actions.push_back(AcdAction::Position {
                        call,
                        position,
                        estimated_wait,
                    });
                }
            }
        }
    }

    fn estimate(&self, queue: &QueueName, position: usize) -> Option<Duration> {
        let q = self.queues.get(queue)?;
        let handle_time = q.average_handle_time()?;
        let staffed = q
            .config
            .members
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|id| self.agents.get(*id).is_some_and(|a| a.state.is_staffed()))
            .count()
            .max(1);
        Some(handle_time * position as u32 / staffed as u32)
    }

    fn live_offer(&self, agent: &AgentId, call: &CallId) -> Result<(), AcdError> {
        let a = self.agent_ref(agent)?;
        let live = a.state == AgentState::Ringing { call: call.clone() }
            && self
                .calls
                .get(call)
                .is_some_and(|c| c.offers.contains(agent));
        if live {
            Ok(())
        } else {
            Err(AcdError::NoLiveOffer {
                agent: agent.clone(),
                call: call.clone(),
            })
        }
    }

    fn agent_ref(&self, agent: &AgentId) -> Result<&Agent, AcdError> {
        self.agents
            .get(agent)
            .ok_or_else(|| AcdError::UnknownAgent(agent.clone()))
    }

    fn agent_mut(&mut self, agent: &AgentId) -> Result<&mut Agent, AcdError> {
        self.agents
            .get_mut(agent)
            .ok_or_else(|| AcdError::UnknownAgent(agent.clone()))
    }

    fn call_view(&self, id: &CallId, c: &Call) -> CallView {
        CallView {
            call: id.clone(),
            queue: c.queue.clone(),
            priority: c.priority,
            issue_type: c.issue_type.clone(),
            queued_at: c.queued_at,
            deadline: c.deadline,
            offered_to: c.offers.iter().cloned().collect(),
            agent: c.agent.clone(),
            position: self.position(id),
            callback: c.callback.is_some(),
            attempts: c.callback.as_ref().map_or(0, |cb| cb.attempts),
            retry_after: c.callback.as_ref().and_then(|cb| cb.retry_after),
        }
    }
}

impl Queue {
    fn new(config: QueueConfig) -> Self {
        Queue {
            config,
            rr_next: 0,
            handle_times: VecDeque::new(),
        }
    }

    /// The mean of the recent handle times; `None` before the first.
    fn average_handle_time(&self) -> Option<Duration> {
        if self.handle_times.is_empty() {
            return None;
        }
        Some(self.handle_times.iter().sum::<Duration>() / self.handle_times.len() as u32)
    }
}

impl Agent {
    fn new(config: AgentConfig) -> Self {
        Agent {
            config,
            state: AgentState::Offline,
            since: None,
            idle_since: None,
            offer: None,
            pending_away: None,
            handling: None,
            retiring: false,
        }
    }

    fn view(&self) -> AgentView {
        AgentView {
            id: self.config.id.clone(),
            name: self.config.name.clone(),
            skills: self.config.skills.clone(),
            state: self.state.clone(),
            since: self.since,
            call: self.state.call().cloned(),
            removed: self.retiring,
        }
    }
}

impl Call {
    /// Service order: higher priority, then earlier arrival, then arrival order.
    /// Callback entries keep theirs, so they keep their place.
    fn order_key(&self) -> (Reverse<i64>, Instant, u64) {
        (Reverse(self.priority), self.queued_at, self.seq)
    }

    /// A callback entry waiting out its retry delay: holds its place but is
    /// not offered.
    fn retry_pending(&self) -> bool {
        self.callback
            .as_ref()
            .is_some_and(|cb| cb.retry_after.is_some())
    }
}

/// When a callback entry that failed (or lost its agent) at `at` may be
/// offered again; `None` (at once) for no delay.
fn retry_at(at: Instant, retry: Duration) -> Option<Instant> {
    if retry.is_zero() {
        None
    } else {
        at.checked_add(retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn drain(acd: &mut Acd) -> Vec<AcdAction> {
        std::iter::from_fn(|| acd.poll_action()).collect()
    }

    fn one_agent(wrap_up: u64, max_wait: u64) -> Acd {
        let q = QueueConfig {
            members: vec!["x".into()],
            wrap_up: secs(wrap_up),
            max_wait: secs(max_wait),
            ..QueueConfig::new("q")
        };
        Acd::new([q], [AgentConfig::new("x", "X")])
    }

    #[test]
    fn late_timers_fire_in_order_each_at_its_own_instant() {
        // x's wrap-up ends at t0+5; c2 would overflow at t0+8. The shell is
        // late and wakes at t0+7: x must have been offered c2 at t0+5.
        let mut acd = one_agent(5, 8);
        let t0 = Instant::now();
        acd.agent_login(&"x".into(), t0).unwrap();
        acd.set_available(&"x".into(), t0).unwrap();
        acd.enqueue("c1".into(), &"q".into(), 0, None, t0).unwrap();
        acd.accept(&"x".into(), &"c1".into(), t0).unwrap();
        acd.enqueue("c2".into(), &"q".into(), 0, None, t0).unwrap();
        acd.call_ended(&"c1".into(), t0);
        drain(&mut acd);
        acd.handle_timeout(t0 + secs(7));
        let acts = drain(&mut acd);
        assert!(acts.iter().any(|a| matches!(a,
            AcdAction::Offer { call, expires, .. }
                if call.as_str() == "c2" && *expires == t0 + secs(5) + secs(20))));
        assert!(!acts.iter().any(|a| matches!(a, AcdAction::Overflow { .. })));
    }

    #[test]
    fn time_never_runs_backwards() {
        let mut acd = one_agent(0, 60);
        let t0 = Instant::now() + secs(100);
        acd.agent_login(&"x".into(), t0).unwrap();
        // An older instant is taken as the latest one seen.
        acd.set_available(&"x".into(), t0 - secs(50)).unwrap();
        assert_eq!(acd.agent(&"x".into()).unwrap().since, Some(t0));
    }

    #[test]
    fn a_refused_input_still_brings_positions_up_to_date() {
        let mut acd = one_agent(0, 10);
        let t0 = Instant::now();
        acd.enqueue("c1".into(), &"q".into(), 0, None, t0).unwrap();
        acd.enqueue("c2".into(), &"q".into(), 0, None, t0 + secs(5))
            .unwrap();
        assert_eq!(acd.position(&"c2".into()), Some(2));
        // c1 overflows inside the refused call.
        assert!(acd.wrap_up_done(&"x".into(), t0 + secs(10)).is_err());
        assert_eq!(acd.position(&"c2".into()), Some(1));
        acd.check_invariants().unwrap();
    }

    #[test]
    fn a_new_round_starts_only_when_every_staffed_member_has_had_the_call() {
        let q = QueueConfig {
            members: vec!["x".into(), "y".into(), "z".into()],
            ..QueueConfig::new("q")
        };
        let agents = ["x", "y", "z"].map(|id| AgentConfig::new(id, id));
        let mut acd = Acd::new([q], agents);
        let t0 = Instant::now();
        for id in ["x", "y"] {
            acd.agent_login(&id.into(), t0).unwrap();
            acd.set_available(&id.into(), t0).unwrap();
        }
        acd.agent_login(&"z".into(), t0).unwrap(); // away: not staffed
        acd.enqueue("c".into(), &"q".into(), 0, None, t0).unwrap();
        let first = acd.call(&"c".into()).unwrap().offered_to[0].clone();
        acd.decline(&first, &"c".into(), t0).unwrap();
        let second = acd.call(&"c".into()).unwrap().offered_to[0].clone();
        assert_ne!(first, second);
        acd.decline(&second, &"c".into(), t0).unwrap();
        // Both staffed members declined; z is away and does not hold it up.
        assert_eq!(acd.call(&"c".into()).unwrap().offered_to.len(), 1);
        acd.check_invariants().unwrap();
    }
}
