//! Sync: screens that flash and call recordings that beep at the same instants (the start, after
//! a hold, before and after a pause of the recording, and after a transfer to a second agent
//! whose clock is off the other way) end up within 100 ms of each other in the stitched file —
//! found by decoding the output with ffmpeg, not by reading our own timestamps back. The 1 h case
//! is the `stitch` benchmark's `av_offset_ms_max`.

use std::path::Path;
use std::time::Duration;

use capture_server::ingestion::plan::{Screen, align};
use capture_server::media::audio::transcode_mp3;
use capture_server::media::stitch::{scan, stitch};
use capture_server::store::{AudioInput, ScreenInput};
use capture_server::webex::auth::Tokens;
use capture_server::webex::client::WebexClient;
use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::VideoCodec;
use capture_shared::scn::{ClockAnchor, FsyncPolicy, Record, ScnHeader, ScnWriter};
use capture_shared::time::{AgentMicros, UtcMicros};
use capture_tests::av_sync::{beeps, flashes_in};
use capture_tests::recordings::TestEmulator;
use jiff::Timestamp;
use openh264::OpenH264API;
use openh264::encoder::Encoder;
use openh264::formats::{BgraSliceU8, YUVBuffer};
use webex_emulator::RecordingSpec;

/// The first agent's clock reads this much less than the server's (µs).
const AGENT_BEHIND_US: i64 = 1_000_000_000;
/// The second agent's (who takes the transfer) reads this much more.
const SECOND_AGENT_AHEAD_US: i64 = 2_500_000;

/// Wall-clock instants (ms after the first recording starts) of the flashes and beeps of the
/// first leg: the start, after a hold, after a pause, before the end.
const EVENTS_MS: [i64; 4] = [0, 6_000, 16_000, 22_000];
/// The first recording holds from 2 s to 5 s (silence in the MP3, the audio goes on).
const HOLD_MS: (u64, u64) = (2_000, 5_000);
/// The first recording is paused from 10 s to 14 s.
const PAUSE: (i64, i64) = (10_000, 4_000);
/// The transferred leg: its recording starts at 32 s (with the recording tone, as every
/// recording does), lasts 10 s; events at its start, 34 s and 39 s.
const LEG2_START_MS: i64 = 32_000;
const LEG2_EVENTS_MS: [i64; 3] = [LEG2_START_MS, 34_000, 39_000];

/// Writes a contact's SCN file: a 160×96 frame every 100 ms over `[from, to)` (ms after `t0`),
/// white at each of `events`, timestamped by an agent clock `skew_us` off the server's.
fn write_scn(path: &Path, t0_ms: i64, (from, to): (i64, i64), events: &[i64], skew_us: i64) {
    let agent_at = |wall_ms: i64| (t0_ms + wall_ms) * 1000 + skew_us;
    let header = ScnHeader {
        agent: AgentId(uuid::Uuid::new_v4()),
        contact: ContactId(uuid::Uuid::new_v4()),
        created: UtcMicros((t0_ms + from) * 1000),
        monitors: Vec::new(),
        clock_anchor: Some(ClockAnchor {
            agent: AgentMicros(u64::try_from(agent_at(from)).expect("agent time")),
            server: UtcMicros((t0_ms + from) * 1000),
            rtt_us: 800,
        }),
    };
    let mut writer = ScnWriter::create(path, &header, FsyncPolicy::Never).expect("scn");
    let (width, height) = (160usize, 96usize);
    writer
        .append(&Record::StreamParams {
            monitor: MonitorId(0),
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
    for (n, wall) in (from..to).step_by(100).enumerate() {
        let flash = events.contains(&wall);
        let bgra = vec![if flash { 250 } else { 40 }; width * height * 4];
        let mut yuv = YUVBuffer::new(width, height);
        yuv.read_bgra8(BgraSliceU8::new(&bgra, (width, height)));
        let keyframe = n % 50 == 0 || flash;
        if keyframe {
            encoder.force_intra_frame();
        }
        writer
            .append(&Record::Video {
                monitor: MonitorId(0),
                sequence: n as u64,
                captured: AgentMicros(u64::try_from(agent_at(wall)).expect("agent time")),
                keyframe,
                data: encoder.encode(&yuv).expect("encode").to_vec(),
            })
            .expect("video");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flashes_and_beeps_at_the_same_instants_stay_within_100_ms() -> anyhow::Result<()> {
    let emulator = TestEmulator::start(|_| {}).await?;
    // Whole seconds: Webex's times are.
    let t0_ms = (Timestamp::now().as_millisecond() / 1000 - 600) * 1000;
    let mut spec = RecordingSpec::new(Timestamp::from_millisecond(t0_ms)?, 24);
    spec.holds = vec![Duration::from_millis(HOLD_MS.0)..Duration::from_millis(HOLD_MS.1)];
    spec.pauses = vec![(
        Duration::from_millis(PAUSE.0 as u64),
        Duration::from_millis(PAUSE.1 as u64),
    )];
    // Beeps are offsets into the audio, which lacks the paused stretch.
    spec.beeps = EVENTS_MS[1..]
        .iter()
        .map(|wall| {
            Duration::from_millis(if *wall > PAUSE.0 {
                wall - PAUSE.1
            } else {
                *wall
            } as u64)
        })
        .collect();
    let first = emulator.add_recording(spec);
    // The transferred leg, recorded on the second agent's line.
    let mut spec = RecordingSpec::new(Timestamp::from_millisecond(t0_ms + LEG2_START_MS)?, 10);
    spec.beeps = LEG2_EVENTS_MS[1..]
        .iter()
        .map(|wall| Duration::from_millis((wall - LEG2_START_MS) as u64))
        .collect();
    let second = emulator.add_recording(spec);

    // The recordings' documents as Webex serves them.
    let client = WebexClient::new(
        emulator.base_url(),
        Tokens::fixed(&emulator.credentials().access_token),
        Some(emulator.ca_file()),
    )?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("audio"))?;
    std::fs::create_dir_all(dir.path().join("buffer"))?;
    let mut audio = Vec::new();
    for recording in [&first, &second] {
        let metadata = client.recording_metadata(&recording.id).await?;
        let mp3 = dir.path().join(format!("audio/{}.mp3", recording.id));
        std::fs::write(&mp3, emulator.audio(&recording.id).expect("audio"))?;
        transcode_mp3(&mp3, &mp3.with_extension("opus"))?;
        audio.push(AudioInput {
            id: recording.id.clone(),
            opus_path: format!("audio/{}.opus", recording.id),
            audio_path: None,
            session_start_ms: metadata.session_start.map(|t| t.0),
            session_stop_ms: metadata.session_stop.map(|t| t.0),
            time_recorded_ms: metadata.session_start.map(|t| t.0),
            duration_s: None,
            answered_ms: None,
            metadata: metadata.raw.clone(),
        });
    }
    let legs = [
        ("a", (-2_000, 30_000), &EVENTS_MS[..], -AGENT_BEHIND_US),
        (
            "b",
            (30_000, 44_000),
            &LEG2_EVENTS_MS[..],
            SECOND_AGENT_AHEAD_US,
        ),
    ];
    let mut inputs = Vec::new();
    for (contact, span, events, skew) in legs {
        write_scn(
            &dir.path().join(format!("buffer/{contact}.scn")),
            t0_ms,
            span,
            events,
            skew,
        );
        inputs.push(ScreenInput {
            contact: contact.into(),
            scn_path: format!("buffer/{contact}.scn"),
            started_ms: t0_ms + span.0,
            ended_ms: Some(t0_ms + span.1),
        });
    }
    let screens = inputs
        .iter()
        .map(|input| {
            Ok(Screen {
                input,
                facts: scan(&dir.path().join(&input.scn_path))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let aligned = align(&screens, &audio, dir.path());
    assert_eq!(
        aligned.plan.audio.len(),
        3,
        "the pause splits the first recording: {:?}",
        aligned.plan.audio
    );
    let out = dir.path().join("interaction.mp4");
    stitch(&aligned.plan, &out)?;

    let mut flashes = flashes_in(&out, 0)?;
    assert_eq!(
        flashes.len(),
        EVENTS_MS.len(),
        "first agent's flashes at {flashes:?}"
    );
    let second_screen = flashes_in(&out, 1)?;
    assert_eq!(
        second_screen.len(),
        LEG2_EVENTS_MS.len(),
        "second agent's flashes at {second_screen:?}"
    );
    flashes.extend(second_screen);
    let beeps = beeps(&out)?;
    let expected: Vec<i64> = EVENTS_MS.iter().chain(&LEG2_EVENTS_MS).copied().collect();
    assert_eq!(beeps.len(), expected.len(), "beeps at {beeps:?}");
    let mut worst: f64 = 0.0;
    for (flash, beep) in flashes.iter().zip(&beeps) {
        worst = worst.max((flash - beep).abs());
    }
    eprintln!(
        "flashes {flashes:?}, beeps {beeps:?}, worst offset {:.0} ms",
        worst * 1000.0
    );
    assert!(
        worst <= 0.100,
        "flash and beep {:.0} ms apart",
        worst * 1000.0
    );
    // And both where the events were: 2 s into the timeline (the first screen started first).
    for (flash, wall) in flashes.iter().zip(expected) {
        assert!(
            (flash - (2.0 + wall as f64 / 1000.0)).abs() <= 0.1,
            "flash at {flash}, event at {wall} ms"
        );
    }
    Ok(())
}
