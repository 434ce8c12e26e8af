//! Retention and erasure against a real PostgreSQL (a throwaway cluster):
//! old recordings and voicemail deleted, old callers masked in the
//! database, the event log and the spool, recent calls untouched.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use hotline_events::{CallEvent, EventData};
use hotline_store::privacy::{apply_retention, erase_caller};
use hotline_store::testing::{TestCluster, fresh_db};
use hotline_store::{EventFiles, Keep, RetentionDays, RetentionPolicy, Store, prepare};
use serde_json::{Value, json};
use uuid::Uuid;

const NUMBER: &str = "+8613800138000";

/// A finished call by `caller` that started at `t0`, with a recording
/// (and a voicemail) written in `dir`.
fn call(dir: &Path, t0: DateTime<Utc>, caller: &str, voicemail: bool) -> (Uuid, Vec<CallEvent>) {
    let id = Uuid::new_v4();
    let wav = dir.join(format!("{id}.wav"));
    std::fs::write(&wav, format!("RIFF fake audio of {id}")).unwrap();
    let mut evs = vec![
        (
            "call_started",
            json!({"caller": caller, "caller_name": "Ann Lee", "callee": "800", "transport": "udp", "source": "127.0.0.1:5061"}),
        ),
        ("answered", json!({"rtp": "127.0.0.1:20000"})),
        (
            "lookup",
            json!({"lookup": "crm", "ok": true, "found": true, "result": {"uri": format!("sip:{caller}@carrier"), "phone": caller}}),
        ),
    ];
    if voicemail {
        let vm = dir.join(format!("{id}-1.wav"));
        std::fs::write(&vm, "RIFF voicemail").unwrap();
        evs.push((
            "voicemail",
            json!({"path": vm.to_str().unwrap(), "duration_ms": 900, "bytes": 14}),
        ));
    }
    evs.extend([
        ("hangup", json!({"ended_by": "caller", "cause": "BYE"})),
        (
            "recording",
            json!({"path": wav.to_str().unwrap(), "duration_ms": 1800, "channels": 2, "sample_rate": 8000, "bytes": 20}),
        ),
        ("call_ended", json!({})),
    ]);
    let events = evs
        .into_iter()
        .enumerate()
        .map(|(i, (kind, data))| {
            let data = EventData::from_parts(kind, data);
            assert!(!data.is_other(), "{kind} does not type: {data:?}");
            CallEvent {
                call_id: id,
                sip_call_id: format!("{id}@sipp"),
                seq: i as u32,
                at: t0 + TimeDelta::milliseconds(100 * i as i64),
                node: None,
                data,
            }
        })
        .collect();
    (id, events)
}

fn jsonl(events: &[CallEvent]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}

async fn text_of_events(store: &Store, id: Uuid) -> String {
    let rows: Vec<Value> =
        sqlx::query_scalar("SELECT data FROM call_events WHERE call_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(store.pool())
            .await
            .unwrap();
    serde_json::to_string(&rows).unwrap()
}

async fn caller_of(store: &Store, id: Uuid) -> (Option<String>, Option<String>) {
    sqlx::query_as("SELECT caller, caller_name FROM calls WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn recording_deleted(store: &Store, id: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT deleted_reason FROM recordings WHERE call_id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

fn wav_of(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.wav"))
}

#[tokio::test]
async fn retention_removes_old_recordings_and_masks_old_callers_only() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let dir = TestCluster::shared().scratch("retention");
    let now = Utc::now();
    let (old, old_evs) = call(&dir, now - TimeDelta::days(100), NUMBER, true);
    let (old2, old2_evs) = call(&dir, now - TimeDelta::days(95), "+8613900139000", false);
    let (recent, recent_evs) = call(&dir, now - TimeDelta::days(1), NUMBER, true);
    let (vip, vip_evs) = call(&dir, now - TimeDelta::days(40), "+8613700137000", false);
    let all: Vec<CallEvent> = [&old_evs, &old2_evs, &recent_evs, &vip_evs]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    db.store
        .write(&prepare(all.clone().into_iter(), "gw").await)
        .await
        .unwrap();
    sqlx::query("UPDATE calls SET queue = 'vip' WHERE id = $1")
        .bind(vip)
        .execute(db.store.pool())
        .await
        .unwrap();
    // The event log holds every event; the spool still one of the old call.
    let log = dir.join("call-events.jsonl");
    std::fs::write(&log, jsonl(&all)).unwrap();
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("000000000001.jsonl"), jsonl(&old_evs[..1])).unwrap();
    let files = EventFiles {
        event_log: Some(log.clone()),
        spool_dir: Some(spool.clone()),
    };

    let policy = RetentionPolicy {
        global: RetentionDays {
            recordings: Some(Keep::Days(30)),
            voicemail: Some(Keep::Days(30)),
            mask_callers: Some(Keep::Days(60)),
        },
        queues: [(
            "vip".to_owned(),
            RetentionDays {
                recordings: Some(Keep::Days(365)),
                ..RetentionDays::default()
            },
        )]
        .into(),
    };
    // Batches of one: the loops must go on until every old row is done.
    let report = apply_retention(&db.store, &policy, &files, now, 1)
        .await
        .unwrap();
    assert_eq!(report.recordings_deleted, 2, "{report:?}");
    assert_eq!(report.voicemails_deleted, 1, "{report:?}");
    assert_eq!(report.calls_masked, 2, "{report:?}");
    assert_eq!(report.failures, 0);

    // Old: files gone, rows kept and marked, caller masked everywhere.
    for id in [old, old2] {
        assert!(!wav_of(&dir, id).exists());
        assert_eq!(
            recording_deleted(&db.store, id).await.as_deref(),
            Some("retention")
        );
    }
    assert!(!dir.join(format!("{old}-1.wav")).exists(), "voicemail");
    assert_eq!(
        caller_of(&db.store, old).await,
        (Some("*".repeat(NUMBER.len())), Some("*******".into()))
    );
    let events = text_of_events(&db.store, old).await;
    assert!(
        !events.contains(NUMBER) && !events.contains("Ann Lee"),
        "{events}"
    );
    assert!(events.contains("sip:**************@carrier"), "{events}");
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM calls")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(calls, 4, "call rows are kept");

    // Recent, and the 40-day-old vip call (its queue keeps a year): intact.
    assert!(wav_of(&dir, recent).exists());
    assert!(dir.join(format!("{recent}-1.wav")).exists());
    assert!(wav_of(&dir, vip).exists());
    assert_eq!(recording_deleted(&db.store, recent).await, None);
    assert_eq!(recording_deleted(&db.store, vip).await, None);
    assert_eq!(
        caller_of(&db.store, recent).await.0.as_deref(),
        Some(NUMBER)
    );
    assert!(text_of_events(&db.store, recent).await.contains(NUMBER));

    // The event log: the old calls' lines masked, the others as they were.
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.len(), jsonl(&all).len(), "patched in place");
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id: Uuid = v["call_id"].as_str().unwrap().parse().unwrap();
        if id == old || id == old2 {
            assert!(
                !line.contains(NUMBER) && !line.contains("+8613900139000"),
                "{line}"
            );
        } else if id == recent && v["kind"] == "call_started" {
            assert!(line.contains(NUMBER), "{line}");
        }
    }
    let spooled = std::fs::read_to_string(spool.join("000000000001.jsonl")).unwrap();
    assert!(
        !spooled.contains(NUMBER) && spooled.contains("**************"),
        "{spooled}"
    );

    // Again: nothing left to do.
    let again = apply_retention(&db.store, &policy, &files, now, 500)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn erase_caller_deletes_and_masks_once_and_dry_run_changes_nothing() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let dir = TestCluster::shared().scratch("erase");
    let now = Utc::now();
    let (a, a_evs) = call(&dir, now - TimeDelta::days(3), NUMBER, true);
    let (other, other_evs) = call(&dir, now - TimeDelta::days(2), "+8613900139000", false);
    let all: Vec<CallEvent> = a_evs.iter().chain(&other_evs).cloned().collect();
    db.store
        .write(&prepare(all.clone().into_iter(), "gw").await)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO customers (id, name, phone_numbers) VALUES ($1, 'Ann Lee', ARRAY[$2, '+861000'])",
    )
    .bind(Uuid::new_v4())
    .bind(NUMBER)
    .execute(db.store.pool())
    .await
    .unwrap();
    let log = dir.join("call-events.jsonl");
    std::fs::write(&log, jsonl(&all)).unwrap();
    let files = EventFiles {
        event_log: Some(log.clone()),
        spool_dir: None,
    };

    let dry = erase_caller(&db.store, NUMBER, &files, true).await.unwrap();
    assert_eq!(dry.calls, vec![a]);
    assert_eq!(dry.recordings.len(), 1);
    assert_eq!(dry.voicemails.len(), 1);
    assert_eq!(dry.customers, 1);
    assert_eq!(dry.event_log_lines, 2, "call_started and lookup: {dry:?}");
    assert!(wav_of(&dir, a).exists(), "dry run deletes nothing");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), jsonl(&all));
    assert_eq!(caller_of(&db.store, a).await.0.as_deref(), Some(NUMBER));

    let done = erase_caller(&db.store, NUMBER, &files, false)
        .await
        .unwrap();
    assert_eq!(done.recordings, dry.recordings);
    assert_eq!(done.event_log_lines, dry.event_log_lines);
    assert!(!wav_of(&dir, a).exists());
    assert!(!dir.join(format!("{a}-1.wav")).exists());
    assert_eq!(
        recording_deleted(&db.store, a).await.as_deref(),
        Some("erase")
    );
    assert!(!text_of_events(&db.store, a).await.contains(NUMBER));
    assert_ne!(caller_of(&db.store, a).await.0.as_deref(), Some(NUMBER));
    assert!(!std::fs::read_to_string(&log).unwrap().contains(NUMBER));
    let numbers: Vec<String> = sqlx::query_scalar("SELECT unnest(phone_numbers) FROM customers")
        .fetch_all(db.store.pool())
        .await
        .unwrap();
    assert_eq!(numbers, ["+861000"]);
    // The other caller is untouched.
    assert!(wav_of(&dir, other).exists());
    assert_eq!(
        caller_of(&db.store, other).await.0.as_deref(),
        Some("+8613900139000")
    );

    let again = erase_caller(&db.store, NUMBER, &files, false)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert!(
        erase_caller(&db.store, "12", &files, true).await.is_err(),
        "too short"
    );
}

/// A complete 16-bit stereo 8 kHz WAV of `ms` milliseconds.
fn wav_bytes(ms: u32) -> Vec<u8> {
    let data = ms * 32;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&[1, 0, 2, 0]);
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&32_000u32.to_le_bytes());
    v.extend_from_slice(&[4, 0, 16, 0]);
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    v.extend((0..data).map(|i| (i % 251) as u8));
    v
}

/// A crash mid-call leaves a plain WAV; recovery with a recording key seals
/// it before linking it, and it reads back whole with the key only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery_seals_the_plain_wav_it_links() {
    use hotline_store::{Keyring, RecordingKey, SealError, Writer, WriterConfig, open_recording};
    use std::io::Read;
    use std::sync::Arc;

    let cluster = TestCluster::shared();
    let db = cluster.fresh_db().await;
    db.store.migrate().await.unwrap();
    let scratch = cluster.scratch("crash-sealed");
    let rec_dir = scratch.join("recordings");
    std::fs::create_dir_all(&rec_dir).unwrap();
    let t0 = Utc::now() - TimeDelta::minutes(2);
    let (id, evs) = call(&scratch, t0, NUMBER, false);
    // Only the first two events reached the database before the crash.
    db.store
        .write(&prepare(evs.into_iter().take(2), "gw1").await)
        .await
        .unwrap();
    let plain = rec_dir.join(format!("{id}.wav"));
    let audio = wav_bytes(3_000);
    std::fs::write(&plain, &audio).unwrap();

    let key = RecordingKey::from_bytes([7; 32]);
    let cfg = WriterConfig {
        recordings_dir: Some(rec_dir.clone()),
        recording_keys: Some(Arc::new(Keyring::single(key.clone()))),
        ..WriterConfig::new("gw1")
    };
    let mut writer = Writer::new(db.store.clone(), &scratch.join("spool"), cfg).unwrap();
    writer.recover().await.unwrap();

    let rec = db.store.call_recording(id).await.unwrap().expect("linked");
    assert!(rec.path.ends_with(".wav.enc"), "{}", rec.path);
    assert!(!plain.exists(), "the plain WAV is gone");
    assert!(hotline_store::sealed::is_sealed(std::path::Path::new(&rec.path)).unwrap());
    let mut r = open_recording(&rec, Some(&Keyring::single(key))).unwrap();
    assert!(r.checked() && r.sealed());
    let mut back = Vec::new();
    r.read_to_end(&mut back).unwrap();
    assert_eq!(back, audio);
    assert!(matches!(
        open_recording(&rec, None),
        Err(hotline_store::RecordingError::Sealed(SealError::NoKeys(_)))
    ));
}
