//! Late recordings: a recording stored after its interaction was archived (Webex published it
//! late, a backfill found it, its job was parked and retried) is stitched in. The interaction is
//! re-stitched from its archived file (the screen's SCN files left the buffer with the first
//! stitch; see `media::restitch`) plus the new audio, archived as the next version
//! (`interaction-vN.mp4` and `manifest-vN.json` beside the first), read back and checked, then
//! recorded in one transaction with an audit entry naming what was added and what it replaces;
//! only then is the old file deleted. A re-stitch that fails is tried again with the stitch's
//! backoff, and after `ingestion.stitch_attempts` left for the next start, logged.

use serde_json::json;

use super::{IngestError, Ingestion, STITCHING_DIR, blocking, plan, stitch_backoff};
use crate::media::restitch::{Restitch, restitch};
use crate::store::{Archived, NewVersion};

/// The audio grid the old timeline moves on (µs).
const GRID_US: i64 = 20_000;

/// Longest timeline a re-stitch writes: a recording placed days away from its interaction is
/// a wrong timestamp, not a call.
const MAX_TIMELINE_MS: i64 = 24 * 3600 * 1000;

/// Re-stitches started per ingestion round.
const PER_ROUND: usize = 4;

/// Interactions looked at per round (those waiting out a failure's backoff are skipped).
const LOOKED_AT: i64 = 256;

impl Ingestion {
    /// Re-stitches archived interactions whose late recordings have settled.
    pub(super) async fn restitch_late(&self) -> Result<(), IngestError> {
        let now = self.clock.now_ms();
        let settled = now - self.settings.settle.as_millis() as i64;
        let mut started = 0;
        for id in self
            .store
            .interactions_with_late_recordings(settled, LOOKED_AT)
            .await?
        {
            if started == PER_ROUND {
                break;
            }
            let due = self
                .late_failures
                .lock()
                .map(|f| {
                    f.get(&id).is_none_or(|(attempts, at)| {
                        *attempts < self.settings.stitch_attempts && *at <= now
                    })
                })
                .unwrap_or(true);
            if !due {
                continue;
            }
            started += 1;
            let outcome = self.restitch(&id).await;
            let Ok(mut failures) = self.late_failures.lock() else {
                continue;
            };
            match outcome {
                Ok(()) => {
                    failures.remove(&id);
                }
                Err(error) => {
                    let entry = failures.entry(id.clone()).or_insert((0, now));
                    entry.0 += 1;
                    entry.1 = now
                        + stitch_backoff(self.settings.stitch_retry, entry.0).as_millis() as i64;
                    if entry.0 >= self.settings.stitch_attempts {
                        tracing::error!(interaction = %id, %error, attempts = entry.0, "late recording not stitched in; the archived version stays; tried again after a restart");
                    } else {
                        tracing::warn!(interaction = %id, %error, attempts = entry.0, "late recording not stitched in yet; retrying later");
                    }
                }
            }
        }
        Ok(())
    }

    /// Re-stitches archived interaction `id` with its recordings not yet in the archive.
    pub async fn restitch(&self, id: &str) -> Result<(), IngestError> {
        let Some(old) = self.store.archived_interaction(id).await? else {
            return Ok(());
        };
        let inputs = self.store.interaction_inputs(id).await?;
        if inputs.audio.is_empty() {
            return Ok(());
        }
        let old_end = old.timeline_start_ms + old.timeline_ms;
        let start = inputs
            .audio
            .iter()
            .filter_map(plan::recording_start_ms)
            .fold(old.timeline_start_ms, i64::min);
        let end = inputs
            .audio
            .iter()
            .filter_map(plan::recording_end_ms)
            .fold(old_end, i64::max);
        // The old timeline moves by whole audio slots, so that its packets keep their grid.
        let shift_us = ((old.timeline_start_ms - start) * 1000 + GRID_US / 2) / GRID_US * GRID_US;
        let start_ms = old.timeline_start_ms - shift_us / 1000;
        if end - start_ms > MAX_TIMELINE_MS {
            return Err(IngestError::Task(format!(
                "the late recordings would make a timeline of {} h: their times are wrong",
                (end - start_ms) / 3_600_000
            )));
        }
        let duration_us = (end - start_ms).max(1) * 1000;
        let pieces = inputs
            .audio
            .iter()
            .flat_map(|a| plan::audio_pieces(a, start_ms, &self.data_dir))
            .collect();

        let dir = self.data_dir.join(STITCHING_DIR);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| IngestError::Task(format!("{}: {e}", dir.display())))?;
        // The archived file is checked before it is built upon.
        self.archive.verify(&old.key, &old.sha256).await?;
        let old_file = dir.join(format!("{id}.v{}.mp4", old.version));
        self.archive.copy_to_file(&old.key, &old_file).await?;
        let version = old.version + 1;
        let out = dir.join(format!("{id}.v{version}.mp4"));
        let work = Restitch {
            shift_us,
            duration_us,
            audio: pieces,
        };
        let (from, to) = (old_file.clone(), out.clone());
        let restitched = blocking(move || restitch(&from, &work, &to)).await?;
        let _ = tokio::fs::remove_file(&old_file).await;
        let restitched = restitched?;

        let prefix = old.key.rsplit_once('/').map_or("", |(folder, _)| folder);
        let key = format!("{prefix}/interaction-v{version}.mp4");
        let (sha256, bytes) = self.archive.put_file(&key, &out).await?;
        self.archive.verify(&key, &sha256).await?;
        let shift_ms = restitched.shift_us / 1000;
        let tracks: Vec<serde_json::Value> = old
            .tracks
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut track| {
                if track["kind"] == "audio" {
                    track["recorded_packets"] = json!(restitched.audio_packets);
                    track["silent_packets"] = json!(restitched.silent_packets);
                } else {
                    for field in ["from_ms", "to_ms"] {
                        if let Some(at) = track[field].as_i64() {
                            track[field] = json!(at + shift_ms);
                        }
                    }
                }
                track
            })
            .collect();
        let added: Vec<String> = inputs.audio.iter().map(|a| a.id.clone()).collect();
        let missing = match old.missing.as_deref() {
            Some("audio") if restitched.audio_packets > 0 => None,
            Some("screen and audio") if restitched.audio_packets > 0 => Some("screen".to_owned()),
            other => other.map(str::to_owned),
        };
        // The late recordings' own metadata, as the first version's metadata.json has the others'.
        let metadata = serde_json::to_vec_pretty(&json!({
            "interaction": id,
            "version": version,
            "call_session_id": inputs.call_session_id,
            "recordings": inputs.audio,
        }))
        .unwrap_or_default();
        let metadata_key = format!("{prefix}/metadata-v{version}.json");
        let metadata_sha = self.archive.put_bytes(&metadata_key, metadata).await?;
        self.archive.verify(&metadata_key, &metadata_sha).await?;
        let manifest = serde_json::to_vec_pretty(&json!({
            "interaction": id,
            "version": version,
            "file": { "key": key, "sha256": sha256, "bytes": bytes, "format": "fragmented MP4" },
            "replaces": { "version": old.version, "key": old.key, "sha256": old.sha256 },
            "recordings_added": added,
            "metadata": { "key": metadata_key, "sha256": metadata_sha },
            "timeline_start_utc_ms": start_ms,
            "old_timeline_moved_ms": shift_ms,
            "tracks": tracks,
            "added_packets": restitched.added_packets,
            "missing": missing,
        }))
        .unwrap_or_default();
        let manifest_key = format!("{prefix}/manifest-v{version}.json");
        let manifest_sha = self.archive.put_bytes(&manifest_key, manifest).await?;
        self.archive.verify(&manifest_key, &manifest_sha).await?;

        let archived = Archived {
            key: key.clone(),
            sha256: sha256.clone(),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            missing,
            timeline_start_ms: start_ms,
            timeline_ms: duration_us / 1000,
            tracks: serde_json::Value::Array(tracks),
        };
        let detail = format!(
            "version {version} ({key}, sha256 {sha256}): recordings {} added; replaces version {} ({}, sha256 {})",
            added.join(", "),
            old.version,
            old.key,
            old.sha256
        );
        let change = NewVersion {
            replaced_sha256: old.sha256.clone(),
            version,
            recordings: added.clone(),
            detail,
        };
        let recorded = self
            .store
            .interaction_restitched(id, &archived, &change, self.clock.now_ms())
            .await?;
        if recorded {
            // The new version is verified and recorded: the buffer's copies and the old file go.
            self.clear(&inputs, &[], &out).await;
            if let Err(error) = self.archive.delete(&old.key).await {
                tracing::warn!(interaction = id, key = old.key, %error, "the replaced version was not deleted from the archive");
            }
            tracing::info!(interaction = id, version, recordings = ?added, added_packets = restitched.added_packets, "late recording stitched in");
        } else {
            // Deleted or re-stitched meanwhile: this version is nobody's.
            self.archive.delete(&key).await?;
            self.archive.delete(&manifest_key).await?;
            self.archive.delete(&metadata_key).await?;
            let _ = tokio::fs::remove_file(&out).await;
        }
        Ok(())
    }
}
