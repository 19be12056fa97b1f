//! Enrolment tokens: created with an expiry and a use count, listed, revoked, and used once per
//! enrolment by one conditional update (two desktops racing for a token's last use cannot both
//! have it).

use serde::Serialize;
use sqlx::Row as _;

use super::{Store, StoreError};

/// The id of the token generated into `<data_dir>/enrolment-token`.
pub const DEFAULT_ENROLMENT_TOKEN: &str = "default";

/// An enrolment token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrolmentToken {
    /// Its id (to list and revoke it by).
    pub id: String,
    /// What it is for ("floor 3 rollout").
    pub label: String,
    /// When it was made, UTC ms.
    pub created_at_ms: i64,
    /// Who made it.
    pub created_by: String,
    /// When it stops working, UTC ms (`None`: never).
    pub expires_at_ms: Option<i64>,
    /// How many enrolments it allows (`None`: any number).
    pub max_uses: Option<i64>,
    /// How many it has made.
    pub uses: i64,
    /// When it was revoked, UTC ms.
    pub revoked_at_ms: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// The Webex person a token issued for one person enrols desktops as.
    pub person_id: Option<String>,
    /// The email a token issued for one person enrols desktops as.
    pub email: Option<String>,
}

/// A token's use: which token, and the person it binds enrolled desktops to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    /// The token's id.
    pub id: String,
    /// Its person, when issued for one.
    pub person_id: Option<String>,
    /// Its email, when issued for one.
    pub email: Option<String>,
}

/// Why a token enrols nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No such token.
    Unknown,
    /// Revoked by an administrator.
    Revoked,
    /// Past its expiry.
    Expired,
    /// Every use it allowed is spent.
    UsedUp,
}

impl TokenRefusal {
    /// The API's error code.
    pub fn code(self) -> &'static str {
        match self {
            TokenRefusal::Unknown => "bad_enrolment_token",
            TokenRefusal::Revoked => "enrolment_token_revoked",
            TokenRefusal::Expired => "enrolment_token_expired",
            TokenRefusal::UsedUp => "enrolment_token_used_up",
        }
    }

    /// In words.
    pub fn message(self) -> &'static str {
        match self {
            TokenRefusal::Unknown => "the enrolment token is not valid",
            TokenRefusal::Revoked => "the enrolment token was revoked",
            TokenRefusal::Expired => "the enrolment token has expired",
            TokenRefusal::UsedUp => "the enrolment token has been used as often as it allows",
        }
    }
}

const COLUMNS: &str = "id, label, created_at_ms, created_by, expires_at_ms, max_uses, uses, revoked_at_ms, revoked_by, person_id, email";

fn entry(row: &sqlx::sqlite::SqliteRow) -> Result<EnrolmentToken, StoreError> {
    Ok(EnrolmentToken {
        id: row.try_get("id")?,
        label: row.try_get("label")?,
        created_at_ms: row.try_get("created_at_ms")?,
        created_by: row.try_get("created_by")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        max_uses: row.try_get("max_uses")?,
        uses: row.try_get("uses")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
        revoked_by: row.try_get("revoked_by")?,
        person_id: row.try_get("person_id")?,
        email: row.try_get("email")?,
    })
}

impl Store {
    /// Records the token of `<data_dir>/enrolment-token` as [`DEFAULT_ENROLMENT_TOKEN`] (a
    /// replaced file replaces its hash; a revoked default stays revoked).
    pub async fn register_default_enrolment_token(
        &self,
        sha256: &[u8; 32],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO enrolment_tokens (id, token_sha256, label, created_at_ms, created_by)
             VALUES (?, ?, 'the token in the data directory', ?, 'capture-server')
             ON CONFLICT (id) DO UPDATE SET token_sha256 = excluded.token_sha256",
        )
        .bind(DEFAULT_ENROLMENT_TOKEN)
        .bind(sha256.as_slice())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A new token (audited); returns it listed, and the token itself (shown once). With a
    /// `person` (Webex person id and/or email) it is issued for that person.
    pub async fn create_enrolment_token(
        &self,
        label: &str,
        (expires_at_ms, max_uses): (Option<i64>, Option<i64>),
        person: (Option<&str>, Option<&str>),
        actor: &str,
        now_ms: i64,
    ) -> Result<(EnrolmentToken, String), StoreError> {
        let (person_id, email) = person;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
        let token = hex::encode(secret);
        let sha256: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into();
        let id = uuid::Uuid::new_v4().to_string();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO enrolment_tokens (id, token_sha256, label, created_at_ms, created_by, expires_at_ms, max_uses, person_id, email)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(sha256.as_slice())
        .bind(label)
        .bind(now_ms)
        .bind(actor)
        .bind(expires_at_ms)
        .bind(max_uses)
        .bind(person_id)
        .bind(email)
        .execute(&mut *tx)
        .await?;
        let detail = format!(
            "{label}; expires {}; uses {}; for {}",
            expires_at_ms.map_or("never".into(), |t| t.to_string()),
            max_uses.map_or("unlimited".into(), |n| n.to_string()),
            email.or(person_id).unwrap_or("anyone"),
        );
        super::audit::append(
            &mut tx,
            now_ms,
            actor,
            "create_enrolment_token",
            &id,
            Some(&detail),
        )
        .await?;
        tx.commit().await?;
        let created = EnrolmentToken {
            id,
            label: label.to_owned(),
            created_at_ms: now_ms,
            created_by: actor.to_owned(),
            expires_at_ms,
            max_uses,
            uses: 0,
            revoked_at_ms: None,
            revoked_by: None,
            person_id: person_id.map(str::to_owned),
            email: email.map(str::to_owned),
        };
        Ok((created, token))
    }

    /// Every token, newest first.
    pub async fn enrolment_tokens(&self) -> Result<Vec<EnrolmentToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM enrolment_tokens ORDER BY created_at_ms DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Revokes a token (audited); `false` when there is no such token. Revoking twice keeps
    /// the first revocation.
    pub async fn revoke_enrolment_token(
        &self,
        id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM enrolment_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            sqlx::query(
                "UPDATE enrolment_tokens SET revoked_at_ms = ?, revoked_by = ?
                 WHERE id = ? AND revoked_at_ms IS NULL",
            )
            .bind(now_ms)
            .bind(actor)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            super::audit::append(&mut tx, now_ms, actor, "revoke_enrolment_token", id, None)
                .await?;
        }
        tx.commit().await?;
        Ok(exists)
    }

    /// Uses a token once if it may enrol now; which, or why not.
    pub async fn use_enrolment_token(
        &self,
        sha256: &[u8; 32],
        now_ms: i64,
    ) -> Result<Result<TokenUse, TokenRefusal>, StoreError> {
        let _turn = self.write_turn().await;
        let used = sqlx::query(
            "UPDATE enrolment_tokens SET uses = uses + 1
             WHERE token_sha256 = ? AND revoked_at_ms IS NULL
               AND (expires_at_ms IS NULL OR expires_at_ms > ?)
               AND (max_uses IS NULL OR uses < max_uses)
             RETURNING id, person_id, email",
        )
        .bind(sha256.as_slice())
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = used {
            return Ok(Ok(TokenUse {
                id: row.try_get("id")?,
                person_id: row.try_get("person_id")?,
                email: row.try_get("email")?,
            }));
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM enrolment_tokens WHERE token_sha256 = ?"
        ))
        .bind(sha256.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let Some(token) = row.as_ref().map(entry).transpose()? else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        Ok(Err(if token.revoked_at_ms.is_some() {
            TokenRefusal::Revoked
        } else if token.expires_at_ms.is_some_and(|t| t <= now_ms) {
            TokenRefusal::Expired
        } else {
            TokenRefusal::UsedUp
        }))
    }
}
