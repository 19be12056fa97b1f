//! The replay page in a real browser (Debian's Chromium, headless, driven through chromedriver):
//! a supervisor logs in, finds a call by the caller's number, opens it, plays it — the audio and
//! the screen both advance, neither reports an error — and clicks a call event on the timeline:
//! both jump there, within 100 ms of each other; then an auditor finds that replay in the audit
//! log page and verifies the chain there. The interaction comes from the real pipeline
//! (the Webex emulator's call, a desktop agent's H.264, the adapter's MP3, ingestion's file).
//! Screenshots of the player at 1366×768 and 1920×1080 are left in `CARGO_TARGET_TMPDIR`.

use std::time::Duration;

use capture_tests::browser::{Driver, browser, js, log_in, until};
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::recordings::{TestEmulator, server_for};
use capture_tests::replay::{PASSWORD, add_user};
use fantoccini::Locator;
use webex_emulator::{CallKind, CallPlan};

const MEDIA_STATE: &str = "const a = document.querySelector('#player-audio');
    const v = [...document.querySelectorAll('#screens video')];
    return { audio: a.currentTime, audio_error: a.error && a.error.message, audio_paused: a.paused,
             videos: v.map((x) => x.currentTime), video_errors: v.map((x) => x.error && x.error.message),
             ready: [a.readyState, ...v.map((x) => x.readyState)] };";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_finds_a_call_by_number_and_watches_it_in_sync() -> anyhow::Result<()> {
    let emulator = TestEmulator::start(|c| c.publish_delay = Duration::from_millis(500)).await?;
    let alice = emulator.add_person("alice@example.com", "Alice Martin");
    let server = server_for(&emulator, |config, addr| {
        config.webex.public_url = Some(format!("https://localhost:{}", addr.port()));
        config.integration.wrap_up_s = 1;
        config.ingestion.settle_s = 1;
        config.ingestion.min_screen_s = 0;
    })
    .await?;
    emulator.trust_ca(&server.ca_file())?;
    emulator.wait_webhooks(2).await?;
    let enrolled = server.enroll_desktop_as("alice-pc", alice.id).await?;
    let desktop =
        SyntheticDesktop::start(&server.base_url(), &server.ca_file(), enrolled, "alice-pc")
            .await?;
    // Hold and resume: markers to seek to, a few seconds to play.
    let outcome = emulator
        .run_call(
            CallPlan::new(alice.clone(), CallKind::HoldResume)
                .with_timing(Duration::from_millis(500), Duration::from_secs(3)),
        )
        .await;
    let session = outcome.call_session_id.simple().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let interaction = loop {
        let list = server
            .api_get(&format!("/api/v1/interactions?call_session_id={session}"))
            .await?;
        if let Some(found) = list["items"].as_array().and_then(|i| i.first())
            && found["state"] == "archived"
        {
            break found.clone();
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not archived: {list}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(interaction["missing"].is_null(), "{interaction}");
    let number = interaction["remote_numbers"][0]
        .as_str()
        .expect("a remote number")
        .to_owned();
    add_user(&server, "sam", "supervisor").await?;

    let driver = Driver::start()?;
    let client = browser(&driver).await?;
    client.goto(&format!("{}/", server.base_url())).await?;
    log_in(&client, "sam", PASSWORD).await?;
    until(
        &client,
        "the search page",
        "return !document.querySelector('#search-view').hidden",
        Duration::from_secs(10),
    )
    .await?;

    // Find yesterday's call from a number: here, today's, by part of the caller's number.
    // Webex gives the number as a SIP URI; people type the number.
    let user_part = number
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or_default();
    let digits: String = user_part.chars().filter(char::is_ascii_digit).collect();
    let part = &digits[digits.len().saturating_sub(7)..];
    client
        .find(Locator::Id("search-number"))
        .await?
        .send_keys(part)
        .await?;
    client
        .find(Locator::Id("search-submit"))
        .await?
        .click()
        .await?;
    let row = format!(
        "#results tbody tr[data-id='{}']",
        interaction["id"].as_str().expect("id")
    );
    until(
        &client,
        "the call in the results",
        &format!("return !!document.querySelector(\"{row}\")"),
        Duration::from_secs(10),
    )
    .await?;
    capture_tests::browser::click(&client, &row).await?;

    // The player: the audio and one screen, loaded.
    until(&client, "the media to load",
        "const m = [document.querySelector('#player-audio'), ...document.querySelectorAll('#screens video')];
         return m.length === 2 && m.every((x) => x.readyState >= 2);",
        Duration::from_secs(20)).await?;
    client.find(Locator::Id("play")).await?.click().await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let playing = js(&client, MEDIA_STATE).await?;
    // The screen covers this stretch: no "not recorded here" over it.
    assert_eq!(
        js(
            &client,
            "return document.querySelectorAll('.uncovered:not([hidden])').length"
        )
        .await?,
        0,
        "a covered screen is marked not recorded"
    );
    eprintln!("playing: {playing}");
    assert!(
        playing["audio_error"].is_null() && playing["video_errors"][0].is_null(),
        "{playing}"
    );
    assert!(
        playing["audio"].as_f64().unwrap_or(0.0) > 1.0,
        "the audio advances: {playing}"
    );
    assert!(
        playing["videos"][0].as_f64().unwrap_or(0.0) > 1.0,
        "the screen advances: {playing}"
    );
    assert!(
        (playing["audio"].as_f64().unwrap_or(0.0) - playing["videos"][0].as_f64().unwrap_or(0.0))
            .abs()
            < 0.2,
        "audio and screen play together: {playing}"
    );

    // Pause, and click the Hold Done marker: both jump to it.
    client.find(Locator::Id("play")).await?.click().await?;
    let marker = js(&client, "const m = document.querySelector('.marker[data-kind=\"Hold Done\"]') || document.querySelectorAll('.marker')[1];
        return m ? Number(m.dataset.offsetMs) / 1000 : null;").await?;
    let target = marker.as_f64().expect("a Hold Done marker on the timeline");
    js(&client, "(document.querySelector('.marker[data-kind=\"Hold Done\"]') || document.querySelectorAll('.marker')[1]).click(); return true;").await?;
    until(&client, "both media at the marker",
        &format!("const a = document.querySelector('#player-audio'); const v = document.querySelector('#screens video');
         return !a.seeking && !v.seeking && Math.abs(a.currentTime - {target}) < 0.3;"),
        Duration::from_secs(10)).await?;
    let sought = js(&client, MEDIA_STATE).await?;
    eprintln!("after the seek to {target}: {sought}");
    let (audio, video) = (
        sought["audio"].as_f64().unwrap_or(-1.0),
        sought["videos"][0].as_f64().unwrap_or(-9.0),
    );
    assert!(
        (audio - video).abs() <= 0.1,
        "audio {audio} and screen {video} are more than 100 ms apart"
    );
    assert!(
        (audio - target).abs() <= 0.3,
        "audio {audio} is not at the marker {target}"
    );

    // Usable at 1366×768: the controls and the timeline are on screen; and at 1920×1080.
    let layout = js(&client, "const r = (s) => document.querySelector(s).getBoundingClientRect();
        return { timeline: r('#timeline').bottom, play: r('#play').bottom, height: innerHeight, width: innerWidth,
                 overflow: document.documentElement.scrollWidth > innerWidth };").await?;
    assert!(
        layout["timeline"].as_f64() <= layout["height"].as_f64() && layout["overflow"] == false,
        "{layout}"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let small = shots.join("replay-player-1366x768.png");
    std::fs::write(&small, client.screenshot().await?)?;
    client.set_window_size(1920, 1080).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let large = shots.join("replay-player-1920x1080.png");
    std::fs::write(&large, client.screenshot().await?)?;
    eprintln!("screenshots: {} {}", small.display(), large.display());

    // The replay is on record, and an auditor reads it in the page with the chain verified.
    client.find(Locator::Id("logout")).await?.click().await?;
    until(
        &client,
        "the login page",
        "return !document.querySelector('#login-view').hidden",
        Duration::from_secs(10),
    )
    .await?;
    add_user(&server, "ada", "auditor").await?;
    log_in(&client, "ada", PASSWORD).await?;
    until(
        &client,
        "the audit link",
        "return !document.querySelector('#nav-audit').hidden",
        Duration::from_secs(10),
    )
    .await?;
    client.find(Locator::Id("nav-audit")).await?.click().await?;
    until(&client, "sam's replay in the audit log",
        "return [...document.querySelectorAll('#audit-table tbody tr')].some((r) => r.innerText.includes('sam') && r.innerText.includes('replay'));",
        Duration::from_secs(10)).await?;
    client
        .find(Locator::Id("audit-verify"))
        .await?
        .click()
        .await?;
    until(
        &client,
        "the chain verified",
        "return document.querySelector('#audit-verified').textContent.includes('verified')",
        Duration::from_secs(10),
    )
    .await?;
    client.close().await?;
    desktop.stop().await;
    server.stop().await
}
