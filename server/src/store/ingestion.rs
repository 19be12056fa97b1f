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

impl Store {
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
        for key in
            interactions_by_owner_recordings(&mut tx, &screen.person_id, screen.started_ms, to)
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

    /// Records why an interaction could not be stitched or archived.
    pub async fn interaction_failed(&self, id: &str, error: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE interactions SET state = 'failed', error = ? WHERE id = ?")
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// How long a contact and a recording must share to be taken as the same call: more than the
/// error of Webex's whole-second times, so that back-to-back calls (the next one answered within a
/// second of the last one's end) never match their neighbours.
pub const OVERLAP_MIN_MS: i64 = 1_000;

/// The collecting interactions holding a recording owned by `person` (a Webex person UUID) whose
/// time overlaps `[from_ms, to_ms]`, the largest overlap first: their callSessionId keys. How a
/// contact finds audio its call events did not name (no callSessionId, or a transferred call
/// that joined another session): DESIGN.md §5, "else by owner and overlapping time". The agent's
/// screen during a recording they own belongs to that recording's interaction. Recordings name
/// their owner by UUID (webex/API.md §1).
pub(crate) async fn interactions_by_owner_recordings(
    tx: &mut sqlx::SqliteConnection,
    person: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT i.call_session_id,
           MAX(MIN(COALESCE(r.session_stop_ms, COALESCE(r.session_start_ms, r.time_recorded_ms) + COALESCE(r.duration_s, 0) * 1000), ?2)
             - MAX(COALESCE(r.session_start_ms, r.time_recorded_ms), ?1)) AS overlap
         FROM recordings r JOIN interactions i ON i.id = r.interaction_id
         WHERE r.state = 'stored' AND i.state = 'collecting' AND lower(r.owner_id) = lower(?3)
         GROUP BY i.id HAVING overlap > ?4 ORDER BY overlap DESC",
    )
    .bind(from_ms)
    .bind(to_ms)
    .bind(person)
    .bind(OVERLAP_MIN_MS)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get("call_session_id")?))
        .collect()
}

/// Links the closed, not yet cleared screens of `person`'s contacts that overlap
/// `[from_ms, to_ms]` to `interaction` (a recording of theirs arrived after their screen was
/// linked, e.g. the second agent's leg of a transfer).
pub(crate) async fn link_overlapping_screens(
    tx: &mut sqlx::SqliteConnection,
    interaction: &str,
    person: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO interaction_contacts (interaction_id, contact_id)
         SELECT ?5, c.id FROM contacts c JOIN scn_files s ON s.contact = c.id
         WHERE lower(c.person_id) = lower(?3) AND s.linked_ms IS NOT NULL AND s.cleared_ms IS NULL
           AND MIN(COALESCE(c.ended_at_ms, c.started_at_ms), ?2) - MAX(c.started_at_ms, ?1) > ?4
         ON CONFLICT DO NOTHING",
    )
    .bind(from_ms)
    .bind(to_ms)
    .bind(person)
    .bind(OVERLAP_MIN_MS)
    .bind(interaction)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The collecting interaction holding a contact of `person` whose time overlaps
/// `[from_ms, to_ms]` most: (interaction id, its key). With `contact_keyed_only`, only an
/// interaction keyed by its contact (`contact:<id>`: no callSessionId was known for it). How a
/// recording finds the screen of a call whose events carried no (or another) callSessionId.
pub(crate) async fn interaction_by_owner_contact(
    tx: &mut sqlx::SqliteConnection,
    person: &str,
    from_ms: i64,
    to_ms: i64,
    contact_keyed_only: bool,
) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT i.id, i.call_session_id,
           MIN(COALESCE(c.ended_at_ms, c.started_at_ms), ?2) - MAX(c.started_at_ms, ?1) AS overlap
         FROM contacts c JOIN interaction_contacts ic ON ic.contact_id = c.id
           JOIN interactions i ON i.id = ic.interaction_id
         WHERE i.state = 'collecting' AND lower(c.person_id) = lower(?3)
           AND MIN(COALESCE(c.ended_at_ms, c.started_at_ms), ?2) - MAX(c.started_at_ms, ?1) > ?4
           AND (?5 = 0 OR i.call_session_id LIKE 'contact:%')
         ORDER BY overlap DESC LIMIT 1",
    )
    .bind(from_ms)
    .bind(to_ms)
    .bind(person)
    .bind(OVERLAP_MIN_MS)
    .bind(contact_keyed_only)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("call_session_id")?)))
        .transpose()
}

#[cfg(test)]
mod matching_tests {
    //! Matching without a callSessionId: by the owner and overlapping time (DESIGN.md §5).

    use super::*;
    use crate::store::{Discovered, StoredRecording};

    const P: &str = "d7468402-e95f-42a9-92c8-dd65f45d40ba";
    const OTHER: &str = "24683d6c-5529-4b60-a6c7-91e8b293bbab";
    const T: i64 = 1_800_000_000_000;

    /// A closed contact of `person` over `[from, to]` whose calls carried `session`.
    async fn closed_contact(
        store: &Store,
        id: &str,
        person: &str,
        from: i64,
        to: i64,
        session: Option<&str>,
    ) -> ClosedScreen {
        sqlx::query("INSERT INTO contacts (id, person_id, state, started_at_ms, ended_at_ms) VALUES (?, ?, 'closed', ?, ?)")
            .bind(id).bind(person).bind(from).bind(to)
            .execute(&store.pool).await.expect("contact");
        sqlx::query("INSERT INTO contact_calls (contact_id, call_id, call_session_id) VALUES (?, 'call-1', ?)")
            .bind(id).bind(session)
            .execute(&store.pool).await.expect("call");
        sqlx::query("INSERT INTO scn_files (contact, agent, path, state, created_ms, updated_ms) VALUES (?, 'agent', ?, 'closed', ?, ?)")
            .bind(id).bind(format!("buffer/{id}.scn")).bind(from).bind(to)
            .execute(&store.pool).await.expect("scn");
        let screens = store.closed_screens().await.expect("closed");
        screens
            .into_iter()
            .find(|s| s.contact == id)
            .expect("listed")
    }

    /// Stores a recording of `owner` over `[from, to]`; its interaction.
    async fn recording(
        store: &Store,
        id: &str,
        owner: &str,
        from: i64,
        to: i64,
        session: Option<&str>,
    ) -> String {
        let discovered = Discovered {
            id: id.into(),
            time_recorded_ms: Some(from),
        };
        store
            .discover_recordings(&[discovered], "poll", from)
            .await
            .expect("discover");
        store
            .claim_recordings("me", to, to + 60_000, 10)
            .await
            .expect("claim");
        let stored = StoredRecording {
            id: id.into(),
            call_session_id: session.map(str::to_owned),
            owner_id: Some(owner.into()),
            session_start_ms: Some(from),
            session_stop_ms: Some(to),
            time_recorded_ms: Some(from),
            duration_s: Some((to - from) / 1000),
            audio_path: format!("audio/{id}.mp3"),
            audio_sha256: "00".into(),
            details: "{}".into(),
            metadata: "{}".into(),
            ..StoredRecording::default()
        };
        store
            .store_recording("me", &stored, to)
            .await
            .expect("store")
            .expect("stored")
    }

    async fn interaction_of_contact(store: &Store, contact: &str) -> Vec<(String, String)> {
        let rows = sqlx::query(
            "SELECT i.id, i.call_session_id FROM interaction_contacts ic JOIN interactions i ON i.id = ic.interaction_id
             WHERE ic.contact_id = ?",
        )
        .bind(contact)
        .fetch_all(&store.pool)
        .await
        .expect("query");
        rows.iter()
            .map(|r| (r.get("id"), r.get("call_session_id")))
            .collect()
    }

    #[tokio::test]
    async fn a_contact_without_session_joins_its_owners_overlapping_recording() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        // Another agent's recording at the same time, and this agent's an hour later: neither.
        recording(&store, "r-other", OTHER, T, T + 300_000, Some("a0")).await;
        recording(
            &store,
            "r-later",
            P,
            T + 3_600_000,
            T + 3_900_000,
            Some("a1"),
        )
        .await;
        let mine = recording(
            &store,
            "r-mine",
            &P.to_uppercase(),
            T + 4_000,
            T + 300_000,
            Some("a2"),
        )
        .await;
        let screen = closed_contact(&store, "c1", P, T, T + 310_000, None).await;
        store.link_screen(&screen, T + 320_000).await.expect("link");
        assert_eq!(
            interaction_of_contact(&store, "c1").await,
            [(mine, "a2".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_recording_finds_the_contact_linked_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        // No recording yet: the contact gets an interaction of its own.
        let screen = closed_contact(&store, "c1", P, T, T + 310_000, None).await;
        store.link_screen(&screen, T + 320_000).await.expect("link");
        let [(first, key)] = interaction_of_contact(&store, "c1")
            .await
            .try_into()
            .expect("one");
        assert_eq!(key, "contact:c1");
        // A recording without callSessionId joins it and leaves its key.
        let joined = recording(&store, "r1", P, T + 2_000, T + 100_000, None).await;
        assert_eq!(joined, first);
        // A recording with a callSessionId joins it too, and the interaction takes that key
        // (so later legs of the same session land here as well).
        let keyed = recording(&store, "r2", P, T + 120_000, T + 300_000, Some("b1")).await;
        assert_eq!(keyed, first);
        assert_eq!(
            interaction_of_contact(&store, "c1").await,
            [(first.clone(), "b1".to_owned())]
        );
        let leg = recording(&store, "r3", OTHER, T + 400_000, T + 500_000, Some("b1")).await;
        assert_eq!(leg, first);
        // A recording of another agent, or outside the contact, gets its own interaction.
        assert_ne!(
            recording(&store, "r4", OTHER, T, T + 100_000, None).await,
            first
        );
        assert_ne!(
            recording(&store, "r5", P, T + 900_000, T + 990_000, None).await,
            first
        );
        // The next call, answered within a second of this contact's end: not this one.
        assert_ne!(
            recording(&store, "r6", P, T + 309_200, T + 400_000, None).await,
            first
        );
    }

    #[tokio::test]
    async fn a_transferred_agents_screen_joins_both_sessions_in_either_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        // The consult leg's events named session "c"; after the transfer the agent's call joined
        // the customer's session "s", which the events did not name again.
        let screen = closed_contact(&store, "b1", OTHER, T, T + 200_000, Some("c")).await;
        store.link_screen(&screen, T + 210_000).await.expect("link");
        let s_leg = recording(&store, "r-s", OTHER, T + 5_000, T + 190_000, Some("s")).await;
        let linked: Vec<String> = interaction_of_contact(&store, "b1")
            .await
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        assert_eq!(linked.len(), 2, "{linked:?}");
        assert!(linked.contains(&"c".to_owned()) && linked.contains(&"s".to_owned()));
        assert!(
            interaction_of_contact(&store, "b1")
                .await
                .iter()
                .any(|(id, _)| *id == s_leg)
        );
        // The other order: the recording first, then the screen.
        let s2 = recording(&store, "r-s2", P, T + 5_000, T + 190_000, Some("s2")).await;
        let screen = closed_contact(&store, "a1", P, T, T + 200_000, Some("c2")).await;
        store.link_screen(&screen, T + 210_000).await.expect("link");
        let linked = interaction_of_contact(&store, "a1").await;
        assert_eq!(linked.len(), 2, "{linked:?}");
        assert!(linked.iter().any(|(id, key)| *id == s2 && key == "s2"));
    }

    #[tokio::test]
    async fn a_recording_takes_the_answer_time_of_its_call_within_its_second() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        let interaction = recording(&store, "r1", P, T, T + 60_000, Some("s1")).await;
        // The restarted recording of the same call starts long after the answer: not refined.
        recording(&store, "r2", P, T + 30_000, T + 60_000, Some("s1")).await;
        for (kind, at) in [
            ("Ringing", T - 4_000),
            ("Connected", T + 437),
            ("On Hold", T + 200),
        ] {
            sqlx::query("INSERT INTO call_events (person_id, kind, at_ms, call_session_id) VALUES (?, ?, ?, 's1')")
                .bind(P).bind(kind).bind(at)
                .execute(&store.pool).await.expect("event");
        }
        for id in ["r1", "r2"] {
            store
                .set_transcoded(id, Ok(&format!("audio/{id}.opus")), T)
                .await
                .expect("transcoded");
        }
        let inputs = store
            .interaction_inputs(&interaction)
            .await
            .expect("inputs");
        let answered: Vec<_> = inputs
            .audio
            .iter()
            .map(|a| (a.id.as_str(), a.answered_ms))
            .collect();
        assert_eq!(answered, [("r1", Some(T + 437)), ("r2", None)]);
    }
}
