//! Enrolment: desktops trade an enrolment token for their own agent id and credential
//! (`POST /agent/v1/enroll`); administrators create tokens with an expiry and a use count, list
//! and revoke them (`/api/v1/enrolment-tokens`, or `capture-server enrolment ...`), with effect
//! on the next enrolment, without a restart.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::{ApiError, ApiState, new_agent};
use capture_shared::protocol::RefusalCode;

use crate::replay::auth::Caller;

/// Longest label of a token.
pub const MAX_LABEL: usize = 200;

/// Refused enrolments one address may make within [`FAILURE_WINDOW_MS`]; past that every
/// enrolment from it is refused with 429 until the window moves on. Only failures count, so a
/// rollout of thousands of desktops behind one proxy is not slowed; tokens are 256-bit random,
/// so this bounds the load of a flood, not the odds of a guess.
pub const MAX_FAILURES: usize = 10;

/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW_MS: i64 = 60_000;

/// Addresses remembered at most (the oldest failures go first past this).
const MAX_ADDRESSES: usize = 10_000;

/// Recent refused enrolments by address.
#[derive(Debug, Default)]
pub struct EnrolmentThrottle {
    failures: std::sync::Mutex<HashMap<IpAddr, VecDeque<i64>>>,
}

impl EnrolmentThrottle {
    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<i64>>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `address` must wait, if it made too many refused enrolments lately.
    fn retry_after_ms(&self, address: IpAddr, now_ms: i64) -> Option<i64> {
        let mut failures = self.failures();
        let recent = failures.get_mut(&address)?;
        while recent
            .front()
            .is_some_and(|t| *t <= now_ms - FAILURE_WINDOW_MS)
        {
            recent.pop_front();
        }
        if recent.is_empty() {
            failures.remove(&address);
            return None;
        }
        (recent.len() >= MAX_FAILURES).then(|| {
            recent
                .front()
                .map_or(1, |t| t + FAILURE_WINDOW_MS - now_ms)
                .max(1)
        })
    }

    fn failed(&self, address: IpAddr, now_ms: i64) {
        let mut failures = self.failures();
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&address) {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| *t > now_ms - FAILURE_WINDOW_MS)
            });
        }
        failures.entry(address).or_default().push_back(now_ms);
    }
}

/// The administrators' routes.
pub(crate) fn admin_routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/api/v1/enrolment-tokens",
            get(list_enrolment_tokens).post(create_enrolment_token),
        )
        .route(
            "/api/v1/enrolment-tokens/{id}/revoke",
            post(revoke_enrolment_token),
        )
        .route("/api/v1/agents/{id}/revoke", post(revoke_agent))
        .route("/api/v1/agents/{id}/rotate", post(rotate_agent))
}

fn no_agent(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no agent {id}"))
}

fn agent_id(id: &str) -> Result<capture_shared::ids::AgentId, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(capture_shared::ids::AgentId)
        .map_err(|_| no_agent(id))
}

/// Revokes an agent's credential: it is refused from now on, and its open connection is
/// closed with `bad_credential` at once. `rotate` gives it a new one.
#[utoipa::path(post, path = "/api/v1/agents/{id}/revoke", tag = "administration",
    params(("id" = String, Path, description = "The agent")),
    responses((status = 200, description = "Revoked; `disconnected` says whether a connection was closed"),
        (status = 404, description = "No such agent")))]
pub(crate) async fn revoke_agent(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let agent = agent_id(&id)?;
    let now = state.clock.now_ms();
    if !state
        .store
        .revoke_agent_credential(agent, &caller.actor, now)
        .await?
    {
        return Err(no_agent(&id));
    }
    let disconnected = state.connections.disconnect(
        agent,
        RefusalCode::BadCredential,
        "this agent's credential was revoked",
    );
    tracing::info!(%agent, actor = caller.actor, disconnected, "agent credential revoked");
    Ok(Json(json!({ "id": agent, "revoked": true, "disconnected": disconnected })).into_response())
}

/// Gives an agent a new credential (shown once, in this answer); the old one is refused from
/// now on and its open connection closed.
#[utoipa::path(post, path = "/api/v1/agents/{id}/rotate", tag = "administration",
    params(("id" = String, Path, description = "The agent")),
    responses((status = 200, description = "`{id, credential}`"), (status = 404, description = "No such agent")))]
pub(crate) async fn rotate_agent(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let agent = agent_id(&id)?;
    let now = state.clock.now_ms();
    let Some(credential) = state
        .store
        .rotate_agent_credential(agent, &caller.actor, now)
        .await?
    else {
        return Err(no_agent(&id));
    };
    let disconnected = state.connections.disconnect(
        agent,
        RefusalCode::BadCredential,
        "this agent's credential was replaced",
    );
    tracing::info!(%agent, actor = caller.actor, disconnected, "agent credential rotated");
    Ok(
        Json(json!({ "id": agent, "credential": credential, "disconnected": disconnected }))
            .into_response(),
    )
}

/// Body of `POST /agent/v1/enroll`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enroll {
    token: String,
    machine: String,
    os_user: String,
    email: Option<String>,
}

/// Enrols a desktop with an enrolment token: a new agent entry and its credential. The token is
/// used once, if it is known, not revoked, not expired and not used up; otherwise the refusal
/// names which.
#[utoipa::path(post, path = "/agent/v1/enroll", tag = "agents",
    responses((status = 201, description = "`{agent_id, credential}`"),
        (status = 401, description = "Unknown token (`bad_enrolment_token`)"),
        (status = 403, description = "`enrolment_token_revoked`, `enrolment_token_expired` or `enrolment_token_used_up`"),
        (status = 429, description = "`too_many_enrolments` from this address (`Retry-After`)")))]
pub(crate) async fn enroll_agent(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<Enroll>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let now = state.clock.now_ms();
    let address = peer.ip();
    if let Some(wait_ms) = state.enrolment_throttle.retry_after_ms(address, now) {
        let wait_s = (wait_ms + 999) / 1000;
        tracing::warn!(%address, "enrolment throttled after repeated refusals");
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_enrolments",
            format!("too many refused enrolments from this address: try again in {wait_s} s"),
        )
        .into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(&wait_s.to_string()) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let result = enrol(&state, body, now).await;
    if result.is_err() {
        state.enrolment_throttle.failed(address, now);
    }
    result
}

async fn enrol(
    state: &ApiState,
    body: Result<Json<Enroll>, axum::extract::rejection::JsonRejection>,
    now: i64,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
    let name = format!("{}@{}", body.os_user.trim(), body.machine.trim());
    let claimed = body
        .email
        .as_deref()
        .map(|email| new_agent(&name, None, Some(email)).map(|a| a.email))
        .transpose()
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message))?
        .flatten();
    // Only digests are looked up, so timing reveals nothing about other tokens.
    let sha256: [u8; 32] = Sha256::digest(body.token.trim().as_bytes()).into();
    let token = match state.store.use_enrolment_token(&sha256, now).await? {
        Ok(token) => token,
        Err(refusal) => {
            tracing::warn!(
                machine = body.machine,
                reason = refusal.code(),
                "enrolment refused"
            );
            let status = match refusal {
                crate::store::TokenRefusal::Unknown => StatusCode::UNAUTHORIZED,
                _ => StatusCode::FORBIDDEN,
            };
            return Err(ApiError::new(status, refusal.code(), refusal.message()));
        }
    };
    // A token issued for one person enrols desktops as that person. Otherwise the desktop is
    // nobody's until an administrator maps it: an email it claims is kept as a claim only.
    let agent = match (token.person_id.as_deref(), token.email.as_deref()) {
        (None, None) => new_agent(&name, None, Some("unknown@invalid")).map(|mut agent| {
            agent.email = None;
            agent
        }),
        (person, email) => new_agent(&name, person, email),
    }
    .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message))?;
    let (entry, credential) = state.store.add_agent(&agent, now).await?;
    state
        .store
        .audit(
            now,
            "enrolment",
            "enrol_agent",
            &entry.id.to_string(),
            Some(&format!("{name} with enrolment token {}", token.id)),
        )
        .await?;
    if let Some(claimed) = claimed.filter(|c| agent.email.as_deref() != Some(c.as_str())) {
        state.store.claim_email(entry.id, &claimed, now).await?;
    }
    state.directory_changed.notify_one();
    tracing::info!(agent = %entry.id, name, token = token.id, "agent enrolled");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "agent_id": entry.id, "credential": credential })),
    )
        .into_response())
}

/// Body of `POST /api/v1/enrolment-tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    label: String,
    /// Seconds from now until it stops working (absent: never).
    expires_in_s: Option<u64>,
    /// How many desktops it may enrol (absent: any number).
    max_uses: Option<u32>,
    /// Issued for one Webex person: the desktops it enrols are theirs without a claim.
    person_id: Option<String>,
    /// Issued for the person with this email.
    email: Option<String>,
}

/// Creates an enrolment token; the token is in this answer only.
#[utoipa::path(post, path = "/api/v1/enrolment-tokens", tag = "administration",
    responses((status = 201, description = "The token as listed, and `token` (shown once)"),
        (status = 400, description = "Bad label, expiry or use count")))]
pub(crate) async fn create_enrolment_token(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
    let label = body.label.trim();
    if label.is_empty() || label.len() > MAX_LABEL {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("label: 1 to {MAX_LABEL} bytes"),
        ));
    }
    if body.expires_in_s == Some(0) || body.max_uses == Some(0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "expires_in_s and max_uses are at least 1 (leave them out for no limit)",
        ));
    }
    // The same checks as a directory entry's (a person id as UUID or hydra id, an email).
    let person = if body.person_id.is_some() || body.email.is_some() {
        Some(
            new_agent(label, body.person_id.as_deref(), body.email.as_deref())
                .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", message))?,
        )
    } else {
        None
    };
    let person_id = person
        .as_ref()
        .and_then(|p| p.person)
        .map(|p| p.to_string());
    let email = person.as_ref().and_then(|p| p.email.clone());
    let now = state.clock.now_ms();
    let expires_at_ms = body
        .expires_in_s
        .map(|s| now.saturating_add(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)));
    let (created, token) = state
        .store
        .create_enrolment_token(
            label,
            (expires_at_ms, body.max_uses.map(i64::from)),
            (person_id.as_deref(), email.as_deref()),
            &caller.actor,
            now,
        )
        .await?;
    tracing::info!(
        id = created.id,
        actor = caller.actor,
        "enrolment token created"
    );
    let mut answer = json!(created);
    answer["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Every enrolment token (never the tokens themselves), with its uses and state.
#[utoipa::path(get, path = "/api/v1/enrolment-tokens", tag = "administration",
    responses((status = 200, description = "`{items: [token]}`")))]
pub(crate) async fn list_enrolment_tokens(
    State(state): State<ApiState>,
) -> Result<Response, ApiError> {
    let items = state.store.enrolment_tokens().await?;
    Ok(Json(json!({ "items": items })).into_response())
}

/// Revokes an enrolment token: it enrols nothing from now on (desktops it enrolled keep
/// their credentials).
#[utoipa::path(post, path = "/api/v1/enrolment-tokens/{id}/revoke", tag = "administration",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 200, description = "Revoked"), (status = 404, description = "No such token")))]
pub(crate) async fn revoke_enrolment_token(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now_ms();
    if !state
        .store
        .revoke_enrolment_token(&id, &caller.actor, now)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no enrolment token {id}"),
        ));
    }
    tracing::info!(id, actor = caller.actor, "enrolment token revoked");
    Ok(Json(json!({ "id": id, "revoked": true })).into_response())
}
