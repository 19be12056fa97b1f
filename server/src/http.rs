//! The HTTPS router: health, metrics, the Webex webhook receiver and the API (later: the agents'
//! websocket and the replay UI).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::metrics::Metrics;

/// What every route handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// When the server started.
    pub started: Instant,
}

/// Builds the router: health and metrics, the Webex webhook receiver, the API.
pub fn router(
    state: AppState,
    receiver: crate::integration::receiver::Receiver,
    api: crate::api::ApiState,
    recorder: crate::recorder::Recorder,
) -> Router {
    let webhooks = Router::new()
        .route(
            "/webhooks/webex",
            post(crate::integration::receiver::receive),
        )
        .layer(DefaultBodyLimit::max(
            crate::webex::webhook::MAX_WEBHOOK_BYTES,
        ))
        .with_state(receiver);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(webhooks)
        .merge(
            Router::new()
                .route("/agent/v1", get(crate::recorder::agent_socket))
                .with_state(recorder),
        )
        .merge(crate::api::router(api))
        .layer(middleware::from_fn_with_state(state, track))
}

/// The body of `GET /healthz`.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_s: u64,
}

async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs(),
    })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Counts and times every request by its route template.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .observe_http(&route, response.status().as_u16(), started.elapsed());
    response
}
