//! Offers: dispatching waiting calls to free agents (who the candidates are,
//! rounds of offers), ringing an agent, and every way an offer ends —
//! accepted, declined, timed out or withdrawn. Which of the candidates a
//! queue's strategy picks is decided in [`crate::strategy`].

use std::time::{Duration, Instant};

use super::{Acd, Agent, Call, Handling, OfferClock};
use crate::action::{AcdAction, AgentState, OfferOutcome};
use crate::error::AcdError;
use crate::ids::{AgentId, CallId, QueueName};
use crate::strategy::Pick;

impl Acd {
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

    /// `call` is already connected to `agent` (bridged on another node of
    /// a cluster whose ACD leader changed): it enters the ACD on that
    /// agent, as if offered and accepted now, so the agent is offered
    /// nothing else until the call ends and their wrap-up is done. The
    /// agent may be offline (their page is announced later). Refused,
    /// changing nothing, if the agent rings, talks or wraps up, or the
    /// queue or the call is wrong.
    #[allow(clippy::too_many_arguments)]
    pub fn restore_on_call(
        &mut self,
        call: CallId,
        queue: &QueueName,
        priority: i64,
        issue_type: Option<String>,
        agent: &AgentId,
        now: Instant,
    ) -> Result<(), AcdError> {
        let now = self.begin(now);
        let state = &self.agent_ref(agent)?.state;
        if matches!(
            state,
            AgentState::Ringing { .. } | AgentState::OnCall { .. } | AgentState::WrapUp { .. }
        ) {
            return Err(AcdError::AgentBusy(agent.clone()));
        }
        self.insert_call(call.clone(), queue, priority, issue_type, None, now)?;
        let wrap_up = self
            .queues
            .get(queue)
            .map_or(Duration::ZERO, |q| q.config.wrap_up);
        let c = self.calls.get_mut(&call).expect("just inserted");
        c.agent = Some(agent.clone());
        c.tried.insert(agent.clone());
        let a = self.agents.get_mut(agent).expect("checked above");
        a.offer = None;
        a.pending_away = None;
        a.handling = Some(Handling {
            queue: queue.clone(),
            connected_at: now,
            wrap_up,
        });
        self.set_state(agent, AgentState::OnCall { call }, now);
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

    // ----- the machine ---------------------------------------------------

    /// Offers waiting calls to free agents, best call first. Offers only
    /// ever take free agents, so one pass leaves no call that could be
    /// offered unoffered.
    pub(super) fn dispatch(&mut self, at: Instant) {
        for call in self.ordered_calls() {
            let c = &self.calls[&call];
            if c.retry_pending() {
                continue;
            }
            let strategy = self.queues[&c.queue].config.strategy;
            if !strategy.rings_many() && !c.offers.is_empty() {
                continue;
            }
            let (candidates, new_round) = self.candidates(c);
            if candidates.is_empty() {
                continue;
            }
            if new_round {
                self.calls.get_mut(&call).expect("listed").tried.clear();
            }
            let agents = &self.agents;
            let q = self
                .queues
                .get_mut(&self.calls[&call].queue)
                .expect("waiting call has a queue");
            let chosen = strategy.pick(
                candidates,
                Pick {
                    members: &q.config.members,
                    rr_next: &mut q.rr_next,
                    idle_since: &|a| agents[a].idle_since,
                },
            );
            for agent in chosen {
                self.offer(&agent, &call, at);
            }
        }
    }

    /// Free agents who may be offered `call` now, in member order, and
    /// whether they start a new round (everyone staffed has had it).
    pub(super) fn candidates(&self, c: &Call) -> (Vec<AgentId>, bool) {
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
    pub(super) fn end_offer(
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
    pub(super) fn withdraw(&mut self, agent: &AgentId, call: &CallId, at: Instant) {
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

    pub(super) fn withdraw_all(&mut self, call: &CallId, at: Instant) {
        let ringing: Vec<AgentId> = self.calls[call].offers.iter().cloned().collect();
        for agent in ringing {
            self.withdraw(&agent, call, at);
        }
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
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::acd::Acd;
    use crate::config::{AgentConfig, QueueConfig};

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
