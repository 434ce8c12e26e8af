//! The admin side of the audit log: who did what from which address
//! ([`Actor`], [`write`]), and `GET /api/audit` to read it.
//!
//! Written: sign-ins (`admin_login`, `admin_login_failed`,
//! `admin_login_refused`, `admin_logout`), agent and queue changes
//! (`agent_create`, `agent_update`, `agent_delete`, `role_change`,
//! `queue_create`, `queue_update`, `queue_delete`, `queue_members`,
//! `callback_cancel`), recordings (`recording_listen`, `recording_download`);
//! other parts add theirs (flows, prompts) through [`Actor::record`].
//! The actor is the user's login name, or `token` for the bearer token.
//!
//! A failed audit write is logged as an error and does not undo or refuse
//! the request it describes (that already happened).
//!
//! `GET /api/audit?limit=N&before=ID`: `{"entries": [AuditEntry], "next": ID|null}`,
//! newest first; `next` is the `before` of the following page (keyset on
//! the id, so every page costs the same).

use std::net::IpAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use hotline_store::{AuditEntry, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ApiError, Principal};
use crate::http::ClientIp;

/// Who made an admin request and from where; an extractor for handlers
/// behind `require_admin` (which puts the [`Principal`] in).
#[derive(Clone, Debug)]
pub struct Actor {
    pub principal: Principal,
    pub ip: Option<IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!("an admin route is mounted without require_admin");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            })?;
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        Ok(Actor { principal, ip })
    }
}

impl Actor {
    /// 403 unless this actor may change things.
    pub fn require_change(&self) -> Result<(), ApiError> {
        self.principal.require_change()
    }

    /// Appends `action` on `subject` to the audit log.
    pub async fn record(&self, store: &Store, action: &str, subject: Option<&str>, details: Value) {
        write(
            store,
            &self.principal.name,
            action,
            subject,
            details,
            self.ip,
        )
        .await;
    }
}

/// Appends to the audit log; a failure is logged, not returned.
pub async fn write(
    store: &Store,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    details: Value,
    ip: Option<IpAddr>,
) {
    if let Err(e) = store.audit_from(actor, action, subject, details, ip).await {
        tracing::error!(error = %e, actor, action, "cannot write the audit entry");
    }
}

/// `?limit=` (default 100, 1–500) and `?before=` (an entry id).
#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
    before: Option<i64>,
}

/// A page of the audit log.
#[derive(Serialize)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    /// `before` for the next (older) page; `null` on the last one.
    next: Option<i64>,
}

/// `GET /api/audit`, for admin.rs to mount behind `require_admin`.
pub fn routes<S: Clone + Send + Sync + 'static>(store: Store) -> Router<S> {
    Router::new()
        .route("/api/audit", get(list))
        .with_state(store)
}

#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "audit",
    summary = "Page through the audit log (newest first)",
    responses(
        (status = 200, description = "Page through the audit log (newest first)"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn list(
    State(store): State<Store>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let entries = store.audit_page(q.before, limit).await?;
    let next = if entries.len() as i64 == limit {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage { entries, next }))
}
