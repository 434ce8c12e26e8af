//! Randomized race test: many arrivals, accepts (stale ones too), declines,
//! hang-ups, disconnects, timeouts, admin edits and callback entries (by
//! overflow and by request; done, failed, cancelled, their original leg's
//! late hang-up) over 5 agents and 3 queues, on a fake clock. After every
//! step the ACD's own invariants and an independent model rebuilt from its
//! actions must agree: no call with two live offers outside ring-all, no
//! agent with two offers or calls, no call connected twice, every call
//! accounted for, and callback entries keep their queue, never overflow, are
//! never announced a position and are not offered before their retry time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use hotline_routing::{
    Acd, AcdAction, AcdError, AgentConfig, AgentId, AgentLostPolicy, AgentState, CallId,
    OfferOutcome, Overflow, QueueConfig, QueueName, Strategy,
};

const STEPS: usize = 10_000;
/// Waiting callback entries beyond which cancellations get frequent.
const CALLBACK_BACKLOG: usize = 12;
const AGENTS: usize = 5;
const STRATEGIES: [Strategy; 4] = [
    Strategy::LongestIdle,
    Strategy::RoundRobin,
    Strategy::RingAll,
    Strategy::SkillsPriority,
];

/// What the actions say, kept apart from the ACD's own bookkeeping.
#[derive(Default)]
struct Model {
    /// call → agent → offer expiry
    live: BTreeMap<CallId, BTreeMap<AgentId, Instant>>,
    agent_offer: BTreeMap<AgentId, CallId>,
    connected: BTreeMap<CallId, AgentId>,
    agent_call: BTreeMap<AgentId, CallId>,
    present: BTreeSet<CallId>,
    gone: BTreeSet<CallId>,
    recently_gone: Vec<CallId>,
    /// Every offer ever made, for stale accepts.
    history: Vec<(AgentId, CallId)>,
    ring_all: BTreeSet<QueueName>,
    accepted: BTreeSet<CallId>,
    connects: usize,
    /// The time of the input being applied (agents are only lost by inputs).
    now: Option<Instant>,
    /// Present call → its queue, as the actions say.
    queue_of: BTreeMap<CallId, QueueName>,
    /// Per queue: offer timeout, callback attempts, callback retry.
    policy: BTreeMap<QueueName, (Duration, u32, Duration)>,
    /// Callback entry → failed attempts.
    callbacks: BTreeMap<CallId, u32>,
    /// Callback entry → not to be offered before.
    retry: BTreeMap<CallId, Instant>,
    conversions: usize,
    callback_connects: usize,
    callbacks_done: usize,
    callbacks_failed: usize,
    callbacks_lost: usize,
    abandoned: usize,
}

impl Model {
    fn is_live(&self, agent: &AgentId, call: &CallId) -> bool {
        self.live.get(call).is_some_and(|m| m.contains_key(agent))
    }

    fn leave(&mut self, call: &CallId) {
        assert!(self.present.remove(call), "{call} left twice");
        self.queue_of.remove(call);
        self.callbacks.remove(call);
        self.retry.remove(call);
        self.gone.insert(call.clone());
        self.recently_gone.push(call.clone());
    }

    fn apply(&mut self, action: &AcdAction) {
        match action {
            AcdAction::Offer {
                call,
                agent,
                queue,
                expires,
            } => {
                assert!(self.present.contains(call), "offer of absent {call}");
                assert!(
                    !self.connected.contains_key(call),
                    "offer of connected {call}"
                );
                assert!(
                    !self.agent_offer.contains_key(agent),
                    "{agent} offered a second call"
                );
                assert!(
                    !self.agent_call.contains_key(agent),
                    "{agent} offered while on call"
                );
                let offers = self.live.entry(call.clone()).or_default();
                assert!(
                    offers.is_empty() || self.ring_all.contains(queue),
                    "{call} offered to {agent} while ringing {offers:?} outside ring-all"
                );
                offers.insert(agent.clone(), *expires);
                assert_eq!(
                    self.queue_of.get(call),
                    Some(queue),
                    "{call} offered from {queue}"
                );
                if let Some(retry) = self.retry.remove(call) {
                    let offered_at = *expires - self.policy[queue].0;
                    assert!(
                        offered_at >= retry,
                        "callback {call} offered at {offered_at:?} before its retry at {retry:?}"
                    );
                }
                self.agent_offer.insert(agent.clone(), call.clone());
                self.history.push((agent.clone(), call.clone()));
            }
            AcdAction::Withdraw { call, agent } | AcdAction::OfferTimedOut { call, agent } => {
                assert!(
                    self.is_live(agent, call),
                    "ended a dead offer {call}/{agent}"
                );
            }
            AcdAction::OfferOutcome {
                call,
                agent,
                outcome,
                offered_at,
                at,
            } => {
                assert!(offered_at <= at);
                let removed = self.live.get_mut(call).and_then(|m| m.remove(agent));
                assert!(removed.is_some(), "outcome of a dead offer {call}/{agent}");
                assert_eq!(self.agent_offer.remove(agent).as_ref(), Some(call));
                if *outcome == OfferOutcome::Accepted {
                    assert!(self.accepted.insert(call.clone()), "{call} accepted twice");
                }
            }
            AcdAction::Connect { call, agent } => {
                assert!(self.accepted.remove(call), "connect without accept");
                assert!(
                    self.connected.insert(call.clone(), agent.clone()).is_none(),
                    "{call} connected to two agents"
                );
                assert!(
                    self.agent_call
                        .insert(agent.clone(), call.clone())
                        .is_none(),
                    "{agent} on two calls"
                );
                self.connects += 1;
                if self.callbacks.contains_key(call) {
                    self.callback_connects += 1;
                }
            }
            AcdAction::AgentState { agent, state, .. } => {
                if !matches!(state, AgentState::OnCall { .. })
                    && let Some(call) = self.agent_call.remove(agent)
                {
                    assert_eq!(self.connected.remove(&call).as_ref(), Some(agent));
                }
            }
            AcdAction::Position { call, position, .. } => {
                assert!(*position >= 1);
                assert!(
                    !self.callbacks.contains_key(call),
                    "position announced for callback {call}"
                );
                assert!(self.present.contains(call), "position of absent {call}");
                assert!(
                    !self.connected.contains_key(call),
                    "position of connected {call}"
                );
                assert!(
                    self.live.get(call).is_none_or(|m| m.is_empty()),
                    "position announced to {call} while an offer is out"
                );
            }
            AcdAction::Overflow { call, target } => {
                assert!(self.live.get(call).is_none_or(|m| m.is_empty()));
                assert!(!self.connected.contains_key(call));
                assert!(
                    !self.callbacks.contains_key(call),
                    "callback {call} overflowed"
                );
                match target {
                    Overflow::Queue(q) => {
                        self.queue_of.insert(call.clone(), q.clone());
                    }
                    Overflow::Callback => {
                        // Stays, in its place.
                        self.callbacks.insert(call.clone(), 0);
                        self.conversions += 1;
                    }
                    _ => self.leave(call),
                }
            }
            AcdAction::AgentLost {
                call,
                agent,
                requeued,
            } => {
                assert_eq!(self.connected.remove(call).as_ref(), Some(agent));
                assert_eq!(self.agent_call.remove(agent).as_ref(), Some(call));
                if self.callbacks.contains_key(call) {
                    // Queues are never removed here: always back in place,
                    // whatever the policy, after the retry delay.
                    assert!(requeued, "callback {call} released");
                    self.callbacks_lost += 1;
                    let retry = self.policy[&self.queue_of[call]].2;
                    if !retry.is_zero() {
                        let now = self.now.expect("input time");
                        self.retry.insert(call.clone(), now + retry);
                    }
                } else if !requeued {
                    self.leave(call);
                }
            }
            AcdAction::CallbackAbandoned { call, attempts } => {
                assert!(!self.connected.contains_key(call));
                assert!(self.live.get(call).is_none_or(|m| m.is_empty()));
                let made = self.callbacks.get(call).copied();
                assert_eq!(made, Some(*attempts), "{call} abandoned");
                let limit = self.policy[&self.queue_of[call]].1.max(1);
                assert!(*attempts >= limit, "{call} abandoned after {attempts}");
                self.abandoned += 1;
                self.leave(call);
            }
        }
    }
}

struct Race {
    rng: fastrand::Rng,
    acd: Acd,
    model: Model,
    now: Instant,
    agents: Vec<AgentId>,
    queues: Vec<QueueConfig>,
    next_call: usize,
    stale_accepts_refused: usize,
}

impl Race {
    fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let agents: Vec<AgentId> = (0..AGENTS).map(|i| AgentId::new(format!("a{i}"))).collect();
        let queues: Vec<QueueConfig> = (0..3)
            .map(|i| {
                let mut members: Vec<AgentId> = agents
                    .iter()
                    .filter(|_| rng.u8(0..3) > 0)
                    .cloned()
                    .collect();
                rng.shuffle(&mut members);
                let mut qc = QueueConfig {
                    strategy: STRATEGIES[rng.usize(0..4)],
                    members,
                    max_wait: Duration::from_secs(rng.u64(20..60)),
                    offer_timeout: Duration::from_secs(rng.u64(2..8)),
                    wrap_up: Duration::from_secs(rng.u64(0..5)),
                    overflow: match i {
                        0 => Overflow::Queue(QueueName::new("q1")),
                        1 => Overflow::Callback,
                        _ if rng.bool() => Overflow::Queue(QueueName::new("q0")),
                        _ => Overflow::Voicemail,
                    },
                    callback_attempts: rng.u32(0..4),
                    callback_retry: Duration::from_secs(rng.u64(0..20)),
                    on_agent_lost: if rng.bool() {
                        AgentLostPolicy::Requeue
                    } else {
                        AgentLostPolicy::Release
                    },
                    ..QueueConfig::new(format!("q{i}"))
                };
                qc.skills.insert("billing".into(), "billing".into());
                qc.skills.insert("refund".into(), "refunds".into());
                qc
            })
            .collect();
        let configs: Vec<AgentConfig> = agents
            .iter()
            .map(|id| Self::agent_config(&mut rng, id))
            .collect();
        let mut model = Model::default();
        for qc in &queues {
            if qc.strategy == Strategy::RingAll {
                model.ring_all.insert(qc.name.clone());
            }
            model.policy.insert(
                qc.name.clone(),
                (qc.offer_timeout, qc.callback_attempts, qc.callback_retry),
            );
        }
        Race {
            acd: Acd::new(queues.clone(), configs),
            rng,
            model,
            now: Instant::now(),
            agents,
            queues,
            next_call: 0,
            stale_accepts_refused: 0,
        }
    }

    fn agent_config(rng: &mut fastrand::Rng, id: &AgentId) -> AgentConfig {
        let skills: Vec<&str> = ["billing", "refunds"]
            .into_iter()
            .filter(|_| rng.bool())
            .collect();
        AgentConfig::new(id.clone(), id.as_str().to_uppercase()).with_skills(skills)
    }

    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(action) = self.acd.poll_action() {
            self.model.apply(&action);
            n += 1;
        }
        n
    }

    fn agent(&mut self) -> AgentId {
        self.agents[self.rng.usize(..self.agents.len())].clone()
    }

    fn any_call(&mut self) -> Option<CallId> {
        let n = self.next_call;
        (n > 0).then(|| CallId::new(format!("c{}", self.rng.usize(..n))))
    }

    /// Mostly one of `pool`, else any call ever made (most long gone).
    fn pick_call<'a>(&mut self, pool: impl Iterator<Item = &'a CallId>) -> Option<CallId> {
        let pool: Vec<CallId> = pool.cloned().collect();
        if !pool.is_empty() && self.rng.u8(0..4) > 0 {
            return Some(pool[self.rng.usize(..pool.len())].clone());
        }
        self.any_call()
    }

    /// Runs one random input; checks refused inputs emit nothing.
    fn step(&mut self) {
        let now = self.now;
        // Callback entries leave only when served or cancelled: past a
        // backlog, customers cancel more often, so the ACD stays small (and
        // the test fast) as when calls left by overflow.
        let roll = if self.model.callbacks.len() > CALLBACK_BACKLOG && self.rng.u8(0..3) == 0 {
            105
        } else {
            self.rng.u8(0..110)
        };
        let refused = match roll {
            0..=14 => {
                let call = CallId::new(format!("c{}", self.next_call));
                self.next_call += 1;
                let queue = QueueName::new(format!("q{}", self.rng.usize(0..3)));
                let issue = [None, Some("billing.renewal"), Some("refund"), Some("other")]
                    [self.rng.usize(0..4)]
                .map(str::to_owned);
                let priority = self.rng.i64(0..3);
                if roll < 2 {
                    // A booked callback falls due (attempts spent before a restart).
                    let attempts = self.rng.u32(0..2);
                    self.acd
                        .enqueue_callback(call.clone(), &queue, attempts, now)
                        .unwrap();
                    self.model.callbacks.insert(call.clone(), attempts);
                } else {
                    self.acd
                        .enqueue(call.clone(), &queue, priority, issue, now)
                        .unwrap();
                }
                self.model.queue_of.insert(call.clone(), queue);
                self.model.present.insert(call);
                false
            }
            15..=34 => {
                // Accept: a live offer, a stale one from history, or noise.
                let (agent, call) = match self.rng.u8(0..3) {
                    0 if !self.model.agent_offer.is_empty() => {
                        let i = self.rng.usize(..self.model.agent_offer.len());
                        let (a, c) = self.model.agent_offer.iter().nth(i).unwrap();
                        (a.clone(), c.clone())
                    }
                    1 if !self.model.history.is_empty() => {
                        let i = self.rng.usize(..self.model.history.len());
                        self.model.history[i].clone()
                    }
                    _ => match self.any_call() {
                        Some(c) => (self.agent(), c),
                        None => return,
                    },
                };
                let expected = self.model.is_live(&agent, &call);
                let got = self.acd.accept(&agent, &call, now);
                assert_eq!(got.is_ok(), expected, "accept {agent}/{call}: {got:?}");
                if got.is_err() {
                    self.stale_accepts_refused += 1;
                }
                got.is_err()
            }
            35..=42 => {
                let Some((agent, call)) = self.pick_offer() else {
                    return;
                };
                let expected = self.model.is_live(&agent, &call);
                let got = self.acd.decline(&agent, &call, now);
                assert_eq!(got.is_ok(), expected, "decline {agent}/{call}: {got:?}");
                got.is_err()
            }
            43..=52 => {
                // The caller hangs up (possibly a call long gone: a no-op),
                // or a callback entry's original leg does, late: it stays.
                let call = if self.rng.u8(0..3) == 0 {
                    let callbacks: Vec<CallId> = self.model.callbacks.keys().cloned().collect();
                    self.pick_call(callbacks.iter())
                } else {
                    self.any_call()
                };
                if let Some(call) = call {
                    self.acd.call_ended(&call, now);
                    if self.model.present.contains(&call)
                        && !self.model.callbacks.contains_key(&call)
                    {
                        self.model.leave(&call);
                    }
                }
                false
            }
            53..=60 => {
                let agent = self.agent();
                let call = match self.model.agent_call.get(&agent) {
                    Some(c) if self.rng.u8(0..4) > 0 => c.clone(),
                    _ => match self.any_call() {
                        Some(c) => c,
                        None => return,
                    },
                };
                let expected = self.model.agent_call.get(&agent) == Some(&call);
                let got = self.acd.agent_hung_up(&agent, &call, now);
                assert_eq!(got.is_ok(), expected, "hang up {agent}/{call}: {got:?}");
                if got.is_ok() {
                    self.model.leave(&call);
                }
                got.is_err()
            }
            61..=64 => {
                let agent = self.agent();
                if self.rng.bool() {
                    self.acd.agent_disconnected(&agent, now);
                    false
                } else {
                    self.acd.agent_logout(&agent, now).is_err()
                }
            }
            65..=74 => {
                let agent = self.agent();
                let login = self.acd.agent_login(&agent, now);
                let avail = self.acd.set_available(&agent, now);
                assert_eq!(login.is_ok(), avail.is_ok());
                login.is_err()
            }
            75..=78 => {
                let agent = self.agent();
                self.acd.set_away(&agent, "break", now).is_err()
            }
            79..=82 => {
                let agent = self.agent();
                let in_wrap_up = self
                    .acd
                    .agent(&agent)
                    .is_some_and(|v| matches!(v.state, AgentState::WrapUp { .. }));
                let got = self.acd.wrap_up_done(&agent, now);
                assert_eq!(got.is_ok(), in_wrap_up);
                got.is_err()
            }
            83..=95 => {
                // Time passes: a random step, or exactly to the next timer.
                let to = match self.acd.poll_timeout() {
                    Some(t) if self.rng.bool() => t,
                    _ => now + Duration::from_millis(self.rng.u64(0..6_000)),
                };
                self.now = to.max(now);
                self.acd.handle_timeout(self.now);
                false
            }
            96..=98 => {
                // The caller asks to be called back, keeping their place.
                let present: Vec<CallId> = self.model.present.iter().cloned().collect();
                let Some(call) = self.pick_call(present.iter()) else {
                    return;
                };
                let expected = if !self.model.present.contains(&call) {
                    Err(AcdError::UnknownCall(call.clone()))
                } else if self.model.callbacks.contains_key(&call) {
                    Err(AcdError::AlreadyCallback(call.clone()))
                } else if self.model.connected.contains_key(&call) {
                    Err(AcdError::AlreadyConnected(call.clone()))
                } else {
                    Ok(())
                };
                let got = self.acd.request_callback(&call, now);
                assert_eq!(got, expected, "request callback {call}");
                if got.is_ok() {
                    self.model.callbacks.insert(call, 0);
                    self.model.conversions += 1;
                }
                got.is_err()
            }
            99..=104 => {
                // The outbound leg of a callback ends: reached or failed.
                let serving: Vec<CallId> = self
                    .model
                    .connected
                    .keys()
                    .filter(|c| self.model.callbacks.contains_key(*c))
                    .cloned()
                    .collect();
                let Some(call) = self.pick_call(serving.iter()) else {
                    return;
                };
                let serving = serving.contains(&call);
                if self.rng.bool() {
                    self.acd.callback_done(&call, now);
                    if serving {
                        self.model.callbacks_done += 1;
                        self.model.leave(&call);
                    }
                } else {
                    self.acd.callback_failed(&call, now);
                    if serving {
                        self.model.callbacks_failed += 1;
                        let (_, limit, retry) = self.model.policy[&self.model.queue_of[&call]];
                        let attempts = self.model.callbacks.get_mut(&call).unwrap();
                        *attempts += 1;
                        if *attempts < limit.max(1) && !retry.is_zero() {
                            self.model.retry.insert(call.clone(), now + retry);
                        }
                    }
                }
                !serving
            }
            105..=106 => {
                // A callback request is cancelled (or an unknown one: no-op).
                let callbacks: Vec<CallId> = self.model.callbacks.keys().cloned().collect();
                let Some(call) = self.pick_call(callbacks.iter()) else {
                    return;
                };
                self.acd.cancel_callback(&call, now);
                let is_callback = self.model.callbacks.contains_key(&call);
                if is_callback {
                    self.model.leave(&call);
                }
                !is_callback
            }
            107..=108 => {
                // Admin: remove an agent, or (re)add one.
                let agent = self.agent();
                if self.acd.agent(&agent).is_some() && self.rng.bool() {
                    self.acd.remove_agent(&agent, now).unwrap();
                } else {
                    let config = Self::agent_config(&mut self.rng, &agent);
                    self.acd.upsert_agent(config, now);
                }
                false
            }
            _ => {
                // Admin: a queue changes strategy and membership.
                let i = self.rng.usize(0..3);
                let mut qc = self.queues[i].clone();
                qc.strategy = STRATEGIES[self.rng.usize(0..4)];
                if self.rng.bool() {
                    self.rng.shuffle(&mut qc.members);
                    qc.members
                        .truncate(self.rng.usize(1..=qc.members.len().max(1)));
                } else {
                    qc.members = self.agents.clone();
                }
                if qc.strategy == Strategy::RingAll {
                    self.model.ring_all.insert(qc.name.clone());
                } else {
                    self.model.ring_all.remove(&qc.name);
                }
                self.queues[i] = qc.clone();
                self.acd.upsert_queue(qc, now);
                false
            }
        };
        self.model.now = Some(self.now);
        let emitted = self.drain();
        if refused {
            assert_eq!(emitted, 0, "a refused input changed something");
        }
    }

    fn pick_offer(&mut self) -> Option<(AgentId, CallId)> {
        if !self.model.agent_offer.is_empty() && self.rng.bool() {
            let i = self.rng.usize(..self.model.agent_offer.len());
            let (a, c) = self.model.agent_offer.iter().nth(i).unwrap();
            return Some((a.clone(), c.clone()));
        }
        if self.model.history.is_empty() {
            return None;
        }
        let i = self.rng.usize(..self.model.history.len());
        Some(self.model.history[i].clone())
    }

    /// `all`: also check that none of the calls gone long ago came back
    /// (the costly part; calls gone in this step are always checked).
    fn check(&mut self, all: bool) {
        let recent = std::mem::take(&mut self.model.recently_gone);
        let m = &self.model;
        // Nothing lost: every call is in the ACD exactly while the model says so.
        assert_eq!(m.present.len() + m.gone.len(), self.next_call);
        assert!(m.present.is_disjoint(&m.gone));
        assert_eq!(self.acd.calls().count(), m.present.len());
        for call in &m.present {
            let view = self.acd.call(call).unwrap_or_else(|| panic!("{call} lost"));
            let live: Vec<AgentId> = m
                .live
                .get(call)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            assert_eq!(view.offered_to, live, "{call} offers");
            assert_eq!(view.agent.as_ref(), m.connected.get(call), "{call} agent");
            if view.agent.is_some() {
                assert!(
                    live.is_empty(),
                    "{call} connected and still ringing {live:?}"
                );
            }
            if view.offered_to.len() > 1 {
                assert!(m.ring_all.contains(&view.queue), "{call} double-offered");
            }
            assert_eq!(view.position.is_some(), view.agent.is_none());
            // Callback entries: never moved, attempts and retry as modelled.
            assert_eq!(Some(&view.queue), m.queue_of.get(call), "{call} queue");
            assert_eq!(view.callback, m.callbacks.contains_key(call), "{call}");
            assert_eq!(view.attempts, m.callbacks.get(call).copied().unwrap_or(0));
            let retry = m.retry.get(call).copied().filter(|t| *t > self.now);
            assert_eq!(view.retry_after, retry, "{call} retry");
        }
        let gone: Box<dyn Iterator<Item = &CallId>> = if all {
            Box::new(m.gone.iter())
        } else {
            Box::new(recent.iter())
        };
        for call in gone {
            assert!(self.acd.call(call).is_none(), "{call} came back");
        }
        for view in self.acd.agents() {
            let offer = m.agent_offer.get(&view.id);
            let on = m.agent_call.get(&view.id);
            if let Some(call) = view
                .call
                .as_ref()
                .filter(|_| offer.is_some() || on.is_some())
            {
                assert!(
                    m.present.contains(call),
                    "{} works on absent {call}",
                    view.id
                );
            }
            match &view.state {
                AgentState::Ringing { call } => assert_eq!(offer, Some(call)),
                AgentState::OnCall { call } => assert_eq!(on, Some(call)),
                _ => assert!(
                    offer.is_none() && on.is_none(),
                    "{} {:?}",
                    view.id,
                    view.state
                ),
            }
        }
        // Never stuck reserved: every live offer has a timer, none overdue.
        let earliest = m.live.values().flat_map(|o| o.values()).min();
        if let Some(expires) = earliest {
            assert!(self.acd.poll_timeout().is_some_and(|t| t <= *expires));
        }
        if let Some(t) = self.acd.poll_timeout() {
            assert!(t > self.now, "a timer is overdue after a step");
        }
        self.acd.check_invariants().unwrap();
    }

    /// Everyone logs out and time runs on: every call must leave or become
    /// a callback entry, and those leave when cancelled.
    fn wind_down(&mut self) {
        self.model.now = Some(self.now);
        for agent in self.agents.clone() {
            self.acd.agent_disconnected(&agent, self.now);
            self.drain();
        }
        while let Some(t) = self.acd.poll_timeout() {
            self.now = t;
            self.acd.handle_timeout(t);
            self.drain();
            self.check(false);
        }
        assert!(
            self.model
                .present
                .iter()
                .all(|c| self.model.callbacks.contains_key(c)),
            "only callback entries outlive their max wait"
        );
        for call in self.model.present.clone() {
            self.acd.cancel_callback(&call, self.now);
            self.model.leave(&call);
            self.drain();
        }
        self.check(true);
        assert!(self.model.present.is_empty(), "{:?}", self.model.present);
        assert!(self.acd.agents().all(|v| v.state == AgentState::Offline));
    }
}

#[test]
fn random_races_never_double_assign_or_lose_a_call() {
    for seed in [1, 0x5eed, 0xacd] {
        let mut race = Race::new(seed);
        for step in 0..STEPS {
            race.step();
            let all = step % 500 == 0;
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| race.check(all)))
                .unwrap_or_else(|_| panic!("seed {seed} step {step}"));
        }
        race.wind_down();
        // The run must have exercised the interesting paths.
        assert!(
            race.model.connects > 100,
            "seed {seed}: {} connects",
            race.model.connects
        );
        assert!(race.stale_accepts_refused > 100, "seed {seed}");
        let m = &race.model;
        eprintln!(
            "seed {seed}: {} connects, {} callbacks ({} connected, {} done, {} failed, \
             {} agents lost, {} abandoned)",
            m.connects,
            m.conversions,
            m.callback_connects,
            m.callbacks_done,
            m.callbacks_failed,
            m.callbacks_lost,
            m.abandoned
        );
        assert!(
            m.conversions > 50,
            "seed {seed}: {} callbacks",
            m.conversions
        );
        assert!(m.callback_connects > 20, "seed {seed}");
        assert!(
            m.callbacks_done > 5 && m.callbacks_failed > 5,
            "seed {seed}"
        );
        assert!(m.abandoned > 0 && m.callbacks_lost > 0, "seed {seed}");
    }
}
