//! Events the endpoint hands to the application (the call actor).

use std::fmt;

use crate::CallKey;
use crate::sdp::RemoteMedia;
use crate::transport::Peer;

/// Something the application must know about a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SipEvent {
    /// A new INVITE with an acceptable SDP offer; 100 Trying is already sent.
    Incoming(IncomingCall),
    /// The ACK for our 2xx arrived: the dialog is confirmed.
    Confirmed {
        /// The call.
        call: CallKey,
    },
    /// A DTMF digit signalled by SIP INFO (application/dtmf-relay or application/dtmf).
    Digit {
        /// The call.
        call: CallKey,
        /// One of `0-9 * # A-D`.
        digit: char,
        /// The `Duration=` value when the sender gave one.
        duration_ms: Option<u32>,
    },
    /// A re-INVITE or UPDATE changed the remote media; the endpoint has already answered it.
    MediaChanged {
        /// The call.
        call: CallKey,
        /// The remote media as now offered.
        media: RemoteMedia,
    },
    /// Our REFER ([`Endpoint::refer`](crate::Endpoint::refer)) got a 2xx
    /// (normally 202 Accepted): the remote party will try the transfer target.
    /// The call is still up; the application decides when to hang up.
    TransferAccepted {
        /// The call.
        call: CallKey,
    },
    /// A NOTIFY (`Event: refer`, RFC 3515 §2.4.4) reported how the remote
    /// party's call to the transfer target is going: the status code of its
    /// `message/sipfrag` body (100, 180, 200, 486, ...). One event per NOTIFY;
    /// a code >= 200 is the final outcome. May arrive before
    /// [`SipEvent::TransferAccepted`] (the NOTIFY can overtake the 202).
    TransferProgress {
        /// The call.
        call: CallKey,
        /// The status code in the sipfrag's Status-Line.
        code: u16,
    },
    /// Our REFER was refused (its final non-2xx status) or never answered
    /// (408, RFC 3261 Timer F). The call is still up.
    TransferFailed {
        /// The call.
        call: CallKey,
        /// The final status code, or 408 on timeout.
        code: u16,
    },
    /// Our outbound INVITE ([`Endpoint::originate`](crate::Endpoint::originate))
    /// got a provisional response other than 100 (180 Ringing, 183 Session
    /// Progress, ...). Once per distinct code; none after the call is being
    /// cancelled.
    Ringing {
        /// The call.
        call: CallKey,
        /// The provisional status code.
        code: u16,
    },
    /// Our outbound INVITE got a 2xx with a usable SDP answer, and we sent
    /// the ACK: the dialog is confirmed (the outbound counterpart of
    /// [`SipEvent::Confirmed`]). From here on the call behaves like an
    /// answered inbound one and ends with exactly one [`SipEvent::Ended`].
    OutboundAnswered {
        /// The call.
        call: CallKey,
        /// The remote media from the answer (send RTP to `rtp_addr`).
        media: RemoteMedia,
    },
    /// Our outbound call was not established: a final non-2xx response
    /// (486, 603, ...; 487 after [`Endpoint::hangup`](crate::Endpoint::hangup)
    /// cancelled it), 408 when nothing answered the INVITE (Timer B), 480
    /// when the ring timeout passed (we cancelled), 488 when the 2xx had no
    /// usable SDP answer (we ACKed it and sent BYE), 503 on a transport
    /// error. The call's last event: no `Ended` follows.
    OutboundFailed {
        /// The call.
        call: CallKey,
        /// The final status code (see above).
        code: u16,
        /// The remote reason phrase, or what happened.
        reason: String,
    },
    /// The call is gone. Emitted exactly once per [`SipEvent::Incoming`] and
    /// per [`SipEvent::OutboundAnswered`].
    /// No event of the call follows it (a REFER still in flight is abandoned
    /// without a transfer event).
    Ended {
        /// The call.
        call: CallKey,
        /// Why it ended.
        reason: EndReason,
    },
}

impl SipEvent {
    /// The call the event is about.
    pub fn call(&self) -> &CallKey {
        match self {
            SipEvent::Incoming(inc) => &inc.call,
            SipEvent::Confirmed { call }
            | SipEvent::Digit { call, .. }
            | SipEvent::MediaChanged { call, .. }
            | SipEvent::TransferAccepted { call }
            | SipEvent::TransferProgress { call, .. }
            | SipEvent::TransferFailed { call, .. }
            | SipEvent::Ringing { call, .. }
            | SipEvent::OutboundAnswered { call, .. }
            | SipEvent::OutboundFailed { call, .. }
            | SipEvent::Ended { call, .. } => call,
        }
    }
}

/// An incoming call waiting for `ring`/`answer`/`reject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingCall {
    /// The call's Call-ID.
    pub call: CallKey,
    /// Who is calling (P-Asserted-Identity if present, else From).
    pub caller: Party,
    /// The dialled number: user part of the Request-URI (or To), or the tel: number.
    pub callee: String,
    /// The caller's SDP offer, already negotiated to one codec we support.
    pub offer: RemoteMedia,
    /// Where the INVITE came from; responses and our BYE go back there.
    pub peer: Peer,
}

/// A party of a call as named in SIP headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    /// User part of the URI (or the tel: number); may be empty.
    pub user: String,
    /// The display name, if any (non-UTF-8 bytes are replaced by U+FFFD).
    pub display_name: Option<String>,
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The remote party sent BYE.
    RemoteBye,
    /// The remote party sent CANCEL before we answered.
    Cancelled,
    /// Our 2xx was never acknowledged (RFC 3261 Timer H); we sent BYE.
    AckTimeout,
    /// Our BYE was answered or timed out (Timer F).
    LocalBye,
    /// We sent a final non-2xx response (after `reject` or `hangup` before answer).
    Rejected {
        /// The status code we sent.
        code: u16,
    },
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::RemoteBye => f.write_str("remote BYE"),
            EndReason::Cancelled => f.write_str("cancelled"),
            EndReason::AckTimeout => f.write_str("ACK timeout"),
            EndReason::LocalBye => f.write_str("local BYE"),
            EndReason::Rejected { code } => write!(f, "rejected with {code}"),
        }
    }
}
