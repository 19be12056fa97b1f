//! `spool-replay`: the real agent (a synthetic 1920×1080 office desktop, busy all along, encoded
//! by openh264) in a call, its connection cut for `--seconds` (default 300) by a TCP relay that
//! blackholes both ways, then restored. Measured: how long until the spool the outage left is
//! acknowledged (the agent's `unacked` back to what a live stream keeps in flight), the replay
//! rate (spooled frames over that time), and the live frames captured and sent meanwhile: the
//! spool is sent beside the live stream, not instead of it.

use std::time::{Duration, Instant};

use capture_shared::time::UtcMicros;
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::netcut::Relay;
use capture_tests::server::TestServer;
use capture_tests::webex::{answered_call, post_call_state};
use serde_json::json;

use crate::{Options, round};

/// Frames a live stream keeps unacknowledged at most when the spool is drained.
const LIVE_IN_FLIGHT: usize = 4;

pub fn run(options: &Options) -> anyhow::Result<serde_json::Value> {
    let offline = Duration::from_secs(if options.seconds == 0 {
        300
    } else {
        options.seconds
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
        let relay = Relay::start(server.addr).await?;
        let (enrolled, person) = server.enroll_desktop("pc-spool").await?;
        let through_relay = format!("https://localhost:{}", relay.addr.port());
        let desktop = SyntheticDesktop::start_with_monitors(
            &through_relay,
            &server.ca_file(),
            enrolled,
            "pc-spool",
            vec![(1920, 1080)],
        )
        .await?;
        anyhow::ensure!(desktop.status().connected, "the agent did not connect");
        let mut call = answered_call(&server, person, 1, UtcMicros::now().to_millis().0).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while desktop.status().frames_sent < 10 {
            anyhow::ensure!(Instant::now() < deadline, "not recording");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        eprintln!("cutting the agent off for {offline:?}");
        relay.cut();
        tokio::time::sleep(offline).await;
        let cut = desktop.status();
        eprintln!(
            "{} frames ({:.2} MB) waiting in the spool",
            cut.unacked,
            cut.spool_bytes as f64 / 1e6
        );
        // Whether the agent noticed the outage (a ping unanswered for its heartbeat timeout); a
        // shorter cut is a stall the connection survives.
        let noticed = !cut.connected;
        relay.restore();
        let restored = Instant::now();
        while !desktop.status().connected {
            anyhow::ensure!(
                restored.elapsed() < Duration::from_secs(60),
                "no reconnection"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let reconnect = restored.elapsed();
        let start = desktop.status();
        let draining = Instant::now();
        let drained = loop {
            let status = desktop.status();
            if status.unacked <= LIVE_IN_FLIGHT {
                break status;
            }
            anyhow::ensure!(
                draining.elapsed() < Duration::from_secs(600),
                "the spool did not drain: {} frames left",
                status.unacked
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let drain = draining.elapsed().as_secs_f64();
        let spooled = start.unacked;
        let live = drained.frames_sent - start.frames_sent;
        let end = UtcMicros::now().to_millis().0;
        post_call_state(&server, &mut call, "disconnected", end).await?;
        desktop.stop().await;
        server.stop().await?;
        eprintln!(
            "{} after {:.2} s; {spooled} spooled frames sent and acknowledged in {drain:.2} s ({:.0} frames/s) while {live} live frames were captured",
            if noticed { "reconnected" } else { "the connection survived the stall; resumed" },
            reconnect.as_secs_f64(),
            spooled as f64 / drain.max(1e-6)
        );
        Ok(json!({
            "offline_s": offline.as_secs(),
            "spooled_frames": spooled,
            "spooled_mb": round(start.spool_bytes as f64 / 1e6, 2),
            "reconnect_s": noticed.then(|| round(reconnect.as_secs_f64(), 2)),
            "drain_s": round(drain, 2),
            "replay_frames_per_s": round(spooled as f64 / drain.max(1e-6), 0),
            "live_frames_during_drain": live,
            "live_fps_during_drain": round(live as f64 / drain.max(1e-6), 2),
        }))
    })
}
