//! A recording's audio as a plan of frames, its bytes and its digest.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::library::BLOCK_FRAMES;
use super::{
    BEEP_LEAD, BEEP_SPAN, CYCLE_FRAMES, FRAME_BYTES, FRAME_DURATION, FrameLibrary, TAG_BYTES,
    frame_at,
};

/// Everything but the tag: recordings with the same shape differ only in their last frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shape {
    frames: u32,
    /// Frame ranges of true silence (on hold).
    silences: Vec<Range<u32>>,
    /// Frames whose first decoded sample is a beep's onset, ascending.
    beeps: Vec<u32>,
}

/// What one recording's MP3 holds, in frames; the bytes are derived from it on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPlan {
    shape: Shape,
    tag: [u8; TAG_BYTES],
}

/// SHA-256 states after the body (all but the last frame) of each shape seen: a recording's digest
/// then costs one frame of hashing.
#[derive(Debug, Default)]
pub struct Digests {
    bodies: HashMap<Shape, Sha256>,
}

/// Shapes kept at most (a bound on memory, not on correctness).
const DIGEST_CACHE: usize = 4096;

impl Digests {
    /// SHA-256 of `plan`'s file.
    pub fn sha256(&mut self, plan: &AudioPlan, library: &FrameLibrary) -> [u8; 32] {
        if self.bodies.len() >= DIGEST_CACHE {
            self.bodies.clear();
        }
        let body = self.bodies.entry(plan.shape.clone()).or_insert_with(|| {
            let mut hasher = Sha256::new();
            plan.for_each_body_chunk(library, |chunk| hasher.update(chunk));
            hasher
        });
        let mut hasher = body.clone();
        hasher.update(library.tail(&plan.tag));
        hasher.finalize().into()
    }
}

impl AudioPlan {
    /// A recording of `duration_s` seconds of audio with beeps at `beeps` (offsets into the audio,
    /// besides the one at 0 every recording starts with) and silence over `silences`; `tag` makes
    /// its bytes unique.
    pub fn new(
        duration_s: u32,
        beeps: &[Duration],
        silences: &[Range<Duration>],
        tag: [u8; TAG_BYTES],
    ) -> AudioPlan {
        let frames = frame_at(Duration::from_secs(u64::from(duration_s))).max(1);
        let mut beep_frames: Vec<u32> = std::iter::once(0)
            .chain(beeps.iter().map(|b| frame_at(*b)))
            .filter(|f| *f < frames)
            .collect();
        beep_frames.sort_unstable();
        beep_frames.dedup();
        AudioPlan {
            shape: Shape {
                frames,
                silences: silences
                    .iter()
                    .map(|r| frame_at(r.start)..frame_at(r.end).min(frames))
                    .filter(|r| !r.is_empty())
                    .collect(),
                beeps: beep_frames,
            },
            tag,
        }
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u32 {
        self.shape.frames
    }

    /// The frames where beeps start, ascending (the first is 0).
    pub fn beep_frames(&self) -> impl Iterator<Item = u32> + '_ {
        self.shape.beeps.iter().copied()
    }

    /// Size of the file in bytes.
    pub fn size_bytes(&self) -> u64 {
        u64::from(self.shape.frames) * FRAME_BYTES as u64
    }

    /// The exact duration of the file.
    pub fn duration(&self) -> Duration {
        FRAME_DURATION * self.shape.frames
    }

    /// The beep whose window covers `index` (the latest one wins).
    fn beep_at(&self, index: u32) -> Option<u32> {
        self.shape.beeps.iter().rev().copied().find(|beep| {
            let start = beep.saturating_sub(BEEP_LEAD as u32);
            (start..beep + BEEP_SPAN as u32).contains(&index)
        })
    }

    fn in_silence(&self, index: u32) -> bool {
        self.shape.silences.iter().any(|r| r.contains(&index))
    }

    /// The first frame after `index` where a beep window or a silence starts.
    fn next_special(&self, index: u32) -> u32 {
        let beeps = self
            .shape
            .beeps
            .iter()
            .map(|b| b.saturating_sub(BEEP_LEAD as u32));
        let silences = self.shape.silences.iter().map(|r| r.start);
        beeps
            .chain(silences)
            .filter(|s| *s > index)
            .min()
            .unwrap_or(u32::MAX)
    }

    /// Feeds the body (every frame but the last) in order, long background runs as big slices.
    fn for_each_body_chunk(&self, library: &FrameLibrary, mut sink: impl FnMut(&[u8])) {
        let end = self.shape.frames.saturating_sub(1);
        let mut index = 0;
        while index < end {
            if let Some(frame) = self
                .beep_at(index)
                .and_then(|b| library.beep_frame(b, index))
            {
                sink(frame);
                index += 1;
                continue;
            }
            if self.in_silence(index) {
                sink(&library.silence);
                index += 1;
                continue;
            }
            let run_end = self.next_special(index).min(end);
            while index < run_end {
                let phase = index as usize % CYCLE_FRAMES;
                let count = (run_end - index).min((BLOCK_FRAMES - phase) as u32);
                let from = phase * FRAME_BYTES;
                if let Some(slice) = library
                    .tone_block
                    .get(from..from + count as usize * FRAME_BYTES)
                {
                    sink(slice);
                }
                index += count;
            }
        }
    }

    /// Appends the file's bytes to `out`.
    pub fn write(&self, library: &FrameLibrary, out: &mut Vec<u8>) {
        out.reserve(usize::try_from(self.size_bytes()).unwrap_or(0));
        self.for_each_body_chunk(library, |chunk| out.extend_from_slice(chunk));
        out.extend_from_slice(&library.tail(&self.tag));
    }

    /// The file's bytes.
    pub fn bytes(&self, library: &FrameLibrary) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(library, &mut out);
        out
    }

    /// SHA-256 of the file, computed in full.
    pub fn sha256(&self, library: &FrameLibrary) -> [u8; 32] {
        let mut hasher = Sha256::new();
        self.for_each_body_chunk(library, |chunk| hasher.update(chunk));
        hasher.update(library.tail(&self.tag));
        hasher.finalize().into()
    }
}
