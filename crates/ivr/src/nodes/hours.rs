//! The `hours` node: open, closed or holiday now, by a weekly schedule in a
//! time zone (or as `--force-hours` says).

use std::time::Instant;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::{Kind, exit};
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{ForcedHours, StepCx};
use crate::yaml::YamlValue;

/// Weekly opening hours in a time zone, with holidays.
#[derive(Debug)]
pub struct BusinessHours {
    /// The IANA zone the hours are local to (daylight saving handled).
    pub time_zone: Tz,
    /// Monday first; each day a list of [start, end) ranges in minutes after
    /// local midnight (end may be 1440, "24:00").
    pub weekly: [Vec<(u16, u16)>; 7],
    /// Dates (in `time_zone`) that count as holidays; they win over `weekly`.
    pub holidays: Vec<NaiveDate>,
    /// Where to go while open.
    pub open: String,
    /// Where to go while closed.
    pub closed: String,
    /// Where to go on a holiday (default: `closed`).
    pub holiday: Option<String>,
}

pub(crate) const SYNTAX: Syntax<BusinessHours> = Syntax {
    name: "hours",
    keys: &[
        "time_zone",
        "weekly",
        "holidays",
        "open",
        "closed",
        "holiday",
    ],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<BusinessHours> {
    let tz = l.required(f, "time_zone").and_then(|y| {
        let t = l.text(y, "time_zone")?;
        match t.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                l.err(
                    y.pos,
                    format!(
                        "unknown time zone `{t}`; use an IANA name like Asia/Shanghai or Europe/London"
                    ),
                );
                None
            }
        }
    });
    let mut weekly: [Vec<(u16, u16)>; 7] = Default::default();
    let mut weekly_ok = true;
    if let Some(y) = l.required(f, "weekly") {
        match &y.value {
            YamlValue::Map(entries) => {
                for (k, v) in entries {
                    let days = k.as_str().and_then(parse_days);
                    let Some(days) = days else {
                        l.err(
                            k.pos,
                            format!(
                                "`{}` is not a day or day range; use mon…sun, mon-fri, weekdays, weekend or daily",
                                k.as_str().unwrap_or("?")
                            ),
                        );
                        weekly_ok = false;
                        continue;
                    };
                    let ranges = match v.as_str() {
                        Some(s) => match parse_ranges(s) {
                            Ok(r) => r,
                            Err(e) => {
                                l.err(v.pos, e);
                                weekly_ok = false;
                                continue;
                            }
                        },
                        None => {
                            l.err(
                                v.pos,
                                "opening hours must read like \"09:00-18:00\" or \"09:00-12:00, 13:00-17:30\" or closed",
                            );
                            weekly_ok = false;
                            continue;
                        }
                    };
                    for d in days {
                        weekly[d].extend(ranges.iter().copied());
                    }
                }
            }
            _ => {
                l.err(
                    y.pos,
                    format!(
                        "`weekly` must map days to opening hours, found {}",
                        y.describe()
                    ),
                );
                weekly_ok = false;
            }
        }
    }
    let mut holidays = Vec::new();
    if let Some(y) = f.take("holidays") {
        match &y.value {
            YamlValue::Seq(items) => {
                for item in items {
                    match item
                        .as_str()
                        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    {
                        Some(d) => holidays.push(d),
                        None => l.err(
                            item.pos,
                            format!(
                                "holiday `{}` is not a date like 2026-12-25",
                                item.as_str().unwrap_or("?")
                            ),
                        ),
                    }
                }
            }
            _ => l.err(
                y.pos,
                format!("`holidays` must be a list of dates, found {}", y.describe()),
            ),
        }
    }
    let open = l.req_target(f, "open");
    let closed = l.req_target(f, "closed");
    let holiday = l.opt_target(f, "holiday");
    if !weekly_ok {
        return None;
    }
    Some(BusinessHours {
        time_zone: tz?,
        weekly,
        holidays,
        open: open?,
        closed: closed?,
        holiday,
    })
}

/// `mon`, `mon-fri`, `weekdays`, `weekend`, `daily` → day indexes, Monday = 0.
fn parse_days(s: &str) -> Option<Vec<usize>> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let day = |d: &str| {
        DAYS.iter()
            .position(|x| *x == d.trim().to_ascii_lowercase())
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "daily" => return Some((0..7).collect()),
        "weekdays" => return Some((0..5).collect()),
        "weekend" | "weekends" => return Some(vec![5, 6]),
        _ => {}
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}

/// `09:00-18:00, 19:00-21:00` or `closed` → minute ranges.
fn parse_ranges(s: &str) -> Result<Vec<(u16, u16)>, String> {
    if s.trim().eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let bad = || format!("`{}` is not a time range like 09:00-18:00", part.trim());
        let (a, b) = part.split_once('-').ok_or_else(bad)?;
        let (a, b) = (hhmm(a).ok_or_else(bad)?, hhmm(b).ok_or_else(bad)?);
        if b <= a {
            return Err(format!("`{}` ends before it starts", part.trim()));
        }
        out.push((a, b));
    }
    Ok(out)
}

/// `HH:MM` → minutes after midnight (`24:00` is 1440).
pub(crate) fn hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// `open`, `closed` or `holiday` at `wall`, and the local time it was judged at.
pub fn hours_state(h: &BusinessHours, wall: DateTime<Utc>) -> (&'static str, String) {
    let local = wall.with_timezone(&h.time_zone);
    let shown = local.format("%Y-%m-%d %H:%M %a").to_string();
    if h.holidays.contains(&local.date_naive()) {
        return ("holiday", shown);
    }
    let day = local.weekday().num_days_from_monday() as usize;
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let open = h.weekly[day]
        .iter()
        .any(|&(a, b)| minute >= a && minute < b);
    (if open { "open" } else { "closed" }, shown)
}

impl Kind for BusinessHours {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn exits(&self) -> Vec<(String, &str)> {
        let mut out = vec![exit("open", &self.open), exit("closed", &self.closed)];
        if let Some(to) = &self.holiday {
            out.push(exit("holiday", to));
        }
        out
    }

    fn shape(&self) -> (&'static str, &'static str) {
        ("{", "}")
    }

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, wall: DateTime<Utc>) -> Option<String> {
        let (mut state, local) = hours_state(self, wall);
        let mut data = json!({ "state": state, "local_time": local });
        if let Some(forced) = it.forced_hours {
            state = match forced {
                ForcedHours::Open => "open",
                ForcedHours::Closed => "closed",
            };
            data = json!({ "state": state, "local_time": local, "forced": true });
        }
        let nid = it.node_id();
        it.record("hours", nid, data);
        Some(match state {
            "open" => self.open.clone(),
            "holiday" => self.holiday.clone().unwrap_or_else(|| self.closed.clone()),
            _ => self.closed.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(parse_days("mon-fri").unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(parse_days("sat,sun").unwrap(), vec![5, 6]);
        assert!(parse_days("fri-mon").is_none());
        assert_eq!(
            parse_ranges("09:00-12:00, 13:00-24:00").unwrap(),
            vec![(540, 720), (780, 1440)]
        );
        assert!(parse_ranges("18:00-09:00").is_err());
        assert!(parse_ranges("9-5").is_err());
    }
}
