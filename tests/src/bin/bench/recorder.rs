//! `recorder-load`: `--agents` fake agents (default 2,500) speaking the real protocol over real
//! TLS to a release `test-server` process on this machine, each in a call and streaming real
//! H.264 (1080p frames of the synthetic office desktop, encoded by openh264 beforehand) at 2 fps
//! for `--seconds` (default 60). Measured: frame-to-disk as the agents see it (a frame's send to
//! the acknowledgement that covers it: acks mean "synced"), the server's own frame-to-disk
//! histogram, frames lost (sent but not in the contact's SCN file afterwards), and the server
//! process's CPU and memory while the agents stream.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use capture_agent::capture::synthetic::draw_office;
use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::{
    AgentMessage, FrameHeader, ServerMessage, VideoCodec, encode_frame,
};
use capture_shared::scn::{Record, recover};
use capture_shared::time::{AgentMicros, UtcMicros};
use capture_tests::fake_agent::{FakeAgent, hello};
use capture_tests::server::{https_client_http1, spawn_test_server_on};
use capture_tests::webex::{CallScript, SECRET, post_signed};
use futures_util::StreamExt as _;
use openh264::OpenH264API;
use openh264::encoder::{Encoder, EncoderConfig};
use openh264::formats::{BgraSliceU8, YUVBuffer};
use serde_json::json;
use uuid::Uuid;

use crate::{Options, round};

/// Frames per second each agent sends.
const FPS: u64 = 2;
/// Distinct encoded frames, looped (a keyframe starts each loop).
const LOOP_FRAMES: usize = 60;
/// Calls started per second during the measured window on probe agents (connected, idle until
/// their call rings): each times its Ringing webhook → the agent's `Start`.
const PROBE_CALLS_PER_S: u64 = 5;

/// Kills the server on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What every agent adds to.
#[derive(Default)]
struct Totals {
    /// Frame-to-ack times (ms) of frames sent inside the measured window.
    latencies: std::sync::Mutex<Vec<f32>>,
    /// (contact, frames sent) per agent.
    contacts: std::sync::Mutex<Vec<(ContactId, u64)>>,
    streaming: AtomicUsize,
    sent: AtomicU64,
    acked: AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
}

/// 1080p frames of the office desktop, each a change, the first a keyframe.
fn encoded_frames() -> anyhow::Result<Vec<Vec<u8>>> {
    let (width, height) = (1920usize, 1080usize);
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), EncoderConfig::new())?;
    let mut frames = Vec::with_capacity(LOOP_FRAMES);
    // The desktop at 2 fps; a picture that did not change encodes to nothing and is not sent
    // (as the agent skips it): the loop holds changed pictures only.
    for n in 0..LOOP_FRAMES * 20 {
        if frames.len() == LOOP_FRAMES {
            break;
        }
        let image = draw_office(
            width as u32,
            height as u32,
            7,
            Duration::from_millis(n as u64 * 1000 / FPS),
        );
        let mut packed = Vec::with_capacity(width * height * 4);
        for row in image.bgra.chunks(image.stride).take(height) {
            packed.extend_from_slice(&row[..width * 4]);
        }
        let mut yuv = YUVBuffer::new(width, height);
        yuv.read_bgra8(BgraSliceU8::new(&packed, (width, height)));
        if frames.is_empty() {
            encoder.force_intra_frame();
        }
        let encoded = encoder.encode(&yuv)?.to_vec();
        if !encoded.is_empty() {
            frames.push(encoded);
        }
    }
    anyhow::ensure!(frames.len() > 1, "the synthetic desktop did not change");
    Ok(frames)
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU seconds of `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime is field 14, stime 15: indices 11 and 12 after the state (field 3).
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)])
}

/// The server histogram's p99 upper bound (ms) from its `/metrics` text.
fn server_p99_ms(metrics: &str) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("capture_recorder_frame_to_disk_seconds_bucket{le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, count)| *count >= total * 0.99)
        .map(|(le, _)| le * 1000.0)
}

/// One agent: connects, waits for its contact, streams until `until`, then waits for its acks.
#[allow(clippy::too_many_arguments)]
async fn agent(
    port: u16,
    ca: std::path::PathBuf,
    id: AgentId,
    credential: String,
    frames: Arc<Vec<Vec<u8>>>,
    totals: Arc<Totals>,
    window: Arc<std::sync::OnceLock<(Instant, Instant)>>,
    connected: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<()> {
    let mut hello = hello(id, &credential);
    hello.machine = format!("pc-{id}");
    let (mut socket, welcome) = FakeAgent::connect(port, &ca, &hello).await?;
    anyhow::ensure!(
        matches!(welcome, ServerMessage::Welcome(_)),
        "refused: {welcome:?}"
    );
    let _ = connected.send(()).await;
    // Heartbeats while waiting for the call (the recorder drops agents that send none).
    let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
    let contact = loop {
        tokio::select! {
            message = socket.recv(Duration::from_secs(600)) => {
                if let ServerMessage::Start { contact, .. } = message? {
                    break contact;
                }
            }
            _ = heartbeat.tick() => {
                socket.send(&AgentMessage::Heartbeat {
                    recording: vec![],
                    spool_bytes: 0,
                    capture_backend: None,
                }).await?;
            }
        }
    };
    socket
        .send(&AgentMessage::StreamParams {
            contact,
            monitor: MonitorId(0),
            codec: VideoCodec::H264,
            width: 1920,
            height: 1080,
        })
        .await?;
    totals.streaming.fetch_add(1, Ordering::Relaxed);
    // Agents' frames are spread over the interval, as real desktops are.
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_millis(fastrand::u64(..1000 / FPS)),
        Duration::from_millis(1000 / FPS),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut latencies: Vec<f32> = Vec::new();
    let mut sequence: u64 = 0;
    let mut draining: Option<Instant> = None;
    loop {
        let until = window.get().map(|w| w.1);
        if draining.is_none() && until.is_some_and(|u| Instant::now() >= u) {
            draining = Some(Instant::now() + Duration::from_secs(20));
        }
        if let Some(deadline) = draining
            && (in_flight.is_empty() || Instant::now() >= deadline)
        {
            break;
        }
        tokio::select! {
            message = socket.recv(Duration::from_secs(600)) => {
                if let ServerMessage::Ack { sequence: acked, .. } = message? {
                    let now = Instant::now();
                    while in_flight.front().is_some_and(|(s, _)| *s <= acked) {
                        let Some((_, sent)) = in_flight.pop_front() else { break };
                        totals.acked.fetch_add(1, Ordering::Relaxed);
                        if window.get().is_some_and(|w| sent >= w.0) {
                            latencies.push(now.duration_since(sent).as_secs_f32() * 1000.0);
                        }
                    }
                }
            }
            _ = tick.tick(), if draining.is_none() => {
                let index = (sequence as usize) % frames.len();
                let header = FrameHeader {
                    contact,
                    monitor: MonitorId(0),
                    sequence,
                    captured: AgentMicros(u64::try_from(UtcMicros::now().0).unwrap_or(0)),
                    keyframe: index == 0,
                };
                socket.send_binary(encode_frame(&header, &frames[index])).await?;
                in_flight.push_back((sequence, Instant::now()));
                totals.sent.fetch_add(1, Ordering::Relaxed);
                sequence += 1;
            }
            _ = heartbeat.tick() => {
                socket.send(&AgentMessage::Heartbeat {
                    recording: vec![contact],
                    spool_bytes: 0,
                    capture_backend: None,
                }).await?;
            }
            () = tokio::time::sleep(Duration::from_millis(200)), if draining.is_some() => {}
        }
    }
    totals
        .latencies
        .lock()
        .expect("lock")
        .extend_from_slice(&latencies);
    totals
        .contacts
        .lock()
        .expect("lock")
        .push((contact, sequence));
    Ok(())
}

/// A probe agent: connects, heartbeats, and reports when its `Start` arrives.
async fn probe(
    port: u16,
    ca: std::path::PathBuf,
    (id, credential): (AgentId, String),
    started: tokio::sync::oneshot::Sender<Instant>,
    until: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut hello = hello(id, &credential);
    hello.machine = format!("probe-{id}");
    let (mut socket, _) = FakeAgent::connect(port, &ca, &hello).await?;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
    let mut started = Some(started);
    loop {
        tokio::select! {
            message = socket.recv(Duration::from_secs(900)) => {
                if let ServerMessage::Start { .. } = message?
                    && let Some(started) = started.take()
                {
                    let _ = started.send(Instant::now());
                }
            }
            _ = heartbeat.tick() => {
                socket.send(&AgentMessage::Heartbeat {
                    recording: vec![],
                    spool_bytes: 0,
                    capture_backend: None,
                }).await?;
            }
            () = until.cancelled() => return Ok(()),
        }
    }
}

/// What the webhook traffic beside the load saw.
struct Traffic {
    rate: f64,
    most_in_flight: usize,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// Sends the `webhooks` benchmark's deliveries (calls of persons with no agent here: each still
/// runs the whole machine and creates its contact) at `rate` a second for `seconds`, open loop,
/// timing each answer.
async fn webhook_traffic(
    client: reqwest::Client,
    url: String,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Traffic> {
    let bodies = crate::webhooks::deliveries(usize::try_from(rate * seconds)?);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut most_in_flight = 0;
    for (index, (body, _)) in bodies.into_iter().enumerate() {
        tokio::time::sleep_until((started + interval.mul_f64(index as f64)).into()).await;
        let (client, url, counter) = (client.clone(), url.clone(), in_flight.clone());
        most_in_flight = most_in_flight.max(counter.fetch_add(1, Ordering::Relaxed) + 1);
        tasks.spawn(async move {
            let sent = Instant::now();
            let ok = matches!(post_signed(&client, &url, SECRET, &body).await, Ok(r) if r.status().is_success());
            counter.fetch_sub(1, Ordering::Relaxed);
            (sent.elapsed().as_secs_f64() * 1000.0, ok)
        });
        if index % usize::try_from(rate * 5)? == 0 {
            eprintln!(
                "webhooks: {index} sent, {} in flight (most {most_in_flight})",
                in_flight.load(Ordering::Relaxed)
            );
        }
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (ms, ok) = done?;
        latencies.push(ms);
        errors += u64::from(!ok);
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok(Traffic {
        rate,
        most_in_flight,
        p50_ms: crate::webhooks::percentile(&latencies, 50.0),
        p99_ms: crate::webhooks::percentile(&latencies, 99.0),
        errors,
    })
}

/// Runs the benchmark.
pub fn run(options: &Options) -> anyhow::Result<serde_json::Value> {
    let seconds = if options.seconds == 0 {
        60
    } else {
        options.seconds
    };
    let agents = if options.agents == 0 {
        2_500
    } else {
        options.agents
    };
    let target = crate::agent::target_dir()?;
    capture_tests::cargo::build(
        &target,
        &["--release", "-p", "capture-tests", "--bin", "test-server"],
    )?;
    let binary = target.join("release").join("test-server");
    eprintln!("encoding {LOOP_FRAMES} 1080p office frames with openh264");
    let frames = Arc::new(encoded_frames()?);
    let frame_kb = frames.iter().map(Vec::len).sum::<usize>() as f64 / frames.len() as f64 / 1024.0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let data_dir = dir.path().join("data");
        let (child, port) = spawn_test_server_on(
            binary.to_str().context("path")?,
            &data_dir,
            None,
            &[("CAPTURE_INTEGRATION__WRAP_UP_S", "3600")],
        )?;
        let server = Server(child);
        let pid = server.0.id();
        let ca = data_dir.join("tls").join(capture_server::tls::GENERATED_CA);
        let token_file = data_dir.join(capture_server::api::API_TOKEN_FILE);
        let started = Instant::now();
        while !(ca.exists() && token_file.exists()) {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let token = std::fs::read_to_string(&token_file)?.trim().to_owned();
        let base = format!("https://localhost:{port}");
        let client = https_client_http1(&ca)?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle_rss_mb = proc_field(pid, "status", "VmRSS:").unwrap_or(0.0) / 1024.0;

        let probes = usize::try_from(seconds * PROBE_CALLS_PER_S)?;
        eprintln!("creating {agents} agents and {probes} probe agents");
        let all: Vec<Uuid> = (0..agents + probes).map(|_| Uuid::new_v4()).collect();
        let persons = &all[..agents];
        let probe_persons = &all[agents..];
        let mut created: Vec<anyhow::Result<(AgentId, String)>> = futures_util::stream::iter(all.iter().enumerate())
            .map(|(n, person)| {
                let (client, base, token) = (client.clone(), base.clone(), token.clone());
                async move {
                    let body: serde_json::Value = client
                        .post(format!("{base}/api/v1/agents"))
                        .bearer_auth(&token)
                        .json(&json!({ "name": format!("agent {n}"), "person_id": person.to_string() }))
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    let id = AgentId(Uuid::parse_str(body["id"].as_str().context("id")?)?);
                    Ok((id, body["credential"].as_str().context("credential")?.to_owned()))
                }
            })
            .buffered(16)
            .collect()
            .await;

        let probe_agents = created.split_off(agents);
        eprintln!("connecting {agents} agents");
        let totals = Arc::new(Totals::default());
        let window: Arc<std::sync::OnceLock<(Instant, Instant)>> = Arc::default();
        let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel(agents);
        let mut tasks = tokio::task::JoinSet::new();
        for created in created {
            let (id, credential) = created?;
            let (ca, frames, totals, window, connected) =
                (ca.clone(), frames.clone(), totals.clone(), window.clone(), connected_tx.clone());
            tasks.spawn(async move {
                if let Err(error) = agent(port, ca, id, credential, frames, totals.clone(), window, connected).await {
                    totals.failures.lock().expect("lock").push(error.to_string());
                }
            });
            // Desktops do not all connect in the same millisecond.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(connected_tx);
        for _ in 0..agents {
            tokio::time::timeout(Duration::from_secs(120), connected_rx.recv())
                .await
                .context("agents connecting")?;
        }

        // The probes: connected now, rung during the measured window.
        // (A token, not a `Notify`: a probe busy with a heartbeat when the window ends must
        // still see it.)
        let probes_done = tokio_util::sync::CancellationToken::new();
        let mut probe_started = Vec::with_capacity(probes);
        let mut probe_tasks = tokio::task::JoinSet::new();
        for created in probe_agents {
            let (tx, rx) = tokio::sync::oneshot::channel();
            probe_started.push(rx);
            let (ca, done) = (ca.clone(), probes_done.clone());
            let created = created?;
            probe_tasks.spawn(async move { probe(port, ca, created, tx, done).await });
            tokio::time::sleep(Duration::from_millis(2)).await;
        }

        eprintln!("starting {agents} calls");
        let url = format!("{base}/webhooks/webex");
        let now = UtcMicros::now().to_millis();
        let posted: Vec<anyhow::Result<()>> = futures_util::stream::iter(persons.iter().enumerate())
            .map(|(n, person)| {
                let (client, url) = (client.clone(), url.clone());
                let mut call = CallScript::new(*person, n as u64, Uuid::new_v4(), now);
                async move {
                    for state in ["alerting", "connected"] {
                        let body = serde_json::to_vec(&call.envelope(state, UtcMicros::now().to_millis()))?;
                        post_signed(&client, &url, SECRET, &body).await?.error_for_status()?;
                    }
                    Ok(())
                }
            })
            .buffered(32)
            .collect()
            .await;
        for result in posted {
            result?;
        }
        let ramp = Instant::now();
        while totals.streaming.load(Ordering::Relaxed) < agents {
            anyhow::ensure!(
                ramp.elapsed() < Duration::from_secs(120),
                "only {} of {agents} agents streaming; failures: {:?}",
                totals.streaming.load(Ordering::Relaxed),
                totals.failures.lock().expect("lock").iter().take(5).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Warm-up, then the measured window.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let from = Instant::now();
        let cpu_from = cpu_seconds(pid);
        let _ = window.set((from, from + Duration::from_secs(seconds)));
        eprintln!("{agents} agents streaming; measuring {seconds} s, {PROBE_CALLS_PER_S} probe calls/s");
        // The webhooks benchmark's traffic beside the stream, when asked for.
        let traffic = (options.webhooks > 0).then(|| {
            tokio::spawn(webhook_traffic(client.clone(), url.clone(), options.webhooks, seconds))
        });
        // Probe calls ring at a steady rate through the window, each timed to its Start from
        // its request's start.
        let mut rung = Vec::with_capacity(probes);
        for (n, person) in probe_persons.iter().enumerate() {
            tokio::time::sleep_until((from + Duration::from_millis(n as u64 * 1000 / PROBE_CALLS_PER_S)).into()).await;
            let mut call = CallScript::new(*person, 1_000_000 + n as u64, Uuid::new_v4(), UtcMicros::now().to_millis());
            let body = serde_json::to_vec(&call.envelope("alerting", UtcMicros::now().to_millis()))?;
            let (client, url) = (client.clone(), url.clone());
            let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
            rung.push(sent_rx);
            tokio::spawn(async move {
                let _ = sent_tx.send(Instant::now());
                post_signed(&client, &url, SECRET, &body).await
            });
        }
        tokio::time::sleep_until((from + Duration::from_secs(seconds)).into()).await;
        let mut commands: Vec<f32> = Vec::with_capacity(probes);
        let mut commands_missing = 0;
        // Starts still missing 10 s after the window are missing (one deadline for them all).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for (sent, started) in rung.into_iter().zip(probe_started) {
            match (sent.await, tokio::time::timeout_at(deadline, started).await) {
                (Ok(sent), Ok(Ok(at))) => commands.push(at.duration_since(sent).as_secs_f32() * 1000.0),
                _ => commands_missing += 1,
            }
        }
        commands.sort_by(f32::total_cmp);
        let webhooks = match traffic {
            Some(traffic) => Some(traffic.await??),
            None => None,
        };
        probes_done.cancel();
        while let Some(done) = probe_tasks.join_next().await {
            if let Ok(Err(error)) = done {
                eprintln!("probe failed: {error}");
            }
        }
        let cpu = (cpu_seconds(pid) - cpu_from) / seconds as f64 * 100.0;
        let rss_mb = proc_field(pid, "status", "VmRSS:").unwrap_or(0.0) / 1024.0;
        let hwm_mb = proc_field(pid, "status", "VmHWM:").unwrap_or(0.0) / 1024.0;
        while let Some(done) = tasks.join_next().await {
            done?;
        }
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let failures = totals.failures.lock().expect("lock").clone();
        for failure in failures.iter().take(5) {
            eprintln!("agent failed: {failure}");
        }

        // Every frame sent is in its contact's file.
        let contacts = totals.contacts.lock().expect("lock").clone();
        let mut lost: u64 = 0;
        for (contact, sent) in &contacts {
            let path = data_dir.join("buffer").join(format!("{contact}.scn"));
            let written = recover(Path::new(&path))
                .map(|r| r.records.iter().filter(|r| matches!(r, Record::Video { .. })).count() as u64)
                .unwrap_or(0);
            lost += sent.saturating_sub(written);
        }
        let mut latencies = std::mem::take(&mut *totals.latencies.lock().expect("lock"));
        latencies.sort_by(f32::total_cmp);
        let sent = totals.sent.load(Ordering::Relaxed);
        let acked = totals.acked.load(Ordering::Relaxed);
        let server_p99 = server_p99_ms(&metrics);
        eprintln!(
            "{agents} agents ({} failed), {frame_kb:.1} KB/frame: frame-to-ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
             ({} samples); server p99 ≤ {server_p99:?} ms; {sent} sent, {acked} acked, {lost} lost; \
             server CPU {cpu:.1} % of a core, RSS {rss_mb:.0} MB (idle {idle_rss_mb:.0}, peak {hwm_mb:.0})",
            failures.len(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or(f32::NAN),
            latencies.len(),
        );
        eprintln!(
            "call start under load: Ringing webhook → Start p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} calls, {commands_missing} without a start)",
            percentile(&commands, 50.0),
            percentile(&commands, 99.0),
            commands.last().copied().unwrap_or(f32::NAN),
            commands.len()
        );
        if let Some(w) = &webhooks {
            eprintln!(
                "webhooks beside the load: {:.0}/s, 2xx p50 {:.1} ms, p99 {:.1} ms, {} errors",
                w.rate, w.p50_ms, w.p99_ms, w.errors
            );
        }
        drop(server);
        let per_agent = |v: f64| round(v / agents as f64, 4);
        Ok(json!({
            "webhooks_per_s": webhooks.as_ref().map(|w| round(w.rate, 0)),
            "webhook_ms_p50": webhooks.as_ref().map(|w| round(w.p50_ms, 1)),
            "webhook_ms_p99": webhooks.as_ref().map(|w| round(w.p99_ms, 1)),
            "webhook_errors": webhooks.as_ref().map(|w| w.errors),
            "webhooks_in_flight_max": webhooks.as_ref().map(|w| w.most_in_flight),
            "agents": agents,
            "agents_failed": failures.len(),
            "seconds": seconds,
            "frame_kb": round(frame_kb, 1),
            "frame_to_disk_ms_p50": round(percentile(&latencies, 50.0), 1),
            "frame_to_disk_ms_p99": round(percentile(&latencies, 99.0), 1),
            "frame_to_disk_ms_max": round(f64::from(latencies.last().copied().unwrap_or(f32::NAN)), 1),
            "server_frame_to_disk_ms_p99_bucket": server_p99,
            "frames_sent": sent,
            "frames_lost": lost,
            "server_rss_mb": round(rss_mb, 0),
            "server_rss_mb_idle": round(idle_rss_mb, 0),
            "server_rss_mb_peak": round(hwm_mb, 0),
            "server_rss_kb_per_agent": round((rss_mb - idle_rss_mb) * 1024.0 / agents as f64, 1),
            "server_cpu_pct": round(cpu, 1),
            "server_cpu_pct_per_agent": per_agent(cpu),
            "command_ms_p50": round(percentile(&commands, 50.0), 1),
            "command_ms_p99": round(percentile(&commands, 99.0), 1),
            "command_ms_max": round(f64::from(commands.last().copied().unwrap_or(f32::NAN)), 1),
            "commands_timed": commands.len(),
            "commands_missing": commands_missing,
        }))
    })
}
