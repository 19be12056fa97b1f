//! The JSON API under `/api/v1`: contacts and the agent directory. Until logins and roles exist
//! (the replay module), every route requires the administrator's bearer token, generated on first
//! start into `<data_dir>/api-token`. Errors map here, in one place, to a status and a stable
//! machine-readable `code`.

mod interactions;

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use capture_shared::ids;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::store::{ContactFilter, NewAgent, Store, StoreError};

/// The token file inside the data directory.
pub const API_TOKEN_FILE: &str = "api-token";

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
    /// SHA-256 of the organisation's enrolment token (`<data_dir>/enrolment-token`).
    pub enrolment_sha256: Arc<[u8; 32]>,
    /// Whether Webex credentials are configured (the adapter runs).
    pub adapter_configured: bool,
    /// Wakes the adapter's workers (a parked recording retried).
    pub recordings_wake: Arc<tokio::sync::Notify>,
    /// Wakes the adapter's poll loop (a backfill requested).
    pub backfill_requested: Arc<tokio::sync::Notify>,
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
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
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

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/contacts", get(list_contacts))
        .route("/api/v1/contacts/{id}", get(get_contact))
        .route("/api/v1/agents", get(list_agents).post(add_agent))
        .route("/api/v1/agents/{id}", axum::routing::patch(map_agent))
        .merge(interactions::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route("/agent/v1/enroll", post(enroll_agent))
        .with_state(state)
}

/// Body of `POST /agent/v1/enroll`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Enroll {
    token: String,
    machine: String,
    os_user: String,
    email: Option<String>,
}

/// Enrols a desktop with the organisation's token: a new agent entry and its credential.
async fn enroll_agent(
    State(state): State<ApiState>,
    body: Result<Json<Enroll>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
    // Digests are compared, so timing reveals nothing about the token.
    if Sha256::digest(body.token.trim().as_bytes()).as_slice() != state.enrolment_sha256.as_slice()
    {
        tracing::warn!(
            machine = body.machine,
            "enrolment with a wrong token refused"
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_enrolment_token",
            "the enrolment token is not valid",
        ));
    }
    let name = format!("{}@{}", body.os_user.trim(), body.machine.trim());
    // A desktop may enrol before its Webex email is known (a shared PC, an installer without the
    // property): it connects, and records once its person is mapped.
    let agent = match body.email.as_deref() {
        Some(email) => new_agent(&name, None, Some(email)),
        None => new_agent(&name, None, Some("unknown@invalid")).map(|mut agent| {
            agent.email = None;
            agent
        }),
    }
    .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message))?;
    let now = state.clock.now_ms();
    let (entry, credential) = state.store.add_agent(&agent, now).await?;
    state
        .store
        .audit_event(
            now,
            "enrolment",
            "enrol_agent",
            &entry.id.to_string(),
            Some(&name),
        )
        .await?;
    state.directory_changed.notify_one();
    tracing::info!(agent = %entry.id, name, "agent enrolled");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "agent_id": entry.id, "credential": credential })),
    )
        .into_response())
}

async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        // Digests are compared, so timing reveals nothing about the token.
        Some(token)
            if Sha256::digest(token.trim().as_bytes()).as_slice()
                == state.token_sha256.as_slice() =>
        {
            next.run(request).await
        }
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "the bearer token is not valid",
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "an `Authorization: Bearer` token is required",
        )
        .into_response(),
    }
}

/// Query of `GET /api/v1/contacts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactQuery {
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

async fn list_contacts(
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

async fn get_contact(
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

async fn list_agents(State(state): State<ApiState>) -> Result<Response, ApiError> {
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
struct AddAgent {
    name: String,
    person_id: Option<String>,
    email: Option<String>,
}

async fn add_agent(
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
struct MapAgent {
    person_id: Option<String>,
    email: Option<String>,
}

/// Maps an agent (e.g. one enrolled without an email) to its Webex person and/or email.
async fn map_agent(
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
