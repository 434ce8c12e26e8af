//! Node leases (migration 0016): a running gateway renews its row every
//! few seconds; a node whose lease expired is dead, and one other node
//! closes its open calls as interrupted, once.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError};

/// A dead node's calls, closed by [`Store::take_over_expired`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenOver {
    /// The dead node's name.
    pub node: String,
    /// When its lease ran out.
    pub expired_at: DateTime<Utc>,
    /// The calls closed as interrupted.
    pub calls: Vec<uuid::Uuid>,
}

impl Store {
    /// Takes or renews `node`'s lease until `ttl` from now (database time).
    /// `fresh`: this run of the node starts now (`started_at` is reset).
    pub async fn renew_lease(
        &self,
        node: &str,
        ttl: std::time::Duration,
        fresh: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO node_leases (node, started_at, renewed_at, expires_at) \
             VALUES ($1, now(), now(), now() + $2 * interval '1 second') \
             ON CONFLICT (node) DO UPDATE SET renewed_at = now(), \
                 expires_at = EXCLUDED.expires_at, \
                 started_at = CASE WHEN $3 THEN now() ELSE node_leases.started_at END",
        )
        .bind(node)
        .bind(ttl.as_secs_f64())
        .bind(fresh)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The nodes whose lease is current (database time).
    pub async fn live_nodes(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT node FROM node_leases WHERE expires_at >= now()")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Gives `node`'s lease up (a clean stop: it has no calls left).
    pub async fn release_lease(&self, node: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM node_leases WHERE node = $1")
            .bind(node)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Closes the open calls of one node (not `me`) whose lease has
    /// expired, as interrupted, and removes its lease; `None` when no lease
    /// has expired. The lease row stays locked while its calls are closed:
    /// another node looking at the same time skips it, and a failure
    /// leaves the lease for the next try. Recordings are not linked: the
    /// WAVs are on the dead node's disk (its own recovery at restart
    /// repairs their headers).
    pub async fn take_over_expired(&self, me: &str) -> Result<Option<TakenOver>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "SELECT node, expires_at FROM node_leases \
             WHERE node <> $1 AND expires_at < now() \
             ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(me)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let node: String = row.try_get("node")?;
        let expired_at: DateTime<Utc> = row.try_get("expires_at")?;
        let calls = self.close_interrupted(&node, Utc::now(), None).await?;
        sqlx::query("DELETE FROM node_leases WHERE node = $1")
            .bind(&node)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(TakenOver {
            node,
            expired_at,
            calls,
        }))
    }
}
