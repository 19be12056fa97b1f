//! One webhook delivery → the person it is about and what it says, then → events and actions
//! through that person's tracker and machine. Shared by the live processor and the
//! `webhooks replay` dry run, so both take deliveries the same way.

use capture_shared::event::CallEvent;
use capture_shared::ids::{self, PersonId};
use capture_shared::time::UtcMillis;
use serde::{Deserialize, Serialize};

use super::machine::{self, Action, AgentState, Input, Policy};
use super::tracker::CallTracker;
use crate::webex::agent_state::{self, AgentState as WebexAgentState};
use crate::webex::telephony::CallSnapshot;
use crate::webex::webhook::Envelope;

/// Everything kept per Webex person between deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Call memory.
    pub tracker: CallTracker,
    /// The state machine.
    pub machine: AgentState,
}

/// What a delivery says.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A `telephony_calls` snapshot.
    Call {
        /// Whose call.
        person: PersonId,
        /// The call.
        snapshot: Box<CallSnapshot>,
    },
    /// An agent-state change.
    AgentState {
        /// Whose state.
        person: PersonId,
        /// The state, when Capture acts on it.
        state: Option<WebexAgentState>,
        /// The raw value.
        raw: String,
        /// When.
        at: UtcMillis,
    },
    /// A new recording (`convergedRecordings` created): the adapter's fast path.
    Recording {
        /// Webex's recording id (`data.id`; always fetched again through the API).
        id: String,
    },
    /// A resource the integration does not handle.
    Other {
        /// The resource.
        resource: String,
    },
}

/// Decodes a stored delivery. `received_at` dates agent-state payloads that carry no time.
pub fn decode(envelope: &Envelope, received_at: UtcMillis) -> Result<Decoded, String> {
    let subject = || -> Result<PersonId, String> {
        let raw = envelope
            .subject_person()
            .ok_or("the delivery names no person (actorId, personId filter)")?;
        ids::person_id(raw).map_err(|e| e.to_string())
    };
    match envelope.resource.as_str() {
        "telephony_calls" => {
            let snapshot = CallSnapshot::from_data(&envelope.data, &envelope.event)
                .map_err(|e| e.to_string())?;
            Ok(Decoded::Call {
                person: subject()?,
                snapshot: Box::new(snapshot),
            })
        }
        "telephony_agent" | "agent" | "agent:state_change" => {
            let change =
                agent_state::parse(&envelope.data).ok_or("agent-state payload names no state")?;
            let person = match change.person.as_deref().map(ids::person_id) {
                Some(Ok(person)) => person,
                _ => subject()?,
            };
            Ok(Decoded::AgentState {
                person,
                state: change.state,
                raw: change.raw,
                at: change.at.unwrap_or(received_at),
            })
        }
        "convergedRecordings" if envelope.event == "created" => {
            // `data.id` is taken as the recording id (webex/API.md: most likely; the adapter
            // fetches its details, so a wrong guess parks one job with Webex's answer).
            let id = envelope
                .data
                .get("id")
                .and_then(serde_json::Value::as_str)
                .filter(|id| !id.trim().is_empty())
                .ok_or("convergedRecordings delivery without data.id")?;
            Ok(Decoded::Recording { id: id.to_owned() })
        }
        other => Ok(Decoded::Other {
            resource: other.to_owned(),
        }),
    }
}

/// One event and the actions it caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The event.
    pub event: CallEvent,
    /// The actions.
    pub actions: Vec<Action>,
}

/// The outcome of one decoded delivery for its person.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stepped {
    /// Events, each with its actions.
    pub applied: Vec<Applied>,
    /// The snapshot was older than what its call had applied.
    pub late: bool,
    /// The delivery changed nothing.
    pub duplicate: bool,
}

/// Runs a decoded delivery through the person's tracker and machine.
pub fn step(record: &mut AgentRecord, decoded: &Decoded, policy: &Policy) -> Stepped {
    let (events, late, duplicate) = match decoded {
        Decoded::Call { person, snapshot } => {
            let observation = record.tracker.observe_call(*person, snapshot);
            (observation.events, observation.late, observation.duplicate)
        }
        Decoded::AgentState {
            person,
            state: Some(state),
            at,
            ..
        } => (
            record.tracker.observe_agent_state(*person, *state, *at),
            false,
            false,
        ),
        Decoded::AgentState { state: None, .. }
        | Decoded::Recording { .. }
        | Decoded::Other { .. } => (Vec::new(), false, true),
    };
    let mut applied = Vec::with_capacity(events.len());
    for event in events {
        let (machine, actions) = machine::next(
            std::mem::take(&mut record.machine),
            &Input::Event(event.clone()),
            policy,
        );
        record.machine = machine;
        applied.push(Applied { event, actions });
    }
    Stepped {
        applied,
        late,
        duplicate,
    }
}

/// Runs the timers of a person's machine at `now`.
pub fn tick(record: &mut AgentRecord, now: UtcMillis, policy: &Policy) -> Vec<Action> {
    let (machine, actions) = machine::next(
        std::mem::take(&mut record.machine),
        &Input::Tick(now),
        policy,
    );
    record.machine = machine;
    record.tracker.prune(UtcMillis(
        now.0
            .saturating_sub(super::tracker::REMEMBER_ENDED_CALLS_MS),
    ));
    actions
}
