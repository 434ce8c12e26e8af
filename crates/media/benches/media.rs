//! Hot paths of the media layer, per 20 ms frame: G.711 µ-law/A-law
//! encode/decode, RTP parse, RFC 4733 parse and digit detection, in-band
//! DTMF detection, and the per-call media state machine
//! (`MediaSession::on_tick`, `on_rtp`).
//! Run: `cargo bench -p hotline-media`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hotline_media::{
    Codec, DigitReceiver, FRAME_SAMPLES, InbandDetector, MediaConfig, MediaSession, Prompt,
    RtpPacket, RtpSender, TelephoneEvent,
};

fn tone() -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|n| ((n as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 8000.0) as i16)
        .collect()
}

fn bench_g711(c: &mut Criterion) {
    let pcm = tone();
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let mut enc = Vec::with_capacity(FRAME_SAMPLES);
        codec.encode(&pcm, &mut enc);
        c.bench_function(&format!("g711 {codec}: encode a 20 ms frame"), |b| {
            let mut out = Vec::with_capacity(FRAME_SAMPLES);
            b.iter(|| {
                out.clear();
                codec.encode(black_box(&pcm), &mut out);
                black_box(&out);
            })
        });
        c.bench_function(&format!("g711 {codec}: decode a 20 ms frame"), |b| {
            let mut out = Vec::with_capacity(FRAME_SAMPLES);
            b.iter(|| {
                out.clear();
                codec.decode(black_box(&enc), &mut out);
                black_box(&out);
            })
        });
    }
}

fn rtp_packet(pt: u8, marker: bool, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut s = RtpSender::with_state(0x1234_5678, seq, ts);
    let mut out = Vec::new();
    s.write_header(pt, marker, ts, &mut out);
    out.extend_from_slice(payload);
    out
}

fn bench_rtp_dtmf(c: &mut Criterion) {
    let audio = rtp_packet(0, false, 7, 1600, &[0xFF; 160]);
    c.bench_function("rtp: parse a PCMU packet", |b| {
        b.iter(|| black_box(RtpPacket::parse(black_box(&audio)).unwrap()))
    });

    let event = [5u8, 0x0A, 0x03, 0x20];
    c.bench_function("rfc4733: TelephoneEvent::parse", |b| {
        b.iter(|| black_box(TelephoneEvent::parse(black_box(&event))))
    });

    // 16 events with distinct timestamps: each packet is a new digit.
    let new_events: Vec<Vec<u8>> = (0..16u32)
        .map(|i| {
            rtp_packet(
                101,
                true,
                i as u16,
                8000 * i,
                &[(i % 10) as u8, 0x0A, 0, 160],
            )
        })
        .collect();
    c.bench_function(
        "rfc4733: DigitReceiver::on_packet, new event (digit reported)",
        |b| {
            let mut rx = DigitReceiver::new();
            let now = Instant::now();
            let mut i = 0;
            b.iter(|| {
                let pkt = RtpPacket::parse(&new_events[i % 16]).unwrap();
                i += 1;
                black_box(rx.on_packet(black_box(&pkt), now))
            })
        },
    );
    let update = rtp_packet(101, false, 3, 8000, &[5, 0x0A, 0x03, 0x20]);
    c.bench_function(
        "rfc4733: DigitReceiver::on_packet, update of a known event",
        |b| {
            let mut rx = DigitReceiver::new();
            let now = Instant::now();
            let pkt = RtpPacket::parse(&update).unwrap();
            rx.on_packet(&pkt, now);
            b.iter(|| black_box(rx.on_packet(black_box(&pkt), now)))
        },
    );
}

fn session(now: Instant) -> MediaSession {
    let mut cfg = MediaConfig::new(Codec::Pcmu, "127.0.0.1:40000".parse().unwrap());
    cfg.dtmf_payload_type = Some(101);
    cfg.inactivity_timeout = Duration::from_secs(3600);
    MediaSession::new(cfg, now)
}

fn bench_session(c: &mut Criterion) {
    // A long prompt so the benchmark never runs off its end.
    let samples: Vec<i16> = tone().iter().copied().cycle().take(8000 * 600).collect();
    let prompt = Arc::new(Prompt::from_samples("bench/tone", samples));

    c.bench_function(
        "session: on_tick while playing a prompt (no recorder)",
        |b| {
            let now = Instant::now();
            let mut m = session(now);
            m.play(vec![prompt.clone()], true);
            let mut out = Vec::with_capacity(256);
            let mut t = now;
            b.iter(|| {
                t += Duration::from_millis(20);
                black_box(m.on_tick(t, &mut out));
            })
        },
    );

    c.bench_function("session: on_tick sending silence (no recorder)", |b| {
        let now = Instant::now();
        let mut m = session(now);
        let mut out = Vec::with_capacity(256);
        let mut t = now;
        b.iter(|| {
            t += Duration::from_millis(20);
            black_box(m.on_tick(t, &mut out));
        })
    });

    c.bench_function("session: on_rtp of a PCMU packet + on_tick", |b| {
        let now = Instant::now();
        let mut m = session(now);
        let from = "127.0.0.1:40000".parse().unwrap();
        let mut out = Vec::with_capacity(256);
        let mut pkt = rtp_packet(0, false, 0, 0, &[0x55; 160]);
        let mut seq = 0u16;
        let mut t = now;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            pkt[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            t += Duration::from_millis(20);
            black_box(m.on_rtp(t, from, &pkt));
            black_box(m.on_tick(t, &mut out));
        })
    });
}

fn bench_inband(c: &mut Criterion) {
    // Speech-like input (a 440 Hz tone) and a held key: the detector's cost
    // per 20 ms frame, Goertzel blocks spanning frame boundaries included.
    let speech = tone();
    let key: Vec<i16> = (0..FRAME_SAMPLES)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let w = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin() * 4000.0;
            (w(770.0) + w(1336.0)) as i16
        })
        .collect();
    for (name, pcm) in [("440 Hz audio", &speech), ("held key 5", &key)] {
        c.bench_function(
            &format!("inband: InbandDetector::process, 20 ms frame of {name}"),
            |b| {
                let mut d = InbandDetector::new();
                b.iter(|| black_box(d.process_frame(black_box(pcm))))
            },
        );
    }
}

criterion_group!(
    benches,
    bench_g711,
    bench_rtp_dtmf,
    bench_session,
    bench_inband
);
criterion_main!(benches);
