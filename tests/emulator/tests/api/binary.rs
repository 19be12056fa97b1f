//! The `webex-emulator` binary.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::http::StatusCode;

use crate::common::client;

/// Kills the child when the test ends, passed or not.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_ready_and_serves() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_webex-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            "fixed-token",
            "--data",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let _reap = Reap(child);
    let reader = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = match tokio::time::timeout(Duration::from_secs(30), reader).await {
        Ok(line) => line??,
        Err(_) => bail!("no READY line within 30 s"),
    };
    let line = line.trim_end().to_owned();
    let Some(rest) = line.strip_prefix("READY ") else {
        bail!("unexpected first line {line:?}");
    };
    let (base_url, ca) = rest.split_once(" CA=").context("no CA")?;
    assert!(
        base_url.starts_with("https://localhost:") && base_url.ends_with("/v1"),
        "{base_url}"
    );
    let credentials: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("credentials.json"))?)?;
    assert_eq!(credentials["access_token"], "fixed-token");
    assert!(credentials["refresh_token"].is_string() && credentials["client_secret"].is_string());
    let response = client(std::path::Path::new(ca))?
        .get(format!("{base_url}/admin/convergedRecordings"))
        .bearer_auth("fixed-token")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}
