//! Personal data in the records: masking a call's caller everywhere,
//! the retention pass, erasing one customer, and the audit log.
//!
//! A number (or name) is masked with `*` of the same length (see
//! [`crate::mask`]) in `call_events.data`, then the `calls` row is derived
//! again from the masked events, so the writer — which re-derives a row
//! whenever an event of its call arrives — can never bring the number
//! back. The same masking patches the JSON-lines event log and the spool
//! in place. Recording and voicemail files are deleted; their `recordings`
//! rows are kept, marked `deleted_at` / `deleted_reason`, and deleted
//! voicemail files are listed in `deleted_files`.
//!
//! Everything here works in batches of a few hundred calls, each its own
//! short transaction, so a first run over a million old calls never holds
//! locks the call-record writer waits on for long.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hotline_events::EventData;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Digest;
use uuid::Uuid;

use crate::mask::{MaskRule, mask_json, mask_jsonl_file, maskable};
use crate::record::{EventRow, derive_call};
use crate::recording_file::StoredRecording;
use crate::{Store, StoreError};

/// The files outside the database that hold call events.
#[derive(Clone, Debug, Default)]
pub struct EventFiles {
    /// The JSON-lines call event log (`<data-dir>/call-events.jsonl`).
    pub event_log: Option<PathBuf>,
    /// The writer's spool directory (`<data-dir>/spool`, `*.jsonl`).
    pub spool_dir: Option<PathBuf>,
}

impl EventFiles {
    /// The gateway's files under `data_dir`.
    pub fn of_data_dir(data_dir: &Path) -> Self {
        Self {
            event_log: Some(data_dir.join("call-events.jsonl")),
            spool_dir: Some(data_dir.join("spool")),
        }
    }

    /// Masks by `rules` in the event log and the spool segments; returns
    /// the lines changed in each (or that would be, with `dry_run`).
    pub fn mask(&self, rules: &[MaskRule], dry_run: bool) -> Result<(u64, u64), StoreError> {
        let mut log = 0;
        if let Some(path) = &self.event_log {
            log = mask_jsonl_file(path, rules, dry_run)
                .map_err(|e| StoreError::io("cannot mask", path, e))?;
        }
        let mut spool = 0;
        if let Some(dir) = &self.spool_dir {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e.flatten().map(|e| e.path()).collect::<Vec<_>>(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(StoreError::io("cannot list", dir, e)),
            };
            for path in entries
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            {
                spool += mask_jsonl_file(path, rules, dry_run)
                    .map_err(|e| StoreError::io("cannot mask", path, e))?;
            }
        }
        Ok((log, spool))
    }
}

/// How long something is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Never removed.
    Forever,
    /// Removed once the call started this many days ago (at least 1).
    Days(u32),
}

/// A retention setting per kind of data. In the global policy `None` is
/// [`Keep::Forever`]; in a queue's override it is "as the global policy".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionDays {
    /// Call recordings (files deleted, rows marked).
    pub recordings: Option<Keep>,
    /// Voicemail files.
    pub voicemail: Option<Keep>,
    /// The caller's number and name in calls, events, logs and callbacks.
    pub mask_callers: Option<Keep>,
}

/// The global policy and the queues that differ. A call belongs to the
/// queue in its `calls.queue` (the last it was queued in); calls never
/// queued follow the global policy. Call rows are always kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// For every call whose queue has no override.
    pub global: RetentionDays,
    /// Per-queue overrides, by queue name.
    pub queues: BTreeMap<String, RetentionDays>,
}

/// Which calls a rule applies to: one queue, or every call but those of
/// the overridden queues.
struct Scope {
    queue: Option<String>,
    except: Vec<String>,
}

/// The SQL condition for a [`Scope`] bound as `$2` (queue) and `$3` (except).
const SCOPE_SQL: &str = "(($2::text IS NULL AND (c.queue IS NULL OR c.queue <> ALL($3::text[]))) \
                          OR c.queue = $2)";

impl RetentionPolicy {
    /// True when the policy removes or masks nothing.
    pub fn keeps_everything(&self) -> bool {
        let none = |d: &RetentionDays| {
            [d.recordings, d.voicemail, d.mask_callers]
                .iter()
                .all(|k| matches!(k, None | Some(Keep::Forever)))
        };
        none(&self.global) && self.queues.values().all(none)
    }

    /// (scope, effective days) for one kind of data.
    fn rules(&self, pick: fn(&RetentionDays) -> Option<Keep>) -> Vec<(Scope, Keep)> {
        let mut out = vec![(
            Scope {
                queue: None,
                except: self.queues.keys().cloned().collect(),
            },
            pick(&self.global).unwrap_or(Keep::Forever),
        )];
        for (q, d) in &self.queues {
            let keep = pick(d).or(pick(&self.global)).unwrap_or(Keep::Forever);
            out.push((
                Scope {
                    queue: Some(q.clone()),
                    except: Vec::new(),
                },
                keep,
            ));
        }
        out
    }
}

/// What one retention pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Recording files deleted (rows marked).
    pub recordings_deleted: u64,
    /// Voicemail files deleted.
    pub voicemails_deleted: u64,
    /// Calls whose caller was masked.
    pub calls_masked: u64,
    /// `call_events` rows changed by masking.
    pub events_masked: u64,
    /// Callback rows masked.
    pub callbacks_masked: u64,
    /// Event-log lines masked.
    pub event_log_lines: u64,
    /// Spool lines masked.
    pub spool_lines: u64,
    /// Files that could not be deleted (kept, retried next pass).
    pub failures: u64,
}

impl RetentionReport {
    /// True when the pass changed nothing.
    pub fn is_empty(&self) -> bool {
        *self
            == Self {
                failures: self.failures,
                ..Self::default()
            }
    }
}

/// Who a masking applies to: a call, and the strings to mask in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskTarget {
    /// The call.
    pub call_id: Uuid,
    /// Its number(s) and name.
    pub tokens: Vec<String>,
}

/// What masking a set of calls changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MaskCounts {
    /// Calls whose row or events changed.
    pub calls: u64,
    /// `call_events` rows changed.
    pub events: u64,
    /// `callbacks` rows masked.
    pub callbacks: u64,
}

/// What `hotline erase --caller` did (or would do, with `dry_run`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EraseReport {
    /// Calls the number was the caller (or, on a callback leg, the callee) of.
    pub calls: Vec<Uuid>,
    /// Other calls whose events mention the number.
    pub mentioned_in: Vec<Uuid>,
    /// Recording files deleted (rows marked `erase`).
    pub recordings: Vec<String>,
    /// Voicemail files deleted.
    pub voicemails: Vec<String>,
    /// Masking in the database.
    pub masked: MaskCounts,
    /// Customers the number was removed from (`customers.phone_numbers`).
    pub customers: u64,
    /// Event-log lines masked.
    pub event_log_lines: u64,
    /// Spool lines masked.
    pub spool_lines: u64,
}

impl EraseReport {
    /// True when there was nothing to erase.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.mentioned_in.is_empty()
            && self.recordings.is_empty()
            && self.voicemails.is_empty()
            && self.masked == MaskCounts::default()
            && self.customers == 0
            && self.event_log_lines == 0
            && self.spool_lines == 0
    }
}

/// An `audit_log` row.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// Its number.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: `cli:<unix user>`, `system:retention`, `admin:…`.
    pub actor: String,
    /// What: `erase_caller`, `retention`, …
    pub action: String,
    /// What it acted on.
    pub subject: Option<String>,
    /// The rest, as JSON.
    pub details: Value,
    /// The address the request came from (admin console, API); `None` for
    /// the command line and the gateway's own passes.
    pub ip: Option<String>,
}

/// How a number is named in the audit log: not the number itself (that is
/// what was erased), but enough to answer "was this number erased?".
pub fn caller_subject(number: &str) -> String {
    let d = sha2::Sha256::digest(number.as_bytes());
    format!("caller sha256:{}", &crate::sealed::hex(&d)[..16])
}

type CallRow = (Uuid, Option<String>, Option<String>);
/// A call to mask: id, caller, caller name, numbers of its callbacks.
type MaskRow = (Uuid, Option<String>, Option<String>, Vec<String>);

impl Store {
    /// Appends to the audit log; returns the entry's id.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        details: Value,
    ) -> Result<i64, StoreError> {
        self.audit_from(actor, action, subject, details, None).await
    }

    /// Appends to the audit log what `actor` did from address `ip` (an
    /// admin console or API request); returns the entry's id.
    pub async fn audit_from(
        &self,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        details: Value,
        ip: Option<std::net::IpAddr>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO audit_log (actor, action, subject, details, ip) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(details)
        .bind(ip.map(|i| i.to_string()))
        .fetch_one(self.pool())
        .await?)
    }

    /// A page of the audit log, newest first: the `limit` entries before
    /// entry `before` (`None`: the newest). Keyset on the primary key, so a
    /// page costs the same however far back it is.
    pub async fn audit_page(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor, action, subject, details, ip FROM audit_log \
             WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The latest audit entries, newest first; `action` filters.
    pub async fn audit_entries(
        &self,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor, action, subject, details, ip FROM audit_log \
             WHERE $1::text IS NULL OR action = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(action)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The recording of a call (`calls.recording_id`, else its latest), with
    /// its deletion mark.
    pub async fn call_recording(
        &self,
        call_id: Uuid,
    ) -> Result<Option<StoredRecording>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.call_id, r.path, r.bytes, r.sha256, r.deleted_at, r.deleted_reason \
             FROM recordings r LEFT JOIN calls c ON c.id = r.call_id \
             WHERE r.call_id = $1 ORDER BY (r.id = c.recording_id) DESC, r.id DESC LIMIT 1",
        )
        .bind(call_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Recordings in id order after `after` (paging through all of them).
    pub async fn recordings_page(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<StoredRecording>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, call_id, path, bytes, sha256, deleted_at, deleted_reason FROM recordings \
             WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Masks each target's tokens in its call's events, derives its `calls`
    /// row again, masks the numbers of the callbacks it booked (cancelling
    /// those not done) and stamps `calls.masked_at`; one transaction. With
    /// `dry_run` it only counts.
    pub async fn mask_calls(
        &self,
        targets: &[MaskTarget],
        dry_run: bool,
    ) -> Result<MaskCounts, StoreError> {
        if targets.is_empty() {
            return Ok(MaskCounts::default());
        }
        let tokens: BTreeMap<Uuid, Vec<&str>> = targets
            .iter()
            .map(|t| {
                let tok = t
                    .tokens
                    .iter()
                    .map(String::as_str)
                    .filter(|s| maskable(s))
                    .collect();
                (t.call_id, tok)
            })
            .collect();
        let ids: Vec<Uuid> = tokens.keys().copied().collect();
        let mut tx = self.pool().begin().await?;
        let rows: Vec<RawEvent> = sqlx::query_as(
            "SELECT call_id, seq, at, kind, node, data FROM call_events \
             WHERE call_id = ANY($1) ORDER BY call_id, seq",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let sip_ids: BTreeMap<Uuid, String> = sqlx::query_as::<_, (Uuid, String)>(
            "SELECT id, sip_call_id FROM calls WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let mut changed = (Vec::new(), Vec::new(), Vec::new());
        let mut changed_calls = BTreeSet::new();
        let mut by_call: BTreeMap<Uuid, Vec<EventRow>> = BTreeMap::new();
        for mut r in rows {
            let tok = &tokens[&r.call_id];
            if mask_json(&mut r.data, tok) {
                changed.0.push(r.call_id);
                changed.1.push(r.seq);
                changed.2.push(r.data.clone());
                changed_calls.insert(r.call_id);
            }
            by_call.entry(r.call_id).or_default().push(EventRow {
                seq: r.seq,
                at: r.at,
                node: r.node,
                data: EventData::from_parts(&r.kind, r.data),
            });
        }
        let callbacks: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, number FROM callbacks WHERE call_id = ANY($1) AND number !~ '^\\*+$'",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let counts = MaskCounts {
            calls: changed_calls.len() as u64,
            events: changed.0.len() as u64,
            callbacks: callbacks.len() as u64,
        };
        if dry_run {
            return Ok(counts);
        }
        sqlx::query(
            "UPDATE call_events e SET data = u.data \
             FROM UNNEST($1::uuid[], $2::int4[], $3::jsonb[]) AS u(call_id, seq, data) \
             WHERE e.call_id = u.call_id AND e.seq = u.seq",
        )
        .bind(&changed.0)
        .bind(&changed.1)
        .bind(&changed.2)
        .execute(&mut *tx)
        .await?;
        let records: Vec<_> = by_call
            .iter()
            .filter(|(id, _)| changed_calls.contains(id))
            .filter_map(|(id, evs)| Some(derive_call(*id, sip_ids.get(id)?, evs)))
            .collect();
        crate::db::update_calls(&mut tx, &records).await?;
        sqlx::query("UPDATE calls SET masked_at = now() WHERE id = ANY($1) AND masked_at IS NULL")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let cb_ids: Vec<Uuid> = callbacks.iter().map(|c| c.0).collect();
        mask_callback_rows(&mut tx, &cb_ids, "masked").await?;
        tx.commit().await?;
        Ok(counts)
    }
}

#[derive(sqlx::FromRow)]
struct RawEvent {
    call_id: Uuid,
    seq: i32,
    at: DateTime<Utc>,
    kind: String,
    node: Option<String>,
    data: Value,
}

/// `*` over callback numbers; ones not yet done are cancelled (they can no
/// longer be dialled).
async fn mask_callback_rows(
    tx: &mut sqlx::PgConnection,
    ids: &[Uuid],
    why: &str,
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "UPDATE callbacks SET number = repeat('*', length(number)), \
            state = CASE WHEN state IN ('scheduled', 'queued', 'dialing') THEN 'cancelled' ELSE state END, \
            last_result = CASE WHEN state IN ('scheduled', 'queued', 'dialing') THEN $2 ELSE last_result END, \
            updated_at = now() \
         WHERE id = ANY($1)",
    )
    .bind(ids)
    .bind(why)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// Deletes files (blocking I/O off the runtime). Returns, per path, whether
/// it is gone now (deleted, or was not there).
async fn delete_files(paths: Vec<String>) -> Vec<(String, bool)> {
    tokio::task::spawn_blocking(move || {
        paths
            .into_iter()
            .map(|p| {
                let gone = match std::fs::remove_file(&p) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                    Err(e) => {
                        tracing::warn!(path = %p, error = %e, "cannot delete a recording file");
                        false
                    }
                };
                (p, gone)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

async fn mark_recordings_deleted(
    store: &Store,
    ids: &[Uuid],
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE recordings SET deleted_at = now(), deleted_reason = $2 \
         WHERE id = ANY($1) AND deleted_at IS NULL",
    )
    .bind(ids)
    .bind(reason)
    .execute(store.pool())
    .await?;
    Ok(())
}

async fn mark_files_deleted(
    store: &Store,
    files: &[(Uuid, String)],
    kind: &str,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deleted_files (call_id, path, kind, reason) \
         SELECT u.call_id, u.path, $3, $4 FROM UNNEST($1::uuid[], $2::text[]) AS u(call_id, path) \
         ON CONFLICT (path) DO NOTHING",
    )
    .bind(files.iter().map(|f| f.0).collect::<Vec<_>>())
    .bind(files.iter().map(|f| f.1.as_str()).collect::<Vec<_>>())
    .bind(kind)
    .bind(reason)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// One retention pass: for each kind of data and each scope of `policy`,
/// in batches of `batch` calls, oldest first. Files are deleted before
/// their rows are marked, so a crash in between only repeats a deletion.
pub async fn apply_retention(
    store: &Store,
    policy: &RetentionPolicy,
    files: &EventFiles,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<RetentionReport, StoreError> {
    let mut report = RetentionReport::default();
    let cutoff = |days: u32| now - chrono::Duration::days(i64::from(days));

    for (scope, keep) in policy.rules(|d| d.recordings) {
        let Keep::Days(days) = keep else { continue };
        loop {
            let rows: Vec<StoredRecording> = sqlx::query_as(&format!(
                "SELECT r.id, r.call_id, r.path, r.bytes, r.sha256, r.deleted_at, r.deleted_reason \
                 FROM recordings r JOIN calls c ON c.id = r.call_id \
                 WHERE r.deleted_at IS NULL AND c.started_at < $1 AND {SCOPE_SQL} \
                 ORDER BY c.started_at LIMIT $4"
            ))
            .bind(cutoff(days))
            .bind(&scope.queue)
            .bind(&scope.except)
            .bind(batch)
            .fetch_all(store.pool())
            .await?;
            let n = rows.len() as i64;
            let gone = delete_files(rows.iter().map(|r| r.path.clone()).collect()).await;
            let ids: Vec<Uuid> = rows
                .iter()
                .zip(&gone)
                .filter(|(_, g)| g.1)
                .map(|(r, _)| r.id)
                .collect();
            for (path, ok) in &gone {
                if *ok {
                    tracing::debug!(path = %path, queue = ?scope.queue, days, "retention: recording deleted");
                }
            }
            report.failures += (rows.len() - ids.len()) as u64;
            mark_recordings_deleted(store, &ids, "retention").await?;
            report.recordings_deleted += ids.len() as u64;
            if n < batch || ids.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
    }

    for (scope, keep) in policy.rules(|d| d.voicemail) {
        let Keep::Days(days) = keep else { continue };
        loop {
            let rows: Vec<(Uuid, String)> = sqlx::query_as(&format!(
                "SELECT e.call_id, e.data->>'path' FROM call_events e JOIN calls c ON c.id = e.call_id \
                 WHERE e.kind IN ('voicemail', 'survey_comment') AND e.data->>'path' IS NOT NULL \
                   AND c.started_at < $1 AND {SCOPE_SQL} \
                   AND NOT EXISTS (SELECT 1 FROM deleted_files d WHERE d.path = e.data->>'path') \
                 ORDER BY c.started_at LIMIT $4"
            ))
            .bind(cutoff(days))
            .bind(&scope.queue)
            .bind(&scope.except)
            .bind(batch)
            .fetch_all(store.pool())
            .await?;
            let n = rows.len() as i64;
            let gone = delete_files(rows.iter().map(|r| r.1.clone()).collect()).await;
            let done: Vec<(Uuid, String)> = rows
                .into_iter()
                .zip(gone)
                .filter(|(_, g)| g.1)
                .map(|(r, _)| r)
                .collect();
            report.failures += n as u64 - done.len() as u64;
            mark_files_deleted(store, &done, "voicemail", "retention").await?;
            report.voicemails_deleted += done.len() as u64;
            if n < batch || done.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
    }

    for (scope, keep) in policy.rules(|d| d.mask_callers) {
        let Keep::Days(days) = keep else { continue };
        loop {
            let rows: Vec<MaskRow> =
                sqlx::query_as(&format!(
                    "SELECT c.id, c.caller, c.caller_name, \
                            coalesce(array_agg(cb.number) FILTER (WHERE cb.number IS NOT NULL), '{{}}') \
                     FROM calls c LEFT JOIN callbacks cb ON cb.call_id = c.id \
                     WHERE c.masked_at IS NULL AND c.started_at < $1 AND {SCOPE_SQL} \
                     GROUP BY c.id ORDER BY c.started_at LIMIT $4"
                ))
                .bind(cutoff(days))
                .bind(&scope.queue)
                .bind(&scope.except)
                .bind(batch)
                .fetch_all(store.pool())
                .await?;
            let n = rows.len() as i64;
            let targets: Vec<MaskTarget> = rows
                .into_iter()
                .map(|(id, caller, name, numbers)| MaskTarget {
                    call_id: id,
                    tokens: caller.into_iter().chain(name).chain(numbers).collect(),
                })
                .collect();
            let counts = store.mask_calls(&targets, false).await?;
            let rules: Vec<MaskRule> = targets
                .iter()
                .filter(|t| t.tokens.iter().any(|s| maskable(s)))
                .map(|t| MaskRule {
                    within: Some(t.call_id.to_string()),
                    tokens: t.tokens.clone(),
                })
                .collect();
            let (log, spool) = mask_files(files, rules, false).await?;
            report.calls_masked += counts.calls;
            report.events_masked += counts.events;
            report.callbacks_masked += counts.callbacks;
            report.event_log_lines += log;
            report.spool_lines += spool;
            if n < batch {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    Ok(report)
}

async fn mask_files(
    files: &EventFiles,
    rules: Vec<MaskRule>,
    dry_run: bool,
) -> Result<(u64, u64), StoreError> {
    if rules.is_empty() {
        return Ok((0, 0));
    }
    let files = files.clone();
    tokio::task::spawn_blocking(move || files.mask(&rules, dry_run))
        .await
        .map_err(|e| StoreError::Invalid(format!("masking files: {e}")))?
}

/// Erases one customer's number: deletes the recordings and voicemail of
/// the calls they made (or were called back on), masks the number (and
/// their display name on those calls) in calls, events, callbacks, the
/// event log and the spool, and removes it from `customers.phone_numbers`.
/// Idempotent: a second run finds nothing. With `dry_run` nothing changes
/// and the report says what would. The caller writes the audit entry.
pub async fn erase_caller(
    store: &Store,
    number: &str,
    files: &EventFiles,
    dry_run: bool,
) -> Result<EraseReport, StoreError> {
    let number = number.trim();
    if !maskable(number) {
        return Err(StoreError::Invalid(format!(
            "{number:?}: give the number as it appears in the records (at least {} characters)",
            crate::mask::MIN_TOKEN
        )));
    }
    let pool = store.pool();
    let party: Vec<CallRow> = sqlx::query_as(
        "SELECT id, caller, caller_name FROM calls WHERE caller = $1 OR callee = $1 ORDER BY started_at",
    )
    .bind(number)
    .fetch_all(pool)
    .await?;
    let party_ids: Vec<Uuid> = party.iter().map(|c| c.0).collect();
    let mentioned: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT call_id FROM call_events WHERE strpos(data::text, $1) > 0 \
         UNION SELECT call_id FROM callbacks WHERE number = $1",
    )
    .bind(number)
    .fetch_all(pool)
    .await?;
    let mentioned: Vec<Uuid> = mentioned
        .into_iter()
        .filter(|id| !party_ids.contains(id))
        .collect();

    let recordings: Vec<StoredRecording> = sqlx::query_as(
        "SELECT id, call_id, path, bytes, sha256, deleted_at, deleted_reason FROM recordings \
         WHERE call_id = ANY($1) AND deleted_at IS NULL ORDER BY id",
    )
    .bind(&party_ids)
    .fetch_all(pool)
    .await?;
    let voicemails: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT e.call_id, e.data->>'path' FROM call_events e \
         WHERE e.call_id = ANY($1) AND e.kind IN ('voicemail', 'survey_comment') \
           AND e.data->>'path' IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM deleted_files d WHERE d.path = e.data->>'path')",
    )
    .bind(&party_ids)
    .fetch_all(pool)
    .await?;

    let mut targets: Vec<MaskTarget> = party
        .iter()
        .map(|(id, caller, name)| {
            let mut tokens = vec![number.to_owned()];
            // Their name goes with their number (not on a callback leg's
            // callee match, where the name is not theirs).
            if caller.as_deref() == Some(number) {
                tokens.extend(name.clone());
            }
            MaskTarget {
                call_id: *id,
                tokens,
            }
        })
        .collect();
    targets.extend(mentioned.iter().map(|id| MaskTarget {
        call_id: *id,
        tokens: vec![number.to_owned()],
    }));
    let customers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers WHERE $1 = ANY(phone_numbers)")
            .bind(number)
            .fetch_one(pool)
            .await?;
    let mut rules = vec![MaskRule {
        within: None,
        tokens: vec![number.to_owned()],
    }];
    rules.extend(
        targets
            .iter()
            .filter(|t| t.tokens.len() > 1)
            .map(|t| MaskRule {
                within: Some(t.call_id.to_string()),
                tokens: t.tokens[1..].to_vec(),
            }),
    );

    let mut report = EraseReport {
        calls: party_ids.clone(),
        mentioned_in: mentioned,
        customers: customers as u64,
        ..EraseReport::default()
    };
    if dry_run {
        report.recordings = recordings.into_iter().map(|r| r.path).collect();
        report.voicemails = voicemails.into_iter().map(|v| v.1).collect();
        report.masked = store.mask_calls(&targets, true).await?;
        let cb: i64 = sqlx::query_scalar("SELECT count(*) FROM callbacks WHERE number = $1")
            .bind(number)
            .fetch_one(pool)
            .await?;
        report.masked.callbacks = report.masked.callbacks.max(cb as u64);
        (report.event_log_lines, report.spool_lines) = mask_files(files, rules, true).await?;
        return Ok(report);
    }

    let gone = delete_files(recordings.iter().map(|r| r.path.clone()).collect()).await;
    let ids: Vec<Uuid> = recordings
        .iter()
        .zip(&gone)
        .filter(|(_, g)| g.1)
        .map(|(r, _)| r.id)
        .collect();
    mark_recordings_deleted(store, &ids, "erase").await?;
    if ids.len() < recordings.len() {
        return Err(StoreError::Invalid(
            "some recording files could not be deleted (see the warnings); nothing else was changed, run again"
                .into(),
        ));
    }
    report.recordings = gone.into_iter().map(|g| g.0).collect();
    let gone = delete_files(voicemails.iter().map(|v| v.1.clone()).collect()).await;
    let done: Vec<(Uuid, String)> = voicemails
        .into_iter()
        .zip(gone)
        .filter(|(_, g)| g.1)
        .map(|(v, _)| v)
        .collect();
    mark_files_deleted(store, &done, "voicemail", "erase").await?;
    report.voicemails = done.into_iter().map(|v| v.1).collect();

    let mut masked = MaskCounts::default();
    for chunk in targets.chunks(200) {
        let m = store.mask_calls(chunk, false).await?;
        masked.calls += m.calls;
        masked.events += m.events;
        masked.callbacks += m.callbacks;
    }
    let mut tx = pool.begin().await?;
    let cb: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM callbacks WHERE number = $1")
        .bind(number)
        .fetch_all(&mut *tx)
        .await?;
    masked.callbacks += mask_callback_rows(&mut tx, &cb, "erased").await?;
    sqlx::query(
        "UPDATE customers SET phone_numbers = array_remove(phone_numbers, $1) WHERE $1 = ANY(phone_numbers)",
    )
    .bind(number)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    report.masked = masked;
    (report.event_log_lines, report.spool_lines) = mask_files(files, rules, false).await?;
    Ok(report)
}

/// The audit details of an erasure.
pub fn erase_details(r: &EraseReport, dry_run: bool) -> Value {
    json!({
        "dry_run": dry_run,
        "calls": r.calls,
        "mentioned_in": r.mentioned_in,
        "recordings_deleted": r.recordings.len(),
        "voicemails_deleted": r.voicemails.len(),
        "calls_masked": r.masked.calls,
        "events_masked": r.masked.events,
        "callbacks_masked": r.masked.callbacks,
        "customers_updated": r.customers,
        "event_log_lines": r.event_log_lines,
        "spool_lines": r.spool_lines,
    })
}
