//! Outbound calls (UAC INVITE) through the sans-IO endpoint, with literal
//! SIP responses from a pretend trunk and a fake clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_sip::{
    CallKey, Codec, Direction, EndReason, Endpoint, EndpointConfig, Originate, Peer, SipError,
    SipEvent,
};

const T1: Duration = Duration::from_millis(500);
const TRUNK: &str = "198.51.100.20:5090";
const TARGET: &str = "sip:+15551234567@198.51.100.20:5090";
/// The callee's Contact in our tests' 2xx: the ACK and BYE go there.
const CONTACT: &str = "sip:bob@203.0.113.9:5070";
const ANSWER: &str = "v=0\r\no=bob 7 7 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n\
    m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
    a=sendrecv\r\n";

fn trunk() -> Peer {
    Peer::udp(TRUNK.parse().unwrap())
}

fn callee() -> Peer {
    Peer::udp("203.0.113.9:5070".parse().unwrap())
}

fn request(ring_timeout: Duration) -> Originate {
    Originate {
        call_id: None,
        target: TARGET.to_string(),
        from_user: "hotline".to_string(),
        from_display: Some("Hotline \"Callback\"".to_string()),
        local_rtp: "0.0.0.0:30000".parse().unwrap(),
        ring_timeout,
    }
}

struct H {
    ep: Endpoint,
    now: Instant,
    t0: Instant,
}

impl H {
    fn new() -> Self {
        let now = Instant::now();
        H {
            ep: Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap())),
            now,
            t0: now,
        }
    }

    /// Originates with a 30 s ring timeout; returns the key and the INVITE.
    fn originate(&mut self) -> (CallKey, String) {
        self.originate_with(Duration::from_secs(30))
    }

    fn originate_with(&mut self, ring_timeout: Duration) -> (CallKey, String) {
        let key = self.ep.originate(self.now, request(ring_timeout)).unwrap();
        let out = self.out();
        assert_eq!(out.len(), 1, "{out:?}");
        let (peer, invite) = out.into_iter().next().unwrap();
        assert_eq!(peer, trunk());
        (key, invite)
    }

    fn out(&mut self) -> Vec<(Peer, String)> {
        std::iter::from_fn(|| self.ep.poll_transmit())
            .map(|t| (t.peer, String::from_utf8_lossy(&t.data).into_owned()))
            .collect()
    }

    fn input_from(&mut self, peer: Peer, msg: &str) -> Vec<(Peer, String)> {
        self.ep.handle_input(self.now, peer, msg.as_bytes());
        self.out()
    }

    /// A message from the trunk.
    fn input(&mut self, msg: &str) -> Vec<(Peer, String)> {
        self.input_from(trunk(), msg)
    }

    fn events(&mut self) -> Vec<SipEvent> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// Advances the clock to `at` (offset from start), running timers on the way.
    fn advance_to(&mut self, at: Duration) -> Vec<(Duration, Peer, String)> {
        let end = self.t0 + at;
        let mut out = Vec::new();
        while let Some(d) = self.ep.poll_timeout() {
            if d > end {
                break;
            }
            self.now = self.now.max(d);
            self.ep.handle_timeout(self.now);
            for (p, m) in self.out() {
                out.push((self.now - self.t0, p, m));
            }
        }
        self.now = end;
        out
    }

    /// Originate, 180, 200 (Contact [`CONTACT`], `record_route` lines) → ACK.
    /// Returns the key, the INVITE and the ACK.
    fn answered(&mut self, record_route: &str) -> (CallKey, String, String) {
        let (key, invite) = self.originate();
        assert!(
            self.input(&response(&invite, 180, "Ringing", ""))
                .is_empty()
        );
        let out = self.input(&ok(&invite, record_route));
        assert_eq!(out.len(), 1, "{out:?}");
        let ev = self.events();
        assert!(
            matches!(
                ev.as_slice(),
                [
                    SipEvent::Ringing { code: 180, .. },
                    SipEvent::OutboundAnswered { .. }
                ]
            ),
            "{ev:?}"
        );
        let ack = out.into_iter().next().unwrap().1;
        (key, invite, ack)
    }
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let head = msg.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
        .collect()
}

fn start_line(msg: &str) -> &str {
    msg.split("\r\n").next().unwrap()
}

fn branch_of(msg: &str) -> String {
    header(msg, "Via")
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn tag_of(value: &str) -> &str {
    value.split(";tag=").nth(1).unwrap()
}

/// The callee's tag in our responses.
const BOB_TAG: &str = "bobtag";

/// The trunk's response to our request `req`, with the callee's To tag
/// (except for 100), `extra` header lines and an optional SDP body.
fn response_with(req: &str, code: u16, reason: &str, extra: &str, body: &str) -> String {
    let to = header(req, "To");
    let to = if code == 100 || to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag={BOB_TAG}")
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {};received=192.0.2.10\r\n{extra}From: {}\r\nTo: {to}\r\n\
         Call-ID: {}\r\nCSeq: {}\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        header(req, "Via"),
        header(req, "From"),
        header(req, "Call-ID"),
        header(req, "CSeq"),
        body.len()
    )
}

fn response(req: &str, code: u16, reason: &str, extra: &str) -> String {
    response_with(req, code, reason, extra, "")
}

/// 200 OK to our INVITE with Contact [`CONTACT`] and the SDP answer.
fn ok(invite: &str, record_route: &str) -> String {
    response_with(
        invite,
        200,
        "OK",
        &format!("{record_route}Contact: <{CONTACT}>\r\n"),
        ANSWER,
    )
}

/// A request from the callee in the dialog of our outbound call.
fn from_callee(invite: &str, method: &str, cseq: u32, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:hotline@192.0.2.10:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 203.0.113.9:5070;branch=z9hG4bK{method}{cseq}\r\n\
         From: {};tag={BOB_TAG}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <{CONTACT}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        header(invite, "To"),
        header(invite, "From"),
        header(invite, "Call-ID"),
        body.len()
    )
}

#[test]
fn invite_carries_an_offer_and_a_fresh_transaction() {
    let mut h = H::new();
    let (key, invite) = h.originate();
    assert_eq!(start_line(&invite), format!("INVITE {TARGET} SIP/2.0"));
    let via = header(&invite, "Via");
    assert!(
        via.starts_with("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK"),
        "{via}"
    );
    assert!(via.ends_with(";rport"));
    assert_eq!(header(&invite, "Call-ID"), key.0.as_ref());
    assert_eq!(header(&invite, "CSeq"), "1 INVITE");
    assert_eq!(header(&invite, "Max-Forwards"), "70");
    let from = header(&invite, "From");
    assert!(
        from.starts_with(r#""Hotline \"Callback\"" <sip:hotline@192.0.2.10:5060>;tag="#),
        "{from}"
    );
    assert_eq!(header(&invite, "To"), format!("<{TARGET}>"));
    assert_eq!(header(&invite, "Contact"), "<sip:hotline@192.0.2.10:5060>");
    assert_eq!(header(&invite, "Content-Type"), "application/sdp");
    let sdp = invite.split("\r\n\r\n").nth(1).unwrap();
    // The unspecified RTP address is replaced by the contact address.
    assert!(sdp.contains("c=IN IP4 192.0.2.10\r\n"), "{sdp}");
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"));
    assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"));
    assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    assert!(sdp.contains("a=ptime:20\r\na=sendrecv\r\n"));
    assert!(h.events().is_empty());
    assert_eq!(h.ep.active_calls(), 1);
    // A second call gets its own Call-ID, tag and branch.
    let (key2, invite2) = h.originate();
    assert_ne!(key, key2);
    assert_ne!(branch_of(&invite), branch_of(&invite2));
    assert_ne!(tag_of(from), tag_of(header(&invite2, "From")));
}

#[test]
fn the_application_may_choose_the_call_id() {
    let mut h = H::new();
    let req = Originate {
        call_id: Some("cb-42@hotline".to_string()),
        ..request(Duration::from_secs(30))
    };
    let key = h.ep.originate(h.now, req.clone()).unwrap();
    assert_eq!(key, CallKey::from("cb-42@hotline"));
    let invite = h.out().remove(0).1;
    assert_eq!(header(&invite, "Call-ID"), "cb-42@hotline");
    // Not twice while the first call exists.
    assert!(matches!(
        h.ep.originate(h.now, req),
        Err(SipError::InvalidOriginate(_))
    ));
    assert!(h.out().is_empty());
}

#[test]
fn ringing_then_answer_is_acked_with_a_new_branch() {
    let mut h = H::new();
    let (key, invite) = h.originate();
    // 100 stops Timer A without an event; 180 and 183 are reported once each.
    assert!(h.input(&response(&invite, 100, "Trying", "")).is_empty());
    assert!(h.events().is_empty());
    assert!(
        h.advance_to(Duration::from_secs(10)).is_empty(),
        "no retransmission after 1xx"
    );
    assert!(h.input(&response(&invite, 180, "Ringing", "")).is_empty());
    assert!(h.input(&response(&invite, 180, "Ringing", "")).is_empty());
    assert!(
        h.input(&response(&invite, 183, "Session Progress", ""))
            .is_empty()
    );
    assert_eq!(
        h.events(),
        vec![
            SipEvent::Ringing {
                call: key.clone(),
                code: 180
            },
            SipEvent::Ringing {
                call: key.clone(),
                code: 183
            },
        ]
    );

    let out = h.input(&ok(&invite, ""));
    assert_eq!(out.len(), 1, "{out:?}");
    let (peer, ack) = &out[0];
    // RFC 3261 §13.2.2.4: a new transaction to the remote target.
    assert_eq!(*peer, callee(), "the ACK goes to the Contact");
    assert_eq!(start_line(ack), format!("ACK {CONTACT} SIP/2.0"));
    assert_ne!(branch_of(ack), branch_of(&invite));
    assert_eq!(header(ack, "CSeq"), "1 ACK");
    assert_eq!(header(ack, "Call-ID"), header(&invite, "Call-ID"));
    assert_eq!(header(ack, "From"), header(&invite, "From"));
    assert_eq!(header(ack, "To"), format!("<{TARGET}>;tag={BOB_TAG}"));
    assert!(headers(ack, "Route").is_empty());
    let ev = h.events();
    let [SipEvent::OutboundAnswered { call, media }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(call, &key);
    assert_eq!(media.rtp_addr, "203.0.113.9:40000".parse().unwrap());
    assert_eq!(media.codec, Codec::Pcma);
    assert_eq!(media.payload_type, 8);
    assert_eq!(media.dtmf_payload_type, Some(101));
    assert_eq!(media.direction, Direction::SendRecv);

    // Each retransmitted 2xx gets the same ACK again, and nothing else happens.
    let again = h.input(&ok(&invite, ""));
    assert_eq!(again, out);
    assert!(h.events().is_empty());
    // The ACK is kept for 64*T1 only.
    h.advance_to(Duration::from_secs(10) + T1 * 65);
    assert!(h.input(&ok(&invite, "")).is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.ep.active_calls(), 1);
}

#[test]
fn busy_is_acked_in_the_transaction() {
    let mut h = H::new();
    let (key, invite) = h.originate();
    assert!(h.input(&response(&invite, 180, "Ringing", "")).is_empty());
    h.events();
    let out = h.input(&response(&invite, 486, "Busy Here", ""));
    assert_eq!(out.len(), 1, "{out:?}");
    let (peer, ack) = &out[0];
    assert_eq!(*peer, trunk());
    // RFC 3261 §17.1.1.3: same branch, the INVITE's Request-URI, the response's To.
    assert_eq!(start_line(ack), format!("ACK {TARGET} SIP/2.0"));
    assert_eq!(header(ack, "Via"), header(&invite, "Via"));
    assert_eq!(header(ack, "CSeq"), "1 ACK");
    assert_eq!(header(ack, "From"), header(&invite, "From"));
    assert_eq!(header(ack, "To"), format!("<{TARGET}>;tag={BOB_TAG}"));
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key.clone(),
            code: 486,
            reason: "Busy Here".to_string()
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
    // A retransmitted 486 gets the ACK again, without another event.
    assert_eq!(h.input(&response(&invite, 486, "Busy Here", "")), out);
    assert!(h.events().is_empty());
    // Late provisional or 2xx responses are ignored; hangup is a no-op.
    assert!(h.input(&response(&invite, 180, "Ringing", "")).is_empty());
    assert!(h.input(&ok(&invite, "")).is_empty());
    h.ep.hangup(h.now, &key).unwrap();
    assert!(h.out().is_empty());
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
    assert!(h.events().is_empty());
    // The state is reaped in the end.
    assert!(matches!(
        h.ep.hangup(h.now, &key),
        Err(SipError::UnknownCall(_))
    ));
}

#[test]
fn unanswered_invite_retransmits_then_times_out() {
    let mut h = H::new();
    let (key, invite) = h.originate_with(Duration::from_secs(120));
    let sent = h.advance_to(T1 * 64);
    // Timer A: T1, 2*T1, 4*T1, ... (no T2 cap) until Timer B at 64*T1.
    let times: Vec<Duration> = sent.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(
        times,
        [500, 1500, 3500, 7500, 15500, 31500].map(Duration::from_millis)
    );
    for (_, peer, m) in &sent {
        assert_eq!(*peer, trunk());
        assert_eq!(m, &invite);
    }
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key,
            code: 408,
            reason: "Request Timeout (no response)".to_string()
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
    assert!(h.advance_to(Duration::from_secs(200)).is_empty());
    assert!(h.events().is_empty());
    // A response after Timer B is dropped.
    assert!(h.input(&response(&invite, 486, "Busy Here", "")).is_empty());
}

#[test]
fn huge_ring_timeout_means_none() {
    let mut h = H::new();
    let (key, invite) = h.originate_with(Duration::MAX);
    assert!(h.input(&response(&invite, 180, "Ringing", "")).is_empty());
    h.events();
    assert!(h.advance_to(Duration::from_secs(3600)).is_empty());
    assert!(h.events().is_empty());
    h.ep.hangup(h.now, &key).unwrap();
    assert!(start_line(&h.out()[0].1).starts_with("CANCEL "));
}

#[test]
fn ring_timeout_cancels_with_the_invite_branch() {
    let mut h = H::new();
    let (key, invite) = h.originate_with(Duration::from_secs(20));
    assert!(h.input(&response(&invite, 180, "Ringing", "")).is_empty());
    h.events();
    let sent = h.advance_to(Duration::from_secs(20));
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (at, peer, cancel) = &sent[0];
    assert_eq!(*at, Duration::from_secs(20));
    assert_eq!(*peer, trunk());
    // RFC 3261 §9.1: the INVITE's Request-URI, Via (branch), From, To, CSeq number.
    assert_eq!(start_line(cancel), format!("CANCEL {TARGET} SIP/2.0"));
    assert_eq!(header(cancel, "Via"), header(&invite, "Via"));
    assert_eq!(header(cancel, "From"), header(&invite, "From"));
    assert_eq!(header(cancel, "To"), header(&invite, "To"));
    assert_eq!(header(cancel, "Call-ID"), header(&invite, "Call-ID"));
    assert_eq!(header(cancel, "CSeq"), "1 CANCEL");
    assert!(h.events().is_empty());
    // Timer E retransmits the CANCEL until it is answered.
    let re = h.advance_to(Duration::from_secs(20) + T1);
    assert_eq!(re.len(), 1);
    assert_eq!(&re[0].2, cancel);
    assert!(h.input(&response(cancel, 200, "OK", "")).is_empty());
    assert!(h.advance_to(Duration::from_secs(25)).is_empty());
    assert!(h.events().is_empty());
    // 487 for the INVITE: ACKed in its transaction, then the failure.
    let out = h.input(&response(&invite, 487, "Request Terminated", ""));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(start_line(&out[0].1), format!("ACK {TARGET} SIP/2.0"));
    assert_eq!(branch_of(&out[0].1), branch_of(&invite));
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key,
            code: 480,
            reason: "no answer".to_string()
        }]
    );
    assert!(h.advance_to(Duration::from_secs(120)).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn cancel_without_final_response_gives_up_after_64_t1() {
    let mut h = H::new();
    let (key, invite) = h.originate_with(Duration::from_secs(5));
    assert!(
        h.input(&response(&invite, 183, "Session Progress", ""))
            .is_empty()
    );
    h.events();
    let sent = h.advance_to(Duration::from_secs(5));
    assert!(start_line(&sent[0].2).starts_with("CANCEL "));
    h.input(&response(&sent[0].2, 200, "OK", ""));
    // No 487 ever: the call fails 64*T1 after the CANCEL.
    h.advance_to(Duration::from_secs(5) + T1 * 64 - Duration::from_millis(1));
    assert!(h.events().is_empty());
    h.advance_to(Duration::from_secs(5) + T1 * 64);
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key,
            code: 480,
            reason: "no answer".to_string()
        }]
    );
}

#[test]
fn answer_racing_the_cancel_is_acked_and_byed() {
    let mut h = H::new();
    let (key, invite) = h.originate();
    assert!(h.input(&response(&invite, 180, "Ringing", "")).is_empty());
    h.events();
    h.ep.hangup(h.now, &key).unwrap();
    let out = h.out();
    assert_eq!(out.len(), 1);
    let cancel = out[0].1.clone();
    assert_eq!(start_line(&cancel), format!("CANCEL {TARGET} SIP/2.0"));
    assert_eq!(branch_of(&cancel), branch_of(&invite));
    // hangup again is a no-op.
    h.ep.hangup(h.now, &key).unwrap();
    assert!(h.out().is_empty());
    // The callee answered before the CANCEL arrived.
    let out = h.input(&ok(&invite, ""));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].0, callee());
    assert_eq!(start_line(&out[0].1), format!("ACK {CONTACT} SIP/2.0"));
    assert_eq!(out[1].0, callee());
    let bye = &out[1].1;
    assert_eq!(start_line(bye), format!("BYE {CONTACT} SIP/2.0"));
    assert_eq!(header(bye, "CSeq"), "2 BYE");
    assert_eq!(header(bye, "To"), format!("<{TARGET}>;tag={BOB_TAG}"));
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key.clone(),
            code: 487,
            reason: "cancelled".to_string()
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
    // The CANCEL's 200 and the BYE's 200 end it quietly.
    assert!(h.input(&response(&cancel, 200, "OK", "")).is_empty());
    assert!(
        h.input_from(callee(), &response(bye, 200, "OK", ""))
            .is_empty()
    );
    assert!(h.events().is_empty());
    assert!(h.advance_to(Duration::from_secs(120)).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn hangup_before_any_response_waits_for_a_provisional_one() {
    let mut h = H::new();
    let (key, invite) = h.originate();
    h.ep.hangup(h.now, &key).unwrap();
    // RFC 3261 §9.1: no CANCEL before a provisional response; the INVITE
    // is still retransmitted.
    assert!(h.out().is_empty());
    let sent = h.advance_to(T1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2, invite);
    let out = h.input(&response(&invite, 100, "Trying", ""));
    assert_eq!(out.len(), 1);
    assert_eq!(start_line(&out[0].1), format!("CANCEL {TARGET} SIP/2.0"));
    // Not reported as ringing once cancelled.
    assert!(h.input(&response(&invite, 180, "Ringing", "")).is_empty());
    assert!(h.events().is_empty());
    let out = h.input(&response(&invite, 487, "Request Terminated", ""));
    assert!(start_line(&out[0].1).starts_with("ACK "));
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key,
            code: 487,
            reason: "cancelled".to_string()
        }]
    );
}

#[test]
fn hangup_in_calling_state_fails_at_timer_b() {
    let mut h = H::new();
    let (key, _invite) = h.originate();
    h.ep.hangup(h.now, &key).unwrap();
    h.advance_to(T1 * 64);
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key,
            code: 487,
            reason: "cancelled".to_string()
        }]
    );
}

#[test]
fn answer_without_a_usable_codec_is_acked_then_byed() {
    let mut h = H::new();
    let (key, invite) = h.originate();
    let g729 = "v=0\r\no=bob 7 7 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n\
                m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let resp = response_with(
        &invite,
        200,
        "OK",
        &format!("Contact: <{CONTACT}>\r\n"),
        g729,
    );
    let out = h.input(&resp);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(start_line(&out[0].1).starts_with("ACK "));
    assert!(start_line(&out[1].1).starts_with("BYE "));
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key.clone(),
            code: 488,
            reason: "Not Acceptable Here (no common codec)".to_string()
        }]
    );
    // The BYE is retransmitted, then its 200 ends it silently.
    let re = h.advance_to(T1);
    assert_eq!(re.len(), 1);
    assert_eq!(re[0].2, out[1].1);
    assert!(
        h.input_from(callee(), &response(&out[1].1, 200, "OK", ""))
            .is_empty()
    );
    assert!(h.events().is_empty());

    // A 2xx without SDP is refused the same way.
    let (key, invite) = h.originate();
    let out = h.input(&response(
        &invite,
        200,
        "OK",
        &format!("Contact: <{CONTACT}>\r\n"),
    ));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key,
            code: 488,
            reason: "Not Acceptable Here (no SDP answer)".to_string()
        }]
    );
}

#[test]
fn remote_bye_after_answer_ends_the_call() {
    let mut h = H::new();
    let (key, invite, _ack) = h.answered("");
    // DTMF by INFO works as in inbound dialogs.
    let info = from_callee(
        &invite,
        "INFO",
        1,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=7\r\nDuration=160\r\n",
    );
    let out = h.input_from(callee(), &info);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, callee(), "responses go to the request's source");
    assert_eq!(start_line(&out[0].1), "SIP/2.0 200 OK");
    assert_eq!(
        h.events(),
        vec![SipEvent::Digit {
            call: key.clone(),
            digit: '7',
            duration_ms: Some(160)
        }]
    );
    let out = h.input_from(callee(), &from_callee(&invite, "BYE", 2, "", ""));
    assert_eq!(out.len(), 1);
    assert_eq!(start_line(&out[0].1), "SIP/2.0 200 OK");
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key.clone(),
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
    h.ep.hangup(h.now, &key).unwrap();
    assert!(h.out().is_empty());
    assert!(h.advance_to(Duration::from_secs(120)).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn hangup_after_answer_sends_bye_along_the_route_set() {
    let mut h = H::new();
    let rr = "Record-Route: <sip:198.51.100.2;lr>\r\nRecord-Route: <sip:198.51.100.1:5061;lr>\r\n";
    let (key, invite, ack) = h.answered(rr);
    // RFC 3261 §12.1.2: the UAC's route set is Record-Route reversed.
    assert_eq!(
        headers(&ack, "Route"),
        ["<sip:198.51.100.1:5061;lr>", "<sip:198.51.100.2;lr>"]
    );
    h.ep.hangup(h.now, &key).unwrap();
    let out = h.out();
    assert_eq!(out.len(), 1);
    let (peer, bye) = &out[0];
    assert_eq!(
        *peer,
        Peer::udp("198.51.100.1:5061".parse::<SocketAddr>().unwrap()),
        "to the first route"
    );
    assert_eq!(start_line(bye), format!("BYE {CONTACT} SIP/2.0"));
    assert_eq!(
        headers(bye, "Route"),
        ["<sip:198.51.100.1:5061;lr>", "<sip:198.51.100.2;lr>"]
    );
    assert_eq!(header(bye, "From"), header(&invite, "From"));
    assert_eq!(header(bye, "To"), format!("<{TARGET}>;tag={BOB_TAG}"));
    assert_eq!(header(bye, "CSeq"), "2 BYE");
    assert_ne!(branch_of(bye), branch_of(&ack));
    assert!(h.events().is_empty());
    assert!(h.input(&response(bye, 200, "OK", "")).is_empty());
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::LocalBye
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn reinvite_from_the_callee_is_answered() {
    let mut h = H::new();
    let (key, invite, _) = h.answered("");
    let hold = ANSWER.replace("a=sendrecv", "a=sendonly");
    let reinvite = from_callee(
        &invite,
        "INVITE",
        1,
        "Content-Type: application/sdp\r\n",
        &hold,
    );
    let out = h.input_from(callee(), &reinvite);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, callee());
    let ok = &out[0].1;
    assert_eq!(start_line(ok), "SIP/2.0 200 OK");
    assert!(ok.contains("m=audio 30000 RTP/AVP 8 101\r\n"), "{ok}");
    assert!(ok.contains("a=recvonly\r\n"));
    let ev = h.events();
    let [SipEvent::MediaChanged { call, media }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(call, &key);
    assert_eq!(media.direction, Direction::SendOnly);
    let ack = from_callee(&invite, "ACK", 1, "", "");
    assert!(h.input_from(callee(), &ack).is_empty());
    // Transfer works in an outbound dialog too.
    h.ep.refer(h.now, &key, "sip:agent@10.0.0.5").unwrap();
    let out = h.out();
    assert_eq!(start_line(&out[0].1), format!("REFER {CONTACT} SIP/2.0"));
    assert_eq!(header(&out[0].1, "CSeq"), "2 REFER");
}

#[test]
fn stray_and_garbage_responses_are_ignored() {
    let mut h = H::new();
    let (key, invite) = h.originate();
    let garbage: Vec<String> = vec![
        "SIP/2.0 200 OK\r\n\r\n".to_string(),
        "SIP/2.0 banana\r\nVia: x\r\n\r\n".to_string(),
        "SIP/2.0 180 Ringing\r\nCall-ID: x\r\n".to_string(),
        // Another branch.
        response(&invite, 200, "OK", "").replace(&branch_of(&invite), "z9hG4bKother"),
        // The INVITE's branch with another method.
        response(&invite, 200, "OK", "").replace("1 INVITE", "1 BYE"),
        // The INVITE's branch with another CSeq number.
        response(&invite, 486, "Busy Here", "").replace("1 INVITE", "2 INVITE"),
        // Another Call-ID.
        response(&invite, 486, "Busy Here", "").replace(key.0.as_ref(), "nope"),
        // Unframeable body.
        response(&invite, 486, "Busy Here", "").replace("Content-Length: 0", "Content-Length: 99"),
        String::from_utf8_lossy(&[0xff; 40]).into_owned(),
    ];
    for g in &garbage {
        assert!(h.input(g).is_empty(), "{g}");
    }
    let mut bytes = response(&invite, 180, "Ringing", "").into_bytes();
    bytes.truncate(40);
    h.ep.handle_input(h.now, trunk(), &bytes);
    assert!(h.out().is_empty());
    assert!(h.events().is_empty());
    // The transaction is untouched: still retransmitting, then it can succeed.
    assert_eq!(h.advance_to(T1).len(), 1);
    assert_eq!(h.input(&ok(&invite, "")).len(), 1);
    assert!(matches!(
        h.events().as_slice(),
        [SipEvent::OutboundAnswered { .. }]
    ));
}

#[test]
fn in_dialog_requests_before_the_answer_get_481() {
    let mut h = H::new();
    let (_key, invite) = h.originate();
    let out = h.input_from(callee(), &from_callee(&invite, "BYE", 1, "", ""));
    assert_eq!(out.len(), 1);
    assert!(out[0].1.starts_with("SIP/2.0 481 "));
    assert!(h.events().is_empty());
}

#[test]
fn our_invite_looping_back_is_refused() {
    let mut h = H::new();
    let (_key, invite) = h.originate();
    let out = h.input(&invite);
    assert_eq!(out.len(), 1);
    assert!(out[0].1.starts_with("SIP/2.0 482 "), "{}", out[0].1);
    assert!(h.events().is_empty());
}

#[test]
fn forked_second_answer_is_acked_and_byed() {
    let mut h = H::new();
    let (key, invite, _) = h.answered("");
    let other = ok(&invite, "")
        .replace(&format!("tag={BOB_TAG}"), "tag=carol")
        .replace(CONTACT, "sip:carol@203.0.113.77");
    let out = h.input(&other);
    assert_eq!(out.len(), 2, "{out:?}");
    let carol = Peer::udp("203.0.113.77:5060".parse().unwrap());
    assert_eq!(out[0].0, carol);
    assert_eq!(start_line(&out[0].1), "ACK sip:carol@203.0.113.77 SIP/2.0");
    assert_eq!(start_line(&out[1].1), "BYE sip:carol@203.0.113.77 SIP/2.0");
    assert!(header(&out[1].1, "To").ends_with(";tag=carol"));
    assert!(h.events().is_empty());
    // The first dialog is unaffected.
    h.ep.hangup(h.now, &key).unwrap();
    let bye = h.out();
    assert_eq!(bye[0].0, callee());
    assert!(header(&bye[0].1, "To").ends_with(&format!(";tag={BOB_TAG}")));
}

#[test]
fn transport_error_fails_the_call_with_503() {
    let mut h = H::new();
    let (key, _invite) = h.originate();
    // Some other peer's error does not matter.
    h.ep.handle_transport_error(h.now, callee());
    assert!(h.events().is_empty());
    h.ep.handle_transport_error(h.now, trunk());
    assert_eq!(
        h.events(),
        vec![SipEvent::OutboundFailed {
            call: key,
            code: 503,
            reason: "Service Unavailable (transport error)".to_string()
        }]
    );
    assert!(h.advance_to(Duration::from_secs(120)).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn unusable_requests_are_refused() {
    let mut h = H::new();
    let bad_target = |t: &str| Originate {
        target: t.to_string(),
        ..request(Duration::from_secs(30))
    };
    for t in [
        "",
        "sip:1000@trunk.example.com",
        "sip:1000@127.0.0.1:5090;transport=tcp",
        "sips:1000@127.0.0.1",
        "tel:+15551234567",
        "sip:10 00@127.0.0.1",
        "<sip:1000@127.0.0.1>",
        "sip:1000@127.0.0.1:0",
    ] {
        assert!(
            matches!(
                h.ep.originate(h.now, bad_target(t)),
                Err(SipError::InvalidOriginate(_))
            ),
            "{t}"
        );
    }
    for user in ["", "a b", "x@y", "<x>", "a\r\nb"] {
        let req = Originate {
            from_user: user.to_string(),
            ..request(Duration::from_secs(30))
        };
        assert!(
            matches!(
                h.ep.originate(h.now, req),
                Err(SipError::InvalidOriginate(_))
            ),
            "{user:?}"
        );
    }
    let req = Originate {
        from_display: Some("bad\r\nX-Injected: 1".to_string()),
        ..request(Duration::from_secs(30))
    };
    assert!(matches!(
        h.ep.originate(h.now, req),
        Err(SipError::InvalidOriginate(_))
    ));
    assert!(h.out().is_empty());
    assert_eq!(h.ep.active_calls(), 0);
    for id in ["", "a b", "x\r\ny", &"x".repeat(129)] {
        let req = Originate {
            call_id: Some(id.to_string()),
            ..request(Duration::from_secs(30))
        };
        assert!(
            matches!(
                h.ep.originate(h.now, req),
                Err(SipError::InvalidOriginate(_))
            ),
            "{id:?}"
        );
    }
    // IPv6 and default-port targets are fine.
    h.ep.originate(h.now, bad_target("sip:1000@[2001:db8::1]"))
        .unwrap();
    let out = h.out();
    assert_eq!(out[0].0, Peer::udp("[2001:db8::1]:5060".parse().unwrap()));
}
