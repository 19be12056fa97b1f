//! Deterministic SCN content: a record for every sequence number, so a reader's output can be
//! checked against what a writer must have written without keeping a copy.

use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::MonitorInfo;
use capture_shared::scn::{ClockAnchor, Record, ScnHeader};
use capture_shared::time::{AgentMicros, UtcMicros};
use uuid::Uuid;

/// The one monitor of the samples and the fake agent: primary, 1920×1080 at scale 1.
pub fn primary_1080p() -> MonitorInfo {
    MonitorInfo {
        id: MonitorId(0),
        x: 0,
        y: 0,
        width: 1920,
        height: 1080,
        scale: 1.0,
        primary: true,
    }
}

/// A header for a one-monitor 1080p contact.
pub fn header() -> ScnHeader {
    ScnHeader {
        agent: AgentId(Uuid::from_u128(0xa9e47)),
        contact: ContactId(Uuid::from_u128(0xc047ac7)),
        created: UtcMicros(1_795_000_000_000_000),
        monitors: vec![primary_1080p()],
        clock_anchor: Some(ClockAnchor {
            agent: AgentMicros(0),
            server: UtcMicros(1_795_000_000_000_000),
            rtt_us: 500,
        }),
    }
}

/// The size of video record `sequence`: mostly small P-frames, a keyframe every 50, like a real
/// screen stream (first IDR ≈ 70 KB, P-frames 1–12 KB).
pub fn video_size(sequence: u64) -> usize {
    if sequence.is_multiple_of(50) {
        70_000
    } else {
        1_000 + (sequence.wrapping_mul(7_919) % 11_000) as usize
    }
}

/// The size of video record `sequence` in a stream of large frames (1–4 MB, like 4K keyframes of
/// a busy screen): large enough that a kill often lands in the middle of writing one.
pub fn large_video_size(sequence: u64) -> usize {
    1_000_000 + (sequence.wrapping_mul(7_919_113) % 3_000_000) as usize
}

/// The sample stream of record sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// A realistic screen stream ([`video_size`]).
    Screen,
    /// Large frames ([`large_video_size`]).
    Large,
}

impl Sizes {
    /// The size of record `sequence`.
    pub fn of(self, sequence: u64) -> usize {
        match self {
            Sizes::Screen => video_size(sequence),
            Sizes::Large => large_video_size(sequence),
        }
    }
}

/// Video record `sequence` of a realistic screen stream.
pub fn video(sequence: u64) -> Record {
    video_sized(sequence, video_size(sequence))
}

/// Video record `sequence` with `size` bytes of content derived from the sequence number.
pub fn video_sized(sequence: u64, size: usize) -> Record {
    let mut data = sequence.to_le_bytes().repeat(size.div_ceil(8));
    data.truncate(size);
    Record::Video {
        monitor: MonitorId(0),
        sequence,
        captured: AgentMicros(sequence * 200_000),
        keyframe: sequence.is_multiple_of(50),
        data,
    }
}
