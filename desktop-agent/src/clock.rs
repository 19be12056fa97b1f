//! The agent's monotonic clock. Every capture timestamp and every ping's t0/t3 come from one
//! [`AgentClock`], so the server can map them all to UTC through one measured offset
//! (`capture_shared::protocol::ClockEstimator`). Wall-clock changes on the PC (NTP steps, users
//! changing the time) do not move it.

use std::time::Instant;

use capture_shared::time::AgentMicros;

/// Microseconds since the clock was created, from the OS monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct AgentClock {
    origin: Instant,
}

impl Default for AgentClock {
    fn default() -> Self {
        AgentClock::new()
    }
}

impl AgentClock {
    /// A clock whose origin is now.
    pub fn new() -> AgentClock {
        AgentClock {
            origin: Instant::now(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> AgentMicros {
        self.at(Instant::now())
    }

    /// A given instant (e.g. when a frame was grabbed) on this clock; instants before the origin
    /// map to 0.
    pub fn at(&self, instant: Instant) -> AgentMicros {
        let micros = instant.saturating_duration_since(self.origin).as_micros();
        AgentMicros(u64::try_from(micros).unwrap_or(u64::MAX))
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
        assert_eq!(clock.at(later), AgentMicros(1_500_000));
        assert_eq!(clock.at(clock.origin), AgentMicros(0));
        let before = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.now().0 >= before.0 + 2_000);
    }
}
