//! The database side: migrations, the idempotent batch write, recovery, demo data.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hotline_events::{CallEvent, EndedBy, EventData};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use uuid::Uuid;

use crate::StoreError;
use crate::record::{CallRecord, EventRow, RecordingRow, derive_call, recording_of};

/// The schema migrations in `migrations/`, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// A handle on the call-record database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

/// What [`Store::seed_demo`] inserted (rows that already existed are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedCounts {
    /// Demo customers inserted.
    pub customers: u64,
    /// Demo subscriptions inserted.
    pub subscriptions: u64,
    /// Demo orders inserted.
    pub orders: u64,
    /// Of [`Store::DEMO_QUEUES`].
    pub queues: u64,
    /// The demo agent ([`Store::DEMO_AGENT`]): 0 or 1.
    pub agents: u64,
    /// The demo agent's memberships added.
    pub members: u64,
}

impl Store {
    /// A pool that connects on first use, so the writer can start (and spool)
    /// while the server is still down. Each connection attempt gives up after
    /// `acquire_timeout`.
    pub fn connect_lazy(options: PgConnectOptions, acquire_timeout: Duration) -> Self {
        // sqlx prepares its statements; after five runs PostgreSQL may settle
        // on a generic plan chosen while the tables were empty, and a gateway
        // started on a new database then scans call_events on every batch
        // until autovacuum analyses it (measured: 2.8 ms → 13 ms a batch over
        // 12k calls, commits of ~1 s under load). Plan with the real values.
        let options = options.options([("plan_cache_mode", "force_custom_plan")]);
        // Four for the work, and one held by each LISTEN (flow publishes,
        // admin changes, the desk's mail between nodes): a listener keeps
        // its pool connection for as long as it listens.
        let pool = PgPoolOptions::new()
            .max_connections(7)
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(true)
            .connect_lazy_with(options);
        Self { pool }
    }

    /// Connects now (fails if the server is not there).
    pub async fn connect(options: PgConnectOptions) -> Result<Self, StoreError> {
        let store = Self::connect_lazy(options, Duration::from_secs(5));
        store.pool.acquire().await?;
        Ok(store)
    }

    /// Parses a `postgres://` URL.
    pub fn options_from_url(url: &str) -> Result<PgConnectOptions, StoreError> {
        Ok(url.parse::<PgConnectOptions>()?)
    }

    /// The connection pool, for queries the store has no method for.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Refreshes the planner statistics of the call-record tables.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE calls, call_events, recordings")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Applies the pending migrations (idempotent; serialised by sqlx's lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Writes a batch of events in one transaction, idempotently: events
    /// already stored are skipped (unique `(call_id, seq)`), and the `calls`
    /// row of every call in the batch is re-derived from all its stored events.
    /// Events are stored as they are (`at` truncated to microseconds and
    /// `node` cleaned by [`crate::prepare`]), but for NULs in `kind` and
    /// `data`, which PostgreSQL's text and jsonb refuse: they are left out.
    pub async fn write(&self, batch: &[CallEvent]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut calls: BTreeMap<Uuid, &str> = BTreeMap::new();
        for ev in batch {
            calls.entry(ev.call_id).or_insert(&ev.sip_call_id);
        }
        let ids: Vec<Uuid> = calls.keys().copied().collect();
        let sip_ids: Vec<String> = calls.values().map(|s| s.to_string()).collect();

        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO calls (id, sip_call_id) SELECT * FROM UNNEST($1::uuid[], $2::text[]) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&ids)
        .bind(&sip_ids)
        .execute(&mut *tx)
        .await?;

        let mut call_id = Vec::with_capacity(batch.len());
        let mut seq = Vec::with_capacity(batch.len());
        let mut at = Vec::with_capacity(batch.len());
        let mut kind = Vec::with_capacity(batch.len());
        let mut node = Vec::with_capacity(batch.len());
        let mut data = Vec::with_capacity(batch.len());
        for ev in batch {
            let mut json = ev.data.data_json().map_err(StoreError::Encode)?;
            crate::writer::strip_nul(&mut json);
            call_id.push(ev.call_id);
            seq.push(ev.seq as i32);
            at.push(ev.at);
            kind.push(ev.kind().replace('\0', ""));
            node.push(ev.node.as_deref());
            data.push(json);
        }
        sqlx::query(
            "INSERT INTO call_events (call_id, seq, at, kind, node, data) \
             SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::timestamptz[], $4::text[], $5::text[], $6::jsonb[]) \
             ON CONFLICT (call_id, seq) DO NOTHING",
        )
        .bind(&call_id)
        .bind(&seq)
        .bind(&at)
        .bind(&kind)
        .bind(&node)
        .bind(&data)
        .execute(&mut *tx)
        .await?;

        let rows: Vec<(Uuid, EventRow)> = sqlx::query_as::<_, EventWithCall>(
            "SELECT call_id, seq, at, kind, node, data FROM call_events \
             WHERE call_id = ANY($1) ORDER BY call_id, seq",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.call_id, r.event))
        .collect();
        let mut by_call: BTreeMap<Uuid, Vec<EventRow>> = BTreeMap::new();
        for (id, row) in rows {
            if row.data.is_other() && hotline_events::KINDS.contains(&row.kind()) {
                tracing::warn!(call = %id, seq = row.seq, kind = row.kind(), "stored event does not have its kind's shape; ignored by the call record");
            }
            by_call.entry(id).or_default().push(row);
        }

        let mut recordings = Vec::new();
        let mut booked = Vec::new();
        let mut records = Vec::with_capacity(by_call.len());
        for (id, events) in &by_call {
            recordings.extend(events.iter().filter_map(|e| recording_of(*id, e)));
            booked.extend(
                events
                    .iter()
                    .filter_map(|e| crate::callbacks::booked_of(*id, calls[id], e)),
            );
            records.push(derive_call(*id, calls[id], events));
        }
        insert_recordings(&mut tx, &recordings).await?;
        crate::callbacks::insert_booked(&mut tx, &booked).await?;
        update_calls(&mut tx, &records).await?;
        tx.commit().await?;
        // A call counts once its `call_ended` is committed (one batch holds it).
        let ended: Vec<Uuid> = batch
            .iter()
            .filter(|e| matches!(e.data, EventData::CallEnded {}))
            .map(|e| e.call_id)
            .collect();
        for r in records.iter().filter(|r| ended.contains(&r.id)) {
            crate::metrics::call_completed(r.outcome.as_deref());
        }
        Ok(())
    }

    /// Closes the calls of `node` that started before `before` and never
    /// completed (the process handling them died): appends `hangup`
    /// (ended_by `gateway`, cause `interrupted`) and `call_ended` with the
    /// next sequence numbers. Returns the calls closed.
    ///
    /// With `recordings_dir`, a call whose WAV (`<dir>/<call id>.wav`) the
    /// crash left behind also gets its `recording` event (format and length
    /// read from the file, path absolute), and the call is taken to have
    /// lasted as long as its audio: it ends at `answered_at` + the WAV's
    /// duration when that is later than its last event (a call that talked
    /// for a minute after its last event ended a minute later).
    pub async fn close_interrupted(
        &self,
        node: &str,
        before: DateTime<Utc>,
        recordings_dir: Option<&Path>,
    ) -> Result<Vec<Uuid>, StoreError> {
        self.close_interrupted_sealed(node, before, recordings_dir, None)
            .await
    }

    /// As [`Self::close_interrupted`]; with a keyring that has a current
    /// key, a WAV the crash left behind is sealed (as the writer seals
    /// every recording) before its `recording` event is written.
    pub async fn close_interrupted_sealed(
        &self,
        node: &str,
        before: DateTime<Utc>,
        recordings_dir: Option<&Path>,
        keys: Option<&crate::sealed::Keyring>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let open: Vec<OpenCall> = sqlx::query_as(
            "SELECT c.id, c.sip_call_id, c.ended_at, \
                        coalesce(max(e.seq), -1), max(e.at), c.answered_at, \
                        coalesce(bool_or(e.kind = 'recording'), false) \
                 FROM calls c LEFT JOIN call_events e ON e.call_id = c.id \
                 WHERE NOT c.complete AND c.node = $1 AND c.started_at < $2 \
                 GROUP BY c.id ORDER BY c.started_at",
        )
        .bind(node)
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        let now = Utc::now();
        let mut batch = Vec::new();
        for (id, sip_call_id, ended_at, last_seq, last_at, answered_at, has_recording) in &open {
            let wav = recordings_dir
                .filter(|_| !has_recording)
                .map(|d| d.join(format!("{id}.wav")))
                .and_then(|p| Some((crate::wav_probe::probe(&p)?, p)));
            let mut at = last_at.unwrap_or(now);
            if let (Some((facts, _)), Some(answered)) = (&wav, answered_at) {
                let by_audio =
                    *answered + chrono::Duration::milliseconds(facts.duration_ms() as i64);
                at = at.max(by_audio.min(now));
            }
            let mut seq = (last_seq + 1) as u32;
            let mut push = |data| {
                batch.push(CallEvent {
                    call_id: *id,
                    sip_call_id: sip_call_id.clone(),
                    seq,
                    at,
                    node: None,
                    data,
                });
                seq += 1;
            };
            if ended_at.is_none() {
                push(EventData::Hangup {
                    ended_by: EndedBy::Gateway,
                    cause: "interrupted".into(),
                    recovered_at: Some(now),
                });
            }
            if let Some((facts, path)) = &wav {
                if let Err(e) = crate::wav_probe::repair_header(path, facts) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot repair a crashed WAV's header");
                }
                let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                push(EventData::Recording {
                    path: path.to_string_lossy().into_owned(),
                    duration_ms: facts.duration_ms(),
                    channels: facts.channels,
                    sample_rate: facts.sample_rate,
                    bytes: facts.bytes,
                    sha256: Some(crate::writer::sha256_file(&path).ok()),
                    recovered: Some(true),
                });
            }
            push(EventData::CallEnded {});
        }
        if let Some(key) = keys.and_then(crate::sealed::Keyring::current) {
            let key = key.clone();
            batch = tokio::task::spawn_blocking(move || {
                for ev in &mut batch {
                    crate::writer::seal_event(&mut ev.data, &key);
                }
                batch
            })
            .await
            .map_err(|e| StoreError::Invalid(format!("sealing recordings: {e}")))?;
        }
        self.write(&batch).await?;
        Ok(open.into_iter().map(|o| o.0).collect())
    }

    /// The `calls` row of one call.
    pub async fn call(&self, id: Uuid) -> Result<Option<CallRecord>, StoreError> {
        Ok(sqlx::query_as::<_, CallRecord>(
            "SELECT id, sip_call_id, node, caller, caller_name, callee, transport, source, \
                    started_at, answered_at, ended_at, ended_by, hangup_cause, flow, flow_version, \
                    language, issue_type, outcome, queue, queued_at, agent_id, agent_answered_at, \
                    talk_seconds, wrap_up_seconds, disposition, notes, recording_id, events, \
                    last_seq, complete, survey_offered_at, csat_score, survey_comment_path \
             FROM calls WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The events of one call, in order.
    pub async fn events(&self, call_id: Uuid) -> Result<Vec<EventRow>, StoreError> {
        Ok(sqlx::query_as::<_, EventRow>(
            "SELECT seq, at, kind, node, data FROM call_events WHERE call_id = $1 ORDER BY seq",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The recordings of one call.
    pub async fn recordings(&self, call_id: Uuid) -> Result<Vec<RecordingRow>, StoreError> {
        Ok(sqlx::query_as::<_, RecordingRow>(
            "SELECT id, call_id, path, channels, sample_rate, duration_ms, bytes, sha256 \
             FROM recordings WHERE call_id = $1 ORDER BY id",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The queues `ivr-flows/main.yaml` enqueues to, which `seed_demo` creates.
    pub const DEMO_QUEUES: &'static [&'static str] = crate::seed::DEMO_QUEUES;
    /// The demo agent's (id, display name, password): for demos only.
    pub const DEMO_AGENT: (&'static str, &'static str, &'static str) = crate::seed::DEMO_AGENT;

    /// Inserts the demo customers, subscriptions and orders, the queues of
    /// the shipped flow ([`Self::DEMO_QUEUES`]) and a demo agent
    /// ([`Self::DEMO_AGENT`]) who answers all of them. Fixed ids: running it
    /// again inserts nothing and changes nothing that exists (a queue's
    /// settings, the agent's password).
    pub async fn seed_demo(&self) -> Result<SeedCounts, StoreError> {
        crate::seed::seed_demo(&self.pool).await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// id, sip_call_id, ended_at, last seq (-1: none), last event time,
/// answered_at, whether a `recording` event exists.
type OpenCall = (
    Uuid,
    String,
    Option<DateTime<Utc>>,
    i32,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    bool,
);

#[derive(sqlx::FromRow)]
struct EventWithCall {
    call_id: Uuid,
    #[sqlx(flatten)]
    event: EventRow,
}

async fn insert_recordings(
    tx: &mut sqlx::PgConnection,
    recs: &[RecordingRow],
) -> Result<(), StoreError> {
    if recs.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&RecordingRow) -> i64| recs.iter().map(f).collect::<Vec<i64>>();
    sqlx::query(
        "INSERT INTO recordings (id, call_id, path, channels, sample_rate, duration_ms, bytes, sha256) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::text[]) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(recs.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.call_id).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>())
    .bind(col(|r| r.channels as i64))
    .bind(col(|r| r.sample_rate as i64))
    .bind(col(|r| r.duration_ms))
    .bind(col(|r| r.bytes))
    .bind(recs.iter().map(|r| r.sha256.as_deref()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(crate) async fn update_calls(
    tx: &mut sqlx::PgConnection,
    recs: &[CallRecord],
) -> Result<(), StoreError> {
    if recs.is_empty() {
        return Ok(());
    }
    type S = Option<String>;
    type T = Option<DateTime<Utc>>;
    let s = |f: fn(&CallRecord) -> &S| recs.iter().map(|r| f(r).as_deref()).collect::<Vec<_>>();
    let t = |f: fn(&CallRecord) -> T| recs.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "UPDATE calls c SET node = u.node, caller = u.caller, caller_name = u.caller_name, \
            callee = u.callee, transport = u.transport, source = u.source, \
            started_at = u.started_at, answered_at = u.answered_at, ended_at = u.ended_at, \
            ended_by = u.ended_by, hangup_cause = u.hangup_cause, flow = u.flow, \
            flow_version = u.flow_version, language = u.language, issue_type = u.issue_type, \
            outcome = u.outcome, queue = u.queue, queued_at = u.queued_at, agent_id = u.agent_id, \
            agent_answered_at = u.agent_answered_at, talk_seconds = u.talk_seconds, \
            recording_id = u.recording_id, events = u.events, last_seq = u.last_seq, \
            complete = u.complete, wrap_up_seconds = u.wrap_up_seconds, \
            disposition = u.disposition, notes = u.notes, \
            survey_offered_at = u.survey_offered_at, csat_score = u.csat_score, \
            survey_comment_path = u.survey_comment_path \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], \
                     $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], \
                     $17::text[], $18::text[], $19::timestamptz[], $20::text[], $21::timestamptz[], \
                     $22::float8[], $23::uuid[], $24::int4[], $25::int4[], $26::bool[], \
                     $27::float8[], $28::text[], $29::text[], $30::timestamptz[], \
                     $31::int2[], $32::text[]) \
           AS u(id, node, caller, caller_name, callee, transport, source, started_at, answered_at, \
                ended_at, ended_by, hangup_cause, flow, flow_version, language, issue_type, \
                outcome, queue, queued_at, agent_id, agent_answered_at, talk_seconds, \
                recording_id, events, last_seq, complete, wrap_up_seconds, disposition, notes, \
                survey_offered_at, csat_score, survey_comment_path) \
         WHERE c.id = u.id",
    )
    .bind(recs.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(s(|r| &r.node))
    .bind(s(|r| &r.caller))
    .bind(s(|r| &r.caller_name))
    .bind(s(|r| &r.callee))
    .bind(s(|r| &r.transport))
    .bind(s(|r| &r.source))
    .bind(t(|r| r.started_at))
    .bind(t(|r| r.answered_at))
    .bind(t(|r| r.ended_at))
    .bind(s(|r| &r.ended_by))
    .bind(s(|r| &r.hangup_cause))
    .bind(s(|r| &r.flow))
    .bind(s(|r| &r.flow_version))
    .bind(s(|r| &r.language))
    .bind(s(|r| &r.issue_type))
    .bind(s(|r| &r.outcome))
    .bind(s(|r| &r.queue))
    .bind(t(|r| r.queued_at))
    .bind(s(|r| &r.agent_id))
    .bind(t(|r| r.agent_answered_at))
    .bind(recs.iter().map(|r| r.talk_seconds).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.recording_id).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.events).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.last_seq).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.complete).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.wrap_up_seconds).collect::<Vec<_>>())
    .bind(s(|r| &r.disposition))
    .bind(s(|r| &r.notes))
    .bind(t(|r| r.survey_offered_at))
    .bind(recs.iter().map(|r| r.csat_score).collect::<Vec<_>>())
    .bind(s(|r| &r.survey_comment_path))
    .execute(&mut *tx)
    .await?;
    Ok(())
}
