//! Where every call of this gateway stands now, from its call events: the
//! live part of the wallboard and the supervisor's list of calls
//! (live.rs pushes it; docs/metrics.md, "Live").
//!
//! Sans-IO: [`LiveBoard::on_event`] takes each event as the records' tee
//! passes it (every event once, in order per call), [`LiveBoard::calls`]
//! answers with the calls as of `now`. No clock, socket or database here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hotline_events::{CallEvent, EventData};
use serde::Serialize;
use uuid::Uuid;

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// In the IVR flow (or not answered yet).
    Ivr,
    /// Waiting in a queue for an agent.
    Queue,
    /// An agent's page rings for it (still counts as waiting).
    Ringing,
    /// Talking with an agent (on hold too).
    Agent,
    /// In the post-call satisfaction survey.
    Survey,
    /// Leaving a voicemail.
    Voicemail,
    /// The gateway dials a customer back (a callback leg).
    Callback,
}

/// One live call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveCall {
    /// The gateway's id of the call.
    pub call: Uuid,
    /// The caller's number or SIP user (the customer's on a callback leg).
    pub caller: String,
    /// When the call started.
    pub started_at: DateTime<Utc>,
    /// Where it is.
    pub phase: Phase,
    /// Since when it is there.
    pub phase_since: DateTime<Utc>,
    /// The flow running it.
    pub flow: Option<String>,
    /// The IVR node it is at (or was at last).
    pub node: Option<String>,
    /// The queue it is (or was last) in.
    pub queue: Option<String>,
    /// The agent ringing for it or talking with it.
    pub agent: Option<String>,
    /// What the caller is calling about, once the flow said.
    pub issue_type: Option<String>,
    /// Seconds since the call started, as of the snapshot.
    pub duration_s: u64,
    /// Seconds in `phase`, as of the snapshot.
    pub phase_s: u64,
}

/// Calls left without a `call_ended` (which the call actor always writes)
/// are dropped after this long, so a lost event cannot grow the board.
const STALE_AFTER_HOURS: i64 = 12;

/// The live calls, kept from their events.
#[derive(Debug, Default)]
pub struct LiveBoard {
    calls: HashMap<Uuid, LiveCall>,
    /// Counts events seen: a reader can tell whether anything happened.
    events: u64,
}

impl LiveBoard {
    /// How many events the board has taken (changes when anything happened).
    pub fn generation(&self) -> u64 {
        self.events
    }

    /// Takes one call event.
    pub fn on_event(&mut self, ev: &CallEvent) {
        self.events = self.events.wrapping_add(1);
        let at = ev.at;
        if let EventData::CallStarted {
            caller, direction, ..
        } = &ev.data
        {
            let phase = if direction.as_deref() == Some("outbound") {
                Phase::Callback
            } else {
                Phase::Ivr
            };
            self.calls.insert(
                ev.call_id,
                LiveCall {
                    call: ev.call_id,
                    caller: caller.clone(),
                    started_at: at,
                    phase,
                    phase_since: at,
                    flow: None,
                    node: None,
                    queue: None,
                    agent: None,
                    issue_type: None,
                    duration_s: 0,
                    phase_s: 0,
                },
            );
            return;
        }
        if matches!(ev.data, EventData::CallEnded {}) {
            self.calls.remove(&ev.call_id);
            return;
        }
        let Some(c) = self.calls.get_mut(&ev.call_id) else {
            return;
        };
        let to = |c: &mut LiveCall, phase: Phase| {
            if c.phase != phase {
                c.phase = phase;
                c.phase_since = at;
            }
        };
        match &ev.data {
            EventData::FlowStarted { flow, .. } => c.flow = Some(flow.clone()),
            EventData::NodeEntered { .. } => c.node = ev.node.clone(),
            EventData::IssueType { issue_type } => c.issue_type = Some(issue_type.clone()),
            EventData::Enqueued { queue, .. } => {
                c.queue = Some(queue.clone());
                c.agent = None;
                to(c, Phase::Queue);
            }
            EventData::AgentOffered { agent_id } => {
                c.agent = Some(agent_id.clone());
                to(c, Phase::Ringing);
            }
            EventData::OfferOutcome { outcome, .. }
                if outcome != "accepted" && c.phase == Phase::Ringing =>
            {
                c.agent = None;
                to(c, Phase::Queue);
            }
            EventData::AgentAnswered { agent_id } => {
                c.agent = Some(agent_id.clone());
                to(c, Phase::Agent);
            }
            EventData::AgentLost { .. } => {
                c.agent = None;
                to(c, Phase::Queue);
            }
            EventData::SurveyStarted { .. } => {
                c.agent = None;
                to(c, Phase::Survey);
            }
            EventData::VoicemailStarted { .. } => to(c, Phase::Voicemail),
            _ => {}
        }
    }

    /// Drops calls older than [`STALE_AFTER_HOURS`] (their end was lost).
    pub fn sweep(&mut self, now: DateTime<Utc>) {
        let limit = now - chrono::Duration::hours(STALE_AFTER_HOURS);
        self.calls.retain(|_, c| c.started_at >= limit);
    }

    /// The live calls as of `now`, oldest first.
    pub fn calls(&self, now: DateTime<Utc>) -> Vec<LiveCall> {
        let secs = |since: DateTime<Utc>| (now - since).num_seconds().max(0) as u64;
        let mut out: Vec<LiveCall> = self
            .calls
            .values()
            .map(|c| LiveCall {
                duration_s: secs(c.started_at),
                phase_s: secs(c.phase_since),
                ..c.clone()
            })
            .collect();
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.call.cmp(&b.call)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    struct Call {
        id: Uuid,
        seq: u32,
    }

    impl Call {
        fn new() -> Self {
            Self {
                id: Uuid::new_v4(),
                seq: 0,
            }
        }
        fn ev(&mut self, at: i64, node: Option<&str>, data: EventData) -> CallEvent {
            self.seq += 1;
            CallEvent {
                call_id: self.id,
                sip_call_id: "sip-1".into(),
                seq: self.seq - 1,
                at: t(at),
                node: node.map(str::to_owned),
                data,
            }
        }
    }

    fn started(caller: &str) -> EventData {
        EventData::CallStarted {
            caller: caller.into(),
            caller_name: None,
            callee: "100".into(),
            transport: "udp".into(),
            source: "127.0.0.1:5060".into(),
            node: None,
            direction: None,
            callback_of: None,
            attempt: None,
            queue: None,
            srtp: false,
        }
    }

    #[test]
    fn a_call_moves_from_ivr_to_queue_to_agent_to_survey_and_leaves() {
        let mut b = LiveBoard::default();
        let mut c = Call::new();
        b.on_event(&c.ev(0, None, started("+8613800000001")));
        b.on_event(&c.ev(
            1,
            None,
            EventData::FlowStarted {
                flow: "main".into(),
                version: "v1".into(),
                language: "en".into(),
            },
        ));
        b.on_event(&c.ev(
            2,
            Some("menu"),
            EventData::NodeEntered {
                node_kind: "menu".into(),
            },
        ));
        let now = b.calls(t(5));
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].phase, Phase::Ivr);
        assert_eq!(now[0].node.as_deref(), Some("menu"));
        assert_eq!(now[0].duration_s, 5);

        b.on_event(&c.ev(
            10,
            Some("to_agent"),
            EventData::Enqueued {
                queue: "support".into(),
                priority: 0,
            },
        ));
        b.on_event(&c.ev(
            12,
            None,
            EventData::AgentOffered {
                agent_id: "a1".into(),
            },
        ));
        let now = b.calls(t(13));
        assert_eq!(now[0].phase, Phase::Ringing);
        assert_eq!(now[0].agent.as_deref(), Some("a1"));
        // Declined: back to waiting, since the queueing (not the offer).
        b.on_event(&c.ev(
            14,
            None,
            EventData::OfferOutcome {
                agent_id: "a1".into(),
                outcome: "declined".into(),
            },
        ));
        let now = b.calls(t(20));
        assert_eq!((now[0].phase, now[0].agent.clone()), (Phase::Queue, None));
        assert_eq!(now[0].phase_s, 6, "in the queue phase since 14");
        b.on_event(&c.ev(
            21,
            None,
            EventData::AgentAnswered {
                agent_id: "a2".into(),
            },
        ));
        let now = b.calls(t(31));
        assert_eq!(now[0].phase, Phase::Agent);
        assert_eq!(now[0].phase_s, 10);
        assert_eq!(now[0].queue.as_deref(), Some("support"));
        b.on_event(&c.ev(
            40,
            None,
            EventData::SurveyStarted {
                via: "queue".into(),
                queue: Some("support".into()),
            },
        ));
        assert_eq!(b.calls(t(41))[0].phase, Phase::Survey);
        b.on_event(&c.ev(50, None, EventData::CallEnded {}));
        assert!(b.calls(t(51)).is_empty());
    }

    #[test]
    fn events_of_unknown_calls_are_ignored_and_stale_calls_swept() {
        let mut b = LiveBoard::default();
        let mut stray = Call::new();
        b.on_event(&stray.ev(
            0,
            None,
            EventData::AgentAnswered {
                agent_id: "a1".into(),
            },
        ));
        assert!(b.calls(t(1)).is_empty());
        let mut c = Call::new();
        b.on_event(&c.ev(0, None, started("1001")));
        let g = b.generation();
        b.sweep(t(3600));
        assert_eq!(b.calls(t(3600)).len(), 1);
        b.sweep(t(13 * 3600));
        assert!(b.calls(t(13 * 3600)).is_empty());
        assert_eq!(b.generation(), g, "sweeping is not an event");
    }

    #[test]
    fn calls_are_listed_oldest_first() {
        let mut b = LiveBoard::default();
        let (mut x, mut y) = (Call::new(), Call::new());
        b.on_event(&y.ev(5, None, started("late")));
        b.on_event(&x.ev(1, None, started("early")));
        let callers: Vec<String> = b.calls(t(6)).into_iter().map(|c| c.caller).collect();
        assert_eq!(callers, ["early", "late"]);
    }
}
