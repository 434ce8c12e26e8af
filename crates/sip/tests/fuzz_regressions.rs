//! Inputs the fuzz targets (fuzz/, `tests/fuzz/run`) found, each with what
//! the endpoint must do with it.

use std::net::SocketAddr;
use std::time::Instant;

use hotline_sip::{Endpoint, EndpointConfig, Inspected, Peer, SipEvent, inspect};

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0\r\n";

fn invite_with_contact(contact: &str) -> Vec<u8> {
    format!(
        "INVITE sip:100@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKi4\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@192.0.2.1>;tag=a1\r\nTo: <sip:100@192.0.2.10>\r\n\
         Call-ID: c4\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

/// sip_endpoint found it: an INVITE whose Contact held a control character
/// (and no closing `>`) was answered and became a call; hanging up then
/// sent a BYE whose Request-URI held that character, which no SIP parser
/// (ours included) accepts. Such a Contact is now refused with 400.
/// Checks that an INVITE with `contact` is refused `400 Bad Contact
/// header`, by the inspector and by an endpoint, with no call; returns the
/// endpoint (and the peer it heard) for what the test does next.
fn refused_as_bad_contact(contact: &str) -> (Endpoint, Peer) {
    let peer = Peer::udp(SocketAddr::from(([192, 0, 2, 1], 5060)));
    let invite = invite_with_contact(contact);
    assert!(matches!(
        inspect(&invite, peer),
        Inspected::Refused { code: 400, .. }
    ));
    let mut ep = Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()));
    ep.handle_input(Instant::now(), peer, &invite);
    let reply = ep.poll_transmit().expect("an answer");
    assert!(
        reply
            .data
            .starts_with(b"SIP/2.0 400 Bad Contact header\r\n"),
        "{}",
        String::from_utf8_lossy(&reply.data)
    );
    assert!(ep.poll_transmit().is_none());
    assert!(ep.poll_event().is_none(), "no call for a refused INVITE");
    (ep, peer)
}

#[test]
fn contact_with_a_control_character_is_refused() {
    let (mut ep, peer) = refused_as_bad_contact("<sip:alice@192.0.2.1:5060\u{1e}");
    // The same INVITE with a usable Contact is a call.
    let good = invite_with_contact("<sip:alice@192.0.2.1:5060>");
    ep.handle_input(Instant::now(), peer, &good);
    assert!(matches!(ep.poll_event(), Some(SipEvent::Incoming(_))));
}

/// sip_endpoint found it: an INVITE whose Contact was no SIP URI
/// (`sipl:`) became a call, and its BYE went out with that Request-URI
/// (which we ourselves answer 416). RFC 3261 §8.1.1.8: 400.
#[test]
fn contact_that_is_no_sip_uri_is_refused() {
    let peer = Peer::udp(SocketAddr::from(([192, 0, 2, 1], 5060)));
    let mut ep = Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()));
    ep.handle_input(
        Instant::now(),
        peer,
        &invite_with_contact("<sipl:iace@192.0.2.1:5060>"),
    );
    let reply = ep.poll_transmit().expect("an answer");
    assert!(
        reply.data.starts_with(b"SIP/2.0 400 "),
        "{}",
        String::from_utf8_lossy(&reply.data)
    );
    assert!(ep.poll_event().is_none(), "no call for a refused INVITE");
}

/// sip_endpoint found it (2026-12-04, after 1,441,977 executions): an
/// INVITE whose Contact was `<sip:?ali:e@192.0.2.1:5060>` became a call. A
/// `?` in the userinfo is legal to our Request-URI check, but the grammar
/// crate reads the first `?` as the start of URI headers, so the BYE we
/// sent on hang-up had, to every parser built on it (ours included), an
/// empty host. Such a Contact is now refused with 400; the same INVITE with
/// the `?` escaped (`%3F`, RFC 3261 §25.1) is a call whose BYE parses.
#[test]
fn contact_whose_user_starts_headers_to_the_grammar_is_refused() {
    let (mut ep, peer) = refused_as_bad_contact("<sip:?ali:e@192.0.2.1:5060>");
    let good = invite_with_contact("<sip:%3Fali:e@192.0.2.1:5060>");
    let now = Instant::now();
    ep.handle_input(now, peer, &good);
    let Some(SipEvent::Incoming(inc)) = ep.poll_event() else {
        panic!("the escaped Contact is a call");
    };
    while ep.poll_transmit().is_some() {}
    ep.answer(now, &inc.call, "192.0.2.10:30000".parse().unwrap())
        .expect("answer");
    let mut ok = None;
    while let Some(t) = ep.poll_transmit() {
        if t.data.starts_with(b"SIP/2.0 200 ") {
            ok = Some(t.data);
        }
    }
    let tag = our_tag(&ok.expect("a 200"));
    let ack = format!(
        "ACK sip:100@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa4\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@192.0.2.1>;tag=a1\r\nTo: <sip:100@192.0.2.10>;tag={tag}\r\n\
         Call-ID: c4\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    ep.handle_input(now, peer, ack.as_bytes());
    while ep.poll_transmit().is_some() {}
    ep.hangup(now, &inc.call).expect("hang up");
    let bye = ep.poll_transmit().expect("a BYE");
    assert!(
        bye.data.starts_with(b"BYE "),
        "{}",
        String::from_utf8_lossy(&bye.data)
    );
    assert!(
        matches!(inspect(&bye.data, bye.peer), Inspected::Request { .. }),
        "our BYE parses: {}",
        String::from_utf8_lossy(&bye.data)
    );
}

/// sip_endpoint found it: an INVITE without Contact (RFC 2543 style) whose
/// From was no usable URI (`"A" @sip:...>`) became a call, and its BYE used
/// that From as the Request-URI. Now 400.
#[test]
fn contactless_invite_with_an_unusable_from_is_refused() {
    let peer = Peer::udp(SocketAddr::from(([192, 0, 2, 1], 5060)));
    let invite = format!(
        "INVITE sip:100@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKi5\r\n\
         Max-Forwards: 70\r\nFrom: \"A\" @sip:alice @192.0.2.1>;tag=a1\r\nTo: <sip:100@192.0.2.10>\r\n\
         Call-ID: c5\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    let mut ep = Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()));
    ep.handle_input(Instant::now(), peer, invite.as_bytes());
    assert!(ep.poll_event().is_none(), "no call for a refused INVITE");
    let reply = ep.poll_transmit().expect("an answer");
    assert!(
        reply.data.starts_with(b"SIP/2.0 400 "),
        "{}",
        String::from_utf8_lossy(&reply.data)
    );
}

/// Our tag from the To of a response we sent.
fn our_tag(resp: &[u8]) -> String {
    let text = String::from_utf8_lossy(resp);
    let to = text
        .lines()
        .find(|l| l.starts_with("To:"))
        .expect("a To header");
    to.split_once(";tag=")
        .expect("our tag")
        .1
        .trim()
        .to_string()
}

/// A request of the caller's in the dialog of call `c6`.
fn in_dialog(method: &str, cseq: u32, tag: &str, sdp: bool) -> Vec<u8> {
    let body = if sdp { SDP } else { "" };
    let ct = if sdp {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "{method} sip:100@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKd{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@192.0.2.1>;tag=a1\r\nTo: <sip:100@192.0.2.10>;tag={tag}\r\n\
         Call-ID: c6\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@192.0.2.1:5060>\r\n{ct}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The status codes of every response sent, in order; the other events
/// must not be `MediaChanged`.
fn answers_and_no_media_change(ep: &mut Endpoint) -> Vec<u16> {
    let mut codes = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        if let Some(code) = t.data.strip_prefix(b"SIP/2.0 ") {
            let code = std::str::from_utf8(&code[..3]).expect("a status code");
            codes.push(code.parse().expect("a status code"));
        }
    }
    while let Some(ev) = ep.poll_event() {
        assert!(
            !matches!(ev, SipEvent::MediaChanged { .. }),
            "media changed on a call whose session is over: {ev:?}"
        );
    }
    codes
}

/// An inbound call `c6`, answered; returns the endpoint, the 200's time
/// and our tag.
fn answered_call(peer: Peer) -> (Endpoint, Instant, String) {
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()));
    let invite = String::from_utf8(invite_with_contact("<sip:alice@192.0.2.1:5060>"))
        .unwrap()
        .replace("Call-ID: c4", "Call-ID: c6")
        .replace("branch=z9hG4bKi4", "branch=z9hG4bKi6");
    ep.handle_input(now, peer, invite.as_bytes());
    let Some(SipEvent::Incoming(inc)) = ep.poll_event() else {
        panic!("no call");
    };
    while ep.poll_transmit().is_some() {}
    ep.answer(now, &inc.call, "192.0.2.10:30000".parse().unwrap())
        .expect("answer");
    let ok = ep.poll_transmit().expect("the 200");
    assert!(ok.data.starts_with(b"SIP/2.0 200 "));
    (ep, now, our_tag(&ok.data))
}

/// sip_endpoint found it (after 1.3 million runs): a caller that never
/// ACKed our 200 is hung up at Timer H (BYE sent, `Ended` reported), yet
/// an UPDATE with an offer in that dialog was answered 200 and reported as
/// `MediaChanged` for a call the application had already closed. Once our
/// BYE is sent the session is over (RFC 3261 §15.1.1): UPDATE and
/// re-INVITE get 481.
#[test]
fn an_update_after_the_ack_timeout_changes_no_media() {
    let peer = Peer::udp(SocketAddr::from(([192, 0, 2, 1], 5060)));
    let (mut ep, start, tag) = answered_call(peer);
    // No ACK: run the timers past Timer H (64*T1).
    let mut now = start;
    let mut ended = false;
    while let Some(t) = ep
        .poll_timeout()
        .filter(|t| *t < start + std::time::Duration::from_secs(40))
    {
        now = t;
        ep.handle_timeout(now);
        while ep.poll_transmit().is_some() {}
        while let Some(ev) = ep.poll_event() {
            ended |= matches!(ev, SipEvent::Ended { .. });
        }
        if ended {
            break;
        }
    }
    assert!(ended, "Timer H ends the call");

    ep.handle_input(now, peer, &in_dialog("UPDATE", 2, &tag, true));
    ep.handle_input(now, peer, &in_dialog("INVITE", 3, &tag, true));
    assert_eq!(answers_and_no_media_change(&mut ep), [481, 481]);
}

/// The same while our BYE (the application's hang-up) is in flight: the
/// call is not yet `Ended`, but its session is.
#[test]
fn an_update_while_our_bye_is_in_flight_changes_no_media() {
    let peer = Peer::udp(SocketAddr::from(([192, 0, 2, 1], 5060)));
    let (mut ep, now, tag) = answered_call(peer);
    ep.handle_input(now, peer, &in_dialog("ACK", 1, &tag, false));
    let call = hotline_sip::CallKey("c6".into());
    ep.hangup(now, &call).expect("hang up");
    let bye = ep.poll_transmit().expect("our BYE");
    assert!(bye.data.starts_with(b"BYE "));

    ep.handle_input(now, peer, &in_dialog("UPDATE", 2, &tag, true));
    ep.handle_input(now, peer, &in_dialog("INVITE", 3, &tag, true));
    assert_eq!(answers_and_no_media_change(&mut ep), [481, 481]);

    // Before the hang-up, the same UPDATE is a media change.
    let (mut ep, now, tag) = answered_call(peer);
    ep.handle_input(now, peer, &in_dialog("ACK", 1, &tag, false));
    ep.handle_input(now, peer, &in_dialog("UPDATE", 2, &tag, true));
    assert!(
        ep.poll_transmit()
            .unwrap()
            .data
            .starts_with(b"SIP/2.0 200 ")
    );
    assert!(
        std::iter::from_fn(|| ep.poll_event())
            .any(|ev| matches!(ev, SipEvent::MediaChanged { .. })),
        "the UPDATE changed the media"
    );
}

/// An INVITE from 192.0.2.1 with the given To header.
fn invite_with_to(to: &str) -> Vec<u8> {
    String::from_utf8(invite_with_contact("<sip:alice@192.0.2.1:5060>"))
        .unwrap()
        .replace("To: <sip:100@192.0.2.10>", &format!("To: {to}"))
        .into_bytes()
}

/// sip_endpoint found it (after 1.5 million runs): an INVITE whose To was
/// `.0.2.10>,` became a call; the From of our BYE (their To plus our tag,
/// `.0.2.10>,;tag=…`) was two From headers to our own parser. A From or
/// To holding a comma is a list, trailing comma or not (RFC 3261 §7.3.1),
/// and an INVITE's To must still parse with our tag appended: 400.
#[test]
fn invite_whose_to_would_not_echo_is_refused() {
    let peer = Peer::udp(SocketAddr::from(([192, 0, 2, 1], 5060)));
    for to in [
        ".0.2.10>,",
        "<sip:100@192.0.2.10>,",
        ",<sip:100@192.0.2.10>",
    ] {
        let invite = invite_with_to(to);
        assert!(
            matches!(inspect(&invite, peer), Inspected::Refused { code: 400, .. }),
            "{to}"
        );
        let mut ep = Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()));
        ep.handle_input(Instant::now(), peer, &invite);
        let reply = ep.poll_transmit().expect("an answer");
        assert!(
            reply.data.starts_with(b"SIP/2.0 400 "),
            "{to}: {}",
            String::from_utf8_lossy(&reply.data)
        );
        assert!(ep.poll_event().is_none(), "no call for {to}");
    }
    // A comma inside the URI's angle brackets or the quoted name is no list.
    for to in ["<sip:a,b@192.0.2.10>", "\"Sales, EU\" <sip:100@192.0.2.10>"] {
        let mut ep = Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()));
        ep.handle_input(Instant::now(), peer, &invite_with_to(to));
        assert!(
            matches!(ep.poll_event(), Some(SipEvent::Incoming(_))),
            "{to} is a call"
        );
    }
}
