//! Why the ACD refused an input. A refused input changes nothing.

use crate::ids::{AgentId, CallId, QueueName};

/// Why the ACD refused an input; the ACD's state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    /// No agent has this id in the configuration.
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    /// No queue has this name in the configuration.
    #[error("unknown queue {0}")]
    UnknownQueue(QueueName),
    /// The call was enqueued while the ACD still holds it.
    #[error("call {0} is already in the ACD")]
    AlreadyQueued(CallId),
    /// The agent must log in (connect their page) first.
    #[error("agent {0} is not logged in")]
    NotLoggedIn(AgentId),
    /// Accept or decline of an offer that was withdrawn, timed out, answered
    /// elsewhere or never made: how two agents answering one call is refused.
    #[error("call {call} is not offered to agent {agent} (withdrawn, expired or never made)")]
    NoLiveOffer {
        /// The agent who answered.
        agent: AgentId,
        /// The call they answered.
        call: CallId,
    },
    /// The agent reported hanging up a call they are not talking on.
    #[error("agent {agent} is not on call {call}")]
    NotOnCall {
        /// The agent who hung up.
        agent: AgentId,
        /// The call they named.
        call: CallId,
    },
    /// A wrap-up form from an agent whose wrap-up is over or never began.
    #[error("agent {0} is not in wrap-up")]
    NotInWrapUp(AgentId),
    /// The ACD does not hold this call (never enqueued, or already gone).
    #[error("unknown call {0}")]
    UnknownCall(CallId),
    /// A callback was requested for a call an agent is already talking to.
    #[error("call {0} is already connected to an agent")]
    AlreadyConnected(CallId),
    /// A callback was requested twice for the same call.
    #[error("call {0} is already a callback entry")]
    AlreadyCallback(CallId),
    /// A call restored to an agent who is ringing, talking or wrapping up.
    #[error("agent {0} is busy")]
    AgentBusy(AgentId),
}
