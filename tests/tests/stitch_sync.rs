//! Sync: a screen that flashes and a call recording that beeps at the same instants (the start,
//! before and after a pause of the recording) end up within 100 ms of each other in the stitched
//! file — found by decoding the output with ffmpeg, not by reading our own timestamps back.

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
use capture_tests::av_sync::{beeps, flashes};
use capture_tests::recordings::TestEmulator;
use jiff::Timestamp;
use openh264::OpenH264API;
use openh264::encoder::Encoder;
use openh264::formats::{BgraSliceU8, YUVBuffer};
use webex_emulator::RecordingSpec;

/// The agent's clock reads this much less than the server's (µs).
const AGENT_BEHIND_US: i64 = 1_000_000_000;

/// Wall-clock instants (ms after the recording starts) of the flashes and beeps.
const EVENTS_MS: [i64; 4] = [0, 6_000, 16_000, 22_000];
/// The recording is paused from 10 s to 14 s.
const PAUSE: (i64, i64) = (10_000, 4_000);

fn write_scn(path: &Path, t0_ms: i64) {
    let agent_at = |wall_ms: i64| (t0_ms + wall_ms) * 1000 - AGENT_BEHIND_US;
    let header = ScnHeader {
        agent: AgentId(uuid::Uuid::new_v4()),
        contact: ContactId(uuid::Uuid::new_v4()),
        created: UtcMicros((t0_ms - 2_000) * 1000),
        monitors: Vec::new(),
        clock_anchor: Some(ClockAnchor {
            agent: AgentMicros(u64::try_from(agent_at(0)).expect("agent time")),
            server: UtcMicros(t0_ms * 1000),
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
    // A frame every 100 ms from 2 s before the recording to its end; one white frame per event.
    for (n, wall) in (-2_000..30_000).step_by(100).enumerate() {
        let flash = EVENTS_MS.contains(&wall);
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
    let recording = emulator.add_recording(spec);

    // The recording's documents as Webex serves them.
    let client = WebexClient::new(
        emulator.base_url(),
        Tokens::fixed(&emulator.credentials().access_token),
        Some(emulator.ca_file()),
    )?;
    let metadata = client.recording_metadata(&recording.id).await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("audio"))?;
    std::fs::create_dir_all(dir.path().join("buffer"))?;
    std::fs::write(
        dir.path().join("audio/r.mp3"),
        emulator.audio(&recording.id).expect("audio"),
    )?;
    transcode_mp3(
        &dir.path().join("audio/r.mp3"),
        &dir.path().join("audio/r.opus"),
    )?;
    write_scn(&dir.path().join("buffer/c.scn"), t0_ms);

    let input = ScreenInput {
        contact: "c".into(),
        scn_path: "buffer/c.scn".into(),
        started_ms: t0_ms - 2_000,
        ended_ms: Some(t0_ms + 30_000),
    };
    let screen = Screen {
        input: &input,
        facts: scan(&dir.path().join("buffer/c.scn"))?,
    };
    let audio = AudioInput {
        id: recording.id.clone(),
        opus_path: "audio/r.opus".into(),
        audio_path: None,
        session_start_ms: metadata.session_start.map(|t| t.0),
        session_stop_ms: metadata.session_stop.map(|t| t.0),
        time_recorded_ms: Some(t0_ms),
        duration_s: Some(24),
        metadata: metadata.raw.clone(),
    };
    let aligned = align(&[screen], &[audio], dir.path());
    assert_eq!(
        aligned.plan.audio.len(),
        2,
        "the pause splits the audio: {:?}",
        aligned.plan.audio
    );
    let out = dir.path().join("interaction.mp4");
    stitch(&aligned.plan, &out)?;

    let flashes = flashes(&out)?;
    let beeps = beeps(&out)?;
    assert_eq!(flashes.len(), EVENTS_MS.len(), "flashes at {flashes:?}");
    assert_eq!(beeps.len(), EVENTS_MS.len(), "beeps at {beeps:?}");
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
    // And both where the events were: 2 s into the timeline (the screen started first).
    for (flash, wall) in flashes.iter().zip(EVENTS_MS) {
        assert!(
            (flash - (2.0 + wall as f64 / 1000.0)).abs() <= 0.1,
            "flash at {flash}"
        );
    }
    Ok(())
}
