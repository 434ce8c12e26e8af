//! Drives the sans-IO endpoint with literal SIP messages and a fake clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_sip::{
    CallKey, Codec, Direction, EndReason, Endpoint, EndpointConfig, Peer, SipError, SipEvent,
};

const T1: Duration = Duration::from_millis(500);

fn offer(pts: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=alice 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP {pts}\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"
    )
}

fn invite_with(call_id: &str, branch: &str, body: &str) -> String {
    format!(
        "INVITE sip:5551000@192.0.2.10 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.5:5060;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
         Record-Route: <sip:p3.example.com;lr>\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=alicetag\r\n\
         To: <sip:5551000@192.0.2.10>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@203.0.113.5:5070>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn invite(call_id: &str) -> String {
    invite_with(call_id, "z9hG4bKinv1", &offer("0 8 101", "a=sendrecv\r\n"))
}

struct H {
    ep: Endpoint,
    now: Instant,
    t0: Instant,
    peer: Peer,
}

impl H {
    fn new() -> Self {
        let now = Instant::now();
        H {
            ep: Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap())),
            now,
            t0: now,
            peer: Peer::udp("198.51.100.7:40000".parse().unwrap()),
        }
    }

    fn input(&mut self, msg: &str) -> Vec<String> {
        self.ep.handle_input(self.now, self.peer, msg.as_bytes());
        self.out()
    }

    fn out(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(t) = self.ep.poll_transmit() {
            assert_eq!(t.peer, self.peer, "responses go to the source (symmetric)");
            v.push(String::from_utf8_lossy(&t.data).into_owned());
        }
        v
    }

    fn events(&mut self) -> Vec<SipEvent> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// Advances the clock to `at` (offset from start), running timers on the way.
    fn advance_to(&mut self, at: Duration) -> Vec<(Duration, String)> {
        let end = self.t0 + at;
        let mut out = Vec::new();
        while let Some(d) = self.ep.poll_timeout() {
            if d > end {
                break;
            }
            self.now = self.now.max(d);
            self.ep.handle_timeout(self.now);
            for m in self.out() {
                out.push((self.now - self.t0, m));
            }
        }
        self.now = end;
        out
    }

    fn incoming(&mut self, call_id: &str) -> CallKey {
        let out = self.input(&invite(call_id));
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with("SIP/2.0 100 Trying\r\n"), "{}", out[0]);
        let ev = self.events();
        let [SipEvent::Incoming(inc)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        inc.call.clone()
    }

    fn answered(&mut self, call_id: &str) -> (CallKey, String) {
        let key = self.incoming(call_id);
        self.ep
            .answer(self.now, &key, "192.0.2.10:30000".parse().unwrap())
            .unwrap();
        let out = self.out();
        assert_eq!(out.len(), 1);
        let tag = header(&out[0], "To")
            .split(";tag=")
            .nth(1)
            .unwrap()
            .to_string();
        (key, tag)
    }

    fn confirmed(&mut self, call_id: &str) -> (CallKey, String) {
        let (key, tag) = self.answered(call_id);
        assert!(self.input(&ack(call_id, &tag, 1)).is_empty());
        assert_eq!(
            self.events(),
            vec![SipEvent::Confirmed { call: key.clone() }]
        );
        (key, tag)
    }
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

fn status(msg: &str) -> &str {
    msg.split("\r\n").next().unwrap()
}

fn in_dialog(
    method: &str,
    call_id: &str,
    tag: &str,
    cseq: u32,
    branch: &str,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} sip:hotline@192.0.2.10:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.5:5060;branch={branch}\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=alicetag\r\n\
         To: <sip:5551000@192.0.2.10>;tag={tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn ack(call_id: &str, tag: &str, cseq: u32) -> String {
    in_dialog(
        "ACK",
        call_id,
        tag,
        cseq,
        &format!("z9hG4bKack{cseq}"),
        "",
        "",
    )
}

#[test]
fn invite_gets_100_and_one_incoming() {
    let mut h = H::new();
    let out = h.input(&invite("c1"));
    assert_eq!(out.len(), 1);
    let trying = &out[0];
    assert_eq!(status(trying), "SIP/2.0 100 Trying");
    // RFC 3581: rport filled in, received added.
    assert_eq!(
        header(trying, "Via"),
        "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKinv1;rport=40000;received=198.51.100.7"
    );
    assert_eq!(header(trying, "To"), "<sip:5551000@192.0.2.10>");
    let ev = h.events();
    let [SipEvent::Incoming(inc)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(inc.call, CallKey::from("c1"));
    assert_eq!(inc.callee, "5551000");
    assert_eq!(inc.caller.user, "alice");
    assert_eq!(inc.caller.display_name.as_deref(), Some("Alice"));
    assert_eq!(inc.offer.codec, Codec::Pcmu);
    assert_eq!(inc.offer.payload_type, 0);
    assert_eq!(inc.offer.dtmf_payload_type, Some(101));
    assert_eq!(
        inc.offer.rtp_addr,
        "203.0.113.5:4000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(inc.peer, h.peer);
    assert_eq!(h.ep.active_calls(), 1);

    // Retransmission: same branch → 100 again, no second Incoming.
    let out = h.input(&invite("c1"));
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("SIP/2.0 100 Trying"));
    assert!(h.events().is_empty());

    // After ring, the retransmission gets 180.
    h.ep.ring(h.now, &CallKey::from("c1")).unwrap();
    let out = h.out();
    assert!(out[0].starts_with("SIP/2.0 180 Ringing"));
    assert!(header(&out[0], "To").contains(";tag="));
    let out = h.input(&invite("c1"));
    assert!(out[0].starts_with("SIP/2.0 180 Ringing"));
}

#[test]
fn answer_sends_200_with_sdp_answer() {
    let mut h = H::new();
    let key = h.incoming("c2");
    h.ep.answer(h.now, &key, "192.0.2.10:30000".parse().unwrap())
        .unwrap();
    let out = h.out();
    let ok = &out[0];
    assert_eq!(status(ok), "SIP/2.0 200 OK");
    assert!(header(ok, "To").starts_with("<sip:5551000@192.0.2.10>;tag="));
    assert_eq!(header(ok, "Contact"), "<sip:hotline@192.0.2.10:5060>");
    assert_eq!(header(ok, "Content-Type"), "application/sdp");
    assert_eq!(header(ok, "Server"), "Hotline/0.1");
    assert!(header(ok, "Allow").contains("UPDATE"));
    let rr: Vec<&str> = ok
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("Record-Route: "))
        .collect();
    assert_eq!(
        rr,
        [
            "<sip:p1.example.com;lr>",
            "<sip:p2.example.com;lr>",
            "<sip:p3.example.com;lr>"
        ]
    );
    let body = ok.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(header(ok, "Content-Length"), body.len().to_string());
    assert!(body.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{body}");
    assert!(body.contains("c=IN IP4 192.0.2.10\r\n"));
    assert!(body.contains("a=sendrecv\r\n"));
    assert!(body.contains("a=fmtp:101 0-16\r\n"));
    assert!(matches!(
        h.ep.answer(h.now, &key, "192.0.2.10:30000".parse().unwrap()),
        Err(SipError::InvalidState { .. })
    ));
    assert!(matches!(
        h.ep.ring(h.now, &CallKey::from("nope")),
        Err(SipError::UnknownCall(_))
    ));
}

#[test]
fn two_hundred_retransmits_until_ack() {
    let mut h = H::new();
    let (key, tag) = h.answered("c3");
    let sent = h.advance_to(Duration::from_millis(12_000));
    let times: Vec<u64> = sent.iter().map(|(t, _)| t.as_millis() as u64).collect();
    // T1, then doubling, capped at T2 = 4 s.
    assert_eq!(times, [500, 1500, 3500, 7500, 11500]);
    assert!(sent.iter().all(|(_, m)| m.starts_with("SIP/2.0 200 OK")));
    assert!(h.input(&ack("c3", &tag, 1)).is_empty());
    assert_eq!(h.events(), vec![SipEvent::Confirmed { call: key }]);
    let sent = h.advance_to(Duration::from_secs(40));
    assert!(sent.is_empty(), "{sent:?}");
    // An ACK retransmission is absorbed.
    assert!(h.input(&ack("c3", &tag, 1)).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn no_ack_sends_bye_and_ends_at_timer_h() {
    let mut h = H::new();
    let (key, _tag) = h.answered("c4");
    let sent = h.advance_to(Duration::from_millis(31_999));
    assert!(sent.iter().all(|(_, m)| m.starts_with("SIP/2.0 200")));
    assert!(h.events().is_empty());
    let sent = h.advance_to(T1 * 64);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0]
            .1
            .starts_with("BYE sip:alice@203.0.113.5:5070 SIP/2.0")
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::AckTimeout
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn cancel_gets_200_and_487() {
    let mut h = H::new();
    let key = h.incoming("c5");
    let cancel = "CANCEL sip:5551000@192.0.2.10 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKinv1;rport\r\n\
        From: \"Alice\" <sip:alice@example.com>;tag=alicetag\r\n\
        To: <sip:5551000@192.0.2.10>\r\nCall-ID: c5\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    let out = h.input(cancel);
    assert_eq!(out.len(), 2);
    assert_eq!(status(&out[0]), "SIP/2.0 200 OK");
    assert_eq!(header(&out[0], "CSeq"), "1 CANCEL");
    assert_eq!(status(&out[1]), "SIP/2.0 487 Request Terminated");
    assert_eq!(header(&out[1], "CSeq"), "1 INVITE");
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key.clone(),
            reason: EndReason::Cancelled
        }]
    );
    // CANCEL retransmission → the same 200 (§17.2.2).
    assert_eq!(h.input(cancel), out[..1]);
    // 487 retransmitted (Timer G) until the ACK, which uses the INVITE's branch.
    let sent = h.advance_to(Duration::from_millis(600));
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with("SIP/2.0 487"));
    let tag = header(&out[1], "To")
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_string();
    let ack = in_dialog("ACK", "c5", &tag, 1, "z9hG4bKinv1", "", "");
    assert!(h.input(&ack).is_empty());
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
    assert!(h.events().is_empty());
    // Long after, state is reaped; an unknown CANCEL → 481.
    assert!(h.input(cancel)[0].starts_with("SIP/2.0 481"));
    let other = cancel.replace("Call-ID: c5", "Call-ID: zz");
    assert!(h.input(&other)[0].starts_with("SIP/2.0 481"));
    assert!(matches!(
        h.ep.answer(h.now, &key, "1.2.3.4:5".parse().unwrap()),
        Err(SipError::UnknownCall(_))
    ));
}

#[test]
fn remote_bye_ends_the_call() {
    let mut h = H::new();
    let (key, tag) = h.confirmed("c6");
    let bye = in_dialog("BYE", "c6", &tag, 2, "z9hG4bKbye", "", "");
    let out = h.input(&bye);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), "SIP/2.0 200 OK");
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key.clone(),
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(h.ep.active_calls(), 0);
    // Retransmitted BYE: same response, no new event (§17.2.2).
    assert_eq!(h.input(&bye), out);
    assert!(h.events().is_empty());
    // A BYE with a new branch for the ended dialog → 481.
    let bye2 = in_dialog("BYE", "c6", &tag, 3, "z9hG4bKbye2", "", "");
    assert!(h.input(&bye2)[0].starts_with("SIP/2.0 481"));
    // hangup after the end is a no-op.
    h.ep.hangup(h.now, &key).unwrap();
    assert!(h.out().is_empty());
}

#[test]
fn hangup_sends_a_proper_bye() {
    let mut h = H::new();
    let (key, tag) = h.confirmed("c7");
    h.ep.hangup(h.now, &key).unwrap();
    let out = h.out();
    assert_eq!(out.len(), 1);
    let bye = &out[0];
    assert_eq!(status(bye), "BYE sip:alice@203.0.113.5:5070 SIP/2.0");
    let routes: Vec<&str> = bye
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("Route: "))
        .collect();
    assert_eq!(
        routes,
        [
            "<sip:p1.example.com;lr>",
            "<sip:p2.example.com;lr>",
            "<sip:p3.example.com;lr>"
        ]
    );
    assert_eq!(
        header(bye, "From"),
        format!("<sip:5551000@192.0.2.10>;tag={tag}")
    );
    assert_eq!(
        header(bye, "To"),
        "\"Alice\" <sip:alice@example.com>;tag=alicetag"
    );
    assert_eq!(header(bye, "CSeq"), "1 BYE");
    assert_eq!(header(bye, "Call-ID"), "c7");
    assert_eq!(header(bye, "Max-Forwards"), "70");
    let via = header(bye, "Via");
    assert!(
        via.starts_with("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK"),
        "{via}"
    );
    assert!(h.events().is_empty());
    // Timer E retransmission.
    let sent = h.advance_to(Duration::from_millis(500));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, *bye);
    // The 200 for our BYE ends the call.
    let branch = via
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: <sip:5551000@192.0.2.10>;tag={tag}\r\n\
         To: <sip:alice@example.com>;tag=alicetag\r\nCall-ID: c7\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(ok.contains(branch));
    assert!(h.input(&ok).is_empty());
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::LocalBye
        }]
    );
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
    // Late duplicate 200: dropped.
    assert!(h.input(&ok).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn bye_times_out_with_timer_f() {
    let mut h = H::new();
    let (key, _) = h.confirmed("c7f");
    let start = h.now - h.t0;
    h.ep.hangup(h.now, &key).unwrap();
    h.out();
    let sent = h.advance_to(start + T1 * 64);
    assert!(sent.iter().all(|(_, m)| m.starts_with("BYE ")));
    // RFC 3261 §17.1.2.2: timer E starts at T1 and doubles up to T2 (4 s);
    // timer F ends the transaction at 64·T1 = 32 s. So exactly ten
    // retransmissions, at 0.5, 1.5, 3.5, 7.5, then every 4 s to 31.5 s (a
    // lost T2 cap would give six: 0.5 … 15.5, 31.5).
    let at_ms: Vec<u128> = sent.iter().map(|(t, _)| (*t - start).as_millis()).collect();
    assert_eq!(
        at_ms,
        [
            500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::LocalBye
        }]
    );
}

#[test]
fn hangup_before_ack_waits_for_the_ack() {
    let mut h = H::new();
    let (key, tag) = h.answered("c7a");
    h.ep.hangup(h.now, &key).unwrap();
    assert!(h.out().is_empty());
    let out = h.input(&ack("c7a", &tag, 1));
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("BYE "));
    assert_eq!(h.events(), vec![SipEvent::Confirmed { call: key }]);
}

#[test]
fn hangup_and_reject_before_answer() {
    let mut h = H::new();
    let key = h.incoming("c8");
    h.ep.hangup(h.now, &key).unwrap();
    let out = h.out();
    assert!(out[0].starts_with("SIP/2.0 480 Temporarily Unavailable"));
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::Rejected { code: 480 }
        }]
    );
    let key = h.incoming("c9");
    assert!(matches!(
        h.ep.reject(h.now, &key, 200),
        Err(SipError::InvalidStatus(200))
    ));
    h.ep.reject(h.now, &key, 486).unwrap();
    assert!(h.out()[0].starts_with("SIP/2.0 486 Busy Here"));
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::Rejected { code: 486 }
        }]
    );
    // Timer H ends the non-2xx retransmissions without an ACK; no more events.
    let sent = h.advance_to(Duration::from_secs(100));
    assert!(
        sent.iter()
            .all(|(t, m)| m.starts_with("SIP/2.0 4") && *t <= T1 * 64)
    );
    assert!(h.events().is_empty());
    assert_eq!(h.ep.active_calls(), 0);
    assert_eq!(h.ep.poll_timeout(), None, "everything reaped");
}

#[test]
fn info_dtmf_gives_digits() {
    let mut h = H::new();
    let (key, tag) = h.answered("c10");
    // INFO before the ACK must be answered too.
    let info = in_dialog(
        "INFO",
        "c10",
        &tag,
        2,
        "z9hG4bKi1",
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    );
    assert!(h.input(&info)[0].starts_with("SIP/2.0 200 OK"));
    let info2 = in_dialog(
        "INFO",
        "c10",
        &tag,
        3,
        "z9hG4bKi2",
        "Content-Type: application/dtmf\r\n",
        "#",
    );
    assert!(h.input(&info2)[0].starts_with("SIP/2.0 200 OK"));
    assert_eq!(
        h.events(),
        vec![
            SipEvent::Digit {
                call: key.clone(),
                digit: '5',
                duration_ms: Some(160)
            },
            SipEvent::Digit {
                call: key.clone(),
                digit: '#',
                duration_ms: None
            }
        ]
    );
    // Lower CSeq than the last one (not a retransmission) → 500.
    let old = in_dialog("INFO", "c10", &tag, 2, "z9hG4bKi3", "", "");
    assert!(h.input(&old)[0].starts_with("SIP/2.0 500"));
    // Wrong tag → 481.
    let wrong = in_dialog("INFO", "c10", "bogus", 9, "z9hG4bKi4", "", "");
    assert!(h.input(&wrong)[0].starts_with("SIP/2.0 481"));
}

#[test]
fn reinvite_hold_and_unhold() {
    let mut h = H::new();
    let (key, tag) = h.confirmed("c11");
    let hold = offer("0 101", "a=sendonly\r\n");
    let reinv = in_dialog(
        "INVITE",
        "c11",
        &tag,
        2,
        "z9hG4bKre1",
        "Contact: <sip:alice@203.0.113.5:5070>\r\nContent-Type: application/sdp\r\n",
        &hold,
    );
    let out = h.input(&reinv);
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("SIP/2.0 200 OK"));
    let body = out[0].split("\r\n\r\n").nth(1).unwrap();
    assert!(body.contains("a=recvonly\r\n"), "{body}");
    assert!(
        body.contains(" 2 IN IP4 192.0.2.10\r\n"),
        "o= version incremented: {body}"
    );
    assert!(body.contains("m=audio 30000 RTP/AVP 0 101\r\n"));
    let ev = h.events();
    let [SipEvent::MediaChanged { call, media }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(call, &key);
    assert_eq!(media.direction, Direction::SendOnly);
    // Retransmitted re-INVITE: same 200, no second event.
    assert_eq!(h.input(&reinv), out);
    assert!(h.events().is_empty());
    assert!(h.input(&ack("c11", &tag, 2)).is_empty());
    assert!(h.events().is_empty());
    assert!(h.advance_to(Duration::from_secs(5)).is_empty());

    // Unhold via UPDATE.
    let unhold = offer("0 101", "a=sendrecv\r\n");
    let upd = in_dialog(
        "UPDATE",
        "c11",
        &tag,
        3,
        "z9hG4bKup1",
        "Content-Type: application/sdp\r\n",
        &unhold,
    );
    let out = h.input(&upd);
    assert!(out[0].starts_with("SIP/2.0 200 OK"));
    assert!(out[0].contains("a=sendrecv\r\n"));
    assert!(out[0].contains(" 3 IN IP4 192.0.2.10\r\n"));
    let ev = h.events();
    assert!(
        matches!(ev.as_slice(), [SipEvent::MediaChanged { media, .. }] if media.direction == Direction::SendRecv)
    );

    // re-INVITE without SDP: we offer our current session.
    let reinv = in_dialog("INVITE", "c11", &tag, 4, "z9hG4bKre2", "", "");
    let out = h.input(&reinv);
    assert!(out[0].starts_with("SIP/2.0 200 OK"));
    assert!(out[0].contains("m=audio 30000 RTP/AVP 0 101\r\n"));
    assert!(h.input(&ack("c11", &tag, 4)).is_empty());
    assert!(h.events().is_empty());

    // re-INVITE for an unknown dialog → 481.
    let stray = in_dialog("INVITE", "nope", &tag, 4, "z9hG4bKre3", "", "");
    assert!(h.input(&stray)[0].starts_with("SIP/2.0 481"));
}

#[test]
fn options_register_and_unknown_methods() {
    let mut h = H::new();
    let req = |m: &str| {
        format!(
            "{m} sip:192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK{m}\r\n\
             From: <sip:x@y>;tag=1\r\nTo: <sip:192.0.2.10>\r\nCall-ID: o-{m}\r\nCSeq: 1 {m}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    let out = h.input(&req("OPTIONS"));
    assert_eq!(status(&out[0]), "SIP/2.0 200 OK");
    assert_eq!(
        header(&out[0], "Allow"),
        "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY"
    );
    assert_eq!(
        header(&out[0], "Accept"),
        "application/sdp, application/dtmf-relay, application/dtmf, message/sipfrag"
    );
    assert!(header(&out[0], "To").contains(";tag="));
    let out = h.input(&req("REGISTER"));
    assert_eq!(status(&out[0]), "SIP/2.0 405 Method Not Allowed");
    assert!(header(&out[0], "Allow").contains("INVITE"));
    let out = h.input(&req("FOO"));
    assert_eq!(status(&out[0]), "SIP/2.0 501 Not Implemented");
    let out = h.input(&req("BYE"));
    assert_eq!(
        status(&out[0]),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    // A stray ACK and an unexpected response: silently dropped.
    assert!(h.input(&req("ACK")).is_empty());
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKq\r\nFrom: <sip:a@b>;tag=1\r\n\
        To: <sip:c@d>;tag=2\r\nCall-ID: q\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
    assert!(h.input(resp).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn unacceptable_invites() {
    let mut h = H::new();
    // No common codec → 488, no Incoming.
    let out = h.input(&invite_with("n1", "z9hG4bKn1", &offer("18 101", "")));
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("SIP/2.0 488 "), "{}", out[0]);
    assert!(h.events().is_empty());
    // Malformed SDP → 400.
    let out = h.input(&invite_with(
        "n2",
        "z9hG4bKn2",
        "v=0\r\nthis is not sdp\r\n",
    ));
    assert!(out[0].starts_with("SIP/2.0 400 "), "{}", out[0]);
    // No SDP (delayed offer) → 488.
    let out = h.input(&invite_with("n3", "z9hG4bKn3", ""));
    assert!(out[0].starts_with("SIP/2.0 488 "));
    // Draining → 503 with Retry-After.
    h.ep.set_draining(true);
    let out = h.input(&invite("n4"));
    assert!(out[0].starts_with("SIP/2.0 503 "));
    assert_eq!(header(&out[0], "Retry-After"), "30");
    h.ep.set_draining(false);
    // Max-Forwards 0 → 483.
    let out = h.input(&invite("n5").replace("Max-Forwards: 70", "Max-Forwards: 0"));
    assert!(out[0].starts_with("SIP/2.0 483 "));
    assert!(h.events().is_empty());
    assert_eq!(h.ep.active_calls(), 0);
    // Their retransmission gets the same final response; the ACK absorbs it.
    let out = h.input(&invite("n5").replace("Max-Forwards: 70", "Max-Forwards: 0"));
    assert!(out[0].starts_with("SIP/2.0 483 "));
}

#[test]
fn odd_but_valid_invites_are_served() {
    let mut h = H::new();
    let body = offer("8", "");
    // Compact headers, a folded header, tel: Request-URI, IPv6 Via, P-Asserted-Identity.
    let msg = format!(
        "INVITE tel:+15551234567 SIP/2.0\r\n\
         v: SIP/2.0/UDP [2001:db8::5]:5060\r\n ;branch=z9hG4bKv6\r\n\
         f: \"Bob\" <sip:bob@example.com>;tag=b1\r\n\
         t: <tel:+15551234567>\r\n\
         i: odd-1\r\n\
         CSeq: 7 INVITE\r\n\
         m: <sip:bob@[2001:db8::5]:5060>\r\n\
         P-Asserted-Identity: \"Robert\" <sip:+15550001111@example.com>\r\n\
         c: application/sdp\r\n\
         l: {}\r\n\r\n{body}",
        body.len()
    );
    h.peer = Peer::udp("[2001:db8::5]:5060".parse().unwrap());
    let out = h.input(&msg);
    assert!(out[0].starts_with("SIP/2.0 100 Trying"), "{}", out[0]);
    assert_eq!(
        header(&out[0], "Via"),
        "SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bKv6"
    );
    let ev = h.events();
    let [SipEvent::Incoming(inc)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(inc.callee, "+15551234567");
    assert_eq!(inc.caller.user, "+15550001111");
    assert_eq!(inc.caller.display_name.as_deref(), Some("Robert"));
    assert_eq!(inc.offer.codec, Codec::Pcma);

    // A Latin-1 byte in the From display name.
    h.peer = Peer::udp("198.51.100.7:40000".parse().unwrap());
    let mut raw = invite("latin1").into_bytes();
    let pos = raw.windows(7).position(|w| w == b"\"Alice\"").unwrap();
    raw[pos + 3] = 0xE9; // "Al\xE9ce"
    h.ep.handle_input(h.now, h.peer, &raw);
    let out = h.out();
    assert!(out[0].starts_with("SIP/2.0 100 Trying"), "{}", out[0]);
    let ev = h.events();
    let [SipEvent::Incoming(inc)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(inc.caller.display_name.as_deref(), Some("Al\u{FFFD}ce"));
    assert_eq!(inc.caller.user, "alice");
}

#[test]
fn malformed_requests_get_400() {
    let mut h = H::new();
    let good = invite("m1");
    // Truncated inside the headers.
    let cut = &good[..good.find("Call-ID").unwrap()];
    let out = h.input(cut);
    assert!(out[0].starts_with("SIP/2.0 400 "), "{out:?}");
    // Missing Call-ID.
    let out = h.input(&good.replace("Call-ID: m1\r\n", ""));
    assert!(out[0].starts_with("SIP/2.0 400 Missing Call-ID"), "{out:?}");
    // Bad Content-Length.
    let out = h.input(&good.replace("Content-Length: ", "Content-Length: x"));
    assert!(
        out[0].starts_with("SIP/2.0 400 Bad Content-Length"),
        "{out:?}"
    );
    // Body shorter than Content-Length.
    let out = h.input(&good[..good.len() - 10]);
    assert!(out[0].starts_with("SIP/2.0 400 Body shorter"), "{out:?}");
    // CSeq method mismatch.
    let out = h.input(&good.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"));
    assert!(out[0].starts_with("SIP/2.0 400 CSeq method"), "{out:?}");
    // No Via: nothing to answer.
    let no_via = good
        .split("\r\n")
        .filter(|l| !l.starts_with("Via"))
        .collect::<Vec<_>>()
        .join("\r\n");
    assert!(h.input(&no_via).is_empty());
    assert!(h.events().is_empty());
    // Extra bytes after Content-Length are ignored (RFC 3261 §18.3).
    let out = h.input(&format!("{}garbage", invite("m2")));
    assert!(out[0].starts_with("SIP/2.0 100"));
}

#[test]
fn hostile_input_never_panics() {
    let mut h = H::new();
    // HOTLINE_FUZZ_ITERS / HOTLINE_FUZZ_SEED allow longer local runs.
    let iters: usize = std::env::var("HOTLINE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seed: u64 = std::env::var("HOTLINE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = fastrand::Rng::with_seed(seed);
    let big = vec![b'A'; 65_535];
    h.ep.handle_input(h.now, h.peer, &big);
    let mut big_hdr = invite("big").into_bytes();
    big_hdr.splice(20..20, std::iter::repeat_n(b'x', 65_535 - big_hdr.len()));
    h.ep.handle_input(h.now, h.peer, &big_hdr);
    for _ in 0..200 {
        let n = rng.usize(0..2000);
        let junk: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(n).collect();
        h.ep.handle_input(h.now, h.peer, &junk);
    }
    let seeds = [
        invite("f1").into_bytes(),
        in_dialog("BYE", "f1", "t", 2, "z9hG4bKb", "", "").into_bytes(),
        in_dialog(
            "INFO",
            "f1",
            "t",
            3,
            "z9hG4bKi",
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=1\r\n",
        )
        .into_bytes(),
    ];
    for i in 0..iters {
        let mut m = seeds[i % seeds.len()].clone();
        for _ in 0..rng.usize(1..5) {
            match rng.u8(0..4) {
                0 if !m.is_empty() => {
                    let p = rng.usize(..m.len());
                    m[p] ^= 1 << rng.u8(0..8);
                }
                1 if !m.is_empty() => m.truncate(rng.usize(..m.len())),
                2 => {
                    let p = rng.usize(..=m.len());
                    let b = *rng.choice(b"\r\n:;<>\"@[] =,\xff\x00/0a".iter()).unwrap();
                    m.insert(p, b);
                }
                _ if !m.is_empty() => {
                    let p = rng.usize(..m.len());
                    m.remove(p);
                }
                _ => {}
            }
        }
        h.ep.handle_input(h.now, h.peer, &m);
        while h.ep.poll_transmit().is_some() {}
        while h.ep.poll_event().is_some() {}
        if i % 100 == 0 {
            h.now += Duration::from_millis(700);
            h.ep.handle_timeout(h.now);
        }
    }
    h.ep.handle_timeout(h.now + Duration::from_secs(3600));
}

#[test]
fn tcp_calls_use_the_connection_and_no_timer_g() {
    let mut h = H::new();
    h.peer = Peer::tcp("198.51.100.7:40001".parse().unwrap(), 42);
    let msg = invite("tcp1").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let out = h.input(&msg);
    assert!(out[0].starts_with("SIP/2.0 100"));
    let ev = h.events();
    let [SipEvent::Incoming(inc)] = ev.as_slice() else {
        panic!()
    };
    h.ep.answer(h.now, &inc.call, "192.0.2.10:30000".parse().unwrap())
        .unwrap();
    let out = h.out();
    assert_eq!(
        header(&out[0], "Contact"),
        "<sip:hotline@192.0.2.10:5060;transport=tcp>"
    );
    let key = inc.call.clone();
    let tag = header(&out[0], "To")
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_string();
    h.input(&ack("tcp1", &tag, 1).replace("SIP/2.0/UDP", "SIP/2.0/TCP"));
    h.events();
    h.ep.hangup(h.now, &key).unwrap();
    let out = h.out();
    assert!(header(&out[0], "Via").starts_with("SIP/2.0/TCP "));
    // No Timer E on TCP: nothing until Timer F.
    let sent = h.advance_to(T1 * 64);
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::LocalBye
        }]
    );
}

#[test]
fn cancel_after_answer_only_gets_200() {
    let mut h = H::new();
    let (_key, _tag) = h.answered("ca1");
    let cancel = "CANCEL sip:5551000@192.0.2.10 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKinv1;rport\r\n\
        From: \"Alice\" <sip:alice@example.com>;tag=alicetag\r\n\
        To: <sip:5551000@192.0.2.10>\r\nCall-ID: ca1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    let out = h.input(cancel);
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("SIP/2.0 200 OK"));
    assert!(h.events().is_empty());
    assert_eq!(h.ep.active_calls(), 1);
}

// ----- blind transfer (REFER, RFC 3515) -----

const REFER_TARGET: &str = "sip:billing@10.0.0.5";

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

/// The remote party's response to a request we sent (`CSeq` overridable).
fn response_to(req: &str, code: u16, reason: &str, cseq: Option<&str>) -> String {
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Content-Length: 0\r\n\r\n",
        header(req, "Via"),
        header(req, "From"),
        header(req, "To"),
        header(req, "Call-ID"),
        cseq.unwrap_or_else(|| header(req, "CSeq")),
    )
}

fn notify(call_id: &str, tag: &str, cseq: u32, branch: &str, event: &str, frag: &str) -> String {
    in_dialog(
        "NOTIFY",
        call_id,
        tag,
        cseq,
        branch,
        &format!(
            "{event}\r\nSubscription-State: active;expires=60\r\nContent-Type: message/sipfrag;version=2.0\r\n"
        ),
        frag,
    )
}

impl H {
    fn refer(&mut self, key: &CallKey) -> String {
        self.ep.refer(self.now, key, REFER_TARGET).unwrap();
        let out = self.out();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(status(&out[0]), "REFER sip:alice@203.0.113.5:5070 SIP/2.0");
        out.into_iter().next().unwrap()
    }
}

#[test]
fn refer_is_a_proper_in_dialog_request() {
    let mut h = H::new();
    let (key, tag) = h.confirmed("r1");
    // The caller's own CSeq numbering (INFO 2) does not touch ours.
    let info = in_dialog(
        "INFO",
        "r1",
        &tag,
        2,
        "z9hG4bKri",
        "Content-Type: application/dtmf\r\n",
        "1",
    );
    assert!(h.input(&info)[0].starts_with("SIP/2.0 200 OK"));
    h.events();
    let refer = h.refer(&key);
    let routes: Vec<&str> = refer
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("Route: "))
        .collect();
    assert_eq!(
        routes,
        [
            "<sip:p1.example.com;lr>",
            "<sip:p2.example.com;lr>",
            "<sip:p3.example.com;lr>"
        ]
    );
    assert_eq!(
        header(&refer, "From"),
        format!("<sip:5551000@192.0.2.10>;tag={tag}")
    );
    assert_eq!(
        header(&refer, "To"),
        "\"Alice\" <sip:alice@example.com>;tag=alicetag"
    );
    assert_eq!(header(&refer, "Call-ID"), "r1");
    assert_eq!(header(&refer, "CSeq"), "1 REFER");
    assert_eq!(header(&refer, "Max-Forwards"), "70");
    assert_eq!(header(&refer, "Contact"), "<sip:hotline@192.0.2.10:5060>");
    assert_eq!(header(&refer, "Refer-To"), "<sip:billing@10.0.0.5>");
    assert_eq!(
        header(&refer, "Referred-By"),
        "<sip:hotline@192.0.2.10:5060>"
    );
    assert_eq!(header(&refer, "Content-Length"), "0");
    assert!(
        header(&refer, "Via").starts_with("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK"),
        "{refer}"
    );
    assert!(refer.ends_with("\r\n\r\n"));
    assert!(h.events().is_empty());

    // A 100 first (no event), then 202 → TransferAccepted.
    assert!(
        h.input(&response_to(&refer, 100, "Trying", None))
            .is_empty()
    );
    assert!(h.events().is_empty());
    assert!(
        h.input(&response_to(&refer, 202, "Accepted", None))
            .is_empty()
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::TransferAccepted { call: key.clone() }]
    );
    // A retransmitted 202 is absorbed; the REFER is no longer retransmitted.
    assert!(
        h.input(&response_to(&refer, 202, "Accepted", None))
            .is_empty()
    );
    assert!(h.events().is_empty());
    assert!(h.advance_to(Duration::from_secs(10)).is_empty());

    // Hang up afterwards: BYE continues our CSeq numbering.
    h.ep.hangup(h.now, &key).unwrap();
    let out = h.out();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), "BYE sip:alice@203.0.113.5:5070 SIP/2.0");
    assert_eq!(header(&out[0], "CSeq"), "2 BYE");
    assert_ne!(branch_of(&out[0]), branch_of(&refer));
    assert!(h.input(&response_to(&out[0], 200, "OK", None)).is_empty());
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::LocalBye
        }]
    );
}

#[test]
fn refer_declined_then_retried() {
    let mut h = H::new();
    let (key, _) = h.confirmed("r2");
    let refer = h.refer(&key);
    assert!(
        h.input(&response_to(&refer, 603, "Decline", None))
            .is_empty()
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::TransferFailed {
            call: key.clone(),
            code: 603
        }]
    );
    assert!(h.advance_to(Duration::from_secs(40)).is_empty());
    // The call is still up: a new REFER may follow, with the next CSeq.
    let again = h.refer(&key);
    assert_eq!(header(&again, "CSeq"), "2 REFER");
    assert!(
        h.input(&response_to(&again, 202, "Accepted", None))
            .is_empty()
    );
    assert_eq!(h.events(), vec![SipEvent::TransferAccepted { call: key }]);
}

#[test]
fn unanswered_refer_retransmits_then_fails_with_408() {
    let mut h = H::new();
    let (key, _) = h.confirmed("r3");
    let refer = h.refer(&key);
    let sent = h.advance_to(T1 * 64 - Duration::from_millis(1));
    assert!(sent.iter().all(|(_, m)| *m == refer), "{sent:?}");
    let at: Vec<u64> = sent.iter().map(|(t, _)| t.as_millis() as u64).collect();
    // Timer E: T1, doubling, capped at T2 = 4 s.
    assert_eq!(
        at,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert!(h.events().is_empty());
    assert!(h.advance_to(T1 * 64).is_empty());
    assert_eq!(
        h.events(),
        vec![SipEvent::TransferFailed {
            call: key.clone(),
            code: 408
        }]
    );
    assert!(h.advance_to(Duration::from_secs(120)).is_empty());
    // Still a call: hangup sends BYE.
    h.ep.hangup(h.now, &key).unwrap();
    let out = h.out();
    assert_eq!(header(&out[0], "CSeq"), "2 BYE");
}

#[test]
fn notify_reports_transfer_progress() {
    let mut h = H::new();
    let (key, tag) = h.confirmed("r4");
    // NOTIFY in the dialog before any REFER: 200, nothing to report.
    let early = notify(
        "r4",
        &tag,
        2,
        "z9hG4bKn0",
        "Event: refer",
        "SIP/2.0 100 Trying\r\n",
    );
    let out = h.input(&early);
    assert_eq!(status(&out[0]), "SIP/2.0 200 OK");
    assert!(h.events().is_empty());

    let refer = h.refer(&key);
    // The NOTIFY may overtake the 202.
    let n1 = notify(
        "r4",
        &tag,
        3,
        "z9hG4bKn1",
        "Event: refer",
        "SIP/2.0 180 Ringing\r\n",
    );
    let out = h.input(&n1);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), "SIP/2.0 200 OK");
    assert_eq!(
        header(&out[0], "To"),
        format!("<sip:5551000@192.0.2.10>;tag={tag}")
    );
    assert_eq!(header(&out[0], "CSeq"), "3 NOTIFY");
    assert!(
        h.input(&response_to(&refer, 202, "Accepted", None))
            .is_empty()
    );
    // A retransmitted NOTIFY gets the same 200 and no second event.
    assert_eq!(h.input(&n1), out);
    // Compact Event header with an id parameter; final sipfrag.
    let n2 = in_dialog(
        "NOTIFY",
        "r4",
        &tag,
        4,
        "z9hG4bKn2",
        "o: refer;id=1\r\nSubscription-State: terminated;reason=noresource\r\n\
         c: message/sipfrag\r\n",
        "SIP/2.0 200 OK\r\n",
    );
    assert_eq!(status(&h.input(&n2)[0]), "SIP/2.0 200 OK");
    // Other event packages or bodies: 200, no event.
    let other = notify(
        "r4",
        &tag,
        5,
        "z9hG4bKn3",
        "Event: dialog",
        "SIP/2.0 486 Busy Here\r\n",
    );
    assert_eq!(status(&h.input(&other)[0]), "SIP/2.0 200 OK");
    let garbage = notify("r4", &tag, 6, "z9hG4bKn4", "Event: refer", "hello");
    assert_eq!(status(&h.input(&garbage)[0]), "SIP/2.0 200 OK");
    assert_eq!(
        h.events(),
        vec![
            SipEvent::TransferProgress {
                call: key.clone(),
                code: 180
            },
            SipEvent::TransferAccepted { call: key.clone() },
            SipEvent::TransferProgress {
                call: key.clone(),
                code: 200
            },
        ]
    );
    // A stale CSeq is still refused (RFC 3261 §12.2.2).
    let stale = notify(
        "r4",
        &tag,
        4,
        "z9hG4bKn5",
        "Event: refer",
        "SIP/2.0 200 OK\r\n",
    );
    assert!(h.input(&stale)[0].starts_with("SIP/2.0 500 "));
    // Out of dialog: 481. Wrong tag: 481.
    let stray = notify(
        "nope",
        &tag,
        9,
        "z9hG4bKn6",
        "Event: refer",
        "SIP/2.0 200 OK\r\n",
    );
    assert!(h.input(&stray)[0].starts_with("SIP/2.0 481 "));
    let wrong = notify(
        "r4",
        "bogus",
        9,
        "z9hG4bKn7",
        "Event: refer",
        "SIP/2.0 200 OK\r\n",
    );
    assert!(h.input(&wrong)[0].starts_with("SIP/2.0 481 "));
    assert!(h.events().is_empty());
}

#[test]
fn refer_only_in_a_confirmed_dialog() {
    let mut h = H::new();
    let early = h.incoming("r5a");
    let refused = |r: Result<(), SipError>| {
        matches!(
            r,
            Err(SipError::InvalidState {
                action: "refer",
                ..
            })
        )
    };
    assert!(refused(h.ep.refer(h.now, &early, REFER_TARGET)));
    let (answered, tag) = h.answered("r5b");
    assert!(refused(h.ep.refer(h.now, &answered, REFER_TARGET)));
    assert!(h.out().is_empty());
    h.input(&ack("r5b", &tag, 1));
    h.events();
    // Bad targets.
    for bad in [
        "",
        "billing",
        "http://x",
        "sip:",
        "sip:a b@c",
        "sip:a>\r\nX: y",
        "<sip:a@b>",
    ] {
        assert!(
            matches!(
                h.ep.refer(h.now, &answered, bad),
                Err(SipError::InvalidTarget(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        h.ep.refer(h.now, &CallKey::from("none"), REFER_TARGET),
        Err(SipError::UnknownCall(_))
    ));
    assert!(h.out().is_empty());
    // One REFER in flight at a time.
    h.ep.refer(h.now, &answered, "tel:+8613800000000").unwrap();
    let out = h.out();
    assert_eq!(header(&out[0], "Refer-To"), "<tel:+8613800000000>");
    assert!(refused(h.ep.refer(h.now, &answered, REFER_TARGET)));
    // After hangup: no REFER.
    h.ep.hangup(h.now, &answered).unwrap();
    assert!(h.out()[0].starts_with("BYE "));
    assert!(refused(h.ep.refer(h.now, &answered, REFER_TARGET)));
    assert!(h.out().is_empty());
}

#[test]
fn responses_are_matched_by_branch_and_method() {
    let mut h = H::new();
    let (key, _) = h.confirmed("r6");
    let refer = h.refer(&key);
    // Hang up while the REFER is in flight.
    h.ep.hangup(h.now, &key).unwrap();
    let bye = h.out().remove(0);
    assert_eq!(header(&bye, "CSeq"), "2 BYE");
    // Both are retransmitted (Timer E).
    let sent = h.advance_to(T1);
    assert_eq!(sent.len(), 2);
    // The REFER's branch with a BYE CSeq, and the BYE's branch with a REFER CSeq: no match.
    assert!(
        h.input(&response_to(&refer, 200, "OK", Some("1 BYE")))
            .is_empty()
    );
    assert!(
        h.input(&response_to(&bye, 202, "Accepted", Some("2 REFER")))
            .is_empty()
    );
    assert!(h.events().is_empty());
    // The REFER's 202 and the BYE's 200, each to its own transaction.
    assert!(
        h.input(&response_to(&refer, 202, "Accepted", None))
            .is_empty()
    );
    assert_eq!(
        h.events(),
        vec![SipEvent::TransferAccepted { call: key.clone() }]
    );
    assert!(h.input(&response_to(&bye, 200, "OK", None)).is_empty());
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::LocalBye
        }]
    );
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
}

#[test]
fn bye_answered_first_abandons_the_refer() {
    let mut h = H::new();
    let (key, _) = h.confirmed("r7");
    let refer = h.refer(&key);
    h.ep.hangup(h.now, &key).unwrap();
    let bye = h.out().remove(0);
    assert!(h.input(&response_to(&bye, 200, "OK", None)).is_empty());
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::LocalBye
        }]
    );
    // No more REFER retransmissions, and no transfer event after Ended.
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
    assert!(
        h.input(&response_to(&refer, 202, "Accepted", None))
            .is_empty()
    );
    assert!(h.events().is_empty());
}

#[test]
fn remote_bye_during_refer_ends_without_transfer_event() {
    let mut h = H::new();
    let (key, tag) = h.confirmed("r8");
    h.refer(&key);
    let bye = in_dialog("BYE", "r8", &tag, 2, "z9hG4bKrb", "", "");
    assert!(h.input(&bye)[0].starts_with("SIP/2.0 200 OK"));
    assert_eq!(
        h.events(),
        vec![SipEvent::Ended {
            call: key,
            reason: EndReason::RemoteBye
        }]
    );
    assert!(h.advance_to(Duration::from_secs(60)).is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn incoming_refer_is_not_allowed() {
    let mut h = H::new();
    let (_, tag) = h.confirmed("r9");
    let refer = in_dialog(
        "REFER",
        "r9",
        &tag,
        2,
        "z9hG4bKin",
        "Refer-To: <sip:x@y>\r\n",
        "",
    );
    let out = h.input(&refer);
    assert_eq!(status(&out[0]), "SIP/2.0 405 Method Not Allowed");
    let allow = header(&out[0], "Allow");
    assert!(
        allow.contains("NOTIFY") && !allow.contains("REFER"),
        "{allow}"
    );
}

#[test]
fn refer_over_tcp_is_not_retransmitted_but_times_out() {
    let mut h = H::new();
    h.peer = Peer::tcp("198.51.100.7:40001".parse().unwrap(), 7);
    let (key, _) = h.confirmed("r10");
    h.ep.refer(h.now, &key, REFER_TARGET).unwrap();
    let out = h.out();
    assert!(header(&out[0], "Via").starts_with("SIP/2.0/TCP "));
    assert_eq!(
        header(&out[0], "Contact"),
        "<sip:hotline@192.0.2.10:5060;transport=tcp>"
    );
    assert!(h.advance_to(T1 * 64).is_empty());
    assert_eq!(
        h.events(),
        vec![SipEvent::TransferFailed {
            call: key,
            code: 408
        }]
    );
}
