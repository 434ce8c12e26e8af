//! Timers: the ACD's timed events (a callback entry's retry delay, the end
//! of wrap-up, an offer's expiry, a call's max wait), which is due next, and
//! what firing each does. The ACD reads no clock: `begin` fires what is due
//! by the time an input brings, and the shell asks for the next wake-up
//! with [`Acd::poll_timeout`].

use std::time::Instant;

use super::Acd;
use crate::action::{AcdAction, AgentState, OfferOutcome, REASON_NO_ANSWER};
use crate::ids::{AgentId, CallId};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    // Declared in the order same-instant timers fire: a callback due for a
    // retry is back in line before wrap-up frees an agent, and finishing
    // wrap-up frees an agent before an offer times out or a call overflows.
    Retry(CallId),
    WrapUp(AgentId),
    Offer(AgentId),
    MaxWait(CallId),
}

impl Acd {
    /// The earliest timer and when it is due; `None` when nothing is timed.
    pub(super) fn next_timer(&self) -> Option<(Instant, Timer)> {
        let agents = self
            .agents
            .iter()
            .filter_map(|(id, a)| match (&a.state, a.offer) {
                (AgentState::WrapUp { until, .. }, _) => Some((*until, Timer::WrapUp(id.clone()))),
                (AgentState::Ringing { .. }, Some(o)) => {
                    Some((o.expires, Timer::Offer(id.clone())))
                }
                _ => None,
            });
        let calls = self
            .calls
            .iter()
            .filter(|(_, c)| c.agent.is_none())
            .filter_map(|(id, c)| match &c.callback {
                None => Some((c.deadline, Timer::MaxWait(id.clone()))),
                Some(cb) => cb.retry_after.map(|at| (at, Timer::Retry(id.clone()))),
            });
        agents.chain(calls).min()
    }

    pub(super) fn fire(&mut self, timer: Timer, at: Instant) {
        match timer {
            Timer::Retry(call) => {
                if let Some(cb) = self.calls.get_mut(&call).and_then(|c| c.callback.as_mut()) {
                    cb.retry_after = None;
                }
            }
            Timer::WrapUp(agent) => self.finish_wrap_up(&agent, at),
            Timer::Offer(agent) => {
                if let AgentState::Ringing { call } = self.agents[&agent].state.clone() {
                    self.actions.push_back(AcdAction::OfferTimedOut {
                        call: call.clone(),
                        agent: agent.clone(),
                    });
                    let away = AgentState::Away {
                        reason: REASON_NO_ANSWER.to_owned(),
                    };
                    self.end_offer(&agent, &call, OfferOutcome::Timeout, away, at);
                }
            }
            Timer::MaxWait(call) => {
                let target = self.queues[&self.calls[&call].queue]
                    .config
                    .overflow
                    .clone();
                self.overflow(&call, target, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::testing::{drain, one_agent, secs};
    use crate::action::AcdAction;

    #[test]
    fn late_timers_fire_in_order_each_at_its_own_instant() {
        // x's wrap-up ends at t0+5; c2 would overflow at t0+8. The shell is
        // late and wakes at t0+7: x must have been offered c2 at t0+5.
        let mut acd = one_agent(5, 8);
        let t0 = Instant::now();
        acd.agent_login(&"x".into(), t0).unwrap();
        acd.set_available(&"x".into(), t0).unwrap();
        acd.enqueue("c1".into(), &"q".into(), 0, None, t0).unwrap();
        acd.accept(&"x".into(), &"c1".into(), t0).unwrap();
        acd.enqueue("c2".into(), &"q".into(), 0, None, t0).unwrap();
        acd.call_ended(&"c1".into(), t0);
        drain(&mut acd);
        acd.handle_timeout(t0 + secs(7));
        let acts = drain(&mut acd);
        assert!(acts.iter().any(|a| matches!(a,
            AcdAction::Offer { call, expires, .. }
                if call.as_str() == "c2" && *expires == t0 + secs(5) + secs(20))));
        assert!(!acts.iter().any(|a| matches!(a, AcdAction::Overflow { .. })));
    }
}
