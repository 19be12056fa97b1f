//! The server's call buffer as the end-to-end tests read it: a contact's SCN file once it closed.

use std::path::Path;
use std::time::Duration;

use capture_shared::scn::{Record, recover};

/// The records of the SCN file at `path` once it has closed (its end record written), waiting up
/// to a minute.
pub async fn closed_records(path: &Path) -> anyhow::Result<Vec<Record>> {
    crate::process::wait_until(
        "the contact's file to close",
        Duration::from_secs(60),
        async || Ok(recover(path).ok().filter(|r| r.ended).map(|r| r.records)),
    )
    .await
}

/// The sequence numbers of the video records, in file order.
pub fn video_sequences(records: &[Record]) -> Vec<u64> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Video { sequence, .. } => Some(*sequence),
            _ => None,
        })
        .collect()
}
