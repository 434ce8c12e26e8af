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
/// out every 20 s so a dead TCP path is noticed.
pub async fn pump(
    mut socket: WebSocket,
    inbound: mpsc::Sender<ClientMsg>,
    mut outbound: mpsc::Receiver<ServerMsg>,
) {
    let mut keepalive = tokio::time::interval(Duration::from_secs(20));
    keepalive.tick().await;
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let reply = match ClientMsg::parse(text.as_str()) {
                    Ok(ClientMsg::Ping {}) => Some(ServerMsg::Pong {}),
                    Ok(m) => {
                        if inbound.send(m).await.is_err() {
                            break;
                        }
                        None
                    }
                    Err(e) => Some(ServerMsg::Error { message: format!("bad message: {e}") }),
                };
                if let Some(r) = reply {
                    if socket.send(Message::Text(r.to_json().into())).await.is_err() {
                        break;
                    }
                }
            }
            out = outbound.recv() => {
                let Some(m) = out else { break };
                if socket.send(Message::Text(m.to_json().into())).await.is_err() {
                    break;
                }
            }
            _ = keepalive.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
