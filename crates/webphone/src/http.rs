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
    "labels.js" => "text/javascript; charset=utf-8",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A module a page file imports but the binary does not embed would
    /// 404 and leave the page blank.
    #[test]
    fn every_imported_module_is_embedded() {
        for (name, _, body) in ASSETS.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            let text = std::str::from_utf8(body).expect("UTF-8 module");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(target) = line.split("from './").nth(1) else {
                    continue;
                };
                let file = target.split('\'').next().unwrap_or_default();
                assert!(asset(file).is_some(), "{name} imports {file}, not embedded");
            }
        }
        assert!(asset("labels.js").is_some());
    }
}
