//! The agent ↔ server wire protocol (DESIGN.md §3).
//!
//! A websocket over TLS at `wss://<server>/agent/v1`. Text messages are typed JSON control messages
//! ([`AgentMessage`] up, [`ServerMessage`] down); binary messages are video frames: a fixed
//! [`FrameHeader`] followed by one H.264 access unit in Annex-B form. The first message of a
//! connection is [`Hello`]; the server answers [`Welcome`] or a typed [`Refusal`] and closes.
//! Every limit below is enforced by the decoders here, on both sides.

mod clock;
mod control;
mod frame;

use std::time::Duration;

pub use clock::{ClockEstimator, ClockSample};
pub use control::{
    AgentMessage, HeldContact, Hello, MonitorInfo, PointerSample, Refusal, RefusalCode,
    ServerMessage, SpooledContact, StreamSettings, StreamTotal, VideoCodec, Welcome,
};
pub use frame::{FrameHeader, decode_frame, encode_frame};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Every protocol version this build accepts in a `Hello`.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[u16] = &[PROTOCOL_VERSION];

/// Largest control (text) message, in bytes. A `Hello` with 16 monitors is under 4 KiB.
pub const MAX_CONTROL_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest binary frame message (header + access unit), in bytes. A 4K keyframe of a busy
/// screen at our bitrate caps stays well under 2 MiB; anything bigger is refused, not buffered.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// Each websocket end's read buffer, in bytes (tungstenite's `read_buffer_size`). tungstenite
/// keeps this much per connection and zeroes its free part before every read, ready or not: at
/// its 128 KiB default a server of 2,500 agents spent about 5 % of its CPU in `memset` and
/// 320 MB on buffers. 16 KiB is one TLS record's plaintext, the most one read of the TLS stream
/// returns at a time; a bigger message still arrives whole (the buffer grows to its length).
pub const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Most monitors one agent may announce.
pub const MAX_MONITORS: usize = 16;

/// Most streams one contact may have: a monitor connected, removed or changed during a contact
/// ends its stream and starts another (see the agent's `capture::live`).
pub const MAX_STREAMS: usize = 64;

/// Largest width or height of one monitor, in pixels.
pub const MAX_MONITOR_DIMENSION: u32 = 16_384;

/// Longest free-text field (names, versions, reasons), in bytes.
pub const MAX_TEXT_BYTES: usize = 256;

/// Longest agent credential, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 512;

/// Interval at which each side sends a heartbeat or ping when otherwise idle.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Silence after which a peer is considered gone and the connection is closed.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(20);

/// Time the server waits for the `Hello` after the websocket opens.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Interval between clock-offset measurements (ping/pong) on an open connection.
pub const CLOCK_SYNC_INTERVAL: Duration = Duration::from_secs(30);

/// Most frames an agent may send without an acknowledgement; past this it spools or waits.
pub const MAX_FRAMES_IN_FLIGHT: u32 = 120;

/// Most contacts a `Hello` may report in the agent's spool (a `Hello` stays far below
/// [`MAX_CONTROL_MESSAGE_BYTES`]: about 150 bytes each with two monitors).
pub const MAX_SPOOLED_CONTACTS: usize = 256;

/// Most pointer positions in one `Pointer` message.
pub const MAX_POINTER_SAMPLES: usize = 64;

/// Why a control message or frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The peer speaks a protocol version this build does not.
    #[error("unsupported protocol version {got} (supported: {supported:?})")]
    UnsupportedVersion {
        /// The version the peer announced.
        got: u16,
        /// The versions this build accepts.
        supported: &'static [u16],
    },
    /// A message is larger than its limit.
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What kind of message.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A control message is not valid JSON of a known message type.
    #[error("malformed control message: {0}")]
    Malformed(String),
    /// A field is out of its documented range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A binary frame is malformed.
    #[error("malformed frame: {0}")]
    BadFrame(&'static str),
}

/// Refuses protocol versions this build does not speak.
pub fn check_version(version: u16) -> Result<(), ProtocolError> {
    if SUPPORTED_PROTOCOL_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(ProtocolError::UnsupportedVersion {
            got: version,
            supported: SUPPORTED_PROTOCOL_VERSIONS,
        })
    }
}

#[cfg(test)]
mod tests;
