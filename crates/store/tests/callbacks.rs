//! Booked callbacks (issue 9 #1) in a real PostgreSQL: a `callback_requested`
//! event books exactly one row (replays change nothing, a database outage
//! only delays it: the spool carries the event), a SIP user name is never
//! booked as a number, and the desk's and the admins' moves.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hotline_events::{CallEvent, EventData};
use hotline_store::testing::TestCluster;
use hotline_store::{Writer, WriterConfig, prepare};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

fn call(call_id: Uuid, t0: DateTime<Utc>, number: &str, due: DateTime<Utc>) -> Vec<CallEvent> {
    let evs = [
        (
            "call_started",
            json!({"caller": number, "caller_name": null, "callee": "800", "transport": "udp",
                   "source": "127.0.0.1:5060"}),
        ),
        ("answered", json!({"rtp": "127.0.0.1:20000"})),
        (
            "callback_requested",
            json!({"number": number, "slot": "tomorrow-morning", "queue": "support",
                   "due_at": due.to_rfc3339(), "source": "ivr"}),
        ),
        ("outcome", json!({"outcome": "callback"})),
        (
            "hangup",
            json!({"ended_by": "gateway", "cause": "flow_ended"}),
        ),
        ("call_ended", json!({})),
    ];
    evs.into_iter()
        .enumerate()
        .map(|(i, (kind, data))| {
            let data = EventData::from_parts(kind, data);
            assert!(!data.is_other(), "{kind} does not type: {data:?}");
            CallEvent {
                call_id,
                sip_call_id: format!("{call_id}@sipp"),
                seq: i as u32,
                at: t0 + TimeDelta::milliseconds(100 * i as i64),
                node: None,
                data,
            }
        })
        .collect()
}

/// A writer for calls from `t0` on. Patient: on a loaded CI machine a
/// first batch can take over the default 2 s and go to the spool; and its
/// run began before the calls it writes (else its start-up recovery,
/// racing the first batch, would close them as cut off by a crash).
fn patient_writer(
    store: &hotline_store::Store,
    dir: &std::path::Path,
    t0: DateTime<Utc>,
) -> Writer {
    Writer::new(
        store.clone(),
        &dir.join("spool"),
        WriterConfig {
            batch_timeout: Duration::from_secs(60),
            final_drain: Duration::from_secs(60),
            started_at: t0 - TimeDelta::hours(1),
            ..WriterConfig::new("gw")
        },
    )
    .unwrap()
}

async fn write_all(writer: Writer, events: Vec<CallEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(writer.run(rx));
    for ev in events {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_is_one_durable_row_and_moves_through_its_states() {
    let cluster = TestCluster::shared();
    let db = cluster.fresh_db().await;
    db.store.migrate().await.unwrap();
    let dir = cluster.scratch("callbacks");
    let t0 = DateTime::from_timestamp_millis(Utc::now().timestamp_millis() - 60_000).unwrap();
    let due = t0 + TimeDelta::hours(13);
    let (booked, named) = (Uuid::new_v4(), Uuid::new_v4());
    let mut events = call(booked, t0, "+8613800000000", due);
    // A caller ID that is a SIP user name: no callback row, ever.
    events.extend(call(named, t0, "caller", due));
    let w = patient_writer(&db.store, &dir, t0);
    write_all(w, events.clone()).await;
    // A replay of the same events (from a spool, say) books nothing new.
    db.store
        .write(&prepare(events.into_iter(), "gw").await)
        .await
        .unwrap();

    let all = db.store.callbacks(&[], 100).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let cb = &all[0];
    assert_eq!(cb.id, hotline_store::callbacks::callback_id(booked, 2));
    assert_eq!((cb.call_id, cb.number.as_str()), (booked, "+8613800000000"));
    assert_eq!(
        (cb.source.as_str(), cb.state.as_str()),
        ("ivr", "scheduled")
    );
    assert_eq!(
        (cb.queue.as_deref(), cb.slot.as_str()),
        (Some("support"), "tomorrow-morning")
    );
    assert_eq!((cb.due_at, cb.attempts), (due, 0));
    let row = db.store.call(booked).await.unwrap().unwrap();
    assert_eq!(row.outcome.as_deref(), Some("callback"));

    // Not due before its slot; due after.
    assert!(
        db.store
            .due_callbacks(due - TimeDelta::seconds(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.store.due_callbacks(due).await.unwrap().len(), 1);

    // The desk moves it along; a finished callback stays finished.
    assert!(
        db.store
            .update_callback(cb.id, "queued", 0, None, None)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .update_callback(cb.id, "dialing", 1, Some("a1"), None)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .update_callback(cb.id, "done", 1, None, Some("answered"))
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .update_callback(cb.id, "queued", 2, None, None)
            .await
            .unwrap()
    );
    assert!(!db.store.cancel_callback(cb.id).await.unwrap());
    let cb = db.store.callback(cb.id).await.unwrap().unwrap();
    assert_eq!(
        (
            cb.state.as_str(),
            cb.attempts,
            cb.agent_id.as_deref(),
            cb.last_result.as_deref()
        ),
        ("done", 1, Some("a1"), Some("answered"))
    );
    assert!(db.store.due_callbacks(due).await.unwrap().is_empty());
    assert_eq!(
        db.store
            .callbacks(&["done".into()], 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        db.store
            .callbacks(&["scheduled".into()], 10)
            .await
            .unwrap()
            .is_empty()
    );

    // An admin cancels an open one.
    let other = Uuid::new_v4();
    db.store
        .write(&prepare(call(other, t0, "13900000000", due).into_iter(), "gw").await)
        .await
        .unwrap();
    let id = hotline_store::callbacks::callback_id(other, 2);
    assert!(db.store.cancel_callback(id).await.unwrap());
    assert_eq!(
        db.store.callback(id).await.unwrap().unwrap().state,
        "cancelled"
    );
    assert!(db.store.due_callbacks(due).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_overflow_entry_is_read_back_with_when_its_caller_queued() {
    // What the callback book hands a new ACD leader (or a restarted node)
    // so the entry goes back to the caller's place.
    let cluster = TestCluster::shared();
    let db = cluster.fresh_db().await;
    db.store.migrate().await.unwrap();
    let dir = cluster.scratch("callbacks-overflow");
    let t0 = DateTime::from_timestamp_millis(Utc::now().timestamp_millis() - 60_000).unwrap();
    let id = Uuid::new_v4();
    let evs = [
        (
            "call_started",
            json!({"caller": "+8613800000009", "caller_name": null, "callee": "800",
                   "transport": "udp", "source": "127.0.0.1:5060"}),
        ),
        ("answered", json!({"rtp": "127.0.0.1:20000"})),
        ("enqueued", json!({"queue": "support", "priority": 0})),
        (
            "callback_requested",
            json!({"number": "+8613800000009", "slot": "asap", "queue": "support",
                   "source": "queue_overflow"}),
        ),
        ("call_ended", json!({})),
    ];
    let events: Vec<CallEvent> = evs
        .into_iter()
        .enumerate()
        .map(|(i, (kind, data))| CallEvent {
            call_id: id,
            sip_call_id: format!("{id}@sipp"),
            seq: i as u32,
            at: t0 + TimeDelta::seconds(10 * i as i64),
            node: None,
            data: EventData::from_parts(kind, data),
        })
        .collect();
    let w = patient_writer(&db.store, &dir, t0);
    write_all(w, events).await;
    let due = db.store.due_callbacks(Utc::now()).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(
        (due[0].source.as_str(), due[0].state.as_str()),
        ("queue_overflow", "queued")
    );
    let sources = db.store.call_sources(&[id]).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].source.as_deref(), Some("127.0.0.1:5060"));
    assert_eq!(sources[0].queued_at, Some(t0 + TimeDelta::seconds(20)));
}
