//! A small SDP parser and answer builder for one audio stream of G.711
//! (RFC 4566 syntax, RFC 3264 offer/answer), plus RFC 4733 telephone-event.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The audio codecs we can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Media direction attribute (RFC 3264 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// The offerer only sends (e.g. puts us on hold).
    SendOnly,
    /// The offerer only receives.
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl Direction {
    /// The direction to answer with (RFC 3264 §6.1).
    pub fn mirrored(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// The SDP attribute name.
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(a: &str) -> Option<Direction> {
        match a {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// The remote side's audio stream after negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteMedia {
    /// Where to send RTP.
    pub rtp_addr: SocketAddr,
    /// The chosen codec.
    pub codec: Codec,
    /// The payload type the remote party used for it.
    pub payload_type: u8,
    /// The telephone-event/8000 payload type, if offered.
    pub dtmf_payload_type: Option<u8>,
    /// The direction as offered by the remote party.
    pub direction: Direction,
    /// SDES-SRTP keys (RFC 4568) when the call's audio is SRTP; `None`:
    /// plain RTP. [`negotiate`] leaves it `None`; the endpoint fills it.
    pub srtp: Option<SrtpKeys>,
}

/// The SDES keys of an SRTP call (AES_CM_128_HMAC_SHA1_80): the offer's
/// `a=crypto` tag and key, and the key we generated for our answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SrtpKeys {
    /// The tag of the offer's `a=crypto` line, echoed in our answer.
    pub tag: u32,
    /// The caller's master key and salt: unprotects what it sends.
    pub remote: [u8; 30],
    /// Our master key and salt (OS random): protects what we send.
    pub local: [u8; 30],
}

/// Never prints the keys.
impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// Why an SDP offer cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Syntax we cannot read (answered with 400).
    #[error("malformed SDP: {0}")]
    Malformed(&'static str),
    /// No usable audio stream (answered with 488).
    #[error("no audio stream offered")]
    NoAudio,
    /// No PCMU/PCMA in the offer (answered with 488).
    #[error("no common codec")]
    NoCommonCodec,
}

/// Parses an offer and negotiates: first of PCMU/PCMA in the offer's order,
/// plus telephone-event/8000 when offered.
pub fn negotiate(body: &[u8]) -> Result<RemoteMedia, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8"))?;
    let mut session_addr: Option<IpAddr> = None;
    let mut session_dir = Direction::SendRecv;
    let mut seen_v = false;
    // The first audio m= section.
    struct Audio {
        port: u16,
        pts: Vec<u8>,
        addr: Option<IpAddr>,
        dir: Option<Direction>,
        rtpmap: Vec<(u8, String)>,
    }
    let mut audio: Option<Audio> = None;
    let mut in_first_audio = false;
    let mut in_media = false;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let Some((kind, value)) = line.split_once('=') else {
            return Err(SdpError::Malformed("line without '='"));
        };
        if kind.len() != 1 {
            return Err(SdpError::Malformed("bad line type"));
        }
        match kind {
            "v" => seen_v = true,
            "m" => {
                in_media = true;
                in_first_audio = false;
                let mut f = value.split_whitespace();
                let (Some(media), Some(port), Some(_proto)) = (f.next(), f.next(), f.next()) else {
                    return Err(SdpError::Malformed("bad m= line"));
                };
                // "port/count" (RFC 4566 §5.14) is allowed; we use the first port.
                let port = port
                    .split('/')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or(SdpError::Malformed("bad m= port"))?;
                if media == "audio" && audio.is_none() {
                    let mut pts = Vec::new();
                    for fmt in f {
                        // Non-numeric formats belong to non-RTP profiles; skip them.
                        if let Ok(pt) = fmt.parse::<u8>() {
                            pts.push(pt);
                        }
                    }
                    audio = Some(Audio {
                        port,
                        pts,
                        addr: None,
                        dir: None,
                        rtpmap: Vec::new(),
                    });
                    in_first_audio = true;
                }
            }
            "c" => {
                let addr = parse_connection(value)?;
                if !in_media {
                    session_addr = Some(addr);
                } else if in_first_audio && let Some(a) = audio.as_mut() {
                    a.addr = Some(addr);
                }
            }
            "a" => {
                let (name, val) = value.split_once(':').unwrap_or((value, ""));
                if let Some(d) = Direction::from_attribute(name) {
                    if !in_media {
                        session_dir = d;
                    } else if in_first_audio && let Some(a) = audio.as_mut() {
                        a.dir = Some(d);
                    }
                } else if name == "rtpmap"
                    && in_first_audio
                    && let Some(a) = audio.as_mut()
                {
                    let mut f = val.split_whitespace();
                    if let (Some(pt), Some(enc)) = (f.next(), f.next())
                        && let Ok(pt) = pt.parse::<u8>()
                    {
                        a.rtpmap.push((pt, enc.to_ascii_lowercase()));
                    }
                }
            }
            _ => {}
        }
    }
    if !seen_v {
        return Err(SdpError::Malformed("missing v= line"));
    }
    let audio = audio.ok_or(SdpError::NoAudio)?;
    if audio.port == 0 {
        return Err(SdpError::NoAudio);
    }
    let ip = audio
        .addr
        .or(session_addr)
        .ok_or(SdpError::Malformed("missing c= line"))?;
    let encoding = |pt: u8| {
        audio
            .rtpmap
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, e)| e.as_str())
    };
    let mut chosen = None;
    for &pt in &audio.pts {
        let codec = match (pt, encoding(pt)) {
            (_, Some("pcmu/8000" | "pcmu/8000/1")) => Some(Codec::Pcmu),
            (_, Some("pcma/8000" | "pcma/8000/1")) => Some(Codec::Pcma),
            (0, None) => Some(Codec::Pcmu),
            (8, None) => Some(Codec::Pcma),
            _ => None,
        };
        if let Some(c) = codec {
            chosen = Some((c, pt));
            break;
        }
    }
    let (codec, payload_type) = chosen.ok_or(SdpError::NoCommonCodec)?;
    let dtmf_payload_type = audio.pts.iter().copied().find(|&pt| {
        matches!(
            encoding(pt),
            Some("telephone-event/8000" | "telephone-event/8000/1")
        )
    });
    let mut direction = audio.dir.unwrap_or(session_dir);
    // RFC 3264 §8.4: c=0.0.0.0 is the RFC 2543 way to put a call on hold;
    // treat it like sendonly.
    if ip.is_unspecified() && direction == Direction::SendRecv {
        direction = Direction::SendOnly;
    }
    Ok(RemoteMedia {
        rtp_addr: SocketAddr::new(ip, audio.port),
        codec,
        payload_type,
        dtmf_payload_type,
        direction,
        srtp: None,
    })
}

fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut f = value.split_whitespace();
    let (Some("IN"), Some(family), Some(addr)) = (f.next(), f.next(), f.next()) else {
        return Err(SdpError::Malformed("bad c= line"));
    };
    // Multicast TTL suffix ("/127") is cut off; we only do unicast anyway.
    let addr = addr.split('/').next().unwrap_or_default();
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| SdpError::Malformed("bad c= address"))?;
    match (family, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(SdpError::Malformed("c= family mismatch")),
    }
}

/// Our side of the session description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalSession {
    pub sess_id: u64,
    pub version: u64,
    pub rtp: SocketAddr,
}

/// The telephone-event payload type we offer on outbound calls.
pub(crate) const OFFER_DTMF_PT: u8 = 101;

/// The session-level lines (v= o= s= c= t=) of our descriptions.
fn session_head(local: &LocalSession) -> String {
    let (family, ip) = match local.rtp.ip() {
        IpAddr::V4(v4) => ("IP4", IpAddr::V4(v4)),
        IpAddr::V6(v6) => ("IP6", IpAddr::V6(v6)),
    };
    let ip = if ip.is_unspecified() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        ip
    };
    let mut s = String::with_capacity(320);
    let _ = write!(
        s,
        "v=0\r\no=hotline {} {} IN {family} {ip}\r\ns=Hotline\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
        local.sess_id, local.version
    );
    s
}

/// Our initial offer for an outbound call (RFC 3264 §5): PCMU (0), PCMA (8)
/// and telephone-event/8000 (101), sendrecv, 20 ms packets.
pub(crate) fn build_offer(local: &LocalSession) -> String {
    let mut s = session_head(local);
    let d = OFFER_DTMF_PT;
    let _ = write!(
        s,
        "m=audio {} RTP/AVP 0 8 {d}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        local.rtp.port()
    );
    s
}

/// Builds our answer (or, for a re-INVITE without SDP, our offer): with
/// [`RemoteMedia::srtp`], `RTP/SAVP` and our `a=crypto` line (RFC 4568 §5.1.2).
pub(crate) fn build(local: &LocalSession, media: &RemoteMedia, direction: Direction) -> String {
    let pt = media.payload_type;
    let mut s = session_head(local);
    let profile = if media.srtp.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let _ = write!(s, "m=audio {} {profile} {pt}", local.rtp.port());
    if let Some(d) = media.dtmf_payload_type {
        let _ = write!(s, " {d}");
    }
    let _ = write!(s, "\r\na=rtpmap:{pt} {}/8000\r\n", media.codec.name());
    if let Some(d) = media.dtmf_payload_type {
        let _ = write!(
            s,
            "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-16\r\n"
        );
    }
    let _ = write!(s, "a=ptime:20\r\na={}\r\n", direction.attribute());
    if let Some(k) = &media.srtp {
        s.push_str(&crate::sdes::crypto_attribute(k.tag, &k.local));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\na=sendrecv\r\n";

    #[test]
    fn picks_first_g711_in_offer_order() {
        let m = negotiate(OFFER.as_bytes()).unwrap();
        assert_eq!(m.codec, Codec::Pcma);
        assert_eq!(m.payload_type, 8);
        assert_eq!(m.dtmf_payload_type, Some(101));
        assert_eq!(m.rtp_addr, "10.0.0.1:4000".parse().unwrap());
        assert_eq!(m.direction, Direction::SendRecv);
    }

    #[test]
    fn media_level_overrides_session_level() {
        let o = "v=0\nc=IN IP4 1.1.1.1\na=sendonly\nm=audio 5 RTP/AVP 0\nc=IN IP4 2.2.2.2\na=inactive\n";
        let m = negotiate(o.as_bytes()).unwrap();
        assert_eq!(m.rtp_addr, "2.2.2.2:5".parse().unwrap());
        assert_eq!(m.direction, Direction::Inactive);
        let o = "v=0\nc=IN IP4 0.0.0.0\nm=audio 5 RTP/AVP 0\n";
        assert_eq!(
            negotiate(o.as_bytes()).unwrap().direction,
            Direction::SendOnly
        );
    }

    #[test]
    fn errors() {
        let no_codec = "v=0\nc=IN IP4 1.1.1.1\nm=audio 5 RTP/AVP 18\n";
        assert_eq!(negotiate(no_codec.as_bytes()), Err(SdpError::NoCommonCodec));
        let port0 = "v=0\nc=IN IP4 1.1.1.1\nm=audio 0 RTP/AVP 0\n";
        assert_eq!(negotiate(port0.as_bytes()), Err(SdpError::NoAudio));
        let video = "v=0\nc=IN IP4 1.1.1.1\nm=video 5 RTP/AVP 96\n";
        assert_eq!(negotiate(video.as_bytes()), Err(SdpError::NoAudio));
        assert!(matches!(negotiate(b"garbage"), Err(SdpError::Malformed(_))));
        let no_c = "v=0\nm=audio 5 RTP/AVP 0\n";
        assert!(matches!(
            negotiate(no_c.as_bytes()),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            negotiate(&[0xff, 0xfe]),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn offer_shape_and_answers_to_it() {
        let local = LocalSession {
            sess_id: 9,
            version: 1,
            rtp: "192.0.2.1:30002".parse().unwrap(),
        };
        let s = build_offer(&local);
        assert!(s.starts_with("v=0\r\no=hotline 9 1 IN IP4 192.0.2.1\r\n"));
        assert!(s.contains("m=audio 30002 RTP/AVP 0 8 101\r\n"));
        assert!(s.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert!(s.ends_with("a=ptime:20\r\na=sendrecv\r\n"));
        // Our own offer read back as if it were the answer.
        let m = negotiate(s.as_bytes()).unwrap();
        assert_eq!((m.codec, m.dtmf_payload_type), (Codec::Pcmu, Some(101)));
        assert_eq!(m.rtp_addr, local.rtp);
    }

    #[test]
    fn answer_shape() {
        let m = negotiate(OFFER.as_bytes()).unwrap();
        let local = LocalSession {
            sess_id: 7,
            version: 2,
            rtp: "192.0.2.1:30000".parse().unwrap(),
        };
        let s = build(&local, &m, Direction::RecvOnly);
        assert!(s.starts_with("v=0\r\no=hotline 7 2 IN IP4 192.0.2.1\r\ns=Hotline\r\n"));
        assert!(s.contains("c=IN IP4 192.0.2.1\r\n"));
        assert!(s.contains("m=audio 30000 RTP/AVP 8 101\r\n"));
        assert!(s.contains("a=rtpmap:8 PCMA/8000\r\n"));
        assert!(s.contains("a=fmtp:101 0-16\r\n"));
        assert!(s.contains("a=ptime:20\r\na=recvonly\r\n"));
    }
}
