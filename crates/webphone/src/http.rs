//! The softphone's static files, embedded in the binary.
//!
//! `GET /agent` is the page; its modules and stylesheet are under
//! `/agent/static/`. The lead's router owns `/agent/login`, `/agent/me`,
//! `/agent/logout` and `/agent/ws`.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

macro_rules! assets {
    ($($name:literal => $ctype:literal),* $(,)?) => {
        /// `(file name, content type, bytes)` of every embedded asset.
        pub const ASSETS: &[(&str, &str, &[u8])] = &[
            $(($name, $ctype, include_bytes!(concat!("../assets/", $name)))),*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "signalling.js" => "text/javascript; charset=utf-8",
    "media.js" => "text/javascript; charset=utf-8",
    "ring.js" => "text/javascript; charset=utf-8",
}

/// An embedded asset by file name (`"app.js"`): content type and bytes.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, b)| (*t, *b))
}

/// `GET /agent` and `GET /agent/static/{file}`; merge into the gateway's
/// router: `.merge(hotline_webphone::http::asset_routes())`.
pub fn asset_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/agent", get(|| async { serve("index.html") }))
        .route(
            "/agent/static/{file}",
            get(|axum::extract::Path(file): axum::extract::Path<String>| async move {
                serve(&file)
            }),
        )
}

fn serve(name: &str) -> Response {
    match asset(name) {
        Some((ctype, body)) => (
            [
                (header::CONTENT_TYPE, ctype),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; connect-src 'self'; media-src 'self' blob:; \
                     img-src 'self' data:; frame-ancestors 'none'",
                ),
            ],
            body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
