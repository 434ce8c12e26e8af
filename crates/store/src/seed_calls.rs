//! `hotline seed-demo --calls N`: N made-up finished calls for trying the
//! admin console's call search and for measuring it (tests/load/run, step
//! `search`), written with `COPY` in batches.
//!
//! The calls look like the shipped flow's: spread over the last 90 days,
//! through `main` (four versions, one after the other) or `vip`, in English
//! or Chinese, down the subscription and purchase menus to an issue type,
//! then served by the IVR, queued and answered by one of 24 agents (one
//! in eight after a colleague declined or missed the offer; with a wrap-up
//! code and sometimes notes; rated 1–5 in the subscriptions and billing
//! queues when the agent hung up, by 7 callers in 10), abandoned, sent to voicemail or a
//! callback, transferred or failed. Callers come from a pool of N/4 numbers
//! (`+1555` and seven digits), a few of them frequent, so "this caller's
//! calls" is a handful. Each call has the events the gateway would write
//! (7 to 20, about a dozen), and its `calls` row is derived from them by
//! [`crate::derive_call`], the writer's own derivation. No recordings: there
//! is no audio to point at.
//!
//! Call `i` has the id `5eedca11-0000-4000-8000-<i as 12 hex digits>`, its
//! content is a function of `i` (and its start time of `i`, N and when it
//! is inserted: call `i` of N starts in the `i`th N-th of the 90 days), and
//! batches commit in order, so the calls inserted so far are always
//! `0..existing`: asked for N when M ≤ N exist, it inserts `M..N`; asked
//! for fewer than exist, it inserts nothing. Running it twice with the same
//! N therefore adds nothing the second time.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use hotline_events::EventData;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::record::{CallRecord, EventRow, derive_call};
use crate::{Store, StoreError};

/// Calls written per transaction (one `COPY` of calls, one of their events).
const BATCH: u64 = 10_000;

/// The id of seeded call `i` (`i` < 2^48).
pub fn seeded_call_id(i: u64) -> Uuid {
    Uuid::from_u128(0x5eed_ca11_0000_4000_8000_0000_0000_0000 | u128::from(i & 0xffff_ffff_ffff))
}

/// What [`Store::seed_calls`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedCallsReport {
    /// Seeded calls that were there before.
    pub existing: u64,
    /// Calls inserted now.
    pub inserted: u64,
    /// Their events.
    pub events: u64,
}

const AGENTS: u64 = 24;
const DISPOSITIONS: &[&str] = &[
    "resolved",
    "resolved",
    "info_given",
    "refund_issued",
    "escalated",
    "callback_promised",
    "no_action",
];
const NOTES: &[&str] = &[
    "Explained the renewal date; customer happy.",
    "Refund approved, 5-7 working days.",
    "Could not log in to the course; reset sent.",
    "Asked to cancel at the end of the term.",
    "Invoice re-sent to the billing address.",
    "Escalated to tier 2: payment taken twice.",
];
const NAMES: &[&str] = &[
    "Alice Chen",
    "Li Wei",
    "Bob Martin",
    "Zhang Min",
    "Carla Diaz",
    "Wang Fang",
    "David Okafor",
    "Liu Yang",
    "Emma Novak",
    "Chen Jing",
];
/// (flow, version, in use from this many days ago until the next one).
const VERSIONS: &[(&str, &str, i64)] = &[
    ("main", "3f2a9c1b7d04", 90),
    ("main", "8e51d0a4c9b2", 70),
    ("main", "c07b3e9f1a66", 45),
    ("main", "5d94a2e8b713", 14),
    ("vip", "a4e1f09c3b58", 90),
    ("vip", "e9c2715d0f47", 30),
];

/// One event: seq is its index.
struct Ev {
    at: DateTime<Utc>,
    kind: &'static str,
    node: Option<&'static str>,
    data: Value,
}

/// Seeded call `i` of `n`: the `i`th of `n` slots of the 90 days before
/// `now`, oldest first, so that each batch mostly appends to the
/// right-hand end of the indexes that order by time.
fn seeded_call(i: u64, n: u64, now: DateTime<Utc>) -> (Uuid, String, Vec<Ev>) {
    let mut rng = fastrand::Rng::with_seed(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
    const SPAN_US: u64 = 90 * 86_400 * 1_000_000;
    let n = n.max(i + 1);
    let slot = (SPAN_US / n).max(1);
    let ago_us = (SPAN_US - i * SPAN_US / n - rng.u64(0..slot)) as i64;
    let pool = (n / 4).max(50);
    let t0 = now - Duration::microseconds(ago_us);
    let days_ago = ago_us / 86_400_000_000;
    let mut t = t0;
    let mut evs: Vec<Ev> = Vec::with_capacity(14);
    let mut push =
        |t: DateTime<Utc>, kind: &'static str, node: Option<&'static str>, data: Value| {
            evs.push(Ev {
                at: t,
                kind,
                node,
                data,
            })
        };

    // A few numbers call often (1 % of the pool makes 10 % of the calls).
    let k = if rng.u8(0..10) == 0 {
        rng.u64(0..pool / 100 + 1)
    } else {
        rng.u64(0..pool)
    };
    let caller = format!("+1555{:07}", k % 10_000_000);
    let caller_name = (k % 5 < 2).then(|| NAMES[(k % NAMES.len() as u64) as usize]);
    push(
        t,
        "call_started",
        None,
        json!({"caller": caller, "caller_name": caller_name, "callee": "800",
               "transport": "udp", "source": format!("198.51.100.{}:5060", 1 + k % 250),
               "node": if i % 2 == 0 { "gw1" } else { "gw2" }}),
    );
    push(
        after(&mut t, &mut rng, 100, 600),
        "answered",
        None,
        json!({"rtp": "203.0.113.5:20000"}),
    );
    let flow = if rng.u8(0..10) == 0 { "vip" } else { "main" };
    let version = VERSIONS
        .iter()
        .rfind(|(f, _, from)| *f == flow && days_ago < *from)
        .map_or("3f2a9c1b7d04", |v| v.1);
    push(
        t,
        "flow_started",
        None,
        json!({"flow": flow, "version": version, "language": "en"}),
    );
    push(t, "node_entered", Some("welcome"), json!({"kind": "play"}));
    if rng.u8(0..10) < 3 {
        push(
            after(&mut t, &mut rng, 2_000, 5_000),
            "language_set",
            Some("choose-language"),
            json!({"language": "zh"}),
        );
    }
    push(
        after(&mut t, &mut rng, 3_000, 8_000),
        "node_entered",
        Some("main-menu"),
        json!({"kind": "menu"}),
    );

    // How it ends, in percent: self_served 28, abandoned_in_ivr 8,
    // ended_in_ivr 4, answered 38, abandoned 10, voicemail 5, callback 4,
    // transferred 2, failed 1.
    let roll = rng.u8(0..100);
    let ending = match roll {
        0..28 => "self_served",
        28..36 => "abandoned_in_ivr",
        36..40 => "ended_in_ivr",
        40..78 => "answered",
        78..88 => "abandoned",
        88..93 => "voicemail",
        93..97 => "callback",
        97..99 => "transferred",
        _ => "failed",
    };
    let subscription = rng.bool();
    let (menu, root) = if subscription {
        ("subscription-menu", "subscription")
    } else {
        ("purchase-menu", "purchase")
    };
    // (node, issue type, queue)
    let leaves: &[(&str, &str, &str)] = if subscription {
        &[
            ("renewal-date", "subscription.renewal", "subscriptions"),
            ("cancel", "subscription.cancel", "subscriptions"),
            (
                "subscription-refund",
                "subscription.refund",
                "subscriptions",
            ),
            ("billing", "subscription.billing", "billing"),
        ]
    } else {
        &[
            ("order-number", "purchase.order_status", "purchases"),
            ("course-access", "purchase.course_access", "purchases"),
            ("purchase-refund", "purchase.refund", "purchases"),
            ("invoice", "purchase.invoice", "billing"),
        ]
    };
    // Some callers press 0 at the main menu: no issue type, the support queue.
    let straight_to_agent = ending != "self_served" && rng.u8(0..10) == 0;
    let mut queue = "support";
    if !straight_to_agent {
        push(
            after(&mut t, &mut rng, 4_000, 12_000),
            "node_entered",
            Some(menu),
            json!({"kind": "menu"}),
        );
        push(t, "issue_type", Some(menu), json!({"issue_type": root}));
        // Self-service answers the renewal date and the order status.
        let leaf = if ending == "self_served" {
            Some(leaves[0])
        } else if rng.u8(0..10) < 8 {
            Some(leaves[rng.usize(0..leaves.len())])
        } else {
            None
        };
        if let Some((node, issue, q)) = leaf {
            queue = q;
            push(
                after(&mut t, &mut rng, 3_000, 10_000),
                "node_entered",
                Some(node),
                json!({"kind": "play"}),
            );
            push(t, "issue_type", Some(node), json!({"issue_type": issue}));
        } else {
            queue = if subscription {
                "subscriptions"
            } else {
                "purchases"
            };
        }
    }
    let queue_node = match queue {
        "subscriptions" => "queue-subscriptions",
        "purchases" => "queue-purchases",
        "billing" => "queue-billing",
        _ => "queue-support",
    };
    let enqueue =
        |t: &mut DateTime<Utc>,
         rng: &mut fastrand::Rng,
         push: &mut dyn FnMut(DateTime<Utc>, &'static str, Option<&'static str>, Value)| {
            *t += Duration::milliseconds(rng.i64(1_000..4_000));
            push(
                *t,
                "node_entered",
                Some(queue_node),
                json!({"kind": "enqueue"}),
            );
            push(
                *t,
                "enqueued",
                Some(queue_node),
                json!({"queue": queue, "priority": 0}),
            );
        };
    let hangup = |ended_by: &str, cause: &str| json!({"ended_by": ended_by, "cause": cause});
    match ending {
        "self_served" => {
            let say = if subscription {
                "say-renewal"
            } else {
                "say-order"
            };
            push(
                after(&mut t, &mut rng, 2_000, 6_000),
                "node_entered",
                Some(say),
                json!({"kind": "say"}),
            );
            push(
                after(&mut t, &mut rng, 3_000, 9_000),
                "outcome",
                Some(say),
                json!({"outcome": "self_served"}),
            );
            push(
                after(&mut t, &mut rng, 2_000, 8_000),
                "hangup",
                None,
                hangup("caller", "BYE"),
            );
        }
        "abandoned_in_ivr" => push(
            after(&mut t, &mut rng, 1_000, 20_000),
            "hangup",
            None,
            hangup("caller", "BYE"),
        ),
        "ended_in_ivr" => {
            push(
                after(&mut t, &mut rng, 6_000, 20_000),
                "node_entered",
                Some("goodbye"),
                json!({"kind": "hangup"}),
            );
            push(
                after(&mut t, &mut rng, 1_000, 3_000),
                "hangup",
                None,
                hangup("gateway", "flow_ended"),
            );
        }
        "answered" => {
            enqueue(&mut t, &mut rng, &mut push);
            // Each queue has its six agents: agent01-06 subscriptions, 07-12
            // purchases, 13-18 billing, 19-24 support.
            let q = match queue {
                "subscriptions" => 0,
                "purchases" => 1,
                "billing" => 2,
                _ => 3,
            };
            let first = 1 + q * (AGENTS / 4);
            let agent = format!("agent{:02}", first + rng.u64(0..AGENTS / 4));
            // One call in eight was first offered to a colleague who
            // declined it or let it ring out.
            if rng.u8(0..8) == 0 {
                let other = format!("agent{:02}", first + rng.u64(0..AGENTS / 4));
                let outcome = if rng.bool() { "declined" } else { "timeout" };
                push(
                    after(&mut t, &mut rng, 2_000, 20_000),
                    "offer_outcome",
                    None,
                    json!({"agent_id": other, "outcome": outcome}),
                );
            }
            push(
                after(&mut t, &mut rng, 5_000, 240_000),
                "agent_answered",
                None,
                json!({"agent_id": agent}),
            );
            // The subscriptions and billing queues ask for a rating when
            // the agent hangs up: 7 in 10 callers key one (mostly 4s and
            // 5s), the others hang up.
            let by_agent = rng.bool();
            if by_agent && matches!(queue, "subscriptions" | "billing") {
                push(
                    after(&mut t, &mut rng, 30_000, 900_000),
                    "survey_started",
                    None,
                    json!({"via": "queue", "queue": queue}),
                );
                if rng.u8(0..10) < 7 {
                    let score = [1, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5][rng.usize(0..12)];
                    push(
                        after(&mut t, &mut rng, 3_000, 9_000),
                        "survey_answered",
                        None,
                        json!({ "score": score }),
                    );
                    push(t, "survey_ended", None, json!({"reason": "answered"}));
                    push(
                        after(&mut t, &mut rng, 500, 2_000),
                        "hangup",
                        None,
                        hangup("gateway", "flow_ended"),
                    );
                } else {
                    push(
                        after(&mut t, &mut rng, 1_000, 6_000),
                        "survey_ended",
                        None,
                        json!({"reason": "hangup"}),
                    );
                    push(t, "hangup", None, hangup("caller", "BYE"));
                }
            } else {
                push(
                    after(&mut t, &mut rng, 30_000, 900_000),
                    "hangup",
                    None,
                    if by_agent {
                        hangup("agent", "agent_hangup")
                    } else {
                        hangup("caller", "BYE")
                    },
                );
            }
            let disposition =
                (rng.u8(0..100) >= 12).then(|| DISPOSITIONS[rng.usize(0..DISPOSITIONS.len())]);
            let notes = if rng.u8(0..10) < 3 {
                NOTES[rng.usize(0..NOTES.len())]
            } else {
                ""
            };
            let secs = rng.u64(5..120);
            push(
                t + Duration::seconds(secs as i64),
                "wrap_up",
                None,
                json!({"agent_id": agent, "disposition": disposition, "notes": notes, "seconds": secs}),
            );
            t += Duration::seconds(secs as i64);
        }
        "abandoned" => {
            enqueue(&mut t, &mut rng, &mut push);
            push(
                after(&mut t, &mut rng, 10_000, 300_000),
                "hangup",
                None,
                hangup("caller", "BYE"),
            );
        }
        "voicemail" | "callback" => {
            enqueue(&mut t, &mut rng, &mut push);
            let node = if ending == "voicemail" {
                "voicemail"
            } else {
                "callback"
            };
            push(
                after(&mut t, &mut rng, 120_000, 125_000),
                "queue_overflow",
                Some(queue_node),
                json!({"target": node}),
            );
            push(t, "node_entered", Some(node), json!({"kind": node}));
            push(
                after(&mut t, &mut rng, 10_000, 60_000),
                "outcome",
                Some(node),
                json!({"outcome": ending}),
            );
            push(
                after(&mut t, &mut rng, 1_000, 3_000),
                "hangup",
                None,
                hangup("gateway", "flow_ended"),
            );
        }
        "transferred" => {
            push(
                after(&mut t, &mut rng, 2_000, 6_000),
                "transfer",
                Some("transfer-sales"),
                json!({"target": "sip:sales@pbx.example", "method": "refer"}),
            );
            push(
                after(&mut t, &mut rng, 500, 2_000),
                "hangup",
                None,
                hangup("gateway", "transferred"),
            );
        }
        _ => push(
            after(&mut t, &mut rng, 1_000, 30_000),
            "hangup",
            None,
            hangup("gateway", "interrupted"),
        ),
    }
    push(t, "call_ended", None, json!({}));
    (seeded_call_id(i), format!("seed-{i}@hotline.demo"), evs)
}

/// Moves `t` on by `lo_ms..hi_ms` milliseconds; the new time.
fn after(t: &mut DateTime<Utc>, rng: &mut fastrand::Rng, lo_ms: i64, hi_ms: i64) -> DateTime<Utc> {
    *t += Duration::milliseconds(rng.i64(lo_ms..hi_ms));
    *t
}

/// COPY's text format: tab-separated, `\N` for NULL.
struct CopyText(String);

impl CopyText {
    fn field(&mut self, v: Option<&str>) {
        match v {
            None => self.0.push_str("\\N"),
            Some(s) => {
                for c in s.chars() {
                    match c {
                        '\\' => self.0.push_str("\\\\"),
                        '\t' => self.0.push_str("\\t"),
                        '\n' => self.0.push_str("\\n"),
                        '\r' => self.0.push_str("\\r"),
                        c => self.0.push(c),
                    }
                }
            }
        }
        self.0.push('\t');
    }

    fn time(&mut self, t: Option<DateTime<Utc>>) {
        self.field(
            t.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                .as_deref(),
        );
    }

    fn num(&mut self, v: Option<impl ToString>) {
        self.field(v.map(|v| v.to_string()).as_deref());
    }

    fn end_row(&mut self) {
        self.0.pop();
        self.0.push('\n');
    }
}

const CALL_COLUMNS: &str = "id, sip_call_id, node, caller, caller_name, callee, transport, \
    source, started_at, answered_at, ended_at, ended_by, hangup_cause, flow, flow_version, \
    language, issue_type, outcome, queue, queued_at, agent_id, agent_answered_at, talk_seconds, \
    wrap_up_seconds, disposition, notes, events, last_seq, complete, survey_offered_at, \
    csat_score";

fn copy_call(out: &mut CopyText, r: &CallRecord) {
    out.field(Some(&r.id.to_string()));
    out.field(Some(&r.sip_call_id));
    for v in [
        &r.node,
        &r.caller,
        &r.caller_name,
        &r.callee,
        &r.transport,
        &r.source,
    ] {
        out.field(v.as_deref());
    }
    out.time(r.started_at);
    out.time(r.answered_at);
    out.time(r.ended_at);
    for v in [
        &r.ended_by,
        &r.hangup_cause,
        &r.flow,
        &r.flow_version,
        &r.language,
        &r.issue_type,
        &r.outcome,
        &r.queue,
    ] {
        out.field(v.as_deref());
    }
    out.time(r.queued_at);
    out.field(r.agent_id.as_deref());
    out.time(r.agent_answered_at);
    out.num(r.talk_seconds);
    out.num(r.wrap_up_seconds);
    out.field(r.disposition.as_deref());
    out.field(r.notes.as_deref());
    out.num(Some(r.events));
    out.num(r.last_seq);
    out.field(Some(if r.complete { "t" } else { "f" }));
    out.time(r.survey_offered_at);
    out.num(r.csat_score);
    out.end_row();
}

impl Store {
    /// Makes sure seeded calls `0..n` exist (see the module's doc), in
    /// batches of 10,000, calling `progress(done, n)` after each. Analyses
    /// the tables at the end, so the first searches are planned with the
    /// new numbers.
    pub async fn seed_calls(
        &self,
        n: u64,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<SeedCallsReport, StoreError> {
        let (existing,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM calls WHERE id BETWEEN $1 AND $2")
                .bind(seeded_call_id(0))
                .bind(seeded_call_id(0xffff_ffff_ffff))
                .fetch_one(self.pool())
                .await?;
        let existing = existing as u64;
        let mut report = SeedCallsReport {
            existing,
            ..SeedCallsReport::default()
        };
        let now = Utc::now();
        let mut start = existing;
        while start < n {
            let end = (start + BATCH).min(n);
            let (calls, events, count) = tokio::task::spawn_blocking(move || {
                let mut calls = CopyText(String::with_capacity(((end - start) * 400) as usize));
                let mut events = CopyText(String::with_capacity(((end - start) * 1500) as usize));
                let mut count = 0u64;
                for i in start..end {
                    let (id, sip, evs) = seeded_call(i, n, now);
                    let id_text = id.to_string();
                    let mut rows = Vec::with_capacity(evs.len());
                    for (seq, e) in evs.into_iter().enumerate() {
                        let data_text = e.data.to_string();
                        events.field(Some(&id_text));
                        events.num(Some(seq));
                        events.time(Some(e.at));
                        events.field(Some(e.kind));
                        events.field(e.node);
                        events.field(Some(&data_text));
                        events.end_row();
                        rows.push(EventRow {
                            seq: seq as i32,
                            at: e.at,
                            node: e.node.map(str::to_owned),
                            data: EventData::from_parts(e.kind, e.data),
                        });
                        count += 1;
                    }
                    copy_call(&mut calls, &derive_call(id, &sip, &rows));
                }
                (calls.0, events.0, count)
            })
            .await
            .map_err(|e| StoreError::Invalid(format!("generating calls: {e}")))?;
            let mut tx = self.pool().begin().await?;
            let mut copy = tx
                .copy_in_raw(&format!("COPY calls ({CALL_COLUMNS}) FROM STDIN"))
                .await?;
            copy.send(calls.into_bytes()).await?;
            copy.finish().await?;
            let mut copy = tx
                .copy_in_raw("COPY call_events (call_id, seq, at, kind, node, data) FROM STDIN")
                .await?;
            copy.send(events.into_bytes()).await?;
            copy.finish().await?;
            tx.commit().await?;
            report.inserted += end - start;
            report.events += count;
            progress(end, n);
            start = end;
        }
        if report.inserted > 0 {
            self.analyze().await?;
        }
        // The reports' rollup (reports.rs): the hours just written (or
        // left by an older version) are dirty; build them now rather than
        // a few at a time on the first reports.
        let mut rebuilt = 0;
        while let n @ 1.. = self.rebuild_report_rollup(200).await? {
            rebuilt += n;
        }
        if rebuilt > 0 {
            sqlx::query("ANALYZE report_rollup, report_dirty")
                .execute(self.pool())
                .await?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seeded_event_has_its_kinds_shape_and_the_row_is_finished() {
        let now = Utc::now();
        let mut outcomes = std::collections::BTreeSet::new();
        let mut last_start = now - Duration::days(91);
        for i in 0..2_000 {
            let (id, sip, evs) = seeded_call(i, 2_000, now);
            assert_eq!(id, seeded_call_id(i));
            let rows: Vec<EventRow> = evs
                .into_iter()
                .enumerate()
                .map(|(seq, e)| {
                    let data = EventData::from_parts(e.kind, e.data.clone());
                    assert!(!data.is_other(), "{} {}", e.kind, e.data);
                    EventRow {
                        seq: seq as i32,
                        at: e.at,
                        node: e.node.map(str::to_owned),
                        data,
                    }
                })
                .collect();
            assert!(rows.windows(2).all(|w| w[0].at <= w[1].at), "call {i}");
            let r = derive_call(id, &sip, &rows);
            assert!(r.complete && r.ended_at.is_some() && r.flow_version.is_some());
            let started = r.started_at.unwrap();
            assert!(started > now - Duration::days(90) && started <= now);
            assert!(started > last_start, "oldest first");
            last_start = started;
            outcomes.insert(r.outcome.clone().unwrap());
            if r.outcome.as_deref() == Some("answered") {
                assert!(r.agent_id.is_some() && r.queue.is_some(), "{r:?}");
            }
        }
        assert_eq!(outcomes.len(), 9, "{outcomes:?}");
    }
}
