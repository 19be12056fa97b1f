//! Ingestion end to end: the emulator's calls, a desktop agent capturing a synthetic screen, the
//! adapter's recordings; every interaction ends as one archived fragmented MP4 that ffprobe
//! accepts, with its manifest, and the buffer is cleared only after the archive is verified.

use std::collections::BTreeSet;
use std::time::Duration;

use capture_shared::time::UtcMillis;
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::media::ffprobe;
use capture_tests::recordings::{TestEmulator, server_for};
use capture_tests::webex::{CallScript, SECRET, post_signed};
use sha2::{Digest as _, Sha256};
use webex_emulator::{CallKind, CallPlan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_ends_as_one_archived_file_ffprobe_accepts() -> anyhow::Result<()> {
    let emulator = TestEmulator::start(|c| c.publish_delay = Duration::from_millis(500)).await?;
    let alice = emulator.add_person("alice@example.com", "Alice");
    let bruno = emulator.add_person("bruno@example.com", "Bruno");
    let server = server_for(&emulator, |config, addr| {
        config.webex.public_url = Some(format!("https://localhost:{}", addr.port()));
        config.integration.wrap_up_s = 1;
        config.ingestion.settle_s = 1;
        config.ingestion.wait_for_audio_s = 4;
        config.ingestion.wait_for_screen_s = 4;
        config.ingestion.min_screen_s = 0;
    })
    .await?;
    emulator.trust_ca(&server.ca_file())?;
    emulator.wait_webhooks(2).await?;

    // Alice has a desktop with one monitor, Bruno one with two; Carla (recorded, no desktop)
    // takes the last transfer.
    let carla = emulator.add_person("carla@example.com", "Carla");
    let enrolled = server.enroll_desktop_as("alice-pc", alice.id).await?;
    let desktop =
        SyntheticDesktop::start(&server.base_url(), &server.ca_file(), enrolled, "alice-pc")
            .await?;
    let enrolled = server.enroll_desktop_as("bruno-pc", bruno.id).await?;
    let bruno_desktop = SyntheticDesktop::start_with_monitors(
        &server.base_url(),
        &server.ca_file(),
        enrolled,
        "bruno-pc",
        vec![(640, 360), (480, 270)],
    )
    .await?;

    let mut sessions = BTreeSet::new();
    let mut transfers = BTreeSet::new();
    // Every scenario the emulator plays. All but the silent call have screen: ten interactions
    // (each transfer is two: the customer's session and the consult call).
    for kind in [
        CallKind::Answered,
        CallKind::AnsweredElsewhere {
            answerer: bruno.clone(),
        },
        CallKind::HoldResume,
        CallKind::PauseResume,
        CallKind::StopRestart,
        CallKind::Conference {
            with: carla.clone(),
        },
        CallKind::ConsultTransfer { to: bruno.clone() },
        CallKind::ConsultTransfer { to: carla.clone() },
    ] {
        let transfer_to = match &kind {
            CallKind::ConsultTransfer { to } => Some(to.id),
            _ => None,
        };
        let plan = CallPlan::new(alice.clone(), kind)
            .with_timing(Duration::from_millis(300), Duration::from_secs(1));
        let outcome = emulator.run_call(plan).await;
        if let Some(to) = transfer_to {
            transfers.insert((outcome.call_session_id.simple().to_string(), to));
        }
        sessions.extend(
            outcome
                .recordings
                .iter()
                .map(|r| r.call_session_id.simple().to_string()),
        );
        // Let the contact close (wrap-up) before the next call.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }

    // A call whose recording is off (no recording will ever come): its contact is stitched
    // without audio once `wait_for_audio_s` has passed.
    let url = format!("{}/webhooks/webex", server.base_url());
    let client = server.client()?;
    let silent_session = uuid::Uuid::new_v4();
    let now = capture_shared::time::UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(alice.id, 990, silent_session, UtcMillis(now));
    for (state, at) in [
        ("alerting", now),
        ("connected", now + 300),
        ("disconnected", now + 1_800),
    ] {
        post_signed(
            &client,
            &url,
            SECRET,
            &serde_json::to_vec(&call.envelope(state, UtcMillis(at)))?,
        )
        .await?
        .error_for_status()?;
        tokio::time::sleep(Duration::from_millis(if state == "disconnected" {
            0
        } else {
            1_000
        }))
        .await;
    }
    sessions.insert(silent_session.simple().to_string());

    let archive = server.data_dir.path().join("archive");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let archived = loop {
        let list = server.api_get("/api/v1/interactions?limit=100").await?;
        let items: Vec<serde_json::Value> = list["items"].as_array().cloned().unwrap_or_default();
        let ours: Vec<&serde_json::Value> = items
            .iter()
            .filter(|i| sessions.contains(i["call_session_id"].as_str().unwrap_or_default()))
            .collect();
        if ours.len() == sessions.len() && ours.iter().all(|i| i["state"] == "archived") {
            break ours.into_iter().cloned().collect::<Vec<_>>();
        }
        assert!(
            ours.iter().all(|i| i["state"] != "failed"),
            "an interaction failed: {ours:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all archived: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut with_screen = 0;
    let mut videos = std::collections::BTreeMap::new();
    for interaction in &archived {
        let key = interaction["archive_key"].as_str().expect("key");
        let file = archive.join(key);
        let bytes = std::fs::read(&file)?;
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            interaction["archive_sha256"].as_str().expect("sha"),
            "archive checksum"
        );
        let probe = ffprobe(&file)?;
        let codecs: Vec<&str> = probe["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .filter_map(|s| s["codec_name"].as_str())
            .collect();
        assert!(codecs.contains(&"opus"), "{interaction}: {codecs:?}");
        videos.insert(
            interaction["call_session_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            codecs.iter().filter(|c| **c == "h264").count(),
        );
        if interaction["call_session_id"] == silent_session.simple().to_string() {
            assert_eq!(interaction["missing"], "audio", "{interaction}");
            assert!(codecs.contains(&"h264"), "{codecs:?}");
        } else if codecs.contains(&"h264") {
            with_screen += 1;
            assert!(interaction["missing"].is_null(), "{interaction}");
        } else {
            assert_eq!(interaction["missing"], "screen", "{interaction}");
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file.with_file_name("manifest.json"))?)?;
        assert_eq!(manifest["file"]["sha256"], interaction["archive_sha256"]);
        assert!(
            manifest["alignment"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        );
    }
    // A transfer is one interaction with every agent's screen on it, one video per monitor:
    // Alice's and Bruno's two; Carla has no desktop, so Alice's alone.
    for (session, to) in &transfers {
        let expected = if *to == bruno.id { 3 } else { 1 };
        assert_eq!(
            videos.get(session),
            Some(&expected),
            "transfer to {to}: {videos:?}"
        );
    }
    assert!(
        with_screen >= 10,
        "every call Alice or Bruno answered has screen ({with_screen} have)"
    );
    // The buffer is cleared: no SCN file, no MP3 or Opus of an archived recording left.
    let leftovers: Vec<_> = std::fs::read_dir(server.data_dir.path().join("buffer"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "buffer not cleared: {leftovers:?}");
    let audio_left: Vec<_> = std::fs::read_dir(server.data_dir.path().join("audio"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(audio_left.is_empty(), "audio not cleared: {audio_left:?}");
    desktop.stop().await;
    bruno_desktop.stop().await;
    server.stop().await
}
