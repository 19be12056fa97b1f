//! Recordings' MP3 files and their download links.

use std::time::Duration;

use anyhow::Result;
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use webex_emulator::{RecordingSpec, Status};

use crate::common::{beep_onsets, decode, ffprobe, start, start_with};

fn an_hour_ago() -> jiff::Timestamp {
    jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)
}

#[tokio::test]
async fn downloaded_mp3_is_valid_and_beeps_where_asked() -> Result<()> {
    let h = start().await?;
    let mut spec = RecordingSpec::new(an_hour_ago(), 12);
    spec.beeps = vec![Duration::from_millis(3500), Duration::from_secs(8)];
    spec.holds = vec![Duration::from_secs(5)..Duration::from_secs(7)];
    let info = h.emulator.add_recording(spec);

    let (_, _, details) = h.get(&format!("/convergedRecordings/{}", info.id)).await?;
    let link = details["temporaryDirectDownloadLinks"]["audioDownloadLink"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        link.contains("/nbr/MultiThreadDownloadServlet?type=calling&orgId="),
        "{link}"
    );
    // No bearer: the ticket is the credential.
    let response = h.client.get(&link).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(response.content_length(), Some(info.size_bytes));
    let bytes = response.bytes().await?.to_vec();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), info.sha256);
    assert_eq!(Some(&bytes), h.emulator.audio(&info.id).as_ref());
    assert_eq!(details["sizeBytes"], info.size_bytes);
    assert_eq!(details["durationSeconds"], 12);

    let (codec, duration) = ffprobe(&bytes)?;
    assert_eq!(codec, "mp3");
    assert!((duration - 12.0).abs() <= 0.05, "duration {duration}");

    let onsets = beep_onsets(&decode(&bytes)?);
    assert_eq!(onsets.len(), 3, "{onsets:?}");
    for (onset, want) in onsets.iter().zip([0.0, 3.5, 8.0]) {
        assert!(
            (onset - want).abs() <= 0.036,
            "beep at {onset}, asked {want}"
        );
    }
    assert_eq!(h.emulator.stats().audio_downloads.get(&info.id), Some(&1));
    Ok(())
}

#[tokio::test]
async fn links_expire_and_fresh_details_give_a_working_one() -> Result<()> {
    let h = start_with(|c| c.link_ttl = Duration::from_millis(1200)).await?;
    let info = h
        .emulator
        .add_recording(RecordingSpec::new(an_hour_ago(), 3));
    let link = |details: &serde_json::Value| {
        details["temporaryDirectDownloadLinks"]["audioDownloadLink"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (_, _, details) = h.get(&format!("/convergedRecordings/{}", info.id)).await?;
    let first = link(&details);
    assert_eq!(h.client.get(&first).send().await?.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let expired = h.client.get(&first).send().await?;
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = expired.json().await?;
    assert!(body["message"].is_string() && body["trackingId"].is_string());

    let (_, _, details) = h.get(&format!("/convergedRecordings/{}", info.id)).await?;
    let second = link(&details);
    assert_ne!(first, second);
    assert_eq!(h.client.get(&second).send().await?.status(), StatusCode::OK);
    h.emulator.expire_all_links();
    assert_eq!(
        h.client.get(&second).send().await?.status(),
        StatusCode::FORBIDDEN
    );
    Ok(())
}

#[tokio::test]
async fn deleted_recordings_move_to_the_deleted_list() -> Result<()> {
    let h = start().await?;
    let info = h
        .emulator
        .add_recording(RecordingSpec::new(an_hour_ago(), 3));
    let (status, _, body) = h.get("/convergedRecordings/nope").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["errors"][0]["description"].is_string());
    let response = h
        .client
        .delete(h.url(&format!("/convergedRecordings/{}", info.id)))
        .bearer_auth(&h.token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _, _) = h.get(&format!("/convergedRecordings/{}", info.id)).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, available) = h.get("/admin/convergedRecordings").await?;
    assert_eq!(available["items"].as_array().map(Vec::len), Some(0));
    let (_, _, deleted) = h.get("/admin/convergedRecordings?status=deleted").await?;
    assert_eq!(deleted["items"][0]["id"], info.id.as_str());
    assert_eq!(deleted["items"][0]["status"], "deleted");
    assert_eq!(
        h.emulator.recording(&info.id).map(|r| r.status),
        Some(Status::Deleted)
    );
    Ok(())
}

#[tokio::test]
async fn recordings_published_later_appear_later() -> Result<()> {
    let h = start().await?;
    let mut spec = RecordingSpec::new(an_hour_ago(), 3);
    spec.publish_at = Some(jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500));
    let info = h.emulator.add_recording(spec);
    let (_, _, before) = h.get("/admin/convergedRecordings").await?;
    assert_eq!(before["items"].as_array().map(Vec::len), Some(0));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, _, after) = h.get("/admin/convergedRecordings").await?;
    assert_eq!(after["items"][0]["id"], info.id.as_str());
    Ok(())
}
