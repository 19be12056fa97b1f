//! The server's clock: UTC milliseconds for timestamps, and tokio instants for timers, kept in
//! step so that time-dependent code runs unchanged on tokio's paused clock in tests.

use tokio::time::Instant;

/// Maps tokio's monotonic clock onto UTC from one anchor taken at start.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor_utc_ms: i64,
    anchor: Instant,
}

impl Clock {
    /// Anchored on the system clock now.
    pub fn system() -> Clock {
        Clock::anchored_at(capture_shared::time::UtcMicros::now().to_millis().0)
    }

    /// Anchored so that now is `utc_ms` (tests).
    pub fn anchored_at(utc_ms: i64) -> Clock {
        Clock {
            anchor_utc_ms: utc_ms,
            anchor: Instant::now(),
        }
    }

    /// Now, UTC ms.
    pub fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.anchor.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.anchor_utc_ms.saturating_add(elapsed)
    }

    /// The tokio instant at which UTC will be `utc_ms` (now, if that is past).
    pub fn instant_at(&self, utc_ms: i64) -> Instant {
        let ahead = utc_ms.saturating_sub(self.now_ms()).max(0);
        Instant::now() + std::time::Duration::from_millis(u64::try_from(ahead).unwrap_or(0))
    }
}
