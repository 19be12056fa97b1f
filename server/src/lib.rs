//! Capture's server.
//!
//! [`run`] serves HTTPS on a listener until a shutdown future completes; `main.rs` adds the command
//! line, the configuration and the signals. Modules, named after the seed's parts:
//!
//! - [`config`]: layered configuration, validated once into [`config::Settings`];
//! - [`integration`]: Webex call and agent events → per-agent state machine → recording commands;
//! - [`adapter`]: Webex's recordings (poll, webhook fast path, backfills) → stored audio and
//!   interactions;
//! - [`ingestion`]: screen + audio of an interaction → one stitched file in the archive;
//! - [`webex`]: Webex's wire formats (webhook envelope and signature, payloads, timestamps);
//! - [`recorder`]: the agents' websocket (`/agent/v1`): handshake, commands down, clock pings;
//! - [`store`]: the metadata database (the only module with SQL);
//! - [`api`]: the JSON API under `/api/v1`;
//! - [`http`]: the router (`/healthz`, `/metrics`, webhooks, API);
//! - [`tls`]: the served certificate, generated on first start unless configured;
//! - [`metrics`], [`clock`], [`files`]: cross-cutting helpers.

pub mod adapter;
pub mod api;
pub mod clock;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod files;
pub mod http;
pub mod ingestion;
pub mod integration;
pub mod media;
pub mod metrics;
pub mod recorder;
pub mod replay;
pub mod store;
pub mod tls;
pub mod webex;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_server::tls_rustls::RustlsConfig;
use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{SecretSource, Settings};
use crate::integration::processor::Processor;
use crate::integration::receiver::Receiver;
use crate::store::Store;

/// Extra time past the grace period before [`run`] stops waiting for connections and tasks.
pub const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// How often the database's write-ahead log is copied into the database file.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file in the data directory could not be created or read.
    #[error("{path}: {source}")]
    DataDir {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS certificate could not be loaded or generated.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

/// What [`run_with`] takes besides the settings: the parts tests replace.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The clock.
    pub clock: Clock,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            clock: Clock::system(),
        }
    }
}

/// Serves until `shutdown` completes, then lets open requests finish within the configured grace
/// period and returns. Tests pass a listener bound to port 0.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_with(settings, listener, shutdown, Parts::default()).await
}

fn data_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::DataDir {
        path: path.to_owned(),
        source,
    }
}

/// Reads or generates the webhook secret.
fn webhook_secret(source: &SecretSource) -> Result<String, ServerError> {
    match source {
        SecretSource::Value(secret) => Ok(secret.clone()),
        SecretSource::File(path) => files::read_secret(path).map_err(data_error(path)),
        SecretSource::Generated(path) => {
            let (secret, generated) =
                files::load_or_generate_secret(path).map_err(data_error(path))?;
            if generated {
                tracing::info!(file = %path.display(), "generated the Webex webhook secret");
            }
            Ok(secret)
        }
    }
}

fn read_source(source: &SecretSource) -> Result<String, ServerError> {
    match source {
        SecretSource::Value(value) => Ok(value.clone()),
        SecretSource::File(path) | SecretSource::Generated(path) => {
            files::read_secret(path).map_err(data_error(path))
        }
    }
}

/// The Webex client of `webex`'s settings, with its token source (tokens Capture refreshes are
/// kept in `data_dir`).
pub fn webex_client(
    webex: &config::WebexSettings,
    data_dir: &std::path::Path,
) -> Result<webex::client::WebexClient, ServerError> {
    use crate::config::Credentials;
    use crate::webex::auth::{TokenSource, Tokens};
    let source = match &webex.credentials {
        Credentials::Static(token) => TokenSource::Fixed(read_source(token)?),
        Credentials::Refresh {
            client_id,
            client_secret,
            refresh_token,
        } => TokenSource::Refresh {
            client_id: client_id.clone(),
            client_secret: read_source(client_secret)?,
            refresh_token: read_source(refresh_token)?,
        },
        Credentials::ServiceApp {
            app_id,
            client_id,
            client_secret,
            org_id,
            admin_token,
        } => TokenSource::ServiceApp {
            app_id: app_id.clone(),
            client_id: client_id.clone(),
            client_secret: read_source(client_secret)?,
            org_id: org_id.clone(),
            admin_token: read_source(admin_token)?,
        },
    };
    webex::client::WebexClient::new(
        &webex.base_url,
        Tokens::new(source, data_dir),
        webex.ca_file.as_deref(),
    )
    .map_err(|e| ServerError::Serve(std::io::Error::other(e.to_string())))
}

/// The adapter of `settings`, when Webex credentials are configured.
pub fn adapter(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
    wake: Arc<Notify>,
    poll_now: Arc<Notify>,
    metrics: Arc<metrics::Metrics>,
) -> Result<Option<adapter::Adapter>, ServerError> {
    let Some(webex) = &settings.webex else {
        return Ok(None);
    };
    Ok(Some(adapter::Adapter {
        client: webex_client(webex, &settings.data_dir)?,
        store: store.clone(),
        data_dir: settings.data_dir.clone(),
        settings: settings.adapter.clone(),
        clock: clock.clone(),
        wake,
        poll_now,
        owner: adapter::Adapter::new_owner(),
        metrics,
    }))
}

/// Starts what needs the Webex API, when credentials are configured: the recording adapter,
/// webhook registration (with a public URL) and email → person resolution of the agent
/// directory.
fn spawn_webex_tasks(
    settings: &Settings,
    secret: &str,
    adapter: Option<adapter::Adapter>,
    directory_changed: &Arc<Notify>,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<(), ServerError> {
    let Some(adapter) = adapter else {
        tracing::info!(
            "no webex credentials configured: register the webhooks by hand; recordings are not fetched"
        );
        return Ok(());
    };
    let client = adapter.client.clone();
    let store = adapter.store.clone();
    tasks.spawn(adapter.clone().poll_loop(cancel.clone()));
    tasks.spawn(adapter.work_loop(cancel.clone()));
    tasks.spawn(integration::setup::resolve_emails_loop(
        client.clone(),
        store,
        directory_changed.clone(),
        cancel.clone(),
    ));
    let Some(public_url) = settings.webex.as_ref().and_then(|w| w.public_url.as_ref()) else {
        tracing::warn!("webex.public_url is not set: Capture cannot register its webhooks itself");
        return Ok(());
    };
    tasks.spawn(integration::setup::run(
        client,
        format!("{public_url}/webhooks/webex"),
        secret.to_owned(),
        settings.agent_state_source.clone(),
        cancel.clone(),
    ));
    Ok(())
}

/// Creates the first administrator when no user exists: with the configured password, else a
/// generated one printed once in the log (the only place it appears).
async fn ensure_first_admin(
    store: &Store,
    replay: &config::ReplaySettings,
    clock: &clock::Clock,
) -> Result<(), ServerError> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match &replay.admin_password {
        Some(source) => (read_source(source)?, false),
        None => (replay::auth::random_token()[..24].to_owned(), true),
    };
    replay::auth::check_new_password(&password).map_err(|reason| {
        ServerError::Serve(std::io::Error::other(format!(
            "replay.admin_password: {reason}"
        )))
    })?;
    let hash = tokio::task::spawn_blocking(move || {
        replay::auth::hash_password(&password).map(|h| (h, password))
    })
    .await
    .map_err(|e| ServerError::Serve(std::io::Error::other(e)))?
    .map_err(|e| ServerError::Serve(std::io::Error::other(e)))?;
    store
        .add_user(
            &replay.admin_user,
            &hash.0,
            "admin",
            "setup",
            clock.now_ms(),
        )
        .await?;
    if generated {
        tracing::warn!(
            user = %replay.admin_user,
            password = %hash.1,
            "created the first administrator; this password is shown once: log in and change it"
        );
    } else {
        tracing::info!(user = %replay.admin_user, "created the first administrator");
    }
    Ok(())
}

/// [`run`] with replaceable parts.
pub async fn run_with(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    parts: Parts,
) -> Result<(), ServerError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(data_error(&settings.data_dir))?;
    let tls_settings = settings.tls.clone();
    let tls = tokio::task::spawn_blocking(move || tls::load(&tls_settings))
        .await
        .map_err(|e| ServerError::Serve(std::io::Error::other(e)))??;
    let store = Store::open(&settings.data_dir).await?;
    let secret = webhook_secret(&settings.webhook_secret)?;
    let token_path = settings.data_dir.join(api::API_TOKEN_FILE);
    let (token, generated) =
        files::load_or_generate_secret(&token_path).map_err(data_error(&token_path))?;
    if generated {
        tracing::info!(file = %token_path.display(), "generated the administrator's API token");
    }
    let enrolment_path = settings.data_dir.join(api::ENROLMENT_TOKEN_FILE);
    let (enrolment, generated) =
        files::load_or_generate_secret(&enrolment_path).map_err(data_error(&enrolment_path))?;
    if generated {
        tracing::info!(file = %enrolment_path.display(), "generated the agents' enrolment token");
    }
    store
        .register_default_enrolment_token(
            &Sha256::digest(enrolment.trim().as_bytes()).into(),
            parts.clock.now_ms(),
        )
        .await?;

    ensure_first_admin(&store, &settings.replay, &parts.clock).await?;

    let metrics = Arc::new(metrics::Metrics::new());
    let connections = Arc::new(recorder::Connections::default());
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let wake = Arc::new(Notify::new());
    let buffer = Arc::new(recorder::CallBuffer::new(
        settings.data_dir.clone(),
        store.clone(),
        parts.clock.clone(),
        connections.clone(),
        settings.offline_wait,
        settings.min_free_bytes,
    )?);
    buffer.set_metrics(metrics.clone());
    let reopened = buffer.recover().await?;
    if reopened > 0 {
        tracing::info!(
            files = reopened,
            "reopened the call buffer's open scn files"
        );
    }
    let link = Arc::new(recorder::RecorderLink {
        connections: connections.clone(),
        buffer: buffer.clone(),
    });
    let recordings_wake = Arc::new(Notify::new());
    let processor = Processor {
        store: store.clone(),
        clock: parts.clock.clone(),
        policy: settings.policy,
        link,
        wake: wake.clone(),
        recordings_wake: recordings_wake.clone(),
    };
    tasks.spawn(processor.clone().run(cancel.clone()));
    tasks.spawn(
        store
            .clone()
            .checkpoint_loop(CHECKPOINT_INTERVAL, cancel.clone()),
    );
    let archive =
        ingestion::archive::Archive::local(&settings.ingestion.archive_dir).map_err(|e| {
            ServerError::DataDir {
                path: settings.ingestion.archive_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
    tasks.spawn(
        ingestion::Ingestion {
            store: store.clone(),
            data_dir: settings.data_dir.clone(),
            archive: archive.clone(),
            settings: settings.ingestion.clone(),
            clock: parts.clock.clone(),
            wake: Arc::new(Notify::new()),
            metrics: Some(metrics.clone()),
            late_failures: std::sync::Arc::default(),
        }
        .run(cancel.clone()),
    );
    let directory_changed = Arc::new(Notify::new());
    let backfill_requested = Arc::new(Notify::new());
    let adapter = adapter(
        &settings,
        &store,
        &parts.clock,
        recordings_wake.clone(),
        backfill_requested.clone(),
        metrics.clone(),
    )?;
    let adapter_configured = adapter.is_some();
    spawn_webex_tasks(
        &settings,
        &secret,
        adapter,
        &directory_changed,
        &tasks,
        &cancel,
    )?;
    let receiver = Receiver::spawn(
        processor,
        Arc::from(secret.into_bytes()),
        parts.clock.clone(),
        metrics.clone(),
        &tasks,
        cancel.clone(),
    );
    let api = api::ApiState {
        enrolment_throttle: Arc::default(),
        store: store.clone(),
        token_sha256: Arc::new(Sha256::digest(token.as_bytes()).into()),
        clock: parts.clock.clone(),
        directory_changed,
        connections: connections.clone(),
        buffer: buffer.clone(),
        adapter_configured,
        recordings_wake,
        backfill_requested,
        archive,
        data_dir: settings.data_dir.clone(),
        media: replay::media::state(),
    };
    let sessions_shutdown = CancellationToken::new();
    let stream_settings = capture_shared::protocol::StreamSettings::default();
    tasks.spawn(recorder::load::shed(
        buffer.clone(),
        connections.clone(),
        (stream_settings.clone(), settings.shed_above),
        cancel.clone(),
    ));
    let recorder = recorder::Recorder {
        store: store.clone(),
        connections,
        buffer: buffer.clone(),
        metrics: metrics.clone(),
        settings: stream_settings,
        clock: parts.clock.clone(),
        shutdown: sessions_shutdown.clone(),
    };
    let state = http::AppState {
        metrics,
        started: Instant::now(),
    };
    let app = http::router(state, receiver, api, recorder);

    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls.config))
        .handle(handle.clone())
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>());
    let mut server = tokio::spawn(server);
    tracing::info!(
        %address,
        data_dir = %settings.data_dir.display(),
        ca_file = ?tls.generated_ca,
        "capture server listening"
    );

    let served = tokio::select! {
        result = &mut server => flatten(result),
        () = shutdown => {
            tracing::info!(grace_s = settings.shutdown_grace.as_secs(), "shutting down");
            sessions_shutdown.cancel();
            handle.graceful_shutdown(Some(settings.shutdown_grace));
            match tokio::time::timeout(settings.shutdown_grace + SHUTDOWN_SLACK, &mut server).await {
                Ok(result) => flatten(result),
                Err(_) => {
                    server.abort();
                    tracing::warn!("connections still open after the grace period were dropped");
                    Ok(())
                }
            }
        }
    };
    cancel.cancel();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_SLACK, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop in time");
    }
    if tokio::time::timeout(SHUTDOWN_SLACK, buffer.close())
        .await
        .is_err()
    {
        tracing::warn!("call buffer writes did not finish in time");
    }
    store.close().await;
    tracing::info!("stopped");
    served
}

fn flatten(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ServerError> {
    result
        .map_err(std::io::Error::other)?
        .map_err(ServerError::Serve)
}
