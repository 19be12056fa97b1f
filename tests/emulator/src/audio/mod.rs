//! Recordings' audio: real MP3 files (MPEG-2 Layer III, mono, 16 kHz, 32 kbit/s CBR) assembled
//! frame by frame from a small library encoded once with LAME.
//!
//! Why this format: Webex Calling recordings are mono voice; the published example sizes (60 s →
//! about 244 KB) match 32 kbit/s. At 16 kHz a Layer III frame is 576 samples = 36 ms and exactly
//! 144 bytes (no padding), so a recording of `d` seconds is `round(d / 0.036)` frames and its
//! duration is within half a frame of `d`. With the bit reservoir off, frames are independent and
//! a recording costs a memcpy per frame instead of an encode.
//!
//! Content: the background everywhere, true silence where the plan says so (a call on hold), and
//! a 200 ms 1 kHz beep whose decoded onset lands on the first sample of the frame nearest to each
//! requested offset (so within half a frame, 18 ms, of it; a beep at 0 is heard within the first
//! frame, as a decoder starting cold ramps in). Beeps are placed for a decoder that trims nothing:
//! the files carry no Xing/LAME header, so ffmpeg and others output every frame's samples.
//!
//! Every file ends with a silent frame whose ancillary bytes (which decoders ignore) carry 16
//! bytes derived from the recording id, so no two recordings have the same bytes or digest.

mod encode;
mod library;
mod plan;
mod signal;

use std::time::Duration;

pub use encode::AudioError;
pub use library::FrameLibrary;
pub use plan::{AudioPlan, Digests};

/// Sample rate of every recording.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples per MPEG-2 Layer III frame.
pub const FRAME_SAMPLES: usize = 576;
/// Bytes per frame at 32 kbit/s and 16 kHz (72 × 32000 / 16000).
pub const FRAME_BYTES: usize = 144;
/// The duration of one frame.
pub const FRAME_DURATION: Duration = Duration::from_millis(36);

/// One encoded frame.
pub type Frame = [u8; FRAME_BYTES];

/// Frames in one background cycle (288 ms).
const CYCLE_FRAMES: usize = 8;
/// Context frames copied before a beep's onset frame, so that the decoder's overlap with the
/// previous frames matches the library stream the beep was encoded in.
const BEEP_LEAD: usize = 2;
/// Frames copied from a beep's onset frame on (the 200 ms beep and its decoded tail).
const BEEP_SPAN: usize = 8;
/// Bytes of the recording's tag in the last frame.
const TAG_BYTES: usize = 16;

/// The frame nearest to `offset`.
pub fn frame_at(offset: Duration) -> u32 {
    let frame = FRAME_DURATION.as_micros();
    u32::try_from((offset.as_micros() + frame / 2) / frame).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
