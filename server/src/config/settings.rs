//! The validated, runtime form of the configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Config, ConfigError};

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// Operator-provided PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Generated on first start and kept in `dir`.
    Generated {
        /// Where the generated files live (`<data_dir>/tls`).
        dir: PathBuf,
        /// Names the certificate is valid for.
        names: Vec<String>,
    },
}

/// Where the webhook secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Given in the configuration.
    Value(String),
    /// Read from a file.
    File(PathBuf),
    /// Generated on first start and kept in this file.
    Generated(PathBuf),
}

/// How Capture authenticates to Webex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A fixed access token (value or file), replaced by the operator when it expires.
    Static(SecretSource),
    /// An integration's (or Service App's) refresh token: Capture refreshes the access token
    /// before it expires and keeps the newest refresh token.
    Refresh {
        /// OAuth client id.
        client_id: String,
        /// OAuth client secret.
        client_secret: SecretSource,
        /// The configured refresh token.
        refresh_token: SecretSource,
    },
    /// A Service App: its first token pair is minted with an administrator's token, then
    /// refreshed like an integration's.
    ServiceApp {
        /// The application id.
        app_id: String,
        /// Its client id.
        client_id: String,
        /// Its client secret.
        client_secret: SecretSource,
        /// The organisation.
        org_id: String,
        /// The administrator's token that authorises minting.
        admin_token: SecretSource,
    },
}

/// How Capture talks to Webex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebexSettings {
    /// API base URL.
    pub base_url: String,
    /// How Capture authenticates.
    pub credentials: Credentials,
    /// Where Webex reaches us, when configured.
    pub public_url: Option<String>,
    /// Extra CA to trust.
    pub ca_file: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything the server needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listener address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Grace period for open requests on shutdown.
    pub shutdown_grace: Duration,
    /// Certificate source.
    pub tls: TlsSource,
    /// Log filter directives.
    pub log_filter: String,
    /// Log format.
    pub log_format: LogFormat,
    /// The webhook secret.
    pub webhook_secret: SecretSource,
    /// The state machine's rules.
    pub policy: crate::integration::machine::Policy,
    /// Where Agent Available comes from (`none`, `customer_assist`, `contact_center`).
    pub agent_state_source: String,
    /// Webex API access, when credentials are configured.
    pub webex: Option<WebexSettings>,
    /// The recording adapter.
    pub adapter: AdapterSettings,
    /// Ingestion.
    pub ingestion: IngestionSettings,
    /// How long a stopped contact's file waits for an agent out of reach.
    pub offline_wait: Duration,
    /// Free bytes the call buffer's disk keeps; below it new contacts are refused.
    pub min_free_bytes: u64,
    /// Frame-to-disk p99 past which agents are asked for fewer frames.
    pub shed_above: Duration,
    /// Replay.
    pub replay: ReplaySettings,
}

/// Replay's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySettings {
    /// The first administrator's name.
    pub admin_user: String,
    /// Its password, when configured (else generated and printed once).
    pub admin_password: Option<SecretSource>,
}

/// Ingestion's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestionSettings {
    /// Wait after the last input when both halves are there.
    pub settle: Duration,
    /// How long a screen waits for its audio.
    pub wait_for_audio: Duration,
    /// How long audio waits for its screen.
    pub wait_for_screen: Duration,
    /// Shorter contacts keep no screen.
    pub min_screen: Duration,
    /// The archive directory.
    pub archive_dir: PathBuf,
    /// How long archived interactions are kept (`None`: forever).
    pub retention: Option<Duration>,
    /// Attempts at stitching an interaction before it is parked for an operator.
    pub stitch_attempts: u32,
    /// The wait before the second attempt (doubling after each, at most an hour).
    pub stitch_retry: Duration,
}

/// The recording adapter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSettings {
    /// Between two polls.
    pub poll_interval: Duration,
    /// How far each poll reaches back before the last poll's end.
    pub overlap: Duration,
    /// How far the first poll looks back.
    pub initial_lookback: Duration,
    /// Recordings fetched at the same time.
    pub concurrency: usize,
    /// Attempts before a recording is parked.
    pub max_attempts: u32,
}

fn range_check(
    key: &'static str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: format!("must be between {} and {}", range.start(), range.end()),
        })
    }
}

/// One secret from a value or a file, not both; `None` when neither is set.
fn secret(
    key: &'static str,
    value: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<Option<SecretSource>, ConfigError> {
    match (value, file) {
        (Some(_), Some(file)) => Err(ConfigError::Invalid {
            key,
            value: file.display().to_string(),
            reason: format!("set either {key} or {key}_file, not both"),
        }),
        (Some(value), None) => Ok(Some(SecretSource::Value(value.trim().to_owned()))),
        (None, Some(file)) => Ok(Some(SecretSource::File(file.clone()))),
        (None, None) => Ok(None),
    }
}

fn credentials(webex: &super::WebexConfig) -> Result<Option<Credentials>, ConfigError> {
    let token = secret(
        "webex.access_token",
        &webex.access_token,
        &webex.access_token_file,
    )?;
    let client_secret = secret(
        "webex.client_secret",
        &webex.client_secret,
        &webex.client_secret_file,
    )?;
    let refresh = secret(
        "webex.refresh_token",
        &webex.refresh_token,
        &webex.refresh_token_file,
    )?;
    let missing = |key: &'static str, why: &str| ConfigError::Invalid {
        key,
        value: "unset".into(),
        reason: why.to_owned(),
    };
    if let Some(app_id) = &webex.service_app_id {
        let why = "required for a Service App (webex.service_app_id)";
        return Ok(Some(Credentials::ServiceApp {
            app_id: app_id.clone(),
            client_id: webex
                .client_id
                .clone()
                .ok_or_else(|| missing("webex.client_id", why))?,
            client_secret: client_secret.ok_or_else(|| missing("webex.client_secret", why))?,
            org_id: webex
                .org_id
                .clone()
                .ok_or_else(|| missing("webex.org_id", why))?,
            admin_token: token.ok_or_else(|| missing("webex.access_token", why))?,
        }));
    }
    match (refresh, &webex.client_id, client_secret) {
        (Some(refresh_token), Some(client_id), Some(client_secret)) => {
            Ok(Some(Credentials::Refresh {
                client_id: client_id.clone(),
                client_secret,
                refresh_token,
            }))
        }
        (Some(_), None, _) => Err(missing(
            "webex.client_id",
            "required with webex.refresh_token",
        )),
        (Some(_), _, None) => Err(missing(
            "webex.client_secret",
            "required with webex.refresh_token",
        )),
        (None, _, _) => Ok(token.map(Credentials::Static)),
    }
}

/// Longest shutdown grace period, seconds.
pub const MAX_SHUTDOWN_GRACE_S: u64 = 300;

impl Settings {
    /// Validates a merged configuration.
    pub fn from_config(config: Config) -> Result<Settings, ConfigError> {
        if !(1..=MAX_SHUTDOWN_GRACE_S).contains(&config.shutdown_grace_s) {
            return Err(ConfigError::Invalid {
                key: "shutdown_grace_s",
                value: config.shutdown_grace_s.to_string(),
                reason: format!("must be between 1 and {MAX_SHUTDOWN_GRACE_S} seconds"),
            });
        }
        if config.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "data_dir",
                value: "\"\"".into(),
                reason: "must name a directory".into(),
            });
        }
        let tls = match (config.tls.cert_file, config.tls.key_file) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            (None, None) => {
                if config.tls.generated_names.is_empty() {
                    return Err(ConfigError::Invalid {
                        key: "tls.generated_names",
                        value: "[]".into(),
                        reason: "the generated certificate needs at least one name".into(),
                    });
                }
                TlsSource::Generated {
                    dir: config.data_dir.join("tls"),
                    names: config.tls.generated_names,
                }
            }
            (Some(cert), None) => {
                return Err(ConfigError::Invalid {
                    key: "tls.key_file",
                    value: "unset".into(),
                    reason: format!("required because tls.cert_file is set ({})", cert.display()),
                });
            }
            (None, Some(key)) => {
                return Err(ConfigError::Invalid {
                    key: "tls.cert_file",
                    value: "unset".into(),
                    reason: format!("required because tls.key_file is set ({})", key.display()),
                });
            }
        };
        let log_format = match config.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    key: "log.format",
                    value: format!("{other:?}"),
                    reason: "must be \"text\" or \"json\"".into(),
                });
            }
        };
        if let Err(error) = tracing_subscriber::EnvFilter::builder().parse(&config.log.level) {
            return Err(ConfigError::Invalid {
                key: "log.level",
                value: format!("{:?}", config.log.level),
                reason: error.to_string(),
            });
        }
        let webhook_secret = match (
            config.webex.webhook_secret.clone(),
            config.webex.webhook_secret_file.clone(),
        ) {
            (Some(_), Some(file)) => {
                return Err(ConfigError::Invalid {
                    key: "webex.webhook_secret_file",
                    value: file.display().to_string(),
                    reason:
                        "set either webex.webhook_secret or webex.webhook_secret_file, not both"
                            .into(),
                });
            }
            (Some(secret), None) if secret.trim().len() < 16 => {
                return Err(ConfigError::Invalid {
                    key: "webex.webhook_secret",
                    value: "(hidden)".into(),
                    reason: "must be at least 16 characters".into(),
                });
            }
            (Some(secret), None) => SecretSource::Value(secret.trim().to_owned()),
            (None, Some(file)) => SecretSource::File(file),
            (None, None) => SecretSource::Generated(config.data_dir.join("webhook-secret")),
        };
        let integration = &config.integration;
        let wrap_up_ms = match integration.agent_state_source.as_str() {
            "none" => {
                if !(1..=3600).contains(&integration.wrap_up_s) {
                    return Err(ConfigError::Invalid {
                        key: "integration.wrap_up_s",
                        value: integration.wrap_up_s.to_string(),
                        reason: "must be between 1 and 3600 seconds".into(),
                    });
                }
                Some(integration.wrap_up_s as i64 * 1000)
            }
            "customer_assist" | "contact_center" => None,
            other => {
                return Err(ConfigError::Invalid {
                    key: "integration.agent_state_source",
                    value: format!("{other:?}"),
                    reason: "must be \"none\", \"customer_assist\" or \"contact_center\"".into(),
                });
            }
        };
        if !(60..=86_400).contains(&integration.max_contact_s) {
            return Err(ConfigError::Invalid {
                key: "integration.max_contact_s",
                value: integration.max_contact_s.to_string(),
                reason: "must be between 60 and 86400 seconds".into(),
            });
        }
        let policy = crate::integration::machine::Policy {
            wrap_up_ms,
            max_contact_ms: integration.max_contact_s as i64 * 1000,
            ..crate::integration::machine::Policy::default()
        };
        let webex_config = &config.webex;
        if !webex_config.base_url.starts_with("https://") {
            return Err(ConfigError::Invalid {
                key: "webex.base_url",
                value: webex_config.base_url.clone(),
                reason: "must be an https:// URL".into(),
            });
        }
        if let Some(public) = &webex_config.public_url
            && !public.starts_with("https://")
        {
            return Err(ConfigError::Invalid {
                key: "webex.public_url",
                value: public.clone(),
                reason: "must be an https:// URL Webex can reach".into(),
            });
        }
        let webex = credentials(webex_config)?.map(|credentials| WebexSettings {
            base_url: webex_config.base_url.trim_end_matches('/').to_owned(),
            credentials,
            public_url: webex_config
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            ca_file: webex_config.ca_file.clone(),
        });
        let adapter = &config.adapter;
        range_check("adapter.poll_interval_s", adapter.poll_interval_s, 1..=3600)?;
        range_check("adapter.overlap_s", adapter.overlap_s, 60..=2_592_000)?;
        range_check(
            "adapter.initial_lookback_s",
            adapter.initial_lookback_s,
            0..=2_592_000,
        )?;
        range_check("adapter.concurrency", adapter.concurrency.into(), 1..=512)?;
        range_check("adapter.max_attempts", adapter.max_attempts.into(), 1..=100)?;
        range_check(
            "recorder.offline_wait_s",
            config.recorder.offline_wait_s,
            60..=7 * 86_400,
        )?;
        let offline_wait = Duration::from_secs(config.recorder.offline_wait_s);
        range_check(
            "recorder.min_free_mb",
            config.recorder.min_free_mb,
            0..=1 << 20,
        )?;
        let min_free_bytes = config.recorder.min_free_mb << 20;
        range_check(
            "recorder.shed_above_ms",
            config.recorder.shed_above_ms,
            0..=60_000,
        )?;
        let shed_above = Duration::from_millis(config.recorder.shed_above_ms);
        let ingestion = &config.ingestion;
        range_check(
            "ingestion.stitch_attempts",
            ingestion.stitch_attempts.into(),
            1..=100,
        )?;
        range_check(
            "ingestion.stitch_retry_s",
            ingestion.stitch_retry_s,
            1..=3600,
        )?;
        range_check("ingestion.settle_s", ingestion.settle_s, 0..=3600)?;
        range_check(
            "ingestion.wait_for_audio_s",
            ingestion.wait_for_audio_s,
            0..=86_400,
        )?;
        range_check(
            "ingestion.wait_for_screen_s",
            ingestion.wait_for_screen_s,
            0..=86_400,
        )?;
        range_check("ingestion.min_screen_s", ingestion.min_screen_s, 0..=3600)?;
        range_check(
            "ingestion.retention_days",
            ingestion.retention_days,
            0..=36_500,
        )?;
        let ingestion = IngestionSettings {
            settle: Duration::from_secs(ingestion.settle_s),
            wait_for_audio: Duration::from_secs(ingestion.wait_for_audio_s),
            wait_for_screen: Duration::from_secs(ingestion.wait_for_screen_s),
            min_screen: Duration::from_secs(ingestion.min_screen_s),
            archive_dir: ingestion
                .archive_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("archive")),
            retention: (ingestion.retention_days > 0)
                .then(|| Duration::from_secs(ingestion.retention_days * 86_400)),
            stitch_attempts: ingestion.stitch_attempts,
            stitch_retry: Duration::from_secs(ingestion.stitch_retry_s),
        };
        let adapter = AdapterSettings {
            poll_interval: Duration::from_secs(adapter.poll_interval_s),
            overlap: Duration::from_secs(adapter.overlap_s),
            initial_lookback: Duration::from_secs(adapter.initial_lookback_s),
            concurrency: adapter.concurrency as usize,
            max_attempts: adapter.max_attempts,
        };
        let agent_state_source = config.integration.agent_state_source.clone();
        if crate::replay::check_username(&config.replay.admin_user).is_err() {
            return Err(ConfigError::Invalid {
                key: "replay.admin_user",
                value: config.replay.admin_user.clone(),
                reason: "1–64 letters, digits, `.`, `_`, `-` or `@`".into(),
            });
        }
        let replay = ReplaySettings {
            admin_user: config.replay.admin_user.clone(),
            admin_password: secret(
                "replay.admin_password",
                &config.replay.admin_password,
                &config.replay.admin_password_file,
            )?,
        };
        Ok(Settings {
            replay,
            webhook_secret,
            policy,
            agent_state_source,
            webex,
            adapter,
            ingestion,
            offline_wait,
            min_free_bytes,
            shed_above,
            listen: config.listen,
            data_dir: config.data_dir,
            shutdown_grace: Duration::from_secs(config.shutdown_grace_s),
            tls,
            log_filter: config.log.level,
            log_format,
        })
    }
}
