//! Events as the store keeps them, and the `calls` row derived from them.
//!
//! The derivation is a pure function of a call's events in `seq` order, so
//! the writer can recompute the row after every batch (and after any replay)
//! and always arrive at the same row.

use chrono::{DateTime, Utc};
use hotline_events::{CallEvent, EventData};
use serde_json::Value;
use sha2::Digest;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

/// A `call_events` row as read back for the derivation: its `kind` and
/// `data` columns parsed into the typed event (an [`EventData::Other`] for
/// what this version cannot type).
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// The event's number within the call, from 0.
    pub seq: i32,
    /// When the event happened.
    pub at: DateTime<Utc>,
    /// The IVR node id, when one applies.
    pub node: Option<String>,
    /// The event's `kind` and `data`.
    pub data: EventData,
}

impl EventRow {
    /// The event's `kind` (as in `docs/call-events.md`).
    pub fn kind(&self) -> &str {
        self.data.kind()
    }
}

impl<'r> sqlx::FromRow<'r, PgRow> for EventRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let kind: String = row.try_get("kind")?;
        let data: Value = row.try_get("data")?;
        Ok(Self {
            seq: row.try_get("seq")?,
            at: row.try_get("at")?,
            node: row.try_get("node")?,
            data: EventData::from_parts(&kind, data),
        })
    }
}

impl From<&CallEvent> for EventRow {
    fn from(ev: &CallEvent) -> Self {
        Self {
            seq: ev.seq as i32,
            at: ev.at,
            node: ev.node.clone(),
            data: ev.data.clone(),
        }
    }
}

/// The `calls` row.
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct CallRecord {
    /// The gateway's id of the call.
    pub id: Uuid,
    /// The SIP `Call-ID` of the call's dialog.
    pub sip_call_id: String,
    /// The gateway (host name) that handled the call.
    pub node: Option<String>,
    /// The caller's number or user part, from `call_started`.
    pub caller: Option<String>,
    /// The caller's display name; `None` when the INVITE had none.
    pub caller_name: Option<String>,
    /// The number or user part dialled.
    pub callee: Option<String>,
    /// `udp` or `tcp`.
    pub transport: Option<String>,
    /// The peer's `ip:port`.
    pub source: Option<String>,
    /// The first event's time: when the call reached the gateway.
    pub started_at: Option<DateTime<Utc>>,
    /// When the gateway answered (`answered`); `None` if it never did.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended (`hangup`); `None` while it is on.
    pub ended_at: Option<DateTime<Utc>>,
    /// `caller`, `gateway`, `agent` or `timeout`.
    pub ended_by: Option<String>,
    /// Why the call ended: `BYE`, `rtp_timeout`, a SIP status code, …
    pub hangup_cause: Option<String>,
    /// The IVR flow's name.
    pub flow: Option<String>,
    /// The flow's version (content hash) this call ran.
    pub flow_version: Option<String>,
    /// The caller's language when the call ended.
    pub language: Option<String>,
    /// The last issue type the flow set, e.g. `subscription.refund`.
    pub issue_type: Option<String>,
    /// How the call ended for the caller (see `docs/call-events.md`,
    /// "Outcomes"); one of [`OUTCOMES`].
    pub outcome: Option<String>,
    /// The queue the call went to last.
    pub queue: Option<String>,
    /// When the call was enqueued.
    pub queued_at: Option<DateTime<Utc>>,
    /// The agent who answered.
    pub agent_id: Option<String>,
    /// When the agent answered.
    pub agent_answered_at: Option<DateTime<Utc>>,
    /// From the agent's answer (else the gateway's) to the hang-up (to the
    /// start of a queue's survey: the survey is not talk), in seconds;
    /// `None` until the call has ended.
    pub talk_seconds: Option<f64>,
    /// From the `wrap_up` event: the agent's after-call work.
    pub wrap_up_seconds: Option<f64>,
    /// The wrap-up form's code; `None` when its timer ran out or there was none.
    pub disposition: Option<String>,
    /// The agent's wrap-up notes; `None` when empty.
    pub notes: Option<String>,
    /// When the satisfaction survey was offered (`survey_started`).
    pub survey_offered_at: Option<DateTime<Utc>>,
    /// The caller's score, 1–5 (`survey_answered`); `None`: no response.
    pub csat_score: Option<i16>,
    /// The caller's survey comment, a mono WAV (`survey_comment`).
    pub survey_comment_path: Option<String>,
    /// The call's `recordings` row, when it was recorded.
    pub recording_id: Option<Uuid>,
    /// How many events the row was derived from.
    pub events: i32,
    /// The highest event `seq` seen; `None` before any.
    pub last_seq: Option<i32>,
    /// `call_ended` was seen: the row is final.
    pub complete: bool,
}

/// A `recordings` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RecordingRow {
    /// Derived from the call id and the `recording` event's seq.
    pub id: Uuid,
    /// The call it belongs to.
    pub call_id: Uuid,
    /// The WAV file, absolute.
    pub path: String,
    /// 2 for a call recording (caller left, gateway right).
    pub channels: i32,
    /// Samples per second per channel (8000).
    pub sample_rate: i32,
    /// Length in milliseconds.
    pub duration_ms: i64,
    /// File size in bytes.
    pub bytes: i64,
    /// Lowercase hex SHA-256 of the file; `None` when it could not be read.
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
    let EventData::Recording {
        path,
        duration_ms,
        channels,
        sample_rate,
        bytes,
        sha256,
        ..
    } = &ev.data
    else {
        return None;
    };
    Some(RecordingRow {
        id: recording_id(call_id, ev.seq),
        call_id,
        path: path.clone(),
        channels: i32::from(*channels),
        sample_rate: i32::try_from(*sample_rate).unwrap_or(i32::MAX),
        duration_ms: i64::try_from(*duration_ms).unwrap_or(i64::MAX),
        bytes: i64::try_from(*bytes).unwrap_or(i64::MAX),
        sha256: sha256.clone().flatten(),
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
    // A queue's survey starts when the agent hung up: the talk ends there.
    let mut talk_end = None;
    for ev in sorted {
        match &ev.data {
            EventData::CallStarted {
                caller,
                caller_name,
                callee,
                transport,
                source,
                node,
                ..
            } => {
                r.started_at = Some(ev.at);
                r.caller = Some(caller.clone());
                r.caller_name = caller_name.clone().flatten();
                r.callee = Some(callee.clone());
                r.transport = Some(transport.clone());
                r.source = Some(source.clone());
                r.node = node.clone();
            }
            EventData::Answered { .. } => r.answered_at = r.answered_at.or(Some(ev.at)),
            EventData::FlowStarted {
                flow,
                version,
                language,
            } => {
                r.flow = Some(flow.clone());
                r.flow_version = Some(version.clone());
                r.language = Some(language.clone());
            }
            EventData::LanguageSet { language } => r.language = Some(language.clone()),
            EventData::IssueType { issue_type } => r.issue_type = Some(issue_type.clone()),
            EventData::Enqueued { queue, .. } => {
                r.queue = Some(queue.clone());
                r.queued_at = Some(ev.at);
                r.outcome = Some("queued".into());
                queued_unanswered = true;
            }
            EventData::AgentAnswered { agent_id } => {
                r.agent_id = Some(agent_id.clone());
                r.agent_answered_at = Some(ev.at);
                r.outcome = Some("answered".into());
                queued_unanswered = false;
            }
            EventData::WrapUp {
                disposition,
                notes,
                seconds,
                ..
            } => {
                r.disposition = disposition.clone();
                r.notes = Some(notes.clone()).filter(|n| !n.is_empty());
                r.wrap_up_seconds = Some(*seconds as f64);
            }
            // The first survey counts (a flow may run more than one).
            EventData::SurveyStarted { via, .. } if r.survey_offered_at.is_none() => {
                r.survey_offered_at = Some(ev.at);
                if via == "queue" {
                    talk_end = Some(ev.at);
                }
            }
            EventData::SurveyAnswered { score } => {
                r.csat_score = Some(i16::from(*score)).filter(|s| (1..=5).contains(s));
            }
            EventData::SurveyComment { path, .. } => r.survey_comment_path = Some(path.clone()),
            EventData::Transfer { .. } => r.outcome = Some("transferred".into()),
            EventData::Outcome { outcome, .. } if OUTCOMES.contains(&outcome.as_str()) => {
                queued_unanswered = outcome == "queued";
                r.outcome = Some(outcome.clone());
            }
            EventData::Hangup {
                ended_by, cause, ..
            } => {
                r.ended_at = Some(ev.at);
                r.ended_by = Some(ended_by.as_str().to_owned());
                r.hangup_cause = Some(cause.clone());
            }
            EventData::Recording { .. } => r.recording_id = Some(recording_id(id, ev.seq)),
            EventData::CallEnded {} => {
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
            // Steps that do not change the row, and events this version
            // cannot type (`EventData::Other`).
            _ => {}
        }
    }
    // Talk time as contact centres count it: with the agent when one
    // answered, else with the IVR from the gateway's answer; until the
    // agent hung up when a queue's survey followed.
    let end = match (talk_end, r.ended_at) {
        (Some(s), Some(e)) => Some(s.min(e)),
        (_, e) => e,
    };
    if let (Some(a), Some(e)) = (r.agent_answered_at.or(r.answered_at), end) {
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
    use hotline_events::EndedBy;

    fn ev(seq: i32, ms: i64, data: EventData) -> EventRow {
        EventRow {
            seq,
            at: Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap(),
            node: None,
            data,
        }
    }

    fn started() -> EventData {
        EventData::CallStarted {
            caller: "1001".into(),
            caller_name: Some(Some("Ann".into())),
            callee: "800".into(),
            transport: "udp".into(),
            source: "127.0.0.1:5061".into(),
            node: Some("gw1".into()),
            direction: None,
            callback_of: None,
            attempt: None,
            queue: None,
            srtp: false,
        }
    }

    fn answered() -> EventData {
        EventData::Answered {
            rtp: "127.0.0.1:20000".into(),
        }
    }

    fn hangup(ended_by: EndedBy, cause: &str) -> EventData {
        EventData::Hangup {
            ended_by,
            cause: cause.into(),
            recovered_at: None,
        }
    }

    fn outcome(o: &str) -> EventData {
        EventData::Outcome {
            outcome: o.into(),
            duration_ms: None,
            path: None,
            ended_by_hangup: None,
            number: None,
            slot: None,
        }
    }

    fn enqueued(queue: &str, priority: i64) -> EventData {
        EventData::Enqueued {
            queue: queue.into(),
            priority,
        }
    }

    fn wrap_up(disposition: &str, notes: &str, seconds: u64) -> EventData {
        EventData::WrapUp {
            agent_id: "a1".into(),
            disposition: Some(disposition.into()),
            notes: notes.into(),
            seconds,
        }
    }

    fn menu_call() -> Vec<EventRow> {
        vec![
            ev(0, 0, started()),
            ev(1, 100, answered()),
            ev(
                2,
                110,
                EventData::FlowStarted {
                    flow: "main".into(),
                    version: "3".into(),
                    language: "en".into(),
                },
            ),
            ev(
                3,
                120,
                EventData::PromptStarted {
                    prompt: "en/welcome".into(),
                },
            ),
            ev(
                4,
                900,
                EventData::Digit {
                    digit: "2".into(),
                    transport: "rfc4733".into(),
                    duration_ms: Some(120),
                    masked: None,
                },
            ),
            ev(
                5,
                910,
                EventData::IssueType {
                    issue_type: "subscription.refund".into(),
                },
            ),
            ev(6, 2100, hangup(EndedBy::Caller, "BYE")),
            ev(
                7,
                2110,
                EventData::Recording {
                    path: "/d/r.wav".into(),
                    duration_ms: 2000,
                    channels: 2,
                    sample_rate: 8000,
                    bytes: 64044,
                    sha256: None,
                    recovered: None,
                },
            ),
            ev(8, 2120, EventData::CallEnded {}),
        ]
    }

    #[test]
    fn a_menu_call_derives_its_row() {
        let id = Uuid::new_v4();
        let r = derive_call(id, "abc@host", &menu_call());
        assert_eq!(r.caller.as_deref(), Some("1001"));
        assert_eq!(r.caller_name.as_deref(), Some("Ann"));
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
        let rec = recording_of(id, &menu_call()[7]).unwrap();
        assert_eq!(
            (rec.path.as_str(), rec.channels, rec.bytes, rec.sha256),
            ("/d/r.wav", 2, 64044, None)
        );
    }

    /// docs/call-events.md, "Outcomes": only a node the flow marks makes a
    /// call `self_served`; the flow hanging up without one is `ended_in_ivr`.
    #[test]
    fn self_served_only_from_a_marked_node() {
        let id = Uuid::new_v4();
        let mut evs = menu_call();
        evs.insert(6, ev(6, 2000, outcome("self_served")));
        for (i, e) in evs.iter_mut().enumerate() {
            e.seq = i as i32;
        }
        let r = derive_call(id, "abc@host", &evs);
        assert_eq!(r.outcome.as_deref(), Some("self_served"));

        let mut evs = menu_call();
        evs[6].data = hangup(EndedBy::Gateway, "flow_ended");
        let r = derive_call(id, "abc@host", &evs);
        assert_eq!(r.outcome.as_deref(), Some("ended_in_ivr"));

        let mut evs = menu_call();
        evs[6].data = hangup(EndedBy::Timeout, "rtp_timeout");
        let r = derive_call(id, "abc@host", &evs);
        assert_eq!(r.outcome.as_deref(), Some("abandoned_in_ivr"));
    }

    #[test]
    fn talk_time_runs_from_the_agents_answer_when_an_agent_answered() {
        let id = Uuid::new_v4();
        let evs = vec![
            ev(0, 0, started()),
            ev(1, 100, answered()),
            ev(2, 2_000, enqueued("support", 0)),
            ev(
                3,
                2_100,
                EventData::AgentOffered {
                    agent_id: "a1".into(),
                },
            ),
            ev(
                4,
                4_100,
                EventData::AgentAnswered {
                    agent_id: "a1".into(),
                },
            ),
            ev(5, 64_100, hangup(EndedBy::Agent, "agent_hangup")),
            ev(6, 70_000, wrap_up("resolved", "", 5)),
            ev(7, 70_001, EventData::CallEnded {}),
        ];
        let r = derive_call(id, "x", &evs);
        assert_eq!(r.agent_id.as_deref(), Some("a1"));
        assert_eq!(r.outcome.as_deref(), Some("answered"));
        assert_eq!(r.talk_seconds, Some(60.0));
        assert_eq!(r.notes, None, "empty notes are no notes");
    }

    #[test]
    fn a_queue_survey_sets_the_csat_columns_and_is_not_talk() {
        let id = Uuid::new_v4();
        let mut evs = vec![
            ev(0, 0, started()),
            ev(1, 100, answered()),
            ev(2, 2_000, enqueued("support", 0)),
            ev(
                3,
                4_100,
                EventData::AgentAnswered {
                    agent_id: "a1".into(),
                },
            ),
            ev(
                4,
                64_100,
                EventData::SurveyStarted {
                    via: "queue".into(),
                    queue: Some("support".into()),
                },
            ),
            ev(5, 70_000, EventData::SurveyAnswered { score: 5 }),
            ev(
                6,
                80_000,
                EventData::SurveyComment {
                    path: "/data/voicemail/x-survey-1.wav".into(),
                    duration_ms: 9_000,
                },
            ),
            ev(
                7,
                80_001,
                EventData::SurveyEnded {
                    reason: "answered".into(),
                },
            ),
            ev(8, 82_000, hangup(EndedBy::Agent, "agent_hangup")),
            ev(9, 82_001, wrap_up("resolved", "", 5)),
            ev(10, 82_002, EventData::CallEnded {}),
        ];
        let r = derive_call(id, "x", &evs);
        assert_eq!(r.talk_seconds, Some(60.0), "the survey is not talk");
        assert_eq!(r.csat_score, Some(5));
        assert_eq!(r.survey_offered_at, Some(evs[4].at));
        assert_eq!(
            r.survey_comment_path.as_deref(),
            Some("/data/voicemail/x-survey-1.wav")
        );
        assert_eq!(r.ended_at, Some(evs[8].at));
        // The caller hung up before keying a score: offered, no response.
        evs.drain(5..8);
        evs.insert(
            5,
            ev(
                5,
                66_000,
                EventData::SurveyEnded {
                    reason: "hangup".into(),
                },
            ),
        );
        let r = derive_call(id, "x", &evs);
        assert_eq!((r.csat_score, r.survey_comment_path), (None, None));
        assert!(r.survey_offered_at.is_some());
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
                ev(0, 0, started()),
                ev(1, 5, hangup(EndedBy::Caller, "CANCEL")),
                ev(2, 6, EventData::CallEnded {}),
            ],
        );
        assert_eq!(r.outcome.as_deref(), Some("abandoned"));
        assert_eq!(r.talk_seconds, Some(0.0));
        let r = derive_call(
            id,
            "x",
            &[
                ev(0, 0, started()),
                ev(1, 5, answered()),
                ev(2, 6, enqueued("billing", 1)),
                ev(3, 9, hangup(EndedBy::Caller, "BYE")),
                ev(4, 9, EventData::CallEnded {}),
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
        evs.insert(8, ev(9, 2115, wrap_up("refund", "sent the form", 12)));
        evs[9].seq = 10;
        let r = derive_call(id, "x", &evs);
        assert_eq!(r.disposition.as_deref(), Some("refund"));
        assert_eq!(r.notes.as_deref(), Some("sent the form"));
        assert_eq!(r.wrap_up_seconds, Some(12.0));
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
        let open = [ev(0, 0, started()), ev(1, 5, answered())];
        let r = derive_call(id, "x", &open);
        assert_eq!(
            (r.ended_at, r.outcome.clone(), r.complete),
            (None, None, false)
        );
        let mut closed = open.to_vec();
        closed.push(ev(2, 7, hangup(EndedBy::Gateway, "interrupted")));
        closed.push(ev(3, 7, EventData::CallEnded {}));
        let r = derive_call(id, "x", &closed);
        assert_eq!(r.outcome.as_deref(), Some("failed"));
        assert_eq!(r.ended_by.as_deref(), Some("gateway"));
    }

    /// Rows this version cannot type (an unknown kind, or a known kind
    /// whose data lost its shape) are kept but change nothing.
    #[test]
    fn untyped_rows_are_ignored() {
        let id = Uuid::new_v4();
        let mut evs = menu_call();
        let want = derive_call(id, "x", &evs);
        evs.push(ev(
            9,
            1000,
            EventData::from_parts("sentiment", serde_json::json!({"score": 1})),
        ));
        evs.push(ev(
            10,
            1001,
            EventData::from_parts("outcome", serde_json::json!({"result": "answered"})),
        ));
        let got = derive_call(id, "x", &evs);
        assert_eq!((got.events, got.last_seq), (11, Some(10)));
        assert_eq!(
            CallRecord {
                events: want.events,
                last_seq: want.last_seq,
                ..got
            },
            want
        );
    }
}
