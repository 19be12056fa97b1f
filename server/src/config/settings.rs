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

/// How Capture talks to Webex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebexSettings {
    /// API base URL.
    pub base_url: String,
    /// The access token (value or file).
    pub token: SecretSource,
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
        let token = match (&webex_config.access_token, &webex_config.access_token_file) {
            (Some(_), Some(file)) => {
                return Err(ConfigError::Invalid {
                    key: "webex.access_token_file",
                    value: file.display().to_string(),
                    reason: "set either webex.access_token or webex.access_token_file, not both"
                        .into(),
                });
            }
            (Some(token), None) => Some(SecretSource::Value(token.trim().to_owned())),
            (None, Some(file)) => Some(SecretSource::File(file.clone())),
            (None, None) => None,
        };
        let webex = token.map(|token| WebexSettings {
            base_url: webex_config.base_url.trim_end_matches('/').to_owned(),
            token,
            public_url: webex_config
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            ca_file: webex_config.ca_file.clone(),
        });
        let agent_state_source = config.integration.agent_state_source.clone();
        Ok(Settings {
            webhook_secret,
            policy,
            agent_state_source,
            webex,
            listen: config.listen,
            data_dir: config.data_dir,
            shutdown_grace: Duration::from_secs(config.shutdown_grace_s),
            tls,
            log_filter: config.log.level,
            log_format,
        })
    }
}
