//! `webhooks`: signed Webex `telephony_calls` deliveries over loopback TLS at a fixed rate
//! (open loop: requests start on schedule whatever the answers do), measuring the time to each
//! 2xx, and checking afterwards that every delivery was stored and processed.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use capture_server::store::Store;
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::server::{TestServer, https_client_http1};
use capture_tests::webex::{CallScript, SECRET, post_signed};
use serde_json::json;
use uuid::Uuid;

use super::{Options, round};

/// Agents taking calls in the generated traffic.
const PERSONS: u64 = 5_000;

/// Builds `count` distinct deliveries: calls of [`PERSONS`] agents, each ringing, answered, held,
/// resumed and hung up (five deliveries), dated around now.
fn deliveries(count: usize) -> Vec<Vec<u8>> {
    let now = UtcMicros::now().to_millis().0;
    let mut out = Vec::with_capacity(count);
    let mut call = 0u64;
    while out.len() < count {
        let person = Uuid::from_u128(u128::from(call % PERSONS) + 1);
        let start = now + i64::try_from(call).unwrap_or(0);
        let mut script = CallScript::new(
            person,
            call,
            Uuid::from_u128(u128::from(call) + 1_000_000),
            UtcMillis(start),
        );
        for (state, offset) in [
            ("alerting", 0),
            ("connected", 3_000),
            ("held", 20_000),
            ("connected", 40_000),
            ("disconnected", 90_000),
        ] {
            out.push(
                serde_json::to_vec(&script.envelope(state, UtcMillis(start + offset)))
                    .expect("json"),
            );
        }
        call += 1;
    }
    out.truncate(count);
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
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
        let bodies = deliveries(total);
        eprintln!("sending {total} signed deliveries at {rate}/s for {seconds} s");

        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (index, body) in bodies.into_iter().enumerate() {
            let due = started + interval.mul_f64(index as f64);
            tokio::time::sleep_until(due.into()).await;
            let (client, url) = (client.clone(), url.clone());
            tasks.spawn(async move {
                let sent = Instant::now();
                let result = post_signed(&client, &url, SECRET, &body).await;
                let ok = matches!(&result, Ok(r) if r.status().is_success());
                (sent.elapsed().as_secs_f64() * 1000.0, ok)
            });
        }
        let mut latencies = Vec::with_capacity(total);
        let mut errors = 0u64;
        while let Some(result) = tasks.join_next().await {
            let (ms, ok) = result?;
            latencies.push(ms);
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
        store.close().await;
        server.stop().await.context("stopping the server")?;
        let lost = total as i64 - stored;
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
        }))
    })
}
