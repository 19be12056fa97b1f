//! Webhook deliveries: written before the 2xx, read back in order by the processor.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row as _, Sqlite};

use super::{Store, StoreError, StoreTx};

/// A delivery to store.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// SHA-256 of the raw body, hex (duplicates share it).
    pub body_sha256: String,
    /// When it arrived, server UTC ms.
    pub received_at_ms: i64,
    /// The envelope's resource.
    pub resource: String,
    /// The envelope's event.
    pub event: String,
    /// The raw body.
    pub body: Vec<u8>,
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored with this sequence number.
    New(i64),
    /// The same body was stored before: nothing to do.
    Duplicate,
}

/// A stored, not yet processed delivery.
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    /// Its sequence number.
    pub seq: i64,
    /// When it arrived.
    pub received_at_ms: i64,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Store {
    /// Stores a batch of deliveries in one transaction (one fsync for the batch).
    pub async fn insert_deliveries(
        &self,
        batch: &[NewDelivery],
    ) -> Result<Vec<Inserted>, StoreError> {
        let mut tx = self.begin().await?;
        let results = tx.insert_deliveries(batch).await?;
        tx.commit().await?;
        Ok(results)
    }

    /// The oldest unprocessed deliveries, in arrival order.
    pub async fn pending_deliveries(&self, limit: i64) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, received_at_ms, body FROM webhook_deliveries
             WHERE processed_at_ms IS NULL ORDER BY seq LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(StoredDelivery {
                    seq: row.try_get("seq")?,
                    received_at_ms: row.try_get("received_at_ms")?,
                    body: row.try_get("body")?,
                })
            })
            .collect()
    }

    /// How many deliveries are stored, and how many of them are processed.
    pub async fn delivery_counts(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, COUNT(processed_at_ms) AS processed FROM webhook_deliveries",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("total")?, row.try_get("processed")?))
    }
}

impl StoreTx {
    /// Stores a batch of deliveries in this transaction, in order (one statement per 500). A body
    /// stored before, or earlier in the batch, is a duplicate.
    pub async fn insert_deliveries(
        &mut self,
        batch: &[NewDelivery],
    ) -> Result<Vec<Inserted>, StoreError> {
        let mut seen = HashSet::new();
        let fresh: Vec<&NewDelivery> = batch
            .iter()
            .filter(|d| seen.insert(d.body_sha256.as_str()))
            .collect();
        let mut seqs: HashMap<String, i64> = HashMap::with_capacity(fresh.len());
        for chunk in fresh.chunks(500) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO webhook_deliveries (body_sha256, received_at_ms, resource, event, body) ",
            );
            query.push_values(chunk, |mut row, d| {
                row.push_bind(&d.body_sha256)
                    .push_bind(d.received_at_ms)
                    .push_bind(&d.resource)
                    .push_bind(&d.event)
                    .push_bind(&d.body);
            });
            query.push(" ON CONFLICT (body_sha256) DO NOTHING RETURNING seq, body_sha256");
            for row in query
                .build()
                .persistent(false)
                .fetch_all(&mut *self.tx)
                .await?
            {
                seqs.insert(row.try_get("body_sha256")?, row.try_get("seq")?);
            }
        }
        // The returned rows' order is not defined: each delivery finds its row by its hash, and
        // only its first occurrence in the batch takes it.
        Ok(batch
            .iter()
            .map(|d| match seqs.remove(&d.body_sha256) {
                Some(seq) => Inserted::New(seq),
                None => Inserted::Duplicate,
            })
            .collect())
    }

    /// Whether a stored delivery waits for the processor.
    pub async fn has_pending_deliveries(&mut self) -> Result<bool, StoreError> {
        self.flush().await?;
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE processed_at_ms IS NULL) AS pending",
        )
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get::<bool, _>("pending")?)
    }
}
