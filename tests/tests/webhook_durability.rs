//! A delivery answered 2xx is durable: the server is killed (SIGKILL) right after answering,
//! restarted on the same data directory, and the delivery is there and is processed exactly once.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::server::{https_client, spawn_test_server};
use capture_tests::webex::{CallScript, SECRET, post_signed};
use uuid::Uuid;

fn start(data_dir: &Path) -> (Child, u16) {
    spawn_test_server(env!("CARGO_BIN_EXE_test-server"), data_dir, &[]).expect("test-server")
}

async fn contacts(
    client: &reqwest::Client,
    port: u16,
    token: &str,
) -> anyhow::Result<serde_json::Value> {
    // The listener is up before the TLS files are read on a first start: retry briefly.
    for _ in 0..100 {
        if let Ok(response) = client
            .get(format!("https://localhost:{port}/api/v1/contacts"))
            .bearer_auth(token)
            .send()
            .await
        {
            return Ok(response.error_for_status()?.json().await?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("server on port {port} did not answer")
}

async fn wait_for_files(data_dir: &Path) {
    for _ in 0..200 {
        if data_dir.join("tls/ca.pem").exists() && data_dir.join("api-token").exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_answered_before_a_kill_is_processed_once_after_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let (mut first, port) = start(&data_dir);
    wait_for_files(&data_dir).await;
    let client = https_client(&data_dir.join("tls/ca.pem"))?;
    let token = std::fs::read_to_string(data_dir.join("api-token"))?
        .trim()
        .to_owned();
    contacts(&client, port, &token).await?;

    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(
        Uuid::from_u128(0xd0),
        99,
        Uuid::from_u128(0xd1),
        UtcMillis(now - 1_000),
    );
    let body = serde_json::to_vec(&call.envelope("alerting", UtcMillis(now - 1_000)))?;
    let response = post_signed(
        &client,
        &format!("https://localhost:{port}/webhooks/webex"),
        SECRET,
        &body,
    )
    .await?;
    assert_eq!(response.status(), 200);
    // Killed the moment the answer arrived: whatever was not committed is gone with it.
    first.kill()?;
    first.wait()?;

    let (mut second, port) = start(&data_dir);
    let mut found = serde_json::Value::Null;
    for _ in 0..100 {
        found = contacts(&client, port, &token).await?;
        if found["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = found["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{found:#}");
    // Redelivering after the restart is still a duplicate, and nothing is applied twice.
    let again = post_signed(
        &client,
        &format!("https://localhost:{port}/webhooks/webex"),
        SECRET,
        &body,
    )
    .await?;
    assert_eq!(
        again.json::<serde_json::Value>().await?["status"],
        "duplicate"
    );
    let id = items[0]["id"].as_str().expect("id");
    let detail: serde_json::Value = client
        .get(format!("https://localhost:{port}/api/v1/contacts/{id}"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        detail["events"].as_array().expect("events").len(),
        1,
        "{detail:#}"
    );
    second.kill()?;
    second.wait()?;
    Ok(())
}
