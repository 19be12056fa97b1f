//! How commands reach agents' desktops: the recorder's websocket connections implement
//! [`AgentLink`]. Until an agent is connected, a command cannot be delivered and the contact
//! records a gap instead of failing.

use capture_shared::ids::AgentId;
use capture_shared::protocol::ServerMessage;

/// Delivery of commands to connected agents.
pub trait AgentLink: Send + Sync + std::fmt::Debug {
    /// Whether `agent` has a live connection.
    fn is_connected(&self, agent: AgentId) -> bool;
    /// Queues `message` for `agent`; false when it is not connected.
    fn send(&self, agent: AgentId, message: ServerMessage) -> bool;
    /// When `agent`'s latest heartbeat arrived and the bytes it said wait in its spool; `None`
    /// when it is not connected or has sent none on this connection.
    fn last_heartbeat(&self, _agent: AgentId) -> Option<(tokio::time::Instant, u64)> {
        None
    }
    /// Why no new contact can be recorded now (the recorder's disk is full or failing): the
    /// contact's screen is then a gap with this reason. `None`: contacts are taken.
    fn refusal(&self) -> Option<&'static str> {
        None
    }
}

/// The link while no screen path exists: no agent is ever connected.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAgentLink;

impl AgentLink for NoAgentLink {
    fn is_connected(&self, _agent: AgentId) -> bool {
        false
    }

    fn send(&self, _agent: AgentId, _message: ServerMessage) -> bool {
        false
    }
}

/// Gap reason: the person's agent is enrolled but not connected.
pub const GAP_AGENT_OFFLINE: &str = "screen not captured: agent offline";

/// Gap reason: no desktop agent is enrolled for the person.
pub const GAP_NOT_ENROLLED: &str = "screen not captured: no desktop agent enrolled for this person";
