//! When a booked callback is due, and whether a number can be dialled.
//!
//! A `callback` node's slot is either `asap` (no time: due now when the
//! business hours are open, else at the next opening) or a local time of
//! day, due on the next open day after today on which that time falls in
//! the opening hours (holidays skipped). Pure functions of the wall clock:
//! the interpreter and the simulator pass it in.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::nodes::hours::BusinessHours;

/// How far ahead a slot may fall: two weeks covers any sane schedule with
/// holidays; beyond it the schedule is taken as never open.
const HORIZON_DAYS: i64 = 14;

/// A number the gateway may dial back: optional `+`, then 5 to 15 digits
/// (E.164 allows 15). A SIP user name such as `caller` or `sipp` is not one.
pub fn is_dialable(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    (5..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

pub use crate::dial::DialCheck;

/// When a callback booked at `wall` for a slot at local minute `at` (or
/// `asap` when `None`) is due. Without business hours an `asap` callback
/// is due at once and a timed one tomorrow at that minute, UTC.
pub fn slot_due(
    hours: Option<&BusinessHours>,
    at: Option<u16>,
    wall: DateTime<Utc>,
) -> DateTime<Utc> {
    let Some(h) = hours else {
        return match at {
            None => wall,
            Some(m) => {
                let day = wall.date_naive() + Duration::days(1);
                Utc.from_utc_datetime(&day.and_time(minute_time(m)))
            }
        };
    };
    let today = wall.with_timezone(&h.time_zone).date_naive();
    let open_days = (0..=HORIZON_DAYS)
        .map(|d| today + Duration::days(d))
        .filter(|day| !h.holidays.contains(day));
    for day in open_days {
        let ranges = &h.weekly[day.weekday().num_days_from_monday() as usize];
        match at {
            None => {
                for &(a, b) in ranges {
                    let (start, end) = (local(h, day, a), local(h, day, b));
                    if end > wall {
                        return start.max(wall);
                    }
                }
            }
            Some(m) if day > today && ranges.iter().any(|&(a, b)| m >= a && m < b) => {
                return local(h, day, m);
            }
            Some(_) => {}
        }
    }
    // Never open within the horizon: due now, so an agent sees it rather
    // than it waiting for an opening that never comes.
    wall
}

/// Whether minute `m` falls in the opening hours on some weekday.
pub fn ever_open_at(h: &BusinessHours, m: u16) -> bool {
    h.weekly.iter().flatten().any(|&(a, b)| m >= a && m < b)
}

fn minute_time(m: u16) -> NaiveTime {
    let m = u32::from(m.min(24 * 60 - 1));
    NaiveTime::from_hms_opt(m / 60, m % 60, 0).unwrap_or(NaiveTime::MIN)
}

/// Local `day` at minute `m` (1440 = the next midnight) as UTC; a time a
/// DST change skips is taken one hour later, an ambiguous one the earlier.
fn local(h: &BusinessHours, day: NaiveDate, m: u16) -> DateTime<Utc> {
    let (day, m) = if m >= 24 * 60 {
        (day + Duration::days(1), 0)
    } else {
        (day, m)
    };
    let naive = day.and_time(minute_time(m));
    h.time_zone
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            h.time_zone
                .from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shanghai, Mon–Fri 09:00–18:00, Sat 10:00–16:00, 2026-12-25 a holiday.
    fn office() -> BusinessHours {
        let wk = vec![(9 * 60, 18 * 60)];
        BusinessHours {
            time_zone: chrono_tz::Asia::Shanghai,
            weekly: [
                wk.clone(),
                wk.clone(),
                wk.clone(),
                wk.clone(),
                wk,
                vec![(10 * 60, 16 * 60)],
                vec![],
            ],
            holidays: vec![NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()],
            open: "o".into(),
            closed: "c".into(),
            holiday: None,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn dialable_numbers_only() {
        for ok in ["13800000000", "+8613800000000", "10086"] {
            assert!(is_dialable(ok), "{ok}");
        }
        for bad in [
            "caller",
            "sipp",
            "",
            "+",
            "1234",
            "1380000000012345",
            "138-0000",
            "+86 138",
        ] {
            assert!(!is_dialable(bad), "{bad}");
        }
    }

    #[test]
    fn a_timed_slot_is_the_next_open_day_at_that_time() {
        let h = office();
        // Monday 20:00: tomorrow (Tuesday) 09:30.
        assert_eq!(
            slot_due(Some(&h), Some(9 * 60 + 30), at("2026-12-21T20:00:00+08:00")),
            at("2026-12-22T09:30:00+08:00")
        );
        // Monday 08:00: still the next day, not today ("tomorrow" slots).
        assert_eq!(
            slot_due(Some(&h), Some(9 * 60 + 30), at("2026-12-21T08:00:00+08:00")),
            at("2026-12-22T09:30:00+08:00")
        );
        // Thursday 24th: Friday 25th is a holiday; Saturday opens 10:00 so
        // 09:30 is closed there; Sunday is closed; Monday 28th.
        assert_eq!(
            slot_due(Some(&h), Some(9 * 60 + 30), at("2026-12-24T19:00:00+08:00")),
            at("2026-12-28T09:30:00+08:00")
        );
        // 14:00 does fall on Saturday.
        assert_eq!(
            slot_due(Some(&h), Some(14 * 60), at("2026-12-24T19:00:00+08:00")),
            at("2026-12-26T14:00:00+08:00")
        );
    }

    #[test]
    fn asap_is_now_when_open_else_the_next_opening() {
        let h = office();
        let open = at("2026-12-21T10:00:00+08:00");
        assert_eq!(slot_due(Some(&h), None, open), open);
        assert_eq!(
            slot_due(Some(&h), None, at("2026-12-21T20:00:00+08:00")),
            at("2026-12-22T09:00:00+08:00")
        );
        assert_eq!(
            slot_due(Some(&h), None, at("2026-12-21T07:00:00+08:00")),
            at("2026-12-21T09:00:00+08:00")
        );
        // Friday night before the Christmas holiday... Thursday 24th 19:00:
        // Friday closed (holiday), Saturday 10:00.
        assert_eq!(
            slot_due(Some(&h), None, at("2026-12-24T19:00:00+08:00")),
            at("2026-12-26T10:00:00+08:00")
        );
    }

    #[test]
    fn without_hours_or_openings() {
        let wall = at("2026-12-21T20:00:00Z");
        assert_eq!(slot_due(None, None, wall), wall);
        assert_eq!(
            slot_due(None, Some(9 * 60), wall),
            at("2026-12-22T09:00:00Z")
        );
        let mut never = office();
        never.weekly = Default::default();
        assert_eq!(slot_due(Some(&never), Some(600), wall), wall);
        assert!(!ever_open_at(&never, 600));
        assert!(ever_open_at(&office(), 600));
        assert!(!ever_open_at(&office(), 8 * 60));
    }
}
