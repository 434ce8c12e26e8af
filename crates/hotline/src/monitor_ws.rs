//! `/admin/monitor/ws`: a supervisor's socket for listening to, whispering
//! to and barging into agents' live calls (docs/agent-protocol.md,
//! "Supervisor monitoring"; messages in `hotline_webphone::monitor`).
//!
//! Who: the admin console's cookie (`hotline_admin`) of a supervisor or an
//! admin; agents are refused (403), as is a handshake whose `Origin` is not
//! this host (the cookie rides along on cross-site WebSocket handshakes).
//!
//! Transport only: the page's SDP offer goes to the agents' media hub (the
//! same UDP port and stack as `/agent`), the leg to the desk, which passes
//! it to the call's actor; who hears whom is the call core's business
//! (`hotline-call`, core/monitor.rs). The call reports back what became of
//! the leg, and this socket tells the page. A page monitors one call at a
//! time; the socket closing stops it.
//!
//! A call on another node of the cluster: the offer goes there by the
//! desks' mail (`DeskMail::Monitor`), that node's hub answers it and its
//! call takes the leg, and the answer and the leg's statuses come back by
//! mail (`DeskMail::MonitorReply`); the audio flows between the browser
//! and the call's node, as an agent's does.
//!
//! Mount: `.merge(monitor_ws::routes(monitor_ws::MonitorWs { store, desk }))`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hotline_desk::cluster::{MonitorReply, MonitorRequest};
use hotline_desk::{DeskHandle, DeskInput, MonitorAction, MonitorStatus};
use hotline_store::Store;
use hotline_webphone::monitor::{MonitorClientMsg, MonitorServerMsg};
use tokio::sync::mpsc;

use crate::admin_auth::{cookie_principal, cookie_token, same_origin};

/// What the socket needs. Cheap to clone.
#[derive(Clone)]
pub struct MonitorWs {
    /// Where admin sessions are checked.
    pub store: Store,
    /// The desk passes legs to calls; its hub answers offers.
    pub desk: DeskHandle,
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A socket silent this long (the page pings every 15 s) is dropped.
const SILENT_LIMIT: Duration = Duration::from_secs(45);

/// `GET /admin/monitor/ws`, mergeable into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(ws: MonitorWs) -> Router<S> {
    Router::new()
        .route("/admin/monitor/ws", get(upgrade))
        .with_state(ws)
}

async fn upgrade(
    State(ws): State<MonitorWs>,
    headers: HeaderMap,
    up: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let Some(token) = cookie_token(&headers) else {
        return (StatusCode::UNAUTHORIZED, "sign in at /admin").into_response();
    };
    // GET: the Origin was checked above; the role here (supervisor or admin).
    let principal = match cookie_principal(&ws.store, &Method::GET, &headers, token).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    up.on_upgrade(move |socket| serve(ws, principal.name, socket))
}

/// The call being monitored from this socket.
struct Current {
    call: String,
    session: String,
    via: Via,
}

/// Where the monitored call is.
enum Via {
    /// On this node: the call's statuses.
    Here(mpsc::UnboundedReceiver<MonitorStatus>),
    /// On another node (`node`, once it answered): its replies.
    There {
        node: Option<String>,
        replies: mpsc::UnboundedReceiver<(String, MonitorReply)>,
    },
}

/// Something from the monitored call: a status from this node's call, or
/// a reply from another node's (`None`: the channel closed).
enum Heard {
    Status(Option<MonitorStatus>),
    Reply(Option<(String, MonitorReply)>),
}

/// A monitor session's name: the hub session of its leg on the call's
/// node, unique across a cluster's nodes (the node's random part and a
/// counter).
fn next_session(supervisor: &str, call: &str) -> String {
    static BASE: std::sync::LazyLock<u32> =
        std::sync::LazyLock::new(|| uuid::Uuid::new_v4().as_u64_pair().0 as u32);
    let n = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    format!("monitor:{supervisor}/{call}/{:08x}-{n}", *BASE)
}

async fn serve(ws: MonitorWs, supervisor: String, mut socket: WebSocket) {
    tracing::info!(%supervisor, "supervisor monitor socket open");
    let mut current: Option<Current> = None;
    let mut keepalive = tokio::time::interval(Duration::from_secs(20));
    keepalive.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        let reply = tokio::select! {
            msg = socket.recv() => {
                last_heard = tokio::time::Instant::now();
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                match serde_json::from_str::<MonitorClientMsg>(text.as_str()) {
                    Ok(m) => on_message(&ws, &supervisor, &mut current, m).await,
                    Err(e) => vec![MonitorServerMsg::Error { message: format!("bad message: {e}") }],
                }
            }
            heard = heard(&mut current) => match heard {
                Heard::Status(st) => on_status(&ws, &mut current, st).await,
                Heard::Reply(reply) => on_reply(&mut current, reply),
            },
            _ = keepalive.tick() => {
                if last_heard.elapsed() > SILENT_LIMIT {
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
                Vec::new()
            }
        };
        for m in reply {
            if socket
                .send(Message::Text(m.to_json().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    }
    if let Some(c) = current.take() {
        stop(&ws, &supervisor, c).await;
    }
    tracing::info!(%supervisor, "supervisor monitor socket closed");
}

async fn on_message(
    ws: &MonitorWs,
    supervisor: &str,
    current: &mut Option<Current>,
    msg: MonitorClientMsg,
) -> Vec<MonitorServerMsg> {
    match msg {
        MonitorClientMsg::Ping {} => vec![MonitorServerMsg::Pong {}],
        MonitorClientMsg::Hello {} => Vec::new(),
        MonitorClientMsg::Monitor { call, mode, sdp } => {
            let mut out = Vec::new();
            if let Some(c) = current.take() {
                let old = c.call.clone();
                stop(ws, supervisor, c).await;
                out.push(MonitorServerMsg::MonitorStopped {
                    call: old,
                    reason: "supervisor".into(),
                });
            }
            let session = next_session(supervisor, &call);
            if !ws.desk.call_here(&call).await {
                // Another node's call (or none): its node answers.
                let (tx, replies) = mpsc::unbounded_channel();
                ws.desk
                    .send(DeskInput::MonitorElsewhere {
                        to: None,
                        supervisor: supervisor.to_owned(),
                        call: call.clone(),
                        session: session.clone(),
                        request: MonitorRequest::Start { mode, sdp },
                        replies: Some(tx),
                    })
                    .await;
                *current = Some(Current {
                    call,
                    session,
                    via: Via::There {
                        node: None,
                        replies,
                    },
                });
                return out;
            }
            let leg = match ws.desk.hub().accept_offer(&session, &sdp).await {
                Ok(leg) => leg,
                Err(e) => {
                    out.push(MonitorServerMsg::Error {
                        message: format!("audio could not be set up: {e}"),
                    });
                    return out;
                }
            };
            out.push(MonitorServerMsg::SdpAnswer {
                call: call.clone(),
                sdp: leg.answer_sdp.clone(),
            });
            let (tx, rx) = mpsc::unbounded_channel();
            ws.desk
                .send(DeskInput::Monitor {
                    call: call.clone(),
                    supervisor: supervisor.to_owned(),
                    action: MonitorAction::Start {
                        mode,
                        leg,
                        session: session.clone(),
                        status: tx,
                    },
                })
                .await;
            *current = Some(Current {
                call,
                session,
                via: Via::Here(rx),
            });
            out
        }
        MonitorClientMsg::MonitorMode { mode } => match current {
            Some(c) => {
                let input = match &c.via {
                    Via::Here(_) => DeskInput::Monitor {
                        call: c.call.clone(),
                        supervisor: supervisor.to_owned(),
                        action: MonitorAction::Mode(mode),
                    },
                    Via::There { node, .. } => DeskInput::MonitorElsewhere {
                        to: node.clone(),
                        supervisor: supervisor.to_owned(),
                        call: c.call.clone(),
                        session: c.session.clone(),
                        request: MonitorRequest::Mode { mode },
                        replies: None,
                    },
                };
                ws.desk.send(input).await;
                Vec::new()
            }
            None => vec![MonitorServerMsg::Error {
                message: "not monitoring a call".into(),
            }],
        },
        MonitorClientMsg::MonitorStop {} => match current.take() {
            Some(c) => {
                let call = c.call.clone();
                stop(ws, supervisor, c).await;
                vec![MonitorServerMsg::MonitorStopped {
                    call,
                    reason: "supervisor".into(),
                }]
            }
            None => Vec::new(),
        },
    }
}

/// The next word from the monitored call; pending while there is none.
async fn heard(current: &mut Option<Current>) -> Heard {
    match current {
        Some(Current {
            via: Via::Here(status),
            ..
        }) => Heard::Status(status.recv().await),
        Some(Current {
            via: Via::There { replies, .. },
            ..
        }) => Heard::Reply(replies.recv().await),
        None => std::future::pending().await,
    }
}

/// A reply from the node of a call monitored from here: the answer to the
/// page's offer, or a status (its hub session is that node's to close).
fn on_reply(
    current: &mut Option<Current>,
    reply: Option<(String, MonitorReply)>,
) -> Vec<MonitorServerMsg> {
    let Some(c) = current.as_mut() else {
        return Vec::new();
    };
    let call = c.call.clone();
    let Some((from, reply)) = reply else {
        // The desk is gone.
        *current = None;
        return vec![MonitorServerMsg::MonitorStopped {
            call,
            reason: "call_ended".into(),
        }];
    };
    if let Via::There { node, .. } = &mut c.via {
        node.get_or_insert(from);
    }
    match reply {
        MonitorReply::Answer { sdp } => vec![MonitorServerMsg::SdpAnswer { call, sdp }],
        MonitorReply::Failed { message } => {
            *current = None;
            vec![MonitorServerMsg::Error { message }]
        }
        MonitorReply::Status { status } => match MonitorStatus::from(status) {
            MonitorStatus::Started(mode) => vec![MonitorServerMsg::MonitorStarted { call, mode }],
            MonitorStatus::Mode(mode) => vec![MonitorServerMsg::MonitorMode { call, mode }],
            MonitorStatus::Stopped(reason) => {
                *current = None;
                vec![MonitorServerMsg::MonitorStopped { call, reason }]
            }
        },
    }
}

async fn on_status(
    ws: &MonitorWs,
    current: &mut Option<Current>,
    status: Option<MonitorStatus>,
) -> Vec<MonitorServerMsg> {
    let Some(c) = current.as_ref() else {
        return Vec::new();
    };
    let call = c.call.clone();
    let msg = match status {
        Some(MonitorStatus::Started(mode)) => MonitorServerMsg::MonitorStarted { call, mode },
        Some(MonitorStatus::Mode(mode)) => MonitorServerMsg::MonitorMode { call, mode },
        Some(MonitorStatus::Stopped(reason)) => {
            if let Some(c) = current.take() {
                ws.desk.hub().close(&c.session).await;
            }
            MonitorServerMsg::MonitorStopped { call, reason }
        }
        // The call's actor is gone without a word: the call is over.
        None => {
            if let Some(c) = current.take() {
                ws.desk.hub().close(&c.session).await;
            }
            MonitorServerMsg::MonitorStopped {
                call,
                reason: "call_ended".into(),
            }
        }
    };
    vec![msg]
}

/// Leaves the call: the actor records `monitor_stopped` (reason
/// `supervisor`); the hub session is closed here too, in case the call is
/// already gone.
async fn stop(ws: &MonitorWs, supervisor: &str, c: Current) {
    match c.via {
        Via::Here(_) => {
            ws.desk
                .send(DeskInput::Monitor {
                    call: c.call,
                    supervisor: supervisor.to_owned(),
                    action: MonitorAction::Stop,
                })
                .await;
            ws.desk.hub().close(&c.session).await;
        }
        // The call's node closes its hub session when the leg leaves.
        Via::There { node, .. } => {
            ws.desk
                .send(DeskInput::MonitorElsewhere {
                    to: node,
                    supervisor: supervisor.to_owned(),
                    call: c.call,
                    session: c.session,
                    request: MonitorRequest::Stop,
                    replies: None,
                })
                .await;
        }
    }
}
