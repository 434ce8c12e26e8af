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
    let frames = per[0].len();
    Ok(WavStats {
        channels: spec.channels,
        sample_rate: spec.sample_rate,
        bits_per_sample: spec.bits_per_sample,
        frames,
        duration_ms: frames as f64 * 1000.0 / f64::from(spec.sample_rate.max(1)),
        rms: per.iter().map(|c| rms(c)).collect(),
        peak: per
            .iter()
            .map(|c| c.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0))
            .collect(),
    })
}
