//! `GET /people` (by `email` or `id`), `/people/me`, `/people/{id}`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Caller, query, webex_error};
use crate::model::Person;
use crate::state::{Shared, lock};

fn person_json(shared: &Shared, person: &Person) -> Value {
    json!({
        "id": person.hydra_id(),
        "emails": [person.email],
        "displayName": person.name,
        "orgId": shared.org_hydra(),
        "type": "person",
        "phoneNumbers": [],
        "extension": person.extension,
    })
}

/// `GET /people?email=` or `?id=a,b`: the people the emulator knows.
pub(crate) async fn list(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let pairs = query::parse(&raw.unwrap_or_default());
    let email = query::get(&pairs, "email");
    let ids: Vec<&str> = query::get(&pairs, "id")
        .map(|ids| ids.split(',').collect())
        .unwrap_or_default();
    if email.is_none() && ids.is_empty() {
        return webex_error(&shared, StatusCode::BAD_REQUEST, "email or id is required.");
    }
    let store = lock(&shared.store);
    let items: Vec<Value> = store
        .people
        .iter()
        .filter(|p| {
            email.is_some_and(|e| p.email.eq_ignore_ascii_case(e))
                || ids
                    .iter()
                    .any(|id| *id == p.hydra_id() || *id == p.id.to_string())
        })
        .map(|p| person_json(&shared, p))
        .collect();
    axum::Json(json!({ "items": items })).into_response()
}

/// `GET /people/me`.
pub(crate) async fn me(
    State(shared): State<Arc<Shared>>,
    Extension(Caller(user)): Extension<Caller>,
) -> Response {
    let store = lock(&shared.store);
    match store.person(user) {
        Some(person) => axum::Json(person_json(&shared, person)).into_response(),
        None => webex_error(
            &shared,
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        ),
    }
}

/// `GET /people/{id}` (hydra or raw id).
pub(crate) async fn get_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let store = lock(&shared.store);
    match store
        .people
        .iter()
        .find(|p| p.hydra_id() == id || p.id.to_string() == id)
    {
        Some(person) => axum::Json(person_json(&shared, person)).into_response(),
        None => webex_error(
            &shared,
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        ),
    }
}
