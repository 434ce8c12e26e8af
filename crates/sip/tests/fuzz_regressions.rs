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
#[test]
fn contact_with_a_control_character_is_refused() {
    let peer = Peer::udp(SocketAddr::from(([192, 0, 2, 1], 5060)));
    let invite = invite_with_contact("<sip:alice@192.0.2.1:5060\u{1e}");
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
