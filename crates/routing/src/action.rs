//! What the ACD tells its shell: agent states, offers and their outcomes,
//! positions, overflows. Drained with [`crate::Acd::poll_action`].

use std::time::{Duration, Instant};

use crate::config::Overflow;
use crate::ids::{AgentId, CallId, QueueName};

/// Reason given when an agent logs in: nobody is offered calls before they
/// say they are ready.
pub const REASON_NOT_READY: &str = "not ready";
/// Reason given when an offer timed out: an agent who does not answer is not
/// left "reserved" (FreeSWITCH #2540) but set away until they come back.
pub const REASON_NO_ANSWER: &str = "no answer";

/// Where an agent is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentState {
    /// Not logged in: no agent page is connected.
    Offline,
    /// Ready for the next offer.
    Available,
    /// Reserved: offered `call`, ringing in the browser.
    Ringing {
        /// The call being offered.
        call: CallId,
    },
    /// Talking to the caller of `call`.
    OnCall {
        /// The call the agent is connected to.
        call: CallId,
    },
    /// After-call work for `call`, until `until` or an early
    /// [`crate::Acd::wrap_up_done`].
    WrapUp {
        /// The call just finished.
        call: CallId,
        /// When the queue's wrap-up time runs out and the agent is available
        /// again.
        until: Instant,
    },
    /// Logged in, not taking calls.
    Away {
        /// Why, as shown to admins: the agent's own reason,
        /// [`REASON_NOT_READY`] or [`REASON_NO_ANSWER`].
        reason: String,
    },
}

impl AgentState {
    /// A stable lower-case name for APIs and records.
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Available => "available",
            AgentState::Ringing { .. } => "ringing",
            AgentState::OnCall { .. } => "on_call",
            AgentState::WrapUp { .. } => "wrap_up",
            AgentState::Away { .. } => "away",
        }
    }

    /// The call the agent is ringing for, talking on or wrapping up.
    pub fn call(&self) -> Option<&CallId> {
        match self {
            AgentState::Ringing { call }
            | AgentState::OnCall { call }
            | AgentState::WrapUp { call, .. } => Some(call),
            _ => None,
        }
    }

    /// Logged in and not away: counts as staffing a queue.
    pub fn is_staffed(&self) -> bool {
        !matches!(self, AgentState::Offline | AgentState::Away { .. })
    }
}

/// How an offer ended, for the call record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OfferOutcome {
    /// The agent took the call.
    Accepted,
    /// The agent turned the offer down; the call is offered to someone else.
    Declined,
    /// Not answered within the queue's offer timeout.
    Timeout,
    /// Taken back: the caller hung up, another agent won a ring-all, the
    /// call overflowed or became a callback entry, the agent disconnected or
    /// was removed.
    Withdrawn,
}

impl OfferOutcome {
    /// The name written in `offer_outcome` events: `accepted`, `declined`,
    /// `timeout` or `withdrawn`.
    pub fn name(self) -> &'static str {
        match self {
            OfferOutcome::Accepted => "accepted",
            OfferOutcome::Declined => "declined",
            OfferOutcome::Timeout => "timeout",
            OfferOutcome::Withdrawn => "withdrawn",
        }
    }
}

/// One output of the ACD, in the order things happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcdAction {
    /// Ring `agent` for `call` (from `queue`) until `expires`.
    Offer {
        /// The call to offer.
        call: CallId,
        /// The agent to ring.
        agent: AgentId,
        /// The queue the call waits in.
        queue: QueueName,
        /// When the offer times out ([`crate::QueueConfig::offer_timeout`]).
        expires: Instant,
    },
    /// Stop ringing `agent` for `call`; the offer is gone. Followed by
    /// [`AcdAction::OfferOutcome`] with [`OfferOutcome::Withdrawn`].
    Withdraw {
        /// The call no longer offered.
        call: CallId,
        /// The agent to stop ringing.
        agent: AgentId,
    },
    /// `agent` accepted `call`: bridge them. For a callback entry
    /// ([`crate::CallView::callback`]) the shell now dials the customer and
    /// reports the outcome with [`crate::Acd::callback_done`] or
    /// [`crate::Acd::callback_failed`].
    Connect {
        /// The call (or callback entry) accepted.
        call: CallId,
        /// The agent who accepted it.
        agent: AgentId,
    },
    /// `agent` did not answer `call` in time; they are now away and the call
    /// moves on. Followed by [`OfferOutcome::Timeout`].
    OfferTimedOut {
        /// The call that was offered.
        call: CallId,
        /// The agent who did not answer, now away.
        agent: AgentId,
    },
    /// `call` is now `position` in its queue (1 = next); announce it if the
    /// flow wants. Emitted on entry and whenever the position changes, for
    /// live callers only: callback entries hold a place (and count in other
    /// callers' positions) but nobody is on the line to hear it, and a call
    /// ringing an agent is not told its place (the agent may pick up
    /// mid-sentence). `estimated_wait` is `None` until the queue has handle
    /// times to go on.
    Position {
        /// The waiting call.
        call: CallId,
        /// Its place in the queue; 1 is next.
        position: usize,
        /// The queue's mean recent handle time × position ÷ agents staffing
        /// it.
        estimated_wait: Option<Duration>,
    },
    /// `call` waited its queue's max wait. With [`Overflow::Queue`] the ACD
    /// moved it there; with [`Overflow::Callback`] it stays in the ACD as a
    /// callback entry in its place (the shell tells the caller they will be
    /// called back and hangs up their leg; the later `call_ended` for that
    /// leg leaves the entry alone). Otherwise the call has left the ACD and
    /// the shell carries out `target`. A callback entry never overflows.
    Overflow {
        /// The call that waited too long.
        call: CallId,
        /// Where it goes: the queue's [`crate::QueueConfig::overflow`].
        target: Overflow,
    },
    /// Every agent state change, for the live states API and the records.
    AgentState {
        /// The agent whose state changed.
        agent: AgentId,
        /// The new state.
        state: AgentState,
        /// When it changed.
        at: Instant,
    },
    /// `agent` disconnected while talking on `call`. If `requeued`, the call
    /// waits again (hold music); otherwise it has left the ACD and the shell
    /// tells the caller and hangs up. For a callback entry `requeued` means
    /// it is back in its place (no attempt counted, offered again after the
    /// queue's callback retry delay): the shell ends the outbound leg and
    /// does not report it with `callback_failed` or `callback_done`.
    AgentLost {
        /// The call the agent was on.
        call: CallId,
        /// The agent who disconnected.
        agent: AgentId,
        /// `true` when the call waits in its queue again.
        requeued: bool,
    },
    /// The ACD gave up callback entry `call` and let it go: `attempts`
    /// outbound attempts failed (the queue's
    /// [`crate::QueueConfig::callback_attempts`]), or its queue was removed
    /// (`attempts` is then the number that failed so far). The shell records
    /// the callback as not done.
    CallbackAbandoned {
        /// The callback entry given up.
        call: CallId,
        /// Outbound attempts that failed.
        attempts: u32,
    },
    /// How an offer ended, for the call record.
    OfferOutcome {
        /// The call that was offered.
        call: CallId,
        /// The agent it was offered to.
        agent: AgentId,
        /// How the offer ended.
        outcome: OfferOutcome,
        /// When the agent started ringing.
        offered_at: Instant,
        /// When the offer ended.
        at: Instant,
    },
}
