//! Forcing the spool to disk without holding up the agent's connection loop: every
//! [`SPOOL_FSYNC`] the open segments' files are synced on a thread of their own (an `fsync` can
//! take long on a busy disk, and the loop that appends also reads the server's acks). A sync
//! still running when the next is due is not doubled; the shutdown's last sync is inline.

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::SPOOL_FSYNC;

/// When the spool was last synced, and the sync still running.
#[derive(Debug)]
pub(super) struct Syncer {
    interval: Duration,
    last: Instant,
    running: Option<JoinHandle<()>>,
    /// A sync that failed: on Linux the pages it could not write may be gone, so the spool's
    /// next append reports it, as a failed write would.
    failed: Arc<Mutex<Option<std::io::Error>>>,
}

impl Default for Syncer {
    fn default() -> Syncer {
        Syncer::every(SPOOL_FSYNC)
    }
}

impl Syncer {
    /// A syncer that syncs at most every `interval`.
    pub(super) fn every(interval: Duration) -> Syncer {
        Syncer {
            interval,
            last: Instant::now(),
            running: None,
            failed: Arc::default(),
        }
    }

    /// Syncs the files `files` gives on a thread of their own, when a sync is due and none runs.
    pub(super) fn tick(&mut self, files: impl FnOnce() -> Vec<File>) {
        if self.last.elapsed() < self.interval
            || self.running.as_ref().is_some_and(|t| !t.is_finished())
        {
            return;
        }
        if let Some(done) = self.running.take() {
            let _ = done.join();
        }
        self.last = Instant::now();
        let files = files();
        if files.is_empty() {
            return;
        }
        let failed = self.failed.clone();
        let spawned = std::thread::Builder::new()
            .name("capture-spool-sync".into())
            .spawn(move || {
                for file in files {
                    if let Err(error) = file.sync_data() {
                        tracing::error!(%error, "syncing the spool failed");
                        if let Ok(mut failed) = failed.lock() {
                            failed.get_or_insert(error);
                        }
                    }
                }
            });
        match spawned {
            Ok(thread) => self.running = Some(thread),
            Err(error) => tracing::warn!(%error, "no thread to sync the spool"),
        }
    }
}

impl Syncer {
    /// The error of a sync that failed since the last call, if any.
    pub(super) fn take_failure(&self) -> Option<std::io::Error> {
        self.failed.lock().ok()?.take()
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_synced_when_due_on_a_thread_of_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = || File::create(dir.path().join("segment.scn")).expect("file");
        let mut asked = 0;
        let mut later = Syncer::every(Duration::from_secs(3600));
        later.tick(|| {
            asked += 1;
            vec![file()]
        });
        assert_eq!(asked, 0, "not due yet");
        let mut due = Syncer::every(Duration::ZERO);
        due.tick(|| {
            asked += 1;
            vec![file()]
        });
        assert_eq!(asked, 1);
        assert!(due.running.is_some(), "the sync runs on its own thread");
        drop(due); // joins it
    }
}
