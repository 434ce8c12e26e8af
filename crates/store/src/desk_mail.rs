//! The desk's mail between nodes (migration 0021; issue 15): a table the
//! sender inserts into and NOTIFY on [`DESK_CHANNEL`] with the recipient's
//! name, so the recipient wakes and takes its rows. No size limit (NOTIFY's
//! payload is capped at 8,000 bytes; an agent's SDP offer with the call's
//! IVR data can come near it), and mail waits in the table while its
//! recipient's listener reconnects.

use crate::{Store, StoreError};

/// The channel a sender notifies with the recipient node's name.
pub const DESK_CHANNEL: &str = "hotline_desk";

/// A listener for mail notifications ([`Store::listen_desk_mail`]).
pub struct DeskMailListener(sqlx::postgres::PgListener);

impl DeskMailListener {
    /// The node the next notification names. `Ok(None)`: the connection
    /// was lost (the next call reconnects; take the mail anyway, a
    /// notification may have been missed).
    pub async fn next(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}

impl Store {
    /// Sends `batch` (recipient node, body), in order, and wakes each
    /// recipient once.
    pub async fn send_desk_mail(&self, batch: &[(String, String)]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (to, body): (Vec<&str>, Vec<&str>) =
            batch.iter().map(|(t, b)| (t.as_str(), b.as_str())).unzip();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO desk_mail (to_node, body) \
             SELECT t, b FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS m(t, b, i) \
             ORDER BY i",
        )
        .bind(&to)
        .bind(&body)
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify($2, n) FROM (SELECT DISTINCT unnest($1::text[]) AS n) x")
            .bind(&to)
            .bind(DESK_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes (deletes and returns) the mail for `node`, oldest first.
    pub async fn take_desk_mail(&self, node: &str) -> Result<Vec<String>, StoreError> {
        let mut rows: Vec<(i64, String)> =
            sqlx::query_as("DELETE FROM desk_mail WHERE to_node = $1 RETURNING id, body")
                .bind(node)
                .fetch_all(self.pool())
                .await?;
        rows.sort_by_key(|r| r.0);
        Ok(rows.into_iter().map(|r| r.1).collect())
    }

    /// Drops what waits for `node` (at its start: mail for its previous
    /// life's calls and pages) and mail older than an hour for anyone (a
    /// node that never came back). How many rows went.
    pub async fn discard_desk_mail(&self, node: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM desk_mail WHERE to_node = $1 OR created_at < now() - interval '1 hour'",
        )
        .bind(node)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Listens for mail notifications ([`DESK_CHANNEL`]).
    pub async fn listen_desk_mail(&self) -> Result<DeskMailListener, StoreError> {
        let mut l = sqlx::postgres::PgListener::connect_with(self.pool()).await?;
        l.listen(DESK_CHANNEL).await?;
        Ok(DeskMailListener(l))
    }
}
