//! A desktop agent in the test process: the real `capture-agent` library capturing a synthetic
//! office screen, for end-to-end tests that need real H.264 without a display.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capture_agent::agent::{Agent, Identity, SpoolSettings, Status};
use capture_agent::capture::synthetic::{SyntheticSource, Workload};
use capture_agent::clock::AgentClock;
use capture_agent::connection::Endpoint;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running desktop; dropping it stops the agent.
pub struct SyntheticDesktop {
    cancel: CancellationToken,
    running: Option<JoinHandle<()>>,
    status: Arc<Mutex<Status>>,
    /// The agent's spool directory.
    _spool: tempfile::TempDir,
}

impl SyntheticDesktop {
    /// Starts the enrolled agent against `server` (trusting `ca`) on one 640×360 synthetic
    /// monitor and waits (up to 5 s) until it is connected.
    pub async fn start(
        server: &str,
        ca: &Path,
        enrolled: capture_agent::enroll::Enrolled,
        machine: &str,
    ) -> anyhow::Result<SyntheticDesktop> {
        Self::start_with_monitors(server, ca, enrolled, machine, vec![(640, 360)]).await
    }

    /// [`start`](Self::start) on synthetic monitors of the given sizes.
    pub async fn start_with_monitors(
        server: &str,
        ca: &Path,
        enrolled: capture_agent::enroll::Enrolled,
        machine: &str,
        monitors: Vec<(u32, u32)>,
    ) -> anyhow::Result<SyntheticDesktop> {
        let spool = tempfile::tempdir()?;
        let agent = Agent {
            endpoint: Endpoint::new(server, Some(ca))?,
            identity: Identity {
                agent_id: enrolled.agent_id,
                credential: enrolled.credential,
                os_user: "agent".into(),
                machine: machine.into(),
            },
            source: Arc::new(SyntheticSource::new(Workload::Office, monitors)),
            clock: AgentClock::new(),
            status: Arc::new(Mutex::new(Status::default())),
            spool: SpoolSettings {
                dir: spool.path().to_owned(),
                quota_bytes: capture_agent::spool::DEFAULT_QUOTA_BYTES,
            },
        };
        let status = agent.status.clone();
        let cancel = CancellationToken::new();
        let run = agent.run(cancel.clone());
        let running = tokio::spawn(async move {
            if let Err(error) = run.await {
                eprintln!("synthetic desktop stopped: {error}");
            }
        });
        for _ in 0..200 {
            if status.lock().map(|s| s.connected).unwrap_or(false) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(SyntheticDesktop {
            cancel,
            running: Some(running),
            status,
            _spool: spool,
        })
    }

    /// What the agent reports of itself (frames sent, waiting for acks, ...).
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The status once the server has acknowledged every frame (the last acks may still be on
    /// their way when a contact's file closes), waiting up to 10 s.
    pub async fn all_acknowledged(&self) -> anyhow::Result<Status> {
        crate::process::wait_until(
            "every frame acknowledged",
            Duration::from_secs(10),
            async || {
                let status = self.status();
                Ok((status.unacked == 0).then_some(status))
            },
        )
        .await
    }

    /// Stops the agent and waits for it; returns its last status.
    pub async fn stop(mut self) -> Status {
        self.cancel.cancel();
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
        self.status()
    }
}

/// The `capture-agent` binary (debug), built first (a no-op when up to date) into the
/// workspace's `target_dir`.
pub fn agent_binary(target_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    crate::cargo::build(
        target_dir,
        &["-p", "capture-agent", "--bin", "capture-agent"],
    )?;
    Ok(target_dir.join("debug").join("capture-agent"))
}
