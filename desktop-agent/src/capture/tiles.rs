//! Which tiles of a monitor changed, from the rectangles the platform reports (pure: tested on
//! every OS).
//!
//! Desktop Duplication reports, with each frame, the *dirty* rectangles (redrawn) and the *move*
//! rectangles (a region copied from elsewhere: a scroll, a dragged window). Only the tiles they
//! touch are copied out of the frame; the rest of the agent's image is still right. A move
//! changes its destination only (its source keeps its pixels unless a dirty rectangle says
//! otherwise). Tiles are the change detector's (`pipeline::detect::TILE`).

use super::layout::Rect;

/// A region copied within the frame (`DXGI_OUTDUPL_MOVE_RECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveRect {
    /// Top-left corner of the source.
    pub source: (i32, i32),
    /// The destination.
    pub destination: Rect,
}

/// The tiles of a `width` × `height` image, `tile` pixels square.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileGrid {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Tile edge.
    pub tile: u32,
}

impl TileGrid {
    /// Tiles per row.
    pub fn columns(&self) -> u32 {
        self.width.div_ceil(self.tile.max(1))
    }

    /// Tile rows.
    pub fn rows(&self) -> u32 {
        self.height.div_ceil(self.tile.max(1))
    }

    /// The pixels of tile `index` (row-major), clipped to the image.
    pub fn bounds(&self, index: usize) -> Rect {
        let tile = self.tile.max(1);
        let columns = self.columns().max(1) as usize;
        let (column, row) = ((index % columns) as u32, (index / columns) as u32);
        let clamp = |v: u32, limit: u32| i32::try_from(v.min(limit)).unwrap_or(i32::MAX);
        Rect {
            left: clamp(column * tile, self.width),
            top: clamp(row * tile, self.height),
            right: clamp((column + 1) * tile, self.width),
            bottom: clamp((row + 1) * tile, self.height),
        }
    }

    /// The tiles (row-major indices, ascending, once each) that the dirty rectangles and the
    /// moves' destinations touch. Rectangles outside the image or empty touch nothing.
    pub fn changed(&self, dirty: &[Rect], moves: &[MoveRect]) -> Vec<usize> {
        let tile = self.tile.max(1) as i32;
        let columns = self.columns() as usize;
        let mut touched = vec![false; columns * self.rows() as usize];
        let rects = dirty.iter().chain(moves.iter().map(|m| &m.destination));
        for rect in rects {
            let Some(rect) = rect.clip(self.width, self.height) else {
                continue;
            };
            for row in rect.top / tile..=(rect.bottom - 1) / tile {
                for column in rect.left / tile..=(rect.right - 1) / tile {
                    touched[row as usize * columns + column as usize] = true;
                }
            }
        }
        touched
            .iter()
            .enumerate()
            .filter_map(|(index, &t)| t.then_some(index))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(left: i32, top: i32, right: i32, bottom: i32) -> Rect {
        Rect {
            left,
            top,
            right,
            bottom,
        }
    }

    const GRID: TileGrid = TileGrid {
        width: 1920,
        height: 1080,
        tile: 64,
    };

    #[test]
    fn nothing_reported_is_nothing_changed() {
        assert_eq!(GRID.columns(), 30);
        assert_eq!(GRID.rows(), 17);
        assert!(GRID.changed(&[], &[]).is_empty());
    }

    #[test]
    fn a_caret_touches_one_tile_and_a_rectangle_across_edges_touches_four() {
        assert_eq!(GRID.changed(&[rect(70, 70, 72, 86)], &[]), vec![31]);
        // Exclusive right/bottom: ending exactly on a tile edge does not spill over.
        assert_eq!(GRID.changed(&[rect(0, 0, 64, 64)], &[]), vec![0]);
        assert_eq!(
            GRID.changed(&[rect(60, 60, 70, 70)], &[]),
            vec![0, 1, 30, 31]
        );
    }

    #[test]
    fn overlapping_rectangles_count_each_tile_once_in_order() {
        let dirty = [rect(130, 0, 200, 10), rect(0, 0, 140, 10)];
        assert_eq!(GRID.changed(&dirty, &[]), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_move_changes_its_destination_not_its_source() {
        // A scroll: rows 200..1000 moved up by 100 px into 100..900.
        let scroll = MoveRect {
            source: (0, 200),
            destination: rect(0, 100, 64, 900),
        };
        let changed = GRID.changed(&[], &[scroll]);
        let rows: Vec<usize> = changed.iter().map(|i| i / 30).collect();
        assert_eq!(rows, (1..=14).collect::<Vec<_>>());
        assert!(changed.iter().all(|i| i % 30 == 0));
    }

    #[test]
    fn rectangles_outside_the_image_are_clipped_or_ignored() {
        let edge = GRID.changed(&[rect(1900, 1070, 4000, 4000)], &[]);
        assert_eq!(edge, vec![16 * 30 + 29]);
        assert!(
            GRID.changed(&[rect(-50, -50, -1, -1), rect(5, 5, 5, 9)], &[])
                .is_empty()
        );
    }

    #[test]
    fn tile_bounds_are_clipped_at_the_image_edge() {
        assert_eq!(GRID.bounds(0), rect(0, 0, 64, 64));
        assert_eq!(GRID.bounds(16 * 30 + 29), rect(1856, 1024, 1920, 1080));
    }
}
