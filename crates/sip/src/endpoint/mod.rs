//! The sans-IO SIP user agent (RFC 3261): INVITE/non-INVITE server
//! transactions, dialogs, the INVITE client transaction of our outbound
//! calls and the client transactions of our other requests (BYE, REFER,
//! CANCEL), driven by input bytes and a caller-supplied clock.
//!
//! This module owns the [`Endpoint`] — its public API, the table of calls,
//! and the dispatch of inputs, timeouts and commands to the call they
//! concern. A call is worked on in place: the handlers get `&mut Call`
//! (and, outbound, `&mut Uac`) next to a [`Ctx`] that borrows the rest of
//! the endpoint (clock, settings, [`Outbox`], edge policy). The layers,
//! each using only those below it:
//!
//! - `config`, `outbox`, `timers`: settings, what goes out, deadlines;
//! - `client_txn`, `server_txn`: transaction data and timers (A/B/E/F, G/H/J);
//! - `dialog`: the state of a call and its dialog, and [`Ctx`];
//! - `uac`: what we send (the outbound INVITE's responses, CANCEL, BYE,
//!   REFER); `originate`: placing a call (uses `uac`);
//! - `uas`: what we receive (initial INVITE, answering, ACK, CANCEL; uses
//!   `uac` for BYE); `in_dialog`: what we receive within a dialog (uses `uas`).

mod client_txn;
mod config;
mod dialog;
mod in_dialog;
mod originate;
mod outbox;
mod server_txn;
mod srtp;
mod timers;
mod uac;
mod uas;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, warn};

use crate::CallKey;
use crate::error::SipError;
use crate::event::SipEvent;
use crate::framing;
use crate::guard::{EdgeCounters, Guard, RequestVerdict};
use crate::message::{
    self, ALLOW, Inbound, Method, Request, Response, ResponseSpec, build_response,
};
use crate::transport::Peer;

pub use config::{EndpointConfig, Originate};
pub use outbox::Transmit;

use dialog::{Call, Ctx, Phase, random_token};
use outbox::Outbox;
use server_txn::{NonInviteKey, NonInviteTxns};
use timers::Timers;
use uac::Uac;
use uas::KnownCallId;

/// The SIP state machine. Feed it datagrams / framed TCP messages and the
/// clock; drain transmits and events after every call.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    calls: HashMap<CallKey, Entry>,
    /// The calls' deadlines.
    timers: Timers<CallKey>,
    /// Completed non-INVITE server transactions.
    server: NonInviteTxns,
    out: Outbox,
    draining: bool,
    guard: Guard,
}

/// A call in the endpoint's table.
#[derive(Debug)]
struct Entry {
    call: Call,
    /// Outbound calls: our INVITE and what hangs on it (see `uac.rs`).
    uac: Option<Box<Uac>>,
    /// The deadline the timer wheel has an entry for (lazy deletion of
    /// stale entries).
    scheduled: Option<Instant>,
}

impl Entry {
    fn new(call: Call, uac: Option<Box<Uac>>) -> Self {
        Entry {
            call,
            uac,
            scheduled: None,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let uac = self.uac.as_ref().and_then(|u| u.next_deadline());
        [self.call.next_deadline(), uac].into_iter().flatten().min()
    }

    /// Makes sure the timer wheel wakes the call at its next deadline.
    fn reschedule(&mut self, timers: &mut Timers<CallKey>) {
        let next = self.next_deadline();
        timers.reschedule(&self.call.key, &mut self.scheduled, next);
    }
}

/// Adds a new call to the table and schedules its timers.
fn insert(calls: &mut HashMap<CallKey, Entry>, timers: &mut Timers<CallKey>, mut entry: Entry) {
    entry.reschedule(timers);
    calls.insert(entry.call.key.clone(), entry);
}

impl Endpoint {
    /// A new endpoint with no calls.
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpoint {
            guard: Guard::new(cfg.guard.clone()),
            cfg,
            calls: HashMap::new(),
            timers: Timers::default(),
            server: NonInviteTxns::default(),
            out: Outbox::default(),
            draining: false,
        }
    }

    /// The edge policy's counters (refusals, drops, bans), to report.
    pub fn edge_counters(&self) -> Arc<EdgeCounters> {
        self.guard.counters()
    }

    /// The configuration in use.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Feeds one complete datagram or framed TCP message.
    ///
    /// The edge policy ([`Guard`]) sees it first: a message it refuses
    /// creates no transaction, no call and no event (see `docs/security.md`).
    pub fn handle_input(&mut self, now: Instant, peer: Peer, data: &[u8]) {
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        {
            // RFC 5626 §4.4.1 keep-alive or empty datagram.
            return;
        }
        let ip = peer.addr.ip();
        let head = || {
            let len = framing::header_end(data).map_or(data.len(), |e| e.head_len);
            let lines = data
                .get(..len)
                .unwrap_or_default()
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            (len, lines + 1)
        };
        if !self.guard.admit_message(now, ip, head) {
            return;
        }
        match message::parse(data, peer.transport) {
            Ok(Inbound::Request(req)) => {
                crate::metrics::request("in", req.method.as_str());
                // Requests in our dialogs were admitted with their call;
                // an initial INVITE is checked even when its Call-ID is
                // known (it could revive a finished call's Call-ID).
                let initial = req.method == Method::Invite && req.to.tag.is_none();
                if initial
                    || !self
                        .calls
                        .contains_key(&CallKey::from(req.call_id.as_str()))
                {
                    match self.guard.admit_request(
                        now,
                        ip,
                        req.method.as_str(),
                        req.user_agent.as_deref(),
                    ) {
                        RequestVerdict::Pass => {}
                        RequestVerdict::Forbid => {
                            let mut cx = self.ctx(now);
                            uas::reply_stateless_with(&mut cx, peer, &req, 403, "Forbidden", &[]);
                            return;
                        }
                        RequestVerdict::Drop => return,
                    }
                }
                if !self.authenticated(now, peer, &req, initial) {
                    return;
                }
                self.on_request(now, peer, *req)
            }
            Ok(Inbound::Response(resp)) => {
                crate::metrics::response("in", &resp.cseq_method, resp.code);
                self.on_response(now, *resp)
            }
            Err(message::Rejection::Reply {
                code,
                reason,
                reply,
                extra,
            }) => {
                if !self.guard.may_answer_bad(now, ip) {
                    // Trunks configured and this source is on none: it
                    // gets nothing, not even a 400.
                    return;
                }
                self.guard.counters_ref().count_bad_request(code);
                if matches!(code, 405 | 501) {
                    // Ordinary for scanners and odd clients: counted, not
                    // worth a warning.
                    debug!(%peer, code, %reason, "method not served");
                } else if matches!(code, 416 | 420) {
                    // A URI scheme or an extension we do not serve: as
                    // ordinary, and as little worth a warning.
                    debug!(%peer, code, %reason, "request not served");
                } else if let Some(suppressed) = self.guard.log_allowed(now) {
                    warn!(%peer, code, %reason, suppressed, "rejecting bad request");
                }
                let tag = random_token(10);
                let data = build_response(
                    &reply,
                    &peer,
                    &ResponseSpec {
                        code,
                        reason: &reason,
                        to_tag: Some(&tag),
                        record_route: &[],
                        extra: &extra,
                        body: None,
                        server: &self.cfg.user_agent,
                    },
                );
                self.out.send(peer, data);
            }
            Err(message::Rejection::Drop(why)) => {
                self.guard.counters_ref().count_unusable();
                if !self.guard.is_allowed(ip) {
                    debug!(%peer, len = data.len(), %why, "dropping unusable message");
                } else if let Some(suppressed) = self.guard.log_allowed(now) {
                    warn!(%peer, len = data.len(), %why, suppressed, "dropping unusable message");
                }
            }
        }
    }

    /// Digest authentication (the edge policy's, see [`Guard::authenticate`])
    /// of an initial INVITE — not of a retransmission of one that became a
    /// call — and of an OPTIONS outside our dialogs. A refusal is answered
    /// statelessly (RFC 3261 §8.2.7: nothing is kept, a retransmission gets
    /// the same answer with a fresh nonce, its ACK is absorbed) before any
    /// call, RTP port or event exists. False: refused.
    fn authenticated(&mut self, now: Instant, peer: Peer, req: &Request, initial: bool) -> bool {
        let key = CallKey::from(req.call_id.as_str());
        let check = match req.method {
            Method::Invite if initial => !self.calls.get(&key).is_some_and(|e| {
                !e.call.outbound
                    && e.call.invite.branch == req.branch
                    && e.call.peer.addr.ip() == peer.addr.ip()
            }),
            Method::Options => !self.calls.contains_key(&key),
            _ => false,
        };
        if !check {
            return true;
        }
        match self.guard.authenticate(
            now,
            peer.addr.ip(),
            req.method.as_str(),
            &req.uri,
            &req.authorization,
            &req.call_id,
            &req.branch,
        ) {
            Ok(_) => true,
            Err(r) => {
                let mut cx = self.ctx(now);
                uas::reply_stateless_tagged(
                    &mut cx, peer, req, r.code, r.reason, &r.headers, &r.to_tag,
                );
                false
            }
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.guard.poll_timeout().is_some_and(|t| t <= now) {
            self.guard.handle_timeout(now);
        }
        self.server.expire(now);
        let (calls, timers, mut cx) = self.split(now);
        while let Some((at, key)) = timers.pop_due(now) {
            let Some(entry) = calls.get_mut(&key) else {
                continue;
            };
            if entry.scheduled != Some(at) {
                continue; // stale entry
            }
            entry.scheduled = None;
            let span = entry.call.span.clone();
            let _enter = span.enter();
            if on_call_timeout(&mut cx, entry) {
                calls.remove(&key);
                debug!("call state reaped");
            } else {
                entry.reschedule(timers);
            }
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_transmit()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<SipEvent> {
        self.out.pop_event()
    }

    /// When [`Endpoint::handle_timeout`] should next be called. May be early
    /// (a cancelled timer), never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.next(),
            self.server.next_expiry(),
            self.guard.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sends 180 Ringing.
    pub fn ring(&mut self, now: Instant, call: &CallKey) -> Result<(), SipError> {
        self.command(now, call, |cx, e| uas::ring(cx, &mut e.call))
    }

    /// Sends 200 OK with our SDP answer; RTP is to be received at `local_rtp`.
    pub fn answer(
        &mut self,
        now: Instant,
        call: &CallKey,
        local_rtp: SocketAddr,
    ) -> Result<(), SipError> {
        self.command(now, call, |cx, e| uas::answer(cx, &mut e.call, local_rtp))
    }

    /// Sends a final non-2xx response (300..=699) to an unanswered call.
    pub fn reject(&mut self, now: Instant, call: &CallKey, code: u16) -> Result<(), SipError> {
        if !(300..=699).contains(&code) {
            return Err(SipError::InvalidStatus(code));
        }
        self.command(now, call, |cx, e| uas::reject(cx, &mut e.call, code))
    }

    /// Ends the call: BYE once confirmed, 480 if not answered yet. Calling it
    /// again on a call already ending is a no-op.
    ///
    /// An outbound call not answered yet is cancelled (CANCEL, RFC 3261 §9.1;
    /// sent once a provisional response has arrived) and then fails with
    /// [`SipEvent::OutboundFailed`] (487) when the INVITE's final response
    /// arrives; should a 2xx win the race, it is ACKed and BYE sent at once.
    pub fn hangup(&mut self, now: Instant, call: &CallKey) -> Result<(), SipError> {
        self.command(now, call, |cx, e| {
            let Entry {
                call: c, uac: leg, ..
            } = e;
            match c.phase {
                Phase::Early if c.outbound => {
                    if let Some(leg) = leg.as_deref_mut() {
                        uac::start_cancel(cx, c, leg, uac::HUNG_UP);
                    }
                }
                Phase::Early if c.invite.final_code.is_none() => uas::refuse(cx, c, 480),
                // RFC 3261 §15: no BYE before the ACK for our 2xx (or Timer H).
                Phase::Answered => c.bye_after_ack = true,
                Phase::Confirmed => uac::send_bye(cx, c),
                _ => {}
            }
            Ok(())
        })
    }

    /// Blind transfer (RFC 3515): sends an in-dialog REFER asking the remote
    /// party to call `target` (a `sip:`, `sips:` or `tel:` URI, sent as
    /// `Refer-To: <target>`). Only in a confirmed dialog without another
    /// REFER in flight ([`SipError::InvalidState`] otherwise; a malformed
    /// target is [`SipError::InvalidTarget`]).
    ///
    /// The outcome arrives as [`SipEvent::TransferAccepted`] or
    /// [`SipEvent::TransferFailed`] (its final response, 408 on Timer F), plus
    /// one [`SipEvent::TransferProgress`] per NOTIFY. The call stays up: hang
    /// up when the transfer has succeeded far enough for the application.
    pub fn refer(&mut self, now: Instant, call: &CallKey, target: &str) -> Result<(), SipError> {
        let target = target.trim();
        if !uac::is_transfer_target(target) {
            return Err(SipError::InvalidTarget(target.to_string()));
        }
        self.command(now, call, |cx, e| uac::refer(cx, &mut e.call, target))
    }

    /// Places an outbound call: sends an INVITE with our SDP offer to
    /// `req.target` and returns its Call-ID. The outcome arrives as events:
    /// [`SipEvent::Ringing`] for provisional responses, then either
    /// [`SipEvent::OutboundAnswered`] (the 2xx is ACKed; the call then behaves
    /// like an answered inbound one and ends with one [`SipEvent::Ended`]) or
    /// [`SipEvent::OutboundFailed`] (its last event).
    ///
    /// The INVITE client transaction follows RFC 3261 §17.1.1: Timer A
    /// retransmits over UDP until a response, Timer B (64*T1) gives up with
    /// 408; a final non-2xx is ACKed in the transaction; a 2xx gets an ACK of
    /// its own (again for each retransmission within 64*T1). When
    /// `req.ring_timeout` passes without a final response the INVITE is
    /// cancelled and the call fails with 480 ("no answer").
    ///
    /// Fails with [`SipError::InvalidOriginate`] when the target is not a
    /// `sip:` URI with an IP address host over UDP, or the From parts cannot
    /// go into a header.
    pub fn originate(&mut self, now: Instant, req: Originate) -> Result<CallKey, SipError> {
        let target = originate::check(&req)?;
        let key = match req.call_id.as_deref() {
            Some(id) => {
                if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(SipError::InvalidOriginate(format!(
                        "{id:?} is not a usable Call-ID"
                    )));
                }
                let key = CallKey::from(id);
                if self.calls.contains_key(&key) {
                    return Err(SipError::InvalidOriginate(format!(
                        "Call-ID {id:?} is already in use"
                    )));
                }
                key
            }
            None => loop {
                let key = CallKey::from(random_token(24).as_str());
                if !self.calls.contains_key(&key) {
                    break key;
                }
            },
        };
        let (calls, timers, mut cx) = self.split(now);
        let (call, leg) = originate::originate(&mut cx, key.clone(), &req, target);
        insert(calls, timers, Entry::new(call, Some(leg)));
        Ok(key)
    }

    /// A message to `peer` could not be sent (the shell's send failed).
    /// Outbound INVITEs to it still waiting for any response fail with 503
    /// (RFC 3261 §8.1.3.1, §17.1.1.2); anything else is left to its timers.
    pub fn handle_transport_error(&mut self, now: Instant, peer: Peer) {
        let (calls, timers, mut cx) = self.split(now);
        for entry in calls.values_mut() {
            let Entry {
                call,
                uac: Some(leg),
                ..
            } = entry
            else {
                continue;
            };
            if !leg.is_calling(peer) {
                continue;
            }
            let span = call.span.clone();
            let _enter = span.enter();
            uac::transport_failed(&mut cx, call, leg, peer);
            entry.reschedule(timers);
        }
    }

    /// The banned sources, for the stream listeners (see [`crate::BanList`]).
    pub fn ban_list(&self) -> std::sync::Arc<crate::guard::BanList> {
        self.guard.ban_list()
    }

    /// The sources the edge policy drops right now.
    pub fn bans(&self, now: Instant) -> Vec<crate::guard::Ban> {
        self.guard.bans(now)
    }

    /// Bans `ip` for `left` (a ban saved before a restart; see
    /// [`crate::Guard::restore_ban`]).
    pub fn restore_ban(
        &mut self,
        now: Instant,
        ip: std::net::IpAddr,
        left: std::time::Duration,
    ) -> bool {
        self.guard.restore_ban(now, ip, left)
    }

    /// Lifts the ban on `ip`; false when it was not banned.
    pub fn unban(&mut self, now: Instant, ip: std::net::IpAddr) -> bool {
        self.guard.unban(now, ip)
    }

    /// While draining, new INVITEs get 503 Service Unavailable.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Calls announced by `Incoming` or placed by `originate` and not yet
    /// `Ended` (or `OutboundFailed`).
    pub fn active_calls(&self) -> usize {
        self.out.live()
    }

    // ----- plumbing -----

    /// The endpoint as three disjoint borrows: the call table, the calls'
    /// timers, and the [`Ctx`] call handlers run in. A call is worked on in
    /// place, next to the context.
    fn split(
        &mut self,
        now: Instant,
    ) -> (&mut HashMap<CallKey, Entry>, &mut Timers<CallKey>, Ctx<'_>) {
        let Endpoint {
            cfg,
            calls,
            timers,
            server,
            out,
            guard,
            draining: _,
        } = self;
        let cx = Ctx {
            now,
            cfg,
            out,
            guard,
            server,
        };
        (calls, timers, cx)
    }

    /// The context alone, for work that concerns no call.
    fn ctx(&mut self, now: Instant) -> Ctx<'_> {
        self.split(now).2
    }

    /// Runs `f` on the call `key` names (`None`: there is none), inside the
    /// call's span, then reschedules the call's timers.
    fn with_call<R>(
        &mut self,
        now: Instant,
        key: &CallKey,
        f: impl FnOnce(&mut Ctx<'_>, Option<&mut Entry>) -> R,
    ) -> R {
        let (calls, timers, mut cx) = self.split(now);
        let Some(entry) = calls.get_mut(key) else {
            return f(&mut cx, None);
        };
        let span = entry.call.span.clone();
        let _enter = span.enter();
        let r = f(&mut cx, Some(&mut *entry));
        entry.reschedule(timers);
        r
    }

    /// [`Self::with_call`] for the application's commands: an unknown call
    /// is [`SipError::UnknownCall`].
    fn command<R>(
        &mut self,
        now: Instant,
        key: &CallKey,
        f: impl FnOnce(&mut Ctx<'_>, &mut Entry) -> Result<R, SipError>,
    ) -> Result<R, SipError> {
        self.with_call(now, key, |cx, entry| match entry {
            Some(e) => f(cx, e),
            None => Err(SipError::UnknownCall(key.clone())),
        })
    }

    // ----- dispatch -----

    fn on_request(&mut self, now: Instant, peer: Peer, req: Request) {
        if !matches!(req.method, Method::Invite | Method::Ack) {
            if let Some(data) = self.server.response(&NonInviteKey::of(&req)) {
                // RFC 3261 §17.2.2: a retransmission gets the same response again.
                let data = data.to_vec();
                self.out.send(peer, data);
                return;
            }
        }
        let key = CallKey::from(req.call_id.as_str());
        match req.method {
            Method::Invite if req.to.tag.is_none() => self.on_invite(now, peer, req),
            Method::Invite => self.with_call(now, &key, |cx, e| match e {
                Some(e) => in_dialog::on_reinvite(cx, &mut e.call, peer, &req),
                None => uas::reply_stateless(cx, peer, &req, 481),
            }),
            Method::Ack => self.with_call(now, &key, |cx, e| {
                if let Some(e) = e {
                    uas::on_ack(cx, &mut e.call, &req);
                }
            }),
            Method::Cancel => self.with_call(now, &key, |cx, e| {
                uas::on_cancel(cx, e.map(|e| &mut e.call), peer, &req)
            }),
            Method::Bye | Method::Info | Method::Update | Method::Notify => {
                self.with_call(now, &key, |cx, e| {
                    in_dialog::on_request(cx, e.map(|e| &mut e.call), peer, &req)
                })
            }
            Method::Options => self.with_call(now, &key, |cx, e| {
                uas::on_options(cx, e.map(|e| &e.call), peer, &req)
            }),
            _ => {
                let extra = [("Allow", ALLOW.to_string())];
                let mut cx = self.ctx(now);
                uas::reply_non_invite(&mut cx, peer, &req, 405, None, &extra, None);
            }
        }
    }

    fn on_invite(&mut self, now: Instant, peer: Peer, req: Request) {
        let key = CallKey::from(req.call_id.as_str());
        let draining = self.draining;
        let (calls, timers, mut cx) = self.split(now);
        if let Some(entry) = calls.get(&key) {
            match uas::on_known_call_id(&mut cx, &entry.call, peer, &req) {
                KnownCallId::Handled => return,
                KnownCallId::Replaces => {
                    calls.remove(&key);
                }
            }
        }
        if let Some(call) = uas::on_invite(&mut cx, peer, req, draining) {
            insert(calls, timers, Entry::new(call, None));
        }
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let key = CallKey::from(resp.call_id.as_str());
        let (calls, timers, mut cx) = self.split(now);
        let entry = calls.get_mut(&key);
        // RFC 3261 §17.1.3: branch and CSeq method identify the client transaction.
        let matched = entry
            .as_ref()
            .is_some_and(|e| e.call.client.matches(&resp.branch, &resp.cseq_method));
        let invite = !matched
            && resp.cseq_method == Method::Invite.as_str()
            && entry.as_ref().is_some_and(|e| {
                e.uac
                    .as_ref()
                    .is_some_and(|u| u.matches(&resp.branch, resp.cseq))
            });
        let Some(entry) = entry.filter(|_| matched || invite) else {
            debug!(code = resp.code, call_id = %resp.call_id, "unexpected response dropped");
            return;
        };
        let span = entry.call.span.clone();
        let _enter = span.enter();
        let Entry { call, uac: leg, .. } = &mut *entry;
        if invite {
            if let Some(leg) = leg.as_deref_mut() {
                uac::on_invite_response(&mut cx, call, leg, resp);
            }
        } else if let Some(method) =
            call.client
                .on_response(&resp.branch, &resp.cseq_method, resp.code, cx.cfg.t2)
        {
            uac::client_completed(&mut cx, call, method, resp.code);
        }
        entry.reschedule(timers);
    }
}

/// Runs the call's due timers — its outbound INVITE's (A, B, ring timeout,
/// CANCEL wait), its INVITE server transaction's (G, H), its client
/// transactions' (E, F) — and returns true when the call is to be reaped.
fn on_call_timeout(cx: &mut Ctx<'_>, entry: &mut Entry) -> bool {
    let Entry { call, uac: leg, .. } = entry;
    if let Some(leg) = leg.as_deref_mut() {
        uac::on_timeout(cx, call, leg);
    }
    uas::on_timeout(cx, call);
    // Timer F. A REFER's failure is reported before a BYE's `Ended`.
    for method in call.client.on_timeout(cx.out, cx.now, cx.cfg.t2) {
        uac::client_completed(cx, call, method, 408);
    }
    call.reap_at.is_some_and(|r| r <= cx.now)
}
