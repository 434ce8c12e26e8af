//! Signing in to the admin console: `POST /admin/login`, `POST /admin/logout`,
//! `GET /api/me`, and the cookie half of the admin API's authentication
//! ([`cookie_principal`], called by `admin::require_admin`).
//!
//! Who: a row of `agents` whose role is `admin` or `supervisor`; agents are
//! refused (403, "agents sign in at /agent"). A wrong password and an
//! unknown user get the same 401 after the same argon2 work; failures are
//! rate limited and locked out like the desk's login (one
//! [`SharedLimiter`] for both, so the two doors do not double the guesses).
//!
//! The cookie `hotline_admin` holds a random token (HttpOnly,
//! SameSite=Strict, `Path=/`, `Secure` under HTTPS); the database keeps only
//! its SHA-256 (`admin_sessions`). A request the cookie authenticates that
//! changes state (anything but GET, HEAD, OPTIONS) must also come from this
//! origin: its `Origin` (or, without one, its `Referer`) must name the
//! request's `Host`, else 403 "cross-site request refused". SameSite already
//! keeps the cookie off cross-site requests in current browsers; the Origin
//! check is the second lock for older ones and for sibling subdomains.
//! Bearer-token requests carry no ambient credential and are not checked.
//!
//! Mount: `.merge(admin_auth::routes(AdminAuthState::new(store)))`.

use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hotline_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{ApiError, Body, Principal, Role};
use crate::audit::Actor;
use crate::http::ClientIp;
use crate::login_limit::{LimitPolicy, SharedLimiter};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "hotline_admin";

/// How long a sign-in lasts unless configured otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What the sign-in handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AdminAuthState {
    pub store: Store,
    pub session_ttl: Duration,
    /// Failed logins per source address and per user id; share the desk
    /// login's (docs/security.md, "Web").
    pub limiter: SharedLimiter,
    /// Mark the cookie `Secure` (the listener speaks HTTPS).
    pub secure_cookie: bool,
}

impl AdminAuthState {
    /// 12-hour sessions, a limiter of its own, no `Secure`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            session_ttl: DEFAULT_SESSION_TTL,
            limiter: SharedLimiter::new(LimitPolicy::default()),
            secure_cookie: false,
        }
    }
}

/// `POST /admin/login` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    id: String,
    password: String,
}

/// Never prints the password.
impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("id", &self.id)
            .field("password", &"***")
            .finish()
    }
}

/// `POST /admin/login` answer.
#[derive(Serialize)]
struct SignedIn {
    id: String,
    name: String,
    role: Role,
}

/// `POST /admin/login` and `POST /admin/logout`, mergeable into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(state: AdminAuthState) -> Router<S> {
    Router::new()
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        .with_state(state)
}

/// `GET /api/me`: who the request is authenticated as (behind `require_admin`).
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "session",
    summary = "Who is signed in (agent id and role)",
    responses(
        (status = 200, description = "Who is signed in (agent id and role)"),
        (status = 401, description = "Not signed in"),
    ),
)]
pub async fn me(Extension(p): Extension<Principal>) -> Json<serde_json::Value> {
    Json(json!({ "name": p.name, "role": p.role }))
}

/// The `hotline_admin` cookie's value.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The principal of a request carrying the cookie `token`: 401 when the
/// session is unknown, expired or its user inactive; 403 for an agent, and
/// for a state-changing request from another origin.
pub async fn cookie_principal(
    store: &Store,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
) -> Result<Principal, ApiError> {
    let session = store.admin_session(token).await?.ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "not signed in, or the session ended: sign in at /admin".into(),
        )
    })?;
    let role = Role::from(session.role);
    if !role.can_read() {
        return Err(agents_refused());
    }
    if changes_state(method) && !same_origin(headers) {
        tracing::warn!(
            user = %session.agent,
            origin = ?headers.get(header::ORIGIN),
            "admin API: cross-site request refused"
        );
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "cross-site request refused".into(),
        ));
    }
    Ok(Principal {
        name: session.agent,
        role,
    })
}

fn agents_refused() -> ApiError {
    ApiError(StatusCode::FORBIDDEN, "agents sign in at /agent".into())
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request's `Origin` — or, without one, its `Referer` — is an
/// http(s) URL whose host:port is the request's `Host` (case-insensitive).
/// Neither (or `Origin: null`) is not.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = get(header::HOST).map(str::trim).filter(|h| !h.is_empty()) else {
        return false;
    };
    let source = match get(header::ORIGIN) {
        Some(origin) => origin.trim(),
        None => match get(header::REFERER) {
            Some(referer) => referer.trim(),
            None => return false,
        },
    };
    let Some((scheme, rest)) = source.split_once("://") else {
        return false; // `null` and garbage
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // No user info: `http://evil@host` names evil's idea of host, not ours.
    !authority.contains('@') && authority.eq_ignore_ascii_case(host)
}

fn set_cookie(value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    ))
    .expect("cookie is ASCII")
}

/// What an attempted user id is recorded as: at most 64 characters, no
/// control characters (it is whatever someone typed).
fn attempted(id: &str) -> String {
    id.chars().filter(|c| !c.is_control()).take(64).collect()
}

async fn login(
    State(st): State<AdminAuthState>,
    ClientIp(ip): ClientIp,
    Body(req): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    let ip_key = format!(
        "ip:{}",
        ip.map_or_else(|| "unknown".into(), |i| i.to_string())
    );
    let user_key = format!("agent:{}", req.id);
    let keys = [ip_key.as_str(), user_key.as_str()];
    if let Some(wait) = st.limiter.locked(&keys) {
        tracing::warn!(user = %attempted(&req.id), ip = ?ip, "admin login locked out");
        return Ok(crate::api::too_many_attempts(wait));
    }
    let audit = |who: String, action: &'static str| {
        let store = st.store.clone();
        async move {
            crate::audit::write(&store, &who, action, None, json!({}), ip).await;
        }
    };
    let Some(user) = st
        .store
        .verify_agent_password(&req.id, &req.password)
        .await?
    else {
        st.limiter.failed(&keys);
        tracing::info!(user = %attempted(&req.id), ip = ?ip, "admin login refused");
        audit(attempted(&req.id), "admin_login_failed").await;
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong user or password".into(),
        ));
    };
    // The password was right: not a guess.
    st.limiter.succeeded(&keys);
    let role = Role::from(user.role);
    if !role.can_read() {
        tracing::info!(user = %user.id, ip = ?ip, "admin login refused: an agent");
        audit(user.id, "admin_login_refused").await;
        return Err(agents_refused());
    }
    let token = st
        .store
        .create_admin_session(&user.id, st.session_ttl)
        .await?;
    tracing::info!(user = %user.id, role = ?role, "signed in to the admin console");
    audit(user.id.clone(), "admin_login").await;
    let mut res = Json(SignedIn {
        id: user.id,
        name: user.name,
        role,
    })
    .into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&token, st.session_ttl, st.secure_cookie),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Ends the cookie's session (if any) and clears the cookie: 204 either way.
async fn logout(
    State(st): State<AdminAuthState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie_token(&headers) {
        if let Some(s) = st.store.admin_session(token).await? {
            Actor {
                principal: Principal {
                    name: s.agent,
                    role: s.role.into(),
                },
                ip,
            }
            .record(&st.store, "admin_logout", None, json!({}))
            .await;
        }
        st.store.delete_admin_session(token).await?;
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

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_rule() {
        use header::{HOST, ORIGIN, REFERER};
        let host = (HOST, "gw.example.com:8080");
        for (ok, h) in [
            (
                true,
                vec![host.clone(), (ORIGIN, "http://gw.example.com:8080")],
            ),
            (
                true,
                vec![host.clone(), (ORIGIN, "HTTPS://GW.example.com:8080")],
            ),
            (
                true,
                vec![
                    host.clone(),
                    (REFERER, "https://gw.example.com:8080/admin#x"),
                ],
            ),
            (false, vec![host.clone()]),
            (false, vec![host.clone(), (ORIGIN, "null")]),
            (false, vec![host.clone(), (ORIGIN, "http://gw.example.com")]),
            (
                false,
                vec![host.clone(), (ORIGIN, "http://evil.example:8080")],
            ),
            (
                false,
                vec![
                    host.clone(),
                    (ORIGIN, "http://gw.example.com:8080.evil.example"),
                ],
            ),
            (
                false,
                vec![host.clone(), (ORIGIN, "ftp://gw.example.com:8080")],
            ),
            (
                false,
                vec![host.clone(), (REFERER, "http://evil@gw.example.com:8080/")],
            ),
            // A present Origin decides; a matching Referer does not rescue it.
            (
                false,
                vec![
                    host.clone(),
                    (ORIGIN, "http://evil.example"),
                    (REFERER, "http://gw.example.com:8080/"),
                ],
            ),
            (false, vec![(ORIGIN, "http://gw.example.com:8080")]),
        ] {
            assert_eq!(same_origin(&headers(&h)), ok, "{h:?}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[
            (header::COOKIE, "theme=dark; hotline_agent=aaa"),
            (header::COOKIE, "hotline_admin=\"bbb\"; x=y"),
        ]);
        assert_eq!(cookie_token(&h), Some("bbb"));
        let cookie = set_cookie("t", Duration::from_secs(60), true);
        let cookie = cookie.to_str().unwrap();
        for attr in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(cookie.split("; ").any(|a| a == attr), "{attr}: {cookie}");
        }
    }

    // ---- the routes, against a real PostgreSQL -----------------------------

    use crate::admin::{AdminState, routes as admin_routes};
    use crate::login_limit::tests::FakeClock;
    use axum::body::Body as HttpBody;
    use axum::extract::Request;
    use hotline_store::testing::{TestDb, fresh_db};
    use hotline_store::{NewAgent, Role as StoreRole};
    use serde_json::Value;
    use tower::ServiceExt;

    const TOKEN: &str = "s3cret-admin-token-for-tests";
    const HOST: &str = "gw.test:8080";
    const ORIGIN: &str = "http://gw.test:8080";
    const PEER: &str = "198.51.100.7:40000";

    struct App {
        router: Router,
        db: TestDb,
        clock: FakeClock,
    }

    /// The admin API and sign-in over one database with `boss` (admin),
    /// `sue` (supervisor) and `a1` (agent), each with password `<id> password`.
    async fn app() -> App {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        for (id, role) in [
            ("boss", StoreRole::Admin),
            ("sue", StoreRole::Supervisor),
            ("a1", StoreRole::Agent),
        ] {
            let pw = format!("{id} password");
            db.store
                .create_agent(NewAgent::new(id, id.to_uppercase(), pw).with_role(role))
                .await
                .unwrap();
        }
        let clock = FakeClock::new();
        let auth = AdminAuthState {
            limiter: SharedLimiter::with_clock(LimitPolicy::default(), clock.clock()),
            ..AdminAuthState::new(db.store.clone())
        };
        let router =
            admin_routes(AdminState::new(db.store.clone(), Some(TOKEN))).merge(routes(auth));
        App { router, db, clock }
    }

    /// A request from [`PEER`] to [`HOST`] with `headers`; the answer's
    /// status, headers and JSON body (`null` when empty).
    async fn send(
        app: &Router,
        method: Method,
        uri: &str,
        headers: &[(header::HeaderName, &str)],
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, HOST);
        for (k, v) in headers {
            req = req.header(k.clone(), *v);
        }
        let mut req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(HttpBody::from(b.to_string())),
            None => req.body(HttpBody::empty()),
        }
        .unwrap();
        let peer: std::net::SocketAddr = PEER.parse().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, v)
    }

    async fn login(app: &Router, id: &str, password: &str) -> (StatusCode, HeaderMap, Value) {
        send(
            app,
            Method::POST,
            "/admin/login",
            &[(header::ORIGIN, ORIGIN)],
            Some(json!({"id": id, "password": password})),
        )
        .await
    }

    /// `hotline_admin=<token>` from a login's Set-Cookie, checking its attributes.
    fn cookie_of(headers: &HeaderMap) -> String {
        let set = headers
            .get(header::SET_COOKIE)
            .expect("Set-Cookie")
            .to_str()
            .unwrap();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.split("; ").any(|a| a == attr), "{attr} missing: {set}");
        }
        assert!(!set.contains("Secure"), "plain HTTP: {set}");
        set.split(';').next().unwrap().to_owned()
    }

    async fn signed_in(app: &Router, id: &str) -> String {
        let (s, h, v) = login(app, id, &format!("{id} password")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        cookie_of(&h)
    }

    fn bearer() -> (header::HeaderName, &'static str) {
        (header::AUTHORIZATION, "Bearer s3cret-admin-token-for-tests")
    }

    async fn audit_log(app: &Router) -> Vec<Value> {
        let (s, _, v) = send(app, Method::GET, "/api/audit?limit=500", &[bearer()], None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["entries"].as_array().unwrap().clone()
    }

    fn find<'a>(log: &'a [Value], action: &str, actor: &str) -> &'a Value {
        log.iter()
            .find(|e| e["action"] == action && e["actor"] == actor)
            .unwrap_or_else(|| panic!("no {action} by {actor} in {log:#?}"))
    }

    /// What the code under test logs on this thread, at DEBUG and above.
    #[derive(Clone, Default)]
    struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl LogBuf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    std::thread_local! {
        static CAPTURE: std::cell::RefCell<Option<LogBuf>> = const { std::cell::RefCell::new(None) };
    }

    /// Writes into this thread's [`CAPTURE`], if any; else nowhere.
    struct ThreadWriter;

    impl std::io::Write for ThreadWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            CAPTURE.with(|c| {
                if let Some(buf) = &*c.borrow() {
                    buf.0.lock().unwrap().extend_from_slice(b);
                }
            });
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Starts capturing this thread's log. A global subscriber (installed
    /// once), not a scoped one: tracing caches each call site's interest
    /// process-wide, and tests running in parallel could otherwise leave a
    /// call site switched off for the scoped one.
    fn capture_logs() -> LogBuf {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(|| ThreadWriter)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber");
        });
        let buf = LogBuf::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(buf.clone()));
        buf
    }

    #[tokio::test]
    async fn sign_in_me_and_sign_out() {
        let logs = capture_logs();
        let App { router: app, .. } = app().await;

        // Not signed in: 401 (no bearer token either).
        let (s, _, _) = send(&app, Method::GET, "/api/me", &[], None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        let (s, h, v) = login(&app, "boss", "boss password").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v, json!({"id": "boss", "name": "BOSS", "role": "admin"}));
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let cookie = cookie_of(&h);
        let token = cookie.strip_prefix("hotline_admin=").unwrap().to_owned();
        assert_eq!(token.len(), 64);

        let with_others = format!("theme=dark; {cookie}");
        let (s, _, v) = send(
            &app,
            Method::GET,
            "/api/me",
            &[(header::COOKIE, with_others.as_str())],
            None,
        )
        .await;
        assert_eq!(
            (s, v),
            (StatusCode::OK, json!({"name": "boss", "role": "admin"}))
        );
        let (s, _, v) = send(
            &app,
            Method::GET,
            "/api/agents",
            &[(header::COOKIE, cookie.as_str())],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let roles: Vec<(&str, &str)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["id"].as_str().unwrap(), a["role"].as_str().unwrap()))
            .collect();
        assert_eq!(
            roles,
            [("a1", "agent"), ("boss", "admin"), ("sue", "supervisor")]
        );
        // The bearer token is who it was.
        let (s, _, v) = send(&app, Method::GET, "/api/me", &[bearer()], None).await;
        assert_eq!(
            (s, v),
            (StatusCode::OK, json!({"name": "token", "role": "admin"}))
        );
        // A desk cookie with the same token is not an admin session.
        let desk = format!("hotline_agent={token}");
        let (s, _, _) = send(
            &app,
            Method::GET,
            "/api/me",
            &[(header::COOKIE, desk.as_str())],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Sign out: the cookie is cleared and no longer works.
        let (s, h, _) = send(
            &app,
            Method::POST,
            "/admin/logout",
            &[(header::COOKIE, cookie.as_str())],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(
            h[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let (s, _, v) = send(
            &app,
            Method::GET,
            "/api/me",
            &[(header::COOKIE, cookie.as_str())],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");

        // Audited, with the address.
        let log = audit_log(&app).await;
        assert_eq!(find(&log, "admin_login", "boss")["ip"], "198.51.100.7");
        find(&log, "admin_logout", "boss");

        // Nothing secret in the log: not the password, the cookie or the token.
        let text = logs.text();
        assert!(text.contains("signed in to the admin console"), "{text}");
        for secret in ["boss password", token.as_str(), TOKEN] {
            assert!(!text.contains(secret), "{secret:?} logged:\n{text}");
        }
    }

    #[tokio::test]
    async fn wrong_unknown_agent_and_lockout() {
        let App {
            router: app, clock, ..
        } = app().await;
        let wrong = login(&app, "boss", "wrong password").await;
        let unknown = login(&app, "nobody", "wrong password").await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
        assert_eq!((wrong.0, &wrong.2), (unknown.0, &unknown.2));
        assert!(wrong.1.get(header::SET_COOKIE).is_none());

        // An agent, with the right password: refused, pointed to the desk.
        let (s, h, v) = login(&app, "a1", "a1 password").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(v["error"], "agents sign in at /agent");
        assert!(h.get(header::SET_COOKIE).is_none());

        let log = audit_log(&app).await;
        find(&log, "admin_login_failed", "boss");
        find(&log, "admin_login_failed", "nobody");
        find(&log, "admin_login_refused", "a1");

        // (The right password reset the address's count.) Five wrong ones
        // from this address: locked out, even with the right password and
        // for another user, until the lockout ends.
        for _ in 0..5 {
            let (s, _, _) = login(&app, "sue", "wrong password").await;
            assert_eq!(s, StatusCode::UNAUTHORIZED);
        }
        let (s, h, v) = login(&app, "boss", "boss password").await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
        assert_eq!(h[header::RETRY_AFTER], "900");
        assert!(h.get(header::SET_COOKIE).is_none());
        clock.advance(15 * 60);
        let (s, _, v) = login(&app, "boss", "boss password").await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    #[tokio::test]
    async fn supervisors_read_but_change_nothing() {
        let App {
            router: app, db, ..
        } = app().await;
        let cookie = signed_in(&app, "sue").await;
        let ck = (header::COOKIE, cookie.as_str());
        let same = (header::ORIGIN, ORIGIN);
        for uri in [
            "/api/me",
            "/api/agents",
            "/api/agents/a1",
            "/api/queues",
            "/api/audit",
        ] {
            let (s, _, v) = send(&app, Method::GET, uri, std::slice::from_ref(&ck), None).await;
            assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        }
        let (s, _, v) = send(
            &app,
            Method::POST,
            "/api/queues",
            &[bearer()],
            Some(json!({"name": "q1"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        for (method, uri, body) in [
            (
                Method::POST,
                "/api/agents",
                Some(json!({"id": "x1", "name": "X", "password": "correct horse"})),
            ),
            (
                Method::PUT,
                "/api/agents/a1",
                Some(json!({"role": "admin"})),
            ),
            (Method::DELETE, "/api/agents/a1", None),
            (Method::POST, "/api/queues", Some(json!({"name": "q2"}))),
            (
                Method::PUT,
                "/api/queues/q1",
                Some(json!({"max_wait_secs": 5})),
            ),
            (Method::PUT, "/api/queues/q1/members", Some(json!(["a1"]))),
            (Method::DELETE, "/api/queues/q1", None),
        ] {
            let (s, _, v) =
                send(&app, method.clone(), uri, &[ck.clone(), same.clone()], body).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri}: {v}");
            assert!(v["error"].as_str().unwrap().contains("supervisor"), "{v}");
        }
        // Nothing changed.
        let a1 = db.store.agent("a1").await.unwrap().unwrap();
        assert_eq!(a1.role, StoreRole::Agent);
        let q1 = db.store.queue("q1").await.unwrap().unwrap();
        assert_eq!((q1.max_wait_secs, q1.members.len()), (120, 0));
        assert!(db.store.queue("q2").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn cookie_changes_must_come_from_this_origin() {
        let App { router: app, .. } = app().await;
        let cookie = signed_in(&app, "boss").await;
        let ck = (header::COOKIE, cookie.as_str());
        let q = |name: &str| Some(json!({"name": name}));
        for headers in [
            vec![ck.clone()],
            vec![ck.clone(), (header::ORIGIN, "http://evil.example")],
            vec![ck.clone(), (header::ORIGIN, "null")],
            vec![
                ck.clone(),
                (header::REFERER, "http://evil.example/gw.test:8080"),
            ],
        ] {
            let (s, _, v) = send(&app, Method::POST, "/api/queues", &headers, q("x")).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{headers:?}: {v}");
            assert_eq!(v["error"], "cross-site request refused");
        }
        let (s, _, v) = send(
            &app,
            Method::POST,
            "/api/queues",
            &[ck.clone(), (header::ORIGIN, ORIGIN)],
            q("a"),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, _, v) = send(
            &app,
            Method::POST,
            "/api/queues",
            &[
                ck.clone(),
                (header::REFERER, "http://gw.test:8080/admin#queues"),
            ],
            q("b"),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // Reads need no Origin; the bearer token needs none for anything.
        let (s, _, _) = send(
            &app,
            Method::GET,
            "/api/queues",
            std::slice::from_ref(&ck),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, v) = send(&app, Method::POST, "/api/queues", &[bearer()], q("c")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, _, v) = send(
            &app,
            Method::DELETE,
            "/api/queues/c",
            &[bearer(), (header::ORIGIN, "http://evil.example")],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }

    #[tokio::test]
    async fn roles_are_managed_and_every_change_is_audited() {
        let App {
            router: app, db, ..
        } = app().await;
        let cookie = signed_in(&app, "boss").await;
        let h = [(header::COOKIE, cookie.as_str()), (header::ORIGIN, ORIGIN)];
        let (s, _, v) = send(
            &app,
            Method::POST,
            "/api/agents",
            &h,
            Some(json!({"id": "sam", "name": "Sam", "password": "correct horse", "role": "supervisor"})),
        )
        .await;
        assert_eq!(
            (s, v["role"].clone()),
            (StatusCode::CREATED, json!("supervisor")),
            "{v}"
        );
        let (s, _, v) = send(
            &app,
            Method::PUT,
            "/api/agents/a1",
            &h,
            Some(json!({"role": "admin"})),
        )
        .await;
        assert_eq!(
            (s, v["role"].clone()),
            (StatusCode::OK, json!("admin")),
            "{v}"
        );
        let (s, _, v) = send(
            &app,
            Method::PUT,
            "/api/agents/a1",
            &h,
            Some(json!({"role": "root"})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, _, v) = send(
            &app,
            Method::PUT,
            "/api/agents/a1",
            &h,
            Some(json!({"password": "new password!"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, _, v) = send(
            &app,
            Method::POST,
            "/api/agents",
            &h,
            Some(json!({"id": "token", "name": "T", "password": "correct horse"})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, _, _) = send(
            &app,
            Method::POST,
            "/api/queues",
            &h,
            Some(json!({"name": "q1"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _, _) = send(
            &app,
            Method::PUT,
            "/api/queues/q1",
            &h,
            Some(json!({"wrap_up_secs": 5})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = send(
            &app,
            Method::PUT,
            "/api/queues/q1/members",
            &h,
            Some(json!(["a1"])),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = send(&app, Method::DELETE, "/api/queues/q1", &h, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = send(&app, Method::DELETE, "/api/agents/sam", &h, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);

        let log = audit_log(&app).await;
        let e = find(&log, "agent_create", "boss");
        assert_eq!(
            (e["subject"].clone(), e["details"]["role"].clone()),
            (json!("sam"), json!("supervisor"))
        );
        assert_eq!(e["ip"], "198.51.100.7");
        let e = find(&log, "role_change", "boss");
        assert_eq!(e["subject"], "a1");
        assert_eq!(e["details"], json!({"from": "agent", "to": "admin"}));
        let updates: Vec<&Value> = log
            .iter()
            .filter(|e| e["action"] == "agent_update")
            .collect();
        assert_eq!(updates.len(), 2, "{log:#?}");
        assert_eq!(updates[0]["details"]["fields"], json!(["password"]));
        assert_eq!(
            find(&log, "queue_update", "boss")["details"]["wrap_up_secs"],
            5
        );
        assert_eq!(
            find(&log, "queue_members", "boss")["details"]["members"],
            json!(["a1"])
        );
        for action in ["queue_create", "queue_delete", "agent_delete"] {
            find(&log, action, "boss");
        }
        let text = serde_json::to_string(&log).unwrap();
        assert!(
            !text.contains("new password!") && !text.contains("correct horse"),
            "{text}"
        );

        // Pages, newest first, keyset on the id.
        let (s, _, first) = send(&app, Method::GET, "/api/audit?limit=3", &[bearer()], None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(first["entries"].as_array().unwrap().len(), 3);
        assert_eq!(first["entries"][0]["action"], "agent_delete");
        let next = first["next"].as_i64().unwrap();
        let (_, _, second) = send(
            &app,
            Method::GET,
            &format!("/api/audit?limit=3&before={next}"),
            &[bearer()],
            None,
        )
        .await;
        assert!(
            second["entries"][0]["id"].as_i64().unwrap() < next,
            "{second}"
        );
        let (s, _, _) = send(
            &app,
            Method::GET,
            "/api/audit?before=yesterday",
            &[bearer()],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // A demotion reaches an open session at its next request;
        // deactivation ends it.
        let (s, h1, v) = login(&app, "a1", "new password!").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let a1 = cookie_of(&h1);
        let (s, _, _) = send(
            &app,
            Method::PUT,
            "/api/agents/a1",
            &h,
            Some(json!({"role": "agent"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, v) = send(
            &app,
            Method::GET,
            "/api/me",
            &[(header::COOKIE, a1.as_str())],
            None,
        )
        .await;
        assert_eq!(
            (s, v["error"].clone()),
            (StatusCode::FORBIDDEN, json!("agents sign in at /agent"))
        );
        db.store
            .update_agent(
                "boss",
                hotline_store::AgentUpdate {
                    active: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (s, _, _) = send(
            &app,
            Method::GET,
            "/api/me",
            &[(header::COOKIE, cookie.as_str())],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}
