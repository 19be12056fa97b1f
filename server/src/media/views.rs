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

pub(super) fn demux_error(error: impl std::fmt::Display) -> Fmp4Error {
    Fmp4Error::Encode(format!("reading the stitched file: {error}"))
}

pub(super) fn open(path: &Path) -> Result<(File, Fmp4FileDemuxer), Fmp4Error> {
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
pub(super) struct Drawn {
    /// Index of its track among the file's tracks.
    pub track: usize,
    pub timescale: u32,
    pub kind: TrackKind,
    pub timestamp: u64,
    pub duration: u32,
    pub keyframe: bool,
    pub data: Vec<u8>,
    pub entry: Option<shiguredo_mp4::boxes::SampleEntry>,
}

/// Feeds the demuxer what it asks for and returns its next sample, with its payload when
/// `with_data`: taken from `buffer` (what was last read for the demuxer, from `buffer.0`: a whole
/// media segment, so nearly every sample) or else read from `file`.
pub(super) fn next(
    file: &mut File,
    demuxer: &mut Fmp4FileDemuxer,
    size: u64,
    buffer: &mut (u64, Vec<u8>),
    with_data: bool,
) -> Result<Option<Drawn>, Fmp4Error> {
    loop {
        if let Some(required) = demuxer.required_input() {
            let available = size.saturating_sub(required.position);
            let want = required.size.map_or(available, |s| s as u64).min(available);
            buffer.0 = required.position;
            buffer
                .1
                .resize(usize::try_from(want).unwrap_or(usize::MAX), 0);
            file.seek(SeekFrom::Start(required.position))?;
            file.read_exact(&mut buffer.1)?;
            demuxer.handle_input(Input {
                position: required.position,
                data: &buffer.1,
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
                    let start = offset
                        .checked_sub(buffer.0)
                        .and_then(|s| usize::try_from(s).ok());
                    match start.and_then(|s| buffer.1.get(s..s + length)) {
                        Some(bytes) => drawn.data = bytes.to_vec(),
                        None => {
                            drawn.data = vec![0u8; length];
                            file.seek(SeekFrom::Start(offset))?;
                            file.read_exact(&mut drawn.data)?;
                        }
                    }
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

/// Writes every track of the stitched file at `path` to a fragmented MP4 of its own, in one pass:
/// track N to `out_dir/track-N.mp4` (each written as `.partial`, then renamed). Returns the
/// files, in track order.
pub fn extract_all(path: &Path, out_dir: &Path) -> Result<Vec<std::path::PathBuf>, Fmp4Error> {
    struct Output {
        writer: Fmp4Writer,
        run: Option<Run>,
        partial: std::path::PathBuf,
        done: std::path::PathBuf,
    }
    let size = std::fs::metadata(path)?.len();
    let (mut file, mut demuxer) = open(path)?;
    let mut outputs: Vec<Option<Output>> = Vec::new();
    let mut buffer = (0, Vec::new());
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
        if outputs.len() <= track {
            outputs.resize_with(track + 1, || None);
        }
        if outputs[track].is_none() {
            let Some(entry) = entry else {
                return Err(demux_error("a sample without its sample entry"));
            };
            let timescale = std::num::NonZeroU32::new(timescale)
                .ok_or_else(|| demux_error("a track with timescale 0"))?;
            let done = out_dir.join(format!("track-{track}.mp4"));
            let partial = done.with_extension("partial");
            let writer = Fmp4Writer::create_derived(
                &partial,
                &[Track {
                    kind,
                    timescale,
                    entry,
                }],
            )?;
            outputs[track] = Some(Output {
                writer,
                run: None,
                partial,
                done,
            });
        }
        let Some(output) = outputs[track].as_mut() else {
            continue;
        };
        let run = output.run.get_or_insert_with(|| Run {
            track: 0,
            start: timestamp,
            samples: Vec::new(),
        });
        run.samples.push(FragmentSample {
            duration,
            keyframe,
            data,
        });
        if run.samples.len() >= SAMPLES_PER_FRAGMENT
            && let Some(full) = output.run.take()
        {
            output.writer.write_fragment(&[full])?;
        }
    }
    let mut files = Vec::new();
    for output in outputs.into_iter().flatten() {
        let Output {
            mut writer,
            run,
            partial,
            done,
        } = output;
        if let Some(last) = run {
            writer.write_fragment(&[last])?;
        }
        writer.finish()?;
        std::fs::rename(&partial, &done)?;
        files.push(done);
    }
    Ok(files)
}
