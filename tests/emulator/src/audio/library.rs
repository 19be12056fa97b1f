//! The frame library: the few encoded frames every recording is assembled from.

use super::encode::{self, AudioError};
use super::{
    BEEP_LEAD, BEEP_SPAN, CYCLE_FRAMES, FRAME_BYTES, FRAME_SAMPLES, Frame, TAG_BYTES, signal,
};

/// The frame of the library beep stream whose first decoded sample is the beep's onset.
const BEEP_ONSET_FRAME: usize = 8;
/// LAME's encoder delay in samples (`ENCDELAY` in LAME 3.100).
const ENCODER_DELAY: usize = 576;
/// An MP3 decoder's own delay in samples (528 + 1, as used by LAME's gapless info).
const DECODER_DELAY: usize = 529;
/// Background cycles in [`FrameLibrary::tone_block`], so long runs hash and copy in big slices.
const BLOCK_CYCLES: usize = 64;

/// The encoded frames recordings are assembled from.
#[derive(Debug, Clone)]
pub struct FrameLibrary {
    /// `BLOCK_CYCLES` background cycles back to back.
    pub(super) tone_block: Vec<u8>,
    /// A frame of true silence.
    pub(super) silence: Frame,
    /// Per background phase `v`: the frames of a beep, from `BEEP_LEAD` frames before its onset.
    beeps: Vec<Vec<Frame>>,
    /// The frames of a beep at the very start of a file, where no context frames can precede it.
    start_beep: Vec<Frame>,
}

/// Bytes of a frame's header, side information and main data (the rest is ancillary data).
/// MPEG-2 mono, no CRC: 4 header bytes, 9 side-information bytes with `part2_3_length` in bits
/// 9..21.
fn used_bytes(frame: &Frame) -> usize {
    let bits = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let part2_3_length = (bits >> (32 - 21)) & 0x0FFF;
    4 + 9 + (part2_3_length as usize).div_ceil(8)
}

impl FrameLibrary {
    /// Encodes the library (a few hundred frames; tens of milliseconds; run it off the runtime).
    pub fn encode() -> Result<FrameLibrary, AudioError> {
        let short = |what: &str| AudioError::Output(format!("too few {what} frames"));
        let tone_pcm: Vec<i16> = (0..CYCLE_FRAMES * 4 * FRAME_SAMPLES)
            .map(|n| signal::to_i16(signal::background(n)))
            .collect();
        let tone_frames = encode::encode_frames(&tone_pcm)?;
        // Frame 2 × cycle is well past the encoder's start-up and at cycle position 0.
        let tone = tone_frames
            .get(2 * CYCLE_FRAMES..3 * CYCLE_FRAMES)
            .ok_or_else(|| short("background"))?
            .to_vec();
        let tone_block = tone.concat().repeat(BLOCK_CYCLES);
        let silence_frames = encode::encode_frames(&[0; 12 * FRAME_SAMPLES])?;
        let silence = *silence_frames.get(6).ok_or_else(|| short("silence"))?;
        if used_bytes(&silence) + TAG_BYTES > FRAME_BYTES {
            return Err(AudioError::Output(format!(
                "the silent frame uses {} bytes: no room for the tag",
                used_bytes(&silence)
            )));
        }
        // Decoded sample m of a stream is input sample m - ENCODER_DELAY - DECODER_DELAY: this
        // input onset makes the beep start at the first decoded sample of BEEP_ONSET_FRAME.
        let onset = BEEP_ONSET_FRAME * FRAME_SAMPLES - ENCODER_DELAY - DECODER_DELAY;
        let mut beeps = Vec::with_capacity(CYCLE_FRAMES);
        for variant in 0..CYCLE_FRAMES {
            let frames = beep_stream(variant, onset)?;
            let range = BEEP_ONSET_FRAME - BEEP_LEAD..BEEP_ONSET_FRAME + BEEP_SPAN;
            beeps.push(frames.get(range).ok_or_else(|| short("beep"))?.to_vec());
        }
        // A decoder starting cold ramps in over about one frame, so the start beep is encoded one
        // frame early: its onset is heard within the first frame instead of after it.
        let frames = beep_stream(beep_variant(0), onset - FRAME_SAMPLES)?;
        let start_beep = frames
            .get(BEEP_ONSET_FRAME..BEEP_ONSET_FRAME + BEEP_SPAN)
            .ok_or_else(|| short("start beep"))?
            .to_vec();
        Ok(FrameLibrary {
            tone_block,
            silence,
            beeps,
            start_beep,
        })
    }

    /// Frame `index` of a beep whose onset is at file frame `beep` (`index` in
    /// `beep - BEEP_LEAD .. beep + BEEP_SPAN`).
    pub(super) fn beep_frame(&self, beep: u32, index: u32) -> Option<&Frame> {
        if beep == 0 {
            return self.start_beep.get(index as usize);
        }
        // Library frame BEEP_ONSET_FRAME + (index - beep), stored from BEEP_LEAD before it.
        let position = (BEEP_LEAD + index as usize).checked_sub(beep as usize)?;
        self.beeps
            .get(beep_variant(beep as usize))
            .and_then(|frames| frames.get(position))
    }

    /// The last frame of a file: silence with `tag` in its last ancillary bytes.
    pub(super) fn tail(&self, tag: &[u8; TAG_BYTES]) -> Frame {
        let mut frame = self.silence;
        frame[FRAME_BYTES - TAG_BYTES..].copy_from_slice(tag);
        frame
    }
}

/// Background shifted by `variant` frames plus a beep from input sample `onset`, encoded.
fn beep_stream(variant: usize, onset: usize) -> Result<Vec<Frame>, AudioError> {
    let total = (BEEP_ONSET_FRAME + BEEP_SPAN + 4) * FRAME_SAMPLES;
    let pcm: Vec<i16> = (0..total)
        .map(|n| {
            let beep = n.checked_sub(onset).map_or(0.0, signal::beep);
            signal::to_i16(signal::background(n + variant * FRAME_SAMPLES) + beep)
        })
        .collect();
    encode::encode_frames(&pcm)
}

/// The background phase of the beep frames placed with their onset at file frame `frame`.
fn beep_variant(frame: usize) -> usize {
    (frame + CYCLE_FRAMES - BEEP_ONSET_FRAME % CYCLE_FRAMES) % CYCLE_FRAMES
}

/// Frames in [`FrameLibrary::tone_block`].
pub(super) const BLOCK_FRAMES: usize = CYCLE_FRAMES * BLOCK_CYCLES;
