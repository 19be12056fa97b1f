//! The recorder's disk fills up mid-call (the call buffer on a 16 MiB tmpfs, filled by another
//! file), then space returns. While it is full nothing more is acknowledged — the agent keeps its
//! frames in its spool — and a new contact is refused with a named gap and a metric; once the
//! filler is gone the waiting frames are written by themselves, the contact's file has every
//! frame its agent captured, and new contacts are recorded again.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use capture_shared::time::UtcMicros;
use capture_tests::buffer::{closed_records, video_sequences};
use capture_tests::desktop::SyntheticDesktop;
use capture_tests::process::wait_until;
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, SECRET, post_signed};
use uuid::Uuid;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "mounting a tmpfs at {} (the test needs root): {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(Tmpfs(path.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the disk refuses more.
fn fill(path: &Path) -> anyhow::Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(error) if error.raw_os_error() == Some(28) => break, // ENOSPC
            Err(error) => return Err(error.into()),
        }
    }
    Ok(written)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_nothing_refuses_new_contacts_and_recovers_by_itself()
-> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let buffer = data_dir.path().join(capture_server::recorder::BUFFER_DIR);
    let _tmpfs = Tmpfs::mount(&buffer, "16m")?;
    let server = TestServer::start_in(data_dir, |config, _| {
        config.integration.wrap_up_s = 1;
        config.recorder.min_free_mb = 2;
        // The closed file stays in the buffer for the test to read.
        config.ingestion.wait_for_audio_s = 3600;
    })
    .await?;
    let (first, first_person) = server.enroll_desktop("pc-full-1").await?;
    let (second, second_person) = server.enroll_desktop("pc-full-2").await?;
    let first_id = first.agent_id.to_string();
    let second_id = second.agent_id.to_string();
    let ca = server.ca_file();
    let first_desktop =
        SyntheticDesktop::start(&server.base_url(), &ca, first, "pc-full-1").await?;
    let _second_desktop =
        SyntheticDesktop::start(&server.base_url(), &ca, second, "pc-full-2").await?;

    let client = server.client()?;
    let url = format!("{}/webhooks/webex", server.base_url());
    let post = async |call: &mut CallScript, state: &str| -> anyhow::Result<()> {
        let at = UtcMicros::now().to_millis();
        let body = serde_json::to_vec(&call.envelope(state, at))?;
        post_signed(&client, &url, SECRET, &body)
            .await?
            .error_for_status()?;
        Ok(())
    };
    let recording = async |agent: &str| -> anyhow::Result<Option<(String, u64)>> {
        let agents = server.api_get("/api/v1/agents").await?;
        let entry = agents["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["id"].as_str() == Some(agent))
            .cloned()
            .unwrap_or_default();
        let recording = &entry["recording"][0];
        Ok(recording["contact"].as_str().map(|contact| {
            let frames = recording["streams"][0]["frames"].as_u64().unwrap_or(0);
            (contact.to_owned(), frames)
        }))
    };

    // A call recording on the first desktop.
    let mut call = CallScript::new(
        first_person,
        1,
        Uuid::new_v4(),
        UtcMicros::now().to_millis(),
    );
    post(&mut call, "alerting").await?;
    post(&mut call, "connected").await?;
    let (contact, _) = wait_until(
        "frames on the server",
        Duration::from_secs(30),
        async || {
            Ok(recording(&first_id)
                .await?
                .filter(|(_, frames)| *frames >= 4))
        },
    )
    .await?;

    // The disk fills up: writes fail, nothing more is acknowledged, the agent spools.
    let filler = buffer.join("filler");
    fill(&filler)?;
    wait_until(
        "the disk reported full",
        Duration::from_secs(20),
        async || {
            let text = server.metrics().await?;
            Ok((metric(&text, "capture_recorder_buffer_disk_full") == Some(1.0)).then_some(()))
        },
    )
    .await?;
    let held = wait_until(
        "frames waiting in the agent's spool",
        Duration::from_secs(20),
        async || {
            let status = first_desktop.status();
            Ok((status.unacked >= 5).then_some(status.unacked))
        },
    )
    .await?;

    // A new contact meanwhile is refused, its gap named, and counted.
    let mut refused = CallScript::new(
        second_person,
        1,
        Uuid::new_v4(),
        UtcMicros::now().to_millis(),
    );
    post(&mut refused, "alerting").await?;
    post(&mut refused, "connected").await?;
    let gap = wait_until(
        "the refused contact's gap",
        Duration::from_secs(20),
        async || {
            let contacts = server.api_get("/api/v1/contacts").await?;
            let Some(id) = contacts["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["id"].as_str() != Some(contact.as_str()))
                .find_map(|c| c["id"].as_str().map(str::to_owned))
            else {
                return Ok(None);
            };
            let detail = server.api_get(&format!("/api/v1/contacts/{id}")).await?;
            Ok(detail["gaps"][0]["reason"].as_str().map(str::to_owned))
        },
    )
    .await?;
    assert_eq!(gap, capture_server::recorder::GAP_DISK_FULL);
    assert_eq!(recording(&second_id).await?, None, "nothing recorded");
    let text = server.metrics().await?;
    assert!(
        metric(&text, "capture_recorder_contacts_refused_total").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    post(&mut refused, "disconnected").await?;

    // Space returns: the waiting frames are written by themselves.
    std::fs::remove_file(&filler)?;
    wait_until(
        "the disk healthy again",
        Duration::from_secs(20),
        async || {
            let text = server.metrics().await?;
            Ok((metric(&text, "capture_recorder_buffer_disk_full") == Some(0.0)).then_some(()))
        },
    )
    .await?;
    post(&mut call, "disconnected").await?;
    let path = buffer.join(format!("{contact}.scn"));
    let records = closed_records(&path).await?;
    let status = first_desktop.all_acknowledged().await?;
    let sequences = video_sequences(&records);
    assert!(
        sequences.len() > held,
        "{} frames in the file",
        sequences.len()
    );
    assert_eq!(
        sequences,
        (0..status.frames_sent).collect::<Vec<_>>(),
        "every frame the agent captured, once, in order"
    );

    // New contacts are recorded again.
    let mut next = CallScript::new(
        second_person,
        2,
        Uuid::new_v4(),
        UtcMicros::now().to_millis(),
    );
    post(&mut next, "alerting").await?;
    post(&mut next, "connected").await?;
    wait_until(
        "a new contact's frames on the server",
        Duration::from_secs(30),
        async || {
            Ok(recording(&second_id)
                .await?
                .filter(|(_, frames)| *frames >= 3))
        },
    )
    .await?;
    server.stop().await
}
