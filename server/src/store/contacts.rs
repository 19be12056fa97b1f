//! Contacts as people see them: the list and one contact's calls, timeline and gaps.

use serde::Serialize;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use capture_shared::ids::ContactId;

use super::{Store, StoreError};

/// Filters of the contact list.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Only this Webex person.
    pub person: Option<String>,
    /// Only this agent.
    pub agent: Option<String>,
    /// Only this state.
    pub state: Option<String>,
    /// Started at or after, UTC ms.
    pub from_ms: Option<i64>,
    /// Started before, UTC ms.
    pub to_ms: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// One contact in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactSummary {
    /// Its id.
    pub id: String,
    /// The Webex person.
    pub person_id: String,
    /// The enrolled agent, if any.
    pub agent_id: Option<String>,
    /// `recording`, `kept`, `discarded` or `closed`.
    pub state: String,
    /// When its first call started, UTC ms.
    pub started_at_ms: i64,
    /// When it ended, UTC ms.
    pub ended_at_ms: Option<i64>,
    /// Why it ended.
    pub close_reason: Option<String>,
    /// Its normalised call session ids.
    pub call_session_ids: Vec<String>,
}

/// A call of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactCall {
    /// Raw call id.
    pub call_id: String,
    /// Normalised call session id.
    pub call_session_id: Option<String>,
}

/// An event on a contact's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactEvent {
    /// The seed's label ("On Hold").
    pub event: String,
    /// When (source time), UTC ms.
    pub at_ms: i64,
    /// The call.
    pub call_id: Option<String>,
    /// A note (late, ignored).
    pub note: Option<String>,
}

/// A stretch without screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactGap {
    /// From, UTC ms.
    pub from_ms: i64,
    /// To, UTC ms (open while the contact records).
    pub to_ms: Option<i64>,
    /// Why, in words people read.
    pub reason: String,
}

/// One contact with everything known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: ContactSummary,
    /// Its calls.
    pub calls: Vec<ContactCall>,
    /// Its timeline.
    pub events: Vec<ContactEvent>,
    /// Its gaps.
    pub gaps: Vec<ContactGap>,
}

const SUMMARY_COLUMNS: &str =
    "c.id, c.person_id, c.agent_id, c.state, c.started_at_ms, c.ended_at_ms, c.close_reason,
    (SELECT group_concat(DISTINCT call_session_id) FROM contact_calls cc
      WHERE cc.contact_id = c.id AND call_session_id IS NOT NULL) AS sessions";

fn summary(row: &SqliteRow) -> Result<ContactSummary, StoreError> {
    let sessions: Option<String> = row.try_get("sessions")?;
    let mut call_session_ids: Vec<String> = sessions
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    call_session_ids.sort();
    Ok(ContactSummary {
        id: row.try_get("id")?,
        person_id: row.try_get("person_id")?,
        agent_id: row.try_get("agent_id")?,
        state: row.try_get("state")?,
        started_at_ms: row.try_get("started_at_ms")?,
        ended_at_ms: row.try_get("ended_at_ms")?,
        close_reason: row.try_get("close_reason")?,
        call_session_ids,
    })
}

impl Store {
    /// Contacts matching `filter`, newest first.
    pub async fn contacts(
        &self,
        filter: &ContactFilter,
    ) -> Result<Vec<ContactSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM contacts c
             WHERE (?1 IS NULL OR c.person_id = ?1) AND (?2 IS NULL OR c.agent_id = ?2)
               AND (?3 IS NULL OR c.state = ?3) AND (?4 IS NULL OR c.started_at_ms >= ?4)
               AND (?5 IS NULL OR c.started_at_ms < ?5)
             ORDER BY c.started_at_ms DESC, c.id LIMIT ?6 OFFSET ?7"
        );
        let rows = sqlx::query(&sql)
            .bind(filter.person.as_deref())
            .bind(filter.agent.as_deref())
            .bind(filter.state.as_deref())
            .bind(filter.from_ms)
            .bind(filter.to_ms)
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(summary).collect()
    }

    /// One contact, if it exists.
    pub async fn contact(&self, id: &str) -> Result<Option<ContactDetail>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE c.id = ?");
        let Some(row) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let summary = summary(&row)?;
        let calls = sqlx::query("SELECT call_id, call_session_id FROM contact_calls WHERE contact_id = ? ORDER BY call_id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(ContactCall { call_id: r.try_get("call_id")?, call_session_id: r.try_get("call_session_id")? }))
            .collect::<Result<_, StoreError>>()?;
        let events = sqlx::query(
            "SELECT kind, at_ms, call_id, note FROM call_events WHERE contact_id = ? ORDER BY at_ms, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ContactEvent {
                event: r.try_get("kind")?,
                at_ms: r.try_get("at_ms")?,
                call_id: r.try_get("call_id")?,
                note: r.try_get("note")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
        let gaps = sqlx::query(
            "SELECT from_ms, to_ms, reason FROM contact_gaps WHERE contact_id = ? ORDER BY from_ms",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ContactGap {
                from_ms: r.try_get("from_ms")?,
                to_ms: r.try_get("to_ms")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
        Ok(Some(ContactDetail {
            summary,
            calls,
            events,
            gaps,
        }))
    }

    /// Audit entries for `subject`, oldest first: (at_ms, actor, action, detail).
    pub async fn audit_for(
        &self,
        subject: &str,
    ) -> Result<Vec<(i64, String, String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, action, detail FROM audit_log WHERE subject = ? ORDER BY id",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("at_ms")?,
                    r.try_get("actor")?,
                    r.try_get("action")?,
                    r.try_get("detail")?,
                ))
            })
            .collect()
    }

    /// People whose machine needs a tick at or before `now_ms`.
    pub async fn due_machines(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT person_id FROM agent_machines WHERE next_deadline_ms <= ? ORDER BY next_deadline_ms")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("person_id")?)).collect()
    }

    /// Stops the timers of a person whose machine state cannot be read (it stays stored for
    /// inspection; the next delivery for the person fails and is parked too).
    pub async fn park_machine(
        &self,
        person: capture_shared::ids::PersonId,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE agent_machines SET next_deadline_ms = NULL WHERE person_id = ?")
            .bind(person.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The earliest deadline of any machine.
    pub async fn next_machine_deadline(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MIN(next_deadline_ms) AS due FROM agent_machines WHERE next_deadline_ms IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("due")?)
    }

    /// Records a closed stretch of a contact without screen (the agent could not capture: the
    /// screen was locked). Beside the gaps the integration opens and closes (agent offline).
    pub async fn add_contact_gap(
        &self,
        contact: ContactId,
        from_ms: i64,
        to_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO contact_gaps (contact_id, from_ms, to_ms, reason) VALUES (?, ?, ?, ?)",
        )
        .bind(contact.to_string())
        .bind(from_ms)
        .bind(to_ms.max(from_ms))
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
