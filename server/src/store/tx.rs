//! The processor's transaction: one delivery's (or tick's) state changes commit together with the
//! delivery being marked processed, so each is applied exactly once across crashes.

use capture_shared::event::CallEvent;
use capture_shared::ids::{AgentId, CallId, CallSessionId, ContactId, PersonId};
use sqlx::{Row as _, Sqlite, Transaction};

use super::deferred::Deferred;
use super::{StoreError, corrupt};

/// An open transaction; it holds the process's write turn until it ends. Machine states, call
/// events, contacts' calls and deliveries' outcomes are written when it commits, several rows a
/// statement ([`Deferred`]); dropped uncommitted, none of it is written.
#[derive(Debug)]
pub struct StoreTx {
    pub(super) tx: Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
    deferred: Deferred,
}

impl StoreTx {
    pub(super) fn new(
        tx: Transaction<'static, Sqlite>,
        turn: tokio::sync::OwnedMutexGuard<()>,
    ) -> StoreTx {
        StoreTx {
            tx,
            _turn: turn,
            deferred: Deferred::default(),
        }
    }

    /// Writes what is held back, then commits.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.deferred.flush(&mut self.tx).await?;
        Ok(self.tx.commit().await?)
    }

    /// Writes what is held back (before a statement that reads those tables, or to learn
    /// whether those writes succeed before committing).
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        self.deferred.flush(&mut self.tx).await
    }

    /// The stored machine state (JSON) of `person`. Reads the person's agent in the same
    /// statement (the processor asks for both), unless [`StoreTx::load_machines`] read them.
    pub async fn machine(&mut self, person: PersonId) -> Result<Option<String>, StoreError> {
        if let Some(state) = self.deferred.machine(person) {
            return Ok(state);
        }
        let row = sqlx::query(
            "SELECT (SELECT state FROM agent_machines WHERE person_id = ?1) AS state,
                    (SELECT id FROM agents WHERE person_id = ?1) AS agent",
        )
        .bind(person.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        let agent = parse_agent(row.try_get("agent")?)?;
        self.deferred.remember_agent(person, agent);
        Ok(row.try_get("state")?)
    }

    /// Reads the machine states and agents of `persons` in one statement, so that a batch of
    /// deliveries costs one read rather than one per delivery (each a round trip to the
    /// connection's thread); [`StoreTx::machine`] and [`StoreTx::agent_for_person`] then answer
    /// from what was read.
    pub async fn load_machines(&mut self, persons: &[PersonId]) -> Result<(), StoreError> {
        let mut wanted: Vec<String> = persons
            .iter()
            .filter(|p| self.deferred.machine(**p).is_none())
            .map(ToString::to_string)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Two bound values a person; SQLite allows 32,766.
        for chunk in wanted.chunks(8_000) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new(
                "SELECT 'state' AS kind, person_id, state AS value FROM agent_machines WHERE person_id IN (",
            );
            let mut list = query.separated(", ");
            for person in chunk {
                list.push_bind(person);
            }
            query
                .push(") UNION ALL SELECT 'agent', person_id, id FROM agents WHERE person_id IN (");
            let mut list = query.separated(", ");
            for person in chunk {
                list.push_bind(person);
            }
            query.push(")");
            let rows = query.build().fetch_all(&mut *self.tx).await?;
            let mut states = std::collections::HashMap::new();
            let mut agents = std::collections::HashMap::new();
            for row in rows {
                let person: String = row.try_get("person_id")?;
                let value: String = row.try_get("value")?;
                if row.try_get::<String, _>("kind")? == "state" {
                    states.insert(person, value);
                } else {
                    agents.insert(person, value);
                }
            }
            for person in chunk {
                let id = uuid::Uuid::parse_str(person)
                    .map(PersonId)
                    .map_err(corrupt)?;
                let agent = parse_agent(agents.remove(person))?;
                self.deferred.remember_agent(id, agent);
                self.deferred.loaded_machine(id, states.remove(person));
            }
        }
        Ok(())
    }

    /// Stores the machine state of `person` and when it next needs a tick.
    pub async fn save_machine(
        &mut self,
        person: PersonId,
        state: &str,
        next_deadline_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.deferred
            .save_machine(person, state, next_deadline_ms, now_ms);
        Ok(())
    }

    /// Queues a recording announced by webhook for the adapter; whether it was new.
    pub async fn discover_recording(
        &mut self,
        id: &str,
        received_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO recordings (id, state, source, discovered_ms, next_attempt_ms)
             VALUES (?, 'pending', 'webhook', ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(received_ms)
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a delivery processed with its outcome.
    pub async fn mark_processed(
        &mut self,
        seq: i64,
        outcome: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.deferred.mark_processed(seq, outcome, now_ms);
        Ok(())
    }

    /// Records a normalised event.
    pub async fn insert_event(
        &mut self,
        delivery_seq: Option<i64>,
        event: &CallEvent,
        contact: Option<ContactId>,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        self.deferred
            .insert_event(delivery_seq, event, contact, note);
        Ok(())
    }

    /// Creates a contact in state `recording` (idempotent on its id).
    pub async fn create_contact(
        &mut self,
        contact: ContactId,
        person: PersonId,
        agent: Option<AgentId>,
        started_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contacts (id, person_id, agent_id, state, started_at_ms) VALUES (?, ?, ?, 'recording', ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(contact.to_string())
        .bind(person.to_string())
        .bind(agent.map(|a| a.to_string()))
        .bind(started_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Sets a contact's state (and, when it ends, when and why).
    pub async fn set_contact_state(
        &mut self,
        contact: ContactId,
        state: &str,
        ended: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE contacts SET state = ?, ended_at_ms = COALESCE(?, ended_at_ms),
               close_reason = COALESCE(?, close_reason) WHERE id = ?",
        )
        .bind(state)
        .bind(ended.map(|(at, _)| at))
        .bind(ended.map(|(_, reason)| reason))
        .bind(contact.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Sets an agent's person and/or email; false when there is no such agent.
    pub async fn map_agent(
        &mut self,
        agent: AgentId,
        person: Option<PersonId>,
        email: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.deferred.forget_agents();
        let result = sqlx::query(
            "UPDATE agents SET person_id = COALESCE(?, person_id), email = COALESCE(?, email),
                claimed_email = NULL WHERE id = ?",
        )
        .bind(person.map(|p| p.to_string()))
        .bind(email)
        .bind(agent.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Marks a contact's SCN file deleted (its file is already removed).
    pub async fn set_scn_deleted(
        &mut self,
        contact: ContactId,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE scn_files SET state = 'deleted', updated_ms = ? WHERE contact = ? AND state IN ('tentative', 'kept')",
        )
        .bind(now_ms)
        .bind(contact.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Adds a call to a contact (idempotent).
    pub async fn add_contact_call(
        &mut self,
        contact: ContactId,
        call: &CallId,
        session: Option<&CallSessionId>,
    ) -> Result<(), StoreError> {
        self.deferred.add_contact_call(contact, call, session);
        Ok(())
    }

    /// Opens a gap in a contact's screen (unless one is open already).
    pub async fn open_gap(
        &mut self,
        contact: ContactId,
        from_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contact_gaps (contact_id, from_ms, reason) SELECT ?1, ?2, ?3
             WHERE NOT EXISTS (SELECT 1 FROM contact_gaps WHERE contact_id = ?1 AND to_ms IS NULL)",
        )
        .bind(contact.to_string())
        .bind(from_ms)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Closes a contact's open gaps at `to_ms`.
    pub async fn close_gaps(&mut self, contact: ContactId, to_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE contact_gaps SET to_ms = MAX(from_ms, ?) WHERE contact_id = ? AND to_ms IS NULL")
            .bind(to_ms)
            .bind(contact.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Appends to the audit log.
    pub async fn audit(
        &mut self,
        at_ms: i64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        super::audit::append(&mut self.tx, at_ms, actor, action, subject, detail).await
    }

    /// The enrolled agent of a Webex person.
    pub async fn agent_for_person(
        &mut self,
        person: PersonId,
    ) -> Result<Option<AgentId>, StoreError> {
        if let Some(agent) = self.deferred.agent(person) {
            return Ok(agent);
        }
        let row = sqlx::query("SELECT id FROM agents WHERE person_id = ?")
            .bind(person.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        let agent = parse_agent(row.map(|r| r.try_get("id")).transpose()?)?;
        self.deferred.remember_agent(person, agent);
        Ok(agent)
    }
}

/// A stored agent id.
fn parse_agent(id: Option<String>) -> Result<Option<AgentId>, StoreError> {
    id.map(|id| uuid::Uuid::parse_str(&id).map(AgentId).map_err(corrupt))
        .transpose()
}
