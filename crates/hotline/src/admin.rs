//! The admin API: agents, queues, queue membership and live agent states, as
//! JSON over HTTP behind `Authorization: Bearer <--admin-token>` (automation)
//! or the admin console's `hotline_admin` session cookie (people; see
//! admin_auth.rs for sign-in and the cross-site rule). A cookie's user acts
//! with their role: supervisors read everything and change nothing (403),
//! agents are refused (403); the bearer token is an admin.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `GET /api/me` | — | `{name, role}` |
//! | `GET /api/audit?limit=&before=` | — | `{entries, next}` (audit.rs) |
//! | `GET /api/agents` | — | `[Agent]` |
//! | `POST /api/agents` | `{id, name, password, skills?, active?, role?}` | 201 `Agent` |
//! | `GET /api/agents/{id}` | — | `Agent` |
//! | `PUT /api/agents/{id}` | `{name?, skills?, active?, password?, role?}` | `Agent` |
//! | `DELETE /api/agents/{id}` | — | 204 |
//! | `GET /api/agents/states` | — | `{source: "live"/"database", agents: [AgentStateView]}` |
//! | `GET /api/queues` | — | `[Queue]` |
//! | `POST /api/queues` | `{name, strategy?, max_wait_secs?, overflow?, offer_timeout_secs?, wrap_up_secs?, on_agent_lost?, issue_skills?, callback_attempts?, callback_retry_secs?, survey?, service_level_secs?, members?}` | 201 `Queue` |
//! | `GET /api/queues/{name}` | — | `Queue` |
//! | `PUT /api/queues/{name}` | any of the `POST` fields but `name` | `Queue` |
//! | `DELETE /api/queues/{name}` | — | 204 |
//! | `PUT /api/queues/{name}/members` | `["a1", "a2"]` (round-robin order) | `Queue` |
//!
//! Enum values (`strategy`, `overflow`, `on_agent_lost`) are accepted with
//! `_` or `-` and in any case (`round-robin`, `round_robin`); answers always
//! spell them with `_`. An `overflow` of `queue:<name>` must name another
//! existing queue and must not close a loop of overflows (`a` → `b` → `a`);
//! a queue another overflows to cannot be deleted (400, naming it).
//! `docs/operations.md` has an example of every route.
//!
//! Errors are `{"error": "…"}`: 400 bad input, 401 no or wrong token or
//! session, 403 a role that may not, or a cross-site cookie request, 404,
//! 409 duplicate, 429 (with `Retry-After`) for 15 minutes after 5 wrong
//! tokens from one address in 5 minutes, 503 for a bearer token when none is
//! configured. Every change is in the audit log (audit.rs). Password hashes never
//! leave the store. Every change bumps [`AdminState::changes`], so the
//! routing engine can reload agents and queues.
//!
//! Mount: `.merge(admin::routes(AdminState::new(store, cfg.admin_token.as_deref())))`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hotline_store::{
    Agent, AgentUpdate, CallbackRow, NewAgent, NewQueue, Queue, QueueUpdate, Store, StoreError,
};
use serde::Serialize;
use serde_json::json;
use sha2::Digest;
use subtle::ConstantTimeEq;
use tokio::sync::watch;

pub use crate::api::{ApiError, Body, Principal, too_many_attempts};
use crate::audit::Actor;
use crate::http::ClientIp;
use crate::login_limit::{LimitPolicy, SharedLimiter};

/// One agent's state as `GET /api/agents/states` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentStateView {
    pub agent: String,
    pub name: String,
    /// `offline`, `available`, `ringing`, `on_call`, `wrap_up` or `away`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the agent entered `state` (`null`: not known).
    pub since: Option<DateTime<Utc>>,
    /// The call they ring for, talk on or wrap up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

/// What the admin handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    store: Store,
    /// SHA-256 of the bearer token; `None`: the API is disabled (503).
    token: Option<[u8; 32]>,
    live: Option<watch::Receiver<Vec<AgentStateView>>>,
    changes: Arc<watch::Sender<u64>>,
    /// Wrong bearer tokens per source address (docs/security.md, "Web").
    limiter: SharedLimiter,
    /// Opens sealed recordings (`GET /api/calls/{id}/recording`).
    recording_keys: Option<Arc<hotline_store::Keyring>>,
    /// Where publishing checks prompts (`/api/flows`, flows_api.rs).
    flow_sounds: Option<std::path::PathBuf>,
    /// The gateway's prompt cache: an uploaded prompt is dropped from it (prompts_api.rs).
    prompt_cache: Option<Arc<hotline_media::PromptCache>>,
    /// The reports' default time zone (`--report-tz`, reports_api.rs).
    report_tz: String,
    /// The gateway's dial rule, applied by the flow simulator.
    dial_check: Option<hotline_ivr::callback::DialCheck>,
}

impl AdminState {
    /// `token`: `--admin-token` (`None` disables the API).
    pub fn new(store: Store, token: Option<&str>) -> Self {
        Self {
            store,
            token: token.map(digest),
            live: None,
            changes: Arc::new(watch::channel(0).0),
            limiter: SharedLimiter::new(LimitPolicy::default()),
            recording_keys: None,
            flow_sounds: None,
            prompt_cache: None,
            report_tz: "Asia/Shanghai".into(),
            dial_check: None,
        }
    }

    /// The numbers callbacks may dial (`--dial-allow`): the flow simulator
    /// refuses a callback to any other, as a live call does.
    pub fn with_dial_check(mut self, check: hotline_ivr::callback::DialCheck) -> Self {
        self.dial_check = Some(check);
        self
    }

    /// The time zone reports use when a request names none.
    pub fn with_report_tz(mut self, tz: impl Into<String>) -> Self {
        self.report_tz = tz.into();
        self
    }

    /// The cache calls play prompts from: an upload replaces its entry.
    pub fn with_prompt_cache(mut self, cache: Arc<hotline_media::PromptCache>) -> Self {
        self.prompt_cache = Some(cache);
        self
    }

    /// The sounds dir flows are checked against when saved and published.
    pub fn with_flow_sounds(mut self, dir: std::path::PathBuf) -> Self {
        self.flow_sounds = Some(dir);
        self
    }

    /// The keys that open sealed recordings (`--recording-key-file`, `--recording-keyring`).
    pub fn with_recording_keys(mut self, keys: Option<Arc<hotline_store::Keyring>>) -> Self {
        self.recording_keys = keys;
        self
    }

    /// Another limiter for wrong tokens (tests: a fake clock).
    #[cfg(test)]
    pub fn with_limiter(mut self, limiter: SharedLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// Live agent states for `GET /api/agents/states`, kept current by the
    /// routing engine. Without it the endpoint answers with the last state
    /// each agent has in the database.
    pub fn with_live_states(mut self, live: watch::Receiver<Vec<AgentStateView>>) -> Self {
        self.live = Some(live);
        self
    }

    /// Bumped after every change to agents, queues or membership: reload
    /// them from the store when it changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

fn digest(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// The admin routes without extras, mergeable into a router of any state
/// (the tests' mount; serve.rs uses [`routes_with`]).
#[cfg(test)]
pub fn routes<S: Clone + Send + Sync + 'static>(state: AdminState) -> Router<S> {
    routes_with(state, Router::new())
}

/// [`routes`] plus `extra`, behind the same authentication: how serve.rs
/// mounts the OpenAPI document, whose module names every handler here and
/// so cannot be named back (no import cycles between a crate's files).
pub fn routes_with<S: Clone + Send + Sync + 'static>(
    state: AdminState,
    extra: Router<AdminState>,
) -> Router<S> {
    extra
        .route("/api/me", get(crate::admin_auth::me))
        .merge(crate::audit::routes(state.store.clone()))
        .route("/api/agents", get(list_agents).post(create_agent))
        .route("/api/agents/states", get(agent_states))
        .route(
            "/api/agents/{id}",
            get(get_agent).put(update_agent).delete(delete_agent),
        )
        .route("/api/queues", get(list_queues).post(create_queue))
        .route(
            "/api/queues/{name}",
            get(get_queue).put(update_queue).delete(delete_queue),
        )
        .route("/api/queues/{name}/members", put(set_members))
        .route("/api/callbacks", get(list_callbacks))
        .route("/api/callbacks/{id}", get(get_callback))
        .merge(crate::recording_api::routes(
            crate::recording_api::RecordingAccess {
                store: state.store.clone(),
                keys: state.recording_keys.clone(),
            },
        ))
        .route(
            "/api/callbacks/{id}/cancel",
            axum::routing::post(cancel_callback),
        )
        .merge(crate::flows_api::routes(
            crate::flows_api::FlowsApi::new(state.store.clone(), state.flow_sounds.clone())
                .with_dial_check(state.dial_check.clone()),
        ))
        .merge(crate::calls_api::routes(state.store.clone()))
        .merge(crate::reports_api::routes(crate::reports_api::ReportsApi {
            store: state.store.clone(),
            default_tz: state.report_tz.clone(),
        }))
        .merge(crate::prompts_api::routes(
            crate::prompts_api::PromptsApi::new(
                state.store.clone(),
                state.flow_sounds.clone(),
                state.prompt_cache.clone(),
            ),
        ))
        .merge(crate::voicemail_api::routes(
            crate::recording_api::RecordingAccess {
                store: state.store.clone(),
                keys: state.recording_keys.clone(),
            },
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .with_state(state)
}

/// Who is asking: the bearer token (when an `Authorization` header is
/// present), else the `hotline_admin` session cookie (admin_auth.rs). The
/// bearer side: 503 without a configured token, 401 without the right one,
/// 429 (with `Retry-After`) for a source address after too many wrong ones.
/// Puts the [`Principal`] into the request for the handlers.
async fn require_admin(
    State(st): State<AdminState>,
    ClientIp(ip): ClientIp,
    mut req: Request,
    next: Next,
) -> Response {
    if !req.headers().contains_key(header::AUTHORIZATION) {
        if let Some(token) = crate::admin_auth::cookie_token(req.headers()) {
            let who =
                crate::admin_auth::cookie_principal(&st.store, req.method(), req.headers(), token)
                    .await;
            return match who {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                    next.run(req).await
                }
                Err(e) => e.into_response(),
            };
        }
    }
    let Some(expected) = st.token else {
        if !req.headers().contains_key(header::AUTHORIZATION) {
            return unauthorized();
        }
        return ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "bearer token disabled: set --admin-token (or sign in at /admin)".into(),
        )
        .into_response();
    };
    let key = format!(
        "admin:{}",
        ip.map_or_else(|| "unknown".into(), |i| i.to_string())
    );
    if let Some(wait) = st.limiter.locked(&[&key]) {
        return too_many_attempts(wait);
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| digest(token.trim()));
    // Digests of equal length, compared without an early exit: neither the
    // token's length nor its prefix leaks through timing.
    match given {
        Some(g) if bool::from(g.ct_eq(&expected)) => {
            st.limiter.succeeded(&[&key]);
            req.extensions_mut().insert(Principal::token());
            return next.run(req).await;
        }
        // A wrong token is a guess; no header at all is not.
        Some(_) => {
            tracing::warn!(ip = ?ip, "admin API: wrong bearer token");
            st.limiter.failed(&[&key]);
        }
        None => {}
    }
    unauthorized()
}

/// 401 with `WWW-Authenticate: Bearer`.
fn unauthorized() -> Response {
    let mut res = ApiError(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (or sign in at /admin)".into(),
    )
    .into_response();
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

type ApiResult<T> = Result<T, ApiError>;

fn not_found(what: &'static str, id: String) -> ApiError {
    StoreError::NotFound { what, id }.into()
}

#[utoipa::path(
    get,
    path = "/api/agents",
    tag = "agents",
    summary = "List agents",
    responses(
        (status = 200, description = "List agents"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn list_agents(State(st): State<AdminState>) -> ApiResult<Json<Vec<Agent>>> {
    Ok(Json(st.store.list_agents().await?))
}

#[utoipa::path(
    post,
    path = "/api/agents",
    tag = "agents",
    summary = "Create an agent",
    request_body = serde_json::Value,
    responses(
        (status = 201, description = "Create an agent"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn create_agent(
    State(st): State<AdminState>,
    actor: Actor,
    Body(new): Body<NewAgent>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    actor.require_change()?;
    if new.id == "states" {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "agent id \"states\" is reserved".into(),
        ));
    }
    let agent = st.store.create_agent(new).await?;
    st.changed();
    let details = json!({"name": agent.name, "role": agent.role, "skills": agent.skills,
                         "active": agent.active});
    actor
        .record(&st.store, "agent_create", Some(&agent.id), details)
        .await;
    Ok((StatusCode::CREATED, Json(agent)))
}

#[utoipa::path(
    get,
    path = "/api/agents/{id}",
    tag = "agents",
    summary = "One agent",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "One agent"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn get_agent(State(st): State<AdminState>, Path(id): Path<String>) -> ApiResult<Json<Agent>> {
    match st.store.agent(&id).await? {
        Some(agent) => Ok(Json(agent)),
        None => Err(not_found("agent", id)),
    }
}

#[utoipa::path(
    put,
    path = "/api/agents/{id}",
    tag = "agents",
    summary = "Change an agent",
    params(("id" = String, Path)),
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Change an agent"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn update_agent(
    State(st): State<AdminState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(up): Body<AgentUpdate>,
) -> ApiResult<Json<Agent>> {
    actor.require_change()?;
    let before = st.store.agent(&id).await?;
    // Which fields, never the password itself.
    let fields: Vec<&str> = [
        ("name", up.name.is_some()),
        ("skills", up.skills.is_some()),
        ("active", up.active.is_some()),
        ("password", up.password.is_some()),
        ("role", up.role.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, given)| given.then_some(f))
    .collect();
    let agent = st.store.update_agent(&id, up).await?;
    st.changed();
    let details = json!({"fields": fields, "name": agent.name, "skills": agent.skills,
                         "active": agent.active});
    actor
        .record(&st.store, "agent_update", Some(&id), details)
        .await;
    if let Some(old) = before.filter(|b| b.role != agent.role) {
        let details = json!({"from": old.role, "to": agent.role});
        actor
            .record(&st.store, "role_change", Some(&id), details)
            .await;
    }
    Ok(Json(agent))
}

#[utoipa::path(
    delete,
    path = "/api/agents/{id}",
    tag = "agents",
    summary = "Delete an agent",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Delete an agent"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn delete_agent(
    State(st): State<AdminState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    actor.require_change()?;
    st.store.delete_agent(&id).await?;
    st.changed();
    actor
        .record(&st.store, "agent_delete", Some(&id), json!({}))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/agents/states",
    tag = "agents",
    summary = "Current state of every agent",
    responses(
        (status = 200, description = "Current state of every agent"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn agent_states(State(st): State<AdminState>) -> ApiResult<Json<serde_json::Value>> {
    if let Some(live) = &st.live {
        let agents = live.borrow().clone();
        return Ok(Json(json!({ "source": "live", "agents": agents })));
    }
    let agents: Vec<AgentStateView> = st
        .store
        .agent_last_states()
        .await?
        .into_iter()
        .map(|s| AgentStateView {
            agent: s.agent,
            name: s.name,
            state: s.state.unwrap_or_else(|| "offline".into()),
            reason: s.reason,
            since: s.at,
            call: None,
        })
        .collect();
    Ok(Json(json!({ "source": "database", "agents": agents })))
}

/// `?state=scheduled,queued` (any of the states; default all) and
/// `?limit=N` (default 200, at most 1000).
#[derive(serde::Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/callbacks",
    tag = "callbacks",
    summary = "List booked callbacks",
    responses(
        (status = 200, description = "List booked callbacks"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn list_callbacks(
    State(st): State<AdminState>,
    axum::extract::Query(q): axum::extract::Query<CallbackQuery>,
) -> ApiResult<Json<Vec<CallbackRow>>> {
    let states: Vec<String> = q
        .state
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = states
        .iter()
        .find(|s| !hotline_store::callbacks::CALLBACK_STATES.contains(&s.as_str()))
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown callback state `{bad}`; use {}",
                hotline_store::callbacks::CALLBACK_STATES.join(", ")
            ),
        ));
    }
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    Ok(Json(st.store.callbacks(&states, limit).await?))
}

fn callback_id(id: &str) -> Result<hotline_store::Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("callback `{id}` not found")))
}

#[utoipa::path(
    get,
    path = "/api/callbacks/{id}",
    tag = "callbacks",
    summary = "One callback",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "One callback"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn get_callback(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CallbackRow>> {
    match st.store.callback(callback_id(&id)?).await? {
        Some(cb) => Ok(Json(cb)),
        None => Err(not_found("callback", id)),
    }
}

/// An open callback (scheduled, queued or dialing) is cancelled; the desk
/// drops its entry at its next look at the book. A finished one: 409.
#[utoipa::path(
    post,
    path = "/api/callbacks/{id}/cancel",
    tag = "callbacks",
    summary = "Cancel a pending callback",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Cancel a pending callback"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn cancel_callback(
    State(st): State<AdminState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<CallbackRow>> {
    actor.require_change()?;
    let uuid = callback_id(&id)?;
    if !st.store.cancel_callback(uuid).await? {
        return match st.store.callback(uuid).await? {
            Some(cb) => Err(ApiError(
                StatusCode::CONFLICT,
                format!("callback {id} is already {}", cb.state),
            )),
            None => Err(not_found("callback", id)),
        };
    }
    st.changed();
    actor
        .record(&st.store, "callback_cancel", Some(&id), json!({}))
        .await;
    match st.store.callback(uuid).await? {
        Some(cb) => Ok(Json(cb)),
        None => Err(not_found("callback", id)),
    }
}

#[utoipa::path(
    get,
    path = "/api/queues",
    tag = "queues",
    summary = "List queues",
    responses(
        (status = 200, description = "List queues"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn list_queues(State(st): State<AdminState>) -> ApiResult<Json<Vec<Queue>>> {
    Ok(Json(st.store.list_queues().await?))
}

#[utoipa::path(
    post,
    path = "/api/queues",
    tag = "queues",
    summary = "Create a queue",
    request_body = serde_json::Value,
    responses(
        (status = 201, description = "Create a queue"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn create_queue(
    State(st): State<AdminState>,
    actor: Actor,
    Body(new): Body<NewQueue>,
) -> ApiResult<(StatusCode, Json<Queue>)> {
    actor.require_change()?;
    let queue = st.store.create_queue(new).await?;
    st.changed();
    actor
        .record(
            &st.store,
            "queue_create",
            Some(&queue.name),
            queue_details(&queue),
        )
        .await;
    Ok((StatusCode::CREATED, Json(queue)))
}

/// A queue as the audit log keeps it after a change.
fn queue_details(q: &Queue) -> serde_json::Value {
    let mut v = serde_json::to_value(q).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("name");
        m.remove("created_at");
    }
    v
}

#[utoipa::path(
    get,
    path = "/api/queues/{name}",
    tag = "queues",
    summary = "One queue",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "One queue"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn get_queue(
    State(st): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Queue>> {
    match st.store.queue(&name).await? {
        Some(queue) => Ok(Json(queue)),
        None => Err(not_found("queue", name)),
    }
}

#[utoipa::path(
    put,
    path = "/api/queues/{name}",
    tag = "queues",
    summary = "Change a queue",
    params(("name" = String, Path)),
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Change a queue"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn update_queue(
    State(st): State<AdminState>,
    actor: Actor,
    Path(name): Path<String>,
    Body(up): Body<QueueUpdate>,
) -> ApiResult<Json<Queue>> {
    actor.require_change()?;
    let queue = st.store.update_queue(&name, up).await?;
    st.changed();
    actor
        .record(
            &st.store,
            "queue_update",
            Some(&name),
            queue_details(&queue),
        )
        .await;
    Ok(Json(queue))
}

#[utoipa::path(
    delete,
    path = "/api/queues/{name}",
    tag = "queues",
    summary = "Delete a queue",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Delete a queue"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn delete_queue(
    State(st): State<AdminState>,
    actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    actor.require_change()?;
    st.store.delete_queue(&name).await?;
    st.changed();
    actor
        .record(&st.store, "queue_delete", Some(&name), json!({}))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/api/queues/{name}/members",
    tag = "queues",
    summary = "Replace the members of a queue",
    params(("name" = String, Path)),
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Replace the members of a queue"),
        (status = 401, description = "Not signed in"),
    ),
)]
async fn set_members(
    State(st): State<AdminState>,
    actor: Actor,
    Path(name): Path<String>,
    Body(members): Body<Vec<String>>,
) -> ApiResult<Json<Queue>> {
    actor.require_change()?;
    let queue = st.store.set_queue_members(&name, &members).await?;
    st.changed();
    actor
        .record(
            &st.store,
            "queue_members",
            Some(&name),
            json!({"members": queue.members}),
        )
        .await;
    Ok(Json(queue))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body as HttpBody;
    use axum::http::Method;
    use hotline_events::EventData;
    use hotline_store::testing::{TestDb, fresh_db};
    use serde_json::Value;
    use tower::ServiceExt;

    const TOKEN: &str = "s3cret-admin-token-for-tests";

    async fn app(token: Option<&str>) -> (Router, TestDb, AdminState) {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let st = AdminState::new(db.store.clone(), token);
        (routes(st.clone()), db, st)
    }

    async fn call(
        app: &Router,
        method: Method,
        uri: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
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
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, v)
    }

    fn bearer() -> Option<&'static str> {
        Some("Bearer s3cret-admin-token-for-tests")
    }

    /// Issue 9 #1: booked callbacks are visible to admins, by state, and an
    /// open one can be cancelled (once).
    #[tokio::test]
    async fn callbacks_are_listed_and_cancelled() {
        let (app, db, _) = app(Some(TOKEN)).await;
        let call_id = hotline_store::Uuid::new_v4();
        let t0 = Utc::now();
        let ev = |seq: u32, data: EventData| hotline_events::CallEvent {
            call_id,
            sip_call_id: "cb@test".into(),
            seq,
            at: t0,
            node: None,
            data,
        };
        let events = vec![
            ev(
                0,
                EventData::CallStarted {
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
                EventData::CallbackRequested {
                    number: "13800000000".into(),
                    slot: "asap".into(),
                    queue: Some(Some("support".into())),
                    due_at: Some(t0.to_rfc3339()),
                    source: Some("ivr".into()),
                },
            ),
        ];
        db.store
            .write(&hotline_store::prepare(events.into_iter(), "gw").await)
            .await
            .unwrap();
        let (s, v) = call(&app, Method::GET, "/api/callbacks", bearer(), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v[0]["number"], "13800000000");
        assert_eq!(v[0]["state"], "scheduled");
        let id = v[0]["id"].as_str().unwrap().to_owned();
        let (s, v) = call(
            &app,
            Method::GET,
            "/api/callbacks?state=done",
            bearer(),
            None,
        )
        .await;
        assert_eq!((s, v), (StatusCode::OK, serde_json::json!([])));
        let (s, v) = call(
            &app,
            Method::GET,
            "/api/callbacks?state=later",
            bearer(),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let uri = format!("/api/callbacks/{id}/cancel");
        let (s, v) = call(&app, Method::POST, &uri, bearer(), None).await;
        assert_eq!(
            (s, v["state"].as_str()),
            (StatusCode::OK, Some("cancelled")),
            "{v}"
        );
        let (s, v) = call(&app, Method::POST, &uri, bearer(), None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        let (s, _) = call(
            &app,
            Method::GET,
            &format!("/api/callbacks/{}", hotline_store::Uuid::new_v4()),
            bearer(),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&app, Method::GET, "/api/callbacks", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn disabled_without_a_token() {
        let (app, _db, _) = app(None).await;
        let (s, v) = call(&app, Method::GET, "/api/agents", bearer(), None).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            v["error"],
            "bearer token disabled: set --admin-token (or sign in at /admin)"
        );
        let (s, _) = call(&app, Method::GET, "/api/agents", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn wrong_tokens_lock_the_address_out() {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        let clock = crate::login_limit::tests::FakeClock::new();
        let st = AdminState::new(db.store.clone(), Some(TOKEN)).with_limiter(
            SharedLimiter::with_clock(LimitPolicy::default(), clock.clock()),
        );
        let app: Router = routes(st);
        let send = |auth: &'static str| {
            let app = app.clone();
            async move {
                let mut req = Request::get("/api/queues")
                    .header(header::AUTHORIZATION, auth)
                    .body(HttpBody::empty())
                    .unwrap();
                let peer: std::net::SocketAddr = "198.51.100.7:5000".parse().unwrap();
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                app.oneshot(req).await.unwrap()
            }
        };
        for _ in 0..5 {
            assert_eq!(
                send("Bearer guess").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let res = send("Bearer s3cret-admin-token-for-tests").await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "900");
        clock.advance(15 * 60);
        let res = send("Bearer s3cret-admin-token-for-tests").await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_bearer_token_is_required() {
        let (app, _db, _) = app(Some(TOKEN)).await;
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer s3cret-admin-token-for-test"),
            Some("Basic s3cret-admin-token-for-tests"),
            Some(TOKEN),
        ] {
            let (s, v) = call(&app, Method::GET, "/api/queues", auth, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert!(v["error"].is_string());
        }
        let (s, _) = call(
            &app,
            Method::GET,
            "/api/queues",
            Some("bearer s3cret-admin-token-for-tests"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }

    #[tokio::test]
    async fn agents_round_trip_without_hashes() {
        let (app, db, st) = app(Some(TOKEN)).await;
        let changes = st.changes();
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/agents",
            bearer(),
            Some(json!({"id": "a1", "name": "Ada Agent", "password": "correct horse", "skills": ["billing", "refunds"]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["id"], "a1");
        assert_eq!(v["skills"], json!(["billing", "refunds"]));
        assert_eq!(v["active"], true);
        // Exactly one change per accepted write (the desk reloads on each).
        assert_eq!(*changes.borrow(), 1);

        let dup = json!({"id": "a1", "name": "Again", "password": "correct horse"});
        let (s, _) = call(&app, Method::POST, "/api/agents", bearer(), Some(dup)).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(*changes.borrow(), 1, "a refused write changes nothing");
        for bad in [
            json!({"id": "a b", "name": "X", "password": "correct horse"}),
            json!({"id": "a2", "name": "X", "password": "short"}),
            json!({"id": "a2", "name": "", "password": "correct horse"}),
            json!({"id": "a2", "name": "X", "password": "correct horse", "pasword": 1}),
            json!({"id": "states", "name": "X", "password": "correct horse"}),
            json!({"name": "X"}),
        ] {
            let (s, v) = call(
                &app,
                Method::POST,
                "/api/agents",
                bearer(),
                Some(bad.clone()),
            )
            .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} → {v}");
            assert!(v["error"].is_string());
        }

        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/agents/a1",
            bearer(),
            Some(
                json!({"name": "Ada Lovelace", "skills": ["billing"], "password": "new password!"}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["name"], "Ada Lovelace");
        assert!(
            db.store
                .verify_agent_password("a1", "new password!")
                .await
                .unwrap()
                .is_some()
        );

        let (s, v) = call(&app, Method::GET, "/api/agents/a1", bearer(), None).await;
        assert_eq!(
            (s, v["skills"].clone()),
            (StatusCode::OK, json!(["billing"]))
        );
        let (s, list) = call(&app, Method::GET, "/api/agents", bearer(), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        for body in [&v, &list] {
            let text = body.to_string();
            assert!(
                !text.contains("argon2") && !text.contains("password"),
                "{text}"
            );
        }

        let (s, _) = call(
            &app,
            Method::PUT,
            "/api/agents/nobody",
            bearer(),
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&app, Method::DELETE, "/api/agents/a1", bearer(), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(&app, Method::GET, "/api/agents/a1", bearer(), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&app, Method::DELETE, "/api/agents/a1", bearer(), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn queues_and_members_round_trip() {
        let (app, _db, _) = app(Some(TOKEN)).await;
        for id in ["a1", "a2"] {
            let body = json!({"id": id, "name": id, "password": "correct horse"});
            let (s, _) = call(&app, Method::POST, "/api/agents", bearer(), Some(body)).await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/queues",
            bearer(),
            Some(json!({"name": "general"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/queues",
            bearer(),
            Some(json!({"name": "billing", "strategy": "skills_priority", "overflow": "queue:general",
                        "issue_skills": {"subscription.refund": "refunds"}, "members": ["a2"]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["strategy"], "skills_priority");
        assert_eq!(v["overflow"], "queue:general");
        assert_eq!(v["max_wait_secs"], 120);
        assert_eq!(v["members"], json!(["a2"]));
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/queues",
            bearer(),
            Some(json!({"name": "billing"})),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        for bad in [
            json!({"name": "x", "strategy": "random"}),
            json!({"name": "x", "overflow": "bounce"}),
            json!({"name": "x", "max_wait_secs": 0}),
            json!({"name": "x", "members": ["ghost"]}),
        ] {
            let (s, v) = call(
                &app,
                Method::POST,
                "/api/queues",
                bearer(),
                Some(bad.clone()),
            )
            .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} → {v}");
        }

        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/queues/billing/members",
            bearer(),
            Some(json!(["a2", "a1"])),
        )
        .await;
        assert_eq!(
            (s, v["members"].clone()),
            (StatusCode::OK, json!(["a2", "a1"]))
        );
        let (s, _) = call(
            &app,
            Method::PUT,
            "/api/queues/billing/members",
            bearer(),
            Some(json!(["a1", "a1"])),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = call(
            &app,
            Method::PUT,
            "/api/queues/nope/members",
            bearer(),
            Some(json!(["a1"])),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        let (s, v) = call(
            &app,
            Method::PUT,
            "/api/queues/billing",
            bearer(),
            Some(json!({"strategy": "round_robin", "wrap_up_secs": 0})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["strategy"].clone(), v["wrap_up_secs"].clone()),
            (json!("round_robin"), json!(0))
        );
        assert_eq!(v["members"], json!(["a2", "a1"]), "kept");

        let (s, _) = call(&app, Method::DELETE, "/api/agents/a2", bearer(), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, v) = call(&app, Method::GET, "/api/queues/billing", bearer(), None).await;
        assert_eq!((s, v["members"].clone()), (StatusCode::OK, json!(["a1"])));
        let (s, v) = call(&app, Method::GET, "/api/queues", bearer(), None).await;
        assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(2)));
        let (s, _) = call(&app, Method::DELETE, "/api/queues/billing", bearer(), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(&app, Method::GET, "/api/queues/billing", bearer(), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    async fn post_queue(app: &Router, body: Value) -> (StatusCode, Value) {
        call(app, Method::POST, "/api/queues", bearer(), Some(body)).await
    }

    async fn put_queue(app: &Router, name: &str, body: Value) -> (StatusCode, Value) {
        let uri = format!("/api/queues/{name}");
        call(app, Method::PUT, &uri, bearer(), Some(body)).await
    }

    fn error_of(v: &Value) -> &str {
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {v}"))
    }

    #[tokio::test]
    async fn overflow_to_a_missing_queue_or_in_a_loop_is_refused() {
        let (app, _db, _) = app(Some(TOKEN)).await;
        // To a queue that does not exist.
        let (s, v) = post_queue(
            &app,
            json!({"name": "support", "overflow": "queue:general"}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_of(&v).contains("\"general\""), "{v}");
        // To itself, on create and on update.
        let (s, v) = post_queue(
            &app,
            json!({"name": "support", "overflow": "queue:support"}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_of(&v).contains("support → support"), "{v}");
        let (s, _) = call(&app, Method::GET, "/api/queues/support", bearer(), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "nothing was created");
        let (s, v) = post_queue(&app, json!({"name": "general"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = put_queue(&app, "general", json!({"overflow": "queue:general"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_of(&v).contains("general → general"), "{v}");

        // A chain is fine; closing it into a loop across queues is not.
        let (s, v) = post_queue(
            &app,
            json!({"name": "support", "overflow": "queue:general"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = post_queue(
            &app,
            json!({"name": "billing", "overflow": "queue:support"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = put_queue(&app, "general", json!({"overflow": "queue:support"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_of(&v).contains("general → support → general"), "{v}");
        let (s, v) = put_queue(
            &app,
            "general",
            json!({"overflow": "queue:billing", "max_wait_secs": 30}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            error_of(&v).contains("general → billing → support → general"),
            "{v}"
        );
        let (s, v) = call(&app, Method::GET, "/api/queues/general", bearer(), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (v["overflow"].clone(), v["max_wait_secs"].clone()),
            (json!("voicemail"), json!(120)),
            "a refused change changes nothing"
        );

        // A queue others overflow to cannot go; once they stop, it can.
        let (s, v) = call(&app, Method::DELETE, "/api/queues/general", bearer(), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_of(&v).contains("\"support\""), "{v}");
        let (s, v) = put_queue(&app, "support", json!({"overflow": "callback"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, _) = call(&app, Method::DELETE, "/api/queues/general", bearer(), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn enum_values_are_accepted_in_either_spelling() {
        let (app, _db, _) = app(Some(TOKEN)).await;
        let (s, v) = post_queue(
            &app,
            json!({"name": "sales", "strategy": "round-robin", "on_agent_lost": "Release",
                   "overflow": "hang-up"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["strategy"], "round_robin");
        assert_eq!(v["on_agent_lost"], "release");
        assert_eq!(v["overflow"], "hangup");
        for (given, answered) in [
            ("ring-all", "ring_all"),
            ("skills_priority", "skills_priority"),
            ("longest-idle", "longest_idle"),
            ("ROUND_ROBIN", "round_robin"),
        ] {
            let (s, v) = put_queue(&app, "sales", json!({"strategy": given})).await;
            assert_eq!(
                (s, v["strategy"].as_str()),
                (StatusCode::OK, Some(answered))
            );
        }
        let (s, v) = put_queue(&app, "sales", json!({"strategy": "round robin"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            error_of(&v).contains("round_robin"),
            "names the choices: {v}"
        );
    }

    #[tokio::test]
    async fn states_come_from_the_database_until_live_ones_are_wired() {
        let (app, db, st) = app(Some(TOKEN)).await;
        db.store
            .create_agent(NewAgent::new("a1", "Ada", "correct horse"))
            .await
            .unwrap();
        db.store
            .create_agent(NewAgent::new("a2", "Bob", "correct horse"))
            .await
            .unwrap();
        let t0 = Utc::now() - chrono::TimeDelta::seconds(60);
        db.store
            .record_agent_state("a1", "available", None, t0)
            .await
            .unwrap();
        db.store
            .record_agent_state(
                "a1",
                "away",
                Some("lunch"),
                t0 + chrono::TimeDelta::seconds(30),
            )
            .await
            .unwrap();
        let (s, v) = call(&app, Method::GET, "/api/agents/states", bearer(), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["source"], "database");
        assert_eq!(v["agents"][0]["agent"], "a1");
        assert_eq!(v["agents"][0]["state"], "away");
        assert_eq!(v["agents"][0]["reason"], "lunch");
        assert_eq!(v["agents"][1]["state"], "offline");
        assert_eq!(v["agents"][1]["since"], Value::Null);

        let (_tx, rx) = watch::channel(vec![AgentStateView {
            agent: "a2".into(),
            name: "Bob".into(),
            state: "on_call".into(),
            reason: None,
            since: Some(Utc::now()),
            call: Some("c1".into()),
        }]);
        let live = routes(st.with_live_states(rx));
        let (s, v) = call(&live, Method::GET, "/api/agents/states", bearer(), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["source"], "live");
        assert_eq!(v["agents"][0]["call"], "c1");
    }
}
