//! The desk core's guarantees, checked by the seeded race test.

use super::*;

impl DeskCore {
    /// The desk's guarantees (see the module docs) and the ACD's own.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.acd.check_invariants()?;
        for (id, c) in &self.calls {
            // A callback entry keeps its agent until the leg reports back;
            // a call the ACD let go of waits for its actor's last word.
            if let (Some(agent), Some(view), None) = (&c.agent, self.acd.call(id), c.callback)
                && view.agent.as_ref() != Some(agent)
            {
                return Err(format!(
                    "call {} is with {} for the desk but with {:?} for the ACD",
                    id.as_str(),
                    agent.as_str(),
                    view.agent
                ));
            }
        }
        for (agent, (call, ..)) in &self.wrapping {
            match self.acd.agent(agent).map(|v| v.state) {
                Some(AgentState::WrapUp { call: c, .. }) if &c == call => {}
                other => {
                    return Err(format!(
                        "agent {} has a wrap-up form for {} but is {other:?}",
                        agent.as_str(),
                        call.as_str()
                    ));
                }
            }
        }
        for v in self.acd.agents() {
            if let AgentState::WrapUp { call, .. } = &v.state
                && self.wrapping.get(&v.id).is_none_or(|(c, ..)| c != call)
            {
                return Err(format!(
                    "agent {} wraps up {} without a form",
                    v.id.as_str(),
                    call.as_str()
                ));
            }
        }
        for v in self.acd.calls() {
            if !self.calls.contains_key(&v.call) {
                return Err(format!(
                    "the ACD holds {} but the desk forgot it",
                    v.call.as_str()
                ));
            }
        }
        Ok(())
    }
}
