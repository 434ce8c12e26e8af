//! Call search for the admin console: filter the `calls` rows, newest first,
//! a page at a time; and one call's detail (its events, recordings, agent part).
//!
//! Pages are keyset-paginated: a page ends with a [`CallCursor`] naming its
//! last row's `(started_at, id)`, and the next page is the rows strictly
//! after it in `started_at DESC, id DESC` order. Each page is therefore an
//! index range scan that stops after `limit + 1` rows (migrations/0010),
//! as fast at the millionth call as at the first, and a page never repeats
//! or skips a row when newer calls arrive while someone pages back in time
//! (an OFFSET would shift under them).
//!
//! Not for: reports over many calls (counts, averages); those want
//! aggregates, not pages.
//!
//! ```no_run
//! # async fn demo(store: hotline_store::Store) -> Result<(), hotline_store::StoreError> {
//! use hotline_store::call_search::CallFilter;
//! let filter = CallFilter { issue_type: Some("subscription".into()), ..CallFilter::default() };
//! let first = store.search_calls(&filter, 50, None).await?;
//! if let Some(next) = first.next {
//!     let second = store.search_calls(&filter, 50, Some(next)).await?;
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::record::{CallRecord, OUTCOMES};
use crate::{Store, StoreError};

/// The most rows one page may ask for.
pub const MAX_PAGE: u32 = 500;

/// What to search for; every field that is set must match (`None`: any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Calls that started at or after this.
    pub from: Option<DateTime<Utc>>,
    /// Calls that started before this (exclusive).
    pub to: Option<DateTime<Utc>>,
    /// The caller's number, exactly (after [`normalise_caller`]).
    pub caller: Option<String>,
    /// The issue type or any below it: `subscription` matches
    /// `subscription` and `subscription.refund`, not `subscriptions`.
    pub issue_type: Option<String>,
    /// One of [`OUTCOMES`].
    pub outcome: Option<String>,
    /// The queue the call went to last.
    pub queue: Option<String>,
    /// The agent who answered.
    pub agent: Option<String>,
    /// The agent's wrap-up code.
    pub disposition: Option<String>,
    /// The IVR flow's name.
    pub flow: Option<String>,
    /// The flow's version, as the call record names it.
    pub flow_version: Option<String>,
}

impl CallFilter {
    /// Refuses what can match nothing by mistake: an unknown outcome, a
    /// time range that ends before it starts, an issue type that is not a
    /// dotted name, a caller that is all `*` (a masked number is not a
    /// search key). The message is for the user.
    pub fn check(&self) -> Result<(), StoreError> {
        if let Some(o) = self
            .outcome
            .as_ref()
            .filter(|o| !OUTCOMES.contains(&o.as_str()))
        {
            return Err(StoreError::Invalid(format!(
                "unknown outcome `{o}`; use one of {}",
                OUTCOMES.join(", ")
            )));
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                return Err(StoreError::Invalid(format!(
                    "`from` ({}) must be before `to` ({})",
                    from.to_rfc3339(),
                    to.to_rfc3339()
                )));
            }
        }
        if let Some(t) = &self.issue_type {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.split('.').all(|seg| {
                    !seg.is_empty()
                        && seg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
            if !ok {
                return Err(StoreError::Invalid(format!(
                    "issue type `{t}` is not a dotted name like `subscription.refund`"
                )));
            }
        }
        if self
            .caller
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.bytes().all(|b| b == b'*'))
        {
            return Err(StoreError::Invalid(
                "caller: give a number; masked numbers cannot be searched for".into(),
            ));
        }
        Ok(())
    }
}

/// A caller number as the records hold it: the SIP user part the call
/// arrived with (`+15550100001`, `1001`, `sipp`), matched exactly, like the
/// `subscriber_by_caller_id` lookup. What a person types around a number is
/// dropped: surrounding space, a `tel:`/`sip:` prefix with any `@host`, and
/// the spaces, dashes, dots and brackets inside a number
/// (`+1 (555) 010-0001` → `+15550100001`). A user name keeps its spelling.
pub fn normalise_caller(input: &str) -> String {
    let mut s = input.trim();
    for scheme in ["tel:", "sip:", "sips:"] {
        if s.len() >= scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
            s = &s[scheme.len()..];
            s = s.split(['@', ';']).next().unwrap_or(s);
            break;
        }
    }
    let is_number = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b"+ -.()".contains(&b));
    if is_number {
        s.chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    } else {
        s.to_owned()
    }
}

/// Where a page ended: the last row's start time and id. Opaque to clients
/// (hex, versioned); only [`CallCursor::from_str`] reads it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallCursor {
    /// The last row's `started_at` (microseconds, as PostgreSQL keeps it).
    pub started_at: DateTime<Utc>,
    /// The last row's id (breaks ties between calls that started together).
    pub id: Uuid,
}

/// The cursor format's version byte.
const CURSOR_V1: u8 = 1;

impl fmt::Display for CallCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(25);
        bytes.push(CURSOR_V1);
        bytes.extend_from_slice(&self.started_at.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(self.id.as_bytes());
        f.write_str(&crate::sealed::hex(&bytes))
    }
}

impl FromStr for CallCursor {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        let bad = || {
            StoreError::Invalid(
                "bad cursor: pass back the `next` value of the previous page unchanged".into(),
            )
        };
        if s.len() != 50 || !s.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 25];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        if bytes[0] != CURSOR_V1 {
            return Err(bad());
        }
        let micros = i64::from_be_bytes(bytes[1..9].try_into().map_err(|_| bad())?);
        let started_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let id = Uuid::from_slice(&bytes[9..]).map_err(|_| bad())?;
        Ok(Self { started_at, id })
    }
}

/// One row of a search page.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct CallSummary {
    /// The gateway's id of the call.
    pub id: Uuid,
    /// When the call reached the gateway.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while it is on.
    pub ended_at: Option<DateTime<Utc>>,
    /// The caller's number; `*`s when the caller was masked.
    pub caller: Option<String>,
    /// The caller's display name; `*`s when the caller was masked.
    pub caller_name: Option<String>,
    /// The number dialled.
    pub callee: Option<String>,
    /// The IVR flow's name.
    pub flow: Option<String>,
    /// The flow's version.
    pub flow_version: Option<String>,
    /// The caller's language when the call ended.
    pub language: Option<String>,
    /// The last issue type the flow set.
    pub issue_type: Option<String>,
    /// How the call ended for the caller.
    pub outcome: Option<String>,
    /// The queue it went to last.
    pub queue: Option<String>,
    /// The agent who answered.
    #[sqlx(rename = "agent_id")]
    pub agent: Option<String>,
    /// The agent's wrap-up code.
    pub disposition: Option<String>,
    /// Talk time in seconds.
    pub talk_seconds: Option<f64>,
    /// The call has a recording row (it may have been deleted since).
    pub recorded: bool,
    /// The caller's number and name were masked (retention or erasure).
    pub masked: bool,
    /// The record is final.
    pub complete: bool,
}

/// One page of search results.
#[derive(Clone, Debug, PartialEq)]
pub struct CallPage {
    /// At most `limit` calls, newest first.
    pub calls: Vec<CallSummary>,
    /// Where the next page starts; `None` when this is the last one.
    pub next: Option<CallCursor>,
}

/// One call as its page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CallDetail {
    /// The `calls` row (caller and name `*`s when masked).
    pub call: CallRecord,
    /// When the caller was masked; `None`: not masked.
    pub masked_at: Option<DateTime<Utc>>,
    /// The answering agent's display name, while the agent exists.
    pub agent_name: Option<String>,
    /// Every event, in order.
    pub events: Vec<TimelineEvent>,
    /// The call's recordings (usually one), deleted ones included.
    pub recordings: Vec<RecordingInfo>,
}

/// One `call_events` row, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct TimelineEvent {
    /// The event's number within the call, from 0.
    pub seq: i32,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Its kind (docs/call-events.md).
    pub kind: String,
    /// The IVR node it happened at, when one applies.
    pub node: Option<String>,
    /// Its fields.
    pub data: Value,
}

/// A recording's facts, without its path (which is the server's business).
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct RecordingInfo {
    /// The recording's id.
    pub id: Uuid,
    /// Length in milliseconds.
    pub duration_ms: i64,
    /// 2: caller left, gateway/agent right.
    pub channels: i32,
    /// Samples per second per channel.
    pub sample_rate: i32,
    /// File size in bytes.
    pub bytes: i64,
    /// When its file was deleted on purpose (retention, erasure); `None`: kept.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Why: `retention`, `erase`.
    pub deleted_reason: Option<String>,
}

/// `*` for every character: how a masked value is shown, whatever the
/// row holds (masking already wrote `*`s; this keeps it so for rows a
/// later re-derivation might have touched).
fn starred(v: &mut Option<String>) {
    if let Some(s) = v {
        *s = "*".repeat(s.chars().count());
    }
}

/// `LIKE` pattern text that matches `s` literally.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Store {
    /// Calls matching `filter`, newest first, at most `limit` (1 to
    /// [`MAX_PAGE`]), starting after `after` (the previous page's `next`).
    pub async fn search_calls(
        &self,
        filter: &CallFilter,
        limit: u32,
        after: Option<CallCursor>,
    ) -> Result<CallPage, StoreError> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(StoreError::Invalid(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        filter.check()?;
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT id, started_at, ended_at, caller, caller_name, callee, flow, flow_version, \
                    language, issue_type, outcome, queue, agent_id, disposition, talk_seconds, \
                    recording_id IS NOT NULL AS recorded, masked_at IS NOT NULL AS masked, complete \
             FROM calls WHERE started_at IS NOT NULL",
        );
        if let Some(from) = filter.from {
            q.push(" AND started_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            q.push(" AND started_at < ").push_bind(to);
        }
        let mut eq = |column: &str, value: &Option<String>| {
            if let Some(v) = value {
                q.push(format_args!(" AND {column} = "))
                    .push_bind(v.clone());
            }
        };
        eq("caller", &filter.caller);
        eq("outcome", &filter.outcome);
        eq("queue", &filter.queue);
        eq("agent_id", &filter.agent);
        eq("disposition", &filter.disposition);
        eq("flow", &filter.flow);
        eq("flow_version", &filter.flow_version);
        if let Some(t) = &filter.issue_type {
            // The byte-order range `t` ..< `t/` (`/` follows `.`) uses
            // calls_issue_type_started; the exact test drops `t-x` and the
            // like, which sort inside that range too.
            q.push(" AND issue_type IS NOT NULL AND issue_type COLLATE \"C\" >= ")
                .push_bind(t.clone())
                .push(" AND issue_type COLLATE \"C\" < ")
                .push_bind(format!("{t}/"))
                .push(" AND (issue_type = ")
                .push_bind(t.clone())
                .push(" OR issue_type LIKE ")
                .push_bind(format!("{}.%", like_escape(t)))
                .push(")");
        }
        if let Some(c) = after {
            q.push(" AND (started_at, id) < (")
                .push_bind(c.started_at)
                .push(", ")
                .push_bind(c.id)
                .push(")");
        }
        q.push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let mut calls: Vec<CallSummary> = q.build_query_as().fetch_all(self.pool()).await?;
        let next = if calls.len() > limit as usize {
            calls.truncate(limit as usize);
            calls.last().map(|c| CallCursor {
                started_at: c.started_at,
                id: c.id,
            })
        } else {
            None
        };
        for c in calls.iter_mut().filter(|c| c.masked) {
            starred(&mut c.caller);
            starred(&mut c.caller_name);
        }
        Ok(CallPage { calls, next })
    }

    /// One call with its events, recordings and agent part; `None` when
    /// there is no such call.
    pub async fn call_detail(&self, id: Uuid) -> Result<Option<CallDetail>, StoreError> {
        let Some(mut call) = self.call(id).await? else {
            return Ok(None);
        };
        let (masked_at, agent_name): (Option<DateTime<Utc>>, Option<String>) = sqlx::query_as(
            "SELECT c.masked_at, a.name FROM calls c LEFT JOIN agents a ON a.id = c.agent_id \
             WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .unwrap_or_default();
        if masked_at.is_some() {
            starred(&mut call.caller);
            starred(&mut call.caller_name);
        }
        let events: Vec<TimelineEvent> = sqlx::query_as(
            "SELECT seq, at, kind, node, data FROM call_events WHERE call_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let recordings: Vec<RecordingInfo> = sqlx::query_as(
            "SELECT id, duration_ms, channels, sample_rate, bytes, deleted_at, deleted_reason \
             FROM recordings WHERE call_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(Some(CallDetail {
            call,
            masked_at,
            agent_name,
            events,
            recordings,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = CallCursor {
            started_at: DateTime::from_timestamp_micros(1_764_633_600_123_456).unwrap(),
            id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        };
        let s = c.to_string();
        assert_eq!(s.len(), 50);
        assert_eq!(s.parse::<CallCursor>().unwrap(), c);
        let mut wrong_version = s.clone();
        wrong_version.replace_range(0..2, "02");
        for bad in [
            "",
            "abc",
            &s[..48],
            &format!("{s}00"),
            &wrong_version,
            &s.replace(|c: char| c.is_ascii_digit(), "z"),
            "é".repeat(25).as_str(),
        ] {
            assert!(bad.parse::<CallCursor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn callers_are_normalised_like_a_person_types_them() {
        assert_eq!(normalise_caller(" +1 (555) 010-0001 "), "+15550100001");
        assert_eq!(normalise_caller("+86.138.0013.8000"), "+8613800138000");
        assert_eq!(normalise_caller("tel:+15550100001"), "+15550100001");
        assert_eq!(normalise_caller("sip:1001@gw.example;user=phone"), "1001");
        assert_eq!(normalise_caller("sipp"), "sipp");
        assert_eq!(normalise_caller("John Doe"), "John Doe");
        assert_eq!(normalise_caller("***"), "***");
    }

    #[test]
    fn filters_refuse_what_matches_nothing_by_mistake() {
        let ok = CallFilter {
            issue_type: Some("purchase.order_status".into()),
            outcome: Some("answered".into()),
            ..CallFilter::default()
        };
        ok.check().unwrap();
        let t = Utc::now();
        for bad in [
            CallFilter {
                outcome: Some("won".into()),
                ..CallFilter::default()
            },
            CallFilter {
                from: Some(t),
                to: Some(t),
                ..CallFilter::default()
            },
            CallFilter {
                issue_type: Some("subscription.".into()),
                ..CallFilter::default()
            },
            CallFilter {
                issue_type: Some("sub%".into()),
                ..CallFilter::default()
            },
            CallFilter {
                caller: Some("*****".into()),
                ..CallFilter::default()
            },
        ] {
            assert!(
                matches!(bad.check(), Err(StoreError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert_eq!(like_escape("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
