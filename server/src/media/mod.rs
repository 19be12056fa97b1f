//! Media files: the only module that writes MP4 (ARCHITECTURE.md invariant).
//!
//! - [`h264`]: Annex-B access units → MP4 samples (length-prefixed NAL units, SPS/PPS apart);
//! - [`export`]: one monitor of one SCN file → a playable MP4, timestamps kept to the µs;
//! - [`audio`]: Webex's MP3 → Opus packets (the audio track of stitched files).

pub mod audio;
pub mod export;
pub mod h264;
