//! One recording's job: details → metadata (`showAllTypes=true`) → audio streamed to disk with its
//! checksum → filed into its interaction. Nothing is kept between attempts but the stored row:
//! an interrupted job starts over (details and metadata are cheap; the audio file is written
//! under a temporary name and renamed only when complete and synced).

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::store::StoredRecording;
use crate::webex::client::{WebexClient, WebexError};
use crate::webex::recordings::{Downloaded, RecordingDetails};

/// How many times an expired download link is renewed within one attempt.
pub const LINK_RENEWALS: u32 = 2;

/// The audio directory inside the data directory.
pub const AUDIO_DIR: &str = "audio";

/// Why a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Webex (or the network) failed; `retryable` says whether another attempt may succeed.
    #[error("{0}")]
    Webex(#[from] WebexError),
    /// The recording cannot be fetched as it is (deleted in Webex, no download link, not MP3).
    #[error("{0}")]
    Unusable(String),
    /// The local disk failed.
    #[error("{path}: {source}")]
    Disk {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Webex(error) => error.is_retryable(),
            FetchError::Unusable(_) => false,
            FetchError::Disk { .. } => true,
        }
    }
}

/// The audio file's name for a recording id (ids are opaque: anything but `[A-Za-z0-9_-]` is
/// replaced by a hash).
pub fn audio_file_name(id: &str) -> String {
    if !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        format!("{id}.mp3")
    } else {
        format!("{}.mp3", &hex::encode(Sha256::digest(id.as_bytes()))[..32])
    }
}

/// Whether `head` starts like an MP3 file (an ID3v2 tag or an MPEG audio frame sync).
fn looks_like_mp3(head: &[u8]) -> bool {
    head.starts_with(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
}

fn disk(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Disk {
        path: path.to_owned(),
        source,
    }
}

/// Fetches recording `id` into `data_dir/audio`, returning what to store.
pub async fn fetch(
    client: &WebexClient,
    data_dir: &Path,
    id: &str,
) -> Result<StoredRecording, FetchError> {
    let mut details = client.recording_details(id).await?;
    if let Some(status) = details.summary.status.as_deref()
        && status != "available"
    {
        return Err(FetchError::Unusable(format!(
            "the recording is {status} in Webex: there is no audio to fetch"
        )));
    }
    let metadata = client.recording_metadata(id).await?;
    let dir = data_dir.join(AUDIO_DIR);
    tokio::fs::create_dir_all(&dir).await.map_err(disk(&dir))?;
    let name = audio_file_name(id);
    let final_path = dir.join(&name);
    let part = dir.join(format!("{name}.part"));
    let downloaded = download(client, &mut details, &part).await?;
    let mut head = [0u8; 4];
    let read = {
        use tokio::io::AsyncReadExt as _;
        let mut file = tokio::fs::File::open(&part).await.map_err(disk(&part))?;
        file.read(&mut head).await.map_err(disk(&part))?
    };
    if !looks_like_mp3(&head[..read]) {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(FetchError::Unusable(format!(
            "the audio Webex served ({} bytes) is not MP3",
            downloaded.bytes
        )));
    }
    if let Some(announced) = details.summary.size_bytes
        && u64::try_from(announced).ok() != Some(downloaded.bytes)
    {
        tracing::warn!(
            recording = id,
            announced,
            received = downloaded.bytes,
            "audio size differs from what webex announced"
        );
    }
    tokio::fs::rename(&part, &final_path)
        .await
        .map_err(disk(&final_path))?;
    let dir_handle = tokio::fs::File::open(&dir).await.map_err(disk(&dir))?;
    dir_handle.sync_all().await.map_err(disk(&dir))?;
    let summary = &details.summary;
    let remote = metadata.remote();
    Ok(StoredRecording {
        id: id.to_owned(),
        call_session_id: metadata
            .call_session_id
            .clone()
            .or_else(|| summary.call_session_id.clone()),
        owner_id: summary.owner_id.clone(),
        owner_email: summary.owner_email.clone(),
        owner_type: summary.owner_type.clone(),
        owner_name: metadata.owner_name.clone(),
        personality: metadata.personality.clone(),
        remote_number: remote.and_then(|p| p.number.clone()),
        remote_name: remote.and_then(|p| p.name.clone()),
        call_id: metadata.call_id.clone(),
        time_recorded_ms: summary.time_recorded.map(|t| t.0),
        create_time_ms: summary.create_time.map(|t| t.0),
        session_start_ms: metadata.session_start.map(|t| t.0),
        session_stop_ms: metadata.session_stop.map(|t| t.0),
        duration_s: summary.duration_s,
        size_bytes: summary.size_bytes,
        audio_path: format!("{AUDIO_DIR}/{name}"),
        audio_sha256: downloaded.sha256,
        audio_bytes: i64::try_from(downloaded.bytes).unwrap_or(i64::MAX),
        details: details.raw.to_string(),
        metadata: metadata.raw.to_string(),
    })
}

/// Downloads the audio, renewing an expired link by fetching the details again.
async fn download(
    client: &WebexClient,
    details: &mut RecordingDetails,
    part: &Path,
) -> Result<Downloaded, FetchError> {
    let id = details.summary.id.clone();
    let mut renewals = 0;
    loop {
        let link = details.audio_link.clone().ok_or_else(|| {
            FetchError::Unusable(
                "webex gave no audio download link (only a compliance officer's token gets one)"
                    .into(),
            )
        })?;
        match client.download(&link, part).await {
            Ok(done) => return Ok(done),
            Err(error) if error.is_expired_link() && renewals < LINK_RENEWALS => {
                renewals += 1;
                tracing::info!(recording = %id, %error, "download link expired; fetching a fresh one");
                *details = client.recording_details(&id).await?;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_stable() {
        assert_eq!(audio_file_name("baa93e55c62e"), "baa93e55c62e.mp3");
        let odd = audio_file_name("../etc/passwd");
        assert!(!odd.contains('/'));
        assert_eq!(odd, audio_file_name("../etc/passwd"));
        assert_ne!(odd, audio_file_name("../etc/shadow"));
    }

    #[test]
    fn mp3_starts_are_recognised() {
        assert!(looks_like_mp3(b"ID3\x04"));
        assert!(looks_like_mp3(&[0xFF, 0xF3, 0x44, 0xC4]));
        assert!(!looks_like_mp3(b"<htm"));
        assert!(!looks_like_mp3(b""));
    }
}
