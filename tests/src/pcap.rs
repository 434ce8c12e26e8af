//! Minimal classic-pcap reader/writer for IPv4/UDP on loopback.

use std::path::Path;

/// One UDP datagram from a capture.
#[derive(Debug, Clone)]
pub struct UdpDatagram {
    /// Capture timestamp, microseconds since the Unix epoch.
    pub ts_us: u64,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// Parse a classic pcap file (either endianness, µs or ns timestamps) and return its
/// IPv4/UDP datagrams. Supported link types: 0 (BSD loopback), 1 (Ethernet),
/// 113 (Linux SLL), 276 (Linux SLL2). Truncated trailing records are ignored (a
/// capture may be read while tcpdump is still writing).
pub fn read_udp(path: &Path) -> Result<Vec<UdpDatagram>, String> {
    let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    parse_udp(&data)
}

pub fn parse_udp(data: &[u8]) -> Result<Vec<UdpDatagram>, String> {
    if data.len() < 24 {
        return Err(format!("pcap too short: {} bytes", data.len()));
    }
    let magic_le = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let magic_be = u32::from_be_bytes(data[0..4].try_into().unwrap());
    let (le, nanos) = match (magic_le, magic_be) {
        (MAGIC_US, _) => (true, false),
        (MAGIC_NS, _) => (true, true),
        (_, MAGIC_US) => (false, false),
        (_, MAGIC_NS) => (false, true),
        _ => return Err(format!("not a classic pcap (magic {magic_le:#x}); pcapng?")),
    };
    let u32_at = |off: usize| -> u32 {
        let b: [u8; 4] = data[off..off + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = u32_at(20);
    let link_hdr = match linktype {
        0 => 4,
        1 => 14,
        113 => 16,
        276 => 20,
        other => return Err(format!("unsupported pcap link type {other}")),
    };
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let ts_sec = u64::from(u32_at(off));
        let ts_frac = u64::from(u32_at(off + 4));
        let incl = u32_at(off + 8) as usize;
        let rec = off + 16;
        if rec + incl > data.len() {
            break;
        }
        let frame = &data[rec..rec + incl];
        off = rec + incl;
        let ts_us = ts_sec * 1_000_000 + if nanos { ts_frac / 1000 } else { ts_frac };
        let Some(ip) = frame.get(link_hdr..) else {
            continue;
        };
        // Ethertype check where the link layer carries one.
        let is_ipv4 = match linktype {
            0 => frame.len() >= 4 && (frame[0] == 2 || frame[3] == 2),
            1 => frame.len() >= 14 && frame[12] == 0x08 && frame[13] == 0x00,
            113 => frame.len() >= 16 && frame[14] == 0x08 && frame[15] == 0x00,
            276 => frame.len() >= 2 && frame[0] == 0x08 && frame[1] == 0x00,
            _ => false,
        };
        if !is_ipv4 || ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        if ihl < 20 || total < ihl + 8 {
            continue;
        }
        let udp = &ip[ihl..total];
        let src_port = u16::from_be_bytes([udp[0], udp[1]]);
        let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]])).min(udp.len());
        if udp_len < 8 {
            continue;
        }
        out.push(UdpDatagram {
            ts_us,
            src_port,
            dst_port,
            payload: udp[8..udp_len].to_vec(),
        });
    }
    Ok(out)
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
    pub fn new() -> PcapWriter {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(&MAGIC_US.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes()); // version major
        buf.extend_from_slice(&4u16.to_le_bytes()); // version minor
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        buf.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        PcapWriter { buf }
    }

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

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

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
}
