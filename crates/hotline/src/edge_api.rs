//! The SIP edge's bans, for operators (docs/security.md, "Scanner and
//! flood defence").
//!
//! | Method | Path | |
//! |---|---|---|
//! | GET | `/api/edge/bans` | the sources the edge drops right now |
//! | DELETE | `/api/edge/bans/{ip}` | lift one ban now (admins; audited) |
//!
//! A ban lifts by itself after `--sip-ban-secs`; lifting it by hand is for
//! a legitimate peer (a PBX after a misconfiguration, an office behind
//! one address) that tripped the rate limit. Bans live in the SIP
//! endpoint's memory: a restart lifts them all.

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hotline_sip::SipHandle;
use hotline_store::Store;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::audit::Actor;

/// What the routes need. Cheap to clone.
#[derive(Clone)]
pub struct EdgeApi {
    /// The SIP endpoint whose guard holds the bans.
    pub sip: SipHandle,
    /// For the audit log.
    pub store: Store,
}

/// The routes, mounted behind `require_admin` (admin.rs `routes_with`).
pub fn routes<S: Clone + Send + Sync + 'static>(st: EdgeApi) -> Router<S> {
    Router::new()
        .route("/api/edge/bans", get(list))
        .route("/api/edge/bans/{ip}", delete(lift))
        .with_state(st)
}

fn unavailable() -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "the SIP endpoint has stopped".into(),
    )
}

#[utoipa::path(
    get,
    path = "/api/edge/bans",
    tag = "edge",
    summary = "The SIP sources banned right now",
    responses(
        (status = 200, description = "`{\"bans\": [{\"ip\", \"remaining_secs\"}]}`, longest remaining first"),
        (status = 401, description = "Not signed in"),
    ),
)]
pub(crate) async fn list(State(st): State<EdgeApi>) -> Result<Json<Value>, ApiError> {
    let bans = st.sip.bans().await.map_err(|_| unavailable())?;
    Ok(Json(json!({
        "bans": bans
            .iter()
            .map(|b| json!({ "ip": b.ip.to_string(), "remaining_secs": b.remaining_secs }))
            .collect::<Vec<_>>(),
    })))
}

#[utoipa::path(
    delete,
    path = "/api/edge/bans/{ip}",
    tag = "edge",
    summary = "Lift a SIP source's ban now",
    params(("ip" = String, Path, description = "IPv4 or IPv6 address")),
    responses(
        (status = 204, description = "Lifted: the source's next message is admitted"),
        (status = 400, description = "Not an IP address"),
        (status = 403, description = "Only admins change things"),
        (status = 404, description = "The address is not banned"),
        (status = 401, description = "Not signed in"),
    ),
)]
pub(crate) async fn lift(
    State(st): State<EdgeApi>,
    actor: Actor,
    Path(ip): Path<String>,
) -> Result<StatusCode, ApiError> {
    actor.require_change()?;
    let addr: IpAddr = ip.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("`{ip}` is not an IP address"),
        )
    })?;
    if !st.sip.unban(addr).await.map_err(|_| unavailable())? {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("{addr} is not banned"),
        ));
    }
    actor
        .record(&st.store, "edge_unban", Some(&addr.to_string()), json!({}))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
