//! The agent's monotonic clock. Every capture timestamp and every ping's t0/t3 come from one
//! [`AgentClock`], so the server can map them all to UTC through one measured offset
//! (`capture_shared::protocol::ClockEstimator`). Wall-clock changes on the PC (NTP steps, users
//! changing the time) do not move it while the agent runs.
//!
//! Its origin is the PC's wall clock when the agent started, so that frames a killed agent left
//! in its spool and frames of the next run sit on one timeline (to the PC clock's accuracy at
//! each start): the server maps both with the next run's clock measurements.

use std::time::{Instant, SystemTime};

use capture_shared::time::AgentMicros;

/// Microseconds on the OS monotonic clock, counted from the wall-clock time of its creation.
#[derive(Debug, Clone, Copy)]
pub struct AgentClock {
    origin: Instant,
    /// Unix µs at `origin`.
    base: u64,
}

impl Default for AgentClock {
    fn default() -> Self {
        AgentClock::new()
    }
}

impl AgentClock {
    /// A clock whose origin is now.
    pub fn new() -> AgentClock {
        let base = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        AgentClock {
            origin: Instant::now(),
            base,
        }
    }

    /// The current instant.
    pub fn now(&self) -> AgentMicros {
        self.at(Instant::now())
    }

    /// A given instant (e.g. when a frame was grabbed) on this clock; instants before the origin
    /// map to the origin.
    pub fn at(&self, instant: Instant) -> AgentMicros {
        let micros = instant.saturating_duration_since(self.origin).as_micros();
        AgentMicros(
            self.base
                .saturating_add(u64::try_from(micros).unwrap_or(u64::MAX)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn instants_map_to_microseconds_since_the_origin() {
        let clock = AgentClock::new();
        let later = clock.origin + Duration::from_millis(1_500);
        assert_eq!(clock.at(later).0 - clock.at(clock.origin).0, 1_500_000);
        let before = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.now().0 >= before.0 + 2_000);
    }

    #[test]
    fn two_runs_share_one_timeline() {
        let first = AgentClock::new();
        std::thread::sleep(Duration::from_millis(20));
        let second = AgentClock::new();
        let (a, b) = (first.now().0, second.now().0);
        // The same moment on both clocks, within the wall clock's reading jitter.
        assert!(a.abs_diff(b) < 5_000, "{a} vs {b}");
    }
}
