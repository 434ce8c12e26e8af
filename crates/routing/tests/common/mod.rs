//! A fake clock and action helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use hotline_routing::{
    Acd, AcdAction, AgentConfig, AgentId, AgentState, CallId, OfferOutcome, QueueConfig, QueueName,
};

/// An ACD driven by a fake clock: time only moves when the test says so.
pub struct Bench {
    pub acd: Acd,
    pub t0: Instant,
    pub now: Instant,
    pub log: Vec<AcdAction>,
}

pub fn a(id: &str) -> AgentId {
    AgentId::from(id)
}
pub fn c(id: &str) -> CallId {
    CallId::from(id)
}
pub fn q(id: &str) -> QueueName {
    QueueName::from(id)
}
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl Bench {
    pub fn new(queues: Vec<QueueConfig>, agents: &[&str]) -> Self {
        let agents = agents
            .iter()
            .map(|id| AgentConfig::new(*id, id.to_uppercase()));
        Self::with_agents(queues, agents.collect())
    }

    pub fn with_agents(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>) -> Self {
        // Any fixed instant works as the origin; the ACD never reads the clock.
        let t0 = Instant::now();
        Bench {
            acd: Acd::new(queues, agents),
            t0,
            now: t0,
            log: Vec::new(),
        }
    }

    /// Logs these agents in and makes them available, one second apart (so
    /// the first is the longest idle), then forgets the actions.
    pub fn ready(&mut self, agents: &[&str]) {
        for id in agents {
            self.acd.agent_login(&a(id), self.now).unwrap();
            self.acd.set_available(&a(id), self.now).unwrap();
            self.advance(secs(1));
        }
        self.drain();
    }

    /// Moves the fake clock and fires due timers.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.acd.handle_timeout(self.now);
        self.check();
    }

    /// Moves the clock exactly to the next timer.
    pub fn skip_to_next_timer(&mut self) {
        let at = self.acd.poll_timeout().expect("a timer is pending");
        assert!(at >= self.now);
        self.now = at;
        self.acd.handle_timeout(at);
        self.check();
    }

    pub fn enqueue(&mut self, call: &str, queue: &str, priority: i64, issue: Option<&str>) {
        self.acd
            .enqueue(
                c(call),
                &q(queue),
                priority,
                issue.map(str::to_owned),
                self.now,
            )
            .unwrap();
        self.check();
    }

    pub fn accept(&mut self, agent: &str, call: &str) {
        self.acd.accept(&a(agent), &c(call), self.now).unwrap();
        self.check();
    }

    pub fn check(&self) {
        self.acd.check_invariants().unwrap();
    }

    /// The actions since the last drain.
    pub fn drain(&mut self) -> Vec<AcdAction> {
        let out: Vec<AcdAction> = std::iter::from_fn(|| self.acd.poll_action()).collect();
        self.log.extend(out.iter().cloned());
        out
    }

    pub fn state(&self, agent: &str) -> AgentState {
        self.acd.agent(&a(agent)).expect("known agent").state
    }
}

/// The (call, agent) offers among `actions`.
pub fn offers(actions: &[AcdAction]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|x| match x {
            AcdAction::Offer { call, agent, .. } => Some((call.0.clone(), agent.0.clone())),
            _ => None,
        })
        .collect()
}

pub fn withdrawals(actions: &[AcdAction]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|x| match x {
            AcdAction::Withdraw { call, agent } => Some((call.0.clone(), agent.0.clone())),
            _ => None,
        })
        .collect()
}

pub fn outcomes(actions: &[AcdAction]) -> Vec<(String, String, OfferOutcome)> {
    actions
        .iter()
        .filter_map(|x| match x {
            AcdAction::OfferOutcome {
                call,
                agent,
                outcome,
                ..
            } => Some((call.0.clone(), agent.0.clone(), *outcome)),
            _ => None,
        })
        .collect()
}

pub fn positions(actions: &[AcdAction]) -> Vec<(String, usize)> {
    actions
        .iter()
        .filter_map(|x| match x {
            AcdAction::Position { call, position, .. } => Some((call.0.clone(), *position)),
            _ => None,
        })
        .collect()
}
