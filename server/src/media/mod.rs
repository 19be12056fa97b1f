//! Media files: the only module that writes MP4 (ARCHITECTURE.md invariant).
//!
//! - [`h264`]: Annex-B access units → MP4 samples (length-prefixed NAL units, SPS/PPS apart);
//! - [`export`]: one monitor of one SCN file → a playable MP4, timestamps kept to the µs.

pub mod export;
pub mod h264;
