//! The call event log (`<data-dir>/call-events.jsonl`).

use serde_json::Value;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Event {
    pub raw: Value,
}

impl Event {
    pub fn kind(&self) -> &str {
        self.raw["kind"].as_str().unwrap_or("")
    }
    pub fn call_id(&self) -> &str {
        self.raw["call_id"].as_str().unwrap_or("")
    }
    pub fn sip_call_id(&self) -> &str {
        self.raw["sip_call_id"].as_str().unwrap_or("")
    }
    pub fn seq(&self) -> Option<u64> {
        self.raw["seq"].as_u64()
    }
    pub fn at(&self) -> &str {
        self.raw["at"].as_str().unwrap_or("")
    }
    /// `at` as microseconds since the Unix epoch (panics if malformed).
    pub fn at_us(&self) -> i64 {
        parse_rfc3339_micros(self.at())
            .unwrap_or_else(|| panic!("event has malformed `at`: {}", self.raw))
    }
    pub fn data(&self) -> &Value {
        &self.raw["data"]
    }
    /// `data.<key>` as a string, or "" when absent / not a string.
    pub fn data_str(&self, key: &str) -> &str {
        self.raw["data"][key].as_str().unwrap_or("")
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.raw)
    }
}

/// Read every complete event line. A last line without its newline (being written
/// right now) is skipped; any other unparsable line is an error.
pub fn read_events(path: &Path) -> Result<Vec<Event>, String> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map_err(|e| format!("{}: not UTF-8: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("read {}: {e}", path.display())),
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str::<Value>(l)
                .map(|raw| Event { raw })
                .map_err(|e| format!("{} line {}: {e}: {l}", path.display(), i + 1))
        })
        .collect()
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to µs since the Unix epoch.
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let mut digits: String = frac.chars().take(6).collect();
        while digits.len() < 6 {
            digits.push('0');
        }
        micros = digits.parse().ok()?;
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Some(secs * 1_000_000 + micros)
}

/// Checks every call's events: `seq` starts at 0 and is contiguous, `at` never goes
/// backwards, required fields are present, and the call ends with `call_ended`.
/// Returns a description of each problem (empty = fine).
pub fn assert_call_log_well_formed(events: &[Event]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids: Vec<&str> = events.iter().map(|e| e.call_id()).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let evs: Vec<&Event> = events.iter().filter(|e| e.call_id() == id).collect();
        if id.is_empty() {
            problems.push(format!("{} event(s) without call_id", evs.len()));
            continue;
        }
        for (i, e) in evs.iter().enumerate() {
            if e.seq() != Some(i as u64) {
                problems.push(format!("call {id}: event #{i} has seq {:?}: {e}", e.seq()));
            }
            if parse_rfc3339_micros(e.at()).is_none() {
                problems.push(format!("call {id}: bad `at`: {e}"));
            }
            if e.sip_call_id().is_empty() {
                problems.push(format!("call {id}: no sip_call_id: {e}"));
            }
            if !e.raw["data"].is_object() {
                problems.push(format!("call {id}: data is not an object: {e}"));
            }
            if !(e.raw["node"].is_null() || e.raw["node"].is_string()) {
                problems.push(format!("call {id}: node is neither null nor string: {e}"));
            }
        }
        for w in evs.windows(2) {
            if let (Some(a), Some(b)) = (
                parse_rfc3339_micros(w[0].at()),
                parse_rfc3339_micros(w[1].at()),
            ) {
                if b < a {
                    problems.push(format!(
                        "call {id}: `at` goes backwards: {} then {}",
                        w[0], w[1]
                    ));
                }
            }
        }
        if evs.first().map(|e| e.kind()) != Some("call_started") {
            problems.push(format!("call {id}: first event is not call_started"));
        }
        let ended = evs.iter().filter(|e| e.kind() == "call_ended").count();
        if ended != 1 {
            problems.push(format!("call {id}: {ended} call_ended events, expected 1"));
        }
        if evs.last().map(|e| e.kind()) != Some("call_ended") {
            problems.push(format!("call {id}: last event is not call_ended"));
        }
    }
    problems
}

/// Panics listing the problems [`assert_call_log_well_formed`] finds, if any.
pub fn assert_well_formed(events: &[Event]) {
    let problems = assert_call_log_well_formed(events);
    assert!(problems.is_empty(), "event log problems:\n{problems:#?}");
}

/// The events one per line, indented, for failure messages.
pub fn dump(events: &[Event]) -> String {
    events.iter().map(|e| format!("  {e}\n")).collect()
}

/// One expected step of a call: a kind, plus `data` string fields that must match.
pub type Step<'a> = (&'a str, &'a [(&'a str, &'a str)]);

fn step_matches(e: &Event, step: &Step<'_>) -> bool {
    e.kind() == step.0
        && step.1.iter().all(|(k, v)| {
            let got = &e.data()[*k];
            got.as_str() == Some(*v) || (!got.is_string() && *got.to_string() == **v)
        })
}

/// Assert that `steps` occur in `events` in this order (other events may interleave).
pub fn assert_in_order(events: &[Event], steps: &[Step<'_>]) {
    let mut it = events.iter();
    for step in steps {
        if !it.any(|e| step_matches(e, step)) {
            panic!(
                "expected event {} {:?} (in order {:?}) not found; events:\n{}",
                step.0,
                step.1,
                steps.iter().map(|s| s.0).collect::<Vec<_>>(),
                dump(events)
            );
        }
    }
}

/// The first event of `kind`, or a panic listing the call's events.
pub fn find<'e>(events: &'e [Event], kind: &str) -> &'e Event {
    events
        .iter()
        .find(|e| e.kind() == kind)
        .unwrap_or_else(|| panic!("no `{kind}` event; events:\n{}", dump(events)))
}

pub fn count(events: &[Event], kind: &str) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_micros("1970-01-01T00:00:01.5Z"),
            Some(1_500_000)
        );
        assert_eq!(
            parse_rfc3339_micros("2026-11-25T13:00:00.123456Z"),
            Some(1_795_611_600_123_456)
        );
        assert_eq!(
            parse_rfc3339_micros("2026-11-25T14:00:00.123456789+01:00"),
            Some(1_795_611_600_123_456)
        );
        assert_eq!(parse_rfc3339_micros("2026-11-25 13:00"), None);
    }
}
