//! A small fake of Webex's webhook-management API over HTTPS (`/v1/webhooks` with `Link` paging,
//! `/v1/telephony/webhookInterestRegistrations`, `/v1/people?email=`), with bearer auth and
//! injectable 429s. It speaks
//! Webex's wire format for these routes; the full emulator (recordings, deliveries, scenarios)
//! grows from here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use capture_server::config::TlsSource;
use capture_shared::ids::encode_hydra;
use serde_json::{Value, json};

/// Largest page the fake serves, whatever `max` asks (small, so that paging is exercised).
pub const PAGE: usize = 2;

/// What the fake holds and saw.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Registered webhooks, in creation order.
    pub webhooks: Vec<Value>,
    /// Interest registrations received.
    pub interest_registrations: u32,
    /// Every request: when, method and path (with query).
    pub requests: Vec<(Instant, String, String)>,
    /// How many of the next requests get a 429 with `Retry-After: 1`.
    pub fail_with_429: u32,
    /// People: (email, person uuid).
    pub people: Vec<(String, uuid::Uuid)>,
}

/// A running fake.
#[derive(Debug)]
pub struct FakeWebex {
    /// Base URL ending in `/v1`.
    pub base_url: String,
    /// Its CA certificate.
    pub ca_file: PathBuf,
    /// Its state.
    pub state: Arc<Mutex<FakeState>>,
    _dir: tempfile::TempDir,
    handle: axum_server::Handle,
}

#[derive(Clone)]
struct App {
    state: Arc<Mutex<FakeState>>,
    token: Arc<str>,
    base: Arc<str>,
}

fn webex_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message, "errors": [{ "description": message }], "trackingId": "FAKE_1" })))
        .into_response()
}

impl App {
    /// Records the request and applies auth and fault injection: `Some` is the refusal to send.
    fn gate(&self, headers: &HeaderMap, method: &str, path: String) -> Option<Response> {
        let mut state = self.state.lock().expect("lock");
        state
            .requests
            .push((Instant::now(), method.to_owned(), path));
        if state.fail_with_429 > 0 {
            state.fail_with_429 -= 1;
            let mut response = webex_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().expect("header"));
            return Some(response);
        }
        let expected = format!("Bearer {}", self.token);
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(expected.as_str())
        {
            return Some(webex_error(
                StatusCode::UNAUTHORIZED,
                "The request requires a valid access token set in the Authorization request header.",
            ));
        }
        None
    }
}

async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let path = format!(
        "/webhooks?{}",
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    if let Some(response) = app.gate(&headers, "GET", path) {
        return response;
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let max = param("max").unwrap_or(10).clamp(1, 100).min(PAGE);
    let start = param("start").unwrap_or(0);
    let state = app.state.lock().expect("lock");
    let items: Vec<Value> = state
        .webhooks
        .iter()
        .skip(start)
        .take(max)
        .cloned()
        .collect();
    let mut response = Json(json!({ "items": items })).into_response();
    if start + max < state.webhooks.len() {
        let link = format!(
            "<{}/webhooks?max={max}&start={}>; rel=\"next\"",
            app.base,
            start + max
        );
        response
            .headers_mut()
            .insert(header::LINK, link.parse().expect("header"));
    }
    response
}

async fn create(State(app): State<App>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(response) = app.gate(&headers, "POST", "/webhooks".into()) {
        return response;
    }
    let mut webhook = body.clone();
    webhook["id"] = json!(encode_hydra(
        "us",
        "WEBHOOK",
        &uuid::Uuid::new_v4().to_string()
    ));
    webhook["status"] = json!("active");
    webhook["created"] = json!("2026-11-26T00:00:00.000Z");
    app.state
        .lock()
        .expect("lock")
        .webhooks
        .push(webhook.clone());
    Json(webhook).into_response()
}

async fn update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = app.gate(&headers, "PUT", format!("/webhooks/{id}")) {
        return response;
    }
    let mut state = app.state.lock().expect("lock");
    let Some(webhook) = state.webhooks.iter_mut().find(|w| w["id"] == id.as_str()) else {
        return webex_error(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    for key in ["name", "targetUrl", "secret", "status"] {
        if let Some(value) = body.get(key) {
            webhook[key] = value.clone();
        }
    }
    Json(webhook.clone()).into_response()
}

async fn people(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let email = query
        .iter()
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if let Some(response) = app.gate(&headers, "GET", format!("/people?email={email}")) {
        return response;
    }
    let state = app.state.lock().expect("lock");
    let items: Vec<Value> = state
        .people
        .iter()
        .filter(|(known, _)| known.eq_ignore_ascii_case(&email))
        .map(|(known, id)| {
            json!({ "id": encode_hydra("us", "PEOPLE", &id.to_string()), "emails": [known], "displayName": known, "type": "person" })
        })
        .collect();
    Json(json!({ "items": items })).into_response()
}

async fn interest(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(
        &headers,
        "POST",
        "/telephony/webhookInterestRegistrations".into(),
    ) {
        return response;
    }
    app.state.lock().expect("lock").interest_registrations += 1;
    Json(
        json!({ "interests": [{ "resource": "Agent", "expiration": "2027-01-25T00:00:00.000Z" }] }),
    )
    .into_response()
}

impl FakeWebex {
    /// Starts the fake on `127.0.0.1:0`, accepting `token`.
    pub async fn start(token: &str, state: FakeState) -> anyhow::Result<FakeWebex> {
        let dir = tempfile::tempdir()?;
        let tls = capture_server::tls::load(&TlsSource::Generated {
            dir: dir.path().join("tls"),
            names: vec!["localhost".into(), "127.0.0.1".into()],
        })?;
        let ca_file = tls
            .generated_ca
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no CA generated"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr: SocketAddr = listener.local_addr()?;
        let base_url = format!("https://localhost:{}/v1", addr.port());
        let state = Arc::new(Mutex::new(state));
        let app = App {
            state: state.clone(),
            token: Arc::from(token),
            base: Arc::from(base_url.as_str()),
        };
        let router = Router::new()
            .route("/v1/webhooks", get(list).post(create))
            .route("/v1/webhooks/{id}", put(update))
            .route("/v1/telephony/webhookInterestRegistrations", post(interest))
            .route("/v1/people", get(people))
            .with_state(app);
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls.config),
        )
        .handle(handle.clone())
        .serve(router.into_make_service());
        tokio::spawn(server);
        Ok(FakeWebex {
            base_url,
            ca_file,
            state,
            _dir: dir,
            handle,
        })
    }
}

impl Drop for FakeWebex {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}
