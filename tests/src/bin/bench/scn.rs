//! SCN benchmarks: append throughput per fsync policy, recovery of a large file.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use capture_shared::scn::{FsyncPolicy, ScnReader, ScnWriter};
use capture_tests::scn_samples;
use serde_json::json;

use super::{Options, median, round};

/// Asks Linux to drop clean pages from its cache (needs root); false when it could not.
fn drop_page_cache() -> bool {
    let synced = std::process::Command::new("sync")
        .status()
        .is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

/// Appends the screen-stream record mix for `seconds` per policy, in one-second windows, and
/// reports the median window's records/s and MB/s.
pub fn append(options: &Options) -> anyhow::Result<serde_json::Value> {
    let seconds = if options.seconds == 0 {
        10
    } else {
        options.seconds
    };
    let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
    let policies = [
        ("every_record", FsyncPolicy::EveryRecord),
        ("interval_1s", FsyncPolicy::Interval(Duration::from_secs(1))),
        ("never", FsyncPolicy::Never),
    ];
    // Records are made up front so the windows time the writer alone.
    let records: Vec<_> = (0..500).map(scn_samples::video).collect();
    let mean_bytes = (0..500)
        .map(|s| scn_samples::video_size(s) as f64)
        .sum::<f64>()
        / 500.0;
    let mut result = serde_json::Map::new();
    for (name, policy) in policies {
        let path = dir.path().join(format!("{name}.scn"));
        let mut writer = ScnWriter::create(&path, &scn_samples::header(), policy)?;
        let (mut per_s, mut mb_per_s) = (Vec::new(), Vec::new());
        let mut index = 0usize;
        for _ in 0..seconds {
            let window = Instant::now();
            let start_bytes = writer.bytes_written();
            let mut count = 0u64;
            while window.elapsed() < Duration::from_secs(1) {
                writer.append(&records[index % records.len()])?;
                index += 1;
                count += 1;
            }
            let elapsed = window.elapsed().as_secs_f64();
            per_s.push(count as f64 / elapsed);
            mb_per_s.push((writer.bytes_written() - start_bytes) as f64 / elapsed / 1e6);
        }
        writer.sync()?;
        let (records_s, mb_s) = (median(&mut per_s), median(&mut mb_per_s));
        eprintln!(
            "{name:>12}: {records_s:>9.0} records/s {mb_s:>8.1} MB/s (median of {seconds} 1 s windows)"
        );
        result.insert(format!("{name}_records_per_s"), json!(round(records_s, 0)));
        result.insert(format!("{name}_mb_per_s"), json!(round(mb_s, 1)));
        std::fs::remove_file(&path)?;
    }
    result.insert("record_bytes_mean".into(), json!(round(mean_bytes, 0)));
    Ok(serde_json::Value::Object(result))
}

/// Writes an `--mb` MB file of the screen-stream mix, tears its tail, and times recovery scans
/// (the reader alone, as `open_append` and ingestion use it): one with a cold page cache when it
/// can be dropped, then the median of three warm ones.
pub fn recover(options: &Options) -> anyhow::Result<serde_json::Value> {
    let target = options.mb * 1_000_000;
    let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
    let path = dir.path().join("large.scn");
    let mut writer = ScnWriter::create(&path, &scn_samples::header(), FsyncPolicy::Never)?;
    let records: Vec<_> = (0..500).map(scn_samples::video).collect();
    let mut written = 0u64;
    while writer.bytes_written() < target {
        writer.append(&records[(written % 500) as usize])?;
        written += 1;
    }
    writer.sync()?;
    drop(writer);
    // A crash in the middle of the next record: half of its bytes.
    let mut torn = Vec::new();
    torn.extend_from_slice(&70_100u32.to_le_bytes());
    torn.extend_from_slice(&[0xAB; 35_000]);
    {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
        file.write_all(&torn)?;
        file.sync_all()?;
    }
    let file_bytes = std::fs::metadata(&path)?.len();
    eprintln!(
        "wrote {written} records, {:.0} MB with a torn tail",
        file_bytes as f64 / 1e6
    );

    // A cold run first when the page cache can be dropped (root on Linux), then warm runs.
    let cold = drop_page_cache();
    let mut cold_s = None;
    let mut seconds = Vec::new();
    let mut dropped_bytes = 0;
    for run in 0..4 {
        let started = Instant::now();
        let mut reader = ScnReader::open(&path)?;
        let mut count = 0u64;
        while reader.next_record()?.is_some() {
            count += 1;
        }
        let elapsed = started.elapsed().as_secs_f64();
        anyhow::ensure!(count == written, "recovered {count} of {written} records");
        dropped_bytes = reader.dropped().context("torn tail not reported")?.bytes;
        let kind = if run == 0 && cold { "cold" } else { "warm" };
        eprintln!(
            "run {run} ({kind} cache): {count} records in {elapsed:.2} s, dropped {dropped_bytes} bytes"
        );
        if run == 0 && cold {
            cold_s = Some(elapsed);
        } else if run > 0 {
            seconds.push(elapsed);
        }
    }
    let recover_s = median(&mut seconds);
    Ok(json!({
        "file_mb": round(file_bytes as f64 / 1e6, 0),
        "records": written,
        "recover_s": round(recover_s, 2),
        "recover_cold_s": cold_s.map(|s| round(s, 2)),
        "recover_mb_per_s": round(file_bytes as f64 / 1e6 / recover_s, 0),
        "dropped_bytes": dropped_bytes,
    }))
}
