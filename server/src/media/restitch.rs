//! Re-stitching: an archived interaction with a recording that arrived after it was stitched.
//! The screen's SCN files are gone from the buffer by then, so the archived file is the source:
//! its samples are demuxed and copied as they are (H.264 and Opus, no decoding), moved later on
//! the timeline when the new recording starts before the old file did, and the new recording's
//! Opus packets fill the slots of the 20 ms audio grid that held silence; where the old file
//! already has recorded audio it stays (as in [`super::stitch`], the earlier audio plays). The
//! timeline grows to cover the new recording.

use std::path::Path;

use shiguredo_mp4::TrackKind;
use shiguredo_mp4::boxes::SampleEntry;

use super::audio::{FRAME_MS, FRAME_SAMPLES_48K};
use super::fmp4::{Fmp4Writer, FragmentSample, Run, Track};
use super::stitch::{AudioPiece, AudioTrack, StitchError};
use super::views::{Drawn, demux_error, next, open};

const SLOT_US: i64 = FRAME_MS as i64 * 1000;

/// Audio slots per fragment written before or after the old file's fragments (2 s).
const SLOTS_PER_FRAGMENT: i64 = 100;

/// What to add to an archived file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restitch {
    /// How much later the old file's timeline starts on the new one (µs, ≥ 0; rounded to the
    /// 20 ms audio grid).
    pub shift_us: i64,
    /// The new timeline's length (µs).
    pub duration_us: i64,
    /// The new recordings' audio, placed on the new timeline.
    pub audio: Vec<AudioPiece>,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Restitched {
    /// File size.
    pub bytes: u64,
    /// Frames per video track (as in the old file).
    pub video_frames: Vec<u64>,
    /// Audio packets from recordings, old and new.
    pub audio_packets: u64,
    /// Of those, packets of the new recordings.
    pub added_packets: u64,
    /// Silence packets.
    pub silent_packets: u64,
    /// How far the old timeline moved (µs, on the audio grid).
    pub shift_us: i64,
}

struct Writer {
    writer: Fmp4Writer,
    runs: Vec<Option<Run>>,
    audio_track: usize,
    last_was_audio: bool,
}

impl Writer {
    fn push(&mut self, track: usize, start: u64, sample: FragmentSample) {
        let run = self.runs[track].get_or_insert_with(|| Run {
            track,
            start,
            samples: Vec::new(),
        });
        run.samples.push(sample);
    }

    fn flush(&mut self) -> Result<(), StitchError> {
        let runs: Vec<Run> = self.runs.iter_mut().filter_map(Option::take).collect();
        if !runs.is_empty() {
            self.writer.write_fragment(&runs)?;
        }
        Ok(())
    }
}

/// The new file's audio: the new recordings' packets and the silence they may replace.
struct AudioOut {
    track: AudioTrack,
    silence: Vec<u8>,
}

impl AudioOut {
    /// One slot of the new file's audio: the old packet unless it was silence the new audio
    /// covers, else the new audio's (or silence).
    fn emit(
        &mut self,
        w: &mut Writer,
        done: &mut Restitched,
        slot: i64,
        old: Option<Vec<u8>>,
    ) -> Result<(), StitchError> {
        let (new, recorded) = self.track.recorded(slot * SLOT_US)?;
        let data = match old {
            Some(old) if old != self.silence || !recorded => old,
            _ => {
                if recorded {
                    done.added_packets += 1;
                }
                new
            }
        };
        if data == self.silence {
            done.silent_packets += 1;
        } else {
            done.audio_packets += 1;
        }
        let track = w.audio_track;
        w.push(
            track,
            u64::try_from(slot).unwrap_or(0) * u64::from(FRAME_SAMPLES_48K),
            FragmentSample {
                duration: FRAME_SAMPLES_48K,
                keyframe: true,
                data,
            },
        );
        Ok(())
    }
}

/// The old file's tracks: kind, timescale and sample entry of each, read from its samples
/// (a monitor connected late has its first sample, and entry, in a later fragment).
fn tracks(old: &Path) -> Result<Vec<Track>, StitchError> {
    let size = std::fs::metadata(old)?.len();
    let (mut file, mut demuxer) = open(old)?;
    let count = demuxer.tracks().map_err(demux_error)?.len();
    let mut found: Vec<Option<Track>> = (0..count).map(|_| None).collect();
    let mut buffer = (0, Vec::new());
    while found.iter().any(Option::is_none) {
        let Some(drawn) = next(&mut file, &mut demuxer, size, &mut buffer, false)? else {
            break;
        };
        if let (Some(slot), Some(entry)) = (found.get_mut(drawn.track), drawn.entry)
            && slot.is_none()
        {
            *slot = Some(Track {
                kind: drawn.kind,
                timescale: std::num::NonZeroU32::new(drawn.timescale)
                    .ok_or_else(|| demux_error("a track with timescale 0"))?,
                entry,
            });
        }
    }
    found
        .into_iter()
        .collect::<Option<Vec<Track>>>()
        .ok_or_else(|| demux_error("a track without samples").into())
}

/// Writes `old` with `plan`'s audio added to `out`. CPU- and IO-bound: call it off the async
/// runtime.
pub fn restitch(old: &Path, plan: &Restitch, out: &Path) -> Result<Restitched, StitchError> {
    let tracks = tracks(old)?;
    let audio_track = tracks
        .iter()
        .position(|t| t.kind == TrackKind::Audio)
        .ok_or_else(|| demux_error("no audio track"))?;
    let input_rate = match &tracks[audio_track].entry {
        SampleEntry::Opus(opus) => opus.dops_box.input_sample_rate,
        _ => return Err(demux_error("the audio track is not Opus").into()),
    };
    let mut pieces = plan.audio.clone();
    pieces.sort_by_key(|p| p.at_us);
    let mut audio = AudioOut {
        track: AudioTrack::new(pieces, input_rate)?,
        silence: super::audio::silence_packet(input_rate)?,
    };
    let shift_slots = (plan.shift_us.max(0) + SLOT_US / 2) / SLOT_US;
    let shift_us = shift_slots * SLOT_US;
    let total_slots = (plan.duration_us.max(0) + SLOT_US - 1) / SLOT_US;
    let mut done = Restitched {
        video_frames: vec![0; tracks.len().saturating_sub(1)],
        shift_us,
        ..Restitched::default()
    };
    let mut out_file = Writer {
        writer: Fmp4Writer::create(out, &tracks)?,
        runs: (0..tracks.len()).map(|_| None).collect(),
        audio_track,
        last_was_audio: false,
    };
    // Before the old file: the new audio alone.
    let mut next_slot = 0;
    while next_slot < shift_slots {
        audio.emit(&mut out_file, &mut done, next_slot, None)?;
        next_slot += 1;
        if next_slot % SLOTS_PER_FRAGMENT == 0 {
            out_file.flush()?;
        }
    }
    out_file.flush()?;
    // The old file, fragment by fragment (each ends with its audio run).
    let size = std::fs::metadata(old)?.len();
    let (mut file, mut demuxer) = open(old)?;
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
            ..
        } = drawn;
        let is_audio = kind == TrackKind::Audio;
        if !is_audio && out_file.last_was_audio {
            out_file.flush()?;
        }
        out_file.last_was_audio = is_audio;
        if is_audio {
            let slot =
                i64::try_from(timestamp / u64::from(FRAME_SAMPLES_48K)).unwrap_or(0) + shift_slots;
            while next_slot < slot {
                audio.emit(&mut out_file, &mut done, next_slot, None)?;
                next_slot += 1;
            }
            if slot >= next_slot {
                audio.emit(&mut out_file, &mut done, slot, Some(data))?;
                next_slot = slot + 1;
            }
            continue;
        }
        let shift =
            u64::try_from(i128::from(shift_us) * i128::from(timescale) / i128::from(1_000_000u32))
                .unwrap_or(0);
        if let Some(frames) = done.video_frames.get_mut(track) {
            *frames += 1;
        }
        out_file.push(
            track,
            timestamp + shift,
            FragmentSample {
                duration,
                keyframe,
                data,
            },
        );
    }
    out_file.flush()?;
    // After the old file: the rest of the new audio.
    while next_slot < total_slots {
        audio.emit(&mut out_file, &mut done, next_slot, None)?;
        next_slot += 1;
        if next_slot % SLOTS_PER_FRAGMENT == 0 {
            out_file.flush()?;
        }
    }
    out_file.flush()?;
    done.bytes = out_file.writer.finish()?;
    Ok(done)
}
