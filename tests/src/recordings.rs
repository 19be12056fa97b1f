//! Harness of the audio path's tests: the Webex emulator and a server pointed at it, and waits on
//! what the adapter stored.

use std::time::Duration;

use anyhow::Context as _;
use capture_server::config::Config;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use webex_emulator::{Emulator, EmulatorConfig};

use crate::server::TestServer;

/// An emulator keeping its files in a temporary directory.
pub struct TestEmulator {
    /// The emulator.
    pub emulator: Emulator,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestEmulator {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emulator
    }
}

impl TestEmulator {
    /// Starts an emulator after `adjust` changed its configuration.
    pub async fn start(adjust: impl FnOnce(&mut EmulatorConfig)) -> anyhow::Result<TestEmulator> {
        let dir = tempfile::tempdir()?;
        let mut config = EmulatorConfig::in_dir(dir.path());
        adjust(&mut config);
        let emulator = Emulator::start(config).await?;
        Ok(TestEmulator {
            emulator,
            _dir: dir,
        })
    }

    /// Points `config` at this emulator with its compliance officer's access token.
    pub fn configure(&self, config: &mut Config) {
        config.webex.base_url = self.base_url().to_owned();
        config.webex.access_token = Some(self.credentials().access_token);
        config.webex.ca_file = Some(self.ca_file().to_owned());
        config.adapter.poll_interval_s = 3600;
        config.adapter.initial_lookback_s = 0;
    }

    /// SHA-256 (hex) of the audio the emulator serves for `id`.
    pub fn audio_sha256(&self, id: &str) -> Option<String> {
        self.audio(id)
            .map(|bytes| hex::encode(Sha256::digest(bytes)))
    }

    /// Waits until the server registered its webhooks here (a successful `POST /webhooks` for each
    /// of `count`).
    pub async fn wait_webhooks(&self, count: usize) -> anyhow::Result<()> {
        for _ in 0..400 {
            let registered = self
                .requests()
                .iter()
                .filter(|r| r.method == "POST" && r.path.ends_with("/webhooks") && r.status < 300)
                .count();
            if registered >= count {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("the server did not register {count} webhooks")
    }
}

/// A server on port 0 pointed at `emulator`, after `adjust`.
pub async fn server_for(
    emulator: &TestEmulator,
    adjust: impl FnOnce(&mut Config, std::net::SocketAddr),
) -> anyhow::Result<TestServer> {
    TestServer::start_at(|config, addr| {
        emulator.configure(config);
        adjust(config, addr);
    })
    .await
}

/// The adapter's job of `id` as the API shows it (`None`: unknown).
pub async fn job(server: &TestServer, id: &str) -> anyhow::Result<Option<Value>> {
    let response = server
        .client()?
        .get(format!("{}/api/v1/recordings/{id}", server.base_url()))
        .bearer_auth(server.api_token()?)
        .send()
        .await?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    Ok(Some(response.error_for_status()?.json().await?))
}

/// Waits until every one of `ids` is in `state` (`stored` or `parked`); returns their jobs.
pub async fn wait_jobs(
    server: &TestServer,
    ids: &[String],
    state: &str,
    within: Duration,
) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        loop {
            let current = job(server, id).await?;
            if let Some(current) = current.as_ref()
                && current["state"] == state
            {
                jobs.push(current.clone());
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "recording {id} not {state} in time: {current:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(jobs)
}

/// Counts of the adapter's jobs by state.
pub async fn counts(server: &TestServer) -> anyhow::Result<(i64, i64, i64)> {
    let status = server.api_get("/api/v1/adapter").await?;
    let count = |state: &str| status["recordings"][state].as_i64().context("count");
    Ok((count("pending")?, count("stored")?, count("parked")?))
}
