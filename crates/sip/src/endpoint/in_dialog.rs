//! Requests the remote party sends within an established dialog (the UAS
//! side of RFC 3261 §12.2.2): re-INVITE (new offer, or none: we offer),
//! BYE, INFO (DTMF), UPDATE (RFC 3311) and NOTIFY (progress of our REFER,
//! RFC 3515), with the dialog's CSeq ordering and 481 for requests that
//! match no dialog.

use tracing::{debug, info};

use super::dialog::{Call, Ctx, Phase};
use super::server_txn::InviteTx;
use super::srtp::{random_key, sdes_answer};
use super::uas::{reply_non_invite, reply_stateless, send_invite_2xx, send_invite_failure};
use crate::event::{EndReason, SipEvent};
use crate::message::{Method, Request, reason_phrase, sipfrag_status};
use crate::sdp::{self, Direction, SdpError};
use crate::transport::Peer;

/// An INVITE with a To tag: a re-INVITE in the call's dialog (RFC 3261
/// §14.2), or a retransmission of the current one.
pub(super) fn on_reinvite(cx: &mut Ctx<'_>, c: &mut Call, peer: Peer, req: &Request) {
    if c.invite.branch == req.branch {
        c.invite.resend_last(cx.out);
        return;
    }
    if !c.matches_dialog(req) || c.is_over() {
        // Our BYE ended the session (RFC 3261 §15.1.1): nothing to modify.
        reply_stateless(cx, peer, req, 481);
        return;
    }
    if c.phase == Phase::Early || c.local.is_none() {
        // RFC 3261 §14.2: INVITE while the first has no final response yet.
        reply_stateless(cx, peer, req, 500);
        return;
    }
    if !c.invite.acked {
        reply_stateless(cx, peer, req, 491);
        return;
    }
    if req.cseq <= c.remote_cseq {
        // RFC 3261 §12.2.2: out-of-order request.
        reply_stateless(cx, peer, req, 500);
        return;
    }
    c.remote_cseq = req.cseq;
    if let Some(t) = &req.contact {
        // RFC 3261 §12.2.2: re-INVITE refreshes the remote target.
        c.remote_target = t.clone();
    }
    c.invite = InviteTx::new(
        req.branch.clone(),
        peer,
        req.cseq,
        req.reply.clone(),
        Vec::new(),
        true,
        cx.cfg.t1,
    );
    let (Some(mut local), Some(current)) = (c.local, c.remote_media) else {
        return;
    };
    if req.body.is_empty() {
        // No offer: we offer our current session; the ACK carries the answer.
        let body = sdp::build(&local, &current, Direction::SendRecv);
        send_invite_2xx(cx, c, body);
        return;
    }
    match sdp::negotiate(&req.body) {
        Ok(mut media) => {
            let require = cx.cfg.require_srtp;
            match sdes_answer(require, peer.transport, &req.body, current.srtp, random_key) {
                Ok(keys) => media.srtp = keys,
                Err((code, reason)) => {
                    info!(code, reason, "re-INVITE refused");
                    send_invite_failure(cx, c, code, reason, &[]);
                    return;
                }
            }
            local.version += 1;
            c.local = Some(local);
            c.remote_media = Some(media);
            let body = sdp::build(&local, &media, media.direction.mirrored());
            send_invite_2xx(cx, c, body);
            info!(direction = ?media.direction, rtp = %media.rtp_addr, "re-INVITE answered");
            cx.out.event(SipEvent::MediaChanged {
                call: c.key.clone(),
                media,
            });
        }
        Err(SdpError::Malformed(why)) => {
            let reason = format!("Bad Request (malformed SDP: {why})");
            send_invite_failure(cx, c, 400, &reason, &[]);
        }
        Err(e) => {
            let reason = format!("Not Acceptable Here ({e})");
            send_invite_failure(cx, c, 488, &reason, &[]);
        }
    }
}

/// BYE, INFO, UPDATE and NOTIFY: requests that need a dialog (481
/// without one, 500 when out of order).
pub(super) fn on_request(cx: &mut Ctx<'_>, call: Option<&mut Call>, peer: Peer, req: &Request) {
    let Some(c) = call.filter(|c| c.matches_dialog(req)) else {
        // RFC 3261 §12.2.2: no such dialog.
        reply_non_invite(cx, peer, req, 481, None, &[], None);
        return;
    };
    if req.cseq <= c.remote_cseq {
        // RFC 3261 §12.2.2: lower CSeq than the last request → 500.
        let extra = [("Retry-After", "1".to_string())];
        reply_non_invite(cx, peer, req, 500, None, &extra, None);
        return;
    }
    c.remote_cseq = req.cseq;
    match req.method {
        Method::Bye => on_bye(cx, c, peer, req),
        Method::Info => on_info(cx, c, peer, req),
        Method::Notify => on_notify(cx, c, peer, req),
        _ => on_update(cx, c, peer, req),
    }
}

fn on_bye(cx: &mut Ctx<'_>, c: &mut Call, peer: Peer, req: &Request) {
    reply_non_invite(cx, peer, req, 200, None, &[], None);
    if c.phase == Phase::Early && c.invite.final_code.is_none() {
        // RFC 3261 §15.1.2: BYE in an early dialog also terminates the INVITE.
        send_invite_failure(cx, c, 487, reason_phrase(487), &[]);
    } else if !c.invite.acked {
        c.invite.stop_timers();
    }
    c.phase = Phase::Terminated;
    c.end(cx, EndReason::RemoteBye);
}

fn on_info(cx: &mut Ctx<'_>, c: &mut Call, peer: Peer, req: &Request) {
    reply_non_invite(cx, peer, req, 200, None, &[], None);
    match parse_dtmf(req.content_type.as_deref(), &req.body) {
        Some((digit, duration_ms)) if c.announced && !c.ended => {
            debug!(%digit, "DTMF via INFO");
            cx.out.event(SipEvent::Digit {
                call: c.key.clone(),
                digit,
                duration_ms,
            });
        }
        _ => debug!(content_type = ?req.content_type, "INFO without a usable digit"),
    }
}

/// NOTIFY in the dialog is always answered 200. With `Event: refer` and a
/// `message/sipfrag` body, after our REFER, it reports the transfer's
/// progress (RFC 3515 §2.4.4).
fn on_notify(cx: &mut Ctx<'_>, c: &mut Call, peer: Peer, req: &Request) {
    reply_non_invite(cx, peer, req, 200, None, &[], None);
    let is_refer = req.event.as_deref() == Some("refer");
    let is_sipfrag = req
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("message/sipfrag"));
    let code = (is_refer && is_sipfrag)
        .then(|| sipfrag_status(&req.body))
        .flatten();
    match code {
        Some(code) if c.referred && c.announced && !c.ended => {
            info!(code, "transfer progress (NOTIFY)");
            cx.out.event(SipEvent::TransferProgress {
                call: c.key.clone(),
                code,
            });
        }
        _ => debug!(
            event = ?req.event,
            content_type = ?req.content_type,
            referred = c.referred,
            "NOTIFY without transfer progress to report"
        ),
    }
}

fn on_update(cx: &mut Ctx<'_>, c: &mut Call, peer: Peer, req: &Request) {
    if c.is_over() {
        // As for a re-INVITE: once our BYE is sent (hang-up, or no ACK
        // within Timer H) the session is gone and has no media to change.
        reply_non_invite(cx, peer, req, 481, None, &[], None);
        return;
    }
    if req.body.is_empty() {
        reply_non_invite(cx, peer, req, 200, None, &[], None);
        return;
    }
    let Some(mut local) = c.local else {
        // RFC 3311 §5.2: we cannot answer an offer before we have media.
        let extra = [("Retry-After", "1".to_string())];
        reply_non_invite(cx, peer, req, 500, None, &extra, None);
        return;
    };
    match sdp::negotiate(&req.body) {
        Ok(mut media) => {
            let require = cx.cfg.require_srtp;
            let previous = c.remote_media.and_then(|m| m.srtp);
            match sdes_answer(require, peer.transport, &req.body, previous, random_key) {
                Ok(keys) => media.srtp = keys,
                Err((code, reason)) => {
                    info!(code, reason, "UPDATE refused");
                    reply_non_invite(cx, peer, req, code, None, &[], None);
                    return;
                }
            }
            local.version += 1;
            c.local = Some(local);
            c.remote_media = Some(media);
            let body = sdp::build(&local, &media, media.direction.mirrored());
            let extra = [("Contact", cx.cfg.contact(c.peer.transport))];
            reply_non_invite(
                cx,
                peer,
                req,
                200,
                None,
                &extra,
                Some(("application/sdp", body.as_bytes())),
            );
            cx.out.event(SipEvent::MediaChanged {
                call: c.key.clone(),
                media,
            });
        }
        Err(SdpError::Malformed(_)) => reply_non_invite(cx, peer, req, 400, None, &[], None),
        Err(_) => reply_non_invite(cx, peer, req, 488, None, &[], None),
    }
}

/// A digit from an INFO body: application/dtmf-relay (`Signal=5` /
/// `Duration=160`) or application/dtmf (`5`).
fn parse_dtmf(content_type: Option<&str>, body: &[u8]) -> Option<(char, Option<u32>)> {
    let ct = content_type?;
    let text = std::str::from_utf8(body).ok()?;
    if ct.starts_with("application/dtmf-relay") {
        let mut signal = None;
        let mut duration = None;
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if name.eq_ignore_ascii_case("signal") {
                signal = dtmf_char(value.trim());
            } else if name.eq_ignore_ascii_case("duration") {
                duration = value.trim().parse::<u32>().ok();
            }
        }
        return signal.map(|s| (s, duration));
    }
    if ct.starts_with("application/dtmf") {
        return dtmf_char(text.trim()).map(|d| (d, None));
    }
    None
}

fn dtmf_char(s: &str) -> Option<char> {
    // RFC 4733 event codes 10-15 are also seen in INFO bodies.
    match s {
        "10" => return Some('*'),
        "11" => return Some('#'),
        "12" => return Some('A'),
        "13" => return Some('B'),
        "14" => return Some('C'),
        "15" => return Some('D'),
        _ => {}
    }
    let mut chars = s.chars();
    let c = chars.next()?.to_ascii_uppercase();
    if chars.next().is_some() {
        return None;
    }
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_bodies() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            parse_dtmf(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', Some(160)))
        );
        assert_eq!(parse_dtmf(relay, b"signal = 11\r\n"), Some(('#', None)));
        assert_eq!(parse_dtmf(relay, b"Duration=160\r\n"), None);
        assert_eq!(
            parse_dtmf(Some("application/dtmf"), b" d \r\n"),
            Some(('D', None))
        );
        assert_eq!(parse_dtmf(Some("application/dtmf"), b"55"), None);
        assert_eq!(parse_dtmf(Some("text/plain"), b"5"), None);
        assert_eq!(parse_dtmf(None, b"5"), None);
        assert_eq!(parse_dtmf(Some("application/dtmf"), &[0xff]), None);
    }
}
