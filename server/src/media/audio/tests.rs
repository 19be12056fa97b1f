//! Transcoding the emulator's real MP3s: length kept, beeps where they were.

use std::time::Duration;

use super::*;

/// Power of `freq` in `samples` relative to their total power (Goertzel).
fn tone_share(samples: &[f32], rate: f32, freq: f32) -> f32 {
    let k = 2.0 * (2.0 * std::f32::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    let total: f32 = samples.iter().map(|x| x * x).sum::<f32>() * samples.len() as f32 / 2.0;
    if total <= 0.0 { 0.0 } else { power / total }
}

fn decode_all(path: &Path) -> Vec<f32> {
    let mut packets = OpusPackets::open(path).expect("open");
    let mut decoder = opus::Decoder::new(OPUS_RATE, opus::Channels::Mono).expect("decoder");
    let mut out = Vec::new();
    let mut frame = vec![0f32; FRAME_SAMPLES_48K as usize];
    while let Some(packet) = packets.next_packet().expect("packet") {
        let n = decoder
            .decode_float(&packet, &mut frame, false)
            .expect("decode");
        out.extend_from_slice(&frame[..n]);
    }
    out.drain(..usize::from(PRE_SKIP));
    out
}

#[tokio::test]
async fn an_mp3_from_webex_becomes_opus_of_the_same_length_with_its_beeps_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emulator = webex_emulator::Emulator::start(webex_emulator::EmulatorConfig::in_dir(
        dir.path().join("emu"),
    ))
    .await
    .expect("emulator");
    let mut spec = webex_emulator::RecordingSpec::new(jiff::Timestamp::now(), 12);
    spec.beeps = vec![Duration::from_millis(4_000), Duration::from_millis(9_500)];
    let recording = emulator.add_recording(spec);
    let mp3 = dir.path().join("call.mp3");
    std::fs::write(&mp3, emulator.audio(&recording.id).expect("audio")).expect("write");
    let opus_file = dir.path().join("call.opus");
    let done = tokio::task::spawn_blocking({
        let (mp3, opus_file) = (mp3.clone(), opus_file.clone());
        move || transcode_mp3(&mp3, &opus_file)
    })
    .await
    .expect("join")
    .expect("transcode");
    assert_eq!(done.input_rate, 16_000);
    assert!((done.duration_us() - 12_000_000).abs() < 40_000, "{done:?}");
    assert_eq!(done.packets, (done.samples * 50).div_ceil(16_000));

    let pcm = decode_all(&opus_file);
    let window = 480; // 10 ms at 48 kHz
    let onsets: Vec<f32> = pcm
        .chunks(window)
        .enumerate()
        .filter(|(_, w)| w.len() == window && tone_share(w, 48_000.0, 1_000.0) > 0.5)
        .map(|(i, _)| i as f32 * 0.01)
        .fold(Vec::new(), |mut onsets: Vec<f32>, t| {
            if onsets.last().is_none_or(|last| t - last > 0.5) {
                onsets.push(t);
            }
            onsets
        });
    // The emulator beeps at the start and where asked; MP3 frames are 36 ms.
    assert_eq!(onsets.len(), 3, "beeps found at {onsets:?}");
    for (found, expected) in onsets.iter().zip([0.0f32, 4.0, 9.5]) {
        assert!(
            (found - expected).abs() <= 0.05,
            "beep at {found} s, expected {expected} s"
        );
    }
}

#[test]
fn garbage_is_a_decode_error_and_a_torn_packet_file_ends_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.mp3");
    std::fs::write(&junk, b"<html>not audio</html>").expect("write");
    assert!(matches!(
        transcode_mp3(&junk, &dir.path().join("out.opus")),
        Err(AudioError::Decode(_))
    ));
    let torn = dir.path().join("torn.opus");
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&3u16.to_le_bytes());
    bytes.extend_from_slice(&[1, 2, 3]);
    bytes.extend_from_slice(&9u16.to_le_bytes());
    bytes.extend_from_slice(&[1]);
    std::fs::write(&torn, bytes).expect("write");
    let mut packets = OpusPackets::open(&torn).expect("open");
    assert_eq!(packets.next_packet().expect("first"), Some(vec![1, 2, 3]));
    assert_eq!(packets.next_packet().expect("torn"), None);
    assert!(OpusPackets::open(&junk).is_err());
    assert!(silence_packet(16_000).expect("silence").len() < 20);
    assert!(matches!(
        silence_packet(44_100),
        Err(AudioError::Rate(44_100))
    ));
}
