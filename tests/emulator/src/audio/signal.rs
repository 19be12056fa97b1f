//! The PCM the frame library is encoded from: a low "voice-like" background, a 1 kHz beep and
//! silence, all at [`SAMPLE_RATE`](super::SAMPLE_RATE).
//!
//! Every signal here is periodic in whole MP3 frames (576 samples), so that encoded frames can be
//! repeated and spliced without phase jumps: the background's fundamental is 16000/576 × 4 ≈ 111 Hz
//! with an amplitude envelope of [`CYCLE_FRAMES`](super::CYCLE_FRAMES) frames (288 ms, a syllable-like
//! rhythm), and 1 kHz is exactly 36 cycles per frame.

use std::f32::consts::TAU;

use super::{CYCLE_FRAMES, FRAME_SAMPLES, SAMPLE_RATE};

/// Samples in one background cycle.
const CYCLE_SAMPLES: usize = CYCLE_FRAMES * FRAME_SAMPLES;
/// The background's fundamental period in samples (111.1 Hz).
const FUNDAMENTAL_PERIOD: usize = FRAME_SAMPLES / 4;
/// Harmonics of the fundamental and their weights (none near 1 kHz, the beep's frequency).
const HARMONICS: [(f32, f32); 6] = [
    (1.0, 1.0),
    (2.0, 0.7),
    (3.0, 0.5),
    (4.0, 0.3),
    (5.0, 0.2),
    (6.0, 0.1),
];
/// Peak level of the background (about −20 dBFS).
const BACKGROUND_LEVEL: f32 = 0.035;
/// The beep's frequency in hertz.
pub const BEEP_HZ: f32 = 1000.0;
/// The beep's length in samples (200 ms).
pub const BEEP_SAMPLES: usize = SAMPLE_RATE as usize / 5;
/// The beep's level (about −6 dBFS).
const BEEP_LEVEL: f32 = 0.5;
/// Fade in/out of the beep in samples (2 ms), to keep its spectrum narrow.
const BEEP_RAMP: usize = 32;

/// The background at sample `n` of its cycle (any `n`; the signal repeats every cycle).
pub fn background(n: usize) -> f32 {
    let in_cycle = n % CYCLE_SAMPLES;
    let envelope = 0.55 + 0.45 * (TAU * in_cycle as f32 / CYCLE_SAMPLES as f32).sin();
    let phase = TAU * (n % FUNDAMENTAL_PERIOD) as f32 / FUNDAMENTAL_PERIOD as f32;
    let voice: f32 = HARMONICS
        .iter()
        .map(|(harmonic, weight)| weight * (phase * harmonic).sin())
        .sum();
    BACKGROUND_LEVEL * envelope * voice
}

/// The beep at sample `n` after its onset (zero outside the beep).
pub fn beep(n: usize) -> f32 {
    if n >= BEEP_SAMPLES {
        return 0.0;
    }
    let ramp = if n < BEEP_RAMP {
        n as f32 / BEEP_RAMP as f32
    } else if BEEP_SAMPLES - n < BEEP_RAMP {
        (BEEP_SAMPLES - n) as f32 / BEEP_RAMP as f32
    } else {
        1.0
    };
    BEEP_LEVEL * ramp * (TAU * BEEP_HZ * n as f32 / SAMPLE_RATE as f32).sin()
}

/// Converts to 16-bit PCM.
pub fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_is_periodic_in_whole_frames() {
        for n in 0..FRAME_SAMPLES {
            assert!((background(n) - background(n + CYCLE_SAMPLES)).abs() < 1e-4);
        }
    }

    #[test]
    fn beep_is_bounded() {
        assert_eq!(beep(BEEP_SAMPLES), 0.0);
        assert!((0..BEEP_SAMPLES).all(|n| beep(n).abs() <= BEEP_LEVEL));
        assert!(background(0).abs() < 0.2);
    }
}
