//! SDP offer parsing and negotiation (`hotline_sip::negotiate`, what the
//! endpoint runs on every INVITE, re-INVITE, UPDATE and 2xx body).
//!
//! Beyond "no panic": a negotiated offer picks a payload type the offer
//! listed, never the telephone-event one as the codec; and the result,
//! written back as a plain SDP offer, negotiates to exactly the same result.
#![no_main]

use std::fmt::Write as _;
use std::net::IpAddr;

use hotline_sip::{RemoteMedia, negotiate};
use libfuzzer_sys::fuzz_target;

/// A minimal offer that says exactly what `m` says.
fn render(m: &RemoteMedia) -> String {
    let (family, ip) = match m.rtp_addr.ip() {
        IpAddr::V4(v4) => ("IP4", v4.to_string()),
        IpAddr::V6(v6) => ("IP6", v6.to_string()),
    };
    let mut s = format!(
        "v=0\r\no=- 1 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {}",
        m.rtp_addr.port(),
        m.payload_type
    );
    if let Some(d) = m.dtmf_payload_type {
        let _ = write!(s, " {d}");
    }
    let _ = write!(
        s,
        "\r\na=rtpmap:{} {}/8000\r\n",
        m.payload_type,
        m.codec.name()
    );
    if let Some(d) = m.dtmf_payload_type {
        let _ = write!(s, "a=rtpmap:{d} telephone-event/8000\r\n");
    }
    let _ = write!(s, "a={}\r\n", m.direction.attribute());
    s
}

fuzz_target!(|data: &[u8]| {
    let Ok(media) = negotiate(data) else {
        return;
    };
    assert_ne!(media.rtp_addr.port(), 0, "port 0 is a rejected stream");
    assert_ne!(Some(media.payload_type), media.dtmf_payload_type);
    let text = std::str::from_utf8(data).expect("negotiated a non-UTF-8 body");
    let listed = text.split('\n').any(|l| {
        let mut f = l.strip_prefix("m=").unwrap_or_default().split_whitespace();
        f.next() == Some("audio")
            && f.skip(2)
                .any(|pt| pt.parse::<u8>() == Ok(media.payload_type))
    });
    assert!(listed, "chose a payload type no audio m= line lists");
    let again = render(&media);
    assert_eq!(
        negotiate(again.as_bytes()),
        Ok(media),
        "round trip through\n{again}"
    );
});
