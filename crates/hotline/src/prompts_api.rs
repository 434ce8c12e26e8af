//! Voice prompts over the admin API: what the sounds dir holds per language,
//! the WAVs themselves, and uploads that replace or add one. Mounted inside
//! `admin::routes`, behind its authentication layer.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `GET /api/prompts` | — | `{languages, prompts: [{name, files: {lang: {duration_ms, sample_rate, channels, bits}}, missing}], flagged: [{flow, version, line, column, message}]}` |
//! | `GET /api/prompts/{lang}/{name}` | — | the WAV (`audio/wav`, one `Range` honoured); `name` may have `/` (`numbers/5`) |
//! | `PUT /api/prompts/{lang}/{name}` | a WAV file | `{name, language, duration_ms, sample_rate, channels, bits, replaced}`; 403 for non-admins |
//!
//! A prompt is `<sounds dir>/<lang>/<name>.wav`; a language is a directory
//! named like `en` or `pt-BR`. `missing` lists the languages a prompt has no
//! file in. `flagged` lists each published flow that names a prompt missing
//! in a language it declares (the validator's message, with line and column).
//!
//! An upload is any WAV hound reads (any rate, channels, bit depth, float),
//! at most [`MAX_UPLOAD`] bytes (413) and [`MAX_LENGTH`] long. It is
//! converted once to what calls play (8 kHz mono 16-bit, the resampler of
//! `hotline_media::prompt`), written to a temporary file and renamed over
//! the prompt, dropped from the gateway's prompt cache (calls playing the old
//! one finish it; the next call reads the new file) and audited as
//! `prompt_upload`. An upload changes only the gateway that takes it: each
//! gateway has its own sounds dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hotline_media::{PromptCache, PromptError};
use hotline_store::Store;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::audit::Actor;

/// The largest upload accepted (413 above).
pub const MAX_UPLOAD: usize = 20 * 1024 * 1024;
/// The longest prompt accepted.
pub const MAX_LENGTH: Duration = Duration::from_secs(600);

/// What the prompt routes need. Cheap to clone.
#[derive(Clone)]
pub struct PromptsApi {
    store: Store,
    /// `None`: the gateway has no sounds dir configured (404 for everything).
    sounds_dir: Option<PathBuf>,
    cache: Option<Arc<PromptCache>>,
}

impl PromptsApi {
    pub fn new(store: Store, sounds_dir: Option<PathBuf>, cache: Option<Arc<PromptCache>>) -> Self {
        Self {
            store,
            sounds_dir,
            cache,
        }
    }

    fn dir(&self) -> Result<&Path, ApiError> {
        self.sounds_dir.as_deref().ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                "this gateway has no sounds directory".into(),
            )
        })
    }
}

pub fn routes<S: Clone + Send + Sync + 'static>(st: PromptsApi) -> Router<S> {
    Router::new()
        .route("/api/prompts", get(list))
        .route(
            "/api/prompts/{lang}/{*name}",
            get(fetch)
                .put(upload)
                // Room for the limit plus headers' worth; the handler answers
                // 413 itself with a message.
                .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .with_state(st)
}

type ApiResult<T> = Result<T, ApiError>;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// `en`, `zh`, `pt-BR`.
pub fn valid_language(lang: &str) -> bool {
    let b = lang.as_bytes();
    let two_lower = |s: &[u8]| s.len() == 2 && s.iter().all(u8::is_ascii_lowercase);
    match b.len() {
        2 => two_lower(b),
        5 => two_lower(&b[..2]) && b[2] == b'-' && b[3..].iter().all(u8::is_ascii_uppercase),
        _ => false,
    }
}

/// One path segment of a prompt name: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_segment(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

fn check_language(lang: &str) -> ApiResult<()> {
    if valid_language(lang) {
        Ok(())
    } else {
        Err(bad(format!(
            "invalid language {lang:?}: two lower-case letters, optionally `-` and two upper-case (en, pt-BR)"
        )))
    }
}

/// An upload's name: one segment, no `/` or `..`.
fn check_upload_name(name: &str) -> ApiResult<()> {
    if valid_segment(name) {
        Ok(())
    } else {
        Err(bad(format!(
            "invalid prompt name {name:?}: 1 to 64 letters, digits, `_` or `-` (no `/`, no `..`)"
        )))
    }
}

/// A name to read: segments as [`valid_segment`], separated by `/`.
fn check_read_name(name: &str) -> ApiResult<()> {
    if !name.is_empty() && name.split('/').all(valid_segment) {
        Ok(())
    } else {
        Err(bad(format!(
            "invalid prompt name {name:?}: segments of letters, digits, `_` or `-`"
        )))
    }
}

#[derive(Serialize)]
struct FileInfo {
    duration_ms: u64,
    sample_rate: u32,
    channels: u16,
    bits: u16,
}

#[derive(Serialize)]
struct PromptRow {
    name: String,
    /// Language → the file (`null`: unreadable).
    files: std::collections::BTreeMap<String, Option<FileInfo>>,
    missing: Vec<String>,
}

fn info(path: &Path) -> Option<FileInfo> {
    let i = hotline_media::wav_info(path).ok()?;
    Some(FileInfo {
        duration_ms: i.duration().as_millis() as u64,
        sample_rate: i.sample_rate,
        channels: i.channels,
        bits: i.bits_per_sample,
    })
}

/// `(name, path)` of every `.wav` below `dir`, names relative with `/`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ty) = entry.file_type() else { continue };
        if ty.is_dir() {
            walk(root, &path, out);
        } else if ty.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
            && let Ok(rel) = path.strip_prefix(root)
            && let Some(rel) = rel.with_extension("").to_str()
        {
            out.push((rel.replace(std::path::MAIN_SEPARATOR, "/"), path.clone()));
        }
    }
}

/// Every prompt per language, from the files (blocking I/O).
fn scan(dir: &Path) -> (Vec<String>, Vec<PromptRow>) {
    let mut languages: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|l| valid_language(l))
                .collect()
        })
        .unwrap_or_default();
    languages.sort();
    let mut rows: std::collections::BTreeMap<String, PromptRow> = Default::default();
    for lang in &languages {
        let root = dir.join(lang);
        let mut found = Vec::new();
        walk(&root, &root, &mut found);
        for (name, path) in found {
            rows.entry(name.clone())
                .or_insert_with(|| PromptRow {
                    name,
                    files: Default::default(),
                    missing: Vec::new(),
                })
                .files
                .insert(lang.clone(), info(&path));
        }
    }
    let mut rows: Vec<PromptRow> = rows.into_values().collect();
    for row in &mut rows {
        row.missing = languages
            .iter()
            .filter(|l| !row.files.contains_key(*l))
            .cloned()
            .collect();
    }
    (languages, rows)
}

#[utoipa::path(
    get,
    path = "/api/prompts",
    tag = "prompts",
    summary = "List prompts per language",
    responses(
        (status = 200, description = "List prompts per language"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn list(State(st): State<PromptsApi>) -> ApiResult<Json<Value>> {
    let dir = st.dir()?.to_owned();
    let published = st.store.published_flows().await?;
    let answer = tokio::task::spawn_blocking(move || {
        let (languages, prompts) = scan(&dir);
        let mut flagged = Vec::new();
        for v in &published {
            let Err(errors) = crate::flows_api::check_text(&v.flow, &v.yaml, Some(&dir)) else {
                continue;
            };
            for e in errors
                .iter()
                .filter(|e| e.kind == hotline_ivr::ErrorKind::MissingRecording)
            {
                flagged.push(json!({
                    "flow": v.flow,
                    "version": v.version,
                    "line": e.pos.map(|p| p.line),
                    "column": e.pos.map(|p| p.col),
                    "message": e.message,
                }));
            }
        }
        json!({ "languages": languages, "prompts": prompts, "flagged": flagged })
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "prompt scan failed");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    })?;
    Ok(Json(answer))
}

#[utoipa::path(
    get,
    path = "/api/prompts/{lang}/{name}",
    tag = "prompts",
    summary = "Fetch a prompt file",
    params(("lang" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, description = "Fetch a prompt file"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn fetch(
    State(st): State<PromptsApi>,
    UrlPath((lang, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_language(&lang)?;
    let name = name.strip_suffix(".wav").unwrap_or(&name).to_owned();
    check_read_name(&name)?;
    let path = st.dir()?.join(&lang).join(format!("{name}.wav"));
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(ranged(&headers, bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no prompt {lang}/{name}"),
        )),
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "cannot read prompt");
            Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
            ))
        }
    }
}

/// The file, or the one byte range asked for (`206`; `416` outside it), so
/// an audio element can seek.
fn ranged(headers: &HeaderMap, bytes: Vec<u8>) -> Response {
    use crate::recording_api::{Range, parse_range};
    let len = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let common = [
        (header::CONTENT_TYPE, "audio/wav"),
        (header::CACHE_CONTROL, "no-cache"),
        (header::ACCEPT_RANGES, "bytes"),
    ];
    match range {
        None | Some(Range::Ignore) => (common, bytes).into_response(),
        Some(Range::Bytes(a, b)) => (
            StatusCode::PARTIAL_CONTENT,
            common,
            [(header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}"))],
            bytes[a as usize..=b as usize].to_vec(),
        )
            .into_response(),
        Some(Range::Unsatisfiable) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
        )
            .into_response(),
    }
}

#[utoipa::path(
    put,
    path = "/api/prompts/{lang}/{name}",
    tag = "prompts",
    summary = "Upload (and convert) a prompt",
    params(("lang" = String, Path), ("name" = String, Path)),
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Upload (and convert) a prompt"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn upload(
    State(st): State<PromptsApi>,
    actor: Actor,
    UrlPath((lang, name)): UrlPath<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    actor.require_change()?;
    check_language(&lang)?;
    check_upload_name(&name)?;
    let dir = st.dir()?.join(&lang);
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the upload is larger than {} MB", MAX_UPLOAD >> 20),
            )
        } else {
            bad(e.body_text())
        }
    })?;
    if body.is_empty() {
        return Err(bad("the upload is empty: send a WAV file"));
    }
    let target = dir.join(format!("{name}.wav"));
    let (in_info, samples, replaced) = {
        let target = target.clone();
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || convert_and_store(&body, &dir, &target))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "prompt conversion failed");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            })??
    };
    let key = format!("{lang}/{name}");
    if let Some(cache) = &st.cache {
        cache.invalidate(&key);
    }
    let duration_ms = samples as u64 * 1000 / 8000;
    actor
        .record(
            &st.store,
            "prompt_upload",
            Some(&key),
            json!({
                "replaced": replaced,
                "duration_ms": duration_ms,
                "uploaded": {"sample_rate": in_info.sample_rate, "channels": in_info.channels,
                             "bits": in_info.bits_per_sample},
            }),
        )
        .await;
    tracing::info!(prompt = %key, duration_ms, replaced, by = %actor.principal.name, "prompt uploaded");
    Ok(Json(json!({
        "name": name,
        "language": lang,
        "duration_ms": duration_ms,
        "sample_rate": 8000,
        "channels": 1,
        "bits": 16,
        "replaced": replaced,
    })))
}

/// Converts the upload and renames it into place; `(the upload's header,
/// samples written, whether a file was replaced)`.
fn convert_and_store(
    body: &[u8],
    dir: &Path,
    target: &Path,
) -> ApiResult<(hotline_media::WavInfo, usize, bool)> {
    let header = hound_header(body)?;
    let samples = hotline_media::convert_wav(body, MAX_LENGTH).map_err(|e| match e {
        PromptError::Wav { source, .. } => {
            bad(format!("not a WAV file that can be read: {source}"))
        }
        other => bad(other.to_string()),
    })?;
    if samples.is_empty() {
        return Err(bad("the recording has no audio"));
    }
    let wav = hotline_media::encode_wav(&samples);
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, path = %target.display(), "cannot store prompt");
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot store the prompt".into(),
        )
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let replaced = target.is_file();
    // Unique per process and upload; a dot file, so no listing shows it.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".upload-{}-{n}.tmp", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&wav)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok((header, samples.len(), replaced))
}

/// The upload's own format, for the audit log (and a first check that it
/// is a WAV at all).
fn hound_header(body: &[u8]) -> ApiResult<hotline_media::WavInfo> {
    hotline_media::prompt::wav_info_bytes(body).map_err(|e| match e {
        PromptError::Wav { source, .. } => {
            bad(format!("not a WAV file that can be read: {source}"))
        }
        other => bad(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Principal, Role};
    use axum::Extension;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use hotline_store::flow_versions::{NewFlowVersion, Saved, Source};
    use hotline_store::testing::{TestDb, fresh_db};
    use tower::ServiceExt;

    struct Setup {
        db: TestDb,
        dir: PathBuf,
        cache: Arc<PromptCache>,
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl Setup {
        fn app(&self, role: Role) -> Router {
            routes(PromptsApi::new(
                self.db.store.clone(),
                Some(self.dir.clone()),
                Some(self.cache.clone()),
            ))
            .layer(Extension(Principal {
                name: "ada".into(),
                role,
            }))
        }
    }

    /// A sounds dir with `en/hello`, `en/menu`, `en/numbers/5`, `zh/hello`.
    async fn setup() -> Setup {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let dir = std::env::temp_dir().join(format!(
            "hotline-prompts-api-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        for (name, secs) in [
            ("en/hello", 1.0),
            ("en/menu", 0.5),
            ("en/numbers/5", 0.25),
            ("zh/hello", 0.75),
        ] {
            let path = dir.join(format!("{name}.wav"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, wav(8000, 1, 16, secs)).unwrap();
        }
        let cache = Arc::new(PromptCache::new(dir.clone()));
        Setup { db, dir, cache }
    }

    /// A WAV of `secs` of a 440 Hz tone (integer samples).
    fn wav(rate: u32, channels: u16, bits: u16, secs: f64) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        let max = ((1i64 << (bits - 1)) - 1) as f64;
        for i in 0..(f64::from(rate) * secs).round() as usize {
            let v = 0.3 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / f64::from(rate)).sin();
            for _ in 0..channels {
                w.write_sample((v * max) as i32).unwrap();
            }
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    async fn send(
        app: &Router,
        method: Method,
        uri: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "audio/wav")
            .body(Body::from(body))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
            .await
            .unwrap();
        (status, ctype, bytes.to_vec())
    }

    async fn json_of(
        app: &Router,
        method: Method,
        uri: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let (s, _, b) = send(app, method, uri, body).await;
        let v = serde_json::from_slice(&b)
            .unwrap_or_else(|_| panic!("not JSON ({s}): {}", String::from_utf8_lossy(&b)));
        (s, v)
    }

    fn row<'a>(list: &'a Value, name: &str) -> &'a Value {
        list["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {list}"))
    }

    #[tokio::test]
    async fn lists_and_fetches_prompts_per_language() {
        let s = setup().await;
        let app = s.app(Role::Supervisor);
        let (st, list) = json_of(&app, Method::GET, "/api/prompts", vec![]).await;
        assert_eq!(st, StatusCode::OK, "{list}");
        assert_eq!(list["languages"], json!(["en", "zh"]));
        let hello = row(&list, "hello");
        assert_eq!(hello["missing"], json!([]));
        assert_eq!(
            hello["files"]["en"],
            json!({"duration_ms": 1000, "sample_rate": 8000, "channels": 1, "bits": 16})
        );
        assert_eq!(hello["files"]["zh"]["duration_ms"], 750);
        assert_eq!(row(&list, "menu")["missing"], json!(["zh"]));
        assert_eq!(row(&list, "numbers/5")["missing"], json!(["zh"]));
        assert_eq!(list["flagged"], json!([]));

        let (st, ctype, body) = send(&app, Method::GET, "/api/prompts/zh/hello", vec![]).await;
        assert_eq!((st, ctype.as_str()), (StatusCode::OK, "audio/wav"));
        assert_eq!(body, std::fs::read(s.dir.join("zh/hello.wav")).unwrap());
        let (st, _, body) = send(&app, Method::GET, "/api/prompts/en/numbers/5", vec![]).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(body, std::fs::read(s.dir.join("en/numbers/5.wav")).unwrap());
        let req = Request::get("/api/prompts/zh/hello")
            .header(header::RANGE, "bytes=0-43")
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        let total = std::fs::metadata(s.dir.join("zh/hello.wav")).unwrap().len();
        assert_eq!(
            res.headers()[header::CONTENT_RANGE],
            format!("bytes 0-43/{total}").as_str()
        );
        let head = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(&head[..4], b"RIFF");
        assert_eq!(head.len(), 44);
        let (st, _) = json_of(&app, Method::GET, "/api/prompts/zh/menu", vec![]).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        for bad in [
            "/api/prompts/en/..%2F..%2Fetc%2Fpasswd",
            "/api/prompts/en/numbers/../hello",
            "/api/prompts/EN/hello",
            "/api/prompts/..%2Fen/hello",
        ] {
            let (st, v) = json_of(&app, Method::GET, bad, vec![]).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        }
    }

    /// A 44.1 kHz stereo upload is stored as 8 kHz mono 16-bit of the same
    /// length, replaces the cached copy for new calls, and is audited.
    #[tokio::test]
    async fn an_upload_is_converted_once_and_replaces_the_cached_prompt() {
        let s = setup().await;
        let app = s.app(Role::Admin);
        let before = s.cache.get("en/hello").unwrap();
        assert_eq!(before.samples.len(), 8000);

        let (st, v) = json_of(
            &app,
            Method::PUT,
            "/api/prompts/en/hello",
            wav(44100, 2, 16, 1.5),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["replaced"], true);
        let ms = v["duration_ms"].as_i64().unwrap();
        assert!((1480..=1520).contains(&ms), "{ms}");

        let stored = hound::WavReader::open(s.dir.join("en/hello.wav")).unwrap();
        let spec = stored.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (8000, 1, 16)
        );
        let stored_ms = i64::from(stored.duration()) * 1000 / 8000;
        assert!((stored_ms - 1500).abs() <= 20, "{stored_ms}");
        // No temporary file left behind.
        let names: Vec<String> = std::fs::read_dir(s.dir.join("en"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("upload")), "{names:?}");

        // A call holding the old prompt keeps it; the next one gets the new file.
        assert_eq!(before.samples.len(), 8000);
        let after = s.cache.get("en/hello").unwrap();
        assert!((after.samples.len() as i64 - 12000).abs() <= 160);

        // A new prompt in a new language; the list shows both.
        let (st, v) = json_of(
            &app,
            Method::PUT,
            "/api/prompts/pt-BR/menu",
            wav(22050, 1, 24, 0.4),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["replaced"], false);
        let (_, list) = json_of(&app, Method::GET, "/api/prompts", vec![]).await;
        assert_eq!(list["languages"], json!(["en", "pt-BR", "zh"]));
        let hello_ms = row(&list, "hello")["files"]["en"]["duration_ms"]
            .as_i64()
            .unwrap();
        assert!((hello_ms - 1500).abs() <= 20, "{hello_ms}");
        assert_eq!(row(&list, "menu")["files"]["pt-BR"]["sample_rate"], 8000);
        assert_eq!(row(&list, "menu")["missing"], json!(["zh"]));

        let audit =
            s.db.store
                .audit_entries(Some("prompt_upload"), 10)
                .await
                .unwrap();
        let subjects: Vec<_> = audit.iter().map(|e| e.subject.clone().unwrap()).collect();
        assert_eq!(subjects, ["pt-BR/menu", "en/hello"]);
        assert_eq!(audit[1].actor, "ada");
        assert_eq!(audit[1].details["uploaded"]["sample_rate"], 44100);
        assert_eq!(audit[1].details["uploaded"]["channels"], 2);
    }

    /// Bad uploads get a 4xx with a message and change nothing.
    #[tokio::test]
    async fn bad_uploads_are_refused_and_change_nothing() {
        let s = setup().await;
        let app = s.app(Role::Admin);
        let original = std::fs::read(s.dir.join("en/hello.wav")).unwrap();
        let good = wav(16000, 1, 16, 0.2);
        let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
            (
                "/api/prompts/en/hello",
                b"ID3 not a wav at all".to_vec(),
                StatusCode::BAD_REQUEST,
                "not a WAV",
            ),
            (
                "/api/prompts/en/hello",
                Vec::new(),
                StatusCode::BAD_REQUEST,
                "empty",
            ),
            (
                "/api/prompts/en/hello",
                wav(8000, 1, 16, 0.0),
                StatusCode::BAD_REQUEST,
                "no audio",
            ),
            (
                "/api/prompts/en/..",
                good.clone(),
                StatusCode::BAD_REQUEST,
                "invalid prompt name",
            ),
            (
                "/api/prompts/en/..%2Fhello",
                good.clone(),
                StatusCode::BAD_REQUEST,
                "invalid prompt name",
            ),
            (
                "/api/prompts/en/numbers/5",
                good.clone(),
                StatusCode::BAD_REQUEST,
                "invalid prompt name",
            ),
            (
                "/api/prompts/en/a%2Fb",
                good.clone(),
                StatusCode::BAD_REQUEST,
                "invalid prompt name",
            ),
            (
                "/api/prompts/en/hello.wav",
                good.clone(),
                StatusCode::BAD_REQUEST,
                "invalid prompt name",
            ),
            (
                "/api/prompts/e/hello",
                good.clone(),
                StatusCode::BAD_REQUEST,
                "invalid language",
            ),
            (
                "/api/prompts/..%2Fen/hello",
                good.clone(),
                StatusCode::BAD_REQUEST,
                "invalid language",
            ),
            (
                "/api/prompts/en/hello",
                vec![0u8; MAX_UPLOAD + 1],
                StatusCode::PAYLOAD_TOO_LARGE,
                "larger than 20 MB",
            ),
        ];
        for (uri, body, status, message) in cases {
            let (st, v) = json_of(&app, Method::PUT, uri, body).await;
            assert_eq!(st, status, "{uri}: {v}");
            let error = v["error"].as_str().unwrap();
            assert!(error.contains(message), "{uri}: {error}");
        }
        // Eleven minutes (8-bit mono at 8 kHz fits the size limit): too long.
        let (st, v) = json_of(
            &app,
            Method::PUT,
            "/api/prompts/en/hello",
            wav(8000, 1, 8, 660.0),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("at most 600 s"),
            "{v}"
        );

        // Supervisors may listen but not upload.
        let (st, v) = json_of(
            &s.app(Role::Supervisor),
            Method::PUT,
            "/api/prompts/en/hello",
            good,
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");

        assert_eq!(std::fs::read(s.dir.join("en/hello.wav")).unwrap(), original);
        assert!(!s.dir.join("e").exists() && !s.dir.join("hello.wav").exists());
        let audit =
            s.db.store
                .audit_entries(Some("prompt_upload"), 10)
                .await
                .unwrap();
        assert!(audit.is_empty());
    }

    /// A published flow that plays a prompt missing in one of its languages
    /// is flagged with the line of that prompt; uploading it clears the flag.
    #[tokio::test]
    async fn flows_using_a_missing_prompt_are_flagged() {
        let s = setup().await;
        let yaml = "flow: main\n\
                    languages: [en, zh]\n\
                    start: hi\n\
                    nodes:\n  \
                      hi:\n    \
                        type: play\n    \
                        prompt: hello\n    \
                        next: bye\n  \
                      bye:\n    \
                        type: hangup\n    \
                        prompt: menu\n    \
                        outcome: self_served\n";
        let Saved::Created(v) =
            s.db.store
                .save_flow_draft(NewFlowVersion::new("main", yaml, "ada", Source::Console))
                .await
                .unwrap()
        else {
            panic!("stale")
        };
        s.db.store
            .publish_flow_version("main", v.version)
            .await
            .unwrap();
        let app = s.app(Role::Admin);
        let (_, list) = json_of(&app, Method::GET, "/api/prompts", vec![]).await;
        let flagged = list["flagged"].as_array().unwrap();
        assert_eq!(flagged.len(), 1, "{list}");
        assert_eq!(flagged[0]["flow"], "main");
        assert_eq!(flagged[0]["version"], v.version);
        assert_eq!(flagged[0]["line"], 11);
        assert!(
            flagged[0]["message"].as_str().unwrap().contains("menu"),
            "{list}"
        );

        let (st, _) = json_of(
            &app,
            Method::PUT,
            "/api/prompts/zh/menu",
            wav(8000, 1, 16, 0.3),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let (_, list) = json_of(&app, Method::GET, "/api/prompts", vec![]).await;
        assert_eq!(list["flagged"], json!([]), "{list}");
        assert_eq!(row(&list, "menu")["missing"], json!([]));
    }
}
