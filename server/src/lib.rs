//! Capture's server.
//!
//! [`run`] serves HTTPS on a listener until a shutdown future completes; `main.rs` adds the command
//! line, the configuration and the signals. Modules, named after the seed's parts:
//!
//! - [`config`]: layered configuration, validated once into [`config::Settings`];
//! - [`tls`]: the served certificate, generated on first start unless configured;
//! - [`http`]: the router (`/healthz`, `/metrics`);
//! - [`metrics`]: Prometheus metrics.

pub mod config;
pub mod http;
pub mod integration;
pub mod metrics;
pub mod tls;
pub mod webex;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_server::tls_rustls::RustlsConfig;

use crate::config::Settings;

/// Extra time past the grace period before [`run`] stops waiting for connections to close.
pub const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS certificate could not be loaded or generated.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

/// Serves until `shutdown` completes, then lets open requests finish within the configured grace
/// period and returns. Tests pass a listener bound to port 0.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| ServerError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;
    let tls_settings = settings.tls.clone();
    let tls = tokio::task::spawn_blocking(move || tls::load(&tls_settings))
        .await
        .map_err(|e| ServerError::Serve(std::io::Error::other(e)))??;

    let state = http::AppState {
        metrics: Arc::new(metrics::Metrics::new()),
        started: Instant::now(),
    };
    let app = http::router(state);
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls.config))
        .handle(handle.clone())
        .serve(app.into_make_service());
    let mut server = tokio::spawn(server);
    tracing::info!(
        %address,
        data_dir = %settings.data_dir.display(),
        ca_file = ?tls.generated_ca,
        "capture server listening"
    );

    tokio::select! {
        result = &mut server => return flatten(result),
        () = shutdown => {}
    }
    tracing::info!(grace_s = settings.shutdown_grace.as_secs(), "shutting down");
    handle.graceful_shutdown(Some(settings.shutdown_grace));
    match tokio::time::timeout(settings.shutdown_grace + SHUTDOWN_SLACK, &mut server).await {
        Ok(result) => flatten(result)?,
        Err(_) => {
            server.abort();
            tracing::warn!("connections still open after the grace period were dropped");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

fn flatten(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ServerError> {
    result
        .map_err(std::io::Error::other)?
        .map_err(ServerError::Serve)
}
