//! Crash safety of the SCN writer and reader: a child process appends records with fsync per
//! record and acknowledges each on a pipe; the test kills it with SIGKILL at random moments and
//! checks that every acknowledged record is read back, in order, plus at most the one in flight.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use capture_shared::scn::{DropReason, Record, recover};
use capture_tests::scn_samples::{self, Sizes};

/// Kills at least this many times...
const MIN_KILLS: usize = 60;
/// ...and goes on (a new file every `KILLS_PER_FILE`) until a kill has landed inside a write,
/// so the torn-tail path is exercised on every run, up to this many kills.
const MAX_KILLS: usize = 600;
const KILLS_PER_FILE: usize = 10;

#[test]
fn every_acknowledged_record_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = fastrand::Rng::with_seed(0x5c4_c4a5);
    let mut torn_tails = 0;
    let mut in_flight_seen = 0;
    let mut kills = 0;
    for file in 0.. {
        if kills >= MAX_KILLS || (kills >= MIN_KILLS && torn_tails > 0) {
            break;
        }
        let path = dir.path().join(format!("contact-{file}.scn"));
        // Most files carry multi-megabyte records, so that kills land inside a write.
        let sizes = if file % 3 == 0 {
            Sizes::Screen
        } else {
            Sizes::Large
        };
        let mode = if sizes == Sizes::Screen {
            "screen"
        } else {
            "large"
        };
        let mut acknowledged: Option<u64> = None;
        // Records read back after the previous kill: the next child continues after them, so
        // they count as durable even when the new child dies before acknowledging anything.
        let mut recovered_before = 0usize;
        for kill in 0..KILLS_PER_FILE {
            kills += 1;
            let mut child = Command::new(env!("CARGO_BIN_EXE_scn-append-child"))
                .arg(&path)
                .arg(mode)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn child");
            let stdout = child.stdout.take().expect("stdout");
            let (acked_tx, acked_rx) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                let mut last = None;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    last = Some(line.trim().parse::<u64>().expect("sequence"));
                    let _ = acked_tx.send(());
                }
                last
            });
            if kill == 0 {
                // A new file's header is synced when it is created, before the first record is
                // acknowledged: the kill comes after that (a loaded machine may take longer to
                // start the child than the shortest delay below).
                let _ = acked_rx.recv_timeout(Duration::from_secs(30));
            }
            std::thread::sleep(Duration::from_millis(rng.u64(5..80)));
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            // Everything the child acknowledged before dying is in the pipe: read to its end.
            if let Some(last) = reader.join().expect("reader thread") {
                acknowledged = Some(last);
            }

            let recovery = recover(&path).expect("header survives: it is synced at creation");
            let videos: Vec<&Record> = recovery.records.iter().collect();
            for (index, record) in videos.iter().enumerate() {
                let sequence = index as u64;
                let expected = scn_samples::video_sized(sequence, sizes.of(sequence));
                assert!(
                    **record == expected,
                    "file {file} kill {kill}: record {index} differs"
                );
            }
            let must_have =
                (acknowledged.map_or(0, |last| last + 1) as usize).max(recovered_before);
            assert!(
                videos.len() == must_have || videos.len() == must_have + 1,
                "file {file} kill {kill}: {} records read, {must_have} acknowledged",
                videos.len()
            );
            if videos.len() == must_have + 1 {
                in_flight_seen += 1;
            }
            recovered_before = videos.len();
            if let Some(dropped) = &recovery.dropped {
                assert!(
                    matches!(dropped.reason, DropReason::Torn { .. }),
                    "file {file} kill {kill}: {dropped:?}"
                );
                torn_tails += 1;
            }
            assert!(!recovery.ended);
        }
    }
    eprintln!(
        "{} kills: {torn_tails} torn tails reported and cut, {in_flight_seen} in-flight records kept",
        kills
    );
    assert!(
        torn_tails > 0,
        "no kill landed inside a write: the torn-tail path went untested"
    );
}
