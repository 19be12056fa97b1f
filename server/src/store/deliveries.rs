//! Webhook deliveries: written before the 2xx, read back in order by the processor.

use sqlx::Row as _;

use super::{Store, StoreError};

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
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let mut results = Vec::with_capacity(batch.len());
        for delivery in batch {
            let row = sqlx::query(
                "INSERT INTO webhook_deliveries (body_sha256, received_at_ms, resource, event, body)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (body_sha256) DO NOTHING RETURNING seq",
            )
            .bind(&delivery.body_sha256)
            .bind(delivery.received_at_ms)
            .bind(&delivery.resource)
            .bind(&delivery.event)
            .bind(&delivery.body)
            .fetch_optional(&mut *tx)
            .await?;
            results.push(match row {
                Some(row) => Inserted::New(row.try_get("seq")?),
                None => Inserted::Duplicate,
            });
        }
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
