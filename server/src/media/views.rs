//! One track of a stitched file as a file of its own: what the replay page plays in each view
//! (one `<video>` per monitor, one `<audio>`), since a browser plays only the first video track of
//! a file. Samples are copied as they are, with their timestamps: every view keeps the stitched
//! file's timeline. Streamed: one fragment in memory at a time.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use shiguredo_mp4::TrackKind;
use shiguredo_mp4::demux::{Fmp4FileDemuxer, Input};

use super::fmp4::{Fmp4Error, Fmp4Writer, FragmentSample, Run, Track};

/// Samples of one track per written fragment, about 2 s of video at 30 fps or of 20 ms audio.
const SAMPLES_PER_FRAGMENT: usize = 100;

/// What one track of a stitched file covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrackSpan {
    /// 0-based index among the file's tracks.
    pub index: usize,
    /// `video` or `audio`.
    pub kind: &'static str,
    /// First sample's time (µs).
    pub first_us: u64,
    /// End of the last sample (µs).
    pub end_us: u64,
    /// Samples.
    pub samples: u64,
}

fn demux_error(error: impl std::fmt::Display) -> Fmp4Error {
    Fmp4Error::Encode(format!("reading the stitched file: {error}"))
}

fn open(path: &Path) -> Result<(File, Fmp4FileDemuxer), Fmp4Error> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut demuxer = Fmp4FileDemuxer::new();
    let mut buffer = Vec::new();
    while let Some(required) = demuxer.required_input() {
        if required.position >= size {
            demuxer.handle_input(Input {
                position: required.position,
                data: &[],
            });
            continue;
        }
        let want = required
            .size
            .map_or(size - required.position, |s| s as u64)
            .min(size - required.position);
        buffer.resize(usize::try_from(want).unwrap_or(usize::MAX), 0);
        file.seek(SeekFrom::Start(required.position))?;
        file.read_exact(&mut buffer)?;
        demuxer.handle_input(Input {
            position: required.position,
            data: &buffer,
        });
        // Headers are read up front; the demuxer then asks for nothing until samples are drawn.
        if demuxer.tracks().is_ok() {
            break;
        }
    }
    Ok((file, demuxer))
}

/// One sample drawn from the stitched file.
struct Drawn {
    /// Index of its track among the file's tracks.
    track: usize,
    timescale: u32,
    kind: TrackKind,
    timestamp: u64,
    duration: u32,
    keyframe: bool,
    data: Vec<u8>,
    entry: Option<shiguredo_mp4::boxes::SampleEntry>,
}

/// Feeds the demuxer what it asks for and returns its next sample, with its payload read from
/// `file` when `with_data`.
fn next(
    file: &mut File,
    demuxer: &mut Fmp4FileDemuxer,
    size: u64,
    buffer: &mut Vec<u8>,
    with_data: bool,
) -> Result<Option<Drawn>, Fmp4Error> {
    loop {
        if let Some(required) = demuxer.required_input() {
            let available = size.saturating_sub(required.position);
            let want = required.size.map_or(available, |s| s as u64).min(available);
            buffer.resize(usize::try_from(want).unwrap_or(usize::MAX), 0);
            file.seek(SeekFrom::Start(required.position))?;
            file.read_exact(buffer)?;
            demuxer.handle_input(Input {
                position: required.position,
                data: buffer,
            });
        }
        let track_ids: Vec<u32> = demuxer
            .tracks()
            .map_err(demux_error)?
            .iter()
            .map(|t| t.track_id)
            .collect();
        match demuxer.next_sample() {
            Ok(Some(sample)) => {
                let mut drawn = Drawn {
                    track: track_ids
                        .iter()
                        .position(|id| *id == sample.track.track_id)
                        .unwrap_or(0),
                    timescale: sample.track.timescale.get(),
                    kind: sample.track.kind,
                    timestamp: sample.timestamp,
                    duration: sample.duration,
                    keyframe: sample.keyframe,
                    data: Vec::new(),
                    entry: sample.sample_entry.cloned(),
                };
                let (offset, length) = (sample.data_offset, sample.data_size);
                if with_data {
                    drawn.data = vec![0u8; length];
                    file.seek(SeekFrom::Start(offset))?;
                    file.read_exact(&mut drawn.data)?;
                }
                return Ok(Some(drawn));
            }
            Ok(None) => return Ok(None),
            Err(error) => {
                if demuxer.required_input().is_some() {
                    continue;
                }
                return Err(demux_error(error));
            }
        }
    }
}

/// What each track of the stitched file at `path` covers.
pub fn spans(path: &Path) -> Result<Vec<TrackSpan>, Fmp4Error> {
    let size = std::fs::metadata(path)?.len();
    let (mut file, mut demuxer) = open(path)?;
    let mut spans: Vec<Option<TrackSpan>> = Vec::new();
    let mut buffer = Vec::new();
    while let Some(Drawn {
        track: index,
        timescale,
        kind,
        timestamp,
        duration,
        ..
    }) = next(&mut file, &mut demuxer, size, &mut buffer, false)?
    {
        if spans.len() <= index {
            spans.resize(index + 1, None);
        }
        let us = |ticks: u64| ticks * 1_000_000 / u64::from(timescale);
        let span = spans[index].get_or_insert(TrackSpan {
            index,
            kind: if kind == TrackKind::Video {
                "video"
            } else {
                "audio"
            },
            first_us: us(timestamp),
            end_us: 0,
            samples: 0,
        });
        span.end_us = span.end_us.max(us(timestamp + u64::from(duration)));
        span.samples += 1;
    }
    Ok(spans.into_iter().flatten().collect())
}

/// Writes track `index` (0-based) of the stitched file at `path` to `out` as a fragmented MP4
/// of its own (written to `out` with `.partial` appended, then renamed). `false` when the file
/// has no such track.
pub fn extract(path: &Path, index: usize, out: &Path) -> Result<bool, Fmp4Error> {
    let size = std::fs::metadata(path)?.len();
    let (mut file, mut demuxer) = open(path)?;
    let partial = out.with_extension("partial");
    let mut writer: Option<Fmp4Writer> = None;
    let mut run: Option<Run> = None;
    let mut buffer = Vec::new();
    while let Some(drawn) = next(&mut file, &mut demuxer, size, &mut buffer, true)? {
        let Drawn {
            track,
            timescale,
            kind,
            timestamp,
            duration,
            keyframe,
            data,
            entry,
        } = drawn;
        if track != index {
            continue;
        }
        if writer.is_none() {
            let Some(entry) = entry else {
                return Err(demux_error("a sample without its sample entry"));
            };
            let timescale = std::num::NonZeroU32::new(timescale)
                .ok_or_else(|| demux_error("a track with timescale 0"))?;
            writer = Some(Fmp4Writer::create(
                &partial,
                &[Track {
                    kind,
                    timescale,
                    entry,
                }],
            )?);
        }
        let current = run.get_or_insert_with(|| Run {
            track: 0,
            start: timestamp,
            samples: Vec::new(),
        });
        current.samples.push(FragmentSample {
            duration,
            keyframe,
            data,
        });
        if current.samples.len() >= SAMPLES_PER_FRAGMENT
            && let (Some(writer), Some(full)) = (writer.as_mut(), run.take())
        {
            writer.write_fragment(&[full])?;
        }
    }
    let Some(mut writer) = writer else {
        return Ok(false);
    };
    if let Some(last) = run.take() {
        writer.write_fragment(&[last])?;
    }
    writer.finish()?;
    std::fs::rename(&partial, out)?;
    Ok(true)
}
