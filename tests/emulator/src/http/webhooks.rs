//! `/webhooks` (create, list with `Link` paging, get, update, delete) and
//! `/telephony/webhookInterestRegistrations`.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use capture_shared::ids::encode_hydra;
use serde::Deserialize;
use serde_json::{Value, json};

use super::query::{self, cursor_decode, cursor_encode};
use super::{Caller, next_link, parse_max, webex_error};
use crate::clock;
use crate::delivery;
use crate::hooks::Webhook;
use crate::model::CLUSTER;
use crate::state::{Shared, lock};

/// How long a `telephony_agent` interest registration lasts (API.md: 60 days).
const INTEREST_TTL: Duration = Duration::from_secs(60 * 86_400);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateRequest {
    name: Option<String>,
    target_url: Option<String>,
    resource: Option<String>,
    event: Option<String>,
    filter: Option<String>,
    secret: Option<String>,
    owned_by: Option<String>,
}

fn bad_request(shared: &Shared, message: &str) -> Response {
    webex_error(shared, StatusCode::BAD_REQUEST, message)
}

fn not_found(shared: &Shared) -> Response {
    webex_error(
        shared,
        StatusCode::NOT_FOUND,
        "The requested resource could not be found.",
    )
}

/// `POST /webhooks`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(Caller(user)): Extension<Caller>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<CreateRequest>(&body) else {
        return bad_request(&shared, "The request body is not valid JSON.");
    };
    let (Some(name), Some(target_url), Some(resource), Some(event)) = (
        request.name,
        request.target_url,
        request.resource,
        request.event,
    ) else {
        return bad_request(&shared, "name, targetUrl, resource and event are required.");
    };
    if !target_url.starts_with("https://") && !target_url.starts_with("http://") {
        return bad_request(&shared, "targetUrl must be an http(s) URL.");
    }
    let created_by = lock(&shared.store)
        .person(user)
        .cloned()
        .unwrap_or_else(|| shared.admin.clone());
    let webhook = Webhook {
        id: encode_hydra(CLUSTER, "WEBHOOK", &shared.ids.uuid().to_string()),
        name,
        target_url,
        resource,
        event,
        filter: request.filter,
        secret: request.secret,
        status: "active".into(),
        created: clock::now(),
        owned_by: request.owned_by,
        created_by,
    };
    let value = webhook.to_json();
    let queue = delivery::spawn_worker(&shared);
    let mut hooks = lock(&shared.hooks);
    hooks.queues.insert(webhook.id.clone(), queue);
    hooks.list.push(webhook);
    axum::Json(value).into_response()
}

/// `GET /webhooks`: `max` (default 100), creation order, `Link` paging.
pub(crate) async fn list(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let raw = raw.unwrap_or_default();
    let pairs = query::parse(&raw);
    let max = match parse_max(query::get(&pairs, "max"), 100, 1000) {
        Ok(max) => max,
        Err(message) => return bad_request(&shared, &message),
    };
    let start = match query::get(&pairs, "cursor") {
        None => 0,
        Some(cursor) => match cursor_decode(cursor).and_then(|c| c.parse::<usize>().ok()) {
            Some(start) => start,
            None => return bad_request(&shared, "invalid cursor"),
        },
    };
    let items: Vec<Value> = lock(&shared.hooks)
        .list
        .iter()
        .skip(start)
        .take(max)
        .map(Webhook::to_json)
        .collect();
    let full = items.len() == max;
    let mut response = axum::Json(json!({ "items": items })).into_response();
    if full {
        let url = format!(
            "{}/webhooks?{}",
            shared.base_url,
            query::with_cursor(&raw, &cursor_encode(&(start + max).to_string()))
        );
        if let Some(link) = next_link(&url) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    response
}

/// `GET /webhooks/{id}`.
pub(crate) async fn get_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match lock(&shared.hooks).get(&id) {
        Some(hook) => axum::Json(hook.to_json()).into_response(),
        None => not_found(&shared),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateRequest {
    name: Option<String>,
    target_url: Option<String>,
    secret: Option<String>,
    status: Option<String>,
}

/// `PUT /webhooks/{id}`: `name` and `targetUrl` required (as Webex), `secret` and `status`
/// optional (`status: active` re-enables).
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<UpdateRequest>(&body) else {
        return bad_request(&shared, "The request body is not valid JSON.");
    };
    let (Some(name), Some(target_url)) = (request.name, request.target_url) else {
        return bad_request(&shared, "name and targetUrl are required.");
    };
    if let Some(status) = &request.status
        && !matches!(status.as_str(), "active" | "inactive")
    {
        return bad_request(&shared, "status must be active or inactive.");
    }
    let mut hooks = lock(&shared.hooks);
    let Some(hook) = hooks.get_mut(&id) else {
        return not_found(&shared);
    };
    hook.name = name;
    hook.target_url = target_url;
    if request.secret.is_some() {
        hook.secret = request.secret;
    }
    if let Some(status) = request.status {
        hook.status = status;
    }
    axum::Json(hook.to_json()).into_response()
}

/// `DELETE /webhooks/{id}`.
pub(crate) async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    if lock(&shared.hooks).remove(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found(&shared)
    }
}

/// `POST /telephony/webhookInterestRegistrations`: acknowledged (no `telephony_agent` events are
/// emitted).
pub(crate) async fn interest(State(shared): State<Arc<Shared>>) -> Response {
    let expiration = clock::format_ms(clock::add(clock::now(), INTEREST_TTL));
    let _ = &shared;
    axum::Json(json!({ "interests": [{ "resource": "Agent", "expiration": expiration }] }))
        .into_response()
}
