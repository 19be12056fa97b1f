//! A recording Webex publishes after its interaction was archived (the emulator publishes it 20 s
//! after the call; the interaction is stitched without audio after 2 s): the interaction is
//! re-stitched from its archived file plus the new audio, archived as version 2 with its own
//! manifest naming what it replaces, audited; the old file is deleted only once the new one is
//! verified and recorded.

use std::time::Duration;

use capture_tests::desktop::SyntheticDesktop;
use capture_tests::media::{codecs, ffprobe};
use capture_tests::process::wait_until;
use capture_tests::recordings::{TestEmulator, server_for};
use sha2::{Digest as _, Sha256};
use webex_emulator::{CallKind, CallPlan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_published_after_the_archive_is_stitched_in_as_a_new_version()
-> anyhow::Result<()> {
    let emulator = TestEmulator::start(|c| c.publish_delay = Duration::from_secs(20)).await?;
    let alice = emulator.add_person("alice@example.com", "Alice");
    let server = server_for(&emulator, |config, addr| {
        config.webex.public_url = Some(format!("https://localhost:{}", addr.port()));
        config.integration.wrap_up_s = 1;
        config.ingestion.settle_s = 1;
        config.ingestion.wait_for_audio_s = 2;
        config.ingestion.min_screen_s = 0;
    })
    .await?;
    emulator.trust_ca(&server.ca_file())?;
    emulator.wait_webhooks(2).await?;
    let enrolled = server.enroll_desktop_as("alice-pc", alice.id).await?;
    let desktop =
        SyntheticDesktop::start(&server.base_url(), &server.ca_file(), enrolled, "alice-pc")
            .await?;

    let plan = CallPlan::new(alice.clone(), CallKind::Answered)
        .with_timing(Duration::from_millis(300), Duration::from_secs(4));
    let outcome = emulator.run_call(plan).await;
    let session = outcome.call_session_id.simple().to_string();
    let publish_at = outcome.recordings[0].publish_at;
    let find = async || -> anyhow::Result<Option<serde_json::Value>> {
        let list = server.api_get("/api/v1/interactions?limit=100").await?;
        Ok(list["items"]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i["call_session_id"] == session.as_str())
            })
            .cloned())
    };

    // Archived with the screen alone, before Webex publishes the recording.
    let first = wait_until(
        "archived without audio",
        Duration::from_secs(30),
        async || Ok(find().await?.filter(|i| i["state"] == "archived")),
    )
    .await?;
    assert!(
        jiff::Timestamp::now() < publish_at,
        "the test needs the interaction archived before the recording is published"
    );
    assert_eq!(first["missing"], "audio", "{first}");
    let archive = server.data_dir.path().join("archive");
    let old_key = first["archive_key"].as_str().unwrap_or_default().to_owned();
    let old_sha = first["archive_sha256"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let old_file = archive.join(&old_key);
    assert_eq!(codecs(&old_file)?, vec!["h264", "opus"]);
    let old_video = ffprobe(&old_file)?["streams"][0]["nb_frames"].clone();

    // The recording is published, fetched, transcoded, and the interaction re-stitched.
    let second = wait_until("re-stitched", Duration::from_secs(90), async || {
        Ok(find()
            .await?
            .filter(|i| i["archive_key"] != old_key.as_str() && i["state"] == "archived"))
    })
    .await?;
    let id = second["id"].as_str().unwrap_or_default();
    let key = second["archive_key"].as_str().unwrap_or_default();
    assert!(key.ends_with("/interaction-v2.mp4"), "{second}");
    assert!(second["missing"].is_null(), "{second}");
    let file = archive.join(key);
    let bytes = std::fs::read(&file)?;
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        second["archive_sha256"].as_str().unwrap_or_default()
    );
    assert_eq!(codecs(&file)?, vec!["h264", "opus"]);
    assert_eq!(
        ffprobe(&file)?["streams"][0]["nb_frames"],
        old_video,
        "the screen is the archived one, frame for frame"
    );
    // The old version goes right after the new one is recorded.
    wait_until(
        "the old version deleted",
        Duration::from_secs(10),
        async || Ok((!old_file.exists()).then_some(())),
    )
    .await?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file.with_file_name("manifest-v2.json"))?)?;
    assert_eq!(manifest["replaces"]["sha256"], old_sha.as_str());
    assert_eq!(manifest["version"], 2);
    assert_eq!(
        manifest["recordings_added"],
        serde_json::json!([outcome.recordings[0].id])
    );
    let audio = manifest["tracks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["kind"] == "audio").cloned())
        .unwrap_or_default();
    assert!(
        audio["recorded_packets"].as_u64() > Some(100),
        "the call's audio is in the file: {manifest:#}"
    );
    // Audited, naming the new version and what it replaces.
    let audit = server
        .api_get(&format!(
            "/api/v1/audit?subject={id}&action=restitch_interaction"
        ))
        .await?;
    let entry = &audit["items"][0];
    assert!(
        entry["detail"]
            .as_str()
            .is_some_and(|d| d.contains("version 2") && d.contains(&old_sha)),
        "{audit}"
    );
    // The replay plays the new version: its timeline has the recording's leg.
    let timeline = server
        .api_get(&format!("/api/v1/interactions/{id}/timeline"))
        .await?;
    assert_eq!(timeline["has_audio"], true, "{timeline}");
    assert_eq!(timeline["legs"].as_array().map(Vec::len), Some(1));
    // The late recording left the buffer with the re-stitch.
    let audio_left: Vec<_> = std::fs::read_dir(server.data_dir.path().join("audio"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(audio_left.is_empty(), "audio not cleared: {audio_left:?}");
    desktop.stop().await;
    server.stop().await
}
