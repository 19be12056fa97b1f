//! `tray-idle`: the tray app and the agent it starts, connected and idle (no contact) for
//! `--seconds` (default 600) on an Xvfb display with a tray host (`trayer`), beside a headless
//! agent (`capture-agent run`, as the deb's systemd unit starts it) connected to the same
//! recorder on the same display. Reports CPU (% of one core over the run) and peak RSS of each
//! process (and the anonymous part of its resident memory at the end: RSS counts the shared
//! libraries a GTK program maps), and the WebKit processes the tray started (none: the webview exists only while the
//! status window is open). Release builds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use capture_tests::server::TestServer;
use capture_tests::xvfb::Xvfb;
use serde_json::json;

use crate::Options;
use crate::agent::{Killed, cpu_seconds, peak_rss_mb, target_dir};

/// The processes whose parent is `pid`, by name.
fn children(pid: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let child: u32 = e.ok()?.file_name().to_string_lossy().parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let parent: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (parent == pid).then(|| (child, name.to_owned()))
        })
        .collect()
}

/// Anonymous (private, not file-backed) resident memory of a process now, MB: what the
/// process itself allocated, without the shared libraries every GTK program maps.
fn anonymous_mb(pid: u32) -> anyhow::Result<f64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    let kb: f64 = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Anonymous:"))
        .context("no Anonymous in smaps_rollup")?
        .split_whitespace()
        .next()
        .context("Anonymous value")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// The pid of the agent whose status file is at `status`.
async fn agent_pid(status: &Path) -> anyhow::Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(report) = capture_agent::local::StatusReport::read(status)
            && report.state == capture_agent::local::AgentState::Connected
        {
            return Ok(report.pid);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no connected agent at {}",
            status.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the benchmark.
pub fn run(options: &Options) -> anyhow::Result<serde_json::Value> {
    let seconds = if options.seconds == 0 {
        600
    } else {
        options.seconds
    };
    let target = target_dir()?;
    capture_tests::cargo::build(
        &target,
        &["--release", "-p", "capture-tray", "-p", "capture-agent"],
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(target.join("release"), seconds))
}

async fn run_async(binaries: PathBuf, seconds: u64) -> anyhow::Result<serde_json::Value> {
    let xvfb = Xvfb::start(&[(1920, 1080)])?;
    let _host = Killed(
        Command::new("trayer")
            .args([
                "--edge",
                "top",
                "--align",
                "left",
                "--widthtype",
                "pixel",
                "--width",
                "200",
            ])
            .env("DISPLAY", &xvfb.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting trayer (Debian package trayer)")?,
    );
    let server = TestServer::start().await?;
    let scratch = tempfile::tempdir()?;

    // The tray's user: enrolled by the tray's agent at its first start, from the machine file.
    let token = std::fs::read_to_string(server.data_dir.path().join("enrolment-token"))?;
    let machine = scratch.path().join("machine.toml");
    std::fs::write(
        &machine,
        format!(
            "server = \"{}\"\nserver_ca_sha256 = \"{}\"\nenrolment_token = \"{}\"\n",
            server.base_url(),
            server.ca_sha256()?,
            token.trim()
        ),
    )?;
    let tray_config = scratch.path().join("tray-user").join("agent.toml");
    let tray = Killed(
        Command::new(binaries.join("capture-tray"))
            .env("DISPLAY", &xvfb.display)
            .env("CAPTURE_AGENT_MACHINE_CONFIG", &machine)
            .env("CAPTURE_AGENT_CONFIG", &tray_config)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let tray_pid = tray.0.id();
    let tray_agent = agent_pid(&capture_agent::local::status_path(&tray_config)).await?;

    // The headless agent of another user, as the systemd user unit runs it.
    let headless_config = scratch.path().join("headless-user").join("agent.toml");
    let no_machine = scratch.path().join("none.toml");
    let enrolled = Command::new(binaries.join("capture-agent"))
        .args([
            "enroll",
            "--server",
            &server.base_url(),
            "--server-ca-sha256",
            &server.ca_sha256()?,
        ])
        .arg("--config")
        .arg(&headless_config)
        .env("CAPTURE_AGENT_ENROLMENT_TOKEN", token.trim())
        .env("CAPTURE_AGENT_MACHINE_CONFIG", &no_machine)
        .output()?;
    anyhow::ensure!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    let headless_log = scratch.path().join("headless.log");
    let headless = Killed(
        Command::new(binaries.join("capture-agent"))
            .args(["--log-level", "warn", "--config"])
            .arg(&headless_config)
            .arg("run")
            .env("DISPLAY", &xvfb.display)
            .env("CAPTURE_AGENT_MACHINE_CONFIG", &no_machine)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&headless_log)?)
            .spawn()?,
    );
    let headless_pid = headless.0.id();
    agent_pid(&capture_agent::local::status_path(&headless_config))
        .await
        .with_context(|| std::fs::read_to_string(&headless_log).unwrap_or_default())?;

    // Settle, then measure over the run.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pids = [tray_pid, tray_agent, headless_pid];
    let before: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<Result<_, _>>()?;
    let cpu: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| crate::round((a - b) / elapsed * 100.0, 3))
        .collect();
    let rss: Vec<f64> = pids
        .iter()
        .map(|&p| peak_rss_mb(p).map(|r| crate::round(r, 1)))
        .collect::<Result<_, _>>()?;
    let anonymous: Vec<f64> = pids
        .iter()
        .map(|&p| anonymous_mb(p).map(|r| crate::round(r, 1)))
        .collect::<Result<_, _>>()?;
    let webkit: Vec<String> = children(tray_pid)
        .into_iter()
        .map(|(_, name)| name)
        .filter(|name| name.contains("WebKit"))
        .collect();
    let tray_children: Vec<String> = children(tray_pid).into_iter().map(|(_, n)| n).collect();
    eprintln!("tray's children: {tray_children:?}");
    drop(headless);
    drop(tray);
    let _ = Command::new("kill").arg(tray_agent.to_string()).status();
    server.stop().await?;
    Ok(json!({
        "seconds": seconds,
        "tray_cpu_pct_of_core": cpu[0],
        "tray_agent_cpu_pct_of_core": cpu[1],
        "headless_agent_cpu_pct_of_core": cpu[2],
        "tray_rss_mb_max": rss[0],
        "tray_agent_rss_mb_max": rss[1],
        "headless_agent_rss_mb_max": rss[2],
        "tray_anonymous_mb": anonymous[0],
        "tray_agent_anonymous_mb": anonymous[1],
        "headless_agent_anonymous_mb": anonymous[2],
        "tray_webkit_processes": webkit.len(),
    }))
}
