//! Hot path of the call records: one batch write, `Store::write`, of the
//! events of whole calls (10 events each, as the writer batches them after
//! `prepare`) into a real PostgreSQL — the throwaway cluster of
//! `hotline_store::testing` (unix socket, fsync off), so the numbers are the
//! gateway's and the database's CPU, not the disk's.
//! Every iteration writes calls never seen before, so every insert is real.
//! Run: `cargo bench -p hotline-store` (needs the PostgreSQL binaries the
//! tests use).

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hotline_events::{CallEvent, EndedBy, EventData};
use hotline_store::{prepare, testing::fresh_db};
use uuid::Uuid;

/// One IVR call as the gateway records it: answered, a menu prompt, a key,
/// the outcome, the hangup and the caller's recording (10 events).
fn call_events(call_id: Uuid, t0: DateTime<Utc>) -> Vec<CallEvent> {
    let rec = format!("/var/lib/hotline/recordings/{call_id}.wav");
    let menu = Some("main-menu");
    let evs: [(Option<&str>, EventData); 10] = [
        (
            None,
            EventData::CallStarted {
                caller: "+8613800000000".into(),
                caller_name: Some(Some("Ann".into())),
                callee: "800".into(),
                transport: "udp".into(),
                source: "192.0.2.1:5060".into(),
                node: None,
                direction: None,
                callback_of: None,
                attempt: None,
                queue: None,
                srtp: false,
            },
        ),
        (
            None,
            EventData::Answered {
                rtp: "192.0.2.1:40000".into(),
            },
        ),
        (
            menu,
            EventData::FlowStarted {
                flow: "main".into(),
                version: "3".into(),
                language: "en".into(),
            },
        ),
        (
            menu,
            EventData::NodeEntered {
                node_kind: "menu".into(),
            },
        ),
        (
            menu,
            EventData::PromptStarted {
                prompt: "en/main-menu".into(),
            },
        ),
        (
            menu,
            EventData::Digit {
                digit: "1".into(),
                transport: "rfc4733".into(),
                duration_ms: Some(160),
                masked: None,
            },
        ),
        (
            menu,
            EventData::Outcome {
                outcome: "self_served".into(),
                duration_ms: None,
                path: None,
                ended_by_hangup: None,
                number: None,
                slot: None,
            },
        ),
        (
            None,
            EventData::Hangup {
                ended_by: EndedBy::Caller,
                cause: "BYE".into(),
                recovered_at: None,
            },
        ),
        (
            None,
            EventData::Recording {
                path: rec,
                duration_ms: 15000,
                channels: 2,
                sample_rate: 8000,
                bytes: 480044,
                sha256: Some(Some(
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
                )),
                recovered: None,
            },
        ),
        (None, EventData::CallEnded {}),
    ];
    evs.into_iter()
        .enumerate()
        .map(|(i, (node, data))| CallEvent {
            call_id,
            sip_call_id: format!("{call_id}@192.0.2.1"),
            seq: i as u32,
            at: t0 + TimeDelta::milliseconds(1500 * i as i64),
            node: node.map(str::to_owned),
            data,
        })
        .collect()
}

/// Calls written before measuring.
const PREFILL_CALLS: usize = 2000;

/// `calls` calls never written before, prepared as the writer prepares them.
async fn batch(calls: usize) -> Vec<CallEvent> {
    let t0 = Utc::now();
    let events = (0..calls).flat_map(|_| call_events(Uuid::new_v4(), t0));
    prepare(events, "gw1").await
}

fn bench_write(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let db = rt.block_on(async {
        let db = fresh_db().await;
        db.store.migrate().await.expect("migrate");
        // A database that has seen calls, with planner statistics: on a
        // fresh, never-analysed database every write gets slower as the
        // tables grow (≈ +1 ms per 1000 calls here) until the tables are
        // analysed (by autovacuum's next round, up to a minute later); that
        // is the empty-database start, not the steady state measured here.
        // HOTLINE_BENCH_COLD=1 measures the never-analysed start instead.
        if std::env::var_os("HOTLINE_BENCH_COLD").is_none() {
            for _ in 0..PREFILL_CALLS / 50 {
                db.store.write(&batch(50).await).await.expect("prefill");
            }
            sqlx::query("ANALYZE")
                .execute(db.store.pool())
                .await
                .expect("ANALYZE");
        }
        db
    });
    let store = &db.store;

    let mut g = c.benchmark_group("store: one batch write");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for calls in [10usize, 50] {
        let events = calls * 10;
        g.throughput(Throughput::Elements(events as u64));
        g.bench_function(
            BenchmarkId::new("new calls", format!("{calls} calls, {events} events")),
            |b| {
                b.iter_batched(
                    || rt.block_on(batch(calls)),
                    |evs| {
                        rt.block_on(store.write(black_box(&evs)))
                            .expect("Store::write");
                        evs
                    },
                    BatchSize::PerIteration,
                )
            },
        );
    }
    g.finish();

    // Every call written is one complete row.
    let (calls, incomplete): (i64, i64) = rt.block_on(async {
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL) FROM calls")
            .fetch_one(store.pool())
            .await
            .expect("count calls")
    });
    assert_eq!(
        incomplete, 0,
        "{incomplete} of {calls} calls without an end"
    );
    eprintln!("store bench: {calls} calls written");
    rt.block_on(store.close());
}

criterion_group!(benches, bench_write);
criterion_main!(benches);
