//! RTP (`RtpPacket::parse`), RFC 4733 telephone-event
//! (`TelephoneEvent::parse`, `DigitReceiver`) and the media session that
//! receives a call's RTP (`MediaSession::on_rtp`, `on_tick`).
//!
//! Input: datagrams, each a length byte then that many bytes; the first
//! byte of the input picks the codec and whether telephone-event is on.
//!
//! Beyond "no panic":
//! - a parsed packet's header fields are the bytes they come from, its
//!   payload lies inside the datagram after the fixed header and CSRCs,
//!   and re-writing the header with `RtpSender` parses back the same;
//! - `TelephoneEvent::parse` of any 4+ bytes is `Some` and of fewer `None`,
//!   and `to_bytes` gives back the block (reserved bit cleared);
//! - the same telephone-event packet fed twice gives a digit at most once;
//! - the session's statistics count every datagram it was given, none
//!   twice as received or invalid.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_media::{
    Codec, DigitReceiver, MediaConfig, MediaEvent, MediaSession, RTP_HEADER_LEN, RtpPacket,
    RtpSender, TelephoneEvent,
};
use libfuzzer_sys::fuzz_target;

fn check_packet(d: &[u8]) {
    match TelephoneEvent::parse(d) {
        Some(ev) => {
            assert!(d.len() >= 4);
            let want = [d[0], d[1] & !0x40, d[2], d[3]];
            assert_eq!(ev.to_bytes(), want);
            assert!(ev.volume <= 63);
        }
        None => assert!(d.len() < 4),
    }
    let Ok(p) = RtpPacket::parse(d) else {
        return;
    };
    assert!(d.len() >= RTP_HEADER_LEN);
    assert_eq!(d[0] >> 6, 2);
    assert_eq!(p.payload_type, d[1] & 0x7F);
    assert_eq!(p.marker, d[1] & 0x80 != 0);
    assert_eq!(p.sequence, u16::from_be_bytes([d[2], d[3]]));
    assert_eq!(p.timestamp, u32::from_be_bytes([d[4], d[5], d[6], d[7]]));
    assert_eq!(p.ssrc, u32::from_be_bytes([d[8], d[9], d[10], d[11]]));
    assert_eq!(p.csrc_count, d[0] & 0x0F);
    let start = p.payload.as_ptr() as usize - d.as_ptr() as usize;
    assert!(start >= RTP_HEADER_LEN + 4 * usize::from(p.csrc_count));
    assert!(start + p.payload.len() <= d.len());

    // Our own header around the same payload parses back to the same fields.
    let mut sender = RtpSender::with_state(p.ssrc, p.sequence, p.timestamp);
    let mut out = Vec::new();
    sender.write_header(p.payload_type, p.marker, p.timestamp, &mut out);
    out.extend_from_slice(p.payload);
    let q = RtpPacket::parse(&out).expect("our own packet parses");
    assert_eq!(
        (
            q.payload_type,
            q.marker,
            q.sequence,
            q.timestamp,
            q.ssrc,
            q.payload
        ),
        (
            p.payload_type,
            p.marker,
            p.sequence,
            p.timestamp,
            p.ssrc,
            p.payload
        )
    );

    // RFC 4733: a packet repeated is one digit at most.
    let now = Instant::now();
    let mut rx = DigitReceiver::new();
    let first = rx.on_packet(&p, now);
    assert!(rx.on_packet(&p, now).is_none(), "one event reported twice");
    if let Some(d) = first {
        assert!("0123456789*#ABCD".contains(d.digit));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let codec = if flags & 1 == 0 {
        Codec::Pcmu
    } else {
        Codec::Pcma
    };
    let remote = SocketAddr::from(([192, 0, 2, 1], 4000));
    let mut cfg = MediaConfig::new(codec, remote);
    if flags & 2 != 0 {
        cfg.dtmf_payload_type = None;
    }
    let mut now = Instant::now();
    let mut session = MediaSession::new(cfg, now);
    let mut out = Vec::new();
    let mut fed = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (pkt, tail) = tail.split_at(n);
        rest = tail;
        check_packet(pkt);
        // Every other source byte: a different sender address.
        let from = if len & 0x80 != 0 {
            SocketAddr::from(([198, 51, 100, 9], 5000))
        } else {
            remote
        };
        for ev in session.on_rtp(now, from, pkt).iter() {
            if let MediaEvent::Digit(d) = ev {
                assert!("0123456789*#ABCD".contains(d.digit));
            }
        }
        fed += 1;
        now += Duration::from_millis(u64::from(len & 0x1F));
        out.clear();
        let _ = session.on_tick(now, &mut out);
    }
    let st = session.stats();
    // Every datagram is counted; a valid packet of the accepted source but
    // of another payload type counts as received and as ignored.
    assert!(
        st.packets_received + st.packets_invalid + st.packets_ignored >= fed
            && st.packets_received + st.packets_invalid <= fed,
        "datagrams not accounted for: {st:?} after {fed}"
    );
    now += Duration::from_secs(31);
    out.clear();
    let _ = session.on_tick(now, &mut out);
});
