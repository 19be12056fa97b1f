//! The change detector: passes a capture on only when the screen changed (compared tile by tile
//! with the last image it passed on), or when a keyframe is due. A still screen produces nothing.
//!
//! Keyframes: the first image; on request (server, new viewer); and, for seeking, the first
//! change after `keyframe_interval_s` without one. A still screen needs no keyframes: the last
//! one still decodes it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use capture_shared::protocol::StreamSettings;
use capture_shared::time::AgentMicros;

use super::{Captured, Changed, Controls, Stage};
use crate::capture::Image;

/// Tile edge, pixels: a change is located to a tile; hashing a tile costs one CRC over its rows.
pub const TILE: u32 = 64;

/// The change detector of one monitor.
#[derive(Debug)]
pub struct ChangeDetector {
    tiles: Vec<u32>,
    size: (u32, u32),
    last_keyframe: Option<AgentMicros>,
    keyframe_interval_us: u64,
    controls: Arc<Controls>,
}

/// CRC-32 of every tile, row-major.
pub fn tile_hashes(image: &Image) -> Vec<u32> {
    tile_hashes_of(&image.bgra, image.stride, image.width, image.height)
}

/// CRC-32 of every tile of BGRA pixels in rows of `stride` bytes (a capture backend's own
/// buffer, hashed before it is copied anywhere), row-major.
pub fn tile_hashes_of(bgra: &[u8], stride: usize, width: u32, height: u32) -> Vec<u32> {
    let columns = width.div_ceil(TILE);
    let rows = height.div_ceil(TILE);
    let mut hashers: Vec<crc32fast::Hasher> = Vec::with_capacity((columns * rows) as usize);
    for _ in 0..columns * rows {
        hashers.push(crc32fast::Hasher::new());
    }
    let row_bytes = width as usize * 4;
    for y in 0..height {
        let start = y as usize * stride;
        let Some(row) = bgra.get(start..start + row_bytes) else {
            break;
        };
        let tile_row = (y / TILE) * columns;
        for (column, chunk) in row.chunks(TILE as usize * 4).enumerate() {
            hashers[tile_row as usize + column].update(chunk);
        }
    }
    hashers
        .into_iter()
        .map(crc32fast::Hasher::finalize)
        .collect()
}

impl ChangeDetector {
    /// A detector with the server's keyframe interval.
    pub fn new(settings: &StreamSettings, controls: Arc<Controls>) -> ChangeDetector {
        ChangeDetector {
            tiles: Vec::new(),
            size: (0, 0),
            last_keyframe: None,
            keyframe_interval_us: u64::from(settings.keyframe_interval_s.max(1)) * 1_000_000,
            controls,
        }
    }
}

impl Stage for ChangeDetector {
    type In = Captured;
    type Out = Changed;

    fn process(&mut self, captured: Captured) -> Option<Changed> {
        let tiles = tile_hashes(&captured.image);
        let size = (captured.image.width, captured.image.height);
        let changed = tiles != self.tiles || size != self.size;
        let requested = self.controls.keyframe.swap(false, Ordering::Relaxed);
        let due = self
            .last_keyframe
            .is_none_or(|last| captured.at.0.saturating_sub(last.0) >= self.keyframe_interval_us);
        let keyframe =
            self.last_keyframe.is_none() || size != self.size || requested || (changed && due);
        if !changed && !keyframe {
            return None;
        }
        self.tiles = tiles;
        self.size = size;
        if keyframe {
            self.last_keyframe = Some(captured.at);
        }
        Some(Changed {
            at: captured.at,
            image: captured.image,
            keyframe,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> StreamSettings {
        StreamSettings {
            keyframe_interval_s: 10,
            ..StreamSettings::default()
        }
    }

    fn captured(at_ms: u64, image: &Image) -> Captured {
        Captured {
            at: AgentMicros(at_ms * 1000),
            image: image.clone(),
        }
    }

    fn decisions(detector: &mut ChangeDetector, inputs: &[(u64, &Image)]) -> Vec<Option<bool>> {
        inputs
            .iter()
            .map(|(at, image)| detector.process(captured(*at, image)).map(|c| c.keyframe))
            .collect()
    }

    fn with_pixel(image: &Image, x: u32, y: u32) -> Image {
        let mut changed = image.clone();
        let offset = y as usize * changed.stride + x as usize * 4;
        changed.bgra[offset] ^= 0xff;
        changed
    }

    #[test]
    fn a_still_screen_sends_one_keyframe_then_nothing() {
        let controls = Arc::new(Controls::default());
        let mut detector = ChangeDetector::new(&settings(), controls);
        let still = Image::black(640, 360);
        let inputs: Vec<_> = (0..100).map(|i| (i * 200, &still)).collect();
        let out = decisions(&mut detector, &inputs);
        assert_eq!(out[0], Some(true));
        assert!(out[1..].iter().all(Option::is_none), "{out:?}");
    }

    #[test]
    fn one_changed_pixel_in_any_tile_is_a_change() {
        let controls = Arc::new(Controls::default());
        let mut detector = ChangeDetector::new(&settings(), controls);
        let base = Image::black(650, 370); // edges with partial tiles
        let corner = with_pixel(&base, 649, 369);
        let middle = with_pixel(&corner, 300, 200);
        let out = decisions(
            &mut detector,
            &[(0, &base), (200, &corner), (400, &corner), (600, &middle)],
        );
        assert_eq!(out, vec![Some(true), Some(false), None, Some(false)]);
    }

    #[test]
    fn keyframes_come_on_request_and_with_the_first_change_after_the_interval() {
        let controls = Arc::new(Controls::default());
        let mut detector = ChangeDetector::new(&settings(), controls.clone());
        let a = Image::black(128, 128);
        let b = with_pixel(&a, 1, 1);
        // 0 s keyframe; 5 s change: delta; 12 s still: nothing; 13 s change: keyframe (interval).
        let out = decisions(
            &mut detector,
            &[(0, &a), (5_000, &b), (12_000, &b), (13_000, &a)],
        );
        assert_eq!(out, vec![Some(true), Some(false), None, Some(true)]);
        // A request makes the next capture a keyframe even when nothing changed.
        controls.request_keyframe();
        assert_eq!(decisions(&mut detector, &[(13_200, &a)]), vec![Some(true)]);
        assert_eq!(decisions(&mut detector, &[(13_400, &a)]), vec![None]);
        // A size change (monitor resolution changed) is a keyframe.
        let bigger = Image::black(256, 128);
        assert_eq!(
            decisions(&mut detector, &[(13_600, &bigger)]),
            vec![Some(true)]
        );
    }
}
