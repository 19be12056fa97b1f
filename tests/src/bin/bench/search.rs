//! `search`: the replay's interaction search over `--recordings` (default 100,000) interactions.
//!
//! The database is filled the way the service fills it (one recording per interaction, the
//! search fields the store keeps), 90 days of calls by 200 agents; then a supervisor's session
//! runs 1,000 searches through the real HTTPS API, one at a time: each a date range of 1 to 30
//! days plus one filter (agent, part of a number, direction, minimum length, no screen, none),
//! 25 per page, some on later pages. Every search is also audited, as in service. Latency is
//! request to complete response, on loopback.

use std::time::Instant;

use capture_tests::replay::{PASSWORD, add_user, login};
use capture_tests::server::TestServer;
use serde_json::json;
use sqlx::Connection as _;

use crate::{Options, median, round};

const DAY_MS: i64 = 86_400_000;
const AGENTS: usize = 200;
const SEARCHES: usize = 1_000;

pub fn run(options: &Options) -> anyhow::Result<serde_json::Value> {
    let interactions = if options.recordings == 0 {
        100_000
    } else {
        options.recordings
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let now = jiff::Timestamp::now().as_millisecond();
        let started = Instant::now();
        fill(dir.path(), interactions, now).await?;
        eprintln!(
            "search: {interactions} interactions written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let server = TestServer::start_in(dir, |_, _| {}).await?;
        add_user(&server, "sam", "supervisor").await?;
        let session = login(&server, "sam", PASSWORD).await?;
        let client = server.client()?;
        let mut rng = fastrand::Rng::with_seed(7);
        let mut latencies = Vec::with_capacity(SEARCHES);
        let mut hits = 0usize;
        for n in 0..SEARCHES + 50 {
            let days = rng.i64(1..=30);
            let to = now - rng.i64(0..60) * DAY_MS;
            let mut query = format!("from={}&to={to}&limit=25", to - days * DAY_MS);
            match rng.u8(0..6) {
                0 => query.push_str(&format!("&agent=agent{}", rng.usize(0..AGENTS))),
                1 => query.push_str(&format!("&number=555{:02}", rng.u32(0..100))),
                2 => query.push_str("&direction=outbound"),
                3 => query.push_str("&min_duration_s=600"),
                4 => query.push_str("&has_screen=false"),
                _ => {}
            }
            if rng.u8(0..4) == 0 {
                query.push_str(&format!("&offset={}", 25 * rng.i64(1..5)));
            }
            let sent = Instant::now();
            let response = client
                .get(format!("{}/api/v1/interactions?{query}", server.base_url()))
                .header(reqwest::header::COOKIE, &session.cookie)
                .send()
                .await?
                .error_for_status()?;
            let body: serde_json::Value = response.json().await?;
            let elapsed = sent.elapsed();
            if n >= 50 {
                latencies.push(elapsed.as_secs_f64() * 1000.0);
                hits += body["items"].as_array().map_or(0, Vec::len);
            }
        }
        server.stop().await?;
        let mut sorted = latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        eprintln!("search: {SEARCHES} searches, {hits} hits shown");
        Ok(json!({
            "interactions": interactions,
            "searches": SEARCHES,
            "p50_ms": round(median(&mut latencies), 2),
            "p95_ms": round(pct(0.95), 2),
            "p99_ms": round(pct(0.99), 2),
            "max_ms": round(sorted.last().copied().unwrap_or(0.0), 2),
        }))
    })
}

/// Writes `n` archived interactions of the last 90 days, as the service keeps them.
async fn fill(dir: &std::path::Path, n: usize, now: i64) -> anyhow::Result<()> {
    let store = capture_server::store::Store::open(dir).await?;
    store.close().await;
    let url = format!(
        "sqlite://{}",
        dir.join(capture_server::store::DATABASE_FILE).display()
    );
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let mut tx = db.begin().await?;
    let mut rng = fastrand::Rng::with_seed(42);
    for i in 0..n {
        let id = uuid::Uuid::from_u128(rng.u128(..)).to_string();
        let session = format!("{:032x}", rng.u128(..));
        let agent = rng.usize(0..AGENTS);
        let (email, name) = (
            format!("agent{agent}@example.com"),
            format!("Agent{agent} Example"),
        );
        let number = format!("+1408555{:04}", rng.u32(0..10_000));
        let start = now - rng.i64(0..90 * DAY_MS);
        let length = rng.i64(30..1_800);
        let inbound = rng.u8(0..10) < 7;
        let missing = match rng.u8(0..20) {
            0 | 1 => Some("screen"),
            2 => Some("audio"),
            _ => None,
        };
        sqlx::query(
            "INSERT INTO interactions (id, call_session_id, start_ms, stop_ms, recordings, duration_s,
               created_ms, updated_ms, state, archive_key, archive_sha256, archive_bytes, archived_ms,
               missing, agents, remote_numbers, remote_digits, direction, timeline_start_ms, timeline_ms, tracks)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?3, ?4, 'archived', ?6, '00', 1000, ?4, ?7, ?8, ?9, ?10, ?11, ?3, ?12, '[]')",
        )
        .bind(&id)
        .bind(&session)
        .bind(start)
        .bind(start + length * 1000)
        .bind(length)
        .bind(format!("interactions/{id}/interaction.mp4"))
        .bind(missing)
        .bind(format!("|{}|{}|", email, name.to_lowercase()))
        .bind(&number)
        .bind(format!(",{},", number.trim_start_matches('+')))
        .bind(if inbound { "inbound" } else { "outbound" })
        .bind(length * 1000)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO recordings (id, state, source, discovered_ms, time_recorded_ms, attempts,
               next_attempt_ms, interaction_id, call_session_id, owner_email, owner_name, personality,
               remote_number, session_start_ms, session_stop_ms, duration_s, stored_ms)
             VALUES (?1, 'stored', 'poll', ?2, ?2, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?2, ?9, ?10, ?9)",
        )
        .bind(format!("rec-{i}"))
        .bind(start)
        .bind(&id)
        .bind(&session)
        .bind(&email)
        .bind(&name)
        .bind(if inbound { "terminator" } else { "originator" })
        .bind(&number)
        .bind(start + length * 1000)
        .bind(length)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    db.close().await?;
    Ok(())
}
