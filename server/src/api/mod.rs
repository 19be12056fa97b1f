//! The JSON API under `/api/v1`, described at `/api/openapi.json` (generated from the handlers'
//! annotations: `crate::replay::openapi`). Every route needs a caller (a login session's cookie,
//! or the administrator's bearer token from `<data_dir>/api-token`) with the route group's
//! access (`crate::replay::auth::Access`). Errors map here, in one place, to a status and a
//! stable machine-readable `code`.

pub(crate) mod enrolment;
pub(crate) mod interactions;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use capture_shared::ids;
use serde::Deserialize;
use serde_json::json;

use crate::clock::Clock;
use crate::store::{ContactFilter, NewAgent, Store, StoreError};

/// The token file inside the data directory.
pub const API_TOKEN_FILE: &str = "api-token";

pub use enrolment::MAX_LABEL as MAX_TOKEN_LABEL;

/// Largest page of the contact list.
pub const MAX_PAGE: i64 = 500;

/// What API handlers reach.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The store.
    pub store: Store,
    /// SHA-256 of the administrator's token.
    pub token_sha256: Arc<[u8; 32]>,
    /// The clock.
    pub clock: Clock,
    /// Notified when the agent directory changes.
    pub directory_changed: Arc<tokio::sync::Notify>,
    /// The call buffer (what agents are recording).
    pub buffer: Arc<crate::recorder::CallBuffer>,
    /// Connected agents.
    pub connections: Arc<crate::recorder::Connections>,
    /// Whether Webex credentials are configured (the adapter runs).
    pub adapter_configured: bool,
    /// Wakes the adapter's workers (a parked recording retried).
    pub recordings_wake: Arc<tokio::sync::Notify>,
    /// Wakes the adapter's poll loop (a backfill requested).
    pub backfill_requested: Arc<tokio::sync::Notify>,
    /// The archive (replayed media is read from it).
    pub archive: crate::ingestion::archive::Archive,
    /// The data directory (the replay's cache of views).
    pub data_dir: std::path::PathBuf,
    /// Replay's media state.
    pub media: Arc<crate::replay::media::MediaState>,
    /// Refused enrolments by address (the enrolment route's throttle).
    pub enrolment_throttle: Arc<enrolment::EnrolmentThrottle>,
}

/// The organisation's enrolment token inside the data directory: what agent installers carry
/// (the MSI's public property) to enrol each desktop.
pub const ENROLMENT_TOKEN_FILE: &str = "enrolment-token";

/// An API error: a status, a stable code, a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "code": self.code, "message": self.message })),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            other => {
                tracing::error!(error = %other, "store error in the API");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

/// The API's routes, by the access each group needs; the login, the enrolment of desktops and
/// the OpenAPI document need none.
pub fn router(state: ApiState) -> Router {
    use crate::replay::auth::{self, Access};
    let group = |routes: Router<ApiState>, access: Access| {
        routes.route_layer(middleware::from_fn_with_state(access, auth::require))
    };
    let administer = Router::new()
        .route("/api/v1/contacts", get(list_contacts))
        .route("/api/v1/contacts/{id}", get(get_contact))
        .route("/api/v1/agents", get(list_agents).post(add_agent))
        .route("/api/v1/agents/{id}", axum::routing::patch(map_agent))
        .merge(enrolment::admin_routes())
        .merge(interactions::admin_routes())
        .merge(crate::replay::admin_routes());
    let authenticated = Router::new()
        .merge(group(administer, Access::Administer))
        .merge(group(
            interactions::replay_routes().merge(crate::replay::replay_routes()),
            Access::Replay,
        ))
        .merge(group(
            interactions::audit_routes().merge(crate::replay::audit_routes()),
            Access::Audit,
        ))
        .merge(group(crate::replay::session_routes(), Access::Session))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    authenticated
        .merge(crate::replay::public_routes())
        .route("/agent/v1/enroll", post(enrolment::enroll_agent))
        .fallback(not_found)
        .with_state(state)
}

/// Unknown `/api` paths answer in the API's error shape.
async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}", uri.path()),
    )
    .into_response()
}

/// Query of `GET /api/v1/contacts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactQuery {
    person: Option<String>,
    agent: Option<String>,
    state: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

fn parse_time(field: &'static str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(Some(ms));
    }
    crate::webex::time::parse_timestamp(value)
        .map(|t| Some(t.0))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("`{field}` must be RFC 3339 or Unix milliseconds"),
            )
        })
}

#[utoipa::path(get, path = "/api/v1/contacts", tag = "administration",
    params(("person" = Option<String>, Query, description = "A Webex person"), ("agent" = Option<String>, Query, description = "An agent id"),
           ("state" = Option<String>, Query, description = "recording, kept, discarded, closed"),
           ("from" = Option<String>, Query, description = "Started at or after"), ("to" = Option<String>, Query, description = "Started before"),
           ("limit" = Option<i64>, Query, description = "Page size"), ("offset" = Option<i64>, Query, description = "Page offset")),
    responses((status = 200, description = "`{items: [contact]}`")))]
pub(crate) async fn list_contacts(
    State(state): State<ApiState>,
    query: Result<Query<ContactQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    if let Some(s) = query.state.as_deref()
        && !["recording", "kept", "discarded", "closed"].contains(&s)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "`state` is recording, kept, discarded or closed",
        ));
    }
    let person = match query.person.as_deref() {
        Some(p) => Some(
            ids::person_id(p)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.to_string()))?
                .to_string(),
        ),
        None => None,
    };
    let filter = ContactFilter {
        person,
        agent: query.agent,
        state: query.state,
        from_ms: parse_time("from", query.from.as_deref())?,
        to_ms: parse_time("to", query.to.as_deref())?,
        limit: query.limit.unwrap_or(50).clamp(1, MAX_PAGE),
        offset: query.offset.unwrap_or(0).max(0),
    };
    let contacts = state.store.contacts(&filter).await?;
    Ok(
        Json(json!({ "items": contacts, "limit": filter.limit, "offset": filter.offset }))
            .into_response(),
    )
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "administration",
    params(("id" = String, Path, description = "The contact")),
    responses((status = 200, description = "The contact, its calls, events, gaps and audit"), (status = 404, description = "No such contact")))]
pub(crate) async fn get_contact(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.contact(&id).await? {
        Some(contact) => {
            let audit: Vec<_> = state
                .store
                .audit_for(&id)
                .await?
                .into_iter()
                .map(|(at_ms, actor, action, detail)| json!({ "at_ms": at_ms, "actor": actor, "action": action, "detail": detail }))
                .collect();
            let mut body = serde_json::to_value(contact).map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?;
            body["audit"] = json!(audit);
            Ok(Json(body).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no contact {id}"),
        )),
    }
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "administration",
    responses((status = 200, description = "`{items: [agent]}` with connection state")))]
pub(crate) async fn list_agents(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let connected: std::collections::HashMap<_, _> =
        state.connections.snapshot().into_iter().collect();
    let items: Vec<serde_json::Value> = state
        .store
        .agents()
        .await?
        .into_iter()
        .map(|entry| {
            let connection = connected.get(&entry.id);
            let recording = state.buffer.recordings(entry.id);
            let mut item = json!(entry);
            item["connected"] = json!(connection.is_some());
            item["connection"] = json!(connection);
            item["state"] = json!(match (connection.is_some(), recording.is_empty()) {
                (false, _) => "offline",
                (true, true) => "idle",
                (true, false) => "recording",
            });
            item["recording"] = json!(recording);
            item
        })
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// Body of `POST /api/v1/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddAgent {
    name: String,
    person_id: Option<String>,
    email: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/agents", tag = "administration",
    responses((status = 201, description = "The agent and its one-time credential"), (status = 409, description = "Already exists")))]
pub(crate) async fn add_agent(
    State(state): State<ApiState>,
    body: Result<Json<AddAgent>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
    let agent = new_agent(&body.name, body.person_id.as_deref(), body.email.as_deref())
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message))?;
    let (entry, credential) = state.store.add_agent(&agent, state.clock.now_ms()).await?;
    state.directory_changed.notify_one();
    // The credential is shown once, here; only its hash is stored.
    let mut body = json!(entry);
    body["credential"] = json!(credential);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Body of `PATCH /api/v1/agents/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MapAgent {
    person_id: Option<String>,
    email: Option<String>,
}

/// Maps an agent (e.g. one enrolled without an email) to its Webex person and/or email.
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "administration",
    params(("id" = String, Path, description = "The agent")),
    responses((status = 200, description = "The agent, mapped"), (status = 404, description = "No such agent")))]
pub(crate) async fn map_agent(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<MapAgent>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
    let agent = uuid::Uuid::parse_str(&id)
        .map(ids::AgentId)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no agent {id}")))?;
    let mapping = new_agent("mapping", body.person_id.as_deref(), body.email.as_deref())
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message))?;
    let found = state
        .store
        .map_agent(
            agent,
            mapping.person,
            mapping.email.as_deref(),
            state.clock.now_ms(),
        )
        .await?;
    if !found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no agent {id}"),
        ));
    }
    state.directory_changed.notify_one();
    let entry = state
        .store
        .agents()
        .await?
        .into_iter()
        .find(|a| a.id == agent);
    Ok(Json(json!(entry)).into_response())
}

/// Validates a directory entry (shared with `capture-server agent add`).
pub fn new_agent(
    name: &str,
    person: Option<&str>,
    email: Option<&str>,
) -> Result<NewAgent, String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err("`name` must be 1–200 characters".into());
    }
    let person = person
        .map(ids::person_id)
        .transpose()
        .map_err(|e| e.to_string())?;
    let email = email
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    if email
        .as_deref()
        .is_some_and(|e| !e.contains('@') || e.len() > 320)
    {
        return Err("`email` is not an email address".into());
    }
    if person.is_none() && email.is_none() {
        return Err("give the agent's Webex person id, email, or both".into());
    }
    Ok(NewAgent {
        name: name.to_owned(),
        person,
        email,
    })
}
