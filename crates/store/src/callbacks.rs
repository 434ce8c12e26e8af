//! Booked callbacks (`callbacks`, migrations/0006): made from a call's
//! `callback_requested` event by the record writer (so a booking is as
//! durable as the call record: spooled while the database is away), read
//! and moved along by the agent desk, listed by the admin API.
//!
//! States: `scheduled` (waiting for `due_at`) → `queued` (an entry in the
//! queue, offered to agents) → `dialing` (an agent took it; the customer's
//! phone rings) → `done` (they talked) | back to `queued` with one more
//! attempt | `abandoned` (attempts spent) | `cancelled` (by an admin).

use chrono::{DateTime, Utc};
use hotline_events::EventData;
use serde::Serialize;
use sha2::Digest;
use uuid::Uuid;

use crate::record::EventRow;
use crate::{Store, StoreError};

/// The states a callback can be in.
pub const CALLBACK_STATES: &[&str] = &[
    "scheduled",
    "queued",
    "dialing",
    "done",
    "abandoned",
    "cancelled",
];
/// States the desk still has work in.
pub const OPEN_STATES: &[&str] = &["scheduled", "queued", "dialing"];

/// One `callbacks` row.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct CallbackRow {
    /// Derived from the booking event (call id and seq), so a replayed event
    /// books nothing twice.
    pub id: Uuid,
    /// The gateway's id of the call that booked it.
    pub call_id: Uuid,
    /// The booking call's SIP `Call-ID`.
    pub sip_call_id: String,
    /// `ivr` (a flow's `callback` node) or `queue_overflow`.
    pub source: String,
    /// The queue whose agents call back; `None`: the first configured queue.
    pub queue: Option<String>,
    /// The number to dial: `+` and 5–15 digits.
    pub number: String,
    /// The slot the caller chose (`asap` after a queue overflow).
    pub slot: String,
    /// When the callback may be dialled, at the earliest.
    pub due_at: DateTime<Utc>,
    /// One of [`CALLBACK_STATES`].
    pub state: String,
    /// Outbound attempts dialled so far.
    pub attempts: i32,
    /// The agent who took it last; `None` before any did.
    pub agent_id: Option<String>,
    /// How the last attempt went (`answered`, `no answer`, …); `None` before any.
    pub last_result: Option<String>,
    /// When it was booked (the booking event's time).
    pub created_at: DateTime<Utc>,
    /// When the desk or an admin last moved it.
    pub updated_at: DateTime<Utc>,
}

/// The id of the callback booked by event `seq` of `call_id`: stable across
/// replays of the same event.
pub fn callback_id(call_id: Uuid, seq: i32) -> Uuid {
    let mut h = sha2::Sha256::new();
    h.update(call_id.as_bytes());
    h.update(b"callback");
    h.update(seq.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A number the gateway may dial (optional `+`, 5–15 digits): the same rule
/// as the flows' (`hotline_ivr::callback::is_dialable`) and the table's CHECK.
fn dialable(n: &str) -> bool {
    let d = n.strip_prefix('+').unwrap_or(n);
    (5..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
}

/// The booking a `callback_requested` event makes, if any. Events without a
/// dialable number book nothing (an old event, or a caller ID that is a SIP
/// user name: the gateway never stores those as numbers to dial).
pub(crate) fn booked_of(call_id: Uuid, sip_call_id: &str, ev: &EventRow) -> Option<CallbackRow> {
    let EventData::CallbackRequested {
        number,
        slot,
        queue,
        due_at,
        source,
    } = &ev.data
    else {
        return None;
    };
    if !dialable(number) {
        return None;
    }
    let source = match source.as_deref() {
        Some("ivr") => "ivr",
        _ => "queue_overflow",
    };
    let due_at = due_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(ev.at, |t| t.with_timezone(&Utc));
    // A queue-overflow entry is in the desk's queue from the start.
    let state = if source == "ivr" {
        "scheduled"
    } else {
        "queued"
    };
    Some(CallbackRow {
        id: callback_id(call_id, ev.seq),
        call_id,
        sip_call_id: sip_call_id.to_owned(),
        source: source.into(),
        queue: queue.clone().flatten(),
        number: number.clone(),
        slot: slot.clone(),
        due_at,
        state: state.into(),
        attempts: 0,
        agent_id: None,
        last_result: None,
        created_at: ev.at,
        updated_at: ev.at,
    })
}

pub(crate) async fn insert_booked(
    tx: &mut sqlx::PgConnection,
    rows: &[CallbackRow],
) -> Result<(), StoreError> {
    for r in rows {
        sqlx::query(
            "INSERT INTO callbacks (id, call_id, sip_call_id, source, queue, number, slot, due_at, \
                                    state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (id) DO NOTHING",
        )
        .bind(r.id)
        .bind(r.call_id)
        .bind(&r.sip_call_id)
        .bind(&r.source)
        .bind(&r.queue)
        .bind(&r.number)
        .bind(&r.slot)
        .bind(r.due_at)
        .bind(&r.state)
        .bind(r.created_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Where a call came in and when it joined its queue ([`Store::call_sources`]).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CallSource {
    /// The call's id.
    pub id: Uuid,
    /// The trunk it came in on (`host:port`).
    pub source: Option<String>,
    /// When it joined its queue (`calls.queued_at`: the last `enqueued`
    /// event, so after an overflow to another queue, that one's).
    pub queued_at: Option<DateTime<Utc>>,
}

/// A desk step, as written to a row.
struct Step<'a> {
    state: &'a str,
    attempts: i32,
    agent_id: Option<&'a str>,
    last_result: Option<&'a str>,
}

const COLUMNS: &str = "id, call_id, sip_call_id, source, queue, number, slot, due_at, state, attempts, \
                       agent_id, last_result, created_at, updated_at";

impl Store {
    /// Callbacks, soonest due first; only those in `states` when given.
    pub async fn callbacks(
        &self,
        states: &[String],
        limit: i64,
    ) -> Result<Vec<CallbackRow>, StoreError> {
        Ok(sqlx::query_as::<_, CallbackRow>(&format!(
            "SELECT {COLUMNS} FROM callbacks \
              WHERE cardinality($1::text[]) = 0 OR state = ANY($1) \
              ORDER BY due_at, created_at LIMIT $2"
        ))
        .bind(states)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// One callback.
    pub async fn callback(&self, id: Uuid) -> Result<Option<CallbackRow>, StoreError> {
        Ok(sqlx::query_as::<_, CallbackRow>(&format!(
            "SELECT {COLUMNS} FROM callbacks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Open callbacks due at `now`: what the desk should hold as entries.
    pub async fn due_callbacks(&self, now: DateTime<Utc>) -> Result<Vec<CallbackRow>, StoreError> {
        Ok(sqlx::query_as::<_, CallbackRow>(&format!(
            "SELECT {COLUMNS} FROM callbacks \
              WHERE state IN ('scheduled', 'queued', 'dialing') AND due_at <= $1 \
              ORDER BY due_at, created_at LIMIT 1000"
        ))
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    /// Moves a callback on (the desk's bookkeeping). A callback that is
    /// already `done`, `abandoned` or `cancelled` stays as it is.
    pub async fn update_callback(
        &self,
        id: Uuid,
        state: &str,
        attempts: i32,
        agent_id: Option<&str>,
        last_result: Option<&str>,
    ) -> Result<bool, StoreError> {
        let step = Step {
            state,
            attempts,
            agent_id,
            last_result,
        };
        self.move_callback("id", id, step).await
    }

    /// The trunks (`calls.source`, `host:port`) the calls in `ids` came in
    /// on, and when each joined its queue (`calls.queued_at`).
    pub async fn call_sources(&self, ids: &[Uuid]) -> Result<Vec<CallSource>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, source, queued_at FROM calls WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The desk's step for the open callback booked by `call_id` (see
    /// [`Store::update_callback`]); `false` when there is none open.
    pub async fn update_callback_of_call(
        &self,
        call_id: Uuid,
        state: &str,
        attempts: i32,
        agent_id: Option<&str>,
        last_result: Option<&str>,
    ) -> Result<bool, StoreError> {
        let step = Step {
            state,
            attempts,
            agent_id,
            last_result,
        };
        self.move_callback("call_id", call_id, step).await
    }

    /// One step of the open callback(s) whose `column` is `key`.
    async fn move_callback(
        &self,
        column: &'static str,
        key: Uuid,
        s: Step<'_>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE callbacks SET state = $2, attempts = $3, agent_id = coalesce($4, agent_id), \
                    last_result = coalesce($5, last_result), updated_at = now() \
              WHERE {column} = $1 AND state IN ('scheduled', 'queued', 'dialing')"
        ))
        .bind(key)
        .bind(s.state)
        .bind(s.attempts)
        .bind(s.agent_id)
        .bind(s.last_result)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The calls whose callbacks were cancelled since `since` (the desk
    /// drops their entries if still waiting).
    pub async fn cancelled_callbacks_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT call_id FROM callbacks WHERE state = 'cancelled' AND updated_at >= $1",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }

    /// An admin cancels a callback that is still open; `false` if it is not
    /// (unknown, or already done/abandoned/cancelled).
    pub async fn cancel_callback(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE callbacks SET state = 'cancelled', updated_at = now() \
              WHERE id = $1 AND state IN ('scheduled', 'queued', 'dialing')",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
