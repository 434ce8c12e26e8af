//! The typed events read what the gateway wrote before they were typed, and
//! write it back unchanged; the enum and docs/call-events.md agree.

use std::collections::BTreeSet;

use hotline_events::{CallEvent, EventData, KINDS};
use serde_json::Value;

/// `call-events.jsonl` lines as the untyped emitters (`json!` at each emit
/// site of hotline-call and hotline-ivr, and the record writer's recovery)
/// wrote them: every kind, and each shape a kind comes in.
const FIXTURE: &str = include_str!("fixtures/call-events.jsonl");

#[test]
fn an_old_event_log_parses_typed_and_writes_back_the_same_json() {
    let mut seen = BTreeSet::new();
    for (i, line) in FIXTURE.lines().enumerate() {
        let old: Value = serde_json::from_str(line).unwrap();
        let ev: CallEvent =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        assert!(
            !ev.data.is_other(),
            "line {}: {} did not type: {:?}",
            i + 1,
            ev.kind(),
            ev.data
        );
        assert_eq!(Some(ev.kind()), old["kind"].as_str(), "line {}", i + 1);
        let new = serde_json::to_value(&ev).unwrap();
        assert_eq!(new, old, "line {}", i + 1);
        // The database's columns: `kind` and `data` apart.
        assert_eq!(ev.data.data_json().unwrap(), old["data"], "line {}", i + 1);
        assert_eq!(
            EventData::from_parts(ev.kind(), old["data"].clone()),
            ev.data,
            "line {}",
            i + 1
        );
        // And a written line reads back as the same event.
        let again: CallEvent = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
        assert_eq!(again, ev, "line {}", i + 1);
        seen.insert(ev.kind().to_owned());
    }
    let all: BTreeSet<String> = KINDS.iter().map(|k| k.to_string()).collect();
    assert_eq!(seen, all, "the fixture has a line of every kind");
}

#[test]
fn unknown_kinds_are_kept_verbatim() {
    let line = r#"{"call_id":"0b9e8f3c-2f6a-4a5e-9d41-7c2a1e5b8d10","sip_call_id":"x","seq":7,"at":"2024-05-01T10:00:00.000123Z","kind":"sentiment","node":null,"data":{"score":0.5,"labels":["calm"]}}"#;
    let ev: CallEvent = serde_json::from_str(line).unwrap();
    assert!(ev.data.is_other());
    assert_eq!(ev.kind(), "sentiment");
    assert_eq!(
        serde_json::to_value(&ev).unwrap(),
        serde_json::from_str::<Value>(line).unwrap()
    );
    // A known kind whose data lost its shape is kept the same way.
    let line = line.replace(r#""kind":"sentiment""#, r#""kind":"hangup""#);
    let ev: CallEvent = serde_json::from_str(&line).unwrap();
    assert!(ev.data.is_other());
    assert_eq!(ev.kind(), "hangup");
}

/// The kinds in docs/call-events.md's table, in order.
fn documented_kinds() -> Vec<String> {
    let doc = include_str!("../../../docs/call-events.md");
    let mut kinds = Vec::new();
    let mut in_table = false;
    for line in doc.lines() {
        if line.starts_with("| kind | data |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let Some(rest) = line.strip_prefix("| ") else {
            break;
        };
        let first = rest.split(" |").next().unwrap_or_default();
        kinds.extend(first.split(", ").map(|k| k.trim_matches('`').to_owned()));
    }
    kinds
}

#[test]
fn the_enum_has_one_variant_per_documented_kind() {
    assert_eq!(documented_kinds(), KINDS);
}
