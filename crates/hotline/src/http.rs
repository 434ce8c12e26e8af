//! The HTTP listener: health, the admin API and the agent softphone.

use std::net::{IpAddr, SocketAddr};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hotline_call::ActiveCalls;
use serde_json::{Value, json};
use tokio::sync::watch;

/// The peer's address, when the listener recorded it
/// (`into_make_service_with_connect_info`); `None` in tests without it.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// What the HTTP handlers read.
#[derive(Clone)]
pub struct AppState {
    pub active: ActiveCalls,
    pub draining: watch::Receiver<bool>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// 200 while taking calls; 503 once draining, so a balancer stops sending new ones.
async fn healthz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let draining = *st.draining.borrow();
    let code = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let status = if draining { "draining" } else { "ok" };
    (
        code,
        Json(json!({ "status": status, "active_calls": st.active.get() })),
    )
}

/// The Content-Security-Policy of every answer that does not bring its
/// own: same-origin scripts, styles, sockets and media only (no inline
/// script or style), never framed.
pub const CSP: &str = "default-src 'self'; connect-src 'self'; media-src 'self' blob:; \
     img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers (docs/security.md, "Web") to every answer of
/// `app` — routes, fallbacks, errors alike. A handler's own CSP stays.
pub fn with_security_headers(app: Router) -> Router {
    app.layer(axum::middleware::from_fn(security_headers))
}

async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;

    #[tokio::test]
    async fn security_headers_on_every_answer() {
        let (_tx, draining) = watch::channel(false);
        let app = with_security_headers(
            router(AppState {
                active: ActiveCalls::default(),
                draining,
            })
            .merge(hotline_webphone::http::asset_routes()),
        );
        for uri in [
            "/healthz",
            "/agent",
            "/agent/static/app.js",
            "/no-such-page",
        ] {
            let res = app
                .clone()
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let h = res.headers();
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{uri}: {csp}");
            assert!(!csp.contains("unsafe-inline"), "{uri}: {csp}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{uri}");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{uri}");
        }
    }

    /// The page has no inline script or style for the CSP to block.
    #[test]
    fn the_page_has_nothing_inline() {
        for (name, _, body) in hotline_webphone::http::ASSETS {
            let text = String::from_utf8_lossy(body);
            if name.ends_with(".html") {
                assert!(!text.contains("<style"), "{name}");
                assert!(!text.contains(" style="), "{name}");
                for tag in text.split("<script").skip(1) {
                    assert!(tag.split('>').next().unwrap().contains("src="), "{name}");
                }
                assert!(!text.contains(" onclick="), "{name}");
            }
        }
    }
}
