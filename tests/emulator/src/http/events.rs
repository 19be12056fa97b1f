//! `GET /events`: compliance events (only `convergedRecordings` `created` ones exist here).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::query::{self, cursor_decode, cursor_encode};
use super::{next_link, parse_max, webex_error};
use crate::clock;
use crate::state::{Shared, lock};

/// The window when `from` is absent (uncertain; as for recordings).
const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// `GET /events?resource=convergedRecordings&serviceType=calling&from=&to=&max=`, newest first,
/// `Link` paging. Other resources list nothing.
pub(crate) async fn list(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let raw = raw.unwrap_or_default();
    let pairs = query::parse(&raw);
    let bad = |message: &str| webex_error(&shared, StatusCode::BAD_REQUEST, message);
    let max = match parse_max(query::get(&pairs, "max"), 100, 1000) {
        Ok(max) => max,
        Err(message) => return bad(&message),
    };
    let parse = |name: &str| -> Result<Option<Timestamp>, String> {
        query::get(&pairs, name)
            .map(|t| {
                t.parse::<Timestamp>()
                    .map_err(|_| format!("invalid {name} {t:?}"))
            })
            .transpose()
    };
    let now = clock::now();
    let (from, to) = match (parse("from"), parse("to")) {
        (Ok(from), Ok(to)) => {
            let to = to.unwrap_or(now);
            (from.unwrap_or_else(|| clock::sub(to, DEFAULT_WINDOW)), to)
        }
        (Err(message), _) | (_, Err(message)) => return bad(&message),
    };
    if from > to {
        return bad("from must not be after to");
    }
    let cursor = match query::get(&pairs, "cursor") {
        None => None,
        Some(text) => {
            let parsed = cursor_decode(text).and_then(|c| {
                let (ms, seq) = c.split_once(':')?;
                Some((ms.parse::<i64>().ok()?, seq.parse::<u64>().ok()?))
            });
            match parsed {
                Some(cursor) => Some(cursor),
                None => return bad("invalid cursor"),
            }
        }
    };
    let resource_ok = query::get(&pairs, "resource").is_none_or(|r| r == "convergedRecordings");
    let service_ok = query::get(&pairs, "serviceType").is_none_or(|s| s == "calling");
    let (items, last): (Vec<Value>, Option<(i64, u64)>) = if resource_ok && service_ok {
        let store = lock(&shared.store);
        let page = store.events(from, to, now, cursor, max);
        let last = page.last().map(|(key, _)| *key);
        let items = page
            .into_iter()
            .map(|(_, event)| {
                json!({
                    "id": event.id,
                    "resource": "convergedRecordings",
                    "type": "created",
                    "appId": shared.app_hydra(),
                    "actorId": event.actor_id,
                    "orgId": shared.org_hydra(),
                    "created": clock::format_ms(event.created),
                    "data": event.data,
                })
            })
            .collect();
        (items, last)
    } else {
        (Vec::new(), None)
    };
    let full = items.len() == max;
    let mut response = axum::Json(json!({ "items": items })).into_response();
    if let (true, Some((ms, seq))) = (full, last) {
        let url = format!(
            "{}/events?{}",
            shared.base_url,
            query::with_cursor(&raw, &cursor_encode(&format!("{ms}:{seq}")))
        );
        if let Some(link) = next_link(&url) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    response
}
