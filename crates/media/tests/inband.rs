//! In-band DTMF detection against audio made by sox, passed through G.711
//! µ-law and A-law as a carrier would send it, plus talk-off (the project's
//! own speech prompts and white noise must produce no digits) and the
//! session wiring (detection only without a telephone-event payload type).
//!
//! sox is required: a missing sox fails these tests with a message naming
//! it (no silent skips).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hotline_media::{
    Codec, DigitTransport, FRAME_SAMPLES, InbandDetector, MediaConfig, MediaEvent, MediaSession,
    RtpSender,
};

/// Per-tone amplitude (full scale 1.0) of 0 dBm0: G.711's full-scale sine
/// is +3.17 dBm0.
const DBM0: f64 = 0.6943;

const ROWS: [u32; 4] = [697, 770, 852, 941];
const COLS: [u32; 4] = [1209, 1336, 1477, 1633];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

fn key_freqs(key: char) -> (u32, u32) {
    for (r, row) in KEYS.iter().enumerate() {
        for (c, &k) in row.iter().enumerate() {
            if k == key {
                return (ROWS[r], COLS[c]);
            }
        }
    }
    panic!("not a key: {key}")
}

fn workspace_root() -> PathBuf {
    Path::new(&manifest_dir())
        .ancestors()
        .nth(2)
        .expect("crates/media has a workspace root")
        .to_path_buf()
}

/// A scratch directory for this test's fixtures.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-inband-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Runs sox; a missing sox fails the test naming it.
fn sox(test: &str, args: &[&str]) {
    let out = match Command::new("sox").args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{test} needs sox, which is not on PATH: install it (apt-get install sox; \
             tests/run installs it)"
        ),
        Err(e) => panic!("{test}: running sox failed: {e}"),
    };
    assert!(
        out.status.success(),
        "{test}: sox {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key tone made by sox: both sines at `row_dbm0` / `col_dbm0` per tone.
fn sox_tone(test: &str, dir: &Path, key: char, ms: u32, row_dbm0: f64, col_dbm0: f64) -> PathBuf {
    let (lo, hi) = key_freqs(key);
    let path = dir.join(format!("{}-{ms}-{row_dbm0}-{col_dbm0}.wav", key as u32));
    let secs = format!("{:.3}", f64::from(ms) / 1000.0);
    let remix = format!(
        "1v{:.6},2v{:.6}",
        DBM0 * 10f64.powf(row_dbm0 / 20.0),
        DBM0 * 10f64.powf(col_dbm0 / 20.0)
    );
    // Two channels, one sine each, mixed into one at the chosen levels.
    sox(
        test,
        &[
            "-r",
            "8000",
            "-c",
            "2",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            path.to_str().unwrap(),
            "synth",
            &secs,
            "sine",
            &lo.to_string(),
            "sine",
            &hi.to_string(),
            "remix",
            &remix,
        ],
    );
    path
}

fn sox_silence(test: &str, dir: &Path, ms: u32) -> PathBuf {
    let path = dir.join(format!("silence-{ms}.wav"));
    let secs = format!("{:.3}", f64::from(ms) / 1000.0);
    sox(
        test,
        &[
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            path.to_str().unwrap(),
            "trim",
            "0",
            &secs,
        ],
    );
    path
}

fn sox_concat(test: &str, parts: &[PathBuf], out: &Path) {
    let mut args: Vec<&str> = parts.iter().map(|p| p.to_str().unwrap()).collect();
    args.push(out.to_str().unwrap());
    sox(test, &args);
}

fn read_wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let spec = r.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16),
        "{path:?}: expected 8 kHz mono 16-bit"
    );
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// Through G.711 and back, as the carrier's audio reaches us.
fn through(codec: Codec, pcm: &[i16]) -> Vec<i16> {
    pcm.iter()
        .map(|&s| codec.decode_sample(codec.encode_sample(s)))
        .collect()
}

/// Runs a fresh detector over `pcm` in 20 ms frames; the digits found.
fn detect(pcm: &[i16]) -> String {
    let mut d = InbandDetector::new();
    let mut out = String::new();
    for frame in pcm.chunks(FRAME_SAMPLES) {
        d.process(frame, |x| {
            assert_eq!(x.transport, DigitTransport::Inband);
            out.push(x.digit)
        });
    }
    out
}

const LAWS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

#[test]
fn all_sixteen_keys_from_sox_through_g711() {
    let test = "all_sixteen_keys_from_sox_through_g711";
    let dir = scratch(test);
    for key in "123A456B789C*0#D".chars() {
        let pcm = read_wav(&sox_tone(test, &dir, key, 100, -10.0, -8.0));
        for law in LAWS {
            assert_eq!(
                detect(&through(law, &pcm)),
                key.to_string(),
                "{key} {law:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sequence_with_60ms_gaps_gives_four_digits() {
    let test = "sequence_with_60ms_gaps_gives_four_digits";
    let dir = scratch(test);
    let gap = sox_silence(test, &dir, 60);
    let mut parts = vec![gap.clone()];
    for key in ['1', '2', '3', '#'] {
        parts.push(sox_tone(test, &dir, key, 100, -10.0, -10.0));
        parts.push(gap.clone());
    }
    let seq = dir.join("seq.wav");
    sox_concat(test, &parts, &seq);
    let pcm = read_wav(&seq);
    for law in LAWS {
        let audio = through(law, &pcm);
        assert_eq!(detect(&audio), "123#", "{law:?}");
        // Frame alignment must not matter: shift by a few samples.
        for shift in [1usize, 37, 53, 106] {
            assert_eq!(detect(&audio[shift..]), "123#", "{law:?} shift {shift}");
        }
    }
    // The same key twice with a 60 ms pause is two presses.
    let five = sox_tone(test, &dir, '5', 100, -10.0, -10.0);
    let twice = dir.join("twice.wav");
    sox_concat(test, &[five.clone(), gap, five], &twice);
    assert_eq!(detect(&through(Codec::Pcmu, &read_wav(&twice))), "55");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn held_key_is_one_digit() {
    let test = "held_key_is_one_digit";
    let dir = scratch(test);
    let pcm = read_wav(&sox_tone(test, &dir, '9', 2000, -10.0, -10.0));
    assert_eq!(pcm.len(), 16_000);
    for law in LAWS {
        assert_eq!(detect(&through(law, &pcm)), "9", "{law:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn level_minus_25_dbm0_detected_minus_45_not() {
    let test = "level_minus_25_dbm0_detected_minus_45_not";
    let dir = scratch(test);
    for key in ['1', '0', 'D'] {
        let loud = read_wav(&sox_tone(test, &dir, key, 100, -25.0, -25.0));
        let quiet = read_wav(&sox_tone(test, &dir, key, 100, -45.0, -45.0));
        for law in LAWS {
            assert_eq!(
                detect(&through(law, &loud)),
                key.to_string(),
                "{key} {law:?}"
            );
            assert_eq!(
                detect(&through(law, &quiet)),
                "",
                "{key} {law:?} at -45 dBm0"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn twist_beyond_limits_rejected() {
    let test = "twist_beyond_limits_rejected";
    let dir = scratch(test);
    // (row dBm0, column dBm0, detected?)
    let cases = [
        (-16.0, -10.0, true),  // normal twist 6 dB
        (-20.0, -10.0, false), // normal twist 10 dB > 8
        (-10.0, -13.0, true),  // reverse twist 3 dB
        (-10.0, -16.0, false), // reverse twist 6 dB > 4
    ];
    for (row, col, ok) in cases {
        let pcm = read_wav(&sox_tone(test, &dir, '5', 100, row, col));
        for law in LAWS {
            let want = if ok { "5" } else { "" };
            assert_eq!(
                detect(&through(law, &pcm)),
                want,
                "row {row} col {col} {law:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn talk_off_speech_prompts_give_no_digits() {
    let mut files = Vec::new();
    for lang in ["en", "zh"] {
        collect_wavs(&workspace_root().join("sounds").join(lang), &mut files);
    }
    files.sort();
    assert!(
        files.len() >= 200,
        "expected the speech prompts, found {}",
        files.len()
    );
    let mut samples = 0usize;
    let mut hits = Vec::new();
    for f in &files {
        let pcm = read_wav(f);
        samples += pcm.len();
        for (name, audio) in [
            ("linear", pcm.clone()),
            ("PCMU", through(Codec::Pcmu, &pcm)),
            ("PCMA", through(Codec::Pcma, &pcm)),
        ] {
            let got = detect(&audio);
            if !got.is_empty() {
                hits.push(format!("{} ({name}): {got}", f.display()));
            }
        }
    }
    let secs = samples as f64 / 8000.0;
    eprintln!(
        "talk-off: {} files, {secs:.1} s of speech, each linear, µ-law and A-law: {} digits",
        files.len(),
        hits.len()
    );
    assert!(
        hits.is_empty(),
        "speech detected as DTMF:\n{}",
        hits.join("\n")
    );
}

fn collect_wavs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_wavs(&p, out);
        } else if p.extension().is_some_and(|x| x == "wav") {
            out.push(p);
        }
    }
}

#[test]
fn talk_off_white_noise_gives_no_digits() {
    let test = "talk_off_white_noise_gives_no_digits";
    let dir = scratch(test);
    for vol in ["0.9", "0.3", "0.05", "0.01"] {
        let path = dir.join(format!("noise-{vol}.wav"));
        sox(
            test,
            &[
                "-n",
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                path.to_str().unwrap(),
                "synth",
                "10",
                "whitenoise",
                "vol",
                vol,
            ],
        );
        let pcm = read_wav(&path);
        for law in LAWS {
            assert_eq!(detect(&through(law, &pcm)), "", "noise vol {vol} {law:?}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// RTP packets of `pcm` (µ-law), 20 ms each.
fn rtp_packets(pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut tx = RtpSender::with_state(0x5151_5151, 100, 8000);
    pcm.chunks(FRAME_SAMPLES)
        .map(|frame| {
            let mut out = Vec::new();
            let ts = tx.timestamp();
            tx.write_header(0, false, ts, &mut out);
            Codec::Pcmu.encode(frame, &mut out);
            tx.advance(FRAME_SAMPLES as u32);
            out
        })
        .collect()
}

fn run_session(dtmf_payload_type: Option<u8>, packets: &[Vec<u8>]) -> Vec<MediaEvent> {
    let remote: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let mut cfg = MediaConfig::new(Codec::Pcmu, remote);
    cfg.dtmf_payload_type = dtmf_payload_type;
    let t0 = Instant::now();
    let mut media = MediaSession::new(cfg, t0);
    let mut events = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        events.extend(media.on_rtp(now, remote, p));
    }
    events
}

#[test]
fn session_without_telephone_event_detects_inband() {
    let test = "session_without_telephone_event_detects_inband";
    let dir = scratch(test);
    let gap = sox_silence(test, &dir, 200);
    let seq = dir.join("seq.wav");
    sox_concat(
        test,
        &[
            gap.clone(),
            sox_tone(test, &dir, '7', 300, -12.0, -12.0),
            gap.clone(),
            sox_tone(test, &dir, '#', 120, -12.0, -12.0),
            gap,
        ],
        &seq,
    );
    let packets = rtp_packets(&read_wav(&seq));

    let events = run_session(None, &packets);
    let digits: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Digit(d) => Some((d.digit, d.transport)),
            _ => None,
        })
        .collect();
    assert_eq!(
        digits,
        vec![('7', DigitTransport::Inband), ('#', DigitTransport::Inband)]
    );

    // With RFC 4733 negotiated, the audio is not searched for tones.
    assert_eq!(run_session(Some(101), &packets), vec![]);
    let _ = std::fs::remove_dir_all(dir);
}

/// The package's directory as `cargo test` gives it at run time (the
/// compile-time one is stale when a shared target dir reuses this test
/// binary for a checkout elsewhere).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
