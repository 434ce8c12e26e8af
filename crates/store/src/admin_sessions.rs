//! Admin console sessions (`migrations/0009_roles.sql`): the `hotline_admin`
//! cookie's token, of which only the SHA-256 is stored.
//!
//! For: `POST /admin/login`, the admin API's cookie check, `POST /admin/logout`.
//! Not for: the desk (`agent_sessions`, [`Store::create_session`]) — a desk
//! cookie never opens the admin API, nor the reverse. Who may sign in is the
//! caller's rule (admins and supervisors); this module stores whoever it is given.
//!
//! ```no_run
//! # async fn demo(store: hotline_store::Store) -> Result<(), hotline_store::StoreError> {
//! let token = store.create_admin_session("boss", std::time::Duration::from_secs(3600)).await?;
//! if let Some(s) = store.admin_session(&token).await? {
//!     assert_eq!(s.agent, "boss");
//! }
//! store.delete_admin_session(&token).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};

use crate::agents::{Role, hex, plausible_token, session_token_hash};
use crate::{Store, StoreError};

/// Whose live admin session a token is.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminSession {
    /// The person's login name (`agents.id`).
    pub agent: String,
    /// Their role now (not at sign-in: a demotion takes effect at once).
    #[sqlx(try_from = "String")]
    pub role: Role,
}

impl Store {
    /// Starts an admin console session for `agent`, valid for `ttl`; returns
    /// the cookie's token (64 hex digits). Expired sessions are swept on the way.
    pub async fn create_admin_session(
        &self,
        agent: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        let token = hex(&raw);
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at < now()")
            .execute(self.pool())
            .await?;
        let n = sqlx::query(
            "INSERT INTO admin_sessions (token_hash, agent, expires_at) \
             SELECT $1, id, now() + $3 * interval '1 second' FROM agents WHERE id = $2",
        )
        .bind(session_token_hash(&token))
        .bind(agent)
        .bind(ttl.as_secs_f64())
        .execute(self.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "agent",
                id: agent.to_owned(),
            });
        }
        Ok(token)
    }

    /// The person whose live session `token` is (unexpired, person active),
    /// with their current role, marking the session seen; `None` otherwise.
    pub async fn admin_session(&self, token: &str) -> Result<Option<AdminSession>, StoreError> {
        if !plausible_token(token) {
            return Ok(None);
        }
        Ok(sqlx::query_as::<_, AdminSession>(
            "UPDATE admin_sessions s SET last_seen_at = now() FROM agents a \
              WHERE s.token_hash = $1 AND s.expires_at > now() AND a.id = s.agent AND a.active \
             RETURNING s.agent, a.role",
        )
        .bind(session_token_hash(token))
        .fetch_optional(self.pool())
        .await?)
    }

    /// Ends an admin session; whether there was one.
    pub async fn delete_admin_session(&self, token: &str) -> Result<bool, StoreError> {
        if !plausible_token(token) {
            return Ok(false);
        }
        let n = sqlx::query("DELETE FROM admin_sessions WHERE token_hash = $1")
            .bind(session_token_hash(token))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
