//! In-band DTMF: finding key tones in the caller's audio, for carriers that
//! send them as sound instead of RFC 4733 telephone-events.
//!
//! [`InbandDetector`] is sans-IO: it is fed 8 kHz linear PCM (normally one
//! decoded 20 ms G.711 frame at a time) and reports digits through a
//! callback. It runs the Goertzel algorithm over the eight DTMF frequencies
//! on blocks of [`BLOCK_SAMPLES`] samples (13.4 ms; the block spans frame
//! boundaries) and accepts a block as a key only if it passes the usual
//! ITU-T Q.24-style checks:
//!
//! - both tones above an absolute floor ([`MIN_TONE_DBM0`] per tone);
//! - each tone the strongest of its group (rows 697–941 Hz, columns
//!   1209–1633 Hz) by [`PEAK_MARGIN_DB`];
//! - twist: the column tone at most [`MAX_NORMAL_TWIST_DB`] above the row
//!   tone, the row tone at most [`MAX_REVERSE_TWIST_DB`] above the column;
//! - the two tones carry at least [`MIN_TONE_SHARE`] of the block's energy
//!   (speech and noise spread theirs over the band);
//! - neither tone has a second harmonic as strong as itself (voiced speech
//!   does; a DTMF generator does not).
//!
//! **Timing.** A digit is reported once, at detection, when the same key
//! has passed the checks for [`STABLE_BLOCKS`] blocks in a row (≥ 40 ms);
//! like an RFC 4733 digit, it is reported while the key is still down so
//! barge-in reacts at once, and [`Digit::duration_ms`] is the tone time seen
//! so far (40 ms), not the full press. The detector re-arms only after
//! [`REARM_BLOCKS`] blocks in a row without a valid tone (≥ 40 ms), so a held
//! key is one digit and a short dropout inside a press does not repeat it,
//! while two presses separated by a pause are two digits.
//!
//! Nothing is allocated per frame and no input panics.

use crate::dtmf::{Digit, DigitTransport};
use crate::g711::CLOCK_RATE;

/// Samples per Goertzel block: 107 samples (13.4 ms) put the nulls of each
/// row filter close to the neighbouring row frequencies, and three blocks
/// are just over 40 ms.
pub const BLOCK_SAMPLES: usize = 107;
/// Consecutive blocks with the same key before it is reported (40.1 ms).
pub const STABLE_BLOCKS: u32 = 3;
/// Consecutive blocks without a key before another digit can be reported
/// (40.1 ms).
pub const REARM_BLOCKS: u32 = 3;
/// The weakest tone accepted, per tone, in dBm0 (Q.24 asks for operation
/// down to about −25 dBm0 per tone and none well below; −45 dBm0 is
/// rejected).
pub const MIN_TONE_DBM0: f32 = -35.0;
/// How much stronger (dB) the winning tone of a group must be than every
/// other tone of the group.
pub const PEAK_MARGIN_DB: f32 = 6.0;
/// Normal twist limit: the column (high) tone may be this much stronger.
pub const MAX_NORMAL_TWIST_DB: f32 = 8.0;
/// Reverse twist limit: the row (low) tone may be this much stronger.
pub const MAX_REVERSE_TWIST_DB: f32 = 4.0;
/// Least share of the block's energy the two tones must carry.
pub const MIN_TONE_SHARE: f32 = 0.7;

/// Row (low group) frequencies, Hz.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies, Hz.
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Keys by [row][column].
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Amplitude (linear, 16-bit scale) of a 0 dBm0 sine: G.711's full-scale
/// sine is +3.17 dBm0 (µ-law; A-law +3.14).
const DBM0_AMPLITUDE: f32 = 32768.0 * 0.694_3; // 10^(-3.17/20)

/// 10^(db/10).
fn power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// Goertzel coefficient 2·cos(2πf/fs).
fn coeff(freq: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * freq / CLOCK_RATE as f32).cos()
}

/// Goertzel power of `x` at the frequency of `c`: for a sine of amplitude A
/// this is about (A·N/2)².
#[inline]
fn goertzel(x: &[f32], c: f32) -> f32 {
    let (mut s1, mut s2) = (0f32, 0f32);
    for &v in x {
        let s0 = v + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    finish(s1, s2, c)
}

/// The Goertzel power from the last two states.
#[inline]
fn finish(s1: f32, s2: f32, c: f32) -> f32 {
    let p = s1 * s1 + s2 * s2 - c * s1 * s2;
    if p.is_finite() { p.max(0.0) } else { 0.0 }
}

/// The eight DTMF Goertzel filters run side by side in one pass (eight
/// independent recurrences the compiler can put in SIMD lanes), with the
/// block's total energy: (powers, rows then columns; energy).
#[inline]
fn goertzel8(x: &[f32], c: &[f32; 8]) -> ([f32; 8], f32) {
    let mut s1 = [0f32; 8];
    let mut s2 = [0f32; 8];
    let mut energy = 0f32;
    for &v in x {
        energy += v * v;
        for i in 0..8 {
            let s0 = v + c[i] * s1[i] - s2[i];
            s2[i] = s1[i];
            s1[i] = s0;
        }
    }
    let mut p = [0f32; 8];
    for i in 0..8 {
        p[i] = finish(s1[i], s2[i], c[i]);
    }
    (p, energy)
}

/// The thresholds, precomputed once.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Goertzel coefficients, rows then columns.
    coeffs: [f32; 8],
    row_h: [f32; 4],
    col_h: [f32; 4],
    floor: f32,
    margin: f32,
    normal_twist: f32,
    reverse_twist: f32,
}

impl Limits {
    fn new() -> Self {
        let amp = DBM0_AMPLITUDE * 10f32.powf(MIN_TONE_DBM0 / 20.0);
        let half = BLOCK_SAMPLES as f32 / 2.0;
        Self {
            coeffs: {
                let mut c = [0f32; 8];
                for (o, f) in c.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
                    *o = coeff(*f);
                }
                c
            },
            row_h: ROWS.map(|f| coeff(2.0 * f)),
            col_h: COLS.map(|f| coeff(2.0 * f)),
            floor: (amp * half) * (amp * half),
            margin: power_ratio(PEAK_MARGIN_DB),
            normal_twist: power_ratio(MAX_NORMAL_TWIST_DB),
            reverse_twist: power_ratio(MAX_REVERSE_TWIST_DB),
        }
    }
}

/// Finds DTMF key tones in 8 kHz audio. See the module docs.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    limits: Limits,
    block: [f32; BLOCK_SAMPLES],
    fill: usize,
    /// The key of the last block and how many blocks in a row had it.
    last: Option<u8>,
    run: u32,
    /// Blocks in a row with no key.
    quiet: u32,
    /// False from a report until [`REARM_BLOCKS`] quiet blocks.
    armed: bool,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector that has heard nothing yet (armed).
    pub fn new() -> Self {
        Self {
            limits: Limits::new(),
            block: [0.0; BLOCK_SAMPLES],
            fill: 0,
            last: None,
            run: 0,
            quiet: 0,
            armed: true,
        }
    }

    /// Forgets the audio heard so far (a new stream).
    pub fn reset(&mut self) {
        let limits = self.limits;
        *self = Self::new();
        self.limits = limits;
    }

    /// Feeds 8 kHz linear samples, any number (normally one 20 ms frame);
    /// calls `on_digit` for each digit detected.
    pub fn process(&mut self, pcm: &[i16], mut on_digit: impl FnMut(Digit)) {
        for &s in pcm {
            if let Some(slot) = self.block.get_mut(self.fill) {
                *slot = f32::from(s);
            }
            self.fill += 1;
            if self.fill >= BLOCK_SAMPLES {
                self.fill = 0;
                let key = self.classify();
                if let Some(d) = self.step(key) {
                    on_digit(d);
                }
            }
        }
    }

    /// Feeds samples and returns the first digit detected in them (with
    /// 20 ms frames there is never more than one).
    pub fn process_frame(&mut self, pcm: &[i16]) -> Option<Digit> {
        let mut found = None;
        self.process(pcm, |d| {
            found.get_or_insert(d);
        });
        found
    }

    /// Advances the stability / re-arm state with one block's verdict.
    fn step(&mut self, key: Option<u8>) -> Option<Digit> {
        match key {
            None => {
                self.last = None;
                self.run = 0;
                self.quiet = self.quiet.saturating_add(1);
                if self.quiet >= REARM_BLOCKS {
                    self.armed = true;
                }
                None
            }
            Some(k) => {
                self.quiet = 0;
                if self.last == Some(k) {
                    self.run = self.run.saturating_add(1);
                } else {
                    self.last = Some(k);
                    self.run = 1;
                }
                if self.armed && self.run >= STABLE_BLOCKS {
                    self.armed = false;
                    let (r, c) = (usize::from(k / 4), usize::from(k % 4));
                    let digit = KEYS.get(r).and_then(|row| row.get(c)).copied()?;
                    let samples = self.run as usize * BLOCK_SAMPLES;
                    Some(Digit {
                        digit,
                        duration_ms: (samples * 1000 / CLOCK_RATE as usize) as u32,
                        transport: DigitTransport::Inband,
                    })
                } else {
                    None
                }
            }
        }
    }

    /// The key (row·4 + column) the current block holds, if it passes every
    /// check.
    fn classify(&self) -> Option<u8> {
        let x = &self.block;
        let l = &self.limits;
        let (p, total) = goertzel8(x, &l.coeffs);
        let rows = [p[0], p[1], p[2], p[3]];
        let cols = [p[4], p[5], p[6], p[7]];
        let (r, row) = strongest(&rows)?;
        let (c, col) = strongest(&cols)?;
        if row < l.floor || col < l.floor {
            return None;
        }
        // Each tone clearly the strongest of its group.
        let clear = |p: &[f32; 4], best: usize, e: f32| {
            p.iter()
                .enumerate()
                .all(|(i, &v)| i == best || v * l.margin <= e)
        };
        if !clear(&rows, r, row) || !clear(&cols, c, col) {
            return None;
        }
        // Twist.
        if col > row * l.normal_twist || row > col * l.reverse_twist {
            return None;
        }
        // Share of the total energy. Goertzel power·2/N is the tone's energy.
        let tones = (row + col) * 2.0 / BLOCK_SAMPLES as f32;
        if !total.is_finite() || tones < MIN_TONE_SHARE * total {
            return None;
        }
        // Second harmonics (talk-off): a pure tone pair has none.
        let rh = goertzel(x, *l.row_h.get(r)?);
        let ch = goertzel(x, *l.col_h.get(c)?);
        if rh >= row || ch >= col {
            return None;
        }
        Some((r * 4 + c) as u8)
    }
}

/// Index and power of the largest of four.
fn strongest(p: &[f32; 4]) -> Option<(usize, f32)> {
    p.iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(lo: f32, hi: f32, amp_lo: f32, amp_hi: f32, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                let t = n as f32 / CLOCK_RATE as f32;
                let v = amp_lo * (2.0 * std::f32::consts::PI * lo * t).sin()
                    + amp_hi * (2.0 * std::f32::consts::PI * hi * t).sin();
                v as i16
            })
            .collect()
    }

    fn detect(pcm: &[i16]) -> String {
        let mut d = InbandDetector::new();
        let mut out = String::new();
        for frame in pcm.chunks(160) {
            d.process(frame, |x| out.push(x.digit));
        }
        out
    }

    #[test]
    fn every_key_in_rust_generated_tones() {
        for (r, &lo) in ROWS.iter().enumerate() {
            for (c, &hi) in COLS.iter().enumerate() {
                let pcm = tone(lo, hi, 4000.0, 4000.0, 800);
                assert_eq!(detect(&pcm), KEYS[r][c].to_string(), "{lo}+{hi}");
            }
        }
    }

    #[test]
    fn single_tone_and_silence_are_not_digits() {
        assert_eq!(detect(&tone(697.0, 1209.0, 8000.0, 0.0, 8000)), "");
        assert_eq!(detect(&[0; 8000]), "");
        assert_eq!(detect(&[i16::MAX; 8000]), "");
    }

    #[test]
    fn short_blip_is_not_a_digit() {
        let mut pcm = tone(697.0, 1209.0, 4000.0, 4000.0, 200);
        pcm.extend(std::iter::repeat_n(0, 800));
        assert_eq!(detect(&pcm), "");
    }

    #[test]
    fn extreme_input_does_not_panic() {
        let mut d = InbandDetector::new();
        let mut x = 1u32;
        let pcm: Vec<i16> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if x % 3 == 0 { i16::MIN } else { x as i16 }
            })
            .collect();
        for chunk in pcm.chunks(37) {
            d.process(chunk, |_| {});
        }
        d.process(&[], |_| {});
        d.reset();
        assert!(d.process_frame(&[i16::MIN; 160]).is_none());
    }
}
