//! The sans-IO SIP user agent (RFC 3261): INVITE/non-INVITE server
//! transactions, dialogs, the INVITE client transaction of our outbound
//! calls and the client transactions of our other requests (BYE, REFER,
//! CANCEL), driven by input bytes and a caller-supplied clock.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Span, debug, info, info_span, warn};

use crate::CallKey;
use crate::error::SipError;
use crate::event::{EndReason, IncomingCall, Party, SipEvent};
use crate::framing;
use crate::guard::{EdgeCounters, Guard, GuardConfig, RequestVerdict};
use crate::message::{
    self, ACCEPT, ALLOW, Inbound, Method, ReplyHeaders, Request, Response, ResponseSpec,
    build_request, build_response, reason_phrase, sipfrag_status, uri_destination,
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
    /// The edge policy (allow-list, rate limits, caps); off by default
    /// here, the gateway's defaults are [`GuardConfig::default`].
    pub guard: GuardConfig,
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
            guard: GuardConfig::off(),
        }
    }
}

/// An outbound call to place with [`Endpoint::originate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Originate {
    /// The Call-ID (and so the [`CallKey`]) to use, e.g. so that the
    /// application can route the call's events before `originate` returns;
    /// `None` generates a random one. Must be unique among the endpoint's
    /// calls and made of visible ASCII characters (at most 128).
    pub call_id: Option<String>,
    /// Request-URI and To, e.g. `sip:+15551234567@127.0.0.1:5090`: a `sip:`
    /// URI whose host is an IP address (the trunk or proxy; no DNS), port
    /// 5060 by default. UDP only (`;transport=tcp` is refused).
    pub target: String,
    /// The user part of our From URI (`sip:<from_user>@<contact address>`),
    /// e.g. `hotline` or the caller ID number.
    pub from_user: String,
    /// The From display name, e.g. `Hotline`.
    pub from_display: Option<String>,
    /// Our RTP address for the SDP offer (PCMU 0, PCMA 8, telephone-event
    /// 101, sendrecv, ptime 20). An unspecified IP is replaced by the
    /// contact address's.
    pub local_rtp: SocketAddr,
    /// No-answer timeout: when no final response has arrived this long after
    /// `originate`, the INVITE is cancelled and the call fails with 480.
    pub ring_timeout: Duration,
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

/// The current INVITE server transaction of a call (initial or re-INVITE).
#[derive(Debug)]
struct InviteTx {
    branch: String,
    /// Where the INVITE came from; its responses go there (RFC 3261 §18.2.2).
    peer: Peer,
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
/// (BYE, REFER), or for the CANCEL of our outbound INVITE (RFC 3261
/// §17.1.2). Responses are matched by branch and CSeq method (§17.1.3).
#[derive(Debug)]
struct ClientTx {
    method: Method,
    branch: String,
    /// Where it was sent (and Timer E resends it).
    peer: Peer,
    data: Vec<u8>,
    /// Timer E (UDP only).
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer F.
    deadline: Instant,
}

/// State of our INVITE client transaction (RFC 3261 §17.1.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UacState {
    /// INVITE sent, nothing back yet (Timers A and B run).
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final non-2xx arrived and was ACKed; retransmissions get the ACK again.
    Completed,
    /// A 2xx arrived: the dialog exists; 2xx retransmissions get the dialog's ACK.
    Accepted,
    /// Given up (Timer B, no answer to our CANCEL, transport error).
    Terminated,
}

/// Why we cancel an outbound INVITE: what `OutboundFailed` will say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CancelCause {
    code: u16,
    reason: &'static str,
}

/// The ring timeout passed without a final response.
const NO_ANSWER: CancelCause = CancelCause {
    code: 480,
    reason: "no answer",
};
/// The application hung up before the call was answered.
const HUNG_UP: CancelCause = CancelCause {
    code: 487,
    reason: "cancelled",
};

/// The INVITE client transaction of an outbound call (RFC 3261 §17.1.1),
/// kept for the call's life so that 2xx retransmissions still get an ACK.
#[derive(Debug)]
struct Uac {
    state: UacState,
    branch: String,
    cseq: u32,
    request_uri: String,
    /// The INVITE's Via value (CANCEL and the non-2xx ACK repeat it, §9.1, §17.1.1.3).
    via: String,
    /// The INVITE's To value (no tag).
    to: String,
    /// The INVITE, resent by Timer A.
    invite: Vec<u8>,
    /// The INVITE's destination (CANCEL and the non-2xx ACK go there too).
    peer: Peer,
    /// Timer A (UDP only).
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer B (Calling only).
    timer_b: Option<Instant>,
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
    /// The ACK to repeat for retransmitted final responses, and where to.
    ack: Option<(Peer, Vec<u8>)>,
    /// Until when a 2xx retransmission gets the ACK again (64*T1, §13.2.2.4).
    ack_until: Option<Instant>,
}

impl Uac {
    fn next_deadline(&self) -> Option<Instant> {
        let calling = self.state == UacState::Calling;
        let pending = matches!(self.state, UacState::Calling | UacState::Proceeding);
        [
            self.retransmit_at.filter(|_| calling),
            self.timer_b.filter(|_| calling),
            self.ring_deadline.filter(|_| pending),
            self.cancel_deadline.filter(|_| pending),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[derive(Debug)]
struct Call {
    key: CallKey,
    span: Span,
    /// Inbound: the flow the INVITE came on; everything for this call goes
    /// back there (flow reuse, so NATed callers get our BYE too). Outbound:
    /// the INVITE's destination, the fallback next hop (see `next_hop`).
    peer: Peer,
    /// We placed this call ([`Endpoint::originate`]).
    outbound: bool,
    /// Outbound calls: our INVITE client transaction.
    uac: Option<Box<Uac>>,
    phase: Phase,
    /// `Incoming` was emitted (or the call was originated), so exactly one
    /// `Ended` (or, outbound before answer, `OutboundFailed`) is owed.
    announced: bool,
    /// `Ended` was emitted (or is not owed).
    ended: bool,
    local_tag: String,
    remote_tag: Option<String>,
    /// The remote party's name-addr, their tag included: our To in requests
    /// (inbound: the INVITE's From; outbound: the 2xx's To).
    remote_party: String,
    /// Our name-addr without our tag: our From in requests (inbound: the
    /// INVITE's To; outbound: the From we sent).
    local_party: String,
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
    /// Inbound calls the edge policy counts against their source: the
    /// source, and whether the ACK for our 2xx is still owed.
    edge: Option<(IpAddr, bool)>,
}

impl Call {
    fn next_deadline(&self) -> Option<Instant> {
        let client = self
            .client
            .iter()
            .flat_map(|t| [t.retransmit_at, Some(t.deadline)]);
        let uac = self.uac.as_ref().and_then(|u| u.next_deadline());
        [
            self.invite.retransmit_at,
            self.invite.ack_deadline,
            self.reap_at,
            uac,
        ]
        .into_iter()
        .chain(client)
        .flatten()
        .min()
    }

    /// RFC 3261 §12.2.2: an in-dialog request must carry both tags of this dialog.
    fn matches_dialog(&self, req: &Request) -> bool {
        self.phase != Phase::Terminated
            // We track no early dialogs of our own INVITEs.
            && !(self.outbound && self.phase == Phase::Early)
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
    guard: Guard,
}

fn random_token(n: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(n)
        .collect()
}

/// A fresh RFC 3261 branch (magic cookie + random).
fn new_branch() -> String {
    format!("z9hG4bK{}", random_token(16))
}

/// What identifies a dialog in our requests (RFC 3261 §12.2.1.1).
struct DialogIds<'a> {
    call_id: &'a str,
    local_party: &'a str,
    local_tag: &'a str,
    remote_party: &'a str,
    remote_target: &'a str,
    route_set: &'a [String],
}

impl<'a> DialogIds<'a> {
    fn of(call: &'a Call) -> Self {
        DialogIds {
            call_id: &call.key.0,
            local_party: &call.local_party,
            local_tag: &call.local_tag,
            remote_party: &call.remote_party,
            remote_target: &call.remote_target,
            route_set: &call.route_set,
        }
    }
}

/// Where requests in the dialog go (RFC 3261 §12.2.1.1, §8.1.2). Inbound:
/// back over the INVITE's flow (flow reuse). Outbound: the first Route, else
/// the remote target, when it names an IP address over UDP; else the
/// INVITE's destination.
fn next_hop(call: &Call) -> Peer {
    if !call.outbound {
        return call.peer;
    }
    next_hop_of(&call.route_set, &call.remote_target, call.peer)
}

fn next_hop_of(route_set: &[String], remote_target: &str, fallback: Peer) -> Peer {
    let uri = route_set.first().map_or(remote_target, String::as_str);
    match uri_destination(uri) {
        Ok((addr, Transport::Udp)) if fallback.transport == Transport::Udp => Peer::udp(addr),
        _ => fallback,
    }
}

impl Endpoint {
    /// A new endpoint with no calls.
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpoint {
            guard: Guard::new(cfg.guard.clone()),
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
                            self.reply_stateless_with(peer, &req, 403, "Forbidden", &[]);
                            return;
                        }
                        RequestVerdict::Drop => return,
                    }
                }
                self.on_request(now, peer, *req)
            }
            Ok(Inbound::Response(resp)) => self.on_response(now, *resp),
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
                    // Ordinary for scanners and odd clients: counted, not worth a warning.
                    debug!(%peer, code, %reason, "method not served");
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
                self.send(peer, data);
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

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.guard.poll_timeout().is_some_and(|t| t <= now) {
            self.guard.handle_timeout(now);
        }
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
        let call = self.timers.peek().map(|Reverse(e)| e.at);
        match (call, self.guard.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
            ep.send(c.invite.peer, data);
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
    ///
    /// An outbound call not answered yet is cancelled (CANCEL, RFC 3261 §9.1;
    /// sent once a provisional response has arrived) and then fails with
    /// [`SipEvent::OutboundFailed`] (487) when the INVITE's final response
    /// arrives; should a 2xx win the race, it is ACKed and BYE sent at once.
    pub fn hangup(&mut self, now: Instant, call: &CallKey) -> Result<(), SipError> {
        self.with_call(call, |ep, c| {
            match c.phase {
                Phase::Early if c.outbound => {
                    if let Some(mut uac) = c.uac.take() {
                        ep.start_cancel(now, c, &mut uac, HUNG_UP);
                        c.uac = Some(uac);
                    }
                }
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
        let span = info_span!("call", call_id = %key);
        let _enter = span.enter();
        let peer = Peer::udp(addr);
        let rtp = if req.local_rtp.ip().is_unspecified() {
            SocketAddr::new(self.cfg.contact_addr.ip(), req.local_rtp.port())
        } else {
            req.local_rtp
        };
        let local = LocalSession {
            sess_id: fastrand::u64(1..1 << 40),
            version: 1,
            rtp,
        };
        let local_tag = random_token(10);
        let local_party = format!("{display}<sip:{}@{}>", req.from_user, self.cfg.contact_addr);
        let to = format!("<{target}>");
        let branch = new_branch();
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            peer.transport, self.cfg.contact_addr
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
            ("Contact", self.contact(peer.transport)),
            ("Allow", ALLOW.to_string()),
            ("User-Agent", self.cfg.user_agent.clone()),
        ];
        let invite = build_request(
            "INVITE",
            target,
            &headers,
            Some(("application/sdp", body.as_bytes())),
        );
        let t1 = self.cfg.t1;
        let uac = Uac {
            state: UacState::Calling,
            branch: branch.clone(),
            cseq,
            request_uri: target.to_string(),
            via,
            to: to.clone(),
            invite: invite.clone(),
            peer,
            retransmit_at: (!peer.transport.is_reliable()).then(|| now + t1),
            interval: t1,
            timer_b: Some(now + t1 * 64),
            // An absurdly long timeout means none (no overflow panic).
            ring_deadline: now.checked_add(req.ring_timeout),
            cancel: None,
            cancel_pending: false,
            cancel_deadline: None,
            reported: Vec::new(),
            early_sdp: None,
            local,
            ack: None,
            ack_until: None,
        };
        let call = Call {
            key: key.clone(),
            span: span.clone(),
            peer,
            outbound: true,
            uac: Some(Box::new(uac)),
            phase: Phase::Early,
            announced: true,
            ended: false,
            local_tag,
            remote_tag: None,
            remote_party: to,
            local_party,
            remote_target: target.to_string(),
            route_set: Vec::new(),
            remote_cseq: 0,
            local_cseq: cseq,
            // Stands in for the INVITE server transaction of re-INVITEs the
            // remote party may send once the dialog exists.
            invite: InviteTx {
                branch: String::new(),
                peer,
                cseq: 0,
                reply: ReplyHeaders {
                    vias: Vec::new(),
                    from: String::new(),
                    to: String::new(),
                    to_has_tag: true,
                    call_id: key.0.to_string(),
                    cseq: String::new(),
                },
                record_route: Vec::new(),
                is_reinvite: true,
                last_response: None,
                final_code: Some(200),
                acked: true,
                retransmit_at: None,
                interval: t1,
                ack_deadline: None,
            },
            remote_media: None,
            local: None,
            client: Vec::new(),
            referred: false,
            bye_after_ack: false,
            reap_at: None,
            scheduled: None,
            edge: None,
        };
        self.live += 1;
        info!(%target, %peer, %rtp, "outbound INVITE sent");
        self.send(peer, invite);
        self.put_back(call);
        Ok(key)
    }

    /// A message to `peer` could not be sent (the shell's send failed).
    /// Outbound INVITEs to it still waiting for any response fail with 503
    /// (RFC 3261 §8.1.3.1, §17.1.1.2); anything else is left to its timers.
    pub fn handle_transport_error(&mut self, now: Instant, peer: Peer) {
        let keys: Vec<CallKey> = self
            .calls
            .values()
            .filter(|c| {
                c.uac
                    .as_ref()
                    .is_some_and(|u| u.state == UacState::Calling && u.peer == peer)
            })
            .map(|c| c.key.clone())
            .collect();
        for key in keys {
            let _ = self.with_call(&key, |ep, c| {
                if let Some(uac) = c.uac.as_mut() {
                    uac.state = UacState::Terminated;
                }
                warn!(%peer, "outbound INVITE could not be sent");
                ep.fail_outbound(
                    now,
                    c,
                    503,
                    "Service Unavailable (transport error)".to_string(),
                );
                Ok(())
            });
        }
    }

    /// While draining, new INVITEs get 503 Service Unavailable.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Calls announced by `Incoming` or placed by `originate` and not yet
    /// `Ended` (or `OutboundFailed`).
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
        if let Some((ip, unacked)) = call.edge.take() {
            self.guard.call_ended(ip, unacked);
        }
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
        self.linger(now, call);
    }

    /// Keeps a finished call's state long enough to absorb retransmissions
    /// (Timers D/H/I/J/K).
    fn linger(&self, now: Instant, call: &mut Call) {
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
            headers.push(("Contact", self.contact(call.invite.peer.transport)));
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
        self.send(call.invite.peer, data);
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
        call.invite.retransmit_at =
            (!call.invite.peer.transport.is_reliable()).then(|| now + self.cfg.t1);
        call.invite.ack_deadline = Some(now + self.cfg.t1 * 64);
        self.send(call.invite.peer, data);
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
        let branch = new_branch();
        let hop = next_hop(call);
        let data = self.dialog_request(
            &DialogIds::of(call),
            hop,
            &method,
            call.local_cseq,
            &branch,
            extra,
        );
        call.client.retain(|t| t.method != method);
        call.client.push(ClientTx {
            method,
            branch,
            peer: hop,
            data: data.clone(),
            retransmit_at: (!hop.transport.is_reliable()).then(|| now + self.cfg.t1),
            interval: self.cfg.t1,
            deadline: now + self.cfg.t1 * 64,
        });
        self.send(hop, data);
    }

    /// A request within a dialog (RFC 3261 §12.2.1.1), also the ACK for a
    /// 2xx (§13.2.2.4: the INVITE's CSeq number, a new branch).
    fn dialog_request(
        &self,
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
                hop.transport, self.cfg.contact_addr
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
        headers.push(("User-Agent", self.cfg.user_agent.clone()));
        build_request(method.as_str(), d.remote_target, &headers, None)
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
            if call.outbound {
                // Our own outbound INVITE came back to us.
                self.reply_stateless(peer, &req, 482);
                return;
            }
            if call.invite.branch == req.branch {
                // RFC 3261 §17.2.1: a retransmitted INVITE gets the last response again.
                let data = match &call.invite.last_response {
                    Some(d) => d.clone(),
                    None => self.invite_response(call, 100, None, &[], None),
                };
                let to = call.invite.peer;
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

        if !self.draining
            && let Err(r) = self.guard.admit_call(now, peer.addr.ip(), self.live)
        {
            // Stateless: a refused INVITE leaves no transaction behind.
            let retry = [("Retry-After", r.retry_after.to_string())];
            self.reply_stateless_with(peer, &req, 503, r.reason, &retry);
            return;
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
            outbound: false,
            uac: None,
            phase: Phase::Early,
            announced: false,
            ended: false,
            local_tag: random_token(10),
            remote_tag: req.from.tag.clone(),
            remote_party: req.reply.from.clone(),
            local_party: req.reply.to.clone(),
            remote_target: req.contact.clone().unwrap_or_default(),
            route_set: req.record_route.clone(),
            remote_cseq: req.cseq,
            local_cseq: 0,
            invite: InviteTx {
                branch: req.branch.clone(),
                peer,
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
            edge: None,
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
                if self.guard.call_started(now, peer.addr.ip()) {
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
        self.reply_stateless_with(peer, req, code, reason_phrase(code), &[]);
    }

    /// [`Self::reply_stateless`] with a reason phrase and extra headers.
    /// Never answers an ACK (RFC 3261 §17).
    fn reply_stateless_with(
        &mut self,
        peer: Peer,
        req: &Request,
        code: u16,
        reason: &str,
        extra: &[(&str, String)],
    ) {
        if req.method == Method::Ack {
            return;
        }
        let tag = random_token(10);
        let data = build_response(
            &req.reply,
            &peer,
            &ResponseSpec {
                code,
                reason,
                to_tag: Some(&tag),
                record_route: &[],
                extra,
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
                let to = call.invite.peer;
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
                peer,
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
                if let Some((ip, unacked)) = c.edge.as_mut()
                    && *unacked
                {
                    *unacked = false;
                    ep.guard.call_acked(*ip);
                }
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
        let invite = !matched
            && resp.cseq_method == Method::Invite.as_str()
            && self.calls.get(&key).is_some_and(|c| {
                c.uac
                    .as_ref()
                    .is_some_and(|u| u.branch == resp.branch && u.cseq == resp.cseq)
            });
        if invite {
            let _ = self.with_call(&key, |ep, c| {
                if let Some(mut uac) = c.uac.take() {
                    ep.on_invite_response(now, c, &mut uac, resp);
                    c.uac = Some(uac);
                }
                Ok(())
            });
            return;
        }
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

    /// A response to our outbound INVITE (RFC 3261 §17.1.1.2, §13.2.2).
    fn on_invite_response(&mut self, now: Instant, c: &mut Call, uac: &mut Uac, resp: Response) {
        match resp.code {
            100..=199 => self.on_provisional(now, c, uac, resp),
            200..=299 => self.on_invite_2xx(now, c, uac, resp),
            _ => self.on_invite_failure(now, c, uac, resp),
        }
    }

    fn on_provisional(&mut self, now: Instant, c: &mut Call, uac: &mut Uac, resp: Response) {
        if !matches!(uac.state, UacState::Calling | UacState::Proceeding) {
            debug!(code = resp.code, "late provisional response ignored");
            return;
        }
        if uac.state == UacState::Calling {
            // A provisional response stops Timer A, and Timer B no longer applies.
            uac.state = UacState::Proceeding;
            uac.retransmit_at = None;
            uac.timer_b = None;
        }
        if uac.cancel_pending {
            self.send_cancel(now, c, uac);
        }
        if !resp.body.is_empty() && is_sdp(resp.content_type.as_deref()) {
            uac.early_sdp = Some(resp.body);
        }
        if resp.code > 100 && uac.cancel.is_none() && !c.ended && !uac.reported.contains(&resp.code)
        {
            uac.reported.push(resp.code);
            info!(code = resp.code, "outbound call ringing");
            self.events.push_back(SipEvent::Ringing {
                call: c.key.clone(),
                code: resp.code,
            });
        }
    }

    fn on_invite_2xx(&mut self, now: Instant, c: &mut Call, uac: &mut Uac, resp: Response) {
        match uac.state {
            UacState::Calling | UacState::Proceeding => {}
            UacState::Accepted if resp.to_tag == c.remote_tag => {
                // RFC 3261 §13.2.2.4: every 2xx retransmission gets the ACK again.
                match &uac.ack {
                    Some((peer, ack)) if uac.ack_until.is_some_and(|u| now < u) => {
                        debug!("2xx retransmission; ACK resent");
                        self.send(*peer, ack.clone());
                    }
                    _ => debug!("late 2xx retransmission ignored"),
                }
                return;
            }
            UacState::Accepted => {
                self.refuse_forked_2xx(uac, &c.key, &c.local_party, &c.local_tag, &resp);
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
        uac.state = UacState::Accepted;
        uac.retransmit_at = None;
        uac.timer_b = None;
        uac.ring_deadline = None;
        uac.cancel_deadline = None;
        uac.cancel_pending = false;
        // RFC 3261 §12.1.2: the dialog as the UAC sees it.
        c.remote_tag = resp.to_tag.clone();
        c.remote_party = resp.to.clone();
        c.remote_target = resp
            .contact
            .clone()
            .unwrap_or_else(|| uac.request_uri.clone());
        c.route_set = resp.record_route.iter().rev().cloned().collect();
        let hop = next_hop(c);
        let ack = self.dialog_request(
            &DialogIds::of(c),
            hop,
            &Method::Ack,
            uac.cseq,
            &new_branch(),
            Vec::new(),
        );
        uac.ack = Some((hop, ack.clone()));
        uac.ack_until = Some(now + self.cfg.t1 * 64);
        self.send(hop, ack);
        if let Some(cause) = uac.cancel {
            // RFC 3261 §9.1: the 2xx won the race with our CANCEL.
            info!(code = resp.code, "2xx after our CANCEL; ACK and BYE");
            self.send_bye(now, c);
            self.fail_outbound(now, c, cause.code, cause.reason.to_string());
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
                self.events.push_back(SipEvent::OutboundAnswered {
                    call: c.key.clone(),
                    media,
                });
            }
            Err(why) => {
                warn!(%why, "unusable SDP answer; BYE");
                self.send_bye(now, c);
                self.fail_outbound(now, c, 488, format!("Not Acceptable Here ({why})"));
            }
        }
    }

    /// RFC 3261 §13.2.2.4: a 2xx from a second dialog (the INVITE forked)
    /// is ACKed and that dialog ended with a BYE, sent once.
    fn refuse_forked_2xx(
        &mut self,
        uac: &Uac,
        key: &CallKey,
        local_party: &str,
        local_tag: &str,
        resp: &Response,
    ) {
        warn!(to_tag = ?resp.to_tag, "2xx from a second dialog; ACK and BYE");
        let route_set: Vec<String> = resp.record_route.iter().rev().cloned().collect();
        let remote_target = resp.contact.as_deref().unwrap_or(&uac.request_uri);
        let d = DialogIds {
            call_id: &key.0,
            local_party,
            local_tag,
            remote_party: &resp.to,
            remote_target,
            route_set: &route_set,
        };
        let hop = next_hop_of(&route_set, remote_target, uac.peer);
        let ack = self.dialog_request(&d, hop, &Method::Ack, uac.cseq, &new_branch(), Vec::new());
        let bye = self.dialog_request(
            &d,
            hop,
            &Method::Bye,
            uac.cseq + 1,
            &new_branch(),
            Vec::new(),
        );
        self.send(hop, ack);
        self.send(hop, bye);
    }

    fn on_invite_failure(&mut self, now: Instant, c: &mut Call, uac: &mut Uac, resp: Response) {
        match uac.state {
            UacState::Calling | UacState::Proceeding => {}
            UacState::Completed => {
                // RFC 3261 §17.1.1.2: a retransmitted final response gets the ACK again.
                if let Some((peer, ack)) = &uac.ack {
                    debug!(
                        code = resp.code,
                        "final response retransmission; ACK resent"
                    );
                    self.send(*peer, ack.clone());
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
        let headers: Vec<(&str, String)> = vec![
            ("Via", uac.via.clone()),
            ("Max-Forwards", "70".to_string()),
            ("From", format!("{};tag={}", c.local_party, c.local_tag)),
            ("To", resp.to.clone()),
            ("Call-ID", c.key.0.to_string()),
            ("CSeq", format!("{} ACK", uac.cseq)),
            ("User-Agent", self.cfg.user_agent.clone()),
        ];
        let ack = build_request("ACK", &uac.request_uri, &headers, None);
        uac.state = UacState::Completed;
        uac.retransmit_at = None;
        uac.timer_b = None;
        uac.ring_deadline = None;
        uac.cancel_deadline = None;
        uac.cancel_pending = false;
        uac.ack = Some((uac.peer, ack.clone()));
        self.send(uac.peer, ack);
        let (code, reason) = match uac.cancel {
            Some(cause) if resp.code == 487 => (cause.code, cause.reason.to_string()),
            _ => (resp.code, resp.reason.clone()),
        };
        self.fail_outbound(now, c, code, reason);
    }

    /// Gives up on an unanswered outbound INVITE: CANCEL now if a provisional
    /// response has arrived, else once one does (RFC 3261 §9.1).
    fn start_cancel(&mut self, now: Instant, c: &mut Call, uac: &mut Uac, cause: CancelCause) {
        if uac.cancel.is_some() || !matches!(uac.state, UacState::Calling | UacState::Proceeding) {
            return;
        }
        uac.cancel = Some(cause);
        uac.ring_deadline = None;
        if uac.state == UacState::Proceeding {
            self.send_cancel(now, c, uac);
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
    fn send_cancel(&mut self, now: Instant, c: &mut Call, uac: &mut Uac) {
        uac.cancel_pending = false;
        let headers: Vec<(&str, String)> = vec![
            ("Via", uac.via.clone()),
            ("Max-Forwards", "70".to_string()),
            ("From", format!("{};tag={}", c.local_party, c.local_tag)),
            ("To", uac.to.clone()),
            ("Call-ID", c.key.0.to_string()),
            ("CSeq", format!("{} CANCEL", uac.cseq)),
            ("User-Agent", self.cfg.user_agent.clone()),
        ];
        let data = build_request("CANCEL", &uac.request_uri, &headers, None);
        let t1 = self.cfg.t1;
        c.client.retain(|t| t.method != Method::Cancel);
        c.client.push(ClientTx {
            method: Method::Cancel,
            branch: uac.branch.clone(),
            peer: uac.peer,
            data: data.clone(),
            retransmit_at: (!uac.peer.transport.is_reliable()).then(|| now + t1),
            interval: t1,
            deadline: now + t1 * 64,
        });
        // RFC 3261 §9.1: without a final response 64*T1 after the CANCEL, give up.
        uac.cancel_deadline = Some(now + t1 * 64);
        info!("CANCEL sent");
        self.send(uac.peer, data);
    }

    /// The outbound call was not established: reports `OutboundFailed`
    /// (once; nothing else of the call follows) and lets the state linger.
    fn fail_outbound(&mut self, now: Instant, c: &mut Call, code: u16, reason: String) {
        if c.phase != Phase::Ending {
            c.phase = Phase::Terminated;
        }
        c.client
            .retain(|t| matches!(t.method, Method::Bye | Method::Cancel));
        if !c.ended {
            c.ended = true;
            if c.announced {
                self.live = self.live.saturating_sub(1);
                info!(code, %reason, "outbound call failed");
                self.events.push_back(SipEvent::OutboundFailed {
                    call: c.key.clone(),
                    code,
                    reason,
                });
            }
        }
        self.linger(now, c);
    }

    /// Runs the due timers of an outbound INVITE (RFC 3261 §17.1.1.2, §9.1).
    fn on_uac_timeout(&mut self, now: Instant, c: &mut Call, uac: &mut Uac) {
        let due = |t: Option<Instant>| t.is_some_and(|at| at <= now);
        let cause_or = |uac: &Uac, code: u16, reason: &str| match uac.cancel {
            Some(cause) => (cause.code, cause.reason.to_string()),
            None => (code, reason.to_string()),
        };
        if uac.state == UacState::Calling && due(uac.timer_b) {
            warn!("no response to INVITE within 64*T1 (Timer B)");
            uac.state = UacState::Terminated;
            uac.retransmit_at = None;
            uac.timer_b = None;
            let (code, reason) = cause_or(uac, 408, "Request Timeout (no response)");
            self.fail_outbound(now, c, code, reason);
            return;
        }
        if uac.state == UacState::Calling
            && let Some(at) = uac.retransmit_at.filter(|at| *at <= now)
        {
            // Timer A: doubles without the T2 cap.
            uac.interval *= 2;
            let n = at + uac.interval;
            uac.retransmit_at = Some(if n <= now { now + uac.interval } else { n });
            self.send(uac.peer, uac.invite.clone());
        }
        let pending = matches!(uac.state, UacState::Calling | UacState::Proceeding);
        if pending && due(uac.ring_deadline) {
            info!("ring timeout; cancelling");
            uac.ring_deadline = None;
            self.start_cancel(now, c, uac, NO_ANSWER);
        }
        if uac.state == UacState::Proceeding && due(uac.cancel_deadline) {
            warn!("no final response 64*T1 after our CANCEL");
            uac.state = UacState::Terminated;
            uac.cancel_deadline = None;
            let (code, reason) = cause_or(uac, 408, "Request Timeout");
            self.fail_outbound(now, c, code, reason);
        }
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
        if let Some(mut uac) = c.uac.take() {
            self.on_uac_timeout(now, c, &mut uac);
            c.uac = Some(uac);
        }
        let t2 = self.cfg.t2;
        let next = |at: Instant, interval: Duration| {
            let n = at + interval;
            if n <= now { now + interval } else { n }
        };
        if let Some(at) = c.invite.retransmit_at
            && at <= now
        {
            if let Some(data) = c.invite.last_response.clone() {
                self.send(c.invite.peer, data);
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
                self.send(t.peer, t.data.clone());
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

/// A body we read as SDP: `application/sdp`, or no Content-Type at all.
fn is_sdp(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| ct.starts_with("application/sdp"))
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
