//! Fault injection: what the routes and webhook deliveries should get wrong, settable at run time.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// A group of routes faults can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /admin/convergedRecordings` and `GET /convergedRecordings`.
    List,
    /// `GET /convergedRecordings/{id}`.
    Details,
    /// `GET /convergedRecordings/{id}/metadata`.
    Metadata,
    /// The download servlet.
    Audio,
    /// `DELETE /convergedRecordings/{id}`.
    Delete,
    /// `POST /access_token` and `POST /applications/{id}/token`.
    Token,
    /// `/webhooks` and `/telephony/webhookInterestRegistrations`.
    Webhooks,
    /// `GET /events`.
    Events,
    /// `GET /people`.
    People,
    /// Every route without faults of its own.
    Any,
}

/// Probabilities (0.0–1.0) of each fault on one route. The refusals (429, 423, 5xx) are exclusive
/// and add up (their sum is the probability of a refusal); `slow` and `malformed` are drawn
/// independently for requests that are served.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RouteFaults {
    /// 429 Too Many Requests with `Retry-After`.
    pub rate_limited: f64,
    /// 423 Locked with `Retry-After`.
    pub locked: f64,
    /// 500, 502, 503 or 504 (picked evenly).
    pub server_error: f64,
    /// The answer is delayed by [`Faults::slow_delay`].
    pub slow: f64,
    /// A 200 whose JSON body is cut in half.
    pub malformed: f64,
}

/// Probabilities of webhook delivery faults.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeliveryFaults {
    /// Sent twice.
    pub duplicate: f64,
    /// Held back and sent after the next delivery to the same webhook (or after 2 s).
    pub reorder: f64,
    /// Never sent.
    pub drop: f64,
}

/// The faults in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Per route group; [`Route::Any`] applies to routes without an entry.
    pub routes: HashMap<Route, RouteFaults>,
    /// Seconds in the `Retry-After` of 429 and 423 answers.
    pub retry_after_s: u64,
    /// The delay of a slow answer.
    pub slow_delay: Duration,
    /// Webhook delivery faults.
    pub delivery: DeliveryFaults,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            routes: HashMap::new(),
            retry_after_s: 1,
            slow_delay: Duration::from_secs(2),
            delivery: DeliveryFaults::default(),
        }
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Adds (replaces) the faults of `route`.
    pub fn with_route(mut self, route: Route, faults: RouteFaults) -> Faults {
        self.routes.insert(route, faults);
        self
    }

    /// Every route answers 429, 423 or a 5xx with a total probability of `rate` (a third each).
    pub fn storm(rate: f64) -> Faults {
        let third = rate.clamp(0.0, 1.0) / 3.0;
        Faults::default().with_route(
            Route::Any,
            RouteFaults {
                rate_limited: third,
                locked: third,
                server_error: third,
                ..RouteFaults::default()
            },
        )
    }

    /// The faults applying to `route`.
    pub fn for_route(&self, route: Route) -> RouteFaults {
        self.routes
            .get(&route)
            .or_else(|| self.routes.get(&Route::Any))
            .copied()
            .unwrap_or_default()
    }
}

/// A document whose answers can be corrupted for one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Document {
    /// `GET /convergedRecordings/{id}`.
    Details,
    /// `GET /convergedRecordings/{id}/metadata`.
    Metadata,
}

/// What a request gets, decided before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answer with this status and `Retry-After` when given.
    Refuse(u16, Option<u64>),
    /// Run the handler, after `delay`, and cut the body when `malformed`.
    Serve {
        delay: Option<Duration>,
        malformed: bool,
    },
}

/// Faults plus the random source and the one-off corruptions.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub faults: Faults,
    pub rng: fastrand::Rng,
    pub corrupt: HashSet<(String, Document)>,
    pub corrupt_list_pages: u32,
}

impl FaultState {
    pub fn new(seed: u64) -> FaultState {
        FaultState {
            faults: Faults::default(),
            rng: fastrand::Rng::with_seed(seed),
            corrupt: HashSet::new(),
            corrupt_list_pages: 0,
        }
    }

    fn draw(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.f64() < probability
    }

    pub fn verdict(&mut self, route: Route) -> Verdict {
        let faults = self.faults.for_route(route);
        let retry_after = self.faults.retry_after_s;
        let refusal = faults.rate_limited + faults.locked + faults.server_error;
        if refusal > 0.0 {
            let u = self.rng.f64();
            if u < faults.rate_limited {
                return Verdict::Refuse(429, Some(retry_after));
            }
            if u < faults.rate_limited + faults.locked {
                return Verdict::Refuse(423, Some(retry_after));
            }
            if u < refusal {
                let status = [500, 502, 503, 504][self.rng.usize(..4)];
                return Verdict::Refuse(status, None);
            }
        }
        let delay = self.draw(faults.slow).then_some(self.faults.slow_delay);
        let malformed = self.draw(faults.malformed);
        Verdict::Serve { delay, malformed }
    }

    /// Whether this delivery is dropped, duplicated, held back.
    pub fn delivery(&mut self) -> (bool, bool, bool) {
        let faults = self.faults.delivery;
        (
            self.draw(faults.drop),
            self.draw(faults.duplicate),
            self.draw(faults.reorder),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storm_refuses_at_the_rate() {
        let mut state = FaultState::new(7);
        state.faults = Faults::storm(0.6);
        let refused = (0..10_000)
            .filter(|_| matches!(state.verdict(Route::List), Verdict::Refuse(..)))
            .count();
        assert!((5_000..7_000).contains(&refused), "{refused}");
    }

    #[test]
    fn specific_route_overrides_any() {
        let faults = Faults::storm(1.0).with_route(Route::Audio, RouteFaults::default());
        assert_eq!(faults.for_route(Route::Audio), RouteFaults::default());
        assert!(faults.for_route(Route::List).rate_limited > 0.3);
    }
}
