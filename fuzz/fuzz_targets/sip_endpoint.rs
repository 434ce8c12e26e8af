//! The sans-IO SIP endpoint (`hotline_sip::Endpoint`): arbitrary datagrams
//! and TCP byte streams from four sources, application commands and
//! simulated peer answers, with time advancing and every timer run.
//!
//! Input: records separated by four NUL bytes. A record's first byte is a
//! control byte: bits 0-1 the source, bit 2 TCP (the rest goes through that
//! connection's `TcpFramer`), bits 3-5 how far the clock moves first. A
//! record with nothing after the control byte is a command instead (bits
//! 3-7 pick it): answer, ring, reject, hang up, refer, originate, a
//! simulated peer response to our last request, a simulated in-dialog
//! request built from our last response, a transport error. The input's
//! first byte turns the gateway's default edge policy on.
//!
//! Beyond "no panic":
//! - a response fed in never makes the endpoint send a response;
//! - every response goes to a peer that sent us something; every request
//!   we send parses as a valid request (our own parser; REFER, which we do
//!   not serve, as 405);
//! - `active_calls()` equals the calls announced (`Incoming`, originate)
//!   minus those finished (`Ended`, `OutboundFailed`), and no call finishes
//!   twice or without having been announced;
//! - timers make progress (running what is due never loops);
//! - when the application hangs up every call and three minutes pass,
//!   no call is left.
#![no_main]

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_sip::{
    CallKey, Endpoint, EndpointConfig, GuardConfig, Inspected, Originate, Peer, SipEvent,
    TcpFramer, inspect,
};
use libfuzzer_sys::fuzz_target;

const SEP: &[u8] = b"\0\0\0\0";

const STEPS_MS: [u64; 8] = [0, 10, 100, 500, 2_000, 5_000, 33_000, 0];

struct Harness {
    ep: Endpoint,
    now: Instant,
    sources: [SocketAddr; 4],
    framers: [TcpFramer; 4],
    /// Peers that sent us something (responses may only go there).
    heard: HashSet<Peer>,
    /// Calls announced and not finished.
    live: HashSet<CallKey>,
    /// Calls finished (never announced again with the same key... except
    /// a new INVITE reusing a finished Call-ID, which is a new call).
    order: Vec<CallKey>,
    last_request: Option<(Peer, Vec<u8>)>,
    last_response: Option<(Peer, Vec<u8>)>,
    /// Hashes of the requests already parsed and found valid: a
    /// retransmission is the same bytes, and parsing it again on every
    /// timer of a three-minute run was half of each execution.
    checked: HashSet<u64>,
    originated: u32,
    cseq: u32,
}

impl Harness {
    fn new(guarded: bool) -> Self {
        let mut cfg = EndpointConfig::new(SocketAddr::from(([192, 0, 2, 10], 5060)));
        if guarded {
            cfg.guard = GuardConfig::default();
        }
        Harness {
            ep: Endpoint::new(cfg),
            now: Instant::now(),
            sources: [
                SocketAddr::from(([192, 0, 2, 1], 5060)),
                SocketAddr::from(([192, 0, 2, 1], 5070)),
                SocketAddr::from(([198, 51, 100, 7], 5060)),
                "[2001:db8::1]:5060".parse().unwrap(),
            ],
            framers: Default::default(),
            heard: HashSet::new(),
            live: HashSet::new(),
            order: Vec::new(),
            last_request: None,
            last_response: None,
            checked: HashSet::new(),
            originated: 0,
            cseq: 100,
        }
    }

    fn peer(&self, ctrl: u8) -> Peer {
        let i = usize::from(ctrl & 3);
        if ctrl & 4 != 0 {
            Peer::tcp(self.sources[i], i as u64 + 1)
        } else {
            Peer::udp(self.sources[i])
        }
    }

    /// Runs every timer due up to `until`.
    fn advance_to(&mut self, until: Instant) {
        let mut rounds = 0u32;
        while let Some(t) = self.ep.poll_timeout().filter(|t| *t <= until) {
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            self.drain(false);
            rounds += 1;
            assert!(rounds < 100_000, "timers do not make progress");
        }
        self.now = self.now.max(until);
    }

    /// Collects what the endpoint produced and checks it.
    fn drain(&mut self, after_response: bool) {
        while let Some(t) = self.ep.poll_transmit() {
            assert!(!t.data.is_empty(), "empty transmit");
            if t.data.starts_with(b"SIP/") {
                assert!(!after_response, "answered a response with a response");
                assert!(
                    t.data.starts_with(b"SIP/2.0 ")
                        && t.data
                            .get(8..11)
                            .is_some_and(|c| c.iter().all(u8::is_ascii_digit)),
                    "bad Status-Line"
                );
                assert!(
                    self.heard.contains(&t.peer),
                    "response to a peer that sent nothing: {}",
                    t.peer
                );
                self.last_response = Some((t.peer, t.data));
            } else {
                let mut hash = DefaultHasher::new();
                (&t.peer, &t.data).hash(&mut hash);
                if self.checked.insert(hash.finish()) {
                    match inspect(&t.data, t.peer) {
                        // REFER: valid, but a method we do not serve ourselves.
                        Inspected::Request { .. } | Inspected::Refused { code: 405, .. } => {}
                        other => panic!(
                            "we sent a request we would refuse ourselves: {other:?}\n{}",
                            String::from_utf8_lossy(&t.data)
                        ),
                    }
                }
                self.last_request = Some((t.peer, t.data));
            }
        }
        while let Some(ev) = self.ep.poll_event() {
            match &ev {
                SipEvent::Incoming(inc) => {
                    assert!(self.live.insert(inc.call.clone()), "call announced twice");
                    self.order.push(inc.call.clone());
                }
                SipEvent::Ended { call, .. } | SipEvent::OutboundFailed { call, .. } => {
                    assert!(self.live.remove(call), "unknown call finished: {call}");
                }
                other => {
                    assert!(
                        self.live.contains(other.call()),
                        "event for a call not live: {other:?}"
                    );
                }
            }
        }
        assert_eq!(
            self.ep.active_calls(),
            self.live.len(),
            "active_calls drifted"
        );
    }

    fn feed(&mut self, peer: Peer, data: &[u8]) {
        self.heard.insert(peer);
        // The parser reads a response only from a first line starting
        // "SIP/": checking that first spares most inputs a full parse.
        let is_response =
            data.starts_with(b"SIP/") && matches!(inspect(data, peer), Inspected::Response { .. });
        self.ep.handle_input(self.now, peer, data);
        self.drain(is_response);
    }

    fn input(&mut self, ctrl: u8, payload: &[u8]) {
        let peer = self.peer(ctrl);
        if ctrl & 4 == 0 {
            self.feed(peer, payload);
            return;
        }
        let i = usize::from(ctrl & 3);
        self.framers[i].push(payload);
        loop {
            match self.framers[i].pop() {
                Ok(Some(msg)) => self.feed(peer, &msg),
                Ok(None) => break,
                Err(_) => {
                    self.framers[i] = TcpFramer::new();
                    self.ep.handle_transport_error(self.now, peer);
                    self.drain(false);
                    break;
                }
            }
        }
    }

    fn target(&self, ctrl: u8) -> Option<CallKey> {
        let live: Vec<&CallKey> = self
            .order
            .iter()
            .filter(|c| self.live.contains(*c))
            .collect();
        live.get(usize::from(ctrl & 3) % live.len().max(1))
            .map(|c| (*c).clone())
    }

    fn command(&mut self, ctrl: u8) {
        let now = self.now;
        let rtp = SocketAddr::from(([192, 0, 2, 10], 30_000));
        match ctrl >> 3 {
            0..=3 => {
                if let Some(c) = self.target(ctrl) {
                    let _ = self.ep.answer(now, &c, rtp);
                }
            }
            4 => {
                if let Some(c) = self.target(ctrl) {
                    let _ = self.ep.ring(now, &c);
                }
            }
            5 => {
                if let Some(c) = self.target(ctrl) {
                    let _ = self.ep.reject(now, &c, 486);
                }
            }
            6 | 7 => {
                if let Some(c) = self.target(ctrl) {
                    let _ = self.ep.hangup(now, &c);
                }
            }
            8 => {
                if let Some(c) = self.target(ctrl) {
                    let _ = self.ep.refer(now, &c, "sip:200@192.0.2.5");
                }
            }
            9 => {
                self.originated += 1;
                let target = match ctrl & 3 {
                    0 => "sip:+15551234567@192.0.2.1:5060",
                    1 => "sip:+15551234567@192.0.2.1:5070",
                    2 => "sip:100@198.51.100.7",
                    _ => "sip:100@[2001:db8::1]:5060",
                };
                let req = Originate {
                    call_id: Some(format!("out-{}", self.originated)),
                    target: target.to_string(),
                    from_user: "hotline".to_string(),
                    from_display: Some("Hotline".to_string()),
                    local_rtp: rtp,
                    ring_timeout: Duration::from_secs(30),
                };
                if let Ok(key) = self.ep.originate(now, req) {
                    assert!(
                        self.live.insert(key.clone()),
                        "originated call already live"
                    );
                    self.order.push(key);
                }
            }
            10..=17 => {
                let code = [100, 180, 183, 200, 200, 486, 487, 401][usize::from(ctrl >> 3) - 10];
                if let Some((peer, req)) = self.last_request.clone()
                    && let Some(resp) = answer_to(&req, code, ctrl & 3)
                {
                    self.feed(peer, &resp);
                }
            }
            18..=26 => {
                let method = [
                    "ACK", "ACK", "BYE", "INFO", "INVITE", "CANCEL", "NOTIFY", "UPDATE", "OPTIONS",
                ][usize::from(ctrl >> 3) - 18];
                self.cseq += 1;
                if let Some((peer, resp)) = self.last_response.clone()
                    && let Some(req) = request_after(&resp, method, self.cseq, ctrl & 3)
                {
                    self.feed(peer, &req);
                }
            }
            27 => {
                let peer = self.peer(ctrl | 4);
                self.framers[usize::from(ctrl & 3)] = TcpFramer::new();
                self.ep.handle_transport_error(now, peer);
            }
            28 => self.ep.set_draining(ctrl & 1 == 1),
            _ => {
                let until = self.ep.poll_timeout().unwrap_or(now);
                self.advance_to(until);
            }
        }
        self.drain(false);
    }
}

/// The header lines of `msg` named `name` (long form, case-insensitive).
fn headers<'a>(head: &'a str, names: &[&str]) -> Vec<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| names.iter().any(|w| n.trim().eq_ignore_ascii_case(w)))
        })
        .collect()
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// A peer's response to one of our requests.
fn answer_to(req: &[u8], code: u16, variant: u8) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(req);
    let head = text.split("\r\n\r\n").next()?;
    let mut out = format!("SIP/2.0 {code} Whatever\r\n");
    for h in headers(head, &["via", "from", "call-id", "cseq"]) {
        out.push_str(h);
        out.push_str("\r\n");
    }
    for h in headers(head, &["to"]) {
        out.push_str(h);
        if code > 100 && !h.contains("tag=") {
            out.push_str(if variant & 1 == 0 {
                ";tag=peer1"
            } else {
                ";tag=peer2"
            });
        }
        out.push_str("\r\n");
    }
    out.push_str("Contact: <sip:peer@192.0.2.1:5060>\r\n");
    if code == 401 {
        out.push_str("WWW-Authenticate: Digest realm=\"x\", nonce=\"n\"\r\n");
    }
    let invite = head.starts_with("INVITE ");
    if invite && (code == 200 || code == 183) && variant & 2 == 0 {
        out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        ));
    } else {
        out.push_str("Content-Length: 0\r\n\r\n");
    }
    Some(out.into_bytes())
}

/// A peer's request in the dialog (or transaction) of one of our responses.
fn request_after(resp: &[u8], method: &str, cseq: u32, variant: u8) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(resp);
    let head = text.split("\r\n\r\n").next()?;
    let via = headers(head, &["via"]).into_iter().next()?;
    let cseq_line = headers(head, &["cseq"]).into_iter().next()?;
    let orig_cseq: u32 = cseq_line.split_whitespace().nth(1)?.parse().ok()?;
    // ACK and CANCEL reuse the INVITE's branch and CSeq number; the others
    // are new transactions.
    let same_txn = matches!(method, "ACK" | "CANCEL") && variant & 1 == 0;
    let via = if same_txn {
        via.to_string()
    } else {
        format!("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfz{cseq}")
    };
    let n = if same_txn { orig_cseq } else { cseq };
    let mut out = format!("{method} sip:hotline@192.0.2.10:5060 SIP/2.0\r\n{via}\r\n");
    for h in headers(head, &["from", "to", "call-id"]) {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "CSeq: {n} {method}\r\nMax-Forwards: 70\r\nContact: <sip:peer@192.0.2.1:5060>\r\n"
    ));
    match method {
        "INVITE" | "UPDATE" if variant & 2 == 0 => out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        )),
        "INFO" => {
            let body = "Signal=5\r\nDuration=160\r\n";
            out.push_str(&format!(
                "Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        "NOTIFY" => {
            let body = "SIP/2.0 200 OK\r\n";
            out.push_str(&format!(
                "Event: refer\r\nSubscription-State: active\r\nContent-Type: message/sipfrag\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        _ => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    Some(out.into_bytes())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut h = Harness::new(flags & 1 == 1);
    let mut records = 0;
    let mut rest = rest;
    while !rest.is_empty() && records < 64 {
        records += 1;
        let (record, tail) = match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => (&rest[..i], &rest[i + SEP.len()..]),
            None => (rest, &[][..]),
        };
        rest = tail;
        let Some((&ctrl, payload)) = record.split_first() else {
            continue;
        };
        let step = usize::from((ctrl >> 3) & 7);
        let until = if step == 7 {
            h.ep.poll_timeout().unwrap_or(h.now)
        } else {
            h.now + Duration::from_millis(STEPS_MS[step])
        };
        if payload.is_empty() {
            h.command(ctrl);
        } else {
            h.advance_to(until);
            h.input(ctrl, payload);
        }
    }
    // Liveness: the application hangs up everything; three minutes later
    // nothing is left (BYE answered or timed out, unanswered calls rejected).
    let live: Vec<CallKey> = h.live.iter().cloned().collect();
    for c in &live {
        let _ = h.ep.hangup(h.now, c);
        h.drain(false);
    }
    let until = h.now + Duration::from_secs(180);
    h.advance_to(until);
    assert!(
        h.live.is_empty(),
        "calls left three minutes after hanging up: {:?}",
        h.live
    );
});
