//! The recording adapter: Webex's Converged Recordings → stored audio, exactly once, joined into
//! interactions by callSessionId.
//!
//! ```text
//! discovery (ids only, durable):  poll loop ─┐  backfills ─┐  convergedRecordings webhook
//!                                            ▼             ▼      (integration::processor)
//!                                  recordings table: one row per id, 'pending'
//! workers (≤ concurrency): claim with a lease ─▶ fetch (details ─▶ metadata ─▶ audio) ─▶
//!   store_recording (stored + interaction, one transaction) | retry later | parked
//! ```
//!
//! Retries: each Webex request already follows the client's policy (`Retry-After`, backoff);
//! a job whose attempt still fails is tried again after [`job_backoff`] (never before what
//! Webex's `Retry-After` asked), and parked after `max_attempts` or at once when it cannot
//! succeed (malformed documents, deleted recordings, no download link) — its reason stays
//! visible through `GET /api/v1/recordings`.

pub mod backfill;
pub mod fetch;
pub mod list;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::AdapterSettings;
use crate::store::Store;
use crate::webex::client::WebexClient;

pub use fetch::FetchError;

/// How long a claimed recording stays with its worker before another process may take it over;
/// the worker renews its leases every third of this while it works, so only a dead process's
/// leases run out.
pub const LEASE: Duration = Duration::from_secs(30);
/// Longest sleep of an idle worker loop (it also wakes on new work).
pub const IDLE_CHECK: Duration = Duration::from_secs(5);
/// First job-level backoff; doubled per attempt up to [`JOB_BACKOFF_MAX`].
pub const JOB_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest job-level backoff.
pub const JOB_BACKOFF_MAX: Duration = Duration::from_secs(30 * 60);

/// When to try a job again after its `attempts`-th failure.
pub fn job_backoff(attempts: i64, retry_after: Option<Duration>) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    let backoff = JOB_BACKOFF_BASE
        .saturating_mul(1 << exponent)
        .min(JOB_BACKOFF_MAX);
    let jitter = Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 4));
    (backoff + jitter).max(retry_after.unwrap_or_default())
}

/// The adapter's parts.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// Webex.
    pub client: WebexClient,
    /// The store.
    pub store: Store,
    /// The data directory (audio goes to `audio/`).
    pub data_dir: PathBuf,
    /// Settings.
    pub settings: AdapterSettings,
    /// The clock.
    pub clock: Clock,
    /// Notified when new recordings are discovered.
    pub wake: Arc<Notify>,
    /// Notified when a backfill is requested: the poll loop lists it at once.
    pub poll_now: Arc<Notify>,
    /// This process's lease name.
    pub owner: Arc<str>,
    /// Counters.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What one job attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Stored into this interaction.
    Stored(String),
    /// Another process stored it first.
    AlreadyStored,
    /// Failed; tried again later.
    Retry(String),
    /// Failed for good; parked.
    Parked(String),
}

impl Adapter {
    /// A lease owner name unique to this process.
    pub fn new_owner() -> Arc<str> {
        Arc::from(format!("{}-{}", std::process::id(), uuid::Uuid::new_v4()).as_str())
    }

    /// Polls every `poll_interval` until `cancel`, and lists any backfill still listing. A
    /// backfill listing that failed is taken up again after `max(LIST_RETRY, Retry-After)`, not
    /// sooner (not even when another backfill is requested meanwhile) and not only at the next poll.
    pub async fn poll_loop(self, cancel: CancellationToken) {
        let mut next_poll = tokio::time::Instant::now();
        let mut backfills_at = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_poll {
                next_poll = tokio::time::Instant::now() + self.poll().await;
            }
            if tokio::time::Instant::now() >= backfills_at {
                match self.store.listing_backfills().await {
                    Ok(backfills) => {
                        for backfill in backfills {
                            if let Err(error) = self.list_backfill(backfill).await {
                                tracing::warn!(%error, "backfill listing failed; it resumes later");
                                let retry_after = match &error {
                                    list::ListError::Webex(webex) => webex.retry_after(),
                                    _ => None,
                                };
                                let wait =
                                    backfill::LIST_RETRY.max(retry_after.unwrap_or_default());
                                backfills_at = tokio::time::Instant::now() + wait;
                                break;
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "backfills unreadable"),
                }
            }
            let wake_at = if backfills_at > tokio::time::Instant::now() {
                next_poll.min(backfills_at)
            } else {
                next_poll
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                // A backfill was requested: list it now (unless a listing waits out a refusal);
                // the poll keeps its own pace.
                () = self.poll_now.notified() => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// One poll and its outcome recorded; how long until the next.
    async fn poll(&self) -> Duration {
        let mut wait = self.settings.poll_interval;
        match self.poll_once().await {
            Ok(new) => {
                if new > 0 {
                    tracing::info!(new, "poll found recordings");
                    self.wake.notify_one();
                }
                self.note_poll(None).await;
            }
            Err(error) => {
                if let list::ListError::Webex(webex) = &error {
                    wait = wait.max(webex.retry_after().unwrap_or_default());
                }
                self.metrics.poll_failures.inc();
                tracing::warn!(%error, "poll of webex recordings failed; the next poll covers the window again");
                self.note_poll(Some(error.to_string())).await;
            }
        }
        wait
    }

    async fn note_poll(&self, error: Option<String>) {
        let now = self.clock.now_ms();
        let value = serde_json::json!({ "at_ms": now, "error": error }).to_string();
        if let Err(error) = self
            .store
            .set_adapter_value(list::LAST_POLL, &value, now)
            .await
        {
            tracing::warn!(%error, "poll outcome not recorded");
        }
    }

    /// Claims and fetches due recordings, at most `concurrency` at a time, until `cancel`
    /// (then lets running jobs finish within [`IDLE_CHECK`] and gives up its leases).
    pub async fn work_loop(self, cancel: CancellationToken) {
        let mut running = JoinSet::new();
        let mut renew = tokio::time::interval(LEASE / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let free = self.settings.concurrency.saturating_sub(running.len());
            let mut claimed = 0;
            if free > 0 && !cancel.is_cancelled() {
                let now = self.clock.now_ms();
                match self
                    .store
                    .claim_recordings(
                        &self.owner,
                        now,
                        now + LEASE.as_millis() as i64,
                        free as i64,
                    )
                    .await
                {
                    Ok(ids) => {
                        claimed = ids.len();
                        for id in ids {
                            let adapter = self.clone();
                            running.spawn(async move { adapter.run_job(&id).await });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "claiming recordings failed"),
                }
            }
            if claimed == free && free > 0 {
                // Maybe more are due: claim again as soon as a slot frees up.
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = running.join_next() => {}
                    _ = renew.tick() => self.renew_leases().await,
                }
                continue;
            }
            let sleep = self.idle_sleep().await;
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.wake.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = renew.tick(), if !running.is_empty() => self.renew_leases().await,
                () = tokio::time::sleep(sleep) => {}
            }
        }
        if tokio::time::timeout(IDLE_CHECK, async {
            while running.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            running.abort_all();
        }
        if let Err(error) = self.store.release_leases(&self.owner).await {
            tracing::warn!(%error, "leases not released; they expire on their own");
        }
    }

    async fn renew_leases(&self) {
        let until = self.clock.now_ms() + LEASE.as_millis() as i64;
        if let Err(error) = self.store.renew_leases(&self.owner, until).await {
            tracing::warn!(%error, "leases not renewed");
        }
    }

    async fn idle_sleep(&self) -> Duration {
        match self.store.next_recording_due().await {
            Ok(Some(due)) => {
                let wait = due.saturating_sub(self.clock.now_ms()).max(10);
                Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(IDLE_CHECK)
            }
            _ => IDLE_CHECK,
        }
    }

    /// One attempt at one claimed recording.
    pub async fn run_job(&self, id: &str) -> JobOutcome {
        let outcome = self.attempt(id).await;
        match &outcome {
            JobOutcome::Stored(interaction) => {
                tracing::info!(recording = id, %interaction, "recording stored")
            }
            JobOutcome::AlreadyStored => {}
            JobOutcome::Retry(reason) => {
                tracing::info!(recording = id, %reason, "recording fetch failed; will retry")
            }
            JobOutcome::Parked(reason) => {
                tracing::warn!(recording = id, %reason, "recording parked")
            }
        }
        outcome
    }

    async fn attempt(&self, id: &str) -> JobOutcome {
        let result = fetch::fetch(&self.client, &self.data_dir, id).await;
        let now = self.clock.now_ms();
        let error = match result {
            Ok(recording) => match self
                .store
                .store_recording(&self.owner, &recording, now)
                .await
            {
                Ok(Some(interaction)) => {
                    self.metrics.recordings_stored.inc();
                    self.metrics
                        .recording_bytes
                        .inc_by(u64::try_from(recording.audio_bytes).unwrap_or(0));
                    return JobOutcome::Stored(interaction);
                }
                Ok(None) => return JobOutcome::AlreadyStored,
                Err(error) => FetchError::Unusable(format!("database: {error}")),
            },
            Err(error) => error,
        };
        let attempts = self.store.recording_attempts(id).await.unwrap_or(0) + 1;
        let retry_after = match &error {
            FetchError::Webex(webex) => webex.retry_after(),
            _ => None,
        };
        let park = !error.is_retryable() || attempts >= i64::from(self.settings.max_attempts);
        let reason = if park && error.is_retryable() {
            format!("gave up after {attempts} attempts: {error}")
        } else {
            error.to_string()
        };
        let retry_at = now + job_backoff(attempts, retry_after).as_millis() as i64;
        if let Err(store_error) = self
            .store
            .recording_failed(id, &self.owner, &reason, retry_at, park)
            .await
        {
            tracing::error!(recording = id, %store_error, "recording failure not recorded; its lease expires");
        }
        if park {
            self.metrics.recordings_parked.inc();
            JobOutcome::Parked(reason)
        } else {
            self.metrics.recording_retries.inc();
            JobOutcome::Retry(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_backoff_grows_is_bounded_and_honours_retry_after() {
        assert!(job_backoff(1, None) >= JOB_BACKOFF_BASE * 2);
        assert!(job_backoff(40, None) <= JOB_BACKOFF_MAX + JOB_BACKOFF_MAX / 4);
        assert!(job_backoff(0, Some(Duration::from_secs(90))) >= Duration::from_secs(90));
    }
}

#[cfg(test)]
mod consolidation_tests;
