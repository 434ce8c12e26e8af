//! The shared 20 ms media clock: one timer for every call's packet pacing.
//!
//! Instead of a timer per packet per call, one task publishes the index of
//! the current 20 ms frame on a watch channel. A call actor that wakes late
//! sees the index jump and produces the frames it owes, so pacing and
//! recording lengths follow the wall clock, not the scheduler.

use std::time::{Duration, Instant};

use tokio::sync::watch;

pub const FRAME: Duration = Duration::from_millis(20);

/// A receiver of frame ticks, cloned into each call.
#[derive(Clone)]
pub struct MediaClock {
    rx: watch::Receiver<u64>,
    epoch: Instant,
}

impl MediaClock {
    /// Starts the ticking task on the current runtime.
    pub fn start() -> Self {
        let epoch = Instant::now();
        let (tx, rx) = watch::channel(0u64);
        tokio::spawn(async move {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::from_std(epoch), FRAME);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                let n = frame_index(epoch, Instant::now());
                if tx.send(n).is_err() {
                    break;
                }
            }
        });
        Self { rx, epoch }
    }

    /// The frame index now, by the wall clock.
    pub fn now_index(&self) -> u64 {
        frame_index(self.epoch, Instant::now())
    }

    /// Waits for the next published frame index.
    pub async fn next(&mut self) -> Option<u64> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }
}

fn frame_index(epoch: Instant, now: Instant) -> u64 {
    (now.saturating_duration_since(epoch).as_micros() / FRAME.as_micros()) as u64
}
