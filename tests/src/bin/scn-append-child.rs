//! Appends video records to an SCN file with fsync after every record, forever, and prints each
//! record's sequence number on stdout once `append` returned (the acknowledgement). Used by the
//! crash-safety test, which kills it with SIGKILL at random moments.
//!
//! Usage: `scn-append-child FILE [screen|large]` — creates FILE, or recovers it and continues
//! after its last whole record; the second argument picks the record sizes (default `screen`).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use capture_shared::scn::{FsyncPolicy, Record, ScnWriter, recover};
use capture_tests::scn_samples::{self, Sizes};

fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: scn-append-child FILE [screen|large]")?,
    );
    let sizes = match std::env::args().nth(2).as_deref() {
        None | Some("screen") => Sizes::Screen,
        Some("large") => Sizes::Large,
        Some(other) => anyhow::bail!("unknown size mode {other:?}"),
    };
    let (mut writer, mut next) = if path.exists() {
        let videos = recover(&path)?
            .records
            .iter()
            .filter(|r| matches!(r, Record::Video { .. }))
            .count();
        (
            ScnWriter::open_append(&path, FsyncPolicy::EveryRecord)?.0,
            videos as u64,
        )
    } else {
        (
            ScnWriter::create(&path, &scn_samples::header(), FsyncPolicy::EveryRecord)?,
            0,
        )
    };
    let mut stdout = std::io::stdout().lock();
    loop {
        writer.append(&scn_samples::video_sized(next, sizes.of(next)))?;
        writeln!(stdout, "{next}")?;
        stdout.flush()?;
        next += 1;
    }
}
