//! A desktop whose user has not allowed screen recording (macOS's Screen Recording permission,
//! which no MDM can grant): the agent still connects and tells the recorder (its backend says
//! "not permitted"), its tray state is an error with the reason, and each contact it is asked to
//! record is refused with that reason, which the contact's timeline names as its gap. Shown with
//! a screen source that refuses the way the macOS one does (macOS itself is not compiled here).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capture_agent::agent::{Agent, Identity, Status};
use capture_agent::capture::{CaptureError, MonitorCapture, PointerSource, ScreenSource};
use capture_agent::clock::AgentClock;
use capture_agent::connection::Endpoint;
use capture_agent::local::{AgentState, StatusReport};
use capture_shared::ids::MonitorId;
use capture_shared::protocol::MonitorInfo;
use capture_shared::time::{UtcMicros, UtcMillis};
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, post_call_state};
use tokio_util::sync::CancellationToken;

const WHY: &str = "Capture Agent may not record the screen: allow it in System Settings";

#[derive(Debug)]
struct NotAllowed;

struct NoPointer;

impl PointerSource for NoPointer {
    fn position(&mut self) -> Option<(i32, i32)> {
        None
    }
}

impl ScreenSource for NotAllowed {
    fn monitors(&self) -> Result<Vec<MonitorInfo>, CaptureError> {
        Err(CaptureError::NotPermitted(WHY.into()))
    }
    fn open(&self, _monitor: MonitorId) -> Result<Box<dyn MonitorCapture>, CaptureError> {
        Err(CaptureError::NotPermitted(WHY.into()))
    }
    fn pointer(&self) -> Box<dyn PointerSource> {
        Box::new(NoPointer)
    }
    fn backend(&self) -> String {
        "quartz".into()
    }
}

async fn wait_for(
    server: &TestServer,
    path: &str,
    mut done: impl FnMut(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let value = server.api_get(path).await?;
        if done(&value) {
            return Ok(value);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out on {path}: {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_without_the_screen_permission_says_so_and_each_contact_names_the_gap()
-> anyhow::Result<()> {
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let (enrolled, person) = server.enroll_desktop("mac-7").await?;
    let status = Arc::new(Mutex::new(Status::default()));
    let agent = Agent {
        endpoint: Endpoint::new(&server.base_url(), Some(&server.ca_file()))?,
        identity: Identity {
            agent_id: enrolled.agent_id,
            credential: enrolled.credential,
            os_user: "agent".into(),
            machine: "mac-7".into(),
        },
        source: Arc::new(NotAllowed),
        clock: AgentClock::new(),
        status: status.clone(),
        spool: capture_agent::agent::SpoolSettings {
            dir: server.data_dir.path().join("agent-spool"),
            quota_bytes: capture_agent::spool::DEFAULT_QUOTA_BYTES,
        },
    };
    let cancel = CancellationToken::new();
    let running = tokio::spawn(agent.run(cancel.clone()));

    // Connected, and the recorder knows why it will get no screen.
    let agents = wait_for(&server, "/api/v1/agents", |a| {
        a["items"][0]["connected"] == true
    })
    .await?;
    assert_eq!(
        agents["items"][0]["connection"]["capture_backend"],
        "quartz (screen recording not permitted)"
    );
    let report = StatusReport::of(
        &status.lock().map(|s| s.clone()).unwrap_or_default(),
        &server.base_url(),
        Some(enrolled.agent_id),
        None,
    );
    assert_eq!(report.state, AgentState::Error, "the tray shows it");
    assert_eq!(report.last_error.as_deref(), Some(WHY));

    // A call: the contact is refused with the reason, and its timeline says so.
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(person, 1, uuid::Uuid::new_v4(), UtcMillis(now));
    post_call_state(&server, &mut call, "alerting", now).await?;
    let contacts = wait_for(&server, "/api/v1/contacts", |c| {
        c["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await?;
    let contact = contacts["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let detail = wait_for(&server, &format!("/api/v1/contacts/{contact}"), |d| {
        d["gaps"].as_array().is_some_and(|g| !g.is_empty())
    })
    .await?;
    assert_eq!(
        detail["gaps"][0]["reason"],
        format!("screen not captured: {WHY}"),
        "{detail}"
    );

    cancel.cancel();
    running.await??;
    server.stop().await
}
