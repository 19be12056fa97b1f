//! The per-agent state machine of the seed (DESIGN.md §2): plain data and a pure [`next`].
//!
//! One *contact* runs from the first Ringing to Agent Available and may span overlapping calls
//! (call waiting, consult). Ringing starts a tentative screen recording; Not Responding discards it
//! unless a call of the contact was answered; Connected keeps it; the other call events are
//! markers; Agent Available (from an agent-state source, or the wrap-up timer when there is none)
//! stops it and hands it to ingestion. A cap bounds every contact's length.

use std::collections::{BTreeMap, BTreeSet};

use capture_shared::event::{CallEvent, EventKind};
use capture_shared::ids::{CallId, CallSessionId, ContactId, PersonId};
use capture_shared::time::UtcMillis;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of contact ids: a contact's id is derived from its agent and first call, so
/// processing the same events twice yields the same contact.
const CONTACT_NAMESPACE: Uuid = Uuid::from_u128(0x6361_7074_7572_6520_636f_6e74_6163_7473);

/// The rules the machine applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Time after the last call of a contact ends until Agent Available is assumed; `None` when an
    /// agent-state source reports Agent Available.
    pub wrap_up_ms: Option<i64>,
    /// Longest contact; a longer one is closed.
    pub max_contact_ms: i64,
    /// Time a contact whose calls all went unanswered waits before its recording is discarded.
    /// A call that starts meanwhile joins it. Deliveries arrive out of order: without this wait,
    /// an unanswered call-waiting call delivered before the answered call it overlapped would be
    /// discarded as a contact of its own.
    pub discard_settle_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            wrap_up_ms: Some(30_000),
            max_contact_ms: 4 * 3600 * 1000,
            discard_settle_ms: 5_000,
        }
    }
}

/// Whether a call of a contact is still up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallPhase {
    /// Ringing, connected or held.
    Active,
    /// Disconnected.
    Ended,
}

/// The contact an agent is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Its id.
    pub id: ContactId,
    /// When its first call started.
    pub started: UtcMillis,
    /// Whether a call was answered (the recording is kept).
    pub kept: bool,
    /// Its calls.
    pub calls: BTreeMap<CallId, CallPhase>,
    /// Their call sessions.
    pub sessions: BTreeSet<CallSessionId>,
    /// When the wrap-up timer assumes Agent Available.
    pub wrap_up_due: Option<UtcMillis>,
    /// When the recording of a contact whose calls all went unanswered is discarded.
    #[serde(default)]
    pub discard_due: Option<UtcMillis>,
    /// An Agent Available that arrived while calls were still up (deliveries reorder): it closes
    /// the contact as soon as the last call ends, if that call ended before it.
    #[serde(default)]
    pub available_at: Option<UtcMillis>,
}

impl Contact {
    /// Adds the event's call (as active, unless already known) and session to the contact.
    fn join(&mut self, event: &CallEvent) {
        if let Some(call) = &event.call_id {
            self.calls.entry(call.clone()).or_insert(CallPhase::Active);
        }
        self.sessions.extend(event.call_session_id.clone());
    }

    fn all_ended(&self) -> bool {
        self.calls.values().all(|phase| *phase == CallPhase::Ended)
    }
}

/// One agent's machine state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// The open contact, if any.
    pub contact: Option<Contact>,
}

/// What the machine is fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A normalised event.
    Event(CallEvent),
    /// Time passed (server clock): fires the wrap-up timer and the cap.
    Tick(UtcMillis),
}

/// Why a contact ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The agent-state source said Agent Available.
    AgentAvailable,
    /// No agent-state source: the wrap-up time after the last call passed.
    WrapUpTimer,
    /// The contact reached the length cap.
    ContactCap,
    /// No call was answered (Not Responding).
    NotResponding,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Start recording the agent's screen: a tentative SCN file in the call buffer.
    StartRecording {
        /// The new contact.
        contact: ContactId,
        /// When.
        at: UtcMillis,
    },
    /// Mark the recording kept.
    KeepRecording {
        /// The contact.
        contact: ContactId,
    },
    /// Put a call event on the contact's timeline.
    Marker {
        /// The contact.
        contact: ContactId,
        /// The event.
        event: EventKind,
        /// When.
        at: UtcMillis,
    },
    /// Stop and delete the recording (audited).
    DiscardRecording {
        /// The contact.
        contact: ContactId,
        /// Its calls.
        calls: Vec<CallId>,
        /// When.
        at: UtcMillis,
        /// Why.
        reason: CloseReason,
    },
    /// Stop the recording, close the SCN file and hand the contact to ingestion.
    StopRecording {
        /// The contact.
        contact: ContactId,
        /// Its calls.
        calls: Vec<CallId>,
        /// When.
        at: UtcMillis,
        /// Why.
        reason: CloseReason,
    },
    /// The event applies to no open contact; it is recorded only.
    Ignored {
        /// The event.
        event: EventKind,
        /// Why.
        reason: &'static str,
    },
}

/// The contact id of `agent`'s contact that starts with `call`.
pub fn contact_id(agent: PersonId, call: Option<&CallId>, at: UtcMillis) -> ContactId {
    let name = match call {
        Some(call) => format!("{agent}/{call}"),
        None => format!("{agent}@{}", at.0),
    };
    ContactId(Uuid::new_v5(&CONTACT_NAMESPACE, name.as_bytes()))
}

fn close(contact: Contact, at: UtcMillis, reason: CloseReason) -> Action {
    let calls = contact.calls.into_keys().collect();
    if contact.kept {
        Action::StopRecording {
            contact: contact.id,
            calls,
            at,
            reason,
        }
    } else {
        let reason = if reason == CloseReason::ContactCap {
            reason
        } else {
            CloseReason::NotResponding
        };
        Action::DiscardRecording {
            contact: contact.id,
            calls,
            at,
            reason,
        }
    }
}

/// The machine: the next state and the actions, from the current state and one input.
pub fn next(mut state: AgentState, input: &Input, policy: &Policy) -> (AgentState, Vec<Action>) {
    let mut actions = Vec::new();
    match input {
        Input::Tick(now) => {
            if let Some(contact) = state.contact.take() {
                if now.0.saturating_sub(contact.started.0) >= policy.max_contact_ms {
                    actions.push(close(contact, *now, CloseReason::ContactCap));
                } else if let Some(due) = contact.discard_due.filter(|due| due <= now) {
                    actions.push(close(contact, due, CloseReason::NotResponding));
                } else if contact.wrap_up_due.is_some_and(|due| due <= *now) {
                    let due = contact.wrap_up_due.unwrap_or(*now);
                    actions.push(close(contact, due, CloseReason::WrapUpTimer));
                } else {
                    state.contact = Some(contact);
                }
            }
        }
        Input::Event(event) => apply(&mut state, event, policy, &mut actions),
    }
    (state, actions)
}

fn apply(state: &mut AgentState, event: &CallEvent, policy: &Policy, actions: &mut Vec<Action>) {
    let kind = event.kind;
    let marker = |contact: &Contact| Action::Marker {
        contact: contact.id,
        event: kind,
        at: event.at,
    };
    match kind {
        EventKind::Ringing | EventKind::Consulting => {
            let contact = state.contact.get_or_insert_with(|| {
                let id = contact_id(event.agent, event.call_id.as_ref(), event.at);
                actions.push(Action::StartRecording {
                    contact: id,
                    at: event.at,
                });
                Contact {
                    id,
                    started: event.at,
                    kept: false,
                    calls: BTreeMap::new(),
                    sessions: BTreeSet::new(),
                    wrap_up_due: None,
                    discard_due: None,
                    available_at: None,
                }
            });
            contact.join(event);
            contact.wrap_up_due = None;
            contact.discard_due = None;
            if contact
                .available_at
                .is_some_and(|available| available < event.at)
            {
                contact.available_at = None;
            }
            contact.started = contact.started.min(event.at);
            actions.push(marker(contact));
        }
        EventKind::Connected => {
            let Some(contact) = state.contact.as_mut() else {
                actions.push(Action::Ignored {
                    event: kind,
                    reason: "no open contact",
                });
                return;
            };
            contact.join(event);
            actions.push(marker(contact));
            contact.discard_due = None;
            if !contact.kept {
                contact.kept = true;
                actions.push(Action::KeepRecording {
                    contact: contact.id,
                });
            }
        }
        EventKind::OnHold | EventKind::HoldDone | EventKind::Conferencing => match &state.contact {
            Some(contact) => actions.push(marker(contact)),
            None => actions.push(Action::Ignored {
                event: kind,
                reason: "no open contact",
            }),
        },
        EventKind::NotResponding | EventKind::WrapUp | EventKind::ConsultDone => {
            let Some(mut contact) = state.contact.take() else {
                actions.push(Action::Ignored {
                    event: kind,
                    reason: "no open contact",
                });
                return;
            };
            actions.push(marker(&contact));
            match &event.call_id {
                Some(call) => {
                    contact.calls.insert(call.clone(), CallPhase::Ended);
                }
                // An agent-level Not Responding (RONA without a known call) ends every call.
                None if kind == EventKind::NotResponding => {
                    contact
                        .calls
                        .values_mut()
                        .for_each(|phase| *phase = CallPhase::Ended);
                }
                None => {}
            }
            if contact.all_ended() && !contact.kept {
                contact.discard_due = Some(UtcMillis(
                    event.at.0.saturating_add(policy.discard_settle_ms),
                ));
                state.contact = Some(contact);
                return;
            }
            if contact.all_ended() && event.call_id.is_some() {
                if contact
                    .available_at
                    .is_some_and(|available| available >= event.at)
                {
                    let at = contact.available_at.unwrap_or(event.at);
                    actions.push(close(contact, at, CloseReason::AgentAvailable));
                    return;
                }
                contact.wrap_up_due = policy
                    .wrap_up_ms
                    .map(|ms| UtcMillis(event.at.0.saturating_add(ms)));
            }
            state.contact = Some(contact);
        }
        EventKind::AgentAvailable => match state.contact.take() {
            Some(contact) if contact.all_ended() => {
                actions.push(close(contact, event.at, CloseReason::AgentAvailable));
            }
            Some(mut contact) => {
                actions.push(Action::Ignored {
                    event: kind,
                    reason: "calls of the contact are still up",
                });
                contact.available_at =
                    Some(contact.available_at.map_or(event.at, |a| a.max(event.at)));
                state.contact = Some(contact);
            }
            None => actions.push(Action::Ignored {
                event: kind,
                reason: "no open contact",
            }),
        },
    }
}

/// When the machine next needs a [`Input::Tick`]: the wrap-up deadline or the cap.
pub fn next_deadline(state: &AgentState, policy: &Policy) -> Option<UtcMillis> {
    let contact = state.contact.as_ref()?;
    let cap = UtcMillis(contact.started.0.saturating_add(policy.max_contact_ms));
    [contact.wrap_up_due, contact.discard_due]
        .into_iter()
        .flatten()
        .chain([cap])
        .min()
}

#[cfg(test)]
mod tests;
