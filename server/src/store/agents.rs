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
    /// When its credential was revoked (it connects no more until rotated), UTC ms.
    pub credential_revoked_at_ms: Option<i64>,
    /// The email its desktop claimed at enrolment, waiting for an administrator to map the
    /// agent (`PATCH /api/v1/agents/{id}`); a claim alone maps nothing.
    pub claimed_email: Option<String>,
}

impl Store {
    /// Adds an agent with a new credential; a person id or email already mapped is a conflict.
    /// Returns the entry and the credential, which is stored only as a hash: show it once.
    pub async fn add_agent(
        &self,
        agent: &NewAgent,
        now_ms: i64,
    ) -> Result<(AgentEntry, String), StoreError> {
        let id = AgentId(uuid::Uuid::new_v4());
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
        let credential = hex::encode(secret);
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "INSERT INTO agents (id, name, person_id, email, created_at_ms, credential_sha256) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&agent.name)
        .bind(agent.person.map(|p| p.to_string()))
        .bind(agent.email.as_deref())
        .bind(now_ms)
        .bind(credential_hash(&credential))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok((
                AgentEntry {
                    id,
                    name: agent.name.clone(),
                    person_id: agent.person,
                    email: agent.email.clone(),
                    created_at_ms: now_ms,
                    credential_revoked_at_ms: None,
                    claimed_email: None,
                },
                credential,
            )),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Err(
                StoreError::Conflict("an agent with this person id or email".into()),
            ),
            Err(error) => Err(error.into()),
        }
    }

    /// Every agent, by name.
    pub async fn agents(&self) -> Result<Vec<AgentEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, person_id, email, created_at_ms, credential_revoked_at_ms, claimed_email
             FROM agents ORDER BY name, id",
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
                    credential_revoked_at_ms: row.try_get("credential_revoked_at_ms")?,
                    claimed_email: row.try_get("claimed_email")?,
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

    /// Maps an agent to its Webex person and/or email (what is given replaces what was there);
    /// false when there is no such agent. Audited.
    pub async fn map_agent(
        &self,
        agent: AgentId,
        person: Option<PersonId>,
        email: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let changed = tx.map_agent(agent, person, email).await;
        let changed = match changed {
            Err(StoreError::Database(sqlx::Error::Database(error)))
                if error.is_unique_violation() =>
            {
                return Err(StoreError::Conflict(
                    "an agent for this person or email".into(),
                ));
            }
            other => other?,
        };
        if changed {
            let detail = format!(
                "person {}, email {}",
                person.map_or("unchanged".into(), |p| p.to_string()),
                email.unwrap_or("unchanged")
            );
            tx.audit(
                now_ms,
                "admin",
                "map_agent",
                &agent.to_string(),
                Some(&detail),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(changed)
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

/// The stored form of a credential.
fn credential_hash(credential: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(credential.as_bytes()))
}

impl Store {
    /// Whether `credential` is `agent`'s (hashes compared; unknown agents never match).
    pub async fn agent_credential_matches(
        &self,
        agent: AgentId,
        credential: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT credential_sha256 FROM agents WHERE id = ?")
            .bind(agent.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let stored: Option<String> = match row {
            Some(row) => row.try_get("credential_sha256")?,
            None => None,
        };
        Ok(stored.is_some_and(|stored| stored == credential_hash(credential)))
    }

    /// Revokes an agent's credential (audited): it matches nothing from now on. `false` when
    /// there is no such agent.
    pub async fn revoke_agent_credential(
        &self,
        agent: AgentId,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.replace_credential(agent, None, actor, now_ms).await
    }

    /// Gives an agent a new credential (audited); the old one matches nothing from now on.
    /// Returns the new credential (shown once), `None` when there is no such agent.
    pub async fn rotate_agent_credential(
        &self,
        agent: AgentId,
        actor: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
        let credential = hex::encode(secret);
        let found = self
            .replace_credential(agent, Some(&credential), actor, now_ms)
            .await?;
        Ok(found.then_some(credential))
    }

    async fn replace_credential(
        &self,
        agent: AgentId,
        credential: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE agents SET credential_sha256 = ?, credential_revoked_at_ms = ? WHERE id = ?",
        )
        .bind(credential.map(credential_hash))
        .bind(credential.is_none().then_some(now_ms))
        .bind(agent.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 1 {
            let action = if credential.is_some() {
                "rotate_agent_credential"
            } else {
                "revoke_agent_credential"
            };
            super::audit::append(&mut tx, now_ms, actor, action, &agent.to_string(), None).await?;
        }
        tx.commit().await?;
        Ok(updated == 1)
    }

    /// Records the email a desktop claimed at enrolment (audited as `claim_email`), mapping
    /// nothing: an administrator confirms it by mapping the agent.
    pub async fn claim_email(
        &self,
        agent: AgentId,
        email: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE agents SET claimed_email = ? WHERE id = ?")
            .bind(email)
            .bind(agent.to_string())
            .execute(&mut *tx)
            .await?;
        super::audit::append(
            &mut tx,
            now_ms,
            "enrolment",
            "claim_email",
            &agent.to_string(),
            Some(email),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
