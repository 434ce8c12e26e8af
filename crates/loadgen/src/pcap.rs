//! Classic pcap, IPv4/UDP only: writing caller audio for SIPp's
//! `play_pcap_audio`, and reading a tcpdump capture to measure the RTP
//! inter-arrival deviation from 20 ms that a receiver saw.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use crate::rtp::{self, FRAME};
use crate::stats::Histogram;

#[derive(Args)]
pub struct MakePcapArgs {
    /// Output pcap.
    #[arg(long)]
    out: PathBuf,
    /// Seconds of caller audio.
    #[arg(long)]
    secs: f64,
    /// Send the digit this many seconds in (none if absent).
    #[arg(long)]
    digit_at: Option<f64>,
    /// The DTMF key.
    #[arg(long, default_value_t = '1')]
    digit: char,
}

const MAGIC_US: u32 = 0xa1b2_c3d4;

fn push_udp(buf: &mut Vec<u8>, ts_us: u64, sport: u16, dport: u16, payload: &[u8]) {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let frame_len = (14 + ip_len) as u32;
    buf.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
    buf.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
    buf.extend_from_slice(&frame_len.to_le_bytes());
    buf.extend_from_slice(&frame_len.to_le_bytes());
    buf.extend_from_slice(&[0; 12]);
    buf.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
    let mut sum: u32 = 0;
    for pair in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    buf.extend_from_slice(&ip);
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&(udp_len as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(payload);
}

/// One SSRC, continuous sequence numbers: PCMU tone with the digit as
/// RFC 4733 packets (PT 101), exactly what the load generator sends live.
pub fn make_pcap(a: &MakePcapArgs) -> anyhow::Result<()> {
    let event = rtp::dtmf_event(a.digit).context("--digit must be 0-9, *, # or A-D")?;
    if a.secs <= 0.0 {
        bail!("--secs must be > 0");
    }
    let frames = (a.secs * 50.0).round() as u32;
    let digit_frame = a.digit_at.map(|s| (s * 50.0).round() as u32);
    let tone = rtp::tone_second();
    let mut buf = Vec::with_capacity(frames as usize * 230 + 24);
    buf.extend_from_slice(&MAGIC_US.to_le_bytes());
    buf.extend_from_slice(&2u16.to_le_bytes());
    buf.extend_from_slice(&4u16.to_le_bytes());
    buf.extend_from_slice(&0i32.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&65_535u32.to_le_bytes());
    buf.extend_from_slice(&1u32.to_le_bytes());
    let mut pkt = Vec::with_capacity(200);
    for n in 0..frames {
        rtp::build_frame(
            &mut pkt,
            &tone,
            n,
            digit_frame,
            event,
            1000,
            160_000,
            0x10ad_0001,
        );
        push_udp(&mut buf, u64::from(n) * 20_000, 40_000, 20_000, &pkt);
    }
    std::fs::write(&a.out, buf).with_context(|| format!("write {}", a.out.display()))?;
    Ok(())
}

#[derive(Args)]
pub struct JitterArgs {
    /// A tcpdump capture (classic pcap, Ethernet or Linux SLL link type).
    #[arg(long)]
    pcap: PathBuf,
    /// Only RTP sent from these ports LOW-HIGH (the gateway's RTP range).
    #[arg(long, value_name = "LOW-HIGH")]
    src_ports: Option<String>,
}

#[derive(Serialize)]
struct Jitter {
    streams: usize,
    packets: u64,
    intervals: u64,
    deviation_ms_p50: f64,
    deviation_ms_p99: f64,
    deviation_ms_max: f64,
}

/// Deviation of consecutive packets' arrival intervals from 20 ms, per
/// stream (source port, destination port, SSRC); prints JSON.
pub fn jitter(a: &JitterArgs) -> anyhow::Result<bool> {
    let data = std::fs::read(&a.pcap).with_context(|| format!("read {}", a.pcap.display()))?;
    if data.len() < 24 {
        bail!("pcap too short");
    }
    let magic = u32::from_le_bytes(data[0..4].try_into()?);
    let nanos = match magic {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        _ => bail!("not a little-endian classic pcap (magic {magic:#x})"),
    };
    let link_hdr = match u32::from_le_bytes(data[20..24].try_into()?) {
        1 => 14,
        113 => 16,
        276 => 20,
        0 => 4,
        l => bail!("unsupported link type {l}"),
    };
    let range = match &a.src_ports {
        Some(s) => {
            let (lo, hi) = s.split_once('-').context("--src-ports LOW-HIGH")?;
            Some((lo.parse::<u16>()?, hi.parse::<u16>()?))
        }
        None => None,
    };
    // stream -> (last extended-ish seq, last ts ns)
    let mut last: HashMap<(u16, u16, u32), (u16, i64)> = HashMap::new();
    let mut hist = Histogram::new();
    let mut packets = 0;
    let mut off = 24;
    while off + 16 <= data.len() {
        let sec = i64::from(u32::from_le_bytes(data[off..off + 4].try_into()?));
        let frac = i64::from(u32::from_le_bytes(data[off + 4..off + 8].try_into()?));
        let incl = u32::from_le_bytes(data[off + 8..off + 12].try_into()?) as usize;
        let rec = off + 16;
        off = rec + incl;
        if off > data.len() {
            break;
        }
        let ts_ns = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let Some(ip) = data[rec..off].get(link_hdr..) else {
            continue;
        };
        if ip.len() < 28 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 + 12 {
            continue;
        }
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        if let Some((lo, hi)) = range {
            if sport < lo || sport > hi {
                continue;
            }
        }
        let rtp = &udp[8..];
        if rtp[0] >> 6 != 2 || (72..=79).contains(&(rtp[1] & 0x7f)) {
            continue; // not RTP, or RTCP
        }
        packets += 1;
        let seq = u16::from_be_bytes([rtp[2], rtp[3]]);
        let ssrc = u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]);
        let key = (sport, dport, ssrc);
        if let Some((pseq, pts)) = last.get(&key) {
            if seq == pseq.wrapping_add(1) {
                let dev = ((ts_ns - pts) - FRAME.as_nanos() as i64).abs();
                hist.record((dev / 1000) as u64);
            }
        }
        last.insert(key, (seq, ts_ns));
    }
    let j = Jitter {
        streams: last.len(),
        packets,
        intervals: hist.count(),
        deviation_ms_p50: hist.quantile_ms(0.5),
        deviation_ms_p99: hist.quantile_ms(0.99),
        deviation_ms_max: hist.max_ms(),
    };
    println!("{}", serde_json::to_string(&j)?);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_pcap_reads_back_as_paced_rtp() {
        let dir = std::env::temp_dir().join(format!("loadgen-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("a.pcap");
        make_pcap(&MakePcapArgs {
            out: out.clone(),
            secs: 2.0,
            digit_at: Some(1.0),
            digit: '5',
        })
        .unwrap();
        let data = std::fs::read(&out).unwrap();
        // 100 frames: 24-byte header, each record 16 + 14 + 20 + 8 + RTP.
        let audio = 92 * (16 + 42 + 172);
        let events = 8 * (16 + 42 + 16);
        assert_eq!(data.len(), 24 + audio + events);
        assert!(
            jitter(&JitterArgs {
                pcap: out,
                src_ports: None
            })
            .unwrap()
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
