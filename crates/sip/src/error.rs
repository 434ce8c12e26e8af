//! Typed errors returned by the SIP endpoint and its tokio shell.

use crate::CallKey;

/// What can go wrong when the application drives the SIP layer.
///
/// Network input never produces a `SipError`: a hostile or broken packet is
/// answered (400/481/...) or dropped with one warning, never surfaced here.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// No call with this Call-ID is known (it never existed or was reaped).
    #[error("no such call: {0}")]
    UnknownCall(CallKey),
    /// The command does not fit the call's current state (e.g. `answer` twice).
    #[error("call {call}: cannot {action} in its current state")]
    InvalidState {
        /// The call the command was for.
        call: CallKey,
        /// The command that was refused.
        action: &'static str,
    },
    /// `reject` needs a final non-2xx status code (300..=699).
    #[error("{0} is not a final non-2xx status code")]
    InvalidStatus(u16),
    /// `refer` needs a `sip:`, `sips:` or `tel:` URI without spaces, control
    /// characters or angle brackets.
    #[error("{0:?} is not a usable transfer target URI")]
    InvalidTarget(String),
    /// `originate` needs a `sip:` target whose host is an IP address (UDP;
    /// no DNS, no TCP/TLS yet) and a From user/display name that fit in a
    /// header. The string says what is wrong.
    #[error("cannot originate: {0}")]
    InvalidOriginate(String),
    /// Socket setup or I/O failed in the shell.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The endpoint task has stopped.
    #[error("the SIP endpoint task has stopped")]
    Closed,
}
