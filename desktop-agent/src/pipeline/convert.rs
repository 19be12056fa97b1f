//! Colour conversion: BGRA → I420 with openh264's own converter (`YUVBuffer::read_bgra8`).
//! H.264 4:2:0 needs even sizes: an odd last column or row is cropped.

use openh264::formats::{BgraSliceU8, YUVBuffer};

use super::{Changed, Converted, Stage};
use crate::capture::Image;

/// The conversion stage.
#[derive(Debug, Default, Clone, Copy)]
pub struct Converter;

/// The even size an image is encoded at.
pub fn encoded_size(width: u32, height: u32) -> (u32, u32) {
    (width & !1, height & !1)
}

/// Converts one image (cropping odd edges, dropping stride padding).
pub fn to_i420(image: &Image) -> YUVBuffer {
    let (width, height) = encoded_size(image.width, image.height);
    let row_bytes = width as usize * 4;
    let tight;
    let pixels: &[u8] = if image.stride == row_bytes && image.height == height {
        &image.bgra
    } else {
        let mut packed = Vec::with_capacity(row_bytes * height as usize);
        for y in 0..height {
            packed.extend_from_slice(&image.row(y)[..row_bytes]);
        }
        tight = packed;
        &tight
    };
    let mut yuv = YUVBuffer::new(width as usize, height as usize);
    yuv.read_bgra8(BgraSliceU8::new(pixels, (width as usize, height as usize)));
    yuv
}

impl Stage for Converter {
    type In = Changed;
    type Out = Converted;

    fn process(&mut self, changed: Changed) -> Option<Converted> {
        Some(Converted {
            at: changed.at,
            yuv: to_i420(&changed.image),
            keyframe: changed.keyframe,
        })
    }
}

#[cfg(test)]
mod tests {
    use openh264::formats::YUVSource as _;

    use super::*;

    #[test]
    fn odd_sizes_and_padded_rows_are_cropped_to_even() {
        let stride = 641 * 4 + 12;
        let image = Image::new(641, 361, stride, vec![255; stride * 361]);
        let yuv = to_i420(&image);
        assert_eq!(yuv.dimensions(), (640, 360));
        // White stays white (full-range white maps to luma ≥ 235).
        assert!(yuv.y().iter().all(|&y| y >= 235));
    }
}
