//! The transport half of `/agent/ws`: JSON in and out of one agent's
//! WebSocket. What the messages *mean* (routing, the call actor) is the
//! caller's business; this only parses, serializes and keeps the socket
//! alive.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use tokio::sync::mpsc;

use crate::protocol::{ClientMsg, ServerMsg};

/// Pump one agent's socket until it closes or `outbound` is dropped:
/// every parsed [`ClientMsg`] goes to `inbound` (in order); every
/// [`ServerMsg`] from `outbound` is sent as a JSON text frame. Malformed
/// messages get an `error` reply, `ping` a `pong`; a WebSocket ping goes
/// out every 20 s, and a socket silent for [`SILENT_LIMIT`] (no pong, no
/// page ping) is dropped, so a dead TCP path is noticed.
///
/// Says how the socket ended: [`Closed::Gone`] when the page said so
/// (close code 1000 logout, 1001 page unloaded), [`Closed::Dropped`] for
/// anything else — an error, silence, a close without a code or the page's
/// own 4000 (its half-open detection) — after which the page reconnects.
pub async fn pump(
    mut socket: WebSocket,
    inbound: mpsc::Sender<ClientMsg>,
    mut outbound: mpsc::Receiver<ServerMsg>,
) -> Closed {
    let mut keepalive = tokio::time::interval(Duration::from_secs(20));
    keepalive.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    let closed = loop {
        tokio::select! {
            msg = socket.recv() => {
                last_heard = tokio::time::Instant::now();
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(Some(frame)))) if matches!(frame.code, 1000 | 1001) => {
                        break Closed::Gone;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Closed::Dropped,
                    Some(Ok(_)) => continue,
                };
                let reply = match ClientMsg::parse(text.as_str()) {
                    Ok(ClientMsg::Ping {}) => Some(ServerMsg::Pong {}),
                    Ok(m) => {
                        if inbound.send(m).await.is_err() {
                            break Closed::Gone;
                        }
                        None
                    }
                    Err(e) => Some(ServerMsg::Error { message: format!("bad message: {e}") }),
                };
                if let Some(r) = reply {
                    if socket.send(Message::Text(r.to_json().into())).await.is_err() {
                        break Closed::Dropped;
                    }
                }
            }
            out = outbound.recv() => {
                let Some(m) = out else { break Closed::Gone };
                if socket.send(Message::Text(m.to_json().into())).await.is_err() {
                    break Closed::Dropped;
                }
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() > SILENT_LIMIT {
                    break Closed::Dropped;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break Closed::Dropped;
                }
            }
        }
    };
    let _ = socket.send(Message::Close(None)).await;
    closed
}

/// A socket that has said nothing for this long (the page pings every
/// 15 s, and answers our pings) is taken for dead.
pub const SILENT_LIMIT: Duration = Duration::from_secs(45);

/// How an agent's socket ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The page closed it on purpose (logout, tab closed): the agent is gone.
    Gone,
    /// Lost without a goodbye: the page may be back in a moment.
    Dropped,
}
