//! The server's configuration: one set of serde structs, layered from defaults → the TOML file →
//! `CAPTURE_*` environment variables → command-line flags, validated once at start into
//! [`Settings`].
//!
//! Every key of the file is also an environment variable: `CAPTURE_` + the key path in upper case
//! with `__` between sections (`tls.cert_file` → `CAPTURE_TLS__CERT_FILE`). `CAPTURE_CONFIG` names
//! the file itself. Unknown keys, wrong types and out-of-range values stop the server with an
//! error that names the key, its value and where it came from.

mod settings;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use settings::{
    AdapterSettings, Credentials, IngestionSettings, LogFormat, ReplaySettings, SecretSource,
    Settings, TlsSource, WebexSettings,
};

/// The environment variable prefix of every key.
pub const ENV_PREFIX: &str = "CAPTURE_";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port of the HTTPS listener (agents, webhooks, API and replay UI).
    pub listen: SocketAddr,
    /// Directory holding the database, the call buffer, the archive and the generated TLS
    /// certificate. Relative paths are taken from the working directory.
    pub data_dir: PathBuf,
    /// Seconds that open requests and connections get to finish on shutdown (1–300).
    pub shutdown_grace_s: u64,
    /// TLS certificate.
    pub tls: TlsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Webex.
    pub webex: WebexConfig,
    /// Call and agent events → recording commands.
    pub integration: IntegrationConfig,
    /// The recorder: the agents' websocket and the call buffer.
    pub recorder: RecorderConfig,
    /// The recording adapter (Webex Converged Recordings → stored audio).
    pub adapter: AdapterConfig,
    /// Ingestion: stitching screen and audio, the archive.
    pub ingestion: IngestionConfig,
    /// Replay: the web page's first administrator.
    pub replay: ReplayConfig,
}

/// The `[replay]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// The first administrator's user name, created at the first start when no user exists.
    pub admin_user: String,
    /// Its password (at least 12 characters); when neither this nor `admin_password_file` is
    /// set, one is generated and printed once in the log.
    pub admin_password: Option<String>,
    /// A file holding it.
    pub admin_password_file: Option<PathBuf>,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            admin_user: "admin".into(),
            admin_password: None,
            admin_password_file: None,
        }
    }
}

/// The `[ingestion]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestionConfig {
    /// Seconds an interaction with both screen and audio waits after its last input before it is
    /// stitched (late legs of a transfer, a restarted recording) (0–3600).
    pub settle_s: u64,
    /// Seconds a closed contact waits for its recordings (Webex publishes them minutes after the
    /// call) before it is stitched without audio (0–86400).
    pub wait_for_audio_s: u64,
    /// Seconds recordings wait for a contact's screen before they are stitched without (0–86400).
    pub wait_for_screen_s: u64,
    /// Contacts shorter than this many seconds keep no screen (0–3600).
    pub min_screen_s: u64,
    /// The archive directory; `<data_dir>/archive` when unset.
    pub archive_dir: Option<PathBuf>,
    /// Days an archived interaction is kept before it is deleted (audited); 0 keeps it forever.
    /// Interactions on legal hold are never deleted.
    pub retention_days: u64,
    /// Attempts at stitching and archiving an interaction before it is parked for an operator
    /// (1–100); each failure is retried while the service runs.
    pub stitch_attempts: u32,
    /// Seconds before a failed stitch is tried again, doubling after each failure up to an hour
    /// (1–3600).
    pub stitch_retry_s: u64,
}

impl Default for IngestionConfig {
    fn default() -> Self {
        IngestionConfig {
            settle_s: 30,
            wait_for_audio_s: 15 * 60,
            wait_for_screen_s: 5 * 60,
            min_screen_s: 5,
            archive_dir: None,
            retention_days: 0,
            stitch_attempts: 8,
            stitch_retry_s: 30,
        }
    }
}

/// The `[adapter]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdapterConfig {
    /// Seconds between two polls of Webex's recording list (1–3600).
    pub poll_interval_s: u64,
    /// Seconds each poll reaches back before the last poll's end, so that a recording published
    /// late (Webex lists recordings by when they started, published after the call ends) is still
    /// seen: at least the longest call plus Webex's publishing delay (60–2592000).
    pub overlap_s: u64,
    /// On the very first poll, how far back to look, in seconds (0–2592000).
    pub initial_lookback_s: u64,
    /// Recordings fetched at the same time (1–512). Most of a fetch is waiting (on Webex, on
    /// `Retry-After`), so backfills gain from more than the default.
    pub concurrency: u32,
    /// Attempts of one recording before it is parked for an operator (1–100).
    pub max_attempts: u32,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            poll_interval_s: 60,
            overlap_s: 6 * 3600,
            initial_lookback_s: 24 * 3600,
            concurrency: 16,
            max_attempts: 10,
        }
    }
}

/// The `[webex]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebexConfig {
    /// Base URL of the Webex API (the emulator's in tests and demos).
    pub base_url: String,
    /// Access token of a compliance-officer integration or Service App. With `public_url`, Capture
    /// registers its webhooks itself on start.
    pub access_token: Option<String>,
    /// File holding the access token.
    pub access_token_file: Option<PathBuf>,
    /// OAuth client id of the integration (or Service App) whose tokens Capture refreshes itself.
    pub client_id: Option<String>,
    /// Its client secret.
    pub client_secret: Option<String>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// The integration's refresh token (the first one: Capture keeps the newest it receives in
    /// `<data_dir>/webex-tokens.json`).
    pub refresh_token: Option<String>,
    /// File holding the refresh token.
    pub refresh_token_file: Option<PathBuf>,
    /// A Service App's application id: Capture then mints the app's tokens with
    /// `POST /applications/{id}/token`, authorised by `access_token` (an administrator's).
    pub service_app_id: Option<String>,
    /// The organisation a Service App is authorised for (`targetOrgId`).
    pub org_id: Option<String>,
    /// Public HTTPS base URL where Webex reaches this server (`https://capture.example.com`); the
    /// webhooks target `<public_url>/webhooks/webex`.
    pub public_url: Option<String>,
    /// Extra CA certificate (PEM) to trust for Webex, e.g. a TLS-inspecting proxy's.
    pub ca_file: Option<PathBuf>,
    /// Secret Webex signs webhook deliveries with (`X-Spark-Signature`). When neither this nor
    /// `webhook_secret_file` is set, one is generated in `<data_dir>/webhook-secret` on first start.
    pub webhook_secret: Option<String>,
    /// File holding the webhook secret (one line).
    pub webhook_secret_file: Option<PathBuf>,
}

/// The `[recorder]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderConfig {
    /// After a contact ends, how long its SCN file waits for an agent that is out of reach to
    /// send what it spooled (60 s – 7 days); past this the file closes and the rest is a named
    /// gap. The agent's spool holds eight hours of one office monitor by default.
    pub offline_wait_s: u64,
    /// Free space (MiB) the call buffer's disk must keep: below it new contacts are refused
    /// (each with a named gap, counted in `capture_recorder_contacts_refused`) while the open
    /// ones go on; 0 refuses only when writes fail.
    pub min_free_mb: u64,
    /// Frame-to-disk time (ms, the 99th percentile of a 5 s window) past which every agent is
    /// asked for half its frame rate (never below `fps_min`); six calm windows lift it again
    /// (0–60000; 0 sheds whenever frames arrive).
    pub shed_above_ms: u64,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            offline_wait_s: 8 * 3600,
            min_free_mb: 1024,
            shed_above_ms: 500,
        }
    }
}

/// The `[integration]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationConfig {
    /// Where Agent Available comes from: `none` (the wrap-up timer), `customer_assist`
    /// (`telephony_agent` webhooks) or `contact_center` (Webex Contact Center agent states).
    pub agent_state_source: String,
    /// With no agent-state source: seconds after the last call of a contact ends until the agent
    /// is taken as available (1–3600).
    pub wrap_up_s: u64,
    /// Longest contact in seconds; a longer one is closed (60–86400).
    pub max_contact_s: u64,
}

impl Default for WebexConfig {
    fn default() -> Self {
        WebexConfig {
            base_url: "https://webexapis.com/v1".into(),
            access_token: None,
            access_token_file: None,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            refresh_token: None,
            refresh_token_file: None,
            service_app_id: None,
            org_id: None,
            public_url: None,
            ca_file: None,
            webhook_secret: None,
            webhook_secret_file: None,
        }
    }
}

impl Default for IntegrationConfig {
    fn default() -> Self {
        IntegrationConfig {
            agent_state_source: "none".into(),
            wrap_up_s: 30,
            max_contact_s: 4 * 3600,
        }
    }
}

/// The `[tls]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain to serve (leaf first). With `key_file`; when neither is set, a
    /// certificate authority and a server certificate are generated in `<data_dir>/tls` on first
    /// start and kept.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// Host names and IP addresses the generated certificate is valid for.
    pub generated_names: Vec<String>,
}

/// The `[log]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Filter directives, e.g. `info` or `info,capture_server=debug`.
    pub level: String,
    /// Output format: `text` for people, `json` for log collectors.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            data_dir: PathBuf::from("capture-data"),
            shutdown_grace_s: 10,
            tls: TlsConfig::default(),
            log: LogConfig::default(),
            webex: WebexConfig::default(),
            integration: IntegrationConfig::default(),
            recorder: RecorderConfig::default(),
            adapter: AdapterConfig::default(),
            ingestion: IngestionConfig::default(),
            replay: ReplayConfig::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            generated_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Values given on the command line, which override every other source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// A configuration that cannot be used, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The sources could not be merged (syntax, unknown key, wrong type).
    #[error("invalid configuration: {0}")]
    Source(String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: `{key}` = {value}: {reason}")]
    Invalid {
        /// The key path (`tls.cert_file`).
        key: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Config {
    /// Merges the layers. `file` is the TOML file (`--config` / `CAPTURE_CONFIG`), which must exist
    /// when given. Environment variables are read here, at start, and nowhere else.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Source(format!(
                    "configuration file {} does not exist or is not a file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]))
            .merge(Serialized::defaults(overrides));
        figment
            .extract()
            .map_err(|error| ConfigError::Source(describe(error)))
    }
}

/// One line per problem, each naming the key and where its value came from.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("`{}`: ", e.path.join("."))
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => format!(" (from {source})"),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            format!("{key}{}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
