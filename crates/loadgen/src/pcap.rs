//! Classic pcap, IPv4/UDP only: writing caller audio for SIPp's
//! `play_pcap_audio`, and reading a tcpdump capture to measure the RTP
//! inter-arrival deviation from 20 ms that a receiver saw.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use hotline_testpeer::pcap::{PcapWriter, udp_records};
use hotline_testpeer::rtp::RtpHeader;
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
    let mut w = PcapWriter::with_capacity(frames as usize * 230 + 24);
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
        w.add_udp(u64::from(n) * 20_000, 40_000, 20_000, &pkt);
    }
    w.write_to(&a.out)
        .with_context(|| format!("write {}", a.out.display()))?;
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
    let records = udp_records(&data)?;
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
    for r in records {
        let ts_ns = r.ts_ns as i64;
        if let Some((lo, hi)) = range {
            if r.src_port < lo || r.src_port > hi {
                continue;
            }
        }
        let Some(h) = RtpHeader::parse(r.payload) else {
            continue;
        };
        if (72..=79).contains(&h.payload_type) {
            continue; // RTCP
        }
        packets += 1;
        let key = (r.src_port, r.dst_port, h.ssrc);
        if let Some((pseq, pts)) = last.get(&key) {
            if h.seq == pseq.wrapping_add(1) {
                let dev = ((ts_ns - pts) - FRAME.as_nanos() as i64).abs();
                hist.record((dev / 1000) as u64);
            }
        }
        last.insert(key, (h.seq, ts_ns));
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
