//! SIP sources a node's edge policy banned (migration 0019), so a ban
//! outlives a restart: the gateway saves its ban list when it changes and
//! restores it at start.

use std::time::Duration;

use crate::{Store, StoreError};

impl Store {
    /// Replaces `node`'s saved bans with `bans` (address, time left).
    pub async fn save_bans(
        &self,
        node: &str,
        bans: &[(String, Duration)],
    ) -> Result<(), StoreError> {
        let (ips, secs): (Vec<String>, Vec<f64>) = bans
            .iter()
            .map(|(ip, left)| (ip.clone(), left.as_secs_f64()))
            .unzip();
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM edge_bans WHERE node = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO edge_bans (node, ip, until) \
             SELECT $1, u.ip, now() + u.secs * interval '1 second' \
             FROM UNNEST($2::text[], $3::float8[]) AS u(ip, secs)",
        )
        .bind(node)
        .bind(&ips)
        .bind(&secs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `node`'s saved bans that have not lifted yet: address and time left.
    pub async fn load_bans(&self, node: &str) -> Result<Vec<(String, Duration)>, StoreError> {
        let rows: Vec<(String, f64)> = sqlx::query_as(
            "SELECT ip, extract(epoch FROM until - now())::float8 FROM edge_bans \
             WHERE node = $1 AND until > now() ORDER BY ip",
        )
        .bind(node)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(ip, secs)| (ip, Duration::from_secs_f64(secs.max(0.0))))
            .collect())
    }
}
