//! Stopping the agent mid-call (SIGTERM, Ctrl-C; on Windows also console close, logoff and
//! shutdown) loses nothing it captured: the captures end, their frames and each contact's
//! `Stopped` are sent, and the agent waits for the recorder's acks before it closes.

use std::time::{Duration, Instant};

use capture_shared::scn::{Record, recover};
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, SECRET, post_signed};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_sends_every_captured_frame_before_it_closes() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let (enrolled, person) = server.enroll_desktop("pc-stop").await?;
    let desktop =
        SyntheticDesktop::start(&server.base_url(), &server.ca_file(), enrolled, "pc-stop").await?;
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(person, 1, Uuid::new_v4(), UtcMillis(now));
    let url = format!("{}/webhooks/webex", server.base_url());
    for (state, at) in [("alerting", now), ("connected", now + 500)] {
        let body = serde_json::to_vec(&call.envelope(state, UtcMillis(at)))?;
        post_signed(&server.client()?, &url, SECRET, &body).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let contact = loop {
        let agents = server.api_get("/api/v1/agents").await?;
        let recording = &agents["items"][0]["recording"][0];
        if desktop.status().frames_sent >= 5
            && let Some(contact) = recording["contact"].as_str()
        {
            break contact.to_owned();
        }
        anyhow::ensure!(Instant::now() < deadline, "no frames: {agents}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Stopped mid-call, while the synthetic desktop is busy.
    let status = desktop.stop().await;
    assert_eq!(
        status.unacked, 0,
        "every frame acknowledged before the agent closed"
    );
    let path = server
        .data_dir
        .path()
        .join("buffer")
        .join(format!("{contact}.scn"));
    let records = recover(&path)?.records;
    let on_disk = records
        .iter()
        .filter(|r| matches!(r, Record::Video { .. }))
        .count() as u64;
    assert_eq!(
        on_disk, status.frames_sent,
        "every frame the agent sent is on disk"
    );
    // The agent said it was done with the contact, so its streams' totals are known.
    let agents = server.api_get("/api/v1/agents").await?;
    assert_eq!(agents["items"][0]["connected"], false, "{agents}");
    let frames = agents["items"][0]["recording"][0]["streams"][0]["frames"].as_u64();
    assert_eq!(frames, Some(on_disk), "{agents}");
    server.stop().await
}
