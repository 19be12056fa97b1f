//! Unix: XDG paths, a 0600 file, SIGTERM and SIGINT.

use std::path::{Path, PathBuf};

use super::{DPAPI_PREFIX, SecretError};

/// `$XDG_CONFIG_HOME/capture/agent.toml` (or `~/.config/...`).
pub fn user_config_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("capture").join("agent.toml")
}

/// `/etc/capture/agent.toml`, written by the package (server URL, CA) for every user.
pub fn machine_config_path() -> PathBuf {
    PathBuf::from("/etc/capture/agent.toml")
}

/// The file's mode (0600) keeps the credential from other users: stored as it is.
pub fn protect_secret(secret: &str) -> Result<String, SecretError> {
    Ok(secret.to_owned())
}

/// The stored credential.
pub fn reveal_secret(stored: &str) -> Result<String, SecretError> {
    if stored.starts_with(DPAPI_PREFIX) {
        return Err(SecretError::Unprotect(
            "it was protected by Windows's DPAPI".into(),
        ));
    }
    Ok(stored.to_owned())
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// macOS: the managed preferences a configuration profile installs (domain `org.capture.agent`).
#[cfg(target_os = "macos")]
pub const MANAGED_PREFERENCES: &str = "/Library/Managed Preferences/org.capture.agent.plist";

/// The settings an MDM manages: on macOS the configuration profile's managed preferences; none on
/// Linux (the package's `/etc/capture/agent.toml` is the machine file).
pub fn managed_machine_settings() -> Vec<crate::config::MachineConfig> {
    #[cfg(target_os = "macos")]
    {
        match std::fs::read(MANAGED_PREFERENCES) {
            Ok(bytes) => match crate::config::managed_preferences(&bytes) {
                Ok(settings) => return vec![settings],
                Err(error) => {
                    tracing::warn!(%error, path = MANAGED_PREFERENCES, "managed preferences ignored")
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(%error, path = MANAGED_PREFERENCES, "managed preferences unreadable")
            }
        }
    }
    Vec::new()
}

/// A managed enrolment token cannot be removed by the agent: on macOS the profile owns it (the
/// server's use count ends it); Linux has none.
pub fn remove_managed_enrolment_token() -> Result<(), String> {
    #[cfg(target_os = "macos")]
    if std::path::Path::new(MANAGED_PREFERENCES).exists() {
        return Err(format!(
            "{MANAGED_PREFERENCES} is managed by the configuration profile: remove EnrollmentToken from the profile"
        ));
    }
    Ok(())
}
