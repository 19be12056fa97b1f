//! The screen path end to end, with real parts: Xvfb, the real agent (scrap capture, openh264,
//! the TLS websocket), the real server on port 0, Webex call events driving start, keep, stop
//! and discard. The exported video is checked by ffprobe and by decoding it against the screen.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capture_agent::agent::{Agent, Identity, Status};
use capture_agent::capture::ScreenSource as _;
use capture_agent::capture::screen::Screen;
use capture_agent::clock::AgentClock;
use capture_agent::connection::Endpoint;
use capture_agent::enroll::{EnrollRequest, enroll};
use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::scn::{Record, recover};
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::picture::psnr;
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, SECRET, post_signed};
use capture_tests::xvfb::{Painter, Xvfb};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Rig {
    server: TestServer,
    xvfb: Xvfb,
    person: Uuid,
    agent: AgentId,
    status: Arc<Mutex<Status>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), capture_agent::agent::AgentError>>,
}

impl Rig {
    async fn start(screens: &[(u32, u32)]) -> anyhow::Result<Rig> {
        let xvfb = Xvfb::start(screens)?;
        let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
        let ca = server.ca_file();
        // A wrong token is refused; the right one (`enroll_desktop`) enrols this desktop.
        let wrong = enroll(
            &server.base_url(),
            Some(&ca),
            &EnrollRequest {
                token: "not-the-token",
                machine: "pc-e2e",
                os_user: "agent1",
                email: None,
            },
        )
        .await;
        assert!(
            matches!(
                wrong,
                Err(capture_agent::enroll::EnrollError::Refused { status: 401, .. })
            ),
            "{wrong:?}"
        );
        let (enrolled, person) = server.enroll_desktop("pc-e2e").await?;
        let status = Arc::new(Mutex::new(Status::default()));
        let agent = Agent {
            endpoint: Endpoint::new(&server.base_url(), Some(&ca))?,
            identity: Identity {
                agent_id: enrolled.agent_id,
                credential: enrolled.credential,
                os_user: "agent1".into(),
                machine: "pc-e2e".into(),
            },
            source: Arc::new(Screen {
                display: Some(xvfb.display.clone()),
            }),
            clock: AgentClock::new(),
            status: status.clone(),
            spool: capture_agent::agent::SpoolSettings {
                dir: server.data_dir.path().join("agent-spool"),
                quota_bytes: capture_agent::spool::DEFAULT_QUOTA_BYTES,
            },
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(agent.run(cancel.clone()));
        let rig = Rig {
            server,
            xvfb,
            person,
            agent: enrolled.agent_id,
            status,
            cancel,
            task,
        };
        rig.wait_agent(|a| a["connected"] == true).await?;
        Ok(rig)
    }

    async fn wait_agent(
        &self,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let agents = self.server.api_get("/api/v1/agents").await?;
            if let Some(agent) = agents["items"]
                .as_array()
                .and_then(|items| items.iter().find(|a| a["id"] == self.agent.to_string()))
                && done(agent)
            {
                return Ok(agent.clone());
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "timed out: {agents}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, call: &mut CallScript, state: &str, at: i64) -> anyhow::Result<()> {
        let url = format!("{}/webhooks/webex", self.server.base_url());
        let body = serde_json::to_vec(&call.envelope(state, UtcMillis(at)))?;
        post_signed(&self.server.client()?, &url, SECRET, &body).await?;
        Ok(())
    }

    fn scn(&self, contact: ContactId) -> PathBuf {
        self.server
            .data_dir
            .path()
            .join("buffer")
            .join(format!("{contact}.scn"))
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.task.await??;
        drop(self.xvfb);
        self.server.stop().await
    }
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe() {
            return Ok(found);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn video_records(records: &[Record], monitor: MonitorId) -> Vec<(u64, u64, bool, Vec<u8>)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Video {
                monitor: m,
                sequence,
                captured,
                keyframe,
                data,
            } if *m == monitor => Some((*sequence, captured.0, *keyframe, data.clone())),
            _ => None,
        })
        .collect()
}

/// `ffprobe` of the exported file: codec, size and every frame's time.
fn ffprobe(file: &Path) -> anyhow::Result<(String, u64, u64, Vec<f64>)> {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=codec_name,width,height"])
        .args(["-show_entries", "frame=pts_time", "-of", "json"])
        .arg(file)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let stream = &json["streams"][0];
    let times = json["frames"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .filter_map(|f| f["pts_time"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Ok((
        stream["codec_name"].as_str().unwrap_or_default().to_owned(),
        stream["width"].as_u64().unwrap_or(0),
        stream["height"].as_u64().unwrap_or(0),
        times,
    ))
}

/// Decodes the access units in order and returns the last picture as RGB.
fn last_picture(units: &[Vec<u8>], width: usize, height: usize) -> anyhow::Result<Vec<u8>> {
    use openh264::formats::YUVSource as _;
    let mut decoder = openh264::decoder::Decoder::new()?;
    let mut rgb = vec![0; width * height * 3];
    let mut decoded = 0;
    for unit in units {
        if let Some(picture) = decoder.decode(unit)? {
            anyhow::ensure!(picture.dimensions() == (width, height));
            picture.write_rgb8(&mut rgb);
            decoded += 1;
        }
    }
    anyhow::ensure!(decoded > 0, "nothing decoded");
    Ok(rgb)
}

/// The capture segments this process created, with their permissions (`/proc/sysvipc/shm`).
fn own_shm_permissions() -> anyhow::Result<Vec<u32>> {
    let table = std::fs::read_to_string("/proc/sysvipc/shm")?;
    let pid = std::process::id().to_string();
    let mut modes = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // key shmid perms size cpid lpid ...
        if fields.get(4) == Some(&pid.as_str()) {
            modes.push(u32::from_str_radix(fields[2], 8)?);
        }
    }
    Ok(modes)
}

const TYPED: &str = "Refund approved for invoice 2231, customer called about March billing.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_records_the_screen_and_the_export_plays() -> anyhow::Result<()> {
    let rig = Rig::start(&[(1920, 1080)]).await?;
    let painter = Painter::open(&rig.xvfb.display, 0)?;
    painter.text(40, 60, "Customer record - Jordan Smith - AC-204-7781")?;

    // Ringing: the agent is told to start; frames arrive and are written.
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(rig.person, 1, Uuid::new_v4(), UtcMillis(now));
    rig.call(&mut call, "alerting", now).await?;
    let agent = rig
        .wait_agent(|a| a["recording"][0]["streams"][0]["frames"].as_u64() > Some(0))
        .await?;
    let contact: ContactId = ContactId(Uuid::parse_str(
        agent["recording"][0]["contact"]
            .as_str()
            .unwrap_or_default(),
    )?);
    assert_eq!(agent["state"], "recording");
    assert_eq!(agent["connection"]["monitors"][0]["width"], 1920);

    // The agent's capture segments are owner-only (scrap upstream made them 0777).
    let modes = own_shm_permissions()?;
    assert!(!modes.is_empty(), "no capture segment found");
    assert!(modes.iter().all(|m| m & 0o777 == 0o600), "{modes:?}");

    // Typing, answered, more typing; then a still screen.
    rig.call(&mut call, "connected", now + 1_000).await?;
    for i in 1..=TYPED.len() {
        painter.text(40, 120, &TYPED[..i])?;
        if i % 3 == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    painter.move_pointer(600, 400)?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let reference = {
        let screen = Screen {
            display: Some(rig.xvfb.display.clone()),
        };
        let mut capture = screen.open(MonitorId(0))?;
        capture
            .grab(true)?
            .ok_or_else(|| anyhow::anyhow!("no grab"))?
            .image
    };

    // Hung up: after the wrap-up timer the contact stops and the file is closed.
    rig.call(&mut call, "disconnected", now + 2_000).await?;
    let path = rig.scn(contact);
    let records = wait_for(|| recover(&path).ok().filter(|r| r.ended).map(|r| r.records)).await?;
    let videos = video_records(&records, MonitorId(0));
    let sent = rig.status.lock().map(|s| s.frames_sent).unwrap_or(0);
    assert_eq!(
        videos.len() as u64,
        sent,
        "every frame the agent sent is in the file"
    );
    assert!(videos.len() >= 3, "{} frames", videos.len());
    assert!(videos[0].2, "the stream starts with a keyframe");
    assert!(
        videos
            .windows(2)
            .all(|w| w[1].0 == w[0].0 + 1 && w[1].1 > w[0].1)
    );
    assert!(records.iter().any(|r| matches!(r, Record::ClockSample(_))));
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Pointer { x: 600, y: 400, .. }))
    );
    wait_for(|| {
        rig.status
            .lock()
            .ok()
            .filter(|s| s.unacked == 0)
            .map(|_| ())
    })
    .await?;

    // The export plays: H.264, 1920x1080, one frame per record at the agent's capture times.
    let out = rig.server.data_dir.path().join("export.mp4");
    let exported = capture_server::media::export::export(&path, MonitorId(0), &out)?;
    let (codec, width, height, times) = ffprobe(&out)?;
    assert_eq!((codec.as_str(), width, height), ("h264", 1920, 1080));
    assert_eq!(times.len(), videos.len());
    for ((time, video), exported_us) in times.iter().zip(&videos).zip(&exported.times_us) {
        let expected = (video.1 - videos[0].1) as f64 / 1e6;
        assert!((time - expected).abs() < 0.001, "{time} vs {expected}");
        assert_eq!(*exported_us, video.1 - videos[0].1);
    }

    // The text is legible: the decoded last frame matches the screen on the typed lines.
    let units: Vec<Vec<u8>> = videos.iter().map(|v| v.3.clone()).collect();
    let decoded = last_picture(&units, 1920, 1080)?;
    let quality = psnr(&decoded, &reference.bgra, 1920, (30, 40, 1200, 130));
    assert!(quality >= 35.0, "text region PSNR {quality:.1} dB");

    // A call that is never answered: the file is deleted and the deletion audited.
    let later = now + 20_000;
    let mut missed = CallScript::new(rig.person, 2, Uuid::new_v4(), UtcMillis(later));
    rig.call(&mut missed, "alerting", later).await?;
    let agent = rig
        .wait_agent(|a| a["recording"][0]["streams"][0]["frames"].as_u64() > Some(0))
        .await?;
    let unanswered = ContactId(Uuid::parse_str(
        agent["recording"][0]["contact"]
            .as_str()
            .unwrap_or_default(),
    )?);
    let missed_path = rig.scn(unanswered);
    assert!(missed_path.exists());
    rig.call(&mut missed, "disconnected", later + 2_000).await?;
    wait_for(|| (!missed_path.exists()).then_some(())).await?;
    let detail = rig
        .server
        .api_get(&format!("/api/v1/contacts/{unanswered}"))
        .await?;
    let audit = detail["audit"].as_array().cloned().unwrap_or_default();
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "delete_screen_recording"),
        "{detail}"
    );
    rig.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_monitors_are_two_streams_of_one_contact() -> anyhow::Result<()> {
    let rig = Rig::start(&[(1920, 1080), (1280, 1024)]).await?;
    let left = Painter::open(&rig.xvfb.display, 0)?;
    let right = Painter::open(&rig.xvfb.display, 1)?;
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(rig.person, 3, Uuid::new_v4(), UtcMillis(now));
    rig.call(&mut call, "alerting", now).await?;
    rig.call(&mut call, "connected", now + 500).await?;
    left.text(20, 40, "left monitor")?;
    right.text(20, 40, "right monitor")?;
    let agent = rig
        .wait_agent(|a| {
            a["recording"][0]["streams"]
                .as_array()
                .is_some_and(|s| s.len() == 2 && s.iter().all(|s| s["frames"].as_u64() > Some(0)))
        })
        .await?;
    let contact = ContactId(Uuid::parse_str(
        agent["recording"][0]["contact"]
            .as_str()
            .unwrap_or_default(),
    )?);
    rig.call(&mut call, "disconnected", now + 1_000).await?;
    let path = rig.scn(contact);
    let recovery = wait_for(|| recover(&path).ok().filter(|r| r.ended)).await?;
    assert_eq!(recovery.header.monitors.len(), 2);
    let sizes: Vec<(u16, u32, u32)> = recovery
        .records
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
    assert!(
        sizes.contains(&(0, 1920, 1080)) && sizes.contains(&(1, 1280, 1024)),
        "{sizes:?}"
    );
    for monitor in [MonitorId(0), MonitorId(1)] {
        let videos = video_records(&recovery.records, monitor);
        assert!(!videos.is_empty() && videos[0].2, "monitor {monitor}");
        let out = rig
            .server
            .data_dir
            .path()
            .join(format!("m{}.mp4", monitor.0));
        capture_server::media::export::export(&path, monitor, &out)?;
        let (codec, width, _, times) = ffprobe(&out)?;
        assert_eq!(codec, "h264");
        assert_eq!(width, if monitor.0 == 0 { 1920 } else { 1280 });
        assert_eq!(times.len(), videos.len());
    }
    rig.stop().await
}
