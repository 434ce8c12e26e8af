//! Waveforms and voicemails for the admin console (behind the admin API's
//! authentication, see admin.rs; admins and supervisors).
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/calls/{call_id}/recording/peaks?n=800` | `{n, sample_rate, duration_ms, channels: [{name, min: [..], max: [..]}]}` |
//! | `GET /api/voicemails?handled=false&after=&limit=` | `{voicemails: [..], next: cursor or null}` |
//! | `GET /api/voicemails/{call_id}/audio` | the voicemail's WAV (one `Range` honoured, `?download=1`) |
//! | `PUT /api/voicemails/{call_id}/handled` `{"handled": bool}` | the voicemail with its mark |
//!
//! Peaks: the recording is read through `hotline_store::open_recording`
//! like `GET /api/calls/{id}/recording` (a sealed file decrypted with the
//! keyring, its sha256 checked), then cut into `n` (10 to 4000, default
//! 800) equal spans; each span's lowest and highest sample per channel,
//! from -1 to 1. A call recording is stereo: `caller` (left) and `agent`
//! (right: the agent and the flow's prompts); a mono file has `caller` only.
//!
//! Voicemails: a call's voicemail is its last `voicemail` event
//! (hotline-store's voicemails.rs), newest first with keyset paging.
//! Marking one handled (or not) is operational work, not configuration:
//! admins and supervisors may do it; it is audited (`voicemail_handled`,
//! `voicemail_unhandled`), as listening (`voicemail_listen`, a request from
//! the start of the file) and downloading (`voicemail_download`) are.
//!
//! A call id that is not a UUID is 400, an unknown one 404; a deleted file
//! 410, a file that fails its checksum 409 (recording_api.rs).

use std::io::Read;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use hotline_store::voicemails::{VoicemailCursor, VoicemailRow};
use hotline_store::{RecordingReader, StoredRecording, Uuid, open_recording};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, Body as JsonBody};
use crate::audit::Actor;
use crate::recording_api::{Range, RecordingAccess, parse_range, recording_error};

/// Spans when `n` is not given.
const DEFAULT_PEAKS: usize = 800;
/// The fewest and most spans `n` may ask for.
const PEAKS_RANGE: std::ops::RangeInclusive<usize> = 10..=4000;
/// Voicemails per page when `limit` is not given, and the most.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

/// The routes, for admin.rs to mount behind its authentication.
pub fn routes<S: Clone + Send + Sync + 'static>(access: RecordingAccess) -> Router<S> {
    Router::new()
        .route("/api/calls/{call_id}/recording/peaks", get(peaks))
        .route("/api/voicemails", get(list))
        .route("/api/voicemails/{call_id}/audio", get(audio))
        .route("/api/voicemails/{call_id}/handled", put(set_handled))
        .with_state(access)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn internal() -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
}

fn call_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse()
        .map_err(|_| bad(format!("`{text}` is not a call id (a UUID)")))
}

/// Opens a recording (or voicemail) file in a blocking task.
async fn open(
    st: &RecordingAccess,
    id: Uuid,
    rec: StoredRecording,
) -> Result<RecordingReader, Response> {
    let keys = st.keys.clone();
    match tokio::task::spawn_blocking(move || open_recording(&rec, keys.as_deref())).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(recording_error(id, e)),
        Err(e) => {
            tracing::error!(error = %e, "recording read task failed");
            Err(internal().into_response())
        }
    }
}

#[derive(Deserialize)]
struct PeaksQuery {
    n: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/calls/{call_id}/recording/peaks",
    tag = "calls",
    summary = "Waveform peaks of a recording",
    params(("call_id" = String, Path)),
    responses(
        (status = 200, description = "Waveform peaks of a recording"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn peaks(
    State(st): State<RecordingAccess>,
    Path(call): Path<String>,
    query: Result<Query<PeaksQuery>, QueryRejection>,
) -> Response {
    match peaks_inner(st, call, query).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn peaks_inner(
    st: RecordingAccess,
    call: String,
    query: Result<Query<PeaksQuery>, QueryRejection>,
) -> Result<Value, Response> {
    let Query(q) = query.map_err(|e| bad(e.body_text()).into_response())?;
    let id = call_id(&call).map_err(IntoResponse::into_response)?;
    let n = match q.n.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_PEAKS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| PEAKS_RANGE.contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "`n` must be a whole number from {} to {}, not `{text}`",
                    PEAKS_RANGE.start(),
                    PEAKS_RANGE.end()
                ))
                .into_response()
            })?,
    };
    let rec = match st.store.call_recording(id).await {
        Ok(Some(rec)) => rec,
        Ok(None) => {
            return Err(
                ApiError(StatusCode::NOT_FOUND, format!("no recording for call {id}"))
                    .into_response(),
            );
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let reader = open(&st, id, rec).await?;
    match tokio::task::spawn_blocking(move || compute_peaks(reader, n)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(call = %id, error = %e, "recording is not a readable WAV");
            Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the recording of call {id} is not a readable WAV: {e}"),
            )
            .into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "peaks task failed");
            Err(internal().into_response())
        }
    }
}

/// Per channel, the lowest and highest sample of each of `n` equal spans
/// (from -1 to 1, four decimals). Blocking.
fn compute_peaks<R: Read>(reader: R, n: usize) -> Result<Value, hound::Error> {
    let mut wav = hound::WavReader::new(reader)?;
    let spec = wav.spec();
    let channels = usize::from(spec.channels.max(1));
    let frames = wav.duration() as usize;
    let mut min = vec![vec![0f32; n]; channels];
    let mut max = vec![vec![0f32; n]; channels];
    let mut put = |i: usize, x: f32| {
        let (frame, ch) = (i / channels, i % channels);
        let span = (frame * n).checked_div(frames).unwrap_or(0).min(n - 1);
        min[ch][span] = min[ch][span].min(x);
        max[ch][span] = max[ch][span].max(x);
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for (i, s) in wav.samples::<f32>().enumerate() {
                put(i, s?.clamp(-1.0, 1.0));
            }
        }
        hound::SampleFormat::Int => {
            let scale = (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            for (i, s) in wav.samples::<i32>().enumerate() {
                put(i, (s? as f32 / scale).clamp(-1.0, 1.0));
            }
        }
    }
    let round = |v: Vec<f32>| -> Vec<f32> {
        v.into_iter()
            .map(|x| (x * 10_000.0).round() / 10_000.0)
            .collect()
    };
    let names = ["caller", "agent"];
    let out: Vec<Value> = min
        .into_iter()
        .zip(max)
        .enumerate()
        .map(|(i, (lo, hi))| {
            let name = names
                .get(i)
                .map_or_else(|| format!("channel {}", i + 1), |s| (*s).to_owned());
            json!({"name": name, "min": round(lo), "max": round(hi)})
        })
        .collect();
    let duration_ms = if spec.sample_rate == 0 {
        0
    } else {
        frames as u64 * 1000 / u64::from(spec.sample_rate)
    };
    Ok(json!({
        "n": n,
        "sample_rate": spec.sample_rate,
        "duration_ms": duration_ms,
        "channels": out,
    }))
}

/// A voicemail as the API shows it (never the file's path).
fn voicemail_json(v: &VoicemailRow) -> Value {
    let deleted = v.deleted_at.is_some();
    json!({
        "id": v.call_id,
        "call_id": v.call_id,
        "at": v.at,
        "caller": v.caller,
        "caller_name": v.caller_name,
        "queue": v.queue,
        "started_at": v.started_at,
        "duration_ms": v.duration_ms,
        "bytes": v.bytes,
        "url": (!deleted).then(|| format!("/api/voicemails/{}/audio", v.call_id)),
        "deleted": deleted,
        "deleted_at": v.deleted_at,
        "deleted_reason": v.deleted_reason,
        "handled": v.handled_at.is_some(),
        "handled_at": v.handled_at,
        "handled_by": v.handled_by,
    })
}

#[utoipa::path(
    get,
    path = "/api/voicemails",
    tag = "voicemails",
    summary = "List voicemails",
    responses(
        (status = 200, description = "List voicemails"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn list(
    State(st): State<RecordingAccess>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = query.map_err(|e| bad(e.body_text()))?;
    let mut handled = None;
    let mut after = None;
    let mut limit = DEFAULT_PAGE;
    for (key, value) in &params {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "handled" => {
                handled = match value {
                    "true" | "1" => Some(true),
                    "false" | "0" => Some(false),
                    "all" | "any" => None,
                    _ => {
                        return Err(bad(format!(
                            "`handled` must be true, false or all, not `{value}`"
                        )));
                    }
                }
            }
            "after" => after = Some(value.parse::<VoicemailCursor>()?),
            "limit" => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "`limit` must be a whole number from 1 to {MAX_PAGE}, not `{value}`"
                        ))
                    })?;
            }
            other => {
                return Err(bad(format!(
                    "unknown parameter `{other}`; use handled, after, limit"
                )));
            }
        }
    }
    let (rows, next) = st.store.voicemails(handled, after, limit).await?;
    Ok(Json(json!({
        "voicemails": rows.iter().map(voicemail_json).collect::<Vec<_>>(),
        "next": next.map(|c| c.to_string()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandledBody {
    handled: bool,
}

#[utoipa::path(
    put,
    path = "/api/voicemails/{call_id}/handled",
    tag = "voicemails",
    summary = "Mark a voicemail handled or not",
    params(("call_id" = String, Path)),
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Mark a voicemail handled or not"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn set_handled(
    State(st): State<RecordingAccess>,
    actor: Actor,
    Path(call): Path<String>,
    JsonBody(body): JsonBody<HandledBody>,
) -> Result<Json<Value>, ApiError> {
    let id = call_id(&call)?;
    let before = st.store.voicemail(id).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("call {id} left no voicemail"),
        )
    })?;
    let row = st
        .store
        .set_voicemail_handled(id, body.handled, &actor.principal.name)
        .await?;
    if before.handled_at.is_some() != body.handled {
        let action = if body.handled {
            "voicemail_handled"
        } else {
            "voicemail_unhandled"
        };
        actor
            .record(&st.store, action, Some(&format!("call {id}")), json!({}))
            .await;
    }
    Ok(Json(voicemail_json(&row)))
}

#[derive(Deserialize)]
struct AudioQuery {
    #[serde(default)]
    download: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/voicemails/{call_id}/audio",
    tag = "voicemails",
    summary = "Play a voicemail (audited)",
    params(("call_id" = String, Path)),
    responses(
        (status = 200, description = "Play a voicemail (audited)"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn audio(
    State(st): State<RecordingAccess>,
    actor: Actor,
    Path(call): Path<String>,
    query: Result<Query<AudioQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    match audio_inner(st, actor, call, query, headers).await {
        Ok(r) | Err(r) => r,
    }
}

async fn audio_inner(
    st: RecordingAccess,
    actor: Actor,
    call: String,
    query: Result<Query<AudioQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let Query(q) = query.map_err(|e| bad(e.body_text()).into_response())?;
    let download = q
        .download
        .as_deref()
        .is_some_and(|d| !matches!(d, "" | "0" | "false"));
    let id = call_id(&call).map_err(IntoResponse::into_response)?;
    let row = match st.store.voicemail(id).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("call {id} left no voicemail"),
            )
            .into_response());
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let mut reader = open(&st, id, row.as_recording()).await?;
    // A voicemail is short (minutes of 8 kHz mono): read whole.
    let bytes = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf).map(|_| buf)
    })
    .await;
    let bytes = match bytes {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::error!(call = %id, error = %e, "voicemail cannot be read");
            return Err(internal().into_response());
        }
        Err(e) => {
            tracing::error!(error = %e, "voicemail read task failed");
            return Err(internal().into_response());
        }
    };
    let len = bytes.len() as u64;
    let range = match headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len))
    {
        None | Some(Range::Ignore) => None,
        Some(Range::Bytes(a, b)) => Some((a, b)),
        Some(Range::Unsatisfiable) => {
            return Ok(Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_default());
        }
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    if download || start == 0 {
        let action = if download {
            "voicemail_download"
        } else {
            "voicemail_listen"
        };
        actor
            .record(
                &st.store,
                action,
                Some(&format!("call {id}")),
                json!({"bytes": len}),
            )
            .await;
    }
    let body = if len == 0 {
        Vec::new()
    } else {
        bytes[start as usize..=end as usize].to_vec()
    };
    let mut res = Response::builder()
        .status(if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-store");
    if range.is_some() {
        res = res.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    let mut res = res.body(Body::from(body)).unwrap_or_default();
    res.headers_mut().insert(
        "content-disposition",
        HeaderValue::from_str(&format!(
            "{}; filename=\"voicemail-{id}.wav\"",
            if download { "attachment" } else { "inline" }
        ))
        .unwrap_or(HeaderValue::from_static("inline")),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AdminState, routes as admin_routes};
    use axum::http::{Method, Request};
    use hotline_events::{CallEvent, EventData};
    use hotline_store::testing::{TestDb, fresh_db};
    use hotline_store::{Keyring, NewAgent, RecordingKey, Role as StoreRole};
    use std::sync::Arc;
    use tower::ServiceExt;

    const TOKEN: &str = "voicemail-api-test-token";
    const HOST: &str = "gw.test:8080";
    const ORIGIN: &str = "http://gw.test:8080";

    struct App {
        router: Router,
        db: TestDb,
        dir: std::path::PathBuf,
        ring: Arc<Keyring>,
    }

    impl Drop for App {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The admin router with sign-in, recordings sealed with a keyring (so
    /// the sealed reading path is the one under test), and `sue`, a
    /// supervisor with password `sue password`.
    async fn app() -> App {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        db.store
            .create_agent(
                NewAgent::new("sue", "Sue", "sue password").with_role(StoreRole::Supervisor),
            )
            .await
            .unwrap();
        let ring = Arc::new(Keyring::single(RecordingKey::from_bytes([7; 32])));
        let st =
            AdminState::new(db.store.clone(), Some(TOKEN)).with_recording_keys(Some(ring.clone()));
        let router = admin_routes(st).merge(crate::admin_auth::routes(
            crate::admin_auth::AdminAuthState::new(db.store.clone()),
        ));
        let dir = std::env::temp_dir().join(format!("hotline-vm-api-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        App {
            router,
            db,
            dir,
            ring,
        }
    }

    /// Method, uri, extra headers, JSON body → status, headers, body bytes.
    async fn send(
        app: &Router,
        method: Method,
        uri: &str,
        headers: &[(header::HeaderName, String)],
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, HOST);
        for (k, v) in headers {
            req = req.header(k.clone(), v.as_str());
        }
        let mut req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let peer: std::net::SocketAddr = "192.0.2.4:5000".parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
        (parts.status, parts.headers, bytes.to_vec())
    }

    fn bearer() -> (header::HeaderName, String) {
        (header::AUTHORIZATION, format!("Bearer {TOKEN}"))
    }

    async fn get_json(app: &Router, uri: &str) -> (StatusCode, Value) {
        let (s, _, b) = send(app, Method::GET, uri, &[bearer()], None).await;
        let v = serde_json::from_slice(&b)
            .unwrap_or_else(|_| panic!("{uri}: not JSON: {}", String::from_utf8_lossy(&b)));
        (s, v)
    }

    /// A WAV of `channels` at 8 kHz, 16 bit: channel 0 a full-scale-ish
    /// square wave all along, channel 1 silent for the first half and then
    /// half as loud.
    fn write_wav(path: &std::path::Path, channels: u16, frames: u32) -> u64 {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            let s: i16 = if (i / 10) % 2 == 0 { 16000 } else { -16000 };
            w.write_sample(s).unwrap();
            if channels == 2 {
                w.write_sample(if i < frames / 2 { 0 } else { s / 2 })
                    .unwrap();
            }
        }
        w.finalize().unwrap();
        std::fs::metadata(path).unwrap().len()
    }

    /// A finished call from `caller` written through the real (sealing)
    /// writer path, with `extra` events between its start and its end.
    async fn call(app: &App, caller: &str, extra: Vec<EventData>) -> Uuid {
        let id = Uuid::new_v4();
        let started: EventData = serde_json::from_value(json!({"kind": "call_started",
            "data": {"caller": caller, "callee": "800", "transport": "udp",
                     "source": "127.0.0.1:5060"}}))
        .unwrap();
        let mut datas = vec![started];
        datas.extend(extra);
        datas.push(EventData::CallEnded {});
        let events: Vec<CallEvent> = datas
            .into_iter()
            .enumerate()
            .map(|(seq, data)| CallEvent {
                call_id: id,
                sip_call_id: format!("{id}@test"),
                seq: seq as u32,
                at: chrono::Utc::now(),
                node: None,
                data,
            })
            .collect();
        let batch = hotline_store::prepare_sealed(events.into_iter(), "gw", Some(&app.ring)).await;
        app.db.store.write(&batch).await.unwrap();
        id
    }

    async fn recorded_call(app: &App, frames: u32) -> Uuid {
        let wav = app.dir.join(format!("{}.wav", Uuid::new_v4()));
        let bytes = write_wav(&wav, 2, frames);
        call(
            app,
            "+15550100001",
            vec![EventData::Recording {
                path: wav.to_str().unwrap().into(),
                duration_ms: u64::from(frames) / 8,
                channels: 2,
                sample_rate: 8000,
                bytes,
                sha256: None,
                recovered: None,
            }],
        )
        .await
    }

    async fn voicemail_call(app: &App, caller: &str) -> Uuid {
        let wav = app.dir.join(format!("{}.wav", Uuid::new_v4()));
        let bytes = write_wav(&wav, 1, 8000);
        let outcome: EventData =
            serde_json::from_value(json!({"kind": "outcome", "data": {"outcome": "voicemail"}}))
                .unwrap();
        call(
            app,
            caller,
            vec![
                EventData::Voicemail {
                    path: wav.to_str().unwrap().into(),
                    duration_ms: 1000,
                    bytes,
                },
                outcome,
            ],
        )
        .await
    }

    #[tokio::test]
    async fn peaks_of_a_sealed_stereo_recording() {
        let app = app().await;
        let id = recorded_call(&app, 16_000).await;
        let rec = app.db.store.call_recording(id).await.unwrap().unwrap();
        assert!(rec.path.ends_with(".enc"), "sealed: {}", rec.path);

        let (s, v) = get_json(
            &app.router,
            &format!("/api/calls/{id}/recording/peaks?n=100"),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["n"].as_u64(), v["duration_ms"].as_u64()),
            (Some(100), Some(2000))
        );
        let chans = v["channels"].as_array().unwrap();
        assert_eq!(chans.len(), 2);
        assert_eq!(
            (chans[0]["name"].as_str(), chans[1]["name"].as_str()),
            (Some("caller"), Some("agent"))
        );
        let f = |c: &Value, k: &str| -> Vec<f64> {
            c[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let (cmin, cmax) = (f(&chans[0], "min"), f(&chans[0], "max"));
        assert_eq!((cmin.len(), cmax.len()), (100, 100));
        let full = 16000.0 / 32768.0;
        assert!(cmax.iter().all(|x| (x - full).abs() < 1e-3), "{cmax:?}");
        assert!(cmin.iter().all(|x| (x + full).abs() < 1e-3), "{cmin:?}");
        let amax = f(&chans[1], "max");
        assert!(amax[..50].iter().all(|x| *x == 0.0), "{amax:?}");
        assert!(
            amax[50..].iter().all(|x| (x - full / 2.0).abs() < 1e-3),
            "{amax:?}"
        );

        // The default is 800 spans.
        let (s, v) = get_json(&app.router, &format!("/api/calls/{id}/recording/peaks")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["channels"][0]["min"].as_array().unwrap().len(), 800);
    }

    #[tokio::test]
    async fn peaks_refuse_bad_input() {
        let app = app().await;
        let id = recorded_call(&app, 800).await;
        for (uri, status, says) in [
            (
                format!("/api/calls/{id}/recording/peaks?n=9"),
                StatusCode::BAD_REQUEST,
                "`n`",
            ),
            (
                format!("/api/calls/{id}/recording/peaks?n=4001"),
                StatusCode::BAD_REQUEST,
                "`n`",
            ),
            (
                format!("/api/calls/{id}/recording/peaks?n=lots"),
                StatusCode::BAD_REQUEST,
                "`n`",
            ),
            (
                "/api/calls/not-a-uuid/recording/peaks".into(),
                StatusCode::BAD_REQUEST,
                "UUID",
            ),
            (
                format!("/api/calls/{}/recording/peaks", Uuid::new_v4()),
                StatusCode::NOT_FOUND,
                "no recording",
            ),
        ] {
            let (s, v) = get_json(&app.router, &uri).await;
            assert_eq!(s, status, "{uri}: {v}");
            assert!(v["error"].as_str().unwrap().contains(says), "{uri}: {v}");
        }
        // A call without a recording.
        let bare = call(&app, "+15550100002", vec![]).await;
        let (s, _) = get_json(&app.router, &format!("/api/calls/{bare}/recording/peaks")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Without credentials: 401.
        let (s, _, _) = send(
            &app.router,
            Method::GET,
            &format!("/api/calls/{id}/recording/peaks"),
            &[],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn voicemails_are_listed_played_and_marked_handled_by_a_supervisor() {
        let app = app().await;
        let old = voicemail_call(&app, "+15550100011").await;
        let new = voicemail_call(&app, "+15550100012").await;
        let _not_vm = recorded_call(&app, 800).await;

        let (s, v) = get_json(&app.router, "/api/voicemails?handled=false").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let ids: Vec<&str> = v["voicemails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [new.to_string(), old.to_string()]);
        let first = &v["voicemails"][0];
        assert_eq!(first["caller"], "+15550100012");
        assert_eq!(first["duration_ms"], 1000);
        assert_eq!(first["handled"], false);
        assert_eq!(first["url"], format!("/api/voicemails/{new}/audio"));
        assert!(first.get("path").is_none(), "no server path: {first}");

        // Keyset pages of one.
        let (_, p1) = get_json(&app.router, "/api/voicemails?limit=1").await;
        assert_eq!(p1["voicemails"][0]["id"], new.to_string());
        let next = p1["next"].as_str().unwrap().to_owned();
        let (_, p2) = get_json(
            &app.router,
            &format!("/api/voicemails?limit=1&after={next}"),
        )
        .await;
        assert_eq!(p2["voicemails"][0]["id"], old.to_string());

        // The (sealed) file plays, and seeks.
        let uri = format!("/api/voicemails/{new}/audio");
        let (s, h, body) = send(&app.router, Method::GET, &uri, &[bearer()], None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], "audio/wav");
        assert_eq!(&body[..4], b"RIFF");
        let whole = body.len();
        let (s, h, body) = send(
            &app.router,
            Method::GET,
            &uri,
            &[bearer(), (header::RANGE, "bytes=100-199".into())],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            h[header::CONTENT_RANGE],
            format!("bytes 100-199/{whole}").as_str()
        );
        assert_eq!(body.len(), 100);

        // A supervisor marks it handled (operational work, not configuration).
        let (s, h, b) = send(
            &app.router,
            Method::POST,
            "/admin/login",
            &[(header::ORIGIN, ORIGIN.into())],
            Some(json!({"id": "sue", "password": "sue password"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        let cookie = h[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let sue = [(header::COOKIE, cookie), (header::ORIGIN, ORIGIN.into())];
        let handled_uri = format!("/api/voicemails/{new}/handled");
        let (s, _, b) = send(
            &app.router,
            Method::PUT,
            &handled_uri,
            &sue,
            Some(json!({"handled": true})),
        )
        .await;
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["handled"].as_bool(), v["handled_by"].as_str()),
            (Some(true), Some("sue"))
        );

        let (_, v) = get_json(&app.router, "/api/voicemails?handled=false").await;
        assert_eq!(v["voicemails"].as_array().unwrap().len(), 1);
        assert_eq!(v["voicemails"][0]["id"], old.to_string());
        let (_, v) = get_json(&app.router, "/api/voicemails?handled=true").await;
        assert_eq!(v["voicemails"][0]["id"], new.to_string());
        assert_eq!(v["voicemails"][0]["handled_by"], "sue");
        let (_, v) = get_json(&app.router, "/api/voicemails").await;
        assert_eq!(v["voicemails"].as_array().unwrap().len(), 2);

        // And clears it again (the token this time).
        let (s, _, _) = send(
            &app.router,
            Method::PUT,
            &handled_uri,
            &[bearer()],
            Some(json!({"handled": false})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (_, v) = get_json(&app.router, "/api/voicemails?handled=false").await;
        assert_eq!(v["voicemails"].as_array().unwrap().len(), 2);

        let log = app.db.store.audit_page(None, 50).await.unwrap();
        let seen: Vec<(&str, &str)> = log
            .iter()
            .filter(|e| e.action.starts_with("voicemail_"))
            .map(|e| (e.action.as_str(), e.actor.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("voicemail_unhandled", "token"),
                ("voicemail_handled", "sue"),
                ("voicemail_listen", "token"),
            ]
        );
        assert_eq!(
            log[0].subject.as_deref(),
            Some(format!("call {new}").as_str())
        );
    }

    #[tokio::test]
    async fn voicemail_routes_refuse_bad_input() {
        let app = app().await;
        let vm = voicemail_call(&app, "+15550100021").await;
        let plain = call(&app, "+15550100022", vec![]).await;
        let unknown = Uuid::new_v4();
        let put = |uri: String, body: Value| {
            let app = &app.router;
            async move {
                let (s, _, b) = send(app, Method::PUT, &uri, &[bearer()], Some(body)).await;
                (
                    s,
                    serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
                )
            }
        };
        for (uri, body, status) in [
            (
                "/api/voicemails/nope/handled".to_owned(),
                json!({"handled": true}),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/api/voicemails/{unknown}/handled"),
                json!({"handled": true}),
                StatusCode::NOT_FOUND,
            ),
            (
                format!("/api/voicemails/{plain}/handled"),
                json!({"handled": true}),
                StatusCode::NOT_FOUND,
            ),
            (
                format!("/api/voicemails/{vm}/handled"),
                json!({"handled": "yes"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/api/voicemails/{vm}/handled"),
                json!({}),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/api/voicemails/{vm}/handled"),
                json!({"handled": true, "x": 1}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (s, v) = put(uri.clone(), body.clone()).await;
            assert_eq!(s, status, "{uri} {body}: {v}");
            assert!(v["error"].is_string(), "{uri}: {v}");
        }
        for (uri, status) in [
            ("/api/voicemails?handled=maybe", StatusCode::BAD_REQUEST),
            ("/api/voicemails?after=garbage", StatusCode::BAD_REQUEST),
            ("/api/voicemails?limit=0", StatusCode::BAD_REQUEST),
            ("/api/voicemails?limit=201", StatusCode::BAD_REQUEST),
            ("/api/voicemails?colour=red", StatusCode::BAD_REQUEST),
            ("/api/voicemails/nope/audio", StatusCode::BAD_REQUEST),
        ] {
            let (s, v) = get_json(&app.router, uri).await;
            assert_eq!(s, status, "{uri}: {v}");
            assert!(v["error"].is_string(), "{uri}: {v}");
        }
        let (s, _, _) = send(
            &app.router,
            Method::GET,
            &format!("/api/voicemails/{unknown}/audio"),
            &[bearer()],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Nothing was marked, nothing audited as handled.
        let (_, v) = get_json(&app.router, "/api/voicemails?handled=true").await;
        assert_eq!(v["voicemails"].as_array().unwrap().len(), 0);
        let log = app.db.store.audit_page(None, 50).await.unwrap();
        assert!(
            log.iter()
                .all(|e| !e.action.starts_with("voicemail_handled"))
        );
        // Without credentials: 401.
        let (s, _, _) = send(&app.router, Method::GET, "/api/voicemails", &[], None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}
