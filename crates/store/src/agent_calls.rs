//! An agent's own calls since a moment (their day), for the softphone's
//! overview (`overview.calls_today`, docs/agent-protocol.md). Read-only.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Store, StoreError};

/// One of an agent's calls, as the overview lists it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AgentCall {
    /// The gateway's id of the call (`calls.id`).
    pub id: Uuid,
    /// When the call reached the gateway.
    pub started_at: Option<DateTime<Utc>>,
    /// The caller's number, shown to the agent.
    pub caller: Option<String>,
    /// The queue the call came through.
    pub queue: Option<String>,
    /// The flow's issue type, e.g. `subscription.refund`; `None` when none was set.
    pub issue_type: Option<String>,
    /// Seconds from the agent's answer to the hang-up; `None` while the call is on.
    pub talk_seconds: Option<f64>,
    /// The wrap-up form's code; `None` before the wrap-up or when its timer ran out.
    pub disposition: Option<String>,
    /// The record is final (`call_ended` seen, the wrap-up before it).
    pub complete: bool,
}

impl Store {
    /// `agent`'s calls that started at or after `since`, newest first, at
    /// most `limit`. `calls_agent_started` bounds the scan to their calls of that day.
    pub async fn agent_calls_since(
        &self,
        agent: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AgentCall>, StoreError> {
        Ok(sqlx::query_as::<_, AgentCall>(
            "SELECT id, started_at, caller, queue, issue_type, talk_seconds, disposition, complete \
               FROM calls \
              WHERE started_at >= $2 AND agent_id = $1 \
              ORDER BY started_at DESC \
              LIMIT $3",
        )
        .bind(agent)
        .bind(since)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
