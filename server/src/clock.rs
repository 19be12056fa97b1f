//! The server's clock: UTC milliseconds for timestamps, and tokio instants for timers.
//!
//! In production it follows tokio's monotonic clock from one UTC anchor taken at start. Tests
//! that drive time step by step use a manual clock. (Tokio's paused clock does not suit code that
//! waits on SQLite: while the runtime waits for the database thread it counts as idle, and paused
//! time jumps ahead to the next timer, firing the connection pool's timeouts.)

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::time::Instant;

/// Maps a time source onto UTC milliseconds.
#[derive(Debug, Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Anchored { utc_ms: i64, at: Instant },
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// Anchored on the system clock now.
    pub fn system() -> Clock {
        Clock::anchored_at(capture_shared::time::UtcMicros::now().to_millis().0)
    }

    /// Follows tokio's clock, with now being `utc_ms`.
    pub fn anchored_at(utc_ms: i64) -> Clock {
        Clock {
            source: Source::Anchored {
                utc_ms,
                at: Instant::now(),
            },
        }
    }

    /// Stands still at `utc_ms` until [`advance`](Self::advance)d (tests).
    pub fn manual(utc_ms: i64) -> Clock {
        Clock {
            source: Source::Manual(Arc::new(AtomicI64::new(utc_ms))),
        }
    }

    /// Moves a manual clock forward; no effect on other clocks.
    pub fn advance(&self, ms: i64) {
        if let Source::Manual(now) = &self.source {
            now.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Now, UTC ms.
    pub fn now_ms(&self) -> i64 {
        match &self.source {
            Source::Anchored { utc_ms, at } => {
                let elapsed = i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX);
                utc_ms.saturating_add(elapsed)
            }
            Source::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// The tokio instant at which UTC will be `utc_ms` (now, if that is past).
    pub fn instant_at(&self, utc_ms: i64) -> Instant {
        let ahead = utc_ms.saturating_sub(self.now_ms()).max(0);
        Instant::now() + std::time::Duration::from_millis(u64::try_from(ahead).unwrap_or(0))
    }
}
