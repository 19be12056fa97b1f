//! The OpenAPI document of the JSON API, generated from the handlers' `#[utoipa::path]`
//! annotations (never kept by hand), served at `/api/openapi.json`.

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::api;
use crate::replay::{self, auth, media};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Capture",
        description = "Recorded Webex Calling interactions with the agent's screen: search, replay, \
            audit, administration. Every `/api/v1` route but the login needs a session cookie \
            (with `X-CSRF-Token` on state-changing requests) or the administrator's bearer token; \
            errors are `{code, message}` with a stable `code`."
    ),
    modifiers(&Security),
    paths(
        auth::login, auth::logout, auth::whoami,
        api::interactions::list_interactions, api::interactions::get_interaction,
        replay::get_timeline, media::media, media::export,
        api::interactions::set_legal_hold, replay::list_audit, replay::verify_audit,
        replay::list_users, replay::add_user, replay::update_user,
        api::list_contacts, api::get_contact, api::list_agents, api::add_agent, api::map_agent,
        api::enrolment::enroll_agent, api::enrolment::create_enrolment_token,
        api::enrolment::list_enrolment_tokens, api::enrolment::revoke_enrolment_token,
        api::enrolment::revoke_agent, api::enrolment::rotate_agent,
        api::interactions::list_recordings, api::interactions::get_recording,
        api::interactions::retry_recording, api::interactions::retry_interaction,
        api::interactions::adapter_status,
        api::interactions::start_backfill,
    ),
    components(schemas(auth::Login, auth::Me, auth::Role, replay::NewUser, replay::UserChange,
        replay::timeline::Timeline, crate::store::AuditEntry)),
    tags(
        (name = "session", description = "Log in and out"),
        (name = "replay", description = "Search, details, timeline, media (supervisor, auditor)"),
        (name = "audit", description = "The audit log and legal holds (auditor)"),
        (name = "users", description = "Users and roles (admin)"),
        (name = "administration", description = "Agents, contacts, the recording adapter (admin)"),
        (name = "agents", description = "Desktop enrolment (an enrolment token)"),
    )
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::COOKIE))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
