//! The state of one call and of its dialog (RFC 3261 §12): identity (tags,
//! parties, remote target, route set, CSeqs), the phase the call is in,
//! the current INVITE server transaction, our in-dialog client
//! transactions, the media of both sides, and how a call ends (one `Ended`
//! event, edge-policy bookkeeping, lingering to absorb retransmissions).
//! Also [`Ctx`], the endpoint-wide state that call handlers borrow next to
//! the call, and how requests within a dialog are built and routed.
//!
//! Behaviour lives above: `uas.rs` / `in_dialog.rs` (what we receive) and
//! `uac.rs` (what we send).

use std::net::IpAddr;
use std::time::Instant;

use tracing::{Span, info};

use super::client_txn::ClientTxns;
use super::config::EndpointConfig;
use super::outbox::Outbox;
use super::server_txn::{InviteTx, NonInviteTxns};
use crate::CallKey;
use crate::event::{EndReason, SipEvent};
use crate::guard::Guard;
use crate::message::{Method, Request, build_request, uri_destination};
use crate::sdp::{LocalSession, RemoteMedia};
use crate::transport::{Peer, Transport};

/// The endpoint-wide state a call's handlers may touch, borrowed from the
/// [`Endpoint`](crate::Endpoint)'s fields next to the `&mut Call` itself
/// (a split borrow: the call stays in the endpoint's table).
pub(super) struct Ctx<'a> {
    /// The caller-supplied clock of the current input or timeout.
    pub(super) now: Instant,
    pub(super) cfg: &'a EndpointConfig,
    /// Where transmits and events go.
    pub(super) out: &'a mut Outbox,
    /// The edge policy, which counts calls per source.
    pub(super) guard: &'a mut Guard,
    /// Completed non-INVITE server transactions (answers to retransmissions).
    pub(super) server: &'a mut NonInviteTxns,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// INVITE received (or, outbound, sent), no final response yet.
    Early,
    /// 2xx sent, waiting for ACK.
    Answered,
    /// ACK received.
    Confirmed,
    /// Our BYE is in flight.
    Ending,
    /// Dialog gone; kept only to absorb retransmissions until reaped.
    Terminated,
}

/// One call, inbound or outbound. (An outbound call's INVITE client side
/// is kept next to it by the endpoint; see `uac.rs`.)
#[derive(Debug)]
pub(super) struct Call {
    pub(super) key: CallKey,
    pub(super) span: Span,
    /// Inbound: the flow the INVITE came on; everything for this call goes
    /// back there (flow reuse, so NATed callers get our BYE too). Outbound:
    /// the INVITE's destination, the fallback next hop (see `next_hop`).
    pub(super) peer: Peer,
    /// We placed this call ([`Endpoint::originate`](crate::Endpoint::originate)).
    pub(super) outbound: bool,
    pub(super) phase: Phase,
    /// `Incoming` was emitted (or the call was originated), so exactly one
    /// `Ended` (or, outbound before answer, `OutboundFailed`) is owed.
    pub(super) announced: bool,
    /// `Ended` was emitted (or is not owed).
    pub(super) ended: bool,
    pub(super) local_tag: String,
    pub(super) remote_tag: Option<String>,
    /// The remote party's name-addr, their tag included: our To in requests
    /// (inbound: the INVITE's From; outbound: the 2xx's To).
    pub(super) remote_party: String,
    /// Our name-addr without our tag: our From in requests (inbound: the
    /// INVITE's To; outbound: the From we sent).
    pub(super) local_party: String,
    pub(super) remote_target: String,
    pub(super) route_set: Vec<String>,
    pub(super) remote_cseq: u32,
    pub(super) local_cseq: u32,
    pub(super) invite: InviteTx,
    pub(super) remote_media: Option<RemoteMedia>,
    pub(super) local: Option<LocalSession>,
    /// Our in-dialog requests awaiting a final response: at most one BYE and
    /// one REFER (and, outbound, our CANCEL).
    pub(super) client: ClientTxns,
    /// We sent a REFER in this dialog, so NOTIFYs of its implicit
    /// subscription are reported (RFC 3515 §2.4.4).
    pub(super) referred: bool,
    /// hangup() came while the 2xx was unacknowledged (RFC 3261 §15: no BYE before ACK).
    pub(super) bye_after_ack: bool,
    pub(super) reap_at: Option<Instant>,
    /// Inbound calls the edge policy counts against their source: the
    /// source, and whether the ACK for our 2xx is still owed.
    pub(super) edge: Option<(IpAddr, bool)>,
}

impl Call {
    /// The earliest of the call's own timers (server and client
    /// transactions, reaping).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [
            self.invite.next_deadline(),
            self.reap_at,
            self.client.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// RFC 3261 §12.2.2: an in-dialog request must carry both tags of this dialog.
    pub(super) fn matches_dialog(&self, req: &Request) -> bool {
        self.phase != Phase::Terminated
            // We track no early dialogs of our own INVITEs.
            && !(self.outbound && self.phase == Phase::Early)
            && req.to.tag.as_deref() == Some(self.local_tag.as_str())
            && req.from.tag == self.remote_tag
    }

    /// The dialog is over: reports `Ended` (once, if the call was
    /// announced), releases the call's edge-policy slot and lets the state
    /// linger.
    pub(super) fn end(&mut self, cx: &mut Ctx<'_>, reason: EndReason) {
        // The dialog is gone: a REFER still in flight is abandoned (no
        // transfer event follows `Ended`); only our BYE runs to completion.
        self.client.retain(|m| *m == Method::Bye);
        if let Some((ip, unacked)) = self.edge.take() {
            cx.guard.call_ended(ip, unacked);
        }
        if !self.ended {
            self.ended = true;
            if self.announced {
                info!(%reason, "call ended");
                cx.out.call_finished(SipEvent::Ended {
                    call: self.key.clone(),
                    reason,
                });
            }
        }
        self.linger(cx);
    }

    /// Keeps a finished call's state long enough to absorb retransmissions
    /// (Timers D/H/I/J/K).
    pub(super) fn linger(&mut self, cx: &Ctx<'_>) {
        let linger = cx.now + cx.cfg.t1 * 64 + cx.cfg.t4;
        self.reap_at = Some(self.reap_at.map_or(linger, |r| r.max(linger)));
    }

    /// Our BYE is sent or the call was reported ended: the session is
    /// over (RFC 3261 §15.1.1), though the dialog may still absorb
    /// retransmissions and finish our BYE.
    pub(super) fn is_over(&self) -> bool {
        self.ended || matches!(self.phase, Phase::Ending | Phase::Terminated)
    }

    /// What identifies the dialog in our requests.
    pub(super) fn ids(&self) -> DialogIds<'_> {
        DialogIds {
            call_id: &self.key.0,
            local_party: &self.local_party,
            local_tag: &self.local_tag,
            remote_party: &self.remote_party,
            remote_target: &self.remote_target,
            route_set: &self.route_set,
        }
    }

    /// Where requests in the dialog go (RFC 3261 §12.2.1.1, §8.1.2).
    /// Inbound: back over the INVITE's flow (flow reuse). Outbound: the
    /// first Route, else the remote target, when it names an IP address
    /// over UDP; else the INVITE's destination.
    pub(super) fn next_hop(&self) -> Peer {
        if !self.outbound {
            return self.peer;
        }
        next_hop_of(&self.route_set, &self.remote_target, self.peer)
    }
}

/// What identifies a dialog in our requests (RFC 3261 §12.2.1.1).
pub(super) struct DialogIds<'a> {
    pub(super) call_id: &'a str,
    pub(super) local_party: &'a str,
    pub(super) local_tag: &'a str,
    pub(super) remote_party: &'a str,
    pub(super) remote_target: &'a str,
    pub(super) route_set: &'a [String],
}

/// The next hop for a route set and remote target (see [`Call::next_hop`]).
pub(super) fn next_hop_of(route_set: &[String], remote_target: &str, fallback: Peer) -> Peer {
    let uri = route_set.first().map_or(remote_target, String::as_str);
    match uri_destination(uri) {
        Ok((addr, Transport::Udp)) if fallback.transport == Transport::Udp => Peer::udp(addr),
        _ => fallback,
    }
}

/// A request within a dialog (RFC 3261 §12.2.1.1), also the ACK for a
/// 2xx (§13.2.2.4: the INVITE's CSeq number, a new branch). `extra`
/// headers go after the dialog headers.
pub(super) fn dialog_request(
    cfg: &EndpointConfig,
    d: &DialogIds<'_>,
    hop: Peer,
    method: &Method,
    cseq: u32,
    branch: &str,
    extra: Vec<(&str, String)>,
) -> Vec<u8> {
    let mut headers: Vec<(&str, String)> = vec![(
        "Via",
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            hop.transport,
            cfg.local_addr(hop.transport)
        ),
    )];
    headers.push(("Max-Forwards", "70".to_string()));
    // RFC 3261 §12.1.1/§12.1.2: the route set (loose routing assumed).
    for r in d.route_set {
        headers.push(("Route", r.clone()));
    }
    headers.push(("From", format!("{};tag={}", d.local_party, d.local_tag)));
    headers.push(("To", d.remote_party.to_string()));
    headers.push(("Call-ID", d.call_id.to_string()));
    headers.push(("CSeq", format!("{cseq} {}", method.as_str())));
    headers.extend(extra);
    headers.push(("User-Agent", cfg.user_agent.clone()));
    build_request(method.as_str(), d.remote_target, &headers, None)
}

/// `n` random alphanumeric characters (tags, Call-IDs).
pub(super) fn random_token(n: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(n)
        .collect()
}

/// A fresh RFC 3261 branch (magic cookie + random).
pub(super) fn new_branch() -> String {
    format!("z9hG4bK{}", random_token(16))
}
