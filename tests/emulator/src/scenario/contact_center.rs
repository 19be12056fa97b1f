//! A contact center running on its own: calls of random kinds arriving for idle agents.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use super::{CallKind, CallPlan, CallTiming, run_call};
use crate::model::Person;
use crate::state::{Shared, lock};

/// Pace of the contact center.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactCenterTiming {
    /// Each call's ring and phase durations.
    pub call: CallTiming,
    /// Mean time between call arrivals (each drawn between half and one and a half of it).
    pub arrival: Duration,
    /// Wrap-up: how long an agent stays unavailable after a call.
    pub wrap_up: Duration,
}

impl Default for ContactCenterTiming {
    fn default() -> ContactCenterTiming {
        ContactCenterTiming {
            call: CallTiming {
                ring: Duration::from_secs(4),
                phase: Duration::from_secs(15),
            },
            arrival: Duration::from_secs(20),
            wrap_up: Duration::from_secs(10),
        }
    }
}

/// A running contact center; dropping it stops it (calls in progress are abandoned).
#[derive(Debug)]
pub struct ScenarioHandle {
    task: JoinHandle<()>,
}

impl ScenarioHandle {
    /// Stops the scenario.
    pub fn stop(self) {}
}

impl Drop for ScenarioHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn pick_kind(rng: &mut fastrand::Rng, agent: &Person, idle: &[Person]) -> CallKind {
    let other = idle.iter().find(|p| p.id != agent.id).cloned();
    match (rng.u8(..7), other) {
        (1, Some(other)) => CallKind::AnsweredElsewhere { answerer: other },
        (2, _) => CallKind::HoldResume,
        (3, Some(other)) => CallKind::ConsultTransfer { to: other },
        (4, Some(other)) => CallKind::Conference { with: other },
        (5, _) => CallKind::PauseResume,
        (6, _) => CallKind::StopRestart,
        _ => CallKind::Answered,
    }
}

fn involved(kind: &CallKind) -> Option<Uuid> {
    match kind {
        CallKind::AnsweredElsewhere { answerer: p }
        | CallKind::ConsultTransfer { to: p }
        | CallKind::Conference { with: p } => Some(p.id),
        _ => None,
    }
}

/// Starts the contact center over `agents`.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    agents: Vec<Person>,
    timing: ContactCenterTiming,
) -> ScenarioHandle {
    let task = tokio::spawn(async move {
        let busy: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
        let mut calls = JoinSet::new();
        let mut rng = fastrand::Rng::with_seed(shared.ids.seed());
        loop {
            while calls.try_join_next().is_some() {}
            let idle: Vec<Person> = {
                let busy = lock(&busy);
                agents
                    .iter()
                    .filter(|a| !busy.contains(&a.id))
                    .cloned()
                    .collect()
            };
            if let Some(agent) = (!idle.is_empty()).then(|| idle[rng.usize(..idle.len())].clone()) {
                let mut others = idle.clone();
                rng.shuffle(&mut others);
                let kind = pick_kind(&mut rng, &agent, &others);
                let people: Vec<Uuid> = std::iter::once(agent.id).chain(involved(&kind)).collect();
                lock(&busy).extend(people.iter().copied());
                let plan = CallPlan {
                    timing: timing.call,
                    ..CallPlan::new(agent, kind)
                };
                let (shared, busy) = (Arc::clone(&shared), Arc::clone(&busy));
                calls.spawn(async move {
                    run_call(&shared, plan).await;
                    tokio::time::sleep(timing.wrap_up).await;
                    let mut busy = lock(&busy);
                    for person in people {
                        busy.remove(&person);
                    }
                });
            }
            let wait = timing.arrival.mul_f64(0.5 + rng.f64());
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shared.cancel.cancelled() => break,
            }
        }
    });
    ScenarioHandle { task }
}
