//! The agent's configuration: one TOML file (written by `enroll`, or by the installer) and
//! `CAPTURE_AGENT_*` environment variables over it.

use std::path::{Path, PathBuf};

use capture_shared::ids::AgentId;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The recorder, `https://host[:port]`.
    pub server: String,
    /// An extra CA certificate (PEM) to trust for the recorder, besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The agent's id, from enrolment.
    pub agent_id: AgentId,
    /// The agent's credential, from enrolment.
    pub credential: String,
    /// What to capture: `screen`, `synthetic-office` or `synthetic-still`.
    #[serde(default = "default_source")]
    pub source: String,
}

fn default_source() -> String {
    "screen".into()
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Missing, unreadable or invalid.
    #[error("agent configuration {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The default file: `$CAPTURE_AGENT_CONFIG` is read by the CLI; otherwise the per-user config
/// directory (`$XDG_CONFIG_HOME` or `~/.config` on Linux).
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("capture").join("agent.toml")
}

impl AgentConfig {
    /// Loads the file, then `CAPTURE_AGENT_*` variables over it.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() && std::env::var_os("CAPTURE_AGENT_SERVER").is_none() {
            return Err(invalid(
                "not found: run `capture-agent enroll` first".into(),
            ));
        }
        Figment::from(Serialized::default("source", default_source()))
            .merge(Toml::file(path))
            .merge(Env::prefixed("CAPTURE_AGENT_").ignore(&["config"]))
            .extract()
            .map_err(|e| invalid(e.to_string()))
    }

    /// Writes the file, readable by its owner only (it holds the credential).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = toml::to_string(self).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("toml.tmp");
        write_private(&temporary, text.as_bytes())?;
        std::fs::rename(&temporary, path)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // The installer places the file in a directory only the service account can read.
    std::fs::write(path, bytes)
}
