//! [`FramePacer`]: frames towards one browser leave one frame-time apart.
//!
//! The call actor wakes on the media clock's tick (every 40 ms) and hands
//! over the caller's frames that came in since the last one, two at a
//! time. Written to the browser as they come, they left in pairs 0.1 ms
//! apart every 40 ms, and Chromium's jitter buffer measured 20 ms of jitter
//! and held 20 ms more audio on every call. The pacer spaces them on an
//! absolute schedule (the slot after a frame is the slot before plus the
//! frame's duration), so a late wake-up delays one frame, not the ones
//! after it.
//!
//! Sans-IO: the hub pushes frames with the time they came and asks for the
//! due ones whenever it wakes, and wakes at [`FramePacer::next_due`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Frames held at most (100 ms of 20 ms frames): beyond, the oldest is
/// dropped — late audio is worse than a gap.
pub(crate) const MAX_QUEUED: usize = 5;

/// A frame's playing time: PCMU is one byte per sample at 8 kHz.
fn duration_of(frame: &[u8]) -> Duration {
    Duration::from_micros(frame.len() as u64 * 125)
}

/// One session's outgoing frames and their schedule.
#[derive(Debug, Default)]
pub(crate) struct FramePacer {
    queue: VecDeque<Vec<u8>>,
    /// When the next frame may leave; `None` before the first frame.
    slot: Option<Instant>,
}

impl FramePacer {
    /// A frame that came at `now`. A stream that resumes after a pause (the
    /// schedule more than a frame behind) starts a fresh schedule at `now`.
    /// True when the queue was full and its oldest frame was dropped.
    pub(crate) fn push(&mut self, now: Instant, frame: Vec<u8>) -> bool {
        let behind = self
            .slot
            .is_none_or(|slot| slot + duration_of(&frame) < now);
        if self.queue.is_empty() && behind {
            self.slot = Some(now);
        }
        let full = self.queue.len() >= MAX_QUEUED;
        if full {
            self.queue.pop_front();
        }
        self.queue.push_back(frame);
        full
    }

    /// The next frame if its slot has come, and moves the slot on by its
    /// duration. Call until `None`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        let slot = self.slot?;
        if slot > now {
            return None;
        }
        let frame = self.queue.pop_front()?;
        self.slot = Some(slot + duration_of(&frame));
        Some(frame)
    }

    /// When a queued frame is next due; `None` with nothing queued.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        if self.queue.is_empty() {
            None
        } else {
            self.slot
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn frame(tag: u8) -> Vec<u8> {
        vec![tag; 160]
    }

    /// Drives the pacer like the hub: frames pushed at their arrival times,
    /// the pacer polled at every arrival and at every due time. Returns
    /// (departure offset in ms, frame tag).
    fn run(arrivals: &[(u64, u8)]) -> Vec<(u64, u8)> {
        let t0 = Instant::now();
        let mut p = FramePacer::default();
        let mut sent = Vec::new();
        let mut arrivals = arrivals.iter().peekable();
        loop {
            let next_arrival = arrivals
                .peek()
                .map(|(ms, _)| t0 + Duration::from_millis(*ms));
            let now = match (next_arrival, p.next_due()) {
                (Some(a), Some(d)) => a.min(d),
                (Some(a), None) => a,
                (None, Some(d)) => d,
                (None, None) => return sent,
            };
            while let Some(&&(ms, tag)) = arrivals.peek() {
                if t0 + Duration::from_millis(ms) > now {
                    break;
                }
                assert!(!p.push(now, frame(tag)));
                arrivals.next();
            }
            while let Some(f) = p.pop_due(now) {
                sent.push(((now - t0).as_millis() as u64, f[0]));
            }
        }
    }

    #[test]
    fn pairs_every_40_ms_leave_20_ms_apart() {
        let arrivals: Vec<(u64, u8)> = (0..8u8).map(|i| (u64::from(i / 2) * 40, i)).collect();
        let sent = run(&arrivals);
        let expected: Vec<(u64, u8)> = (0..8u8).map(|i| (u64::from(i) * 20, i)).collect();
        assert_eq!(sent, expected);
    }

    #[test]
    fn a_late_wake_up_delays_one_frame_not_the_schedule() {
        // The second pair comes 7 ms late: its first frame leaves at once,
        // its second on the original schedule.
        let sent = run(&[(0, 0), (0, 1), (47, 2), (47, 3), (80, 4), (80, 5)]);
        assert_eq!(
            sent,
            vec![(0, 0), (20, 1), (47, 2), (60, 3), (80, 4), (100, 5)]
        );
    }

    #[test]
    fn after_a_pause_the_schedule_starts_again() {
        let sent = run(&[(0, 0), (0, 1), (500, 2), (500, 3)]);
        assert_eq!(sent, vec![(0, 0), (20, 1), (500, 2), (520, 3)]);
    }

    #[test]
    fn a_burst_beyond_100_ms_drops_the_oldest() {
        let t0 = Instant::now();
        let mut p = FramePacer::default();
        let dropped = (0..8).filter(|&tag| p.push(t0, frame(tag))).count();
        assert_eq!(dropped, 3);
        let mut tags = Vec::new();
        let mut now = t0;
        while let Some(due) = p.next_due() {
            now = now.max(due);
            while let Some(f) = p.pop_due(now) {
                tags.push(f[0]);
            }
        }
        assert_eq!(tags, vec![3, 4, 5, 6, 7]);
        assert_eq!(now - t0, 80 * MS);
    }

    #[test]
    fn nothing_leaves_before_its_slot() {
        let t0 = Instant::now();
        let mut p = FramePacer::default();
        p.push(t0, frame(0));
        p.push(t0, frame(1));
        assert_eq!(p.pop_due(t0).map(|f| f[0]), Some(0));
        assert_eq!(p.pop_due(t0 + 19 * MS), None);
        assert_eq!(p.next_due(), Some(t0 + 20 * MS));
        assert_eq!(p.pop_due(t0 + 20 * MS).map(|f| f[0]), Some(1));
        assert_eq!(p.next_due(), None);
    }
}
