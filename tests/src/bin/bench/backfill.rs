//! `backfill`: the adapter against the Webex emulator.
//!
//! 1. A backfill of `--recordings` (default 10,000) emulated recordings spread over 40 days (two
//!    list windows), with 30 % of the emulator's answers refused (429/423 with `Retry-After: 1`,
//!    5xx), run as `capture-server backfill` runs it, with `--concurrency` fetches at a time.
//!    Lost = emulated recordings not stored with the emulator's checksum; duplicates = stored
//!    rows beyond one per recording, or files beyond one per stored recording.
//! 2. Webhook fast path: a server with its webhooks registered at the emulator; recordings
//!    published one by one with their `convergedRecordings` webhook; publication → stored.
//! 3. Polling alone (no webhooks, poll every 5 s): publication → stored.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use capture_server::config::{Config, Settings};
use capture_tests::recordings::{TestEmulator, job, server_for};
use jiff::{Timestamp, ToSpan as _};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use webex_emulator::RecordingSpec;

use crate::{Options, median, round};

/// Recordings published by webhook, and by poll, in phases 2 and 3.
const LIVE_RECORDINGS: usize = 40;
/// The poll interval of phase 3.
const POLL_INTERVAL_S: u64 = 5;

pub fn run(options: &Options) -> anyhow::Result<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (seconds, lost, duplicates, recordings, refused, early) = backfill(options).await?;
        let mut webhook = live(true).await?;
        let polled = live(false).await?;
        let p99 = |values: &mut Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[((values.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)]
        };
        Ok(json!({
            "recordings": recordings,
            "concurrency": options.concurrency,
            "seconds": round(seconds, 1),
            "recordings_per_s": round(recordings as f64 / seconds, 1),
            "lost": lost,
            "duplicates": duplicates,
            "refused_answers": refused,
            "early_retries": early,
            "webhook_to_stored_s_p50": round(median(&mut webhook.clone()), 3),
            "webhook_to_stored_s_p99": round(p99(&mut webhook), 3),
            "poll_interval_s": POLL_INTERVAL_S,
            "poll_to_stored_s_p50": round(median(&mut polled.clone()), 3),
            "poll_to_stored_s_max": round(polled.iter().copied().fold(0.0, f64::max), 3),
        }))
    })
}

async fn backfill(options: &Options) -> anyhow::Result<(f64, u64, u64, usize, u64, u64)> {
    let emulator = TestEmulator::start(|_| {}).await?;
    let to = Timestamp::now() - 48.hours();
    let from = to - (40 * 24).hours();
    let count = if options.recordings == 0 {
        10_000
    } else {
        options.recordings
    };
    let recordings = emulator.add_recordings(count, from, to).await;
    eprintln!(
        "backfill: {} emulated recordings over 40 days, 30 % storm",
        recordings.len()
    );
    emulator.storm(0.3);
    let data = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    emulator.configure(&mut config);
    config.adapter.concurrency = options.concurrency;
    config.log.level = "warn".into();
    let settings = Settings::from_config(config)?;
    let store = capture_server::store::Store::open(&settings.data_dir).await?;
    let clock = capture_server::clock::Clock::system();
    let adapter = capture_server::adapter(
        &settings,
        &store,
        &clock,
        Arc::default(),
        Arc::default(),
        Arc::new(capture_server::metrics::Metrics::new()),
    )?
    .context("no adapter")?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let progress = adapter
        .backfill(
            from.as_millisecond(),
            to.as_millisecond(),
            |p| {
                if last_report.elapsed() > Duration::from_secs(10) {
                    last_report = Instant::now();
                    eprintln!(
                        "  {:>5.0} s: {}/{} stored, {} parked, listed: {}",
                        started.elapsed().as_secs_f64(),
                        p.stored,
                        p.total,
                        p.parked,
                        p.listed
                    );
                }
            },
            tokio_util::sync::CancellationToken::new(),
        )
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("backfill: {progress:?} in {seconds:.1} s");
    // Lost and duplicated, from what is on disk and in the database.
    let mut lost = 0;
    let mut interactions = BTreeSet::new();
    for recording in &recordings {
        let stored = store.recording_job(&recording.id).await?;
        let expected = hex::encode(Sha256::digest(
            emulator.audio(&recording.id).context("audio")?,
        ));
        match stored {
            Some(job)
                if job.state == "stored"
                    && job.audio_sha256.as_deref() == Some(expected.as_str()) =>
            {
                interactions.insert(job.interaction_id.unwrap_or_default());
            }
            _ => lost += 1,
        }
    }
    let counts = store.recording_counts(None).await?;
    let files = std::fs::read_dir(data.path().join("audio"))?.count() as i64;
    let duplicates = (counts.stored + counts.pending + counts.parked - recordings.len() as i64)
        .max(0)
        + (files - counts.stored).max(0);
    let stats = emulator.stats();
    let refused = stats
        .by_status
        .iter()
        .filter(|(s, _)| matches!(**s, 423 | 429 | 500..=599))
        .map(|(_, n)| n)
        .sum();
    store.close().await;
    Ok((
        seconds,
        lost,
        duplicates as u64,
        recordings.len(),
        refused,
        stats.early_retries,
    ))
}

/// Phases 2 and 3: seconds from publication to stored, per recording.
async fn live(webhooks: bool) -> anyhow::Result<Vec<f64>> {
    let emulator = TestEmulator::start(|_| {}).await?;
    let server = server_for(&emulator, |config, addr| {
        config.log.level = "warn".into();
        if webhooks {
            config.webex.public_url = Some(format!("https://localhost:{}", addr.port()));
        } else {
            config.adapter.poll_interval_s = POLL_INTERVAL_S;
            config.adapter.overlap_s = 600;
        }
    })
    .await?;
    if webhooks {
        emulator.trust_ca(&server.ca_file())?;
        emulator.wait_webhooks(2).await?;
    }
    let mut delays = Vec::with_capacity(LIVE_RECORDINGS);
    let mut pending = Vec::new();
    for n in 0..LIVE_RECORDINGS {
        let mut spec = RecordingSpec::new(Timestamp::now() - 2.minutes(), 30);
        spec.notify = webhooks;
        // Timed from here: the emulator's createTime is whole seconds.
        let published = Timestamp::now().as_millisecond();
        pending.push((published, emulator.add_recording(spec)));
        // Spread publications over more than one poll interval.
        tokio::time::sleep(Duration::from_millis(if webhooks { 100 } else { 300 })).await;
        if n % 10 == 9 {
            eprintln!(
                "{}: {} published",
                if webhooks { "webhook" } else { "poll" },
                n + 1
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for (published, recording) in pending {
        loop {
            if let Some(job) = job(&server, &recording.id).await?
                && job["state"] == "stored"
            {
                let stored = job["stored_ms"].as_i64().context("stored_ms")?;
                delays.push((stored - published) as f64 / 1000.0);
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "recording {} not stored",
                recording.id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    server.stop().await?;
    Ok(delays)
}
