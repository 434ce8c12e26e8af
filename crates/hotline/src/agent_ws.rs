//! `/agent/ws`: the softphone's signalling socket (docs/agent-protocol.md).
//!
//! Transport only: it authenticates the upgrade (session cookie, same
//! origin), then turns each socket into [`AgentSocketEvent`]s for the agent
//! desk and sends the page whatever the desk pushes back. Routing (offers,
//! states) and the call actor (SDP via `AgentMediaHub::accept_offer`, the
//! audio bridge) consume the events; nothing here knows about calls.
//!
//! Mount: `.merge(agent_ws::routes(agent_ws::AgentWs { authenticate, desk }))`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hotline_call::{AgentSocketEvent, BoxFuture, DeskHandle, DeskInput};
use hotline_webphone::protocol::ClientMsg;
use tokio::sync::mpsc;

/// Session cookie in these headers → the agent's id, or `None` (401).
pub type Authenticate = Arc<dyn Fn(HeaderMap) -> BoxFuture<Option<String>> + Send + Sync>;

/// How `/agent/ws` authenticates and where it reports.
#[derive(Clone)]
pub struct AgentWs {
    pub authenticate: Authenticate,
    pub desk: DeskHandle,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// The `/agent/ws` route, mergeable into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(ws: AgentWs) -> Router<S> {
    Router::new()
        .route("/agent/ws", get(upgrade))
        .with_state(ws)
}

async fn upgrade(State(ws): State<AgentWs>, headers: HeaderMap, up: WebSocketUpgrade) -> Response {
    // Cookies ride along on cross-site WebSocket handshakes: insist that a
    // browser's Origin is this host (cross-site WebSocket hijacking).
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        if origin_host != host {
            return StatusCode::FORBIDDEN.into_response();
        }
    }
    let Some(agent) = (ws.authenticate)(headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    up.on_upgrade(move |socket| async move {
        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        let (out_tx, out_rx) = mpsc::channel(64);
        let (in_tx, mut in_rx) = mpsc::channel::<ClientMsg>(64);
        let desk = ws.desk.clone();
        desk.send(DeskInput::Agent(AgentSocketEvent::Connected {
            agent: agent.clone(),
            conn,
            tx: out_tx,
        }))
        .await;
        let forward_agent = agent.clone();
        let forward = tokio::spawn(async move {
            while let Some(msg) = in_rx.recv().await {
                let ev = AgentSocketEvent::Message {
                    agent: forward_agent.clone(),
                    conn,
                    msg,
                };
                desk.send(DeskInput::Agent(ev)).await;
            }
        });
        let closed = hotline_webphone::ws::pump(socket, in_tx, out_rx).await;
        let _ = forward.await;
        tracing::debug!(%agent, conn, ?closed, "agent socket closed");
        ws.desk
            .send(DeskInput::Agent(AgentSocketEvent::Disconnected {
                agent,
                conn,
                dropped: closed == hotline_webphone::ws::Closed::Dropped,
            }))
            .await;
    })
}
