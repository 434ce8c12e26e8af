//! The ACD's internal invariants, checked on demand by
//! [`Acd::check_invariants`] (tests, and debug assertions in the shell).

use std::collections::BTreeMap;

use super::Acd;
use crate::action::AgentState;
use crate::ids::{AgentId, CallId, QueueName};

impl Acd {
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
            let ring_all = q.config.strategy.rings_many();
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
}
