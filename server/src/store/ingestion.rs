//! Ingestion's queries: recordings to transcode, closed contacts to link to their interactions,
//! interactions ready to stitch and their inputs, and the archive's outcome.

use serde::Serialize;
use sqlx::Row as _;

use super::{Store, StoreError};

/// A closed contact's screen, waiting to be linked to its interactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedScreen {
    /// The contact.
    pub contact: String,
    /// Its SCN file, relative to the data directory.
    pub scn_path: String,
    /// The normalised callSessionIds of its calls.
    pub sessions: Vec<String>,
    /// The agent's Webex person (UUID).
    pub person_id: String,
    /// When it started.
    pub started_ms: i64,
    /// When it ended.
    pub ended_ms: Option<i64>,
}

/// An interaction in collection, with what ingestion needs to decide whether it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collecting {
    /// Its id.
    pub id: String,
    /// When an input last arrived.
    pub updated_ms: i64,
    /// Linked contacts.
    pub contacts: i64,
    /// Stored recordings.
    pub recordings: i64,
    /// Of which not yet transcoded.
    pub untranscoded: i64,
}

/// A linked contact's screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenInput {
    /// The contact.
    pub contact: String,
    /// Its SCN file, relative to the data directory.
    pub scn_path: String,
    /// Contact start.
    pub started_ms: i64,
    /// Contact end.
    pub ended_ms: Option<i64>,
}

/// A recording's audio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioInput {
    /// Webex's id.
    pub id: String,
    /// The Opus packet file, relative to the data directory.
    pub opus_path: String,
    /// The MP3, relative to the data directory.
    pub audio_path: Option<String>,
    /// Session start.
    pub session_start_ms: Option<i64>,
    /// Session stop.
    pub session_stop_ms: Option<i64>,
    /// Recording start.
    pub time_recorded_ms: Option<i64>,
    /// Audio length.
    pub duration_s: Option<i64>,
    /// The ms-precision answer time of the call (its Connected event) when it falls within the
    /// second Webex's recording start names: the recording began when the call was answered.
    pub answered_ms: Option<i64>,
    /// The metadata Webex sent.
    pub metadata: serde_json::Value,
}

/// Everything one interaction is stitched from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractionInputs {
    /// Its id.
    pub id: String,
    /// Its callSessionId (or `contact:<id>`).
    pub call_session_id: String,
    /// Screens.
    pub screens: Vec<ScreenInput>,
    /// Audio.
    pub audio: Vec<AudioInput>,
}

/// Where an archived interaction is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// The archive key of the stitched file.
    pub key: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub bytes: i64,
    /// What it lacks.
    pub missing: Option<String>,
    /// Where its timeline starts (UTC ms).
    pub timeline_start_ms: i64,
    /// Its length (ms).
    pub timeline_ms: i64,
    /// Its tracks (the manifest's list).
    pub tracks: serde_json::Value,
}

/// An archived interaction as a re-stitch starts from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedInteraction {
    /// The archive key of its file.
    pub key: String,
    /// The file's SHA-256.
    pub sha256: String,
    /// Which version the file is (1: the first stitch).
    pub version: i64,
    /// Where its timeline starts (UTC ms).
    pub timeline_start_ms: i64,
    /// Its length (ms).
    pub timeline_ms: i64,
    /// Its tracks (the manifest's list).
    pub tracks: serde_json::Value,
    /// What it lacks.
    pub missing: Option<String>,
}

/// A re-stitched interaction's new version, as it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The SHA-256 of the file it replaces (nothing changes if the interaction's is not this).
    pub replaced_sha256: String,
    /// Its version number.
    pub version: i64,
    /// The recordings it adds (marked cleared from the buffer).
    pub recordings: Vec<String>,
    /// The audit entry's detail.
    pub detail: String,
}

impl Store {
    /// Archived interactions with recordings that arrived after they were stitched (stored and
    /// transcoded, not yet in the archive), the newest of them stored before `settled_before_ms`,
    /// oldest first, at most `limit`. Interactions archived before their timeline was recorded
    /// (migration 0007) are not among them: their file's timeline is not known.
    pub async fn interactions_with_late_recordings(
        &self,
        settled_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id FROM interactions i JOIN recordings r ON r.interaction_id = i.id
             WHERE i.state = 'archived' AND r.state = 'stored' AND r.cleared_ms IS NULL
               AND r.opus_path IS NOT NULL
               AND i.timeline_start_ms IS NOT NULL AND i.timeline_ms IS NOT NULL
             GROUP BY i.id HAVING MAX(r.stored_ms) < ? ORDER BY MIN(r.stored_ms) LIMIT ?",
        )
        .bind(settled_before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// An archived interaction's file and timeline.
    pub async fn archived_interaction(
        &self,
        id: &str,
    ) -> Result<Option<ArchivedInteraction>, StoreError> {
        let row = sqlx::query(
            "SELECT archive_key, archive_sha256, version, timeline_start_ms, timeline_ms, tracks, missing
             FROM interactions WHERE id = ? AND state = 'archived' AND archive_key IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let tracks: Option<String> = row.try_get("tracks")?;
        Ok(Some(ArchivedInteraction {
            key: row.try_get("archive_key")?,
            sha256: row.try_get("archive_sha256")?,
            version: row.try_get("version")?,
            timeline_start_ms: row
                .try_get::<Option<i64>, _>("timeline_start_ms")?
                .unwrap_or(0),
            timeline_ms: row.try_get::<Option<i64>, _>("timeline_ms")?.unwrap_or(0),
            tracks: tracks
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            missing: row.try_get("missing")?,
        }))
    }

    /// Records a re-stitched interaction: its new file (version `version`) replaces the old
    /// one, the late recordings are marked cleared from the buffer, audited with `detail`.
    /// `false` when the interaction is no longer what the re-stitch started from (deleted, or
    /// re-stitched meanwhile): nothing changes.
    pub async fn interaction_restitched(
        &self,
        id: &str,
        archived: &Archived,
        change: &NewVersion,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let NewVersion {
            replaced_sha256,
            version,
            recordings,
            detail,
        } = change;
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE interactions SET archive_key = ?, archive_sha256 = ?, archive_bytes = ?, missing = ?,
               timeline_start_ms = ?, timeline_ms = ?, tracks = ?, version = ?, updated_ms = ?
             WHERE id = ? AND state = 'archived' AND archive_sha256 = ?",
        )
        .bind(&archived.key)
        .bind(&archived.sha256)
        .bind(archived.bytes)
        .bind(&archived.missing)
        .bind(archived.timeline_start_ms)
        .bind(archived.timeline_ms)
        .bind(archived.tracks.to_string())
        .bind(*version)
        .bind(now_ms)
        .bind(id)
        .bind(replaced_sha256)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        for recording in recordings {
            sqlx::query("UPDATE recordings SET cleared_ms = ? WHERE id = ?")
                .bind(now_ms)
                .bind(recording)
                .execute(&mut *tx)
                .await?;
        }
        super::audit::append(
            &mut tx,
            now_ms,
            "ingestion",
            "restitch_interaction",
            id,
            Some(detail.as_str()),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stored recordings whose audio is not transcoded yet: (id, MP3 path).
    pub async fn recordings_to_transcode(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, audio_path FROM recordings WHERE state = 'stored' AND opus_path IS NULL
               AND transcode_error IS NULL AND audio_path IS NOT NULL AND cleared_ms IS NULL
             ORDER BY stored_ms LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("audio_path")?)))
            .collect()
    }

    /// Records a transcode's outcome (the interaction counts it as an input that arrived).
    pub async fn set_transcoded(
        &self,
        id: &str,
        outcome: Result<&str, &str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let (path, error) = match outcome {
            Ok(path) => (Some(path), None),
            Err(error) => (None, Some(error)),
        };
        sqlx::query("UPDATE recordings SET opus_path = ?, transcode_error = ? WHERE id = ?")
            .bind(path)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "UPDATE interactions SET updated_ms = MAX(updated_ms, ?)
             WHERE id = (SELECT interaction_id FROM recordings WHERE id = ?)",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closed SCN files not linked yet.
    pub async fn closed_screens(&self) -> Result<Vec<ClosedScreen>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.contact, s.path, c.person_id, c.started_at_ms, c.ended_at_ms,
               (SELECT group_concat(DISTINCT cc.call_session_id) FROM contact_calls cc
                 WHERE cc.contact_id = s.contact AND cc.call_session_id IS NOT NULL) AS sessions
             FROM scn_files s JOIN contacts c ON c.id = s.contact
             WHERE s.state = 'closed' AND s.linked_ms IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let sessions: Option<String> = r.try_get("sessions")?;
                Ok(ClosedScreen {
                    contact: r.try_get("contact")?,
                    scn_path: r.try_get("path")?,
                    sessions: sessions
                        .map(|s| s.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                    person_id: r.try_get("person_id")?,
                    started_ms: r.try_get("started_at_ms")?,
                    ended_ms: r.try_get("ended_at_ms")?,
                })
            })
            .collect()
    }

    /// Links a closed screen to the interaction of each of its call sessions (created when no
    /// recording made it yet) and to those of the recordings its agent owns that overlap it in
    /// time; a contact with neither gets an interaction of its own keyed `contact:<id>` (which a
    /// recording arriving later finds the same way).
    pub async fn link_screen(&self, screen: &ClosedScreen, now_ms: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let mut sessions = screen.sessions.clone();
        let to = screen.ended_ms.unwrap_or(screen.started_ms);
        for key in super::matching::interactions_by_owner_recordings(
            &mut tx,
            &screen.person_id,
            screen.started_ms,
            to,
        )
        .await?
        {
            if !sessions.contains(&key) {
                sessions.push(key);
            }
        }
        if sessions.is_empty() {
            sessions.push(format!("contact:{}", screen.contact));
        }
        for session in &sessions {
            let row = sqlx::query(
                "INSERT INTO interactions (id, call_session_id, start_ms, stop_ms, created_ms, updated_ms)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (call_session_id) DO UPDATE SET
                   start_ms = MIN(COALESCE(interactions.start_ms, excluded.start_ms), excluded.start_ms),
                   stop_ms = MAX(COALESCE(interactions.stop_ms, excluded.stop_ms), COALESCE(excluded.stop_ms, interactions.stop_ms)),
                   updated_ms = excluded.updated_ms
                 RETURNING id",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(session)
            .bind(screen.started_ms)
            .bind(screen.ended_ms)
            .bind(now_ms)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            let interaction: String = row.try_get("id")?;
            sqlx::query(
                "INSERT INTO interaction_contacts (interaction_id, contact_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&interaction)
            .bind(&screen.contact)
            .execute(&mut *tx)
            .await?;
            super::search::refresh_search(&mut tx, &interaction).await?;
        }
        sqlx::query("UPDATE scn_files SET linked_ms = ? WHERE contact = ?")
            .bind(now_ms)
            .bind(&screen.contact)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Interactions still collecting inputs.
    pub async fn collecting_interactions(&self) -> Result<Vec<Collecting>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, i.updated_ms,
               (SELECT COUNT(*) FROM interaction_contacts ic WHERE ic.interaction_id = i.id) AS contacts,
               (SELECT COUNT(*) FROM recordings r WHERE r.interaction_id = i.id AND r.state = 'stored') AS recordings,
               (SELECT COUNT(*) FROM recordings r WHERE r.interaction_id = i.id AND r.state = 'stored'
                  AND r.opus_path IS NULL AND r.transcode_error IS NULL) AS untranscoded
             FROM interactions i WHERE i.state = 'collecting'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Collecting {
                    id: r.try_get("id")?,
                    updated_ms: r.try_get("updated_ms")?,
                    contacts: r.try_get("contacts")?,
                    recordings: r.try_get("recordings")?,
                    untranscoded: r.try_get("untranscoded")?,
                })
            })
            .collect()
    }

    /// What `interaction` is stitched from.
    pub async fn interaction_inputs(
        &self,
        interaction: &str,
    ) -> Result<InteractionInputs, StoreError> {
        let row = sqlx::query("SELECT call_session_id FROM interactions WHERE id = ?")
            .bind(interaction)
            .fetch_one(&self.pool)
            .await?;
        let screens = sqlx::query(
            "SELECT s.contact, s.path, c.started_at_ms, c.ended_at_ms FROM interaction_contacts ic
               JOIN scn_files s ON s.contact = ic.contact_id JOIN contacts c ON c.id = ic.contact_id
             WHERE ic.interaction_id = ? AND s.cleared_ms IS NULL ORDER BY c.started_at_ms",
        )
        .bind(interaction)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ScreenInput {
                contact: r.try_get("contact")?,
                scn_path: r.try_get("path")?,
                started_ms: r.try_get("started_at_ms")?,
                ended_ms: r.try_get("ended_at_ms")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let audio = sqlx::query(
            "SELECT id, opus_path, audio_path, session_start_ms, session_stop_ms, time_recorded_ms, duration_s, metadata,
               (SELECT MIN(e.at_ms) FROM call_events e
                 WHERE e.kind = 'Connected' AND e.call_session_id = r.call_session_id
                   AND e.at_ms >= COALESCE(r.session_start_ms, r.time_recorded_ms) - 1000
                   AND e.at_ms < COALESCE(r.session_start_ms, r.time_recorded_ms) + 1000) AS answered_ms
             FROM recordings r WHERE interaction_id = ? AND state = 'stored' AND opus_path IS NOT NULL
               AND cleared_ms IS NULL
             ORDER BY COALESCE(session_start_ms, time_recorded_ms), id",
        )
        .bind(interaction)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let metadata: Option<String> = r.try_get("metadata")?;
            Ok(AudioInput {
                id: r.try_get("id")?,
                opus_path: r.try_get("opus_path")?,
                audio_path: r.try_get("audio_path")?,
                session_start_ms: r.try_get("session_start_ms")?,
                session_stop_ms: r.try_get("session_stop_ms")?,
                time_recorded_ms: r.try_get("time_recorded_ms")?,
                duration_s: r.try_get("duration_s")?,
                answered_ms: r.try_get("answered_ms")?,
                metadata: metadata
                    .as_deref()
                    .and_then(|m| serde_json::from_str(m).ok())
                    .unwrap_or(serde_json::Value::Null),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(InteractionInputs {
            id: interaction.to_owned(),
            call_session_id: row.try_get("call_session_id")?,
            screens,
            audio,
        })
    }

    /// Records an archived interaction and marks its inputs cleared from the buffer, with an
    /// audit entry. Returns the screens (SCN paths) now cleared: a contact's screen stays until
    /// every interaction it belongs to is archived. The caller removes the files after this.
    pub async fn interaction_archived(
        &self,
        inputs: &InteractionInputs,
        archived: &Archived,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE interactions SET state = 'archived', archive_key = ?, archive_sha256 = ?, archive_bytes = ?,
               archived_ms = ?, missing = ?, error = NULL, timeline_start_ms = ?, timeline_ms = ?, tracks = ?
             WHERE id = ?",
        )
        .bind(&archived.key)
        .bind(&archived.sha256)
        .bind(archived.bytes)
        .bind(now_ms)
        .bind(&archived.missing)
        .bind(archived.timeline_start_ms)
        .bind(archived.timeline_ms)
        .bind(archived.tracks.to_string())
        .bind(&inputs.id)
        .execute(&mut *tx)
        .await?;
        let mut cleared = Vec::new();
        for screen in &inputs.screens {
            let pending: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM interaction_contacts ic JOIN interactions i ON i.id = ic.interaction_id
                 WHERE ic.contact_id = ? AND i.state != 'archived'",
            )
            .bind(&screen.contact)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if pending > 0 {
                continue;
            }
            sqlx::query("UPDATE scn_files SET cleared_ms = ? WHERE contact = ?")
                .bind(now_ms)
                .bind(&screen.contact)
                .execute(&mut *tx)
                .await?;
            cleared.push(screen.scn_path.clone());
        }
        for audio in &inputs.audio {
            sqlx::query("UPDATE recordings SET cleared_ms = ? WHERE id = ?")
                .bind(now_ms)
                .bind(&audio.id)
                .execute(&mut *tx)
                .await?;
        }
        super::audit::append(
            &mut tx,
            now_ms,
            "ingestion",
            "archive_interaction",
            &inputs.id,
            Some(&archived.key),
        )
        .await?;
        tx.commit().await?;
        Ok(cleared)
    }

    /// Archived interactions archived before `before_ms` and not on legal hold: (id, archive key).
    pub async fn expired_interactions(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, archive_key FROM interactions
             WHERE state = 'archived' AND legal_hold = 0 AND archived_ms < ? AND archive_key IS NOT NULL
             ORDER BY archived_ms LIMIT ?",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("archive_key")?)))
            .collect()
    }

    /// Records an interaction deleted by retention, with an audit entry; `false` when it was put
    /// on legal hold meanwhile (nothing changes).
    pub async fn interaction_deleted(
        &self,
        id: &str,
        now_ms: i64,
        policy: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE interactions SET state = 'deleted', deleted_ms = ? WHERE id = ? AND state = 'archived' AND legal_hold = 0",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        super::audit::append(
            &mut tx,
            now_ms,
            "retention",
            "delete_interaction",
            id,
            Some(policy),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts an interaction on legal hold or releases it (audited); `false` when it does not exist.
    pub async fn set_legal_hold(
        &self,
        id: &str,
        hold: bool,
        actor: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE interactions SET legal_hold = ? WHERE id = ?")
            .bind(hold)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let action = if hold {
            "legal_hold"
        } else {
            "release_legal_hold"
        };
        super::audit::append(&mut tx, now_ms, actor, action, id, Some(reason)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts failed interactions back to collecting (at start: a full disk or an unreachable
    /// archive may be fixed by then); how many.
    pub async fn retry_failed_interactions(&self) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let done =
            sqlx::query("UPDATE interactions SET state = 'collecting' WHERE state = 'failed'")
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// Records why an interaction could not be stitched or archived: it is tried again at
    /// `retry_at_ms`, or parked for an operator once this was attempt `max_attempts`. Returns the
    /// attempts so far and whether it is parked.
    pub async fn interaction_failed(
        &self,
        id: &str,
        error: &str,
        max_attempts: u32,
        retry_at_ms: impl Fn(u32) -> i64,
    ) -> Result<(u32, bool), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let attempts: i64 = sqlx::query_scalar(
            "UPDATE interactions SET stitch_attempts = stitch_attempts + 1, error = ?
             WHERE id = ? RETURNING stitch_attempts",
        )
        .bind(error)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(0);
        let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
        let parked = attempts >= max_attempts;
        sqlx::query("UPDATE interactions SET state = ?, retry_at_ms = ? WHERE id = ?")
            .bind(if parked { "parked" } else { "failed" })
            .bind((!parked).then(|| retry_at_ms(attempts)))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((attempts, parked))
    }

    /// Failed interactions whose retry time has come are collected again; how many.
    pub async fn retry_due_interactions(&self, now_ms: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE interactions SET state = 'collecting'
             WHERE state = 'failed' AND (retry_at_ms IS NULL OR retry_at_ms <= ?)",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// An operator retries a parked (or failed) interaction: collected again, attempts from zero.
    pub async fn retry_interaction(&self, id: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE interactions SET state = 'collecting', stitch_attempts = 0, retry_at_ms = NULL
             WHERE id = ? AND state IN ('parked', 'failed')",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Interactions parked for an operator.
    pub async fn parked_interactions(&self) -> Result<u64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM interactions WHERE state = 'parked'")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
