//! Comparing decoded video with what the screen showed.

/// PSNR (dB) over `region` (x0, y0, x1, y1) of a decoded RGB picture against a captured BGRA
/// image of the same `width` (99 for identical).
pub fn psnr(
    decoded_rgb: &[u8],
    captured_bgra: &[u8],
    width: usize,
    region: (usize, usize, usize, usize),
) -> f64 {
    let (x0, y0, x1, y1) = region;
    let mut sum = 0.0;
    let mut count = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            let d = &decoded_rgb[(y * width + x) * 3..][..3];
            let c = &captured_bgra[(y * width + x) * 4..][..4];
            for (a, b) in [(d[0], c[2]), (d[1], c[1]), (d[2], c[0])] {
                let e = f64::from(a) - f64::from(b);
                sum += e * e;
                count += 1.0;
            }
        }
    }
    let mse = sum / count;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}
