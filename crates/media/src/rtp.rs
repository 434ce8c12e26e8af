//! RTP packets (RFC 3550 §5.1): a zero-copy parser and a header writer.
//!
//! The parser never panics and never indexes past the buffer: every field is
//! read through checked slice access, because the bytes come straight off an
//! untrusted UDP socket.

use thiserror::Error;

/// Length of the fixed RTP header (RFC 3550 §5.1).
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the fixed header, CSRC list or extension announce.
    #[error("packet too short: {len} bytes, need {needed}")]
    TooShort {
        /// The datagram's length.
        len: usize,
        /// The bytes the headers alone need.
        needed: usize,
    },
    /// Version field is not 2 (RFC 3550 §5.1).
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    /// The padding count is zero or larger than the payload (RFC 3550 §5.1).
    #[error("invalid padding length {padding} for {available} payload bytes")]
    BadPadding {
        /// The padding count from the packet's last byte.
        padding: usize,
        /// The bytes after the headers.
        available: usize,
    },
}

/// A parsed view into an RTP datagram; borrows the buffer, copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The PT field: which codec (0 PCMU, 8 PCMA) or the telephone-event type.
    pub payload_type: u8,
    /// The M bit; set on the first packet of a talkspurt or of a DTMF event.
    pub marker: bool,
    /// Increments by one per packet; wraps at 2^16.
    pub sequence: u16,
    /// In samples (8000 a second for G.711).
    pub timestamp: u32,
    /// Identifies the sending stream; a change means a new source.
    pub ssrc: u32,
    /// Number of contributing sources (CSRC count).
    pub csrc_count: u8,
    /// True when a header extension was present (and skipped).
    pub has_extension: bool,
    /// The payload, with header, CSRCs, extension and padding removed.
    pub payload: &'a [u8],
}

#[inline]
fn be_u16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

#[inline]
fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

impl<'a> RtpPacket<'a> {
    /// Parses one RTP datagram.
    pub fn parse(data: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let too_short = |needed: usize| RtpError::TooShort {
            len: data.len(),
            needed,
        };
        let [b0, b1, ..] = *data else {
            return Err(too_short(RTP_HEADER_LEN));
        };
        if data.len() < RTP_HEADER_LEN {
            return Err(too_short(RTP_HEADER_LEN));
        }
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = b0 & 0x0F;
        let marker = b1 & 0x80 != 0;
        let payload_type = b1 & 0x7F;
        let sequence = be_u16(data, 2).ok_or(too_short(RTP_HEADER_LEN))?;
        let timestamp = be_u32(data, 4).ok_or(too_short(RTP_HEADER_LEN))?;
        let ssrc = be_u32(data, 8).ok_or(too_short(RTP_HEADER_LEN))?;

        // RFC 3550 §5.1: 0 to 15 CSRC identifiers of 32 bits follow.
        let mut header_len = RTP_HEADER_LEN + 4 * usize::from(csrc_count);
        if data.len() < header_len {
            return Err(too_short(header_len));
        }
        if has_extension {
            // RFC 3550 §5.3.1: 16-bit profile id, 16-bit length in 32-bit
            // words not counting the 4-byte extension header itself.
            let words = be_u16(data, header_len + 2).ok_or(too_short(header_len + 4))?;
            header_len += 4 + 4 * usize::from(words);
            if data.len() < header_len {
                return Err(too_short(header_len));
            }
        }
        let mut end = data.len();
        if has_padding {
            // RFC 3550 §5.1: the last octet counts the padding octets,
            // itself included, so it can never be zero.
            let padding = usize::from(*data.last().ok_or(too_short(header_len + 1))?);
            let available = end - header_len;
            if padding == 0 || padding > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            end -= padding;
        }
        let payload = data.get(header_len..end).ok_or(too_short(header_len))?;
        Ok(RtpPacket {
            payload_type,
            marker,
            sequence,
            timestamp,
            ssrc,
            csrc_count,
            has_extension,
            payload,
        })
    }
}

/// The sending side of one RTP stream: SSRC, next sequence number and the
/// media clock.
///
/// RFC 3550 §5.1: the initial sequence number and timestamp are random so a
/// known-plaintext attack on encrypted streams is harder and restarted
/// streams are distinguishable; the SSRC is random per §8.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
}

impl Default for RtpSender {
    fn default() -> Self {
        Self::new()
    }
}

impl RtpSender {
    /// A sender with random SSRC, initial sequence number and timestamp.
    pub fn new() -> Self {
        Self {
            ssrc: fastrand::u32(..),
            seq: fastrand::u16(..),
            timestamp: fastrand::u32(..),
        }
    }

    /// A sender with chosen initial values (tests, or continuing a stream).
    pub fn with_state(ssrc: u32, seq: u16, timestamp: u32) -> Self {
        Self {
            ssrc,
            seq,
            timestamp,
        }
    }

    /// Our SSRC, fixed for the sender's life.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn sequence(&self) -> u16 {
        self.seq
    }

    /// The current media clock value (timestamp of the next audio packet).
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Moves the media clock on by `ts` units (wrapping, RFC 3550 §5.1).
    pub fn advance(&mut self, ts: u32) {
        self.timestamp = self.timestamp.wrapping_add(ts);
    }

    /// Appends a 12-byte header carrying `timestamp` to `out` and consumes
    /// one sequence number. The payload is appended by the caller, which lets
    /// it encode audio straight into the packet buffer.
    pub fn write_header(&mut self, pt: u8, marker: bool, timestamp: u32, out: &mut Vec<u8>) {
        let b1 = (pt & 0x7F) | if marker { 0x80 } else { 0 };
        out.extend_from_slice(&[0x80, b1]);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
    }

    /// Appends a packet stamped with the current clock, then advances the
    /// clock by `ts_advance`.
    pub fn write(
        &mut self,
        pt: u8,
        marker: bool,
        ts_advance: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.write_header(pt, marker, self.timestamp, out);
        out.extend_from_slice(payload);
        self.advance(ts_advance);
    }

    /// Appends a packet with an explicit timestamp without touching the
    /// clock. RFC 4733 §2.5.1.2: all packets of one event carry the event's
    /// start timestamp while the audio clock keeps running.
    pub fn write_with_timestamp(
        &mut self,
        pt: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.write_header(pt, marker, timestamp, out);
        out.extend_from_slice(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(b0: u8, b1: u8) -> Vec<u8> {
        let mut v = vec![b0, b1, 0x12, 0x34, 0, 0, 0x01, 0x00, 0xDE, 0xAD, 0xBE, 0xEF];
        v.truncate(12);
        v
    }

    #[test]
    fn parses_plain_packet() {
        let mut p = header(0x80, 0x80 | 8);
        p.extend_from_slice(&[1, 2, 3]);
        let pkt = RtpPacket::parse(&p).unwrap();
        assert_eq!(pkt.payload_type, 8);
        assert!(pkt.marker);
        assert_eq!(pkt.sequence, 0x1234);
        assert_eq!(pkt.timestamp, 256);
        assert_eq!(pkt.ssrc, 0xDEAD_BEEF);
        assert_eq!(pkt.payload, &[1, 2, 3]);
        assert!(!pkt.has_extension);
    }

    #[test]
    fn empty_payload_is_valid() {
        let p = header(0x80, 0);
        assert_eq!(RtpPacket::parse(&p).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn rejects_short_and_garbage() {
        assert!(matches!(
            RtpPacket::parse(&[]),
            Err(RtpError::TooShort { .. })
        ));
        assert!(matches!(
            RtpPacket::parse(&[0x80]),
            Err(RtpError::TooShort { .. })
        ));
        assert!(matches!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::TooShort { .. })
        ));
        assert_eq!(RtpPacket::parse(&[0x40; 20]), Err(RtpError::BadVersion(1)));
        assert_eq!(RtpPacket::parse(&[0x00; 20]), Err(RtpError::BadVersion(0)));
        assert_eq!(
            RtpPacket::parse(b"GET / HTTP/1.1\r\n"),
            Err(RtpError::BadVersion(1))
        );
    }

    #[test]
    fn skips_csrcs() {
        let mut p = header(0x82, 0);
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[9, 9]);
        let pkt = RtpPacket::parse(&p).unwrap();
        assert_eq!(pkt.csrc_count, 2);
        assert_eq!(pkt.payload, &[9, 9]);
        // CSRC list announced but cut off.
        let short = header(0x8F, 0);
        assert_eq!(
            RtpPacket::parse(&short),
            Err(RtpError::TooShort {
                len: 12,
                needed: 72
            })
        );
    }

    #[test]
    fn skips_extension() {
        let mut p = header(0x90, 0);
        p.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x02]);
        p.extend_from_slice(&[0xAA; 8]);
        p.extend_from_slice(&[7]);
        let pkt = RtpPacket::parse(&p).unwrap();
        assert!(pkt.has_extension);
        assert_eq!(pkt.payload, &[7]);
        // Extension header itself truncated.
        let mut t = header(0x90, 0);
        t.extend_from_slice(&[0xBE, 0xDE]);
        assert!(matches!(
            RtpPacket::parse(&t),
            Err(RtpError::TooShort { .. })
        ));
        // Extension body longer than the packet.
        let mut t = header(0x90, 0);
        t.extend_from_slice(&[0xBE, 0xDE, 0xFF, 0xFF]);
        assert!(matches!(
            RtpPacket::parse(&t),
            Err(RtpError::TooShort { .. })
        ));
    }

    #[test]
    fn honours_padding() {
        let mut p = header(0xA0, 0);
        p.extend_from_slice(&[5, 6, 0, 0, 3]);
        assert_eq!(RtpPacket::parse(&p).unwrap().payload, &[5, 6]);
        // Padding covering the whole payload is fine.
        let mut p = header(0xA0, 0);
        p.extend_from_slice(&[0, 2]);
        assert_eq!(RtpPacket::parse(&p).unwrap().payload, &[] as &[u8]);
        // Zero padding count and padding longer than the payload are not.
        let mut p = header(0xA0, 0);
        p.extend_from_slice(&[1, 0]);
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::BadPadding { .. })
        ));
        let mut p = header(0xA0, 0);
        p.extend_from_slice(&[1, 9]);
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::BadPadding { .. })
        ));
        // Padding bit with no byte after the header.
        let p = header(0xA0, 0);
        assert!(matches!(
            RtpPacket::parse(&p),
            Err(RtpError::BadPadding { .. })
        ));
    }

    #[test]
    fn random_buffers_never_panic() {
        let mut rng = fastrand::Rng::with_seed(0x5EED);
        let mut buf = Vec::with_capacity(256);
        let mut ok = 0;
        for i in 0..10_000 {
            buf.clear();
            let len = rng.usize(0..200);
            buf.extend((0..len).map(|_| rng.u8(..)));
            if i % 2 == 0 && !buf.is_empty() {
                // Bias half of them towards version 2 to reach deeper code.
                buf[0] = (buf[0] & 0x3F) | 0x80;
            }
            if let Ok(pkt) = RtpPacket::parse(&buf) {
                assert!(pkt.payload.len() <= buf.len() - RTP_HEADER_LEN);
                ok += 1;
            }
        }
        assert!(
            ok > 100,
            "fuzz loop should also produce valid packets ({ok})"
        );
    }

    #[test]
    fn sender_writes_parseable_packets() {
        let mut tx = RtpSender::with_state(0x0102_0304, 0xFFFF, u32::MAX - 100);
        let mut out = Vec::new();
        tx.write(0, true, 160, &[0xFF; 160], &mut out);
        assert_eq!(out.len(), 172);
        let pkt = RtpPacket::parse(&out).unwrap();
        assert_eq!(
            (pkt.sequence, pkt.timestamp, pkt.ssrc),
            (0xFFFF, u32::MAX - 100, 0x0102_0304)
        );
        assert!(pkt.marker);
        assert_eq!(tx.sequence(), 0, "sequence wraps");
        assert_eq!(tx.timestamp(), 59, "timestamp wraps");

        out.clear();
        tx.write_with_timestamp(101, false, 1234, &[1, 2, 3, 4], &mut out);
        let pkt = RtpPacket::parse(&out).unwrap();
        assert_eq!(
            (pkt.payload_type, pkt.timestamp, pkt.sequence),
            (101, 1234, 0)
        );
        assert_eq!(
            tx.timestamp(),
            59,
            "explicit timestamp leaves the clock alone"
        );
    }

    #[test]
    fn random_initial_state_differs() {
        let a = RtpSender::new();
        let b = RtpSender::new();
        assert!(
            a.ssrc() != b.ssrc() || a.sequence() != b.sequence() || a.timestamp() != b.timestamp()
        );
    }
}
