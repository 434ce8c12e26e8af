//! The UAC side: requests the gateway originates. The outbound INVITE leg
//! of a call we placed (its responses: `Ringing`, the 2xx that creates the
//! dialog and its ACK, forked 2xx, failures; the ring timeout and the
//! CANCEL we send), and our requests within a dialog — BYE and REFER —
//! with what their outcome means for the call.
//!
//! Building and sending the INVITE is in `originate.rs`; the transaction
//! mechanics (Timers A/B/E/F, matching) are in `client_txn.rs` — this
//! module decides what they mean.

use std::time::Instant;

use tracing::{debug, info, warn};

use super::client_txn::{ClientTx, InviteClientTx, UacState};
use super::dialog::{Call, Ctx, DialogIds, Phase, dialog_request, new_branch, next_hop_of};
use crate::error::SipError;
use crate::event::{EndReason, SipEvent};
use crate::message::{Method, Response};
use crate::sdp::{self, LocalSession};
use crate::transport::Peer;

/// Why we cancel an outbound INVITE: what `OutboundFailed` will say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CancelCause {
    code: u16,
    reason: &'static str,
}

/// The ring timeout passed without a final response.
const NO_ANSWER: CancelCause = CancelCause {
    code: 480,
    reason: "no answer",
};
/// The application hung up before the call was answered.
pub(super) const HUNG_UP: CancelCause = CancelCause {
    code: 487,
    reason: "cancelled",
};

/// The outbound INVITE of a call we placed: its client transaction, and
/// what the call does around it (ring timeout, CANCEL, `Ringing` reports,
/// our SDP offer). Kept for the call's life so that 2xx retransmissions
/// still get an ACK.
#[derive(Debug)]
pub(super) struct Uac {
    tx: InviteClientTx,
    /// The no-answer timeout.
    ring_deadline: Option<Instant>,
    /// Set once we have decided to cancel.
    cancel: Option<CancelCause>,
    /// The CANCEL waits for a provisional response (RFC 3261 §9.1).
    cancel_pending: bool,
    /// After our CANCEL: when to stop waiting for the INVITE's final response (§9.1).
    cancel_deadline: Option<Instant>,
    /// Provisional codes already reported as `Ringing`.
    reported: Vec<u16>,
    /// SDP of the last provisional response, used when the 2xx carries none.
    early_sdp: Option<Vec<u8>>,
    /// Our offer's session (the call's `local` once answered).
    local: LocalSession,
}

impl Uac {
    /// The leg of an INVITE just sent in `tx`, with its ring timeout and our offer.
    pub(super) fn new(
        tx: InviteClientTx,
        ring_deadline: Option<Instant>,
        local: LocalSession,
    ) -> Self {
        Uac {
            tx,
            ring_deadline,
            cancel: None,
            cancel_pending: false,
            cancel_deadline: None,
            reported: Vec::new(),
            early_sdp: None,
            local,
        }
    }

    /// Timers A and B, and while no final response has arrived the ring
    /// timeout and the wait after our CANCEL.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let pending = self.tx.is_pending();
        [
            self.tx.next_deadline(),
            self.ring_deadline.filter(|_| pending),
            self.cancel_deadline.filter(|_| pending),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a response with this branch and CSeq is to our INVITE.
    pub(super) fn matches(&self, branch: &str, cseq: u32) -> bool {
        self.tx.branch == branch && self.tx.cseq == cseq
    }

    /// Still waiting for any response from `peer` (Calling).
    pub(super) fn is_calling(&self, peer: Peer) -> bool {
        self.tx.state == UacState::Calling && self.tx.peer == peer
    }

    /// What `OutboundFailed` says: our cancel cause if we cancelled, else `code`/`reason`.
    fn cause_or(&self, code: u16, reason: &str) -> (u16, String) {
        match self.cancel {
            Some(cause) => (cause.code, cause.reason.to_string()),
            None => (code, reason.to_string()),
        }
    }
}

// ----- requests in the dialog -----

/// Sends a request within the dialog (RFC 3261 §12.2.1.1) as a client
/// non-INVITE transaction (§17.1.2): Timer E retransmits on UDP, Timer F
/// gives up. `extra` headers go after the dialog headers.
fn send_in_dialog(cx: &mut Ctx<'_>, call: &mut Call, method: Method, extra: Vec<(&str, String)>) {
    call.local_cseq += 1;
    let branch = new_branch();
    let hop = call.next_hop();
    let data = dialog_request(
        cx.cfg,
        &call.ids(),
        hop,
        &method,
        call.local_cseq,
        &branch,
        extra,
    );
    let tx = ClientTx::new(method, branch, hop, data, cx.now, cx.cfg.t1);
    call.client.start(cx.out, tx);
}

/// BYE as a client non-INVITE transaction (RFC 3261 §15.1.1).
pub(super) fn send_bye(cx: &mut Ctx<'_>, call: &mut Call) {
    send_in_dialog(cx, call, Method::Bye, Vec::new());
    call.phase = Phase::Ending;
    info!("BYE sent");
}

/// Blind transfer: REFER to `target` ([`Endpoint::refer`](crate::Endpoint::refer)).
pub(super) fn refer(cx: &mut Ctx<'_>, c: &mut Call, target: &str) -> Result<(), SipError> {
    if c.phase != Phase::Confirmed || c.client.has(&Method::Refer) {
        return Err(SipError::InvalidState {
            call: c.key.clone(),
            action: "refer",
        });
    }
    let extra = vec![
        ("Contact", cx.cfg.contact(c.peer.transport)),
        ("Refer-To", format!("<{target}>")),
        (
            "Referred-By",
            format!("<sip:hotline@{}>", cx.cfg.contact_addr),
        ),
    ];
    send_in_dialog(cx, c, Method::Refer, extra);
    c.referred = true;
    info!(%target, "REFER sent");
    Ok(())
}

/// A client transaction got its final response (`code`), or timed out (408).
pub(super) fn client_completed(cx: &mut Ctx<'_>, c: &mut Call, method: Method, code: u16) {
    match method {
        Method::Bye => {
            if code == 408 {
                warn!("BYE not answered (Timer F)");
            } else {
                info!(code, "BYE answered");
            }
            c.phase = Phase::Terminated;
            c.end(cx, EndReason::LocalBye);
        }
        Method::Refer if c.ended => debug!(code, "REFER outcome after the call ended"),
        Method::Refer if (200..300).contains(&code) => {
            info!(code, "REFER accepted");
            cx.out.event(SipEvent::TransferAccepted {
                call: c.key.clone(),
            });
        }
        Method::Refer => {
            warn!(code, "REFER failed");
            cx.out.event(SipEvent::TransferFailed {
                call: c.key.clone(),
                code,
            });
        }
        other => debug!(
            method = other.as_str(),
            code, "client transaction completed"
        ),
    }
}

// ----- the outbound INVITE -----

/// A response to our outbound INVITE (RFC 3261 §17.1.1.2, §13.2.2).
pub(super) fn on_invite_response(cx: &mut Ctx<'_>, c: &mut Call, uac: &mut Uac, resp: Response) {
    match resp.code {
        100..=199 => on_provisional(cx, c, uac, resp),
        200..=299 => on_invite_2xx(cx, c, uac, resp),
        _ => on_invite_failure(cx, c, uac, resp),
    }
}

fn on_provisional(cx: &mut Ctx<'_>, c: &mut Call, uac: &mut Uac, resp: Response) {
    if !uac.tx.is_pending() {
        debug!(code = resp.code, "late provisional response ignored");
        return;
    }
    // A provisional response stops Timer A, and Timer B no longer applies.
    uac.tx.on_provisional();
    if uac.cancel_pending {
        send_cancel(cx, c, uac);
    }
    if !resp.body.is_empty() && is_sdp(resp.content_type.as_deref()) {
        uac.early_sdp = Some(resp.body);
    }
    if resp.code > 100 && uac.cancel.is_none() && !c.ended && !uac.reported.contains(&resp.code) {
        uac.reported.push(resp.code);
        info!(code = resp.code, "outbound call ringing");
        cx.out.event(SipEvent::Ringing {
            call: c.key.clone(),
            code: resp.code,
        });
    }
}

fn on_invite_2xx(cx: &mut Ctx<'_>, c: &mut Call, uac: &mut Uac, resp: Response) {
    match uac.tx.state {
        UacState::Calling | UacState::Proceeding => {}
        UacState::Accepted if resp.to_tag == c.remote_tag => {
            // RFC 3261 §13.2.2.4: every 2xx retransmission gets the ACK again.
            match &uac.tx.ack {
                Some((peer, ack)) if uac.tx.ack_until.is_some_and(|u| cx.now < u) => {
                    debug!("2xx retransmission; ACK resent");
                    cx.out.send(*peer, ack.clone());
                }
                _ => debug!("late 2xx retransmission ignored"),
            }
            return;
        }
        UacState::Accepted => {
            refuse_forked_2xx(cx, c, uac, &resp);
            return;
        }
        UacState::Completed | UacState::Terminated => {
            debug!(
                code = resp.code,
                "2xx after the INVITE transaction ended; ignored"
            );
            return;
        }
    }
    uac.tx.state = UacState::Accepted;
    uac.tx.stop_timers();
    uac.ring_deadline = None;
    uac.cancel_deadline = None;
    uac.cancel_pending = false;
    // RFC 3261 §12.1.2: the dialog as the UAC sees it.
    c.remote_tag = resp.to_tag.clone();
    c.remote_party = resp.to.clone();
    c.remote_target = resp
        .contact
        .clone()
        .unwrap_or_else(|| uac.tx.request_uri.clone());
    c.route_set = resp.record_route.iter().rev().cloned().collect();
    let hop = c.next_hop();
    let ack = dialog_request(
        cx.cfg,
        &c.ids(),
        hop,
        &Method::Ack,
        uac.tx.cseq,
        &new_branch(),
        Vec::new(),
    );
    uac.tx.ack = Some((hop, ack.clone()));
    uac.tx.ack_until = Some(cx.now + cx.cfg.t1 * 64);
    cx.out.send(hop, ack);
    if let Some(cause) = uac.cancel {
        // RFC 3261 §9.1: the 2xx won the race with our CANCEL.
        info!(code = resp.code, "2xx after our CANCEL; ACK and BYE");
        send_bye(cx, c);
        fail_outbound(cx, c, cause.code, cause.reason.to_string());
        return;
    }
    let answer = if !resp.body.is_empty() {
        is_sdp(resp.content_type.as_deref()).then_some(resp.body)
    } else {
        uac.early_sdp.take()
    };
    let negotiated = match answer {
        Some(body) => sdp::negotiate(&body).map_err(|e| e.to_string()),
        None => Err("no SDP answer".to_string()),
    };
    match negotiated {
        Ok(media) => {
            c.local = Some(uac.local);
            c.remote_media = Some(media);
            c.phase = Phase::Confirmed;
            info!(rtp = %media.rtp_addr, codec = ?media.codec, "outbound call answered");
            cx.out.event(SipEvent::OutboundAnswered {
                call: c.key.clone(),
                media,
            });
        }
        Err(why) => {
            warn!(%why, "unusable SDP answer; BYE");
            send_bye(cx, c);
            fail_outbound(cx, c, 488, format!("Not Acceptable Here ({why})"));
        }
    }
}

/// RFC 3261 §13.2.2.4: a 2xx from a second dialog (the INVITE forked)
/// is ACKed and that dialog ended with a BYE, sent once.
fn refuse_forked_2xx(cx: &mut Ctx<'_>, c: &Call, uac: &Uac, resp: &Response) {
    warn!(to_tag = ?resp.to_tag, "2xx from a second dialog; ACK and BYE");
    let route_set: Vec<String> = resp.record_route.iter().rev().cloned().collect();
    let remote_target = resp.contact.as_deref().unwrap_or(&uac.tx.request_uri);
    let d = DialogIds {
        call_id: &c.key.0,
        local_party: &c.local_party,
        local_tag: &c.local_tag,
        remote_party: &resp.to,
        remote_target,
        route_set: &route_set,
    };
    let hop = next_hop_of(&route_set, remote_target, uac.tx.peer);
    let cseq = uac.tx.cseq;
    let ack = dialog_request(
        cx.cfg,
        &d,
        hop,
        &Method::Ack,
        cseq,
        &new_branch(),
        Vec::new(),
    );
    let bye = dialog_request(
        cx.cfg,
        &d,
        hop,
        &Method::Bye,
        cseq + 1,
        &new_branch(),
        Vec::new(),
    );
    cx.out.send(hop, ack);
    cx.out.send(hop, bye);
}

fn on_invite_failure(cx: &mut Ctx<'_>, c: &mut Call, uac: &mut Uac, resp: Response) {
    match uac.tx.state {
        UacState::Calling | UacState::Proceeding => {}
        UacState::Completed => {
            // RFC 3261 §17.1.1.2: a retransmitted final response gets the ACK again.
            if let Some((peer, ack)) = &uac.tx.ack {
                debug!(
                    code = resp.code,
                    "final response retransmission; ACK resent"
                );
                cx.out.send(*peer, ack.clone());
            }
            return;
        }
        UacState::Accepted | UacState::Terminated => {
            debug!(
                code = resp.code,
                "final response after the transaction ended; ignored"
            );
            return;
        }
    }
    // RFC 3261 §17.1.1.3: the ACK for a non-2xx is part of the INVITE transaction.
    let from = format!("{};tag={}", c.local_party, c.local_tag);
    let ack = uac.tx.request(
        &Method::Ack,
        from,
        resp.to.clone(),
        &c.key.0,
        &cx.cfg.user_agent,
    );
    uac.tx.state = UacState::Completed;
    uac.tx.stop_timers();
    uac.ring_deadline = None;
    uac.cancel_deadline = None;
    uac.cancel_pending = false;
    uac.tx.ack = Some((uac.tx.peer, ack.clone()));
    cx.out.send(uac.tx.peer, ack);
    let (code, reason) = match uac.cancel {
        Some(cause) if resp.code == 487 => (cause.code, cause.reason.to_string()),
        _ => (resp.code, resp.reason.clone()),
    };
    fail_outbound(cx, c, code, reason);
}

/// Gives up on an unanswered outbound INVITE: CANCEL now if a provisional
/// response has arrived, else once one does (RFC 3261 §9.1).
pub(super) fn start_cancel(cx: &mut Ctx<'_>, c: &mut Call, uac: &mut Uac, cause: CancelCause) {
    if uac.cancel.is_some() || !uac.tx.is_pending() {
        return;
    }
    uac.cancel = Some(cause);
    uac.ring_deadline = None;
    if uac.tx.state == UacState::Proceeding {
        send_cancel(cx, c, uac);
    } else {
        info!(
            reason = cause.reason,
            "CANCEL deferred until a provisional response"
        );
        uac.cancel_pending = true;
    }
}

/// CANCEL (RFC 3261 §9.1): the INVITE's Request-URI, Via (same branch),
/// From, To and CSeq number, as a client non-INVITE transaction.
fn send_cancel(cx: &mut Ctx<'_>, c: &mut Call, uac: &mut Uac) {
    uac.cancel_pending = false;
    let from = format!("{};tag={}", c.local_party, c.local_tag);
    let data = uac.tx.request(
        &Method::Cancel,
        from,
        uac.tx.to.clone(),
        &c.key.0,
        &cx.cfg.user_agent,
    );
    let t1 = cx.cfg.t1;
    // RFC 3261 §9.1: without a final response 64*T1 after the CANCEL, give up.
    uac.cancel_deadline = Some(cx.now + t1 * 64);
    info!("CANCEL sent");
    let tx = ClientTx::new(
        Method::Cancel,
        uac.tx.branch.clone(),
        uac.tx.peer,
        data,
        cx.now,
        t1,
    );
    c.client.start(cx.out, tx);
}

/// The outbound call was not established: reports `OutboundFailed`
/// (once; nothing else of the call follows) and lets the state linger.
fn fail_outbound(cx: &mut Ctx<'_>, c: &mut Call, code: u16, reason: String) {
    if c.phase != Phase::Ending {
        c.phase = Phase::Terminated;
    }
    c.client
        .retain(|m| matches!(m, Method::Bye | Method::Cancel));
    if !c.ended {
        c.ended = true;
        if c.announced {
            info!(code, %reason, "outbound call failed");
            cx.out.call_finished(SipEvent::OutboundFailed {
                call: c.key.clone(),
                code,
                reason,
            });
        }
    }
    c.linger(cx);
}

/// Our INVITE to `peer` could not be sent: the call fails with 503
/// (RFC 3261 §8.1.3.1, §17.1.1.2).
pub(super) fn transport_failed(cx: &mut Ctx<'_>, c: &mut Call, uac: &mut Uac, peer: Peer) {
    uac.tx.state = UacState::Terminated;
    warn!(%peer, "outbound INVITE could not be sent");
    fail_outbound(
        cx,
        c,
        503,
        "Service Unavailable (transport error)".to_string(),
    );
}

/// Runs the due timers of an outbound INVITE (RFC 3261 §17.1.1.2, §9.1):
/// Timer B, Timer A, the ring timeout, the wait after our CANCEL.
pub(super) fn on_timeout(cx: &mut Ctx<'_>, c: &mut Call, uac: &mut Uac) {
    let now = cx.now;
    let due = |t: Option<Instant>| t.is_some_and(|at| at <= now);
    if uac.tx.fire_timer_b(now) {
        warn!("no response to INVITE within 64*T1 (Timer B)");
        let (code, reason) = uac.cause_or(408, "Request Timeout (no response)");
        fail_outbound(cx, c, code, reason);
        return;
    }
    // Timer A: doubles without the T2 cap.
    uac.tx.fire_timer_a(cx.out, now);
    if uac.tx.is_pending() && due(uac.ring_deadline) {
        info!("ring timeout; cancelling");
        uac.ring_deadline = None;
        start_cancel(cx, c, uac, NO_ANSWER);
    }
    if uac.tx.state == UacState::Proceeding && due(uac.cancel_deadline) {
        warn!("no final response 64*T1 after our CANCEL");
        uac.tx.state = UacState::Terminated;
        uac.cancel_deadline = None;
        let (code, reason) = uac.cause_or(408, "Request Timeout");
        fail_outbound(cx, c, code, reason);
    }
}

/// A body we read as SDP: `application/sdp`, or no Content-Type at all.
fn is_sdp(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| ct.starts_with("application/sdp"))
}

/// A Refer-To URI we are willing to put between angle brackets: `sip:`,
/// `sips:` or `tel:`, no whitespace, controls, `<`, `>` or `"`.
pub(super) fn is_transfer_target(target: &str) -> bool {
    let Some((scheme, rest)) = target.split_once(':') else {
        return false;
    };
    ["sip", "sips", "tel"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
        && !rest.is_empty()
        && !target
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_targets() {
        assert!(is_transfer_target("sip:100@192.0.2.1"));
        assert!(is_transfer_target("SIPS:a@b"));
        assert!(is_transfer_target("tel:+15551234567"));
        assert!(!is_transfer_target("sip:"));
        assert!(!is_transfer_target("http://x"));
        assert!(!is_transfer_target("sip:a b@c"));
        assert!(!is_transfer_target("sip:a>@c"));
        assert!(!is_transfer_target("100"));
    }

    #[test]
    fn sdp_content_types() {
        assert!(is_sdp(None));
        assert!(is_sdp(Some("application/sdp")));
        assert!(!is_sdp(Some("text/plain")));
    }
}
