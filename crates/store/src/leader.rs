//! Electing the one ACD leader of a cluster (migration 0020; issue 15,
//! docs/architecture.md "One ACD for the cluster"). No consensus of our
//! own: a PostgreSQL advisory lock held on a connection of the node's own.
//! The server releases it when that session ends — the process, the
//! machine or the network to the database gone — and another node's next
//! try takes it and bumps the epoch in `acd_leader`.

use chrono::{DateTime, Utc};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{Store, StoreError};

/// The advisory lock key (`"Hotline"` and 1).
pub const ACD_LOCK: i64 = 0x486f_746c_696e_6501;

/// Who leads the ACD, as `acd_leader` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The leading node's name.
    pub node: String,
    /// Bumped by every new leadership.
    pub epoch: i64,
    /// When this leadership began (database time).
    pub since: DateTime<Utc>,
}

/// One node's part in the election: call [`round`](Self::round) about once
/// a second.
pub struct Elector {
    store: Store,
    node: String,
    conn: Option<PgConnection>,
    epoch: Option<i64>,
}

impl Elector {
    /// An elector for `node`; it holds no connection until its first round.
    pub fn new(store: Store, node: impl Into<String>) -> Self {
        Self {
            store,
            node: node.into(),
            conn: None,
            epoch: None,
        }
    }

    /// Tries to lead, or checks that the lock's session is still there.
    /// `Some(epoch)` while this node leads; an error loses the session
    /// (and with it any leadership: the server releases the lock).
    pub async fn round(&mut self) -> Result<Option<i64>, StoreError> {
        let result = self.try_round().await;
        if result.is_err() {
            self.conn = None;
            self.epoch = None;
        }
        result
    }

    async fn try_round(&mut self) -> Result<Option<i64>, StoreError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self
                .conn
                .insert(self.store.pool().acquire().await?.detach()),
        };
        if let Some(epoch) = self.epoch {
            conn.ping().await?;
            return Ok(Some(epoch));
        }
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(ACD_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if !got {
            return Ok(None);
        }
        let epoch: i64 = sqlx::query_scalar(
            "INSERT INTO acd_leader (id, node, epoch, since) VALUES (1, $1, 1, now()) \
             ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node, \
                 epoch = acd_leader.epoch + 1, since = now() \
             RETURNING epoch",
        )
        .bind(&self.node)
        .fetch_one(&mut *conn)
        .await?;
        self.epoch = Some(epoch);
        Ok(Some(epoch))
    }

    /// The database's process id of the session holding (or trying for)
    /// the lock, when there is one (for tests and diagnostics).
    pub async fn backend_pid(&mut self) -> Option<i32> {
        let conn = self.conn.as_mut()?;
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .ok()
    }

    /// Steps down: closes the session, which releases the lock.
    pub async fn resign(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.close().await;
        }
        self.epoch = None;
    }
}

impl Store {
    /// The current (or last) ACD leader, if any node ever led.
    pub async fn acd_leader(&self) -> Result<Option<Leader>, StoreError> {
        let row: Option<(String, i64, DateTime<Utc>)> =
            sqlx::query_as("SELECT node, epoch, since FROM acd_leader WHERE id = 1")
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(node, epoch, since)| Leader { node, epoch, since }))
    }
}
