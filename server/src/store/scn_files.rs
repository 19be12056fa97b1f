//! The call buffer's catalogue: one row per contact SCN file and its life-cycle state.

use capture_shared::ids::{AgentId, ContactId};
use serde::Serialize;
use sqlx::Row as _;

use tokio::sync::oneshot;

use super::{Store, StoreError, corrupt};

/// A change to the SCN catalogue.
#[derive(Debug)]
enum ScnWrite {
    Insert {
        contact: ContactId,
        agent: AgentId,
        path: String,
        now_ms: i64,
    },
    State {
        contact: ContactId,
        state: ScnState,
        totals: (u64, u64),
        now_ms: i64,
    },
}

type Waiting = (ScnWrite, oneshot::Sender<Result<(), StoreError>>);

/// The catalogue's group commit. Every call start creates a file and answers it (a row inserted,
/// then marked kept), and every call end closes one: at thousands of agents, one transaction
/// (one fsync) each queued the webhook intake's transactions behind them for seconds; writes
/// that arrive while one batch commits are committed together in the next.
#[derive(Debug, Default)]
pub(super) struct ScnWrites {
    pending: std::sync::Mutex<Vec<Waiting>>,
    /// Held by the writer committing a batch.
    leader: tokio::sync::Mutex<()>,
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The write's outcome, if its batch was committed (or abandoned: its leader was cancelled).
fn answered(
    done: &mut oneshot::Receiver<Result<(), StoreError>>,
) -> Option<Result<(), StoreError>> {
    match done.try_recv() {
        Ok(result) => Some(result),
        Err(oneshot::error::TryRecvError::Empty) => None,
        Err(oneshot::error::TryRecvError::Closed) => Some(Err(StoreError::Interrupted(
            "the catalogue write's batch was abandoned",
        ))),
    }
}

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
    /// Catalogues a new SCN file as tentative (committed with the other catalogue writes
    /// waiting at the time: see [`ScnWrites`]).
    pub async fn insert_scn_file(
        &self,
        contact: ContactId,
        agent: AgentId,
        path: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write_scn(ScnWrite::Insert {
            contact,
            agent,
            path: path.to_owned(),
            now_ms,
        })
        .await
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
        self.write_scn(ScnWrite::State {
            contact,
            state,
            totals: totals.unwrap_or((0, 0)),
            now_ms,
        })
        .await
    }

    /// Queues `write` and returns once it is committed. The first waiting writer leads: it takes
    /// every write queued so far and commits them in one transaction, while later ones queue for
    /// the next; a batch that fails is redone one write a transaction, so each gets its own
    /// outcome.
    async fn write_scn(&self, write: ScnWrite) -> Result<(), StoreError> {
        let (reply, mut done) = oneshot::channel();
        lock(&self.scn_writes.pending).push((write, reply));
        loop {
            if let Some(result) = answered(&mut done) {
                return result;
            }
            let _leading = self.scn_writes.leader.lock().await;
            if let Some(result) = answered(&mut done) {
                return result;
            }
            let batch = std::mem::take(&mut *lock(&self.scn_writes.pending));
            self.commit_scn_writes(batch).await;
        }
    }

    async fn commit_scn_writes(&self, batch: Vec<Waiting>) {
        let together = self
            .apply_scn_writes(batch.iter().map(|(write, _)| write))
            .await;
        match together {
            Ok(()) => {
                for (_, reply) in batch {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) if batch.len() == 1 => {
                if let Some((_, reply)) = batch.into_iter().next() {
                    let _ = reply.send(Err(error));
                }
            }
            Err(_) => {
                for (write, reply) in batch {
                    let alone = self.apply_scn_writes(std::iter::once(&write)).await;
                    let _ = reply.send(alone);
                }
            }
        }
    }

    async fn apply_scn_writes<'a>(
        &self,
        writes: impl Iterator<Item = &'a ScnWrite>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let mut closed = false;
        for write in writes {
            match write {
                ScnWrite::Insert {
                    contact,
                    agent,
                    path,
                    now_ms,
                } => {
                    sqlx::query(
                        "INSERT INTO scn_files (contact, agent, path, state, created_ms, updated_ms) VALUES (?, ?, ?, 'tentative', ?, ?)",
                    )
                    .bind(contact.to_string())
                    .bind(agent.to_string())
                    .bind(path)
                    .bind(now_ms)
                    .bind(now_ms)
                    .execute(&mut *tx.tx)
                    .await?;
                }
                ScnWrite::State {
                    contact,
                    state,
                    totals: (bytes, frames),
                    now_ms,
                } => {
                    closed |= *state == ScnState::Closed;
                    sqlx::query(
                        "UPDATE scn_files SET state = ?, updated_ms = ?, bytes = MAX(bytes, ?), frames = MAX(frames, ?) \
                         WHERE contact = ? AND state IN ('tentative', 'kept')",
                    )
                    .bind(state.as_str())
                    .bind(now_ms)
                    .bind(i64::try_from(*bytes).unwrap_or(i64::MAX))
                    .bind(i64::try_from(*frames).unwrap_or(i64::MAX))
                    .bind(contact.to_string())
                    .execute(&mut *tx.tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        if closed {
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

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_catalogue_writes_commit_together_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let agent = AgentId(Uuid::new_v4());
        let contacts: Vec<ContactId> = (0..64).map(|_| ContactId(Uuid::new_v4())).collect();
        store
            .insert_scn_file(contacts[0], agent, "buffer/first.scn", 1)
            .await
            .unwrap();
        // 64 inserts at once, one of them of a contact already catalogued.
        let inserts = contacts.iter().enumerate().map(|(i, contact)| {
            let store = store.clone();
            let contact = *contact;
            tokio::spawn(async move {
                store
                    .insert_scn_file(contact, agent, &format!("buffer/{i}.scn"), 2)
                    .await
            })
        });
        let results = futures_util::future::join_all(inserts).await;
        for (i, result) in results.into_iter().enumerate() {
            let result = result.unwrap();
            assert_eq!(result.is_err(), i == 0, "insert {i}: {result:?}");
        }
        let open = store.open_scn_files().await.unwrap();
        assert_eq!(open.len(), 64);
        let first = open.iter().find(|e| e.contact == contacts[0]).unwrap();
        assert_eq!(first.path, "buffer/first.scn");
        // State changes at once: each lands on its own file.
        let states = contacts.iter().enumerate().map(|(i, contact)| {
            let store = store.clone();
            let contact = *contact;
            tokio::spawn(async move {
                let state = if i % 2 == 0 {
                    ScnState::Kept
                } else {
                    ScnState::Closed
                };
                store
                    .set_scn_state(contact, state, Some((i as u64, 1)), 3)
                    .await
            })
        });
        for result in futures_util::future::join_all(states).await {
            result.unwrap().unwrap();
        }
        for (i, contact) in contacts.iter().enumerate() {
            let entry = store.scn_file(*contact).await.unwrap().unwrap();
            let expected = if i % 2 == 0 {
                ScnState::Kept
            } else {
                ScnState::Closed
            };
            assert_eq!((entry.state, entry.bytes), (expected, i as i64));
        }
    }
}
