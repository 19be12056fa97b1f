//! `player`: the replay page in Chromium (headless, loopback) on the `stitch` benchmark's 1 h
//! interaction with two monitors, archived as ingestion leaves it. Timed in the page: from opening
//! the interaction (and pressing play at once) to the audio and both screens playing — the first
//! time (the views are extracted from the archived file) and again (cached); then 10 seeks to
//! random points of the hour, each from the seek to the audio and both screens playing there.

use std::time::Duration;

use capture_server::ingestion::plan::{Screen, align};
use capture_server::media::stitch::{scan, stitch};
use capture_tests::browser::{Driver, browser, js, log_in, until};
use capture_tests::replay::{PASSWORD, add_user};
use capture_tests::server::TestServer;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;

use crate::stitch::{SECONDS, hour_inputs, hour_parts};
use crate::{Options, median, round};

const SEEKS: usize = 10;

/// Opens the interaction, presses play as soon as the player is there; ms until every medium plays.
const OPEN: &str = "const [id, done] = [arguments[0], arguments[arguments.length - 1]];
    const t0 = performance.now();
    location.hash = '#/interaction/' + id;
    let pressed = false;
    const tick = () => {
      const media = [document.querySelector('#player-audio'), ...document.querySelectorAll('#screens video')];
      if (!pressed && typeof player !== 'undefined' && player.master && media.length === 3) {
        document.querySelector('#play').click();
        pressed = true;
      }
      if (pressed && media.every((m) => !m.paused && !m.seeking && m.readyState >= 3 && m.currentTime > 0.05)) {
        return done(performance.now() - t0);
      }
      if (performance.now() - t0 > 120000) {
        return done(JSON.stringify(media.map((m) => [m.readyState, m.paused, m.currentTime, m.error && m.error.message])));
      }
      setTimeout(tick, 5);
    };
    tick();";

/// Seeks to `arguments[0]` s while playing; ms until every medium plays there.
const SEEK: &str = "const [to, done] = [arguments[0], arguments[arguments.length - 1]];
    const media = [document.querySelector('#player-audio'), ...document.querySelectorAll('#screens video')];
    const t0 = performance.now();
    player.seek(to);
    const tick = () => {
      if (media.every((m) => !m.seeking && !m.paused && m.readyState >= 3 && m.currentTime > to + 0.02 && m.currentTime < to + 2)) {
        return done(performance.now() - t0);
      }
      if (performance.now() - t0 > 60000) {
        return done(JSON.stringify(media.map((m) => [m.readyState, m.seeking, m.paused, m.currentTime])));
      }
      setTimeout(tick, 5);
    };
    tick();";

pub fn run(_options: &Options) -> anyhow::Result<Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let work = tempfile::tempdir()?;
        let inputs = hour_inputs(work.path()).await?;
        let (screen, audio) = hour_parts(&inputs);
        let facts = scan(&work.path().join("buffer/c.scn"))?;
        let aligned = align(&[Screen { input: &screen, facts }], &[audio], work.path());
        let stitched = work.path().join("interaction.mp4");
        let (plan, out) = (aligned.plan.clone(), stitched.clone());
        tokio::task::spawn_blocking(move || stitch(&plan, &out)).await??;

        // The server's data directory, as ingestion leaves an archived interaction.
        let data = tempfile::tempdir()?;
        capture_server::store::Store::open(data.path()).await?.close().await;
        let id = uuid::Uuid::new_v4().to_string();
        let key = format!("interactions/bench/{id}/interaction.mp4");
        let archived = data.path().join("archive").join(&key);
        std::fs::create_dir_all(archived.parent().expect("a folder"))?;
        std::fs::copy(&stitched, &archived)?;
        let bytes = std::fs::read(&archived)?;
        let url = format!("sqlite://{}", data.path().join(capture_server::store::DATABASE_FILE).display());
        let mut db = sqlx::SqliteConnection::connect(&url).await?;
        let tracks = json!([
            { "track": 1, "kind": "video", "codec": "h264", "monitor": 0, "contact": "c" },
            { "track": 2, "kind": "video", "codec": "h264", "monitor": 1, "contact": "c" },
            { "track": 3, "kind": "audio", "codec": "opus" },
        ]);
        sqlx::query(
            "INSERT INTO interactions (id, call_session_id, start_ms, stop_ms, recordings, duration_s, created_ms,
               updated_ms, state, archive_key, archive_sha256, archive_bytes, archived_ms, agents, remote_numbers,
               remote_digits, direction, timeline_start_ms, timeline_ms, tracks)
             VALUES (?1, 'bench', ?2, ?3, 1, ?4, ?3, ?3, 'archived', ?5, ?6, ?7, ?3, '|alice@example.com|',
               '+14085550100', ',14085550100,', 'inbound', ?8, ?9, ?10)",
        )
        .bind(&id)
        .bind(inputs.t0_ms)
        .bind(inputs.t0_ms + SECONDS * 1000)
        .bind(SECONDS)
        .bind(&key)
        .bind(hex::encode(Sha256::digest(&bytes)))
        .bind(bytes.len() as i64)
        .bind(aligned.start_ms)
        .bind(aligned.plan.duration_us / 1000)
        .bind(tracks.to_string())
        .execute(&mut db)
        .await?;
        sqlx::query(
            "INSERT INTO recordings (id, state, source, discovered_ms, time_recorded_ms, attempts, next_attempt_ms,
               interaction_id, call_session_id, owner_email, owner_name, personality, remote_number,
               session_start_ms, session_stop_ms, duration_s, stored_ms, cleared_ms)
             VALUES (?1, 'stored', 'poll', ?2, ?2, 1, ?2, ?3, 'bench', 'alice@example.com', 'Alice Martin',
               'terminator', '+14085550100', ?2, ?4, ?5, ?4, ?4)",
        )
        .bind(&inputs.recording)
        .bind(inputs.t0_ms)
        .bind(&id)
        .bind(inputs.t0_ms + SECONDS * 1000)
        .bind(SECONDS)
        .execute(&mut db)
        .await?;
        db.close().await?;
        let server = TestServer::start_in(data, |_, _| {}).await?;
        add_user(&server, "sam", "supervisor").await?;

        let driver = Driver::start()?;
        let client = browser(&driver).await?;
        client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(Duration::from_secs(180)),
                None,
                None,
            ))
            .await?;
        client.goto(&format!("{}/", server.base_url())).await?;
        log_in(&client, "sam", PASSWORD).await?;
        until(&client, "the search page", "return !document.querySelector('#search-view').hidden", Duration::from_secs(10)).await?;

        let mut opens = Vec::new();
        for _ in 0..2 {
            let answer = client.execute_async(OPEN, vec![json!(id)]).await?;
            let Some(ms) = answer.as_f64() else {
                anyhow::bail!(
                    "the player did not start in 120 s: media {answer}; page: {}",
                    js(&client, "return document.body.innerText.slice(0, 1500)").await?
                );
            };
            eprintln!("player: open → playing in {ms:.0} ms");
            opens.push(ms);
            js(&client, "location.hash = '#/search'; return true;").await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        client.execute_async(OPEN, vec![json!(id)]).await?;
        let mut rng = fastrand::Rng::with_seed(11);
        let mut seeks = Vec::new();
        for _ in 0..SEEKS {
            let to = rng.f64() * (SECONDS as f64 - 120.0) + 60.0;
            let answer = client.execute_async(SEEK, vec![json!(to)]).await?;
            let Some(ms) = answer.as_f64() else {
                anyhow::bail!("the seek to {to:.0} s did not play in 60 s: media {answer}");
            };
            eprintln!("player: seek to {to:.0} s → playing in {ms:.0} ms");
            seeks.push(ms);
        }
        client.close().await?;
        server.stop().await?;
        let mut sorted = seeks.clone();
        sorted.sort_by(f64::total_cmp);
        Ok(json!({
            "interaction_s": SECONDS,
            "monitors": 2,
            "archived_mb": round(bytes.len() as f64 / 1e6, 1),
            "open_to_playing_ms_first": round(opens[0], 0),
            "open_to_playing_ms_cached": round(opens[1], 0),
            "seeks": SEEKS,
            "seek_to_playing_ms_p50": round(median(&mut seeks), 0),
            "seek_to_playing_ms_max": round(sorted.last().copied().unwrap_or(0.0), 0),
        }))
    })
}
