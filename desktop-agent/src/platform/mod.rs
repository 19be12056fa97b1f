//! What differs per OS outside the capture: where the configuration lives, how the credential
//! is kept from other users, and which signals stop the agent. One module per OS, selected once.
//!
//! | | Linux (and macOS, uncompiled) | Windows |
//! |---|---|---|
//! | user file | `$XDG_CONFIG_HOME/capture/agent.toml` | `%LOCALAPPDATA%\Capture\agent.toml` |
//! | machine file (installer) | `/etc/capture/agent.toml` | `%ProgramData%\Capture\agent.toml` |
//! | managed settings (over it) | macOS: the profile's `org.capture.agent` preferences | the MSI's `HKLM\Software\Capture\Agent` |
//! | credential | in the user file, mode 0600 | DPAPI-protected (user scope) in the user file |
//! | stop | SIGTERM, SIGINT | Ctrl-C, Ctrl-Break, console close, logoff, shutdown |

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

#[cfg(windows)]
#[path = "windows.rs"]
#[allow(unsafe_code)]
mod imp;

pub use imp::{
    machine_config_path, managed_machine_settings, protect_secret, remove_managed_enrolment_token,
    reveal_secret, shutdown_signal, user_config_path, write_private,
};

/// The logged-in user's name.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// The machine's name.
pub fn machine_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The prefix of a credential protected with Windows's DPAPI in the configuration file.
pub const DPAPI_PREFIX: &str = "dpapi:";

/// Why a protected secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Protected by another OS or user, or damaged.
    #[error("the credential cannot be unprotected here ({0}): enrol this machine again")]
    Unprotect(String),
    /// The OS refused to protect it.
    #[error("the credential cannot be protected: {0}")]
    Protect(String),
}
