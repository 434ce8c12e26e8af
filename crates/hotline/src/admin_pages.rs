//! The admin console's static files (`crates/hotline/assets/admin/`),
//! embedded in the binary: no build step, nothing from a CDN.
//!
//! `GET /admin` is the page (sign-in form, then a shell whose pages are
//! modules built on the JSON API under `/api`); its modules and stylesheet
//! are under `/admin/static/`. Sign-in itself is admin_auth.rs. The CSP
//! allows same-origin files only: nothing inline (the tests check the page
//! has none), so every script and style is a file here.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

macro_rules! assets {
    ($($name:literal => $ctype:literal),* $(,)?) => {
        /// `(file name, content type, bytes)` of every embedded asset.
        pub const ASSETS: &[(&str, &str, &[u8])] = &[
            $(($name, $ctype, include_bytes!(concat!("../assets/admin/", $name)))),*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "admin.css" => "text/css; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "agents.js" => "text/javascript; charset=utf-8",
    "audit.js" => "text/javascript; charset=utf-8",
    "prompts.js" => "text/javascript; charset=utf-8",
    "queues.js" => "text/javascript; charset=utf-8",
    "calls.js" => "text/javascript; charset=utf-8",
    "waveform.js" => "text/javascript; charset=utf-8",
    "voicemail.js" => "text/javascript; charset=utf-8",
    "calls.css" => "text/css; charset=utf-8",
    "flows.js" => "text/javascript; charset=utf-8",
    "flowgraph.js" => "text/javascript; charset=utf-8",
    "flows.css" => "text/css; charset=utf-8",
    "supervisor.js" => "text/javascript; charset=utf-8",
    "reports.js" => "text/javascript; charset=utf-8",
    "charts.js" => "text/javascript; charset=utf-8",
    "funnel.js" => "text/javascript; charset=utf-8",
    "reports.css" => "text/css; charset=utf-8",
    "wallboard.html" => "text/html; charset=utf-8",
    "wallboard.js" => "text/javascript; charset=utf-8",
    "wallboard.css" => "text/css; charset=utf-8",
}

/// `GET /admin` and `GET /admin/static/{file}`, mergeable into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/admin", get(|| async { serve("index.html") }))
        .route("/admin/", get(|| async { serve("index.html") }))
        // The wallboard: a page of its own, for a TV (docs/metrics.md, "Live").
        .route("/admin/wallboard", get(|| async { serve("wallboard.html") }))
        .route(
            "/admin/static/{file}",
            get(|axum::extract::Path(file): axum::extract::Path<String>| async move {
                serve(&file)
            }),
        )
}

fn serve(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, crate::http::CSP),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// A module a page imports but the binary does not embed would 404 and
    /// leave the console blank.
    #[test]
    fn every_imported_module_is_embedded() {
        for (name, _, body) in ASSETS {
            let text = std::str::from_utf8(body).expect("UTF-8");
            for line in text.lines() {
                let line = line.trim();
                let Some(from) = line
                    .strip_prefix("import ")
                    .and_then(|l| l.split(" from ").nth(1))
                else {
                    continue;
                };
                let file = from.trim_matches(|c| c == '\'' || c == '"' || c == ';');
                // The softphone's modules, shared with the supervisor page.
                if let Some(shared) = file.strip_prefix("/agent/static/") {
                    assert!(
                        hotline_webphone::http::asset(shared).is_some(),
                        "{name} imports {file}, which the softphone does not serve"
                    );
                    continue;
                }
                let file = file.trim_start_matches("./");
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == file),
                    "{name} imports {file}, which is not embedded"
                );
            }
            for attr in ["src=\"", "href=\""] {
                for part in text.split(attr).skip(1) {
                    let url = part.split('"').next().unwrap_or("");
                    if let Some(file) = url.strip_prefix("/admin/static/") {
                        assert!(
                            ASSETS.iter().any(|(n, _, _)| *n == file),
                            "{name} links {file}, which is not embedded"
                        );
                    }
                }
            }
        }
    }

    /// Nothing inline for the CSP to block, no CDN.
    #[test]
    fn the_page_has_nothing_inline_or_remote() {
        for (name, _, body) in ASSETS {
            let text = String::from_utf8_lossy(body);
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{name}"
            );
            if name.ends_with(".html") {
                assert!(!text.contains("<style"), "{name}");
                assert!(!text.contains(" style="), "{name}");
                for after in text.split(" on").skip(1) {
                    let word: String = after
                        .chars()
                        .take_while(char::is_ascii_alphabetic)
                        .collect();
                    let inline_handler = !word.is_empty() && after[word.len()..].starts_with('=');
                    assert!(!inline_handler, "{name}: an inline on{word} handler");
                }
                for tag in text.split("<script").skip(1) {
                    assert!(tag.split('>').next().unwrap().contains("src="), "{name}");
                }
            }
        }
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_the_csp() {
        let app: Router = routes();
        for (uri, ctype) in [
            ("/admin", "text/html"),
            ("/admin/static/admin.js", "text/javascript"),
            ("/admin/static/admin.css", "text/css"),
        ] {
            let res = app
                .clone()
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{uri}");
            let h = res.headers();
            assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with(ctype));
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert!(csp.contains("default-src 'self'"), "{csp}");
        }
        let res = app
            .oneshot(
                Request::get("/admin/static/../Cargo.toml")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
