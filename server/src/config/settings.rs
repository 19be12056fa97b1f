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
        Ok(Settings {
            listen: config.listen,
            data_dir: config.data_dir,
            shutdown_grace: Duration::from_secs(config.shutdown_grace_s),
            tls,
            log_filter: config.log.level,
            log_format,
        })
    }
}
