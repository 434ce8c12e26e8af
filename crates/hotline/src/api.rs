//! What every admin API module shares (no module of the API imports
//! another's router): the error answer, the JSON body extractor, who is
//! asking and what their role allows, the lockout answer.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// What a signed-in caller of the API may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including publishing flows and managing users.
    Admin,
    /// Reads everything; cannot publish flows or manage users.
    Supervisor,
    /// The agent desk only; refused by the admin API.
    Agent,
}

impl Role {
    /// May publish or roll back flows, upload prompts, manage agents, queues and users.
    pub fn can_change(self) -> bool {
        matches!(self, Role::Admin)
    }

    /// May read the admin API (calls, recordings, flows, reports).
    pub fn can_read(self) -> bool {
        matches!(self, Role::Admin | Role::Supervisor)
    }
}

/// Who made an admin API request: put into the request's extensions by the
/// authentication layer, read by handlers with `Extension<Principal>` (for the
/// audit log, a version's author, and role checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The user's login name; `token` for the bearer admin token.
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The bearer admin token (automation): an admin named `token`.
    pub fn token() -> Self {
        Principal {
            name: "token".into(),
            role: Role::Admin,
        }
    }

    /// 403 unless the principal may change things (publish, manage users).
    pub fn require_change(&self) -> Result<(), ApiError> {
        if self.role.can_change() {
            Ok(())
        } else {
            Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "{} `{}` may not change this",
                    role_name(self.role),
                    self.name
                ),
            ))
        }
    }
}

impl From<hotline_store::Role> for Role {
    fn from(r: hotline_store::Role) -> Self {
        match r {
            hotline_store::Role::Admin => Role::Admin,
            hotline_store::Role::Supervisor => Role::Supervisor,
            hotline_store::Role::Agent => Role::Agent,
        }
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Supervisor => "supervisor",
        Role::Agent => "agent",
    }
}

/// An error answer: `{"error": message}` with its status.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::Conflict { .. } => StatusCode::CONFLICT,
            _ => {
                tracing::error!(error = %e, "admin API: store failed");
                return ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into());
            }
        };
        ApiError(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, e.body_text())
    }
}

/// `Json` whose rejections are 400 `{"error": …}` like every other error.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(Body(v))
    }
}

/// 429 `{"error": …}` with `Retry-After`, for a locked-out login.
pub fn too_many_attempts(wait: std::time::Duration) -> Response {
    let secs = crate::login_limit::retry_after_secs(wait);
    let mut res = ApiError(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed logins: try again in {secs} seconds"),
    )
    .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}
