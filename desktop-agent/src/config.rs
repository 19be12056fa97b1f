//! The agent's configuration: the machine's file (written by the installer), the user's file
//! over it (written by `enroll`), and `CAPTURE_AGENT_*` environment variables over both. Where
//! the files live and how the credential is protected in them is the platform's
//! (`crate::platform`): DPAPI on Windows, a 0600 file elsewhere.

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
    /// The SHA-256 of the recorder's CA certificate (the installer's `SERVER_CA_SHA256`): when
    /// set, only that CA is trusted, and the server must present it in its chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca_sha256: Option<String>,
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

/// The default file: `$CAPTURE_AGENT_CONFIG` is read by the CLI; otherwise the user's
/// (`$XDG_CONFIG_HOME/capture/agent.toml`, `%LOCALAPPDATA%\Capture\agent.toml`).
pub fn default_path() -> PathBuf {
    crate::platform::user_config_path()
}

impl AgentConfig {
    /// Where and how to reach the recorder: pinned to `server_ca_sha256` when set, else the
    /// system's roots plus `ca_file`.
    pub fn endpoint(&self) -> Result<crate::connection::Endpoint, crate::connection::ConnectError> {
        match &self.server_ca_sha256 {
            Some(pin) => crate::connection::Endpoint::pinned(&self.server, pin),
            None => crate::connection::Endpoint::new(&self.server, self.ca_file.as_deref()),
        }
    }

    /// Loads the machine's file, the user's file `path` over it, then `CAPTURE_AGENT_*`
    /// variables over both; the credential is unprotected.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        Self::load_over(&crate::platform::machine_config_path(), path)
    }

    /// [`AgentConfig::load`] with the machine's file at `machine`.
    pub fn load_over(machine: &Path, path: &Path) -> Result<AgentConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() && std::env::var_os("CAPTURE_AGENT_SERVER").is_none() {
            return Err(invalid(
                "not found: run `capture-agent enroll` first".into(),
            ));
        }
        let mut config: AgentConfig =
            Figment::from(Serialized::default("source", default_source()))
                .merge(Toml::file(machine))
                .merge(Toml::file(path))
                .merge(Env::prefixed("CAPTURE_AGENT_").ignore(&["config"]))
                .extract()
                .map_err(|e| invalid(e.to_string()))?;
        config.credential = crate::platform::reveal_secret(&config.credential)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(config)
    }

    /// Writes the file, readable by its owner only, with the credential protected.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let stored = AgentConfig {
            credential: crate::platform::protect_secret(&self.credential)
                .map_err(std::io::Error::other)?,
            ..self.clone()
        };
        let text = toml::to_string(&stored).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("toml.tmp");
        crate::platform::write_private(&temporary, text.as_bytes())?;
        std::fs::rename(&temporary, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_file_sits_over_the_machines_and_keeps_its_credential_private() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let machine = dir.path().join("machine.toml");
        std::fs::write(
            &machine,
            "server = \"https://recorder.example:8443\"\nca_file = \"/etc/capture/ca.pem\"\n",
        )
        .expect("machine file");
        let user = dir.path().join("user").join("agent.toml");
        let enrolled = AgentConfig {
            server: "https://recorder.example:8443".into(),
            ca_file: None,
            server_ca_sha256: None,
            agent_id: AgentId(uuid::Uuid::from_u128(7)),
            credential: "s3cret".into(),
            source: "synthetic-still".into(),
        };
        enrolled.save(&user).expect("saved");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&user).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = AgentConfig::load_over(&machine, &user).expect("loads");
        assert_eq!(loaded.credential, "s3cret");
        assert_eq!(loaded.agent_id, enrolled.agent_id);
        assert_eq!(
            loaded.ca_file.as_deref(),
            Some(Path::new("/etc/capture/ca.pem")),
            "what the installer set and the user's file does not"
        );
        assert_eq!(loaded.source, "synthetic-still");
    }

    #[cfg(unix)]
    #[test]
    fn a_credential_protected_on_windows_is_refused_with_its_reason() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let user = dir.path().join("agent.toml");
        std::fs::write(
            &user,
            "server = \"https://r:8443\"\nagent_id = \"00000000-0000-0000-0000-000000000007\"\ncredential = \"dpapi:AAAA\"\n",
        )
        .expect("file");
        let error = AgentConfig::load_over(&dir.path().join("none.toml"), &user)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("enrol this machine again"), "{error}");
    }
}
