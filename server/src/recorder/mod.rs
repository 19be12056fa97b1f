//! The recorder: the agents' websocket at `/agent/v1` (DESIGN.md §3).
//!
//! Each connection starts with a `Hello` (protocol version, agent id, credential) answered by a
//! `Welcome` with the stream settings, or a typed `Refused` and a close. A connected agent is
//! registered in [`Connections`], which the integration reaches through `AgentLink` to send its
//! commands (start, keep, discard, marker, stop) — through [`RecorderLink`], which applies each
//! to the [`CallBuffer`] first. Frames are validated and appended to the contact's SCN file;
//! acknowledgements go back once they are on stable storage. Clock pings are answered with
//! server time, and the agents' clock measurements are written into their open files.

mod appender;
mod buffer;
mod connections;
mod disk;
mod link;
pub mod load;
mod session;
mod writer;

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use capture_shared::protocol::{
    MAX_CONTROL_MESSAGE_BYTES, MAX_FRAME_BYTES, READ_BUFFER_BYTES, StreamSettings,
};

pub use buffer::{
    BUFFER_DIR, CallBuffer, FILE_QUEUE_BYTES, GAP_SPOOL_NOT_RECEIVED, Recording, STOP_GRACE,
    Verdict,
};
pub use connections::{ConnectedAgent, Connections};
pub use disk::GAP_DISK_FULL;
pub use link::RecorderLink;

use crate::clock::Clock;
use crate::store::Store;

/// Commands queued for one agent at most; past this the agent counts as unreachable.
pub const COMMAND_QUEUE: usize = 256;

/// What the websocket route needs.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// The store (agent credentials).
    pub store: Store,
    /// Connected agents.
    pub connections: Arc<Connections>,
    /// The call buffer frames are written to.
    pub buffer: Arc<CallBuffer>,
    /// Protocol violations, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Settings sent in `Welcome`.
    pub settings: StreamSettings,
    /// The clock (pong timestamps).
    pub clock: Clock,
    /// Cancelled when the server starts shutting down: sessions then refuse with
    /// `shutting_down` and close, so agents reconnect elsewhere or later and the shutdown does
    /// not wait out its grace period on open websockets.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// `GET /agent/v1`: upgrades to a websocket and runs the session.
pub async fn agent_socket(State(recorder): State<Recorder>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_FRAME_BYTES.max(MAX_CONTROL_MESSAGE_BYTES))
        .max_frame_size(MAX_FRAME_BYTES.max(MAX_CONTROL_MESSAGE_BYTES))
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| session::run(recorder, socket))
}

impl Recorder {
    fn metrics_violation(&self) {
        self.metrics.agent_violations.inc();
    }
}
