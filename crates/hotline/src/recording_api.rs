//! `GET /api/calls/{call_id}/recording`: a call's recording as a WAV, for
//! the admin console (behind the admin bearer token, see admin.rs).
//!
//! Every answer goes through `hotline_store::open_recording`: a sealed file
//! is decrypted, and the sha256 recorded when the call ended is compared
//! before a byte is sent — a mismatch is `409 Conflict` saying so, never
//! a silently served file. One `Range: bytes=…` is honoured (`206`, or
//! `416` when it lies past the end); several ranges get the whole file.

use std::io::{Read, Seek, SeekFrom};

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
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

async fn get_recording(
    State(st): State<RecordingAccess>,
    Path(call_id): Path<String>,
    headers: HeaderMap,
) -> Response {
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
        HeaderValue::from_str(&format!("inline; filename=\"{id}.wav\""))
            .unwrap_or(HeaderValue::from_static("inline")),
    );
    res
}

fn recording_error(id: Uuid, e: RecordingError) -> Response {
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
enum Range {
    /// Serve the whole file (no usable or several ranges).
    Ignore,
    /// First and last byte, inclusive.
    Bytes(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// RFC 9110 §14.1.2: `bytes=a-b`, `bytes=a-`, `bytes=-n`; one range only.
fn parse_range(v: &str, len: u64) -> Range {
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
