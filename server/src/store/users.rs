//! Local users, their login sessions and login throttling (the replay module's logins). Passwords
//! are stored as argon2id hashes only; a session token is stored as its SHA-256 only.

use serde::Serialize;
use sqlx::Row as _;

use super::{Store, StoreError};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Its id.
    pub id: String,
    /// The login name.
    pub username: String,
    /// `admin`, `supervisor` or `auditor`.
    pub role: String,
    /// When it was created.
    pub created_ms: i64,
    /// When it was disabled (no login, its sessions ended).
    pub disabled_ms: Option<i64>,
}

/// A live session and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// The user.
    pub user: User,
    /// The session's CSRF token.
    pub csrf: String,
    /// When the session expires.
    pub expires_ms: i64,
}

fn user(row: &sqlx::sqlite::SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: row.try_get("role")?,
        created_ms: row.try_get("created_ms")?,
        disabled_ms: row.try_get("disabled_ms")?,
    })
}

impl Store {
    /// Creates a user (audited); [`StoreError::Conflict`] when the name is taken.
    pub async fn add_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<User, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let id = uuid::Uuid::new_v4().to_string();
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, created_ms) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(role)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("user {username}")));
        }
        super::audit::append(&mut tx, now_ms, actor, "add_user", username, Some(role)).await?;
        tx.commit().await?;
        Ok(User {
            id,
            username: username.to_owned(),
            role: role.to_owned(),
            created_ms: now_ms,
            disabled_ms: None,
        })
    }

    /// How many users exist.
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, username, role, created_ms, disabled_ms FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user).collect()
    }

    /// A user and their password hash, by name (for login).
    pub async fn user_for_login(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, username, role, created_ms, disabled_ms, password_hash FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((user(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    /// Changes a user's password, role or disabled state (audited; disabling or a new password
    /// ends their sessions). `false` when there is no such user.
    pub async fn update_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        role: Option<&str>,
        disabled: Option<bool>,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT id FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let id: String = row.try_get("id")?;
        sqlx::query(
            "UPDATE users SET password_hash = COALESCE(?, password_hash), role = COALESCE(?, role),
               disabled_ms = CASE WHEN ? IS NULL THEN disabled_ms WHEN ? THEN COALESCE(disabled_ms, ?) ELSE NULL END
             WHERE id = ?",
        )
        .bind(password_hash)
        .bind(role)
        .bind(disabled)
        .bind(disabled)
        .bind(now_ms)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if password_hash.is_some() || disabled == Some(true) || role.is_some() {
            sqlx::query("DELETE FROM user_sessions WHERE user_id = ?")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        let mut changes = Vec::new();
        if password_hash.is_some() {
            changes.push("password".to_owned());
        }
        if let Some(role) = role {
            changes.push(format!("role={role}"));
        }
        if let Some(disabled) = disabled {
            changes.push(if disabled { "disabled" } else { "enabled" }.to_owned());
        }
        super::audit::append(
            &mut tx,
            now_ms,
            actor,
            "update_user",
            username,
            Some(&changes.join(", ")),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Opens a session for `user_id` (audited as a login).
    pub async fn open_session(
        &self,
        token_sha256: &str,
        user: &User,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
        client: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO user_sessions (token_sha256, user_id, csrf, created_ms, expires_ms, last_seen_ms)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token_sha256)
        .bind(&user.id)
        .bind(csrf)
        .bind(now_ms)
        .bind(expires_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM user_sessions WHERE expires_ms < ?")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        super::audit::append(
            &mut tx,
            now_ms,
            &user.username,
            "login",
            &user.username,
            Some(client),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live session of a token hash, with its user (`None`: unknown, expired, or the user
    /// is disabled).
    pub async fn session(
        &self,
        token_sha256: &str,
        now_ms: i64,
    ) -> Result<Option<SessionUser>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.created_ms, u.disabled_ms, s.csrf, s.expires_ms
             FROM user_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_sha256 = ? AND s.expires_ms > ? AND u.disabled_ms IS NULL",
        )
        .bind(token_sha256)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionUser {
                user: user(&r)?,
                csrf: r.try_get("csrf")?,
                expires_ms: r.try_get("expires_ms")?,
            })
        })
        .transpose()
    }

    /// Ends a session (audited as a logout).
    pub async fn close_session(
        &self,
        token_sha256: &str,
        username: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM user_sessions WHERE token_sha256 = ?")
            .bind(token_sha256)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            super::audit::append(&mut tx, now_ms, username, "logout", username, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed login under each of `keys` (user name, client address), audited.
    pub async fn login_failed(
        &self,
        keys: &[&str],
        username: &str,
        client: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        for key in keys {
            sqlx::query("INSERT INTO login_failures (key, at_ms) VALUES (?, ?)")
                .bind(key)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        }
        super::audit::append(
            &mut tx,
            now_ms,
            username,
            "login_failed",
            username,
            Some(client),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Failed logins under `key` since `since_ms`: how many, and the oldest one's time.
    pub async fn login_failures(
        &self,
        key: &str,
        since_ms: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM login_failures WHERE key = ? AND at_ms >= ?",
        )
        .bind(key)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }

    /// Forgets the failures under `keys` (a successful login) and those older than `before_ms`.
    pub async fn clear_login_failures(
        &self,
        keys: &[&str],
        before_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        for key in keys {
            sqlx::query("DELETE FROM login_failures WHERE key = ?")
                .bind(key)
                .execute(&self.pool)
                .await?;
        }
        sqlx::query("DELETE FROM login_failures WHERE at_ms < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
