//! The adapter's durable jobs (one row per Webex recording id), the poll watermark, backfills,
//! and the interactions recordings consolidate into.
//!
//! Exactly once: a recording id is inserted once (`ON CONFLICT DO NOTHING`, whoever sees it
//! first); a worker claims due rows with a lease (`lease_owner`, `lease_until_ms`) so that two
//! processes on one database (the service and a `backfill`) never fetch the same recording at
//! the same time; the row turns `stored` only in the transaction that files it into its
//! interaction, and only for the lease holder.

use serde::Serialize;
use sqlx::Row as _;

use super::{Store, StoreError};

/// A recording seen in a list page or announced by a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Webex's recording id.
    pub id: String,
    /// When it started, when known.
    pub time_recorded_ms: Option<i64>,
}

/// Everything a fetched recording contributes.
#[derive(Debug, Clone, Default)]
pub struct StoredRecording {
    /// Webex's id.
    pub id: String,
    /// Normalised callSessionId.
    pub call_session_id: Option<String>,
    /// Owner.
    pub owner_id: Option<String>,
    /// Owner's email.
    pub owner_email: Option<String>,
    /// Owner's type.
    pub owner_type: Option<String>,
    /// Owner's name (metadata).
    pub owner_name: Option<String>,
    /// `originator` / `terminator`.
    pub personality: Option<String>,
    /// The other party's number.
    pub remote_number: Option<String>,
    /// The other party's name.
    pub remote_name: Option<String>,
    /// Raw call id.
    pub call_id: Option<String>,
    /// Recording start.
    pub time_recorded_ms: Option<i64>,
    /// File generated.
    pub create_time_ms: Option<i64>,
    /// Session start (metadata).
    pub session_start_ms: Option<i64>,
    /// Session stop (metadata).
    pub session_stop_ms: Option<i64>,
    /// Audio length.
    pub duration_s: Option<i64>,
    /// Size Webex announced.
    pub size_bytes: Option<i64>,
    /// The audio file, relative to the data directory.
    pub audio_path: String,
    /// Its SHA-256.
    pub audio_sha256: String,
    /// Its size.
    pub audio_bytes: i64,
    /// The details document (JSON).
    pub details: String,
    /// The metadata document (JSON).
    pub metadata: String,
}

/// A job's state and error, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingJob {
    /// Webex's id.
    pub id: String,
    /// `pending`, `stored`, `parked`.
    pub state: String,
    /// `poll`, `webhook`, `backfill`.
    pub source: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When first seen.
    pub discovered_ms: i64,
    /// When stored.
    pub stored_ms: Option<i64>,
    /// Its interaction, once stored.
    pub interaction_id: Option<String>,
    /// SHA-256 of the stored audio.
    pub audio_sha256: Option<String>,
    /// Stored audio size.
    pub audio_bytes: Option<i64>,
    /// Recording start.
    pub time_recorded_ms: Option<i64>,
}

/// Counts of jobs by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// To fetch.
    pub pending: i64,
    /// Stored.
    pub stored: i64,
    /// Parked.
    pub parked: i64,
}

/// A backfill's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backfill {
    /// Its id.
    pub id: i64,
    /// Range start.
    pub from_ms: i64,
    /// Range end (exclusive).
    pub to_ms: i64,
    /// Start of the window being listed.
    pub window_from_ms: i64,
    /// The next page to list in that window.
    pub next_url: Option<String>,
    /// Recordings listed so far.
    pub listed: i64,
    /// `listing`, `listed`, `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
}

const JOB_COLUMNS: &str = "id, state, source, attempts, last_error, discovered_ms, stored_ms, \
     interaction_id, audio_sha256, audio_bytes, time_recorded_ms";

fn job(row: &sqlx::sqlite::SqliteRow) -> Result<RecordingJob, StoreError> {
    Ok(RecordingJob {
        id: row.try_get("id")?,
        state: row.try_get("state")?,
        source: row.try_get("source")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        discovered_ms: row.try_get("discovered_ms")?,
        stored_ms: row.try_get("stored_ms")?,
        interaction_id: row.try_get("interaction_id")?,
        audio_sha256: row.try_get("audio_sha256")?,
        audio_bytes: row.try_get("audio_bytes")?,
        time_recorded_ms: row.try_get("time_recorded_ms")?,
    })
}

fn backfill(row: &sqlx::sqlite::SqliteRow) -> Result<Backfill, StoreError> {
    Ok(Backfill {
        id: row.try_get("id")?,
        from_ms: row.try_get("from_ms")?,
        to_ms: row.try_get("to_ms")?,
        window_from_ms: row.try_get("window_from_ms")?,
        next_url: row.try_get("next_url")?,
        listed: row.try_get("listed")?,
        state: row.try_get("state")?,
        error: row.try_get("error")?,
    })
}

async fn insert_discovered(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    items: &[Discovered],
    source: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut new = 0;
    for item in items {
        new += sqlx::query(
            "INSERT INTO recordings (id, state, source, discovered_ms, time_recorded_ms, next_attempt_ms)
             VALUES (?, 'pending', ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&item.id)
        .bind(source)
        .bind(now_ms)
        .bind(item.time_recorded_ms)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(new)
}

impl Store {
    /// Records recordings to fetch (ids already known are left as they are); how many were new.
    pub async fn discover_recordings(
        &self,
        items: &[Discovered],
        source: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let new = insert_discovered(&mut tx, items, source, now_ms).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Claims up to `limit` due recordings for `owner` until `lease_until_ms`.
    pub async fn claim_recordings(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let _turn = self.write_turn().await;
        let rows = sqlx::query(
            "UPDATE recordings SET lease_owner = ?, lease_until_ms = ?
             WHERE id IN (SELECT id FROM recordings WHERE state = 'pending' AND next_attempt_ms <= ?
                          AND (lease_until_ms IS NULL OR lease_until_ms < ?)
                          ORDER BY next_attempt_ms LIMIT ?)
             RETURNING id",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(StoreError::from))
            .collect()
    }

    /// Extends `owner`'s leases of recordings it is still working on.
    pub async fn renew_leases(&self, owner: &str, lease_until_ms: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE recordings SET lease_until_ms = ? WHERE lease_owner = ? AND state = 'pending'",
        )
        .bind(lease_until_ms)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up `owner`'s leases (at shutdown), so another process need not wait them out.
    pub async fn release_leases(&self, owner: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE recordings SET lease_owner = NULL, lease_until_ms = NULL WHERE lease_owner = ? AND state = 'pending'",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the next pending recording is due (`None`: nothing pending).
    pub async fn next_recording_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(MAX(next_attempt_ms, COALESCE(lease_until_ms, 0))) AS due FROM recordings WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("due")?)
    }

    /// A failed attempt: retried at `retry_at_ms`, or parked when `park` (the reason stays
    /// visible either way). Only the lease holder's failure counts.
    pub async fn recording_failed(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        retry_at_ms: i64,
        park: bool,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE recordings SET attempts = attempts + 1, last_error = ?, next_attempt_ms = ?,
               state = CASE WHEN ? THEN 'parked' ELSE state END, lease_owner = NULL, lease_until_ms = NULL
             WHERE id = ? AND lease_owner = ? AND state = 'pending'",
        )
        .bind(error)
        .bind(retry_at_ms)
        .bind(park)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many attempts a recording has had.
    pub async fn recording_attempts(&self, id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT attempts FROM recordings WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("attempts")).transpose()?.unwrap_or(0))
    }

    /// Files a fetched recording: stored, joined to the interaction of its callSessionId
    /// (created if needed). Returns the interaction id, or `None` when `owner` no longer holds
    /// the recording (another process stored it; nothing changes).
    pub async fn store_recording(
        &self,
        owner: &str,
        recording: &StoredRecording,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query(
            "SELECT 1 FROM recordings WHERE id = ? AND state = 'pending' AND lease_owner = ?",
        )
        .bind(&recording.id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            return Ok(None);
        }
        let start = recording.session_start_ms.or(recording.time_recorded_ms);
        let stop = recording
            .session_stop_ms
            .or_else(|| Some(start? + recording.duration_s? * 1000));
        let session = self
            .consolidation_key(&mut tx, recording, start, stop)
            .await?;
        let new_id = uuid::Uuid::new_v4().to_string();
        let row = sqlx::query(
            "INSERT INTO interactions (id, call_session_id, start_ms, stop_ms, recordings, duration_s, created_ms, updated_ms)
             VALUES (?, ?, ?, ?, 1, ?, ?, ?)
             ON CONFLICT (call_session_id) DO UPDATE SET
               start_ms = CASE WHEN interactions.start_ms IS NULL OR excluded.start_ms < interactions.start_ms
                               THEN excluded.start_ms ELSE interactions.start_ms END,
               stop_ms = CASE WHEN interactions.stop_ms IS NULL OR excluded.stop_ms > interactions.stop_ms
                              THEN excluded.stop_ms ELSE interactions.stop_ms END,
               recordings = interactions.recordings + 1,
               duration_s = interactions.duration_s + excluded.duration_s,
               updated_ms = excluded.updated_ms
             RETURNING id",
        )
        .bind(&new_id)
        .bind(&session)
        .bind(start)
        .bind(stop)
        .bind(recording.duration_s.unwrap_or(0))
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let interaction: String = row.try_get("id")?;
        if let (Some(owner), Some(start)) = (recording.owner_id.as_deref(), start) {
            super::matching::link_overlapping_screens(
                &mut tx,
                &interaction,
                owner,
                start,
                stop.unwrap_or(start),
            )
            .await?;
        }
        sqlx::query(
            "UPDATE recordings SET state = 'stored', lease_owner = NULL, lease_until_ms = NULL, last_error = NULL,
               attempts = attempts + 1, interaction_id = ?, call_session_id = ?, owner_id = ?, owner_email = ?,
               owner_type = ?, owner_name = ?, personality = ?, remote_number = ?, remote_name = ?, call_id = ?,
               time_recorded_ms = ?, create_time_ms = ?, session_start_ms = ?, session_stop_ms = ?,
               duration_s = ?, size_bytes = ?, audio_path = ?, audio_sha256 = ?, audio_bytes = ?,
               details = ?, metadata = ?, stored_ms = ?
             WHERE id = ?",
        )
        .bind(&interaction)
        .bind(&recording.call_session_id)
        .bind(&recording.owner_id)
        .bind(&recording.owner_email)
        .bind(&recording.owner_type)
        .bind(&recording.owner_name)
        .bind(&recording.personality)
        .bind(&recording.remote_number)
        .bind(&recording.remote_name)
        .bind(&recording.call_id)
        .bind(recording.time_recorded_ms)
        .bind(recording.create_time_ms)
        .bind(recording.session_start_ms)
        .bind(recording.session_stop_ms)
        .bind(recording.duration_s)
        .bind(recording.size_bytes)
        .bind(&recording.audio_path)
        .bind(&recording.audio_sha256)
        .bind(recording.audio_bytes)
        .bind(&recording.details)
        .bind(&recording.metadata)
        .bind(now_ms)
        .bind(&recording.id)
        .execute(&mut *tx)
        .await?;
        super::search::refresh_search(&mut tx, &interaction).await?;
        tx.commit().await?;
        self.ingestion_inputs.notify_one();
        Ok(Some(interaction))
    }

    /// The interaction key a stored recording joins: its callSessionId; when the call's screen
    /// was linked before under its contact (its events carried no callSessionId), that
    /// interaction, re-keyed by the callSessionId; without a callSessionId, the interaction of
    /// an overlapping contact of the owner, else `recording:<id>`.
    async fn consolidation_key(
        &self,
        tx: &mut sqlx::SqliteConnection,
        recording: &StoredRecording,
        start: Option<i64>,
        stop: Option<i64>,
    ) -> Result<String, StoreError> {
        let owner_window = recording
            .owner_id
            .as_deref()
            .zip(start)
            .map(|(owner, start)| (owner, start, stop.unwrap_or(start)));
        let Some(session) = recording.call_session_id.clone() else {
            if let Some((owner, from, to)) = owner_window
                && let Some((_, key)) =
                    super::matching::interaction_by_owner_contact(tx, owner, from, to, false)
                        .await?
            {
                return Ok(key);
            }
            return Ok(format!("recording:{}", recording.id));
        };
        let exists = sqlx::query("SELECT 1 FROM interactions WHERE call_session_id = ?")
            .bind(&session)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists
            && let Some((owner, from, to)) = owner_window
            && let Some((id, _)) =
                super::matching::interaction_by_owner_contact(tx, owner, from, to, true).await?
        {
            sqlx::query("UPDATE interactions SET call_session_id = ? WHERE id = ?")
                .bind(&session)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        Ok(session)
    }

    /// Puts a parked recording back in the queue (an operator's retry).
    pub async fn retry_recording(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE recordings SET state = 'pending', attempts = 0, next_attempt_ms = ? WHERE id = ? AND state = 'parked'",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One job.
    pub async fn recording_job(&self, id: &str) -> Result<Option<RecordingJob>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM recordings WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job).transpose()
    }

    /// Jobs in `state` (any when `None`), newest first.
    pub async fn recording_jobs(
        &self,
        state: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<RecordingJob>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM recordings WHERE (?1 IS NULL OR state = ?1)
             ORDER BY discovered_ms DESC, id LIMIT ?2 OFFSET ?3"
        ))
        .bind(state)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job).collect()
    }

    /// Counts by state, over every job or those recorded in `[from_ms, to_ms)`.
    pub async fn recording_counts(
        &self,
        range: Option<(i64, i64)>,
    ) -> Result<JobCounts, StoreError> {
        let (from, to) = range.unwrap_or((i64::MIN, i64::MAX));
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM recordings
             WHERE ?1 = -9223372036854775808 OR (time_recorded_ms >= ?1 AND time_recorded_ms < ?2)
             GROUP BY state",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = JobCounts::default();
        for row in rows {
            let n: i64 = row.try_get("n")?;
            match row.try_get::<String, _>("state")?.as_str() {
                "pending" => counts.pending = n,
                "stored" => counts.stored = n,
                _ => counts.parked = n,
            }
        }
        Ok(counts)
    }

    /// A small durable value of the adapter.
    pub async fn adapter_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM adapter_state WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Sets a small durable value of the adapter.
    pub async fn set_adapter_value(
        &self,
        key: &str,
        value: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO adapter_state (key, value, updated_ms) VALUES (?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        )
        .bind(key)
        .bind(value)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The backfill of exactly `[from_ms, to_ms)`, created if new; asking again resumes it, and
    /// a failed one lists again from where it failed.
    pub async fn backfill(
        &self,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Backfill, StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO backfills (from_ms, to_ms, window_from_ms, state, created_ms, updated_ms)
             VALUES (?1, ?2, ?1, 'listing', ?3, ?3)
             ON CONFLICT (from_ms, to_ms) DO UPDATE SET state = 'listing', error = NULL, updated_ms = ?3
               WHERE backfills.state = 'failed'",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT * FROM backfills WHERE from_ms = ? AND to_ms = ?")
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&self.pool)
            .await?;
        backfill(&row)
    }

    /// Backfills still listing.
    pub async fn listing_backfills(&self) -> Result<Vec<Backfill>, StoreError> {
        let rows = sqlx::query("SELECT * FROM backfills WHERE state = 'listing' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(backfill).collect()
    }

    /// Every backfill, newest first.
    pub async fn backfills(&self) -> Result<Vec<Backfill>, StoreError> {
        let rows = sqlx::query("SELECT * FROM backfills ORDER BY id DESC LIMIT 100")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(backfill).collect()
    }

    /// One listed page of a backfill: its recordings and where the listing goes on, in one
    /// transaction (a crash lists the page again; its ids are already known).
    pub async fn backfill_page(
        &self,
        progress: &Backfill,
        items: &[Discovered],
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let new = insert_discovered(&mut tx, items, "backfill", now_ms).await?;
        sqlx::query(
            "UPDATE backfills SET window_from_ms = ?, next_url = ?, listed = ?, state = ?, error = ?, updated_ms = ?
             WHERE id = ?",
        )
        .bind(progress.window_from_ms)
        .bind(&progress.next_url)
        .bind(progress.listed)
        .bind(&progress.state)
        .bind(&progress.error)
        .bind(now_ms)
        .bind(progress.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(new)
    }
}
