//! The sans-IO SIP user agent server (RFC 3261): INVITE/non-INVITE server
//! transactions, dialogs and the client transactions of our in-dialog
//! requests (BYE, REFER), driven by input bytes and a caller-supplied clock.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{Span, debug, info, info_span, warn};

use crate::CallKey;
use crate::error::SipError;
use crate::event::{EndReason, IncomingCall, Party, SipEvent};
use crate::message::{
    self, ACCEPT, ALLOW, Inbound, Method, ReplyHeaders, Request, Response, ResponseSpec,
    build_request, build_response, reason_phrase, sipfrag_status,
};
use crate::sdp::{self, Direction, LocalSession, RemoteMedia, SdpError};
use crate::transport::{Peer, Transport};

/// Settings of an [`Endpoint`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// host:port we put in Contact and in the Via of our requests.
    pub contact_addr: SocketAddr,
    /// Server / User-Agent header value, e.g. "Hotline/0.1".
    pub user_agent: String,
    /// RFC 3261 T1, the RTT estimate (500 ms).
    pub t1: Duration,
    /// RFC 3261 T2, the retransmit interval cap (4 s).
    pub t2: Duration,
    /// RFC 3261 T4, the time a message may linger in the network (5 s).
    pub t4: Duration,
}

impl EndpointConfig {
    /// Defaults for everything but the contact address.
    pub fn new(contact_addr: SocketAddr) -> Self {
        EndpointConfig {
            contact_addr,
            ..Self::default()
        }
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            contact_addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
            user_agent: "Hotline/0.1".to_string(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Bytes to send to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to (for TCP: which connection).
    pub peer: Peer,
    /// One complete SIP message.
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// INVITE received, no final response yet.
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

/// The current INVITE server transaction of a call (initial or re-INVITE).
#[derive(Debug)]
struct InviteTx {
    branch: String,
    cseq: u32,
    reply: ReplyHeaders,
    /// RFC 3261 §12.1.1: copied into dialog-creating responses (initial INVITE only).
    record_route: Vec<String>,
    is_reinvite: bool,
    last_response: Option<Vec<u8>>,
    final_code: Option<u16>,
    acked: bool,
    /// Timer G (non-2xx) or the §13.3.1.4 2xx retransmission.
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer H.
    ack_deadline: Option<Instant>,
}

/// A client non-INVITE transaction for a request we send in the dialog
/// (BYE, REFER; RFC 3261 §17.1.2). Responses are matched by branch and CSeq
/// method (§17.1.3).
#[derive(Debug)]
struct ClientTx {
    method: Method,
    branch: String,
    data: Vec<u8>,
    /// Timer E (UDP only).
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer F.
    deadline: Instant,
}

#[derive(Debug)]
struct Call {
    key: CallKey,
    span: Span,
    /// The flow the INVITE came on; everything for this call goes back there
    /// (flow reuse, so NATed callers get our BYE too).
    peer: Peer,
    phase: Phase,
    /// `Incoming` was emitted, so exactly one `Ended` is owed.
    announced: bool,
    /// `Ended` was emitted (or is not owed).
    ended: bool,
    local_tag: String,
    remote_tag: Option<String>,
    /// The INVITE's From value (their tag included): our To in requests.
    their_from: String,
    /// The INVITE's To value: our From in requests, plus our tag.
    their_to: String,
    remote_target: String,
    route_set: Vec<String>,
    remote_cseq: u32,
    local_cseq: u32,
    invite: InviteTx,
    remote_media: Option<RemoteMedia>,
    local: Option<LocalSession>,
    /// Our in-dialog requests awaiting a final response: at most one BYE and
    /// one REFER.
    client: Vec<ClientTx>,
    /// We sent a REFER in this dialog, so NOTIFYs of its implicit
    /// subscription are reported (RFC 3515 §2.4.4).
    referred: bool,
    /// hangup() came while the 2xx was unacknowledged (RFC 3261 §15: no BYE before ACK).
    bye_after_ack: bool,
    reap_at: Option<Instant>,
    /// The deadline we have a heap entry for (lazy deletion of stale entries).
    scheduled: Option<Instant>,
}

impl Call {
    fn next_deadline(&self) -> Option<Instant> {
        let client = self
            .client
            .iter()
            .flat_map(|t| [t.retransmit_at, Some(t.deadline)]);
        [
            self.invite.retransmit_at,
            self.invite.ack_deadline,
            self.reap_at,
        ]
        .into_iter()
        .chain(client)
        .flatten()
        .min()
    }

    /// RFC 3261 §12.2.2: an in-dialog request must carry both tags of this dialog.
    fn matches_dialog(&self, req: &Request) -> bool {
        self.phase != Phase::Terminated
            && req.to.tag.as_deref() == Some(self.local_tag.as_str())
            && req.from.tag == self.remote_tag
    }
}

/// A non-INVITE server transaction in the Completed state (RFC 3261 §17.2.2).
#[derive(Debug)]
struct NonInviteTx {
    response: Vec<u8>,
    expires: Instant,
}

type NonInviteKey = (String, String);

/// Why an initial INVITE is refused at receipt: status, reason phrase, extra headers.
type Refusal = (u16, String, Vec<(&'static str, String)>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimerTarget {
    Call(CallKey),
    NonInvite(NonInviteKey),
}

#[derive(Debug)]
struct TimerEntry {
    at: Instant,
    seq: u64,
    target: TimerTarget,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The SIP state machine. Feed it datagrams / framed TCP messages and the
/// clock; drain transmits and events after every call.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    calls: HashMap<CallKey, Call>,
    non_invite: HashMap<NonInviteKey, NonInviteTx>,
    timers: BinaryHeap<Reverse<TimerEntry>>,
    timer_seq: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SipEvent>,
    draining: bool,
    live: usize,
}

fn random_token(n: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(n)
        .collect()
}

impl Endpoint {
    /// A new endpoint with no calls.
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpoint {
            cfg,
            calls: HashMap::new(),
            non_invite: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            draining: false,
            live: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Feeds one complete datagram or framed TCP message.
    pub fn handle_input(&mut self, now: Instant, peer: Peer, data: &[u8]) {
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        {
            // RFC 5626 §4.4.1 keep-alive or empty datagram.
            return;
        }
        match message::parse(data, peer.transport) {
            Ok(Inbound::Request(req)) => self.on_request(now, peer, *req),
            Ok(Inbound::Response(resp)) => self.on_response(now, resp),
            Err(message::Rejection::Reply {
                code,
                reason,
                reply,
                extra,
            }) => {
                warn!(%peer, code, %reason, "rejecting bad request");
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
                self.send(peer, data);
            }
            Err(message::Rejection::Drop(why)) => {
                warn!(%peer, len = data.len(), %why, "dropping unusable message");
            }
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse(top)) = self.timers.peek() {
            if top.at > now {
                break;
            }
            let Some(Reverse(entry)) = self.timers.pop() else {
                break;
            };
            match entry.target {
                TimerTarget::Call(key) => {
                    if self.calls.get(&key).map(|c| c.scheduled) != Some(Some(entry.at)) {
                        continue; // stale entry
                    }
                    let Some(mut call) = self.calls.remove(&key) else {
                        continue;
                    };
                    call.scheduled = None;
                    let span = call.span.clone();
                    let _enter = span.enter();
                    if self.on_call_timeout(now, &mut call) {
                        debug!("call state reaped");
                    } else {
                        self.put_back(call);
                    }
                }
                TimerTarget::NonInvite(key) => {
                    if self.non_invite.get(&key).is_some_and(|t| t.expires <= now) {
                        self.non_invite.remove(&key);
                    }
                }
            }
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<SipEvent> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] should next be called. May be early
    /// (a cancelled timer), never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(e)| e.at)
    }

    /// Sends 180 Ringing.
    pub fn ring(&mut self, now: Instant, call: &CallKey) -> Result<(), SipError> {
        let _ = now;
        self.with_call(call, |ep, c| {
            if c.phase != Phase::Early || c.invite.final_code.is_some() || !c.announced {
                return Err(SipError::InvalidState {
                    call: c.key.clone(),
                    action: "ring",
                });
            }
            let data = ep.invite_response(c, 180, None, &[], None);
            c.invite.last_response = Some(data.clone());
            ep.send(c.peer, data);
            info!("180 Ringing sent");
            Ok(())
        })
    }

    /// Sends 200 OK with our SDP answer; RTP is to be received at `local_rtp`.
    pub fn answer(
        &mut self,
        now: Instant,
        call: &CallKey,
        local_rtp: SocketAddr,
    ) -> Result<(), SipError> {
        self.with_call(call, |ep, c| {
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
                SocketAddr::new(ep.cfg.contact_addr.ip(), local_rtp.port())
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
            ep.send_invite_2xx(now, c, body);
            c.phase = Phase::Answered;
            info!(%rtp, codec = ?media.codec, "200 OK sent");
            Ok(())
        })
    }

    /// Sends a final non-2xx response (300..=699) to an unanswered call.
    pub fn reject(&mut self, now: Instant, call: &CallKey, code: u16) -> Result<(), SipError> {
        if !(300..=699).contains(&code) {
            return Err(SipError::InvalidStatus(code));
        }
        self.with_call(call, |ep, c| {
            if c.phase != Phase::Early || c.invite.final_code.is_some() {
                return Err(SipError::InvalidState {
                    call: c.key.clone(),
                    action: "reject",
                });
            }
            ep.send_invite_failure(now, c, code, reason_phrase(code), &[]);
            c.phase = Phase::Terminated;
            ep.end(now, c, EndReason::Rejected { code });
            Ok(())
        })
    }

    /// Ends the call: BYE once confirmed, 480 if not answered yet. Calling it
    /// again on a call already ending is a no-op.
    pub fn hangup(&mut self, now: Instant, call: &CallKey) -> Result<(), SipError> {
        self.with_call(call, |ep, c| {
            match c.phase {
                Phase::Early if c.invite.final_code.is_none() => {
                    ep.send_invite_failure(now, c, 480, reason_phrase(480), &[]);
                    c.phase = Phase::Terminated;
                    ep.end(now, c, EndReason::Rejected { code: 480 });
                }
                // RFC 3261 §15: no BYE before the ACK for our 2xx (or Timer H).
                Phase::Answered => c.bye_after_ack = true,
                Phase::Confirmed => ep.send_bye(now, c),
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
        if !is_transfer_target(target) {
            return Err(SipError::InvalidTarget(target.to_string()));
        }
        self.with_call(call, |ep, c| {
            if c.phase != Phase::Confirmed || c.client.iter().any(|t| t.method == Method::Refer) {
                return Err(SipError::InvalidState {
                    call: c.key.clone(),
                    action: "refer",
                });
            }
            let extra = vec![
                ("Contact", ep.contact(c.peer.transport)),
                ("Refer-To", format!("<{target}>")),
                (
                    "Referred-By",
                    format!("<sip:hotline@{}>", ep.cfg.contact_addr),
                ),
            ];
            ep.send_in_dialog(now, c, Method::Refer, extra);
            c.referred = true;
            info!(%target, "REFER sent");
            Ok(())
        })
    }

    /// While draining, new INVITEs get 503 Service Unavailable.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Calls announced by `Incoming` and not yet `Ended`.
    pub fn active_calls(&self) -> usize {
        self.live
    }

    // ----- plumbing -----

    fn send(&mut self, peer: Peer, data: Vec<u8>) {
        self.transmits.push_back(Transmit { peer, data });
    }

    fn push_timer(&mut self, at: Instant, target: TimerTarget) {
        self.timer_seq += 1;
        self.timers.push(Reverse(TimerEntry {
            at,
            seq: self.timer_seq,
            target,
        }));
    }

    fn put_back(&mut self, mut call: Call) {
        let next = call.next_deadline();
        if next.is_some() && next != call.scheduled {
            if let Some(at) = next {
                self.push_timer(at, TimerTarget::Call(call.key.clone()));
            }
        }
        call.scheduled = next;
        self.calls.insert(call.key.clone(), call);
    }

    /// Takes the call out of the map for the duration of `f` (so `f` may use
    /// `&mut self` freely), then puts it back and reschedules its timers.
    fn with_call<R>(
        &mut self,
        key: &CallKey,
        f: impl FnOnce(&mut Self, &mut Call) -> Result<R, SipError>,
    ) -> Result<R, SipError> {
        let Some(mut call) = self.calls.remove(key) else {
            return Err(SipError::UnknownCall(key.clone()));
        };
        let span = call.span.clone();
        let _enter = span.enter();
        let r = f(self, &mut call);
        self.put_back(call);
        r
    }

    fn end(&mut self, now: Instant, call: &mut Call, reason: EndReason) {
        // The dialog is gone: a REFER still in flight is abandoned (no
        // transfer event follows `Ended`); only our BYE runs to completion.
        call.client.retain(|t| t.method == Method::Bye);
        if !call.ended {
            call.ended = true;
            if call.announced {
                self.live = self.live.saturating_sub(1);
                info!(%reason, "call ended");
                self.events.push_back(SipEvent::Ended {
                    call: call.key.clone(),
                    reason,
                });
            }
        }
        // Keep the state long enough to absorb retransmissions (Timers H/I/J/K).
        let linger = now + self.cfg.t1 * 64 + self.cfg.t4;
        call.reap_at = Some(call.reap_at.map_or(linger, |r| r.max(linger)));
    }

    fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:hotline@{}>", self.cfg.contact_addr),
            Transport::Tcp => format!("<sip:hotline@{};transport=tcp>", self.cfg.contact_addr),
        }
    }

    /// A response to the call's current INVITE.
    fn invite_response(
        &self,
        call: &Call,
        code: u16,
        reason: Option<&str>,
        extra: &[(&str, String)],
        body: Option<&str>,
    ) -> Vec<u8> {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if (101..300).contains(&code) {
            headers.push(("Contact", self.contact(call.peer.transport)));
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
            &call.peer,
            &ResponseSpec {
                code,
                reason: reason.unwrap_or(reason_phrase(code)),
                // RFC 3261 §8.2.6.2: 100 Trying need not carry a tag; all others do.
                to_tag: (code != 100).then_some(call.local_tag.as_str()),
                record_route: rr,
                extra: &headers,
                body: body.map(|b| ("application/sdp", b.as_bytes())),
                server: &self.cfg.user_agent,
            },
        )
    }

    /// 2xx to the current INVITE, retransmitted until ACK (RFC 3261 §13.3.1.4).
    fn send_invite_2xx(&mut self, now: Instant, call: &mut Call, sdp_body: String) {
        let data = self.invite_response(call, 200, None, &[], Some(&sdp_body));
        call.invite.final_code = Some(200);
        call.invite.last_response = Some(data.clone());
        call.invite.acked = false;
        call.invite.interval = self.cfg.t1;
        call.invite.retransmit_at = Some(now + self.cfg.t1);
        call.invite.ack_deadline = Some(now + self.cfg.t1 * 64);
        self.send(call.peer, data);
    }

    /// Final non-2xx to the current INVITE: Timer G on UDP, Timer H always (§17.2.1).
    fn send_invite_failure(
        &mut self,
        now: Instant,
        call: &mut Call,
        code: u16,
        reason: &str,
        extra: &[(&str, String)],
    ) {
        let data = self.invite_response(call, code, Some(reason), extra, None);
        call.invite.final_code = Some(code);
        call.invite.last_response = Some(data.clone());
        call.invite.acked = false;
        call.invite.interval = self.cfg.t1;
        call.invite.retransmit_at = (!call.peer.transport.is_reliable()).then(|| now + self.cfg.t1);
        call.invite.ack_deadline = Some(now + self.cfg.t1 * 64);
        self.send(call.peer, data);
        info!(code, reason, "final response sent");
    }

    /// BYE as a client non-INVITE transaction (RFC 3261 §15.1.1).
    fn send_bye(&mut self, now: Instant, call: &mut Call) {
        self.send_in_dialog(now, call, Method::Bye, Vec::new());
        call.phase = Phase::Ending;
        info!("BYE sent");
    }

    /// Sends a request within the dialog (RFC 3261 §12.2.1.1) as a client
    /// non-INVITE transaction (§17.1.2): Timer E retransmits on UDP, Timer F
    /// gives up. `extra` headers go after the dialog headers.
    fn send_in_dialog(
        &mut self,
        now: Instant,
        call: &mut Call,
        method: Method,
        extra: Vec<(&str, String)>,
    ) {
        call.local_cseq += 1;
        let branch = format!("z9hG4bK{}", random_token(16));
        let mut headers: Vec<(&str, String)> = vec![(
            "Via",
            format!(
                "SIP/2.0/{} {};branch={branch};rport",
                call.peer.transport, self.cfg.contact_addr
            ),
        )];
        headers.push(("Max-Forwards", "70".to_string()));
        // RFC 3261 §12.1.1: the UAS route set is Record-Route in received order.
        for r in &call.route_set {
            headers.push(("Route", r.clone()));
        }
        headers.push(("From", format!("{};tag={}", call.their_to, call.local_tag)));
        headers.push(("To", call.their_from.clone()));
        headers.push(("Call-ID", call.key.0.to_string()));
        headers.push(("CSeq", format!("{} {}", call.local_cseq, method.as_str())));
        headers.extend(extra);
        headers.push(("User-Agent", self.cfg.user_agent.clone()));
        let data = build_request(method.as_str(), &call.remote_target, &headers, None);
        call.client.retain(|t| t.method != method);
        call.client.push(ClientTx {
            method,
            branch,
            data: data.clone(),
            retransmit_at: (!call.peer.transport.is_reliable()).then(|| now + self.cfg.t1),
            interval: self.cfg.t1,
            deadline: now + self.cfg.t1 * 64,
        });
        self.send(call.peer, data);
    }

    /// Answers a non-INVITE request and remembers the answer for retransmissions.
    #[allow(clippy::too_many_arguments)]
    fn reply_non_invite(
        &mut self,
        now: Instant,
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
                server: &self.cfg.user_agent,
            },
        );
        // RFC 3261 §17.2.2: Timer J is 64*T1 on UDP, zero on TCP.
        if !peer.transport.is_reliable() {
            let expires = now + self.cfg.t1 * 64;
            let key = (req.branch.clone(), req.method.as_str().to_string());
            self.non_invite.insert(
                key.clone(),
                NonInviteTx {
                    response: data.clone(),
                    expires,
                },
            );
            self.push_timer(expires, TimerTarget::NonInvite(key));
        }
        self.send(peer, data);
    }

    // ----- inbound -----

    fn on_request(&mut self, now: Instant, peer: Peer, req: Request) {
        if !matches!(req.method, Method::Invite | Method::Ack) {
            let key = (req.branch.clone(), req.method.as_str().to_string());
            if let Some(tx) = self.non_invite.get(&key) {
                // RFC 3261 §17.2.2: a retransmission gets the same response again.
                let data = tx.response.clone();
                self.send(peer, data);
                return;
            }
        }
        match req.method {
            Method::Invite if req.to.tag.is_none() => self.on_invite(now, peer, req),
            Method::Invite => self.on_reinvite(now, peer, req),
            Method::Ack => self.on_ack(now, req),
            Method::Cancel => self.on_cancel(now, peer, req),
            Method::Bye | Method::Info | Method::Update | Method::Notify => {
                self.on_in_dialog(now, peer, req)
            }
            Method::Options => {
                let extra = [
                    ("Allow", ALLOW.to_string()),
                    ("Accept", ACCEPT.to_string()),
                    ("Supported", String::new()),
                ];
                let tag = self
                    .calls
                    .get(&CallKey::from(req.call_id.as_str()))
                    .filter(|c| c.matches_dialog(&req))
                    .map(|c| c.local_tag.clone());
                self.reply_non_invite(now, peer, &req, 200, tag.as_deref(), &extra, None);
            }
            _ => {
                let extra = [("Allow", ALLOW.to_string())];
                self.reply_non_invite(now, peer, &req, 405, None, &extra, None);
            }
        }
    }

    fn on_invite(&mut self, now: Instant, peer: Peer, req: Request) {
        let key = CallKey::from(req.call_id.as_str());
        if let Some(call) = self.calls.get(&key) {
            if call.invite.branch == req.branch {
                // RFC 3261 §17.2.1: a retransmitted INVITE gets the last response again.
                let data = match &call.invite.last_response {
                    Some(d) => d.clone(),
                    None => self.invite_response(call, 100, None, &[], None),
                };
                let to = call.peer;
                self.send(to, data);
                return;
            }
            if call.phase == Phase::Terminated && req.cseq > call.invite.cseq {
                // A new attempt reusing the Call-ID of a finished one (e.g. after 503).
                self.calls.remove(&key);
            } else {
                // RFC 3261 §8.2.2.2: a merged or looped request.
                self.reply_stateless(peer, &req, 482);
                return;
            }
        }

        let span = info_span!("call", call_id = %key);
        let _enter = span.enter();
        let verdict: Result<RemoteMedia, Refusal> = if self.draining {
            Err((
                503,
                "Service Unavailable".into(),
                vec![("Retry-After", "30".into())],
            ))
        } else if req.max_forwards == Some(0) {
            Err((483, "Too Many Hops".into(), vec![]))
        } else if req.contact.is_none() {
            Err((400, "Missing Contact header".into(), vec![]))
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
            sdp::negotiate(&req.body).map_err(|e| match e {
                SdpError::Malformed(why) => {
                    (400, format!("Bad Request (malformed SDP: {why})"), vec![])
                }
                SdpError::NoAudio | SdpError::NoCommonCodec => {
                    (488, format!("Not Acceptable Here ({e})"), vec![])
                }
            })
        };

        let mut call = Call {
            key: key.clone(),
            span: span.clone(),
            peer,
            phase: Phase::Early,
            announced: false,
            ended: false,
            local_tag: random_token(10),
            remote_tag: req.from.tag.clone(),
            their_from: req.reply.from.clone(),
            their_to: req.reply.to.clone(),
            remote_target: req.contact.clone().unwrap_or_default(),
            route_set: req.record_route.clone(),
            remote_cseq: req.cseq,
            local_cseq: 0,
            invite: InviteTx {
                branch: req.branch.clone(),
                cseq: req.cseq,
                reply: req.reply.clone(),
                record_route: req.record_route.clone(),
                is_reinvite: false,
                last_response: None,
                final_code: None,
                acked: false,
                retransmit_at: None,
                interval: self.cfg.t1,
                ack_deadline: None,
            },
            remote_media: None,
            local: None,
            client: Vec::new(),
            referred: false,
            bye_after_ack: false,
            reap_at: None,
            scheduled: None,
        };
        match verdict {
            Err((code, reason, extra)) => {
                info!(%peer, code, %reason, "INVITE refused");
                self.send_invite_failure(now, &mut call, code, &reason, &extra);
                call.phase = Phase::Terminated;
                self.end(now, &mut call, EndReason::Rejected { code });
            }
            Ok(media) => {
                // RFC 3261 §17.2.1: 100 Trying at once so the caller stops retransmitting.
                let trying = self.invite_response(&call, 100, None, &[], None);
                call.invite.last_response = Some(trying.clone());
                self.send(peer, trying);
                call.remote_media = Some(media);
                call.announced = true;
                self.live += 1;
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
                info!(%peer, caller = %caller.user, %callee, codec = ?media.codec, "incoming call");
                self.events.push_back(SipEvent::Incoming(IncomingCall {
                    call: key,
                    caller,
                    callee,
                    offer: media,
                    peer,
                }));
            }
        }
        self.put_back(call);
    }

    /// A response sent once, without transaction state (the request did not
    /// fit any call); retransmissions are answered the same way again.
    fn reply_stateless(&mut self, peer: Peer, req: &Request, code: u16) {
        let tag = random_token(10);
        let data = build_response(
            &req.reply,
            &peer,
            &ResponseSpec {
                code,
                reason: reason_phrase(code),
                to_tag: Some(&tag),
                record_route: &[],
                extra: &[],
                body: None,
                server: &self.cfg.user_agent,
            },
        );
        self.send(peer, data);
    }

    fn on_reinvite(&mut self, now: Instant, peer: Peer, req: Request) {
        let key = CallKey::from(req.call_id.as_str());
        let Some(call) = self.calls.get(&key) else {
            self.reply_stateless(peer, &req, 481);
            return;
        };
        if call.invite.branch == req.branch {
            if let Some(data) = call.invite.last_response.clone() {
                let to = call.peer;
                self.send(to, data);
            }
            return;
        }
        if !call.matches_dialog(&req) || call.phase == Phase::Ending {
            self.reply_stateless(peer, &req, 481);
            return;
        }
        if call.phase == Phase::Early || call.local.is_none() {
            // RFC 3261 §14.2: INVITE while the first has no final response yet.
            self.reply_stateless(peer, &req, 500);
            return;
        }
        if !call.invite.acked {
            self.reply_stateless(peer, &req, 491);
            return;
        }
        if req.cseq <= call.remote_cseq {
            // RFC 3261 §12.2.2: out-of-order request.
            self.reply_stateless(peer, &req, 500);
            return;
        }
        let _ = self.with_call(&key, |ep, c| {
            c.remote_cseq = req.cseq;
            if let Some(t) = &req.contact {
                // RFC 3261 §12.2.2: re-INVITE refreshes the remote target.
                c.remote_target = t.clone();
            }
            c.invite = InviteTx {
                branch: req.branch.clone(),
                cseq: req.cseq,
                reply: req.reply.clone(),
                record_route: Vec::new(),
                is_reinvite: true,
                last_response: None,
                final_code: None,
                acked: false,
                retransmit_at: None,
                interval: ep.cfg.t1,
                ack_deadline: None,
            };
            let (Some(mut local), Some(current)) = (c.local, c.remote_media) else {
                return Ok(());
            };
            if req.body.is_empty() {
                // No offer: we offer our current session; the ACK carries the answer.
                let body = sdp::build(&local, &current, Direction::SendRecv);
                ep.send_invite_2xx(now, c, body);
                return Ok(());
            }
            match sdp::negotiate(&req.body) {
                Ok(media) => {
                    local.version += 1;
                    c.local = Some(local);
                    c.remote_media = Some(media);
                    let body = sdp::build(&local, &media, media.direction.mirrored());
                    ep.send_invite_2xx(now, c, body);
                    info!(direction = ?media.direction, rtp = %media.rtp_addr, "re-INVITE answered");
                    ep.events.push_back(SipEvent::MediaChanged {
                        call: c.key.clone(),
                        media,
                    });
                }
                Err(SdpError::Malformed(why)) => {
                    let reason = format!("Bad Request (malformed SDP: {why})");
                    ep.send_invite_failure(now, c, 400, &reason, &[]);
                }
                Err(e) => {
                    let reason = format!("Not Acceptable Here ({e})");
                    ep.send_invite_failure(now, c, 488, &reason, &[]);
                }
            }
            Ok(())
        });
    }

    fn on_ack(&mut self, now: Instant, req: Request) {
        let key = CallKey::from(req.call_id.as_str());
        let _ = self.with_call(&key, |ep, c| {
            let tx = &mut c.invite;
            if tx.acked || tx.final_code.is_none() {
                debug!("ACK retransmission or early ACK absorbed");
                return Ok(());
            }
            let is_2xx = tx.final_code.is_some_and(|code| code < 300);
            // RFC 3261 §17.2.1: the ACK for a non-2xx belongs to the INVITE transaction.
            let non2xx_ack = !is_2xx && tx.branch == req.branch;
            // RFC 3261 §13.3.1.4: the ACK for a 2xx is its own transaction, matched by dialog.
            let ack_2xx = is_2xx
                && req.cseq == tx.cseq
                && req.to.tag.as_deref() == Some(c.local_tag.as_str());
            if !(non2xx_ack || ack_2xx) {
                debug!("ACK matches nothing; dropped");
                return Ok(());
            }
            tx.acked = true;
            tx.retransmit_at = None;
            tx.ack_deadline = None;
            let reinvite = tx.is_reinvite;
            if ack_2xx && c.phase == Phase::Answered && !reinvite {
                c.phase = Phase::Confirmed;
                info!("call confirmed");
                ep.events.push_back(SipEvent::Confirmed {
                    call: c.key.clone(),
                });
            }
            if c.bye_after_ack && c.phase == Phase::Confirmed {
                c.bye_after_ack = false;
                ep.send_bye(now, c);
            }
            Ok(())
        });
    }

    fn on_cancel(&mut self, now: Instant, peer: Peer, req: Request) {
        let key = CallKey::from(req.call_id.as_str());
        let matched = self
            .calls
            .get(&key)
            .is_some_and(|c| c.invite.branch == req.branch && !c.invite.is_reinvite);
        if !matched {
            // RFC 3261 §9.2: no matching transaction.
            self.reply_non_invite(now, peer, &req, 481, None, &[], None);
            return;
        }
        let _ = self.with_call(&key, |ep, c| {
            let tag = c.local_tag.clone();
            ep.reply_non_invite(now, peer, &req, 200, Some(&tag), &[], None);
            if c.invite.final_code.is_none() {
                // RFC 3261 §9.2: the INVITE gets 487 Request Terminated.
                ep.send_invite_failure(now, c, 487, reason_phrase(487), &[]);
                c.phase = Phase::Terminated;
                ep.end(now, c, EndReason::Cancelled);
            }
            Ok(())
        });
    }

    /// BYE, INFO, UPDATE and NOTIFY: requests that need a dialog.
    fn on_in_dialog(&mut self, now: Instant, peer: Peer, req: Request) {
        let key = CallKey::from(req.call_id.as_str());
        let matched = self.calls.get(&key).is_some_and(|c| c.matches_dialog(&req));
        if !matched {
            // RFC 3261 §12.2.2: no such dialog.
            self.reply_non_invite(now, peer, &req, 481, None, &[], None);
            return;
        }
        let _ = self.with_call(&key, |ep, c| {
            if req.cseq <= c.remote_cseq {
                // RFC 3261 §12.2.2: lower CSeq than the last request → 500.
                let extra = [("Retry-After", "1".to_string())];
                ep.reply_non_invite(now, peer, &req, 500, None, &extra, None);
                return Ok(());
            }
            c.remote_cseq = req.cseq;
            match req.method {
                Method::Bye => ep.on_bye(now, peer, c, &req),
                Method::Info => ep.on_info(now, peer, c, &req),
                Method::Notify => ep.on_notify(now, peer, c, &req),
                _ => ep.on_update(now, peer, c, &req),
            }
            Ok(())
        });
    }

    fn on_bye(&mut self, now: Instant, peer: Peer, c: &mut Call, req: &Request) {
        self.reply_non_invite(now, peer, req, 200, None, &[], None);
        if c.phase == Phase::Early && c.invite.final_code.is_none() {
            // RFC 3261 §15.1.2: BYE in an early dialog also terminates the INVITE.
            self.send_invite_failure(now, c, 487, reason_phrase(487), &[]);
        } else if !c.invite.acked {
            c.invite.retransmit_at = None;
            c.invite.ack_deadline = None;
        }
        c.phase = Phase::Terminated;
        self.end(now, c, EndReason::RemoteBye);
    }

    fn on_info(&mut self, now: Instant, peer: Peer, c: &mut Call, req: &Request) {
        self.reply_non_invite(now, peer, req, 200, None, &[], None);
        match parse_dtmf(req.content_type.as_deref(), &req.body) {
            Some((digit, duration_ms)) if c.announced && !c.ended => {
                debug!(%digit, "DTMF via INFO");
                self.events.push_back(SipEvent::Digit {
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
    fn on_notify(&mut self, now: Instant, peer: Peer, c: &mut Call, req: &Request) {
        self.reply_non_invite(now, peer, req, 200, None, &[], None);
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
                self.events.push_back(SipEvent::TransferProgress {
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

    fn on_update(&mut self, now: Instant, peer: Peer, c: &mut Call, req: &Request) {
        if req.body.is_empty() {
            self.reply_non_invite(now, peer, req, 200, None, &[], None);
            return;
        }
        let Some(mut local) = c.local else {
            // RFC 3311 §5.2: we cannot answer an offer before we have media.
            let extra = [("Retry-After", "1".to_string())];
            self.reply_non_invite(now, peer, req, 500, None, &extra, None);
            return;
        };
        match sdp::negotiate(&req.body) {
            Ok(media) => {
                local.version += 1;
                c.local = Some(local);
                c.remote_media = Some(media);
                let body = sdp::build(&local, &media, media.direction.mirrored());
                let extra = [("Contact", self.contact(c.peer.transport))];
                self.reply_non_invite(
                    now,
                    peer,
                    req,
                    200,
                    None,
                    &extra,
                    Some(("application/sdp", body.as_bytes())),
                );
                self.events.push_back(SipEvent::MediaChanged {
                    call: c.key.clone(),
                    media,
                });
            }
            Err(SdpError::Malformed(_)) => {
                self.reply_non_invite(now, peer, req, 400, None, &[], None)
            }
            Err(_) => self.reply_non_invite(now, peer, req, 488, None, &[], None),
        }
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let key = CallKey::from(resp.call_id.as_str());
        // RFC 3261 §17.1.3: branch and CSeq method identify the client transaction.
        let matched = self.calls.get(&key).is_some_and(|c| {
            c.client
                .iter()
                .any(|t| t.branch == resp.branch && t.method.as_str() == resp.cseq_method)
        });
        if !matched {
            debug!(code = resp.code, call_id = %resp.call_id, "unexpected response dropped");
            return;
        }
        let _ = self.with_call(&key, |ep, c| {
            let Some(i) = c
                .client
                .iter()
                .position(|t| t.branch == resp.branch && t.method.as_str() == resp.cseq_method)
            else {
                return Ok(());
            };
            if resp.code < 200 {
                if let Some(t) = c.client.get_mut(i) {
                    // RFC 3261 §17.1.2.2: in Proceeding, retransmit every T2.
                    t.interval = ep.cfg.t2;
                }
                return Ok(());
            }
            let tx = c.client.remove(i);
            ep.client_completed(now, c, tx.method, resp.code);
            Ok(())
        });
    }

    /// A client transaction got its final response (`code`), or timed out (408).
    fn client_completed(&mut self, now: Instant, c: &mut Call, method: Method, code: u16) {
        match method {
            Method::Bye => {
                if code == 408 {
                    warn!("BYE not answered (Timer F)");
                } else {
                    info!(code, "BYE answered");
                }
                c.phase = Phase::Terminated;
                self.end(now, c, EndReason::LocalBye);
            }
            Method::Refer if c.ended => debug!(code, "REFER outcome after the call ended"),
            Method::Refer if (200..300).contains(&code) => {
                info!(code, "REFER accepted");
                self.events.push_back(SipEvent::TransferAccepted {
                    call: c.key.clone(),
                });
            }
            Method::Refer => {
                warn!(code, "REFER failed");
                self.events.push_back(SipEvent::TransferFailed {
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

    /// Runs the call's due timers; returns true when the call is to be reaped.
    fn on_call_timeout(&mut self, now: Instant, c: &mut Call) -> bool {
        let t2 = self.cfg.t2;
        let next = |at: Instant, interval: Duration| {
            let n = at + interval;
            if n <= now { now + interval } else { n }
        };
        if let Some(at) = c.invite.retransmit_at
            && at <= now
        {
            if let Some(data) = c.invite.last_response.clone() {
                self.send(c.peer, data);
            }
            c.invite.interval = (c.invite.interval * 2).min(t2);
            c.invite.retransmit_at = Some(next(at, c.invite.interval));
        }
        if let Some(at) = c.invite.ack_deadline
            && at <= now
        {
            c.invite.retransmit_at = None;
            c.invite.ack_deadline = None;
            if c.invite.final_code.is_some_and(|code| code < 300) {
                // RFC 3261 §13.3.1.4: no ACK for our 2xx → end the dialog with BYE.
                warn!("no ACK for 2xx within 64*T1 (Timer H)");
                if !matches!(c.phase, Phase::Ending | Phase::Terminated) {
                    self.send_bye(now, c);
                }
                self.end(now, c, EndReason::AckTimeout);
            } else {
                debug!("no ACK for non-2xx final response (Timer H)");
            }
        }
        for t in &mut c.client {
            if let Some(at) = t.retransmit_at
                && at <= now
                && t.deadline > now
            {
                // Timer E (RFC 3261 §17.1.2.2).
                t.interval = (t.interval * 2).min(t2);
                t.retransmit_at = Some(next(at, t.interval));
                self.send(c.peer, t.data.clone());
            }
        }
        if c.client.iter().any(|t| t.deadline <= now) {
            // Timer F. A REFER's failure is reported before a BYE's `Ended`.
            let (mut expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut c.client)
                .into_iter()
                .partition(|t| t.deadline <= now);
            c.client = live;
            expired.sort_by_key(|t| t.method == Method::Bye);
            for tx in expired {
                self.client_completed(now, c, tx.method, 408);
            }
        }
        c.reap_at.is_some_and(|r| r <= now)
    }
}

/// A Refer-To URI we are willing to put between angle brackets: `sip:`,
/// `sips:` or `tel:`, no whitespace, controls, `<`, `>` or `"`.
fn is_transfer_target(target: &str) -> bool {
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
