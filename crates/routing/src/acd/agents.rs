//! Agents: logging in and out, availability and away, hanging up, wrap-up
//! and the handle time it ends, going offline (and what happens to the call
//! of an agent who vanishes), agent admin, and every state change
//! ([`AcdAction::AgentState`]).

use std::time::{Duration, Instant};

use super::{Acd, Agent};
use crate::action::{AcdAction, AgentState, OfferOutcome, REASON_NOT_READY};
use crate::config::{AgentConfig, AgentLostPolicy};
use crate::error::AcdError;
use crate::ids::{AgentId, CallId};

impl Acd {
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

    // ----- the machine ---------------------------------------------------

    /// The agent's call is over (either side hung up).
    pub(super) fn after_call(&mut self, agent: &AgentId, at: Instant) {
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

    pub(super) fn finish_wrap_up(&mut self, agent: &AgentId, at: Instant) {
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
            q.record_handle_time(at.saturating_duration_since(h.connected_at));
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
        if c.callback.is_some() {
            self.callback_agent_lost(call, agent, at);
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

    pub(super) fn set_state(&mut self, agent: &AgentId, state: AgentState, at: Instant) {
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

    pub(super) fn agent_ref(&self, agent: &AgentId) -> Result<&Agent, AcdError> {
        self.agents
            .get(agent)
            .ok_or_else(|| AcdError::UnknownAgent(agent.clone()))
    }

    fn agent_mut(&mut self, agent: &AgentId) -> Result<&mut Agent, AcdError> {
        self.agents
            .get_mut(agent)
            .ok_or_else(|| AcdError::UnknownAgent(agent.clone()))
    }
}

impl Agent {
    pub(super) fn new(config: AgentConfig) -> Self {
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
}
