//! Timestamps as explicit types, one per clock, so that a value on the agent's monotonic clock can
//! never be mixed up with a server UTC instant without going through a measured clock offset.

use serde::{Deserialize, Serialize};

/// An instant in UTC, in milliseconds since the Unix epoch: the precision Webex events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UtcMillis(pub i64);

/// An instant in UTC on the server's clock, in microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UtcMicros(pub i64);

/// An instant on one agent's monotonic clock, in microseconds since an arbitrary origin chosen by
/// that agent process. Only meaningful together with a clock sample of the same agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentMicros(pub u64);

impl UtcMillis {
    /// The same instant in microseconds.
    pub fn to_micros(self) -> UtcMicros {
        UtcMicros(self.0.saturating_mul(1000))
    }
}

impl UtcMicros {
    /// The current system time. Saturates for clocks set before 1970 or after year 292 277.
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UtcMicros(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
    }

    /// The same instant, truncated to milliseconds.
    pub fn to_millis(self) -> UtcMillis {
        UtcMillis(self.0.div_euclid(1000))
    }
}
