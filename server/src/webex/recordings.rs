//! Converged Recordings (webex/API.md §1): the list, a recording's details with its temporary
//! download links, its metadata, and the audio download. Parsers take what Capture needs and
//! keep the whole document (`raw`) so nothing Webex sent is lost; unknown fields are accepted,
//! missing optional ones are `None`, a missing `id` is an error.

use std::path::Path;

use capture_shared::ids::normalize_call_session_id;
use capture_shared::time::UtcMillis;
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use super::client::{WebexClient, WebexError};
use super::time::{format_timestamp, parse_timestamp};

/// Largest page Webex serves.
pub const MAX_PAGE: u32 = 100;
/// Longest `from`–`to` window Webex accepts.
pub const MAX_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// A recording as the list (and the details) show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSummary {
    /// Webex's recording id (opaque).
    pub id: String,
    /// When recording started.
    pub time_recorded: Option<UtcMillis>,
    /// When the file was generated.
    pub create_time: Option<UtcMillis>,
    /// Length of the audio.
    pub duration_s: Option<i64>,
    /// Size of the audio file.
    pub size_bytes: Option<i64>,
    /// Owner.
    pub owner_id: Option<String>,
    /// Owner's email.
    pub owner_email: Option<String>,
    /// `user`, `place`, `virtualLine`, `callQueue`.
    pub owner_type: Option<String>,
    /// `available`, `deleted`, `purged`.
    pub status: Option<String>,
    /// Normalised callSessionId (32 lower-case hex), when Webex gave one.
    pub call_session_id: Option<String>,
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn time(value: &Value, key: &str) -> Option<UtcMillis> {
    value
        .get(key)
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
}

fn session_of(value: &Value) -> Option<String> {
    value
        .pointer("/serviceData/callSessionId")
        .and_then(Value::as_str)
        .and_then(|raw| normalize_call_session_id(raw).ok())
        .map(|id| id.as_str().to_owned())
}

impl RecordingSummary {
    /// Reads a list item or a details document.
    pub fn from_value(value: &Value) -> Result<RecordingSummary, String> {
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.trim().is_empty())
            .ok_or("a recording without an `id`")?;
        Ok(RecordingSummary {
            id: id.to_owned(),
            time_recorded: time(value, "timeRecorded"),
            create_time: time(value, "createTime"),
            duration_s: value.get("durationSeconds").and_then(Value::as_i64),
            size_bytes: value.get("sizeBytes").and_then(Value::as_i64),
            owner_id: text(value, "ownerId"),
            owner_email: text(value, "ownerEmail"),
            owner_type: text(value, "ownerType"),
            status: text(value, "status"),
            call_session_id: session_of(value),
        })
    }
}

/// A recording's details: the summary plus the temporary audio link.
#[derive(Debug, Clone)]
pub struct RecordingDetails {
    /// What the list shows.
    pub summary: RecordingSummary,
    /// The audio download link.
    pub audio_link: Option<String>,
    /// When the links expire.
    pub links_expire: Option<UtcMillis>,
    /// The whole document.
    pub raw: Value,
}

/// A paused stretch or other recording action (`recordingActions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingAction {
    /// `PAUSE`, `RESUME`, ...
    pub action: String,
    /// When.
    pub at: Option<UtcMillis>,
}

/// One side of the call (`callingParty`, `calledParty`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Party {
    /// Number or SIP URI.
    pub number: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// The actor's id (a Webex user, place, ...).
    pub actor_id: Option<String>,
    /// The actor's type.
    pub actor_type: Option<String>,
}

impl Party {
    fn from_value(value: Option<&Value>) -> Option<Party> {
        let value = value?;
        Some(Party {
            number: text(value, "number"),
            name: text(value, "name"),
            actor_id: value
                .pointer("/actor/id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            actor_type: value
                .pointer("/actor/type")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// A recording's call metadata (`showAllTypes=true`).
#[derive(Debug, Clone)]
pub struct RecordingMetadata {
    /// Normalised callSessionId.
    pub call_session_id: Option<String>,
    /// `originator` or `terminator`, from the owner's view.
    pub personality: Option<String>,
    /// The calling party.
    pub calling: Option<Party>,
    /// The called party.
    pub called: Option<Party>,
    /// The call id in its raw form (`callhalf-581329:0`).
    pub call_id: Option<String>,
    /// Session start.
    pub session_start: Option<UtcMillis>,
    /// Session stop.
    pub session_stop: Option<UtcMillis>,
    /// Pauses and resumptions: absent from the MP3.
    pub actions: Vec<RecordingAction>,
    /// Owner's name.
    pub owner_name: Option<String>,
    /// The whole document.
    pub raw: Value,
}

impl RecordingMetadata {
    /// Reads a metadata document.
    pub fn from_value(value: Value) -> Result<RecordingMetadata, String> {
        let data = value
            .get("serviceData")
            .filter(|d| d.is_object())
            .ok_or("metadata without a `serviceData` object")?;
        let actions = match data.get("recordingActions") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| RecordingAction {
                    action: text(item, "action").unwrap_or_default(),
                    at: time(item, "time"),
                })
                .collect(),
            Some(_) => return Err("`recordingActions` is not a list".into()),
        };
        Ok(RecordingMetadata {
            call_session_id: data
                .get("callSessionId")
                .and_then(Value::as_str)
                .and_then(|raw| normalize_call_session_id(raw).ok())
                .map(|id| id.as_str().to_owned()),
            personality: text(data, "personality"),
            calling: Party::from_value(data.get("callingParty")),
            called: Party::from_value(data.get("calledParty")),
            call_id: text(data, "callId"),
            session_start: data
                .pointer("/session/startTime")
                .and_then(Value::as_str)
                .and_then(parse_timestamp),
            session_stop: data
                .pointer("/session/stopTime")
                .and_then(Value::as_str)
                .and_then(parse_timestamp),
            actions,
            owner_name: text(&value, "ownerName"),
            raw: value,
        })
    }

    /// The other party, seen from the owner (`calledParty` when the owner placed the call).
    pub fn remote(&self) -> Option<&Party> {
        match self.personality.as_deref() {
            Some("originator") => self.called.as_ref(),
            _ => self.calling.as_ref(),
        }
    }
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// How many bytes.
    pub bytes: u64,
}

fn decode_error(path: &str, message: impl Into<String>) -> WebexError {
    WebexError::Decode {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl WebexClient {
    /// The first page's path of the organisation's calling recordings with `timeRecorded` in
    /// `[from, to)` (at most [`MAX_WINDOW_MS`] apart), newest first.
    pub fn recordings_path(from: UtcMillis, to: UtcMillis) -> String {
        let mut url = reqwest::Url::parse("https://webex/admin/convergedRecordings")
            .unwrap_or_else(|_| unreachable!("a constant URL parses"));
        url.query_pairs_mut()
            .append_pair("from", &format_timestamp(from))
            .append_pair("to", &format_timestamp(to))
            .append_pair("max", &MAX_PAGE.to_string())
            .append_pair("serviceType", "calling")
            .append_pair("status", "available")
            .append_pair("timezone", "UTC");
        format!(
            "/admin/convergedRecordings?{}",
            url.query().unwrap_or_default()
        )
    }

    /// One page of recordings and the next page's URL (exactly as Webex gave it). An empty page
    /// ends the list whatever its `Link` says.
    pub async fn recordings_page(
        &self,
        path: &str,
    ) -> Result<(Vec<RecordingSummary>, Option<String>), WebexError> {
        let (next, body) = self.send(Method::GET, path, None).await?;
        let items = body
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| decode_error(path, "the list has no `items` array"))?;
        let recordings = items
            .iter()
            .map(RecordingSummary::from_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| decode_error(path, e))?;
        let next = if recordings.is_empty() { None } else { next };
        Ok((recordings, next))
    }

    /// A recording's details, with fresh download links.
    pub async fn recording_details(&self, id: &str) -> Result<RecordingDetails, WebexError> {
        let path = format!("/convergedRecordings/{}", encode_segment(id));
        let (_, raw) = self.send(Method::GET, &path, None).await?;
        let summary = RecordingSummary::from_value(&raw).map_err(|e| decode_error(&path, e))?;
        if summary.id != id {
            return Err(decode_error(
                &path,
                format!("asked for recording {id}, got {}", summary.id),
            ));
        }
        let links = raw.get("temporaryDirectDownloadLinks");
        Ok(RecordingDetails {
            audio_link: links.and_then(|l| text(l, "audioDownloadLink")),
            links_expire: links.and_then(|l| time(l, "expiration")),
            summary,
            raw,
        })
    }

    /// A recording's metadata with every activity type (`showAllTypes=true`).
    pub async fn recording_metadata(&self, id: &str) -> Result<RecordingMetadata, WebexError> {
        let path = format!(
            "/convergedRecordings/{}/metadata?showAllTypes=true",
            encode_segment(id)
        );
        let (_, raw) = self.send(Method::GET, &path, None).await?;
        RecordingMetadata::from_value(raw).map_err(|e| decode_error(&path, e))
    }

    /// Streams the audio at `link` into `dest` (created or truncated, synced before returning),
    /// hashing as it goes. The link carries its own ticket: no bearer token is sent. An expired
    /// link fails with the status Webex gave (see [`WebexError::is_expired_link`]).
    pub async fn download(&self, link: &str, dest: &Path) -> Result<Downloaded, WebexError> {
        let shown = link.split('?').next().unwrap_or(link).to_owned();
        let mut response = self.execute(Method::GET, link, None, false).await?;
        let io = |e: std::io::Error| WebexError::Setup(format!("{}: {e}", dest.display()));
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        loop {
            let chunk = response.chunk().await.map_err(|e| WebexError::Transport {
                method: Method::GET,
                path: shown.clone(),
                message: e.to_string(),
            })?;
            let Some(chunk) = chunk else { break };
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        Ok(Downloaded {
            sha256: hex::encode(hasher.finalize()),
            bytes,
        })
    }
}

fn encode_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/webex/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
    }

    #[test]
    fn the_published_list_parses_and_its_two_items_share_a_session() {
        let list = fixture("converged_recordings_list.openapi.json");
        let items: Vec<RecordingSummary> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|v| RecordingSummary::from_value(v).expect("item"))
            .collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].call_session_id, items[1].call_session_id);
        assert_eq!(
            items[0].call_session_id.as_deref(),
            Some("7ba2967530164bf0af1966cf2854b000")
        );
        // `+08:00` is an instant, not a string.
        assert_eq!(
            items[0].time_recorded,
            parse_timestamp("2023-10-31T02:41:28Z")
        );
        assert_eq!(items[0].duration_s, Some(60));
    }

    #[test]
    fn the_published_metadata_parses_with_its_pause_and_remote_party() {
        let metadata =
            RecordingMetadata::from_value(fixture("converged_recording_metadata.openapi.json"))
                .expect("metadata");
        assert_eq!(
            metadata.call_session_id.as_deref(),
            Some("fe2f568891a84799a867a396bb2b024a")
        );
        assert_eq!(metadata.actions.len(), 1);
        assert_eq!(metadata.actions[0].action, "PAUSE");
        assert_eq!(
            metadata.remote().and_then(|p| p.number.as_deref()),
            Some("sip:4060@X.X.X.X;user=phone")
        );
        assert!(metadata.session_stop > metadata.session_start);
        assert!(RecordingMetadata::from_value(serde_json::json!({"id": "x"})).is_err());
        assert!(
            RecordingMetadata::from_value(
                serde_json::json!({"serviceData": {"recordingActions": "no"}})
            )
            .is_err()
        );
    }

    #[test]
    fn an_item_without_an_id_is_refused() {
        assert!(RecordingSummary::from_value(&serde_json::json!({"topic": "x"})).is_err());
        let minimal =
            RecordingSummary::from_value(&serde_json::json!({"id": "a"})).expect("minimal");
        assert_eq!(minimal.call_session_id, None);
    }

    #[test]
    fn list_paths_carry_the_window_and_largest_page() {
        let path = WebexClient::recordings_path(UtcMillis(0), UtcMillis(86_400_000));
        assert!(path.starts_with("/admin/convergedRecordings?from=1970-01-01T00%3A00%3A00"));
        assert!(path.contains("max=100"));
        assert!(path.contains("serviceType=calling"));
    }
}
