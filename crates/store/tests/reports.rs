//! Reports against a real PostgreSQL: hand-built calls written through the
//! writer's path, figures computed by hand; the rollup and the direct path
//! agree, a call being written counts at once; and every SQL block of
//! docs/metrics.md gives the figure the functions give.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use hotline_events::{CallEvent, EventData};
use hotline_store::reports::{AgentFigures, Figures, Granularity, ReportQuery};
use hotline_store::testing::{TestDb, fresh_db};
use hotline_store::{Store, Uuid, prepare};
use serde_json::{Value, json};

async fn db() -> TestDb {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    db
}

/// 10:00 in Shanghai, 2026-11-10.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 2, 0, 0).unwrap()
}

type Step = (i64, &'static str, Option<&'static str>, Value);

/// Writes one call's events (ms after `at`) through the writer's path.
async fn write(store: &Store, caller: &str, at: DateTime<Utc>, steps: Vec<Step>) -> Uuid {
    let id = Uuid::new_v4();
    let mut all: Vec<Step> = vec![
        (
            0,
            "call_started",
            None,
            json!({"caller": caller, "caller_name": null, "callee": "800",
                   "transport": "udp", "source": "127.0.0.1:5060"}),
        ),
        (100, "answered", None, json!({"rtp": "127.0.0.1:20000"})),
        (
            100,
            "flow_started",
            None,
            json!({"flow": "main", "version": "v1", "language": "en"}),
        ),
        (
            200,
            "node_entered",
            Some("welcome"),
            json!({"kind": "play"}),
        ),
        (
            2_000,
            "node_entered",
            Some("main-menu"),
            json!({"kind": "menu"}),
        ),
    ];
    all.extend(steps);
    write_events(store, id, at, all).await;
    id
}

/// One call's events (ms after `at`), numbered from 0.
fn stamped(id: Uuid, at: DateTime<Utc>, steps: Vec<Step>) -> Vec<CallEvent> {
    steps
        .into_iter()
        .enumerate()
        .map(|(seq, (ms, kind, node, data))| CallEvent {
            call_id: id,
            sip_call_id: format!("{id}@test"),
            seq: seq as u32,
            at: at + Duration::milliseconds(ms),
            node: node.map(str::to_owned),
            data: EventData::from_parts(kind, data),
        })
        .collect()
}

async fn write_events(store: &Store, id: Uuid, at: DateTime<Utc>, steps: Vec<Step>) {
    let events = stamped(id, at, steps);
    store
        .write(&prepare(events.into_iter(), "gw").await)
        .await
        .unwrap();
}

fn issue(t: &'static str) -> Step {
    (
        3_000,
        "issue_type",
        Some("menu"),
        json!({ "issue_type": t }),
    )
}

fn enqueue(ms: i64, q: &str) -> Vec<Step> {
    vec![
        (
            ms,
            "node_entered",
            Some("queue"),
            json!({"kind": "enqueue"}),
        ),
        (
            ms,
            "enqueued",
            Some("queue"),
            json!({"queue": q, "priority": 0}),
        ),
    ]
}

fn hangup(ms: i64, by: &str, cause: &str) -> Vec<Step> {
    vec![
        (ms, "hangup", None, json!({"ended_by": by, "cause": cause})),
        (ms, "call_ended", None, json!({})),
    ]
}

/// An agent call: queued at 5 s, answered after `wait` s, `talk` s of talk,
/// `wrap` s of wrap-up with `disposition`.
fn agent_call(
    q: &str,
    agent: &'static str,
    wait: i64,
    talk: i64,
    wrap: u64,
    disposition: &str,
    offers: &[(&'static str, &str)],
) -> Vec<Step> {
    let mut s = enqueue(5_000, q);
    for (agent, outcome) in offers {
        s.push((
            5_500,
            "offer_outcome",
            None,
            json!({"agent_id": agent, "outcome": outcome}),
        ));
    }
    let answered = 5_000 + wait * 1000;
    s.push((
        answered,
        "agent_answered",
        None,
        json!({ "agent_id": agent }),
    ));
    let end = answered + talk * 1000;
    s.push((
        end,
        "hangup",
        None,
        json!({"ended_by": "agent", "cause": "agent_hangup"}),
    ));
    s.push((
        end + wrap as i64 * 1000,
        "wrap_up",
        None,
        json!({"agent_id": agent, "disposition": disposition, "notes": "", "seconds": wrap}),
    ));
    s.push((end + wrap as i64 * 1000, "call_ended", None, json!({})));
    s
}

/// Sets a call's survey columns (migration 0012) as the survey events would.
async fn survey(store: &Store, id: Uuid, score: Option<i16>) {
    sqlx::query(
        "UPDATE calls SET survey_offered_at = started_at + interval '5 minutes', csat_score = $2 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(score)
    .execute(store.pool())
    .await
    .unwrap();
}

/// The mix of the module's tests: 8 calls on 2026-11-10 (Shanghai), one
/// two days later (a repeat of call 3's caller and issue type).
async fn mix(store: &Store) {
    let t = base();
    // 1. Self-served (order status), 10:00.
    write(
        store,
        "+8613800000001",
        t,
        [
            vec![issue("purchase.order_status")],
            vec![
                (
                    5_000,
                    "node_entered",
                    Some("say-order"),
                    json!({"kind": "say"}),
                ),
                (
                    9_000,
                    "outcome",
                    Some("say-order"),
                    json!({"outcome": "self_served"}),
                ),
            ],
            hangup(12_000, "caller", "BYE"),
        ]
        .concat(),
    )
    .await;
    // 2. Hung up at the main menu, 10:05.
    write(
        store,
        "+8613800000002",
        t + Duration::minutes(5),
        hangup(4_000, "caller", "BYE"),
    )
    .await;
    // 3. Support, answered by a1 after 10 s, resolved, 11:00; CSAT 5.
    let c3 = write(
        store,
        "+8613800000003",
        t + Duration::hours(1),
        [
            vec![issue("subscription.refund")],
            agent_call("support", "a1", 10, 60, 10, "resolved", &[]),
        ]
        .concat(),
    )
    .await;
    survey(store, c3, Some(5)).await;
    // 4. Support, a2 declines, nobody takes one offer, a1 answers after 30 s.
    let c4 = write(
        store,
        "+8613800000004",
        t + Duration::hours(1) + Duration::minutes(10),
        agent_call(
            "support",
            "a1",
            30,
            120,
            20,
            "escalated",
            &[("a2", "declined"), ("a3", "timeout")],
        ),
    )
    .await;
    survey(store, c4, Some(2)).await;
    // 5. Abandoned in the queue after 3 s (short), 12:00.
    write(
        store,
        "+8613800000005",
        t + Duration::hours(2),
        [enqueue(5_000, "support"), hangup(8_000, "caller", "BYE")].concat(),
    )
    .await;
    // 6. Abandoned in the queue after 40 s, 12:30; offered the survey? no.
    write(
        store,
        "+8613800000006",
        t + Duration::hours(2) + Duration::minutes(30),
        [enqueue(5_000, "billing"), hangup(45_000, "caller", "BYE")].concat(),
    )
    .await;
    // 7. Voicemail after the queue overflowed, 13:00.
    write(
        store,
        "+8613800000007",
        t + Duration::hours(3),
        [
            enqueue(5_000, "billing"),
            vec![
                (
                    125_000,
                    "queue_overflow",
                    Some("queue"),
                    json!({"target": "voicemail"}),
                ),
                (
                    125_000,
                    "node_entered",
                    Some("voicemail"),
                    json!({"kind": "voicemail"}),
                ),
                (
                    150_000,
                    "outcome",
                    Some("voicemail"),
                    json!({"outcome": "voicemail"}),
                ),
            ],
            hangup(151_000, "gateway", "flow_ended"),
        ]
        .concat(),
    )
    .await;
    // 8. Transferred, 23:30 local (15:30 UTC), surveyed, no answer.
    let c8 = write(
        store,
        "+8613800000008",
        t + Duration::hours(13) + Duration::minutes(30),
        [
            vec![(
                4_000,
                "transfer",
                Some("transfer"),
                json!({"target": "sip:sales@pbx", "method": "refer"}),
            )],
            hangup(5_000, "gateway", "transferred"),
        ]
        .concat(),
    )
    .await;
    survey(store, c8, None).await;
    // 9. Two days later: call 3's caller about the same issue.
    write(
        store,
        "+8613800000003",
        t + Duration::days(2),
        [
            vec![issue("subscription.refund")],
            hangup(4_000, "caller", "BYE"),
        ]
        .concat(),
    )
    .await;
}

/// 2026-11-10 in Shanghai.
fn day_query() -> ReportQuery {
    let day = NaiveDate::from_ymd_opt(2026, 11, 10).unwrap();
    let from = day.and_hms_opt(0, 0, 0).unwrap().and_utc() - Duration::hours(8);
    ReportQuery::new(from, from + Duration::days(1), "Asia/Shanghai")
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-6)
}

#[tokio::test]
async fn the_days_figures_are_the_hand_computed_ones() {
    let db = db().await;
    mix(&db.store).await;
    let f = db.store.report_summary(&day_query()).await.unwrap();
    let counts = [
        ("offered", f.offered, 8),
        ("answered_by_gateway", f.answered_by_gateway, 8),
        ("self_served", f.self_served, 1),
        ("sent_to_queue", f.sent_to_queue, 5),
        ("answered_by_agent", f.answered_by_agent, 2),
        ("abandoned_in_queue", f.abandoned_in_queue, 2),
        ("short_abandons", f.short_abandons, 1),
        ("abandoned_in_ivr", f.abandoned_in_ivr, 1),
        ("voicemail", f.voicemail, 1),
        ("transferred", f.transferred, 1),
        ("answered_within_sl", f.answered_within_sl, 1),
        ("offers_declined", f.offers_declined, 1),
        ("offers_timed_out", f.offers_timed_out, 1),
        ("resolved", f.resolved, 2),
        ("first_contact_resolved", f.first_contact_resolved, 1),
        ("surveys_offered", f.surveys_offered, 3),
        ("csat_responses", f.csat_responses, 2),
        ("csat_2", f.csat_2, 1),
        ("csat_5", f.csat_5, 1),
        ("csat_1", f.csat_1, 0),
    ];
    for (name, got, want) in counts {
        assert_eq!(got, want, "{name}: {f:#?}");
    }
    assert!(close(f.containment_rate, 1.0 / 8.0), "{f:?}");
    assert!(close(f.service_level, 1.0 / 4.0), "{f:?}");
    assert!(close(f.asa_secs, 20.0), "{f:?}");
    assert!(
        close(f.avg_wait_secs, (10.0 + 30.0 + 3.0 + 40.0) / 4.0),
        "{f:?}"
    );
    assert!(close(f.max_wait_secs, 40.0), "{f:?}");
    assert!(close(f.aht_secs, (70.0 + 140.0) / 2.0), "{f:?}");
    assert!(close(f.avg_wrap_up_secs, 15.0), "{f:?}");
    assert!(close(f.resolution_rate, 2.0 / 3.0), "{f:?}");
    assert!(close(f.fcr_rate, 0.5), "{f:?}");
    assert!(close(f.csat_avg, 3.5), "{f:?}");
    assert!(close(f.csat_response_rate, 2.0 / 3.0), "{f:?}");

    // A queue's threshold is its own: at 30 s call 4 is within it too.
    sqlx::query("INSERT INTO queues (name, service_level_secs) VALUES ('support', 30)")
        .execute(db.store.pool())
        .await
        .unwrap();
    let f = db.store.report_summary(&day_query()).await.unwrap();
    assert_eq!(f.answered_within_sl, 2);
    assert!(close(f.service_level, 2.0 / 4.0), "{f:?}");

    // Filters: a queue, an issue type prefix, an agent.
    let mut q = day_query();
    q.queue = Some("billing".into());
    let f = db.store.report_summary(&q).await.unwrap();
    assert_eq!((f.offered, f.voicemail, f.abandoned_in_queue), (2, 1, 1));
    let mut q = day_query();
    q.issue_type = Some("subscription".into());
    let f = db.store.report_summary(&q).await.unwrap();
    assert_eq!((f.offered, f.answered_by_agent, f.resolved), (1, 1, 1));
    let mut q = day_query();
    q.agent = Some("a1".into());
    let f = db.store.report_summary(&q).await.unwrap();
    assert_eq!((f.offered, f.answered_by_agent), (2, 2));
}

#[tokio::test]
async fn series_agents_and_funnel() {
    let db = db().await;
    mix(&db.store).await;
    let mut q = day_query();
    q.granularity = Granularity::Hour;
    let s = db.store.report_series(&q).await.unwrap();
    assert_eq!(s.len(), 24, "every local hour of the day");
    assert_eq!(s[0].bucket.to_string(), "2026-11-10 00:00:00");
    let by_hour: Vec<(u32, i64)> = s
        .iter()
        .filter(|p| p.figures.offered > 0)
        .map(|p| (chrono::Timelike::hour(&p.bucket), p.figures.offered))
        .collect();
    assert_eq!(by_hour, [(10, 2), (11, 2), (12, 2), (13, 1), (23, 1)]);
    assert_eq!(s.iter().map(|p| p.figures.offered).sum::<i64>(), 8);
    assert_eq!(s[11].figures.offers_declined, 1);

    // In UTC, calls 1-8 (02:00 to 15:30 UTC) all fall on 2026-11-10.
    let mut q = day_query();
    q.tz = "UTC".into();
    q.from = base() - Duration::hours(2);
    q.to = q.from + Duration::days(1);
    q.granularity = Granularity::Day;
    let s = db.store.report_series(&q).await.unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].figures.offered, 8);

    q.tz = "Mars/Olympus".into();
    let e = db.store.report_series(&q).await.unwrap_err();
    assert!(e.to_string().contains("unknown time zone"), "{e}");

    let agents = db.store.report_agents(&day_query()).await.unwrap();
    let rows: Vec<(&str, i64, i64, i64)> = agents
        .iter()
        .map(|a| {
            (
                a.agent.as_str(),
                a.figures.answered_by_agent,
                a.figures.offers_declined,
                a.figures.offers_timed_out,
            )
        })
        .collect();
    assert_eq!(rows, [("a1", 2, 0, 0), ("a2", 0, 1, 0), ("a3", 0, 0, 1)]);
    assert!(close(agents[0].figures.aht_secs, 105.0));
    assert!(close(agents[0].figures.csat_avg, 3.5));

    let mut q = day_query();
    q.flow = Some("main".into());
    let f = db.store.report_funnel(&q).await.unwrap();
    assert_eq!(f.calls, 8);
    let node = |n: &str| f.nodes.iter().find(|x| x.node == n).unwrap().clone();
    assert_eq!(
        (
            node("welcome").reached,
            node("welcome").hung_up,
            node("welcome").self_served_below
        ),
        (8, 0, 1)
    );
    assert_eq!(
        (node("main-menu").reached, node("main-menu").hung_up),
        (8, 1)
    );
    assert_eq!((node("queue").reached, node("queue").hung_up), (5, 2));
    assert_eq!(node("say-order").self_served_below, 1);
    let edge = |a: &str, b: &str| {
        f.edges
            .iter()
            .find(|e| e.from == a && e.to == b)
            .map_or(0, |e| e.calls)
    };
    assert_eq!(edge("welcome", "main-menu"), 8);
    assert_eq!(edge("main-menu", "queue"), 5);
    assert_eq!(edge("queue", "voicemail"), 1);
    assert_eq!(f.worst[0].node, "queue");
    assert_eq!(f.worst[1].node, "main-menu");
}

/// The rollup serves whole clean hours; a call written after it was built
/// counts at once (its hour is dirty), a call still going too, and the
/// direct path (a non-default window) agrees on everything but FCR.
#[tokio::test]
async fn the_rollup_is_exact_while_calls_arrive() {
    let db = db().await;
    mix(&db.store).await;
    while db.store.rebuild_report_rollup(1000).await.unwrap() > 0 {}
    let (rollup_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM report_rollup")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert!(rollup_rows >= 8, "{rollup_rows}");
    let before = db.store.report_summary(&day_query()).await.unwrap();
    assert_eq!(before.offered, 8);

    // A call going on at 10:30: started, in the queue, not ended.
    let id = Uuid::new_v4();
    let steps: Vec<Step> = [
        vec![
            (
                0,
                "call_started",
                None,
                json!({"caller": "+8613800000010", "caller_name": null, "callee": "800",
                       "transport": "udp", "source": "127.0.0.1:5060"}),
            ),
            (100, "answered", None, json!({"rtp": "127.0.0.1:20000"})),
        ],
        enqueue(1_000, "support"),
    ]
    .concat();
    write_events(&db.store, id, base() + Duration::minutes(30), steps).await;
    let f = db.store.report_summary(&day_query()).await.unwrap();
    assert_eq!((f.offered, f.sent_to_queue, f.answered_by_agent), (9, 6, 2));
    // It ends: abandoned after 50 s.
    write_events(
        &db.store,
        id,
        base() + Duration::minutes(30),
        vec![
            (0, "call_started", None, json!({"caller": "+8613800000010", "caller_name": null, "callee": "800", "transport": "udp", "source": "127.0.0.1:5060"})),
            (100, "answered", None, json!({"rtp": "127.0.0.1:20000"})),
            (1_000, "node_entered", Some("queue"), json!({"kind": "enqueue"})),
            (1_000, "enqueued", Some("queue"), json!({"queue": "support", "priority": 0})),
            (51_000, "hangup", None, json!({"ended_by": "caller", "cause": "BYE"})),
            (51_000, "call_ended", None, json!({})),
        ],
    )
    .await;
    let f = db.store.report_summary(&day_query()).await.unwrap();
    assert_eq!(
        (f.offered, f.abandoned_in_queue, f.short_abandons),
        (9, 3, 1)
    );
    assert!(close(f.max_wait_secs, 50.0), "{f:?}");

    // Everything rebuilt, or nothing from the rollup: the same figures.
    while db.store.rebuild_report_rollup(1000).await.unwrap() > 0 {}
    let rebuilt = db.store.report_summary(&day_query()).await.unwrap();
    assert_same(&rebuilt, &f);
    let mut direct = day_query();
    direct.fcr_days = 6;
    let d = db.store.report_summary(&direct).await.unwrap();
    assert_same(&d, &f);
    // The agent table, offers counted by the agent offered: from
    // report_offers, or from the calls' events.
    let (offer_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM report_offers")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert!(offer_rows >= 2, "{offer_rows}");
    let from_rollup = db.store.report_agents(&day_query()).await.unwrap();
    let from_calls = db.store.report_agents(&direct).await.unwrap();
    let offers = |v: &[AgentFigures]| -> Vec<(String, i64, i64)> {
        v.iter()
            .map(|a| {
                (
                    a.agent.clone(),
                    a.figures.offers_declined,
                    a.figures.offers_timed_out,
                )
            })
            .collect()
    };
    assert_eq!(
        offers(&from_rollup),
        [
            ("a1".into(), 0, 0),
            ("a2".into(), 1, 0),
            ("a3".into(), 0, 1)
        ]
    );
    assert_eq!(from_rollup.len(), from_calls.len());
    for (r, c) in from_rollup.iter().zip(&from_calls) {
        assert_eq!(r.agent, c.agent);
        assert_same(&r.figures, &c.figures);
    }
    // The funnel too: from its rollup, or from the events.
    let mut q = day_query();
    q.flow = Some("main".into());
    let from_rollup = db.store.report_funnel(&q).await.unwrap();
    q.fcr_days = 6;
    let from_events = db.store.report_funnel(&q).await.unwrap();
    assert_eq!(from_rollup, from_events);
    assert_eq!(from_rollup.calls, 8, "call 10 has no flow");

    // A zone off the hour (India, +5:30) is read from the calls; a range
    // that cuts hours too.
    let mut q = day_query();
    q.tz = "Asia/Kolkata".into();
    q.granularity = Granularity::Hour;
    let s = db.store.report_series(&q).await.unwrap();
    assert_eq!(s.iter().map(|p| p.figures.offered).sum::<i64>(), 9);
    let mut q = day_query();
    q.from = base() + Duration::minutes(3);
    q.to = base() + Duration::hours(2) + Duration::minutes(1);
    let f = db.store.report_summary(&q).await.unwrap();
    assert_eq!(f.offered, 5, "calls 2, 10, 3, 4, 5");
}

/// Equal but for floating-point noise in the averages.
fn assert_same(a: &Figures, b: &Figures) {
    let (mut a, mut b) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    );
    for v in [&mut a, &mut b] {
        for (_, x) in v.as_object_mut().unwrap().iter_mut() {
            if let Some(f) = x.as_f64().filter(|_| x.is_f64()) {
                *x = json!((f * 1e6).round() / 1e6);
            }
        }
    }
    assert_eq!(a, b);
}

/// Every ```sql block of docs/metrics.md that names a figure (`-- figure:
/// <name>`) gives, for `$1` = from and `$2` = to, the value the summary
/// gives (`$3` = the first-contact window in days where used).
#[tokio::test]
async fn every_sql_block_of_docs_metrics_reproduces_its_figure() {
    let db = db().await;
    mix(&db.store).await;
    let q = day_query();
    let summary = serde_json::to_value(db.store.report_summary(&q).await.unwrap()).unwrap();
    let doc = include_str!("../../../docs/metrics.md");
    let mut checked = 0;
    for block in doc.split("```sql").skip(1) {
        let sql = block.split("```").next().unwrap();
        let Some(name) = sql
            .lines()
            .find_map(|l| l.trim().strip_prefix("-- figure:"))
            .map(str::trim)
        else {
            continue;
        };
        let want = summary
            .get(name)
            .unwrap_or_else(|| panic!("docs/metrics.md names unknown figure `{name}`"));
        let mut query = sqlx::query_scalar::<_, Option<f64>>(sql)
            .bind(q.from)
            .bind(q.to);
        if sql.contains("$3") {
            query = query.bind(q.fcr_days);
        }
        let got = query
            .fetch_one(db.store.pool())
            .await
            .unwrap_or_else(|e| panic!("figure {name}: {e}\n{sql}"));
        match (got, want.as_f64()) {
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "{name}: SQL {g}, summary {w}"),
            (None, None) => {}
            (g, _) => panic!("{name}: SQL {g:?}, summary {want}"),
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} figures checked");
}

/// The hours marked for a rebuild, oldest first.
async fn dirty_hours(store: &Store) -> Vec<DateTime<Utc>> {
    sqlx::query_scalar("SELECT slot FROM report_dirty ORDER BY slot")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// A new call marks its own hour and the hours of its caller's calls of the
/// same issue type in the 7 days before it (whose first-contact resolution
/// it may change), and nothing else: not another caller's, not another
/// issue type's, not older ones. Several calls of one caller in one batch
/// mark the same hours as one at a time (migration 0018 groups them).
#[tokio::test]
async fn a_call_marks_the_hours_its_repeat_may_change() {
    let db = db().await;
    let s = &db.store;
    let h = |days: i64, hours: i64| base() + Duration::days(days) + Duration::hours(hours);
    let ended = |t: &'static str| [vec![issue(t)], hangup(10_000, "gateway", "BYE")].concat();
    write(s, "+8613800000001", h(0, 0), ended("refund")).await; // 8 days before: too old
    write(s, "+8613800000001", h(3, 0), ended("refund")).await; // 5 days before
    write(s, "+8613800000001", h(6, 5), ended("billing")).await; // other issue type
    write(s, "+8613800000002", h(6, 6), ended("refund")).await; // other caller
    write(s, "+8613800000001", h(7, 0), ended("refund")).await; // 1 day before
    while s.rebuild_report_rollup(1000).await.unwrap() > 0 {}
    assert!(dirty_hours(s).await.is_empty());

    write(s, "+8613800000001", h(8, 1), ended("refund")).await;
    assert_eq!(dirty_hours(s).await, vec![h(3, 0), h(7, 0), h(8, 1)]);

    // Two calls in one batch, 9 days apart: each marks its own week only.
    while s.rebuild_report_rollup(1000).await.unwrap() > 0 {}
    let call = |at: DateTime<Utc>| {
        let steps: Vec<Step> = vec![
            (
                0,
                "call_started",
                None,
                json!({"caller": "+8613800000001", "caller_name": null,
                "callee": "800", "transport": "udp", "source": "127.0.0.1:5060"}),
            ),
            issue("refund"),
            (
                10_000,
                "hangup",
                None,
                json!({"ended_by": "gateway", "cause": "BYE"}),
            ),
            (10_000, "call_ended", None, json!({})),
        ];
        stamped(Uuid::new_v4(), at, steps)
    };
    let both = call(h(1, 2)).into_iter().chain(call(h(10, 2)));
    s.write(&prepare(both, "gw").await).await.unwrap();
    assert_eq!(
        dirty_hours(s).await,
        vec![h(0, 0), h(1, 2), h(7, 0), h(8, 1), h(10, 2)],
        "h(1,2) repeats h(0,0); h(10,2) repeats h(7,0) and h(8,1), not h(3,0) (7 days 2 hours before) nor h(1,2)"
    );

    // No issue type matches no issue type (and not a typed call).
    let untyped = || hangup(10_000, "gateway", "BYE");
    write(s, "+8613800000003", h(2, 0), untyped()).await;
    write(s, "+8613800000003", h(2, 1), ended("refund")).await;
    while s.rebuild_report_rollup(1000).await.unwrap() > 0 {}
    write(s, "+8613800000003", h(4, 0), untyped()).await;
    assert_eq!(dirty_hours(s).await, vec![h(2, 0), h(4, 0)]);
}
