//! `agent-office` and `agent-static`: the real agent (`capture-agent run`, release build, its own
//! process) capturing an Xvfb 1920×1080 display, the real server in this process.
//!
//! - `agent-office`: Debian's chromium shows a CRM page that types into a form (four characters a
//!   second, caret blinking), scrolls a list every 2 s and switches "windows" every 20 s;
//! - `agent-static`: a drawn desktop where nothing moves.
//!
//! `agent-office-wine` and `agent-static-wine` run the cross-built Windows agent
//! (`capture-agent.exe`) under Wine on the same display instead: Wine has no Desktop Duplication,
//! so it captures through GDI. Its figures are Wine's (Wine's GDI over X11, its own heap), not
//! Windows's. The CPU of the prefix's `wineserver` is reported beside the agent's.
//!
//! Phase 1 measures first-frame latency: 20 short calls, each from the alerting webhook's answer
//! to the first video record on disk in the call buffer. Phase 2 records one contact for
//! `--seconds` (default 300) and measures the stream's bitrate from the SCN file (access units +
//! frame headers, per 10 s of capture time), the agent process's CPU (utime + stime over the
//! phase) and its peak RSS (VmHWM).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use capture_shared::ids::MonitorId;
use capture_shared::scn::{Record, ScnReader, recover};
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, SECRET, post_signed};
use capture_tests::wine::{Wine, windows_binaries};
use capture_tests::xvfb::{Painter, Xvfb};
use serde_json::json;
use uuid::Uuid;

use crate::{Options, median, round};

const FIRST_FRAME_CALLS: usize = 20;
const WINDOW_US: u64 = 10_000_000;

/// Which workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Chromium with the scripted CRM page.
    Office,
    /// Nothing moves.
    Static,
}

/// Which agent binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// The Linux agent, natively.
    Native,
    /// The Windows agent under Wine.
    Wine,
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The workspace's target directory (the runner is `<target>/release/bench`).
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .and_then(Path::parent)
        .context("no target directory")?
        .to_owned())
}

fn agent_binary() -> anyhow::Result<PathBuf> {
    let target = target_dir()?;
    capture_tests::cargo::build(
        &target,
        &["--release", "-p", "capture-agent", "--bin", "capture-agent"],
    )?;
    Ok(target.join("release").join("capture-agent"))
}

/// CPU seconds (user + system) of a process.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("bad stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state(0) ... utime(11) stime(12), in clock ticks (100 per second on Linux).
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / 100.0)
}

/// Peak resident set of a process, MB.
pub fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// Resident memory now and at its peak, with the rollup's split (anonymous, file, shared).
fn memory_report(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let pick = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
            .unwrap_or_default()
    };
    format!(
        "VmRSS {} kB, VmHWM {} kB, Anonymous {} kB, Shared_Clean+Dirty {}+{} kB, threads {}",
        pick(&status, "VmRSS:"),
        pick(&status, "VmHWM:"),
        pick(&rollup, "Anonymous:"),
        pick(&rollup, "Shared_Clean:"),
        pick(&rollup, "Shared_Dirty:"),
        pick(&status, "Threads:"),
    )
}

fn first_video_exists(path: &Path) -> bool {
    let Ok(mut reader) = ScnReader::open(path) else {
        return false;
    };
    while let Ok(Some(record)) = reader.next_record() {
        if matches!(record, Record::Video { .. }) {
            return true;
        }
    }
    false
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The process of the Windows program `exe` running under Wine (its command line names it).
fn wine_process(exe: &str) -> anyhow::Result<u32> {
    let own = std::process::id();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let program = cmdline.split('\0').next().unwrap_or_default();
        if pid != own && program.ends_with(exe) {
            return Ok(pid);
        }
    }
    anyhow::bail!("no process runs {exe}")
}

/// The `wineserver` process, if one runs.
fn wineserver() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_string_lossy().parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        comm.trim().starts_with("wineserver").then_some(pid)
    })
}

/// Runs one of the benchmarks.
pub fn run(
    options: &Options,
    workload: Workload,
    platform: Platform,
) -> anyhow::Result<serde_json::Value> {
    let seconds = if options.seconds == 0 {
        300
    } else {
        options.seconds
    };
    let binary = match platform {
        Platform::Native => agent_binary()?,
        Platform::Wine => windows_binaries(&target_dir()?)?
            .context("the Windows build is skipped")?
            .join("capture-agent.exe"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(binary, seconds, workload, platform))
}

async fn run_async(
    binary: PathBuf,
    seconds: u64,
    workload: Workload,
    platform: Platform,
) -> anyhow::Result<serde_json::Value> {
    let xvfb = Xvfb::start(&[(1920, 1080)])?;
    let scratch = tempfile::tempdir()?;
    let _desktop = match workload {
        Workload::Office => {
            let page = scratch.path().join("office.html");
            std::fs::write(&page, include_str!("office.html"))?;
            let chromium = Command::new("chromium")
                .env("DISPLAY", &xvfb.display)
                .args([
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-features=Translate",
                    "--window-position=0,0",
                    "--window-size=1920,1080",
                    "--kiosk",
                ])
                .arg(format!(
                    "--user-data-dir={}",
                    scratch.path().join("chromium").display()
                ))
                .arg(format!("file://{}", page.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting chromium (Debian package chromium)")?;
            tokio::time::sleep(Duration::from_secs(8)).await;
            (Some(Killed(chromium)), None)
        }
        Workload::Static => {
            let painter = Painter::open(&xvfb.display, 0)?;
            painter.fill(0, 0, 1920, 40, 0x1e5a9c)?;
            for line in 0..30 {
                painter.text(
                    40,
                    80 + line * 30,
                    &format!(
                        "#{:05}  Invoice question  open  {} min ago",
                        5000 + line,
                        line
                    ),
                )?;
            }
            (None, Some(painter))
        }
    };

    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let ca = server.ca_file();
    let (enrolled, person) = server.enroll_desktop("bench-pc").await?;
    let wine = match platform {
        Platform::Native => None,
        Platform::Wine => {
            let binaries = binary.parent().context("no binaries directory")?;
            Some(Wine::start(
                &xvfb.display,
                binaries,
                &["capture-agent.exe"],
            )?)
        }
    };
    let local = |path: PathBuf| match &wine {
        Some(_) => PathBuf::from(Wine::windows_path(&path)),
        None => path,
    };
    let config = capture_agent::config::AgentConfig {
        server: server.base_url(),
        ca_file: Some(local(ca)),
        server_ca_sha256: None,
        agent_id: enrolled.agent_id,
        credential: enrolled.credential,
        source: "screen".into(),
        proxy: None,
        spool_quota_mb: None,
    };
    let config_path = scratch.path().join("agent.toml");
    config.save(&config_path)?;
    let mut command = match &wine {
        Some(wine) => wine.command("capture-agent.exe"),
        None => Command::new(&binary),
    };
    let agent = Killed(
        command
            .args(["run", "--log-level", "warn", "--config"])
            .arg(local(config_path))
            .env("DISPLAY", &xvfb.display)
            .spawn()
            .context("starting capture-agent")?,
    );
    wait_connected(&server).await?;
    let pid = match platform {
        Platform::Native => agent.0.id(),
        Platform::Wine => wine_process("capture-agent.exe")?,
    };
    let backend =
        server.api_get("/api/v1/agents").await?["items"][0]["connection"]["capture_backend"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    eprintln!("agent {pid} connected; phase 1: {FIRST_FRAME_CALLS} calls for first-frame latency");

    let url = format!("{}/webhooks/webex", server.base_url());
    let client = server.client()?;
    let post = |call: &mut CallScript, state: &str, at: i64| {
        let body = serde_json::to_vec(&call.envelope(state, UtcMillis(at))).unwrap_or_default();
        let (client, url) = (client.clone(), url.clone());
        async move { post_signed(&client, &url, SECRET, &body).await }
    };
    let buffer = server.data_dir.path().join("buffer");
    let mut first_frame_ms = Vec::new();
    for n in 0..FIRST_FRAME_CALLS {
        let now = UtcMicros::now().to_millis().0;
        let mut call = CallScript::new(person, 100 + n as u64, Uuid::new_v4(), UtcMillis(now));
        let before: Vec<PathBuf> = scn_files(&buffer);
        let started = Instant::now();
        post(&mut call, "alerting", now).await?;
        let path = loop {
            if let Some(path) = scn_files(&buffer).into_iter().find(|p| !before.contains(p))
                && first_video_exists(&path)
            {
                break path;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(20),
                "no first frame"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        first_frame_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        post(&mut call, "connected", now + 200).await?;
        post(&mut call, "disconnected", now + 400).await?;
        wait_closed(&path).await?;
    }
    eprintln!("first frame ms: {first_frame_ms:?}");
    eprintln!("after phase 1: {}", memory_report(pid));

    eprintln!("phase 2: one contact for {seconds} s");
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(person, 999, Uuid::new_v4(), UtcMillis(now));
    let before = scn_files(&buffer);
    let cpu_before = cpu_seconds(pid)?;
    let server_process = wineserver();
    let wineserver_before = server_process.map(cpu_seconds).transpose()?;
    let wall = Instant::now();
    post(&mut call, "alerting", now).await?;
    post(&mut call, "connected", now + 1_000).await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = cpu_seconds(pid)? - cpu_before;
    let wall_s = wall.elapsed().as_secs_f64();
    let wineserver_cpu = match (server_process, wineserver_before) {
        (Some(process), Some(before)) => Some(cpu_seconds(process)? - before),
        _ => None,
    };
    let rss = peak_rss_mb(pid)?;
    eprintln!("after phase 2: {}", memory_report(pid));
    post(&mut call, "disconnected", UtcMicros::now().to_millis().0).await?;
    let path = scn_files(&buffer)
        .into_iter()
        .find(|p| !before.contains(p))
        .context("no scn file for the long contact")?;
    wait_closed(&path).await?;

    let records = recover(&path)?.records;
    let mut windows: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    let (mut frames, mut keyframes, mut bytes) = (0u64, 0u64, 0u64);
    let mut first_us = None;
    for record in &records {
        if let Record::Video {
            monitor: MonitorId(0),
            captured,
            keyframe,
            data,
            ..
        } = record
        {
            let first = *first_us.get_or_insert(captured.0);
            let size = data.len() as u64 + 36;
            *windows.entry((captured.0 - first) / WINDOW_US).or_default() += size;
            frames += 1;
            keyframes += u64::from(*keyframe);
            bytes += size;
        }
    }
    let full_windows = (seconds * 1_000_000 / WINDOW_US).max(1);
    let mut window_kbps: Vec<f64> = (0..full_windows)
        .map(|w| windows.get(&w).copied().unwrap_or(0) as f64 * 8.0 / 10.0 / 1000.0)
        .collect();
    let kbps_mean = bytes as f64 * 8.0 / seconds as f64 / 1000.0;
    let export = scratch.path().join("export.mp4");
    capture_server::media::export::export(&path, MonitorId(0), &export)?;
    let kept = std::env::var_os("BENCH_KEEP_EXPORT").map(PathBuf::from);
    if let Some(kept) = &kept {
        std::fs::copy(&export, kept)?;
        eprintln!("export kept at {}", kept.display());
    }
    drop(agent);
    drop(wine);
    server.stop().await?;
    Ok(json!({
        "workload": if workload == Workload::Office { "office" } else { "static" },
        "platform": if platform == Platform::Wine { "windows-under-wine" } else { "linux" },
        "capture_backend": backend,
        "wineserver_cpu_pct_of_core": wineserver_cpu.map(|cpu| round(cpu / wall_s * 100.0, 2)),
        "seconds": seconds,
        "kbps_mean": round(kbps_mean, 2),
        "kbps_p95": round(percentile(&mut window_kbps, 95.0), 2),
        "cpu_pct_of_core": round(cpu / wall_s * 100.0, 2),
        "rss_mb_max": round(rss, 1),
        "first_frame_ms_p50": round(median(&mut first_frame_ms.clone()), 1),
        "first_frame_ms_p99": round(percentile(&mut first_frame_ms, 99.0), 1),
        "frames": frames,
        "keyframes": keyframes,
        "fps_mean": round(frames as f64 / seconds as f64, 2),
    }))
}

fn scn_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "scn"))
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_closed(path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if recover(path).is_ok_and(|r| r.ended) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{} was not closed", path.display())
}

async fn wait_connected(server: &TestServer) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let agents = server.api_get("/api/v1/agents").await?;
        if agents["items"][0]["connected"] == true {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the agent did not connect")
}
