//! Voicemails for the admin console: a call's voicemail is its last
//! `voicemail` event (the file, its length), with the "handled" mark of
//! migrations/0011_voicemail_handled.sql. Newest first, keyset paging on
//! `(at, call_id)` over the `call_events (kind, at)` index.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Store, StoreError, StoredRecording};

/// One voicemail as the console lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct VoicemailRow {
    /// The call (also the voicemail's id).
    pub call_id: Uuid,
    /// When the voicemail was recorded (its event's time).
    pub at: DateTime<Utc>,
    /// The caller's number (masked once the call is).
    pub caller: Option<String>,
    /// The caller's name, when known.
    pub caller_name: Option<String>,
    /// The queue the call was in, if any (a queue's overflow).
    pub queue: Option<String>,
    /// When the call started.
    pub started_at: Option<DateTime<Utc>>,
    /// The recording's length in milliseconds.
    pub duration_ms: i64,
    /// The file's size in bytes.
    pub bytes: i64,
    /// The file (absolute; a sealed one ends in `.enc`); not for display.
    #[serde(skip)]
    pub path: String,
    /// When its file was deleted on purpose (retention, erasure).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Why: `retention` or `erase`.
    pub deleted_reason: Option<String>,
    /// When it was marked handled; `None`: not handled.
    pub handled_at: Option<DateTime<Utc>>,
    /// Who marked it.
    pub handled_by: Option<String>,
}

impl VoicemailRow {
    /// The file as a recording, for `open_recording` (no sha256 is kept
    /// for a voicemail; a sealed one is still authenticated chunk by chunk).
    pub fn as_recording(&self) -> StoredRecording {
        StoredRecording {
            id: self.call_id,
            call_id: self.call_id,
            path: self.path.clone(),
            bytes: self.bytes,
            sha256: None,
            deleted_at: self.deleted_at,
            deleted_reason: self.deleted_reason.clone(),
        }
    }
}

/// Where the next page starts: the last row's `(at, call_id)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoicemailCursor {
    /// The last row's time.
    pub at: DateTime<Utc>,
    /// The last row's call.
    pub call_id: Uuid,
}

impl fmt::Display for VoicemailCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.at.timestamp_micros(), self.call_id)
    }
}

impl FromStr for VoicemailCursor {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::Invalid(format!("`after` is not a cursor from this list: `{s}`"));
        let (at, id) = s.split_once('_').ok_or_else(bad)?;
        let at = at
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(bad)?;
        let call_id = id.parse().map_err(|_| bad())?;
        Ok(Self { at, call_id })
    }
}

/// The select every voicemail query shares; `WHERE` parts are appended.
const SELECT: &str = "SELECT e.call_id, e.at, c.caller, c.caller_name, c.queue, c.started_at, \
       coalesce((e.data->>'duration_ms')::bigint, 0) AS duration_ms, \
       coalesce((e.data->>'bytes')::bigint, 0) AS bytes, \
       coalesce(e.data->>'path', '') AS path, d.deleted_at, d.reason AS deleted_reason, \
       h.handled_at, h.handled_by \
     FROM call_events e JOIN calls c ON c.id = e.call_id \
     LEFT JOIN deleted_files d ON d.path = e.data->>'path' \
     LEFT JOIN voicemail_handled h ON h.call_id = e.call_id \
     WHERE e.kind = 'voicemail' \
       AND NOT EXISTS (SELECT 1 FROM call_events l \
                       WHERE l.call_id = e.call_id AND l.kind = 'voicemail' AND l.seq > e.seq)";

impl Store {
    /// A page of voicemails, newest first; `handled`: only handled
    /// (`true`) or unhandled (`false`) ones. Returns the rows and the
    /// cursor of the next page (`None` on the last).
    pub async fn voicemails(
        &self,
        handled: Option<bool>,
        after: Option<VoicemailCursor>,
        limit: i64,
    ) -> Result<(Vec<VoicemailRow>, Option<VoicemailCursor>), StoreError> {
        let rows: Vec<VoicemailRow> = sqlx::query_as(&format!(
            "{SELECT} AND ($1::boolean IS NULL OR (h.call_id IS NOT NULL) = $1) \
               AND ($2::timestamptz IS NULL OR (e.at, e.call_id) < ($2, $3::uuid)) \
             ORDER BY e.at DESC, e.call_id DESC LIMIT $4"
        ))
        .bind(handled)
        .bind(after.map(|c| c.at))
        .bind(after.map(|c| c.call_id))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| {
                rows.last().map(|r| VoicemailCursor {
                    at: r.at,
                    call_id: r.call_id,
                })
            })
            .flatten();
        Ok((rows, next))
    }

    /// The voicemail of a call, if it left one.
    pub async fn voicemail(&self, call_id: Uuid) -> Result<Option<VoicemailRow>, StoreError> {
        Ok(sqlx::query_as(&format!("{SELECT} AND e.call_id = $1"))
            .bind(call_id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Marks a call's voicemail handled by `by` (or clears the mark) and
    /// returns it; `NotFound` when the call left no voicemail.
    pub async fn set_voicemail_handled(
        &self,
        call_id: Uuid,
        handled: bool,
        by: &str,
    ) -> Result<VoicemailRow, StoreError> {
        let not_found = || StoreError::NotFound {
            what: "voicemail",
            id: call_id.to_string(),
        };
        if self.voicemail(call_id).await?.is_none() {
            return Err(not_found());
        }
        if handled {
            sqlx::query(
                "INSERT INTO voicemail_handled (call_id, handled_by) VALUES ($1, $2) \
                 ON CONFLICT (call_id) DO NOTHING",
            )
            .bind(call_id)
            .bind(by)
            .execute(self.pool())
            .await?;
        } else {
            sqlx::query("DELETE FROM voicemail_handled WHERE call_id = $1")
                .bind(call_id)
                .execute(self.pool())
                .await?;
        }
        self.voicemail(call_id).await?.ok_or_else(not_found)
    }
}
