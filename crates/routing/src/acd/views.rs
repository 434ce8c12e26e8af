//! Read-only queries: snapshots of agents, calls and queues
//! ([`AgentView`], [`CallView`], [`QueueView`], defined in `crate::view`)
//! and a queue's configuration. Positions and wait estimates are the
//! `queues` module's.

use super::{Acd, Agent, Call};
use crate::config::QueueConfig;
use crate::ids::{AgentId, CallId, QueueName};
use crate::view::{AgentView, CallView, QueueView};

impl Acd {
    /// A snapshot of one agent; `None` for an unknown id.
    pub fn agent(&self, agent: &AgentId) -> Option<AgentView> {
        self.agents.get(agent).map(|a| a.view())
    }

    /// Every agent, by id.
    pub fn agents(&self) -> impl Iterator<Item = AgentView> + '_ {
        self.agents.values().map(Agent::view)
    }

    /// A snapshot of one call; `None` once it has left the ACD.
    pub fn call(&self, call: &CallId) -> Option<CallView> {
        self.calls.get(call).map(|c| self.call_view(call, c))
    }

    /// Every call the ACD holds (waiting, ringing or connected), by id.
    pub fn calls(&self) -> impl Iterator<Item = CallView> + '_ {
        self.calls.iter().map(|(id, c)| self.call_view(id, c))
    }

    /// A snapshot of one queue with its waiting calls; `None` for an unknown
    /// name.
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

    /// The queue's recent handle times (connect to end of wrap-up), oldest
    /// first: what its wait estimates come from. Empty for an unknown name.
    pub fn handle_times(&self, name: &QueueName) -> Vec<std::time::Duration> {
        self.queues
            .get(name)
            .map(|q| q.handle_times.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The queue's current configuration; `None` for an unknown name.
    pub fn queue_config(&self, name: &QueueName) -> Option<&QueueConfig> {
        self.queues.get(name).map(|q| &q.config)
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

impl Agent {
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
