//! IVR flows as versioned documents over the admin API (docs/flows.md,
//! "Versions and publishing"). Mounted inside `admin::routes`, behind its
//! authentication layer; handlers read the caller from `Extension<Principal>`.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `GET /api/flows` | — | `[{name, published, latest, last_editor, last_change, drafts, file_draft, notice}]` |
//! | `POST /api/flows/validate` | `{name?, yaml}` | `{ok, errors: [{line, column, message}]}` |
//! | `POST /api/flows/graph` | `{name?, yaml}` | `{start, nodes: [{id, kind, line, column}], edges: [{from, to, label}]}`; 422 with every error |
//! | `GET /api/flows/{name}/versions` | — | `[version]` (no text), newest first |
//! | `POST /api/flows/{name}/versions` | `{yaml, comment?, based_on?}` | 201 `version` + `errors`; 400 unparsable; 409 stale |
//! | `GET /api/flows/{name}/versions/{v}` | — | `version` with `yaml` |
//! | `GET /api/flows/{name}/diff?from=A&to=B` | — | unified diff, `text/plain` |
//! | `POST /api/flows/{name}/versions/{v}/publish` | — | `version`; 422 with every error; 403 for non-admins |
//! | `POST /api/flows/{name}/rollback` | `{version, comment?}` | 201 the new published `version`; 403 for non-admins |
//! | `POST /api/flows/{name}/simulate` | `{yaml?, version?, digits?, at?, caller?, callee?, language?, fixtures?}` | `{path, prompts, variables, outcome, ended, transcript}` |
//!
//! A draft that parses but fails validation is saved (the answer lists its
//! errors); only publishing requires a valid flow. Every create, save,
//! publish and rollback is written to the audit log with its source address.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hotline_ivr::{Flow, FlowError, LoadOptions, SimOptions, load_str, sim};
use hotline_store::flow_versions::{NewFlowVersion, Saved, Source, valid_flow_name};
use hotline_store::{FlowVersion, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, Body, Principal};
use crate::http::ClientIp;

/// What the flow routes need. Cheap to clone.
#[derive(Clone)]
pub struct FlowsApi {
    store: Store,
    /// The gateway's sounds dir: prompts must exist there in every language
    /// a flow declares (`None`: not checked, as `--skip-prompts`).
    sounds_dir: Option<PathBuf>,
    /// The numbers the gateway may dial (`--dial-allow`): the simulator
    /// refuses a callback to any other, as a live call does.
    dial_check: Option<hotline_ivr::callback::DialCheck>,
}

impl FlowsApi {
    pub fn new(store: Store, sounds_dir: Option<PathBuf>) -> Self {
        Self {
            store,
            sounds_dir,
            dial_check: None,
        }
    }

    /// Simulations apply the gateway's dial rule.
    pub fn with_dial_check(mut self, check: Option<hotline_ivr::callback::DialCheck>) -> Self {
        self.dial_check = check;
        self
    }
}

pub fn routes<S: Clone + Send + Sync + 'static>(st: FlowsApi) -> Router<S> {
    Router::new()
        .route("/api/flows", get(list))
        .route("/api/flows/validate", post(validate))
        .route("/api/flows/graph", post(graph))
        .route("/api/flows/{name}/versions", get(versions).post(save))
        .route("/api/flows/{name}/versions/{v}", get(version))
        .route("/api/flows/{name}/versions/{v}/publish", post(publish))
        .route("/api/flows/{name}/rollback", post(rollback))
        .route("/api/flows/{name}/diff", get(diff))
        .route("/api/flows/{name}/simulate", post(simulate))
        .with_state(st)
}

type ApiResult<T> = Result<T, ApiError>;

// ---- checking flows (shared with the live flows and the CLI) ----

/// Loads a flow's text as `<name>.yaml` with every check `hotline flows
/// check` runs (prompts under `sounds_dir` when given), and checks that the
/// flow is called `name` (a `flow:` key naming another is an error).
pub fn check_text(
    name: &str,
    text: &str,
    sounds_dir: Option<&Path>,
) -> Result<Flow, Vec<FlowError>> {
    let path = PathBuf::from(format!("{name}.yaml"));
    let opts = LoadOptions {
        sounds_dir: sounds_dir.map(Path::to_owned),
    };
    let flow = load_str(&path, text, &opts).map_err(|e| e.0)?;
    if flow.name != name {
        let pos =
            text.lines()
                .position(|l| l.starts_with("flow:"))
                .map(|i| hotline_ivr::yaml::Pos {
                    line: i + 1,
                    col: 1,
                });
        return Err(vec![FlowError {
            file: path,
            pos: pos.or(Some(hotline_ivr::yaml::Pos { line: 1, col: 1 })),
            message: format!(
                "the flow is called `{}` here but saved as `{name}`: make `flow:` say `{name}` (or remove it)",
                flow.name
            ),
            kind: hotline_ivr::ErrorKind::Flow,
        }]);
    }
    Ok(flow)
}

/// A stored version loaded for calls: its `version` is `v<N>` (what call
/// records show as `flow_version`).
pub fn load_version(v: &FlowVersion, sounds_dir: Option<&Path>) -> Result<Flow, Vec<FlowError>> {
    let mut flow = check_text(&v.flow, &v.yaml, sounds_dir)?;
    flow.version = format!("v{}", v.version);
    Ok(flow)
}

/// An error as the API gives it: line and column from 1 (`null` for a
/// problem with the flow as a whole).
fn error_json(flow: &str, e: &FlowError) -> Value {
    json!({
        "flow": flow,
        "line": e.pos.map(|p| p.line),
        "column": e.pos.map(|p| p.col),
        "message": e.message,
        "text": e.to_string(),
    })
}

fn errors_json(flow: &str, errors: &[FlowError]) -> Vec<Value> {
    errors.iter().map(|e| error_json(flow, e)).collect()
}

/// Errors from the YAML parser alone: `None` when the text parses.
fn syntax_errors(name: &str, text: &str) -> Option<Vec<Value>> {
    let (line, column, message) = match hotline_ivr::yaml::parse(text) {
        Ok(Some(_)) => return None,
        Ok(None) => (
            1,
            1,
            "the file is empty; a flow needs `start:` and `nodes:`".to_owned(),
        ),
        Err(e) => (
            e.pos.line,
            e.pos.col,
            format!("YAML syntax error: {}", e.message),
        ),
    };
    Some(vec![json!({
        "flow": name,
        "line": line,
        "column": column,
        "message": message,
        "text": format!("{name}.yaml:{line}:{column}: {message}"),
    })])
}

fn sounds(st: &FlowsApi) -> Option<&Path> {
    st.sounds_dir.as_deref()
}

/// The candidate and the whole published set it joins: every error, each
/// naming its flow. Flows do not refer to one another by name; what the set
/// adds is that every other published flow must still load (same prompts
/// dir, every declared language).
async fn check_publish(st: &FlowsApi, name: &str, text: &str) -> ApiResult<Vec<Value>> {
    let mut errors = Vec::new();
    if let Err(e) = check_text(name, text, sounds(st)) {
        errors.extend(errors_json(name, &e));
    }
    for other in st.store.published_flows().await? {
        if other.flow == name {
            continue;
        }
        if let Err(e) = check_text(&other.flow, &other.yaml, sounds(st)) {
            errors.extend(errors_json(&other.flow, &e));
        }
    }
    Ok(errors)
}

fn unprocessable(message: &str, errors: Vec<Value>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "error": message, "errors": errors })),
    )
        .into_response()
}

// ---- helpers ----

fn check_name(name: &str) -> ApiResult<()> {
    valid_flow_name(name).map_err(ApiError::from)
}

fn require_read(p: &Principal) -> ApiResult<()> {
    if p.role.can_read() {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("`{}` may not use the admin API", p.name),
        ))
    }
}

/// A version without its text (lists, answers to changes).
fn meta(v: &FlowVersion) -> Value {
    let mut j = serde_json::to_value(v).unwrap_or_default();
    if let Some(m) = j.as_object_mut() {
        m.remove("yaml");
        m.insert("flow_version".into(), format!("v{}", v.version).into());
    }
    j
}

/// Unified diff of two texts, 3 lines of context.
pub fn unified_diff(from: &str, to: &str, from_name: &str, to_name: &str) -> String {
    similar::TextDiff::from_lines(from, to)
        .unified_diff()
        .context_radius(3)
        .header(from_name, to_name)
        .to_string()
}

/// Appends to the audit log (admin's `crate::audit`): the actor is the
/// user's login name (`token` for the bearer token), the address in the entry.
async fn audit(
    st: &FlowsApi,
    p: &Principal,
    ip: Option<std::net::IpAddr>,
    action: &str,
    v: &FlowVersion,
    extra: Value,
) {
    let mut details = json!({
        "flow": v.flow,
        "version": v.version,
        "sha256": v.sha256,
    });
    if let (Some(d), Value::Object(e)) = (details.as_object_mut(), extra) {
        d.extend(e);
    }
    let subject = format!("flow {} v{}", v.flow, v.version);
    crate::audit::write(&st.store, &p.name, action, Some(&subject), details, ip).await;
}

async fn get_version(st: &FlowsApi, name: &str, v: i32) -> ApiResult<FlowVersion> {
    st.store.flow_version(name, v).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("flow {name:?} has no version {v}"),
        )
    })
}

// ---- handlers ----

#[utoipa::path(
    get,
    path = "/api/flows",
    tag = "flows",
    summary = "List flows with their published version",
    responses(
        (status = 200, description = "List flows with their published version"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn list(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Value>> {
    require_read(&p)?;
    Ok(Json(
        serde_json::to_value(st.store.flow_list().await?).unwrap_or_default(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateReq {
    name: Option<String>,
    yaml: String,
}

impl ValidateReq {
    /// The name given (checked), else what the text's `flow:` key says.
    fn flow_name(&mut self) -> Result<String, ApiError> {
        match self.name.take() {
            Some(n) => {
                check_name(&n)?;
                Ok(n)
            }
            None => Ok(flow_key(&self.yaml).unwrap_or_else(|| "flow".into())),
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/flows/validate",
    tag = "flows",
    summary = "Validate a flow text, with error positions",
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Validate a flow text, with error positions"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn validate(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    Body(mut req): Body<ValidateReq>,
) -> ApiResult<Json<Value>> {
    require_read(&p)?;
    let name = req.flow_name()?;
    let yaml = req.yaml;
    let sounds_dir = st.sounds_dir.clone();
    let errors = tokio::task::spawn_blocking(move || {
        match check_text(&name, &yaml, sounds_dir.as_deref()) {
            Ok(_) => Vec::new(),
            Err(e) => errors_json(&name, &e),
        }
    })
    .await
    .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?;
    Ok(Json(json!({ "ok": errors.is_empty(), "errors": errors })))
}

/// The flow's nodes (with where each starts in the text) and its edges
/// (labelled by key or branch, as `hotline flows graph` draws them), for
/// the console's SVG drawing. Only a flow that validates has a graph.
#[utoipa::path(
    post,
    path = "/api/flows/graph",
    tag = "flows",
    summary = "Nodes and edges of a flow text",
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Nodes and edges of a flow text"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn graph(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    Body(mut req): Body<ValidateReq>,
) -> ApiResult<Response> {
    require_read(&p)?;
    let name = req.flow_name()?;
    let yaml = req.yaml;
    let sounds_dir = st.sounds_dir.clone();
    let done = tokio::task::spawn_blocking(move || {
        check_text(&name, &yaml, sounds_dir.as_deref())
            .map(|f| graph_json(&f))
            .map_err(|e| errors_json(&name, &e))
    })
    .await
    .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?;
    Ok(match done {
        Ok(g) => Json(g).into_response(),
        Err(errors) => unprocessable("the flow is not valid", errors),
    })
}

/// `{start, nodes, edges}` of a loaded flow (the node and edge extraction
/// of `hotline_ivr::graph::mermaid`).
pub fn graph_json(flow: &Flow) -> Value {
    let nodes: Vec<Value> = flow
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "kind": n.kind.name(),
                "line": n.pos.line,
                "column": n.pos.col,
            })
        })
        .collect();
    let edges: Vec<Value> = flow
        .nodes
        .iter()
        .flat_map(|n| {
            n.kind
                .exits()
                .into_iter()
                .map(move |(label, to)| json!({ "from": n.id, "to": to, "label": label }))
        })
        .collect();
    json!({ "flow": flow.name, "start": flow.start, "nodes": nodes, "edges": edges })
}

/// The value of a top-level `flow:` line, if it is a valid name.
fn flow_key(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("flow:"))
        .map(|v| {
            v.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\''])
                .to_owned()
        })
        .filter(|n| valid_flow_name(n).is_ok())
}

#[utoipa::path(
    get,
    path = "/api/flows/{name}/versions",
    tag = "flows",
    summary = "Versions of a flow",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "Versions of a flow"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn versions(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Vec<Value>>> {
    require_read(&p)?;
    check_name(&name)?;
    let all = st.store.flow_versions(&name).await?;
    if all.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("flow {name:?} not found"),
        ));
    }
    Ok(Json(all.iter().map(meta).collect()))
}

#[utoipa::path(
    get,
    path = "/api/flows/{name}/versions/{v}",
    tag = "flows",
    summary = "One version of a flow",
    params(("name" = String, Path), ("v" = String, Path)),
    responses(
        (status = 200, description = "One version of a flow"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn version(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    UrlPath((name, v)): UrlPath<(String, i32)>,
) -> ApiResult<Json<Value>> {
    require_read(&p)?;
    check_name(&name)?;
    let v = get_version(&st, &name, v).await?;
    let mut j = meta(&v);
    j["yaml"] = v.yaml.into();
    Ok(Json(j))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveReq {
    yaml: String,
    #[serde(default)]
    comment: String,
    based_on: Option<i32>,
}

#[utoipa::path(
    post,
    path = "/api/flows/{name}/versions",
    tag = "flows",
    summary = "Save a new draft version (409 when stale)",
    params(("name" = String, Path)),
    request_body = serde_json::Value,
    responses(
        (status = 201, description = "Save a new draft version (409 when stale)"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn save(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
    UrlPath(name): UrlPath<String>,
    Body(req): Body<SaveReq>,
) -> ApiResult<Response> {
    require_read(&p)?;
    check_name(&name)?;
    if let Some(errors) = syntax_errors(&name, &req.yaml) {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "the YAML does not parse; nothing saved", "errors": errors })),
        )
            .into_response());
    }
    let based_on = req.based_on;
    let saved = st
        .store
        .save_flow_draft(NewFlowVersion {
            comment: req.comment.trim().to_owned(),
            based_on,
            ..NewFlowVersion::new(&name, &req.yaml, &p.name, Source::Console)
        })
        .await?;
    match saved {
        Saved::Stale(latest) => {
            let base_text = match based_on {
                Some(b) => st
                    .store
                    .flow_version(&name, b)
                    .await?
                    .map(|v| v.yaml)
                    .unwrap_or_default(),
                None => String::new(),
            };
            let from = based_on.map_or_else(|| "(new flow)".to_owned(), |b| format!("{name} v{b}"));
            let diff = unified_diff(
                &base_text,
                &latest.yaml,
                &from,
                &format!("{name} v{}", latest.version),
            );
            Ok((
                StatusCode::CONFLICT,
                Json(json!({
                    "error": format!(
                        "{name} has changed since v{}: v{} by {} ({}); reload it and apply your edit again",
                        based_on.map_or_else(|| "(none)".into(), |b| b.to_string()),
                        latest.version, latest.author, latest.created_at.to_rfc3339()
                    ),
                    "based_on": based_on,
                    "latest": meta(&latest),
                    "diff": diff,
                })),
            )
                .into_response())
        }
        Saved::Created(v) => {
            let action = if v.version == 1 {
                "flow_create"
            } else {
                "flow_save"
            };
            audit(&st, &p, ip, action, &v, json!({ "comment": v.comment })).await;
            let (name2, yaml, sounds_dir) = (name.clone(), req.yaml, st.sounds_dir.clone());
            let errors = tokio::task::spawn_blocking(move || {
                check_text(&name2, &yaml, sounds_dir.as_deref())
                    .err()
                    .map(|e| errors_json(&name2, &e))
                    .unwrap_or_default()
            })
            .await
            .unwrap_or_default();
            let mut j = meta(&v);
            j["errors"] = errors.into();
            Ok((StatusCode::CREATED, Json(j)).into_response())
        }
    }
}

#[derive(Deserialize)]
struct DiffQuery {
    from: Option<i32>,
    to: Option<i32>,
}

#[utoipa::path(
    get,
    path = "/api/flows/{name}/diff",
    tag = "flows",
    summary = "Unified diff between two versions",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "Unified diff between two versions"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn diff(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    UrlPath(name): UrlPath<String>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require_read(&p)?;
    check_name(&name)?;
    let Ok(Query(q)) = q else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "from and to are version numbers: ?from=1&to=2".into(),
        ));
    };
    let (Some(from), Some(to)) = (q.from, q.to) else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "give both versions: ?from=1&to=2".into(),
        ));
    };
    let a = get_version(&st, &name, from).await?;
    let b = get_version(&st, &name, to).await?;
    let text = unified_diff(
        &a.yaml,
        &b.yaml,
        &format!("{name} v{from}"),
        &format!("{name} v{to}"),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[utoipa::path(
    post,
    path = "/api/flows/{name}/versions/{v}/publish",
    tag = "flows",
    summary = "Publish a version",
    params(("name" = String, Path), ("v" = String, Path)),
    responses(
        (status = 200, description = "Publish a version"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn publish(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
    UrlPath((name, v)): UrlPath<(String, i32)>,
) -> ApiResult<Response> {
    p.require_change()?;
    check_name(&name)?;
    let version = get_version(&st, &name, v).await?;
    let errors = check_publish(&st, &name, &version.yaml).await?;
    if !errors.is_empty() {
        return Ok(unprocessable(
            &format!("{name} v{v} cannot be published: {} error(s)", errors.len()),
            errors,
        ));
    }
    let published = st.store.publish_flow_version(&name, v).await?;
    audit(&st, &p, ip, "flow_publish", &published, json!({})).await;
    tracing::info!(flow = %name, version = v, by = %p.name, "flow published");
    crate::metrics::flow_published("publish");
    Ok(Json(meta(&published)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackReq {
    version: i32,
    #[serde(default)]
    comment: String,
}

#[utoipa::path(
    post,
    path = "/api/flows/{name}/rollback",
    tag = "flows",
    summary = "Roll back to an earlier version",
    params(("name" = String, Path)),
    request_body = serde_json::Value,
    responses(
        (status = 201, description = "Roll back to an earlier version"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn rollback(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
    UrlPath(name): UrlPath<String>,
    Body(req): Body<RollbackReq>,
) -> ApiResult<Response> {
    p.require_change()?;
    check_name(&name)?;
    let old = get_version(&st, &name, req.version).await?;
    let errors = check_publish(&st, &name, &old.yaml).await?;
    if !errors.is_empty() {
        return Ok(unprocessable(
            &format!(
                "{name} v{} cannot be published again: {} error(s)",
                req.version,
                errors.len()
            ),
            errors,
        ));
    }
    let v = st
        .store
        .rollback_flow(&name, req.version, &p.name, req.comment.trim())
        .await?;
    audit(
        &st,
        &p,
        ip,
        "flow_rollback",
        &v,
        json!({ "rollback_of": req.version }),
    )
    .await;
    tracing::info!(flow = %name, to = req.version, version = v.version, by = %p.name, "flow rolled back");
    crate::metrics::flow_published("rollback");
    Ok((StatusCode::CREATED, Json(meta(&v))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateReq {
    yaml: Option<String>,
    version: Option<i32>,
    #[serde(default)]
    digits: String,
    at: Option<String>,
    caller: Option<String>,
    callee: Option<String>,
    language: Option<String>,
    /// Lookup answers: an object (as the `--fixtures` file) or its YAML text.
    fixtures: Option<Value>,
}

#[utoipa::path(
    post,
    path = "/api/flows/{name}/simulate",
    tag = "flows",
    summary = "Walk a draft, a version or the published flow",
    params(("name" = String, Path)),
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Walk a draft, a version or the published flow"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn simulate(
    State(st): State<FlowsApi>,
    Extension(p): Extension<Principal>,
    UrlPath(name): UrlPath<String>,
    Body(req): Body<SimulateReq>,
) -> ApiResult<Response> {
    require_read(&p)?;
    check_name(&name)?;
    let (text, version) = match (req.yaml, req.version) {
        (Some(_), Some(_)) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "give yaml or version, not both".into(),
            ));
        }
        (Some(y), None) => (y, "draft".to_owned()),
        (None, Some(v)) => (get_version(&st, &name, v).await?.yaml, format!("v{v}")),
        (None, None) => match st.store.published_flow(&name).await? {
            Some(v) => (v.yaml, format!("v{}", v.version)),
            None => {
                return Err(ApiError(
                    StatusCode::NOT_FOUND,
                    format!("flow {name:?} has no published version; give yaml or version"),
                ));
            }
        },
    };
    let at = match req.at.as_deref() {
        Some(s) => crate::flows_cmd::parse_at(s)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("{e:#}")))?,
        None => chrono::Utc::now(),
    };
    let fixtures = match req.fixtures {
        None | Some(Value::Null) => Ok(sim::Fixtures::default()),
        Some(Value::String(s)) => sim::Fixtures::parse(&s),
        Some(v) => sim::Fixtures::parse(&v.to_string()),
    }
    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("fixtures: {e}")))?;
    let defaults = SimOptions::default();
    let opts = SimOptions {
        digits: req.digits,
        at,
        caller: req.caller.unwrap_or(defaults.caller.clone()),
        callee: req.callee.unwrap_or(defaults.callee.clone()),
        language: req.language,
        fixtures,
        sounds_dir: st.sounds_dir.clone(),
        dial_check: st.dial_check.clone(),
        ..defaults
    };
    let sounds_dir = st.sounds_dir.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut flow = match check_text(&name, &text, sounds_dir.as_deref()) {
            Ok(f) => f,
            Err(e) => return Err(errors_json(&name, &e)),
        };
        flow.version = version;
        Ok((sim::simulate(Arc::new(flow), &opts), name))
    })
    .await
    .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?;
    let (result, name) = match done {
        Ok(r) => r,
        Err(errors) => return Ok(unprocessable("the flow is not valid", errors)),
    };
    let tr = result.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    Ok(Json(json!({
        "flow": name,
        "path": tr.nodes(),
        "prompts": tr.prompts(),
        "variables": tr.vars,
        "outcome": tr.outcome(),
        "ended": tr.ended,
        "unused_input": tr.unused_input,
        "transcript": tr.render(),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Role;
    use axum::body::Body as HttpBody;
    use axum::extract::Request;
    use axum::http::Method;
    use hotline_store::testing::{TestDb, fresh_db};
    use tower::ServiceExt;

    /// One menu: 1 goes to `target`, which says `bye` and hangs up.
    fn small_flow(target: &str, bye: &str) -> String {
        format!(
            "# a test flow\n\
             flow: main\n\
             languages: [en]\n\
             start: menu\n\
             nodes:\n  \
               menu:\n    \
                 type: menu\n    \
                 prompt: main-menu\n    \
                 options:\n      \
                   1: {target}\n    \
                 timeout: 20s\n    \
                 retries: 0\n    \
                 on_exhausted: done\n  \
               done:\n    \
                 type: hangup\n    \
                 prompt: {bye}\n    \
                 outcome: self_served\n"
        )
    }

    /// Line and column of the first `needle` in `text`, from 1.
    fn pos_of(text: &str, needle: &str) -> (u64, u64) {
        text.lines()
            .enumerate()
            .find_map(|(i, l)| l.find(needle).map(|c| (i as u64 + 1, c as u64 + 1)))
            .unwrap()
    }

    fn sounds() -> PathBuf {
        Path::new(&crate::test_support::manifest_dir()).join("../../sounds")
    }

    async fn app_as(role: Role, name: &str) -> (Router, TestDb) {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let app = routes(FlowsApi::new(db.store.clone(), Some(sounds())));
        (with_principal(app, role, name), db)
    }

    fn with_principal(app: Router, role: Role, name: &str) -> Router {
        app.layer(Extension(Principal {
            name: name.into(),
            role,
        }))
    }

    async fn call_raw(
        app: &Router,
        method: Method,
        uri: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(HttpBody::from(b.to_string())),
            None => req.body(HttpBody::empty()),
        }
        .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn call(
        app: &Router,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, text) = call_raw(app, method, uri, None, body).await;
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        (status, v)
    }

    /// Save, list, read, diff, publish, roll back: what each answers, what
    /// the store holds afterwards, and the audit trail.
    #[tokio::test]
    async fn drafts_are_saved_published_diffed_and_rolled_back() {
        let (app, db) = app_as(Role::Admin, "ada").await;
        let (s, list) = call(&app, Method::GET, "/api/flows", None).await;
        assert_eq!((s, list), (StatusCode::OK, json!([])));

        let one = small_flow("done", "goodbye");
        let (s, v1) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": one, "comment": " first " })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v1}");
        assert_eq!(v1["version"], 1);
        assert_eq!(v1["status"], "draft");
        assert_eq!(v1["author"], "ada");
        assert_eq!(v1["comment"], "first");
        assert_eq!(v1["flow_version"], "v1");
        assert_eq!(v1["errors"], json!([]));
        assert!(v1.get("yaml").is_none());

        let two = small_flow("done", "thank-you");
        let (s, v2) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": two, "based_on": 1 })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v2}");
        assert_eq!(
            (v2["version"].as_i64(), v2["based_on"].as_i64()),
            (Some(2), Some(1))
        );

        let (_, list) = call(&app, Method::GET, "/api/flows", None).await;
        assert_eq!(list[0]["name"], "main");
        assert_eq!(list[0]["published"], Value::Null);
        assert_eq!(list[0]["latest"], 2);
        assert_eq!(list[0]["drafts"], 2);
        assert_eq!(list[0]["last_editor"], "ada");
        assert!(list[0]["last_change"].is_string());

        let (s, all) = call(&app, Method::GET, "/api/flows/main/versions", None).await;
        assert_eq!(s, StatusCode::OK);
        let nums: Vec<i64> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(nums, [2, 1]);
        let (s, got) = call(&app, Method::GET, "/api/flows/main/versions/1", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(got["yaml"], one.as_str(), "the text exactly as saved");

        let (s, ctype, diff) = call_raw(
            &app,
            Method::GET,
            "/api/flows/main/diff?from=1&to=2",
            None,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        assert!(diff.contains("--- main v1\n+++ main v2\n"), "{diff}");
        assert!(
            diff.contains("-    prompt: goodbye\n+    prompt: thank-you\n"),
            "{diff}"
        );
        let (s, _) = call(&app, Method::GET, "/api/flows/main/diff?from=1", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = call(&app, Method::GET, "/api/flows/main/diff?from=1&to=x", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = call(&app, Method::GET, "/api/flows/main/diff?from=1&to=9", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&app, Method::GET, "/api/flows/main/versions/9", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&app, Method::GET, "/api/flows/nope/versions", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        let (s, p) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions/2/publish",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["status"], "published");
        assert_eq!(
            db.store
                .published_flow("main")
                .await
                .unwrap()
                .unwrap()
                .version,
            2
        );
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions/7/publish",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, list) = call(&app, Method::GET, "/api/flows", None).await;
        assert_eq!(list[0]["published"], 2);
        assert_eq!(list[0]["drafts"], 0);

        let (s, rb) = call(
            &app,
            Method::POST,
            "/api/flows/main/rollback",
            Some(json!({ "version": 1 })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{rb}");
        assert_eq!(rb["version"], 3);
        assert_eq!(rb["rollback_of"], 1);
        assert_eq!(rb["status"], "published");
        let published = db.store.published_flow("main").await.unwrap().unwrap();
        assert_eq!(
            (published.version, published.yaml.as_str()),
            (3, one.as_str())
        );
        assert_eq!(
            db.store
                .flow_version("main", 2)
                .await
                .unwrap()
                .unwrap()
                .status,
            "retired"
        );
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/rollback",
            Some(json!({ "version": 42 })),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        let actions: Vec<(String, String, Option<String>)> = db
            .store
            .audit_entries(None, 20)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|e| (e.actor, e.action, e.subject))
            .collect();
        assert_eq!(
            actions,
            [
                (
                    "ada".into(),
                    "flow_create".into(),
                    Some("flow main v1".into())
                ),
                (
                    "ada".into(),
                    "flow_save".into(),
                    Some("flow main v2".into())
                ),
                (
                    "ada".into(),
                    "flow_publish".into(),
                    Some("flow main v2".into())
                ),
                (
                    "ada".into(),
                    "flow_rollback".into(),
                    Some("flow main v3".into())
                ),
            ]
        );
    }

    #[tokio::test]
    async fn bad_input_is_refused_with_positions_and_changes_nothing() {
        let (app, db) = app_as(Role::Admin, "ada").await;
        // Not YAML at all: 400, every error at its line and column, nothing saved.
        let broken = "flow: main\nstart: menu\nnodes:\n  menu: [a, b\n";
        let (s, e) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": broken })),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let err = &e["errors"][0];
        assert!(err["line"].as_u64().unwrap() >= 4, "{e}");
        assert!(err["column"].as_u64().unwrap() >= 1, "{e}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("YAML syntax error"),
            "{e}"
        );
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": "" })),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(db.store.flow_versions_empty().await.unwrap());

        // Names with `/` or `..`.
        for uri in [
            "/api/flows/a..b/versions",
            "/api/flows/..%2Fetc/versions",
            "/api/flows/a%2Fb/versions",
            "/api/flows/.hidden/versions",
        ] {
            let (s, e) = call(
                &app,
                Method::POST,
                uri,
                Some(json!({ "yaml": small_flow("done", "goodbye") })),
            )
            .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {e}");
            assert!(e["error"].as_str().unwrap().contains("flow name"), "{e}");
        }
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/validate",
            Some(json!({ "name": "a/b", "yaml": "x: 1" })),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(db.store.flow_versions_empty().await.unwrap());

        // Unknown fields and wrong types are 400 with a message.
        let (s, e) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": "a: 1", "base": 1 })),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(e["error"].is_string());

        // A draft that parses but does not validate is saved, with its errors.
        let dangling = small_flow("nowhere", "goodbye");
        let (line, col) = pos_of(&dangling, "nowhere");
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": dangling })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["errors"][0]["line"], line, "{v}");
        assert_eq!(v["errors"][0]["column"], col, "{v}");
        // … and cannot be published: 422 with every error as line:column.
        let (s, e) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions/1/publish",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["errors"][0]["line"], line);
        assert_eq!(e["errors"][0]["column"], col);
        assert!(
            e["errors"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with(&format!("main.yaml:{line}:{col}: ")),
            "{e}"
        );
        assert_eq!(
            db.store
                .flow_version("main", 1)
                .await
                .unwrap()
                .unwrap()
                .status,
            "draft"
        );
        assert!(db.store.published_flow("main").await.unwrap().is_none());

        // A prompt missing in a declared language: refused at publish.
        let two_lang =
            small_flow("done", "goodbye").replace("languages: [en]", "languages: [en, fr]");
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": two_lang, "based_on": 1 })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, e) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions/2/publish",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(
            e["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["message"].as_str().unwrap().contains("fr")),
            "{e}"
        );

        // `flow:` naming another flow than the one saved.
        let other = small_flow("done", "goodbye").replace("flow: main", "flow: other");
        let (s, e) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": other, "based_on": 2 })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(e["errors"][0]["line"], 2, "{e}");
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions/3/publish",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

        // The whole set: another published flow that no longer loads is reported.
        let good = small_flow("done", "goodbye").replace("flow: main", "flow: second");
        db.store
            .import_flow_text(
                "second",
                &good.replace("goodbye", "no-such-prompt"),
                "x",
                Source::Cli,
                true,
            )
            .await
            .unwrap();
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": small_flow("done", "goodbye"), "based_on": 3 })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, e) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions/4/publish",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["errors"][0]["flow"], "second", "{e}");
        assert!(db.store.published_flow("main").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn validate_answers_every_error_with_its_position() {
        let (app, _db) = app_as(Role::Supervisor, "sue").await;
        let (s, ok) = call(
            &app,
            Method::POST,
            "/api/flows/validate",
            Some(json!({ "name": "main", "yaml": small_flow("done", "goodbye") })),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(ok, json!({ "ok": true, "errors": [] }));
        let bad = small_flow("nowhere", "no-such-prompt");
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/flows/validate",
            Some(json!({ "yaml": bad })),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["ok"], false);
        let errors = v["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2, "{v}");
        let (l1, c1) = pos_of(&bad, "nowhere");
        assert_eq!(
            (errors[0]["line"].as_u64(), errors[0]["column"].as_u64()),
            (Some(l1), Some(c1)),
            "{v}"
        );
        let (l2, _) = pos_of(&bad, "no-such-prompt");
        assert_eq!(errors[1]["line"].as_u64(), Some(l2), "{v}");
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/flows/validate",
            Some(json!({ "yaml": "nodes: [" })),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("YAML syntax error"),
            "{v}"
        );
    }

    /// The console's drawing: every node with its line, every edge with its
    /// key; a flow that does not validate has every error instead.
    #[tokio::test]
    async fn graph_gives_nodes_with_their_lines_and_labelled_edges() {
        let (app, _db) = app_as(Role::Supervisor, "sue").await;
        let text = small_flow("done", "goodbye");
        let (s, g) = call(
            &app,
            Method::POST,
            "/api/flows/graph",
            Some(json!({ "name": "main", "yaml": text })),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{g}");
        assert_eq!(g["start"], "menu");
        let (menu_line, _) = pos_of(&text, "  menu:");
        let (done_line, _) = pos_of(&text, "  done:");
        assert_eq!(
            g["nodes"],
            json!([
                {"id": "menu", "kind": "menu", "line": menu_line, "column": 3},
                {"id": "done", "kind": "hangup", "line": done_line, "column": 3},
            ]),
            "{g}"
        );
        let edges = g["edges"].as_array().unwrap();
        assert!(
            edges.contains(&json!({"from": "menu", "to": "done", "label": "1"})),
            "{g}"
        );
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/flows/graph",
            Some(json!({ "name": "main", "yaml": small_flow("nowhere", "goodbye") })),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v}");
    }

    /// Ada and Bob both start from v1; Bob saves first; Ada's save is
    /// refused with Bob's change.
    #[tokio::test]
    async fn a_stale_save_gets_409_with_the_other_change() {
        let (app, db) = app_as(Role::Admin, "ada").await;
        let bob = with_principal(
            routes(FlowsApi::new(db.store.clone(), Some(sounds()))),
            Role::Admin,
            "bob",
        );
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": small_flow("done", "goodbye") })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = call(&bob, Method::POST, "/api/flows/main/versions", Some(json!({ "yaml": small_flow("done", "thank-you"), "based_on": 1, "comment": "bob's" }))).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, e) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": small_flow("done", "sorry-invalid"), "based_on": 1 })),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert_eq!(e["latest"]["version"], 2);
        assert_eq!(e["latest"]["author"], "bob");
        assert_eq!(e["latest"]["comment"], "bob's");
        let diff = e["diff"].as_str().unwrap();
        assert!(
            diff.contains("-    prompt: goodbye\n+    prompt: thank-you\n"),
            "{diff}"
        );
        assert!(e["error"].as_str().unwrap().contains("v2 by bob"), "{e}");
        assert_eq!(
            db.store.flow_versions("main").await.unwrap().len(),
            2,
            "nothing saved"
        );
        // A new flow whose name was taken meanwhile is stale too.
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": small_flow("done", "goodbye") })),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn supervisors_cannot_publish_or_roll_back_and_agents_get_nothing() {
        let (sup, db) = app_as(Role::Supervisor, "sue").await;
        let (s, v) = call(
            &sup,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": small_flow("done", "goodbye") })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, e) = call(
            &sup,
            Method::POST,
            "/api/flows/main/versions/1/publish",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        assert!(db.store.published_flow("main").await.unwrap().is_none());
        let (s, _) = call(
            &sup,
            Method::POST,
            "/api/flows/main/rollback",
            Some(json!({ "version": 1 })),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(db.store.flow_versions("main").await.unwrap().len(), 1);
        let (s, _) = call(&sup, Method::GET, "/api/flows", None).await;
        assert_eq!(s, StatusCode::OK);

        let agent = with_principal(
            routes(FlowsApi::new(db.store.clone(), None)),
            Role::Agent,
            "a1",
        );
        let (s, _) = call(&agent, Method::GET, "/api/flows", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = call(
            &agent,
            Method::POST,
            "/api/flows/main/versions",
            Some(json!({ "yaml": small_flow("done", "goodbye"), "based_on": 1 })),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    /// The simulator applies the gateway's `--dial-allow` as a live call
    /// does: a caller outside it is not shown a callback booked.
    #[tokio::test]
    async fn simulate_refuses_a_callback_the_dial_rule_forbids() {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let app = with_principal(
            routes(
                FlowsApi::new(db.store.clone(), Some(sounds())).with_dial_check(Some(
                    hotline_ivr::callback::DialCheck::new(|n| {
                        n.starts_with("+861") && n.len() == 14
                    }),
                )),
            ),
            Role::Admin,
            "ada",
        );
        let yaml = "flow: main\nlanguages: [en]\nstart: cb\nnodes:\n  cb:\n    type: callback\n    prompt: callback-slots\n    slots:\n      1: asap\n    next: booked\n    on_exhausted: sorry\n    on_no_number: sorry\n  booked:\n    type: hangup\n    prompt: thank-you\n  sorry:\n    type: hangup\n    prompt: goodbye\n";
        let sim = |caller: &str| json!({ "yaml": yaml, "digits": "1", "caller": caller, "at": "2026-12-21T10:00+08:00" });
        let (s, t) = call(
            &app,
            Method::POST,
            "/api/flows/main/simulate",
            Some(sim("+8613800000000")),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["path"], json!(["cb", "booked"]), "{t}");

        let (s, t) = call(
            &app,
            Method::POST,
            "/api/flows/main/simulate",
            Some(sim("+882345678901")),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["path"], json!(["cb", "sorry"]), "{t}");
        assert_ne!(t["outcome"], "callback", "{t}");
    }

    #[tokio::test]
    async fn simulate_walks_a_draft_a_version_or_the_published_flow() {
        let (app, db) = app_as(Role::Admin, "ada").await;
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/simulate",
            Some(json!({ "digits": "1" })),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "nothing published yet");
        db.store
            .import_flow_text(
                "main",
                &small_flow("done", "goodbye"),
                "x",
                Source::Cli,
                true,
            )
            .await
            .unwrap();

        let (s, t) = call(&app, Method::POST, "/api/flows/main/simulate", Some(json!({ "digits": "1", "at": "2026-12-21T10:00+08:00", "caller": "+8613900000001" }))).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["path"], json!(["menu", "done"]));
        assert_eq!(t["prompts"], json!(["en/main-menu", "en/goodbye"]));
        assert_eq!(t["outcome"], "self_served");
        assert_eq!(t["variables"]["caller"], "+8613900000001", "{t}");
        assert!(
            t["transcript"]
                .as_str()
                .unwrap()
                .contains("flow main version v1"),
            "{t}"
        );

        let (s, t) = call(
            &app,
            Method::POST,
            "/api/flows/main/simulate",
            Some(json!({ "yaml": small_flow("done", "thank-you"), "digits": "1" })),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["prompts"], json!(["en/main-menu", "en/thank-you"]));
        let (s, t) = call(
            &app,
            Method::POST,
            "/api/flows/main/simulate",
            Some(json!({ "version": 1, "digits": "-" })),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["path"], json!(["menu", "done"]));

        // Lookups answer from fixtures (an object, as the --fixtures file).
        let lookup_flow = "flow: main\nstart: who\nnodes:\n  who:\n    type: lookup\n    source: subscriber_by_caller_id\n    into: sub\n    next: done\n    on_failure: done\n  done:\n    type: hangup\n    prompt: goodbye\n";
        let (s, t) = call(&app, Method::POST, "/api/flows/main/simulate", Some(json!({
            "yaml": lookup_flow,
            "caller": "+8613800000000",
            "fixtures": { "subscriber_by_caller_id": { "+8613800000000": { "name": "Li Lei" } } },
        }))).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["variables"]["sub"]["name"], "Li Lei", "{t}");

        let bad = small_flow("nowhere", "goodbye");
        let (s, e) = call(
            &app,
            Method::POST,
            "/api/flows/main/simulate",
            Some(json!({ "yaml": bad })),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["errors"][0]["line"], pos_of(&bad, "nowhere").0);
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/simulate",
            Some(json!({ "version": 1, "at": "tomorrow" })),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/flows/main/simulate",
            Some(json!({ "version": 1, "fixtures": "order_by_number: 3" })),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    /// Mounted in the admin routes: the bearer token is required, and its
    /// changes are authored `token`.
    #[tokio::test]
    async fn the_admin_token_guards_the_flow_routes() {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let app = crate::admin::routes(
            crate::admin::AdminState::new(db.store.clone(), Some("flows-test-token"))
                .with_flow_sounds(sounds()),
        );
        for (method, uri) in [
            (Method::GET, "/api/flows"),
            (Method::POST, "/api/flows/main/versions"),
            (Method::POST, "/api/flows/main/versions/1/publish"),
        ] {
            let (s, _, _) =
                call_raw(&app, method, uri, None, Some(json!({ "yaml": "a: 1" }))).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}");
        }
        let auth = Some("Bearer flows-test-token");
        let (s, _, body) = call_raw(
            &app,
            Method::POST,
            "/api/flows/main/versions",
            auth,
            Some(json!({ "yaml": small_flow("done", "goodbye") })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        let (s, _, body) = call_raw(
            &app,
            Method::POST,
            "/api/flows/main/versions/1/publish",
            auth,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v = db.store.published_flow("main").await.unwrap().unwrap();
        assert_eq!(v.author, "token");
    }
}
