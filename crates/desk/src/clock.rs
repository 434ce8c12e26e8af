//! The desk's two clocks: `Instant`s for timers, the wall clock for what
//! pages show and what nodes tell each other. A desk pairs one instant with
//! the wall-clock time at that instant and converts through the pair.

use std::time::{Duration, Instant, SystemTime};

/// The wall-clock time at `at`, given `pair` (an instant and the wall
/// clock at that instant). Never panics: a time the platform cannot
/// represent reads as 1970.
pub(crate) fn wall_at(pair: (Instant, SystemTime), at: Instant) -> SystemTime {
    match at.checked_duration_since(pair.0) {
        Some(d) => pair.1 + d,
        None => pair
            .1
            .checked_sub(pair.0.duration_since(at))
            .unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// `t` in Unix milliseconds (0 before 1970).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, millis)
}

/// `d` in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_round_the_pair_and_reads_before_1970_as_0() {
        let now = Instant::now();
        let pair = (now, SystemTime::UNIX_EPOCH + Duration::from_secs(10));
        let later = now + Duration::from_millis(1_500);
        assert_eq!(unix_ms(wall_at(pair, later)), 11_500);
        if let Some(earlier) = now.checked_sub(Duration::from_secs(4)) {
            assert_eq!(unix_ms(wall_at(pair, earlier)), 6_000);
        }
        if let Some(long_ago) = now.checked_sub(Duration::from_secs(60)) {
            assert_eq!(unix_ms(wall_at(pair, long_ago)), 0, "before 1970");
        }
        assert_eq!(millis(Duration::from_micros(2_999)), 2);
    }
}
