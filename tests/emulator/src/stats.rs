//! What the emulator saw: request log, answers by status, early retries, downloads, deliveries.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use jiff::Timestamp;

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// When it arrived.
    pub at: Timestamp,
    /// The method.
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// The answer's status.
    pub status: u16,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received.
    pub requests: u64,
    /// Answers by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that arrived before the `Retry-After` of an earlier 429/423 answered for the same
    /// method and path-and-query had elapsed.
    pub early_retries: u64,
    /// Each early retry: method, path and query, and how early it came (for the test's message).
    pub early: Vec<String>,
    /// Successful audio downloads per recording id.
    pub audio_downloads: HashMap<String, u64>,
    /// Webhook deliveries answered 2xx.
    pub deliveries_sent: u64,
    /// Deliveries not attempted (drop fault).
    pub deliveries_dropped: u64,
    /// Deliveries sent a second time (duplicate fault).
    pub deliveries_duplicated: u64,
    /// Deliveries held back and sent late (reorder fault).
    pub deliveries_reordered: u64,
    /// Deliveries given up after every retry failed.
    pub deliveries_failed: u64,
}

/// Slack allowed on `Retry-After` (the clock of the sender vs ours).
const RETRY_AFTER_SLACK: Duration = Duration::from_millis(50);

/// The counters plus what early-retry detection needs.
#[derive(Debug, Default)]
pub(crate) struct StatsState {
    pub stats: Stats,
    pub log: Vec<RequestRecord>,
    /// `METHOD path?query` → the instant before which a retry is early.
    not_before: HashMap<String, Instant>,
    /// `METHOD path?query` → requests arrived and not yet answered.
    in_flight: HashMap<String, u32>,
}

impl StatsState {
    /// Counts a request arriving now.
    pub fn arrived(&mut self, method: &str, path: &str, now: Instant) {
        self.stats.requests += 1;
        if let Some(not_before) = self.not_before.get(&key(method, path))
            && now < *not_before
        {
            self.stats.early_retries += 1;
            let early = not_before.duration_since(now) + RETRY_AFTER_SLACK;
            let concurrent = self.in_flight.get(&key(method, path)).copied().unwrap_or(0);
            self.stats.early.push(format!(
                "{method} {path}: {} ms before its Retry-After ended, {concurrent} other request(s) for it in flight",
                early.as_millis()
            ));
        }
        *self.in_flight.entry(key(method, path)).or_default() += 1;
    }

    /// Records an answer; `retry_after` when it told the client to wait.
    pub fn answered(&mut self, record: RequestRecord, retry_after: Option<u64>, now: Instant) {
        *self.stats.by_status.entry(record.status).or_default() += 1;
        if let Some(count) = self.in_flight.get_mut(&key(&record.method, &record.path)) {
            *count = count.saturating_sub(1);
        }
        if let Some(seconds) = retry_after {
            let wait = Duration::from_secs(seconds).saturating_sub(RETRY_AFTER_SLACK);
            self.not_before
                .insert(key(&record.method, &record.path), now + wait);
        }
        self.log.push(record);
    }
}

fn key(method: &str, path: &str) -> String {
    format!("{method} {path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: u16) -> RequestRecord {
        RequestRecord {
            at: Timestamp::UNIX_EPOCH,
            method: "GET".into(),
            path: "/v1/x?a=1".into(),
            status,
        }
    }

    #[test]
    fn early_retries_are_per_method_and_path() {
        let mut state = StatsState::default();
        let t0 = Instant::now();
        state.arrived("GET", "/v1/x?a=1", t0);
        state.answered(record(429), Some(1), t0);
        state.arrived("GET", "/v1/x?a=2", t0);
        state.arrived("POST", "/v1/x?a=1", t0);
        assert_eq!(state.stats.early_retries, 0);
        state.arrived("GET", "/v1/x?a=1", t0 + Duration::from_millis(10));
        assert_eq!(state.stats.early_retries, 1);
        state.arrived("GET", "/v1/x?a=1", t0 + Duration::from_secs(1));
        assert_eq!(state.stats.early_retries, 1);
        assert_eq!(state.stats.by_status.get(&429), Some(&1));
    }
}
