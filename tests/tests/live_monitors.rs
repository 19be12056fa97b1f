//! A monitor plugged in and out during a contact, with real parts: Xvfb's RandR monitors (what
//! `xrandr --setmonitor` / `--delmonitor` send), the real agent capturing the screen through
//! scrap, the real server. The agent is not restarted: the new monitor's stream starts while the
//! contact records, ends when the monitor goes, and the stitched file has its track for exactly
//! that time (to the agent's look at the layout: every 500 ms, a change taken once seen twice).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capture_agent::agent::{Agent, Identity, SpoolSettings, Status};
use capture_agent::capture::screen::Screen;
use capture_agent::clock::AgentClock;
use capture_agent::connection::Endpoint;
use capture_shared::ids::{ContactId, MonitorId};
use capture_shared::scn::{Record, recover};
use capture_shared::time::UtcMicros;
use capture_tests::process::wait_until;
use capture_tests::server::TestServer;
use capture_tests::webex::{answered_call, post_call_state};
use capture_tests::xvfb::{Painter, Xvfb, randr};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The first and last moment of video track `index` (seconds in the file), by its packets.
fn track_span(file: &std::path::Path, index: usize) -> anyhow::Result<(f64, f64)> {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("v:{index}")])
        .args([
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "json",
        ])
        .arg(file)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "ffprobe refused {}",
        file.display()
    );
    let probe: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let packets = probe["packets"].as_array().cloned().unwrap_or_default();
    let number = |p: &serde_json::Value, key: &str| {
        p[key]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let first = packets.first().map(|p| number(p, "pts_time"));
    let last = packets
        .iter()
        .map(|p| number(p, "pts_time") + number(p, "duration_time"))
        .fold(f64::NAN, f64::max);
    Ok((first.unwrap_or(f64::NAN), last))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_plugged_in_and_out_during_a_contact_has_its_track_while_it_existed()
-> anyhow::Result<()> {
    // One 3200×1080 X screen shown as one 1920×1080 monitor; a second one comes later.
    let xvfb = Xvfb::start(&[(3200, 1080)])?;
    randr::set_monitor(&xvfb.display, "CAPTURE-LEFT", (0, 0, 1920, 1080), true)?;
    assert_eq!(randr::monitors(&xvfb.display)?, vec![(0, 0, 1920, 1080)]);
    let painter = Painter::open(&xvfb.display, 0)?;
    let server = TestServer::start_with(|config| {
        config.integration.wrap_up_s = 1;
        // No Webex recording in this test: the interaction is stitched without audio.
        config.ingestion.settle_s = 0;
        config.ingestion.wait_for_audio_s = 3;
    })
    .await?;
    let (enrolled, person) = server.enroll_desktop("pc-monitors").await?;
    let status = Arc::new(Mutex::new(Status::default()));
    let agent = Agent {
        endpoint: Endpoint::new(&server.base_url(), Some(&server.ca_file()))?,
        identity: Identity {
            agent_id: enrolled.agent_id,
            credential: enrolled.credential,
            os_user: "agent1".into(),
            machine: "pc-monitors".into(),
        },
        source: Arc::new(Screen {
            display: Some(xvfb.display.clone()),
        }),
        clock: AgentClock::new(),
        status: status.clone(),
        spool: SpoolSettings {
            dir: server.data_dir.path().join("agent-spool"),
            quota_bytes: capture_agent::spool::DEFAULT_QUOTA_BYTES,
        },
    };
    let cancel = CancellationToken::new();
    let task = tokio::spawn(agent.run(cancel.clone()));
    let agent_id = enrolled.agent_id.to_string();
    let agent_state = async || -> anyhow::Result<serde_json::Value> {
        let agents = server.api_get("/api/v1/agents").await?;
        Ok(agents["items"]
            .as_array()
            .and_then(|items| items.iter().find(|a| a["id"] == agent_id.as_str()))
            .cloned()
            .unwrap_or_default())
    };
    wait_until("the agent connected", Duration::from_secs(30), async || {
        Ok((agent_state().await?["connected"] == true).then_some(()))
    })
    .await?;

    // A call: the agent records its one monitor.
    let mut call = answered_call(&server, person, 1, UtcMicros::now().to_millis().0).await?;
    let contact = wait_until("recording", Duration::from_secs(30), async || {
        let agent = agent_state().await?;
        let recording = &agent["recording"][0];
        Ok((recording["streams"][0]["frames"].as_u64() > Some(0))
            .then(|| recording["contact"].as_str().map(str::to_owned))
            .flatten())
    })
    .await?;
    let contact = ContactId(Uuid::parse_str(&contact)?);
    // The desktop is busy on both halves for the whole call: each stream has frames all along.
    let typing = {
        let display = xvfb.display.clone();
        let stop = CancellationToken::new();
        let done = stop.clone();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let painter = Painter::open(&display, 0)?;
            let mut n = 0u32;
            while !done.is_cancelled() {
                n += 1;
                painter.text(40, 80, &format!("left monitor, line {n}"))?;
                painter.text(2000, 80, &format!("right monitor, line {n}"))?;
                std::thread::sleep(Duration::from_millis(150));
            }
            Ok(())
        });
        (stop, thread)
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A monitor plugged in beside it, 1280×1024.
    let added_ms = UtcMicros::now().to_millis().0;
    randr::set_monitor(&xvfb.display, "CAPTURE-RIGHT", (1920, 0, 1280, 1024), false)?;
    wait_until(
        "the new monitor recorded",
        Duration::from_secs(10),
        async || {
            let agent = agent_state().await?;
            let streams = agent["recording"][0]["streams"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            Ok(
                (agent["connection"]["monitors"].as_array().map(Vec::len) == Some(2)
                    && streams.len() == 2
                    && streams.iter().all(|s| s["frames"].as_u64() > Some(0)))
                .then_some(()),
            )
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Unplugged again; the call goes on for a while on the first monitor.
    let removed_ms = UtcMicros::now().to_millis().0;
    randr::delete_monitor(&xvfb.display, "CAPTURE-RIGHT")?;
    wait_until("the monitor gone", Duration::from_secs(10), async || {
        let agent = agent_state().await?;
        Ok((agent["connection"]["monitors"].as_array().map(Vec::len) == Some(1)).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    painter.text(40, 200, "call ends")?;
    let end = UtcMicros::now().to_millis().0;
    post_call_state(&server, &mut call, "disconnected", end).await?;

    // The SCN file: monitor 0 all along; monitor 1 from its start, ended with its reason.
    let path = server
        .data_dir
        .path()
        .join("buffer")
        .join(format!("{contact}.scn"));
    let records = wait_until("the file closed", Duration::from_secs(30), async || {
        Ok(recover(&path).ok().filter(|r| r.ended).map(|r| r.records))
    })
    .await?;
    typing.0.cancel();
    typing.1.join().map_err(|_| anyhow::anyhow!("painter"))??;
    let frames = |monitor: MonitorId| {
        records
            .iter()
            .filter(|r| matches!(r, Record::Video { monitor: m, .. } if *m == monitor))
            .count()
    };
    assert!(frames(MonitorId(0)) > 10, "{}", frames(MonitorId(0)));
    assert!(frames(MonitorId(1)) > 5, "{}", frames(MonitorId(1)));
    let ends: Vec<(MonitorId, String)> = records
        .iter()
        .filter_map(|r| match r {
            Record::StreamEnd {
                monitor, reason, ..
            } => Some((*monitor, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        ends,
        vec![(MonitorId(1), "monitor 1 was disconnected".to_owned())]
    );
    let params: Vec<(u16, u32, u32)> = records
        .iter()
        .filter_map(|r| match r {
            Record::StreamParams {
                monitor,
                width,
                height,
                ..
            } => Some((monitor.0, *width, *height)),
            _ => None,
        })
        .collect();
    assert!(params.contains(&(1, 1280, 1024)), "{params:?}");

    // The stitched file: two video tracks; the second exactly while the monitor existed.
    let interaction = wait_until(
        "the interaction archived",
        Duration::from_secs(60),
        async || {
            let list = server.api_get("/api/v1/interactions?limit=10").await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            Ok(items.into_iter().find(|i| i["state"] == "archived"))
        },
    )
    .await?;
    let id = interaction["id"].as_str().unwrap_or_default();
    let file = server
        .data_dir
        .path()
        .join("archive")
        .join(interaction["archive_key"].as_str().unwrap_or_default());
    let codecs = capture_tests::media::codecs(&file)?;
    assert_eq!(
        codecs.iter().filter(|c| *c == "h264").count(),
        2,
        "{codecs:?}"
    );
    let timeline = server
        .api_get(&format!("/api/v1/interactions/{id}/timeline"))
        .await?;
    let start_ms = timeline["start_ms"].as_i64().unwrap_or_default();
    let (first, last) = track_span(&file, 1)?;
    let (added, removed) = (
        (added_ms - start_ms) as f64 / 1000.0,
        (removed_ms - start_ms) as f64 / 1000.0,
    );
    eprintln!(
        "monitor 1: added at {added:.3} s, first frame at {first:.3} s; removed at {removed:.3} s, track ends at {last:.3} s"
    );
    // The agent looks at the layout every 500 ms and takes a change once it has seen it twice;
    // the first frame follows within a frame interval and an encode. The clocks of agent and
    // server are one machine's here.
    assert!(
        first >= added - 0.05 && first <= added + 2.0,
        "monitor 1's track starts at {first:.3} s; the monitor was added at {added:.3} s"
    );
    assert!(
        last >= removed - 0.05 && last <= removed + 1.5,
        "monitor 1's track ends at {last:.3} s; the monitor was removed at {removed:.3} s"
    );
    let (_, whole) = track_span(&file, 0)?;
    assert!(
        whole > removed + 2.5,
        "monitor 0 goes on after the removal: {whole:.3} s"
    );
    // The timeline shows it: monitor 1's screen starts late and ends with its reason.
    let screens = timeline["screens"].as_array().cloned().unwrap_or_default();
    let second = screens
        .iter()
        .find(|s| s["monitor"] == 1)
        .ok_or_else(|| anyhow::anyhow!("no screen for monitor 1: {timeline}"))?;
    assert_eq!(second["ended"], "monitor 1 was disconnected", "{timeline}");
    let from = second["from_offset_ms"].as_i64().unwrap_or_default();
    let to = second["to_offset_ms"].as_i64().unwrap_or_default();
    assert!(
        (from - (added_ms - start_ms)).abs() < 2_000
            && (to - (removed_ms - start_ms)).abs() < 1_500,
        "{second}"
    );

    cancel.cancel();
    task.await??;
    server.stop().await
}
