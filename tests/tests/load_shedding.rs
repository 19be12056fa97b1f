//! Load shedding end to end: a recorder whose frames take longer to reach the disk than its
//! threshold (`recorder.shed_above_ms`, here 0 so that every window counts as slow) halves the
//! frame rate asked of its agents window by window down to `fps_min`, says so in a metric, and
//! the real agent (synthetic desktop, real openh264, TLS websocket) captures slower instead of
//! dropping frames.

use std::time::{Duration, Instant};

use capture_shared::time::UtcMicros;
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::process::wait_until;
use capture_tests::server::TestServer;
use capture_tests::webex::{answered_call, post_call_state};

fn fps_cap(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("capture_recorder_fps_cap "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_recorder_slows_its_agents_down_to_fps_min() -> anyhow::Result<()> {
    let server = TestServer::start_with(|config| {
        config.integration.wrap_up_s = 1;
        config.recorder.shed_above_ms = 0;
    })
    .await?;
    let (enrolled, person) = server.enroll_desktop("pc-load").await?;
    let desktop =
        SyntheticDesktop::start(&server.base_url(), &server.ca_file(), enrolled, "pc-load").await?;
    anyhow::ensure!(desktop.status().connected, "the agent did not connect");
    assert_eq!(desktop.status().fps_cap, None);

    let mut call = answered_call(&server, person, 1, UtcMicros::now().to_millis().0).await?;

    // 5 fps → 2.5 → 1.25 → 1 (fps_min), one 5 s window each.
    wait_until("the cap at fps_min", Duration::from_secs(40), async || {
        let metrics = server.metrics().await?;
        Ok((fps_cap(&metrics) == Some(1.0) && desktop.status().fps_cap == Some(1.0)).then_some(()))
    })
    .await?;

    // The agent captures at most once a second now, and drops nothing: every frame it kept is
    // acknowledged.
    let (before, since) = (desktop.status().frames_sent, Instant::now());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let sent = desktop.status().frames_sent - before;
    let seconds = since.elapsed().as_secs_f64();
    assert!(
        sent as f64 <= seconds + 2.0,
        "{sent} frames in {seconds:.1} s under a 1 fps cap"
    );
    let status = desktop.all_acknowledged().await?;
    assert_eq!(status.spool_dropped, 0);
    let end = UtcMicros::now().to_millis().0;
    post_call_state(&server, &mut call, "disconnected", end).await?;
    desktop.stop().await;
    server.stop().await
}
