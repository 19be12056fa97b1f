//! `POST /access_token` (OAuth refresh) and `POST /applications/{id}/token` (Service App).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Caller, query, webex_error};
use crate::auth::GrantError;
use crate::clock;
use crate::state::{Shared, lock};

fn grant_error(shared: &Shared, error: GrantError) -> Response {
    let (status, message) = match error {
        GrantError::InvalidClient => (StatusCode::UNAUTHORIZED, "Invalid client id or secret."),
        GrantError::InvalidGrant => (
            StatusCode::BAD_REQUEST,
            "The refresh token provided is invalid or has expired.",
        ),
        GrantError::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "Unsupported grant type."),
    };
    let body = json!({
        "error": error.code(),
        "error_description": message,
        "message": message,
        "errors": [{ "description": message }],
        "trackingId": shared.tracking_id(),
    });
    (status, axum::Json(body)).into_response()
}

/// Mints a token pair for `user`.
fn mint(shared: &Shared, user: uuid::Uuid) -> Response {
    let access = format!("{}_PF84_{}", shared.ids.token(64), shared.org_id);
    let refresh = format!("{}_PF84_{}", shared.ids.token(64), shared.org_id);
    let answer = lock(&shared.auth).grant(user, access, refresh, clock::now());
    axum::Json(answer).into_response()
}

/// `POST /access_token` with a form body. Each refresh returns a new refresh token; the old one
/// stays valid until its own expiry.
pub(crate) async fn access_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let pairs = query::parse(&String::from_utf8_lossy(&body));
    let field = |name| query::get(&pairs, name);
    let checked = lock(&shared.auth).check_refresh(
        field("grant_type"),
        field("client_id"),
        field("client_secret"),
        field("refresh_token"),
        clock::now(),
    );
    match checked {
        Ok(user) => mint(&shared, user),
        Err(error) => grant_error(&shared, error),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceAppRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    target_org_id: Option<String>,
}

/// `POST /applications/{id}/token`: needs the compliance officer's bearer and the app's client
/// credentials; the tokens act as that officer (our simplification of the app's machine account).
/// `targetOrgId` may be the hydra or the raw org id.
pub(crate) async fn service_app_token(
    State(shared): State<Arc<Shared>>,
    Extension(Caller(user)): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if user != shared.admin.id {
        return webex_error(
            &shared,
            StatusCode::FORBIDDEN,
            "Only an administrator may request service app tokens.",
        );
    }
    if id != shared.app_hydra() && id != shared.app_id.to_string() {
        return webex_error(&shared, StatusCode::NOT_FOUND, "Unknown application.");
    }
    let Ok(request) = serde_json::from_slice::<ServiceAppRequest>(&body) else {
        return webex_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        );
    };
    let org = request.target_org_id.unwrap_or_default();
    if org != shared.org_hydra() && org != shared.org_id.to_string() {
        return webex_error(&shared, StatusCode::BAD_REQUEST, "Unknown targetOrgId.");
    }
    let checked = lock(&shared.auth).check_client(
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    );
    match checked {
        Ok(()) => mint(&shared, shared.admin.id),
        Err(error) => grant_error(&shared, error),
    }
}
