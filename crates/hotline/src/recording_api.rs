//! `GET /api/calls/{call_id}/recording`: a call's recording as a WAV, for
//! the admin console (behind the admin bearer token, see admin.rs).
//!
//! Every answer goes through `hotline_store::open_recording`: a sealed file
//! is decrypted, and the sha256 recorded when the call ended is compared
//! before a byte is sent — a mismatch is `409 Conflict` saying so, never
//! a silently served file. One `Range: bytes=…` is honoured (`206`, or
//! `416` when it lies past the end); several ranges get the whole file.
//!
//! `?download=1` answers with `Content-Disposition: attachment`. The audit
//! log gets `recording_download`, or `recording_listen` for a request from
//! the start of the file (the audio element's seeks, later ranges, are not
//! each a new listen), with who asked and from which address.

use std::io::{Read, Seek, SeekFrom};

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hotline_store::{Keyring, RecordingError, Store, Uuid, open_recording};
use serde_json::json;

/// Bytes per body chunk.
const CHUNK: usize = 64 * 1024;

/// What the recording route needs.
#[derive(Clone)]
pub struct RecordingAccess {
    pub store: Store,
    /// Opens sealed recordings; `None`: only plain ones can be read.
    pub keys: Option<Arc<Keyring>>,
}

/// The route, for admin.rs to mount behind its bearer-token check.
pub fn routes<S: Clone + Send + Sync + 'static>(access: RecordingAccess) -> Router<S> {
    Router::new()
        .route("/api/calls/{call_id}/recording", get(get_recording))
        .with_state(access)
}

/// `{"error": message}` with its status, as every admin API error.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// `?download=1`: as an attachment.
#[derive(serde::Deserialize)]
struct RecordingQuery {
    #[serde(default)]
    download: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/calls/{call_id}/recording",
    tag = "calls",
    summary = "Listen to or download a call recording (audited)",
    params(("call_id" = String, Path)),
    responses(
        (status = 200, description = "Listen to or download a call recording (audited)"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn get_recording(
    State(st): State<RecordingAccess>,
    actor: crate::audit::Actor,
    Path(call_id): Path<String>,
    Query(q): Query<RecordingQuery>,
    headers: HeaderMap,
) -> Response {
    let download = q
        .download
        .as_deref()
        .is_some_and(|d| !matches!(d, "" | "0" | "false"));
    let not_found = || {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no recording for call {call_id:?}"),
        )
        .into_response()
    };
    let Ok(id) = call_id.parse::<Uuid>() else {
        return not_found();
    };
    let rec = match st.store.call_recording(id).await {
        Ok(Some(rec)) => rec,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "admin API: store failed");
            return ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
                .into_response();
        }
    };
    let keys = st.keys.clone();
    let opened = tokio::task::spawn_blocking(move || open_recording(&rec, keys.as_deref())).await;
    let mut reader = match opened {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return recording_error(id, e),
        Err(e) => {
            tracing::error!(error = %e, "recording read task failed");
            return ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
                .into_response();
        }
    };
    let len = reader.len();
    let range = match headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len))
    {
        None | Some(Range::Ignore) => None,
        Some(Range::Bytes(a, b)) => Some((a, b)),
        Some(Range::Unsatisfiable) => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_default();
        }
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    tracing::info!(call = %id, start, count, sealed = reader.sealed(), "recording served");
    if download || start == 0 {
        let action = if download {
            "recording_download"
        } else {
            "recording_listen"
        };
        let subject = format!("call {id}");
        actor
            .record(&st.store, action, Some(&subject), json!({"bytes": len}))
            .await;
    }

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = reader.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = count;
        let mut buf = vec![0u8; CHUNK];
        while left > 0 {
            let want = (left as usize).min(CHUNK);
            match reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    left -= n as u64;
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    tracing::error!(call = %id, error = %e, "recording read failed mid-answer");
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut res = Response::builder()
        .status(if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, count)
        // Personal data: never kept by a browser or a proxy.
        .header(header::CACHE_CONTROL, "no-store");
    if range.is_some() {
        res = res.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    let mut res = res.body(Body::from_stream(stream)).unwrap_or_default();
    res.headers_mut().insert(
        "content-disposition",
        HeaderValue::from_str(&format!(
            "{}; filename=\"{id}.wav\"",
            if download { "attachment" } else { "inline" }
        ))
        .unwrap_or(HeaderValue::from_static("inline")),
    );
    res
}

pub(crate) fn recording_error(id: Uuid, e: RecordingError) -> Response {
    let status = match &e {
        _ if e.is_corrupt() => StatusCode::CONFLICT,
        RecordingError::Deleted { .. } => StatusCode::GONE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::CONFLICT {
        tracing::error!(call = %id, error = %e, "recording fails its checksum");
    } else if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(call = %id, error = %e, "recording cannot be read");
    }
    let message = match status {
        StatusCode::CONFLICT => format!("recording of call {id} fails its checksum: {e}"),
        _ => e.to_string(),
    };
    ApiError(status, message).into_response()
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Range {
    /// Serve the whole file (no usable or several ranges).
    Ignore,
    /// First and last byte, inclusive.
    Bytes(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// RFC 9110 §14.1.2: `bytes=a-b`, `bytes=a-`, `bytes=-n`; one range only.
pub(crate) fn parse_range(v: &str, len: u64) -> Range {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Range::Ignore;
    };
    if spec.contains(',') {
        return Range::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Range::Ignore,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return Range::Unsatisfiable,
            Ok(n) => Some((len.saturating_sub(n), len.saturating_sub(1))),
            Err(_) => return Range::Ignore,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return Range::Ignore;
            };
            let end = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(len.saturating_sub(1)),
                    _ => return Range::Ignore,
                }
            };
            Some((start, end))
        }
    };
    match parsed {
        Some((s, e)) if len > 0 && s < len && s <= e => Range::Bytes(s, e),
        _ => Range::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AdminState, routes as admin_routes};
    use axum::extract::Request;
    use axum::http::Method;
    use hotline_store::testing::fresh_db;
    use tower::ServiceExt;

    /// Listening (from the start) and downloading are audited with who and
    /// from where; the audio element's later ranges are not new listens.
    #[tokio::test]
    async fn listens_and_downloads_are_audited() {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let call = Uuid::new_v4();
        let dir = std::env::temp_dir().join(format!("hotline-rec-audit-{call}"));
        std::fs::create_dir_all(&dir).unwrap();
        let wav = dir.join("call.wav");
        let mut bytes = b"RIFF\x24\x01\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\0\x01\0\0".to_vec();
        bytes.resize(44 + 256, 0);
        std::fs::write(&wav, &bytes).unwrap();
        let ev = |seq: u32, data: hotline_events::EventData| hotline_events::CallEvent {
            call_id: call,
            sip_call_id: "rec@test".into(),
            seq,
            at: chrono::Utc::now(),
            node: None,
            data,
        };
        let events = vec![
            ev(
                0,
                hotline_events::EventData::CallStarted {
                    caller: "13800000000".into(),
                    caller_name: Some(None),
                    callee: "800".into(),
                    transport: "udp".into(),
                    source: "127.0.0.1:5060".into(),
                    node: None,
                    direction: None,
                    callback_of: None,
                    attempt: None,
                    queue: None,
                    srtp: false,
                },
            ),
            ev(
                1,
                hotline_events::EventData::Recording {
                    path: wav.to_str().unwrap().into(),
                    duration_ms: 16,
                    channels: 1,
                    sample_rate: 8000,
                    bytes: bytes.len() as u64,
                    sha256: None,
                    recovered: None,
                },
            ),
            ev(2, hotline_events::EventData::CallEnded {}),
        ];
        db.store
            .write(&hotline_store::prepare(events.into_iter(), "gw").await)
            .await
            .unwrap();
        let app: Router = admin_routes(AdminState::new(db.store.clone(), Some("t0ken-for-tests")));
        let get = |uri: String, range: Option<&'static str>| {
            let app = app.clone();
            async move {
                let mut req = Request::builder()
                    .method(Method::GET)
                    .uri(uri)
                    .header(header::AUTHORIZATION, "Bearer t0ken-for-tests");
                if let Some(r) = range {
                    req = req.header(header::RANGE, r);
                }
                let mut req = req.body(Body::empty()).unwrap();
                let peer: std::net::SocketAddr = "203.0.113.9:5000".parse().unwrap();
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let res = app.oneshot(req).await.unwrap();
                let (parts, body) = res.into_parts();
                let _ = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                parts
            }
        };
        let uri = format!("/api/calls/{call}/recording");
        let res = get(uri.clone(), None).await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(
            res.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("inline")
        );
        let res = get(uri.clone(), Some("bytes=100-")).await;
        assert_eq!(res.status, StatusCode::PARTIAL_CONTENT);
        let res = get(format!("{uri}?download=1"), None).await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(
            res.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let log = db.store.audit_page(None, 10).await.unwrap();
        let seen: Vec<(&str, &str, Option<&str>, Option<&str>)> = log
            .iter()
            .map(|e| {
                (
                    e.action.as_str(),
                    e.actor.as_str(),
                    e.subject.as_deref(),
                    e.ip.as_deref(),
                )
            })
            .collect();
        let subject = format!("call {call}");
        assert_eq!(
            seen,
            [
                (
                    "recording_download",
                    "token",
                    Some(subject.as_str()),
                    Some("203.0.113.9")
                ),
                (
                    "recording_listen",
                    "token",
                    Some(subject.as_str()),
                    Some("203.0.113.9")
                ),
            ]
        );
        assert_eq!(log[0].details, serde_json::json!({"bytes": bytes.len()}));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Range::Bytes(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), Range::Bytes(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), Range::Bytes(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), Range::Bytes(0, 999));
        assert_eq!(parse_range("bytes=990-5000", 1000), Range::Bytes(990, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Range::Ignore);
        assert_eq!(parse_range("items=0-1", 1000), Range::Ignore);
        assert_eq!(parse_range("bytes=5-1", 1000), Range::Ignore);
        assert_eq!(parse_range("bytes=0-", 0), Range::Unsatisfiable);
    }
}
