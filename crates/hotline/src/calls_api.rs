//! Call search and a call's page, as JSON for the admin console (behind the
//! admin API's authentication, see admin.rs).
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/calls?from=&to=&caller=&issue_type=&outcome=&queue=&agent=&disposition=&flow=&flow_version=&limit=&after=` | `{calls: [CallSummary], next: cursor or null}` |
//! | `GET /api/calls/{call_id}` | the call: its row, `agent_part`, `timeline`, `ivr_path`, `recording` |
//!
//! Every parameter is optional and every one given must match; an empty one
//! counts as absent (a form's blank field). `from`/`to` are RFC 3339 times
//! or `YYYY-MM-DD` dates (midnight UTC), `to` exclusive; `issue_type`
//! matches the type and everything under it; `caller` is normalised like a
//! person types it (`+1 (555) 010-0001`); `limit` is 1 to 500 (default 50);
//! `after` is the previous page's `next`, unchanged. Newest first, keyset
//! pagination (hotline-store's call_search.rs). Bad input is 400 with
//! `{"error": …}` naming the parameter; an unknown call 404.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use hotline_store::call_search::{
    CallCursor, CallDetail, CallFilter, CallSummary, MAX_PAGE, normalise_caller,
};
use hotline_store::{Store, Uuid};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::ApiError;

/// Rows per page when `limit` is not given.
const DEFAULT_PAGE: u32 = 50;

/// The routes, for admin.rs to mount behind its authentication.
pub fn routes<S: Clone + Send + Sync + 'static>(store: Store) -> Router<S> {
    Router::new()
        .route("/api/calls", get(search))
        .route("/api/calls/{call_id}", get(detail))
        .with_state(store)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// `GET /api/calls` answer.
#[derive(Serialize)]
struct Page {
    calls: Vec<CallSummary>,
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/calls",
    tag = "calls",
    summary = "Search call records (paged)",
    responses(
        (status = 200, description = "Search call records (paged)"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn search(
    State(store): State<Store>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(params) = query.map_err(|e| bad(e.body_text()))?;
    let (filter, limit, after) = parse_search(&params)?;
    let page = store.search_calls(&filter, limit, after).await?;
    Ok(Json(Page {
        calls: page.calls,
        next: page.next.map(|c| c.to_string()),
    }))
}

/// The filter, the page size and the cursor from the query string.
fn parse_search(
    params: &[(String, String)],
) -> Result<(CallFilter, u32, Option<CallCursor>), ApiError> {
    let mut filter = CallFilter::default();
    let mut limit = DEFAULT_PAGE;
    let mut after = None;
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in params {
        if seen.contains(&key.as_str()) {
            return Err(bad(format!("`{key}` is given twice")));
        }
        seen.push(key);
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let text = || Some(value.to_owned());
        match key.as_str() {
            "from" => filter.from = Some(parse_time("from", value)?),
            "to" => filter.to = Some(parse_time("to", value)?),
            "caller" => filter.caller = Some(normalise_caller(value)),
            "issue_type" => filter.issue_type = text(),
            "outcome" => filter.outcome = text(),
            "queue" => filter.queue = text(),
            "agent" => filter.agent = text(),
            "disposition" => filter.disposition = text(),
            "flow" => filter.flow = text(),
            "flow_version" => filter.flow_version = text(),
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "`limit` must be a whole number from 1 to {MAX_PAGE}, not `{value}`"
                        ))
                    })?;
            }
            "after" => after = Some(value.parse::<CallCursor>()?),
            other => {
                return Err(bad(format!(
                    "unknown parameter `{other}`; use from, to, caller, issue_type, outcome, \
                     queue, agent, disposition, flow, flow_version, limit, after"
                )));
            }
        }
    }
    filter.check()?;
    Ok((filter, limit, after))
}

/// RFC 3339 (`2026-12-01T09:00:00Z`, `…+08:00`) or a date (midnight UTC).
/// A `+` left unescaped in a URL arrives as a space: taken back as `+`.
fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    let fixed = value.replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&fixed) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    Err(bad(format!(
        "`{name}` is not a time: `{value}`; use RFC 3339 like 2026-12-01T09:00:00Z \
         (or +08:00 for a zone) or a date like 2026-12-01"
    )))
}

#[utoipa::path(
    get,
    path = "/api/calls/{call_id}",
    tag = "calls",
    summary = "One call with its timeline",
    params(("call_id" = String, Path)),
    responses(
        (status = 200, description = "One call with its timeline"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn detail(
    State(store): State<Store>,
    Path(call_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: Uuid = call_id
        .parse()
        .map_err(|_| bad(format!("`{call_id}` is not a call id (a UUID)")))?;
    match store.call_detail(id).await? {
        Some(d) => Ok(Json(detail_json(d))),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("call {id} not found"),
        )),
    }
}

/// The IVR nodes the call went through, in order: the `node_entered`
/// events' nodes (a node entered twice in a row, e.g. a menu asking
/// again, counts once).
fn ivr_path(d: &CallDetail) -> Vec<&str> {
    let mut path: Vec<&str> = Vec::new();
    for e in d.events.iter().filter(|e| e.kind == "node_entered") {
        if let Some(node) = e.node.as_deref() {
            if path.last() != Some(&node) {
                path.push(node);
            }
        }
    }
    path
}

/// Where the server keeps a recording or voicemail is its own business:
/// a `path` in an event's data is shown as its file name.
fn file_names_only(data: &mut Value) {
    if let Some(Value::String(p)) = data.get_mut("path") {
        if let Some(name) = std::path::Path::new(p.as_str()).file_name() {
            *p = name.to_string_lossy().into_owned();
        }
    }
}

fn detail_json(d: CallDetail) -> Value {
    let c = &d.call;
    let path = ivr_path(&d);
    let timeline: Vec<Value> = d
        .events
        .iter()
        .map(|e| {
            let mut data = e.data.clone();
            file_names_only(&mut data);
            json!({"seq": e.seq, "at": e.at, "kind": e.kind, "node": e.node, "data": data})
        })
        .collect();
    let recording = d.recordings.first().map(|r| {
        let deleted = r.deleted_at.is_some();
        json!({
            "id": r.id,
            "url": (!deleted).then(|| format!("/api/calls/{}/recording", c.id)),
            "duration_ms": r.duration_ms,
            "channels": r.channels,
            "sample_rate": r.sample_rate,
            "bytes": r.bytes,
            "deleted": deleted,
            "deleted_at": r.deleted_at,
            "deleted_reason": r.deleted_reason,
        })
    });
    let waited = match (c.queued_at, c.agent_answered_at.or(c.ended_at)) {
        (Some(q), Some(until)) => Some((until - q).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    json!({
        "id": c.id,
        "sip_call_id": c.sip_call_id,
        "gateway": c.node,
        "caller": c.caller,
        "caller_name": c.caller_name,
        "callee": c.callee,
        "masked": d.masked_at.is_some(),
        "masked_at": d.masked_at,
        "transport": c.transport,
        "source": c.source,
        "started_at": c.started_at,
        "answered_at": c.answered_at,
        "ended_at": c.ended_at,
        "ended_by": c.ended_by,
        "hangup_cause": c.hangup_cause,
        "flow": c.flow,
        "flow_version": c.flow_version,
        "language": c.language,
        "issue_type": c.issue_type,
        "outcome": c.outcome,
        "complete": c.complete,
        "agent_part": {
            "queue": c.queue,
            "queued_at": c.queued_at,
            "waited_seconds": waited,
            "agent": c.agent_id,
            "agent_name": d.agent_name,
            "agent_answered_at": c.agent_answered_at,
            "talk_seconds": c.talk_seconds,
            "wrap_up_seconds": c.wrap_up_seconds,
            "disposition": c.disposition,
            "notes": c.notes,
        },
        "ivr_path": path,
        "timeline": timeline,
        "recording": recording,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body as HttpBody;
    use axum::extract::Request;
    use axum::http::header;
    use chrono::Duration;
    use hotline_events::{CallEvent, EndedBy, EventData};
    use hotline_store::testing::{TestDb, fresh_db};
    use tower::ServiceExt;

    const TOKEN: &str = "calls-api-test-token";

    /// The admin router (so the authentication layer is the real one).
    async fn app() -> (Router, TestDb) {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let st = crate::admin::AdminState::new(db.store.clone(), Some(TOKEN));
        (crate::admin::routes(st), db)
    }

    async fn get(app: &Router, uri: &str, auth: bool) -> (StatusCode, Value) {
        let mut req = Request::get(uri);
        if auth {
            req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        }
        let res = app
            .clone()
            .oneshot(req.body(HttpBody::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, v)
    }

    /// A finished call written through the real writer path: started
    /// `ago` before now, through welcome → main-menu → billing, queued to
    /// billing and answered by `agent` with a wrap-up, recorded.
    async fn answered_call(db: &TestDb, caller: &str, ago: Duration, agent: &str) -> Uuid {
        let id = Uuid::new_v4();
        let t0 = Utc::now() - ago;
        let mut seq = 0;
        let mut evs = Vec::new();
        let mut ev = |ms: i64, node: Option<&str>, data: EventData| {
            evs.push(CallEvent {
                call_id: id,
                sip_call_id: format!("{id}@test"),
                seq,
                at: t0 + Duration::milliseconds(ms),
                node: node.map(str::to_owned),
                data,
            });
            seq += 1;
        };
        let started: EventData = serde_json::from_value(json!({"kind": "call_started",
            "data": {"caller": caller, "caller_name": "Ann Lee", "callee": "800",
                     "transport": "udp", "source": "127.0.0.1:5060"}}))
        .unwrap();
        ev(0, None, started);
        ev(
            100,
            None,
            EventData::Answered {
                rtp: "127.0.0.1:20000".into(),
            },
        );
        ev(
            100,
            None,
            EventData::FlowStarted {
                flow: "main".into(),
                version: "abc123def456".into(),
                language: "en".into(),
            },
        );
        for (ms, node, kind) in [
            (200, "welcome", "play"),
            (3_000, "main-menu", "menu"),
            (6_000, "main-menu", "menu"),
            (9_000, "billing", "play"),
        ] {
            ev(
                ms,
                Some(node),
                EventData::NodeEntered {
                    node_kind: kind.into(),
                },
            );
        }
        ev(
            9_000,
            Some("billing"),
            EventData::IssueType {
                issue_type: "subscription.billing".into(),
            },
        );
        ev(
            10_000,
            Some("queue-billing"),
            EventData::Enqueued {
                queue: "billing".into(),
                priority: 0,
            },
        );
        ev(
            20_000,
            None,
            EventData::AgentAnswered {
                agent_id: agent.into(),
            },
        );
        ev(
            80_000,
            None,
            EventData::Hangup {
                ended_by: EndedBy::Caller,
                cause: "BYE".into(),
                recovered_at: None,
            },
        );
        let rec: EventData = serde_json::from_value(json!({"kind": "recording",
            "data": {"path": format!("/nonexistent/{id}.wav"), "duration_ms": 80_000,
                     "channels": 2, "sample_rate": 8000, "bytes": 2_560_044, "sha256": null}}))
        .unwrap();
        ev(80_001, None, rec);
        ev(
            90_000,
            None,
            EventData::WrapUp {
                agent_id: agent.into(),
                disposition: Some("resolved".into()),
                notes: "Invoice re-sent.".into(),
                seconds: 10,
            },
        );
        ev(90_000, None, EventData::CallEnded {});
        db.store
            .write(&hotline_store::prepare(evs.into_iter(), "gw").await)
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn search_pages_and_filters_over_http() {
        let (app, db) = app().await;
        let a = answered_call(&db, "+15550100001", Duration::hours(3), "ada").await;
        let b = answered_call(&db, "+15550100002", Duration::hours(2), "bob").await;
        let c = answered_call(&db, "+15550100001", Duration::hours(1), "bob").await;

        let (s, v) = get(&app, "/api/calls", true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let ids: Vec<&str> = v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [c.to_string(), b.to_string(), a.to_string()]);
        assert_eq!(v["next"], Value::Null);
        assert_eq!(v["calls"][0]["outcome"], "answered");
        assert_eq!(v["calls"][0]["recorded"], true);

        // Page by page: 2, then 1, then nothing more.
        let (s, p1) = get(&app, "/api/calls?limit=2", true).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(p1["calls"].as_array().unwrap().len(), 2);
        let next = p1["next"].as_str().expect("a next cursor").to_owned();
        let (s, p2) = get(&app, &format!("/api/calls?limit=2&after={next}"), true).await;
        assert_eq!(s, StatusCode::OK, "{p2}");
        assert_eq!(p2["calls"][0]["id"], a.to_string());
        assert_eq!(p2["next"], Value::Null);

        // A number as a person types it, with a `+` left unescaped.
        let (s, v) = get(&app, "/api/calls?caller=%2B1%20(555)%20010-0001", true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["calls"].as_array().unwrap().len(), 2, "{v}");
        let (_, v) = get(&app, "/api/calls?agent=bob&issue_type=subscription", true).await;
        assert_eq!(v["calls"].as_array().unwrap().len(), 2, "{v}");
        let (_, v) = get(&app, "/api/calls?issue_type=purchase&queue=", true).await;
        assert_eq!(v["calls"].as_array().unwrap().len(), 0, "{v}");
        let from = (Utc::now() - Duration::minutes(150)).to_rfc3339();
        let (s, v) = get(
            &app,
            // The `+` of `+00:00` sent unescaped, as people type it.
            &format!("/api/calls?from={from}&disposition=resolved&outcome=answered&queue=billing&flow=main&flow_version=abc123def456"),
            true,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["calls"].as_array().unwrap().len(), 2, "{v}");
    }

    #[tokio::test]
    async fn bad_search_input_is_400_with_a_message() {
        let (app, db) = app().await;
        answered_call(&db, "+15550100001", Duration::hours(1), "ada").await;
        for (uri, needle) in [
            ("/api/calls?after=nonsense", "cursor"),
            (
                "/api/calls?after=0100000000000000000000000000000000000000000000000g",
                "cursor",
            ),
            ("/api/calls?from=yesterday", "`from`"),
            ("/api/calls?to=2026-13-01", "`to`"),
            ("/api/calls?from=2026-12-02&to=2026-12-01", "before"),
            ("/api/calls?limit=0", "`limit`"),
            ("/api/calls?limit=501", "`limit`"),
            ("/api/calls?limit=ten", "`limit`"),
            ("/api/calls?outcome=won", "outcome"),
            ("/api/calls?issue_type=sub%25", "issue type"),
            ("/api/calls?caller=****", "masked"),
            ("/api/calls?colour=red", "unknown parameter"),
            ("/api/calls?limit=5&limit=6", "twice"),
            ("/api/calls/not-a-uuid", "UUID"),
        ] {
            let (s, v) = get(&app, uri, true).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} → {v}");
            let msg = v["error"].as_str().unwrap_or_else(|| panic!("{uri}: {v}"));
            assert!(msg.contains(needle), "{uri}: {msg}");
        }
        let (s, v) = get(&app, "/api/calls?limit=500", true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = get(&app, &format!("/api/calls/{}", Uuid::new_v4()), true).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert!(v["error"].as_str().unwrap().contains("not found"));
    }

    #[tokio::test]
    async fn both_routes_need_authentication() {
        let (app, db) = app().await;
        let id = answered_call(&db, "+15550100001", Duration::hours(1), "ada").await;
        for uri in [
            "/api/calls".to_owned(),
            "/api/calls?caller=%2B15550100001".to_owned(),
            format!("/api/calls/{id}"),
            "/api/calls/not-a-uuid".to_owned(),
        ] {
            let (s, v) = get(&app, &uri, false).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}: {v}");
            assert!(!v.to_string().contains("5550100001"), "{v}");
        }
    }

    #[tokio::test]
    async fn a_calls_page_has_its_timeline_path_agent_part_and_recording() {
        let (app, db) = app().await;
        let id = answered_call(&db, "+15550100001", Duration::hours(1), "ada").await;
        db.store
            .create_agent(hotline_store::NewAgent::new(
                "ada",
                "Ada Agent",
                "correct horse",
            ))
            .await
            .unwrap();
        let (s, v) = get(&app, &format!("/api/calls/{id}"), true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["caller"], "+15550100001");
        assert_eq!(v["masked"], false);
        assert_eq!(v["issue_type"], "subscription.billing");
        assert_eq!(v["outcome"], "answered");
        assert_eq!(
            v["ivr_path"],
            json!(["welcome", "main-menu", "billing"]),
            "{v}"
        );
        let timeline = v["timeline"].as_array().unwrap();
        assert_eq!(timeline.len(), 14);
        assert_eq!(timeline[0]["kind"], "call_started");
        assert_eq!(timeline[3]["node"], "welcome");
        assert!(timeline[3]["at"].is_string());
        assert!(
            timeline
                .windows(2)
                .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
        );
        let part = &v["agent_part"];
        assert_eq!(part["queue"], "billing");
        assert_eq!(part["agent"], "ada");
        assert_eq!(part["agent_name"], "Ada Agent");
        assert_eq!(part["waited_seconds"], 10.0);
        assert_eq!(part["talk_seconds"], 60.0);
        assert_eq!(part["disposition"], "resolved");
        assert_eq!(part["notes"], "Invoice re-sent.");
        assert_eq!(v["recording"]["url"], format!("/api/calls/{id}/recording"));
        assert_eq!(v["recording"]["duration_ms"], 80_000);
        assert_eq!(v["recording"]["channels"], 2);
        assert_eq!(v["recording"]["deleted"], false);
        assert!(!v.to_string().contains("/nonexistent/"), "no server paths");
        assert_eq!(timeline[11]["kind"], "recording");
        assert_eq!(timeline[11]["data"]["path"], format!("{id}.wav"));

        // Erased: the number is gone from the page, the row and the search.
        let files = hotline_store::EventFiles {
            event_log: None,
            spool_dir: None,
        };
        hotline_store::privacy::erase_caller(&db.store, "+15550100001", &files, false)
            .await
            .unwrap();
        let (_, v) = get(&app, &format!("/api/calls/{id}"), true).await;
        assert_eq!(v["masked"], true, "{v}");
        assert_eq!(v["caller"], "************");
        assert!(!v.to_string().contains("5550100001"), "{v}");
        let (_, v) = get(&app, "/api/calls", true).await;
        assert_eq!(v["calls"][0]["caller"], "************");
        assert_eq!(v["calls"][0]["masked"], true);
        let (_, v) = get(&app, "/api/calls?caller=%2B15550100001", true).await;
        assert_eq!(v["calls"], json!([]));
    }
}
