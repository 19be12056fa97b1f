//! Per-agent memory of calls: turns `telephony_calls` snapshots and agent-state changes into the
//! seed's events, once each, in timestamp order per call.
//!
//! Deliveries can be duplicated, reordered and lost. A snapshot carries the call's `created`,
//! `answered` and `disconnected` times, so the milestones (start, Connected, end) are derived from
//! those facts whatever order snapshots arrive in; hold and resume exist only in the `state` of a
//! snapshot and are applied only when the snapshot is newer than what the call already applied
//! (an older one is reported as late and changes nothing).

use std::collections::{BTreeMap, BTreeSet};

use capture_shared::event::{CallEvent, EventKind};
use capture_shared::ids::{CallId, CallSessionId, PersonId};
use capture_shared::time::UtcMillis;
use serde::{Deserialize, Serialize};

use crate::webex::agent_state::AgentState as WebexAgentState;
use crate::webex::telephony::{CallSnapshot, CallState};

/// How long ended calls are remembered (to recognise duplicates and late deliveries).
pub const REMEMBER_ENDED_CALLS_MS: i64 = 24 * 3600 * 1000;

/// What the tracker knows of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TrackedCall {
    session: Option<CallSessionId>,
    /// The newest snapshot time applied.
    last_at: UtcMillis,
    /// Milestones already emitted (start, Connected, Conferencing, end).
    emitted: BTreeSet<EventKind>,
    held: bool,
    connected: bool,
    consult: bool,
    ended: bool,
}

/// The result of one observation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    /// New events, in timestamp order.
    pub events: Vec<CallEvent>,
    /// The snapshot was older than what its call already applied (recorded, not applied).
    pub late: bool,
    /// The snapshot changed nothing (a duplicate).
    pub duplicate: bool,
}

/// One agent's calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTracker {
    calls: BTreeMap<CallId, TrackedCall>,
}

impl CallTracker {
    /// Applies one call snapshot of `agent`.
    pub fn observe_call(&mut self, agent: PersonId, snapshot: &CallSnapshot) -> Observation {
        let other_held = self
            .calls
            .iter()
            .any(|(id, c)| *id != snapshot.call_id && c.held && !c.ended);
        let other_connected = self
            .calls
            .iter()
            .any(|(id, c)| *id != snapshot.call_id && c.connected && !c.held && !c.ended);
        let call = self
            .calls
            .entry(snapshot.call_id.clone())
            .or_insert_with(|| TrackedCall {
                session: snapshot.call_session_id.clone(),
                last_at: UtcMillis(i64::MIN),
                emitted: BTreeSet::new(),
                held: false,
                connected: false,
                consult: false,
                ended: false,
            });
        if call.session.is_none() {
            call.session.clone_from(&snapshot.call_session_id);
        }
        let late = snapshot.at < call.last_at;
        let event = |kind: EventKind, at: UtcMillis| CallEvent {
            kind,
            agent,
            call_id: Some(snapshot.call_id.clone()),
            call_session_id: call.session.clone(),
            at,
        };
        let mut events = Vec::new();

        // Start: the first snapshot of a call, in whatever state, proves it was offered or placed.
        if !call.emitted.contains(&EventKind::Ringing) {
            call.emitted.insert(EventKind::Ringing);
            call.consult = other_held;
            let kind = if call.consult {
                EventKind::Consulting
            } else {
                EventKind::Ringing
            };
            events.push(event(kind, snapshot.created.unwrap_or(snapshot.at)));
        }
        let answered_at = snapshot.answered.or(match snapshot.state {
            CallState::Connected | CallState::Held | CallState::RemoteHeld if !late => {
                Some(snapshot.at)
            }
            _ => None,
        });
        if let Some(at) = answered_at
            && !call.emitted.contains(&EventKind::Connected)
        {
            call.emitted.insert(EventKind::Connected);
            events.push(event(EventKind::Connected, at));
        }
        if !late && !call.ended {
            match snapshot.state {
                CallState::Held | CallState::RemoteHeld if !call.held => {
                    call.held = true;
                    events.push(event(EventKind::OnHold, snapshot.at));
                }
                CallState::Connected if call.held => {
                    call.held = false;
                    events.push(event(EventKind::HoldDone, snapshot.at));
                }
                _ => {}
            }
            call.connected = matches!(
                snapshot.state,
                CallState::Connected | CallState::Held | CallState::RemoteHeld
            );
            let conference = snapshot.hints_conference()
                || (snapshot.state == CallState::Connected && other_connected && !call.held);
            if conference && !call.emitted.contains(&EventKind::Conferencing) {
                call.emitted.insert(EventKind::Conferencing);
                events.push(event(EventKind::Conferencing, snapshot.at));
            }
        }
        let gone = snapshot.state == CallState::Disconnected || snapshot.disconnected.is_some();
        if gone && !call.ended {
            call.ended = true;
            call.held = false;
            call.connected = false;
            let kind = if call.consult {
                EventKind::ConsultDone
            } else if call.emitted.contains(&EventKind::Connected) {
                EventKind::WrapUp
            } else {
                EventKind::NotResponding
            };
            call.emitted.insert(kind);
            events.push(event(kind, snapshot.disconnected.unwrap_or(snapshot.at)));
        }
        let duplicate = events.is_empty() && !late;
        if !late {
            call.last_at = snapshot.at;
        }
        events.sort_by_key(|e| e.at);
        Observation {
            events,
            late,
            duplicate,
        }
    }

    /// Applies an agent-state change of `agent` at `at`.
    pub fn observe_agent_state(
        &mut self,
        agent: PersonId,
        state: WebexAgentState,
        at: UtcMillis,
    ) -> Vec<CallEvent> {
        let agent_event = |kind, call: Option<(&CallId, &TrackedCall)>| CallEvent {
            kind,
            agent,
            call_id: call.map(|(id, _)| id.clone()),
            call_session_id: call.and_then(|(_, c)| c.session.clone()),
            at,
        };
        match state {
            WebexAgentState::Available => vec![agent_event(EventKind::AgentAvailable, None)],
            WebexAgentState::WrapUp => vec![agent_event(EventKind::WrapUp, None)],
            WebexAgentState::Rona => {
                // The offered calls the agent did not take.
                let mut events = Vec::new();
                for (id, call) in self.calls.iter_mut() {
                    if !call.ended && !call.emitted.contains(&EventKind::Connected) {
                        call.ended = true;
                        call.emitted.insert(EventKind::NotResponding);
                        events.push(CallEvent {
                            kind: EventKind::NotResponding,
                            agent,
                            call_id: Some(id.clone()),
                            call_session_id: call.session.clone(),
                            at,
                        });
                    }
                }
                if events.is_empty() {
                    events.push(agent_event(EventKind::NotResponding, None));
                }
                events
            }
        }
    }

    /// Forgets ended calls last seen before `before`.
    pub fn prune(&mut self, before: UtcMillis) {
        self.calls
            .retain(|_, call| !call.ended || call.last_at >= before);
    }
}
