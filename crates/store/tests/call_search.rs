//! Call search against a real PostgreSQL: every filter, keyset pagination
//! (pages disjoint, in order, complete, stable while newer calls arrive),
//! masked callers, and the call generator behind `seed-demo --calls`.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use hotline_events::{CallEvent, EventData};
use hotline_store::call_search::{CallCursor, CallFilter, CallSummary};
use hotline_store::privacy::{EventFiles, erase_caller};
use hotline_store::testing::{TestDb, fresh_db};
use hotline_store::{Store, StoreError, Uuid, prepare};
use serde_json::{Value, json};

async fn db() -> TestDb {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    db
}

/// What a hand-made call goes through.
struct Call<'a> {
    caller: &'a str,
    at: DateTime<Utc>,
    issue_type: Option<&'a str>,
    queue: Option<&'a str>,
    agent: Option<&'a str>,
    disposition: Option<&'a str>,
}

impl Default for Call<'_> {
    fn default() -> Self {
        Call {
            caller: "+15550000000",
            at: Utc::now() - Duration::hours(1),
            issue_type: None,
            queue: None,
            agent: None,
            disposition: None,
        }
    }
}

/// Writes the call through the writer's path; its id.
async fn write(store: &Store, c: Call<'_>) -> Uuid {
    let id = Uuid::new_v4();
    let mut evs: Vec<(i64, &str, Option<&str>, Value)> = vec![
        (
            0,
            "call_started",
            None,
            json!({"caller": c.caller, "caller_name": "Ann Lee", "callee": "800",
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
    ];
    if let Some(t) = c.issue_type {
        evs.push((
            3_000,
            "issue_type",
            Some("menu"),
            json!({ "issue_type": t }),
        ));
    }
    if let Some(q) = c.queue {
        evs.push((
            4_000,
            "enqueued",
            Some("queue"),
            json!({"queue": q, "priority": 0}),
        ));
    }
    if let Some(a) = c.agent {
        evs.push((9_000, "agent_answered", None, json!({ "agent_id": a })));
    }
    evs.push((
        60_000,
        "hangup",
        None,
        json!({"ended_by": "caller", "cause": "BYE"}),
    ));
    if let Some(a) = c.agent {
        evs.push((
            70_000,
            "wrap_up",
            None,
            json!({"agent_id": a, "disposition": c.disposition, "notes": "", "seconds": 10}),
        ));
    }
    evs.push((70_000, "call_ended", None, json!({})));
    let events: Vec<CallEvent> = evs
        .into_iter()
        .enumerate()
        .map(|(seq, (ms, kind, node, data))| CallEvent {
            call_id: id,
            sip_call_id: format!("{id}@test"),
            seq: seq as u32,
            at: c.at + Duration::milliseconds(ms),
            node: node.map(str::to_owned),
            data: EventData::from_parts(kind, data),
        })
        .collect();
    store
        .write(&prepare(events.into_iter(), "gw").await)
        .await
        .unwrap();
    id
}

/// Every page of a search, `limit` rows at a time.
async fn all_pages(store: &Store, filter: &CallFilter, limit: u32) -> Vec<Vec<CallSummary>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store.search_calls(filter, limit, after).await.unwrap();
        assert!(page.calls.len() <= limit as usize);
        let next = page.next;
        pages.push(page.calls);
        match next {
            Some(c) => after = Some(c),
            None => return pages,
        }
        assert!(pages.len() < 10_000, "runaway paging");
    }
}

fn ids(rows: &[CallSummary]) -> Vec<Uuid> {
    rows.iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn each_filter_matches_exactly_its_calls() {
    let db = db().await;
    let s = &db.store;
    // As stored: microseconds.
    let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    let refund = write(
        s,
        Call {
            caller: "+15550100001",
            at: now - Duration::days(2),
            issue_type: Some("subscription.refund"),
            queue: Some("subscriptions"),
            agent: Some("ada"),
            disposition: Some("refund_issued"),
        },
    )
    .await;
    let plain = write(
        s,
        Call {
            caller: "+15550100001",
            at: now - Duration::days(1),
            issue_type: Some("subscription"),
            ..Call::default()
        },
    )
    .await;
    // Near misses for the issue type prefix: neither is under `subscription`.
    let plural = write(
        s,
        Call {
            caller: "+15550100002",
            at: now - Duration::hours(5),
            issue_type: Some("subscriptions.x"),
            queue: Some("billing"),
            ..Call::default()
        },
    )
    .await;
    let dashed = write(
        s,
        Call {
            caller: "sipp",
            at: now - Duration::hours(4),
            issue_type: Some("subscription-x"),
            queue: Some("billing"),
            agent: Some("bob"),
            disposition: Some("resolved"),
        },
    )
    .await;
    let purchase = write(
        s,
        Call {
            caller: "+8613800138000",
            at: now - Duration::hours(3),
            issue_type: Some("purchase.refund"),
            queue: Some("purchases"),
            agent: Some("ada"),
            ..Call::default()
        },
    )
    .await;

    let search =
        |f: CallFilter| async move { ids(&s.search_calls(&f, 50, None).await.unwrap().calls) };
    assert_eq!(
        search(CallFilter::default()).await,
        [purchase, dashed, plural, plain, refund],
        "newest first"
    );
    let f = |g: fn(&mut CallFilter)| {
        let mut f = CallFilter::default();
        g(&mut f);
        f
    };
    assert_eq!(
        search(f(|f| f.issue_type = Some("subscription".into()))).await,
        [plain, refund]
    );
    assert_eq!(
        search(f(|f| f.issue_type = Some("subscription.refund".into()))).await,
        [refund]
    );
    assert_eq!(
        search(f(|f| f.issue_type = Some("subscriptions".into()))).await,
        [plural]
    );
    assert_eq!(
        search(f(|f| f.caller = Some("+15550100001".into()))).await,
        [plain, refund]
    );
    assert_eq!(
        search(f(|f| f.caller = Some("sipp".into()))).await,
        [dashed]
    );
    assert_eq!(
        search(f(|f| f.outcome = Some("answered".into()))).await,
        [purchase, dashed, refund]
    );
    assert_eq!(
        search(f(|f| f.outcome = Some("abandoned".into()))).await,
        [plural]
    );
    assert_eq!(
        search(f(|f| f.outcome = Some("abandoned_in_ivr".into()))).await,
        [plain]
    );
    assert_eq!(
        search(f(|f| f.queue = Some("billing".into()))).await,
        [dashed, plural]
    );
    assert_eq!(
        search(f(|f| f.agent = Some("ada".into()))).await,
        [purchase, refund]
    );
    assert_eq!(
        search(f(|f| f.disposition = Some("resolved".into()))).await,
        [dashed]
    );
    assert_eq!(search(f(|f| f.flow = Some("main".into()))).await.len(), 5);
    assert_eq!(
        search(f(|f| {
            f.flow = Some("main".into());
            f.flow_version = Some("v1".into());
        }))
        .await
        .len(),
        5
    );
    assert_eq!(
        search(f(|f| f.flow_version = Some("v2".into()))).await,
        Vec::<Uuid>::new()
    );
    assert_eq!(
        search(f(|f| f.flow = Some("other".into()))).await,
        Vec::<Uuid>::new()
    );
    let mut day = CallFilter {
        from: Some(now - Duration::hours(30)),
        to: Some(now - Duration::hours(4)),
        ..CallFilter::default()
    };
    assert_eq!(
        search(day.clone()).await,
        [plural, plain],
        "`to` is exclusive"
    );
    day.to = Some(now - Duration::hours(4) + Duration::microseconds(1));
    assert_eq!(search(day.clone()).await, [dashed, plural, plain]);
    day.from = Some(now - Duration::hours(5));
    assert_eq!(search(day).await, [dashed, plural], "`from` is inclusive");
    // Filters combine.
    assert_eq!(
        search(CallFilter {
            outcome: Some("answered".into()),
            queue: Some("billing".into()),
            ..CallFilter::default()
        })
        .await,
        [dashed]
    );
    assert_eq!(
        search(CallFilter {
            agent: Some("ada".into()),
            issue_type: Some("purchase".into()),
            ..CallFilter::default()
        })
        .await,
        [purchase]
    );

    // The summary row carries what the list shows.
    let page = s
        .search_calls(&CallFilter::default(), 1, None)
        .await
        .unwrap();
    let row = &page.calls[0];
    assert_eq!(row.caller.as_deref(), Some("+8613800138000"));
    assert_eq!(row.issue_type.as_deref(), Some("purchase.refund"));
    assert_eq!(row.agent.as_deref(), Some("ada"));
    assert_eq!(row.queue.as_deref(), Some("purchases"));
    assert!(row.complete && !row.masked && !row.recorded);
    assert!(page.next.is_some());

    // Refused input.
    for bad in [
        s.search_calls(&CallFilter::default(), 0, None).await,
        s.search_calls(&CallFilter::default(), 501, None).await,
        s.search_calls(
            &CallFilter {
                outcome: Some("nope".into()),
                ..CallFilter::default()
            },
            10,
            None,
        )
        .await,
    ] {
        assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    }
}

#[tokio::test]
async fn pages_are_disjoint_ordered_complete_and_stable_while_calls_arrive() {
    let db = db().await;
    let s = &db.store;
    let report = s.seed_calls(2_000, |_, _| {}).await.unwrap();
    assert_eq!((report.existing, report.inserted), (0, 2_000));
    // Two calls at the very same instant: the id breaks the tie.
    let same = Utc::now() - Duration::days(3);
    for _ in 0..2 {
        write(
            s,
            Call {
                at: same,
                ..Call::default()
            },
        )
        .await;
    }
    let everything: Vec<(DateTime<Utc>, Uuid)> =
        sqlx::query_as("SELECT started_at, id FROM calls ORDER BY started_at DESC, id DESC")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(everything.len(), 2_002);

    for (filter, expected_sql) in [
        (CallFilter::default(), "true"),
        (
            CallFilter {
                issue_type: Some("subscription".into()),
                ..CallFilter::default()
            },
            "issue_type = 'subscription' OR issue_type LIKE 'subscription.%'",
        ),
        (
            CallFilter {
                outcome: Some("answered".into()),
                queue: Some("billing".into()),
                ..CallFilter::default()
            },
            "outcome = 'answered' AND queue = 'billing'",
        ),
        (
            CallFilter {
                agent: Some("agent07".into()),
                ..CallFilter::default()
            },
            "agent_id = 'agent07'",
        ),
    ] {
        let expected: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT id FROM calls WHERE {expected_sql} ORDER BY started_at DESC, id DESC"
        ))
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert!(!expected.is_empty(), "{expected_sql}");
        let pages = all_pages(s, &filter, 97).await;
        let got: Vec<Uuid> = pages.iter().flat_map(|p| ids(p)).collect();
        assert_eq!(got, expected, "{expected_sql}: in order and complete");
        assert_eq!(
            got.iter().collect::<BTreeSet<_>>().len(),
            got.len(),
            "disjoint"
        );
        assert!(
            pages[..pages.len() - 1].iter().all(|p| p.len() == 97),
            "only the last page is short"
        );
    }

    // Page 1, then newer calls arrive, then page 2: it carries on exactly
    // where page 1 ended (an OFFSET would repeat page 1's tail).
    let first = s
        .search_calls(&CallFilter::default(), 100, None)
        .await
        .unwrap();
    for _ in 0..5 {
        write(
            s,
            Call {
                at: Utc::now(),
                ..Call::default()
            },
        )
        .await;
    }
    let second = s
        .search_calls(&CallFilter::default(), 100, first.next)
        .await
        .unwrap();
    let expected: Vec<Uuid> = everything[100..200].iter().map(|r| r.1).collect();
    assert_eq!(ids(&second.calls), expected);
    // The cursor survives its text form.
    let text = first.next.unwrap().to_string();
    let again = s
        .search_calls(
            &CallFilter::default(),
            100,
            Some(text.parse::<CallCursor>().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(again, second);
}

#[tokio::test]
async fn masked_callers_show_stars_and_cannot_be_found_by_number() {
    let db = db().await;
    let s = &db.store;
    let id = write(
        s,
        Call {
            caller: "+15550100009",
            ..Call::default()
        },
    )
    .await;
    let by_number = CallFilter {
        caller: Some("+15550100009".into()),
        ..CallFilter::default()
    };
    assert_eq!(
        ids(&s.search_calls(&by_number, 10, None).await.unwrap().calls),
        [id]
    );
    let files = EventFiles {
        event_log: None,
        spool_dir: None,
    };
    erase_caller(s, "+15550100009", &files, false)
        .await
        .unwrap();

    assert!(
        s.search_calls(&by_number, 10, None)
            .await
            .unwrap()
            .calls
            .is_empty()
    );
    let row = &s
        .search_calls(&CallFilter::default(), 10, None)
        .await
        .unwrap()
        .calls[0];
    assert_eq!(row.id, id);
    assert!(row.masked);
    assert_eq!(row.caller.as_deref(), Some("************"));
    assert_eq!(row.caller_name.as_deref(), Some("*******"));
    let d = s.call_detail(id).await.unwrap().unwrap();
    assert!(d.masked_at.is_some());
    assert_eq!(d.call.caller.as_deref(), Some("************"));
    let all = serde_json::to_string(&d.events).unwrap();
    assert!(
        !all.contains("5550100009") && !all.contains("Ann Lee"),
        "{all}"
    );
}

#[tokio::test]
async fn a_calls_detail_has_its_events_in_order_and_its_agent_part() {
    let db = db().await;
    let s = &db.store;
    let id = write(
        s,
        Call {
            issue_type: Some("purchase.refund"),
            queue: Some("purchases"),
            agent: Some("ada"),
            disposition: Some("refund_issued"),
            ..Call::default()
        },
    )
    .await;
    let d = s.call_detail(id).await.unwrap().unwrap();
    assert_eq!(d.call.agent_id.as_deref(), Some("ada"));
    assert_eq!(d.call.disposition.as_deref(), Some("refund_issued"));
    assert_eq!(d.agent_name, None, "no such agent (any more)");
    let kinds: Vec<&str> = d.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "call_started",
            "answered",
            "flow_started",
            "node_entered",
            "issue_type",
            "enqueued",
            "agent_answered",
            "hangup",
            "wrap_up",
            "call_ended"
        ]
    );
    assert_eq!(d.events[3].node.as_deref(), Some("welcome"));
    assert!(
        d.events
            .windows(2)
            .all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at)
    );
    assert!(d.recordings.is_empty());
    assert!(s.call_detail(Uuid::new_v4()).await.unwrap().is_none());
}

#[tokio::test]
async fn the_generator_is_realistic_and_adds_only_what_is_missing() {
    let db = db().await;
    let s = &db.store;
    let mut calls_made = Vec::new();
    let r = s
        .seed_calls(1_500, |done, n| calls_made.push((done, n)))
        .await
        .unwrap();
    assert_eq!((r.existing, r.inserted), (0, 1_500));
    assert!(r.events >= 1_500 * 8, "{r:?}");
    assert_eq!(calls_made.last(), Some(&(1_500, 1_500)));
    let again = s.seed_calls(1_500, |_, _| {}).await.unwrap();
    assert_eq!((again.existing, again.inserted), (1_500, 0));
    let more = s.seed_calls(1_700, |_, _| {}).await.unwrap();
    assert_eq!((more.existing, more.inserted), (1_500, 200));

    // Every row is what the writer would derive from its events.
    let (events, last_seq_ok): (i64, bool) = sqlx::query_as(
        "SELECT count(*), bool_and(c.last_seq + 1 = c.events) FROM call_events e JOIN calls c ON c.id = e.call_id",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(events as u64, r.events + more.events);
    assert!(last_seq_ok);
    let stats: (i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT outcome), count(DISTINCT queue), count(DISTINCT agent_id), \
                count(DISTINCT issue_type), count(DISTINCT (flow, flow_version)), \
                count(DISTINCT disposition), count(*) FILTER (WHERE NOT complete) FROM calls",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(stats.0, 9, "outcomes");
    assert_eq!(stats.1, 4, "queues");
    assert_eq!(stats.2, 24, "agents");
    assert!(stats.3 >= 8, "issue types: {}", stats.3);
    assert_eq!(stats.4, 6, "flow versions");
    assert!(stats.5 >= 5, "dispositions");
    assert_eq!(stats.6, 0, "all finished");
    // A caller has a handful of calls, not one and not hundreds.
    let (max_per_caller, callers): (i64, i64) = sqlx::query_as(
        "SELECT max(n), count(*) FROM (SELECT caller, count(*) n FROM calls GROUP BY caller) x",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert!(
        callers > 200 && max_per_caller > 1 && max_per_caller < 100,
        "{callers} callers, up to {max_per_caller}"
    );
    let (oldest, newest): (DateTime<Utc>, DateTime<Utc>) =
        sqlx::query_as("SELECT min(started_at), max(started_at) FROM calls")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert!(newest <= Utc::now() && oldest > Utc::now() - Duration::days(90));
    assert!(newest - oldest > Duration::days(80), "spread over 90 days");
}
