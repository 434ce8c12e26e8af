//! The SIP message parser (`hotline_sip::inspect`, the parse the endpoint
//! runs on every datagram and framed stream message) and the TCP framer.
//!
//! Beyond "no panic":
//! - a request that passes validation, re-serialised from what the parser
//!   kept, parses again to the same method, Call-ID, CSeq and branch (or,
//!   when its Vias were oddly spaced, is at least answered with 400);
//! - the 200 the endpoint would send to it parses as a 200 response with
//!   the same Call-ID, CSeq number and method;
//! - a stateless refusal is a Status-Line with the refusal's code and never
//!   parses as a request;
//! - the TCP framer, fed the input in pieces, only ever returns messages
//!   made of bytes it was given, in order.
#![no_main]

use std::net::SocketAddr;

use hotline_sip::{Inspected, Peer, TcpFramer, inspect};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8], peer: Peer) {
    match inspect(data, peer) {
        Inspected::Request {
            method,
            call_id,
            cseq,
            branch,
            reserialized,
            reply,
        } => {
            match inspect(&reserialized, peer) {
                Inspected::Request {
                    method: m2,
                    call_id: c2,
                    cseq: s2,
                    branch: b2,
                    ..
                } => {
                    assert_eq!((&m2, &c2, s2, &b2), (&method, &call_id, cseq, &branch));
                }
                // Vias are echoed as the grammar crate split them, which
                // for some odd-but-valid spacing differs from our own Via
                // check: the copy may then be refused, but it must still be
                // answered, never dropped.
                Inspected::Refused { code: 400, .. } => {}
                other => panic!(
                    "re-serialised request no longer parses: {other:?}\n{}",
                    String::from_utf8_lossy(&reserialized)
                ),
            }
            // The 200 echoes Call-ID and CSeq as received; when our own
            // (client-side, stricter) response parser reads it, it reads the
            // same Call-ID, CSeq number and method.
            assert!(reply.starts_with(b"SIP/2.0 200 OK\r\n"));
            let echoed = format!("\r\nCall-ID: {call_id}\r\n");
            assert!(
                reply.windows(echoed.len()).any(|w| w == echoed.as_bytes()),
                "Call-ID not echoed"
            );
            if let Inspected::Response {
                code,
                call_id: c2,
                cseq: s2,
                cseq_method,
            } = inspect(&reply, peer)
            {
                assert_eq!(code, 200);
                assert_eq!((&c2, s2, &cseq_method), (&call_id, cseq, &method));
            }
        }
        Inspected::Refused { code, reply } => {
            assert!((400..700).contains(&code), "refusal with {code}");
            let start = format!("SIP/2.0 {code} ");
            assert!(reply.starts_with(start.as_bytes()));
            assert!(!matches!(
                inspect(&reply, peer),
                Inspected::Request { .. } | Inspected::Refused { .. }
            ));
        }
        Inspected::Response { code, .. } => assert!((100..700).contains(&code)),
        Inspected::Dropped => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let addr = SocketAddr::from(([192, 0, 2, 1], 5060));
    check(data, Peer::udp(addr));
    check(data, Peer::tcp(addr, 1));

    // The stream framer: the same bytes in pieces whose sizes the input's
    // first byte picks.
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut framer = TcpFramer::new();
    let mut popped = 0usize;
    let mut pushed = 0usize;
    'feed: for piece in data.chunks(step) {
        framer.push(piece);
        pushed += piece.len();
        loop {
            match framer.pop() {
                Ok(Some(msg)) => {
                    assert!(!msg.is_empty());
                    popped += msg.len();
                    assert!(popped <= pushed, "framer made up bytes");
                    assert!(msg.len() <= TcpFramer::MAX_HEADER + 4 + TcpFramer::MAX_BODY);
                    check(&msg, Peer::tcp(addr, 1));
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
        assert!(framer.buffered() <= pushed - popped);
    }
});
