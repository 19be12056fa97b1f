//! Ingestion: where the screen and the audio meet (DESIGN.md §5).
//!
//! ```text
//! stored recording ─▶ transcode MP3 → Opus (off the runtime) ─┐
//! closed SCN file ─▶ link to the interaction of each of its call sessions ─┤
//!                                                                          ▼
//! interaction ready (inputs settled, or the slower half's deadline passed)
//!   ─▶ align (plan) ─▶ stitch one fragmented MP4 (off the runtime) ─▶ archive: file, manifest,
//!      metadata; each read back and checked ─▶ 'archived' (one transaction) ─▶ buffer cleared
//! ```
//!
//! Crash safety: nothing is removed from the buffer before the archive is verified and recorded;
//! an interaction interrupted anywhere is stitched again from the start (the stitched file is
//! rewritten, the archive's objects overwritten with the same content).

pub mod archive;
mod late;
pub mod plan;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use capture_shared::ids::MonitorId;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::IngestionSettings;
use crate::media::stitch::{self, ScnFacts};
use crate::store::{Archived, Collecting, InteractionInputs, Store, StoreError};
use archive::Archive;

/// How often ingestion looks for work when nothing wakes it.
pub const TICK: Duration = Duration::from_secs(1);
/// Where interactions are stitched before they are archived.
pub const STITCHING_DIR: &str = "stitching";

/// Why one interaction could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stitching failed.
    #[error("stitching: {0}")]
    Stitch(#[from] stitch::StitchError),
    /// Archiving failed.
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    /// A blocking task failed.
    #[error("{0}")]
    Task(String),
}

/// Ingestion's parts.
#[derive(Debug, Clone)]
pub struct Ingestion {
    /// The store.
    pub store: Store,
    /// The data directory (buffer, audio, stitching).
    pub data_dir: PathBuf,
    /// The archive.
    pub archive: Archive,
    /// Settings.
    pub settings: IngestionSettings,
    /// The clock.
    pub clock: Clock,
    /// Wakes the loop before its next [`TICK`] (inputs are also found by polling every tick).
    pub wake: Arc<Notify>,
    /// Where the parked count goes (`None` in tests without metrics).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Re-stitches that failed: attempts and when to try again (UTC ms), by interaction.
    pub late_failures: Arc<std::sync::Mutex<std::collections::HashMap<String, (u32, i64)>>>,
}

/// Whether an interaction has waited long enough for its inputs.
pub fn is_ready(interaction: &Collecting, settings: &IngestionSettings, now_ms: i64) -> bool {
    if interaction.untranscoded > 0 {
        return false;
    }
    let waited = now_ms - interaction.updated_ms;
    let needed = match (interaction.contacts > 0, interaction.recordings > 0) {
        (true, true) => settings.settle,
        (true, false) => settings.wait_for_audio,
        (false, true) => settings.wait_for_screen,
        (false, false) => return false,
    };
    waited >= needed.as_millis() as i64
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| IngestError::Task(e.to_string()))
}

/// The wait before a failed stitch's next attempt: `base` doubled per attempt, at most an hour.
pub fn stitch_backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(Duration::from_secs(3600))
}

/// How many recordings are transcoded at once: all cores but one (the recorder, the API and the
/// stitcher keep one), at least one, at most four.
pub fn transcode_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .clamp(1, 4)
}

impl Ingestion {
    /// Runs until `cancel`: the transcoder on its own task (so that a long recording never holds
    /// up stitching), and the loop that links, stitches and archives. Interactions that failed
    /// before are tried again first.
    pub async fn run(self, cancel: CancellationToken) {
        match self.store.retry_failed_interactions().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(interactions = n, "retrying interactions that failed before"),
            Err(error) => tracing::warn!(%error, "failed interactions not reset"),
        }
        let transcoder = tokio::spawn(self.clone().transcode_loop(cancel.clone()));
        loop {
            if let Err(error) = self.step().await {
                tracing::warn!(%error, "ingestion step failed; retrying");
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
        let _ = transcoder.await;
    }

    /// Transcodes stored recordings' MP3 to Opus as they arrive, [`transcode_workers`] at a
    /// time, off the runtime; wakes the stitching loop after each, and when the store says an
    /// input arrived (this loop is the one listener of that signal).
    async fn transcode_loop(self, cancel: CancellationToken) {
        let workers = transcode_workers();
        let inputs = self.store.ingestion_inputs();
        let mut running = tokio::task::JoinSet::new();
        // Task → recording, so that a task that panicked frees its recording too.
        let mut in_flight = std::collections::HashMap::new();
        loop {
            if running.len() < workers {
                match self
                    .store
                    .recordings_to_transcode(2 * workers as i64 + 2)
                    .await
                {
                    Ok(due) => {
                        for (id, mp3) in due {
                            if running.len() < workers && !in_flight.values().any(|r| *r == id) {
                                let task = running.spawn(self.clone().transcode(id.clone(), mp3));
                                in_flight.insert(task.id(), id);
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "recordings to transcode not read"),
                }
            }
            tokio::select! {
                () = cancel.cancelled() => {
                    // A transcode cut short is done again after the restart.
                    running.abort_all();
                    return;
                }
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let task = match done {
                        Ok((task, ())) => task,
                        Err(error) => {
                            tracing::error!(%error, "transcode task failed");
                            error.id()
                        }
                    };
                    in_flight.remove(&task);
                    self.wake.notify_one();
                }
                () = inputs.notified() => {
                    // Also the stitching loop's signal: pass it on.
                    self.wake.notify_one();
                }
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// Transcodes one recording and records the outcome.
    async fn transcode(self, id: String, mp3: String) {
        let opus = format!("{}.opus", mp3.trim_end_matches(".mp3"));
        let (from, to) = (self.data_dir.join(&mp3), self.data_dir.join(&opus));
        let outcome = match blocking(move || crate::media::audio::transcode_mp3(&from, &to)).await {
            Ok(outcome) => outcome.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let now = self.clock.now_ms();
        let recorded = match &outcome {
            Ok(_) => self.store.set_transcoded(&id, Ok(&opus), now).await,
            Err(error) => {
                tracing::warn!(recording = %id, %error, "audio not transcoded; the interaction goes on without it");
                self.store.set_transcoded(&id, Err(error), now).await
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(recording = %id, %error, "transcode outcome not recorded; done again");
        }
    }

    /// One round: link closed screens, apply retention, retry failed stitches whose time has
    /// come, stitch what is ready.
    pub async fn step(&self) -> Result<(), IngestError> {
        self.store
            .retry_due_interactions(self.clock.now_ms())
            .await?;
        for screen in self.store.closed_screens().await? {
            self.store.link_screen(&screen, self.clock.now_ms()).await?;
        }
        self.apply_retention(self.clock.now_ms()).await?;
        self.restitch_late().await?;
        let now = self.clock.now_ms();
        for interaction in self.store.collecting_interactions().await? {
            if !is_ready(&interaction, &self.settings, now) {
                continue;
            }
            if let Err(error) = self.ingest(&interaction.id).await {
                let retry = self.settings.stitch_retry;
                let (attempts, parked) = self
                    .store
                    .interaction_failed(
                        &interaction.id,
                        &error.to_string(),
                        self.settings.stitch_attempts,
                        |attempts| now + stitch_backoff(retry, attempts).as_millis() as i64,
                    )
                    .await?;
                if parked {
                    tracing::error!(interaction = %interaction.id, %error, attempts, "interaction not archived: parked for an operator");
                } else {
                    tracing::warn!(interaction = %interaction.id, %error, attempts, "interaction not archived; retrying later");
                }
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics
                .interactions_parked
                .set(i64::try_from(self.store.parked_interactions().await?).unwrap_or(i64::MAX));
        }
        Ok(())
    }

    /// Deletes archived interactions older than the retention policy (not those on legal hold):
    /// their archive objects, then their state, audited. How many.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<usize, IngestError> {
        let Some(retention) = self.settings.retention else {
            return Ok(0);
        };
        let before = now_ms - retention.as_millis() as i64;
        let policy = format!("retention {} days", retention.as_secs() / 86_400);
        let mut deleted = 0;
        for (id, key) in self.store.expired_interactions(before, 100).await? {
            let prefix = key
                .rsplit_once('/')
                .map_or(key.as_str(), |(folder, _)| folder);
            self.archive.delete_prefix(prefix).await?;
            if self.store.interaction_deleted(&id, now_ms, &policy).await? {
                deleted += 1;
                tracing::info!(interaction = %id, %policy, "interaction deleted by retention");
            }
        }
        Ok(deleted)
    }

    /// Stitches, archives and clears one interaction.
    pub async fn ingest(&self, id: &str) -> Result<(), IngestError> {
        let inputs = self.store.interaction_inputs(id).await?;
        let mut facts = Vec::new();
        let mut short = Vec::new();
        for screen in &inputs.screens {
            let length = screen.ended_ms.unwrap_or(screen.started_ms) - screen.started_ms;
            if length < self.settings.min_screen.as_millis() as i64 {
                short.push(screen.contact.clone());
                continue;
            }
            let path = self.data_dir.join(&screen.scn_path);
            let scanned: Result<ScnFacts, _> = blocking(move || stitch::scan(&path)).await?;
            match scanned {
                Ok(scanned) => facts.push((screen, scanned)),
                Err(error) => {
                    tracing::warn!(contact = %screen.contact, %error, "screen unreadable; stitched without it")
                }
            }
        }
        let screens: Vec<plan::Screen<'_>> = facts
            .iter()
            .map(|(input, facts)| plan::Screen {
                input,
                facts: facts.clone(),
            })
            .collect();
        let aligned = plan::align(&screens, &inputs.audio, &self.data_dir);
        let dir = self.data_dir.join(STITCHING_DIR);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| IngestError::Task(format!("{}: {e}", dir.display())))?;
        let out = dir.join(format!("{id}.mp4"));
        let (plan, file) = (aligned.plan.clone(), out.clone());
        let stitched = blocking(move || stitch::stitch(&plan, &file)).await??;

        let start = jiff::Timestamp::from_millisecond(aligned.start_ms)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let prefix = format!("interactions/{}/{id}", start.strftime("%Y/%m/%d"));
        let key = format!("{prefix}/interaction.mp4");
        let (sha256, bytes) = self.archive.put_file(&key, &out).await?;
        self.archive.verify(&key, &sha256).await?;
        let metadata = serde_json::to_vec_pretty(&json!({
            "interaction": id,
            "call_session_id": inputs.call_session_id,
            "start_ms": aligned.start_ms,
            "duration_us": aligned.plan.duration_us,
            "contacts": inputs.screens,
            "recordings": inputs.audio,
        }))
        .unwrap_or_default();
        let metadata_sha = self
            .archive
            .put_bytes(&format!("{prefix}/metadata.json"), metadata)
            .await?;
        self.archive
            .verify(&format!("{prefix}/metadata.json"), &metadata_sha)
            .await?;
        let screens_placed = aligned.placements.iter().filter(|p| p.monitor.is_some());
        let ended = |contact: &str, monitor: MonitorId| {
            facts
                .iter()
                .find(|(screen, _)| screen.contact == contact)
                .and_then(|(_, f)| f.ends.iter().find(|e| e.monitor == monitor))
                .map(|e| e.reason.clone())
        };
        let tracks: Vec<serde_json::Value> = aligned.plan.videos.iter().zip(screens_placed).enumerate().map(|(n, (v, placed))| {
                let span = stitched.video_spans.get(n).copied().flatten();
                json!({
                "track": n + 1, "kind": "video", "codec": "h264", "monitor": v.monitor.0,
                "contact": placed.input, "frames": stitched.video_frames.get(n),
                "from_ms": span.map(|s| s.0 / 1000), "to_ms": span.map(|s| s.1 / 1000),
                "ended": ended(&placed.input, v.monitor),
            })}).chain(std::iter::once(json!({
                "track": aligned.plan.videos.len() + 1, "kind": "audio", "codec": "opus",
                "recorded_packets": stitched.audio_packets, "silent_packets": stitched.silent_packets,
            }))).collect();
        let manifest = serde_json::to_vec_pretty(&json!({
            "interaction": id,
            "file": { "key": key, "sha256": sha256, "bytes": bytes, "format": "fragmented MP4" },
            "metadata": { "key": format!("{prefix}/metadata.json"), "sha256": metadata_sha },
            "timeline_start_utc_ms": aligned.start_ms,
            "tracks": tracks,
            "alignment": aligned.placements,
            "missing": aligned.missing,
            "screens_discarded_as_too_short": short,
        }))
        .unwrap_or_default();
        let manifest_sha = self
            .archive
            .put_bytes(&format!("{prefix}/manifest.json"), manifest)
            .await?;
        self.archive
            .verify(&format!("{prefix}/manifest.json"), &manifest_sha)
            .await?;

        let archived = Archived {
            key,
            sha256,
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            missing: aligned.missing.map(str::to_owned),
            timeline_start_ms: aligned.start_ms,
            timeline_ms: aligned.plan.duration_us / 1000,
            tracks: serde_json::Value::Array(tracks),
        };
        let screens = self
            .store
            .interaction_archived(&inputs, &archived, self.clock.now_ms())
            .await?;
        self.clear(&inputs, &screens, &out).await;
        tracing::info!(interaction = id, bytes, missing = ?aligned.missing, "interaction archived");
        Ok(())
    }

    /// Removes what the archive now holds from the buffer.
    pub(super) async fn clear(
        &self,
        inputs: &InteractionInputs,
        screens: &[String],
        stitched: &std::path::Path,
    ) {
        let mut files = vec![stitched.to_owned()];
        files.extend(screens.iter().map(|path| self.data_dir.join(path)));
        for audio in &inputs.audio {
            files.push(self.data_dir.join(&audio.opus_path));
            files.extend(audio.audio_path.as_ref().map(|p| self.data_dir.join(p)));
        }
        for file in files {
            if let Err(error) = tokio::fs::remove_file(&file).await
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %file.display(), %error, "archived input not removed from the buffer");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IngestionSettings {
        IngestionSettings {
            settle: Duration::from_secs(10),
            wait_for_audio: Duration::from_secs(900),
            wait_for_screen: Duration::from_secs(300),
            min_screen: Duration::from_secs(5),
            archive_dir: PathBuf::from("/archive"),
            retention: None,
            stitch_attempts: 8,
            stitch_retry: Duration::from_secs(30),
        }
    }

    #[test]
    fn an_interaction_waits_for_the_slower_half_but_never_forever() {
        let mut i = Collecting {
            id: "i".into(),
            updated_ms: 0,
            contacts: 1,
            recordings: 1,
            untranscoded: 0,
        };
        let s = settings();
        assert!(!is_ready(&i, &s, 9_999));
        assert!(is_ready(&i, &s, 10_000));
        i.untranscoded = 1;
        assert!(!is_ready(&i, &s, 1_000_000), "audio still being transcoded");
        i.untranscoded = 0;
        i.recordings = 0;
        assert!(!is_ready(&i, &s, 899_999), "screen waits for its audio");
        assert!(is_ready(&i, &s, 900_000), "...until the deadline");
        i.contacts = 0;
        i.recordings = 2;
        assert!(!is_ready(&i, &s, 299_999));
        assert!(
            is_ready(&i, &s, 300_000),
            "audio without screen, after its deadline"
        );
    }
}

#[cfg(test)]
mod retention_tests;
