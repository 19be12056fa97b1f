//! The binary video-frame message: a fixed 36-byte little-endian header, then one H.264 access
//! unit in Annex-B form.
//!
//! ```text
//! offset size field
//!      0    1 header version (1)
//!      1    1 flags (bit 0: keyframe; other bits must be 0)
//!      2    2 monitor id
//!      4   16 contact id (UUID bytes)
//!     20    8 sequence number (per contact and monitor, from 0)
//!     28    8 capture time, µs on the agent's monotonic clock
//!     36    … access unit (at least one byte)
//! ```

use uuid::Uuid;

use super::{MAX_FRAME_BYTES, ProtocolError};
use crate::bytes::{Reader, Writer};
use crate::ids::{ContactId, MonitorId};
use crate::time::AgentMicros;

/// The version of the frame header layout.
pub const FRAME_HEADER_VERSION: u8 = 1;

/// Size of the fixed header, in bytes.
pub const FRAME_HEADER_BYTES: usize = 36;

const FLAG_KEYFRAME: u8 = 0b0000_0001;

/// The fixed header of a video-frame message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The contact being recorded.
    pub contact: ContactId,
    /// The monitor the frame shows.
    pub monitor: MonitorId,
    /// Sequence number per contact and monitor, from 0, without gaps.
    pub sequence: u64,
    /// When the screen was captured, on the agent's monotonic clock.
    pub captured: AgentMicros,
    /// Whether the access unit is an IDR (decodable on its own).
    pub keyframe: bool,
}

/// Encodes a frame message: the header followed by `access_unit`.
pub fn encode_frame(header: &FrameHeader, access_unit: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + access_unit.len());
    out.put_u8(FRAME_HEADER_VERSION);
    out.put_u8(if header.keyframe { FLAG_KEYFRAME } else { 0 });
    out.put_u16(header.monitor.0);
    out.extend_from_slice(header.contact.0.as_bytes());
    out.put_u64(header.sequence);
    out.put_u64(header.captured.0);
    out.extend_from_slice(access_unit);
    out
}

/// Decodes a frame message into its header and access unit, enforcing [`MAX_FRAME_BYTES`].
pub fn decode_frame(message: &[u8]) -> Result<(FrameHeader, &[u8]), ProtocolError> {
    if message.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge {
            what: "frame",
            size: message.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    let mut reader = Reader::new(message);
    let short = ProtocolError::BadFrame("shorter than the 36-byte header");
    let version = reader.u8().ok_or(short.clone())?;
    if version != FRAME_HEADER_VERSION {
        return Err(ProtocolError::BadFrame("unknown frame header version"));
    }
    let flags = reader.u8().ok_or(short.clone())?;
    if flags & !FLAG_KEYFRAME != 0 {
        return Err(ProtocolError::BadFrame("unknown flag bits set"));
    }
    let monitor = MonitorId(reader.u16().ok_or(short.clone())?);
    let contact = ContactId(Uuid::from_bytes(reader.array().ok_or(short.clone())?));
    let sequence = reader.u64().ok_or(short.clone())?;
    let captured = AgentMicros(reader.u64().ok_or(short)?);
    let access_unit = reader.rest();
    if access_unit.is_empty() {
        return Err(ProtocolError::BadFrame("empty access unit"));
    }
    let header = FrameHeader {
        contact,
        monitor,
        sequence,
        captured,
        keyframe: flags & FLAG_KEYFRAME != 0,
    };
    Ok((header, access_unit))
}
