//! Interactions as the API shows them: the recordings of one call session, with their parties,
//! owners, session times and the metadata Webex sent.

use serde::Serialize;
use sqlx::Row as _;

use super::{Store, StoreError};

/// One interaction in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InteractionSummary {
    /// Capture's id.
    pub id: String,
    /// Normalised callSessionId (`recording:<id>` when Webex gave none).
    pub call_session_id: String,
    /// Earliest session start.
    pub start_ms: Option<i64>,
    /// Latest session stop.
    pub stop_ms: Option<i64>,
    /// How many recordings.
    pub recordings: i64,
    /// Total audio seconds.
    pub duration_s: i64,
    /// The recordings' owners (emails), distinct.
    pub owners: Vec<String>,
    /// The remote parties' numbers, distinct.
    pub remote_numbers: Vec<String>,
    /// `collecting`, `archived`, `failed`.
    pub state: String,
    /// What the stitched file lacks (`screen`, `audio`).
    pub missing: Option<String>,
    /// The stitched file's key in the archive.
    pub archive_key: Option<String>,
    /// Its SHA-256.
    pub archive_sha256: Option<String>,
    /// Why stitching or archiving failed.
    pub error: Option<String>,
    /// The contacts whose screen belongs to it.
    pub contacts: Vec<String>,
    /// Whether retention must not delete it.
    pub legal_hold: bool,
}

/// One recording of an interaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractionRecording {
    /// Webex's id.
    pub id: String,
    /// Owner.
    pub owner_id: Option<String>,
    /// Owner's email.
    pub owner_email: Option<String>,
    /// Owner's type.
    pub owner_type: Option<String>,
    /// Owner's name.
    pub owner_name: Option<String>,
    /// `originator` or `terminator` from the owner's view.
    pub personality: Option<String>,
    /// The other party's number.
    pub remote_number: Option<String>,
    /// The other party's name.
    pub remote_name: Option<String>,
    /// Raw call id.
    pub call_id: Option<String>,
    /// Recording start.
    pub time_recorded_ms: Option<i64>,
    /// Session start.
    pub session_start_ms: Option<i64>,
    /// Session stop.
    pub session_stop_ms: Option<i64>,
    /// Audio length.
    pub duration_s: Option<i64>,
    /// Stored audio, relative to the data directory.
    pub audio_path: Option<String>,
    /// Its SHA-256.
    pub audio_sha256: Option<String>,
    /// Its size.
    pub audio_bytes: Option<i64>,
    /// The metadata document Webex sent.
    pub metadata: serde_json::Value,
}

/// Filters of the interaction list.
#[derive(Debug, Clone, Default)]
pub struct InteractionFilter {
    /// Sessions starting at or after.
    pub from_ms: Option<i64>,
    /// Sessions starting before.
    pub to_ms: Option<i64>,
    /// One call session (normalised).
    pub call_session_id: Option<String>,
    /// A recording owner's email.
    pub owner_email: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Page offset.
    pub offset: i64,
}

/// `GROUP_CONCAT` joins with commas, which emails and numbers do not hold.
fn split(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

const SUMMARY: &str = "SELECT i.id, i.call_session_id, i.start_ms, i.stop_ms, i.recordings, i.duration_s,
    i.state, i.missing, i.archive_key, i.archive_sha256, i.error, i.legal_hold,
    (SELECT GROUP_CONCAT(ic.contact_id) FROM interaction_contacts ic WHERE ic.interaction_id = i.id) AS contacts,
    (SELECT GROUP_CONCAT(DISTINCT r.owner_email) FROM recordings r WHERE r.interaction_id = i.id) AS owners,
    (SELECT GROUP_CONCAT(DISTINCT r.remote_number) FROM recordings r WHERE r.interaction_id = i.id) AS remotes
    FROM interactions i";

fn summary(row: &sqlx::sqlite::SqliteRow) -> Result<InteractionSummary, StoreError> {
    let list = |name: &str| -> Result<Vec<String>, StoreError> {
        let joined: Option<String> = row.try_get(name)?;
        Ok(split(joined))
    };
    Ok(InteractionSummary {
        id: row.try_get("id")?,
        call_session_id: row.try_get("call_session_id")?,
        start_ms: row.try_get("start_ms")?,
        stop_ms: row.try_get("stop_ms")?,
        recordings: row.try_get("recordings")?,
        duration_s: row.try_get("duration_s")?,
        owners: list("owners")?,
        remote_numbers: list("remotes")?,
        state: row.try_get("state")?,
        missing: row.try_get("missing")?,
        archive_key: row.try_get("archive_key")?,
        archive_sha256: row.try_get("archive_sha256")?,
        error: row.try_get("error")?,
        contacts: list("contacts")?,
        legal_hold: row.try_get("legal_hold")?,
    })
}

impl Store {
    /// Interactions matching `filter`, newest first.
    pub async fn interactions(
        &self,
        filter: &InteractionFilter,
    ) -> Result<Vec<InteractionSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SUMMARY} WHERE (?1 IS NULL OR i.start_ms >= ?1) AND (?2 IS NULL OR i.start_ms < ?2)
               AND (?3 IS NULL OR i.call_session_id = ?3)
               AND (?4 IS NULL OR EXISTS (SELECT 1 FROM recordings r WHERE r.interaction_id = i.id AND r.owner_email = ?4 COLLATE NOCASE))
             ORDER BY i.start_ms DESC, i.id LIMIT ?5 OFFSET ?6"
        ))
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .bind(&filter.call_session_id)
        .bind(&filter.owner_email)
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary).collect()
    }

    /// One interaction and its recordings in time order.
    pub async fn interaction(
        &self,
        id: &str,
    ) -> Result<Option<(InteractionSummary, Vec<InteractionRecording>)>, StoreError> {
        let Some(row) = sqlx::query(&format!("{SUMMARY} WHERE i.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let interaction = summary(&row)?;
        let rows = sqlx::query(
            "SELECT id, owner_id, owner_email, owner_type, owner_name, personality, remote_number, remote_name,
               call_id, time_recorded_ms, session_start_ms, session_stop_ms, duration_s, audio_path,
               audio_sha256, audio_bytes, metadata
             FROM recordings WHERE interaction_id = ? ORDER BY COALESCE(session_start_ms, time_recorded_ms), id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let recordings = rows
            .iter()
            .map(|row| {
                let metadata: Option<String> = row.try_get("metadata")?;
                Ok(InteractionRecording {
                    id: row.try_get("id")?,
                    owner_id: row.try_get("owner_id")?,
                    owner_email: row.try_get("owner_email")?,
                    owner_type: row.try_get("owner_type")?,
                    owner_name: row.try_get("owner_name")?,
                    personality: row.try_get("personality")?,
                    remote_number: row.try_get("remote_number")?,
                    remote_name: row.try_get("remote_name")?,
                    call_id: row.try_get("call_id")?,
                    time_recorded_ms: row.try_get("time_recorded_ms")?,
                    session_start_ms: row.try_get("session_start_ms")?,
                    session_stop_ms: row.try_get("session_stop_ms")?,
                    duration_s: row.try_get("duration_s")?,
                    audio_path: row.try_get("audio_path")?,
                    audio_sha256: row.try_get("audio_sha256")?,
                    audio_bytes: row.try_get("audio_bytes")?,
                    metadata: metadata
                        .as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|e| super::corrupt(format!("recording metadata: {e}")))?
                        .unwrap_or(serde_json::Value::Null),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((interaction, recordings)))
    }
}
