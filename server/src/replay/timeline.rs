//! An interaction's timeline as the player draws it: the call events as markers, the legs
//! (recordings), the screens (contacts and their monitors' tracks), and the blanks — stretches
//! without audio or without screen, each with the reason a person reads. Pure: facts in, timeline
//! out. Times are UTC ms; `offset_ms` is the position in the stitched file.

use serde::Serialize;
use serde_json::Value;

use crate::store::{ContactDetail, InteractionRecording, InteractionSummary, TimelineEvent};

/// A marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Marker {
    /// Ringing, Connected, On Hold, …
    pub kind: String,
    /// Who (agent name, else the Webex person id).
    pub who: String,
    /// When (UTC ms).
    pub at_ms: i64,
    /// Position in the file (ms; negative before it starts).
    pub offset_ms: i64,
}

/// A leg: one recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Leg {
    /// The recording.
    pub recording: String,
    /// Its owner (name, else email).
    pub owner: Option<String>,
    /// `inbound` (the owner answered) or `outbound`.
    pub direction: Option<String>,
    /// The other party's number.
    pub remote_number: Option<String>,
    /// The other party's name.
    pub remote_name: Option<String>,
    /// Start (UTC ms).
    pub from_ms: i64,
    /// End (UTC ms).
    pub to_ms: i64,
    /// Position of the start in the file.
    pub offset_ms: i64,
}

/// A screen: one video track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScreenTrack {
    /// The view to ask for (`video-N`).
    pub view: String,
    /// The contact it comes from.
    pub contact: String,
    /// The monitor.
    pub monitor: i64,
    /// Whose screen (agent name, else the Webex person id).
    pub agent: String,
    /// Where the contact's recording starts in the file (ms): before it, this view has nothing.
    pub from_offset_ms: i64,
    /// Where it ends.
    pub to_offset_ms: i64,
    /// Why it ends before its contact did (the monitor was disconnected or changed).
    pub ended: Option<String>,
}

/// A stretch without audio or without screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Blank {
    /// `audio` or `screen`.
    pub lacks: &'static str,
    /// What people read: "recording paused", "between recordings", "screen not captured: …".
    pub label: String,
    /// Position in the file (ms).
    pub from_offset_ms: i64,
    /// End position in the file (ms).
    pub to_offset_ms: i64,
}

/// The timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    /// Where the file starts (UTC ms).
    pub start_ms: i64,
    /// Its length (ms).
    pub duration_ms: i64,
    /// Call events.
    pub markers: Vec<Marker>,
    /// Recordings.
    pub legs: Vec<Leg>,
    /// Screens, one per video track.
    pub screens: Vec<ScreenTrack>,
    /// Whether the file has an audio track with recorded audio.
    pub has_audio: bool,
    /// Stretches without audio or screen.
    pub blanks: Vec<Blank>,
}

/// A track whose first frame comes this long after its contact started is a monitor connected
/// during the contact.
const LATE_MONITOR_MS: i64 = 2_000;

fn recording_span(r: &InteractionRecording) -> Option<(i64, i64)> {
    let from = r.session_start_ms.or(r.time_recorded_ms)?;
    let to = r
        .session_stop_ms
        .or_else(|| Some(from + r.duration_s? * 1000))?;
    Some((from, to.max(from)))
}

/// (PAUSE, RESUME or end) stretches of a recording.
fn pauses(metadata: &Value, end_ms: i64) -> Vec<(i64, i64)> {
    crate::ingestion::plan::pauses(metadata)
        .into_iter()
        .map(|(from, to)| (from, to.unwrap_or(end_ms)))
        .collect()
}

/// `[from, to)` minus the union of `covered`, as sorted stretches.
fn uncovered(from: i64, to: i64, mut covered: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    covered.sort();
    let mut out = Vec::new();
    let mut at = from;
    for (start, end) in covered {
        if start > at {
            out.push((at, start.min(to)));
        }
        at = at.max(end);
        if at >= to {
            break;
        }
    }
    if at < to {
        out.push((at, to));
    }
    out.retain(|(a, b)| b > a);
    out
}

/// Builds the timeline of an archived interaction.
pub fn build(
    interaction: &InteractionSummary,
    recordings: &[InteractionRecording],
    contacts: &[(ContactDetail, Option<String>)],
    events: &[TimelineEvent],
) -> Timeline {
    let start = interaction
        .timeline_start_ms
        .or(interaction.start_ms)
        .unwrap_or(0);
    let duration = interaction
        .timeline_ms
        .or_else(|| Some(interaction.stop_ms? - start))
        .unwrap_or(0)
        .max(0);
    let end = start + duration;
    let offset = |at: i64| at - start;
    let markers = events
        .iter()
        .filter(|e| e.note.is_none())
        .map(|e| Marker {
            kind: e.kind.clone(),
            who: e.agent.clone().unwrap_or_else(|| e.person_id.clone()),
            at_ms: e.at_ms,
            offset_ms: offset(e.at_ms),
        })
        .collect();
    let mut legs = Vec::new();
    let mut audio_covered = Vec::new();
    let mut blanks = Vec::new();
    for r in recordings {
        let Some((from, to)) = recording_span(r) else {
            continue;
        };
        legs.push(Leg {
            recording: r.id.clone(),
            owner: r.owner_name.clone().or_else(|| r.owner_email.clone()),
            direction: r.personality.as_deref().and_then(|p| match p {
                "terminator" => Some("inbound".to_owned()),
                "originator" => Some("outbound".to_owned()),
                _ => None,
            }),
            remote_number: r.remote_number.clone(),
            remote_name: r.remote_name.clone(),
            from_ms: from,
            to_ms: to,
            offset_ms: offset(from),
        });
        let paused = pauses(&r.metadata, to);
        for (a, b) in &paused {
            blanks.push(Blank {
                lacks: "audio",
                label: "recording paused".into(),
                from_offset_ms: offset(*a).max(0),
                to_offset_ms: offset(*b).min(duration),
            });
        }
        audio_covered.extend(uncovered(from, to, paused.clone()));
        audio_covered.extend(paused);
    }
    let has_audio = !legs.is_empty();
    let audio_label = if has_audio {
        "no recording here (between recordings)".to_owned()
    } else {
        "no audio: no recording of this call".to_owned()
    };
    for (a, b) in uncovered(start, end, audio_covered) {
        blanks.push(Blank {
            lacks: "audio",
            label: audio_label.clone(),
            from_offset_ms: offset(a),
            to_offset_ms: offset(b),
        });
    }
    let mut screens = Vec::new();
    let tracks = interaction.tracks.as_array().cloned().unwrap_or_default();
    for (n, track) in tracks.iter().filter(|t| t["kind"] == "video").enumerate() {
        let contact = track["contact"].as_str().unwrap_or_default().to_owned();
        let found = contacts.iter().find(|(c, _)| c.summary.id == contact);
        let agent = found
            .map(|(c, name)| name.clone().unwrap_or_else(|| c.summary.person_id.clone()))
            .unwrap_or_default();
        let (from, to) = found.map_or((start, end), |(c, _)| {
            (
                c.summary.started_at_ms,
                c.summary.ended_at_ms.unwrap_or(end),
            )
        });
        // A monitor connected during the contact starts with its first frame (the others'
        // first frames follow the Ringing within a second); one removed or changed ends where
        // the agent said it did.
        let (mut from_offset, mut to_offset) = (offset(from), offset(to));
        let ended = track["ended"].as_str().map(str::to_owned);
        if let Some(first) = track["from_ms"].as_i64()
            && first > from_offset + LATE_MONITOR_MS
        {
            from_offset = first;
        }
        if let (Some(last), Some(_)) = (track["to_ms"].as_i64(), &ended) {
            to_offset = to_offset.min(last);
        }
        screens.push(ScreenTrack {
            view: format!("video-{n}"),
            contact,
            monitor: track["monitor"].as_i64().unwrap_or(0),
            agent,
            from_offset_ms: from_offset.max(0),
            to_offset_ms: to_offset.min(duration),
            ended,
        });
    }
    let mut screen_covered = Vec::new();
    for (contact, _) in contacts {
        if !screens.iter().any(|s| s.contact == contact.summary.id) {
            continue;
        }
        let (from, to) = (
            contact.summary.started_at_ms,
            contact.summary.ended_at_ms.unwrap_or(end),
        );
        let gaps: Vec<(i64, i64)> = contact
            .gaps
            .iter()
            .map(|g| (g.from_ms, g.to_ms.unwrap_or(to)))
            .collect();
        for gap in &contact.gaps {
            blanks.push(Blank {
                lacks: "screen",
                label: format!("screen not captured: {}", gap.reason),
                from_offset_ms: offset(gap.from_ms).max(0),
                to_offset_ms: offset(gap.to_ms.unwrap_or(to)).min(duration),
            });
        }
        screen_covered.extend(uncovered(from, to, gaps.clone()));
        screen_covered.extend(gaps);
    }
    let screen_label = if screens.is_empty() {
        match interaction.missing.as_deref() {
            Some(m) if m.contains("screen") && !contacts.is_empty() => {
                "screen not captured: the contact was too short or its file unreadable"
            }
            _ => "screen not captured: no desktop agent recorded this call",
        }
    } else {
        "screen not captured: no agent's desktop was recording"
    };
    for (a, b) in uncovered(start, end, screen_covered) {
        blanks.push(Blank {
            lacks: "screen",
            label: screen_label.to_owned(),
            from_offset_ms: offset(a),
            to_offset_ms: offset(b),
        });
    }
    blanks.retain(|b| b.to_offset_ms > b.from_offset_ms);
    blanks.sort_by_key(|b| (b.from_offset_ms, b.lacks));
    Timeline {
        start_ms: start,
        duration_ms: duration,
        markers,
        legs,
        screens,
        has_audio,
        blanks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ContactGap, ContactSummary};

    fn at(ms: i64) -> String {
        crate::webex::time::format_timestamp(capture_shared::time::UtcMillis(ms))
    }

    #[test]
    fn holes_are_named_where_they_are() {
        let t0 = 1_800_000_000_000;
        let interaction = InteractionSummary {
            id: "i".into(),
            call_session_id: "s".into(),
            start_ms: Some(t0),
            stop_ms: Some(t0 + 60_000),
            recordings: 2,
            duration_s: 40,
            owners: Vec::new(),
            remote_numbers: Vec::new(),
            state: "archived".into(),
            missing: None,
            archive_key: None,
            archive_sha256: None,
            error: None,
            contacts: vec!["c".into()],
            legal_hold: false,
            agents: Vec::new(),
            direction: None,
            length_s: Some(60),
            has_screen: true,
            has_audio: true,
            timeline_start_ms: Some(t0),
            timeline_ms: Some(60_000),
            tracks: serde_json::json!([
                {"kind": "video", "monitor": 0, "contact": "c"},
                {"kind": "audio"},
            ]),
        };
        let recording = |id: &str, from: i64, to: i64, metadata: Value| InteractionRecording {
            id: id.into(),
            owner_id: None,
            owner_email: Some("alice@example.com".into()),
            owner_type: None,
            owner_name: Some("Alice".into()),
            personality: Some("terminator".into()),
            remote_number: Some("+15550100".into()),
            remote_name: None,
            call_id: None,
            time_recorded_ms: Some(from),
            session_start_ms: Some(from),
            session_stop_ms: Some(to),
            duration_s: None,
            audio_path: None,
            audio_sha256: None,
            audio_bytes: None,
            metadata,
        };
        let paused = serde_json::json!({"serviceData": {"recordingActions": [
            {"action": "PAUSE", "time": at(t0 + 10_000)}, {"action": "RESUME", "time": at(t0 + 15_000)},
        ]}});
        let recordings = [
            recording("r1", t0 + 2_000, t0 + 30_000, paused),
            recording("r2", t0 + 40_000, t0 + 60_000, Value::Null),
        ];
        let contact = ContactDetail {
            summary: ContactSummary {
                id: "c".into(),
                person_id: "p".into(),
                agent_id: None,
                state: "closed".into(),
                started_at_ms: t0,
                ended_at_ms: Some(t0 + 50_000),
                close_reason: None,
                call_session_ids: Vec::new(),
            },
            calls: Vec::new(),
            events: Vec::new(),
            gaps: vec![ContactGap {
                from_ms: t0 + 20_000,
                to_ms: Some(t0 + 25_000),
                reason: "agent offline".into(),
            }],
        };
        let events = [TimelineEvent {
            kind: "Connected".into(),
            at_ms: t0 + 2_000,
            person_id: "p".into(),
            agent: Some("Alice".into()),
            note: None,
        }];
        let timeline = build(
            &interaction,
            &recordings,
            &[(contact, Some("Alice".into()))],
            &events,
        );
        let blanks: Vec<(&str, &str, i64, i64)> = timeline
            .blanks
            .iter()
            .map(|b| (b.lacks, b.label.as_str(), b.from_offset_ms, b.to_offset_ms))
            .collect();
        assert_eq!(
            blanks,
            [
                ("audio", "no recording here (between recordings)", 0, 2_000),
                ("audio", "recording paused", 10_000, 15_000),
                (
                    "screen",
                    "screen not captured: agent offline",
                    20_000,
                    25_000
                ),
                (
                    "audio",
                    "no recording here (between recordings)",
                    30_000,
                    40_000
                ),
                (
                    "screen",
                    "screen not captured: no agent's desktop was recording",
                    50_000,
                    60_000
                ),
            ]
        );
        assert_eq!(timeline.markers[0].offset_ms, 2_000);
        assert_eq!(timeline.screens[0].view, "video-0");
        assert_eq!(timeline.screens[0].agent, "Alice");
        assert_eq!(
            (
                timeline.screens[0].from_offset_ms,
                timeline.screens[0].to_offset_ms
            ),
            (0, 50_000)
        );
        assert_eq!(timeline.legs[1].offset_ms, 40_000);
    }
}
