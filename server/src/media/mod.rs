//! Media files: the only module that writes MP4 (ARCHITECTURE.md invariant).
//!
//! - [`h264`]: Annex-B access units → MP4 samples (length-prefixed NAL units, SPS/PPS apart);
//! - [`export`]: one monitor of one SCN file → a playable MP4, timestamps kept to the µs;
//! - [`audio`]: Webex's MP3 → Opus packets (the audio track of stitched files);
//! - [`fmp4`]: a fragmented MP4 writer of any number of tracks, and its crash recovery;
//! - [`stitch`]: an interaction's monitors and audio on one timeline → one fragmented MP4.

pub mod audio;
pub mod export;
pub mod fmp4;
pub mod h264;
pub mod restitch;
pub mod stitch;
pub mod views;
