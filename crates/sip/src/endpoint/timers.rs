//! The timer wheel: a min-heap of deadlines, each naming what to wake up
//! (a call, or a Completed non-INVITE server transaction), with lazy
//! deletion — an owner whose deadline moved leaves its old entry behind,
//! remembers which deadline it is scheduled for, and ignores entries that
//! do not match. Also the retransmission arithmetic shared by Timers A, E
//! and G. Knows nothing about SIP state.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Pending deadlines, each for a `K`, popped in time order (then in the
/// order they were scheduled).
#[derive(Debug)]
pub(super) struct Timers<K> {
    heap: BinaryHeap<Reverse<Entry<K>>>,
    seq: u64,
}

#[derive(Debug)]
struct Entry<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<K> Eq for Entry<K> {}
impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<K> Timers<K> {
    /// Adds a deadline for `key`.
    pub(super) fn schedule(&mut self, at: Instant, key: K) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            key,
        }));
    }

    /// Makes sure `key`'s next deadline `next` has an entry: `scheduled` is
    /// the deadline its owner already has one for, and becomes `next`.
    pub(super) fn reschedule(
        &mut self,
        key: &K,
        scheduled: &mut Option<Instant>,
        next: Option<Instant>,
    ) where
        K: Clone,
    {
        if let Some(at) = next
            && next != *scheduled
        {
            self.schedule(at, key.clone());
        }
        *scheduled = next;
    }

    /// The earliest entry's deadline (possibly a stale one: early, never late).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| (e.at, e.key))
    }
}

/// The next firing of a retransmission timer that was due at `at` with its
/// new `interval`: `at + interval`, or `now + interval` when that has
/// already passed (we were woken late).
pub(super) fn rearm(at: Instant, interval: Duration, now: Instant) -> Instant {
    let n = at + interval;
    if n <= now { now + interval } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_schedule_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(t0 + Duration::from_secs(2), "late");
        timers.schedule(t0 + Duration::from_secs(1), "first");
        timers.schedule(t0 + Duration::from_secs(1), "second");
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        let due = t0 + Duration::from_secs(1);
        assert_eq!(timers.pop_due(due), Some((due, "first")));
        assert_eq!(timers.pop_due(due), Some((due, "second")));
        assert_eq!(timers.pop_due(due), None);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn reschedule_adds_an_entry_only_for_a_new_deadline() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut scheduled = None;
        timers.reschedule(&"c", &mut scheduled, Some(t0));
        timers.reschedule(&"c", &mut scheduled, Some(t0));
        assert_eq!(scheduled, Some(t0));
        assert_eq!(timers.pop_due(t0), Some((t0, "c")));
        assert_eq!(timers.pop_due(t0), None);
        timers.reschedule(&"c", &mut scheduled, None);
        assert_eq!(scheduled, None);
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn rearm_catches_up_when_woken_late() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(rearm(t0, s, t0), t0 + s);
        assert_eq!(rearm(t0, s, t0 + s * 5), t0 + s * 6);
    }
}
