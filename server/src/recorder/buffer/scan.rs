//! A buffer file's stream state read back when the recorder reopens it after a restart.

use std::collections::BTreeMap;

use capture_shared::ids::MonitorId;
use capture_shared::scn::{Record, ScnReader};

use super::Stream;

/// Reads a file's stream state: for each monitor, the sequence after its last frame, and its
/// last parameters; and the frames it holds. A file that ended cleanly is refused (not open).
pub(super) fn scan_streams(
    path: &std::path::Path,
) -> std::io::Result<(BTreeMap<MonitorId, Stream>, u64)> {
    let mut reader = ScnReader::open(path).map_err(std::io::Error::other)?;
    let mut streams: BTreeMap<MonitorId, Stream> = BTreeMap::new();
    let mut frames = 0;
    while let Some(record) = reader.next_record()? {
        match record {
            Record::StreamParams {
                monitor,
                width,
                height,
                ..
            } => {
                let stream = streams.entry(monitor).or_default();
                stream.params = Some((width, height));
                stream.decodable = false;
            }
            Record::Video {
                monitor, sequence, ..
            } => {
                let stream = streams.entry(monitor).or_default();
                stream.next = sequence + 1;
                stream.decodable = true;
                frames += 1;
            }
            Record::End { .. } => {
                return Err(std::io::Error::other("the file is already closed"));
            }
            _ => {}
        }
    }
    Ok((streams, frames))
}
