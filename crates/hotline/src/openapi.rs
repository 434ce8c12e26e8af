//! The OpenAPI 3 document of the admin API, generated from the
//! `#[utoipa::path]` attributes on the handlers.
//!
//! | Method | Path | |
//! |---|---|---|
//! | GET | `/api/openapi.json` | this document |
//!
//! Mounted by serve.rs through `admin::routes_with`, so behind `require_admin` like
//! every other `/api` route: the document describes a surface only a signed
//! in user can reach. The test below reads the router sources and checks
//! that every registered (method, path) is documented and nothing else is.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hotline admin API",
        description = "Agents, queues, callbacks, flows, calls, prompts, recordings and voicemails. \
            Every route needs the admin bearer token or a `hotline_admin` session cookie."
    ),
    paths(
        crate::openapi::document,
        crate::admin_auth::me,
        crate::audit::list,
        crate::admin::list_agents,
        crate::admin::create_agent,
        crate::admin::agent_states,
        crate::admin::get_agent,
        crate::admin::update_agent,
        crate::admin::delete_agent,
        crate::admin::list_queues,
        crate::admin::create_queue,
        crate::admin::get_queue,
        crate::admin::update_queue,
        crate::admin::delete_queue,
        crate::admin::set_members,
        crate::admin::list_callbacks,
        crate::admin::get_callback,
        crate::admin::cancel_callback,
        crate::recording_api::get_recording,
        crate::flows_api::list,
        crate::flows_api::validate,
        crate::flows_api::graph,
        crate::flows_api::versions,
        crate::flows_api::save,
        crate::flows_api::version,
        crate::flows_api::publish,
        crate::flows_api::rollback,
        crate::flows_api::diff,
        crate::flows_api::simulate,
        crate::calls_api::search,
        crate::calls_api::detail,
        crate::reports_api::summary,
        crate::reports_api::series,
        crate::reports_api::agents,
        crate::reports_api::funnel,
        crate::live::stream,
        crate::live::snapshot,
        crate::prompts_api::list,
        crate::prompts_api::fetch,
        crate::prompts_api::upload,
        crate::voicemail_api::peaks,
        crate::voicemail_api::list,
        crate::voicemail_api::audio,
        crate::voicemail_api::set_handled,
        crate::edge_api::list,
        crate::edge_api::lift,
    ),
    modifiers(&Security),
    security(("bearer" = []), ("cookie" = [])),
)]
pub struct ApiDoc;

/// The bearer token and the session cookie of `require_admin`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("hotline_admin"))),
        );
    }
}

/// The generated document, version from Cargo.
pub fn spec() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    summary = "This OpenAPI 3 document",
    responses(
        (status = 200, description = "This OpenAPI 3 document"),
        (status = 401, description = "Not signed in"),
    ),
)]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(spec())
}

/// The route serving the document, for `admin::routes_with`.
pub fn routes() -> axum::Router<crate::admin::AdminState> {
    axum::Router::new().route("/api/openapi.json", axum::routing::get(document))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use hotline_store::testing::fresh_db;
    use serde_json::Value;
    use std::collections::BTreeSet;
    use tower::ServiceExt;

    /// The modules whose `routes()` build the `/api` surface, by name.
    const SOURCES: &[(&str, &str)] = &[
        ("admin", include_str!("admin.rs")),
        ("openapi", include_str!("openapi.rs")),
        ("audit", include_str!("audit.rs")),
        ("flows_api", include_str!("flows_api.rs")),
        ("calls_api", include_str!("calls_api.rs")),
        ("reports_api", include_str!("reports_api.rs")),
        ("live", include_str!("live.rs")),
        ("prompts_api", include_str!("prompts_api.rs")),
        ("voicemail_api", include_str!("voicemail_api.rs")),
        ("recording_api", include_str!("recording_api.rs")),
        ("edge_api", include_str!("edge_api.rs")),
    ];

    const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

    /// The code of a source file before its tests, without `//` comments.
    fn code(src: &str) -> String {
        let src = src.split("#[cfg(test)]\nmod tests").next().unwrap_or(src);
        src.lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every `.route("/api/...", METHOD(handler)...)` registration in the
    /// source as (method, path), axum's `{*rest}` written `{rest}` as
    /// OpenAPI has it.
    fn registered(src: &str) -> BTreeSet<(String, String)> {
        let code = code(src);
        let mut found = BTreeSet::new();
        let mut rest = code.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            // The call's argument text, up to its closing parenthesis.
            let mut depth = 1;
            let mut end = rest.len();
            for (j, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &rest[..end];
            let Some(q0) = args.find('"') else { continue };
            let Some(q1) = args[q0 + 1..].find('"') else {
                continue;
            };
            let path = &args[q0 + 1..q0 + 1 + q1];
            if !path.starts_with("/api/") {
                continue;
            }
            let path = path.replace("{*", "{");
            let after = &args[q0 + 1 + q1 + 1..];
            let bytes = after.as_bytes();
            for m in METHODS {
                let pat = format!("{m}(");
                let mut from = 0;
                while let Some(k) = after[from..].find(&pat) {
                    let at = from + k;
                    // A method call, not the tail of a longer name.
                    let before = if at == 0 { b' ' } else { bytes[at - 1] };
                    if !(before.is_ascii_alphanumeric() || before == b'_') {
                        found.insert((m.to_string(), path.clone()));
                    }
                    from = at + pat.len();
                }
            }
        }
        found
    }

    /// Every (method, path) of the generated document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(spec()).unwrap();
        let mut found = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if item.get(*m).is_some() {
                    found.insert((m.to_string(), path.clone()));
                }
            }
        }
        found
    }

    /// Issue 11: every route is in the document, and the document has no
    /// route the router lacks.
    #[test]
    fn openapi_has_every_route_and_no_other() {
        // Every module admin::routes merges is one scanned here.
        let admin = code(SOURCES[0].1);
        let mut merged = admin.as_str();
        while let Some(i) = merged.find("crate::") {
            merged = &merged[i + "crate::".len()..];
            let name = merged.split("::routes(").next().unwrap_or("");
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                assert!(
                    SOURCES.iter().any(|(n, _)| *n == name),
                    "admin::routes merges {name}::routes, which this test does not scan"
                );
            }
        }

        let routes: BTreeSet<_> = SOURCES.iter().flat_map(|(_, s)| registered(s)).collect();
        // The scanner itself sees the routes it must (a guard against it
        // silently finding nothing).
        for r in [
            ("get", "/api/openapi.json"),
            ("delete", "/api/agents/{id}"),
            ("put", "/api/prompts/{lang}/{name}"),
            ("post", "/api/callbacks/{id}/cancel"),
            ("get", "/api/audit"),
        ] {
            assert!(
                routes.contains(&(r.0.to_string(), r.1.to_string())),
                "scanner missed {r:?}"
            );
        }
        let documented = documented();
        let missing: Vec<_> = routes.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes missing from the document: {missing:?}"
        );
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            extra.is_empty(),
            "documented routes the router lacks: {extra:?}"
        );
    }

    /// The document is served, behind the same authentication as the rest.
    #[tokio::test]
    async fn openapi_json_is_served_to_signed_in_users() {
        let db = fresh_db().await;
        db.store.migrate().await.unwrap();
        const TOKEN: &str = "s3cret-admin-token-for-tests";
        let app: axum::Router = crate::admin::routes_with(
            crate::admin::AdminState::new(db.store.clone(), Some(TOKEN)),
            routes(),
        );
        let get = |auth: bool| {
            let mut req = Request::builder().uri("/api/openapi.json");
            if auth {
                req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
            }
            app.clone().oneshot(req.body(Body::empty()).unwrap())
        };
        let res = get(false).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        let res = get(true).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3."),
            "{}",
            doc["openapi"]
        );
        assert_eq!(doc["info"]["title"], "Hotline admin API");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["paths"]["/api/agents"]["get"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["securitySchemes"]["cookie"].is_object());
    }
}
