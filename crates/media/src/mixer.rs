//! Mixing G.711 legs for a three-party call (a supervisor on an agent's
//! call): [`MixFifo`] holds one leg's linear audio until another leg's frame
//! comes to carry it, and [`mix_into`] sums with saturation.
//!
//! Sans-IO like the rest of the crate: the caller decodes (µ-law → linear),
//! pushes and mixes, and re-encodes; nothing here allocates per frame.

use std::collections::VecDeque;

/// Adds `src` to `dst` sample by sample, clamping at the 16-bit limits
/// (saturation, never wrap-around). Extra samples of either side are left
/// as they are.
pub fn mix_into(dst: &mut [i16], src: &[i16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = d.saturating_add(s);
    }
}

/// One leg's audio waiting to be mixed into another's, bounded: when more
/// than `capacity` samples wait (the carrying leg stalled), the oldest go,
/// so latency never grows past `capacity` / 8 kHz.
#[derive(Debug, Clone)]
pub struct MixFifo {
    buf: VecDeque<i16>,
    capacity: usize,
}

impl MixFifo {
    /// A FIFO holding at most `capacity` samples (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            buf: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends `samples`, dropping the oldest beyond the capacity.
    pub fn push(&mut self, samples: &[i16]) {
        let samples = &samples[samples.len().saturating_sub(self.capacity)..];
        let overflow = (self.buf.len() + samples.len()).saturating_sub(self.capacity);
        self.buf.drain(..overflow);
        self.buf.extend(samples.iter().copied());
    }

    /// Adds as many waiting samples as `dst` is long (fewer when fewer
    /// wait) into `dst`, with saturation, and drops them from the FIFO.
    pub fn mix_into(&mut self, dst: &mut [i16]) {
        let n = dst.len().min(self.buf.len());
        for (d, s) in dst.iter_mut().zip(self.buf.drain(..n)) {
            *d = d.saturating_add(s);
        }
    }

    /// Samples waiting.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops everything waiting (a mode switch: old audio is not replayed).
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let mut a = [30_000i16, -30_000, 100, 5];
        mix_into(&mut a, &[10_000, -10_000, -50]);
        assert_eq!(a, [i16::MAX, i16::MIN, 50, 5]);
    }

    #[test]
    fn the_fifo_is_bounded_and_mixes_what_it_has() {
        let mut f = MixFifo::new(4);
        f.push(&[1, 2, 3]);
        f.push(&[4, 5, 6]); // 1 and 2 are dropped
        assert_eq!(f.len(), 4);
        let mut out = [10i16; 3];
        f.mix_into(&mut out);
        assert_eq!(out, [13, 14, 15]);
        let mut out = [10i16; 3];
        f.mix_into(&mut out); // only one sample left: the rest unchanged
        assert_eq!(out, [16, 10, 10]);
        assert!(f.is_empty());
        f.push(&[1; 10]);
        assert_eq!(f.len(), 4);
        f.clear();
        assert!(f.is_empty());
    }
}
