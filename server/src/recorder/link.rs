//! The integration's way to the agents: every command passes the call buffer first (so the SCN
//! file exists before the agent's first frame, and is kept, deleted or closed whether or not the
//! agent is still connected), then goes down the agent's connection.

use std::sync::Arc;

use capture_shared::ids::AgentId;
use capture_shared::protocol::ServerMessage;

use super::{CallBuffer, Connections};
use crate::integration::link::AgentLink;

/// [`AgentLink`] through the call buffer to the connections.
#[derive(Debug, Clone)]
pub struct RecorderLink {
    /// The connected agents.
    pub connections: Arc<Connections>,
    /// The call buffer.
    pub buffer: Arc<CallBuffer>,
}

impl AgentLink for RecorderLink {
    fn is_connected(&self, agent: AgentId) -> bool {
        self.connections.is_connected(agent)
    }

    fn last_heartbeat(&self, agent: AgentId) -> Option<(tokio::time::Instant, u64)> {
        self.connections.last_heartbeat(agent)
    }

    fn refusal(&self) -> Option<&'static str> {
        self.buffer.refusal()
    }

    fn send(&self, agent: AgentId, message: ServerMessage) -> bool {
        match &message {
            ServerMessage::Start { contact, .. } => {
                // No file without a connection to fill it: the integration records a gap.
                let Some(monitors) = self.connections.monitors(agent) else {
                    return false;
                };
                self.buffer.open(agent, *contact, monitors);
            }
            ServerMessage::Keep { contact } => self.buffer.keep(*contact),
            ServerMessage::Discard { contact } => self.buffer.discard(*contact),
            ServerMessage::Stop { contact } => self.buffer.stop(*contact),
            ServerMessage::Marker {
                contact, label, at, ..
            } => self.buffer.marker(*contact, label, *at),
            _ => {}
        }
        self.connections.send(agent, message)
    }
}
