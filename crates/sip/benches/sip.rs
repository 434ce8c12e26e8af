//! Hot paths of the SIP layer: an INVITE through the sans-IO façade
//! (framing, parsing, validation, transaction, dialog, SDP, 100 Trying),
//! its retransmission, SDP negotiation alone and TCP framing.
//! Run: `cargo bench -p hotline-sip`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hotline_sip::{Endpoint, EndpointConfig, Peer, TcpFramer, negotiate};

const SDP: &str = "v=0\r\no=- 53655765 2353687637 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
t=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

/// A typical carrier INVITE: Via with rport, display name, P-Asserted-Identity,
/// Allow/Supported, SDP offer of PCMU, PCMA and telephone-event.
fn invite(call_id: &str) -> Vec<u8> {
    format!(
        "INVITE sip:+18005550100@192.0.2.10:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 69\r\n\
         From: \"Alice Example\" <sip:+14155550123@192.0.2.1>;tag=1928301774\r\n\
         To: <sip:+18005550100@192.0.2.10>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 314159 INVITE\r\n\
         Contact: <sip:+14155550123@192.0.2.1:5060;transport=udp>\r\n\
         P-Asserted-Identity: \"Alice Example\" <sip:+14155550123@192.0.2.1>\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
         Supported: timer\r\n\
         User-Agent: carrier-sbc/1.0\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

fn drain(ep: &mut Endpoint) {
    while let Some(t) = ep.poll_transmit() {
        black_box(t);
    }
    while let Some(e) = ep.poll_event() {
        black_box(e);
    }
}

fn bench_invite(c: &mut Criterion) {
    let cfg = EndpointConfig::new("192.0.2.10:5060".parse().unwrap());
    let peer = Peer::udp("192.0.2.1:5060".parse().unwrap());
    let msg = invite("a84b4c76e66710@192.0.2.1");

    c.bench_function(
        "invite: handle_input on a fresh endpoint (parse, 100 Trying, Incoming)",
        |b| {
            b.iter_batched(
                || Endpoint::new(cfg.clone()),
                |mut ep| {
                    ep.handle_input(Instant::now(), peer, black_box(&msg));
                    drain(&mut ep);
                    ep
                },
                BatchSize::SmallInput,
            )
        },
    );

    c.bench_function("invite: handle_input + answer (200 OK with SDP)", |b| {
        b.iter_batched(
            || Endpoint::new(cfg.clone()),
            |mut ep| {
                let now = Instant::now();
                ep.handle_input(now, peer, black_box(&msg));
                let mut key = None;
                while let Some(t) = ep.poll_transmit() {
                    black_box(t);
                }
                while let Some(e) = ep.poll_event() {
                    if let hotline_sip::SipEvent::Incoming(call) = e {
                        key = Some(call.call);
                    }
                }
                if let Some(k) = key {
                    let _ = ep.answer(now, &k, "192.0.2.10:20000".parse().unwrap());
                }
                drain(&mut ep);
                ep
            },
            BatchSize::SmallInput,
        )
    });

    c.bench_function("invite: retransmission absorbed by the transaction", |b| {
        let mut ep = Endpoint::new(cfg.clone());
        ep.handle_input(Instant::now(), peer, &msg);
        drain(&mut ep);
        b.iter(|| {
            ep.handle_input(Instant::now(), peer, black_box(&msg));
            drain(&mut ep);
        })
    });
}

fn bench_parts(c: &mut Criterion) {
    c.bench_function("sdp: negotiate a PCMU/PCMA/telephone-event offer", |b| {
        b.iter(|| negotiate(black_box(SDP.as_bytes())))
    });
    let msg = invite("tcp-1@192.0.2.1");
    c.bench_function("tcp framing: push + pop one INVITE", |b| {
        let mut f = TcpFramer::new();
        b.iter(|| {
            f.push(black_box(&msg));
            black_box(f.pop().unwrap())
        })
    });
}

criterion_group!(benches, bench_invite, bench_parts);
criterion_main!(benches);
