//! RTP (RFC 3550) packets as a PCMU caller sends and receives them, and
//! RFC 4733 telephone-event payloads for DTMF.

use crate::pcap::UdpDatagram;

/// The static payload type of G.711 µ-law (RFC 3551), the only codec the
/// callers send.
pub const PT_PCMU: u8 = 0;
/// The telephone-event payload type both callers offer (`a=rtpmap:101`).
pub const PT_EVENT: u8 = 101;
/// Samples in one 20 ms packet at 8 kHz.
pub const SAMPLES_PER_PACKET: usize = 160; // 20 ms at 8 kHz

/// The RFC 4733 event code of a DTMF key ('0'..'9', '*', '#', 'A'..'D').
pub fn dtmf_event(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        _ => None,
    }
}

/// The 4-byte RFC 4733 event payload: event, E bit + volume, duration.
pub fn event_payload(event: u8, end: bool, volume: u8, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [
        event,
        if end { 0x80 } else { 0 } | (volume & 0x3f),
        d[0],
        d[1],
    ]
}

/// The fixed 12-byte RTP header (no CSRCs, no extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// The M bit: set on the first packet of a talkspurt or DTMF event.
    pub marker: bool,
    /// 0 ([`PT_PCMU`]) or 101 ([`PT_EVENT`]) for these callers.
    pub payload_type: u8,
    /// RTP sequence number; +1 per packet, wrapping.
    pub seq: u16,
    /// In 8 kHz samples.
    pub timestamp: u32,
    /// The sending stream's id.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Append the header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(0x80);
        out.push(if self.marker { 0x80 } else { 0 } | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
    }

    /// The fixed header of an RTP v2 packet; `None` if too short or not v2.
    pub fn parse(b: &[u8]) -> Option<RtpHeader> {
        if b.len() < 12 || b[0] >> 6 != 2 {
            return None;
        }
        Some(RtpHeader {
            marker: b[1] & 0x80 != 0,
            payload_type: b[1] & 0x7f,
            seq: u16::from_be_bytes([b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}

/// A whole RTP packet: header then payload.
pub fn build_rtp(
    marker: bool,
    pt: u8,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    RtpHeader {
        marker,
        payload_type: pt,
        seq,
        timestamp,
        ssrc,
    }
    .write(&mut p);
    p.extend_from_slice(payload);
    p
}

/// An RTP packet found in a capture, with its capture time.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    /// Capture timestamp, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// The M bit.
    pub marker: bool,
    /// The PT field.
    pub payload_type: u8,
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp, in 8 kHz samples for the audio codecs here.
    pub timestamp: u32,
    /// The sending stream's id.
    pub ssrc: u32,
    /// The payload, without CSRCs, header extension or padding.
    pub payload: Vec<u8>,
}

/// Parse an RTP packet (v2; CSRCs, extension and padding handled). `None` if not RTP.
pub fn parse_rtp(d: &UdpDatagram) -> Option<RtpPacket> {
    let b = &d.payload;
    let h = RtpHeader::parse(b)?;
    let cc = usize::from(b[0] & 0x0f);
    let mut off = 12 + 4 * cc;
    if b[0] & 0x10 != 0 {
        let ext = b.get(off..off + 4)?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    Some(RtpPacket {
        ts_us: d.ts_us,
        marker: h.marker,
        payload_type: h.payload_type,
        seq: h.seq,
        timestamp: h.timestamp,
        ssrc: h.ssrc,
        payload: b.get(off..end)?.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrips_and_rejects_non_rtp() {
        let p = build_rtp(
            true,
            PT_EVENT,
            0xfffe,
            1000,
            7,
            &event_payload(5, true, 10, 800),
        );
        assert_eq!(p.len(), 16);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(
            (h.payload_type, h.seq, h.timestamp, h.ssrc),
            (PT_EVENT, 0xfffe, 1000, 7)
        );
        assert_eq!(&p[12..], &[5, 0x80 | 10, 3, 32]);
        assert_eq!(RtpHeader::parse(&p[..11]), None);
        assert_eq!(RtpHeader::parse(&[0x40; 12]), None);
        let d = UdpDatagram {
            ts_us: 9,
            src_port: 1,
            dst_port: 2,
            payload: p,
        };
        let pkt = parse_rtp(&d).unwrap();
        assert_eq!((pkt.ts_us, pkt.payload.len()), (9, 4));
    }

    #[test]
    fn dtmf_keys_map_to_rfc4733_events() {
        let keys = "0123456789*#ABCD";
        let codes: Vec<u8> = keys.chars().filter_map(dtmf_event).collect();
        assert_eq!(codes, (0..16).collect::<Vec<u8>>());
        assert_eq!(dtmf_event('x'), None);
    }
}
