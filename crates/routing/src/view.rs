//! Read-only snapshots for the admin API and the agents' page.

use std::time::{Duration, Instant};

use crate::action::AgentState;
use crate::ids::{AgentId, CallId, QueueName};
use crate::strategy::Strategy;

/// One agent as the live states API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    /// The agent's id (their login).
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// What [`crate::Strategy::SkillsPriority`] queues match calls against.
    pub skills: Vec<String>,
    /// Where the agent is now.
    pub state: AgentState,
    /// When the agent entered `state`; `None` if never seen since start.
    pub since: Option<Instant>,
    /// The call they ring for, talk on or wrap up.
    pub call: Option<CallId>,
    /// Removed by an admin while on a call: gone once the call ends.
    pub removed: bool,
}

/// One call the ACD holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallView {
    /// The call's id, as the shell gave it.
    pub call: CallId,
    /// The queue it waits in now (after an overflow, the new one).
    pub queue: QueueName,
    /// Higher is served first; among equals, the earlier arrival.
    pub priority: i64,
    /// The flow's issue type, which picks the skill needed; `None` when the
    /// flow set none.
    pub issue_type: Option<String>,
    /// When it entered the ACD (kept across requeue and queue overflow).
    pub queued_at: Instant,
    /// When it overflows unless served. Meaningless for callback entries,
    /// which never overflow.
    pub deadline: Instant,
    /// Agents ringing for it now (several only in a ring-all queue).
    pub offered_to: Vec<AgentId>,
    /// The agent talking to the caller.
    pub agent: Option<AgentId>,
    /// Place in its queue (1 = next); `None` once connected. Callback
    /// entries hold a place too.
    pub position: Option<usize>,
    /// A callback entry: the caller hung up and is to be called back, in
    /// this place ([`Overflow::Callback`](crate::Overflow::Callback) or
    /// [`crate::Acd::request_callback`]).
    pub callback: bool,
    /// Failed outbound attempts so far (callback entries; 0 otherwise).
    pub attempts: u32,
    /// A callback entry after a failed attempt is not offered before this.
    pub retry_after: Option<Instant>,
}

impl CallView {
    /// How long the caller has waited by `now`.
    pub fn waited(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.queued_at)
    }
}

/// One queue as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueView {
    /// The queue's name.
    pub name: QueueName,
    /// How it picks an agent for a call.
    pub strategy: Strategy,
    /// Who answers it, in round-robin order.
    pub members: Vec<AgentId>,
    /// Calls not yet connected, in position order, callback entries
    /// included (they hold a place).
    pub waiting: Vec<CallView>,
    /// What estimated waits are based on (`None`: no call finished yet).
    pub average_handle_time: Option<Duration>,
}
