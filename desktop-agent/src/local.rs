//! What the agent shares with the tray on its machine: a lock that lets one agent run per user
//! (the tray, autostart and a user's second start all try; only the first records), and the
//! status file the agent rewrites every second and the tray reads. Both sit beside the user's
//! configuration file.

use std::fs::File;
use std::path::{Path, PathBuf};

use capture_shared::ids::AgentId;
use serde::{Deserialize, Serialize};

use crate::agent::Status;

/// How often the running agent rewrites its status file.
pub const STATUS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A status file older than this is a dead agent's.
pub const STATUS_STALE_MS: u64 = 5_000;

/// The exit code of an agent that found another running for the same user.
pub const EXIT_ALREADY_RUNNING: u8 = 3;

/// The exit code of an agent the recorder refused for good (revoked or unknown credential).
pub const EXIT_REFUSED: u8 = 2;

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The lock file beside the user's configuration `config`.
pub fn lock_path(config: &Path) -> PathBuf {
    config.with_file_name("agent.lock")
}

/// The status file beside the user's configuration `config`.
pub fn status_path(config: &Path) -> PathBuf {
    config.with_file_name("status.json")
}

/// The offline spool's directory, beside the user's configuration file.
pub fn spool_path(config: &Path) -> PathBuf {
    config.with_file_name("spool")
}

/// Held for as long as this process is the user's agent; released when dropped or when the
/// process dies, however it dies (an OS file lock).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Takes the lock at `path`; `Ok(None)` when another agent holds it.
    pub fn acquire(path: &Path) -> std::io::Result<Option<InstanceLock>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(InstanceLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

/// What the agent is doing, as the tray shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Started, not yet connected.
    Starting,
    /// Trading the installer's enrolment token for a credential.
    Enrolling,
    /// Connected, no contact.
    Connected,
    /// Connected, recording at least one contact.
    Recording,
    /// A contact's recording is paused (by the agent or an application, where the server's
    /// policy allows it): no pixel leaves the machine.
    Paused,
    /// The recorder cannot be reached; the agent keeps trying.
    Disconnected,
    /// The agent cannot go on by itself (refused credential, no configuration, no screen).
    Error,
}

/// The status file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The agent's process.
    pub pid: u32,
    /// When this was written (Unix ms).
    pub updated_at_ms: u64,
    /// The state.
    pub state: AgentState,
    /// The recorder.
    pub server: String,
    /// The agent's id, once enrolled.
    pub agent_id: Option<AgentId>,
    /// The user and machine it records for.
    pub os_user: String,
    /// The machine.
    pub machine: String,
    /// Contacts being recorded now.
    pub recording: usize,
    /// When the last contact started (Unix ms).
    pub last_contact_at_ms: Option<u64>,
    /// When the agent last talked to the recorder (Unix ms): now while connected.
    pub last_connected_at_ms: Option<u64>,
    /// What went wrong last (connection lost, refused …).
    pub last_error: Option<String>,
    /// Frames sent since the agent started.
    pub frames_sent: u64,
}

impl StatusReport {
    /// A report of `status` with the state it implies.
    pub fn of(
        status: &Status,
        server: &str,
        agent_id: Option<AgentId>,
        previous: Option<&StatusReport>,
    ) -> StatusReport {
        let now = unix_ms();
        let state = match (status.connected, status.recording.is_empty()) {
            _ if status.not_permitted.is_some() => AgentState::Error,
            (true, false) => AgentState::Recording,
            (true, true) => AgentState::Connected,
            (false, _) if status.ever_connected || status.last_error.is_some() => {
                AgentState::Disconnected
            }
            (false, _) => AgentState::Starting,
        };
        StatusReport {
            pid: std::process::id(),
            updated_at_ms: now,
            state,
            server: server.to_owned(),
            agent_id,
            os_user: crate::platform::os_user(),
            machine: crate::platform::machine_name(),
            recording: status.recording.len(),
            last_contact_at_ms: status.last_contact_at_ms,
            last_connected_at_ms: if status.connected {
                Some(now)
            } else {
                previous.and_then(|p| p.last_connected_at_ms)
            },
            last_error: status
                .not_permitted
                .clone()
                .or_else(|| status.last_error.clone()),
            frames_sent: status.frames_sent,
        }
    }

    /// A report that says only `state` (enrolling, or an error that stops the agent).
    pub fn only(state: AgentState, server: &str, error: Option<String>) -> StatusReport {
        let mut report = StatusReport::of(&Status::default(), server, None, None);
        report.state = state;
        report.last_error = error;
        report
    }

    /// Writes it to `path` atomically (the tray never reads half a file).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, path)
    }

    /// Reads the report at `path`.
    pub fn read(path: &Path) -> std::io::Result<StatusReport> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// Whether it was written recently enough to describe a live agent (an error report is the
    /// last word of an agent that stopped, and stays true).
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.updated_at_ms) <= STATUS_STALE_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_per_user_holds_the_lock_until_it_ends() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = lock_path(&dir.path().join("agent.toml"));
        let first = InstanceLock::acquire(&path)
            .expect("lock")
            .expect("first agent");
        assert!(
            InstanceLock::acquire(&path).expect("lock").is_none(),
            "a second agent is refused"
        );
        drop(first);
        assert!(InstanceLock::acquire(&path).expect("lock").is_some());
    }

    #[test]
    fn the_state_follows_the_connection_and_the_contacts() {
        let mut status = Status::default();
        let state = |s: &Status| StatusReport::of(s, "https://r", None, None).state;
        assert_eq!(state(&status), AgentState::Starting);
        status.connected = true;
        status.ever_connected = true;
        assert_eq!(state(&status), AgentState::Connected);
        status
            .recording
            .push(capture_shared::ids::ContactId(uuid::Uuid::from_u128(1)));
        assert_eq!(state(&status), AgentState::Recording);
        status.connected = false;
        assert_eq!(state(&status), AgentState::Disconnected);
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = status_path(&dir.path().join("agent.toml"));
        let report = StatusReport::of(&status, "https://r", None, None);
        report.write(&path).expect("written");
        let read = StatusReport::read(&path).expect("read");
        assert_eq!(read, report);
        assert!(read.is_live(read.updated_at_ms + STATUS_STALE_MS));
        assert!(!read.is_live(read.updated_at_ms + STATUS_STALE_MS + 1));
    }
}
