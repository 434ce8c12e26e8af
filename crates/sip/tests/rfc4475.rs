//! The RFC 4475 SIP torture test messages, fed to the sans-IO endpoint the
//! way a peer would send them, with the answer a UAS owes each.
//!
//! The 49 messages are in `tests/rfc4475/<name>.dat`, byte for byte as in
//! the archive of RFC 4475 Appendix A (named as there: wsinv, intmeth,
//! esc01, ...). Each is fed to a fresh [`Endpoint`] as one UDP datagram; the
//! ones whose point is the stream (mcl01, clerr) and the ones whose top Via
//! names TCP are also fed through the [`TcpFramer`] of a TCP connection.
//! Where the RFC leaves a choice (be liberal, or answer 400), the table
//! says which one the gateway makes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use hotline_sip::{Endpoint, EndpointConfig, Peer, SipEvent, TcpFramer};

/// What a UAS does with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Exactly one response, with this status; no call reaches the application.
    Code(u16),
    /// A new call: 100 Trying and an `Incoming` event; it can be rung and answered.
    Call,
    /// Nothing at all (responses that match no transaction).
    Nothing,
}

use Expect::{Call, Code, Nothing};

/// Every message of RFC 4475 §3, in the RFC's order, with its section and
/// the answer asserted.
const TABLE: &[(&str, &str, Expect)] = &[
    // 3.1.1 Valid messages.
    // A tagged INVITE (`;   tag    = 1918181833n`) for a dialog we do not have.
    ("wsinv", "3.1.1.1", Code(481)),
    ("intmeth", "3.1.1.2", Code(501)),
    ("esc01", "3.1.1.3", Call),
    // REGISTER: the gateway is no registrar.
    ("escnull", "3.1.1.4", Code(405)),
    ("esc02", "3.1.1.5", Code(501)),
    ("lwsdisp", "3.1.1.6", Code(200)),
    ("longreq", "3.1.1.7", Call),
    // The REGISTER is answered; the INVITE after it in the datagram is noise.
    ("dblreq", "3.1.1.8", Code(405)),
    ("semiuri", "3.1.1.9", Code(200)),
    ("transports", "3.1.1.10", Code(200)),
    ("mpart01", "3.1.1.11", Code(405)),
    // Responses to nothing we sent.
    ("unreason", "3.1.1.12", Nothing),
    ("noreason", "3.1.1.13", Nothing),
    // 3.1.2 Invalid messages.
    ("badinv01", "3.1.2.1", Code(400)),
    ("clerr", "3.1.2.2", Code(400)),
    ("ncl", "3.1.2.3", Code(400)),
    ("scalar02", "3.1.2.4", Code(400)),
    ("scalarlg", "3.1.2.5", Nothing),
    ("quotbal", "3.1.2.6", Code(400)),
    ("ltgtruri", "3.1.2.7", Code(400)),
    ("lwsruri", "3.1.2.8", Code(400)),
    // Liberal: extra SP between Request-Line elements is ignored.
    ("lwsstart", "3.1.2.9", Call),
    // Liberal: SP after the SIP version is ignored.
    ("trws", "3.1.2.10", Code(200)),
    // Headers in the Request-URI: refused rather than half-honoured.
    ("escruri", "3.1.2.11", Code(400)),
    // A Date in the wrong zone is nothing the gateway reads.
    ("baddate", "3.1.2.12", Call),
    ("regbadct", "3.1.2.13", Code(405)),
    // Liberal: spaces inside <...> of the To (never routed on) are ignored.
    ("badaspec", "3.1.2.14", Code(200)),
    // Unquoted display names with non-token characters: refused.
    ("baddn", "3.1.2.15", Code(400)),
    ("badvers", "3.1.2.16", Code(505)),
    ("mismatch01", "3.1.2.17", Code(400)),
    ("mismatch02", "3.1.2.18", Code(400)),
    ("bigcode", "3.1.2.19", Nothing),
    // 3.2 Transaction layer.
    // `branch=z9hG4bK` alone: taken as it is (the RFC allows that or 400).
    ("badbranch", "3.2.1", Code(200)),
    // 3.3 Application layer.
    ("insuf", "3.3.1", Code(400)),
    ("unkscm", "3.3.2", Code(416)),
    ("novelsc", "3.3.3", Code(416)),
    // REGISTER again (§3.3.7: a non-registrar answers 405).
    ("unksm2", "3.3.4", Code(405)),
    ("bext01", "3.3.5", Code(420)),
    ("invut", "3.3.6", Code(415)),
    ("regaut01", "3.3.7", Code(405)),
    ("multi01", "3.3.8", Code(400)),
    ("mcl01", "3.3.9", Code(400)),
    ("bcast", "3.3.10", Nothing),
    // An endpoint processes it as if Max-Forwards were still positive.
    ("zeromf", "3.3.11", Code(200)),
    ("cparam01", "3.3.12", Code(405)),
    ("cparam02", "3.3.13", Code(405)),
    ("regescrt", "3.3.14", Code(405)),
    ("sdp01", "3.3.15", Code(406)),
    // 3.4 Backward compatibility: RFC 2543 syntax, no Contact, no branch.
    ("inv2543", "3.4.1", Call),
];

/// Messages whose top Via names TCP, and the stream-specific ones: also
/// fed over a TCP connection through the framer.
const OVER_TCP: &[&str] = &[
    "intmeth", "esc02", "longreq", "scalar02", "scalarlg", "trws", "unkscm", "novelsc", "regaut01",
];

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [manifest_dir().as_str(), "tests", "rfc4475"]
        .iter()
        .collect::<PathBuf>()
        .join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn source() -> SocketAddr {
    "192.0.2.77:5062".parse().unwrap()
}

fn endpoint() -> Endpoint {
    Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()))
}

/// What one input produced.
struct Fed {
    out: Vec<String>,
    events: Vec<SipEvent>,
}

fn drain(ep: &mut Endpoint, peer: Peer) -> Fed {
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        assert_eq!(t.peer, peer, "responses go back to the source");
        out.push(String::from_utf8_lossy(&t.data).into_owned());
    }
    let events = std::iter::from_fn(|| ep.poll_event()).collect();
    Fed { out, events }
}

fn feed_udp(ep: &mut Endpoint, now: Instant, data: &[u8]) -> Fed {
    let peer = Peer::udp(source());
    ep.handle_input(now, peer, data);
    drain(ep, peer)
}

/// Feeds `data` as the bytes of TCP connection 7: what came out, and
/// whether the framer gave up on the stream (the shell then closes it).
fn feed_tcp(ep: &mut Endpoint, now: Instant, data: &[u8]) -> (Fed, bool, TcpFramer) {
    let peer = Peer::tcp(source(), 7);
    let mut framer = TcpFramer::new();
    framer.push(data);
    let mut closed = false;
    loop {
        match framer.pop() {
            Ok(Some(msg)) => ep.handle_input(now, peer, &msg),
            Ok(None) => break,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    (drain(ep, peer), closed, framer)
}

fn status(msg: &str) -> u16 {
    msg.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {msg}"))
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// Checks `fed` against `expect`; for a call, rings and answers it.
fn check(ep: &mut Endpoint, now: Instant, fed: Fed, expect: Expect) -> Result<(), String> {
    let Fed { out, events } = fed;
    let fail = |what: &str| Err(format!("{what}; sent {out:?}, events {events:?}"));
    match expect {
        Nothing => {
            if !out.is_empty() || !events.is_empty() {
                return fail("expected nothing");
            }
        }
        Code(code) => {
            if out.len() != 1 || status(&out[0]) != code {
                return fail(&format!("expected one {code}"));
            }
            if events.iter().any(|e| matches!(e, SipEvent::Incoming(_))) {
                return fail("a refused request reached the application");
            }
        }
        Call => {
            let [SipEvent::Incoming(inc)] = events.as_slice() else {
                return fail("expected one Incoming");
            };
            if out.len() != 1 || !out[0].starts_with("SIP/2.0 100 Trying\r\n") {
                return fail("expected 100 Trying");
            }
            let key = inc.call.clone();
            ep.ring(now, &key).map_err(|e| e.to_string())?;
            ep.answer(now, &key, "192.0.2.10:30000".parse().unwrap())
                .map_err(|e| e.to_string())?;
            let mut codes = Vec::new();
            while let Some(t) = ep.poll_transmit() {
                codes.push(status(&String::from_utf8_lossy(&t.data)));
            }
            if codes != [180, 200] {
                return Err(format!("ring and answer sent {codes:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn the_fixtures_are_the_rfc_messages() {
    // 49 messages (the archive's stray test.dat is not one of them).
    let dir = PathBuf::from(manifest_dir()).join("tests/rfc4475");
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "dat"))
        })
        .count();
    assert_eq!(on_disk, 49);
    assert_eq!(TABLE.len(), 49);
    // CRLF line ends survived (a checkout that converted them would turn
    // "must reject" messages into something else).
    let wsinv = fixture("wsinv");
    assert!(
        wsinv.starts_with(
            b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\nTO :\r\n"
        )
    );
    assert_eq!(fixture("mpart01").len(), 1290);
}

#[test]
fn every_torture_message_gets_its_answer_over_udp() {
    let mut failures = Vec::new();
    for &(name, section, expect) in TABLE {
        let now = Instant::now();
        let mut ep = endpoint();
        let fed = feed_udp(&mut ep, now, &fixture(name));
        if let Err(e) = check(&mut ep, now, fed, expect) {
            failures.push(format!("{name} (§{section}): {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_tcp_ones_get_the_same_answer_over_tcp() {
    let mut failures = Vec::new();
    for &name in OVER_TCP {
        let &(_, section, expect) = TABLE.iter().find(|(n, _, _)| *n == name).unwrap();
        let now = Instant::now();
        let mut ep = endpoint();
        let (fed, closed, _) = feed_tcp(&mut ep, now, &fixture(name));
        if closed {
            failures.push(format!("{name}: the stream was closed"));
        }
        if let Err(e) = check(&mut ep, now, fed, expect) {
            failures.push(format!("{name} (§{section}, TCP): {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_torture_message_survives_every_truncation() {
    // Nothing panics on any prefix of any message (UDP: a cut datagram).
    let now = Instant::now();
    for &(name, _, _) in TABLE {
        let data = fixture(name);
        let mut ep = endpoint();
        for cut in 0..=data.len() {
            ep.handle_input(now, Peer::udp(source()), data.get(..cut).unwrap());
            while ep.poll_transmit().is_some() {}
            while ep.poll_event().is_some() {}
        }
    }
}

// ----- the answers in detail (issue 13) -----

fn replace(data: &[u8], old: &str, new: &str) -> Vec<u8> {
    let text = String::from_utf8(data.to_vec()).expect("a text fixture");
    assert!(text.contains(old), "no `{old}`");
    text.replacen(old, new, 1).into_bytes()
}

fn only(fed: &Fed) -> &str {
    assert_eq!(fed.out.len(), 1, "{:?}", fed.out);
    &fed.out[0]
}

#[test]
fn a_branch_reused_by_another_host_is_a_new_transaction() {
    // RFC 3261 §17.2.3: branch + sent-by + method. badbranch (§3.2.1) has
    // the bare magic cookie as branch, so another host may well reuse it.
    let now = Instant::now();
    let mut ep = endpoint();
    let first = fixture("badbranch");
    let a = feed_udp(&mut ep, now, &first);
    let a = only(&a).to_string();
    assert_eq!(status(&a), 200);
    assert_eq!(header(&a, "CSeq"), Some("8 OPTIONS"));

    let other = replace(
        &replace(
            &first,
            "Via: SIP/2.0/UDP 192.0.2.1;",
            "Via: SIP/2.0/UDP 192.0.2.99;",
        ),
        "Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n",
        "Call-ID: badbranch.other",
    );
    let b = feed_udp(&mut ep, now, &other);
    let b = only(&b);
    assert_eq!(
        header(b, "Call-ID"),
        Some("badbranch.other"),
        "answered with the other host's cached response: {b}"
    );

    // The first one again is a retransmission: the same response, byte for byte.
    let again = feed_udp(&mut ep, now, &first);
    assert_eq!(only(&again), a);
}

#[test]
fn a_required_extension_is_420_with_unsupported() {
    // §3.3.5: the Require tokens are listed; Proxy-Require is a proxy's business.
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("bext01"));
    let r = only(&fed);
    assert!(r.starts_with("SIP/2.0 420 Bad Extension\r\n"), "{r}");
    assert_eq!(
        header(r, "Unsupported"),
        Some("nothingSupportsThis, nothingSupportsThisEither")
    );
    // An INVITE likewise, before any call exists.
    let invite = replace(
        &fixture("esc01"),
        "Max-Forwards: 87\r\n",
        "Max-Forwards: 87\r\nRequire: 100rel\r\n",
    );
    let fed = feed_udp(&mut ep, now, &invite);
    assert_eq!(status(only(&fed)), 420);
    assert_eq!(header(only(&fed), "Unsupported"), Some("100rel"));
    assert!(fed.events.is_empty(), "{:?}", fed.events);
    // Never for CANCEL (RFC 3261 §8.2.2.3): it gets its ordinary 481.
    let cancel = "CANCEL sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKc1\r\n\
        From: <sip:a@example.com>;tag=1\r\nTo: <sip:user@example.com>\r\nCall-ID: c-req\r\n\
        CSeq: 1 CANCEL\r\nRequire: foo\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let fed = feed_udp(&mut ep, now, cancel.as_bytes());
    assert_eq!(status(only(&fed)), 481);
}

#[test]
fn unknown_request_uri_schemes_are_416() {
    // §3.3.2 and §3.3.3.
    for name in ["unkscm", "novelsc"] {
        let now = Instant::now();
        let mut ep = endpoint();
        let fed = feed_udp(&mut ep, now, &fixture(name));
        assert!(
            only(&fed).starts_with("SIP/2.0 416 Unsupported URI Scheme\r\n"),
            "{name}: {}",
            only(&fed)
        );
    }
    // tel: and sips: are schemes we serve (sips: over what it came on).
    for uri in ["tel:+15551234567", "sips:user@example.com"] {
        let now = Instant::now();
        let mut ep = endpoint();
        let req = replace(
            &fixture("lwsdisp"),
            "OPTIONS sip:user@example.com",
            &format!("OPTIONS {uri}"),
        );
        let fed = feed_udp(&mut ep, now, &req);
        assert_eq!(status(only(&fed)), 200, "{uri}");
    }
    // `<sip:...>` is no URI at all (§3.1.2.7): 400, not 416.
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("ltgtruri"));
    assert!(only(&fed).starts_with("SIP/2.0 400 Malformed Request-URI\r\n"));
}

#[test]
fn a_broken_via_is_400_and_not_echoed_broken() {
    // §3.1.2.1: `Via: SIP/2.0/UDP 192.0.2.15;;,;,,`.
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("badinv01"));
    let r = only(&fed);
    assert_eq!(status(r), 400, "{r}");
    let vias: Vec<&str> = r
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("Via: "))
        .collect();
    assert_eq!(vias, ["SIP/2.0/UDP 192.0.2.15;received=192.0.2.77"], "{r}");
    assert!(fed.events.is_empty());
}

#[test]
fn single_headers_given_twice_are_400() {
    // §3.3.8: two Call-IDs, CSeqs, Froms and Tos.
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("multi01"));
    assert_eq!(status(only(&fed)), 400);
    assert!(fed.events.is_empty());
    // Each alone is enough.
    let base = fixture("esc01");
    for (old, new) in [
        ("i: esc01", "Call-ID: other\r\ni: esc01"),
        (
            "CSeq: 234234 INVITE",
            "CSeq: 234234 INVITE\r\nCSeq: 234235 INVITE",
        ),
        ("Max-Forwards: 87", "Max-Forwards: 87\r\nMax-Forwards: 86"),
        (
            "To: sip:%75se%72@example.com",
            "To: sip:%75se%72@example.com\r\nt: <sip:other@example.com>",
        ),
        (
            "From: <sip:I%20have%20spaces@example.net>;tag=938",
            "From: <sip:I%20have%20spaces@example.net>;tag=938, <sip:x@example.net>",
        ),
    ] {
        let mut ep = endpoint();
        let fed = feed_udp(&mut ep, now, &replace(&base, old, new));
        assert_eq!(status(only(&fed)), 400, "{new}: {}", only(&fed));
        assert!(fed.events.is_empty(), "{new}");
    }
}

#[test]
fn conflicting_content_lengths_are_400_and_close_the_stream() {
    // §3.3.9 over UDP: 400, the datagram discarded.
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("mcl01"));
    assert!(only(&fed).starts_with("SIP/2.0 400 Conflicting Content-Length headers\r\n"));
    // Over TCP: 400, then the stream is given up (nothing after it is read).
    let mut ep = endpoint();
    let mut stream = fixture("mcl01");
    stream.extend_from_slice(&fixture("lwsdisp"));
    let (fed, closed, mut framer) = feed_tcp(&mut ep, now, &stream);
    assert_eq!(status(only(&fed)), 400);
    assert!(closed, "the connection stays open");
    framer.push(&fixture("lwsdisp"));
    assert!(framer.pop().is_err());
    // The same value twice is one Content-Length.
    let mut ep = endpoint();
    let twice = replace(&fixture("lwsdisp"), "l: 0", "l: 0\r\nContent-Length: 0");
    let (fed, closed, _) = feed_tcp(&mut ep, now, &twice);
    assert_eq!(status(only(&fed)), 200);
    assert!(!closed);
}

#[test]
fn clerr_over_tcp_waits_for_the_rest_of_the_body() {
    // §3.1.2.2: on a stream, a Content-Length beyond what came is a message
    // still arriving.
    let now = Instant::now();
    let mut ep = endpoint();
    let data = fixture("clerr");
    let (fed, closed, framer) = feed_tcp(&mut ep, now, &data);
    assert!(fed.out.is_empty() && fed.events.is_empty());
    assert!(!closed);
    assert_eq!(framer.buffered(), data.len());
}

#[test]
fn an_invite_that_does_not_accept_sdp_is_406() {
    // §3.3.15: Accept: text/nobodyKnowsThis; our answer would be SDP.
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("sdp01"));
    assert_eq!(status(only(&fed)), 406, "{}", only(&fed));
    assert!(
        !fed.events
            .iter()
            .any(|e| matches!(e, SipEvent::Incoming(_))),
        "{:?}",
        fed.events
    );
    // application/* (with parameters) is fine.
    let mut ep = endpoint();
    let ok = replace(
        &fixture("sdp01"),
        "Accept: text/nobodyKnowsThis",
        "Accept: text/plain, Application/*;q=0.5",
    );
    let fed = feed_udp(&mut ep, now, &ok);
    assert!(only(&fed).starts_with("SIP/2.0 100 Trying"));
}

#[test]
fn an_rfc2543_invite_without_contact_is_a_call_we_can_end() {
    // §3.4.1: no Contact, no branch, no Max-Forwards, no Content-Length,
    // no From tag. Our BYE goes to the From URI over the INVITE's flow.
    let now = Instant::now();
    let mut ep = endpoint();
    let data = fixture("inv2543");
    let fed = feed_udp(&mut ep, now, &data);
    assert!(only(&fed).starts_with("SIP/2.0 100 Trying\r\n"));
    let [SipEvent::Incoming(inc)] = fed.events.as_slice() else {
        panic!("{:?}", fed.events)
    };
    assert_eq!(inc.callee, "UserB");
    let key = inc.call.clone();
    ep.answer(now, &key, "192.0.2.10:30000".parse().unwrap())
        .unwrap();
    let fed = drain(&mut ep, Peer::udp(source()));
    let ok = only(&fed).to_string();
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
    let to = header(&ok, "To").unwrap();
    let tag = to.split(";tag=").nth(1).unwrap();
    // The retransmitted INVITE (same Call-ID, CSeq and From) is absorbed.
    let fed = feed_udp(&mut ep, now, &data);
    assert_eq!(only(&fed), ok);
    let ack = format!(
        "ACK sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP iftgw.example.com\r\n\
         From: <sip:+13035551111@ift.client.example.net;user=phone>\r\n\
         To: sip:+16505552222@ss1.example.net;user=phone;tag={tag}\r\n\
         Call-ID: inv2543.1717@ift.client.example.com\r\nCSeq: 56 ACK\r\n\r\n"
    );
    let fed = feed_udp(&mut ep, now, ack.as_bytes());
    assert!(fed.out.is_empty());
    assert_eq!(fed.events, [SipEvent::Confirmed { call: key.clone() }]);
    ep.hangup(now, &key).unwrap();
    let fed = drain(&mut ep, Peer::udp(source()));
    assert!(
        only(&fed)
            .starts_with("BYE sip:+13035551111@ift.client.example.net;user=phone SIP/2.0\r\n"),
        "{}",
        only(&fed)
    );
}

#[test]
fn a_to_tag_written_with_spaces_is_a_tag() {
    // §3.1.1.1: `TO : sip:... ;   tag    = 1918181833n`. A tagged INVITE
    // for a dialog we do not have is 481, with no second tag added.
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("wsinv"));
    let r = only(&fed);
    assert!(r.starts_with("SIP/2.0 481 "), "{r}");
    assert_eq!(r.matches("tag").count(), 2, "one From tag, one To tag: {r}");
    assert!(fed.events.is_empty());
}

#[test]
fn rport_is_filled_in() {
    // RFC 3581 §4, on mpart01's `;rport` (its 405).
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("mpart01"));
    let r = only(&fed);
    assert_eq!(status(r), 405);
    assert_eq!(
        header(r, "Via"),
        Some(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport=5062;received=192.0.2.77"
        )
    );
}

#[test]
fn an_unterminated_display_name_is_400() {
    // §3.1.2.6: `To: "Mr. J. User <sip:j.user@example.com>`; no tag is
    // appended inside the open quote.
    let now = Instant::now();
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("quotbal"));
    let r = only(&fed);
    assert!(r.starts_with("SIP/2.0 400 Bad To header\r\n"), "{r}");
    assert_eq!(
        header(r, "To"),
        Some("\"Mr. J. User <sip:j.user@example.com>")
    );
    assert!(fed.events.is_empty());
}

#[test]
fn requests_not_served_are_counted() {
    // 405 (REGISTER), 501 (unknown method) and 416 are counted apart from
    // the malformed ones (and logged at debug only).
    let now = Instant::now();
    let mut ep = endpoint();
    for name in ["escnull", "intmeth", "esc02", "unkscm", "badinv01"] {
        feed_udp(&mut ep, now, &fixture(name));
    }
    let s = ep.edge_counters().snapshot();
    assert_eq!(
        (s.method_not_allowed, s.not_implemented, s.bad_requests),
        (1, 2, 2),
        "{s:?}"
    );
}

#[test]
fn version_hops_and_bodies_get_their_codes() {
    let now = Instant::now();
    // §3.1.2.16: SIP/7.0 → 505.
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("badvers"));
    assert_eq!(status(only(&fed)), 505);
    // An INVITE with Max-Forwards 0 → 483 (an OPTIONS, zeromf, gets 200).
    let mut ep = endpoint();
    let fed = feed_udp(
        &mut ep,
        now,
        &replace(&fixture("esc01"), "Max-Forwards: 87", "Max-Forwards: 0"),
    );
    assert_eq!(status(only(&fed)), 483);
    // §3.3.6: a body we cannot read → 415 with Accept.
    let mut ep = endpoint();
    let fed = feed_udp(&mut ep, now, &fixture("invut"));
    assert_eq!(status(only(&fed)), 415);
    assert_eq!(header(only(&fed), "Accept"), Some("application/sdp"));
    // SDP without a codec we have → 488.
    let mut ep = endpoint();
    let fed = feed_udp(
        &mut ep,
        now,
        &replace(&fixture("esc01"), "RTP/AVP 0 12", "RTP/AVP 9 12"),
    );
    assert_eq!(status(only(&fed)), 488);
}

/// The package's directory as `cargo test` gives it at run time (the
/// compile-time one is stale when a shared target dir reuses this test
/// binary for a checkout elsewhere).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
