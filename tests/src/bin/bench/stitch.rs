//! `stitch`: a 1 h interaction with two monitors, from its last input to an archived, verified
//! file.
//!
//! Inputs, made first (not timed): an SCN file with two 640×360 monitors at 2 frames/s (real
//! H.264 from openh264), white flashes every 10 minutes; the emulator's 1 h MP3 with a beep at
//! the same instants, already transcoded to Opus (ingestion does that when the recording
//! arrives). Timed: scan + align + stitch + archive (put, read back, checksum) — what ingestion
//! does once the last input is in. Peak RSS is reset before the timed part (`clear_refs`), so it
//! is the stitcher's. Then the output is decoded with ffmpeg and every flash is paired with its
//! beep: `av_offset_ms_max`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use capture_server::ingestion::archive::Archive;
use capture_server::ingestion::plan::{Screen, align};
use capture_server::media::audio::transcode_mp3;
use capture_server::media::stitch::{scan, stitch};
use capture_server::store::{AudioInput, ScreenInput};
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
use serde_json::json;
use webex_emulator::RecordingSpec;

use crate::{Options, round};

pub const SECONDS: i64 = 3600;
const FLASH_EVERY_S: i64 = 600;
const FPS: i64 = 2;

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn write_scn(path: &Path, t0_ms: i64, seconds: i64) -> anyhow::Result<()> {
    let agent_behind_us = 1_000_000_000i64;
    let agent_at =
        |wall_ms: i64| u64::try_from((t0_ms + wall_ms) * 1000 - agent_behind_us).unwrap_or(0);
    let header = ScnHeader {
        agent: AgentId(uuid::Uuid::new_v4()),
        contact: ContactId(uuid::Uuid::new_v4()),
        created: UtcMicros(t0_ms * 1000),
        monitors: Vec::new(),
        clock_anchor: Some(ClockAnchor {
            agent: AgentMicros(agent_at(0)),
            server: UtcMicros(t0_ms * 1000),
            rtt_us: 900,
        }),
    };
    let mut writer = ScnWriter::create(path, &header, FsyncPolicy::Never)?;
    let (width, height) = (640usize, 360usize);
    let mut encoders = Vec::new();
    for m in 0..2u16 {
        writer.append(&Record::StreamParams {
            monitor: MonitorId(m),
            codec: VideoCodec::H264,
            width: width as u32,
            height: height as u32,
        })?;
        encoders.push(Encoder::with_api_config(
            OpenH264API::from_source(),
            openh264::encoder::EncoderConfig::new(),
        )?);
    }
    let step = 1000 / FPS;
    for (n, wall) in (0..seconds * 1000).step_by(step as usize).enumerate() {
        let flash = wall % (FLASH_EVERY_S * 1000) == 0;
        for (m, encoder) in encoders.iter_mut().enumerate() {
            // A moving bar keeps every frame different (P-frames with content), a white frame
            // flashes.
            let mut bgra = vec![if flash { 250u8 } else { 40 }; width * height * 4];
            if !flash {
                let x = (n * 7 + m * 100) % (width - 20);
                for y in 0..height {
                    for dx in 0..20 {
                        let i = (y * width + x + dx) * 4;
                        bgra[i..i + 3].copy_from_slice(&[200, 120, 60]);
                    }
                }
            }
            let mut yuv = YUVBuffer::new(width, height);
            yuv.read_bgra8(BgraSliceU8::new(&bgra, (width, height)));
            let keyframe = n % 60 == 0 || flash;
            if keyframe {
                encoder.force_intra_frame();
            }
            writer.append(&Record::Video {
                monitor: MonitorId(m as u16),
                sequence: n as u64,
                captured: AgentMicros(agent_at(wall)),
                keyframe,
                data: encoder.encode(&yuv)?.to_vec(),
            })?;
        }
    }
    writer.sync()?;
    Ok(())
}

/// The inputs of the 1 h interaction in `dir`: `audio/r.mp3` and its transcode `audio/r.opus`,
/// `buffer/c.scn`.
pub struct HourInputs {
    /// Where the call starts (UTC ms).
    pub t0_ms: i64,
    /// The recording's id.
    pub recording: String,
    /// How long transcoding took (s).
    pub transcode_s: f64,
    /// Opus packets written.
    pub opus_packets: u64,
    /// The SCN file's size (MB).
    pub scn_mb: f64,
}

/// Makes the 1 h inputs (not timed: ingestion transcodes as recordings arrive, and the screen
/// arrives live).
pub async fn hour_inputs(dir: &Path) -> anyhow::Result<HourInputs> {
    std::fs::create_dir_all(dir.join("audio"))?;
    std::fs::create_dir_all(dir.join("buffer"))?;
    let emulator = TestEmulator::start(|_| {}).await?;
    let t0_ms = (Timestamp::now().as_millisecond() / 1000 - 2 * SECONDS) * 1000;
    let mut spec = RecordingSpec::new(Timestamp::from_millisecond(t0_ms)?, SECONDS as u32);
    spec.beeps = (1..SECONDS / FLASH_EVERY_S)
        .map(|k| Duration::from_secs((k * FLASH_EVERY_S) as u64))
        .collect();
    let recording = emulator.add_recording(spec);
    std::fs::write(
        dir.join("audio/r.mp3"),
        emulator.audio(&recording.id).context("audio")?,
    )?;
    eprintln!("1 h inputs: transcoding 1 h of MP3 (done as each recording arrives; not timed)");
    let started = Instant::now();
    let transcoded = transcode_mp3(&dir.join("audio/r.mp3"), &dir.join("audio/r.opus"))?;
    let transcode_s = started.elapsed().as_secs_f64();
    eprintln!("1 h inputs: writing 1 h of two-monitor H.264 (not timed)");
    write_scn(&dir.join("buffer/c.scn"), t0_ms, SECONDS)?;
    Ok(HourInputs {
        t0_ms,
        recording: recording.id.clone(),
        transcode_s,
        opus_packets: transcoded.packets,
        scn_mb: std::fs::metadata(dir.join("buffer/c.scn"))?.len() as f64 / 1e6,
    })
}

/// The screen and audio of [`hour_inputs`] as ingestion reads them from the store.
pub fn hour_parts(inputs: &HourInputs) -> (ScreenInput, AudioInput) {
    let t0_ms = inputs.t0_ms;
    (
        ScreenInput {
            contact: "c".into(),
            scn_path: "buffer/c.scn".into(),
            started_ms: t0_ms,
            ended_ms: Some(t0_ms + SECONDS * 1000),
        },
        AudioInput {
            id: inputs.recording.clone(),
            opus_path: "audio/r.opus".into(),
            audio_path: None,
            session_start_ms: Some(t0_ms),
            session_stop_ms: Some(t0_ms + SECONDS * 1000),
            time_recorded_ms: Some(t0_ms),
            duration_s: Some(SECONDS),
            answered_ms: None,
            metadata: serde_json::Value::Null,
        },
    )
}

pub fn run(_options: &Options) -> anyhow::Result<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let inputs = hour_inputs(dir.path()).await?;
        let (transcode_s, scn_mb) = (inputs.transcode_s, inputs.scn_mb);

        // Timed: what ingestion does once the last input is in.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let baseline_mb = vm_hwm_mb();
        let started = Instant::now();
        let (input, audio) = hour_parts(&inputs);
        let facts = scan(&dir.path().join("buffer/c.scn"))?;
        let aligned = align(&[Screen { input: &input, facts }], &[audio], dir.path());
        let out = dir.path().join("interaction.mp4");
        let plan = aligned.plan.clone();
        let out_path = out.clone();
        let stitched = tokio::task::spawn_blocking(move || stitch(&plan, &out_path)).await??;
        let archive = Archive::local(&dir.path().join("archive"))?;
        let (sha256, bytes) = archive.put_file("interactions/bench/interaction.mp4", &out).await?;
        archive.verify("interactions/bench/interaction.mp4", &sha256).await?;
        let seconds = started.elapsed().as_secs_f64();
        let rss = vm_hwm_mb();
        eprintln!("stitch: {stitched:?} in {seconds:.2} s; peak RSS {rss:.1} MB (before: {baseline_mb:.1} MB)");

        let flashes = flashes(&out)?;
        let beeps = beeps(&out)?;
        let offsets: Vec<f64> = flashes.iter().zip(&beeps).map(|(f, b)| (f - b).abs() * 1000.0).collect();
        eprintln!("stitch: flashes {flashes:?}\n        beeps   {beeps:?}");
        anyhow::ensure!(
            flashes.len() == beeps.len() && flashes.len() as i64 == SECONDS / FLASH_EVERY_S,
            "flashes and beeps do not pair up"
        );
        Ok(json!({
            "interaction_s": SECONDS,
            "monitors": 2,
            "scn_mb": round(scn_mb, 1),
            "archived_mb": round(bytes as f64 / 1e6, 1),
            "last_input_to_archived_s": round(seconds, 2),
            "rss_mb_max": round(rss, 1),
            "av_offset_ms_max": round(offsets.iter().copied().fold(0.0, f64::max), 1),
            "pairs": offsets.len(),
            "transcode_1h_s": round(transcode_s, 2),
            "opus_packets": inputs.opus_packets,
        }))
    })
}
