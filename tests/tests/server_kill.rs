//! The server killed (SIGKILL) mid-contact while three agents stream, one of them with two
//! monitors. Restarted on the same data directory and port, it reopens every SCN file at its last
//! complete record and takes its contacts, timers and commands back from the database (the calls
//! ended just before the kill, their wrap-up timers pending); the agents reconnect and send what
//! was not acknowledged together with what they captured meanwhile. Every file closes with every
//! frame its agent captured, once and in order per monitor, and every interaction is stitched
//! into a file ffprobe accepts.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use capture_agent::enroll::{EnrollRequest, enroll};
use capture_shared::ids::AgentId;
use capture_shared::scn::Record;
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::buffer::closed_records;
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::media::codecs;
use capture_tests::process::wait_until;
use capture_tests::server::{https_client, spawn_test_server_on};
use capture_tests::webex::{CallScript, SECRET, post_signed};
use uuid::Uuid;

const SETTINGS: &[(&str, &str)] = &[
    ("CAPTURE_INTEGRATION__WRAP_UP_S", "1"),
    // No Webex recordings in this test: each interaction is stitched with silent audio, late
    // enough for the test to read the closed SCN files first.
    ("CAPTURE_INGESTION__WAIT_FOR_AUDIO_S", "20"),
    ("CAPTURE_INGESTION__SETTLE_S", "0"),
];

/// Kills the child on drop, so that a failing test leaves no server behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &Path, port: Option<u16>) -> anyhow::Result<(Server, u16)> {
    let (child, port) =
        spawn_test_server_on(env!("CARGO_BIN_EXE_test-server"), data_dir, port, SETTINGS)?;
    Ok((Server(child), port))
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// `/api/v1/agents`' entry of `agent`.
    async fn agent(&self, agent: &AgentId) -> anyhow::Result<serde_json::Value> {
        let agents = self.get("/api/v1/agents").await?;
        let id = agent.to_string();
        Ok(agents["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["id"].as_str() == Some(&id))
            .cloned()
            .unwrap_or_default())
    }
}

fn video(records: &[Record]) -> Vec<(u16, u64)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Video {
                monitor, sequence, ..
            } => Some((monitor.0, *sequence)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_frame_of_three_streaming_agents() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let (first, port) = start(&data_dir, None)?;
    let ca = data_dir.join("tls").join(capture_server::tls::GENERATED_CA);
    wait_until("the server's files", Duration::from_secs(20), async || {
        Ok((ca.exists() && data_dir.join("enrolment-token").exists()).then_some(()))
    })
    .await?;
    let base = format!("https://localhost:{port}");
    let api = Api {
        client: https_client(&ca)?,
        base: base.clone(),
        token: std::fs::read_to_string(data_dir.join(capture_server::api::API_TOKEN_FILE))?
            .trim()
            .to_owned(),
    };
    wait_until(
        "the server to answer",
        Duration::from_secs(20),
        async || Ok(api.get("/api/v1/agents").await.ok().map(|_| ())),
    )
    .await?;

    // Three enrolled desktops, each mapped to its Webex person; the second has two monitors.
    let enrolment = std::fs::read_to_string(data_dir.join("enrolment-token"))?;
    let mut desktops = Vec::new();
    for (n, monitors) in [
        vec![(640, 360)],
        vec![(640, 360), (480, 270)],
        vec![(640, 360)],
    ]
    .into_iter()
    .enumerate()
    {
        let machine = format!("pc-{n}");
        let enrolled = enroll(
            &base,
            Some(&ca),
            &EnrollRequest {
                token: enrolment.trim(),
                machine: &machine,
                os_user: "agent",
                email: None,
            },
        )
        .await?;
        let person = Uuid::new_v4();
        api.client
            .patch(format!("{base}/api/v1/agents/{}", enrolled.agent_id))
            .bearer_auth(&api.token)
            .json(&serde_json::json!({ "person_id": person.to_string() }))
            .send()
            .await?
            .error_for_status()?;
        let agent_id = enrolled.agent_id;
        let count = monitors.len();
        let desktop =
            SyntheticDesktop::start_with_monitors(&base, &ca, enrolled, &machine, monitors).await?;
        desktops.push((agent_id, person, count, desktop));
    }

    // A call each, answered: every monitor streams.
    let client = api.client.clone();
    let url = format!("{base}/webhooks/webex");
    let now = UtcMicros::now().to_millis().0;
    let mut calls = Vec::new();
    for (_, person, _, _) in &desktops {
        let mut call = CallScript::new(*person, 1, Uuid::new_v4(), UtcMillis(now));
        for (state, at) in [("alerting", now), ("connected", now + 500)] {
            let body = serde_json::to_vec(&call.envelope(state, UtcMillis(at)))?;
            post_signed(&client, &url, SECRET, &body)
                .await?
                .error_for_status()?;
        }
        calls.push(call);
    }
    let mut contacts = Vec::new();
    for (enrolled, _, monitors, _) in &desktops {
        let contact = wait_until(
            "every monitor's frames on the server",
            Duration::from_secs(30),
            async || {
                let agent = api.agent(enrolled).await?;
                let recording = &agent["recording"][0];
                let streams = recording["streams"].as_array().cloned().unwrap_or_default();
                Ok((streams.len() == *monitors
                    && streams
                        .iter()
                        .all(|s| s["frames"].as_u64().unwrap_or(0) >= 4))
                .then(|| recording["contact"].as_str().map(str::to_owned))
                .flatten())
            },
        )
        .await?;
        contacts.push(contact);
    }

    // Calls long enough to be kept as screens (`ingestion.min_screen_s`, 5 s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The calls end; killed before their wrap-up timers fire (the agents keep capturing into
    // their spools while it is down): the timers come back from the database.
    let ended = UtcMicros::now().to_millis().0;
    for call in &mut calls {
        let body = serde_json::to_vec(&call.envelope("disconnected", UtcMillis(ended)))?;
        post_signed(&client, &url, SECRET, &body)
            .await?
            .error_for_status()?;
    }
    drop(first);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_second, _) = start(&data_dir, Some(port))?;
    for (enrolled, _, _, _) in &desktops {
        wait_until(
            "the agent to reconnect",
            Duration::from_secs(20),
            async || {
                let agent = api.agent(enrolled).await?;
                Ok((agent["connected"] == true).then_some(()))
            },
        )
        .await?;
    }

    for ((_, _, monitors, desktop), contact) in desktops.iter().zip(&contacts) {
        let path = data_dir.join("buffer").join(format!("{contact}.scn"));
        let records = closed_records(&path).await?;
        let status = desktop.all_acknowledged().await?;
        let frames = video(&records);
        assert_eq!(
            frames.len() as u64,
            status.frames_sent,
            "every frame the agent captured is in the file once"
        );
        for monitor in 0..*monitors as u16 {
            let sequences: Vec<u64> = frames
                .iter()
                .filter(|(m, _)| *m == monitor)
                .map(|(_, s)| *s)
                .collect();
            assert!(sequences.len() > 8, "monitor {monitor}: {sequences:?}");
            assert_eq!(
                sequences,
                (0..sequences.len() as u64).collect::<Vec<_>>(),
                "monitor {monitor}'s frames in order, none missing, none twice"
            );
        }
        assert!(
            !records.iter().any(|r| matches!(r, Record::Gap { .. })),
            "nothing was lost, so no gap: {:?}",
            records
                .iter()
                .filter(|r| matches!(r, Record::Gap { .. }))
                .collect::<Vec<_>>()
        );
    }

    // Each interaction is stitched with one video track per monitor.
    let archived = wait_until(
        "three interactions archived",
        Duration::from_secs(90),
        async || {
            let list = api.get("/api/v1/interactions?limit=100").await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            if let Some(failed) = items.iter().find(|i| i["state"] == "failed") {
                anyhow::bail!("an interaction failed: {failed}");
            }
            Ok(
                (items.len() == 3 && items.iter().all(|i| i["state"] == "archived"))
                    .then_some(items),
            )
        },
    )
    .await?;
    let mut tracks: Vec<usize> = Vec::new();
    for interaction in &archived {
        let key = interaction["archive_key"].as_str().unwrap_or_default();
        let codecs = codecs(&data_dir.join("archive").join(key))?;
        tracks.push(codecs.iter().filter(|c| *c == "h264").count());
    }
    tracks.sort_unstable();
    assert_eq!(
        tracks,
        vec![1, 1, 2],
        "video tracks per interaction: {archived:#?}"
    );
    drop(desktops);
    Ok(())
}
