//! The one event vocabulary every call and agent-state source is normalised into (DESIGN.md §2).
//!
//! The names are the seed's own: a Webex `telephony_calls` webhook, a Customer Assist agent state,
//! a Contact Center RONA and the wrap-up timer all end up as one of these [`EventKind`]s.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{CallId, CallSessionId, PersonId};
use crate::time::UtcMillis;

/// What happened, in the seed's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A call is offered to the agent: start screen recording (tentatively).
    Ringing,
    /// The agent did not take the call (answered elsewhere, rejected, RONA): discard the screen.
    NotResponding,
    /// The agent answered: keep the screen recording.
    Connected,
    /// The call became a conference.
    Conferencing,
    /// The agent placed a consult call while the customer is held.
    Consulting,
    /// The consult call ended.
    ConsultDone,
    /// The call was put on hold.
    OnHold,
    /// The call was resumed from hold.
    HoldDone,
    /// The call ended and the agent is wrapping up.
    WrapUp,
    /// The agent is available again: the contact is over, stop and hand to ingestion.
    AgentAvailable,
}

impl EventKind {
    /// Every kind, in the order of the seed's table.
    pub const ALL: [EventKind; 10] = [
        EventKind::Ringing,
        EventKind::NotResponding,
        EventKind::Connected,
        EventKind::Conferencing,
        EventKind::Consulting,
        EventKind::ConsultDone,
        EventKind::OnHold,
        EventKind::HoldDone,
        EventKind::WrapUp,
        EventKind::AgentAvailable,
    ];

    /// The label people read on the replay timeline ("On Hold", "Agent Available").
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Ringing => "Ringing",
            EventKind::NotResponding => "Not Responding",
            EventKind::Connected => "Connected",
            EventKind::Conferencing => "Conferencing",
            EventKind::Consulting => "Consulting",
            EventKind::ConsultDone => "Consult Done",
            EventKind::OnHold => "On Hold",
            EventKind::HoldDone => "Hold Done",
            EventKind::WrapUp => "Wrap Up",
            EventKind::AgentAvailable => "Agent Available",
        }
    }

    /// The kind whose [`label`](Self::label) is `label`.
    pub fn from_label(label: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.label() == label)
    }

    /// Whether the event belongs to one call (all but agent-state changes do).
    pub fn is_call_scoped(self) -> bool {
        !matches!(self, EventKind::AgentAvailable)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One normalised event: what happened, to which agent, on which call, when (the source's clock).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallEvent {
    /// What happened.
    pub kind: EventKind,
    /// The Webex person the event is about (the agent whose call or state it is).
    pub agent: PersonId,
    /// The Webex call id in raw form; `None` for agent-state events.
    pub call_id: Option<CallId>,
    /// The normalised call session id; `None` for agent-state events.
    pub call_session_id: Option<CallSessionId>,
    /// When the source says it happened, UTC milliseconds.
    pub at: UtcMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_are_distinct() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_label(kind.label()), Some(kind));
        }
        let mut labels: Vec<_> = EventKind::ALL.iter().map(|k| k.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), EventKind::ALL.len());
        assert_eq!(EventKind::from_label("Lunch"), None);
    }

    #[test]
    fn events_serialise_with_the_seed_names() {
        let event = CallEvent {
            kind: EventKind::OnHold,
            agent: PersonId(uuid::Uuid::nil()),
            call_id: Some(crate::ids::call_id("callhalf-581329:0").expect("call id")),
            call_session_id: Some(
                crate::ids::call_session_id("FE2F5688-91a8-4799-a867-a396bb2b024a")
                    .expect("session"),
            ),
            at: UtcMillis(1_699_347_021_000),
        };
        let json = serde_json::to_value(&event).expect("serialise");
        assert_eq!(json["kind"], "OnHold");
        assert_eq!(json["call_session_id"], "fe2f568891a84799a867a396bb2b024a");
        let back: CallEvent = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, event);
        assert!(!EventKind::AgentAvailable.is_call_scoped());
        assert!(EventKind::Ringing.is_call_scoped());
    }
}
