//! The call buffer's catalogue: one row per contact SCN file and its life-cycle state.

use capture_shared::ids::{AgentId, ContactId};
use serde::Serialize;
use sqlx::Row as _;

use super::{Store, StoreError, corrupt};

/// Where a contact's SCN file is in its life cycle (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScnState {
    /// Created on Ringing; the call may still go unanswered.
    Tentative,
    /// The call was answered: the recording is kept.
    Kept,
    /// The call was not answered: the file was removed.
    Deleted,
    /// Ended cleanly (Agent Available): waits for ingestion.
    Closed,
}

impl ScnState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScnState::Tentative => "tentative",
            ScnState::Kept => "kept",
            ScnState::Deleted => "deleted",
            ScnState::Closed => "closed",
        }
    }

    fn parse(text: &str) -> Result<ScnState, StoreError> {
        Ok(match text {
            "tentative" => ScnState::Tentative,
            "kept" => ScnState::Kept,
            "deleted" => ScnState::Deleted,
            "closed" => ScnState::Closed,
            other => return Err(corrupt(format!("scn file state {other:?}"))),
        })
    }

    /// Whether frames may still be appended.
    pub fn is_open(self) -> bool {
        matches!(self, ScnState::Tentative | ScnState::Kept)
    }
}

/// One catalogued SCN file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScnFileEntry {
    /// The contact.
    pub contact: ContactId,
    /// The agent whose screen it holds.
    pub agent: AgentId,
    /// Path relative to the data directory.
    pub path: String,
    /// Life-cycle state.
    pub state: ScnState,
    /// Created, UTC ms.
    pub created_ms: i64,
    /// Last state change, UTC ms.
    pub updated_ms: i64,
    /// Size when closed.
    pub bytes: i64,
    /// Video frames when closed.
    pub frames: i64,
}

fn entry(row: &sqlx::sqlite::SqliteRow) -> Result<ScnFileEntry, StoreError> {
    let contact: String = row.try_get("contact")?;
    let agent: String = row.try_get("agent")?;
    let state: String = row.try_get("state")?;
    Ok(ScnFileEntry {
        contact: ContactId(uuid::Uuid::parse_str(&contact).map_err(corrupt)?),
        agent: AgentId(uuid::Uuid::parse_str(&agent).map_err(corrupt)?),
        path: row.try_get("path")?,
        state: ScnState::parse(&state)?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        bytes: row.try_get("bytes")?,
        frames: row.try_get("frames")?,
    })
}

impl Store {
    /// Catalogues a new tentative SCN file.
    pub async fn insert_scn_file(
        &self,
        contact: ContactId,
        agent: AgentId,
        path: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO scn_files (contact, agent, path, state, created_ms, updated_ms) VALUES (?, ?, ?, 'tentative', ?, ?)",
        )
        .bind(contact.to_string())
        .bind(agent.to_string())
        .bind(path)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves an SCN file to `state`. A kept file never goes back to tentative, and a deleted or
    /// closed one never changes again.
    pub async fn set_scn_state(
        &self,
        contact: ContactId,
        state: ScnState,
        totals: Option<(u64, u64)>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (bytes, frames) = totals.unwrap_or((0, 0));
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE scn_files SET state = ?, updated_ms = ?, bytes = MAX(bytes, ?), frames = MAX(frames, ?) \
             WHERE contact = ? AND state IN ('tentative', 'kept')",
        )
        .bind(state.as_str())
        .bind(now_ms)
        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
        .bind(i64::try_from(frames).unwrap_or(i64::MAX))
        .bind(contact.to_string())
        .execute(&self.pool)
        .await?;
        if state == ScnState::Closed {
            self.ingestion_inputs.notify_one();
        }
        Ok(())
    }

    /// Marks a file deleted and audits the deletion, in one transaction.
    pub async fn delete_scn_file(
        &self,
        contact: ContactId,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.set_scn_deleted(contact, now_ms).await?;
        tx.audit(
            now_ms,
            "system",
            "delete_screen_recording",
            &contact.to_string(),
            Some(reason),
        )
        .await?;
        tx.commit().await
    }

    /// One catalogued file.
    pub async fn scn_file(&self, contact: ContactId) -> Result<Option<ScnFileEntry>, StoreError> {
        sqlx::query("SELECT * FROM scn_files WHERE contact = ?")
            .bind(contact.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(entry)
            .transpose()
    }

    /// Files still open for appending (tentative or kept): what a restart must reopen.
    pub async fn open_scn_files(&self) -> Result<Vec<ScnFileEntry>, StoreError> {
        sqlx::query(
            "SELECT * FROM scn_files WHERE state IN ('tentative', 'kept') ORDER BY created_ms",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(entry)
        .collect()
    }
}
