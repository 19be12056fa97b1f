//! The call buffer's disk: whether new contacts can be taken (free space above
//! `recorder.min_free_mb`, and no file's writes failing), and the writers' failures counted so
//! that recovery — space returning — is seen by itself.
//!
//! A file whose append or sync fails is cut back to its last synced batch and tried again (see
//! [`super::writer`]); nothing is acknowledged meanwhile, so the agents keep the frames in their
//! spools. New contacts are refused with [`GAP_DISK_FULL`] until writes succeed again and the
//! free space is back above the minimum.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::metrics::Metrics;

/// Gap reason: the recorder refused the contact because its disk is full or failing.
pub const GAP_DISK_FULL: &str =
    "screen not recorded: the recorder's disk is full or failing (the contact was refused)";

/// The buffer disk's health, shared by the buffer and its file writers.
#[derive(Debug)]
pub struct DiskHealth {
    dir: PathBuf,
    min_free: u64,
    /// Files whose latest write failed.
    failing: AtomicUsize,
    metrics: OnceLock<Arc<Metrics>>,
}

impl DiskHealth {
    /// The disk of `dir`, which must keep `min_free` bytes free.
    pub fn new(dir: PathBuf, min_free: u64) -> Self {
        DiskHealth {
            dir,
            min_free,
            failing: AtomicUsize::new(0),
            metrics: OnceLock::new(),
        }
    }

    /// Where refusals and the disk's state are counted (set once).
    pub fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Why a new contact cannot be taken now, if it cannot: some file's writes are failing, or
    /// the free space is below the minimum. Each refusal is counted.
    pub fn refusal(&self) -> Option<&'static str> {
        let failing = self.failing.load(Ordering::Relaxed) > 0;
        let low = self.min_free > 0
            && fs4::available_space(&self.dir).is_ok_and(|free| free < self.min_free);
        let full = failing || low;
        if let Some(metrics) = self.metrics.get() {
            metrics.buffer_disk_full.set(i64::from(full));
            if full {
                metrics.contacts_refused.inc();
            }
        }
        full.then_some(GAP_DISK_FULL)
    }

    /// A file's write failed (first failure of a run of them).
    pub fn write_failed(&self) {
        self.failing.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = self.metrics.get() {
            metrics.buffer_disk_full.set(1);
        }
    }

    /// A file whose writes failed wrote again.
    pub fn write_recovered(&self) {
        let before = self.failing.fetch_sub(1, Ordering::Relaxed);
        if before == 1
            && let Some(metrics) = self.metrics.get()
        {
            metrics.buffer_disk_full.set(0);
        }
    }
}
