//! Media files checked the way a player would: `ffprobe`'s JSON description of a file.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

/// `ffprobe -show_streams -show_format` of `path` as JSON; an error when ffprobe refuses it.
pub fn ffprobe(path: &Path) -> anyhow::Result<serde_json::Value> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .output()
        .context("ffprobe")?;
    anyhow::ensure!(
        output.status.success(),
        "ffprobe refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The codec names of `path`'s streams, in order.
pub fn codecs(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(ffprobe(path)?["streams"]
        .as_array()
        .context("no streams")?
        .iter()
        .filter_map(|s| s["codec_name"].as_str().map(str::to_owned))
        .collect())
}
