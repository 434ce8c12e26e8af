//! Queue and agent configuration, as it comes from the config file or the
//! database; the ACD takes it at start and on every admin change.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::ids::{AgentId, QueueName};

/// How a queue picks an agent among its free members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The free member who has been idle the longest.
    #[default]
    LongestIdle,
    /// Members in turn, in the order of [`QueueConfig::members`].
    RoundRobin,
    /// Every free member at once; the first accept wins, the rest are withdrawn.
    RingAll,
    /// Only members holding the skill the call's issue type requires (see
    /// [`QueueConfig::skills`]), longest idle first.
    SkillsPriority,
}

/// Where a call goes when it has waited [`QueueConfig::max_wait`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Leaves the ACD; the shell records a voicemail.
    Voicemail,
    /// The call stays in the ACD as a *callback entry* that keeps the
    /// caller's place (same queue, priority and arrival order); the shell
    /// tells the caller they will be called back and hangs up their leg. The
    /// entry is offered to agents like a call; when one accepts, the shell
    /// dials the customer. See the crate documentation, "Callback entries".
    /// A queue that is removed cannot keep a place: its waiting calls then
    /// overflow to [`Overflow::Voicemail`] instead.
    Callback,
    /// Leaves the ACD; the shell apologises and hangs up.
    Hangup,
    /// Moves to another queue, keeping its original queue time (so it is
    /// served before callers who arrived later). The call stays in the ACD.
    /// A missing queue, or a call that has already overflowed as many times
    /// as there are queues (a cycle), becomes [`Overflow::Hangup`].
    Queue(QueueName),
}

/// What happens to a call whose agent disconnects (browser closed) mid-call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AgentLostPolicy {
    /// Back into its queue, keeping its place and with a fresh max wait.
    #[default]
    Requeue,
    /// The ACD lets the call go; the shell tells the caller and hangs up.
    Release,
}

/// One queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: QueueName,
    pub strategy: Strategy,
    /// Who answers this queue. The order is the round-robin order. Ids of
    /// agents that do not exist (yet) are skipped, so membership can be
    /// edited independently of the agents.
    pub members: Vec<AgentId>,
    /// After this long in the queue a call overflows, even if an agent is
    /// ringing for it at that moment (the offer is withdrawn): the caller was
    /// promised no longer.
    pub max_wait: Duration,
    pub overflow: Overflow,
    /// An offer not accepted within this long times out; the agent goes away.
    pub offer_timeout: Duration,
    /// After-call work before the agent is offered the next call. Zero: none.
    pub wrap_up: Duration,
    /// Issue type → required skill, used by [`Strategy::SkillsPriority`].
    /// Issue types are dotted (`subscription.refund`); the longest mapped
    /// prefix wins (`subscription.refund`, then `subscription`). A call with
    /// no issue type, or one no entry covers, may go to any member.
    pub skills: BTreeMap<String, String>,
    /// What happens to a call whose agent disconnects mid-call. Callback
    /// entries are always requeued (no caller is left on hold).
    pub on_agent_lost: AgentLostPolicy,
    /// Failed outbound attempts ([`crate::Acd::callback_failed`]) after which
    /// a callback entry is given up ([`crate::AcdAction::CallbackAbandoned`]).
    /// At least one attempt is always made (0 counts as 1).
    pub callback_attempts: u32,
    /// After a failed attempt, a callback entry keeps its place but is not
    /// offered again before this long has passed.
    pub callback_retry: Duration,
}

impl QueueConfig {
    /// A queue with the defaults: longest idle, no members, 2 min max wait
    /// then voicemail, 20 s offers, 30 s wrap-up, requeue on a lost agent,
    /// callbacks tried 3 times 2 min apart.
    /// Use struct update syntax to change any of them.
    pub fn new(name: impl Into<QueueName>) -> Self {
        Self {
            name: name.into(),
            strategy: Strategy::LongestIdle,
            members: Vec::new(),
            max_wait: Duration::from_secs(120),
            overflow: Overflow::Voicemail,
            offer_timeout: Duration::from_secs(20),
            wrap_up: Duration::from_secs(30),
            skills: BTreeMap::new(),
            on_agent_lost: AgentLostPolicy::Requeue,
            callback_attempts: 3,
            callback_retry: Duration::from_secs(120),
        }
    }

    /// The skill a call of `issue_type` needs in this queue, if any.
    pub fn required_skill(&self, issue_type: Option<&str>) -> Option<&str> {
        if self.strategy != Strategy::SkillsPriority {
            return None;
        }
        let mut key = issue_type?;
        loop {
            if let Some(skill) = self.skills.get(key) {
                return Some(skill);
            }
            key = &key[..key.rfind('.')?];
        }
    }
}

/// One agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    pub id: AgentId,
    /// Display name.
    pub name: String,
    pub skills: Vec<String>,
}

impl AgentConfig {
    pub fn new(id: impl Into<AgentId>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            skills: Vec::new(),
        }
    }

    /// The same agent with these skills.
    pub fn with_skills<S: Into<String>>(mut self, skills: impl IntoIterator<Item = S>) -> Self {
        self.skills = skills.into_iter().map(Into::into).collect();
        self
    }

    pub fn has_skill(&self, skill: &str) -> bool {
        self.skills.iter().any(|s| s == skill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills_match_the_longest_prefix_only_for_skills_priority() {
        let mut q = QueueConfig {
            strategy: Strategy::SkillsPriority,
            ..QueueConfig::new("support")
        };
        q.skills.insert("subscription".into(), "billing".into());
        q.skills
            .insert("subscription.refund".into(), "refunds".into());
        assert_eq!(
            q.required_skill(Some("subscription.refund")),
            Some("refunds")
        );
        assert_eq!(
            q.required_skill(Some("subscription.refund.partial")),
            Some("refunds")
        );
        assert_eq!(
            q.required_skill(Some("subscription.cancel")),
            Some("billing")
        );
        assert_eq!(q.required_skill(Some("order")), None);
        assert_eq!(q.required_skill(None), None);
        q.strategy = Strategy::LongestIdle;
        assert_eq!(q.required_skill(Some("subscription")), None);
    }
}
