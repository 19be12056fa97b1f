//! `webhooks`: signed Webex `telephony_calls` deliveries over loopback TLS at a fixed rate
//! (open loop: requests start on schedule whatever the answers do), measuring the time to each
//! 2xx, and checking afterwards that every delivery was stored and processed. Meanwhile
//! [`CONNECTED`] of the agents are connected over the agents' websocket, and the time from each
//! of their webhooks being sent to its command (a timeline marker) arriving is measured too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use capture_server::store::Store;
use capture_shared::ids::AgentId;
use capture_shared::protocol::{AgentMessage, ServerMessage};
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::fake_agent::{FakeAgent, hello};
use capture_tests::server::{TestServer, https_client_http1};
use capture_tests::webex::{CallScript, SECRET, post_signed};
use serde_json::json;
use uuid::Uuid;

use super::{Options, round};

/// Agents taking calls in the generated traffic.
const PERSONS: u64 = 5_000;

/// Agents (persons 1..=CONNECTED) with a live websocket whose commands are timed.
const CONNECTED: u64 = 100;

/// A command the bench expects: (person, event time, timeline label).
pub type Expected = (u128, i64, &'static str);

/// Builds `count` distinct deliveries: calls of [`PERSONS`] agents, each ringing, answered, held,
/// resumed and hung up (five deliveries), dated around now; with, for connected agents, the
/// marker each delivery must produce. They are sent in the order of their event times, as Webex
/// would: a call's deliveries are then seconds apart, not racing each other on the wire (a
/// delivery overtaken by a newer one of its call is late, and rightly changes nothing).
pub fn deliveries(count: usize) -> Vec<(Vec<u8>, Option<Expected>)> {
    let now = UtcMicros::now().to_millis().0;
    let mut out = Vec::with_capacity(count);
    let mut call = 0u64;
    while out.len() < count {
        let person = u128::from(call % PERSONS) + 1;
        let start = now + i64::try_from(call).unwrap_or(0);
        let session = Uuid::from_u128(u128::from(call) + 1_000_000);
        let mut script = CallScript::new(Uuid::from_u128(person), call, session, UtcMillis(start));
        let steps = [
            ("alerting", 0, "Ringing"),
            ("connected", 3_000, "Connected"),
            ("held", 20_000, "On Hold"),
            ("connected", 40_000, "Hold Done"),
            ("disconnected", 90_000, "Wrap Up"),
        ];
        for (state, offset, label) in steps {
            let at = start + offset;
            let body = serde_json::to_vec(&script.envelope(state, UtcMillis(at))).expect("json");
            let expected = (person <= u128::from(CONNECTED)).then_some((person, at, label));
            out.push((at, body, expected));
        }
        call += 1;
    }
    out.sort_by_key(|(at, _, _)| *at);
    out.truncate(count);
    out.into_iter()
        .map(|(_, body, expected)| (body, expected))
        .collect()
}

/// The `'static` label of a timeline marker the bench times.
fn timed_label(label: &str) -> Option<&'static str> {
    ["Ringing", "Connected", "On Hold", "Hold Done", "Wrap Up"]
        .into_iter()
        .find(|l| *l == label)
}

/// Enrols and connects the timed agents; each records when each marker arrives.
async fn connect_agents(
    server: &TestServer,
    received: Arc<Mutex<HashMap<Expected, Instant>>>,
) -> anyhow::Result<()> {
    let client = server.client()?;
    for person in 1..=u128::from(CONNECTED) {
        let body: serde_json::Value = client
            .post(format!("{}/api/v1/agents", server.base_url()))
            .bearer_auth(server.api_token()?)
            .json(&json!({ "name": format!("agent {person}"), "person_id": Uuid::from_u128(person).to_string() }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let agent = AgentId(Uuid::parse_str(body["id"].as_str().context("id")?)?);
        let credential = body["credential"]
            .as_str()
            .context("credential")?
            .to_owned();
        let (mut desktop, welcome) = FakeAgent::connect(
            server.addr.port(),
            &server.ca_file(),
            &hello(agent, &credential),
        )
        .await?;
        anyhow::ensure!(
            matches!(welcome, ServerMessage::Welcome(_)),
            "agent {person} refused: {welcome:?}"
        );
        let received = received.clone();
        tokio::spawn(async move {
            let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    message = desktop.recv(Duration::from_secs(3600)) => match message {
                        Ok(ServerMessage::Marker { label, at, .. }) => {
                            if let Some(label) = timed_label(&label) {
                                received.lock().expect("lock").insert((person, at.0, label), Instant::now());
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    },
                    _ = heartbeat.tick() => {
                        let beat = AgentMessage::Heartbeat { recording: vec![], spool_bytes: 0, capture_backend: None };
                        if desktop.send(&beat).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    Ok(())
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs the benchmark.
pub fn run(options: &Options) -> anyhow::Result<serde_json::Value> {
    let seconds = if options.seconds == 0 {
        60
    } else {
        options.seconds
    };
    let rate = options.rate.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = TestServer::start().await?;
        let url = format!("{}/webhooks/webex", server.base_url());
        // Webex delivers over many HTTP/1.1 connections; so does this client.
        let client = https_client_http1(&server.ca_file())?;
        let total = usize::try_from(rate * seconds)?;
        let received: Arc<Mutex<HashMap<Expected, Instant>>> = Arc::default();
        connect_agents(&server, received.clone()).await?;
        let bodies = deliveries(total);
        let sent: Arc<Mutex<HashMap<Expected, Instant>>> = Arc::default();
        eprintln!("sending {total} signed deliveries at {rate}/s for {seconds} s; {CONNECTED} agents connected");

        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        // The first second warms up (the client opens its connections, each a TLS handshake on
        // both sides of these 2 cores): its deliveries are sent and checked, not timed.
        let warm_up = usize::try_from(rate)?;
        for (index, (body, expected)) in bodies.into_iter().enumerate() {
            let due = started + interval.mul_f64(index as f64);
            tokio::time::sleep_until(due.into()).await;
            let (client, url, timed) = (client.clone(), url.clone(), sent.clone());
            let measured = index >= warm_up;
            tasks.spawn(async move {
                // Both figures start when the request starts (the generator's own scheduling
                // delay before that is not the server's).
                let sent = Instant::now();
                if let Some(expected) = expected.filter(|_| measured) {
                    timed.lock().expect("lock").insert(expected, sent);
                }
                let result = post_signed(&client, &url, SECRET, &body).await;
                let ok = matches!(&result, Ok(r) if r.status().is_success());
                (sent.elapsed().as_secs_f64() * 1000.0, ok, measured)
            });
        }
        let mut latencies = Vec::with_capacity(total);
        let mut errors = 0u64;
        while let Some(result) = tasks.join_next().await {
            let (ms, ok, measured) = result?;
            if measured {
                latencies.push(ms);
            }
            errors += u64::from(!ok);
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);

        // Every delivery stored, and processed.
        let store = Store::open(server.data_dir.path()).await?;
        let drained = Instant::now();
        let (mut stored, mut processed) = store.delivery_counts().await?;
        while processed < stored && drained.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            (stored, processed) = store.delivery_counts().await?;
        }
        let lag = drained.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (mut commands, missing) = {
            let sent = sent.lock().expect("lock");
            let received = received.lock().expect("lock");
            let mut latencies = Vec::with_capacity(sent.len());
            let mut missing = 0u64;
            for (key, at) in sent.iter() {
                match received.get(key) {
                    Some(arrived) => latencies.push(arrived.saturating_duration_since(*at).as_secs_f64() * 1000.0),
                    None => {
                        missing += 1;
                        eprintln!("command missing: person {} at {} {}", key.0, key.1, key.2);
                    }
                }
            }
            (latencies, missing)
        };
        commands.sort_by(f64::total_cmp);
        store.close().await;
        server.stop().await.context("stopping the server")?;
        let lost = total as i64 - stored;
        eprintln!(
            "commands: {} timed, p50 {:.2} ms, p99 {:.2} ms, {missing} missing",
            commands.len(),
            percentile(&commands, 50.0),
            percentile(&commands, 99.0)
        );
        eprintln!(
            "{:.0}/s achieved, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {errors} errors, {lost} lost, \
             {processed}/{stored} processed {lag:.1} s after the last answer",
            total as f64 / elapsed,
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or(f64::NAN),
        );
        Ok(json!({
            "webhooks_per_s": round(total as f64 / elapsed, 0),
            "p50_ms": round(percentile(&latencies, 50.0), 2),
            "p99_ms": round(percentile(&latencies, 99.0), 2),
            "max_ms": round(latencies.last().copied().unwrap_or(f64::NAN), 2),
            "errors": errors,
            "lost": lost,
            "unprocessed": stored - processed,
            "processing_lag_s": round(lag, 1),
            "command_p50_ms": round(percentile(&commands, 50.0), 2),
            "command_p99_ms": round(percentile(&commands, 99.0), 2),
            "commands_timed": commands.len(),
            "commands_missing": missing,
        }))
    })
}
