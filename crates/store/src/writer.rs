//! The call-record writer: batches events from a bounded channel into
//! PostgreSQL, falls back to the spool when the database is unreachable or
//! slow, replays the spool in order when it is back, and at start-up replays
//! a spool left by a crash and closes the calls the crash interrupted.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use hotline_events::{CallEvent, EventData};
use serde_json::Value;
use sha2::Digest;
use tokio::sync::mpsc;

use crate::sealed::{Keyring, RecordingKey};
use crate::spool::{Segment, Spool};
use crate::{Store, StoreError};

/// How the writer behaves.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// This gateway's name: stamped on `call_started` (as `data.node`) and the
    /// scope of crash recovery (only this node's open calls are closed).
    pub node: String,
    /// Most events in one database transaction.
    pub batch_max: usize,
    /// A batch not committed within this goes to the spool.
    pub batch_timeout: Duration,
    /// Events still waiting in the channel beyond which a batch goes to
    /// the spool rather than the database: a database slower than the
    /// calls (but not failing) must not make the calls wait on a full
    /// channel. The spool is replayed as fast as the database takes it.
    pub backlog_max: usize,
    /// How often to retry the database while the spool is non-empty.
    pub retry_every: Duration,
    /// At the end (channel closed), how long to keep trying to drain the spool.
    pub final_drain: Duration,
    /// Calls that started before this and never completed are closed as
    /// interrupted at recovery (default: when the writer was made).
    pub started_at: DateTime<Utc>,
    /// Where the calls' WAVs are (`<dir>/<call id>.wav`): recovery links a
    /// crashed call's recording from here. `None`: recovery does not look.
    pub recordings_dir: Option<std::path::PathBuf>,
    /// Seal (encrypt) each recording and voicemail with the keyring's
    /// current key as its event passes (see [`crate::sealed`]). `None`, or
    /// no current key: files stay plain WAVs.
    pub recording_keys: Option<Arc<Keyring>>,
}

impl WriterConfig {
    /// The defaults for gateway `node`: up to 500 events a batch, 2 s to commit
    /// one before it is spooled, spooling while more than 1,000 events wait,
    /// database retries every second, 5 s to drain the spool at the end, no
    /// recordings directory.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            batch_max: 500,
            batch_timeout: Duration::from_secs(2),
            backlog_max: 1_000,
            retry_every: Duration::from_secs(1),
            final_drain: Duration::from_secs(5),
            started_at: Utc::now(),
            recordings_dir: None,
            recording_keys: None,
        }
    }
}

/// Counters, readable while the writer runs.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Events committed straight from the channel.
    pub written: AtomicU64,
    /// Events that went to the spool.
    pub spooled: AtomicU64,
    /// Events committed from the spool.
    pub replayed: AtomicU64,
    /// Calls closed as interrupted at recovery.
    pub interrupted: AtomicU64,
    /// Spool segments waiting.
    pub spool_segments: AtomicU64,
}

/// The writer. Feed it with [`run`](Self::run), or drive it by hand
/// ([`submit`](Self::submit), [`drain`](Self::drain), [`recover`](Self::recover)).
pub struct Writer {
    store: Store,
    spool: Option<Spool>,
    cfg: WriterConfig,
    recovered: bool,
    recovery_warned: bool,
    /// The migrations are applied (recovery's first step).
    migrated: bool,
    /// Times the writer spooled because the database was behind the calls
    /// since the last log line about it, and when that was.
    behind_episodes: u64,
    behind_logged_at: Option<Instant>,
    /// The segment being replayed and how many of its events are committed.
    replaying: Option<(Segment, usize)>,
    stats: Arc<WriterStats>,
    /// Events committed by this writer, and the count at which the tables
    /// are next analysed (see [`Writer::write`]).
    committed: AtomicU64,
    analyze_at: AtomicU64,
}

impl Writer {
    /// Opens the spool under `spool_dir` (a crash may have left segments in it).
    pub fn new(store: Store, spool_dir: &Path, cfg: WriterConfig) -> Result<Self, StoreError> {
        let spool = Spool::open(spool_dir)?;
        let stats = Arc::new(WriterStats::default());
        stats
            .spool_segments
            .store(spool.segments() as u64, Ordering::Relaxed);
        if !spool.is_empty() {
            tracing::warn!(segments = spool.segments(), dir = %spool_dir.display(), "spool left from an earlier run; it will be replayed");
        }
        Ok(Self {
            store,
            spool: Some(spool),
            cfg,
            recovered: false,
            recovery_warned: false,
            migrated: false,
            behind_episodes: 0,
            behind_logged_at: None,
            replaying: None,
            stats,
            committed: AtomicU64::new(0),
            analyze_at: AtomicU64::new(1_000),
        })
    }

    /// The writer's counters, to share with a reporter.
    pub fn stats(&self) -> Arc<WriterStats> {
        self.stats.clone()
    }

    /// True when no events wait in the spool for the database.
    pub fn spool_is_empty(&self) -> bool {
        self.replaying.is_none() && self.spool.as_ref().is_none_or(Spool::is_empty)
    }

    /// Whether start-up recovery (spool replay, closing interrupted calls) is done.
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// Consumes events until every sender is gone, then tries (for
    /// `final_drain`) to empty the spool. Never drops an event it received:
    /// what is not in the database is in the spool.
    pub async fn run(mut self, mut rx: mpsc::Receiver<CallEvent>) -> Arc<WriterStats> {
        // Recovery and spool replay run back to back while the database
        // answers, and every `retry_every` while it does not.
        let mut next_step = tokio::time::Instant::now();
        let mut buf = Vec::with_capacity(self.cfg.batch_max);
        loop {
            let pending = !self.recovered || !self.spool_is_empty();
            tokio::select! {
                n = rx.recv_many(&mut buf, self.cfg.batch_max) => {
                    if n == 0 {
                        break;
                    }
                    let behind = rx.len() > self.cfg.backlog_max;
                    self.submit_buffered(&mut buf, behind).await;
                }
                _ = tokio::time::sleep_until(next_step), if pending => {
                    // What waits goes behind the spool first (it must follow
                    // it anyway): the calls never wait on a replay.
                    self.spool_waiting(&mut rx, &mut buf).await;
                    let answered = self.step(Duration::ZERO).await;
                    next_step = tokio::time::Instant::now()
                        + if answered { Duration::ZERO } else { self.cfg.retry_every };
                }
            }
        }
        let deadline = Instant::now() + self.cfg.final_drain;
        while (!self.recovered || !self.spool_is_empty()) && Instant::now() < deadline {
            self.step(deadline - Instant::now()).await;
            if !self.recovered || !self.spool_is_empty() {
                tokio::time::sleep(self.cfg.retry_every.min(Duration::from_millis(200))).await;
            }
        }
        if !self.spool_is_empty() {
            tracing::warn!(dir = %self.spool_dir().display(), "stopping with events in the spool; they are replayed at the next start");
        }
        self.stats
    }

    fn spool_dir(&self) -> PathBuf {
        self.spool
            .as_ref()
            .map(|s| s.dir().to_owned())
            .unwrap_or_default()
    }

    /// While the spool holds events, moves what waits in the channel
    /// behind them (a batch at a time, as many as are there now).
    async fn spool_waiting(
        &mut self,
        rx: &mut mpsc::Receiver<CallEvent>,
        buf: &mut Vec<CallEvent>,
    ) {
        if self.spool_is_empty() {
            return;
        }
        while !rx.is_empty() {
            if rx.recv_many(buf, self.cfg.batch_max).await == 0 {
                return;
            }
            self.submit_buffered(buf, true).await;
        }
    }

    /// Stamps and seals the events taken into `buf` and submits them.
    async fn submit_buffered(&mut self, buf: &mut Vec<CallEvent>, behind: bool) {
        let batch = prepare_sealed(
            buf.drain(..),
            &self.cfg.node,
            self.cfg.recording_keys.as_deref(),
        )
        .await;
        self.submit_inner(batch, behind).await;
    }

    /// Recovery first, then the spool, bounded by `budget` (zero: one
    /// batch). False when the database did not answer (try again after
    /// `retry_every`).
    async fn step(&mut self, budget: Duration) -> bool {
        if !self.recovered {
            return match self.recover_step(budget).await {
                Ok(()) => true,
                Err(e) => {
                    if !self.recovery_warned {
                        tracing::warn!(error = %e, "start-up recovery postponed until the database answers");
                        self.recovery_warned = true;
                    }
                    false
                }
            };
        }
        self.drain(budget).await.is_ok()
    }

    /// Start-up recovery a step at a time, so that events keep flowing
    /// meanwhile: migrate, replay the spool a batch per step, then close
    /// the interrupted calls.
    async fn recover_step(&mut self, budget: Duration) -> Result<(), StoreError> {
        if !self.migrated {
            self.store.migrate().await?;
            self.migrated = true;
        }
        if self.drain(budget).await? {
            self.close_interrupted().await?;
        }
        Ok(())
    }

    /// Writes a batch to the database, or to the spool when the spool is not
    /// empty (order) or the database fails or is slower than `batch_timeout`.
    pub async fn submit(&mut self, batch: Vec<CallEvent>) {
        self.submit_inner(batch, false).await
    }

    /// [`submit`](Self::submit); `behind`: more events wait than the
    /// database keeps up with, so the batch goes to the spool.
    async fn submit_inner(&mut self, batch: Vec<CallEvent>, behind: bool) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        if behind && self.spool_is_empty() {
            // Under sustained load this comes and goes several times a
            // second: one line a minute says how often.
            self.behind_episodes += 1;
            let now = Instant::now();
            if self
                .behind_logged_at
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
            {
                tracing::warn!(
                    backlog_max = self.cfg.backlog_max,
                    episodes = self.behind_episodes,
                    "the database is behind the calls; spooling call events until it catches up"
                );
                self.behind_logged_at = Some(now);
                self.behind_episodes = 0;
            }
            crate::metrics::behind();
        } else if self.spool_is_empty() {
            match self.write(&batch).await {
                Ok(()) => {
                    self.stats.written.fetch_add(n, Ordering::Relaxed);
                    return;
                }
                Err(e) => tracing::warn!(error = %e, events = n, "database write failed; spooling"),
            }
        }
        match self.with_spool(move |s| s.append(&batch)).await {
            Ok(()) => {
                self.stats.spooled.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, events = n, "cannot spool events: records lost")
            }
        }
    }

    async fn write(&self, batch: &[CallEvent]) -> Result<(), StoreError> {
        let started = Instant::now();
        let written =
            match tokio::time::timeout(self.cfg.batch_timeout, self.store.write(batch)).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Timeout(self.cfg.batch_timeout)),
            };
        crate::metrics::batch_written(started.elapsed());
        if written.is_err() {
            crate::metrics::db_error("write");
        }
        written?;
        // A new database has no planner statistics until autovacuum's next
        // round, and meanwhile every batch's lookups of a call's events get
        // slower as the tables grow (measured: 2.8 ms → 13 ms a batch over
        // 12k calls). Analyse at 1k, 10k, 100k… committed events.
        let done = self
            .committed
            .fetch_add(batch.len() as u64, Ordering::Relaxed)
            + batch.len() as u64;
        let at = self.analyze_at.load(Ordering::Relaxed);
        if done >= at {
            self.analyze_at
                .store(at.saturating_mul(10), Ordering::Relaxed);
            if let Err(e) = self.store.analyze().await {
                tracing::debug!(error = %e, "ANALYZE failed");
            }
        }
        Ok(())
    }

    /// Replays the spool, oldest segment first, for up to `budget`. Returns
    /// true when the spool is empty.
    pub async fn drain(&mut self, budget: Duration) -> Result<bool, StoreError> {
        let deadline = Instant::now() + budget;
        loop {
            if self.replaying.is_none() {
                match self.with_spool(|s| s.oldest()).await? {
                    None => return Ok(true),
                    Some(seg) => {
                        if seg.skipped > 0 {
                            tracing::warn!(
                                segment = seg.id,
                                lines = seg.skipped,
                                "torn spool lines skipped"
                            );
                        }
                        self.replaying = Some((seg, 0));
                    }
                }
            }
            let (seg, done) = self.replaying.as_ref().expect("set above");
            let end = (*done + self.cfg.batch_max).min(seg.events.len());
            if *done < end {
                let chunk = &seg.events[*done..end];
                if let Err(e) = self.write(chunk).await {
                    tracing::debug!(error = %e, "spool replay: database not back yet");
                    return Err(e);
                }
                self.stats
                    .replayed
                    .fetch_add((end - *done) as u64, Ordering::Relaxed);
            }
            let (seg, done) = self.replaying.as_mut().expect("set above");
            *done = end;
            if *done == seg.events.len() {
                let id = seg.id;
                self.replaying = None;
                self.with_spool(move |s| s.remove(id)).await?;
                tracing::info!(segment = id, "spool segment replayed");
            }
            if Instant::now() >= deadline {
                return Ok(self.spool_is_empty());
            }
        }
    }

    /// Start-up recovery: migrate, replay the whole spool, then close this
    /// node's calls that started before the writer and never completed.
    pub async fn recover(&mut self) -> Result<(), StoreError> {
        self.store.migrate().await?;
        self.migrated = true;
        while !self.drain(Duration::from_secs(5)).await? {}
        self.close_interrupted().await
    }

    /// Recovery's last part, once the spool is replayed: close this node's
    /// calls that started before the writer and never completed.
    async fn close_interrupted(&mut self) -> Result<(), StoreError> {
        let closed = self
            .store
            .close_interrupted_sealed(
                &self.cfg.node,
                self.cfg.started_at,
                self.cfg.recordings_dir.as_deref(),
                self.cfg.recording_keys.as_deref(),
            )
            .await?;
        if !closed.is_empty() {
            tracing::warn!(
                calls = closed.len(),
                "closed calls interrupted by an earlier crash"
            );
        }
        self.stats
            .interrupted
            .fetch_add(closed.len() as u64, Ordering::Relaxed);
        self.recovered = true;
        tracing::info!(
            node = %self.cfg.node,
            interrupted = closed.len(),
            database_was_down = self.recovery_warned,
            "start-up recovery done"
        );
        Ok(())
    }

    /// Runs blocking spool I/O off the async threads.
    async fn with_spool<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Spool) -> R + Send + 'static,
    ) -> R {
        let mut spool = self.spool.take().expect("spool is always put back");
        let (spool, r) = tokio::task::spawn_blocking(move || {
            let r = f(&mut spool);
            (spool, r)
        })
        .await
        .expect("spool task does not panic");
        self.stats
            .spool_segments
            .store(spool.segments() as u64, Ordering::Relaxed);
        self.spool = Some(spool);
        r
    }
}

/// Readies channel events for storing: `at` to microseconds (as PostgreSQL
/// keeps it, so the spool and the database agree exactly), NULs out of
/// `node`, the gateway node on `call_started` and the sha256 on `recording`
/// (read from the file) when absent.
pub async fn prepare(events: impl Iterator<Item = CallEvent>, node: &str) -> Vec<CallEvent> {
    prepare_sealed(events, node, None).await
}

/// As [`prepare`]; with a keyring that has a current key, also seals each
/// `recording` and `voicemail` file (`<file>.enc`, the plain WAV removed)
/// and points the event at the sealed file. The sha256 stays the WAV's
/// (the plaintext's), so it means the same sealed or not.
pub async fn prepare_sealed(
    events: impl Iterator<Item = CallEvent>,
    node: &str,
    keys: Option<&Keyring>,
) -> Vec<CallEvent> {
    let mut batch: Vec<CallEvent> = events
        .map(|mut ev| {
            ev.at = ev.at.trunc_subsecs(6);
            ev
        })
        .collect();
    let key = keys.and_then(Keyring::current).cloned();
    let mut jobs = Vec::new();
    for (i, ev) in batch.iter_mut().enumerate() {
        if let Some(n) = ev.node.as_mut() {
            n.retain(|c| c != '\0');
        }
        match &mut ev.data {
            EventData::CallStarted { node: n @ None, .. } => *n = Some(node.to_owned()),
            // Sealing: every recording and voicemail (it also hashes).
            EventData::Recording { .. } | EventData::Voicemail { .. } if key.is_some() => {
                jobs.push((i, ev.data.clone()))
            }
            // Hashing only.
            EventData::Recording { sha256: None, .. } => jobs.push((i, ev.data.clone())),
            _ => {}
        }
    }
    if !jobs.is_empty() {
        let done = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .map(|(i, mut data)| {
                    match &key {
                        Some(key) => seal_event(&mut data, key),
                        None => {
                            if let EventData::Recording { path, sha256, .. } = &mut data {
                                if let Ok(h) = sha256_file(Path::new(path.as_str())) {
                                    *sha256 = Some(Some(h));
                                }
                            }
                        }
                    }
                    (i, data)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (i, data) in done {
            if let Some(ev) = batch.get_mut(i) {
                ev.data = data;
            }
        }
    }
    batch
}

/// Seals a `recording` or `voicemail` event's file (blocking). A file
/// that cannot be sealed stays as it is, with a warning; a recording's
/// sha256 is then read from it as without a key.
pub(crate) fn seal_event(data: &mut EventData, key: &RecordingKey) {
    let (path, sha256) = match data {
        EventData::Recording { path, sha256, .. } => (path, Some(sha256)),
        EventData::Voicemail { path, .. } => (path, None),
        _ => return,
    };
    let src = PathBuf::from(path.as_str());
    match crate::sealed::is_sealed(&src) {
        Ok(false) => {}
        Ok(true) => return,
        Err(e) => {
            tracing::warn!(path = %src.display(), error = %e, "cannot seal a recording: not readable");
            return;
        }
    }
    let mut dst = src.clone().into_os_string();
    dst.push(".enc");
    let dst = PathBuf::from(dst);
    match crate::sealed::seal_file(&src, &dst, key) {
        Ok((sha, _)) => {
            if let Some(sha256) = sha256 {
                if let Some(Some(before)) = sha256.as_ref() {
                    if *before != sha {
                        tracing::warn!(path = %src.display(), "recording changed between its checksum and its sealing");
                    }
                }
                *sha256 = Some(Some(sha));
            }
            if let Err(e) = std::fs::remove_file(&src) {
                tracing::warn!(path = %src.display(), error = %e, "sealed, but cannot remove the plain WAV");
            }
            *path = dst.to_string_lossy().into_owned();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot seal a recording; it stays a plain WAV");
            if let Some(sha256 @ None) = sha256 {
                *sha256 = sha256_file(&src).ok().map(Some);
            }
        }
    }
}

/// The lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// NULs out of a JSON value's strings and keys (jsonb refuses them).
pub(crate) fn strip_nul(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => s.retain(|c| c != '\0'),
        Value::Array(a) => a.iter_mut().for_each(strip_nul),
        Value::Object(o) => {
            let bad: Vec<String> = o.keys().filter(|k| k.contains('\0')).cloned().collect();
            for k in bad {
                if let Some(val) = o.remove(&k) {
                    o.insert(k.replace('\0', ""), val);
                }
            }
            o.values_mut().for_each(strip_nul);
        }
        _ => {}
    }
}
