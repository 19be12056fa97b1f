//! The audio path against the Webex emulator: the webhook fast path, polling with overlapping
//! windows, consolidation by callSessionId on the emulator's scenarios, a storm of refusals,
//! forged and malformed input, and token refresh.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use capture_tests::recordings::{TestEmulator, counts, job, server_for, wait_jobs};
use capture_tests::webex::{SECRET, post_signed};
use jiff::{Timestamp, ToSpan as _};
use sha2::{Digest as _, Sha256};
use webex_emulator::{CallKind, CallPlan, Document, Faults, RecordingSpec, Route, RouteFaults};

async fn post_backfill(
    server: &capture_tests::server::TestServer,
    from: Timestamp,
    to: Timestamp,
) -> anyhow::Result<()> {
    let response = server
        .client()?
        .post(format!("{}/api/v1/backfills", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&serde_json::json!({ "from": from.to_string(), "to": to.to_string() }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == reqwest::StatusCode::ACCEPTED,
        "backfill refused: {}",
        response.text().await?
    );
    Ok(())
}

fn file_sha256(server: &capture_tests::server::TestServer, job: &serde_json::Value) -> String {
    let id = job["id"].as_str().expect("id");
    let path = server
        .data_dir
        .path()
        .join("audio")
        .join(capture_server::adapter::fetch::audio_file_name(id));
    hex::encode(Sha256::digest(std::fs::read(&path).expect("stored audio")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scenario_is_stored_once_by_webhook_and_joined_by_call_session() -> anyhow::Result<()>
{
    let emulator = TestEmulator::start(|c| c.publish_delay = Duration::from_millis(500)).await?;
    let a = emulator.add_person("alice@example.com", "Alice");
    let b = emulator.add_person("bruno@example.com", "Bruno");
    let server = server_for(&emulator, |config, addr| {
        config.webex.public_url = Some(format!("https://localhost:{}", addr.port()));
    })
    .await?;
    emulator.trust_ca(&server.ca_file())?;
    emulator.wait_webhooks(2).await?;

    let kinds = [
        CallKind::StopRestart,
        CallKind::ConsultTransfer { to: b.clone() },
        CallKind::Conference { with: b.clone() },
        CallKind::PauseResume,
        CallKind::AnsweredElsewhere {
            answerer: b.clone(),
        },
        CallKind::HoldResume,
    ];
    let mut outcomes = Vec::new();
    for kind in kinds {
        let plan = CallPlan::new(a.clone(), kind.clone())
            .with_timing(Duration::from_millis(150), Duration::from_millis(400));
        outcomes.push((kind, emulator.run_call(plan).await));
    }
    for (kind, outcome) in &outcomes {
        let ids: Vec<String> = outcome.recordings.iter().map(|r| r.id.clone()).collect();
        let jobs = wait_jobs(&server, &ids, "stored", Duration::from_secs(30)).await?;
        // Found by the webhook, not the poll (which runs once an hour here).
        for job in &jobs {
            assert_eq!(job["source"], "webhook", "{kind:?}: {job}");
            let id = job["id"].as_str().expect("id");
            let expected = emulator.audio_sha256(id).expect("emulated audio");
            assert_eq!(job["audio_sha256"], expected.as_str(), "{kind:?}");
            assert_eq!(
                file_sha256(&server, job),
                expected,
                "{kind:?}: file on disk"
            );
        }
        // Recordings of one callSessionId make one interaction, others another.
        let mut by_session: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (planned, job) in outcome.recordings.iter().zip(&jobs) {
            by_session
                .entry(planned.call_session_id.simple().to_string())
                .or_default()
                .insert(
                    job["interaction_id"]
                        .as_str()
                        .expect("interaction")
                        .to_owned(),
                );
        }
        let interactions: BTreeSet<&String> = by_session.values().flatten().collect();
        assert_eq!(
            interactions.len(),
            by_session.len(),
            "{kind:?}: one interaction per callSessionId: {by_session:?}"
        );
        assert!(by_session.values().all(|i| i.len() == 1), "{kind:?}");
        match kind {
            CallKind::StopRestart => {
                assert_eq!(ids.len(), 2, "stop and restart: two recordings");
                assert_eq!(by_session.len(), 1, "one session");
                let id = by_session
                    .values()
                    .next()
                    .and_then(|s| s.first())
                    .expect("one");
                let detail = server
                    .api_get(&format!("/api/v1/interactions/{id}"))
                    .await?;
                assert_eq!(detail["interaction"]["recordings"], 2);
                assert_eq!(detail["recordings"].as_array().map(Vec::len), Some(2));
            }
            CallKind::ConsultTransfer { .. } => {
                // A's customer leg and B's leg share the call's session; A's consult is apart.
                let session = outcome.call_session_id.simple().to_string();
                let owners: BTreeSet<_> = outcome
                    .recordings
                    .iter()
                    .filter(|r| r.call_session_id.simple().to_string() == session)
                    .map(|r| r.owner)
                    .collect();
                assert_eq!(
                    owners.len(),
                    2,
                    "the transfer's two agents in one interaction"
                );
                let id = by_session[&session].first().expect("interaction");
                let detail = server
                    .api_get(&format!("/api/v1/interactions/{id}"))
                    .await?;
                let owners: BTreeSet<_> = detail["recordings"]
                    .as_array()
                    .expect("recordings")
                    .iter()
                    .map(|r| r["owner_email"].as_str().unwrap_or_default().to_owned())
                    .collect();
                assert!(
                    owners.contains("alice@example.com") && owners.contains("bruno@example.com")
                );
            }
            CallKind::PauseResume => {
                let id = by_session
                    .values()
                    .next()
                    .and_then(|s| s.first())
                    .expect("one");
                let detail = server
                    .api_get(&format!("/api/v1/interactions/{id}"))
                    .await?;
                let actions = detail["recordings"][0]["recording_actions"].to_string();
                assert!(
                    actions.contains("PAUSE") && actions.contains("RESUME"),
                    "{actions}"
                );
            }
            _ => {}
        }
    }
    // Nothing else was stored, nothing is pending or parked.
    let planned: usize = outcomes.iter().map(|(_, o)| o.recordings.len()).sum();
    assert_eq!(counts(&server).await?, (0, planned as i64, 0));
    let list = server.api_get("/api/v1/interactions?limit=100").await?;
    let sessions: BTreeSet<String> = outcomes
        .iter()
        .flat_map(|(_, o)| {
            o.recordings
                .iter()
                .map(|r| r.call_session_id.simple().to_string())
        })
        .collect();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(sessions.len()));
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_finds_recordings_published_late() -> anyhow::Result<()> {
    let emulator = TestEmulator::start(|_| {}).await?;
    let server = server_for(&emulator, |config, _| {
        config.adapter.poll_interval_s = 1;
        config.adapter.overlap_s = 900;
        config.adapter.initial_lookback_s = 3600;
    })
    .await?;
    let now = Timestamp::now();
    let early = emulator.add_recording(RecordingSpec::new(now - 5.minutes(), 12));
    let waited = wait_jobs(
        &server,
        std::slice::from_ref(&early.id),
        "stored",
        Duration::from_secs(20),
    )
    .await;
    if waited.is_err() {
        eprintln!("adapter: {}", server.api_get("/api/v1/adapter").await?);
        eprintln!("requests: {:?}", emulator.requests());
    }
    waited?;
    // Recorded ten minutes ago, published only now: older than the watermark, inside the overlap.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = emulator.add_recording(RecordingSpec::new(Timestamp::now() - 10.minutes(), 7));
    let jobs = wait_jobs(
        &server,
        std::slice::from_ref(&late.id),
        "stored",
        Duration::from_secs(20),
    )
    .await?;
    assert_eq!(jobs[0]["source"], "poll");
    assert_eq!(
        jobs[0]["audio_sha256"],
        emulator.audio_sha256(&late.id).expect("audio").as_str()
    );
    let status = server.api_get("/api/v1/adapter").await?;
    assert!(status["watermark_ms"].as_i64() > Some(late.create_time.as_millisecond() - 2000));
    assert!(status["last_poll"]["error"].is_null(), "{status}");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_refusals_loses_nothing_duplicates_nothing_and_honours_retry_after()
-> anyhow::Result<()> {
    let emulator = TestEmulator::start(|_| {}).await?;
    let to = Timestamp::now() - 48.hours();
    let from = to - 24.hours();
    let recordings = emulator.add_recordings(120, from, to).await;
    emulator.storm(0.3);
    let server = server_for(&emulator, |config, _| config.adapter.concurrency = 16).await?;
    post_backfill(&server, from, to).await?;
    let ids: Vec<String> = recordings.iter().map(|r| r.id.clone()).collect();
    let jobs = wait_jobs(&server, &ids, "stored", Duration::from_secs(120)).await?;
    for (recording, job) in recordings.iter().zip(&jobs) {
        assert_eq!(
            job["audio_sha256"],
            emulator
                .audio_sha256(&recording.id)
                .expect("audio")
                .as_str()
        );
    }
    assert_eq!(counts(&server).await?, (0, recordings.len() as i64, 0));
    let stats = emulator.stats();
    let refused: u64 = stats
        .by_status
        .iter()
        .filter(|(status, _)| matches!(**status, 423 | 429 | 500..=599))
        .map(|(_, n)| n)
        .sum();
    assert!(
        refused > 50,
        "the storm refused {refused} requests: {:?}",
        stats.by_status
    );
    assert!(stats.by_status.get(&429).copied().unwrap_or(0) > 0);
    assert_eq!(
        stats.early_retries, 0,
        "a request came before its Retry-After: {:?}",
        stats.early
    );
    let status = server.api_get("/api/v1/adapter").await?;
    assert_eq!(status["backfills"][0]["state"], "listed");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_webhooks_change_nothing_and_malformed_documents_park_with_a_reason()
-> anyhow::Result<()> {
    let emulator = TestEmulator::start(|_| {}).await?;
    let to = Timestamp::now() - 72.hours();
    let from = to - 24.hours();
    let good = emulator.add_recording(RecordingSpec::new(from + 1.hour(), 5));
    let bad_details = emulator.add_recording(RecordingSpec::new(from + 2.hours(), 5));
    let bad_metadata = emulator.add_recording(RecordingSpec::new(from + 3.hours(), 5));
    emulator.corrupt(&bad_details.id, Document::Details);
    emulator.corrupt(&bad_metadata.id, Document::Metadata);
    let server = server_for(&emulator, |_, _| {}).await?;
    let client = server.client()?;
    let url = format!("{}/webhooks/webex", server.base_url());

    // A forged delivery: right shape, wrong signature.
    let envelope = |id: &str| {
        serde_json::json!({
            "id": "webhook", "name": "capture convergedRecordings", "resource": "convergedRecordings",
            "event": "created", "data": { "id": id, "serviceType": "calling" },
        })
        .to_string()
    };
    let forged = post_signed(
        &client,
        &url,
        "not-the-secret-0123456789",
        envelope("forged-id").as_bytes(),
    )
    .await?;
    assert!(forged.status().is_client_error(), "{}", forged.status());
    let unsigned = client.post(&url).body(envelope("forged-id")).send().await?;
    assert!(unsigned.status().is_client_error());
    // A signed delivery naming a recording Webex does not know: parked with Webex's answer.
    let unknown = post_signed(
        &client,
        &url,
        SECRET,
        envelope("no-such-recording").as_bytes(),
    )
    .await?;
    assert!(unknown.status().is_success());
    let parked = wait_jobs(
        &server,
        &["no-such-recording".into()],
        "parked",
        Duration::from_secs(20),
    )
    .await?;
    assert!(
        parked[0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("404"),
        "{}",
        parked[0]
    );
    assert_eq!(
        job(&server, "forged-id").await?,
        None,
        "a forged webhook changed something"
    );

    // Malformed list page: the backfill stops with a readable reason, and resumes when asked again.
    for _ in 0..200 {
        if !server.api_get("/api/v1/adapter").await?["last_poll"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    emulator.corrupt_next_list_pages(1);
    post_backfill(&server, from, to).await?;
    let mut failed = serde_json::Value::Null;
    for _ in 0..200 {
        let status = server.api_get("/api/v1/adapter").await?;
        if status["backfills"][0]["state"] == "failed" {
            failed = status["backfills"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("convergedRecordings"),
        "{failed}"
    );
    let status = server.api_get("/api/v1/adapter").await?;
    assert_eq!(
        status["recordings"]["stored"], 0,
        "nothing listed from a malformed page"
    );

    // Asking for the same range again (as the command does) lists it; the corrupt documents park.
    post_backfill(&server, from, to).await?;
    wait_jobs(
        &server,
        std::slice::from_ref(&good.id),
        "stored",
        Duration::from_secs(30),
    )
    .await?;
    let parked = wait_jobs(
        &server,
        &[bad_details.id.clone(), bad_metadata.id.clone()],
        "parked",
        Duration::from_secs(30),
    )
    .await?;
    for job in &parked {
        let reason = job["last_error"].as_str().unwrap_or_default();
        assert!(
            reason.contains("not what was expected"),
            "unreadable reason: {reason}"
        );
    }
    assert!(
        parked[1]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("metadata")
    );
    // Parked, not retried forever: one attempt each.
    assert_eq!(parked[0]["attempts"], 1);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_download_link_is_renewed_by_fetching_the_details_again() -> anyhow::Result<()> {
    use webex_emulator::{Faults, Route, RouteFaults};
    // Links live 1 s; the metadata answers after 1.5 s, so the first link is dead when used.
    let emulator = TestEmulator::start(|c| c.link_ttl = Duration::from_secs(1)).await?;
    emulator.set_faults(Faults {
        slow_delay: Duration::from_millis(1500),
        ..Faults::none().with_route(
            Route::Metadata,
            RouteFaults {
                slow: 1.0,
                ..RouteFaults::default()
            },
        )
    });
    let recording = emulator.add_recording(RecordingSpec::new(Timestamp::now() - 30.minutes(), 6));
    let server = server_for(&emulator, |config, _| {
        config.adapter.poll_interval_s = 1;
        config.adapter.initial_lookback_s = 3600;
    })
    .await?;
    let jobs = wait_jobs(
        &server,
        std::slice::from_ref(&recording.id),
        "stored",
        Duration::from_secs(30),
    )
    .await?;
    assert_eq!(
        jobs[0]["attempts"], 1,
        "renewed within the attempt: {}",
        jobs[0]
    );
    assert_eq!(
        jobs[0]["audio_sha256"],
        emulator
            .audio_sha256(&recording.id)
            .expect("audio")
            .as_str()
    );
    let requests = emulator.requests();
    let details = requests
        .iter()
        .filter(|r| {
            r.path
                .starts_with(&format!("/v1/convergedRecordings/{}", recording.id))
                && !r.path.contains("metadata")
        })
        .count();
    let expired = requests
        .iter()
        .filter(|r| r.path.contains("MultiThreadDownloadServlet") && r.status == 403)
        .count();
    assert_eq!(
        (details, expired),
        (2, 1),
        "one expired download, one fresh link"
    );
    server.stop().await
}

#[tokio::test]
async fn a_refused_backfill_listing_waits_out_its_retry_after_even_when_requested_again()
-> anyhow::Result<()> {
    let emulator = TestEmulator::start(|_| {}).await?;
    let to = Timestamp::now() - 48.hours();
    let from = to - 24.hours();
    let recordings = emulator.add_recordings(3, from, to).await;
    let server = server_for(&emulator, |_, _| {}).await?;
    // Every listing refused: 429, Retry-After 1 s.
    let refused = RouteFaults {
        rate_limited: 1.0,
        ..RouteFaults::default()
    };
    emulator.set_faults(Faults::default().with_route(Route::List, refused));
    post_backfill(&server, from, to).await?;
    // The same backfill requested again while its listing is being refused (the client tries 5
    // times, 1 s apart): the service must not list it again before the last refusal's
    // Retry-After (nor wait for the next poll, an hour away, once refusals stop).
    tokio::time::sleep(Duration::from_secs(2)).await;
    post_backfill(&server, from, to).await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stats = emulator.stats();
    assert!(
        stats.by_status.get(&429).copied().unwrap_or(0) >= 5,
        "{:?}",
        stats.by_status
    );
    assert_eq!(
        stats.early_retries, 0,
        "a listing came before its Retry-After: {:?}",
        stats.early
    );
    emulator.set_faults(Faults::default());
    let ids: Vec<String> = recordings.iter().map(|r| r.id.clone()).collect();
    wait_jobs(&server, &ids, "stored", Duration::from_secs(60)).await?;
    let status = server.api_get("/api/v1/adapter").await?;
    assert_eq!(status["backfills"][0]["state"], "listed");
    server.stop().await
}
