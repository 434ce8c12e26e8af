//! Call recording: a stereo 8 kHz 16-bit WAV written frame by frame
//! (caller on the left channel, what the gateway sends on the right).
//!
//! One of the two places in the crate that does file IO. Audio goes to the
//! file in 16 KiB writes (every half second of stereo audio); the header's
//! sizes are rewritten every [`HEADER_EVERY_SECS`] seconds of audio and at
//! the end. A crash or power loss leaves a playable file whose header
//! counts up to that much less than the data on disk; crash recovery
//! (`hotline_store::wav_probe::repair_header`) then sets the sizes from the
//! data itself, so at most the unwritten buffer (~0.5 s) is lost.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::g711::{CLOCK_RATE, FRAME_SAMPLES};

/// Stereo: left = caller, right = gateway.
pub const RECORDING_CHANNELS: u16 = 2;
/// Seconds of audio between two rewrites of the header's sizes. Each
/// rewrite costs a partial write, two seeks and two 4-byte writes, and
/// breaks the file's sequential writing (the profile in docs/performance.md,
/// "Where the CPU went before run 5": `write` 5 %, these rewrites with the
/// buffer's flushes).
pub const HEADER_EVERY_SECS: u64 = 5;
/// Header rewrite interval in sample frames.
const FLUSH_EVERY: u64 = HEADER_EVERY_SECS * CLOCK_RATE as u64;
/// Write buffer per recording. 1 s of audio is 32 KB: 8 KiB is four write
/// calls a second per call (0.25 s of audio each, still sequential) and
/// 8 KiB of memory per call, a quarter of the gateway's whole per-call
/// cost (docs/performance.md, "Memory per call").
const BUFFER_BYTES: usize = 8 * 1024;

/// A recording problem. Recording failures never break the call; the
/// session stops recording and reports the error when it finishes.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The file (or its directory) could not be created.
    #[error("cannot create recording {}: {source}", path.display())]
    Create {
        /// The recording's file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing audio or rewriting the header failed (e.g. disk full).
    #[error("cannot write recording {}: {source}", path.display())]
    Write {
        /// The recording's file.
        path: PathBuf,
        /// What `hound` reported.
        #[source]
        source: hound::Error,
    },
}

/// What was recorded, returned by [`CallRecorder::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// The WAV file written.
    pub path: PathBuf,
    /// 2 for a call recording (caller left, gateway right), 1 for a voicemail.
    pub channels: u16,
    /// Always 8000.
    pub sample_rate: u32,
    /// Stereo sample frames (one per 1/8000 s).
    pub frames: u64,
    /// Length in milliseconds.
    pub duration_ms: u64,
    /// File size in bytes, header included.
    pub bytes: u64,
}

/// Writes one call's audio to a WAV file as it happens.
pub struct CallRecorder {
    writer: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
    /// 2 for a call (caller | sent), 1 for a voicemail (caller only).
    channels: u16,
    frames: u64,
    since_flush: u64,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish()
    }
}

impl CallRecorder {
    /// Creates (or truncates) `path`, creating missing parent directories:
    /// a stereo call recording, caller left, what the gateway sends right.
    pub fn create(path: &Path) -> Result<Self, RecordError> {
        Self::create_with_channels(path, RECORDING_CHANNELS)
    }

    /// A mono recording of the caller only (a voicemail message).
    pub fn create_mono(path: &Path) -> Result<Self, RecordError> {
        Self::create_with_channels(path, 1)
    }

    fn create_with_channels(path: &Path, channels: u16) -> Result<Self, RecordError> {
        let create_err = |source| RecordError::Create {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(create_err)?;
        }
        let file = File::create(path).map_err(create_err)?;
        let spec = hound::WavSpec {
            channels,
            sample_rate: CLOCK_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::new(BufWriter::with_capacity(BUFFER_BYTES, file), spec)
            .map_err(|source| RecordError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            writer,
            path: path.to_path_buf(),
            channels,
            frames: 0,
            since_flush: 0,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stereo sample frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Audio written so far, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(CLOCK_RATE)
    }

    /// Writes one 20 ms frame: exactly 160 stereo samples. Each side is
    /// truncated or padded with silence to 160, so every call adds 20 ms and
    /// the file's length tracks the call's length.
    pub fn write_frame(&mut self, caller: &[i16], sent: &[i16]) -> Result<(), RecordError> {
        self.write_padded(caller, sent, FRAME_SAMPLES)
    }

    /// Writes `max(caller.len(), sent.len())` stereo samples, padding the
    /// shorter side with silence.
    pub fn write_samples(&mut self, caller: &[i16], sent: &[i16]) -> Result<(), RecordError> {
        self.write_padded(caller, sent, caller.len().max(sent.len()))
    }

    fn write_padded(&mut self, left: &[i16], right: &[i16], n: usize) -> Result<(), RecordError> {
        // Chunked so hound's sample count (u32) can never overflow and its
        // reused buffer stays small.
        const CHUNK: usize = 4096;
        let mut start = 0;
        while start < n {
            let len = (n - start).min(CHUNK);
            // hound's 16-bit sample writer fills a reused internal buffer and
            // hands it to the BufWriter in one piece: no allocation per frame.
            let stereo = self.channels == 2;
            let mut w = self
                .writer
                .get_i16_writer((len * usize::from(self.channels)) as u32);
            for i in start..start + len {
                // Reads past the end of a side are silence (padding).
                w.write_sample(left.get(i).copied().unwrap_or(0));
                if stereo {
                    w.write_sample(right.get(i).copied().unwrap_or(0));
                }
            }
            w.flush().map_err(|source| RecordError::Write {
                path: self.path.clone(),
                source,
            })?;
            self.frames += len as u64;
            self.since_flush += len as u64;
            start += len;
        }
        if self.since_flush >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Pushes buffered audio to the file and rewrites the header so the file
    /// is valid as it stands. Called automatically every
    /// [`HEADER_EVERY_SECS`] seconds of audio.
    pub fn flush(&mut self) -> Result<(), RecordError> {
        self.since_flush = 0;
        self.writer.flush().map_err(|source| RecordError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Finalises the header and closes the file.
    pub fn finish(self) -> Result<RecordingInfo, RecordError> {
        let Self {
            writer,
            path,
            frames,
            channels,
            ..
        } = self;
        writer.finalize().map_err(|source| RecordError::Write {
            path: path.clone(),
            source,
        })?;
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok(RecordingInfo {
            channels,
            sample_rate: CLOCK_RATE,
            frames,
            duration_ms: frames * 1000 / u64::from(CLOCK_RATE),
            bytes,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_voicemail_holds_only_the_caller() {
        let path = temp_path("mono");
        let mut rec = CallRecorder::create_mono(&path).unwrap();
        let caller = [1000i16; FRAME_SAMPLES];
        let sent = [-7i16; FRAME_SAMPLES];
        for _ in 0..50 {
            rec.write_frame(&caller, &sent).unwrap();
        }
        let info = rec.finish().unwrap();
        assert_eq!((info.channels, info.duration_ms), (1, 1000));
        let mut r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().channels, 1);
        let samples: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(samples.len(), 8000);
        assert!(samples.iter().all(|&s| s == 1000));
        let _ = std::fs::remove_file(&path);
    }

    fn temp_path(tag: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!(
                "hotline-media-rec-{}-{}",
                std::process::id(),
                fastrand::u64(..)
            ))
            .join(format!("{tag}.wav"))
    }

    #[test]
    fn readable_while_open_and_after_finish() {
        let path = temp_path("call");
        let mut rec = CallRecorder::create(&path).unwrap();
        let caller: Vec<i16> = (0..160).map(|i| i as i16).collect();
        let sent = vec![-7i16; 100]; // short side is padded
        for _ in 0..260 {
            rec.write_frame(&caller, &sent).unwrap();
        }
        // 260 frames = 5.2 s: the automatic flush after 5 s made the file
        // valid; an explicit flush makes it complete.
        {
            let r = hound::WavReader::open(&path).unwrap();
            assert_eq!(r.spec().channels, 2);
            assert_eq!(r.spec().sample_rate, 8000);
            assert_eq!(r.duration(), 5 * 8000, "auto-flushed after 5 s");
        }
        rec.flush().unwrap();
        {
            let mut r = hound::WavReader::open(&path).unwrap();
            assert_eq!(r.duration(), 260 * 160);
            let s: Vec<i16> = r.samples::<i16>().take(320).map(|s| s.unwrap()).collect();
            assert_eq!(&s[..6], &[0, -7, 1, -7, 2, -7]);
            assert_eq!(s[2 * 100 + 1], 0, "padding after the short side");
            assert_eq!(s[2 * 159], 159);
        }
        for _ in 0..40 {
            rec.write_frame(&[], &[]).unwrap();
        }
        let info = rec.finish().unwrap();
        assert_eq!(info.frames, 300 * 160);
        assert_eq!(info.duration_ms, 6000);
        assert_eq!((info.channels, info.sample_rate), (2, 8000));
        assert_eq!(info.bytes, 44 + 300 * 160 * 4);
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.duration(), 48000);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn write_samples_uses_longest_side() {
        let path = temp_path("samples");
        let mut rec = CallRecorder::create(&path).unwrap();
        rec.write_samples(&[1, 2, 3], &[4]).unwrap();
        let info = rec.finish().unwrap();
        assert_eq!(info.frames, 3);
        let mut r = hound::WavReader::open(&path).unwrap();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(s, vec![1, 4, 2, 0, 3, 0]);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn create_fails_cleanly() {
        let dir = temp_path("d");
        std::fs::create_dir_all(&dir).unwrap();
        // A directory is not a file.
        assert!(matches!(
            CallRecorder::create(&dir),
            Err(RecordError::Create { .. })
        ));
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
