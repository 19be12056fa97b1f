//! Stitching real H.264 (openh264) and real Opus (from the emulator's MP3) into fragmented MP4,
//! checked with ffprobe; a file cut anywhere recovers to its last fragment.

use std::path::Path;
use std::process::Command;

use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::VideoCodec;
use capture_shared::scn::{FsyncPolicy, Record, ScnHeader, ScnWriter};
use capture_shared::time::{AgentMicros, UtcMicros};
use openh264::OpenH264API;
use openh264::encoder::Encoder;
use openh264::formats::{BgraSliceU8, YUVBuffer};

use super::*;
use crate::media::audio::transcode_mp3;
use crate::media::fmp4::recover;

/// An SCN file of `monitors`, one frame every 100 ms from `first_us` for `seconds`, each monitor
/// a flat grey that turns white for the frames listed in `flashes` (frame indexes).
fn scn_file(path: &Path, monitors: u16, first_us: u64, seconds: u64, flashes: &[usize]) {
    let header = ScnHeader {
        agent: AgentId(uuid::Uuid::new_v4()),
        contact: ContactId(uuid::Uuid::new_v4()),
        created: UtcMicros(0),
        monitors: Vec::new(),
        clock_anchor: None,
    };
    let mut writer = ScnWriter::create(path, &header, FsyncPolicy::Never).expect("scn");
    let (width, height) = (160usize, 96usize);
    for m in 0..monitors {
        writer
            .append(&Record::StreamParams {
                monitor: MonitorId(m),
                codec: VideoCodec::H264,
                width: width as u32,
                height: height as u32,
            })
            .expect("params");
        let mut encoder = Encoder::with_api_config(
            OpenH264API::from_source(),
            openh264::encoder::EncoderConfig::new(),
        )
        .expect("encoder");
        for frame in 0..(seconds * 10) as usize {
            let shade = if flashes.contains(&frame) {
                255
            } else {
                60 + 20 * m as u8
            };
            let bgra = vec![shade; width * height * 4];
            let mut yuv = YUVBuffer::new(width, height);
            yuv.read_bgra8(BgraSliceU8::new(&bgra, (width, height)));
            if frame % 30 == 0 {
                encoder.force_intra_frame();
            }
            let data = encoder.encode(&yuv).expect("encode").to_vec();
            writer
                .append(&Record::Video {
                    monitor: MonitorId(m),
                    sequence: frame as u64,
                    captured: AgentMicros(first_us + frame as u64 * 100_000),
                    keyframe: frame % 30 == 0,
                    data,
                })
                .expect("video");
        }
    }
}

fn ffprobe(path: &Path) -> serde_json::Value {
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
        .expect("ffprobe");
    assert!(
        output.status.success(),
        "ffprobe refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json")
}

async fn opus_file(dir: &Path, seconds: u32) -> (std::path::PathBuf, u64) {
    let emulator =
        webex_emulator::Emulator::start(webex_emulator::EmulatorConfig::in_dir(dir.join("emu")))
            .await
            .expect("emulator");
    let recording = emulator.add_recording(webex_emulator::RecordingSpec::new(
        jiff::Timestamp::now(),
        seconds,
    ));
    let mp3 = dir.join(format!("{}.mp3", recording.id));
    std::fs::write(&mp3, emulator.audio(&recording.id).expect("audio")).expect("mp3");
    let opus = dir.join(format!("{}.opus", recording.id));
    let done = transcode_mp3(&mp3, &opus).expect("transcode");
    (opus, done.packets)
}

#[tokio::test]
async fn two_monitors_and_audio_with_holes_make_one_fragmented_mp4_ffprobe_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scn = dir.path().join("contact.scn");
    // Capture starts 1.5 s into the interaction (agent clock 5 s = timeline 1.5 s).
    scn_file(&scn, 2, 5_000_000, 8, &[20]);
    let (opus, packets) = opus_file(dir.path(), 6).await;
    assert!(
        (299..=301).contains(&packets),
        "6 s of MP3 in 20 ms packets: {packets}"
    );
    let plan = Plan {
        duration_us: 10_000_000,
        videos: (0..2)
            .map(|m| VideoInput {
                scn: scn.clone(),
                monitor: MonitorId(m),
                offset_us: 1_500_000 - 5_000_000,
                end_us: None,
            })
            .collect(),
        // Two legs of one recording around a pause: 0–2 s, then 3 s later 2–6 s.
        audio: vec![
            AudioPiece {
                opus: opus.clone(),
                at_us: 0,
                skip_us: 0,
                length_us: Some(2_000_000),
            },
            AudioPiece {
                opus,
                at_us: 5_000_000,
                skip_us: 2_000_000,
                length_us: None,
            },
        ],
    };
    let out = dir.path().join("interaction.mp4");
    let stitched = stitch(&plan, &out).expect("stitch");
    assert_eq!(stitched.video_frames, vec![80, 80]);
    assert_eq!(
        stitched.audio_packets + stitched.silent_packets,
        500,
        "{stitched:?}"
    );
    // Every recorded packet is used once; the 3 s pause and the time after the audio are silence.
    assert_eq!(stitched.audio_packets, packets, "{stitched:?}");

    let probe = ffprobe(&out);
    let streams = probe["streams"].as_array().expect("streams");
    let codecs: Vec<&str> = streams
        .iter()
        .filter_map(|s| s["codec_name"].as_str())
        .collect();
    assert_eq!(codecs, vec!["h264", "h264", "opus"]);
    // Every track ends with the timeline. (ffprobe reports a fragmented track's end time as its
    // `duration`, and the format's as start + that: the video's 1.5 s start is counted twice there.)
    for stream in streams {
        let end: f64 = stream["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .expect("duration");
        assert!((end - 10.0).abs() < 0.1, "track ends at {end}: {stream}");
    }
    // The video starts where its capture began, not at zero.
    let start: f64 = streams[0]["start_time"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("start");
    assert!((start - 1.5).abs() < 0.01, "video starts at {start}");

    // Every packet of every track decodes.
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-map", "0", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        decoded.status.success() && decoded.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );

    // Cut anywhere: recovery keeps the complete fragments and ffprobe accepts the rest.
    let bytes = std::fs::read(&out).expect("read");
    for cut in [bytes.len() / 3, bytes.len() / 2 + 17, bytes.len() - 5] {
        let torn = dir.path().join(format!("torn-{cut}.mp4"));
        std::fs::write(&torn, &bytes[..cut]).expect("write");
        let kept = recover(&torn).expect("recover");
        assert!(kept > 0 && kept <= cut as u64);
        let probe = ffprobe(&torn);
        assert_eq!(probe["streams"].as_array().map(Vec::len), Some(3));
    }
}

#[test]
fn a_monitor_without_video_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scn = dir.path().join("contact.scn");
    scn_file(&scn, 1, 0, 1, &[]);
    let plan = Plan {
        duration_us: 1_000_000,
        videos: vec![VideoInput {
            scn,
            monitor: MonitorId(3),
            offset_us: 0,
            end_us: None,
        }],
        audio: Vec::new(),
    };
    assert!(matches!(
        stitch(&plan, &dir.path().join("x.mp4")),
        Err(StitchError::NoVideo(_, MonitorId(3)))
    ));
}

#[test]
fn a_monitor_removed_during_the_contact_ends_its_track_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scn = dir.path().join("contact.scn");
    // Frames from agent 5.0 s to 6.9 s on both monitors; monitor 1 removed at agent 7.5 s.
    scn_file(&scn, 2, 5_000_000, 2, &[]);
    {
        let (mut writer, _) = ScnWriter::open_append(&scn, FsyncPolicy::Never).expect("reopen");
        writer
            .append(&Record::StreamEnd {
                monitor: MonitorId(1),
                captured: AgentMicros(7_500_000),
                reason: "monitor 1 was disconnected".into(),
            })
            .expect("end");
    }
    let facts = scan(&scn).expect("scan");
    assert_eq!(
        facts.ends,
        vec![StreamEnd {
            monitor: MonitorId(1),
            captured_us: 7_500_000,
            reason: "monitor 1 was disconnected".into()
        }]
    );
    // A frame of the same monitor captured after the end (an agent restarted with its old
    // numbering): the stream went on, the end no longer holds.
    let later = dir.path().join("later.scn");
    std::fs::copy(&scn, &later).expect("copy");
    {
        let (mut writer, _) = ScnWriter::open_append(&later, FsyncPolicy::Never).expect("reopen");
        let last = facts.first_video_us.unwrap_or(0);
        let mut encoder = Encoder::with_api_config(
            OpenH264API::from_source(),
            openh264::encoder::EncoderConfig::new(),
        )
        .expect("encoder");
        let yuv = YUVBuffer::new(160, 96);
        let data = encoder.encode(&yuv).expect("encode").to_vec();
        writer
            .append(&Record::Video {
                monitor: MonitorId(1),
                sequence: 20,
                captured: AgentMicros(last + 3_000_000),
                keyframe: true,
                data,
            })
            .expect("video");
    }
    assert_eq!(scan(&later).expect("scan").ends, vec![]);
    let offset_us = 1_000_000 - 5_000_000;
    let plan = Plan {
        duration_us: 10_000_000,
        videos: (0..2)
            .map(|m| VideoInput {
                scn: scn.clone(),
                monitor: MonitorId(m),
                offset_us,
                end_us: (m == 1).then_some(7_500_000 + offset_us),
            })
            .collect(),
        audio: Vec::new(),
    };
    let out = dir.path().join("out.mp4");
    let stitched = stitch(&plan, &out).expect("stitch");
    // Monitor 0 lasts to the timeline's end; monitor 1 from its first frame to its removal.
    assert_eq!(
        stitched.video_spans,
        vec![Some((1_000_000, 10_000_000)), Some((1_000_000, 3_500_000))]
    );
    let probe = ffprobe(&out);
    assert_eq!(probe["streams"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn a_late_recording_is_restitched_into_the_archived_file() {
    use crate::media::restitch::{Restitch, restitch};
    let dir = tempfile::tempdir().expect("tempdir");
    let scn = dir.path().join("contact.scn");
    // The archived file: 6 s of screen from 0, no audio (all silence).
    scn_file(&scn, 1, 0, 6, &[]);
    let old = dir.path().join("old.mp4");
    let plan = Plan {
        duration_us: 6_000_000,
        videos: vec![VideoInput {
            scn,
            monitor: MonitorId(0),
            offset_us: 0,
            end_us: None,
        }],
        audio: Vec::new(),
    };
    let first = stitch(&plan, &old).expect("stitch");
    assert_eq!(first.audio_packets, 0);
    // A 4 s recording that started 1 s before the screen: the old file moves 1 s later and
    // the timeline grows to 7 s.
    let (opus, packets) = opus_file(dir.path(), 4).await;
    let new = dir.path().join("new.mp4");
    let done = restitch(
        &old,
        &Restitch {
            shift_us: 1_000_000,
            duration_us: 7_000_000,
            audio: vec![AudioPiece {
                opus,
                at_us: 0,
                skip_us: 0,
                length_us: None,
            }],
        },
        &new,
    )
    .expect("restitch");
    assert_eq!(done.shift_us, 1_000_000);
    assert_eq!(done.video_frames, first.video_frames);
    assert_eq!(done.added_packets, packets.min(350));
    assert_eq!(done.audio_packets, done.added_packets);
    assert_eq!(
        done.audio_packets + done.silent_packets,
        350,
        "7 s of 20 ms slots"
    );
    let probe = ffprobe(&new);
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    assert_eq!(streams.len(), 2);
    // The video starts where the old file's did, 1 s into the new timeline.
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&new)
        .output()
        .expect("ffprobe");
    let first_pts: f64 = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(f64::NAN);
    assert!((first_pts - 1.0).abs() < 0.001, "{first_pts}");
    // Re-stitching the new file with nothing new changes no packet.
    let again = dir.path().join("again.mp4");
    let same = restitch(
        &new,
        &Restitch {
            shift_us: 0,
            duration_us: 7_000_000,
            audio: Vec::new(),
        },
        &again,
    )
    .expect("restitch again");
    assert_eq!(same.audio_packets, done.audio_packets);
    assert_eq!(same.added_packets, 0);
}
