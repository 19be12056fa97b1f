//! The metadata store: SQLite (WAL, `synchronous=FULL`) in `<data_dir>/capture.db`, migrations in
//! `server/migrations/sqlite`. Only this module holds SQL.

mod agents;
pub mod audit;
mod contacts;
mod deferred;
mod deliveries;
mod enrolment;
mod ingestion;
mod interactions;
mod matching;
mod recordings;
mod scn_files;
mod search;
mod tx;
mod users;

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use agents::{AgentEntry, NewAgent};
pub use audit::{AuditEntry, AuditFilter, Broken, Verified};
pub use contacts::{ContactDetail, ContactEvent, ContactFilter, ContactGap, ContactSummary};
pub use deliveries::{Inserted, NewDelivery, StoredDelivery};
pub use enrolment::{DEFAULT_ENROLMENT_TOKEN, EnrolmentToken, TokenRefusal, TokenUse};
pub use ingestion::{
    Archived, ArchivedInteraction, AudioInput, ClosedScreen, Collecting, InteractionInputs,
    NewVersion, ScreenInput,
};
pub use interactions::{
    InteractionFilter, InteractionRecording, InteractionSummary, TimelineEvent,
};
pub use recordings::{Backfill, Discovered, JobCounts, RecordingJob, StoredRecording};
pub use scn_files::{ScnFileEntry, ScnState};
pub use tx::StoreTx;
pub use users::{SessionUser, User};

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "capture.db";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A unique value is already taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// The write was abandoned before its outcome was known (its task was cancelled).
    #[error("interrupted: {0}")]
    Interrupted(&'static str),
}

/// The metadata store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Writers of this process take turns here, first come first served. SQLite admits one writer
    /// at a time and makes the others poll with growing sleeps, which starves a short writer (a
    /// webhook insert) behind a busy one (the processor); an async FIFO lock keeps the wait for the
    /// receiver to at most one processor batch.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Notified when an input of ingestion lands in this process (a recording stored, an SCN file
    /// closed), so that ingestion need not wait for its next tick.
    ingestion_inputs: std::sync::Arc<tokio::sync::Notify>,
    /// The SCN catalogue's group commit.
    scn_writes: std::sync::Arc<scn_files::ScnWrites>,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every commit is on disk before it returns: a webhook is answered only after that.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Checkpoints run in the background (`checkpoint`), never in a request's commit.
            .pragma("wal_autocheckpoint", "0")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let store = Store {
            pool,
            write_gate: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            ingestion_inputs: std::sync::Arc::new(tokio::sync::Notify::new()),
            scn_writes: std::sync::Arc::default(),
        };
        store.chain_unchained_audit().await?;
        Ok(store)
    }

    /// Starts a write transaction (waiting for this process's other writers to finish).
    pub async fn begin(&self) -> Result<StoreTx, StoreError> {
        let turn = self.write_gate.clone().lock_owned().await;
        Ok(StoreTx::new(self.pool.begin().await?, turn))
    }

    /// Notified when a recording is stored or an SCN file closed in this process (other
    /// processes' inputs are found by polling).
    pub fn ingestion_inputs(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.ingestion_inputs.clone()
    }

    /// Waits for this process's turn to write.
    pub(crate) async fn write_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.write_gate.clone().lock_owned().await
    }

    /// Copies the write-ahead log into the database file without blocking readers or writers
    /// (SQLite's PASSIVE checkpoint). Run periodically by the server.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Checkpoints every `interval` until `cancel`, then once more, truncating the log.
    pub async fn checkpoint_loop(
        self,
        interval: Duration,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = self.checkpoint().await {
                tracing::warn!(%error, "database checkpoint failed");
            }
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(%error, "final database checkpoint failed");
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
