//! Media: an archived interaction's stitched file and its views, served with HTTP range requests
//! (a browser seeks only in media served so), and its export. Every replay and export is audited:
//! a replay once per user, interaction and [`REPLAY_AUDIT_WINDOW`] (a player makes many range
//! requests), an export every time.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Deserialize;

use super::auth::Caller;
use crate::api::{ApiError, ApiState};

/// Where views extracted from archived files are kept (inside the data directory).
pub const CACHE_DIR: &str = "replay-cache";
/// How long an extracted view is kept after it was made.
pub const CACHE_TTL: Duration = Duration::from_secs(6 * 3600);
/// One replay entry per user and interaction within this window.
pub const REPLAY_AUDIT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Replay's shared state: recent replay audits, and one extraction at a time.
#[derive(Debug, Default)]
pub struct MediaState {
    recent: std::sync::Mutex<HashMap<(String, String), Instant>>,
    extracting: tokio::sync::Mutex<()>,
}

/// Which part of the interaction.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MediaQuery {
    /// `all` (the stitched file, default), `audio`, or `video-N` (the N-th video track, 0-based:
    /// one per monitor of each contact, in the order of the interaction's `tracks`).
    pub view: Option<String>,
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
}

/// The archive key of an archived interaction.
async fn archived_key(state: &ApiState, id: &str) -> Result<(String, serde_json::Value), ApiError> {
    let Some((interaction, _)) = state.store.interaction(id).await? else {
        return Err(not_found(format!("no interaction {id}")));
    };
    match (interaction.state.as_str(), interaction.archive_key) {
        ("archived", Some(key)) => Ok((key, interaction.tracks)),
        ("deleted", _) => Err(ApiError::new(
            StatusCode::GONE,
            "deleted",
            format!("interaction {id} was deleted by retention"),
        )),
        (state, _) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_archived",
            format!("interaction {id} is {state}: its media is not archived yet"),
        )),
    }
}

fn audit_replay(state: &ApiState, caller: &Caller, id: &str, view: &str, headers: &HeaderMap) {
    // A player's first request has no range or starts at 0; later ones (seeks) are not replays.
    let first = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|r| r.trim_start_matches("bytes=").starts_with("0-"));
    if !first {
        return;
    }
    let key = (caller.actor.clone(), id.to_owned());
    {
        let mut recent = state.media.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|_, at| at.elapsed() < REPLAY_AUDIT_WINDOW);
        if recent.contains_key(&key) {
            return;
        }
        recent.insert(key, Instant::now());
    }
    let (store, actor, id, view, now) = (
        state.store.clone(),
        caller.actor.clone(),
        id.to_owned(),
        view.to_owned(),
        state.clock.now_ms(),
    );
    tokio::spawn(async move {
        if let Err(error) = store
            .audit(now, &actor, "replay", &id, Some(&format!("view {view}")))
            .await
        {
            tracing::error!(%error, "replay not audited");
        }
    });
}

/// A `Range` header against `size`: `Ok(None)` for the whole, `Ok(Some(range))` for one range,
/// `Err(())` when unsatisfiable. Several ranges are answered with the whole (RFC 9110 allows).
fn requested(headers: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let ranges = http_range_header::parse_range_header(value)
        .and_then(|parsed| parsed.validate(size))
        .map_err(|_| ())?;
    match ranges.as_slice() {
        [one] => Ok(Some(*one.start()..*one.end() + 1)),
        _ => Ok(None),
    }
}

/// 416 with the size, as RFC 9110 asks.
fn unsatisfiable(size: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "bad_range",
        format!("the requested range is outside the {size} bytes"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

fn media_response(
    size: u64,
    range: Option<Range<u64>>,
    content_type: &'static str,
    body: Body,
) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let length = match &range {
        Some(r) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1))
            {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r.end - r.start
        }
        None => size,
    };
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

async fn serve_archived(
    state: &ApiState,
    key: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let size = state
        .archive
        .size(key)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| not_found("the archived file is missing"))?;
    let Ok(range) = requested(headers, size) else {
        return Ok(unsatisfiable(size));
    };
    let bytes = range.clone().unwrap_or(0..size);
    let stream = state
        .archive
        .read_range(key, bytes)
        .await
        .map_err(|e| internal(&e))?
        .map(|chunk| chunk.map_err(std::io::Error::other));
    Ok(media_response(
        size,
        range,
        "video/mp4",
        Body::from_stream(stream),
    ))
}

async fn serve_file(
    path: &Path,
    headers: &HeaderMap,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| internal(&e))?;
    let size = file.metadata().await.map_err(|e| internal(&e))?.len();
    let Ok(range) = requested(headers, size) else {
        return Ok(unsatisfiable(size));
    };
    let bytes = range.clone().unwrap_or(0..size);
    file.seek(std::io::SeekFrom::Start(bytes.start))
        .await
        .map_err(|e| internal(&e))?;
    let stream = tokio_util::io::ReaderStream::new(file.take(bytes.end - bytes.start));
    Ok(media_response(
        size,
        range,
        content_type,
        Body::from_stream(stream),
    ))
}

fn internal(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "media not served");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the media could not be read",
    )
}

/// Removes views made longer than [`CACHE_TTL`] ago.
async fn sweep(cache: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(cache).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let old = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > CACHE_TTL);
        if old {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// The view file of `id`, extracted from the archived file when not cached.
async fn view_file(
    state: &ApiState,
    id: &str,
    key: &str,
    track: usize,
) -> Result<Option<PathBuf>, ApiError> {
    let cache = state.data_dir.join(CACHE_DIR);
    // One folder per version of the file: a re-stitched interaction is extracted anew.
    let version = key.rsplit('/').next().unwrap_or("interaction.mp4");
    let dir = cache.join(id).join(version.trim_end_matches(".mp4"));
    let view = dir.join(format!("track-{track}.mp4"));
    if tokio::fs::try_exists(&view).await.unwrap_or(false) {
        return Ok(Some(view));
    }
    let _one_at_a_time = state.media.extracting.lock().await;
    if tokio::fs::try_exists(&view).await.unwrap_or(false) {
        return Ok(Some(view));
    }
    sweep(&cache).await;
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| internal(&e))?;
    let whole = dir.join("interaction.mp4");
    state
        .archive
        .copy_to_file(key, &whole)
        .await
        .map_err(|e| internal(&e))?;
    // Every view at once (one pass over the file): the page asks for all of them together. The
    // local copy is not kept (the whole file is served from the archive).
    let (out_dir, copy) = (dir.clone(), whole.clone());
    tokio::task::spawn_blocking(move || crate::media::views::extract_all(&copy, &out_dir))
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| internal(&e))?;
    let _ = tokio::fs::remove_file(&whole).await;
    Ok(tokio::fs::try_exists(&view)
        .await
        .unwrap_or(false)
        .then_some(view))
}

/// The index of the `n`-th video track, and the audio track's, in `tracks` (the manifest's
/// list: `{track, kind, …}` in file order).
fn track_index(tracks: &serde_json::Value, kind: &str, n: usize) -> Option<usize> {
    tracks
        .as_array()?
        .iter()
        .enumerate()
        .filter(|(_, t)| t["kind"] == kind)
        .nth(n)
        .map(|(index, _)| index)
}

/// `GET /api/v1/interactions/{id}/media`: the stitched file or one of its views, with ranges.
#[utoipa::path(get, path = "/api/v1/interactions/{id}/media", tag = "replay",
    params(("id" = String, Path, description = "The interaction"), MediaQuery),
    responses((status = 200, description = "The whole file (video/mp4 or audio/mp4)"),
              (status = 206, description = "The requested byte range"),
              (status = 404, description = "No such interaction or view"),
              (status = 409, description = "Not archived yet"),
              (status = 416, description = "The range is outside the file")))]
pub async fn media(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<MediaQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let (key, tracks) = archived_key(&state, &id).await?;
    let view = query.view.unwrap_or_else(|| "all".into());
    let index = match view.as_str() {
        "all" => {
            audit_replay(&state, &caller, &id, &view, &headers);
            return serve_archived(&state, &key, &headers).await;
        }
        "audio" => track_index(&tracks, "audio", 0),
        other => match other.strip_prefix("video-").map(str::parse::<usize>) {
            Some(Ok(n)) => track_index(&tracks, "video", n),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    "`view` is all, audio or video-N",
                ));
            }
        },
    };
    let index = index.ok_or_else(|| not_found(format!("interaction {id} has no {view}")))?;
    let file = view_file(&state, &id, &key, index)
        .await?
        .ok_or_else(|| not_found(format!("interaction {id} has no {view}")))?;
    audit_replay(&state, &caller, &id, &view, &headers);
    let content_type = if view == "audio" {
        "audio/mp4"
    } else {
        "video/mp4"
    };
    serve_file(&file, &headers, content_type).await
}

/// `GET /api/v1/interactions/{id}/export`: the stitched file as a download (audited).
#[utoipa::path(get, path = "/api/v1/interactions/{id}/export", tag = "replay",
    params(("id" = String, Path, description = "The interaction")),
    responses((status = 200, description = "The stitched file, as an attachment"),
              (status = 409, description = "Not archived yet")))]
pub async fn export(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (key, _) = archived_key(&state, &id).await?;
    state
        .store
        .audit(
            state.clock.now_ms(),
            &caller.actor,
            "export",
            &id,
            Some(&key),
        )
        .await?;
    let mut response = serve_archived(&state, &key, &HeaderMap::new()).await?;
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"interaction-{id}.mp4\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Shared media state for [`ApiState`].
pub fn state() -> Arc<MediaState> {
    Arc::new(MediaState::default())
}
