//! An agent's network cut for five minutes mid-contact (a TCP relay the test cuts: bytes stop
//! both ways, nothing is closed, as when a cable is pulled), and the call ends while it is away.
//! The agent keeps capturing into its spool; the server keeps the contact's file open for it;
//! once the network is back the agent reconnects within seconds and sends everything: the SCN
//! file holds every captured frame, in order, once, and the contact names no gap because none
//! was lost.

use std::time::{Duration, Instant};

use capture_shared::scn::{Record, recover};
use capture_shared::time::UtcMicros;
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::netcut::Relay;
use capture_tests::server::TestServer;
use capture_tests::webex::{answered_call, post_call_state};

/// How long the network stays cut.
const OUTAGE: Duration = Duration::from_secs(300);

/// When, into the outage, the call ends.
const CALL_ENDS_AFTER: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cut_off_for_five_minutes_loses_no_frame() -> anyhow::Result<()> {
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let relay = Relay::start(server.addr).await?;
    let (enrolled, person) = server.enroll_desktop("pc-net").await?;
    let through_relay = format!("https://localhost:{}", relay.addr.port());
    let desktop =
        SyntheticDesktop::start(&through_relay, &server.ca_file(), enrolled, "pc-net").await?;
    anyhow::ensure!(desktop.status().connected, "the agent did not connect");

    let mut call = answered_call(&server, person, 1, UtcMicros::now().to_millis().0).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let contact = loop {
        let agents = server.api_get("/api/v1/agents").await?;
        let status = desktop.status();
        if status.frames_sent >= 10
            && status.unacked < 5
            && let Some(contact) = agents["items"][0]["recording"][0]["contact"].as_str()
        {
            break contact.to_owned();
        }
        anyhow::ensure!(Instant::now() < deadline, "not recording: {agents}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The cable is pulled.
    let cut_at = UtcMicros::now();
    let cut = Instant::now();
    let before = desktop.status().frames_sent;
    relay.cut();
    tokio::time::sleep(CALL_ENDS_AFTER).await;
    let ended = UtcMicros::now().to_millis().0;
    post_call_state(&server, &mut call, "disconnected", ended).await?;
    tokio::time::sleep(OUTAGE.saturating_sub(cut.elapsed())).await;
    let offline = desktop.status();
    assert!(!offline.connected, "the agent noticed the cut");
    assert!(
        offline.frames_sent >= before + 100,
        "the agent kept capturing while cut off: {} frames before, {} now",
        before,
        offline.frames_sent
    );
    let agents = server.api_get("/api/v1/agents").await?;
    assert_eq!(
        agents["items"][0]["recording"][0]["state"], "closing",
        "the server keeps the ended contact open for the agent: {agents}"
    );

    // The cable is back.
    relay.restore();
    let restored_at = UtcMicros::now();
    let restored = Instant::now();
    while !desktop.status().connected {
        anyhow::ensure!(
            restored.elapsed() < Duration::from_secs(30),
            "no reconnection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reconnected_after = restored.elapsed();
    assert!(
        reconnected_after <= Duration::from_secs(10),
        "reconnected {reconnected_after:?} after the network came back"
    );

    let path = server
        .data_dir
        .path()
        .join("buffer")
        .join(format!("{contact}.scn"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let records = loop {
        if let Ok(recovery) = recover(&path)
            && recovery.ended
        {
            break recovery.records;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the contact's file did not close"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The last acknowledgements may still be on their way when the file closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = desktop.status();
        if status.unacked == 0 {
            break status;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} frames never acknowledged",
            status.unacked
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let frames: Vec<(u64, u64)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Video {
                sequence, captured, ..
            } => Some((*sequence, captured.0)),
            _ => None,
        })
        .collect();
    let sequences: Vec<u64> = frames.iter().map(|f| f.0).collect();
    assert_eq!(
        sequences,
        (0..status.frames_sent).collect::<Vec<_>>(),
        "every captured frame, in order, once"
    );
    assert!(
        frames.windows(2).all(|w| w[0].1 < w[1].1),
        "capture times increase"
    );
    let during = frames
        .iter()
        .filter(|f| f.1 > cut_at.0 as u64 + 20_000_000 && f.1 < restored_at.0 as u64)
        .count();
    assert!(
        during >= 100,
        "{during} frames captured while cut off are in the file"
    );
    let detail = server
        .api_get(&format!("/api/v1/contacts/{contact}"))
        .await?;
    assert_eq!(detail["gaps"], serde_json::json!([]), "{detail}");
    eprintln!(
        "outage {OUTAGE:?}: {} frames in the file, {during} captured while cut off; reconnected after {reconnected_after:?}",
        frames.len()
    );
    desktop.stop().await;
    server.stop().await
}

/// A whole call rings, is answered and ends while the agent is cut off: the agent never hears
/// of the contact. Its missing screen is a named gap over the whole call ("agent offline", from
/// the Ringing to the end of the wrap-up), closed with the contact, not a silent one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_agent_never_heard_of_is_a_named_gap() -> anyhow::Result<()> {
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let relay = Relay::start(server.addr).await?;
    let (enrolled, person) = server.enroll_desktop("pc-away").await?;
    let through_relay = format!("https://localhost:{}", relay.addr.port());
    let desktop =
        SyntheticDesktop::start(&through_relay, &server.ca_file(), enrolled, "pc-away").await?;
    anyhow::ensure!(desktop.status().connected, "the agent did not connect");

    relay.cut();
    let deadline = Instant::now() + Duration::from_secs(60);
    while desktop.status().connected {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the agent did not notice the cut"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = UtcMicros::now().to_millis().0;
    let mut call = answered_call(&server, person, 7, now).await?;
    post_call_state(&server, &mut call, "disconnected", now + 5_000).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let contact = loop {
        let contacts = server.api_get("/api/v1/contacts?limit=10").await?;
        if let Some(contact) = contacts["items"][0]["id"].as_str() {
            break contact.to_owned();
        }
        anyhow::ensure!(Instant::now() < deadline, "no contact: {contacts}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(60);
    let detail = loop {
        let detail = server
            .api_get(&format!("/api/v1/contacts/{contact}"))
            .await?;
        let gaps_closed = detail["gaps"]
            .as_array()
            .is_some_and(|gaps| gaps.iter().all(|g| g["to_ms"].is_i64()));
        if detail["ended_at_ms"].is_i64() && gaps_closed {
            break detail;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the contact stayed open: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let gaps = detail["gaps"].as_array().cloned().unwrap_or_default();
    let named = gaps.iter().any(|g| {
        g["reason"] == "screen not captured: agent offline"
            && g["from_ms"].as_i64() <= Some(now)
            && g["to_ms"].as_i64() >= Some(now + 5_000)
    });
    assert!(named, "the whole call is a named gap: {detail:#}");
    assert!(desktop.status().connected, "the agent is back");
    desktop.stop().await;
    server.stop().await
}
