//! SIP for the Hotline IVR gateway: a user agent that accepts calls and
//! places outbound ones (queued callbacks).
//!
//! What it is for: receiving INVITEs over UDP and TCP, negotiating one G.711
//! audio stream (plus RFC 4733 telephone-event), reporting calls, DTMF sent
//! by SIP INFO, hold/unhold and hang-ups to the application, and carrying
//! out the application's ring/answer/reject/hangup/refer commands with RFC 3261
//! transaction and dialog rules (retransmissions, CANCEL, ACK, BYE).
//!
//! Blind transfer (RFC 3515): [`Endpoint::refer`] sends an in-dialog REFER
//! (`Refer-To: <target>`) as a client transaction (at most one in flight per
//! call) and reports [`SipEvent::TransferAccepted`] on its 2xx,
//! [`SipEvent::TransferFailed`] on a final non-2xx or timeout (408), and one
//! [`SipEvent::TransferProgress`] per NOTIFY of the implicit `refer`
//! subscription (the status code of its `message/sipfrag` body). NOTIFY in a
//! dialog is answered 200; the call stays up until the application hangs up.
//! RFC 4488 (`Refer-Sub: false`), incoming REFER and attended transfer
//! (`Replaces`) are not supported.
//!
//! Outbound calls: [`Endpoint::originate`] (or [`SipHandle::originate`])
//! sends an INVITE with our SDP offer (PCMU, PCMA, telephone-event 101) to a
//! `sip:` target whose host is an IP address — the trunk or proxy — over UDP,
//! and returns the new call's Call-ID as its [`CallKey`]. The INVITE client
//! transaction follows RFC 3261 §17.1.1 (Timer A retransmissions, Timer B
//! gives up with 408; a non-2xx is ACKed in the transaction; each 2xx,
//! retransmissions included, gets the dialog's ACK with a new branch).
//! Provisional responses are reported as [`SipEvent::Ringing`]. A 2xx with a
//! usable SDP answer gives [`SipEvent::OutboundAnswered`]: from then on the
//! call is a dialog like an answered inbound one (BYE either way, re-INVITE
//! and UPDATE from the remote answered, INFO DTMF, REFER, `hangup`) and ends
//! with one [`SipEvent::Ended`]. Otherwise the call ends with one
//! [`SipEvent::OutboundFailed`] and nothing else: the final status (486, 603,
//! ...), 408 when nothing answered, 480 when the ring timeout passed (we sent
//! CANCEL), 487 after `hangup` cancelled it, 488 for an answer without a
//! usable codec (ACKed, then BYE), 503 on a send error. A 2xx that races our
//! CANCEL is ACKed and BYEd at once. The dialog's requests (ACK, BYE, ...)
//! go to the first Record-Route entry, else the remote target (Contact), when
//! it is an IP address, else to the original target. Not supported for
//! outbound calls: TCP/TLS targets, DNS, authentication (401/407 end the
//! call), 100rel/PRACK, early media and early dialogs (a 2xx from a second
//! fork is ACKed and BYEd once).
//!
//! The edge policy ([`Guard`], configured by [`GuardConfig`]) runs before
//! any of that: a trunk allow-list (403 or silence for everyone else), a
//! per-source rate limit with temporary bans, known scanner User-Agents
//! dropped, caps on calls in total, per source and un-ACKed per source (503),
//! on TCP connections per source and on header size; see `docs/security.md`.
//! A refused message creates no transaction and no [`SipEvent`].
//! Trunks may also have to authenticate their INVITEs with Digest
//! credentials (RFC 3261 §22, RFC 8760 SHA-256 or MD5, `qop=auth`;
//! [`Authenticator`]): 401 with a challenge, sent statelessly, then 403
//! for wrong credentials or a replayed nonce-count.
//!
//! SIP over TLS (RFC 3261 §26, port 5061 style; [`SipTls`]): a TLS listener
//! whose connections are framed and limited like TCP ones; responses carry
//! the caller's `Via: SIP/2.0/TLS`, our Contact says `;transport=tls`.
//!
//! What it is not for: registration, authenticating ourselves to others
//! (401/407 to our requests), opening TLS connections, proxying or DNS
//! (RFC 3263) routing. Responses and our in-dialog requests of inbound calls
//! (BYE, REFER) always go back over the flow the INVITE came in on (symmetric
//! response routing, RFC 3581; flow reuse for NAT). An INVITE without SDP
//! (delayed offer) is answered 488.
//!
//! Requests are checked before they become transactions: malformed ones get
//! one stateless 400 (505 for another SIP version), unserved methods 405 or
//! 501, other URI schemes than sip/sips/tel 416, any `Require` 420 (no
//! extension is supported), an INVITE whose Accept excludes SDP 406. The
//! RFC 4475 torture messages, with the answer to each, are in
//! `tests/rfc4475.rs`; the full table is in `docs/security.md`.
//!
//! The core, [`Endpoint`], is sans-IO: it takes bytes and the current time
//! and hands back [`Transmit`]s, [`SipEvent`]s and its next deadline.
//! [`SipServer`] is a thin tokio shell around it.
//!
//! ```
//! use std::time::Instant;
//! use hotline_sip::{Endpoint, EndpointConfig, Peer, SipEvent};
//!
//! let mut ep = Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()));
//! let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
//!            m=audio 4000 RTP/AVP 0\r\n";
//! let invite = format!(
//!     "INVITE sip:100@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\r\n\
//!      From: <sip:alice@192.0.2.1>;tag=a\r\nTo: <sip:100@192.0.2.10>\r\nCall-ID: c1\r\n\
//!      CSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.1>\r\nContent-Type: application/sdp\r\n\
//!      Content-Length: {}\r\n\r\n{sdp}",
//!     sdp.len()
//! );
//! let now = Instant::now();
//! ep.handle_input(now, Peer::udp("192.0.2.1:5060".parse().unwrap()), invite.as_bytes());
//! let trying = ep.poll_transmit().unwrap();
//! assert!(trying.data.starts_with(b"SIP/2.0 100 Trying"));
//! let Some(SipEvent::Incoming(call)) = ep.poll_event() else { panic!() };
//! assert_eq!(call.callee, "100");
//! ep.answer(now, &call.call, "192.0.2.10:30000".parse().unwrap()).unwrap();
//! assert!(ep.poll_transmit().unwrap().data.starts_with(b"SIP/2.0 200 OK"));
//! ```

#![warn(missing_docs)]

mod digest;
mod endpoint;
mod error;
mod event;
mod framing;
mod guard;
mod inspect;
mod message;
pub mod metrics;
mod sdes;
mod sdp;
mod shell;
mod transport;

use std::fmt;
use std::sync::Arc;

pub use digest::{Authenticator, DigestAlgorithm, DigestConfig, DigestVerdict, TrunkCredentials};
pub use endpoint::{Endpoint, EndpointConfig, Originate, Transmit};
pub use error::SipError;
pub use event::{EndReason, IncomingCall, Party, SipEvent};
pub use guard::{
    AuthRefusal, Ban, BanList, CallRefusal, ConnLimiter, DEFAULT_SCANNER_USER_AGENTS, EdgeCounters,
    EdgeStats, Guard, GuardConfig, RefuseMode, RequestVerdict, Trunk, TrunkParseError,
};
pub use inspect::{Inspected, inspect};
pub use sdes::{SDES_SUITE, SdesCrypto, SrtpOffer, crypto_attribute, parse_crypto, srtp_offer};
pub use sdp::{Codec, Direction, RemoteMedia, SdpError, SrtpKeys, negotiate};
pub use shell::{SipConfig, SipHandle, SipServer, SipTls};
pub use transport::{FramingError, Peer, TcpFramer, Transport};

/// Identifies a call: its SIP Call-ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub Arc<str>);

impl From<&str> for CallKey {
    fn from(s: &str) -> Self {
        CallKey(Arc::from(s))
    }
}

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
