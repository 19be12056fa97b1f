//! Alignment: an interaction's screens and recordings on one timeline (server UTC), as a stitch
//! [`Plan`]. Pure: the facts come in, the plan goes out.
//!
//! - The timeline starts at the earliest input (contact start, recording start) and ends at the
//!   latest.
//! - A screen's frames are placed by the agent's measured clock offset (the SCN file's best clock
//!   sample); without one, the first keyframe is taken to be the file's creation (Ringing).
//! - A recording starts at its session start (else `timeRecorded`), refined to the call's
//!   ms-precision answer time when that falls within Webex's whole second; each PAUSE … RESUME of its
//!   `recordingActions` is absent from the MP3, so the audio after a pause resumes at the RESUME's
//!   time: a hole on the timeline, filled with silence.

use std::path::Path;

use capture_shared::ids::MonitorId;
use serde::Serialize;
use serde_json::Value;

use crate::media::stitch::{AudioPiece, Plan, ScnFacts, VideoInput};
use crate::store::{AudioInput, ScreenInput};
use crate::webex::time::parse_timestamp;

/// How one input was placed, for the archive's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Contact id or recording id.
    pub input: String,
    /// Screen: the monitor.
    pub monitor: Option<u16>,
    /// Where it starts on the timeline (µs).
    pub at_us: i64,
    /// How it was aligned.
    pub by: &'static str,
}

/// A plan and how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aligned {
    /// What to stitch.
    pub plan: Plan,
    /// Timeline zero, UTC ms.
    pub start_ms: i64,
    /// Where each input went.
    pub placements: Vec<Placement>,
    /// What is missing: `screen`, `audio`, or `None`.
    pub missing: Option<&'static str>,
}

/// A screen with what its SCN file holds.
#[derive(Debug, Clone)]
pub struct Screen<'a> {
    /// The linked contact.
    pub input: &'a ScreenInput,
    /// What its file holds.
    pub facts: ScnFacts,
}

/// Where a recording starts: the call's ms-precision answer time when it refines Webex's
/// whole-second start, else the session start, else `timeRecorded`.
pub(crate) fn recording_start_ms(audio: &AudioInput) -> Option<i64> {
    audio
        .answered_ms
        .or(audio.session_start_ms)
        .or(audio.time_recorded_ms)
}

/// Where a recording ends: the session stop, else its start plus its length.
pub(crate) fn recording_end_ms(audio: &AudioInput) -> Option<i64> {
    audio
        .session_stop_ms
        .or_else(|| Some(recording_start_ms(audio)? + audio.duration_s? * 1000))
}

/// (PAUSE time, RESUME time or `None`) pairs of a recording's `recordingActions`, in time order.
pub(crate) fn pauses(metadata: &Value) -> Vec<(i64, Option<i64>)> {
    let mut actions: Vec<(i64, String)> = metadata
        .pointer("/serviceData/recordingActions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let at = a
                .get("time")
                .and_then(Value::as_str)
                .and_then(parse_timestamp)?;
            Some((at.0, a.get("action")?.as_str()?.to_ascii_uppercase()))
        })
        .collect();
    actions.sort();
    let mut out = Vec::new();
    let mut paused: Option<i64> = None;
    for (at, action) in actions {
        match (action.as_str(), paused) {
            ("PAUSE", None) => paused = Some(at),
            ("RESUME", Some(from)) => {
                out.push((from, Some(at)));
                paused = None;
            }
            _ => {}
        }
    }
    if let Some(from) = paused {
        out.push((from, None));
    }
    out
}

/// The pieces of one recording's audio on the timeline.
pub fn audio_pieces(audio: &AudioInput, start_ms: i64, data_dir: &Path) -> Vec<AudioPiece> {
    let Some(recording_start) = recording_start_ms(audio) else {
        return Vec::new();
    };
    let opus = data_dir.join(&audio.opus_path);
    let mut pieces = Vec::new();
    let mut wall = recording_start; // where the audio continues on the wall clock
    let mut position_ms = 0; // how far into the MP3
    for (pause, resume) in pauses(&audio.metadata) {
        if pause < wall {
            continue;
        }
        pieces.push(AudioPiece {
            opus: opus.clone(),
            at_us: (wall - start_ms) * 1000,
            skip_us: position_ms * 1000,
            length_us: Some((pause - wall) * 1000),
        });
        position_ms += pause - wall;
        match resume {
            Some(resume) => wall = resume,
            None => return pieces,
        }
    }
    pieces.push(AudioPiece {
        opus,
        at_us: (wall - start_ms) * 1000,
        skip_us: position_ms * 1000,
        length_us: None,
    });
    pieces
}

/// Aligns `screens` and `audio` on one timeline.
pub fn align(screens: &[Screen<'_>], audio: &[AudioInput], data_dir: &Path) -> Aligned {
    let starts = screens
        .iter()
        .map(|s| s.input.started_ms)
        .chain(audio.iter().filter_map(recording_start_ms));
    let start_ms = starts.min().unwrap_or(0);
    let ends = screens
        .iter()
        .map(|s| s.input.ended_ms.unwrap_or(s.input.started_ms))
        .chain(audio.iter().filter_map(recording_end_ms));
    let end_ms = ends.max().unwrap_or(start_ms).max(start_ms + 1);
    let mut plan = Plan {
        duration_us: (end_ms - start_ms) * 1000,
        ..Plan::default()
    };
    let mut placements = Vec::new();
    for screen in screens {
        let (offset_us, by) = match (screen.facts.clock_offset_us, screen.facts.first_video_us) {
            (Some(offset), _) => (offset, "agent clock offset"),
            (None, Some(first)) => (
                screen.facts.created_us - i64::try_from(first).unwrap_or(i64::MAX),
                "first frame at ringing (no clock sample)",
            ),
            (None, None) => continue,
        };
        for monitor in &screen.facts.monitors {
            let offset_us = offset_us - start_ms * 1000;
            let end_us = screen.facts.ends.iter().find(|e| e.monitor == *monitor);
            let video = VideoInput {
                scn: data_dir.join(&screen.input.scn_path),
                monitor: *monitor,
                offset_us,
                end_us: end_us.map(|e| i64::try_from(e.captured_us).unwrap_or(0) + offset_us),
            };
            placements.push(Placement {
                input: screen.input.contact.clone(),
                monitor: Some(monitor.0),
                at_us: screen
                    .facts
                    .first_video_us
                    .map_or(0, |f| i64::try_from(f).unwrap_or(0) + video.offset_us),
                by,
            });
            plan.videos.push(video);
        }
    }
    for recording in audio {
        for piece in audio_pieces(recording, start_ms, data_dir) {
            placements.push(Placement {
                input: recording.id.clone(),
                monitor: None,
                at_us: piece.at_us,
                by: if recording.answered_ms.is_some() {
                    "answered event, pauses from recordingActions"
                } else if recording.session_start_ms.is_some() {
                    "session start, pauses from recordingActions"
                } else {
                    "timeRecorded"
                },
            });
            plan.audio.push(piece);
        }
    }
    let missing = match (plan.videos.is_empty(), plan.audio.is_empty()) {
        (true, true) => Some("screen and audio"),
        (true, false) => Some("screen"),
        (false, true) => Some("audio"),
        (false, false) => None,
    };
    Aligned {
        plan,
        start_ms,
        placements,
        missing,
    }
}

/// The monitors of a plan (for the manifest).
pub fn monitors(plan: &Plan) -> Vec<MonitorId> {
    plan.videos.iter().map(|v| v.monitor).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(metadata: Value) -> AudioInput {
        AudioInput {
            id: "r".into(),
            opus_path: "audio/r.opus".into(),
            audio_path: None,
            session_start_ms: Some(10_000),
            session_stop_ms: Some(40_000),
            time_recorded_ms: Some(9_000),
            duration_s: Some(20),
            answered_ms: None,
            metadata,
        }
    }

    fn at(ms: i64) -> String {
        crate::webex::time::format_timestamp(capture_shared::time::UtcMillis(ms))
    }

    #[test]
    fn a_pause_is_a_hole_and_the_audio_after_it_resumes_at_the_resume() {
        let metadata = serde_json::json!({ "serviceData": { "recordingActions": [
            { "action": "RESUME", "time": at(25_000) },
            { "action": "PAUSE", "time": at(15_000) },
        ]}});
        let pieces = audio_pieces(&recording(metadata), 5_000, Path::new("/d"));
        assert_eq!(pieces.len(), 2);
        assert_eq!(
            (pieces[0].at_us, pieces[0].skip_us, pieces[0].length_us),
            (5_000_000, 0, Some(5_000_000))
        );
        assert_eq!(
            (pieces[1].at_us, pieces[1].skip_us, pieces[1].length_us),
            (20_000_000, 5_000_000, None)
        );
        assert_eq!(pieces[1].opus, Path::new("/d/audio/r.opus"));
    }

    #[test]
    fn a_pause_never_resumed_ends_the_audio_and_no_actions_is_one_piece() {
        let metadata = serde_json::json!({ "serviceData": { "recordingActions": [
            { "action": "PAUSE", "time": at(12_000) },
        ]}});
        let pieces = audio_pieces(&recording(metadata), 10_000, Path::new("/d"));
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].length_us, Some(2_000_000));
        let pieces = audio_pieces(&recording(Value::Null), 10_000, Path::new("/d"));
        assert_eq!(pieces.len(), 1);
        assert_eq!((pieces[0].at_us, pieces[0].length_us), (0, None));
    }

    #[test]
    fn the_answered_event_refines_the_whole_second_start_and_the_pauses_stay_put() {
        let metadata = serde_json::json!({ "serviceData": { "recordingActions": [
            { "action": "PAUSE", "time": at(15_000) },
            { "action": "RESUME", "time": at(25_000) },
        ]}});
        let mut refined = recording(metadata);
        refined.answered_ms = Some(10_437);
        let pieces = audio_pieces(&refined, 5_000, Path::new("/d"));
        assert_eq!(pieces.len(), 2);
        assert_eq!(
            (pieces[0].at_us, pieces[0].length_us),
            (5_437_000, Some(4_563_000))
        );
        assert_eq!(
            (pieces[1].at_us, pieces[1].skip_us),
            (20_000_000, 4_563_000)
        );
        let aligned = align(&[], &[refined], Path::new("/d"));
        assert_eq!(aligned.start_ms, 10_437);
        assert_eq!(
            aligned.placements[0].by,
            "answered event, pauses from recordingActions"
        );
    }

    #[test]
    fn screens_are_placed_by_their_clock_offset_and_missing_parts_named() {
        let input = ScreenInput {
            contact: "c".into(),
            scn_path: "buffer/c.scn".into(),
            started_ms: 8_000,
            ended_ms: Some(45_000),
        };
        let screen = Screen {
            input: &input,
            facts: ScnFacts {
                monitors: vec![MonitorId(0), MonitorId(1)],
                clock_offset_us: Some(7_000_000),
                first_video_us: Some(1_500_000),
                created_us: 8_000_000,
                ends: vec![crate::media::stitch::StreamEnd {
                    monitor: MonitorId(1),
                    captured_us: 20_000_000,
                    reason: "monitor 1 was disconnected".into(),
                }],
            },
        };
        let aligned = align(
            std::slice::from_ref(&screen),
            &[recording(Value::Null)],
            Path::new("/d"),
        );
        assert_eq!(aligned.start_ms, 8_000);
        assert_eq!(aligned.plan.duration_us, 37_000_000);
        assert_eq!(aligned.plan.videos.len(), 2);
        // Monitor 1 was removed at agent 20 s: timeline 20 s + 7 s offset - 8 s start.
        let ends: Vec<Option<i64>> = aligned.plan.videos.iter().map(|v| v.end_us).collect();
        assert_eq!(ends, vec![None, Some(19_000_000)]);
        // agent 1.5 s + offset 7 s = server 8.5 s = timeline 0.5 s.
        assert_eq!(aligned.placements[0].at_us, 500_000);
        assert_eq!(aligned.plan.audio[0].at_us, 2_000_000);
        assert_eq!(aligned.missing, None);
        assert_eq!(
            align(&[screen], &[], Path::new("/d")).missing,
            Some("audio")
        );
        assert_eq!(
            align(&[], &[recording(Value::Null)], Path::new("/d")).missing,
            Some("screen")
        );
    }
}
