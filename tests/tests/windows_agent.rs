//! The Windows agent end to end, on this Linux machine: `capture-agent.exe` cross-compiled for
//! `x86_64-pc-windows-gnu`, run under Wine on an Xvfb display, enrols against the real server
//! (TLS verified against the test CA), and records a call started by a signed webhook while a
//! Windows program of ours (`capture-test-desktop.exe`) shows a known picture. The SCN file is
//! decoded and checked against that picture; a change mid-call shows within one frame interval;
//! a still desktop sends nothing but heartbeats. Wine offers GDI only, so this runs the GDI
//! backend; the test checks that the backend the agent reports is the one its log says ran.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use capture_agent::capture::ScreenSource as _;
use capture_agent::capture::screen::Screen;
use capture_shared::ids::{ContactId, MonitorId};
use capture_shared::scn::{Record, recover};
use capture_shared::time::{AgentMicros, UtcMicros, UtcMillis};
use capture_tests::picture::psnr;
use capture_tests::process::{Running, wait_until};
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, post_call_state};
use capture_tests::wine::{Wine, windows_binaries};
use capture_tests::xvfb::Xvfb;
use uuid::Uuid;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
/// The agent's frame interval at the server's default `fps_max` (5).
const FRAME_INTERVAL_US: i64 = 200_000;

async fn agent_entry(
    server: &TestServer,
    agent: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let agents = server.api_get("/api/v1/agents").await?;
    Ok(agents["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["id"] == agent))
        .cloned())
}

/// The colour at `(x, y)` of a decoded RGB picture.
fn pixel(rgb: &[u8], (x, y): (u32, u32)) -> [u8; 3] {
    let at = (y * WIDTH + x) as usize * 3;
    [rgb[at], rgb[at + 1], rgb[at + 2]]
}

fn near(actual: [u8; 3], expected: [u8; 3]) -> bool {
    actual
        .iter()
        .zip(expected)
        .all(|(a, e)| (i16::from(*a) - i16::from(e)).abs() <= 40)
}

fn read_flag(dir: &Path, name: &str) -> Option<i64> {
    std::fs::read_to_string(dir.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_windows_agent_records_a_call_under_wine() -> anyhow::Result<()> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?
        .to_owned();
    let Some(binaries) = windows_binaries(&target)? else {
        return Ok(());
    };
    let xvfb = Xvfb::start(&[(WIDTH, HEIGHT)])?;
    let wine = Wine::start(
        &xvfb.display,
        &binaries,
        &["capture-agent.exe", "capture-test-desktop.exe"],
    )?;
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;

    // The known picture on the Wine desktop.
    let flags = tempfile::tempdir()?;
    let _desktop = Running(
        wine.command("capture-test-desktop.exe")
            .arg(Wine::windows_path(flags.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_until("the test desktop", Duration::from_secs(60), async || {
        Ok(read_flag(flags.path(), "ready"))
    })
    .await?;

    // Enrolment through the Windows binary: the token from the environment, TLS verified
    // against the test CA; the credential lands DPAPI-protected in %LOCALAPPDATA%.
    let token = std::fs::read_to_string(server.data_dir.path().join("enrolment-token"))?;
    let enrolled = wine
        .command("capture-agent.exe")
        .args([
            "enroll",
            "--server",
            &server.base_url(),
            "--source",
            "screen",
        ])
        .arg("--ca-file")
        .arg(Wine::windows_path(&server.ca_file()))
        .env("CAPTURE_AGENT_ENROLMENT_TOKEN", token.trim())
        .output()?;
    anyhow::ensure!(
        enrolled.status.success(),
        "enrol failed: {}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&enrolled.stdout)?;
    let agent_id = printed["agent_id"].as_str().unwrap_or_default().to_owned();
    let config_file: PathBuf = wine.local_app_data()?.join("Capture").join("agent.toml");
    let config = std::fs::read_to_string(&config_file)?;
    assert!(config.contains("credential = \"dpapi:"), "{config}");
    let person = Uuid::new_v4();
    server
        .client()?
        .patch(format!("{}/api/v1/agents/{agent_id}", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&serde_json::json!({ "person_id": person.to_string() }))
        .send()
        .await?
        .error_for_status()?;

    // The agent runs; it reports its backend.
    let log_path = flags.path().join("agent.log");
    let _agent = Running(
        wine.command("capture-agent.exe")
            .args(["--log-level", "info", "run"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()?,
    );
    let connected = wait_until(
        "the agent to connect",
        Duration::from_secs(60),
        async || {
            agent_entry(&server, &agent_id)
                .await
                .map(|a| a.filter(|a| a["connected"] == true))
        },
    )
    .await?;
    let backend = connected["connection"]["capture_backend"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(connected["connection"]["monitors"][0]["width"], WIDTH);
    assert_eq!(connected["connection"]["monitors"][0]["primary"], true);

    // A call: Ringing starts the recording.
    let now = UtcMicros::now().to_millis().0;
    let mut script = CallScript::new(person, 1, Uuid::new_v4(), UtcMillis(now));
    post_call_state(&server, &mut script, "alerting", now).await?;
    let recording = wait_until("the first frames", Duration::from_secs(30), async || {
        agent_entry(&server, &agent_id)
            .await
            .map(|a| a.filter(|a| a["recording"][0]["streams"][0]["frames"].as_u64() > Some(0)))
    })
    .await?;
    let contact = ContactId(Uuid::parse_str(
        recording["recording"][0]["contact"]
            .as_str()
            .unwrap_or_default(),
    )?);
    post_call_state(&server, &mut script, "connected", now + 1_000).await?;

    // A still desktop: after the first picture, 6 s (past the capture's 5 s safety read) bring
    // no frame, only heartbeats.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let frames = |a: &serde_json::Value| a["recording"][0]["streams"][0]["frames"].as_u64();
    let before = agent_entry(&server, &agent_id).await?.unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = agent_entry(&server, &agent_id).await?.unwrap_or_default();
    assert_eq!(
        frames(&before),
        frames(&after),
        "a still desktop sent frames"
    );
    assert!(
        after["connection"]["last_heartbeat_ms"].as_i64()
            > before["connection"]["last_heartbeat_ms"].as_i64(),
        "heartbeats go on: {before} {after}"
    );

    // The reference for the text: the same display read through X11.
    let reference = Screen {
        display: Some(xvfb.display.clone()),
    }
    .open(MonitorId(0))?
    .grab(true)?
    .ok_or_else(|| anyhow::anyhow!("no X11 grab"))?
    .image;

    // A change mid-call: the top-left quadrant turns yellow.
    std::fs::write(flags.path().join("change"), b"")?;
    let painted_us = wait_until("the change", Duration::from_secs(10), async || {
        Ok(read_flag(flags.path(), "changed"))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // Hung up: the file is closed after the wrap-up.
    post_call_state(&server, &mut script, "disconnected", now + 2_000).await?;
    let path = server
        .data_dir
        .path()
        .join("buffer")
        .join(format!("{contact}.scn"));
    let records = wait_until("the closed file", Duration::from_secs(30), async || {
        Ok(recover(&path).ok().filter(|r| r.ended).map(|r| r.records))
    })
    .await?;
    let anchor = records
        .iter()
        .filter_map(|r| match r {
            Record::ClockSample(anchor) => Some(*anchor),
            _ => None,
        })
        .min_by_key(|a| a.rtt_us)
        .ok_or_else(|| anyhow::anyhow!("no clock sample"))?;
    let videos: Vec<(u64, bool, &Vec<u8>)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Video {
                captured,
                keyframe,
                data,
                monitor,
                ..
            } if *monitor == MonitorId(0) => Some((captured.0, *keyframe, data)),
            _ => None,
        })
        .collect();
    assert!(videos.len() >= 2, "{} frames", videos.len());
    assert!(videos[0].1, "the stream starts with a keyframe");

    // Decoded: the picture, then the change.
    use openh264::formats::YUVSource as _;
    let mut decoder = openh264::decoder::Decoder::new()?;
    let mut rgb = vec![0; (WIDTH * HEIGHT * 3) as usize];
    let (red, yellow) = ([255, 0, 0], [255, 255, 0]);
    let mut first_changed = None;
    let mut first_checked = false;
    for (captured, _, data) in &videos {
        let Some(picture) = decoder.decode(data)? else {
            continue;
        };
        assert_eq!(picture.dimensions(), (WIDTH as usize, HEIGHT as usize));
        picture.write_rgb8(&mut rgb);
        if !first_checked {
            first_checked = true;
            assert!(
                near(pixel(&rgb, (320, 180)), red),
                "{:?}",
                pixel(&rgb, (320, 180))
            );
            assert!(near(pixel(&rgb, (960, 180)), [0, 255, 0]));
            assert!(near(pixel(&rgb, (320, 540)), [0, 0, 255]));
            assert!(near(pixel(&rgb, (1200, 700)), [255, 255, 255]));
        }
        if first_changed.is_none() && near(pixel(&rgb, (320, 180)), yellow) {
            first_changed = Some(*captured);
        }
    }
    let first_changed = first_changed.ok_or_else(|| anyhow::anyhow!("the change never shows"))?;
    let delay_us = anchor.to_server(AgentMicros(first_changed)).0 - painted_us;
    eprintln!(
        "backend {backend}; {} frames; change painted → first frame showing it: {} ms",
        videos.len(),
        delay_us / 1000
    );
    assert!(
        delay_us <= FRAME_INTERVAL_US + 100_000,
        "the change showed {delay_us} µs after it was painted"
    );
    // The last picture's text is as legible as the X server shows it.
    let quality = psnr(&rgb, &reference.bgra, WIDTH as usize, (660, 400, 1270, 490));
    assert!(quality >= 35.0, "text region PSNR {quality:.1} dB");

    // The export plays.
    let out = server.data_dir.path().join("export.mp4");
    capture_server::media::export::export(&path, MonitorId(0), &out)?;
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name,width,height", "-of", "csv=p=0"])
        .arg(&out)
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "h264,1280,720"
    );

    // The backend reported is the one that ran: Wine has no Desktop Duplication.
    let log = std::fs::read_to_string(&log_path)?;
    match backend.as_str() {
        "gdi" => assert!(log.contains("capturing with GDI"), "{log}"),
        "dxgi" => assert!(!log.contains("capturing with GDI"), "{log}"),
        other => anyhow::bail!("unexpected backend {other:?}"),
    }
    std::fs::write(flags.path().join("quit"), b"")?;
    drop(wine);
    server.stop().await
}
