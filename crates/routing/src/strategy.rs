//! Routing strategies: how a queue picks among its free members.
//!
//! Everything that differs from one strategy to another lives here: the
//! [`Strategy`] enum and the three questions the ACD asks of it — may a call
//! ring several agents at once ([`Strategy::rings_many`]), must agents hold
//! a skill ([`Strategy::routes_on_skills`]), and which of the free
//! candidates are offered the call ([`Strategy::pick`]). Every `match` is
//! exhaustive, so a new strategy is a new variant plus one arm in each of
//! them, all in this file; the compiler points at each.
//!
//! This is a leaf module: it knows nothing of the ACD's bookkeeping. The ACD
//! works out the candidates (free, eligible, not yet tried this round, in
//! member order) and hands over what a pick may look at in a [`Pick`].

use std::time::Instant;

use crate::ids::AgentId;

/// How a queue picks an agent among its free members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The free member who has been idle the longest.
    #[default]
    LongestIdle,
    /// Members in turn, in the order of [`QueueConfig::members`](crate::QueueConfig::members).
    RoundRobin,
    /// Every free member at once; the first accept wins, the rest are withdrawn.
    RingAll,
    /// Only members holding the skill the call's issue type requires (see
    /// [`QueueConfig::skills`](crate::QueueConfig::skills)), longest idle first.
    SkillsPriority,
}

/// What a strategy may look at, and the state it keeps, when it picks among
/// a queue's candidates for one call.
pub(crate) struct Pick<'a> {
    /// The queue's members as configured (duplicates and unknown ids
    /// included): the round-robin order.
    pub members: &'a [AgentId],
    /// The queue's round-robin cursor: the index into `members` where the
    /// next search starts. Kept by the queue across calls.
    pub rr_next: &'a mut usize,
    /// Since when a candidate has been free of work (a withdrawn or declined
    /// offer does not reset it).
    pub idle_since: &'a dyn Fn(&AgentId) -> Option<Instant>,
}

impl Strategy {
    /// Whether a call is offered to several agents at once, the first
    /// accept winning. Otherwise a call rings one agent at a time: it is not
    /// offered again while an offer is live, and a queue switched to such a
    /// strategy keeps only each call's earliest offer.
    pub(crate) fn rings_many(self) -> bool {
        match self {
            Strategy::RingAll => true,
            Strategy::LongestIdle | Strategy::RoundRobin | Strategy::SkillsPriority => false,
        }
    }

    /// Whether only members holding the skill a call's issue type maps to
    /// (see [`crate::QueueConfig::required_skill`]) may be offered it.
    pub(crate) fn routes_on_skills(self) -> bool {
        match self {
            Strategy::SkillsPriority => true,
            Strategy::LongestIdle | Strategy::RoundRobin | Strategy::RingAll => false,
        }
    }

    /// The agents to offer a call to now, out of `candidates`: free
    /// members who may take it, in member order, never empty.
    pub(crate) fn pick(self, candidates: Vec<AgentId>, pick: Pick<'_>) -> Vec<AgentId> {
        match self {
            Strategy::RingAll => candidates,
            Strategy::RoundRobin => vec![next_in_turn(pick.members, pick.rr_next, &candidates)],
            Strategy::LongestIdle | Strategy::SkillsPriority => {
                // Candidates come in member order, so ties go to the
                // earlier member.
                let longest = candidates
                    .iter()
                    .min_by_key(|a| (pick.idle_since)(a))
                    .expect("non-empty")
                    .clone();
                vec![longest]
            }
        }
    }
}

/// The first candidate at or after the round-robin cursor (wrapping), which
/// then moves past them.
fn next_in_turn(members: &[AgentId], rr_next: &mut usize, candidates: &[AgentId]) -> AgentId {
    let n = members.len();
    let start = *rr_next % n.max(1);
    let (idx, agent) = (0..n)
        .map(|k| (start + k) % n)
        .map(|i| (i, &members[i]))
        .find(|(_, id)| candidates.contains(id))
        .expect("candidates are members");
    *rr_next = (idx + 1) % n;
    agent.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<AgentId> {
        names.iter().map(|n| AgentId::from(*n)).collect()
    }

    #[test]
    fn round_robin_takes_the_next_candidate_from_the_cursor_and_wraps() {
        let members = ids(&["x", "y", "z"]);
        let mut rr_next = 2;
        let pick = |rr_next: &mut usize, candidates: &[&str]| {
            Strategy::RoundRobin.pick(
                ids(candidates),
                Pick {
                    members: &members,
                    rr_next,
                    idle_since: &|_| None,
                },
            )
        };
        assert_eq!(pick(&mut rr_next, &["x", "y"]), ids(&["x"]));
        assert_eq!(rr_next, 1);
        assert_eq!(pick(&mut rr_next, &["x", "z"]), ids(&["z"]));
        assert_eq!(rr_next, 0);
    }

    #[test]
    fn longest_idle_breaks_ties_by_member_order() {
        let t0 = Instant::now();
        let idle = |a: &AgentId| match a.as_str() {
            "x" => Some(t0 + std::time::Duration::from_secs(1)),
            _ => Some(t0),
        };
        let mut rr_next = 0;
        let members = ids(&["x", "y", "z"]);
        let got = Strategy::LongestIdle.pick(
            ids(&["x", "y", "z"]),
            Pick {
                members: &members,
                rr_next: &mut rr_next,
                idle_since: &idle,
            },
        );
        assert_eq!(got, ids(&["y"]));
        assert_eq!(rr_next, 0, "only round robin moves the cursor");
    }
}
