//! What a WAV file left by a crash holds: format and length read from the
//! file itself, not from the header's sizes (the recorder rewrites those
//! once a second, so after a SIGKILL they lag the data by up to a second).

use std::io::Read;
use std::path::Path;

/// The facts of one PCM WAV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavFacts {
    /// From the `fmt ` chunk.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// 16 for the gateway's recordings.
    pub bits_per_sample: u16,
    /// Bytes of sample data actually in the file (whole frames only).
    pub data_bytes: u64,
    /// The file's size.
    pub bytes: u64,
    /// Where the sample data starts.
    pub data_offset: u64,
}

impl WavFacts {
    /// Duration of the whole frames in the file, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        let frame = u64::from(self.channels) * u64::from(self.bits_per_sample / 8);
        if frame == 0 || self.sample_rate == 0 {
            return 0;
        }
        self.data_bytes / frame * 1000 / u64::from(self.sample_rate)
    }
}

/// Reads the RIFF chunks up to `data`; the data runs to the end of the file.
/// `None` for anything that is not a PCM WAV with a `fmt ` before `data`.
pub fn probe(path: &Path) -> Option<WavFacts> {
    let mut f = std::fs::File::open(path).ok()?;
    let bytes = f.metadata().ok()?.len();
    let mut head = vec![0u8; 4096.min(bytes as usize)];
    f.read_exact(&mut head).ok()?;
    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return None;
    }
    let u16_at = |i: usize| head.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |i: usize| {
        head.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut fmt: Option<(u16, u32, u16)> = None;
    let mut pos = 12usize;
    while pos + 8 <= head.len() {
        let id = &head[pos..pos + 4];
        let size = u32_at(pos + 4)? as usize;
        let body = pos + 8;
        if id == b"fmt " {
            fmt = Some((u16_at(body + 2)?, u32_at(body + 4)?, u16_at(body + 14)?));
        } else if id == b"data" {
            let (channels, sample_rate, bits_per_sample) = fmt?;
            let frame = u64::from(channels) * u64::from(bits_per_sample / 8);
            let raw = bytes.saturating_sub(body as u64);
            let data_bytes = raw.checked_div(frame).map_or(0, |n| n * frame);
            return Some(WavFacts {
                channels,
                sample_rate,
                bits_per_sample,
                data_bytes,
                bytes,
                data_offset: body as u64,
            });
        }
        // RIFF chunks are padded to an even size.
        pos = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// Makes the header's RIFF and `data` sizes match the whole frames in the
/// file, so every player (and `hound`) sees all of the audio a crash left.
pub fn repair_header(path: &Path, facts: &WavFacts) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let too_big = || std::io::Error::other("WAV larger than 4 GiB");
    let data = u32::try_from(facts.data_bytes).map_err(|_| too_big())?;
    let riff = u32::try_from(facts.data_offset + facts.data_bytes - 8).map_err(|_| too_big())?;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(4))?;
    f.write_all(&riff.to_le_bytes())?;
    f.seek(SeekFrom::Start(facts.data_offset - 4))?;
    f.write_all(&data.to_le_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, rate: u32, header_data_len: u32, data: usize) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + header_data_len).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        v.extend_from_slice(&(channels * 2).to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&header_data_len.to_le_bytes());
        v.resize(v.len() + data, 0);
        v
    }

    #[test]
    fn length_comes_from_the_file_not_the_stale_header() {
        let dir = std::env::temp_dir().join(format!("hotline-wav-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.wav");
        // Header says 1 s; the file holds 2.5 s of 8 kHz stereo and half a frame.
        std::fs::write(&p, wav(2, 8000, 32_000, 80_000 + 2)).unwrap();
        let f = probe(&p).unwrap();
        assert_eq!(
            (f.channels, f.sample_rate, f.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(f.data_bytes, 80_000);
        assert_eq!(f.duration_ms(), 2500);
        assert_eq!(f.bytes, 44 + 80_002);
        assert_eq!(f.data_offset, 44);
        repair_header(&p, &f).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b[4..8], (36u32 + 80_000).to_le_bytes());
        assert_eq!(b[40..44], 80_000u32.to_le_bytes());
        assert_eq!(probe(&p), Some(f));
        std::fs::write(&p, b"RIFF\0\0\0\0WAVEjunk").unwrap();
        assert_eq!(probe(&p), None);
        std::fs::write(&p, b"not a wav").unwrap();
        assert_eq!(probe(&p), None);
        assert_eq!(probe(&dir.join("missing.wav")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
