//! Which numbers the desk may dial, and how often: the gateway's guard
//! against toll fraud on its outbound legs (callbacks).
//!
//! A callback dials a number that came from outside — a caller ID, digits
//! a caller keyed in, a booking. Without a rule, a crafted caller ID or a
//! keyed-in `+882…` would make the hotline pay for a premium international
//! call. So every number is checked against the operator's patterns
//! (`--dial-allow`, anchored regular expressions over the number as the
//! flow collected it — `+86…` or national digits as a caller keys them;
//! default: mainland China mobile and landline numbers in either form, the
//! market the shipped flow serves) before it is queued, and again before it is
//! dialled; and the desk places at most `--dial-max-per-hour` legs in any
//! hour, and at most `--dial-max-per-number-per-hour` to any one number
//! (the rest wait for the queue's retry interval without using an
//! attempt, as no leg was placed): an allowed number is
//! still not to be rung over and over — by a booking loop, or by someone
//! booking callbacks with a victim's number as their caller ID.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Mainland China, international (`+86`) or national form: mobile
/// (`1[3-9]` + 9 digits) and landline (area code 10, 2x or 3–4 digits
/// from 3xx to 9xx, then 7 or 8 digits; national form with its trunk 0).
pub const DEFAULT_DIAL_ALLOW: &[&str] = &[
    r"^(\+86)?1[3-9][0-9]{9}$",
    r"^(\+86|0)(10|2[0-9]|[3-9][0-9]{2})[0-9]{7,8}$",
];

/// Legs the desk places in any one hour unless configured otherwise.
pub const DEFAULT_DIAL_MAX_PER_HOUR: u32 = 120;

/// Legs to any one number in any one hour unless configured otherwise:
/// a queue's default three attempts of one booking, and one more.
pub const DEFAULT_DIAL_MAX_PER_NUMBER_PER_HOUR: u32 = 4;

/// A pattern that is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("--dial-allow {pattern:?} is not a valid regular expression: {source}")]
pub struct BadDialPattern {
    /// The pattern as given.
    pub pattern: String,
    /// What the regex parser said.
    #[source]
    pub source: regex::Error,
}

/// The numbers a callback may dial and the hourly cap on legs.
#[derive(Clone, Debug)]
pub struct DialPolicy {
    allow: Vec<regex::Regex>,
    max_per_hour: u32,
    max_per_number_per_hour: u32,
}

impl Default for DialPolicy {
    fn default() -> Self {
        let patterns: Vec<String> = DEFAULT_DIAL_ALLOW.iter().map(|p| p.to_string()).collect();
        match DialPolicy::new(&patterns, DEFAULT_DIAL_MAX_PER_HOUR) {
            Ok(p) => p,
            // The defaults are constants covered by a test; never reached.
            Err(_) => DialPolicy {
                allow: Vec::new(),
                max_per_hour: 0,
                max_per_number_per_hour: 0,
            },
        }
    }
}

impl DialPolicy {
    /// A policy allowing numbers that match any of `patterns` (each
    /// anchored by the operator; an empty list allows nothing), at most
    /// `max_per_hour` legs an hour, [`DEFAULT_DIAL_MAX_PER_NUMBER_PER_HOUR`]
    /// to one number (see [`with_max_per_number`](Self::with_max_per_number)).
    pub fn new(patterns: &[String], max_per_hour: u32) -> Result<Self, BadDialPattern> {
        let allow = patterns
            .iter()
            .map(|p| {
                regex::Regex::new(p).map_err(|source| BadDialPattern {
                    pattern: p.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(DialPolicy {
            allow,
            max_per_hour,
            max_per_number_per_hour: DEFAULT_DIAL_MAX_PER_NUMBER_PER_HOUR,
        })
    }

    /// At most `n` legs to any one number in any hour.
    pub fn with_max_per_number(mut self, n: u32) -> Self {
        self.max_per_number_per_hour = n;
        self
    }

    /// Whether `number` may be dialled at all.
    pub fn allows(&self, number: &str) -> bool {
        self.allow.iter().any(|r| r.is_match(number))
    }

    /// The hourly cap.
    pub fn max_per_hour(&self) -> u32 {
        self.max_per_hour
    }

    /// The hourly cap per number.
    pub fn max_per_number_per_hour(&self) -> u32 {
        self.max_per_number_per_hour
    }
}

/// Which cap held a leg back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DialCap {
    /// `--dial-max-per-hour`.
    Total,
    /// `--dial-max-per-number-per-hour`.
    PerNumber,
}

/// The legs placed in the last hour, in all and per number, for the caps.
#[derive(Debug, Default)]
pub(crate) struct DialLog {
    placed: VecDeque<Instant>,
    /// Numbers dialled in the last hour (a number leaves when its last
    /// leg is an hour old).
    by_number: HashMap<String, VecDeque<Instant>>,
}

const HOUR: Duration = Duration::from_secs(3600);

/// The key a number is counted under for the per-number cap: one number in
/// its forms the default patterns accept — `+86…` or `0086…` and the
/// national form (with a landline's trunk `0`) — counts once.
fn number_key(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    // The digits after the international prefix (`+` or `00`), if any.
    let international = if number.starts_with('+') {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    match international {
        Some(d) => d
            .strip_prefix("86")
            .map_or_else(|| format!("+{d}"), str::to_owned),
        None => digits.strip_prefix('0').unwrap_or(&digits).to_owned(),
    }
}

fn forget_older_than_an_hour(legs: &mut VecDeque<Instant>, now: Instant) {
    while legs
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= HOUR)
    {
        legs.pop_front();
    }
}

impl DialLog {
    /// Records a leg to `number` at `now` if both caps allow one; else
    /// the cap that held it back.
    pub(crate) fn try_place(
        &mut self,
        now: Instant,
        number: &str,
        policy: &DialPolicy,
    ) -> Result<(), DialCap> {
        forget_older_than_an_hour(&mut self.placed, now);
        self.by_number.retain(|_, legs| {
            forget_older_than_an_hour(legs, now);
            !legs.is_empty()
        });
        if self.placed.len() >= policy.max_per_hour as usize {
            return Err(DialCap::Total);
        }
        let legs = self.by_number.entry(number_key(number)).or_default();
        if legs.len() >= policy.max_per_number_per_hour as usize {
            return Err(DialCap::PerNumber);
        }
        legs.push_back(now);
        self.placed.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allows_mainland_numbers_only() {
        let p = DialPolicy::default();
        assert_eq!(p.max_per_hour(), DEFAULT_DIAL_MAX_PER_HOUR);
        for ok in [
            "+8613800138000",
            "13800138000",
            "+8619912345678",
            "+862112345678",
            "02112345678",
            "+861012345678",
            "01012345678",
            "+8675512345678",
            "075512345678",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for premium in [
            "+882345678901", // international networks
            "+881612345678", // satellite
            "+2399912345",   // São Tomé, a favourite of fraudsters
            "+15550100002",  // elsewhere
            "+8621123",      // too short for a landline
            "+8613800138000#",
            "+86138001380001",
            "12345678901", // 12x: not a mobile range
            "+8600012345678",
        ] {
            assert!(!p.allows(premium), "{premium}");
        }
    }

    #[test]
    fn a_bad_pattern_is_refused_with_its_text() {
        let e = DialPolicy::new(&["^+86(".into()], 1).unwrap_err();
        assert!(e.to_string().contains("^+86("), "{e}");
    }

    #[test]
    fn the_cap_counts_the_last_hour() {
        let p = DialPolicy::new(&[".*".into()], 2).unwrap();
        let mut log = DialLog::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(log.try_place(t0, "+1", &p), Ok(()));
        assert_eq!(log.try_place(t0 + s(1), "+2", &p), Ok(()));
        assert_eq!(log.try_place(t0 + s(2), "+3", &p), Err(DialCap::Total));
        assert_eq!(log.try_place(t0 + s(3599), "+3", &p), Err(DialCap::Total));
        assert_eq!(log.try_place(t0 + s(3600), "+3", &p), Ok(()));
    }

    /// One number gets at most its own cap in any hour, whatever the
    /// total allows; other numbers are not held back by it, and the
    /// number is forgotten an hour after its last leg.
    #[test]
    fn one_number_is_capped_on_its_own() {
        let p = DialPolicy::new(&[".*".into()], 100)
            .unwrap()
            .with_max_per_number(2);
        assert_eq!(p.max_per_number_per_hour(), 2);
        let mut log = DialLog::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(log.try_place(t0, "+86138", &p), Ok(()));
        assert_eq!(log.try_place(t0 + s(60), "+86138", &p), Ok(()));
        assert_eq!(
            log.try_place(t0 + s(120), "+86138", &p),
            Err(DialCap::PerNumber)
        );
        assert_eq!(log.try_place(t0 + s(120), "+86139", &p), Ok(()));
        assert_eq!(
            log.try_place(t0 + s(3599), "+86138", &p),
            Err(DialCap::PerNumber)
        );
        assert_eq!(log.try_place(t0 + s(3600), "+86138", &p), Ok(()));
        // One number in another form is the same number.
        assert_eq!(log.try_place(t0 + s(3602), "+8613800138000", &p), Ok(()));
        assert_eq!(log.try_place(t0 + s(3603), "13800138000", &p), Ok(()));
        assert_eq!(
            log.try_place(t0 + s(3604), "008613800138000", &p),
            Err(DialCap::PerNumber)
        );
        assert_eq!(log.try_place(t0 + s(3605), "+862112345678", &p), Ok(()));
        assert_eq!(log.try_place(t0 + s(3606), "02112345678", &p), Ok(()));
        assert_eq!(
            log.try_place(t0 + s(3607), "+86 21 1234 5678", &p),
            Err(DialCap::PerNumber)
        );
        for (a, b) in [
            ("+15550100002", "+15550100002"),
            ("+8613800138000", "13800138000"),
        ] {
            assert_eq!(number_key(a), number_key(b));
        }
        assert_ne!(number_key("+15550100002"), number_key("15550100002"));
        // Past an hour with no leg, a number holds no memory.
        assert_eq!(log.try_place(t0 + s(3 * 3600), "+1", &p), Ok(()));
        assert_eq!(log.by_number.len(), 1);
        assert_eq!(
            DialPolicy::default().max_per_number_per_hour(),
            DEFAULT_DIAL_MAX_PER_NUMBER_PER_HOUR
        );
    }
}
