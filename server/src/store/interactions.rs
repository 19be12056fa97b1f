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
    /// `collecting`, `archived`, `failed` (tried again after a wait), `parked` (failed too
    /// often: for an operator), `deleted`.
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
    /// Agents (lower-case emails and names of owners and of agents whose screen it holds).
    pub agents: Vec<String>,
    /// `inbound`, `outbound`.
    pub direction: Option<String>,
    /// Start to end (s).
    pub length_s: Option<i64>,
    /// Whether it has (or, archived, holds) screen.
    pub has_screen: bool,
    /// Whether it has audio.
    pub has_audio: bool,
    /// Where the stitched file's timeline starts (UTC ms).
    pub timeline_start_ms: Option<i64>,
    /// The stitched file's length (ms).
    pub timeline_ms: Option<i64>,
    /// The stitched file's tracks.
    pub tracks: serde_json::Value,
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

/// Filters of the interaction list (the replay's search).
#[derive(Debug, Clone, Default)]
pub struct InteractionFilter {
    /// Started at or after (UTC ms).
    pub from_ms: Option<i64>,
    /// Started before.
    pub to_ms: Option<i64>,
    /// One call session (normalised).
    pub call_session_id: Option<String>,
    /// A recording owner's email (exact, any case).
    pub owner_email: Option<String>,
    /// Part of an agent's email or name (any case): recording owners and agents whose screen
    /// it holds.
    pub agent: Option<String>,
    /// Part of the remote party's number, digits compared (`+1 (555) 01` finds `1555012…`).
    pub number: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// At least this long (s).
    pub min_duration_s: Option<i64>,
    /// At most this long (s).
    pub max_duration_s: Option<i64>,
    /// With (`true`) or without (`false`) screen.
    pub has_screen: Option<bool>,
    /// With or without audio.
    pub has_audio: Option<bool>,
    /// Only this state (`collecting`, `archived`, `failed`, `deleted`); deleted ones are left
    /// out unless asked for.
    pub state: Option<String>,
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

fn summary_sql() -> String {
    use super::search::{HAS_AUDIO, HAS_SCREEN, LENGTH};
    format!(
        "SELECT i.id, i.call_session_id, i.start_ms, i.stop_ms, i.recordings, i.duration_s,
    i.state, i.missing, i.archive_key, i.archive_sha256, i.error, i.legal_hold, i.agents, i.direction,
    i.timeline_start_ms, i.timeline_ms, i.tracks, {LENGTH} AS length_s, {HAS_SCREEN} AS has_screen,
    {HAS_AUDIO} AS has_audio,
    (SELECT GROUP_CONCAT(ic.contact_id) FROM interaction_contacts ic WHERE ic.interaction_id = i.id) AS contacts,
    (SELECT GROUP_CONCAT(DISTINCT r.owner_email) FROM recordings r WHERE r.interaction_id = i.id) AS owners,
    (SELECT GROUP_CONCAT(DISTINCT r.remote_number) FROM recordings r WHERE r.interaction_id = i.id) AS remotes
    FROM interactions i"
    )
}

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
        agents: row
            .try_get::<Option<String>, _>("agents")?
            .unwrap_or_default()
            .split('|')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        direction: row.try_get("direction")?,
        length_s: row.try_get("length_s")?,
        has_screen: row.try_get("has_screen")?,
        has_audio: row.try_get("has_audio")?,
        timeline_start_ms: row.try_get("timeline_start_ms")?,
        timeline_ms: row.try_get("timeline_ms")?,
        tracks: row
            .try_get::<Option<String>, _>("tracks")?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null),
    })
}

impl Store {
    /// Interactions matching `filter`, newest first; up to `limit + 1` (one more tells there is
    /// a next page).
    pub async fn interactions(
        &self,
        filter: &InteractionFilter,
    ) -> Result<Vec<InteractionSummary>, StoreError> {
        use super::search::{HAS_AUDIO, HAS_SCREEN, LENGTH, like_escape};
        let agent = filter
            .agent
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| format!("%{}%", like_escape(&a.to_lowercase())));
        let number = filter
            .number
            .as_deref()
            .map(|n| n.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|d| !d.is_empty())
            .map(|d| format!("%{d}%"));
        let rows = sqlx::query(&format!(
            "{} WHERE (?1 IS NULL OR i.start_ms >= ?1) AND (?2 IS NULL OR i.start_ms < ?2)
               AND (?3 IS NULL OR i.call_session_id = ?3)
               AND (?4 IS NULL OR EXISTS (SELECT 1 FROM recordings r WHERE r.interaction_id = i.id AND r.owner_email = ?4 COLLATE NOCASE))
               AND (?5 IS NULL OR i.agents LIKE ?5 ESCAPE '\\')
               AND (?6 IS NULL OR i.remote_digits LIKE ?6)
               AND (?7 IS NULL OR i.direction = ?7)
               AND (?8 IS NULL OR {LENGTH} >= ?8) AND (?9 IS NULL OR {LENGTH} <= ?9)
               AND (?10 IS NULL OR {HAS_SCREEN} = ?10) AND (?11 IS NULL OR {HAS_AUDIO} = ?11)
               AND (CASE WHEN ?12 IS NULL THEN i.state != 'deleted' ELSE i.state = ?12 END)
             ORDER BY i.start_ms DESC, i.id LIMIT ?13 OFFSET ?14",
            summary_sql()
        ))
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .bind(&filter.call_session_id)
        .bind(&filter.owner_email)
        .bind(agent)
        .bind(number)
        .bind(&filter.direction)
        .bind(filter.min_duration_s)
        .bind(filter.max_duration_s)
        .bind(filter.has_screen)
        .bind(filter.has_audio)
        .bind(&filter.state)
        .bind(filter.limit + 1)
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
        let Some(row) = sqlx::query(&format!("{} WHERE i.id = ?", summary_sql()))
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

/// A call event on an interaction's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    /// Ringing, Connected, On Hold, …
    pub kind: String,
    /// When (UTC ms).
    pub at_ms: i64,
    /// The Webex person it happened to.
    pub person_id: String,
    /// Their agent's name, when enrolled.
    pub agent: Option<String>,
    /// Why an event did not apply, when it did not.
    pub note: Option<String>,
}

impl Store {
    /// The call events of an interaction: those of its contacts and those of its call session
    /// (people without a desktop), in time order, each once.
    pub async fn interaction_events(&self, id: &str) -> Result<Vec<TimelineEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT e.id, e.kind, e.at_ms, e.person_id, e.note,
               (SELECT a.name FROM agents a WHERE a.person_id = e.person_id) AS agent
             FROM call_events e, interactions i
             WHERE i.id = ?1 AND (e.call_session_id = i.call_session_id
               OR e.contact_id IN (SELECT contact_id FROM interaction_contacts WHERE interaction_id = ?1))
             ORDER BY e.at_ms, e.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TimelineEvent {
                    kind: r.try_get("kind")?,
                    at_ms: r.try_get("at_ms")?,
                    person_id: r.try_get("person_id")?,
                    agent: r.try_get("agent")?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }
}
