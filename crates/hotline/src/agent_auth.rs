//! Agent login for the softphone (docs/agent-protocol.md, "HTTP"):
//! `POST /agent/login`, `GET /agent/me`, `POST /agent/logout`, and
//! [`agent_from_cookie`] for the `/agent/ws` upgrade.
//!
//! The session cookie `hotline_agent` holds a random token (HttpOnly,
//! SameSite=Strict, `Path=/agent`, and `Secure` when the listener speaks
//! HTTPS); the database keeps only its SHA-256.
//! A wrong password and an unknown agent get the same 401 after the same
//! argon2 work. Five failures in five minutes per source address or per
//! agent id lock them out for 15 minutes: 429 with `Retry-After`
//! ([`crate::login_limit`], docs/security.md "Web").
//!
//! Mount: `.merge(agent_auth::agent_auth_routes(AgentAuthState::new(store)))`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hotline_store::Store;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Body};
use crate::http::ClientIp;
use crate::login_limit::{LimitPolicy, SharedLimiter};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "hotline_agent";

/// The wrap-up form's codes unless configured otherwise (the page's own fallback).
pub const DEFAULT_DISPOSITIONS: &[&str] =
    &["resolved", "refund", "follow_up", "escalated", "no_action"];

/// How long a login lasts unless configured otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What the login handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AgentAuthState {
    pub store: Store,
    pub session_ttl: Duration,
    pub dispositions: Arc<Vec<String>>,
    /// Failed logins per source address and per agent id (docs/security.md, "Web").
    pub limiter: SharedLimiter,
    /// Mark the cookie `Secure` (the listener speaks HTTPS).
    pub secure_cookie: bool,
}

impl AgentAuthState {
    /// 12-hour sessions, the default dispositions.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            session_ttl: DEFAULT_SESSION_TTL,
            dispositions: Arc::new(DEFAULT_DISPOSITIONS.iter().map(|s| s.to_string()).collect()),
            limiter: SharedLimiter::new(LimitPolicy::default()),
            secure_cookie: false,
        }
    }
}

/// `POST /agent/login` body.
#[derive(Deserialize)]
struct LoginRequest {
    agent: String,
    password: String,
}

/// Never prints the password.
impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("agent", &self.agent)
            .field("password", &"***")
            .finish()
    }
}

/// `POST /agent/login` and `GET /agent/me` answer.
#[derive(Serialize)]
struct Me {
    agent: String,
    name: String,
    dispositions: Vec<String>,
}

/// The login routes, mergeable into a router of any state.
pub fn agent_auth_routes<S: Clone + Send + Sync + 'static>(state: AgentAuthState) -> Router<S> {
    Router::new()
        .route("/agent/login", post(login))
        .route("/agent/me", get(me))
        .route("/agent/logout", post(logout))
        .with_state(state)
}

/// The agent whose valid session cookie is in `headers` (and marks the
/// session seen), or `None`. For the `/agent/ws` upgrade.
pub async fn agent_from_cookie(store: &Store, headers: &HeaderMap) -> Option<String> {
    let token = session_token(headers)?;
    match store.session_agent(token).await {
        Ok(agent) => agent,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check an agent session");
            None
        }
    }
}

/// The `hotline_agent` cookie's value.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
}

fn set_cookie(value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/agent; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    ))
    .expect("cookie is ASCII")
}

fn unauthorized(message: &str) -> ApiError {
    ApiError(StatusCode::UNAUTHORIZED, message.into())
}

async fn me_body(st: &AgentAuthState, agent: &str) -> Result<Me, ApiError> {
    let agent = st
        .store
        .agent(agent)
        .await?
        .ok_or_else(|| unauthorized("not logged in"))?;
    Ok(Me {
        agent: agent.id,
        name: agent.name,
        dispositions: st.dispositions.to_vec(),
    })
}

async fn login(
    State(st): State<AgentAuthState>,
    ClientIp(ip): ClientIp,
    Body(req): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    let ip_key = format!(
        "ip:{}",
        ip.map_or_else(|| "unknown".into(), |i| i.to_string())
    );
    let agent_key = format!("agent:{}", req.agent);
    let keys = [ip_key.as_str(), agent_key.as_str()];
    if let Some(wait) = st.limiter.locked(&keys) {
        tracing::warn!(agent = %req.agent, ip = ?ip, "agent login locked out");
        return Ok(crate::api::too_many_attempts(wait));
    }
    let Some(agent) = st
        .store
        .verify_agent_password(&req.agent, &req.password)
        .await?
    else {
        st.limiter.failed(&keys);
        tracing::info!(agent = %req.agent, ip = ?ip, "agent login refused");
        return Err(unauthorized("wrong agent or password"));
    };
    st.limiter.succeeded(&keys);
    let token = st.store.create_session(&agent.id, st.session_ttl).await?;
    tracing::info!(agent = %agent.id, "agent logged in");
    let body = Me {
        agent: agent.id,
        name: agent.name,
        dispositions: st.dispositions.to_vec(),
    };
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&token, st.session_ttl, st.secure_cookie),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn me(State(st): State<AgentAuthState>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let agent = agent_from_cookie(&st.store, &headers)
        .await
        .ok_or_else(|| unauthorized("not logged in"))?;
    Ok(Json(me_body(&st, &agent).await?))
}

async fn logout(
    State(st): State<AgentAuthState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_token(&headers) {
        st.store.delete_session(token).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie("", Duration::ZERO, st.secure_cookie),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body as HttpBody;
    use axum::extract::Request;
    use axum::http::Method;
    use hotline_store::NewAgent;
    use hotline_store::testing::{TestDb, fresh_db};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    /// A migrated database with agent `a1` (password `correct horse`).
    async fn db_with_agent() -> TestDb {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        db.store
            .create_agent(NewAgent::new("a1", "Ada Agent", "correct horse"))
            .await
            .unwrap();
        db
    }

    async fn app() -> (Router, TestDb) {
        let db = db_with_agent().await;
        (agent_auth_routes(AgentAuthState::new(db.store.clone())), db)
    }

    async fn call(
        app: &Router,
        method: Method,
        uri: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(HttpBody::from(b.to_string())),
            None => req.body(HttpBody::empty()),
        }
        .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, v)
    }

    /// `name=value` of the Set-Cookie header, checking its attributes.
    fn cookie_of(headers: &HeaderMap) -> String {
        let set = headers
            .get(header::SET_COOKIE)
            .expect("Set-Cookie")
            .to_str()
            .unwrap();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/agent"] {
            assert!(set.split("; ").any(|a| a == attr), "{attr} missing: {set}");
        }
        set.split(';').next().unwrap().to_owned()
    }

    #[tokio::test]
    async fn login_me_logout() {
        let (app, db) = app().await;
        let (s, _, _) = call(&app, Method::GET, "/agent/me", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        let (s, h, v) = call(
            &app,
            Method::POST,
            "/agent/login",
            None,
            Some(json!({"agent": "a1", "password": "correct horse"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["agent"], "a1");
        assert_eq!(v["name"], "Ada Agent");
        assert_eq!(v["dispositions"][0], "resolved");
        let cookie = cookie_of(&h);
        let token = cookie.strip_prefix("hotline_agent=").unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));

        let with_others = format!("theme=dark; {cookie}; x=y");
        let (s, _, v) = call(&app, Method::GET, "/agent/me", Some(&with_others), None).await;
        assert_eq!((s, v["agent"].clone()), (StatusCode::OK, json!("a1")));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert_eq!(
            agent_from_cookie(&db.store, &headers).await.as_deref(),
            Some("a1")
        );

        let (s, h, _) = call(&app, Method::POST, "/agent/logout", Some(&cookie), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(
            h[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let (s, _, _) = call(&app, Method::GET, "/agent/me", Some(&cookie), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(agent_from_cookie(&db.store, &headers).await, None);
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_agent_look_the_same() {
        let (app, db) = app().await;
        let wrong = call(
            &app,
            Method::POST,
            "/agent/login",
            None,
            Some(json!({"agent": "a1", "password": "wrong horse"})),
        )
        .await;
        let unknown = call(
            &app,
            Method::POST,
            "/agent/login",
            None,
            Some(json!({"agent": "nobody", "password": "wrong horse"})),
        )
        .await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
        assert_eq!((wrong.0, &wrong.2), (unknown.0, &unknown.2));
        assert!(wrong.1.get(header::SET_COOKIE).is_none());
        let (s, _, _) = call(
            &app,
            Method::POST,
            "/agent/login",
            None,
            Some(json!({"agent": "a1"})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // A deactivated agent cannot log in, and their sessions end.
        let (_, h, _) = call(
            &app,
            Method::POST,
            "/agent/login",
            None,
            Some(json!({"agent": "a1", "password": "correct horse"})),
        )
        .await;
        let cookie = cookie_of(&h);
        db.store
            .update_agent(
                "a1",
                hotline_store::AgentUpdate {
                    active: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (s, _, _) = call(&app, Method::GET, "/agent/me", Some(&cookie), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _, _) = call(
            &app,
            Method::POST,
            "/agent/login",
            None,
            Some(json!({"agent": "a1", "password": "correct horse"})),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _, _) = call(
            &app,
            Method::GET,
            "/agent/me",
            Some("hotline_agent=garbage"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    /// A login from `ip` (as the listener records the peer).
    async fn login_from(
        app: &Router,
        ip: &str,
        agent: &str,
        password: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/agent/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(HttpBody::from(
                json!({"agent": agent, "password": password}).to_string(),
            ))
            .unwrap();
        let peer: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn sixth_bad_login_is_locked_out_until_the_lockout_ends() {
        let db = db_with_agent().await;
        let clock = crate::login_limit::tests::FakeClock::new();
        let mut st = AgentAuthState::new(db.store.clone());
        st.limiter = SharedLimiter::with_clock(LimitPolicy::default(), clock.clock());
        let app: Router = agent_auth_routes(st);

        for i in 0..5 {
            let (s, _, _) = login_from(&app, "198.51.100.7", "a1", "wrong").await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
        }
        // The 6th, even with the right password: 429, Retry-After, JSON error.
        let (s, h, v) = login_from(&app, "198.51.100.7", "a1", "correct horse").await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h[header::RETRY_AFTER], "900");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("too many failed logins"),
            "{v}"
        );
        assert!(h.get(header::SET_COOKIE).is_none());
        // The agent id is locked from another address too...
        let (s, _, _) = login_from(&app, "203.0.113.5", "a1", "correct horse").await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        // ...and the address for another agent.
        let (s, _, _) = login_from(&app, "198.51.100.7", "a2", "whatever").await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);

        clock.advance(10 * 60);
        let (s, h, _) = login_from(&app, "198.51.100.7", "a1", "correct horse").await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h[header::RETRY_AFTER], "300");

        // Lockout over: the right password works and resets the count.
        clock.advance(5 * 60);
        let (s, h, v) = login_from(&app, "198.51.100.7", "a1", "correct horse").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        cookie_of(&h);
        for _ in 0..4 {
            let (s, _, _) = login_from(&app, "198.51.100.7", "a1", "wrong").await;
            assert_eq!(s, StatusCode::UNAUTHORIZED);
        }
        let (s, _, _) = login_from(&app, "198.51.100.7", "a1", "correct horse").await;
        assert_eq!(s, StatusCode::OK);
    }
}
