//! The agent directory: which enrolled desktop agent belongs to which Webex person.

use capture_shared::ids::{AgentId, PersonId};
use serde::Serialize;
use sqlx::Row as _;

use super::{Store, StoreError, corrupt};

/// An agent to add.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Display name.
    pub name: String,
    /// The Webex person, when known.
    pub person: Option<PersonId>,
    /// The person's email, when known.
    pub email: Option<String>,
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentEntry {
    /// The agent's id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// The Webex person.
    pub person_id: Option<PersonId>,
    /// Email.
    pub email: Option<String>,
    /// When it was added, UTC ms.
    pub created_at_ms: i64,
}

impl Store {
    /// Adds an agent; a person id or email already mapped is a conflict.
    pub async fn add_agent(&self, agent: &NewAgent, now_ms: i64) -> Result<AgentEntry, StoreError> {
        let id = AgentId(uuid::Uuid::new_v4());
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "INSERT INTO agents (id, name, person_id, email, created_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&agent.name)
        .bind(agent.person.map(|p| p.to_string()))
        .bind(agent.email.as_deref())
        .bind(now_ms)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(AgentEntry {
                id,
                name: agent.name.clone(),
                person_id: agent.person,
                email: agent.email.clone(),
                created_at_ms: now_ms,
            }),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Err(
                StoreError::Conflict("an agent with this person id or email".into()),
            ),
            Err(error) => Err(error.into()),
        }
    }

    /// Every agent, by name.
    pub async fn agents(&self) -> Result<Vec<AgentEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, person_id, email, created_at_ms FROM agents ORDER BY name, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let person: Option<String> = row.try_get("person_id")?;
                Ok(AgentEntry {
                    id: AgentId(uuid::Uuid::parse_str(&id).map_err(corrupt)?),
                    name: row.try_get("name")?,
                    person_id: person
                        .map(|p| uuid::Uuid::parse_str(&p).map(PersonId))
                        .transpose()
                        .map_err(corrupt)?,
                    email: row.try_get("email")?,
                    created_at_ms: row.try_get("created_at_ms")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Agents known by email only: (agent, email).
    pub async fn agents_without_person(&self) -> Result<Vec<(AgentId, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, email FROM agents WHERE person_id IS NULL AND email IS NOT NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok((
                    AgentId(uuid::Uuid::parse_str(&id).map_err(corrupt)?),
                    row.try_get("email")?,
                ))
            })
            .collect()
    }

    /// Records the Webex person of an agent found by its email.
    pub async fn set_agent_person(
        &self,
        agent: AgentId,
        person: PersonId,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let result =
            sqlx::query("UPDATE agents SET person_id = ? WHERE id = ? AND person_id IS NULL")
                .bind(person.to_string())
                .bind(agent.to_string())
                .execute(&self.pool)
                .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Err(
                StoreError::Conflict(format!("an agent for person {person}")),
            ),
            Err(error) => Err(error.into()),
        }
    }
}
