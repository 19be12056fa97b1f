//! Export one monitor of an SCN file to a playable MP4 (`capture-server scn export`), so anyone
//! can watch what was captured before stitching exists. The video is not re-encoded; each frame
//! keeps its capture time (µs, relative to the monitor's first keyframe), so the variable frame
//! rate of the capture survives exactly.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::Path;

use capture_shared::ids::MonitorId;
use capture_shared::scn::{Record, ScnReader};
use shiguredo_mp4::boxes::{Avc1Box, AvccBox, SampleEntry, VisualSampleEntryFields};
use shiguredo_mp4::mux::{Mp4FileMuxer, Sample};
use shiguredo_mp4::{TrackKind, Uint};

use super::h264::to_sample;

/// The MP4 track's timescale: 1 tick = 1 µs, so capture times map exactly.
pub const TIMESCALE: u32 = 1_000_000;

/// How long the last frame is shown: until the file's end record, else this.
pub const LAST_FRAME_US: u64 = 1_000_000;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    /// Frames written.
    pub frames: u64,
    /// Keyframes among them.
    pub keyframes: u64,
    /// Encoded size.
    pub width: u32,
    /// Encoded size.
    pub height: u32,
    /// Each frame's time from the first, µs (for checks against what the agent sent).
    pub times_us: Vec<u64>,
    /// Duration of the file, µs.
    pub duration_us: u64,
    /// Whether the SCN file ended cleanly (otherwise its torn tail was skipped).
    pub scn_ended: bool,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the SCN file or writing the MP4 failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The SCN file is unreadable.
    #[error("{0}")]
    Scn(#[from] capture_shared::scn::ScnError),
    /// The monitor has no decodable frames in the file.
    #[error("monitor {0} has no keyframe in this file: nothing to export")]
    NoVideo(MonitorId),
    /// The first keyframe came without its parameter sets.
    #[error("the stream has no SPS/PPS before its first keyframe")]
    NoParameterSets,
    /// The muxer refused.
    #[error("mp4: {0}")]
    Mux(String),
}

struct Frame {
    captured_us: u64,
    sample: Vec<u8>,
    keyframe: bool,
    entry: SampleEntry,
}

pub(crate) fn sample_entry(sps: &[u8], pps: &[u8], width: u32, height: u32) -> SampleEntry {
    // Profiles other than Baseline/Main/Extended carry the 4:2:0 8-bit extension fields.
    let high = !matches!(sps.get(1), Some(66 | 77 | 88));
    SampleEntry::Avc1(Avc1Box {
        visual: VisualSampleEntryFields {
            data_reference_index: VisualSampleEntryFields::DEFAULT_DATA_REFERENCE_INDEX,
            width: u16::try_from(width).unwrap_or(u16::MAX),
            height: u16::try_from(height).unwrap_or(u16::MAX),
            horizresolution: VisualSampleEntryFields::DEFAULT_HORIZRESOLUTION,
            vertresolution: VisualSampleEntryFields::DEFAULT_VERTRESOLUTION,
            frame_count: VisualSampleEntryFields::DEFAULT_FRAME_COUNT,
            compressorname: VisualSampleEntryFields::NULL_COMPRESSORNAME,
            depth: VisualSampleEntryFields::DEFAULT_DEPTH,
        },
        avcc_box: AvccBox {
            avc_profile_indication: sps.get(1).copied().unwrap_or(66),
            profile_compatibility: sps.get(2).copied().unwrap_or(0),
            avc_level_indication: sps.get(3).copied().unwrap_or(31),
            length_size_minus_one: Uint::new(3),
            sps_list: vec![sps.to_vec()],
            pps_list: vec![pps.to_vec()],
            chroma_format: high.then(|| Uint::new(1)),
            bit_depth_luma_minus8: high.then(|| Uint::new(0)),
            bit_depth_chroma_minus8: high.then(|| Uint::new(0)),
            sps_ext_list: vec![],
        },
        unknown_boxes: vec![],
    })
}

/// Reads the monitor's decodable frames (from its first keyframe on).
type Read = (Vec<Frame>, (u32, u32), bool);

fn read_frames(scn: &Path, monitor: MonitorId) -> Result<Read, ExportError> {
    let mut reader = ScnReader::open(scn)?;
    let mut frames = Vec::new();
    let mut size = (0, 0);
    let (mut sps, mut pps) = (None, None);
    let mut entry = None;
    while let Some(record) = reader.next_record()? {
        match record {
            Record::StreamParams {
                monitor: m,
                width,
                height,
                ..
            } if m == monitor => size = (width, height),
            Record::Video {
                monitor: m,
                captured,
                data,
                ..
            } if m == monitor => {
                let sample = to_sample(&data);
                if sample.sps.is_some() || sample.pps.is_some() {
                    sps = sample.sps.clone().or(sps);
                    pps = sample.pps.clone().or(pps);
                    if let (Some(sps), Some(pps)) = (&sps, &pps) {
                        entry = Some(sample_entry(sps, pps, size.0, size.1));
                    }
                }
                if frames.is_empty() && !sample.keyframe {
                    continue; // not decodable before the first keyframe
                }
                let Some(entry) = entry.clone() else {
                    return Err(ExportError::NoParameterSets);
                };
                frames.push(Frame {
                    captured_us: captured.0,
                    sample: sample.data,
                    keyframe: sample.keyframe,
                    entry,
                });
            }
            _ => {}
        }
    }
    Ok((frames, size, reader.ended()))
}

/// Writes `monitor`'s video from the SCN file `scn` to the MP4 file `out`.
pub fn export(scn: &Path, monitor: MonitorId, out: &Path) -> Result<Exported, ExportError> {
    let (mut frames, (width, height), ended) = read_frames(scn, monitor)?;
    // Frames in capture order (they are; a clock step backwards must not break the file).
    frames.sort_by_key(|f| f.captured_us);
    let first = frames
        .first()
        .ok_or(ExportError::NoVideo(monitor))?
        .captured_us;
    let mux = |e: shiguredo_mp4::mux::MuxError| ExportError::Mux(e.to_string());
    let mut muxer = Mp4FileMuxer::new().map_err(mux)?;
    let temporary = out.with_extension("mp4.partial");
    let mut file = BufWriter::new(File::create(&temporary)?);
    file.write_all(muxer.initial_boxes_bytes())?;
    let mut position = muxer.initial_boxes_bytes().len() as u64;
    let mut times_us = Vec::with_capacity(frames.len());
    let mut keyframes = 0;
    let mut previous_entry: Option<SampleEntry> = None;
    for (index, frame) in frames.iter().enumerate() {
        let at = frame.captured_us - first;
        let next = frames
            .get(index + 1)
            .map_or(at + LAST_FRAME_US, |f| f.captured_us - first);
        let duration = u32::try_from(next.saturating_sub(at).max(1)).unwrap_or(u32::MAX);
        file.write_all(&frame.sample)?;
        let entry = (previous_entry.as_ref() != Some(&frame.entry)).then(|| frame.entry.clone());
        previous_entry = Some(frame.entry.clone());
        muxer
            .append_sample(&Sample {
                track_kind: TrackKind::Video,
                sample_entry: entry,
                keyframe: frame.keyframe,
                timescale: NonZeroU32::new(TIMESCALE).unwrap_or(NonZeroU32::MIN),
                duration,
                composition_time_offset: None,
                data_offset: position,
                data_size: frame.sample.len(),
            })
            .map_err(mux)?;
        position += frame.sample.len() as u64;
        times_us.push(at);
        keyframes += u64::from(frame.keyframe);
    }
    let mut file = file.into_inner().map_err(|e| e.into_error())?;
    for (offset, bytes) in muxer.finalize().map_err(mux)?.offset_and_bytes_pairs() {
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(bytes)?;
    }
    file.sync_all()?;
    std::fs::rename(&temporary, out)?;
    let duration_us = times_us.last().map_or(0, |t| t + LAST_FRAME_US);
    Ok(Exported {
        frames: times_us.len() as u64,
        keyframes,
        width,
        height,
        times_us,
        duration_us,
        scn_ended: ended,
    })
}
