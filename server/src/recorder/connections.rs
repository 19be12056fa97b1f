//! The registry of connected agents, and the `AgentLink` the integration sends commands through.

use std::collections::HashMap;
use std::sync::Mutex;

use capture_shared::ids::AgentId;
use capture_shared::protocol::{MonitorInfo, RefusalCode, ServerMessage};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::integration::link::AgentLink;

/// One live connection.
#[derive(Debug)]
struct Entry {
    connection: u64,
    commands: mpsc::Sender<ServerMessage>,
    info: ConnectedAgent,
    /// When its latest heartbeat arrived, on the runtime's clock.
    heartbeat_at: Option<tokio::time::Instant>,
}

/// What `GET /api/v1/agents` shows of a connected agent.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectedAgent {
    /// Operating-system user.
    pub os_user: String,
    /// Machine name.
    pub machine: String,
    /// Agent software version.
    pub agent_version: String,
    /// How it captures the screen (`x11`, `dxgi`, `gdi`, ...), as it last reported.
    pub capture_backend: Option<String>,
    /// Its monitors.
    pub monitors: Vec<MonitorInfo>,
    /// When it connected, UTC ms.
    pub connected_at_ms: i64,
    /// When its latest heartbeat arrived, UTC ms.
    pub last_heartbeat_ms: Option<i64>,
    /// Bytes in its offline spool, from its latest heartbeat.
    pub spool_bytes: u64,
}

/// Connected agents; the newest connection of an agent replaces an older one.
#[derive(Debug, Default)]
pub struct Connections {
    entries: Mutex<HashMap<AgentId, Entry>>,
    next_connection: std::sync::atomic::AtomicU64,
}

impl Connections {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a connection; returns its number (to unregister exactly it later).
    pub fn register(
        &self,
        agent: AgentId,
        commands: mpsc::Sender<ServerMessage>,
        info: ConnectedAgent,
    ) -> u64 {
        let connection = self
            .next_connection
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self
            .entries()
            .insert(
                agent,
                Entry {
                    connection,
                    commands,
                    info,
                    heartbeat_at: None,
                },
            )
            .is_some()
        {
            tracing::info!(%agent, "agent reconnected; the older connection is replaced");
        }
        connection
    }

    /// Removes a connection if it is still the agent's current one.
    pub fn unregister(&self, agent: AgentId, connection: u64) {
        let mut entries = self.entries();
        if entries
            .get(&agent)
            .is_some_and(|e| e.connection == connection)
        {
            entries.remove(&agent);
        }
    }

    /// The monitors of a connected agent.
    pub fn monitors(&self, agent: AgentId) -> Option<Vec<MonitorInfo>> {
        self.entries().get(&agent).map(|e| e.info.monitors.clone())
    }

    /// Replaces a connected agent's monitor layout.
    pub fn set_monitors(&self, agent: AgentId, connection: u64, monitors: Vec<MonitorInfo>) {
        if let Some(entry) = self.entries().get_mut(&agent)
            && entry.connection == connection
        {
            entry.info.monitors = monitors;
        }
    }

    /// Records what a connected agent reported in its latest heartbeat.
    pub fn set_heartbeat(
        &self,
        agent: AgentId,
        connection: u64,
        spool_bytes: u64,
        capture_backend: Option<String>,
    ) {
        if let Some(entry) = self.entries().get_mut(&agent)
            && entry.connection == connection
        {
            entry.info.spool_bytes = spool_bytes;
            if capture_backend.is_some() {
                entry.info.capture_backend = capture_backend;
            }
            entry.info.last_heartbeat_ms = Some(jiff::Timestamp::now().as_millisecond());
            entry.heartbeat_at = Some(tokio::time::Instant::now());
        }
    }

    /// Closes `agent`'s connection, if it has one, with a typed refusal (its credential was
    /// revoked or replaced); whether it was connected. The session sends the refusal and closes
    /// as soon as it reads it, ahead of any command queued after it.
    pub fn disconnect(&self, agent: AgentId, code: RefusalCode, message: &str) -> bool {
        let Some(entry) = self.entries().remove(&agent) else {
            return false;
        };
        // A full queue means an agent that reads nothing: dropping the sender closes it too.
        let _ = entry
            .commands
            .try_send(ServerMessage::refusal(code, message));
        true
    }

    /// The connected agents.
    pub fn snapshot(&self) -> Vec<(AgentId, ConnectedAgent)> {
        self.entries()
            .iter()
            .map(|(id, e)| (*id, e.info.clone()))
            .collect()
    }
}

impl AgentLink for Connections {
    fn is_connected(&self, agent: AgentId) -> bool {
        self.entries()
            .get(&agent)
            .is_some_and(|e| !e.commands.is_closed())
    }

    fn last_heartbeat(&self, agent: AgentId) -> Option<(tokio::time::Instant, u64)> {
        self.entries()
            .get(&agent)
            .filter(|e| !e.commands.is_closed())
            .and_then(|e| Some((e.heartbeat_at?, e.info.spool_bytes)))
    }

    fn send(&self, agent: AgentId, message: ServerMessage) -> bool {
        match self.entries().get(&agent) {
            Some(entry) => match entry.commands.try_send(message) {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(%agent, %error, "command not queued for the agent");
                    false
                }
            },
            None => false,
        }
    }
}
