//! Minimal classic-pcap reader/writer for IPv4/UDP on loopback: the shared
//! test peer's ([`hotline_testpeer::pcap`]), with the harness's `String` errors.

use std::path::Path;

pub use hotline_testpeer::pcap::{
    PcapError, PcapWriter, UdpDatagram, UdpRecord, UdpRecords, udp_records,
};

/// Parse a classic pcap file (either endianness, µs or ns timestamps) and return its
/// IPv4/UDP datagrams. Supported link types: 0 (BSD loopback), 1 (Ethernet),
/// 113 (Linux SLL), 276 (Linux SLL2). Truncated trailing records are ignored (a
/// capture may be read while tcpdump is still writing).
pub fn read_udp(path: &Path) -> Result<Vec<UdpDatagram>, String> {
    hotline_testpeer::pcap::read_udp(path).map_err(|e| e.to_string())
}

pub fn parse_udp(data: &[u8]) -> Result<Vec<UdpDatagram>, String> {
    hotline_testpeer::pcap::parse_udp(data).map_err(|e| e.to_string())
}
