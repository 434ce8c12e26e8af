//! The automatic call distributor: queues, agents and calls in queue as one
//! sans-IO state machine (inputs with the time in, actions and the next
//! wake-up out).
//!
//! This module owns the [`Acd`] itself and its private state (queues,
//! agents, calls and what hangs off them), the outputs
//! ([`Acd::poll_action`], [`Acd::poll_timeout`], [`Acd::handle_timeout`]),
//! the calls entering and leaving ([`Acd::enqueue`], [`Acd::call_ended`]),
//! and `begin` / `end`, which every input goes through. The
//! rest of the machine is one `impl Acd` per concern:
//!
//! - `queues`: queue admin, service order, positions and wait estimates;
//! - `agents`: agent sign-in, states, hang-up, wrap-up, going offline and
//!   agent admin;
//! - `offers`: dispatch, candidates, offering, accepting, declining and
//!   withdrawing (which agent a strategy picks is [`crate::Strategy`]'s, in
//!   `crate::strategy`);
//! - `callbacks`: callback entries;
//! - `overflow`: where a call goes after its max wait or its queue's removal;
//! - `timers`: the timed events and what firing each does;
//! - `invariants`: [`Acd::check_invariants`];
//! - `views`: read-only snapshots.

mod agents;
mod callbacks;
mod invariants;
mod offers;
mod overflow;
mod queues;
mod timers;
mod views;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::action::{AcdAction, AgentState};
use crate::config::{AgentConfig, QueueConfig};
use crate::error::AcdError;
use crate::ids::{AgentId, CallId, QueueName};

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
        self.rejoin(call, queue, priority, issue_type, Duration::ZERO, now)
    }

    /// A call that has waited `waited` already (on another ACD: a new
    /// cluster leader hears of it from the caller's node) enters `queue`
    /// where that wait puts it — behind calls of its priority that came
    /// earlier, ahead of later ones — and keeps its max-wait deadline from
    /// when it first queued (overdue: it overflows at once).
    pub fn rejoin(
        &mut self,
        call: CallId,
        queue: &QueueName,
        priority: i64,
        issue_type: Option<String>,
        waited: Duration,
        now: Instant,
    ) -> Result<(), AcdError> {
        let now = self.begin(now);
        let since = now.checked_sub(waited).unwrap_or(now);
        self.insert_call(call, queue, priority, issue_type, None, since)?;
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
        if self.calls.get(call).is_some_and(|c| c.callback.is_none()) {
            self.remove_call(call, now);
        }
        self.end(now);
    }

    /// Takes `call` out of the ACD: its offers withdrawn, the agent on it
    /// (if any) to what follows a call (wrap-up, or offline if retiring).
    pub(super) fn remove_call(&mut self, call: &CallId, now: Instant) {
        let agent = self.calls.get(call).and_then(|c| c.agent.clone());
        self.withdraw_all(call, now);
        self.calls.remove(call);
        if let Some(agent) = agent {
            self.after_call(&agent, now);
        }
    }

    /// A new call (or callback entry) in `queue`, queued since `queued_at`
    /// (`now` for a new one: at the back).
    fn insert_call(
        &mut self,
        call: CallId,
        queue: &QueueName,
        priority: i64,
        issue_type: Option<String>,
        callback: Option<Callback>,
        queued_at: Instant,
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
                queued_at,
                deadline: queued_at + q.config.max_wait,
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
}

/// Helpers shared by the unit tests of the `acd` modules.
#[cfg(test)]
mod testing {
    use std::time::Duration;

    use super::Acd;
    use crate::action::AcdAction;
    use crate::config::{AgentConfig, QueueConfig};

    pub(super) fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    pub(super) fn drain(acd: &mut Acd) -> Vec<AcdAction> {
        std::iter::from_fn(|| acd.poll_action()).collect()
    }

    /// Queue "q" with the one member "x" (agent "X"), offline.
    pub(super) fn one_agent(wrap_up: u64, max_wait: u64) -> Acd {
        let q = QueueConfig {
            members: vec!["x".into()],
            wrap_up: secs(wrap_up),
            max_wait: secs(max_wait),
            ..QueueConfig::new("q")
        };
        Acd::new([q], [AgentConfig::new("x", "X")])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::testing::{one_agent, secs};

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
}
