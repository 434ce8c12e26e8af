//! The store against a real PostgreSQL: one throwaway cluster per test
//! process, a fresh database per test (see `hotline_store::testing`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use hotline_events::{CallEvent, EventData};
use hotline_store::spool::Spool;
use hotline_store::testing::{TestCluster, fresh_db};
use hotline_store::{Writer, WriterConfig, prepare};
use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The events of a call that walks a menu: (kind, node, data), in order.
fn menu_call_events(rec_path: &str) -> Vec<(&'static str, Option<&'static str>, Value)> {
    vec![
        (
            "call_started",
            None,
            json!({"caller": "1001", "caller_name": "Ann", "callee": "800", "transport": "udp", "source": "127.0.0.1:5061"}),
        ),
        ("answered", None, json!({"rtp": "127.0.0.1:20000"})),
        (
            "flow_started",
            Some("main"),
            json!({"flow": "support", "version": "2", "language": "en"}),
        ),
        ("node_entered", Some("main"), json!({"kind": "menu"})),
        (
            "prompt_started",
            Some("main"),
            json!({"prompt": "en/welcome"}),
        ),
        (
            "digit",
            Some("main"),
            json!({"digit": "2", "transport": "rfc4733", "duration_ms": 160}),
        ),
        (
            "prompt_finished",
            Some("main"),
            json!({"prompt": "en/welcome", "prompts": ["en/welcome"], "interrupted": true}),
        ),
        ("node_entered", Some("billing"), json!({"kind": "menu"})),
        (
            "digit",
            Some("billing"),
            json!({"digit": "1", "transport": "info", "duration_ms": 100}),
        ),
        (
            "issue_type",
            Some("billing"),
            json!({"issue_type": "subscription.refund"}),
        ),
        (
            "outcome",
            Some("billing"),
            json!({"outcome": "self_served"}),
        ),
        (
            "hangup",
            None,
            json!({"ended_by": "caller", "cause": "BYE"}),
        ),
        (
            "recording",
            None,
            json!({"path": rec_path, "duration_ms": 1800, "channels": 2, "sample_rate": 8000, "bytes": 57644}),
        ),
        ("call_ended", None, json!({})),
    ]
}

/// Stamps a list of (kind, node, data) as one call's events, 100 ms apart.
/// The data is JSON as `call_events` holds it, and must type.
fn stamp(
    call_id: Uuid,
    t0: chrono::DateTime<Utc>,
    evs: Vec<(&'static str, Option<&'static str>, Value)>,
) -> Vec<CallEvent> {
    evs.into_iter()
        .enumerate()
        .map(|(i, (kind, node, data))| {
            let data = EventData::from_parts(kind, data);
            assert!(!data.is_other(), "{kind} does not type: {data:?}");
            CallEvent {
                call_id,
                sip_call_id: format!("{call_id}@sipp"),
                seq: i as u32,
                at: t0 + TimeDelta::milliseconds(100 * i as i64),
                node: node.map(str::to_owned),
                data,
            }
        })
        .collect()
}

async fn run_writer(writer: Writer, events: Vec<CallEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(writer.run(rx));
    for ev in events {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    task.await.unwrap();
}

#[tokio::test]
async fn migrations_apply_and_reapply() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    for t in [
        "call_events",
        "calls",
        "customers",
        "orders",
        "recordings",
        "subscriptions",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }
    let customers: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(customers, 0, "migrations carry no demo data");
}

#[tokio::test]
async fn a_menu_call_becomes_one_complete_row() {
    let cluster = TestCluster::shared();
    let db = cluster.fresh_db().await;
    db.store.migrate().await.unwrap();
    let dir = cluster.scratch("menu");
    let wav = dir.join("call.wav");
    std::fs::write(&wav, b"RIFF not really a wav").unwrap();
    let call_id = Uuid::new_v4();
    let t0 = Utc::now();
    let events = stamp(call_id, t0, menu_call_events(wav.to_str().unwrap()));
    let writer = Writer::new(
        db.store.clone(),
        &dir.join("spool"),
        // Patient: on a loaded CI machine a first batch can take over the
        // default 2 s and go to the spool; and this writer's run began
        // before the calls it writes (else its start-up recovery, racing the
        // first batch, would close them as cut off by a crash).
        WriterConfig {
            batch_timeout: Duration::from_secs(60),
            final_drain: Duration::from_secs(60),
            started_at: t0 - TimeDelta::hours(1),
            ..WriterConfig::new("gw-test")
        },
    )
    .unwrap();
    run_writer(writer, events).await;

    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM calls")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let r = db.store.call(call_id).await.unwrap().expect("calls row");
    assert_eq!(r.sip_call_id, format!("{call_id}@sipp"));
    assert_eq!(r.node.as_deref(), Some("gw-test"));
    assert_eq!(r.caller.as_deref(), Some("1001"));
    assert_eq!(r.caller_name.as_deref(), Some("Ann"));
    assert_eq!(r.callee.as_deref(), Some("800"));
    let (s, a, e) = (
        r.started_at.unwrap(),
        r.answered_at.unwrap(),
        r.ended_at.unwrap(),
    );
    assert!(s <= a && a <= e, "{s} {a} {e}");
    assert_eq!(s, t0.trunc_subsecs_micros());
    assert_eq!(r.ended_by.as_deref(), Some("caller"));
    assert_eq!(r.hangup_cause.as_deref(), Some("BYE"));
    assert_eq!(r.flow.as_deref(), Some("support"));
    assert_eq!(r.flow_version.as_deref(), Some("2"));
    assert_eq!(r.language.as_deref(), Some("en"));
    assert_eq!(r.issue_type.as_deref(), Some("subscription.refund"));
    assert_eq!(r.outcome.as_deref(), Some("self_served"));
    assert_eq!(r.talk_seconds, Some(1.0));
    assert!(r.complete);
    assert_eq!((r.events, r.last_seq), (14, Some(13)));

    let evs = db.store.events(call_id).await.unwrap();
    assert_eq!(
        evs.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..14).collect::<Vec<_>>()
    );
    assert!(evs.windows(2).all(|w| w[0].at <= w[1].at));
    let digits: Vec<(&str, &str)> = evs
        .iter()
        .filter_map(|e| match &e.data {
            EventData::Digit {
                digit, transport, ..
            } => Some((digit.as_str(), transport.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(digits, [("2", "rfc4733"), ("1", "info")]);
    assert_eq!(evs[5].node.as_deref(), Some("main"));
    assert_eq!(evs[5].kind(), "digit");
    // Read back, the events are the ones written (the writer added `node`
    // on `call_started` and the WAV's sha256 on `recording`).
    assert!(evs.iter().all(|e| !e.data.is_other()), "{evs:?}");
    assert!(matches!(
        &evs[0].data,
        EventData::CallStarted { node: Some(n), .. } if n == "gw-test"
    ));

    let recs = db.store.recordings(call_id).await.unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(Some(recs[0].id), r.recording_id);
    assert_eq!(recs[0].path, wav.to_str().unwrap());
    assert_eq!(
        (
            recs[0].channels,
            recs[0].sample_rate,
            recs[0].duration_ms,
            recs[0].bytes
        ),
        (2, 8000, 1800, 57644)
    );
    assert_eq!(
        recs[0].sha256.as_deref(),
        Some(hotline_store::sha256_file(&wav).unwrap().as_str())
    );
}

trait Micros {
    fn trunc_subsecs_micros(self) -> Self;
}
impl Micros for chrono::DateTime<Utc> {
    fn trunc_subsecs_micros(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 6)
    }
}

/// Everything about the records, for before/after comparisons.
async fn snapshot(pool: &sqlx::PgPool) -> (Vec<String>, Vec<String>, Vec<String>) {
    let all = |sql: &'static str| async move {
        sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
    };
    (
        all("SELECT row_to_json(c)::text FROM calls c ORDER BY id").await,
        all("SELECT row_to_json(e)::text FROM call_events e ORDER BY call_id, seq").await,
        all("SELECT row_to_json(r)::text FROM recordings r ORDER BY id").await,
    )
}

#[tokio::test]
async fn replaying_the_same_events_changes_nothing() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let call_id = Uuid::new_v4();
    let events = prepare(
        stamp(call_id, Utc::now(), menu_call_events("/nonexistent.wav")).into_iter(),
        "gw",
    )
    .await;
    db.store.write(&events).await.unwrap();
    let before = snapshot(db.store.pool()).await;
    assert_eq!(before.1.len(), 14);
    // Again whole, again in pieces and out of order, again a prefix.
    db.store.write(&events).await.unwrap();
    let mut rev = events.clone();
    rev.reverse();
    for chunk in rev.chunks(3) {
        db.store.write(chunk).await.unwrap();
    }
    db.store.write(&events[..4]).await.unwrap();
    assert_eq!(snapshot(db.store.pool()).await, before);
}

#[tokio::test]
async fn seed_demo_is_idempotent() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let first = db.store.seed_demo().await.unwrap();
    assert!(
        first.customers >= 3 && first.subscriptions >= 3 && first.orders >= 3,
        "{first:?}"
    );
    let again = db.store.seed_demo().await.unwrap();
    assert_eq!(again, Default::default());
    let name: String =
        sqlx::query_scalar("SELECT name FROM customers WHERE $1 = ANY(phone_numbers)")
            .bind("+15550100001")
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(name, "Alice Chen");
}

/// `calls` x events of a run, interleaved the way concurrent calls interleave.
fn many_calls(calls: usize) -> (Vec<Uuid>, Vec<CallEvent>) {
    let ids: Vec<Uuid> = (0..calls).map(|_| Uuid::new_v4()).collect();
    let t0 = Utc::now();
    let per_call: Vec<Vec<CallEvent>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            stamp(
                *id,
                t0 + TimeDelta::milliseconds(i as i64 * 37),
                menu_call_events("/nonexistent.wav"),
            )
        })
        .collect();
    let mut all: Vec<CallEvent> = per_call.into_iter().flatten().collect();
    all.sort_by_key(|e| (e.at, e.call_id));
    (ids, all)
}

async fn assert_complete(pool: &sqlx::PgPool, ids: &[Uuid], per_call: i32) {
    let rows: Vec<(Uuid, i32, Option<i32>, bool, i64)> = sqlx::query_as(
        "SELECT c.id, c.events, c.last_seq, c.complete, \
                (SELECT count(*) FROM call_events e WHERE e.call_id = c.id) \
         FROM calls c ORDER BY c.id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), ids.len(), "one calls row per call");
    let by_id: BTreeMap<Uuid, _> = rows.into_iter().map(|r| (r.0, r)).collect();
    for id in ids {
        let (_, events, last_seq, complete, stored) = by_id[id];
        assert_eq!(
            (events, last_seq, complete, stored),
            (per_call, Some(per_call - 1), true, per_call as i64),
            "call {id}"
        );
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM call_events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        total,
        ids.len() as i64 * per_call as i64,
        "no event missing or doubled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_and_duplicates_nothing() {
    // Its own cluster: this test stops the server.
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let db = cluster.fresh_db().await;
    db.store.migrate().await.unwrap();
    let spool_dir = cluster.scratch("outage").join("spool");
    let mut cfg = WriterConfig::new("gw");
    cfg.batch_timeout = Duration::from_millis(500);
    cfg.retry_every = Duration::from_millis(200);
    cfg.final_drain = Duration::from_secs(20);
    cfg.batch_max = 50;
    let writer = Writer::new(db.store.clone(), &spool_dir, cfg).unwrap();
    let stats = writer.stats();
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(writer.run(rx));

    let (ids, events) = many_calls(60);
    let n = events.len();
    let mut events = events.into_iter();
    let send = |k: usize, events: &mut std::vec::IntoIter<CallEvent>| {
        let chunk: Vec<CallEvent> = events.by_ref().take(k).collect();
        let tx = tx.clone();
        async move {
            for ev in chunk {
                tx.send(ev).await.unwrap();
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        }
    };
    send(n / 3, &mut events).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pg = &cluster.pg;
    std::thread::scope(|s| s.spawn(|| pg.stop().unwrap()).join().unwrap());
    send(n / 3, &mut events).await;
    // Wait until the outage has surely been noticed and something spooled.
    let t = Instant::now();
    while stats.spooled.load(Ordering::Relaxed) == 0 && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stats.spooled.load(Ordering::Relaxed) > 0,
        "events went to the spool"
    );
    assert!(Spool::open(&spool_dir).unwrap().segments() > 0);
    std::thread::scope(|s| s.spawn(|| pg.restart().unwrap()).join().unwrap());
    send(n, &mut events).await;
    drop(tx);
    let stats = task.await.unwrap();
    let (w, s, r) = (
        stats.written.load(Ordering::Relaxed),
        stats.spooled.load(Ordering::Relaxed),
        stats.replayed.load(Ordering::Relaxed),
    );
    eprintln!("outage: {n} events, {w} written directly, {s} spooled, {r} replayed");
    assert_eq!(w + s, n as u64);
    assert!(r >= s, "every spooled event replayed");
    assert!(Spool::open(&spool_dir).unwrap().is_empty(), "spool drained");
    assert_complete(db.store.pool(), &ids, 14).await;
    db.store.close().await;
    std::thread::scope(|s| s.spawn(|| cluster.pg.stop().unwrap()).join().unwrap());
}

/// An 8 kHz 16-bit stereo WAV whose header claims `header_ms` (the recorder
/// rewrites it once a second, so after a SIGKILL it lags) and whose data
/// holds `data_ms`.
fn crashed_wav(path: &std::path::Path, header_ms: u32, data_ms: u32) {
    let len = |ms: u32| ms * 8 * 4;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + len(header_ms)).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    for x in [
        16u32.to_le_bytes(),
        [1, 0, 2, 0],
        8000u32.to_le_bytes(),
        32_000u32.to_le_bytes(),
    ] {
        v.extend_from_slice(&x);
    }
    v.extend_from_slice(&[4, 0, 16, 0]);
    v.extend_from_slice(b"data");
    v.extend_from_slice(&len(header_ms).to_le_bytes());
    v.resize(v.len() + len(data_ms) as usize, 0x11);
    std::fs::write(path, v).unwrap();
}

/// Issue 9 #10: after a SIGKILL the interrupted call's WAV exists and plays;
/// recovery links it (a `recordings` row, its length from the file) and the
/// call lasted as long as its audio, not until its last event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery_links_the_recording_and_times_the_call_by_its_audio() {
    let cluster = TestCluster::shared();
    let db = cluster.fresh_db().await;
    db.store.migrate().await.unwrap();
    let scratch = cluster.scratch("crash-wav");
    let (spool_dir, rec_dir) = (scratch.join("spool"), scratch.join("recordings"));
    std::fs::create_dir_all(&rec_dir).unwrap();
    // Whole milliseconds: PostgreSQL keeps microseconds.
    let t0 =
        chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis() - 120_000).unwrap();
    // Answered at t0 + 100 ms, last event at t0 + 500 ms, then 30 s of talk
    // with no event before the crash.
    let with_wav = Uuid::new_v4();
    let evs = prepare(
        stamp(with_wav, t0, menu_call_events("/x.wav"))
            .into_iter()
            .take(6),
        "gw1",
    )
    .await;
    db.store.write(&evs).await.unwrap();
    crashed_wav(&rec_dir.join(format!("{with_wav}.wav")), 29_000, 30_000);
    // A call the crash caught before any audio was written: no recording.
    let without = Uuid::new_v4();
    let evs = prepare(
        stamp(without, t0, menu_call_events("/x.wav"))
            .into_iter()
            .take(3),
        "gw1",
    )
    .await;
    db.store.write(&evs).await.unwrap();

    let cfg = WriterConfig {
        recordings_dir: Some(rec_dir.clone()),
        ..WriterConfig::new("gw1")
    };
    let mut writer = Writer::new(db.store.clone(), &spool_dir, cfg).unwrap();
    writer.recover().await.unwrap();
    assert_eq!(writer.stats().interrupted.load(Ordering::Relaxed), 2);

    let r = db.store.call(with_wav).await.unwrap().unwrap();
    assert!(r.complete);
    assert_eq!(r.hangup_cause.as_deref(), Some("interrupted"));
    let answered = r.answered_at.unwrap();
    assert_eq!(answered, t0 + TimeDelta::milliseconds(100));
    assert_eq!(r.ended_at, Some(answered + TimeDelta::seconds(30)));
    assert_eq!(r.talk_seconds, Some(30.0));
    let recs = db.store.recordings(with_wav).await.unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec = &recs[0];
    assert_eq!(r.recording_id, Some(rec.id));
    let wav = rec_dir.join(format!("{with_wav}.wav"));
    assert_eq!(
        rec.path,
        std::path::absolute(&wav).unwrap().to_string_lossy()
    );
    assert_eq!(
        (rec.channels, rec.sample_rate, rec.duration_ms),
        (2, 8000, 30_000)
    );
    assert_eq!(rec.bytes, 44 + 30_000 * 32);
    assert_eq!(rec.sha256, Some(hotline_store::sha256_file(&wav).unwrap()));
    // The header now covers all of the audio (it claimed 29 s).
    let head = std::fs::read(&wav).unwrap();
    assert_eq!(head[40..44], (30_000u32 * 32).to_le_bytes());
    let kinds: Vec<String> = db
        .store
        .events(with_wav)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind().to_owned())
        .collect();
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["hangup", "recording", "call_ended"]
    );

    let r = db.store.call(without).await.unwrap().unwrap();
    assert!(r.complete && r.recording_id.is_none());
    assert!(db.store.recordings(without).await.unwrap().is_empty());

    // Recovering again adds nothing (the recording is not linked twice).
    let before = snapshot(db.store.pool()).await;
    let cfg = WriterConfig {
        recordings_dir: Some(rec_dir),
        ..WriterConfig::new("gw1")
    };
    Writer::new(db.store.clone(), &spool_dir, cfg)
        .unwrap()
        .recover()
        .await
        .unwrap();
    assert_eq!(snapshot(db.store.pool()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery_replays_the_spool_and_closes_open_calls() {
    let cluster = TestCluster::shared();
    let db = cluster.fresh_db().await;
    db.store.migrate().await.unwrap();
    let spool_dir = cluster.scratch("crash").join("spool");
    let t0 = Utc::now() - TimeDelta::seconds(60);
    let evs = |id| stamp(id, t0, menu_call_events("/x.wav"));

    // Call A: its first events reached the database before the crash.
    let a = Uuid::new_v4();
    let a_events = prepare(evs(a).into_iter().take(6), "gw1").await;
    db.store.write(&a_events).await.unwrap();
    // Call B: the database was down; its first events are only in the spool,
    // and a torn line ends the segment.
    let b = Uuid::new_v4();
    let b_events = prepare(evs(b).into_iter().take(9), "gw1").await;
    {
        let mut spool = Spool::open(&spool_dir).unwrap();
        spool.append(&b_events[..5]).unwrap();
        spool.append(&b_events[5..]).unwrap();
    }
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(spool_dir.join("000000000001.jsonl"))
        .unwrap()
        .write_all(b"{\"call_id\":")
        .unwrap();
    // Call C: hung up, but call_ended never made it.
    let c = Uuid::new_v4();
    let c_events = prepare(evs(c).into_iter().take(12), "gw1").await;
    db.store.write(&c_events).await.unwrap();
    // Call D: open, but on another gateway: not ours to close.
    let d = Uuid::new_v4();
    db.store
        .write(&prepare(evs(d).into_iter().take(3), "gw2").await)
        .await
        .unwrap();
    // Call E: complete; untouched.
    let e = Uuid::new_v4();
    db.store
        .write(&prepare(evs(e).into_iter(), "gw1").await)
        .await
        .unwrap();
    let e_before = db.store.call(e).await.unwrap();

    // Restart: a new writer on the same spool.
    let mut writer = Writer::new(db.store.clone(), &spool_dir, WriterConfig::new("gw1")).unwrap();
    assert!(!writer.spool_is_empty());
    writer.recover().await.unwrap();
    assert!(writer.spool_is_empty());
    assert_eq!(writer.stats().interrupted.load(Ordering::Relaxed), 3);
    assert!(Spool::open(&spool_dir).unwrap().is_empty());

    for (id, before) in [(a, 6), (b, 9)] {
        let r = db.store.call(id).await.unwrap().unwrap();
        assert_eq!(r.ended_by.as_deref(), Some("gateway"), "{id}");
        assert_eq!(r.hangup_cause.as_deref(), Some("interrupted"));
        assert_eq!(r.outcome.as_deref(), Some("failed"));
        assert!(r.complete);
        assert_eq!((r.events, r.last_seq), (before + 2, Some(before + 1)));
        let evs = db.store.events(id).await.unwrap();
        let tail: Vec<&str> = evs.iter().rev().take(2).map(|e| e.kind()).collect();
        assert_eq!(tail, ["call_ended", "hangup"]);
        assert!(evs.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(r.started_at <= r.answered_at && r.answered_at <= r.ended_at);
    }
    let rc = db.store.call(c).await.unwrap().unwrap();
    assert_eq!(
        (rc.ended_by.as_deref(), rc.hangup_cause.as_deref()),
        (Some("caller"), Some("BYE"))
    );
    assert_eq!((rc.events, rc.complete), (13, true));
    let rd = db.store.call(d).await.unwrap().unwrap();
    assert!(!rd.complete && rd.ended_at.is_none());
    assert_eq!(db.store.call(e).await.unwrap(), e_before);

    // Recovering again finds nothing more to do.
    let before = snapshot(db.store.pool()).await;
    let mut writer = Writer::new(db.store.clone(), &spool_dir, WriterConfig::new("gw1")).unwrap();
    writer.recover().await.unwrap();
    assert_eq!(writer.stats().interrupted.load(Ordering::Relaxed), 0);
    assert_eq!(snapshot(db.store.pool()).await, before);
}

#[tokio::test]
async fn writer_with_the_database_down_from_the_start_spools_then_recovers() {
    // A writer whose database does not exist yet behaves as during an outage.
    let cluster = TestCluster::shared();
    let name = format!("late_{:08x}", fastrand::u32(..));
    let store = hotline_store::Store::connect_lazy(
        cluster.pg.connect_options(&name),
        Duration::from_millis(500),
    );
    let dir = cluster.scratch("late");
    let mut cfg = WriterConfig::new("gw");
    cfg.retry_every = Duration::from_millis(100);
    cfg.final_drain = Duration::from_secs(15);
    let writer = Writer::new(store.clone(), &dir.join("spool"), cfg).unwrap();
    let stats = writer.stats();
    let (ids, events) = many_calls(3);
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(writer.run(rx));
    for ev in events {
        tx.send(ev).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stats.written.load(Ordering::Relaxed), 0);
    hotline_store::create_database(cluster.pg.connect_options("postgres"), &name)
        .await
        .unwrap();
    drop(tx);
    let stats = task.await.unwrap();
    assert_eq!(stats.spooled.load(Ordering::Relaxed), 42);
    assert_complete(store.pool(), &ids, 14).await;
}

/// A database slower than the calls: when more events wait in the channel
/// than `backlog_max`, the writer spools instead of making the senders
/// (the calls) wait for the database, then replays the spool as fast as
/// the database takes it; nothing is lost or doubled.
#[tokio::test]
async fn a_backlog_goes_to_the_spool_and_is_replayed() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let dir = TestCluster::shared().scratch("backlog");
    let mut cfg = WriterConfig::new("gw");
    cfg.backlog_max = 10;
    let writer = Writer::new(db.store.clone(), &dir.join("spool"), cfg).unwrap();
    let (ids, events) = many_calls(50);
    assert_eq!(events.len(), 700);
    // 700 events wait when the writer starts: its first batch (500) leaves
    // 200 behind it, more than backlog_max.
    let (tx, rx) = mpsc::channel(1024);
    for ev in events {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    let stats = writer.run(rx).await;
    // The first 500 are spooled; the last 200 are, or (the spool already
    // replayed when they are taken) go straight to the database.
    let (written, spooled, replayed) = (
        stats.written.load(Ordering::Relaxed),
        stats.spooled.load(Ordering::Relaxed),
        stats.replayed.load(Ordering::Relaxed),
    );
    assert!(spooled >= 500, "{spooled}");
    assert_eq!((spooled, written + replayed), (replayed, 700));
    assert!(Spool::open(&dir.join("spool")).unwrap().is_empty());
    assert_complete(db.store.pool(), &ids, 14).await;

    // Within the backlog: straight to the database.
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let writer = Writer::new(
        db.store.clone(),
        &dir.join("spool2"),
        WriterConfig::new("gw"),
    )
    .unwrap();
    let (ids, events) = many_calls(50);
    let (tx, rx) = mpsc::channel(1024);
    for ev in events {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    let stats = writer.run(rx).await;
    assert_eq!(stats.written.load(Ordering::Relaxed), 700);
    assert_eq!(stats.spooled.load(Ordering::Relaxed), 0);
    assert_complete(db.store.pool(), &ids, 14).await;
}

/// Throughput of the batch insert (run with --ignored --nocapture).
#[tokio::test]
#[ignore]
async fn batch_insert_throughput() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let (_, events) = many_calls(2000);
    let batch: Vec<CallEvent> = prepare(events.into_iter(), "gw").await;
    for size in [50, 500] {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let t = Instant::now();
        for chunk in batch.chunks(size) {
            db.store.write(chunk).await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "batch {size}: {} events in {secs:.2} s = {:.0} events/s",
            batch.len(),
            batch.len() as f64 / secs
        );
    }
}

#[tokio::test]
async fn lookups_find_subscribers_and_orders_by_what_callers_key() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    assert_eq!(
        db.store.subscriber_by_phone("+15550100001").await.unwrap(),
        None
    );
    db.store.seed_demo().await.unwrap();

    let alice = db
        .store
        .subscriber_by_phone("+15550100001")
        .await
        .unwrap()
        .expect("Alice is seeded");
    assert_eq!(alice["name"], "Alice Chen");
    assert_eq!(alice["plan"], "membership.annual");
    assert_eq!(alice["status"], "active");
    let renews = alice["renews_on"].as_str().expect("an active plan renews");
    assert!(
        chrono::NaiveDate::parse_from_str(renews, "%Y-%m-%d").is_ok(),
        "{renews}"
    );
    assert_eq!(
        db.store.subscriber_by_phone("+19999999999").await.unwrap(),
        None
    );

    let printed = db
        .store
        .order_by_number("A-10001")
        .await
        .unwrap()
        .expect("order A-10001");
    let keyed = db
        .store
        .order_by_number("10001")
        .await
        .unwrap()
        .expect("keyed digits find it too");
    assert_eq!(printed, keyed);
    assert_eq!(printed["course"], "Rust for Telephony");
    assert_eq!(printed["status"], "paid");
    assert_eq!(printed["amount"], "199");
    assert_eq!(db.store.order_by_number("99999").await.unwrap(), None);
    assert_eq!(db.store.order_by_number("").await.unwrap(), None);
}
