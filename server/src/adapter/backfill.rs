//! A backfill: every recording that started in `[from, to)`, listed page by page (durably, so a
//! repeated command or the running service resumes where a killed one stopped) and fetched by
//! the same workers as the poll's. `capture-server backfill` runs it in its own process next to
//! (or without) the service; leases keep the two from fetching one recording twice.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Adapter;
use super::list::ListError;
use crate::store::StoreError;

/// How often progress is reported.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Wait before listing again after a retryable listing failure.
pub const LIST_RETRY: Duration = Duration::from_secs(5);

/// Where a backfill stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Whether every page of the range has been listed.
    pub listed: bool,
    /// Recordings of the range known so far.
    pub total: i64,
    /// Stored.
    pub stored: i64,
    /// Parked (see `GET /api/v1/recordings?state=parked`).
    pub parked: i64,
}

impl Progress {
    /// Whether nothing is left to do.
    pub fn done(&self) -> bool {
        self.listed && self.stored + self.parked >= self.total
    }
}

/// Why a backfill stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The range is empty or reversed.
    #[error("the backfill range is empty: --from must be before --to")]
    EmptyRange,
    /// Listing failed for good (the reason is also kept on the backfill).
    #[error("listing failed: {0}")]
    List(#[from] ListError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Cancelled.
    #[error("interrupted; run the same command again to resume")]
    Cancelled,
}

impl Adapter {
    async fn progress(
        &self,
        from_ms: i64,
        to_ms: i64,
        listed: bool,
    ) -> Result<Progress, StoreError> {
        let counts = self.store.recording_counts(Some((from_ms, to_ms))).await?;
        Ok(Progress {
            listed,
            total: counts.pending + counts.stored + counts.parked,
            stored: counts.stored,
            parked: counts.parked,
        })
    }

    /// Runs the backfill of `[from_ms, to_ms)` in this process until every recording is stored
    /// or parked, calling `report` as it goes.
    pub async fn backfill(
        &self,
        from_ms: i64,
        to_ms: i64,
        mut report: impl FnMut(&Progress),
        cancel: CancellationToken,
    ) -> Result<Progress, BackfillError> {
        if from_ms >= to_ms {
            return Err(BackfillError::EmptyRange);
        }
        let mut backfill = self
            .store
            .backfill(from_ms, to_ms, self.clock.now_ms())
            .await?;
        if backfill.state == "failed" {
            tracing::info!(id = backfill.id, "retrying a failed backfill");
            backfill.state = "listing".into();
            backfill.error = None;
        }
        let workers = cancel.child_token();
        let work = tokio::spawn(self.clone().work_loop(workers.clone()));
        let result = self
            .drive(backfill, from_ms, to_ms, &mut report, &cancel)
            .await;
        workers.cancel();
        let _ = work.await;
        result
    }

    async fn drive(
        &self,
        mut backfill: crate::store::Backfill,
        from_ms: i64,
        to_ms: i64,
        report: &mut impl FnMut(&Progress),
        cancel: &CancellationToken,
    ) -> Result<Progress, BackfillError> {
        while backfill.state == "listing" {
            match self.list_backfill(backfill.clone()).await {
                Ok(done) => backfill = done,
                Err(ListError::Webex(error)) if error.is_retryable() => {
                    tracing::warn!(%error, "backfill listing failed; retrying");
                    let wait = LIST_RETRY.max(error.retry_after().unwrap_or_default());
                    tokio::select! {
                        () = cancel.cancelled() => return Err(BackfillError::Cancelled),
                        () = tokio::time::sleep(wait) => {}
                    }
                    backfill = self
                        .store
                        .backfill(from_ms, to_ms, self.clock.now_ms())
                        .await?;
                }
                Err(error) => return Err(error.into()),
            }
            report(&self.progress(from_ms, to_ms, false).await?);
        }
        loop {
            let progress = self.progress(from_ms, to_ms, true).await?;
            report(&progress);
            if progress.done() {
                return Ok(progress);
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(BackfillError::Cancelled),
                () = tokio::time::sleep(PROGRESS_INTERVAL) => {}
            }
        }
    }
}
