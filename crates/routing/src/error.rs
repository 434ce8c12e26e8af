//! Why the ACD refused an input. A refused input changes nothing.

use crate::ids::{AgentId, CallId, QueueName};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    #[error("unknown queue {0}")]
    UnknownQueue(QueueName),
    #[error("call {0} is already in the ACD")]
    AlreadyQueued(CallId),
    #[error("agent {0} is not logged in")]
    NotLoggedIn(AgentId),
    /// Accept or decline of an offer that was withdrawn, timed out, answered
    /// elsewhere or never made: how two agents answering one call is refused.
    #[error("call {call} is not offered to agent {agent} (withdrawn, expired or never made)")]
    NoLiveOffer { agent: AgentId, call: CallId },
    #[error("agent {agent} is not on call {call}")]
    NotOnCall { agent: AgentId, call: CallId },
    #[error("agent {0} is not in wrap-up")]
    NotInWrapUp(AgentId),
    #[error("unknown call {0}")]
    UnknownCall(CallId),
    /// A callback was requested for a call an agent is already talking to.
    #[error("call {0} is already connected to an agent")]
    AlreadyConnected(CallId),
    #[error("call {0} is already a callback entry")]
    AlreadyCallback(CallId),
}
