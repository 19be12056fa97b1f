//! The tray app on a desktop: `capture-tray` under Xvfb with a tray host (Debian's `trayer`, an
//! XEmbed system tray; `stalonetray` is not in Debian 12), on a machine an installer configured
//! (server, CA pin, one-time token). At its start the tray starts the agent, which enrols with
//! the token and deletes it; the icon shows connected (green ring), recording while the server
//! records a call (red dot), connected again after it; closing (killing) the tray mid-call leaves
//! the agent recording, and a new tray watches that agent instead of starting another; when the
//! server goes away the icon shows disconnected (grey). A screenshot of each state is kept in
//! the target directory (`tmp/tray-*.png`), the icon's colour read from it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use capture_agent::local::{AgentState, StatusReport};
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::process::{Running, wait_until};
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, post_call_state};
use capture_tests::xvfb::Xvfb;
use capture_tray::state::Look;
use serde_json::json;
use uuid::Uuid;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 600;

/// The display as RGB, and a PNG of it kept as `tmp/tray-<name>.png`.
fn screenshot(display: &str, name: &str) -> anyhow::Result<Vec<u8>> {
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tray-{name}.png"));
    let status = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(&png)
        .status()
        .context("running import (Debian package imagemagick)")?;
    anyhow::ensure!(status.success(), "import failed");
    let rgb = Command::new("convert")
        .arg(&png)
        .args(["-depth", "8", "rgb:-"])
        .output()?;
    anyhow::ensure!(rgb.status.success(), "convert failed");
    anyhow::ensure!(rgb.stdout.len() == (WIDTH * HEIGHT * 3) as usize);
    Ok(rgb.stdout)
}

/// How many pixels are (nearly) the look's colour.
fn pixels_of(rgb: &[u8], look: Look) -> usize {
    let [r, g, b] = look.colour();
    rgb.chunks(3)
        .filter(|p| {
            let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).abs();
            d(p[0], r) + d(p[1], g) + d(p[2], b) < 36
        })
        .count()
}

/// Waits until the tray draws `look` (and no other look), keeping the screenshot as `name`.
async fn tray_shows(display: &str, look: Look, name: &str) -> anyhow::Result<()> {
    let mut last = Vec::new();
    let found = wait_until(
        &format!("the tray to show {look:?}"),
        Duration::from_secs(30),
        async || {
            let rgb = screenshot(display, name)?;
            last = Look::ALL.iter().map(|&l| (l, pixels_of(&rgb, l))).collect();
            let others = last
                .iter()
                .filter(|(l, _)| *l != look)
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0);
            Ok((pixels_of(&rgb, look) >= 40 && others < 10).then_some(()))
        },
    )
    .await;
    found.with_context(|| format!("pixels per look: {last:?}"))
}

fn report(config: &Path) -> Option<StatusReport> {
    StatusReport::read(&capture_agent::local::status_path(config)).ok()
}

async fn state_is(config: &Path, state: AgentState) -> anyhow::Result<StatusReport> {
    wait_until(
        &format!("the agent to be {state:?}"),
        Duration::from_secs(60),
        async || Ok(report(config).filter(|r| r.state == state)),
    )
    .await
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

struct Desktop {
    tray: PathBuf,
    display: String,
    machine: PathBuf,
    config: PathBuf,
    home: PathBuf,
}

impl Desktop {
    fn start_tray(&self) -> anyhow::Result<Running> {
        Ok(Running(
            Command::new(&self.tray)
                .env("DISPLAY", &self.display)
                .env("HOME", &self.home)
                .env("XDG_CONFIG_HOME", self.home.join(".config"))
                .env("XDG_RUNTIME_DIR", &self.home)
                .env("CAPTURE_AGENT_MACHINE_CONFIG", &self.machine)
                .env("CAPTURE_AGENT_CONFIG", &self.config)
                .env_remove("DBUS_SESSION_BUS_ADDRESS")
                .env_remove("WAYLAND_DISPLAY")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(self.home.join("tray.log"))?)
                .spawn()?,
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_shows_each_state_and_recording_outlives_it() -> anyhow::Result<()> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?
        .to_owned();
    capture_tests::cargo::build(&target, &["-p", "capture-tray", "-p", "capture-agent"])?;
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let created: serde_json::Value = server
        .client()?
        .post(format!("{}/api/v1/enrolment-tokens", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&json!({ "label": "tray test", "max_uses": 1 }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = created["token"].as_str().unwrap_or_default().to_owned();

    // The machine as the deb's /etc/capture/agent.toml (or the MSI's registry) leaves it.
    let home = tempfile::tempdir()?;
    let machine = home.path().join("machine.toml");
    std::fs::write(
        &machine,
        format!(
            "# written by IT\nserver = \"{}\"\nserver_ca_sha256 = \"{}\"\nenrolment_token = \"{token}\"\n",
            server.base_url(),
            server.ca_sha256()?
        ),
    )?;
    let xvfb = Xvfb::start(&[(WIDTH, HEIGHT)])?;
    let _tray_host = Running(
        Command::new("trayer")
            .args(["--edge", "top", "--align", "left", "--widthtype", "pixel"])
            .args(["--width", "200", "--height", "48", "--iconspacing", "4"])
            .args([
                "--tint",
                "0xffffff",
                "--transparent",
                "true",
                "--alpha",
                "0",
            ])
            .env("DISPLAY", &xvfb.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting trayer (Debian package trayer)")?,
    );
    let desktop = Desktop {
        tray: target.join("debug").join("capture-tray"),
        display: xvfb.display.clone(),
        machine: machine.clone(),
        config: home
            .path()
            .join(".config")
            .join("capture")
            .join("agent.toml"),
        home: home.path().to_owned(),
    };

    // First start: no window, the agent enrols with the machine's token and deletes it.
    let tray = desktop.start_tray()?;
    let connected = state_is(&desktop.config, AgentState::Connected).await?;
    let agent_id = connected
        .agent_id
        .ok_or_else(|| anyhow::anyhow!("no agent id"))?
        .to_string();
    let left = std::fs::read_to_string(&machine)?;
    assert!(!left.contains("enrolment_token"), "{left}");
    assert!(left.contains("# written by IT"), "IT's file kept: {left}");
    tray_shows(&desktop.display, Look::Idle, "connected").await?;

    // A call: recording, then connected again.
    let person = Uuid::new_v4();
    server
        .client()?
        .patch(format!("{}/api/v1/agents/{agent_id}", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&json!({ "person_id": person.to_string() }))
        .send()
        .await?
        .error_for_status()?;
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(person, 1, Uuid::new_v4(), UtcMillis(now));
    post_call_state(&server, &mut call, "alerting", now).await?;
    post_call_state(&server, &mut call, "connected", now + 500).await?;
    let recording = state_is(&desktop.config, AgentState::Recording).await?;
    assert!(recording.last_contact_at_ms.is_some());
    tray_shows(&desktop.display, Look::Recording, "recording").await?;
    post_call_state(&server, &mut call, "disconnected", now + 2_000).await?;
    state_is(&desktop.config, AgentState::Connected).await?;
    tray_shows(&desktop.display, Look::Idle, "after-call").await?;

    // The tray dies mid-call: the agent records on; a new tray watches the same agent.
    let now = UtcMicros::now().to_millis().0;
    let mut second = CallScript::new(person, 2, Uuid::new_v4(), UtcMillis(now));
    post_call_state(&server, &mut second, "alerting", now).await?;
    let recording = state_is(&desktop.config, AgentState::Recording).await?;
    let agent_pid = recording.pid;
    drop(tray);
    let frames_then = recording.frames_sent;
    let still = wait_until(
        "frames after the tray died",
        Duration::from_secs(20),
        async || {
            Ok(report(&desktop.config)
                .filter(|r| r.frames_sent > frames_then && r.state == AgentState::Recording))
        },
    )
    .await?;
    assert_eq!(still.pid, agent_pid, "the same agent records");
    assert!(alive(agent_pid));
    let _tray = desktop.start_tray()?;
    tray_shows(&desktop.display, Look::Recording, "recording-new-tray").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let watched = report(&desktop.config).ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(watched.pid, agent_pid, "no second agent was started");
    let agents = std::fs::read_dir("/proc")?
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c).contains(&desktop.config.display().to_string())
                })
                .unwrap_or(false)
        })
        .count();
    assert_eq!(agents, 1, "one agent process for this user");
    post_call_state(&server, &mut second, "disconnected", now + 1_000).await?;
    state_is(&desktop.config, AgentState::Connected).await?;

    // The server goes away: disconnected.
    server.stop().await?;
    state_is(&desktop.config, AgentState::Disconnected).await?;
    tray_shows(&desktop.display, Look::Disconnected, "disconnected").await?;

    // The agent outlives the tray by design: end it here.
    let _ = Command::new("kill").arg(agent_pid.to_string()).status();
    Ok(())
}
