//! Placing an outbound call ([`Endpoint::originate`](crate::Endpoint::originate)):
//! checking the request, building the call, our SDP offer and the INVITE,
//! and starting its client transaction (Timers A and B, the ring timeout).
//! What happens to the INVITE after that is `uac.rs`'s business.

use std::net::SocketAddr;

use tracing::{info, info_span};

use super::client_txn::{InviteClientTx, UacState};
use super::config::Originate;
use super::dialog::{Call, Ctx, Phase, new_branch, random_token};
use super::server_txn::InviteTx;
use super::uac::Uac;
use crate::CallKey;
use crate::error::SipError;
use crate::message::{ALLOW, build_request, uri_destination};
use crate::sdp::{self, LocalSession};
use crate::transport::{Peer, Transport};

/// An [`Originate`] request that passed validation.
pub(super) struct Target<'a> {
    uri: &'a str,
    addr: SocketAddr,
    /// The From display name, quoted and followed by a space, or empty.
    display: String,
}

/// Checks what `originate` was asked to call, before anything is sent.
pub(super) fn check(req: &Originate) -> Result<Target<'_>, SipError> {
    let target = req.target.trim();
    let bad = |why: &str| SipError::InvalidOriginate(format!("{target:?}: {why}"));
    if target.is_empty()
        || target
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
    {
        return Err(bad("not a usable URI"));
    }
    let (addr, transport) = uri_destination(target).map_err(bad)?;
    if transport != Transport::Udp {
        return Err(bad("only UDP targets are supported"));
    }
    if req.from_user.is_empty()
        || !req
            .from_user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,%".contains(c))
    {
        return Err(SipError::InvalidOriginate(format!(
            "{:?} is not a usable From user",
            req.from_user
        )));
    }
    let display = match req.from_display.as_deref().map(str::trim) {
        Some(d) if d.chars().any(char::is_control) => {
            return Err(SipError::InvalidOriginate(format!(
                "{d:?} is not a usable display name"
            )));
        }
        Some(d) if !d.is_empty() => {
            let quoted = d.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{quoted}\" ")
        }
        _ => String::new(),
    };
    Ok(Target {
        uri: target,
        addr,
        display,
    })
}

/// Sends the INVITE of a new outbound call `key` (RFC 3261 §17.1.1) and
/// returns the call with its INVITE leg.
pub(super) fn originate(
    cx: &mut Ctx<'_>,
    key: CallKey,
    req: &Originate,
    target: Target<'_>,
) -> (Call, Box<Uac>) {
    let (now, cfg) = (cx.now, cx.cfg);
    let span = info_span!("call", call_id = %key);
    let _enter = span.enter();
    let peer = Peer::udp(target.addr);
    let rtp = if req.local_rtp.ip().is_unspecified() {
        SocketAddr::new(cfg.contact_addr.ip(), req.local_rtp.port())
    } else {
        req.local_rtp
    };
    let local = LocalSession {
        sess_id: fastrand::u64(1..1 << 40),
        version: 1,
        rtp,
    };
    let local_tag = random_token(10);
    let local_party = format!(
        "{}<sip:{}@{}>",
        target.display, req.from_user, cfg.contact_addr
    );
    let to = format!("<{}>", target.uri);
    let branch = new_branch();
    let via = format!(
        "SIP/2.0/{} {};branch={branch};rport",
        peer.transport, cfg.contact_addr
    );
    let cseq = 1;
    let body = sdp::build_offer(&local);
    let headers: Vec<(&str, String)> = vec![
        ("Via", via.clone()),
        ("Max-Forwards", "70".to_string()),
        ("From", format!("{local_party};tag={local_tag}")),
        ("To", to.clone()),
        ("Call-ID", key.0.to_string()),
        ("CSeq", format!("{cseq} INVITE")),
        ("Contact", cfg.contact(peer.transport)),
        ("Allow", ALLOW.to_string()),
        ("User-Agent", cfg.user_agent.clone()),
    ];
    let invite = build_request(
        "INVITE",
        target.uri,
        &headers,
        Some(("application/sdp", body.as_bytes())),
    );
    let t1 = cfg.t1;
    let tx = InviteClientTx {
        state: UacState::Calling,
        branch,
        cseq,
        request_uri: target.uri.to_string(),
        via,
        to: to.clone(),
        invite: invite.clone(),
        peer,
        retransmit_at: (!peer.transport.is_reliable()).then(|| now + t1),
        interval: t1,
        timer_b: Some(now + t1 * 64),
        ack: None,
        ack_until: None,
    };
    // An absurdly long timeout means none (no overflow panic).
    let uac = Uac::new(tx, now.checked_add(req.ring_timeout), local);
    let call = Call {
        key: key.clone(),
        span: span.clone(),
        peer,
        outbound: true,
        phase: Phase::Early,
        announced: true,
        ended: false,
        local_tag,
        remote_tag: None,
        remote_party: to,
        local_party,
        remote_target: target.uri.to_string(),
        route_set: Vec::new(),
        remote_cseq: 0,
        local_cseq: cseq,
        invite: InviteTx::stand_in(&key.0, peer, t1),
        remote_media: None,
        local: None,
        client: Default::default(),
        referred: false,
        bye_after_ack: false,
        reap_at: None,
        edge: None,
    };
    cx.out.call_announced();
    info!(target = %target.uri, %peer, %rtp, "outbound INVITE sent");
    cx.out.send(peer, invite);
    (call, Box::new(uac))
}
