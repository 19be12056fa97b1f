//! Finding flashes and beeps in a stitched file by decoding it with ffmpeg (the sync test and the
//! `stitch` benchmark): the instants a video track turns bright, and the instants a 1 kHz tone
//! starts in the audio.

use std::path::Path;
use std::process::Command;

/// Seconds at which the first video track shows a bright frame (mean luma over 150).
pub fn flashes(file: &Path) -> anyhow::Result<Vec<f64>> {
    flashes_in(file, 0)
}

/// Seconds at which video track `track` (0 = the first) shows a bright frame.
pub fn flashes_in(file: &Path, track: usize) -> anyhow::Result<Vec<f64>> {
    let output = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(file)
        .args([
            "-map",
            &format!("0:v:{track}"),
            "-vf",
            "showinfo",
            "-fps_mode",
            "passthrough",
            "-f",
            "null",
            "-",
        ])
        .output()?;
    anyhow::ensure!(output.status.success(), "ffmpeg refused {}", file.display());
    Ok(String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.contains("pts_time:") && l.contains("mean:["))
        .filter_map(|l| {
            let pts: f64 = l
                .split("pts_time:")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let luma: f64 = l
                .split("mean:[")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            (luma > 150.0).then_some(pts)
        })
        .collect())
}

/// Seconds at which a 1 kHz beep starts in the first audio track (decoded to 8 kHz mono; 10 ms
/// windows where the tone holds over half the power; onsets at least 1 s apart).
pub fn beeps(file: &Path) -> anyhow::Result<Vec<f64>> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-map", "0:a:0", "-ac", "1", "-ar", "8000", "-f", "s16le", "-",
        ])
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "ffmpeg refused {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<f32> = output
        .stdout
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
        .collect();
    let window = 80;
    let k = 2.0 * (2.0 * std::f32::consts::PI * 1000.0 / 8000.0).cos();
    let mut onsets: Vec<f64> = Vec::new();
    for (i, w) in samples.chunks_exact(window).enumerate() {
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &x in w {
            let s0 = x + k * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - k * s1 * s2;
        let total: f32 = w.iter().map(|x| x * x).sum::<f32>() * window as f32 / 2.0;
        let t = i as f64 * 0.01;
        if total > 0.0 && power / total > 0.5 && onsets.last().is_none_or(|last| t - last > 1.0) {
            onsets.push(t);
        }
    }
    Ok(onsets)
}
