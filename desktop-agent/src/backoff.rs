//! Reconnect delays: exponential growth with full jitter, bounded, reset after a connection that
//! lasted. Thousands of agents reconnecting after a server restart must spread out, not arrive in
//! lock-step.

use std::time::Duration;

/// First delay's upper bound.
pub const INITIAL_DELAY: Duration = Duration::from_millis(500);

/// Largest delay: once the network is back an agent reconnects within this (2.5 s on average),
/// and its frames wait in the spool meanwhile. Full jitter spreads 2,500 agents over it: about
/// 500 attempts a second, each refused cheaply while the server is down.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// A connection that stayed up this long resets the backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// The reconnect schedule of one connection.
#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
    rng: fastrand::Rng,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    /// A fresh schedule.
    pub fn new() -> Backoff {
        Backoff {
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// A schedule with a fixed random seed (tests).
    pub fn with_seed(seed: u64) -> Backoff {
        Backoff {
            attempt: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The delay before the next attempt: uniform in `[0, min(MAX, INITIAL · 2^attempt)]`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = INITIAL_DELAY
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(MAX_DELAY);
        self.attempt = self.attempt.saturating_add(1);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.rng.u64(0..=millis))
    }

    /// Records that a connection ended after being up for `uptime`; a stable one resets the
    /// schedule.
    pub fn connection_ended(&mut self, uptime: Duration) {
        if uptime >= STABLE_AFTER {
            self.attempt = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_bounded_and_jittered() {
        let mut backoff = Backoff::with_seed(7);
        let delays: Vec<Duration> = (0..20).map(|_| backoff.next_delay()).collect();
        for (attempt, delay) in delays.iter().enumerate() {
            let ceiling = INITIAL_DELAY
                .saturating_mul(1 << attempt.min(16))
                .min(MAX_DELAY);
            assert!(
                *delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
        }
        assert!(delays.iter().all(|d| *d <= MAX_DELAY));
        let late: Vec<_> = delays[10..].to_vec();
        assert!(
            late.iter().any(|d| *d != late[0]),
            "jitter spreads the delays"
        );
        assert!(late.iter().map(Duration::as_secs_f64).sum::<f64>() / late.len() as f64 > 1.0);
    }

    #[test]
    fn a_stable_connection_resets_the_schedule() {
        let mut backoff = Backoff::with_seed(1);
        for _ in 0..10 {
            backoff.next_delay();
        }
        backoff.connection_ended(Duration::from_secs(5));
        assert_eq!(backoff.attempt, 10);
        backoff.connection_ended(STABLE_AFTER);
        assert!(backoff.next_delay() <= INITIAL_DELAY);
    }
}
