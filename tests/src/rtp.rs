//! RTP helpers: parse/build packets, G.711 µ-law, RFC 4733 events, caller-audio pcaps
//! for SIPp's `play_pcap_audio`, and checks on captured RTP streams.

use crate::pcap::PcapWriter;
use std::path::Path;

pub use hotline_testpeer::g711::{ulaw_decode, ulaw_encode};
pub use hotline_testpeer::rtp::{
    PT_EVENT, PT_PCMU, RtpHeader, RtpPacket, SAMPLES_PER_PACKET, build_rtp, dtmf_event,
    event_payload, parse_rtp,
};

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// What the caller sends, in order. Every item is sent as 20 ms packets.
#[derive(Debug, Clone, Copy)]
pub enum CallerAudio {
    /// A sine tone (PCMU) for the given milliseconds.
    Tone { hz: f64, ms: u32 },
    /// An RFC 4733 event ('0'..'9', '*', '#', 'A'..'D'): `packets` in-progress
    /// packets (marker on the first, duration growing by 160), then 3 end packets.
    Digit { digit: char, packets: u32 },
}

/// [`dtmf_event`] for test scripts, where a bad digit is a bug in the test.
pub fn rfc4733_event_code(digit: char) -> u8 {
    dtmf_event(digit).unwrap_or_else(|| panic!("not a DTMF digit: {digit:?}"))
}

/// Build a caller-audio pcap: one SSRC, contiguous sequence numbers, RTP timestamps
/// advancing 160 per 20 ms, pcap timestamps 20 ms apart (SIPp replays with pcap timing).
pub fn caller_pcap(parts: &[CallerAudio]) -> Vec<u8> {
    let ssrc = 0x1234_5678;
    let mut seq: u16 = 1000;
    let mut rtp_ts: u32 = 160_000;
    let mut t_us: u64 = 1_700_000_000_000_000;
    let mut phase: f64 = 0.0;
    let mut w = PcapWriter::new();
    let mut first_audio = true;
    for part in parts {
        match *part {
            CallerAudio::Tone { hz, ms } => {
                for _ in 0..ms / 20 {
                    let mut payload = Vec::with_capacity(SAMPLES_PER_PACKET);
                    for _ in 0..SAMPLES_PER_PACKET {
                        let s = (phase.sin() * 8000.0) as i16;
                        phase += 2.0 * std::f64::consts::PI * hz / 8000.0;
                        payload.push(ulaw_encode(s));
                    }
                    let pkt = build_rtp(first_audio, PT_PCMU, seq, rtp_ts, ssrc, &payload);
                    first_audio = false;
                    w.add_udp(t_us, 6000, 6002, &pkt);
                    seq = seq.wrapping_add(1);
                    rtp_ts = rtp_ts.wrapping_add(SAMPLES_PER_PACKET as u32);
                    t_us += 20_000;
                }
            }
            CallerAudio::Digit { digit, packets } => {
                let code = rfc4733_event_code(digit);
                let volume = 10u8;
                let event_ts = rtp_ts;
                let mut duration: u16 = 0;
                for i in 0..packets + 3 {
                    let end = i >= packets;
                    if !end {
                        duration = duration.saturating_add(SAMPLES_PER_PACKET as u16);
                    }
                    let payload = event_payload(code, end, volume, duration);
                    let pkt = build_rtp(i == 0, PT_EVENT, seq, event_ts, ssrc, &payload);
                    w.add_udp(t_us, 6000, 6002, &pkt);
                    seq = seq.wrapping_add(1);
                    t_us += 20_000;
                }
                // The event covered `duration` samples; audio resumes after it.
                rtp_ts = rtp_ts.wrapping_add(u32::from(duration));
                first_audio = true;
            }
        }
    }
    w.into_bytes()
}

/// Write a caller-audio pcap to `path` (see [`caller_pcap`]).
pub fn write_caller_pcap(path: &Path, parts: &[CallerAudio]) {
    std::fs::write(path, caller_pcap(parts))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// 1 s of 440 Hz, the digit, then 3 s more tone.
pub fn tone_digit_tone(digit: char) -> Vec<CallerAudio> {
    vec![
        CallerAudio::Tone {
            hz: 440.0,
            ms: 1000,
        },
        CallerAudio::Digit { digit, packets: 6 },
        CallerAudio::Tone {
            hz: 440.0,
            ms: 3000,
        },
    ]
}

/// Summary of an RTP stream captured at one destination port.
#[derive(Debug, Clone)]
pub struct StreamStats {
    pub packets: usize,
    pub pcmu_packets: usize,
    pub ssrcs: Vec<u32>,
    /// Median gap between consecutive PCMU packets, ms.
    pub median_gap_ms: f64,
    /// RMS of all decoded PCMU audio.
    pub rms: f64,
    /// Number of 20 ms PCMU packets whose RMS exceeds 300 (clearly not silence).
    pub loud_packets: usize,
}

pub fn stream_stats(packets: &[RtpPacket]) -> StreamStats {
    let pcmu: Vec<&RtpPacket> = packets
        .iter()
        .filter(|p| p.payload_type == PT_PCMU)
        .collect();
    let mut ssrcs: Vec<u32> = packets.iter().map(|p| p.ssrc).collect();
    ssrcs.sort_unstable();
    ssrcs.dedup();
    let mut gaps: Vec<f64> = pcmu
        .windows(2)
        .map(|w| (w[1].ts_us as f64 - w[0].ts_us as f64) / 1000.0)
        .collect();
    gaps.sort_by(|a, b| a.total_cmp(b));
    let median_gap_ms = gaps.get(gaps.len() / 2).copied().unwrap_or(0.0);
    let mut all = Vec::new();
    let mut loud_packets = 0;
    for p in &pcmu {
        let s: Vec<i16> = p.payload.iter().map(|&b| ulaw_decode(b)).collect();
        if rms(&s) > 300.0 {
            loud_packets += 1;
        }
        all.extend(s);
    }
    StreamStats {
        packets: packets.len(),
        pcmu_packets: pcmu.len(),
        ssrcs,
        median_gap_ms,
        rms: rms(&all),
        loud_packets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_pcap_is_one_contiguous_stream() {
        let bytes = caller_pcap(&tone_digit_tone('5'));
        let dgrams = crate::pcap::parse_udp(&bytes).unwrap();
        let pkts: Vec<RtpPacket> = dgrams.iter().filter_map(parse_rtp).collect();
        assert_eq!(pkts.len(), dgrams.len());
        assert_eq!(pkts.len(), 50 + 9 + 150);
        for w in pkts.windows(2) {
            assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
            assert_eq!(w[1].ts_us - w[0].ts_us, 20_000);
            assert_eq!(w[1].ssrc, w[0].ssrc);
        }
        let events: Vec<&RtpPacket> = pkts.iter().filter(|p| p.payload_type == PT_EVENT).collect();
        assert_eq!(events.len(), 9);
        assert!(events[0].marker);
        assert!(
            events
                .iter()
                .all(|e| e.payload[0] == 5 && e.timestamp == events[0].timestamp)
        );
        assert_eq!(
            events.iter().filter(|e| e.payload[1] & 0x80 != 0).count(),
            3
        );
        let stats = stream_stats(&pkts);
        assert!(stats.rms > 3000.0, "{stats:?}");
        assert_eq!(stats.loud_packets, 200);
    }
}
