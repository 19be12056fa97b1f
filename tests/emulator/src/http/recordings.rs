//! `/convergedRecordings`: list, details, metadata, delete, and the download servlet.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::query::{self, cursor_decode, cursor_encode};
use super::{Caller, json_answer, next_link, parse_max, webex_error};
use crate::clock;
use crate::documents::{self, Links};
use crate::faults::Document;
use crate::model::Status;
use crate::state::{Shared, lock};
use crate::store::{ListQuery, owner_type_valid};

/// Longest `from`–`to` window.
const MAX_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// The window when `from` is absent. Uncertain: Webex does not document the default; we use
/// 7 days before `to` (itself defaulting to now).
const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 86_400);

fn bad_request(shared: &Shared, message: &str) -> Response {
    webex_error(shared, StatusCode::BAD_REQUEST, message)
}

/// The zone to format times in: the `timezone` query parameter, else the header, else the
/// configured offset. Unknown names are refused (uncertain what Webex does; an error makes a
/// client bug visible).
fn zone(
    shared: &Shared,
    pairs: &[(String, String)],
    headers: &HeaderMap,
) -> Result<TimeZone, String> {
    let name = query::get(pairs, "timezone")
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("timezone")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
    match name {
        None => Ok(TimeZone::fixed(shared.config.time_offset)),
        Some(name) if name.trim().is_empty() => Err("timezone must not be empty".into()),
        Some(name) => TimeZone::get(name.trim()).map_err(|_| format!("unknown timezone {name:?}")),
    }
}

/// Parses `from`/`to`. The query is form-decoded, so a raw `+` in an offset becomes a space and is
/// refused (uncertain: Webex may be lenient; clients must send `%2B`).
fn instant(pairs: &[(String, String)], name: &str) -> Result<Option<Timestamp>, String> {
    query::get(pairs, name)
        .map(|text| {
            text.parse::<Timestamp>().map_err(|_| {
                format!("{name} must be an ISO-8601 date-time with an offset (a '+' must be sent as %2B), got {text:?}")
            })
        })
        .transpose()
}

fn list_query(
    pairs: &[(String, String)],
    only_owner: Option<uuid::Uuid>,
) -> Result<ListQuery, String> {
    let now = clock::now();
    let max = parse_max(query::get(pairs, "max"), 10, 100)?;
    let to = instant(pairs, "to")?.unwrap_or(now);
    let from = instant(pairs, "from")?.unwrap_or_else(|| clock::sub(to, DEFAULT_WINDOW));
    if from > to {
        return Err("from must not be after to".into());
    }
    if clock::between(from, to) > MAX_WINDOW {
        return Err("The time range between from and to must not exceed 30 days".into());
    }
    let status = match query::get(pairs, "status") {
        None => Status::Available,
        Some(text) => Status::parse(text).ok_or_else(|| format!("invalid status {text:?}"))?,
    };
    let service_type = query::get(pairs, "serviceType").map(str::to_owned);
    if let Some(text) = &service_type
        && !matches!(text.as_str(), "calling" | "customerAssist")
    {
        return Err(format!("invalid serviceType {text:?}"));
    }
    let owner_type = query::get(pairs, "ownerType").map(str::to_owned);
    if let Some(text) = &owner_type
        && !owner_type_valid(text)
    {
        return Err(format!("invalid ownerType {text:?}"));
    }
    let format = query::get(pairs, "format").map(str::to_owned);
    if let Some(text) = &format
        && !text.eq_ignore_ascii_case("MP3")
    {
        return Err(format!("invalid format {text:?}"));
    }
    let cursor = match query::get(pairs, "cursor") {
        None => None,
        Some(text) => {
            let decoded = cursor_decode(text).ok_or("invalid cursor")?;
            let (ms, id) = decoded.split_once(':').ok_or("invalid cursor")?;
            Some((ms.parse().map_err(|_| "invalid cursor")?, id.to_owned()))
        }
    };
    Ok(ListQuery {
        from,
        to,
        status,
        max,
        cursor,
        service_type,
        owner_id: query::get(pairs, "ownerId").map(str::to_owned),
        owner_email: query::get(pairs, "ownerEmail").map(str::to_owned),
        owner_type,
        format,
        only_owner,
        now,
    })
}

/// `GET /admin/convergedRecordings`: the org's recordings.
pub(crate) async fn list_admin(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    list(
        &shared,
        raw.unwrap_or_default(),
        &headers,
        None,
        "admin/convergedRecordings",
    )
}

/// `GET /convergedRecordings`: the caller's own recordings. Our choice: "own" means owned by the
/// token's user, so the compliance officer's token (which owns no recording) lists nothing here.
pub(crate) async fn list_own(
    State(shared): State<Arc<Shared>>,
    Extension(Caller(user)): Extension<Caller>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    list(
        &shared,
        raw.unwrap_or_default(),
        &headers,
        Some(user),
        "convergedRecordings",
    )
}

/// Filtering and ordering use `timeRecorded` (uncertain: Webex may use `createTime`; filtering on
/// the recording's start is the harder case for clients, since a recording published late lands in
/// a window they may already have polled). Newest first; a full page always carries a `next` link,
/// so the page after an exactly full last page is empty.
fn list(
    shared: &Shared,
    raw: String,
    headers: &HeaderMap,
    only_owner: Option<uuid::Uuid>,
    path: &str,
) -> Response {
    let pairs = query::parse(&raw);
    let zone = match zone(shared, &pairs, headers) {
        Ok(zone) => zone,
        Err(message) => return bad_request(shared, &message),
    };
    let query = match list_query(&pairs, only_owner) {
        Ok(query) => query,
        Err(message) => return bad_request(shared, &message),
    };
    let corrupt = {
        let mut faults = lock(&shared.faults);
        let corrupt = faults.corrupt_list_pages > 0;
        faults.corrupt_list_pages = faults.corrupt_list_pages.saturating_sub(1);
        corrupt
    };
    let (mut response, full, last) = {
        let store = lock(&shared.store);
        let page = store.list(&query);
        let last = page
            .last()
            .map(|r| format!("{}:{}", r.time_recorded.as_millisecond(), r.id));
        let full = page.len() == query.max;
        let items: Vec<_> = page
            .iter()
            .map(|r| documents::list_item(r, &zone))
            .collect();
        (json_answer(&Page { items }, corrupt), full, last)
    };
    if let (true, Some(last)) = (full, last) {
        let url = format!(
            "{}/{path}?{}",
            shared.base_url,
            query::with_cursor(&raw, &cursor_encode(&last))
        );
        if let Some(link) = next_link(&url) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    response
}

/// A list answer.
#[derive(serde::Serialize)]
struct Page<T> {
    items: Vec<T>,
}

fn not_found(shared: &Shared) -> Response {
    webex_error(
        shared,
        StatusCode::NOT_FOUND,
        "The requested resource could not be found.",
    )
}

/// `GET /convergedRecordings/{id}`: mints a fresh download ticket every time.
pub(crate) async fn details(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs = query::parse(&raw.unwrap_or_default());
    let zone = match zone(&shared, &pairs, &headers) {
        Ok(zone) => zone,
        Err(message) => return bad_request(&shared, &message),
    };
    let now = clock::now();
    let ticket = shared.ids.token(40);
    let expiration = clock::add(now, shared.config.link_ttl);
    let value = {
        let mut store = lock(&shared.store);
        let Some(recording) = store
            .get(&id)
            .filter(|r| r.status == Status::Available && r.create_time <= now)
        else {
            return not_found(&shared);
        };
        let links = Links {
            audio: format!(
                "{}/nbr/MultiThreadDownloadServlet?type=calling&orgId={}&recordUUID={}&ticket={}&timestamp={}",
                shared.origin,
                shared.org_id,
                query::encode(&id),
                ticket,
                now.as_millisecond()
            ),
            notes_base: shared.origin.clone(),
            expiration,
        };
        let value = documents::details(recording, &zone, &links);
        store.add_ticket(ticket, id.clone(), expiration, now);
        value
    };
    let corrupt = lock(&shared.faults)
        .corrupt
        .contains(&(id, Document::Details));
    json_answer(&value, corrupt)
}

/// `GET /convergedRecordings/{id}/metadata`.
pub(crate) async fn metadata(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = query::parse(&raw.unwrap_or_default());
    let show_all = query::get(&pairs, "showAllTypes") == Some("true");
    let now = clock::now();
    let value = {
        let store = lock(&shared.store);
        let Some(recording) = store
            .get(&id)
            .filter(|r| r.status == Status::Available && r.create_time <= now)
        else {
            return not_found(&shared);
        };
        documents::metadata(recording, shared.org_id, show_all)
    };
    let corrupt = lock(&shared.faults)
        .corrupt
        .contains(&(id, Document::Metadata));
    json_answer(&value, corrupt)
}

/// `DELETE /convergedRecordings/{id}`: moves an available recording to `deleted` (the recycle bin;
/// uncertain whether Webex purges at once for compliance officers). Anything else is a 404.
pub(crate) async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut store = lock(&shared.store);
    let available = store
        .get(&id)
        .is_some_and(|r| r.status == Status::Available && r.create_time <= clock::now());
    if !available {
        return not_found(&shared);
    }
    store.set_status(&id, Status::Deleted);
    StatusCode::NO_CONTENT.into_response()
}

/// The download servlet: no bearer needed (one is ignored); the ticket is the credential.
/// Unknown or expired tickets get 403 with a JSON error body (uncertain what Webex answers).
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = query::parse(&raw.unwrap_or_default());
    let id = query::get(&pairs, "recordUUID").unwrap_or_default();
    let ticket = query::get(&pairs, "ticket").unwrap_or_default();
    let now = clock::now();
    let plan = {
        let store = lock(&shared.store);
        let valid = store
            .ticket(ticket)
            .is_some_and(|t| t.recording_id == id && t.expires > now);
        if !valid {
            return webex_error(
                &shared,
                StatusCode::FORBIDDEN,
                "The download link is invalid or has expired.",
            );
        }
        match store.get(id).filter(|r| r.status == Status::Available) {
            Some(recording) => recording.audio.clone(),
            None => return not_found(&shared),
        }
    };
    let bytes = plan.bytes(&shared.library);
    *lock(&shared.stats)
        .stats
        .audio_downloads
        .entry(id.to_owned())
        .or_default() += 1;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.mp3\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
