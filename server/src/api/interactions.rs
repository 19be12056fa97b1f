//! Interactions (recordings consolidated by callSessionId), the adapter's recording jobs, its
//! status and backfills.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use capture_shared::ids::normalize_call_session_id;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, MAX_PAGE, parse_time};
use crate::adapter::list::{LAST_POLL, WATERMARK};
use crate::store::InteractionFilter;

/// Search and details (replay access).
pub fn replay_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/interactions", get(list_interactions))
        .route("/api/v1/interactions/{id}", get(get_interaction))
}

/// Legal holds (audit access: compliance decides what retention must keep).
pub fn audit_routes() -> Router<ApiState> {
    Router::new().route(
        "/api/v1/interactions/{id}/legal-hold",
        axum::routing::put(set_legal_hold),
    )
}

/// The adapter's jobs, status and backfills (administration).
pub fn admin_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/recordings", get(list_recordings))
        .route("/api/v1/recordings/{id}", get(get_recording))
        .route("/api/v1/recordings/{id}/retry", post(retry_recording))
        .route("/api/v1/interactions/{id}/retry", post(retry_interaction))
        .route("/api/v1/adapter", get(adapter_status))
        .route("/api/v1/backfills", post(start_backfill))
}

fn bad_query(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_query", message)
}

/// Query of `GET /api/v1/interactions`: the search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InteractionQuery {
    /// Started at or after (RFC 3339 or Unix ms).
    from: Option<String>,
    /// Started before (RFC 3339 or Unix ms).
    to: Option<String>,
    /// One call session (any case, dashed or not).
    call_session_id: Option<String>,
    /// A recording owner's email (exact).
    owner_email: Option<String>,
    /// Part of an agent's email or name.
    agent: Option<String>,
    /// Part of the remote party's number (digits compared).
    number: Option<String>,
    /// `inbound` or `outbound`.
    direction: Option<String>,
    /// At least this long (s).
    min_duration_s: Option<i64>,
    /// At most this long (s).
    max_duration_s: Option<i64>,
    /// With (`true`) or without (`false`) screen.
    has_screen: Option<bool>,
    /// With or without audio.
    has_audio: Option<bool>,
    /// `collecting`, `archived`, `failed` or `deleted` (default: all but deleted).
    state: Option<String>,
    /// Page size (1–500, default 50).
    limit: Option<i64>,
    /// Page offset.
    offset: Option<i64>,
}

/// `GET /api/v1/interactions`: search, newest first (audited).
#[utoipa::path(get, path = "/api/v1/interactions", tag = "replay", params(InteractionQuery),
    responses((status = 200, description = "`{items: [...], next_offset}`; `next_offset` is null on the last page"),
              (status = 400, description = "A filter is malformed (`bad_query`)")))]
pub async fn list_interactions(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<crate::replay::auth::Caller>,
    raw: axum::extract::RawQuery,
    query: Result<Query<InteractionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| bad_query(e.body_text()))?;
    let call_session_id = match query.call_session_id.as_deref().map(str::trim) {
        // Dashed or not, any case: the stored form is the normalised one.
        Some(raw) if !raw.is_empty() => Some(
            normalize_call_session_id(raw)
                .map_err(|e| bad_query(format!("`call_session_id`: {e}")))?
                .as_str()
                .to_owned(),
        ),
        _ => None,
    };
    if let Some(d) = query.direction.as_deref()
        && !["inbound", "outbound"].contains(&d)
    {
        return Err(bad_query("`direction` is inbound or outbound"));
    }
    if let Some(s) = query.state.as_deref()
        && !["collecting", "archived", "failed", "parked", "deleted"].contains(&s)
    {
        return Err(bad_query(
            "`state` is collecting, archived, failed, parked or deleted",
        ));
    }
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let offset = query.offset.unwrap_or(0).max(0);
    let filter = InteractionFilter {
        from_ms: parse_time("from", query.from.as_deref())?,
        to_ms: parse_time("to", query.to.as_deref())?,
        call_session_id,
        owner_email: query.owner_email.filter(|e| !e.trim().is_empty()),
        agent: query.agent,
        number: query.number,
        direction: query.direction,
        min_duration_s: query.min_duration_s,
        max_duration_s: query.max_duration_s,
        has_screen: query.has_screen,
        has_audio: query.has_audio,
        state: query.state,
        limit,
        offset,
    };
    let mut items = state.store.interactions(&filter).await?;
    let more = items.len() as i64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    state
        .store
        .audit(
            state.clock.now_ms(),
            &caller.actor,
            "search",
            "interactions",
            Some(raw.0.as_deref().unwrap_or("")),
        )
        .await?;
    Ok(Json(json!({
        "items": items,
        "next_offset": more.then_some(offset + limit),
    }))
    .into_response())
}

/// The parts of a metadata document the interaction shows as they are.
fn metadata_part(metadata: &Value, key: &str) -> Value {
    metadata
        .pointer(&format!("/serviceData/{key}"))
        .cloned()
        .unwrap_or(Value::Array(Vec::new()))
}

#[utoipa::path(get, path = "/api/v1/interactions/{id}", tag = "replay",
    params(("id" = String, Path, description = "The interaction")),
    responses((status = 200, description = "`{interaction, recordings}`: parties, legs, pauses, metadata"), (status = 404, description = "No such interaction")))]
pub(crate) async fn get_interaction(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some((interaction, recordings)) = state.store.interaction(&id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no interaction {id}"),
        ));
    };
    let recordings: Vec<Value> = recordings
        .into_iter()
        .map(|recording| {
            let pauses = metadata_part(&recording.metadata, "recordingActions");
            let activity = metadata_part(&recording.metadata, "callActivity");
            let parties = json!({
                "calling": recording.metadata.pointer("/serviceData/callingParty"),
                "called": recording.metadata.pointer("/serviceData/calledParty"),
            });
            let mut value = serde_json::to_value(&recording).unwrap_or(Value::Null);
            if let Some(object) = value.as_object_mut() {
                object.remove("metadata");
                object.insert("recording_actions".into(), pauses);
                object.insert("call_activity".into(), activity);
                object.insert("parties".into(), parties);
            }
            value
        })
        .collect();
    Ok(Json(json!({ "interaction": interaction, "recordings": recordings })).into_response())
}

/// Query of `GET /api/v1/recordings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordingQuery {
    state: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/recordings", tag = "administration",
    params(("state" = Option<String>, Query, description = "pending, stored, parked"), ("limit" = Option<i64>, Query, description = "Page size"),
           ("offset" = Option<i64>, Query, description = "Page offset")),
    responses((status = 200, description = "`{items: [job]}`")))]
pub(crate) async fn list_recordings(
    State(state): State<ApiState>,
    query: Result<Query<RecordingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| bad_query(e.body_text()))?;
    if let Some(s) = query.state.as_deref()
        && !["pending", "stored", "parked"].contains(&s)
    {
        return Err(bad_query("`state` is pending, stored or parked"));
    }
    let items = state
        .store
        .recording_jobs(
            query.state.as_deref(),
            query.limit.unwrap_or(50).clamp(1, MAX_PAGE),
            query.offset.unwrap_or(0).max(0),
        )
        .await?;
    Ok(Json(json!({ "items": items })).into_response())
}

#[utoipa::path(get, path = "/api/v1/recordings/{id}", tag = "administration",
    params(("id" = String, Path, description = "Webex's recording id")),
    responses((status = 200, description = "The job"), (status = 404, description = "No such recording")))]
pub(crate) async fn get_recording(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.recording_job(&id).await? {
        Some(job) => Ok(Json(job).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no recording {id}"),
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/recordings/{id}/retry", tag = "administration",
    params(("id" = String, Path, description = "Webex's recording id")),
    responses((status = 202, description = "Queued again"), (status = 409, description = "Not parked (`not_parked`)")))]
pub(crate) async fn retry_recording(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now_ms();
    if !state.store.retry_recording(&id, now).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_parked",
            format!("recording {id} is not parked"),
        ));
    }
    state
        .store
        .audit(now, "api", "retry_recording", &id, None)
        .await?;
    state.recordings_wake.notify_one();
    Ok(StatusCode::ACCEPTED.into_response())
}

#[utoipa::path(post, path = "/api/v1/interactions/{id}/retry", tag = "administration",
    params(("id" = String, Path, description = "The interaction")),
    responses((status = 202, description = "Collected and stitched again"), (status = 409, description = "Neither parked nor failed (`not_parked`)")))]
pub(crate) async fn retry_interaction(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now_ms();
    if !state.store.retry_interaction(&id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_parked",
            format!("interaction {id} is neither parked nor failed"),
        ));
    }
    state
        .store
        .audit(now, "api", "retry_interaction", &id, None)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[utoipa::path(get, path = "/api/v1/adapter", tag = "administration",
    responses((status = 200, description = "Watermark, last poll, job counts, backfills")))]
pub(crate) async fn adapter_status(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let watermark = state.store.adapter_value(WATERMARK).await?;
    let last_poll = state
        .store
        .adapter_value(LAST_POLL)
        .await?
        .and_then(|v| serde_json::from_str::<Value>(&v).ok());
    let counts = state.store.recording_counts(None).await?;
    let backfills = state.store.backfills().await?;
    Ok(Json(json!({
        "configured": state.adapter_configured,
        "watermark_ms": watermark.and_then(|w| w.parse::<i64>().ok()),
        "last_poll": last_poll,
        "recordings": counts,
        "backfills": backfills,
    }))
    .into_response())
}

/// Body of `POST /api/v1/backfills`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewBackfill {
    from: String,
    to: String,
}

#[utoipa::path(post, path = "/api/v1/backfills", tag = "administration",
    responses((status = 202, description = "The backfill"), (status = 400, description = "Bad range")))]
pub(crate) async fn start_backfill(
    State(state): State<ApiState>,
    body: Result<Json<NewBackfill>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
    let from = parse_time("from", Some(&body.from))?.unwrap_or_default();
    let to = parse_time("to", Some(&body.to))?.unwrap_or_default();
    if from >= to {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "`from` must be before `to`",
        ));
    }
    if !state.adapter_configured {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "webex_not_configured",
            "no Webex credentials are configured: nothing can be backfilled",
        ));
    }
    let now = state.clock.now_ms();
    let backfill = state.store.backfill(from, to, now).await?;
    state
        .store
        .audit(
            now,
            "api",
            "start_backfill",
            &backfill.id.to_string(),
            Some(&format!("{} {}", body.from, body.to)),
        )
        .await?;
    state.backfill_requested.notify_one();
    Ok((StatusCode::ACCEPTED, Json(backfill)).into_response())
}

/// Body of `PUT /api/v1/interactions/{id}/legal-hold`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LegalHold {
    hold: bool,
    reason: String,
}

#[utoipa::path(put, path = "/api/v1/interactions/{id}/legal-hold", tag = "audit",
    params(("id" = String, Path, description = "The interaction")),
    responses((status = 204, description = "Held or released (audited)"), (status = 404, description = "No such interaction")))]
pub(crate) async fn set_legal_hold(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<LegalHold>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "a legal hold needs a `reason`",
        ));
    }
    let now = state.clock.now_ms();
    if !state
        .store
        .set_legal_hold(&id, body.hold, "api", body.reason.trim(), now)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no interaction {id}"),
        ));
    }
    Ok(Json(json!({ "id": id, "legal_hold": body.hold })).into_response())
}
