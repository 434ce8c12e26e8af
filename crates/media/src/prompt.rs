//! Voice prompts: WAV files loaded once, converted to 8 kHz mono i16, cached.
//!
//! This is one of the two places in the crate that touches the file system;
//! it runs at startup (`preload_dir`) or on the first use of a prompt, never
//! per frame.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use thiserror::Error;

use crate::g711::{CLOCK_RATE, FRAME_SAMPLES};

/// A decoded prompt: 8 kHz mono linear PCM, shared between calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The name it was requested by, without `.wav` (e.g. `en/welcome`).
    pub name: String,
    /// The audio, one `i16` per 1/8000 s.
    pub samples: Arc<[i16]>,
}

impl Prompt {
    /// Builds a prompt from samples already at 8 kHz (tests, generated tones).
    pub fn from_samples(name: impl Into<String>, samples: impl Into<Arc<[i16]>>) -> Self {
        Self {
            name: name.into(),
            samples: samples.into(),
        }
    }

    /// How long the prompt plays.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(CLOCK_RATE))
    }

    /// Number of 20 ms frames needed to play it (the last one padded).
    pub fn frames(&self) -> usize {
        self.samples.len().div_ceil(FRAME_SAMPLES)
    }
}

/// Why a prompt could not be loaded.
#[derive(Debug, Error)]
pub enum PromptError {
    /// The name is empty, absolute, or has `..`, `.` or a backslash: a flow can
    /// never name a file outside the sounds directory.
    #[error("invalid prompt name {0:?}: must be a relative path inside the sounds directory")]
    InvalidName(String),
    #[error("prompt {name:?} not found at {}", path.display())]
    /// No WAV file for the name in the sounds directory.
    NotFound {
        /// The name asked for.
        name: String,
        /// Where the file was looked for.
        path: PathBuf,
    },
    /// The file exists but is not a WAV file `hound` can read.
    #[error("cannot read prompt {}: {source}", path.display())]
    Wav {
        /// The file.
        path: PathBuf,
        /// What `hound` reported.
        #[source]
        source: hound::Error,
    },
    /// The sounds directory or a file in it could not be read.
    #[error("cannot read sounds directory {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    #[error("unsupported WAV format in {}: {reason}", path.display())]
    /// The WAV's format cannot be converted (no channels, samples wider
    /// than 32 bits, …).
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What about the format is not supported.
        reason: &'static str,
    },
    /// An upload longer than its limit (checked from the header, before
    /// any decoding).
    #[error("the recording is {seconds} s long; at most {max} s is accepted")]
    TooLong {
        /// Its length, rounded up.
        seconds: u64,
        /// The limit.
        max: u64,
    },
}

/// Loads prompts from a sounds directory on first use and keeps them.
///
/// Cheap to share (`Arc<PromptCache>`): reads take a read lock only; the WAV
/// is decoded outside any lock, so a slow disk never blocks other calls.
#[derive(Debug)]
pub struct PromptCache {
    dir: PathBuf,
    cache: RwLock<HashMap<String, Arc<Prompt>>>,
}

impl PromptCache {
    /// A cache over `sounds_dir`; nothing is read until a prompt is asked for.
    pub fn new(sounds_dir: PathBuf) -> Self {
        Self {
            dir: sounds_dir,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The directory prompts are loaded from.
    pub fn sounds_dir(&self) -> &Path {
        &self.dir
    }

    /// Number of prompts currently cached.
    pub fn len(&self) -> usize {
        self.cache
            .read()
            .map(|c| c.len())
            .unwrap_or_else(|p| p.into_inner().len())
    }

    /// True while no prompt has been loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the prompt `name` (e.g. `en/welcome` or `en/welcome.wav`),
    /// loading it on first use.
    pub fn get(&self, name: &str) -> Result<Arc<Prompt>, PromptError> {
        let key = normalise_name(name)?;
        {
            // A poisoned lock only means another thread panicked mid-insert;
            // the map itself is still consistent.
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if let Some(p) = cache.get(&key) {
                return Ok(Arc::clone(p));
            }
        }
        let path = self.dir.join(format!("{key}.wav"));
        if !path.is_file() {
            return Err(PromptError::NotFound { name: key, path });
        }
        self.load(key, &path)
    }

    /// Forgets the cached copy of `name` (e.g. after its file was replaced),
    /// so the next [`get`](Self::get) reads the file again. Calls already
    /// holding the old `Arc<Prompt>` keep playing it. Returns whether a copy
    /// was cached.
    pub fn invalidate(&self, name: &str) -> bool {
        let Ok(key) = normalise_name(name) else {
            return false;
        };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.remove(&key).is_some()
    }

    /// Decodes `path` and caches it under `key`.
    fn load(&self, key: String, path: &Path) -> Result<Arc<Prompt>, PromptError> {
        let samples = load_wav(path)?;
        let prompt = Arc::new(Prompt {
            name: key.clone(),
            samples: samples.into(),
        });
        tracing::debug!(prompt = %key, samples = prompt.samples.len(), "prompt loaded");
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        // If another thread loaded it meanwhile, keep the first copy so every
        // caller shares one buffer.
        Ok(Arc::clone(cache.entry(key).or_insert(prompt)))
    }

    /// Loads every `.wav` below the sounds directory; returns how many
    /// prompts are cached from it. Fails on the first unreadable file so a
    /// broken prompt is noticed at startup rather than mid-call.
    pub fn preload_dir(&self) -> Result<usize, PromptError> {
        let mut found = Vec::new();
        collect_wavs(&self.dir, &self.dir, &mut found)?;
        found.sort();
        for (key, path) in &found {
            let cached = self
                .cache
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(key);
            if !cached {
                self.load(key.clone(), path)?;
            }
        }
        Ok(found.len())
    }
}

/// Checks a prompt name and strips `.wav`. Only plain relative components
/// are accepted: no `..`, no root, no drive prefix, no `.`, so a name coming
/// from an IVR flow can never address a file outside the sounds directory.
fn normalise_name(name: &str) -> Result<String, PromptError> {
    let invalid = || PromptError::InvalidName(name.to_owned());
    let stem = name.strip_suffix(".wav").unwrap_or(name);
    if stem.is_empty() || stem.contains('\\') || stem.contains('\0') {
        return Err(invalid());
    }
    let path = Path::new(stem);
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(invalid)?),
            _ => return Err(invalid()),
        }
    }
    if parts.is_empty() {
        return Err(invalid());
    }
    Ok(parts.join("/"))
}

/// Collects `(name, path)` of every `.wav` (any case) below `dir`.
fn collect_wavs(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), PromptError> {
    let io = |source| PromptError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let ty = entry.file_type().map_err(io)?;
        if ty.is_dir() {
            collect_wavs(root, &path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        {
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel = rel.with_extension("");
            let Some(rel) = rel.to_str() else {
                tracing::warn!(path = %path.display(), "skipping prompt with non-UTF-8 name");
                continue;
            };
            out.push((rel.replace(std::path::MAIN_SEPARATOR, "/"), path.clone()));
        }
    }
    Ok(())
}

/// What a WAV file's header says (`GET /api/prompts` shows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavInfo {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Channels (1 mono, 2 stereo, ...).
    pub channels: u16,
    /// Bits per sample (8, 16, 24, 32).
    pub bits_per_sample: u16,
    /// Samples per channel.
    pub frames: u32,
}

impl WavInfo {
    /// How long the file plays.
    pub fn duration(&self) -> Duration {
        if self.sample_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(u64::from(self.frames) * 1_000_000 / u64::from(self.sample_rate))
    }
}

/// Reads the header of the WAV file at `path`.
pub fn wav_info(path: &Path) -> Result<WavInfo, PromptError> {
    let reader = hound::WavReader::open(path).map_err(|source| PromptError::Wav {
        path: path.to_path_buf(),
        source,
    })?;
    let spec = reader.spec();
    Ok(WavInfo {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        frames: reader.duration(),
    })
}

/// Reads the header of a WAV file in memory (errors name the path `upload`).
pub fn wav_info_bytes(bytes: &[u8]) -> Result<WavInfo, PromptError> {
    let reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|source| PromptError::Wav {
            path: PathBuf::from("upload"),
            source,
        })?;
    let spec = reader.spec();
    Ok(WavInfo {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        frames: reader.duration(),
    })
}

/// Converts a WAV file in memory (any rate, channels and sample format
/// hound reads) to what the gateway plays: 8 kHz mono i16. A header that
/// says it is longer than `max` is refused before anything is decoded, so
/// the work is bounded. Errors name the path `upload`.
pub fn convert_wav(bytes: &[u8], max: Duration) -> Result<Vec<i16>, PromptError> {
    let path = Path::new("upload");
    let reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|source| PromptError::Wav {
            path: path.to_path_buf(),
            source,
        })?;
    let spec = reader.spec();
    if spec.sample_rate > 0 {
        let micros = u64::from(reader.duration()) * 1_000_000 / u64::from(spec.sample_rate);
        if micros > max.as_micros() as u64 {
            return Err(PromptError::TooLong {
                seconds: micros.div_ceil(1_000_000),
                max: max.as_secs(),
            });
        }
    }
    decode_wav(reader, path)
}

/// An 8 kHz mono 16-bit WAV file holding `samples`.
pub fn encode_wav(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: CLOCK_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    // Writing to memory cannot fail but for a file over 4 GiB, which
    // 16-bit mono at 8 kHz reaches only after 74 hours.
    if let Ok(mut w) = hound::WavWriter::new(&mut out, spec) {
        for &s in samples {
            if w.write_sample(s).is_err() {
                break;
            }
        }
        let _ = w.finalize();
    }
    out.into_inner()
}

/// Reads any WAV hound understands and returns 8 kHz mono i16.
fn load_wav(path: &Path) -> Result<Vec<i16>, PromptError> {
    let reader = hound::WavReader::open(path).map_err(|source| PromptError::Wav {
        path: path.to_path_buf(),
        source,
    })?;
    decode_wav(reader, path)
}

fn decode_wav<R: std::io::Read>(
    mut reader: hound::WavReader<R>,
    path: &Path,
) -> Result<Vec<i16>, PromptError> {
    let wav_err = |source| PromptError::Wav {
        path: path.to_path_buf(),
        source,
    };
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 || spec.sample_rate == 0 {
        return Err(PromptError::Unsupported {
            path: path.to_path_buf(),
            reason: "zero channels or zero sample rate",
        });
    }
    if spec.sample_format == hound::SampleFormat::Int
        && spec.bits_per_sample == 16
        && channels == 1
        && spec.sample_rate == CLOCK_RATE
    {
        // Already what we play (sounds/generate writes this): no conversion.
        return reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .map_err(wav_err);
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_err)?,
        hound::SampleFormat::Int => {
            if !(1..=32).contains(&spec.bits_per_sample) {
                return Err(PromptError::Unsupported {
                    path: path.to_path_buf(),
                    reason: "integer samples wider than 32 bits",
                });
            }
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(wav_err)?
        }
    };
    let mono = mix_to_mono(&interleaved, channels);
    let resampled = resample(&mono, spec.sample_rate, CLOCK_RATE);
    Ok(resampled.iter().map(|&x| to_i16(x)).collect())
}

/// Averages the channels of each frame (a trailing partial frame is dropped).
pub fn mix_to_mono(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    let inv = 1.0 / channels as f32;
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() * inv)
        .collect()
}

fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Zero crossings of the sinc on each side of the kernel centre; 16 gives a
/// steep low-pass (good alias rejection) at a cost paid once per prompt.
const SINC_ZEROS: f64 = 16.0;
/// Cut-off as a fraction of the lower Nyquist frequency; leaves a transition
/// band so the kernel's roll-off happens below the new Nyquist.
const CUTOFF: f64 = 0.92;

/// Band-limited resampling with a Blackman-windowed sinc kernel.
///
/// When downsampling the kernel is widened by `from/to` so it is also the
/// anti-aliasing low-pass (cut-off just under the new Nyquist). The output
/// length is `len * to / from`, rounded, so the duration is preserved.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    let ratio = f64::from(to) / f64::from(from);
    let out_len =
        ((input.len() as u64 * u64::from(to) + u64::from(from) / 2) / u64::from(from)) as usize;
    // Cut-off in units of the input Nyquist frequency.
    let fc = ratio.min(1.0) * CUTOFF;
    let half_width = SINC_ZEROS / fc;
    let last = input.len() as i64 - 1;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let centre = n as f64 / ratio;
        let lo = ((centre - half_width).ceil() as i64).max(0);
        let hi = ((centre + half_width).floor() as i64).min(last);
        let mut acc = 0.0f64;
        let mut weight = 0.0f64;
        for k in lo..=hi {
            let x = k as f64 - centre;
            let w = fc * sinc(fc * x) * blackman(x / half_width);
            acc += w * f64::from(input.get(k as usize).copied().unwrap_or(0.0));
            weight += w;
        }
        // Normalising by the kernel sum keeps DC gain at exactly 1, also at
        // the edges where the kernel is cut off.
        let y = if weight.abs() > 1e-9 {
            acc / weight
        } else {
            0.0
        };
        out.push(y as f32);
    }
    out
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Blackman window over t in [-1, 1].
fn blackman(t: f64) -> f64 {
    if t.abs() >= 1.0 {
        return 0.0;
    }
    let a = std::f64::consts::PI * (t + 1.0);
    0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hotline-media-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_wav(path: &Path, spec: hound::WavSpec, frames: usize, f: impl Fn(usize, u16) -> f32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            for ch in 0..spec.channels {
                let v = f(i, ch);
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(v).unwrap(),
                    hound::SampleFormat::Int => {
                        let max = ((1i64 << (spec.bits_per_sample - 1)) - 1) as f32;
                        w.write_sample((v * max) as i32).unwrap()
                    }
                }
            }
        }
        w.finalize().unwrap();
    }

    fn spec(channels: u16, rate: u32, bits: u16, float: bool) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    fn zero_crossings(s: &[i16]) -> usize {
        s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn loads_16k_stereo_as_8k_mono_tone() {
        let dir = temp_dir("p16k");
        // 1 s of 1 kHz on the left, silence on the right.
        write_wav(
            &dir.join("en/tone.wav"),
            spec(2, 16000, 16, false),
            16000,
            |i, ch| {
                if ch == 0 {
                    0.5 * (2.0 * PI * 1000.0 * i as f32 / 16000.0).sin()
                } else {
                    0.0
                }
            },
        );
        let cache = PromptCache::new(dir.clone());
        let p = cache.get("en/tone").unwrap();
        assert_eq!(p.name, "en/tone");
        assert_eq!(p.samples.len(), 8000);
        assert_eq!(p.frames(), 50);
        assert_eq!(p.duration(), Duration::from_secs(1));
        // 1 kHz for 1 s crosses zero ~2000 times.
        let zc = zero_crossings(&p.samples[100..7900]);
        assert!((1930..=2020).contains(&zc), "zero crossings {zc}");
        // Mono mix is the average: 0.5 amplitude / 2 -> peak ~8192, rms ~5793.
        let r = rms(&p.samples[100..7900]);
        assert!((5500.0..6100.0).contains(&r), "rms {r}");
        // Cached: same buffer on the second call, with or without ".wav".
        let again = cache.get("en/tone.wav").unwrap();
        assert!(Arc::ptr_eq(&p, &again));
        assert_eq!(cache.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn loads_44k1_float_and_8k_int_formats() {
        let dir = temp_dir("pfmt");
        write_wav(
            &dir.join("f.wav"),
            spec(1, 44100, 32, true),
            22050,
            |i, _| 0.25 * (2.0 * PI * 440.0 * i as f32 / 44100.0).sin(),
        );
        write_wav(
            &dir.join("plain.wav"),
            spec(1, 8000, 16, false),
            4000,
            |i, _| {
                if i % 2 == 0 { 0.5 } else { -0.5 }
            },
        );
        write_wav(
            &dir.join("deep/x24.wav"),
            spec(3, 24000, 24, false),
            2400,
            |_, _| 0.3,
        );
        write_wav(
            &dir.join("b8.wav"),
            spec(1, 11025, 8, false),
            11025,
            |_, _| -0.5,
        );
        let cache = PromptCache::new(dir.clone());
        let f = cache.get("f").unwrap();
        assert!(
            (3999..=4001).contains(&f.samples.len()),
            "{}",
            f.samples.len()
        );
        let zc = zero_crossings(&f.samples[100..3900]);
        // 440 Hz over 3800 samples (0.475 s): ~418 crossings.
        assert!((405..=430).contains(&zc), "zero crossings {zc}");
        let r = rms(&f.samples[100..3900]);
        assert!((5500.0..6100.0).contains(&r), "rms {r}");

        // 8 kHz input is passed through untouched.
        let p = cache.get("plain").unwrap();
        assert_eq!(p.samples.len(), 4000);
        assert_eq!(p.samples[0], 16383);
        assert_eq!(p.samples[1], -16383);

        // 24-bit, three channels, 24 kHz: DC level survives mixing and resampling.
        let x = cache.get("deep/x24").unwrap();
        assert_eq!(x.samples.len(), 800);
        assert!(
            x.samples[10..790].iter().all(|&s| (s - 9830).abs() < 20),
            "{:?}",
            &x.samples[..20]
        );

        // 8-bit unsigned at 11.025 kHz.
        let b = cache.get("b8").unwrap();
        assert_eq!(b.samples.len(), 8000);
        assert!(b.samples[10..7990].iter().all(|&s| (s + 16384).abs() < 300));

        assert_eq!(cache.preload_dir().unwrap(), 4);
        assert_eq!(cache.len(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn preload_finds_nested_files() {
        let dir = temp_dir("pre");
        for name in ["en/welcome.wav", "en/menu/main.wav", "zh/welcome.WAV"] {
            write_wav(&dir.join(name), spec(1, 8000, 16, false), 160, |_, _| 0.0);
        }
        std::fs::write(dir.join("readme.txt"), "not audio").unwrap();
        let cache = PromptCache::new(dir.clone());
        assert_eq!(cache.preload_dir().unwrap(), 3);
        assert!(cache.get("en/menu/main").is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_path_traversal_and_reports_missing() {
        let dir = temp_dir("trav");
        let cache = PromptCache::new(dir.join("sounds"));
        write_wav(
            &dir.join("secret.wav"),
            spec(1, 8000, 16, false),
            160,
            |_, _| 0.0,
        );
        for bad in [
            "../secret",
            "en/../../secret",
            "/etc/passwd",
            "./en/welcome",
            "",
            ".wav",
            "en\\..\\x",
        ] {
            assert!(
                matches!(cache.get(bad), Err(PromptError::InvalidName(_))),
                "{bad:?} should be refused"
            );
        }
        assert!(matches!(
            cache.get("en/none"),
            Err(PromptError::NotFound { .. })
        ));
        std::fs::create_dir_all(dir.join("sounds")).unwrap();
        std::fs::write(dir.join("sounds/broken.wav"), b"RIFF garbage").unwrap();
        assert!(matches!(cache.get("broken"), Err(PromptError::Wav { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A replaced file is read again only after `invalidate`; whoever holds
    /// the old prompt keeps it.
    #[test]
    fn invalidate_rereads_a_replaced_file() {
        let dir = temp_dir("inval");
        let path = dir.join("en/hi.wav");
        write_wav(&path, spec(1, 8000, 16, false), 800, |_, _| 0.1);
        let cache = PromptCache::new(dir.clone());
        let old = cache.get("en/hi").unwrap();
        write_wav(&path, spec(1, 8000, 16, false), 1600, |_, _| 0.1);
        assert_eq!(cache.get("en/hi").unwrap().samples.len(), 800);
        assert!(cache.invalidate("en/hi.wav"));
        assert!(!cache.invalidate("en/hi"));
        assert_eq!(cache.get("en/hi").unwrap().samples.len(), 1600);
        assert_eq!(old.samples.len(), 800);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn converts_uploads_in_memory_and_bounds_their_length() {
        let dir = temp_dir("conv");
        let path = dir.join("up.wav");
        write_wav(&path, spec(2, 48000, 24, false), 24000, |_, _| 0.25);
        let bytes = std::fs::read(&path).unwrap();
        let samples = convert_wav(&bytes, Duration::from_secs(1)).unwrap();
        assert_eq!(samples.len(), 4000);
        let info = wav_info_bytes(&bytes).unwrap();
        assert_eq!(
            (info.sample_rate, info.channels, info.bits_per_sample),
            (48000, 2, 24)
        );
        assert_eq!(info.duration(), Duration::from_millis(500));
        assert!(matches!(
            convert_wav(&bytes, Duration::from_millis(400)),
            Err(PromptError::TooLong { seconds: 1, max: 0 })
        ));
        assert!(matches!(
            convert_wav(b"not a wav", Duration::from_secs(1)),
            Err(PromptError::Wav { .. })
        ));
        let encoded = encode_wav(&samples);
        std::fs::write(dir.join("enc.wav"), &encoded).unwrap();
        let back = wav_info(&dir.join("enc.wav")).unwrap();
        assert_eq!(
            (
                back.sample_rate,
                back.channels,
                back.bits_per_sample,
                back.frames
            ),
            (8000, 1, 16, 4000)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn resampler_preserves_length_and_dc() {
        let input = vec![0.5f32; 48000];
        let out = resample(&input, 48000, 8000);
        assert_eq!(out.len(), 8000);
        assert!(out.iter().all(|&x| (x - 0.5).abs() < 1e-3));
        let up = resample(&vec![0.25f32; 4000], 4000, 8000);
        assert_eq!(up.len(), 8000);
        assert!(up.iter().all(|&x| (x - 0.25).abs() < 1e-3));
    }

    #[test]
    fn downsampling_rejects_aliases() {
        // 6 kHz at 48 kHz is above the 4 kHz Nyquist of the target; it must
        // be filtered out rather than fold down to 2 kHz.
        let input: Vec<f32> = (0..48000)
            .map(|i| 0.5 * (2.0 * PI * 6000.0 * i as f32 / 48000.0).sin())
            .collect();
        let out: Vec<i16> = resample(&input, 48000, 8000)
            .iter()
            .map(|&x| to_i16(x))
            .collect();
        let r = rms(&out[200..7800]);
        assert!(r < 60.0, "alias rms {r}");
    }

    #[test]
    fn mixes_channels_by_average() {
        assert_eq!(mix_to_mono(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(mix_to_mono(&[0.3, 0.6, 0.9], 3), vec![0.6]);
    }
}
