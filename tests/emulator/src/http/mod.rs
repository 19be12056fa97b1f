//! The HTTP side: routes, and the gate every request passes (request log, fault injection, bearer
//! check, malformed answers).

mod events;
mod people;
pub(crate) mod query;
mod recordings;
mod tokens;
mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use uuid::Uuid;

use crate::auth::BearerError;
use crate::clock;
use crate::faults::{Route, Verdict};
use crate::state::{Shared, lock};
use crate::stats::RequestRecord;

/// The user a valid bearer token belongs to, for handlers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub Uuid);

/// The routes, gated.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/admin/convergedRecordings", get(recordings::list_admin))
        .route("/v1/convergedRecordings", get(recordings::list_own))
        .route(
            "/v1/convergedRecordings/{id}",
            get(recordings::details).delete(recordings::delete),
        )
        .route(
            "/v1/convergedRecordings/{id}/metadata",
            get(recordings::metadata),
        )
        .route("/nbr/MultiThreadDownloadServlet", get(recordings::download))
        .route("/v1/access_token", post(tokens::access_token))
        .route(
            "/v1/applications/{id}/token",
            post(tokens::service_app_token),
        )
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get_one)
                .put(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/v1/telephony/webhookInterestRegistrations",
            post(webhooks::interest),
        )
        .route("/v1/people", get(people::list))
        .route("/v1/people/me", get(people::me))
        .route("/v1/people/{id}", get(people::get_one))
        .route("/v1/events", get(events::list))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), gate))
        .with_state(shared)
}

async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    webex_error(
        &shared,
        StatusCode::NOT_FOUND,
        "The requested resource could not be found.",
    )
}

/// Webex's error body: `{message, errors:[{description}], trackingId}`.
pub(crate) fn webex_error(shared: &Shared, status: StatusCode, message: &str) -> Response {
    let tracking = shared.tracking_id();
    let body = json!({ "message": message, "errors": [{ "description": message }], "trackingId": tracking });
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&tracking) {
        response.headers_mut().insert("trackingid", value);
    }
    response
}

/// A JSON answer, cut in half when `corrupt` (status stays 200: the client must notice).
pub(crate) fn json_answer(value: &impl serde::Serialize, corrupt: bool) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    if corrupt {
        body.truncate(body.len() / 2);
    }
    (
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

/// The route group of a request and whether it needs a bearer token.
fn classify(method: &axum::http::Method, path: &str) -> (Route, bool) {
    let Some(api) = path.strip_prefix("/v1/") else {
        return (Route::Audio, false);
    };
    let segments: Vec<&str> = api.split('/').collect();
    match segments.as_slice() {
        ["access_token"] => (Route::Token, false),
        ["applications", ..] => (Route::Token, true),
        ["admin", "convergedRecordings"] | ["convergedRecordings"] => (Route::List, true),
        ["convergedRecordings", _, "metadata"] => (Route::Metadata, true),
        ["convergedRecordings", _] if method == axum::http::Method::DELETE => (Route::Delete, true),
        ["convergedRecordings", _] => (Route::Details, true),
        ["webhooks", ..] | ["telephony", ..] => (Route::Webhooks, true),
        ["events", ..] => (Route::Events, true),
        ["people", ..] => (Route::People, true),
        _ => (Route::Any, true),
    }
}

fn refusal(shared: &Shared, status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => {
            "Too many requests have been sent in a given amount of time."
        }
        StatusCode::LOCKED => "The requested resource is temporarily unavailable.",
        _ => "The server encountered an error (injected fault).",
    };
    let mut response = webex_error(shared, status, message);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

async fn gate(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let at = clock::now();
    lock(&shared.stats).arrived(&method, &path, Instant::now());
    let (route, needs_auth) = classify(request.method(), request.uri().path());
    let verdict = lock(&shared.faults).verdict(route);
    let mut retry_after = None;
    let response = match verdict {
        Verdict::Refuse(status, wait) => {
            retry_after = wait;
            refusal(&shared, status, wait)
        }
        Verdict::Serve { delay, malformed } => {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let authorization = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let caller = lock(&shared.auth).check(authorization, clock::now());
            match (needs_auth, caller) {
                (true, Err(error)) => unauthorized(&shared, error),
                (_, caller) => {
                    if let Ok(user) = caller {
                        request.extensions_mut().insert(Caller(user));
                    }
                    let response = next.run(request).await;
                    if malformed && response.status() == StatusCode::OK {
                        cut(response).await
                    } else {
                        response
                    }
                }
            }
        }
    };
    let record = RequestRecord {
        at,
        method,
        path,
        status: response.status().as_u16(),
    };
    lock(&shared.stats).answered(record, retry_after, Instant::now());
    response
}

fn unauthorized(shared: &Shared, error: BearerError) -> Response {
    let message = match error {
        BearerError::Missing => {
            "The request requires a valid access token set in the Authorization request header."
        }
        BearerError::Unknown => "The access token provided is invalid.",
        BearerError::Expired => "The access token provided has expired.",
    };
    webex_error(shared, StatusCode::UNAUTHORIZED, message)
}

/// The same answer with its body cut in half.
async fn cut(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    bytes.truncate(bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// `max`: absent → `default`; within `1..=limit` → it; otherwise an error message.
pub(crate) fn parse_max(
    value: Option<&str>,
    default: usize,
    limit: usize,
) -> Result<usize, String> {
    match value {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(max) if (1..=limit).contains(&max) => Ok(max),
            _ => Err(format!(
                "max must be an integer between 1 and {limit}, got {text:?}"
            )),
        },
    }
}

/// A `Link: <url>; rel="next"` header value.
pub(crate) fn next_link(url: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")).ok()
}
