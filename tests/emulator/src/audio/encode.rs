//! Encoding PCM with LAME into independent MP3 frames.
//!
//! With the bit reservoir disabled every frame's `main_data_begin` is 0: a frame carries all of its
//! own bits, so frames taken from different encodes can be concatenated into a valid stream. The
//! decoder still overlaps each frame with the previous one (MDCT overlap-add), which is why splices
//! copy a few frames of context (see `super::BEEP_LEAD`).

use std::num::NonZeroU32;

use mp3lame_encoder::{Bitrate, Builder, FlushNoGap, Mode, MonoPcm, Quality, VbrMode};

use super::{FRAME_BYTES, Frame, SAMPLE_RATE};

/// Why the frame library could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// LAME refused the configuration.
    #[error("LAME configuration: {0}")]
    Build(String),
    /// LAME failed while encoding.
    #[error("LAME encoding: {0}")]
    Encode(String),
    /// LAME produced something other than fixed-size MPEG-2 Layer III frames.
    #[error("unexpected LAME output: {0}")]
    Output(String),
}

/// The first two header bytes of every frame: sync, MPEG-2, Layer III, no CRC.
const HEADER_SYNC: [u8; 2] = [0xFF, 0xF3];

fn build_encoder() -> Result<mp3lame_encoder::Encoder, AudioError> {
    let build = |e: mp3lame_encoder::BuildError| AudioError::Build(e.to_string());
    let mut builder = Builder::new().ok_or_else(|| AudioError::Build("lame_init failed".into()))?;
    builder.set_num_channels(1).map_err(build)?;
    builder.set_sample_rate(SAMPLE_RATE).map_err(build)?;
    builder
        .set_output_sample_rate(NonZeroU32::new(SAMPLE_RATE))
        .map_err(build)?;
    builder.set_brate(Bitrate::Kbps32).map_err(build)?;
    builder.set_mode(Mode::Mono).map_err(build)?;
    builder.set_vbr_mode(VbrMode::Off).map_err(build)?;
    builder.set_quality(Quality::Good).map_err(build)?;
    builder.set_to_write_vbr_tag(false).map_err(build)?;
    disable_reservoir(&mut builder)?;
    builder.build().map_err(build)
}

#[allow(unsafe_code)]
fn disable_reservoir(builder: &mut Builder) -> Result<(), AudioError> {
    // SAFETY: `as_ptr` hands out the builder's live `lame_global_flags` (allocated by `lame_init`,
    // freed only when the builder or the encoder built from it drops); we keep no copy of the
    // pointer, and `lame_set_disable_reservoir` only writes one field of that struct.
    let status = unsafe { mp3lame_encoder::ffi::lame_set_disable_reservoir(builder.as_ptr(), 1) };
    if status == 0 {
        Ok(())
    } else {
        Err(AudioError::Build(format!(
            "lame_set_disable_reservoir returned {status}"
        )))
    }
}

/// Encodes `pcm` (mono, 16 kHz) and splits the result into frames.
pub fn encode_frames(pcm: &[i16]) -> Result<Vec<Frame>, AudioError> {
    let mut encoder = build_encoder()?;
    let mut out = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(pcm.len()));
    encoder
        .encode_to_vec(MonoPcm(pcm), &mut out)
        .map_err(|e| AudioError::Encode(e.to_string()))?;
    out.reserve(7200);
    encoder
        .flush_to_vec::<FlushNoGap>(&mut out)
        .map_err(|e| AudioError::Encode(e.to_string()))?;
    split_frames(&out)
}

fn split_frames(stream: &[u8]) -> Result<Vec<Frame>, AudioError> {
    if !stream.len().is_multiple_of(FRAME_BYTES) {
        return Err(AudioError::Output(format!(
            "{} bytes is not a whole number of {FRAME_BYTES}-byte frames",
            stream.len()
        )));
    }
    stream
        .chunks_exact(FRAME_BYTES)
        .enumerate()
        .map(|(index, chunk)| {
            if chunk[..2] != HEADER_SYNC {
                return Err(AudioError::Output(format!(
                    "frame {index} starts with {:02x?}",
                    &chunk[..4]
                )));
            }
            // Bitrate index 4 is 32 kbit/s for MPEG-2 Layer III, sample-rate index 2 is 16 kHz,
            // padding bit clear: 72 × 32000 / 16000 = 144 bytes.
            if chunk[2] & 0xFE != 0x48 {
                return Err(AudioError::Output(format!(
                    "frame {index} header byte 2 is {:#04x}",
                    chunk[2]
                )));
            }
            Frame::try_from(chunk).map_err(|_| AudioError::Output("frame size".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_fixed_size_and_independent() {
        let pcm = vec![0_i16; 576 * 10];
        let frames = encode_frames(&pcm).expect("encode");
        assert!(frames.len() >= 9, "{} frames", frames.len());
        // Without the reservoir, main_data_begin (the first 8 bits of side info after the
        // 4-byte header in MPEG-2 mono) is zero in every frame.
        assert!(frames.iter().all(|f| f[4] == 0));
    }
}
