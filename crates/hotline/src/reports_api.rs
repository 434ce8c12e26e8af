//! Historical reports as JSON or CSV for the admin console (behind the
//! admin API's authentication, see admin.rs; admins and supervisors read).
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/reports/summary` | `{from, to, tz, figures}`: every figure of docs/metrics.md |
//! | `GET /api/reports/series` | `{from, to, tz, granularity, points: [{bucket, …figures}]}` |
//! | `GET /api/reports/agents` | `{from, to, tz, agents: [{agent, …figures, occupancy}]}` |
//! | `GET /api/reports/funnel` | `{from, to, tz, flow, calls, nodes, edges, worst}` (needs `flow`) |
//!
//! Parameters, all optional but `flow` for the funnel; an empty one counts
//! as absent: `from`, `to` (RFC 3339, or a `YYYY-MM-DD` date: that
//! midnight in `tz`; `to` exclusive; default the 7 days up to now), `tz`
//! (IANA name, default `--report-tz`), `granularity` (`hour`, `day`,
//! `week`, `none`; default `day`), `queue`, `issue_type` (the type and
//! those below it), `agent`, `flow`, `fcr_days` (first-contact window,
//! 1–90, default 7), `format=csv` (text/csv with a header row: the summary
//! as one row, the series a row per bucket, the agents a row per agent, the
//! funnel a row per node, or per edge with `table=edges`). Bad input is 400
//! with `{"error": …}` naming the parameter.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use hotline_store::Store;
use hotline_store::reports::{Granularity, ReportQuery};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::ApiError;

/// What the routes need: the store and the zone reports use by default.
#[derive(Clone)]
pub struct ReportsApi {
    /// Where the calls are.
    pub store: Store,
    /// `--report-tz`.
    pub default_tz: String,
}

/// The routes, for admin.rs to mount behind its authentication.
pub fn routes<S: Clone + Send + Sync + 'static>(api: ReportsApi) -> Router<S> {
    Router::new()
        .route("/api/reports/summary", get(summary))
        .route("/api/reports/series", get(series))
        .route("/api/reports/agents", get(agents))
        .route("/api/reports/funnel", get(funnel))
        .with_state(api)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// A parsed request.
struct Request {
    query: ReportQuery,
    csv: bool,
    edges: bool,
}

/// A time as given: an instant, or a date to place at midnight in the zone.
enum Time {
    At(DateTime<Utc>),
    Date(NaiveDate),
}

async fn parse(
    api: &ReportsApi,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Request, ApiError> {
    let Query(params) = query.map_err(|e| bad(e.body_text()))?;
    let mut from = None;
    let mut to = None;
    let mut q = ReportQuery::new(Utc::now(), Utc::now(), api.default_tz.clone());
    let mut csv = false;
    let mut edges = false;
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &params {
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
            "from" => from = Some(parse_time("from", value)?),
            "to" => to = Some(parse_time("to", value)?),
            "tz" => q.tz = value.to_owned(),
            "granularity" => q.granularity = value.parse::<Granularity>()?,
            "queue" => q.queue = text(),
            "issue_type" => q.issue_type = text(),
            "agent" => q.agent = text(),
            "flow" => q.flow = text(),
            "fcr_days" => {
                q.fcr_days = value
                    .parse::<i32>()
                    .ok()
                    .filter(|d| (1..=90).contains(d))
                    .ok_or_else(|| {
                        bad(format!(
                            "`fcr_days` must be a whole number from 1 to 90, not `{value}`"
                        ))
                    })?;
            }
            "format" => match value {
                "csv" => csv = true,
                "json" => csv = false,
                _ => return Err(bad(format!("`format` is csv or json, not `{value}`"))),
            },
            "table" => match value {
                "edges" => edges = true,
                "nodes" => edges = false,
                _ => return Err(bad(format!("`table` is nodes or edges, not `{value}`"))),
            },
            other => {
                return Err(bad(format!(
                    "unknown parameter `{other}`; use from, to, tz, granularity, queue, \
                     issue_type, agent, flow, fcr_days, format, table"
                )));
            }
        }
    }
    api.store
        .check_time_zone(&q.tz)
        .await
        .map_err(|e| bad(format!("`tz`: {e}")))?;
    q.to = match to {
        Some(t) => resolve(&api.store, t, &q.tz).await?,
        None => Utc::now(),
    };
    q.from = match from {
        Some(t) => resolve(&api.store, t, &q.tz).await?,
        None => q.to - Duration::days(7),
    };
    q.check()?;
    Ok(Request {
        query: q,
        csv,
        edges,
    })
}

async fn resolve(store: &Store, t: Time, tz: &str) -> Result<DateTime<Utc>, ApiError> {
    match t {
        Time::At(t) => Ok(t),
        Time::Date(d) => Ok(store.local_midnight(d, tz).await?),
    }
}

/// RFC 3339 (`2026-12-01T09:00:00Z`, `…+08:00`) or a date. A `+` left
/// unescaped in a URL arrives as a space: taken back as `+`.
fn parse_time(name: &str, value: &str) -> Result<Time, ApiError> {
    let fixed = value.replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&fixed) {
        return Ok(Time::At(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(Time::Date(d));
    }
    Err(bad(format!(
        "`{name}` is not a time: `{value}`; use RFC 3339 like 2026-12-01T09:00:00Z \
         (or +08:00 for a zone) or a date like 2026-12-01 (midnight in `tz`)"
    )))
}

/// The range part of every answer.
fn head(q: &ReportQuery) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("from".into(), json!(q.from.to_rfc3339()));
    m.insert("to".into(), json!(q.to.to_rfc3339()));
    m.insert("tz".into(), json!(q.tz));
    m
}

/// JSON `head` + `body`, or `rows` as CSV.
fn answer<T: Serialize>(
    q: &ReportQuery,
    body: Vec<(&str, Value)>,
    csv: Option<&[T]>,
) -> Result<Response, ApiError> {
    if let Some(rows) = csv {
        let rows: Vec<Ordered> = rows
            .iter()
            .map(|r| serde_json::to_string(r).and_then(|s| serde_json::from_str(&s)))
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            to_csv(&rows),
        )
            .into_response());
    }
    let mut m = head(q);
    for (k, v) in body {
        m.insert(k.into(), v);
    }
    Ok(Json(Value::Object(m)).into_response())
}

/// A JSON object's fields in the order they were written (serde_json's
/// `Map` sorts them; a CSV's columns should follow the struct).
struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = m.next_entry::<String, Value>()? {
                    v.push(kv);
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// Flat objects as CSV (RFC 4180): a header row of the first row's keys,
/// in order; `null` as an empty field.
fn to_csv(rows: &[Ordered]) -> String {
    let mut out = String::new();
    let Some(first) = rows.first() else {
        return out;
    };
    let line = |fields: Vec<String>| fields.join(",") + "\r\n";
    out.push_str(&line(first.0.iter().map(|(k, _)| field(k)).collect()));
    for row in rows {
        out.push_str(&line(
            row.0
                .iter()
                .map(|(_, v)| match v {
                    Value::Null => String::new(),
                    Value::String(s) => field(s),
                    v => field(&v.to_string()),
                })
                .collect(),
        ));
    }
    out
}

fn field(s: &str) -> String {
    // A leading = + - @ makes a spreadsheet run a formula: quoted with a '.
    let s = if s.starts_with(['=', '+', '@']) || (s.starts_with('-') && s.parse::<f64>().is_err()) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn value<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[utoipa::path(
    get,
    path = "/api/reports/summary",
    tag = "reports",
    summary = "Every report figure over a range (JSON or CSV)",
    responses(
        (status = 200, description = "Every report figure over a range (JSON or CSV)"),
        (status = 400, description = "Bad parameter"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn summary(
    State(api): State<ReportsApi>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let r = parse(&api, query).await?;
    let f = api.store.report_summary(&r.query).await?;
    let rows = [&f];
    answer(
        &r.query,
        vec![("figures", value(&f)?)],
        r.csv.then_some(&rows[..]),
    )
}

#[utoipa::path(
    get,
    path = "/api/reports/series",
    tag = "reports",
    summary = "The figures per hour, day or week in the report's zone",
    responses(
        (status = 200, description = "The figures per hour, day or week in the report's zone"),
        (status = 400, description = "Bad parameter"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn series(
    State(api): State<ReportsApi>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let r = parse(&api, query).await?;
    let points = api.store.report_series(&r.query).await?;
    answer(
        &r.query,
        vec![
            ("granularity", json!(r.query.granularity)),
            ("points", value(&points)?),
        ],
        r.csv.then_some(&points[..]),
    )
}

#[utoipa::path(
    get,
    path = "/api/reports/agents",
    tag = "reports",
    summary = "The agent comparison",
    responses(
        (status = 200, description = "The agent comparison"),
        (status = 400, description = "Bad parameter"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn agents(
    State(api): State<ReportsApi>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let r = parse(&api, query).await?;
    let agents = api.store.report_agents(&r.query).await?;
    answer(
        &r.query,
        vec![("agents", value(&agents)?)],
        r.csv.then_some(&agents[..]),
    )
}

#[utoipa::path(
    get,
    path = "/api/reports/funnel",
    tag = "reports",
    summary = "The IVR funnel of a flow: per node and edge",
    responses(
        (status = 200, description = "The IVR funnel of a flow: per node and edge"),
        (status = 400, description = "Bad parameter"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn funnel(
    State(api): State<ReportsApi>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let r = parse(&api, query).await?;
    if r.query.flow.is_none() {
        return Err(bad("the funnel needs `flow`"));
    }
    let f = api.store.report_funnel(&r.query).await?;
    if r.csv && r.edges {
        return answer(&r.query, vec![], Some(&f.edges[..]));
    }
    answer(
        &r.query,
        vec![
            ("flow", json!(r.query.flow)),
            ("calls", json!(f.calls)),
            ("nodes", value(&f.nodes)?),
            ("edges", value(&f.edges)?),
            ("worst", value(&f.worst)?),
        ],
        r.csv.then_some(&f.nodes[..]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body as HttpBody;
    use axum::http::Request as HttpRequest;
    use hotline_events::{CallEvent, EventData};
    use hotline_store::Uuid;
    use hotline_store::testing::{TestDb, fresh_db};
    use tower::ServiceExt;

    const TOKEN: &str = "reports-api-test-token";

    async fn app() -> (Router, TestDb) {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let st = crate::admin::AdminState::new(db.store.clone(), Some(TOKEN))
            .with_report_tz("Asia/Shanghai");
        (crate::admin::routes(st), db)
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, String, String) {
        let req = HttpRequest::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(HttpBody::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
            .await
            .unwrap();
        (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// A call answered by `agent` after 10 s in `billing`, at `at`.
    async fn call(db: &TestDb, at: DateTime<Utc>, agent: &str) {
        let id = Uuid::new_v4();
        let steps: Vec<(i64, &str, Option<&str>, Value)> = vec![
            (
                0,
                "call_started",
                None,
                json!({"caller": "+15550001", "caller_name": null, "callee": "800",
                       "transport": "udp", "source": "127.0.0.1:5060"}),
            ),
            (100, "answered", None, json!({"rtp": "127.0.0.1:20000"})),
            (
                100,
                "flow_started",
                None,
                json!({"flow": "main", "version": "v1", "language": "en"}),
            ),
            (
                200,
                "node_entered",
                Some("welcome"),
                json!({"kind": "play"}),
            ),
            (1_000, "node_entered", Some("q"), json!({"kind": "enqueue"})),
            (
                1_000,
                "enqueued",
                Some("q"),
                json!({"queue": "billing", "priority": 0}),
            ),
            (11_000, "agent_answered", None, json!({ "agent_id": agent })),
            (
                71_000,
                "hangup",
                None,
                json!({"ended_by": "agent", "cause": "agent_hangup"}),
            ),
            (71_000, "call_ended", None, json!({})),
        ];
        let events: Vec<CallEvent> = steps
            .into_iter()
            .enumerate()
            .map(|(seq, (ms, kind, node, data))| CallEvent {
                call_id: id,
                sip_call_id: format!("{id}@t"),
                seq: seq as u32,
                at: at + Duration::milliseconds(ms),
                node: node.map(str::to_owned),
                data: EventData::from_parts(kind, data),
            })
            .collect();
        db.store
            .write(&hotline_store::prepare(events.into_iter(), "gw").await)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn reports_answer_json_and_csv_and_refuse_bad_parameters() {
        let (app, db) = app().await;
        // 09:30 and 10:30 in Shanghai on 2026-12-01.
        let t = DateTime::parse_from_rfc3339("2026-12-01T01:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        call(&db, t, "a1").await;
        call(&db, t + Duration::hours(1), "a2").await;

        let (s, _, body) = get(&app, "/api/reports/summary?from=2026-12-01&to=2026-12-02").await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["tz"], "Asia/Shanghai");
        assert_eq!(v["from"], "2026-11-30T16:00:00+00:00", "local midnight");
        assert_eq!(v["figures"]["offered"], 2);
        assert_eq!(v["figures"]["answered_by_agent"], 2);
        assert_eq!(v["figures"]["asa_secs"], 10.0);
        assert_eq!(v["figures"]["service_level"], 1.0);

        let (s, ctype, body) = get(
            &app,
            "/api/reports/series?from=2026-12-01&to=2026-12-02&granularity=hour&format=csv",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(ctype.starts_with("text/csv"), "{ctype}");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 25, "header + 24 hours");
        assert!(lines[0].starts_with("bucket,offered,"), "{}", lines[0]);
        assert!(
            lines[10].starts_with("2026-12-01T09:00:00,1,"),
            "{}",
            lines[10]
        );

        let (s, _, body) = get(
            &app,
            "/api/reports/agents?from=2026-12-01T00:00:00%2B08:00&to=2026-12-02&format=csv",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 3, "{body}");
        assert!(lines[1].starts_with("a1,1,"), "{body}");

        let (s, _, body) = get(&app, "/api/reports/funnel?from=2026-12-01&flow=main").await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["calls"], 2);
        assert_eq!(v["edges"][0]["from"], "welcome");

        for (uri, needle) in [
            ("/api/reports/summary?tz=Mars/Olympus", "unknown time zone"),
            ("/api/reports/summary?from=yesterday", "`from`"),
            (
                "/api/reports/summary?from=2026-12-02&to=2026-12-01",
                "before",
            ),
            ("/api/reports/series?granularity=minute", "granularity"),
            ("/api/reports/summary?colour=red", "unknown parameter"),
            ("/api/reports/summary?fcr_days=0", "fcr_days"),
            ("/api/reports/funnel", "flow"),
            ("/api/reports/summary?issue_type=a..b", "issue type"),
        ] {
            let (s, _, body) = get(&app, uri).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(
                v["error"].as_str().unwrap().contains(needle),
                "{uri}: {body}"
            );
        }
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let rows: Vec<Ordered> = vec![
            serde_json::from_str(r#"{"d": "x,y", "b": null, "c": 1.5, "a": "=cmd"}"#).unwrap(),
        ];
        assert_eq!(to_csv(&rows), "d,b,c,a\r\n\"x,y\",,1.5,'=cmd\r\n");
    }
}
