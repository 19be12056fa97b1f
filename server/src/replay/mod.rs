//! Replay: what supervisors and compliance officers use. Logins and roles ([`auth`]), users and
//! the audit log (here), an interaction's timeline ([`timeline`]), its media with range requests
//! and export ([`media`]), the OpenAPI document ([`openapi`]) and the web page ([`ui`], embedded in
//! the binary).

pub mod auth;
pub mod media;
pub mod openapi;
pub mod timeline;
pub mod ui;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::api::{ApiError, ApiState};
use crate::store::AuditFilter;
use auth::{Caller, Role};

/// The login, the OpenAPI document and the page (no caller needed).
pub fn public_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/login", post(auth::login))
        .route("/api/openapi.json", get(openapi::document))
        .merge(ui::routes())
}

/// The caller's own session.
pub fn session_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/me", get(auth::whoami))
        .route("/api/v1/logout", post(auth::logout))
}

/// Replay: timeline, media, export.
pub fn replay_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/interactions/{id}/timeline", get(get_timeline))
        .route("/api/v1/interactions/{id}/media", get(media::media))
        .route("/api/v1/interactions/{id}/export", get(media::export))
}

/// The audit log.
pub fn audit_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/audit", get(list_audit))
        .route("/api/v1/audit/verify", get(verify_audit))
}

/// Users.
pub fn admin_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/users", get(list_users).post(add_user))
        .route(
            "/api/v1/users/{username}",
            axum::routing::patch(update_user),
        )
}

fn bad_body(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message)
}

/// `GET /api/v1/interactions/{id}/timeline`: markers, legs, screens and blanks for the player.
#[utoipa::path(get, path = "/api/v1/interactions/{id}/timeline", tag = "replay",
    params(("id" = String, Path, description = "The interaction")),
    responses((status = 200, body = timeline::Timeline), (status = 404, description = "No such interaction")))]
pub async fn get_timeline(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<timeline::Timeline>, ApiError> {
    let Some((interaction, recordings)) = state.store.interaction(&id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no interaction {id}"),
        ));
    };
    let agents = state.store.agents().await?;
    let mut contacts = Vec::new();
    for contact in &interaction.contacts {
        if let Some(detail) = state.store.contact(contact).await? {
            let name = agents
                .iter()
                .find(|a| {
                    a.person_id
                        .as_ref()
                        .is_some_and(|p| p.to_string() == detail.summary.person_id)
                })
                .map(|a| a.name.clone());
            contacts.push((detail, name));
        }
    }
    let events = state.store.interaction_events(&id).await?;
    Ok(Json(timeline::build(
        &interaction,
        &recordings,
        &contacts,
        &events,
    )))
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this actor.
    actor: Option<String>,
    /// Only this action (`login`, `search`, `replay`, `export`, `delete_interaction`, …).
    action: Option<String>,
    /// Only this subject.
    subject: Option<String>,
    /// Entries before this sequence number (the next page of older entries).
    before: Option<i64>,
    /// Page size (1–500, default 100).
    limit: Option<i64>,
}

/// `GET /api/v1/audit`: the audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "`{items: [AuditEntry], next_before}`")))]
pub async fn list_audit(
    State(state): State<ApiState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, crate::api::MAX_PAGE);
    let items = state
        .store
        .audit_entries(&AuditFilter {
            actor: query.actor.filter(|s| !s.is_empty()),
            action: query.action.filter(|s| !s.is_empty()),
            subject: query.subject.filter(|s| !s.is_empty()),
            before_seq: query.before,
            limit,
        })
        .await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({ "items": items, "next_before": next })).into_response())
}

/// `GET /api/v1/audit/verify`: checks the hash chain.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "`{entries, head, broken: null | {seq, reason}}`")))]
pub async fn verify_audit(State(state): State<ApiState>) -> Result<Response, ApiError> {
    Ok(Json(state.store.verify_audit().await?).into_response())
}

/// `GET /api/v1/users`.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "`{items: [{username, role, created_ms, disabled}]}`")))]
pub async fn list_users(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let users = state.store.users().await?;
    Ok(
        Json(json!({ "items": users.iter().map(auth::user_json).collect::<Vec<_>>() }))
            .into_response(),
    )
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name (letters, digits, `.`, `_`, `-`, `@`; 1–64).
    pub username: String,
    /// Password (at least 12 characters).
    pub password: String,
    /// Role.
    pub role: Role,
}

/// Checks a login name.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err("a user name is 1–64 letters, digits, `.`, `_`, `-` or `@`".into())
    }
}

async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))
}

/// `POST /api/v1/users`: adds a user (audited).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, description = "Created"), (status = 400, description = "Bad name or weak password"),
              (status = 409, description = "The name is taken")))]
pub async fn add_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<NewUser>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| bad_body(e.body_text()))?;
    check_username(&body.username).map_err(bad_body)?;
    auth::check_new_password(&body.password).map_err(bad_body)?;
    let hashed = hash(body.password).await?;
    let user = state
        .store
        .add_user(
            &body.username,
            &hashed,
            body.role.as_str(),
            &caller.actor,
            state.clock.now_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(auth::user_json(&user))).into_response())
}

/// Body of `PATCH /api/v1/users/{username}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// A new password (ends the user's sessions).
    pub password: Option<String>,
    /// A new role (ends the user's sessions).
    pub role: Option<Role>,
    /// Disable (ends the user's sessions) or enable.
    pub disabled: Option<bool>,
}

/// `PATCH /api/v1/users/{username}`: password, role, disabled (audited).
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", request_body = UserChange,
    params(("username" = String, Path, description = "The user")),
    responses((status = 204, description = "Changed"), (status = 404, description = "No such user")))]
pub async fn update_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
    body: Result<Json<UserChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| bad_body(e.body_text()))?;
    if caller.actor == username && (body.disabled == Some(true) || body.role.is_some()) {
        return Err(bad_body(
            "administrators do not disable themselves or change their own role",
        ));
    }
    let hashed = match body.password {
        Some(password) => {
            auth::check_new_password(&password).map_err(bad_body)?;
            Some(hash(password).await?)
        }
        None => None,
    };
    let changed = state
        .store
        .update_user(
            &username,
            hashed.as_deref(),
            body.role.map(Role::as_str),
            body.disabled,
            &caller.actor,
            state.clock.now_ms(),
        )
        .await?;
    if changed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no user {username}"),
        ))
    }
}
