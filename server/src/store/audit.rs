//! The audit log, chained by hash: every entry carries the SHA-256 of the entry before it, and
//! its own hash covers its sequence number, fields and that previous hash. Editing, deleting or
//! reordering any entry breaks the chain at that entry, which [`Store::verify_audit`] names.
//!
//! Every writer appends through [`append`], inside its own transaction and holding the process's
//! write turn (SQLite admits one writer at a time), so the chain has one head.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

use super::{Store, StoreError};

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its position in the chain (1, 2, …).
    pub seq: i64,
    /// When (UTC ms).
    pub at_ms: i64,
    /// Who: a user name, or the part of the server that acted (`ingestion`, `retention`, …).
    pub actor: String,
    /// What: `login`, `search`, `replay`, `export`, `delete_interaction`, …
    pub action: String,
    /// On what.
    pub subject: String,
    /// Details.
    pub detail: Option<String>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The hash of an entry: SHA-256 over its fields, each length-prefixed (so no two different
/// entries hash the same input), and the previous hash.
pub fn entry_hash(
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: Option<&str>,
    prev_hash: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"capture-audit-v1");
    hasher.update(seq.to_be_bytes());
    hasher.update(at_ms.to_be_bytes());
    for field in [Some(actor), Some(action), Some(subject), detail] {
        match field {
            Some(text) => {
                hasher.update([1]);
                hasher.update((text.len() as u64).to_be_bytes());
                hasher.update(text.as_bytes());
            }
            None => hasher.update([0]),
        }
    }
    hasher.update(prev_hash.as_bytes());
    hex::encode(hasher.finalize())
}

/// Appends one entry at the head of the chain, inside the caller's transaction.
pub async fn append(
    conn: &mut sqlx::SqliteConnection,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let head = sqlx::query("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let (seq, prev_hash) = match head {
        Some(row) => (
            row.try_get::<i64, _>("id")? + 1,
            row.try_get::<Option<String>, _>("hash")?
                .unwrap_or_else(|| GENESIS.to_owned()),
        ),
        None => (1, GENESIS.to_owned()),
    };
    let hash = entry_hash(seq, at_ms, actor, action, subject, detail, &prev_hash);
    sqlx::query(
        "INSERT INTO audit_log (id, at_ms, actor, action, subject, detail, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(seq)
    .bind(at_ms)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(detail)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Where the chain breaks first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The first entry that does not verify (its stored sequence number, or where the missing
    /// one should be).
    pub seq: i64,
    /// Why.
    pub reason: String,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Entries checked.
    pub entries: i64,
    /// The head's hash (record it elsewhere to detect a truncated tail later).
    pub head: String,
    /// The first break, if any.
    pub broken: Option<Broken>,
}

fn entry(row: &sqlx::sqlite::SqliteRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        detail: row.try_get("detail")?,
        prev_hash: row
            .try_get::<Option<String>, _>("prev_hash")?
            .unwrap_or_default(),
        hash: row
            .try_get::<Option<String>, _>("hash")?
            .unwrap_or_default(),
    })
}

/// Filters of the audit log's list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this subject.
    pub subject: Option<String>,
    /// Entries before this sequence number (paging backwards from the newest).
    pub before_seq: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

impl Store {
    /// Chains entries written before the chain existed (at open; in id order).
    pub(crate) async fn chain_unchained_audit(&self) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, subject, detail, prev_hash, hash FROM audit_log
             WHERE hash IS NULL ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut chained = 0;
        for row in &rows {
            let old = entry(row)?;
            let prev_hash: String =
                sqlx::query("SELECT hash FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT 1")
                    .bind(old.seq)
                    .fetch_optional(&mut *tx)
                    .await?
                    .and_then(|r| r.try_get::<Option<String>, _>("hash").ok().flatten())
                    .unwrap_or_else(|| GENESIS.to_owned());
            // Renumber so that sequence numbers have no holes (autoincrement may skip).
            let seq: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE id < ?")
                .bind(old.seq)
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>("n")?
                + 1;
            let hash = entry_hash(
                seq,
                old.at_ms,
                &old.actor,
                &old.action,
                &old.subject,
                old.detail.as_deref(),
                &prev_hash,
            );
            sqlx::query("UPDATE audit_log SET id = ?, prev_hash = ?, hash = ? WHERE id = ?")
                .bind(seq)
                .bind(&prev_hash)
                .bind(&hash)
                .bind(old.seq)
                .execute(&mut *tx)
                .await?;
            chained += 1;
        }
        tx.commit().await?;
        Ok(chained)
    }

    /// Appends one entry on its own.
    pub async fn audit(
        &self,
        at_ms: i64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        append(&mut tx, at_ms, actor, action, subject, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks the whole chain, in sequence order: numbers without holes, each entry's previous
    /// hash equal to the hash before it, each hash equal to its recomputation. Names the first
    /// entry that fails.
    pub async fn verify_audit(&self) -> Result<Verified, StoreError> {
        use futures_util::TryStreamExt as _;
        let mut rows = sqlx::query(
            "SELECT id, at_ms, actor, action, subject, detail, prev_hash, hash FROM audit_log ORDER BY id",
        )
        .fetch(&self.pool);
        let mut expected_seq = 1;
        let mut prev = GENESIS.to_owned();
        let mut entries = 0;
        while let Some(row) = rows.try_next().await? {
            let e = entry(&row)?;
            entries += 1;
            let broken = |reason: String| Verified {
                entries,
                head: prev.clone(),
                broken: Some(Broken {
                    seq: e.seq.min(expected_seq),
                    reason,
                }),
            };
            if e.seq != expected_seq {
                return Ok(broken(format!(
                    "entry {expected_seq} is missing (the next one is {})",
                    e.seq
                )));
            }
            if e.prev_hash != prev {
                return Ok(broken(format!(
                    "entry {} does not follow entry {} (deleted, inserted or reordered)",
                    e.seq,
                    e.seq - 1
                )));
            }
            let recomputed = entry_hash(
                e.seq,
                e.at_ms,
                &e.actor,
                &e.action,
                &e.subject,
                e.detail.as_deref(),
                &e.prev_hash,
            );
            if recomputed != e.hash {
                return Ok(broken(format!("entry {} was altered", e.seq)));
            }
            prev = e.hash;
            expected_seq += 1;
        }
        Ok(Verified {
            entries,
            head: prev,
            broken: None,
        })
    }

    /// Audit entries, newest first.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, subject, detail, prev_hash, hash FROM audit_log
             WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)
               AND (?3 IS NULL OR subject = ?3) AND (?4 IS NULL OR id < ?4)
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(&filter.actor)
        .bind(&filter.action)
        .bind(&filter.subject)
        .bind(filter.before_seq)
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with_entries(n: i64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        for i in 1..=n {
            store
                .audit(
                    1_000 + i,
                    "alice",
                    "replay",
                    &format!("interaction-{i}"),
                    Some("view all"),
                )
                .await
                .expect("audit");
        }
        (dir, store)
    }

    #[tokio::test]
    async fn an_intact_chain_verifies_and_each_kind_of_tampering_is_named_where_it_is() {
        let (_dir, store) = store_with_entries(6).await;
        let intact = store.verify_audit().await.expect("verify");
        assert_eq!((intact.entries, intact.broken.clone()), (6, None));
        assert_eq!(intact.head.len(), 64);

        // Editing entry 3's detail.
        sqlx::query("UPDATE audit_log SET detail = 'view audio' WHERE id = 3")
            .execute(&store.pool)
            .await
            .expect("edit");
        let broken = store
            .verify_audit()
            .await
            .expect("verify")
            .broken
            .expect("broken");
        assert_eq!(broken.seq, 3, "{broken:?}");
        sqlx::query("UPDATE audit_log SET detail = 'view all' WHERE id = 3")
            .execute(&store.pool)
            .await
            .expect("undo");
        assert_eq!(store.verify_audit().await.expect("verify").broken, None);

        // Editing an entry and recomputing its own hash: the next entry no longer follows it.
        let e = store
            .audit_entries(&AuditFilter {
                subject: Some("interaction-2".into()),
                limit: 1,
                ..Default::default()
            })
            .await
            .expect("entries")
            .remove(0);
        let forged = entry_hash(
            e.seq,
            e.at_ms,
            "mallory",
            &e.action,
            &e.subject,
            e.detail.as_deref(),
            &e.prev_hash,
        );
        sqlx::query("UPDATE audit_log SET actor = 'mallory', hash = ? WHERE id = 2")
            .bind(&forged)
            .execute(&store.pool)
            .await
            .expect("forge");
        let broken = store
            .verify_audit()
            .await
            .expect("verify")
            .broken
            .expect("broken");
        assert_eq!(broken.seq, 3, "{broken:?}");
    }

    #[tokio::test]
    async fn deleting_or_reordering_entries_breaks_the_chain_there() {
        let (_dir, store) = store_with_entries(6).await;
        sqlx::query("DELETE FROM audit_log WHERE id = 4")
            .execute(&store.pool)
            .await
            .expect("delete");
        let broken = store
            .verify_audit()
            .await
            .expect("verify")
            .broken
            .expect("broken");
        assert_eq!(broken.seq, 4, "{broken:?}");

        let (_dir, store) = store_with_entries(6).await;
        // Swap the contents of entries 2 and 5 (ids stay in order).
        for (from, to) in [(2, -2), (5, 2), (-2, 5)] {
            sqlx::query("UPDATE audit_log SET id = ? WHERE id = ?")
                .bind(to)
                .bind(from)
                .execute(&store.pool)
                .await
                .expect("swap");
        }
        let broken = store
            .verify_audit()
            .await
            .expect("verify")
            .broken
            .expect("broken");
        assert_eq!(broken.seq, 2, "{broken:?}");
    }

    #[tokio::test]
    async fn entries_written_before_the_chain_are_chained_when_the_store_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("store");
        for (id, subject) in [(5, "a"), (9, "b")] {
            sqlx::query("INSERT INTO audit_log (id, at_ms, actor, action, subject) VALUES (?, 1, 'x', 'y', ?)")
                .bind(id)
                .bind(subject)
                .execute(&store.pool)
                .await
                .expect("insert");
        }
        store.close().await;
        let store = Store::open(dir.path()).await.expect("reopen");
        store
            .audit(2, "alice", "login", "alice", None)
            .await
            .expect("audit");
        let verified = store.verify_audit().await.expect("verify");
        assert_eq!((verified.entries, verified.broken), (3, None));
    }
}
