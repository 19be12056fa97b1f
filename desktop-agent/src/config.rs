//! The agent's configuration: the machine's settings (what the installer or IT's tooling wrote:
//! a file, and on Windows the MSI's registry values, on macOS the managed preferences of a
//! configuration profile), the user's file over them (written by enrolment), and
//! `CAPTURE_AGENT_*` environment variables over both. Where these live and how the credential is
//! protected is the platform's (`crate::platform`): DPAPI on Windows, a 0600 file elsewhere.

use std::path::{Path, PathBuf};

use capture_shared::ids::AgentId;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// `CAPTURE_AGENT_*` variables that are not settings: where the files are, and the token
/// `enroll` reads.
const NOT_SETTINGS: &[&str] = &["config", "machine_config", "enrolment_token"];

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
    /// An HTTP proxy to reach the recorder through (`http://[user:password@]host:port`, the
    /// installer's `PROXY_URL`): enrolment and the websocket tunnel through it with `CONNECT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The disk the offline spool (`spool/` beside this file) may take, in MB; default
    /// [`crate::spool::DEFAULT_QUOTA_BYTES`] (eight hours of one office monitor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool_quota_mb: Option<u64>,
}

/// What IT set for every user of the machine (the installer's public properties). Every field is
/// optional: the user's file or the environment may set the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    /// The recorder (`SERVER_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// An extra CA certificate (PEM) to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The recorder's CA pin (`SERVER_CA_SHA256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca_sha256: Option<String>,
    /// An HTTP proxy (`PROXY_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// What to capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A one-time or limited-use enrolment token (`ENROLLMENT_TOKEN`): traded for the user's own
    /// credential at the agent's first start, then deleted where the agent may delete it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_token: Option<String>,
}

impl MachineConfig {
    /// The machine's settings: the machine file (`$CAPTURE_AGENT_MACHINE_CONFIG`, else the
    /// platform's path), with the platform's managed values (Windows registry, macOS managed
    /// preferences) over it. Empty values count as unset (an MSI writes `""` for a property
    /// it was not given).
    pub fn load() -> Result<MachineConfig, ConfigError> {
        let mut machine = Self::from_file(&machine_config_path())?;
        for layer in crate::platform::managed_machine_settings() {
            machine.overlay(layer);
        }
        Ok(machine.without_empty())
    }

    /// The machine file alone (absent: nothing set).
    pub fn from_file(path: &Path) -> Result<MachineConfig, ConfigError> {
        let machine: MachineConfig =
            Figment::from(Toml::file(path))
                .extract()
                .map_err(|e| ConfigError::Invalid {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
        Ok(machine.without_empty())
    }

    /// Sets what `over` sets.
    pub fn overlay(&mut self, over: MachineConfig) {
        let over = over.without_empty();
        let MachineConfig {
            server,
            ca_file,
            server_ca_sha256,
            proxy,
            source,
            enrolment_token,
        } = over;
        self.server = server.or(self.server.take());
        self.ca_file = ca_file.or(self.ca_file.take());
        self.server_ca_sha256 = server_ca_sha256.or(self.server_ca_sha256.take());
        self.proxy = proxy.or(self.proxy.take());
        self.source = source.or(self.source.take());
        self.enrolment_token = enrolment_token.or(self.enrolment_token.take());
    }

    fn without_empty(self) -> MachineConfig {
        let keep = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        MachineConfig {
            server: keep(self.server),
            ca_file: self.ca_file.filter(|p| !p.as_os_str().is_empty()),
            server_ca_sha256: keep(self.server_ca_sha256),
            proxy: keep(self.proxy),
            source: keep(self.source),
            enrolment_token: keep(self.enrolment_token).map(|t| t.trim().to_owned()),
        }
    }

    /// The settings an [`AgentConfig`] inherits (all but the enrolment token).
    fn inherited(&self) -> MachineConfig {
        MachineConfig {
            enrolment_token: None,
            ..self.clone()
        }
    }
}

/// The managed preferences of a macOS configuration profile (domain `org.capture.agent`): keys
/// `ServerUrl`, `ServerCaSha256`, `ProxyUrl`, `EnrollmentToken`, as the MSI's registry values.
pub fn managed_preferences(bytes: &[u8]) -> Result<MachineConfig, String> {
    let value =
        plist::Value::from_reader(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let dictionary = value
        .as_dictionary()
        .ok_or("the preferences are not a dictionary")?;
    let text = |key: &str| {
        dictionary
            .get(key)
            .and_then(plist::Value::as_string)
            .map(str::to_owned)
    };
    Ok(MachineConfig {
        server: text("ServerUrl"),
        server_ca_sha256: text("ServerCaSha256"),
        proxy: text("ProxyUrl"),
        enrolment_token: text("EnrollmentToken"),
        ..MachineConfig::default()
    }
    .without_empty())
}

/// Deletes the enrolment token from the machine's settings once it has been traded for a
/// credential: from the machine file (its comments kept) and from the platform's managed values.
/// Errors name what is left (e.g. a file the user may not write), for IT to remove.
pub fn remove_enrolment_token(machine_file: &Path) -> Result<(), String> {
    let mut left = Vec::new();
    match std::fs::read_to_string(machine_file) {
        Ok(text) => {
            let mut document: toml_edit::DocumentMut = text
                .parse()
                .map_err(|e| format!("{}: {e}", machine_file.display()))?;
            if document.remove("enrolment_token").is_some() {
                let temporary = machine_file.with_extension("toml.tmp");
                let written = std::fs::write(&temporary, document.to_string())
                    .and_then(|()| std::fs::rename(&temporary, machine_file));
                if let Err(error) = written {
                    let _ = std::fs::remove_file(&temporary);
                    left.push(format!("{}: {error}", machine_file.display()));
                }
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => left.push(format!("{}: {error}", machine_file.display())),
    }
    if let Err(error) = crate::platform::remove_managed_enrolment_token() {
        left.push(error);
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(left.join("; "))
    }
}

/// The machine file: `$CAPTURE_AGENT_MACHINE_CONFIG`, else the platform's
/// (`/etc/capture/agent.toml`, `%ProgramData%\Capture\agent.toml`).
pub fn machine_config_path() -> PathBuf {
    std::env::var_os("CAPTURE_AGENT_MACHINE_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(crate::platform::machine_config_path)
}

fn default_source() -> String {
    "screen".into()
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// This user has not enrolled (no user file) and the machine holds no enrolment token.
    #[error(
        "agent configuration {path}: not enrolled: run `capture-agent enroll`, or install with SERVER_URL and ENROLLMENT_TOKEN"
    )]
    NotEnrolled {
        /// The user's file.
        path: String,
    },
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
    /// The spool's disk quota in bytes.
    pub fn spool_quota_bytes(&self) -> u64 {
        self.spool_quota_mb
            .map_or(crate::spool::DEFAULT_QUOTA_BYTES, |mb| {
                mb.saturating_mul(1_000_000)
            })
    }

    /// Where and how to reach the recorder: pinned to `server_ca_sha256` when set, else the
    /// system's roots plus `ca_file`; through `proxy` when set.
    pub fn endpoint(&self) -> Result<crate::connection::Endpoint, crate::connection::ConnectError> {
        let endpoint = match &self.server_ca_sha256 {
            Some(pin) => crate::connection::Endpoint::pinned(&self.server, pin),
            None => crate::connection::Endpoint::new(&self.server, self.ca_file.as_deref()),
        }?;
        endpoint.with_proxy(self.proxy.as_deref())
    }

    /// Loads the machine's settings, the user's file `path` over them, then `CAPTURE_AGENT_*`
    /// variables over both; the credential is unprotected.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        Self::load_over(&MachineConfig::load()?, path)
    }

    /// [`AgentConfig::load`] over the machine's settings `machine`.
    pub fn load_over(machine: &MachineConfig, path: &Path) -> Result<AgentConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() && std::env::var_os("CAPTURE_AGENT_SERVER").is_none() {
            return Err(ConfigError::NotEnrolled {
                path: path.display().to_string(),
            });
        }
        let mut config: AgentConfig =
            Figment::from(Serialized::default("source", default_source()))
                .merge(Serialized::defaults(machine.inherited()))
                .merge(Toml::file(path))
                .merge(Env::prefixed("CAPTURE_AGENT_").ignore(NOT_SETTINGS))
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
            proxy: None,
            spool_quota_mb: None,
        };
        enrolled.save(&user).expect("saved");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&user).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let machine = MachineConfig::from_file(&machine).expect("machine file");
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
        let error = AgentConfig::load_over(&MachineConfig::default(), &user)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("enrol this machine again"), "{error}");
    }

    #[test]
    fn the_machines_token_is_not_inherited_and_empty_values_count_as_unset() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("machine.toml");
        std::fs::write(
            &path,
            "server = \"https://recorder.example\"\nenrolment_token = \" tok-1 \"\nproxy = \"\"\n",
        )
        .expect("machine file");
        let mut machine = MachineConfig::from_file(&path).expect("reads");
        assert_eq!(machine.enrolment_token.as_deref(), Some("tok-1"));
        assert_eq!(machine.proxy, None, "an MSI's empty property is no proxy");
        machine.overlay(MachineConfig {
            server: Some("https://managed.example".into()),
            proxy: Some(String::new()),
            ..MachineConfig::default()
        });
        assert_eq!(machine.server.as_deref(), Some("https://managed.example"));
        assert_eq!(machine.enrolment_token.as_deref(), Some("tok-1"));
        assert!(machine.inherited().enrolment_token.is_none());
        let user = dir.path().join("absent.toml");
        assert!(matches!(
            AgentConfig::load_over(&machine, &user),
            Err(ConfigError::NotEnrolled { .. })
        ));
        std::fs::write(&path, "server = \"https://r\"\nunknown = 1\n").expect("machine file");
        let error = MachineConfig::from_file(&path)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("unknown"), "{error}");
    }

    #[test]
    fn the_token_is_removed_from_the_machine_file_and_its_comments_kept() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "# written by IT\nserver = \"https://r.example\"\nenrolment_token = \"tok\"\n",
        )
        .expect("machine file");
        remove_enrolment_token(&path).expect("removed");
        let text = std::fs::read_to_string(&path).expect("reads");
        assert_eq!(text, "# written by IT\nserver = \"https://r.example\"\n");
        remove_enrolment_token(&dir.path().join("absent.toml")).expect("nothing to remove");
    }

    #[test]
    fn a_profiles_managed_preferences_are_read() {
        let plist = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>ServerUrl</key><string>https://rec.example.com</string>
<key>ServerCaSha256</key><string>ab12</string>
<key>EnrollmentToken</key><string></string>
<key>PayloadIdentifier</key><string>org.capture.agent.settings</string>
</dict></plist>"#;
        let settings = managed_preferences(plist).expect("parses");
        assert_eq!(settings.server.as_deref(), Some("https://rec.example.com"));
        assert_eq!(settings.server_ca_sha256.as_deref(), Some("ab12"));
        assert_eq!(settings.enrolment_token, None);
        assert!(managed_preferences(b"not a plist").is_err());
    }

    #[test]
    // figment's Jail fixes the closure's error type (figment's own, which is large).
    #[allow(clippy::result_large_err)]
    fn the_agents_own_variables_are_not_taken_for_settings() {
        figment::Jail::expect_with(|jail| {
            let dir = jail.directory().to_owned();
            let user = dir.join("agent.toml");
            AgentConfig {
                server: "https://r.example".into(),
                ca_file: None,
                server_ca_sha256: None,
                agent_id: AgentId(uuid::Uuid::from_u128(3)),
                credential: "c".into(),
                source: "synthetic-still".into(),
                proxy: None,
                spool_quota_mb: None,
            }
            .save(&user)
            .map_err(|e| e.to_string())?;
            jail.set_env("CAPTURE_AGENT_CONFIG", user.display());
            jail.set_env("CAPTURE_AGENT_MACHINE_CONFIG", dir.join("m.toml").display());
            jail.set_env("CAPTURE_AGENT_ENROLMENT_TOKEN", "tok");
            jail.set_env("CAPTURE_AGENT_PROXY", "http://proxy.example:3128");
            let loaded = AgentConfig::load_over(&MachineConfig::default(), &user)
                .map_err(|e| e.to_string())?;
            assert_eq!(loaded.proxy.as_deref(), Some("http://proxy.example:3128"));
            Ok(())
        });
    }
}
