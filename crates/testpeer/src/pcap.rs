//! Minimal classic pcap for IPv4/UDP: a writer (loopback Ethernet frames,
//! e.g. caller audio for SIPp's `play_pcap_audio`) and a reader of tcpdump
//! captures.

use std::path::{Path, PathBuf};

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be read.
    #[error("read {}: {source}", path.display())]
    Read {
        /// The capture file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Shorter than the 24-byte global header; the length found.
    #[error("pcap too short: {0} bytes")]
    TooShort(usize),
    /// The file does not start with a classic pcap magic number (a pcapng file,
    /// or not a capture); the number found.
    #[error("not a classic pcap (magic {0:#x}); pcapng?")]
    Magic(u32),
    /// A link type other than null, Ethernet, Linux cooked (SLL) or SLL2; the
    /// type found.
    #[error("unsupported pcap link type {0}")]
    LinkType(u32),
}

/// One UDP datagram from a capture, copied out.
#[derive(Debug, Clone)]
pub struct UdpDatagram {
    /// Capture timestamp, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// The UDP payload (an RTP packet, a SIP message, …).
    pub payload: Vec<u8>,
}

/// One UDP datagram borrowed from the capture bytes, with the capture's
/// full timestamp resolution (large captures are walked without copying).
#[derive(Debug, Clone, Copy)]
pub struct UdpRecord<'a> {
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// The UDP payload, borrowed from the capture.
    pub payload: &'a [u8],
}

/// Read a classic pcap file and return its IPv4/UDP datagrams (see [`parse_udp`]).
pub fn read_udp(path: &Path) -> Result<Vec<UdpDatagram>, PcapError> {
    let data = std::fs::read(path).map_err(|source| PcapError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_udp(&data)
}

/// The IPv4/UDP datagrams of a classic pcap, copied out (see [`udp_records`]).
pub fn parse_udp(data: &[u8]) -> Result<Vec<UdpDatagram>, PcapError> {
    Ok(udp_records(data)?
        .map(|r| UdpDatagram {
            ts_us: r.ts_ns / 1000,
            src_port: r.src_port,
            dst_port: r.dst_port,
            payload: r.payload.to_vec(),
        })
        .collect())
}

/// Walk a classic pcap (either endianness, µs or ns timestamps) yielding its
/// IPv4/UDP datagrams. Supported link types: 0 (BSD loopback), 1 (Ethernet),
/// 113 (Linux SLL), 276 (Linux SLL2). A truncated trailing record ends the
/// walk (a capture may be read while tcpdump is still writing).
pub fn udp_records(data: &[u8]) -> Result<UdpRecords<'_>, PcapError> {
    if data.len() < 24 {
        return Err(PcapError::TooShort(data.len()));
    }
    let magic = [data[0], data[1], data[2], data[3]];
    let (le, nanos) = match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
        (MAGIC_US, _) => (true, false),
        (MAGIC_NS, _) => (true, true),
        (_, MAGIC_US) => (false, false),
        (_, MAGIC_NS) => (false, true),
        (m, _) => return Err(PcapError::Magic(m)),
    };
    let records = UdpRecords {
        data,
        le,
        nanos,
        linktype: 0,
        off: 24,
    };
    let linktype = records.u32_at(20);
    if !matches!(linktype, 0 | 1 | 113 | 276) {
        return Err(PcapError::LinkType(linktype));
    }
    Ok(UdpRecords {
        linktype,
        ..records
    })
}

/// Iterator over a capture's IPv4/UDP datagrams; see [`udp_records`].
#[derive(Debug, Clone)]
pub struct UdpRecords<'a> {
    data: &'a [u8],
    le: bool,
    nanos: bool,
    linktype: u32,
    off: usize,
}

impl UdpRecords<'_> {
    /// Callers keep `off + 4 <= data.len()`.
    fn u32_at(&self, off: usize) -> u32 {
        let d = self.data;
        let b = [d[off], d[off + 1], d[off + 2], d[off + 3]];
        if self.le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    }
}

impl<'a> Iterator for UdpRecords<'a> {
    type Item = UdpRecord<'a>;

    fn next(&mut self) -> Option<UdpRecord<'a>> {
        let data = self.data;
        while self.off + 16 <= data.len() {
            let ts_sec = u64::from(self.u32_at(self.off));
            let ts_frac = u64::from(self.u32_at(self.off + 4));
            let incl = self.u32_at(self.off + 8) as usize;
            let rec = self.off + 16;
            let frame = data.get(rec..rec.checked_add(incl)?)?;
            self.off = rec + incl;
            let ts_ns = ts_sec * 1_000_000_000 + if self.nanos { ts_frac } else { ts_frac * 1000 };
            if let Some((src_port, dst_port, payload)) = udp_in_frame(self.linktype, frame) {
                return Some(UdpRecord {
                    ts_ns,
                    src_port,
                    dst_port,
                    payload,
                });
            }
        }
        None
    }
}

/// Ports and payload of an IPv4/UDP frame; `None` for anything else.
fn udp_in_frame(linktype: u32, frame: &[u8]) -> Option<(u16, u16, &[u8])> {
    let (link_hdr, is_ipv4) = match linktype {
        0 => (4, frame.len() >= 4 && (frame[0] == 2 || frame[3] == 2)),
        1 => (
            14,
            frame.len() >= 14 && frame[12] == 0x08 && frame[13] == 0x00,
        ),
        113 => (
            16,
            frame.len() >= 16 && frame[14] == 0x08 && frame[15] == 0x00,
        ),
        276 => (20, frame.len() >= 2 && frame[0] == 0x08 && frame[1] == 0x00),
        _ => return None,
    };
    let ip = frame.get(link_hdr..)?;
    if !is_ipv4 || ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    if ihl < 20 || total < ihl + 8 {
        return None;
    }
    let udp = &ip[ihl..total];
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]])).min(udp.len());
    if udp_len < 8 {
        return None;
    }
    Some((src_port, dst_port, &udp[8..udp_len]))
}

/// Writes a pcap (link type Ethernet) of IPv4/UDP datagrams 127.0.0.1 → 127.0.0.1.
pub struct PcapWriter {
    buf: Vec<u8>,
}

impl Default for PcapWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl PcapWriter {
    /// An empty capture (global header only) with a 64 KiB buffer.
    pub fn new() -> PcapWriter {
        Self::with_capacity(64 * 1024)
    }

    /// A writer whose buffer holds `bytes` before growing.
    pub fn with_capacity(bytes: usize) -> PcapWriter {
        let mut buf = Vec::with_capacity(bytes.max(24));
        buf.extend_from_slice(&MAGIC_US.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes()); // version major
        buf.extend_from_slice(&4u16.to_le_bytes()); // version minor
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        buf.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        PcapWriter { buf }
    }

    /// Appends one UDP datagram, 127.0.0.1 to 127.0.0.1 in an Ethernet frame,
    /// captured at `ts_us` (microseconds since the Unix epoch).
    pub fn add_udp(&mut self, ts_us: u64, src_port: u16, dst_port: u16, payload: &[u8]) {
        let udp_len = 8 + payload.len();
        let ip_len = 20 + udp_len;
        let frame_len = 14 + ip_len;
        self.buf
            .extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(frame_len as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(frame_len as u32).to_le_bytes());
        // Ethernet: dst, src, type IPv4.
        self.buf
            .extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]);
        // IPv4 header.
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64; // ttl
        ip[9] = 17; // UDP
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let csum = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        self.buf.extend_from_slice(&ip);
        // UDP header, checksum 0 (= none, legal for IPv4).
        self.buf.extend_from_slice(&src_port.to_be_bytes());
        self.buf.extend_from_slice(&dst_port.to_be_bytes());
        self.buf.extend_from_slice(&(udp_len as u16).to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(payload);
    }

    /// The capture file's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Writes the capture to `path`, replacing it.
    pub fn write_to(self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.buf)
    }
}

fn ipv4_checksum(hdr: &[u8; 20]) -> u16 {
    let mut sum: u32 = 0;
    for pair in hdr.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_roundtrip() {
        let mut w = PcapWriter::new();
        w.add_udp(1_000_000, 4000, 5000, b"hello");
        w.add_udp(1_020_000, 4000, 5000, b"world!");
        let got = parse_udp(&w.into_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].payload, b"hello");
        assert_eq!(got[1].ts_us, 1_020_000);
        assert_eq!(got[1].dst_port, 5000);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(parse_udp(&[0; 10]), Err(PcapError::TooShort(10))));
        assert!(matches!(parse_udp(&[0; 24]), Err(PcapError::Magic(0))));
        let mut w = PcapWriter::new();
        w.add_udp(1_000_000, 4000, 5000, b"hello");
        let mut bytes = w.into_bytes();
        // A record claiming more bytes than there are ends the walk.
        bytes[32] = 0xff;
        assert!(parse_udp(&bytes).unwrap().is_empty());
        bytes[20] = 99;
        assert!(matches!(parse_udp(&bytes), Err(PcapError::LinkType(99))));
    }
}
