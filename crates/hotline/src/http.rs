//! The HTTP listener: health, the admin API and the agent softphone.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hotline_call::ActiveCalls;
use serde_json::{Value, json};
use tokio::sync::watch;

/// What the HTTP handlers read.
#[derive(Clone)]
pub struct AppState {
    pub active: ActiveCalls,
    pub draining: watch::Receiver<bool>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// 200 while taking calls; 503 once draining, so a balancer stops sending new ones.
async fn healthz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let draining = *st.draining.borrow();
    let code = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let status = if draining { "draining" } else { "ok" };
    (
        code,
        Json(json!({ "status": status, "active_calls": st.active.get() })),
    )
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
