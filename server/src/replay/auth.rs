//! Logins, sessions and roles.
//!
//! - A user logs in with name and password (argon2id hashes only are stored) and gets a session
//!   cookie: random, `Secure; HttpOnly; SameSite=Strict`, stored as its SHA-256 only, valid for
//!   [`SESSION_TTL`]. The login's answer carries a CSRF token that every state-changing request
//!   of that session sends back in `X-CSRF-Token`.
//! - Failed logins are throttled per user name and per client address ([`MAX_FAILURES_PER_USER`],
//!   [`MAX_FAILURES_PER_CLIENT`] in [`FAILURE_WINDOW`]); every login, logout and failure is
//!   audited.
//! - Each route group needs an [`Access`]; a role grants some (see [`Access::allows`]). The
//!   administrator's bearer token (`<data_dir>/api-token`, for integrations and scripts) is a
//!   service credential granted every access; what it does is audited as `api-token`.

use std::net::SocketAddr;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::api::{ApiError, ApiState};
use crate::store::User;

/// The session cookie's name.
pub const COOKIE: &str = "capture_session";
/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts (a shift and then some).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The window of login throttling.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed logins of one user name within the window before it is refused until the window
/// passes.
pub const MAX_FAILURES_PER_USER: i64 = 5;
/// Failed logins from one client address within the window before it is refused.
pub const MAX_FAILURES_PER_CLIENT: i64 = 20;
/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Users, agents, settings, the recording adapter.
    Admin,
    /// Search, replay, export.
    Supervisor,
    /// The audit log, legal holds, search, replay, export.
    Auditor,
}

impl Role {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Auditor => "auditor",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

/// What a route group needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any logged-in user (their own session).
    Session,
    /// Administration: users, agents, contacts, the adapter.
    Administer,
    /// Search, replay and export of interactions.
    Replay,
    /// The audit log and legal holds.
    Audit,
}

impl Access {
    /// Whether `role` grants this access. Administrators do not replay (separation of duties:
    /// who manages the system does not listen to calls); auditors replay what they audit.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Session => true,
            Access::Administer => role == Role::Admin,
            Access::Replay => matches!(role, Role::Supervisor | Role::Auditor),
            Access::Audit => role == Role::Auditor,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user name, or `api-token`.
    pub actor: String,
    /// The user's role; `None` for the administrator's bearer token (every access).
    pub role: Option<Role>,
    /// The session's token hash (`None` for the bearer token).
    pub session: Option<String>,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

impl Caller {
    /// Whether the caller has `access`.
    pub fn may(&self, access: Access) -> bool {
        self.role.is_none_or(|role| access.allows(role))
    }
}

/// Hashes a password (argon2id, random salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the stored `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Checks a new password: long enough, not all one character.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "a password has at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err("a password is not one character repeated".into());
    }
    Ok(())
}

/// A fresh random token (32 bytes, hex).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

fn unauthenticated(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message).into_response()
}

/// Identifies the caller of every `/api/v1` route (bearer token or session cookie), checks the
/// CSRF token of a session's state-changing request, and hands the [`Caller`] on.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let caller = if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        // Digests are compared, so timing reveals nothing about the token.
        if Sha256::digest(bearer.trim().as_bytes()).as_slice() != state.token_sha256.as_slice() {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_token",
                "the bearer token is not valid",
            )
            .into_response();
        }
        Caller {
            actor: "api-token".into(),
            role: None,
            session: None,
            csrf: None,
        }
    } else if let Some(token) = cookie_token(headers) {
        let hash = token_hash(token);
        let found = match state.store.session(&hash, state.clock.now_ms()).await {
            Ok(found) => found,
            Err(error) => return ApiError::from(error).into_response(),
        };
        let Some(session) = found else {
            return unauthenticated("the session is unknown or has expired: log in again");
        };
        let Some(role) = Role::parse(&session.user.role) else {
            return unauthenticated("the user's role is unknown");
        };
        if !matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        ) {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent.map(|s| s.as_bytes()) != Some(session.csrf.as_bytes()) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "a state-changing request needs the session's X-CSRF-Token header",
                )
                .into_response();
            }
        }
        Caller {
            actor: session.user.username,
            role: Some(role),
            session: Some(hash),
            csrf: Some(session.csrf),
        }
    } else {
        return unauthenticated("log in (session cookie) or send an `Authorization: Bearer` token");
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Refuses a caller without `access` (403, code `forbidden`).
pub async fn require(State(access): State<Access>, request: Request, next: Next) -> Response {
    match request.extensions().get::<Caller>() {
        Some(caller) if caller.may(access) => next.run(request).await,
        Some(caller) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} may not do this (needs {access:?} access)",
                caller.role.map_or("this credential", Role::as_str)
            ),
        )
        .into_response(),
        None => unauthenticated("not logged in"),
    }
}

/// Body of `POST /api/v1/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// Who is logged in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The user name (or `api-token`).
    pub username: String,
    /// The role (absent for the bearer token: every access).
    pub role: Option<Role>,
    /// The CSRF token to send in `X-CSRF-Token` on state-changing requests.
    pub csrf: Option<String>,
    /// Accesses granted.
    pub may: Vec<&'static str>,
}

fn me(caller: &Caller) -> Me {
    Me {
        username: caller.actor.clone(),
        role: caller.role,
        csrf: caller.csrf.clone(),
        may: [
            (Access::Administer, "administer"),
            (Access::Replay, "replay"),
            (Access::Audit, "audit"),
        ]
        .into_iter()
        .filter(|(access, _)| caller.may(*access))
        .map(|(_, name)| name)
        .collect(),
    }
}

fn client_address(request_parts: &axum::http::Extensions) -> String {
    request_parts
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

fn too_many(retry_after_s: i64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "login_throttled",
        format!("too many failed logins: try again in {retry_after_s} s"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn session_cookie(token: &str, max_age_s: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"
    ))
    .expect("a hex token is a valid header value")
}

/// `POST /api/v1/login`: opens a session.
#[utoipa::path(post, path = "/api/v1/login", tag = "session", request_body = Login,
    responses((status = 200, body = Me, description = "Logged in; the session cookie is set"),
              (status = 401, description = "Wrong user name or password"),
              (status = 429, description = "Too many failed logins")))]
pub async fn login(State(state): State<ApiState>, request: Request) -> Result<Response, ApiError> {
    let client = client_address(request.extensions());
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        // A cross-site form cannot send JSON without a preflight: this is the login's CSRF guard.
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_request",
            "the login is a JSON body",
        ));
    }
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_request",
                "body too large",
            )
        })?;
    let login: Login = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let now = state.clock.now_ms();
    let window = FAILURE_WINDOW.as_millis() as i64;
    let user_key = format!("user:{}", login.username.to_lowercase());
    let client_key = format!("client:{client}");
    for (key, max) in [
        (&user_key, MAX_FAILURES_PER_USER),
        (&client_key, MAX_FAILURES_PER_CLIENT),
    ] {
        let (failures, oldest) = state.store.login_failures(key, now - window).await?;
        if failures >= max {
            let retry = (oldest.unwrap_or(now) + window - now).max(1000) / 1000;
            return Ok(too_many(retry));
        }
    }
    let found = state.store.user_for_login(&login.username).await?;
    // A missing user costs the same hashing time as a wrong password.
    let (hash, user) = match &found {
        Some((user, hash)) => (Some(hash.clone()), Some(user)),
        None => (None, None),
    };
    let password = login.password.clone();
    // Off the runtime, the dummy hash's first computation included.
    let matches = tokio::task::spawn_blocking(move || {
        verify_password(&password, hash.as_deref().unwrap_or(&DUMMY_HASH))
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|u| matches && u.disabled_ms.is_none()) else {
        state
            .store
            .login_failed(&[&user_key, &client_key], &login.username, &client, now)
            .await?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_login",
            "wrong user name or password",
        ));
    };
    state
        .store
        .clear_login_failures(&[&user_key], now - window)
        .await?;
    let token = random_token();
    let csrf = random_token();
    let expires = now + SESSION_TTL.as_millis() as i64;
    state
        .store
        .open_session(&token_hash(&token), user, &csrf, now, expires, &client)
        .await?;
    let caller = Caller {
        actor: user.username.clone(),
        role: Role::parse(&user.role),
        session: None,
        csrf: Some(csrf),
    };
    let mut response = Json(me(&caller)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&token, SESSION_TTL.as_secs()),
    );
    Ok(response)
}

static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("not a password anyone has").unwrap_or_default());

/// `POST /api/v1/logout`: ends the session.
#[utoipa::path(post, path = "/api/v1/logout", tag = "session",
    responses((status = 204, description = "Logged out; the cookie is cleared")))]
pub async fn logout(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    if let Some(session) = &caller.session {
        state
            .store
            .close_session(session, &caller.actor, state.clock.now_ms())
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(response)
}

/// `GET /api/v1/me`: who is logged in, what they may do, their CSRF token.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = Me)))]
pub async fn whoami(Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(me(&caller))
}

/// A user as the API shows it.
pub fn user_json(user: &User) -> serde_json::Value {
    json!({
        "username": user.username,
        "role": user.role,
        "created_ms": user.created_ms,
        "disabled": user.disabled_ms.is_some(),
    })
}
