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
//! endpoint's memory and, through [`spawn_ban_keeper`], in the database
//! (`edge_bans`): a restart restores them with their time left.

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

/// Keeps this node's bans in the database (migration 0019): restores the
/// saved ones at start (the first moment after the SIP socket is bound
/// and before they are restored is not covered), then saves the list
/// within a second of any change — a ban, a lift, an expiry. A SIGKILL
/// loses at most that second.
pub fn spawn_ban_keeper(store: Store, sip: SipHandle, node: String) -> tokio::task::JoinHandle<()> {
    use std::time::Duration;
    tokio::spawn(async move {
        crate::records::migrated(&store, "SIP bans", Duration::from_secs(2)).await;
        // Saving before the saved list is read would erase it: retry the read.
        let saved = loop {
            match store.load_bans(&node).await {
                Ok(saved) => break saved,
                Err(e) => {
                    tracing::warn!(error = %e, "saved SIP bans not read; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        };
        let bans: Vec<(IpAddr, Duration)> = saved
            .into_iter()
            .filter_map(|(ip, left)| match ip.parse::<IpAddr>() {
                Ok(ip) => Some((ip, left)),
                Err(_) => {
                    tracing::warn!(%ip, "saved SIP ban is not an address; skipped");
                    None
                }
            })
            .collect();
        if !bans.is_empty() {
            tracing::info!(bans = bans.len(), "SIP bans restored");
            sip.restore_bans(bans).await;
        }
        let mut last = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let st = sip.edge_stats();
            let key = (st.bans, st.banned_now);
            if last == Some(key) {
                continue;
            }
            let Ok(bans) = sip.bans().await else {
                break; // the endpoint has stopped
            };
            let list: Vec<(String, Duration)> = bans
                .iter()
                .map(|b| (b.ip.to_string(), Duration::from_secs(b.remaining_secs)))
                .collect();
            match store.save_bans(&node, &list).await {
                Ok(()) => {
                    tracing::info!(bans = list.len(), "SIP bans saved");
                    last = Some(key);
                }
                Err(e) => tracing::warn!(error = %e, "SIP bans not saved; retrying"),
            }
        }
    })
}
