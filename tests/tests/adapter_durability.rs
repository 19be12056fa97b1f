//! The adapter across crashes and token expiry: a server killed (SIGKILL) in the middle of a
//! backfill resumes it on restart and stores every recording exactly once; an integration's
//! access token that expires is refreshed and the newest refresh token is kept.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use capture_tests::recordings::{TestEmulator, server_for, wait_jobs};
use capture_tests::server::{https_client, spawn_test_server};
use jiff::{Timestamp, ToSpan as _};
use sha2::{Digest as _, Sha256};
use webex_emulator::{Faults, Route, RouteFaults};

fn start(data_dir: &Path, emulator: &TestEmulator) -> (Child, u16) {
    let token = emulator.credentials().access_token;
    let ca = emulator.ca_file().display().to_string();
    spawn_test_server(
        env!("CARGO_BIN_EXE_test-server"),
        data_dir,
        &[
            ("CAPTURE_WEBEX__BASE_URL", emulator.base_url()),
            ("CAPTURE_WEBEX__ACCESS_TOKEN", &token),
            ("CAPTURE_WEBEX__CA_FILE", &ca),
            ("CAPTURE_ADAPTER__POLL_INTERVAL_S", "3600"),
            ("CAPTURE_ADAPTER__INITIAL_LOOKBACK_S", "0"),
            ("CAPTURE_ADAPTER__CONCURRENCY", "4"),
        ],
    )
    .expect("test-server")
}

/// `GET` an API path of the child server, retrying while it starts.
async fn api(data_dir: &Path, port: u16, path: &str) -> anyhow::Result<serde_json::Value> {
    for _ in 0..200 {
        let (Ok(token), true) = (
            std::fs::read_to_string(data_dir.join("api-token")),
            data_dir.join("tls/ca.pem").exists(),
        ) else {
            tokio::time::sleep(Duration::from_millis(25)).await;
            continue;
        };
        let client = https_client(&data_dir.join("tls/ca.pem"))?;
        if let Ok(response) = client
            .get(format!("https://localhost:{port}{path}"))
            .bearer_auth(token.trim())
            .send()
            .await
        {
            return Ok(response.error_for_status()?.json().await?);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("server on port {port} did not answer {path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_midway_resumes_and_stores_every_recording_once() -> anyhow::Result<()> {
    let emulator = TestEmulator::start(|_| {}).await?;
    let to = Timestamp::now() - 48.hours();
    let from = to - 48.hours();
    let recordings = emulator.add_recordings(200, from, to).await;
    // Slow downloads, so that the kill lands with fetches in flight.
    emulator.set_faults(Faults {
        slow_delay: Duration::from_millis(150),
        ..Faults::none().with_route(
            Route::Audio,
            RouteFaults {
                slow: 1.0,
                ..RouteFaults::default()
            },
        )
    });
    let data = tempfile::tempdir()?;
    let (mut first, port) = start(data.path(), &emulator);
    api(data.path(), port, "/healthz").await?;
    let token = std::fs::read_to_string(data.path().join("api-token"))?;
    let response = https_client(&data.path().join("tls/ca.pem"))?
        .post(format!("https://localhost:{port}/api/v1/backfills"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({ "from": from.to_string(), "to": to.to_string() }))
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    loop {
        let status = api(data.path(), port, "/api/v1/adapter").await?;
        if status["recordings"]["stored"].as_i64() >= Some(40) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill()?;
    first.wait()?;

    // Restarted on the same data directory, without asking again: it resumes.
    let (mut second, port) = start(data.path(), &emulator);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let status = api(data.path(), port, "/api/v1/adapter").await?;
        if status["recordings"]["stored"].as_i64() == Some(recordings.len() as i64) {
            assert_eq!(status["recordings"]["pending"], 0);
            assert_eq!(status["recordings"]["parked"], 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not resumed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut interactions = BTreeSet::new();
    for recording in &recordings {
        let job = api(
            data.path(),
            port,
            &format!("/api/v1/recordings/{}", recording.id),
        )
        .await?;
        let expected = hex::encode(Sha256::digest(
            emulator.audio(&recording.id).expect("audio"),
        ));
        assert_eq!(job["audio_sha256"], expected.as_str());
        let file = data
            .path()
            .join("audio")
            .join(capture_server::adapter::fetch::audio_file_name(
                &recording.id,
            ));
        assert_eq!(hex::encode(Sha256::digest(std::fs::read(file)?)), expected);
        interactions.insert(
            job["interaction_id"]
                .as_str()
                .expect("interaction")
                .to_owned(),
        );
    }
    // Exactly once: the interactions hold each recording once.
    let list = api(data.path(), port, "/api/v1/interactions?limit=500").await?;
    let held: i64 = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["recordings"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(held, recordings.len() as i64);
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(interactions.len())
    );
    let leftovers: Vec<_> = std::fs::read_dir(data.path().join("audio"))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "partial downloads left: {leftovers:?}"
    );
    second.kill()?;
    second.wait()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_access_token_is_refreshed_and_the_newest_refresh_token_kept()
-> anyhow::Result<()> {
    let emulator = TestEmulator::start(|c| c.token_ttl = Duration::from_secs(2)).await?;
    let credentials = emulator.credentials();
    let server = server_for(&emulator, |config, _| {
        config.webex.access_token = None;
        config.webex.client_id = Some(credentials.client_id.clone());
        config.webex.client_secret = Some(credentials.client_secret.clone());
        config.webex.refresh_token = Some(credentials.refresh_token.clone());
        config.adapter.poll_interval_s = 1;
        config.adapter.initial_lookback_s = 3600;
    })
    .await?;
    let mut stored = Vec::new();
    for n in 0..3 {
        let recording = emulator.add_recording(webex_emulator::RecordingSpec::new(
            Timestamp::now() - 5.minutes(),
            3 + n,
        ));
        wait_jobs(
            &server,
            std::slice::from_ref(&recording.id),
            "stored",
            Duration::from_secs(20),
        )
        .await?;
        stored.push(recording);
        // Outlive the access token.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(
        server
            .data_dir
            .path()
            .join(capture_server::webex::auth::TOKENS_FILE),
    )?)?;
    let newest = kept["refresh_token"].as_str().expect("refresh token kept");
    assert_ne!(
        newest, credentials.refresh_token,
        "the rotated refresh token is kept"
    );
    let refreshes = emulator
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/access_token") && r.status == 200)
        .count();
    assert!(refreshes >= 2, "{refreshes} refreshes");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(
            server
                .data_dir
                .path()
                .join(capture_server::webex::auth::TOKENS_FILE),
        )?
        .permissions()
        .mode();
        assert_eq!(mode & 0o077, 0, "tokens readable by others");
    }
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_app_mints_its_tokens_with_the_administrators() -> anyhow::Result<()> {
    use capture_server::webex::auth::{TokenSource, Tokens};
    use capture_server::webex::client::WebexClient;
    let emulator = TestEmulator::start(|_| {}).await?;
    let recording = emulator.add_recording(webex_emulator::RecordingSpec::new(
        Timestamp::now() - 1.hour(),
        4,
    ));
    let credentials = emulator.credentials();
    let dir = tempfile::tempdir()?;
    let tokens = Tokens::new(
        TokenSource::ServiceApp {
            app_id: credentials.service_app_id.clone(),
            client_id: credentials.client_id.clone(),
            client_secret: credentials.client_secret.clone(),
            org_id: credentials.org_id.clone(),
            admin_token: credentials.access_token.clone(),
        },
        dir.path(),
    );
    let client = WebexClient::new(emulator.base_url(), tokens, Some(emulator.ca_file()))?;
    let details = client.recording_details(&recording.id).await?;
    assert_eq!(details.summary.id, recording.id);
    assert!(details.audio_link.is_some());
    assert!(
        dir.path()
            .join(capture_server::webex::auth::TOKENS_FILE)
            .exists()
    );
    // A wrong client secret is Webex's refusal, not a retry loop.
    let wrong = Tokens::new(
        TokenSource::Refresh {
            client_id: credentials.client_id.clone(),
            client_secret: "wrong".into(),
            refresh_token: credentials.refresh_token.clone(),
        },
        dir.path(),
    );
    let client = WebexClient::new(emulator.base_url(), wrong, Some(emulator.ca_file()))?;
    let error = client
        .recording_details(&recording.id)
        .await
        .expect_err("refused");
    assert!(!error.is_retryable(), "{error}");
    Ok(())
}
