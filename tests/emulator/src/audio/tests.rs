use std::io::Write as _;
use std::process::{Command, Stdio};

use sha2::{Digest as _, Sha256};

use super::*;

fn library() -> FrameLibrary {
    FrameLibrary::encode().expect("library")
}

/// Decodes with ffmpeg to 16 kHz mono s16le.
fn decode(mp3: &[u8]) -> Vec<i16> {
    let mut child = Command::new("ffmpeg")
        .args([
            "-v", "error", "-f", "mp3", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "16000",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = mp3.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("ffmpeg output");
    writer.join().expect("join").expect("write");
    assert!(output.status.success());
    output
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Onsets (sample index) of 1 kHz bursts: Goertzel power over 4 ms windows, first window of each
/// run above half of the strongest window.
fn beep_onsets(pcm: &[i16]) -> Vec<usize> {
    const WINDOW: usize = 64;
    let coefficient = 2.0 * (std::f64::consts::TAU * 1000.0 / 16000.0).cos();
    let powers: Vec<f64> = pcm
        .chunks_exact(WINDOW)
        .map(|chunk| {
            let (mut s1, mut s2) = (0.0, 0.0);
            for sample in chunk {
                let s0 = f64::from(*sample) + coefficient * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            s1 * s1 + s2 * s2 - coefficient * s1 * s2
        })
        .collect();
    let peak = powers.iter().copied().fold(0.0, f64::max);
    let mut onsets = Vec::new();
    let mut inside = false;
    for (i, power) in powers.iter().enumerate() {
        let loud = *power > peak / 4.0;
        if loud && !inside {
            onsets.push(i * WINDOW);
        }
        inside = loud;
    }
    onsets
}

#[test]
fn beeps_decode_where_asked() {
    let library = library();
    let asked = [
        Duration::from_millis(1000),
        Duration::from_millis(2530),
        Duration::from_millis(4100),
    ];
    let plan = AudioPlan::new(
        6,
        &asked,
        &[Duration::from_secs(3)..Duration::from_millis(4100)],
        [7; 16],
    );
    let mp3 = plan.bytes(&library);
    assert_eq!(mp3.len() as u64, plan.size_bytes());
    assert_eq!(
        plan.sha256(&library),
        <[u8; 32]>::from(Sha256::digest(&mp3))
    );
    let pcm = decode(&mp3);
    assert_eq!(pcm.len(), plan.frame_count() as usize * FRAME_SAMPLES);
    let onsets = beep_onsets(&pcm);
    eprintln!("decoded {} samples, onsets {onsets:?}", pcm.len());
    assert_eq!(onsets.len(), 4, "{onsets:?}");
    for (onset, want) in onsets
        .iter()
        .zip([Duration::ZERO].iter().chain(asked.iter()))
    {
        let got = *onset as f64 / 16000.0;
        let error = (got - want.as_secs_f64()).abs();
        assert!(error <= 0.036, "beep at {got} s, asked {want:?}");
    }
}

#[test]
fn durations_are_whole_frames_near_the_seconds() {
    for seconds in [1, 7, 60, 90, 3600] {
        let plan = AudioPlan::new(seconds, &[], &[], [0; 16]);
        let error = (plan.duration().as_secs_f64() - f64::from(seconds)).abs();
        assert!(error <= 0.018, "{seconds}: {error}");
    }
}

#[test]
fn tags_make_files_unique_and_cached_digests_match() {
    let library = library();
    let a = AudioPlan::new(20, &[Duration::from_secs(5)], &[], [1; 16]);
    let b = AudioPlan::new(20, &[Duration::from_secs(5)], &[], [2; 16]);
    let (bytes_a, bytes_b) = (a.bytes(&library), b.bytes(&library));
    assert_ne!(bytes_a, bytes_b);
    assert_eq!(
        bytes_a[..bytes_a.len() - FRAME_BYTES],
        bytes_b[..bytes_b.len() - FRAME_BYTES]
    );
    let mut digests = Digests::default();
    for plan in [&a, &b, &a] {
        assert_eq!(digests.sha256(plan, &library), plan.sha256(&library));
        assert_eq!(
            plan.sha256(&library),
            <[u8; 32]>::from(Sha256::digest(plan.bytes(&library)))
        );
    }
    // Decoders ignore the tag: the tagged file decodes cleanly to every frame's samples.
    let pcm = decode(&bytes_a);
    assert_eq!(pcm.len(), a.frame_count() as usize * FRAME_SAMPLES);
}
