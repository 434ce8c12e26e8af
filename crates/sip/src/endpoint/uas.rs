//! The UAS side of a call: the initial INVITE (refusal, 100 Trying, the
//! `Incoming` event), answering it on the application's command (180, 2xx
//! with our SDP answer, a final non-2xx), the ACK, CANCEL, and Timers G/H
//! of the INVITE server transaction; plus the responses of our server
//! transactions: to the call's INVITE, to non-INVITE requests (remembered
//! for retransmissions), and stateless ones.
//!
//! Requests received within an established dialog (re-INVITE, BYE, INFO,
//! UPDATE, NOTIFY) are in `in_dialog.rs`.

use std::net::SocketAddr;

use tracing::{debug, info, info_span, warn};

use super::dialog::{Call, Ctx, Phase, random_token};
use super::server_txn::{InviteTx, NonInviteKey};
use super::srtp::{random_key, sdes_answer};
use super::uac;
use crate::CallKey;
use crate::error::SipError;
use crate::event::{EndReason, IncomingCall, Party, SipEvent};
use crate::message::{
    ACCEPT, ALLOW, Method, Request, ResponseSpec, addr_spec, build_response, reason_phrase,
};
use crate::sdp::{self, LocalSession, RemoteMedia, SdpError};
use crate::transport::Peer;

/// Why an initial INVITE is refused at receipt: status, reason phrase, extra headers.
type Refusal = (u16, String, Vec<(&'static str, String)>);

/// What became of an initial INVITE whose Call-ID names a call we have.
pub(super) enum KnownCallId {
    /// Answered (a retransmission, a loop, our own INVITE back).
    Handled,
    /// A new attempt reusing the Call-ID of a finished call (e.g. after
    /// 503): the old state is to be dropped and the INVITE taken as new.
    Replaces,
}

/// An initial INVITE (no To tag) for a Call-ID we know.
pub(super) fn on_known_call_id(
    cx: &mut Ctx<'_>,
    call: &Call,
    peer: Peer,
    req: &Request,
) -> KnownCallId {
    if call.outbound {
        // Our own outbound INVITE came back to us.
        reply_stateless(cx, peer, req, 482);
        return KnownCallId::Handled;
    }
    if call.invite.branch == req.branch {
        // RFC 3261 §17.2.1: a retransmitted INVITE gets the last response again.
        let data = match &call.invite.last_response {
            Some(d) => d.clone(),
            None => invite_response(cx, call, 100, None, &[], None),
        };
        cx.out.send(call.invite.peer, data);
        return KnownCallId::Handled;
    }
    if call.phase == Phase::Terminated && req.cseq > call.invite.cseq {
        return KnownCallId::Replaces;
    }
    // RFC 3261 §8.2.2.2: a merged or looped request.
    reply_stateless(cx, peer, req, 482);
    KnownCallId::Handled
}

/// A new initial INVITE: refused statelessly by the edge policy's call
/// caps (no call), refused with a final response (a call that only
/// lingers), or taken: 100 Trying and `Incoming`.
pub(super) fn on_invite(
    cx: &mut Ctx<'_>,
    peer: Peer,
    req: Request,
    draining: bool,
) -> Option<Call> {
    let key = CallKey::from(req.call_id.as_str());
    if !draining && let Err(r) = cx.guard.admit_call(cx.now, peer.addr.ip(), cx.out.live()) {
        // Stateless: a refused INVITE leaves no transaction behind.
        let retry = [("Retry-After", r.retry_after.to_string())];
        reply_stateless_with(cx, peer, &req, 503, r.reason, &retry);
        return None;
    }
    let span = info_span!("call", call_id = %key);
    let _enter = span.enter();
    let verdict: Result<RemoteMedia, Refusal> = if draining {
        Err((
            503,
            "Service Unavailable".into(),
            vec![("Retry-After", "30".into())],
        ))
    } else if req.max_forwards == Some(0) {
        Err((483, "Too Many Hops".into(), vec![]))
    } else if !accepts_sdp(req.accept.as_deref()) {
        // RFC 3261 §21.4.7: our answer would be SDP, which it does not accept.
        Err((
            406,
            "Not Acceptable (Accept excludes application/sdp)".into(),
            vec![],
        ))
    } else if req.body.is_empty() {
        // Delayed offer (INVITE without SDP) is not supported yet.
        Err((488, "Not Acceptable Here (no SDP offer)".into(), vec![]))
    } else if req
        .content_type
        .as_deref()
        .is_some_and(|ct| !ct.starts_with("application/sdp"))
    {
        Err((
            415,
            "Unsupported Media Type".into(),
            vec![("Accept", "application/sdp".into())],
        ))
    } else {
        sdp::negotiate(&req.body)
            .map_err(|e| match e {
                SdpError::Malformed(why) => {
                    (400, format!("Bad Request (malformed SDP: {why})"), vec![])
                }
                SdpError::NoAudio | SdpError::NoCommonCodec => {
                    (488, format!("Not Acceptable Here ({e})"), vec![])
                }
            })
            .and_then(|mut media| {
                let require =
                    cx.cfg.require_srtp || cx.guard.config().requires_srtp(peer.addr.ip());
                media.srtp = sdes_answer(require, peer.transport, &req.body, None, random_key)
                    .map_err(|(code, reason)| (code, reason.to_string(), vec![]))?;
                Ok(media)
            })
    };

    let mut call = Call {
        key: key.clone(),
        span: span.clone(),
        peer,
        outbound: false,
        phase: Phase::Early,
        announced: false,
        ended: false,
        local_tag: random_token(10),
        remote_tag: req.from.tag.clone(),
        remote_party: req.reply.from.clone(),
        local_party: req.reply.to.clone(),
        // RFC 2543 peers may send no Contact (RFC 4475 §3.4.1): our requests
        // in the dialog then go to the From URI (over the INVITE's flow).
        remote_target: req
            .contact
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| addr_spec(&req.reply.from)),
        route_set: req.record_route.clone(),
        remote_cseq: req.cseq,
        local_cseq: 0,
        invite: InviteTx::new(
            req.branch.clone(),
            peer,
            req.cseq,
            req.reply.clone(),
            req.record_route.clone(),
            false,
            cx.cfg.t1,
        ),
        remote_media: None,
        local: None,
        client: Default::default(),
        referred: false,
        bye_after_ack: false,
        reap_at: None,
        edge: None,
    };
    match verdict {
        Err((code, reason, extra)) => {
            info!(%peer, code, %reason, "INVITE refused");
            send_invite_failure(cx, &mut call, code, &reason, &extra);
            call.phase = Phase::Terminated;
            call.end(cx, EndReason::Rejected { code });
        }
        Ok(media) => {
            // RFC 3261 §17.2.1: 100 Trying at once so the caller stops retransmitting.
            let trying = invite_response(cx, &call, 100, None, &[], None);
            call.invite.last_response = Some(trying.clone());
            cx.out.send(peer, trying);
            call.remote_media = Some(media);
            call.invite.received = Some(cx.now);
            call.announced = true;
            cx.out.call_announced();
            if cx.guard.call_started(cx.now, peer.addr.ip()) {
                call.edge = Some((peer.addr.ip(), true));
            }
            let caller = match &req.pai {
                Some(p) => Party {
                    user: p.user.clone(),
                    display_name: p.display.clone(),
                },
                None => Party {
                    user: req.from.user.clone(),
                    display_name: req.from.display.clone(),
                },
            };
            let callee = if req.uri_user.is_empty() {
                req.to.user.clone()
            } else {
                req.uri_user.clone()
            };
            let srtp = media.srtp.is_some();
            info!(%peer, caller = %caller.user, %callee, codec = ?media.codec, srtp, "incoming call");
            cx.out.event(SipEvent::Incoming(IncomingCall {
                call: key,
                caller,
                callee,
                offer: media,
                peer,
            }));
        }
    }
    Some(call)
}

/// Whether an Accept header (its media ranges, lower-cased) admits
/// `application/sdp`. No Accept, or an empty one, means the default:
/// application/sdp (RFC 3261 §20.1).
fn accepts_sdp(accept: Option<&[String]>) -> bool {
    let Some(ranges) = accept.filter(|r| !r.is_empty()) else {
        return true;
    };
    ranges
        .iter()
        .any(|r| matches!(r.as_str(), "application/sdp" | "application/*" | "*/*"))
}

/// Sends 180 Ringing ([`Endpoint::ring`](crate::Endpoint::ring)).
pub(super) fn ring(cx: &mut Ctx<'_>, c: &mut Call) -> Result<(), SipError> {
    if c.phase != Phase::Early || c.invite.final_code.is_some() || !c.announced {
        return Err(SipError::InvalidState {
            call: c.key.clone(),
            action: "ring",
        });
    }
    let data = invite_response(cx, c, 180, None, &[], None);
    c.invite.last_response = Some(data.clone());
    cx.out.send(c.invite.peer, data);
    info!("180 Ringing sent");
    Ok(())
}

/// Sends 200 OK with our SDP answer ([`Endpoint::answer`](crate::Endpoint::answer)).
pub(super) fn answer(
    cx: &mut Ctx<'_>,
    c: &mut Call,
    local_rtp: SocketAddr,
) -> Result<(), SipError> {
    let media = match c.remote_media {
        Some(m) if c.phase == Phase::Early && c.invite.final_code.is_none() => m,
        _ => {
            return Err(SipError::InvalidState {
                call: c.key.clone(),
                action: "answer",
            });
        }
    };
    let rtp = if local_rtp.ip().is_unspecified() {
        SocketAddr::new(cx.cfg.contact_addr.ip(), local_rtp.port())
    } else {
        local_rtp
    };
    let local = LocalSession {
        sess_id: fastrand::u64(1..1 << 40),
        version: 1,
        rtp,
    };
    c.local = Some(local);
    let body = sdp::build(&local, &media, media.direction.mirrored());
    send_invite_2xx(cx, c, body);
    c.phase = Phase::Answered;
    info!(%rtp, codec = ?media.codec, "200 OK sent");
    Ok(())
}

/// Sends a final non-2xx (`code`) to an unanswered call
/// ([`Endpoint::reject`](crate::Endpoint::reject)).
pub(super) fn reject(cx: &mut Ctx<'_>, c: &mut Call, code: u16) -> Result<(), SipError> {
    if c.phase != Phase::Early || c.invite.final_code.is_some() {
        return Err(SipError::InvalidState {
            call: c.key.clone(),
            action: "reject",
        });
    }
    refuse(cx, c, code);
    Ok(())
}

/// Ends an unanswered inbound call with a final non-2xx `code`.
pub(super) fn refuse(cx: &mut Ctx<'_>, c: &mut Call, code: u16) {
    send_invite_failure(cx, c, code, reason_phrase(code), &[]);
    c.phase = Phase::Terminated;
    c.end(cx, EndReason::Rejected { code });
}

/// An ACK: for our non-2xx it belongs to the INVITE transaction, for our
/// 2xx it is matched by dialog and confirms the call (RFC 3261 §17.2.1,
/// §13.3.1.4). A hangup that waited for it sends BYE now.
pub(super) fn on_ack(cx: &mut Ctx<'_>, c: &mut Call, req: &Request) {
    let tx = &c.invite;
    let Some(final_code) = tx.final_code.filter(|_| !tx.acked) else {
        debug!("ACK retransmission or early ACK absorbed");
        return;
    };
    let is_2xx = final_code < 300;
    // RFC 3261 §17.2.1: the ACK for a non-2xx belongs to the INVITE transaction.
    let non2xx_ack = !is_2xx && tx.branch == req.branch;
    // RFC 3261 §13.3.1.4: the ACK for a 2xx is its own transaction, matched by dialog.
    let ack_2xx =
        is_2xx && req.cseq == tx.cseq && req.to.tag.as_deref() == Some(c.local_tag.as_str());
    if !(non2xx_ack || ack_2xx) {
        debug!("ACK matches nothing; dropped");
        return;
    }
    c.invite.on_ack();
    if ack_2xx && c.phase == Phase::Answered && !c.invite.is_reinvite {
        if let Some((ip, unacked)) = c.edge.as_mut()
            && *unacked
        {
            *unacked = false;
            cx.guard.call_acked(*ip);
        }
        c.phase = Phase::Confirmed;
        info!("call confirmed");
        cx.out.event(SipEvent::Confirmed {
            call: c.key.clone(),
        });
    }
    if c.bye_after_ack && c.phase == Phase::Confirmed {
        c.bye_after_ack = false;
        uac::send_bye(cx, c);
    }
}

/// A CANCEL (RFC 3261 §9.2): 481 unless it matches the call's initial
/// INVITE transaction; else 200, and 487 to the INVITE if still unanswered.
pub(super) fn on_cancel(cx: &mut Ctx<'_>, call: Option<&mut Call>, peer: Peer, req: &Request) {
    let Some(c) = call.filter(|c| c.invite.branch == req.branch && !c.invite.is_reinvite) else {
        // RFC 3261 §9.2: no matching transaction.
        reply_non_invite(cx, peer, req, 481, None, &[], None);
        return;
    };
    let tag = c.local_tag.clone();
    reply_non_invite(cx, peer, req, 200, Some(&tag), &[], None);
    if c.invite.final_code.is_none() {
        // RFC 3261 §9.2: the INVITE gets 487 Request Terminated.
        send_invite_failure(cx, c, 487, reason_phrase(487), &[]);
        c.phase = Phase::Terminated;
        c.end(cx, EndReason::Cancelled);
    }
}

/// OPTIONS: 200 with what we support; in our dialog with our tag.
pub(super) fn on_options(cx: &mut Ctx<'_>, call: Option<&Call>, peer: Peer, req: &Request) {
    let extra = [
        ("Allow", ALLOW.to_string()),
        ("Accept", ACCEPT.to_string()),
        ("Supported", String::new()),
    ];
    let tag = call
        .filter(|c| c.matches_dialog(req))
        .map(|c| c.local_tag.clone());
    reply_non_invite(cx, peer, req, 200, tag.as_deref(), &extra, None);
}

/// Timers G and H of the call's INVITE server transaction. A 2xx never
/// ACKed ends the dialog with BYE (RFC 3261 §13.3.1.4).
pub(super) fn on_timeout(cx: &mut Ctx<'_>, c: &mut Call) {
    c.invite.fire_timer_g(cx.out, cx.now, cx.cfg.t2);
    if !c.invite.fire_timer_h(cx.now) {
        return;
    }
    if c.invite.final_code.is_some_and(|code| code < 300) {
        warn!("no ACK for 2xx within 64*T1 (Timer H)");
        if !matches!(c.phase, Phase::Ending | Phase::Terminated) {
            uac::send_bye(cx, c);
        }
        c.end(cx, EndReason::AckTimeout);
    } else {
        debug!("no ACK for non-2xx final response (Timer H)");
    }
}

// ----- responses -----

/// A response to the call's current INVITE.
pub(super) fn invite_response(
    cx: &Ctx<'_>,
    call: &Call,
    code: u16,
    reason: Option<&str>,
    extra: &[(&str, String)],
    body: Option<&str>,
) -> Vec<u8> {
    let mut headers: Vec<(&str, String)> = Vec::new();
    if (101..300).contains(&code) {
        headers.push(("Contact", cx.cfg.contact(call.invite.peer.transport)));
    }
    if (200..300).contains(&code) {
        headers.push(("Allow", ALLOW.to_string()));
        headers.push(("Supported", String::new()));
    }
    headers.extend(extra.iter().cloned());
    let rr: &[String] = if (101..300).contains(&code) {
        &call.invite.record_route
    } else {
        &[]
    };
    build_response(
        &call.invite.reply,
        &call.invite.peer,
        &ResponseSpec {
            code,
            reason: reason.unwrap_or(reason_phrase(code)),
            // RFC 3261 §8.2.6.2: 100 Trying need not carry a tag; all others do.
            to_tag: (code != 100).then_some(call.local_tag.as_str()),
            record_route: rr,
            extra: &headers,
            body: body.map(|b| ("application/sdp", b.as_bytes())),
            server: &cx.cfg.user_agent,
        },
    )
}

/// 2xx to the current INVITE, retransmitted until ACK (RFC 3261 §13.3.1.4).
pub(super) fn send_invite_2xx(cx: &mut Ctx<'_>, call: &mut Call, sdp_body: String) {
    let data = invite_response(cx, call, 200, None, &[], Some(&sdp_body));
    if let Some(at) = call.invite.received.take() {
        crate::metrics::invite_answered(cx.now.saturating_duration_since(at));
    }
    call.invite.send_final(cx.out, cx.now, cx.cfg.t1, 200, data);
}

/// Final non-2xx to the current INVITE: Timer G on UDP, Timer H always (§17.2.1).
pub(super) fn send_invite_failure(
    cx: &mut Ctx<'_>,
    call: &mut Call,
    code: u16,
    reason: &str,
    extra: &[(&str, String)],
) {
    let data = invite_response(cx, call, code, Some(reason), extra, None);
    call.invite
        .send_final(cx.out, cx.now, cx.cfg.t1, code, data);
    info!(code, reason, "final response sent");
}

/// Answers a non-INVITE request and remembers the answer for
/// retransmissions (RFC 3261 §17.2.2). Without `to_tag` a random one.
pub(super) fn reply_non_invite(
    cx: &mut Ctx<'_>,
    peer: Peer,
    req: &Request,
    code: u16,
    to_tag: Option<&str>,
    extra: &[(&str, String)],
    body: Option<(&str, &[u8])>,
) {
    let fallback_tag;
    let to_tag = match to_tag {
        Some(t) => Some(t),
        None => {
            fallback_tag = random_token(10);
            Some(fallback_tag.as_str())
        }
    };
    let data = build_response(
        &req.reply,
        &peer,
        &ResponseSpec {
            code,
            reason: reason_phrase(code),
            to_tag,
            record_route: &[],
            extra,
            body,
            server: &cx.cfg.user_agent,
        },
    );
    // RFC 3261 §17.2.2: Timer J is 64*T1 on UDP, zero on TCP.
    if !peer.transport.is_reliable() {
        let expires = cx.now + cx.cfg.t1 * 64;
        cx.server
            .remember(NonInviteKey::of(req), data.clone(), expires);
    }
    cx.out.send(peer, data);
}

/// A response sent once, without transaction state (the request did not
/// fit any call); retransmissions are answered the same way again.
pub(super) fn reply_stateless(cx: &mut Ctx<'_>, peer: Peer, req: &Request, code: u16) {
    reply_stateless_with(cx, peer, req, code, reason_phrase(code), &[]);
}

/// [`reply_stateless`] with a reason phrase and extra headers.
/// Never answers an ACK (RFC 3261 §17).
pub(super) fn reply_stateless_with(
    cx: &mut Ctx<'_>,
    peer: Peer,
    req: &Request,
    code: u16,
    reason: &str,
    extra: &[(&str, String)],
) {
    reply_stateless_tagged(cx, peer, req, code, reason, extra, &random_token(10));
}

/// [`reply_stateless_with`] with a given To tag (one that is the same for
/// a retransmitted request, RFC 3261 §8.2.7).
pub(super) fn reply_stateless_tagged(
    cx: &mut Ctx<'_>,
    peer: Peer,
    req: &Request,
    code: u16,
    reason: &str,
    extra: &[(&str, String)],
    tag: &str,
) {
    if req.method == Method::Ack {
        return;
    }
    let data = build_response(
        &req.reply,
        &peer,
        &ResponseSpec {
            code,
            reason,
            to_tag: Some(tag),
            record_route: &[],
            extra,
            body: None,
            server: &cx.cfg.user_agent,
        },
    );
    cx.out.send(peer, data);
}
