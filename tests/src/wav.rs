//! Recording analysis: per-channel RMS/peak and duration of a WAV file.

use crate::rtp::rms;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct WavStats {
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
    pub frames: usize,
    pub duration_ms: f64,
    /// Per channel (0 = left = caller, 1 = right = gateway).
    pub rms: Vec<f64>,
    pub peak: Vec<i32>,
}

pub fn analyze(path: &Path) -> Result<WavStats, String> {
    let (per, sample_rate) = read_channels(path)?;
    let frames = per.first().map_or(0, Vec::len);
    Ok(WavStats {
        channels: per.len() as u16,
        sample_rate,
        bits_per_sample: 16,
        frames,
        duration_ms: frames as f64 * 1000.0 / f64::from(sample_rate.max(1)),
        rms: per.iter().map(|c| rms(c)).collect(),
        peak: per
            .iter()
            .map(|c| c.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0))
            .collect(),
    })
}

/// Every channel's samples (16-bit PCM), and the sample rate.
pub fn read_channels(path: &Path) -> Result<(Vec<Vec<i16>>, u32), String> {
    let mut r =
        hound::WavReader::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let spec = r.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(format!(
            "{}: expected 16-bit PCM, got {spec:?}",
            path.display()
        ));
    }
    let ch = usize::from(spec.channels.max(1));
    let mut per: Vec<Vec<i16>> = vec![Vec::new(); ch];
    for (i, s) in r.samples::<i16>().enumerate() {
        let s = s.map_err(|e| format!("{}: sample {i}: {e}", path.display()))?;
        per[i % ch].push(s);
    }
    Ok((per, spec.sample_rate))
}

/// Power of `samples` at `hz` (Goertzel), normalised by the length.
pub fn tone_power(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    p / (samples.len().max(1) as f64).powi(2)
}

/// The strongest frequency of `samples` between 50 Hz and just under
/// Nyquist, on a 10 Hz grid.
pub fn dominant_hz(samples: &[i16], rate: u32) -> f64 {
    let top = f64::from(rate) / 2.0 - 50.0;
    let mut best = (0.0, f64::MIN);
    let mut hz = 50.0;
    while hz < top {
        let p = tone_power(samples, rate, hz);
        if p > best.1 {
            best = (hz, p);
        }
        hz += 10.0;
    }
    best.0
}
