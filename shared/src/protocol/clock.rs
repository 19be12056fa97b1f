//! Clock-offset measurement between an agent's monotonic clock and the server's UTC clock,
//! NTP-style over the protocol's ping/pong.
//!
//! The agent sends `Ping { agent_sent }` (t0, its clock); the server answers with the instants it
//! received (t1) and answered (t2) on its clock; the agent notes when the answer arrived (t3). Then
//! `offset = ((t1 − t0) + (t2 − t3)) / 2` maps agent time to server time and
//! `rtt = (t3 − t0) − (t2 − t1)` bounds the error of that offset by `rtt / 2`.

use serde::{Deserialize, Serialize};

use crate::time::{AgentMicros, UtcMicros};

/// One completed ping/pong exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSample {
    /// t0: the agent sent the ping (agent clock).
    pub agent_sent: AgentMicros,
    /// t1: the server received it (server clock).
    pub server_received: UtcMicros,
    /// t2: the server sent the pong (server clock).
    pub server_sent: UtcMicros,
    /// t3: the agent received the pong (agent clock).
    pub agent_received: AgentMicros,
}

impl ClockSample {
    /// Microseconds to add to an agent instant to get the server instant.
    pub fn offset_us(&self) -> i64 {
        let t0 = i128::from(self.agent_sent.0);
        let t1 = i128::from(self.server_received.0);
        let t2 = i128::from(self.server_sent.0);
        let t3 = i128::from(self.agent_received.0);
        saturate(((t1 - t0) + (t2 - t3)) / 2)
    }

    /// The round trip minus the server's processing time, in microseconds (never negative).
    pub fn rtt_us(&self) -> u64 {
        let t0 = i128::from(self.agent_sent.0);
        let t1 = i128::from(self.server_received.0);
        let t2 = i128::from(self.server_sent.0);
        let t3 = i128::from(self.agent_received.0);
        u64::try_from(((t3 - t0) - (t2 - t1)).max(0)).unwrap_or(u64::MAX)
    }
}

fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// Keeps the recent samples and trusts the one with the smallest round trip (its offset has the
/// tightest error bound), the usual filter for NTP-style measurements over a busy link.
#[derive(Debug, Clone, Default)]
pub struct ClockEstimator {
    recent: Vec<ClockSample>,
}

impl ClockEstimator {
    /// How many recent samples are kept.
    pub const WINDOW: usize = 8;

    /// Adds one exchange.
    pub fn add(&mut self, sample: ClockSample) {
        if self.recent.len() == Self::WINDOW {
            self.recent.remove(0);
        }
        self.recent.push(sample);
    }

    /// The best sample so far (smallest round trip), if any.
    pub fn best(&self) -> Option<ClockSample> {
        self.recent.iter().copied().min_by_key(ClockSample::rtt_us)
    }

    /// An agent instant on the server clock, through the best sample.
    pub fn to_server(&self, at: AgentMicros) -> Option<UtcMicros> {
        let offset = self.best()?.offset_us();
        Some(UtcMicros(saturate(i128::from(at.0) + i128::from(offset))))
    }
}
