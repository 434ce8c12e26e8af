//! Events as the store keeps them, and the `calls` row derived from them.
//!
//! The derivation is a pure function of a call's events in `seq` order, so
//! the writer can recompute the row after every batch (and after any replay)
//! and always arrive at the same row.

use chrono::{DateTime, SubsecRound, Utc};
use hotline_call::CallEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use uuid::Uuid;

/// One call event, owned and (de)serialisable: what the spool holds and what
/// `call_events` rows are made of. `at` is truncated to microseconds, as
/// PostgreSQL stores it, so the spool and the database agree exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub call_id: Uuid,
    pub sip_call_id: String,
    pub seq: u32,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub node: Option<String>,
    pub data: Value,
}

impl From<CallEvent> for StoredEvent {
    fn from(ev: CallEvent) -> Self {
        Self {
            call_id: ev.call_id,
            sip_call_id: ev.sip_call_id,
            seq: ev.seq,
            at: ev.at.trunc_subsecs(6),
            kind: ev.kind.to_owned(),
            node: ev.node,
            data: ev.data,
        }
    }
}

/// A `call_events` row as read back for the derivation.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i32,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub node: Option<String>,
    pub data: Value,
}

impl From<&StoredEvent> for EventRow {
    fn from(ev: &StoredEvent) -> Self {
        Self {
            seq: ev.seq as i32,
            at: ev.at,
            kind: ev.kind.clone(),
            node: ev.node.clone(),
            data: ev.data.clone(),
        }
    }
}

/// The `calls` row.
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct CallRecord {
    pub id: Uuid,
    pub sip_call_id: String,
    pub node: Option<String>,
    pub caller: Option<String>,
    pub caller_name: Option<String>,
    pub callee: Option<String>,
    pub transport: Option<String>,
    pub source: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
    pub hangup_cause: Option<String>,
    pub flow: Option<String>,
    pub flow_version: Option<String>,
    pub language: Option<String>,
    pub issue_type: Option<String>,
    pub outcome: Option<String>,
    pub queue: Option<String>,
    pub queued_at: Option<DateTime<Utc>>,
    pub agent_id: Option<String>,
    pub agent_answered_at: Option<DateTime<Utc>>,
    pub talk_seconds: Option<f64>,
    /// From the `wrap_up` event: the agent's after-call work.
    pub wrap_up_seconds: Option<f64>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    pub recording_id: Option<Uuid>,
    pub events: i32,
    pub last_seq: Option<i32>,
    pub complete: bool,
}

/// A `recordings` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RecordingRow {
    pub id: Uuid,
    pub call_id: Uuid,
    pub path: String,
    pub channels: i32,
    pub sample_rate: i32,
    pub duration_ms: i64,
    pub bytes: i64,
    pub sha256: Option<String>,
}

/// The outcomes the schema accepts.
pub const OUTCOMES: &[&str] = &[
    "self_served",
    "abandoned_in_ivr",
    "ended_in_ivr",
    "queued",
    "abandoned",
    "answered",
    "voicemail",
    "callback",
    "transferred",
    "failed",
];
const ENDED_BY: &[&str] = &["caller", "gateway", "agent", "timeout"];

/// A string field of `data`; numbers and booleans are rendered as text.
fn text(data: &Value, key: &str) -> Option<String> {
    match data.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        v => Some(v.to_string()),
    }
}

/// The id of the recording written by event `seq` of `call_id`: stable across
/// replays (derived, not random).
pub fn recording_id(call_id: Uuid, seq: i32) -> Uuid {
    let mut h = sha2::Sha256::new();
    h.update(call_id.as_bytes());
    h.update(b"recording");
    h.update(seq.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The recording row an event describes, if it is a `recording` event.
pub fn recording_of(call_id: Uuid, ev: &EventRow) -> Option<RecordingRow> {
    if ev.kind != "recording" {
        return None;
    }
    let d = &ev.data;
    let int = |k: &str| d.get(k).and_then(Value::as_i64).unwrap_or(0);
    Some(RecordingRow {
        id: recording_id(call_id, ev.seq),
        call_id,
        path: text(d, "path")?,
        channels: int("channels") as i32,
        sample_rate: int("sample_rate") as i32,
        duration_ms: int("duration_ms"),
        bytes: int("bytes"),
        sha256: text(d, "sha256"),
    })
}

/// Derives the `calls` row from all of a call's events (any order; sorted here).
/// See docs/call-events.md for the mapping.
pub fn derive_call(id: Uuid, sip_call_id: &str, events: &[EventRow]) -> CallRecord {
    let mut sorted: Vec<&EventRow> = events.iter().collect();
    sorted.sort_by_key(|e| e.seq);
    sorted.dedup_by_key(|e| e.seq);
    let mut r = CallRecord {
        id,
        sip_call_id: sip_call_id.to_owned(),
        events: sorted.len() as i32,
        last_seq: sorted.last().map(|e| e.seq),
        started_at: sorted.iter().map(|e| e.at).min(),
        ..CallRecord::default()
    };
    let mut queued_unanswered = false;
    for ev in sorted {
        let d = &ev.data;
        match ev.kind.as_str() {
            "call_started" => {
                r.started_at = Some(ev.at);
                r.caller = text(d, "caller");
                r.caller_name = text(d, "caller_name");
                r.callee = text(d, "callee");
                r.transport = text(d, "transport");
                r.source = text(d, "source");
                r.node = text(d, "node");
            }
            "answered" => r.answered_at = r.answered_at.or(Some(ev.at)),
            "flow_started" => {
                r.flow = text(d, "flow");
                r.flow_version = text(d, "version");
                if let Some(l) = text(d, "language") {
                    r.language = Some(l);
                }
            }
            "language_set" => r.language = text(d, "language").or(r.language.take()),
            "issue_type" => r.issue_type = text(d, "issue_type"),
            "enqueued" => {
                r.queue = text(d, "queue");
                r.queued_at = Some(ev.at);
                r.outcome = Some("queued".into());
                queued_unanswered = true;
            }
            "agent_answered" => {
                r.agent_id = text(d, "agent_id");
                r.agent_answered_at = Some(ev.at);
                r.outcome = Some("answered".into());
                queued_unanswered = false;
            }
            "wrap_up" => {
                r.disposition = text(d, "disposition");
                r.notes = text(d, "notes").filter(|n| !n.is_empty());
                r.wrap_up_seconds = d.get("seconds").and_then(Value::as_f64);
            }
            "transfer" => r.outcome = Some("transferred".into()),
            "outcome" => {
                if let Some(o) = text(d, "outcome").filter(|o| OUTCOMES.contains(&o.as_str())) {
                    queued_unanswered = o == "queued";
                    r.outcome = Some(o);
                }
            }
            "hangup" => {
                r.ended_at = Some(ev.at);
                r.ended_by = text(d, "ended_by").filter(|b| ENDED_BY.contains(&b.as_str()));
                r.hangup_cause = text(d, "cause");
            }
            "recording" => r.recording_id = Some(recording_id(id, ev.seq)),
            "call_ended" => {
                r.complete = true;
                r.ended_at = r.ended_at.or(Some(ev.at));
                if r.outcome.is_none() || queued_unanswered {
                    // docs/call-events.md, "Outcomes": `self_served` only
                    // ever comes from a node the flow marks; an answered
                    // call that ends without one was not served.
                    let cause = r.hangup_cause.as_deref();
                    r.outcome =
                        Some(
                            if matches!(cause, Some("interrupted" | "shutdown"))
                                && !queued_unanswered
                            {
                                "failed"
                            } else if r.answered_at.is_none() || queued_unanswered {
                                "abandoned"
                            } else if cause == Some("flow_ended") {
                                "ended_in_ivr"
                            } else {
                                "abandoned_in_ivr"
                            }
                            .into(),
                        );
                }
            }
            _ => {}
        }
    }
    // Talk time as contact centres count it: with the agent when one
    // answered, else with the IVR from the gateway's answer.
    if let (Some(a), Some(e)) = (r.agent_answered_at.or(r.answered_at), r.ended_at) {
        r.talk_seconds = Some(((e - a).num_microseconds().unwrap_or(0).max(0)) as f64 / 1e6);
    } else if r.complete {
        r.talk_seconds = Some(0.0);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn ev(seq: i32, ms: i64, kind: &str, data: Value) -> EventRow {
        EventRow {
            seq,
            at: Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap(),
            kind: kind.into(),
            node: None,
            data,
        }
    }

    fn menu_call() -> Vec<EventRow> {
        vec![
            ev(
                0,
                0,
                "call_started",
                json!({"caller": "1001", "caller_name": "Ann", "callee": "800", "transport": "udp", "source": "127.0.0.1:5061", "node": "gw1"}),
            ),
            ev(1, 100, "answered", json!({"rtp": "127.0.0.1:20000"})),
            ev(
                2,
                110,
                "flow_started",
                json!({"flow": "main", "version": 3, "language": "en"}),
            ),
            ev(3, 120, "prompt_started", json!({"prompt": "en/welcome"})),
            ev(
                4,
                900,
                "digit",
                json!({"digit": "2", "transport": "rfc4733", "duration_ms": 120}),
            ),
            ev(
                5,
                910,
                "issue_type",
                json!({"issue_type": "subscription.refund"}),
            ),
            ev(
                6,
                2100,
                "hangup",
                json!({"ended_by": "caller", "cause": "BYE"}),
            ),
            ev(
                7,
                2110,
                "recording",
                json!({"path": "/d/r.wav", "duration_ms": 2000, "channels": 2, "sample_rate": 8000, "bytes": 64044}),
            ),
            ev(8, 2120, "call_ended", json!({})),
        ]
    }

    #[test]
    fn a_menu_call_derives_its_row() {
        let id = Uuid::new_v4();
        let r = derive_call(id, "abc@host", &menu_call());
        assert_eq!(r.caller.as_deref(), Some("1001"));
        assert_eq!(r.node.as_deref(), Some("gw1"));
        assert_eq!(r.flow_version.as_deref(), Some("3"));
        assert_eq!(r.language.as_deref(), Some("en"));
        assert_eq!(r.issue_type.as_deref(), Some("subscription.refund"));
        assert_eq!(r.ended_by.as_deref(), Some("caller"));
        assert_eq!(r.hangup_cause.as_deref(), Some("BYE"));
        // Hung up 2 s into the menu, before any self-service node: not served.
        assert_eq!(r.outcome.as_deref(), Some("abandoned_in_ivr"));
        assert_eq!(r.talk_seconds, Some(2.0));
        assert_eq!(r.recording_id, Some(recording_id(id, 7)));
        assert_eq!((r.events, r.last_seq, r.complete), (9, Some(8), true));
    }

    /// docs/call-events.md, "Outcomes": only a node the flow marks makes a
    /// call `self_served`; the flow hanging up without one is `ended_in_ivr`.
    #[test]
    fn self_served_only_from_a_marked_node() {
        let id = Uuid::new_v4();
        let mut evs = menu_call();
        evs.insert(6, ev(6, 2000, "outcome", json!({"outcome": "self_served"})));
        for (i, e) in evs.iter_mut().enumerate() {
            e.seq = i as i32;
        }
        let r = derive_call(id, "abc@host", &evs);
        assert_eq!(r.outcome.as_deref(), Some("self_served"));

        let mut evs = menu_call();
        evs[6].data = json!({"ended_by": "gateway", "cause": "flow_ended"});
        let r = derive_call(id, "abc@host", &evs);
        assert_eq!(r.outcome.as_deref(), Some("ended_in_ivr"));

        let mut evs = menu_call();
        evs[6].data = json!({"ended_by": "timeout", "cause": "rtp_timeout"});
        let r = derive_call(id, "abc@host", &evs);
        assert_eq!(r.outcome.as_deref(), Some("abandoned_in_ivr"));
    }

    #[test]
    fn talk_time_runs_from_the_agents_answer_when_an_agent_answered() {
        let id = Uuid::new_v4();
        let evs = vec![
            ev(0, 0, "call_started", json!({"caller": "1001"})),
            ev(1, 100, "answered", json!({})),
            ev(
                2,
                2_000,
                "enqueued",
                json!({"queue": "support", "priority": 0}),
            ),
            ev(3, 2_100, "agent_offered", json!({"agent_id": "a1"})),
            ev(4, 4_100, "agent_answered", json!({"agent_id": "a1"})),
            ev(
                5,
                64_100,
                "hangup",
                json!({"ended_by": "agent", "cause": "agent_hangup"}),
            ),
            ev(
                6,
                70_000,
                "wrap_up",
                json!({"disposition": "resolved", "notes": "", "seconds": 5}),
            ),
            ev(7, 70_001, "call_ended", json!({})),
        ];
        let r = derive_call(id, "x", &evs);
        assert_eq!(r.agent_id.as_deref(), Some("a1"));
        assert_eq!(r.outcome.as_deref(), Some("answered"));
        assert_eq!(r.talk_seconds, Some(60.0));
    }

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let id = Uuid::new_v4();
        let mut evs = menu_call();
        let a = derive_call(id, "x", &evs);
        evs.reverse();
        evs.extend(menu_call());
        assert_eq!(derive_call(id, "x", &evs), a);
    }

    #[test]
    fn unanswered_or_queued_and_unanswered_is_abandoned() {
        let id = Uuid::new_v4();
        let r = derive_call(
            id,
            "x",
            &[
                ev(0, 0, "call_started", json!({})),
                ev(
                    1,
                    5,
                    "hangup",
                    json!({"ended_by": "caller", "cause": "CANCEL"}),
                ),
                ev(2, 6, "call_ended", json!({})),
            ],
        );
        assert_eq!(r.outcome.as_deref(), Some("abandoned"));
        assert_eq!(r.talk_seconds, Some(0.0));
        let r = derive_call(
            id,
            "x",
            &[
                ev(0, 0, "call_started", json!({})),
                ev(1, 5, "answered", json!({})),
                ev(2, 6, "enqueued", json!({"queue": "billing", "priority": 1})),
                ev(
                    3,
                    9,
                    "hangup",
                    json!({"ended_by": "caller", "cause": "BYE"}),
                ),
                ev(4, 9, "call_ended", json!({})),
            ],
        );
        assert_eq!(r.outcome.as_deref(), Some("abandoned"));
        assert_eq!(r.queue.as_deref(), Some("billing"));
        assert!(r.queued_at.is_some());
    }

    #[test]
    fn wrap_up_sets_disposition_notes_and_seconds() {
        let id = Uuid::new_v4();
        let mut evs = menu_call();
        evs.insert(
            8,
            ev(
                9,
                2115,
                "wrap_up",
                json!({"disposition": "refund", "notes": "sent the form", "seconds": 12.5}),
            ),
        );
        evs[9].seq = 10;
        let r = derive_call(id, "x", &evs);
        assert_eq!(r.disposition.as_deref(), Some("refund"));
        assert_eq!(r.notes.as_deref(), Some("sent the form"));
        assert_eq!(r.wrap_up_seconds, Some(12.5));
        assert!(r.complete);
        let r = derive_call(id, "x", &menu_call());
        assert_eq!(
            (r.disposition, r.notes, r.wrap_up_seconds),
            (None, None, None)
        );
    }

    #[test]
    fn interrupted_calls_fail_and_open_calls_stay_open() {
        let id = Uuid::new_v4();
        let open = [
            ev(0, 0, "call_started", json!({})),
            ev(1, 5, "answered", json!({})),
        ];
        let r = derive_call(id, "x", &open);
        assert_eq!(
            (r.ended_at, r.outcome.clone(), r.complete),
            (None, None, false)
        );
        let mut closed = open.to_vec();
        closed.push(ev(
            2,
            7,
            "hangup",
            json!({"ended_by": "gateway", "cause": "interrupted"}),
        ));
        closed.push(ev(3, 7, "call_ended", json!({})));
        let r = derive_call(id, "x", &closed);
        assert_eq!(r.outcome.as_deref(), Some("failed"));
        assert_eq!(r.ended_by.as_deref(), Some("gateway"));
    }
}
