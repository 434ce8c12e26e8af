//! The RTP counters of `/metrics` (docs/operations.md, "Metrics"): each
//! call actor adds its media session's counts to the process-wide
//! Prometheus counters about once a second and when the call ends, as
//! deltas, so the per-packet path touches only the session's own fields
//! (no shared atomics, no registry look-up per packet).

use hotline_media::MediaStats;

/// Actor wake-ups (every 40 ms, [`crate::clock::BATCH`] frames) between
/// two flushes: about a second.
const FLUSH_EVERY: u32 = 25;

/// RTP packets accepted from callers (the binary describes every counter
/// here: crates/hotline/src/metrics.rs).
pub const RTP_RECEIVED: &str = "hotline_rtp_packets_received_total";
/// RTP packets sent to callers.
pub const RTP_SENT: &str = "hotline_rtp_packets_sent_total";
/// Callers' audio packets missing from the sequence numbers.
pub const RTP_LOST: &str = "hotline_rtp_packets_lost_total";
/// Audio frames produced late after a call task woke late.
pub const RTP_LATE: &str = "hotline_rtp_late_frames_total";

/// What one call has added so far, and what it has seen since.
#[derive(Debug, Default)]
pub(crate) struct RtpMeter {
    flushed: MediaStats,
    seen: MediaStats,
    late_frames: u64,
    wakeups: u32,
    /// The first wake-up's frames are the media's start, not lateness.
    started: bool,
}

impl RtpMeter {
    /// Notes the session's counters (every wake-up) and `late` frames the
    /// actor produced after waking late; flushes about once a second.
    pub(crate) fn observe(&mut self, stats: Option<MediaStats>, late: u64) {
        if let Some(s) = stats {
            self.seen = s;
        }
        if self.started {
            self.late_frames += late;
        }
        self.started = true;
        self.wakeups += 1;
        if self.wakeups >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Adds what was seen since the last flush to the counters.
    pub(crate) fn flush(&mut self) {
        self.wakeups = 0;
        let (s, f) = (&self.seen, &self.flushed);
        let add = |name: &'static str, now: u64, before: u64| {
            if now > before {
                metrics::counter!(name).increment(now - before);
            }
        };
        add(RTP_RECEIVED, s.packets_received, f.packets_received);
        add(RTP_SENT, s.packets_sent, f.packets_sent);
        add(RTP_LOST, s.packets_lost, f.packets_lost);
        if self.late_frames > 0 {
            metrics::counter!(RTP_LATE).increment(self.late_frames);
            self.late_frames = 0;
        }
        self.flushed = self.seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_deltas_and_never_goes_back() {
        let mut m = RtpMeter::default();
        let stats = |r| MediaStats {
            packets_received: r,
            ..MediaStats::default()
        };
        m.observe(Some(stats(10)), 0);
        m.flush();
        assert_eq!(m.flushed.packets_received, 10);
        // A session replaced by a fresh one (counts restart): nothing negative.
        m.observe(Some(stats(3)), 2);
        m.flush();
        assert_eq!(m.flushed.packets_received, 3);
        assert_eq!(m.late_frames, 0);
    }
}
