//! `/agent/ws`: the softphone's signalling socket (docs/agent-protocol.md).
//!
//! Transport only: it authenticates the upgrade (session cookie, same
//! origin), then turns each socket into [`AgentSocketEvent`]s for the agent
//! desk and sends the page whatever the desk pushes back. Routing (offers,
//! states) and the call actor (SDP via `AgentMediaHub::accept_offer`, the
//! audio bridge) consume the events; nothing here knows about calls.
//!
//! It also keeps the page's `overview` current: every [`OVERVIEW_EVERY`]
//! it asks the desk for the agent's queues and callbacks, adds the agent's
//! calls today from the records, and sends the result when it changed.
//!
//! Mount: `.merge(agent_ws::routes(agent_ws::AgentWs { authenticate, desk, store }))`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration as Days, FixedOffset, Utc};
use hotline_call::BoxFuture;
use hotline_desk::{AgentSocketEvent, DeskHandle, DeskInput};
use hotline_store::{AgentCall, Store};
use hotline_webphone::protocol::{AgentToday, CallSummary, ClientMsg, ServerMsg};
use tokio::sync::mpsc;

use crate::http::ClientIp;

/// Session cookie in these headers → the agent's id, or `None` (401).
pub type Authenticate = Arc<dyn Fn(HeaderMap) -> BoxFuture<Option<String>> + Send + Sync>;

/// How `/agent/ws` authenticates and where it reports.
#[derive(Clone)]
pub struct AgentWs {
    pub authenticate: Authenticate,
    pub desk: DeskHandle,
    /// Where the agent's calls today come from.
    pub store: Store,
    /// Origins allowed besides the request's own host (`--allowed-origin`,
    /// e.g. `https://desk.example.com`).
    pub allowed_origins: Arc<Vec<String>>,
}

/// How often a page's overview is checked for changes (and so at most how
/// often it is sent): waits tick by the second, a few seconds late is fine.
pub const OVERVIEW_EVERY: Duration = Duration::from_secs(2);
/// The calls today are re-read at least this often (others' edits, midnight).
const CALLS_REFRESH: Duration = Duration::from_secs(30);
/// After a wrap-up, how many checks to re-read the records until its call
/// is complete there (the record is written a moment after the wrap-up).
const CALL_RECORD_CHECKS: u32 = 10;
/// At most this many calls today are listed.
const CALLS_LISTED: i64 = 50;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A socket's id: unique across the nodes of a cluster, whose leader's
/// desk tells an agent's sockets apart by it (a page that moves from one
/// node to another must not share an id with its old socket there): the
/// node's random high half, and a counter.
fn next_conn() -> u64 {
    static BASE: std::sync::LazyLock<u64> =
        std::sync::LazyLock::new(|| uuid::Uuid::new_v4().as_u64_pair().0 << 32);
    *BASE | (NEXT_CONN.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

/// The `/agent/ws` route, mergeable into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(ws: AgentWs) -> Router<S> {
    Router::new()
        .route("/agent/ws", get(upgrade))
        // Before the upgrade is even looked at.
        .route_layer(axum::middleware::from_fn_with_state(
            ws.allowed_origins.clone(),
            check_origin,
        ))
        .with_state(ws)
}

/// Cookies ride along on cross-site WebSocket handshakes: a browser's
/// Origin must be this host (the request's `Host`) or one configured with
/// `--allowed-origin`, else 403 (cross-site WebSocket hijacking). No Origin
/// at all (not a browser: scripts, probes) is allowed only from loopback.
async fn check_origin(
    State(allowed): State<Arc<Vec<String>>>,
    ClientIp(peer): ClientIp,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers();
    let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = header_str(header::ORIGIN).map(str::to_owned);
    let host = header_str(header::HOST).map(str::to_owned);
    if origin_allowed(origin.as_deref(), host.as_deref(), &allowed, peer) {
        return next.run(req).await;
    }
    tracing::warn!(origin = ?origin, peer = ?peer, "agent socket refused: foreign or missing Origin");
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({ "error": "origin not allowed" })),
    )
        .into_response()
}

/// [`check_origin`]'s rule.
fn origin_allowed(
    origin: Option<&str>,
    host: Option<&str>,
    allowed: &[String],
    peer: Option<IpAddr>,
) -> bool {
    let Some(origin) = origin.map(|o| o.trim().trim_end_matches('/')) else {
        return peer.is_some_and(|p| p.is_loopback());
    };
    if allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((scheme, origin_host)) = origin.split_once("://") else {
        return false; // `null` (sandboxed, file:) and garbage
    };
    let scheme_ok = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    scheme_ok && host.is_some_and(|h| !h.is_empty() && h.eq_ignore_ascii_case(origin_host))
}

async fn upgrade(
    State(ws): State<AgentWs>,
    headers: HeaderMap,
    uri: Uri,
    up: WebSocketUpgrade,
) -> Response {
    let Some(agent) = (ws.authenticate)(headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let offset = utc_offset(uri.query().unwrap_or(""));
    up.on_upgrade(move |socket| async move {
        let conn = next_conn();
        let (out_tx, out_rx) = mpsc::channel(64);
        let out_tx_overview = out_tx.clone();
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
        let overview = tokio::spawn(keep_overview(
            ws.desk.clone(),
            ws.store.clone(),
            agent.clone(),
            offset,
            out_tx_overview,
        ));
        let closed = hotline_webphone::ws::pump(socket, in_tx, out_rx).await;
        overview.abort();
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

/// The page's time zone from `?utc_offset_min=` (minutes east of UTC, what
/// `-new Date().getTimezoneOffset()` gives); UTC when absent or absurd.
fn utc_offset(query: &str) -> FixedOffset {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "utc_offset_min")
        .and_then(|(_, v)| v.parse::<i32>().ok())
        .filter(|m| m.abs() <= 14 * 60)
        .and_then(|m| FixedOffset::east_opt(m * 60))
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC is a valid offset"))
}

/// The start of `now`'s day in the agent's time zone.
fn start_of_day(now: DateTime<Utc>, offset: FixedOffset) -> DateTime<Utc> {
    let local = now.with_timezone(&offset);
    let midnight = local
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(offset).single());
    match midnight {
        Some(m) => m.with_timezone(&Utc),
        None => now - Days::hours(24),
    }
}

fn summary(c: AgentCall) -> CallSummary {
    CallSummary {
        call: c.id.to_string(),
        at: c
            .started_at
            .map(|t| t.timestamp_millis().max(0) as u64)
            .unwrap_or(0),
        caller: c.caller.unwrap_or_default(),
        queue: c.queue,
        issue_type: c.issue_type,
        talk_seconds: c.talk_seconds.map(|s| s.max(0.0).round() as u64),
        disposition: c.disposition,
    }
}

/// `agent`'s figures from `since` to now: the reports' per-agent figures
/// (docs/metrics.md), so the page and the reports agree.
async fn agent_today(
    store: &Store,
    agent: &str,
    since: DateTime<Utc>,
) -> Result<AgentToday, hotline_store::StoreError> {
    let now = Utc::now().max(since + chrono::Duration::seconds(1));
    let mut q = hotline_store::reports::ReportQuery::new(since, now, "UTC");
    q.granularity = hotline_store::reports::Granularity::None;
    q.agent = Some(agent.to_owned());
    let rows = store.report_agents(&q).await?;
    let f = rows
        .into_iter()
        .find(|r| r.agent == agent)
        .map(|r| r.figures);
    Ok(match f {
        Some(f) => AgentToday {
            calls_handled: f.answered_by_agent.max(0) as u64,
            aht_secs: f.aht_secs,
            csat_avg: f.csat_avg,
            csat_responses: f.csat_responses.max(0) as u64,
        },
        None => AgentToday {
            calls_handled: 0,
            aht_secs: None,
            csat_avg: None,
            csat_responses: 0,
        },
    })
}

/// Sends `agent`'s page its `overview` now and whenever it changes, until
/// the page is gone (aborted with the socket).
async fn keep_overview(
    desk: DeskHandle,
    store: Store,
    agent: String,
    offset: FixedOffset,
    page: mpsc::Sender<ServerMsg>,
) {
    let mut tick = tokio::time::interval(OVERVIEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut calls: Vec<CallSummary> = Vec::new();
    let mut calls_read: Option<Instant> = None;
    let mut finished = 0u64;
    // A wrapped-up call whose record is not complete yet, and checks left.
    let mut awaiting: Option<(String, u32)> = None;
    let mut last: Option<ServerMsg> = None;
    let mut today: Option<AgentToday> = None;
    loop {
        tick.tick().await;
        let Some(live) = desk.overview(&agent).await else {
            return;
        };
        if live.finished != finished {
            finished = live.finished;
            awaiting = live.last_finished.map(|c| (c, CALL_RECORD_CHECKS));
        }
        let stale = calls_read.is_none_or(|t| t.elapsed() >= CALLS_REFRESH);
        if stale || awaiting.is_some() {
            let since = start_of_day(Utc::now(), offset);
            match store.agent_calls_since(&agent, since, CALLS_LISTED).await {
                Ok(rows) => {
                    if let Some((call, left)) = &mut awaiting {
                        let done = rows.iter().any(|r| r.id.to_string() == *call && r.complete);
                        *left = left.saturating_sub(1);
                        if done || *left == 0 {
                            awaiting = None;
                        }
                    }
                    calls = rows.into_iter().map(summary).collect();
                    calls_read = Some(Instant::now());
                }
                // Keep showing what was read last; the next check retries.
                Err(e) => tracing::warn!(%agent, error = %e, "agent's calls today not read"),
            }
            match agent_today(&store, &agent, since).await {
                Ok(t) => today = Some(t),
                Err(e) => tracing::warn!(%agent, error = %e, "agent's figures today not read"),
            }
        }
        let msg = ServerMsg::Overview {
            queues: live.queues,
            calls_today: calls.clone(),
            callbacks: live.callbacks,
            today: today.clone(),
        };
        if last.as_ref() != Some(&msg) {
            if page.send(msg.clone()).await.is_err() {
                return;
            }
            last = Some(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real route: a foreign Origin is refused before the upgrade.
    #[tokio::test]
    async fn a_foreign_origin_gets_403_before_the_upgrade() {
        use axum::body::Body;
        use tower::ServiceExt;
        let db = hotline_store::testing::fresh_db().await;
        let hub = hotline_webphone::AgentMediaHub::bind_with(
            "127.0.0.1:0".parse().unwrap(),
            hotline_webphone::HubConfig::default(),
        )
        .await
        .unwrap();
        let desk = hotline_desk::AgentDesk::start(Vec::new(), Vec::new(), hub);
        let authenticate: Authenticate = Arc::new(|_| Box::pin(async { Some("a1".to_string()) }));
        let app: Router = routes(AgentWs {
            authenticate,
            desk,
            store: db.store.clone(),
            allowed_origins: Arc::new(vec!["https://desk.example.com".into()]),
        });
        let send = |origin: Option<&'static str>, peer: &'static str| {
            let app = app.clone();
            async move {
                let mut req = axum::http::Request::get("/agent/ws")
                    .header(header::HOST, "gw.example.com:8080")
                    .header(header::CONNECTION, "upgrade")
                    .header(header::UPGRADE, "websocket")
                    .header(header::SEC_WEBSOCKET_VERSION, "13")
                    .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
                if let Some(o) = origin {
                    req = req.header(header::ORIGIN, o);
                }
                let mut req = req.body(Body::empty()).unwrap();
                let peer: std::net::SocketAddr = peer.parse().unwrap();
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                app.oneshot(req).await.unwrap().status()
            }
        };
        let far = "203.0.113.9:5000";
        assert_eq!(
            send(Some("https://evil.example"), far).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(send(None, far).await, StatusCode::FORBIDDEN);
        // Past the Origin check (a oneshot request cannot really upgrade).
        for (origin, peer) in [
            (Some("http://gw.example.com:8080"), far),
            (Some("https://desk.example.com"), far),
            (None, "127.0.0.1:5000"),
        ] {
            assert_ne!(
                send(origin, peer).await,
                StatusCode::FORBIDDEN,
                "{origin:?}"
            );
        }
    }

    #[test]
    fn origin_rule() {
        let lo: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let far: Option<IpAddr> = Some("203.0.113.9".parse().unwrap());
        let host = Some("desk.example.com:8080");
        let none: &[String] = &[];
        let extra = ["https://phone.example.org/".to_string()];
        // Same host, any case; http or https.
        for o in [
            "http://desk.example.com:8080",
            "HTTPS://Desk.Example.com:8080",
        ] {
            assert!(origin_allowed(Some(o), host, none, far), "{o}");
        }
        // Foreign, another port, null, garbage, no Host.
        for o in [
            "http://evil.example.com",
            "http://desk.example.com",
            "http://desk.example.com:8080.evil.com",
            "null",
            "ws://desk.example.com:8080",
        ] {
            assert!(!origin_allowed(Some(o), host, none, far), "{o}");
        }
        assert!(!origin_allowed(Some("http://x"), None, none, lo));
        // Configured extra origins.
        assert!(origin_allowed(
            Some("https://phone.example.org"),
            host,
            &extra,
            far
        ));
        assert!(!origin_allowed(
            Some("http://phone.example.org"),
            host,
            &extra,
            far
        ));
        // No Origin: loopback only.
        assert!(origin_allowed(None, host, none, lo));
        assert!(origin_allowed(
            None,
            host,
            none,
            Some("::1".parse().unwrap())
        ));
        assert!(!origin_allowed(None, host, none, far));
        assert!(!origin_allowed(None, host, none, None));
    }

    #[test]
    fn the_day_starts_at_the_pages_midnight() {
        let now: DateTime<Utc> = "2026-03-10T20:30:00Z".parse().unwrap();
        // UTC+8: already the 11th there.
        let cn = utc_offset("utc_offset_min=480");
        assert_eq!(
            start_of_day(now, cn),
            "2026-03-10T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // UTC-5: still the 10th.
        let ny = utc_offset("x=1&utc_offset_min=-300");
        assert_eq!(
            start_of_day(now, ny),
            "2026-03-10T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // Missing or absurd: UTC.
        for q in ["", "utc_offset_min=99999", "utc_offset_min=abc"] {
            assert_eq!(
                start_of_day(now, utc_offset(q)),
                "2026-03-10T00:00:00Z".parse::<DateTime<Utc>>().unwrap(),
                "{q}"
            );
        }
    }
}
