//! `capture-server demo`: the service wired to the built-in Webex emulator, with a handful of
//! virtual agents taking calls continuously, so a first look needs no Webex account.
//!
//! What runs: the emulator (HTTPS on a loopback port; its data in `<data_dir>/emulator`), the
//! service exactly as `run` starts it (its Webex settings pointed at the emulator with an
//! integration's refresh token, its webhooks registered there, polling every
//! [`DEMO_POLL_INTERVAL`]), [`DEMO_AGENTS`] virtual agents in the emulator's organisation, and for
//! the first [`DEMO_DESKTOPS`] of them a desktop agent in this process capturing a synthetic
//! office screen (the others show what an agent without a desktop looks like: a screen gap).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use capture_agent::agent::{Agent, Identity, SpoolSettings, Status};
use capture_agent::capture::synthetic::{SyntheticSource, Workload};
use capture_agent::clock::AgentClock;
use capture_agent::connection::Endpoint;
use tokio_util::sync::CancellationToken;
use webex_emulator::{CallTiming, ContactCenterTiming, Emulator, EmulatorConfig};

use crate::config::{Credentials, SecretSource, Settings, TlsSource, WebexSettings};
use crate::store::Store;

/// The demo's supervisor.
pub const DEMO_SUPERVISOR: &str = "supervisor";
/// Where its password is kept (inside the data directory).
pub const DEMO_SUPERVISOR_PASSWORD_FILE: &str = "demo-supervisor-password";
/// Virtual agents taking calls.
pub const DEMO_AGENTS: usize = 4;
/// Of which this many have a (synthetic) desktop.
pub const DEMO_DESKTOPS: usize = 2;
/// The demo polls more often than the default, so polling is seen working too.
pub const DEMO_POLL_INTERVAL: Duration = Duration::from_secs(15);
/// The demo's wrap-up time (shorter than the default, so contacts close quickly).
pub const DEMO_WRAP_UP_MS: i64 = 5_000;
/// Size of the synthetic desktops.
pub const DEMO_SCREEN: (u32, u32) = (1280, 720);
/// How soon a finished call's recordings appear in the emulator (Webex: minutes).
pub const DEMO_PUBLISH_DELAY: Duration = Duration::from_secs(5);

/// The demo's pace: short calls, arriving every few seconds, so that the first interactions
/// appear well within a minute.
pub fn demo_timing() -> ContactCenterTiming {
    ContactCenterTiming {
        call: CallTiming {
            ring: Duration::from_secs(3),
            phase: Duration::from_secs(5),
        },
        arrival: Duration::from_secs(6),
        wrap_up: Duration::from_secs(5),
    }
}

/// Runs the demo until `shutdown`.
pub async fn run(
    mut settings: Settings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if settings.webex.is_some() {
        anyhow::bail!(
            "webex credentials are configured: the demo runs against its own emulator; use `run`"
        );
    }
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let port = listener.local_addr()?.port();
    let tls_settings = settings.tls.clone();
    let tls = tokio::task::spawn_blocking(move || crate::tls::load(&tls_settings)).await??;
    let server_ca = tls.generated_ca.clone();

    let emulator = Emulator::start(EmulatorConfig {
        data_dir: settings.data_dir.join("emulator"),
        publish_delay: DEMO_PUBLISH_DELAY,
        ..EmulatorConfig::default()
    })
    .await
    .context("starting the webex emulator")?;
    if let Some(ca) = &server_ca {
        emulator.trust_ca(ca).context("trusting the server's CA")?;
    }
    let credentials = emulator.credentials();
    let public_host = match &settings.tls {
        TlsSource::Generated { names, .. } => names.first().cloned().unwrap_or("localhost".into()),
        TlsSource::Files { .. } => "localhost".into(),
    };
    settings.webex = Some(WebexSettings {
        base_url: emulator.base_url().to_owned(),
        credentials: Credentials::Refresh {
            client_id: credentials.client_id.clone(),
            client_secret: SecretSource::Value(credentials.client_secret.clone()),
            refresh_token: SecretSource::Value(credentials.refresh_token.clone()),
        },
        public_url: Some(format!("https://{public_host}:{port}")),
        ca_file: Some(emulator.ca_file().to_path_buf()),
    });
    settings.adapter.poll_interval = DEMO_POLL_INTERVAL;
    if settings.policy.wrap_up_ms.is_some() {
        settings.policy.wrap_up_ms = Some(DEMO_WRAP_UP_MS);
    }

    let store = Store::open(&settings.data_dir).await?;
    let mut persons = Vec::new();
    let mut desktops = Vec::new();
    let now = crate::clock::Clock::system().now_ms();
    let existing = store.agents().await?;
    for n in 0..DEMO_AGENTS {
        let name = ["Alice Martin", "Bruno Keller", "Chloé Dubois", "Dev Patel"][n % 4];
        let email = format!("agent{}@demo.capture.invalid", n + 1);
        let person = emulator.add_person(&email, name);
        persons.push(person.clone());
        let id = person.id.to_string();
        if existing
            .iter()
            .any(|a| a.person_id.map(|p| p.to_string()) == Some(id.clone()))
        {
            continue;
        }
        let agent =
            crate::api::new_agent(name, Some(&id), Some(&email)).map_err(anyhow::Error::msg)?;
        let (entry, credential) = store.add_agent(&agent, now).await?;
        if n < DEMO_DESKTOPS {
            desktops.push((entry.id, credential, name.to_owned()));
        }
    }
    // A supervisor to watch the calls with (the first administrator manages, but does not
    // replay); its password is kept in the data directory and printed below.
    let password_file = settings.data_dir.join(DEMO_SUPERVISOR_PASSWORD_FILE);
    let (password, _) = crate::files::load_or_generate_secret(&password_file)
        .with_context(|| format!("{}", password_file.display()))?;
    if store.user_for_login(DEMO_SUPERVISOR).await?.is_none() {
        let hash = crate::replay::auth::hash_password(&password).map_err(anyhow::Error::msg)?;
        store
            .add_user(DEMO_SUPERVISOR, &hash, "supervisor", "demo", now)
            .await?;
    }
    store.close().await;

    let cancel = CancellationToken::new();
    let server_cancel = cancel.clone();
    let server = tokio::spawn(crate::run(settings.clone(), listener, async move {
        shutdown.await;
        server_cancel.cancel();
    }));
    let server_url = format!("https://localhost:{port}");
    for (agent_id, credential, name) in desktops {
        let agent = Agent {
            endpoint: Endpoint::new(&server_url, server_ca.as_deref())?,
            identity: Identity {
                agent_id,
                credential,
                os_user: name.to_lowercase().replace(' ', "."),
                machine: "demo-desktop".into(),
            },
            source: Arc::new(SyntheticSource::new(Workload::Office, vec![DEMO_SCREEN])),
            clock: AgentClock::new(),
            status: Arc::new(Mutex::new(Status::default())),
            spool: SpoolSettings {
                dir: settings
                    .data_dir
                    .join("demo-spool")
                    .join(agent_id.to_string()),
                quota_bytes: capture_agent::spool::DEFAULT_QUOTA_BYTES,
            },
        };
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Err(error) = agent.run(cancel).await {
                tracing::warn!(%error, "demo desktop stopped");
            }
        });
    }
    // Let the service register its webhooks with the emulator before the first call rings.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let scenarios = emulator.spawn_contact_center(persons, demo_timing());
    println!(
        "capture demo: open https://localhost:{port}/ (CA {}) and log in as {DEMO_SUPERVISOR} \
         with the password in {}; API token in {}; webex emulator at {}; {DEMO_AGENTS} virtual \
         agents take calls",
        server_ca
            .as_deref()
            .map_or("configured".into(), |p| p.display().to_string()),
        password_file.display(),
        settings.data_dir.join(crate::api::API_TOKEN_FILE).display(),
        emulator.base_url(),
    );
    let served = server.await;
    drop(scenarios);
    cancel.cancel();
    emulator.shutdown().await;
    served??;
    Ok(())
}
