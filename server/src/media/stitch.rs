//! Stitching: an interaction's screen (one video track per monitor, H.264 copied as captured) and
//! its call audio (Opus, laid on the same timeline with real silence in every hole) into one
//! fragmented MP4, written fragment by fragment ([`FRAGMENT_US`]) so memory does not grow with
//! the interaction's length and a crash leaves a file [`super::fmp4::recover`] can cut back.
//!
//! The timeline starts at 0 (the interaction's start, chosen by the caller). Video frames sit at
//! their capture time plus the input's offset (the agent's clock mapped to the server's); audio
//! pieces sit where the caller says (the recording's start, its pauses). Audio is placed on a
//! 20 ms grid (Opus packets), so it is within 10 ms of where it belongs.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use capture_shared::ids::MonitorId;
use capture_shared::scn::{Record, ScnReader};
use shiguredo_mp4::boxes::{AudioSampleEntryFields, DopsBox, OpusBox, SampleEntry};
use shiguredo_mp4::{FixedPointNumber, TrackKind};

use super::audio::{self, FRAME_MS, FRAME_SAMPLES_48K, OPUS_RATE, OpusPackets, PRE_SKIP};
use super::export::sample_entry;
use super::fmp4::{Fmp4Error, Fmp4Writer, FragmentSample, Run, Track};
use super::h264::to_sample;

/// Length of one fragment.
pub const FRAGMENT_US: i64 = 2_000_000;
/// Video timescale: µs, so capture times map exactly.
pub const VIDEO_TIMESCALE: u32 = 1_000_000;
const SLOT_US: i64 = FRAME_MS as i64 * 1000;

/// One monitor of one SCN file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInput {
    /// The SCN file.
    pub scn: PathBuf,
    /// The monitor.
    pub monitor: MonitorId,
    /// Added to capture times (agent µs) to place them on the timeline (µs).
    pub offset_us: i64,
    /// Where the monitor's stream ended before the timeline did (µs on the timeline; the
    /// monitor was removed or changed): its last frame lasts until then.
    pub end_us: Option<i64>,
}

/// A stretch of a recording's Opus packets placed on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPiece {
    /// The Opus packet file ([`audio::transcode_mp3`]).
    pub opus: PathBuf,
    /// Where on the timeline it starts (µs).
    pub at_us: i64,
    /// How far into the recording's audio it starts (µs).
    pub skip_us: i64,
    /// How long it lasts (µs); to the audio's end when `None`.
    pub length_us: Option<i64>,
}

/// What to stitch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Length of the timeline (µs).
    pub duration_us: i64,
    /// One video track per entry.
    pub videos: Vec<VideoInput>,
    /// The audio, in any order; where pieces overlap the earlier-starting one plays.
    pub audio: Vec<AudioPiece>,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stitched {
    /// File size.
    pub bytes: u64,
    /// Frames written per video track.
    pub video_frames: Vec<u64>,
    /// Per video track: where its first frame starts and its last one ends (µs on the
    /// timeline), `None` when it has no frame.
    pub video_spans: Vec<Option<(i64, i64)>>,
    /// Audio packets from recordings.
    pub audio_packets: u64,
    /// Silence packets filling holes.
    pub silent_packets: u64,
}

/// Why stitching failed.
#[derive(Debug, thiserror::Error)]
pub enum StitchError {
    /// Reading an input or writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An SCN file is unreadable.
    #[error("{0}")]
    Scn(#[from] capture_shared::scn::ScnError),
    /// Audio failed.
    #[error("{0}")]
    Audio(#[from] audio::AudioError),
    /// Writing the MP4 failed.
    #[error("{0}")]
    Mp4(#[from] Fmp4Error),
    /// A monitor has no keyframe with its parameter sets.
    #[error("{0}: monitor {1} has no decodable video")]
    NoVideo(PathBuf, MonitorId),
}

/// What an SCN file holds, as ingestion needs it to place its screen on a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScnFacts {
    /// Monitors with at least one keyframe.
    pub monitors: Vec<MonitorId>,
    /// Microseconds to add to the agent's capture times to get server UTC µs: the clock sample
    /// with the shortest round trip (the header's anchor included).
    pub clock_offset_us: Option<i64>,
    /// The first keyframe's capture time (agent µs).
    pub first_video_us: Option<u64>,
    /// When the file was created (server UTC µs): the call's Ringing.
    pub created_us: i64,
    /// Streams that ended before the file did (a monitor removed or changed).
    pub ends: Vec<StreamEnd>,
}

/// A monitor's stream that ended before its contact did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// The monitor.
    pub monitor: MonitorId,
    /// When (agent µs).
    pub captured_us: u64,
    /// Why, as the agent said it.
    pub reason: String,
}

/// Reads `scn` once for [`ScnFacts`].
pub fn scan(scn: &Path) -> Result<ScnFacts, StitchError> {
    let mut reader = ScnReader::open(scn)?;
    let header = reader.header().clone();
    let mut best = header.clock_anchor;
    let mut facts = ScnFacts {
        created_us: header.created.0,
        ..ScnFacts::default()
    };
    while let Some(record) = reader.next_record()? {
        match record {
            Record::ClockSample(anchor) if best.is_none_or(|b| anchor.rtt_us < b.rtt_us) => {
                best = Some(anchor);
            }
            Record::Video {
                monitor,
                captured,
                keyframe,
                ..
            } => {
                // A frame captured after its stream's end: the stream went on (an agent that
                // restarted numbers its monitors afresh), so that end no longer holds.
                facts
                    .ends
                    .retain(|e| e.monitor != monitor || e.captured_us >= captured.0);
                if keyframe {
                    if !facts.monitors.contains(&monitor) {
                        facts.monitors.push(monitor);
                    }
                    facts.first_video_us = Some(
                        facts
                            .first_video_us
                            .map_or(captured.0, |f| f.min(captured.0)),
                    );
                }
            }
            Record::StreamEnd {
                monitor,
                captured,
                reason,
            } => {
                // The last word counts (an end sent again after a reconnection).
                facts.ends.retain(|e| e.monitor != monitor);
                facts.ends.push(StreamEnd {
                    monitor,
                    captured_us: captured.0,
                    reason,
                });
            }
            _ => {}
        }
    }
    facts.monitors.sort();
    facts.clock_offset_us = best.map(|a| a.offset_us());
    Ok(facts)
}

/// A monitor's frames in timeline order, from its first keyframe.
struct VideoReader {
    reader: ScnReader<std::io::BufReader<std::fs::File>>,
    monitor: MonitorId,
    offset_us: i64,
    end_us: Option<i64>,
    started: bool,
    next: Option<(i64, Vec<u8>, bool)>,
    /// First frame's start, last frame's end.
    span: Option<(i64, i64)>,
}

impl VideoReader {
    fn open(input: &VideoInput) -> Result<(VideoReader, SampleEntry), StitchError> {
        let missing = || StitchError::NoVideo(input.scn.clone(), input.monitor);
        // First pass: the codec configuration of the first keyframe.
        let mut reader = ScnReader::open(&input.scn)?;
        let (mut size, mut sps, mut pps) = ((0, 0), None, None);
        let entry = loop {
            match reader.next_record()?.ok_or_else(missing)? {
                Record::StreamParams {
                    monitor,
                    width,
                    height,
                    ..
                } if monitor == input.monitor => size = (width, height),
                Record::Video { monitor, data, .. } if monitor == input.monitor => {
                    let sample = to_sample(&data);
                    sps = sample.sps.or(sps);
                    pps = sample.pps.or(pps);
                    if let (true, Some(sps), Some(pps)) = (sample.keyframe, &sps, &pps) {
                        break sample_entry(sps, pps, size.0, size.1);
                    }
                }
                _ => {}
            }
        };
        let mut video = VideoReader {
            reader: ScnReader::open(&input.scn)?,
            monitor: input.monitor,
            offset_us: input.offset_us,
            end_us: input.end_us,
            started: false,
            next: None,
            span: None,
        };
        video.next = video.read()?;
        Ok((video, entry))
    }

    fn read(&mut self) -> Result<Option<(i64, Vec<u8>, bool)>, StitchError> {
        while let Some(record) = self.reader.next_record()? {
            if let Record::Video {
                monitor,
                captured,
                data,
                ..
            } = record
                && monitor == self.monitor
            {
                let sample = to_sample(&data);
                if !self.started && !sample.keyframe {
                    continue;
                }
                self.started = true;
                let at = i64::try_from(captured.0).unwrap_or(i64::MAX) + self.offset_us;
                return Ok(Some((at, sample.data, sample.keyframe)));
            }
        }
        Ok(None)
    }

    /// The frames starting before `end`, each with its duration (to the next frame, or for the
    /// last to the stream's end: where the monitor went away, else `timeline_end`).
    fn take_until(&mut self, end: i64, timeline_end: i64) -> Result<Option<Run>, StitchError> {
        let mut samples = Vec::new();
        let mut start = None;
        let stream_end = self.end_us.map_or(timeline_end, |e| e.min(timeline_end));
        while let Some((at, _, _)) = &self.next {
            if *at >= end {
                break;
            }
            let (at, data, keyframe) = self.next.take().unwrap_or_default();
            self.next = self.read()?;
            let until = self.next.as_ref().map_or(stream_end, |(next, _, _)| *next);
            // Frames are in capture order; a clock step backwards gets the shortest duration.
            let duration = u32::try_from((until - at).max(1)).unwrap_or(u32::MAX);
            start.get_or_insert(at);
            let first = self.span.map_or(at, |(first, _)| first);
            self.span = Some((first, at + i64::from(duration)));
            samples.push(FragmentSample {
                duration,
                keyframe,
                data,
            });
        }
        Ok(start.map(|start| Run {
            track: 0,
            start: u64::try_from(start.max(0)).unwrap_or(0),
            samples,
        }))
    }
}

/// The audio on the 20 ms grid: each slot's packet from the piece covering it, else silence.
pub(super) struct AudioTrack {
    pieces: Vec<AudioPiece>,
    current: Option<(OpusPackets, i64)>, // reader, end of the piece on the timeline (µs)
    index: usize,
    silence: Vec<u8>,
    packets: u64,
    silent: u64,
}

impl AudioTrack {
    /// The track of `pieces` (sorted by start), silence encoded at `input_rate` in its holes.
    pub(super) fn new(pieces: Vec<AudioPiece>, input_rate: u32) -> Result<AudioTrack, StitchError> {
        Ok(AudioTrack {
            pieces,
            current: None,
            index: 0,
            silence: audio::silence_packet(input_rate)?,
            packets: 0,
            silent: 0,
        })
    }

    /// The packet of the slot at `slot_at` (µs), and whether it came from a recording. Slots
    /// are asked for in order.
    pub(super) fn recorded(&mut self, slot_at: i64) -> Result<(Vec<u8>, bool), StitchError> {
        let silent = self.silent;
        let packet = self.packet(slot_at)?;
        Ok((packet, self.silent == silent))
    }

    fn packet(&mut self, slot_at: i64) -> Result<Vec<u8>, StitchError> {
        loop {
            if let Some((reader, end)) = &mut self.current {
                if slot_at < *end
                    && let Some(packet) = reader.next_packet()?
                {
                    self.packets += 1;
                    return Ok(packet);
                }
                if slot_at < *end {
                    *end = slot_at; // the recording's audio ended early
                }
                self.current = None;
            }
            let Some(piece) = self.pieces.get(self.index) else {
                break;
            };
            if piece.at_us > slot_at {
                break;
            }
            self.index += 1;
            let mut reader = OpusPackets::open(&piece.opus)?;
            // Skip what lies before this slot: the piece's own skip, and any part already covered
            // by an earlier piece.
            let skip = piece.skip_us.max(0) + (slot_at - piece.at_us);
            for _ in 0..skip / SLOT_US {
                if reader.next_packet()?.is_none() {
                    break;
                }
            }
            let end = piece.length_us.map_or(i64::MAX, |l| piece.at_us + l);
            self.current = Some((reader, end));
        }
        self.silent += 1;
        Ok(self.silence.clone())
    }
}

pub(super) fn opus_entry(input_rate: u32) -> SampleEntry {
    SampleEntry::Opus(OpusBox {
        audio: AudioSampleEntryFields {
            data_reference_index: AudioSampleEntryFields::DEFAULT_DATA_REFERENCE_INDEX,
            channelcount: 1,
            samplesize: AudioSampleEntryFields::DEFAULT_SAMPLESIZE,
            samplerate: FixedPointNumber::new(OPUS_RATE as u16, 0),
        },
        dops_box: DopsBox {
            output_channel_count: 1,
            pre_skip: PRE_SKIP,
            input_sample_rate: input_rate,
            output_gain: 0,
        },
        unknown_boxes: vec![],
    })
}

/// Stitches `plan` into the fragmented MP4 `out`. CPU- and IO-bound: call it off the async
/// runtime.
pub fn stitch(plan: &Plan, out: &Path) -> Result<Stitched, StitchError> {
    let mut videos = Vec::new();
    let mut tracks = Vec::new();
    for input in &plan.videos {
        let (reader, entry) = VideoReader::open(input)?;
        videos.push(reader);
        tracks.push(Track {
            kind: TrackKind::Video,
            timescale: NonZeroU32::new(VIDEO_TIMESCALE).unwrap_or(NonZeroU32::MIN),
            entry,
        });
    }
    let mut pieces = plan.audio.clone();
    pieces.sort_by_key(|p| p.at_us);
    let input_rate = match pieces.first() {
        Some(piece) => OpusPackets::open(&piece.opus)?.input_rate,
        None => 16_000,
    };
    let audio_track = tracks.len();
    tracks.push(Track {
        kind: TrackKind::Audio,
        timescale: NonZeroU32::new(OPUS_RATE).unwrap_or(NonZeroU32::MIN),
        entry: opus_entry(input_rate),
    });
    let mut audio = AudioTrack::new(pieces, input_rate)?;
    let mut writer = Fmp4Writer::create(out, &tracks)?;
    let mut stitched = Stitched {
        video_frames: vec![0; videos.len()],
        ..Stitched::default()
    };
    let slots = (plan.duration_us.max(0) + SLOT_US - 1) / SLOT_US;
    let mut slot = 0i64;
    let mut fragment_start = 0i64;
    while fragment_start < plan.duration_us.max(1) {
        let end = fragment_start + FRAGMENT_US;
        let mut runs = Vec::new();
        for (index, video) in videos.iter_mut().enumerate() {
            if let Some(mut run) = video.take_until(end.min(plan.duration_us), plan.duration_us)? {
                run.track = index;
                stitched.video_frames[index] += run.samples.len() as u64;
                runs.push(run);
            }
        }
        let mut samples = Vec::new();
        let first_slot = slot;
        while slot < slots && slot * SLOT_US < end {
            samples.push(FragmentSample {
                duration: FRAME_SAMPLES_48K,
                keyframe: true,
                data: audio.packet(slot * SLOT_US)?,
            });
            slot += 1;
        }
        runs.push(Run {
            track: audio_track,
            start: u64::try_from(first_slot).unwrap_or(0) * u64::from(FRAME_SAMPLES_48K),
            samples,
        });
        writer.write_fragment(&runs)?;
        fragment_start = end;
    }
    stitched.video_spans = videos.iter().map(|v| v.span).collect();
    stitched.audio_packets = audio.packets;
    stitched.silent_packets = audio.silent;
    stitched.bytes = writer.finish()?;
    Ok(stitched)
}

#[cfg(test)]
mod tests;
