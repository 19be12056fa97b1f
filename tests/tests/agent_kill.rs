//! The agent process killed (SIGKILL) mid-contact with frames only in its spool (its network
//! was cut just before): the call ends while it is dead; when it starts again it finds its spool,
//! learns from the server's welcome that the contact ended, sends every spooled frame and
//! reports the stretch it was not running as a named gap. The contact's file closes with every
//! frame the killed agent captured.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use capture_agent::config::AgentConfig;
use capture_shared::scn::{Record, recover};
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::buffer::{closed_records, video_sequences};
use capture_tests::netcut::Relay;
use capture_tests::process::{Running, wait_until};
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, SECRET, post_signed};
use uuid::Uuid;

/// The video sequences a spool directory holds, sorted, once each.
fn spooled_sequences(path: &Path) -> Vec<u64> {
    let mut sequences: Vec<u64> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| recover(&entry.path()).ok())
        .flat_map(|recovery| recovery.records)
        .filter_map(|record| match record {
            Record::Video { sequence, .. } => Some(sequence),
            _ => None,
        })
        .collect();
    sequences.sort_unstable();
    sequences.dedup();
    sequences
}

fn start_agent(binary: &Path, config: &Path) -> anyhow::Result<Running> {
    Ok(Running(
        Command::new(binary)
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_sends_its_spool_when_it_starts_again() -> anyhow::Result<()> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?
        .to_owned();
    let binary = capture_tests::desktop::agent_binary(&target)?;
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let relay = Relay::start(server.addr).await?;
    let (enrolled, person) = server.enroll_desktop("pc-kill").await?;
    let home = tempfile::tempdir()?;
    let config = home.path().join("agent.toml");
    AgentConfig {
        server: format!("https://localhost:{}", relay.addr.port()),
        ca_file: Some(server.ca_file()),
        server_ca_sha256: None,
        agent_id: enrolled.agent_id,
        credential: enrolled.credential,
        source: "synthetic-office".into(),
        proxy: None,
        spool_quota_mb: None,
    }
    .save(&config)?;
    let spool = capture_agent::local::spool_path(&config);
    let mut agent = start_agent(&binary, &config)?;
    let connected = async || -> anyhow::Result<Option<()>> {
        let agents = server.api_get("/api/v1/agents").await?;
        Ok((agents["items"][0]["connected"] == true).then_some(()))
    };
    wait_until("the agent to connect", Duration::from_secs(30), connected).await?;

    let client = server.client()?;
    let url = format!("{}/webhooks/webex", server.base_url());
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(person, 1, Uuid::new_v4(), UtcMillis(now));
    for (state, at) in [("alerting", now), ("connected", now + 500)] {
        let body = serde_json::to_vec(&call.envelope(state, UtcMillis(at)))?;
        post_signed(&client, &url, SECRET, &body)
            .await?
            .error_for_status()?;
    }
    let contact = wait_until(
        "frames on the server",
        Duration::from_secs(30),
        async || {
            let agents = server.api_get("/api/v1/agents").await?;
            let recording = &agents["items"][0]["recording"][0];
            Ok(
                (recording["streams"][0]["frames"].as_u64().unwrap_or(0) >= 5)
                    .then(|| recording["contact"].as_str().map(str::to_owned))
                    .flatten(),
            )
        },
    )
    .await?;

    // Frames only in the spool, then the process is killed.
    relay.cut();
    tokio::time::sleep(Duration::from_secs(8)).await;
    agent.0.kill()?;
    agent.0.wait()?;
    let spooled = spooled_sequences(&spool);
    relay.restore();
    let ended = UtcMicros::now().to_millis().0;
    let body = serde_json::to_vec(&call.envelope("disconnected", UtcMillis(ended)))?;
    post_signed(&client, &url, SECRET, &body)
        .await?
        .error_for_status()?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let agents = server.api_get("/api/v1/agents").await?;
    assert_eq!(
        agents["items"][0]["recording"][0]["state"], "closing",
        "the ended contact waits for the dead agent: {agents}"
    );
    let on_server_before = agents["items"][0]["recording"][0]["streams"][0]["frames"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        spooled.len() as u64 > on_server_before,
        "the spool holds frames the server lacks: {} spooled, {on_server_before} on the server",
        spooled.len()
    );

    let _agent = start_agent(&binary, &config)?;
    let path = server
        .data_dir
        .path()
        .join("buffer")
        .join(format!("{contact}.scn"));
    let records = closed_records(&path).await?;
    let sequences = video_sequences(&records);
    let expected: Vec<u64> = (0..=spooled.last().copied().unwrap_or(0)).collect();
    assert_eq!(
        sequences, expected,
        "every frame the killed agent captured, once, in order"
    );
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Gap { reason, .. }
            if reason == capture_agent::agent::GAP_AGENT_NOT_RUNNING)),
        "the stretch the agent was dead is a named gap in the file"
    );
    let detail = server
        .api_get(&format!("/api/v1/contacts/{contact}"))
        .await?;
    let gaps = detail["gaps"].as_array().cloned().unwrap_or_default();
    assert!(
        gaps.iter().any(|g| g["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with(capture_agent::agent::GAP_AGENT_NOT_RUNNING))),
        "{detail}"
    );
    wait_until("the spool to empty", Duration::from_secs(20), async || {
        Ok(spooled_sequences(&spool).is_empty().then_some(()))
    })
    .await?;
    server.stop().await
}
