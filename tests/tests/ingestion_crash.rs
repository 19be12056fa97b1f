//! A server killed (SIGKILL) at a random moment while an interaction is being stitched and
//! archived: after the restart the interaction is archived exactly once, its file matches the
//! recorded checksum, and the buffer is cleared.

use std::path::Path;
use std::time::Duration;

use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::recordings::TestEmulator;
use capture_tests::server::{https_client, spawn_test_server};
use capture_tests::webex::{CallScript, SECRET, post_signed};
use sha2::{Digest as _, Sha256};
use webex_emulator::RecordingSpec;

fn env(emulator: &TestEmulator) -> Vec<(String, String)> {
    [
        ("CAPTURE_WEBEX__BASE_URL", emulator.base_url().to_owned()),
        (
            "CAPTURE_WEBEX__ACCESS_TOKEN",
            emulator.credentials().access_token,
        ),
        (
            "CAPTURE_WEBEX__CA_FILE",
            emulator.ca_file().display().to_string(),
        ),
        ("CAPTURE_ADAPTER__POLL_INTERVAL_S", "1".into()),
        ("CAPTURE_ADAPTER__INITIAL_LOOKBACK_S", "3600".into()),
        ("CAPTURE_INTEGRATION__WRAP_UP_S", "1".into()),
        ("CAPTURE_INGESTION__SETTLE_S", "1".into()),
        ("CAPTURE_INGESTION__WAIT_FOR_AUDIO_S", "60".into()),
        ("CAPTURE_INGESTION__WAIT_FOR_SCREEN_S", "60".into()),
        ("CAPTURE_INGESTION__MIN_SCREEN_S", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn start(data: &Path, env: &[(String, String)]) -> (std::process::Child, u16) {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_test_server(env!("CARGO_BIN_EXE_test-server"), data, &pairs).expect("test-server")
}

async fn api(data: &Path, port: u16, path: &str) -> anyhow::Result<serde_json::Value> {
    for _ in 0..400 {
        if let (Ok(token), true) = (
            std::fs::read_to_string(data.join("api-token")),
            data.join("tls/ca.pem").exists(),
        ) && let Ok(response) = https_client(&data.join("tls/ca.pem"))?
            .get(format!("https://localhost:{port}{path}"))
            .bearer_auth(token.trim())
            .send()
            .await
        {
            return Ok(response.error_for_status()?.json().await?);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("no answer from {path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_around_stitching_archives_the_interaction_exactly_once() -> anyhow::Result<()> {
    let emulator = TestEmulator::start(|_| {}).await?;
    let alice = emulator.add_person("alice@example.com", "Alice");
    let data = tempfile::tempdir()?;
    let env = env(&emulator);
    let (mut first, port) = start(data.path(), &env);
    api(data.path(), port, "/healthz").await?;
    let base = format!("https://localhost:{port}");
    let ca = data.path().join("tls/ca.pem");
    let client = https_client(&ca)?;
    let token = std::fs::read_to_string(data.path().join("api-token"))?;

    // Alice's desktop, enrolled and mapped to her Webex person.
    let enrolment = std::fs::read_to_string(data.path().join("enrolment-token"))?;
    let enrolled = capture_agent::enroll::enroll(
        &base,
        Some(&ca),
        &capture_agent::enroll::EnrollRequest {
            token: enrolment.trim(),
            machine: "alice-pc",
            os_user: "alice",
            email: None,
        },
    )
    .await?;
    client
        .patch(format!("{base}/api/v1/agents/{}", enrolled.agent_id))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({ "person_id": alice.id.to_string() }))
        .send()
        .await?
        .error_for_status()?;
    let desktop = SyntheticDesktop::start(&base, &ca, enrolled, "alice-pc").await?;

    // A 3 s call, and its recording as Webex publishes it.
    let session = uuid::Uuid::new_v4();
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(alice.id, 77, session, UtcMillis(now));
    let url = format!("{base}/webhooks/webex");
    for (state, at) in [
        ("alerting", now),
        ("connected", now + 500),
        ("disconnected", now + 3_500),
    ] {
        let wait = at - UtcMicros::now().to_millis().0;
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let body = serde_json::to_vec(&call.envelope(state, UtcMillis(at)))?;
        post_signed(&client, &url, SECRET, &body)
            .await?
            .error_for_status()?;
    }
    let mut spec = RecordingSpec::new(
        jiff::Timestamp::from_millisecond((now + 500) / 1000 * 1000)?,
        3,
    );
    spec.owner = Some(alice.clone());
    spec.call_session_id = Some(session);
    emulator.add_recording(spec);

    // Once both halves are in, kill it at a random moment of what follows.
    let key = session.simple().to_string();
    let interaction = loop {
        let list = api(data.path(), port, "/api/v1/interactions").await?;
        let found = list["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["call_session_id"] == key.as_str())
                .cloned()
        });
        if let Some(found) = found
            && found["recordings"] == 1
            && found["contacts"].as_array().is_some_and(|c| !c.is_empty())
        {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..1_500))).await;
    first.kill()?;
    first.wait()?;
    desktop.stop().await;

    let (mut second, port) = start(data.path(), &env);
    let id = interaction["id"].as_str().expect("id").to_owned();
    let archived = loop {
        let detail = api(data.path(), port, &format!("/api/v1/interactions/{id}")).await?;
        if detail["interaction"]["state"] == "archived" {
            break detail["interaction"].clone();
        }
        assert_ne!(detail["interaction"]["state"], "failed", "{detail}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    second.kill()?;
    second.wait()?;

    let file = data
        .path()
        .join("archive")
        .join(archived["archive_key"].as_str().expect("key"));
    assert_eq!(
        hex::encode(Sha256::digest(std::fs::read(&file)?)),
        archived["archive_sha256"].as_str().expect("sha")
    );
    let store = capture_server::store::Store::open(data.path()).await?;
    let archives = store
        .audit_for(&id)
        .await?
        .into_iter()
        .filter(|(_, _, action, _)| action == "archive_interaction")
        .count();
    assert_eq!(archives, 1, "archived exactly once");
    store.close().await;
    for dir in ["buffer", "audio", "stitching"] {
        let left: Vec<_> = std::fs::read_dir(data.path().join(dir))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{dir} not cleared: {left:?}");
    }
    Ok(())
}
