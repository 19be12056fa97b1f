//! Planning a call: the full timeline of deliveries and the recordings, computed up front (no IO).

use std::time::Duration;

use jiff::Timestamp;
use uuid::Uuid;

use super::{CallKind, CallLeg, CallPlan};
use crate::clock;
use crate::ids::IdSource;
use crate::model::{OwnerType, Party, Person};
use crate::state::Draft;
use crate::telephony::{Leg, TelephonyEvent};

/// A planned call.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    /// Deliveries in time order.
    pub events: Vec<TelephonyEvent>,
    pub drafts: Vec<Draft>,
    pub legs: Vec<CallLeg>,
    pub people: Vec<Uuid>,
    pub session: Uuid,
    pub started: Timestamp,
    pub answered: Timestamp,
    pub ended: Timestamp,
}

struct Script<'a> {
    ids: &'a IdSource,
    location: Uuid,
    events: Vec<TelephonyEvent>,
    drafts: Vec<Draft>,
    legs: Vec<CallLeg>,
    people: Vec<Uuid>,
}

impl Script<'_> {
    fn leg(
        &mut self,
        person: &Person,
        session: Uuid,
        personality: &'static str,
        remote: Party,
        created: Timestamp,
    ) -> Leg {
        let leg = Leg::new(
            person,
            self.ids.call_number(),
            session,
            personality,
            remote,
            created,
        );
        self.legs.push(CallLeg {
            person: person.id,
            call_id: leg.call_id(),
            call_session_id: session,
        });
        if !self.people.contains(&person.id) {
            self.people.push(person.id);
        }
        leg
    }

    fn emit(&mut self, event: TelephonyEvent) {
        self.events.push(event);
    }

    /// `created` alerting at `from`, an `updated` alerting halfway to `to` (the observed sequence).
    fn ring(&mut self, legs: &mut [&mut Leg], from: Timestamp, to: Timestamp) {
        for leg in legs.iter_mut() {
            self.emit(leg.event("alerting", from));
        }
        let halfway = clock::add(from, clock::between(from, to) / 2);
        for leg in legs.iter_mut() {
            self.emit(leg.event("alerting", halfway));
        }
    }

    /// The recording of `leg` between `start` and `stop`, as the leg stands now.
    fn draft(&self, leg: &Leg, start: Timestamp, stop: Timestamp) -> Draft {
        let owner = Party::user(&leg.person);
        let answerer = if leg.personality == "terminator" {
            owner
        } else {
            leg.remote.clone()
        };
        Draft {
            id: self.ids.recording_id(),
            topic: format!("Call with {}", leg.remote.name),
            owner: leg.person.clone(),
            owner_type: OwnerType::User,
            location_id: self.location,
            call_session_id: leg.session,
            call_number: leg.call_number,
            personality: leg.personality,
            remote: leg.remote.clone(),
            answerer,
            redirect: None,
            start,
            stop,
            pauses: Vec::new(),
            beeps: Vec::new(),
            holds: Vec::new(),
        }
    }
}

/// Plans `call` starting no earlier than `now`: the first answer is the first whole second at least
/// `ring` after `now`.
pub(crate) fn plan(call: &CallPlan, ids: &IdSource, location: Uuid, now: Timestamp) -> Timeline {
    let answered = clock::ceil_second(clock::add(now, call.timing.ring));
    let started = clock::sub(answered, call.timing.ring);
    let phase = clock::whole_seconds(call.timing.phase, 1);
    let inner_ring = clock::whole_seconds(call.timing.ring, 1);
    let after = |at: Timestamp, d: Duration| clock::add(at, d);
    let customer = Party {
        actor_type: "EXTERNAL",
        actor_id: ids.uuid(),
        number: call.customer.number.clone(),
        name: call.customer.name.clone(),
        person: None,
    };
    let session = ids.uuid();
    let mut s = Script {
        ids,
        location,
        events: Vec::new(),
        drafts: Vec::new(),
        legs: Vec::new(),
        people: Vec::new(),
    };
    let agent = &call.agent;
    let mut a = s.leg(agent, session, "terminator", customer.clone(), started);
    match &call.kind {
        CallKind::Answered => {
            s.ring(&mut [&mut a], started, answered);
            a.recording_state = Some("started");
            s.emit(a.event("connected", answered));
            let end = after(answered, phase);
            s.emit(a.event("disconnected", end));
            s.drafts.push(s.draft(&a, answered, end));
        }
        CallKind::AnsweredElsewhere { answerer } => {
            let mut b = s.leg(answerer, session, "terminator", customer.clone(), started);
            a.redirection = Some("callQueue");
            b.redirection = Some("callQueue");
            s.ring(&mut [&mut a, &mut b], started, answered);
            b.recording_state = Some("started");
            s.emit(b.event("connected", answered));
            s.emit(a.completed_elsewhere(answered));
            let end = after(answered, phase);
            s.emit(b.event("disconnected", end));
            let mut draft = s.draft(&b, answered, end);
            draft.redirect = Some("callQueue");
            s.drafts.push(draft);
        }
        CallKind::HoldResume => {
            s.ring(&mut [&mut a], started, answered);
            a.recording_state = Some("started");
            s.emit(a.event("connected", answered));
            s.emit(a.event("held", after(answered, phase)));
            s.emit(a.event("connected", after(answered, phase * 2)));
            let end = after(answered, phase * 3);
            s.emit(a.event("disconnected", end));
            let mut draft = s.draft(&a, answered, end);
            draft.holds = vec![phase..phase * 2];
            draft.beeps = vec![phase * 2];
            s.drafts.push(draft);
        }
        CallKind::ConsultTransfer { to } => {
            s.ring(&mut [&mut a], started, answered);
            a.recording_state = Some("started");
            s.emit(a.event("connected", answered));
            let held = after(answered, phase);
            s.emit(a.event("held", held));
            let consult = ids.uuid();
            let mut a2 = s.leg(agent, consult, "originator", Party::user(to), held);
            let mut b = s.leg(to, consult, "terminator", Party::user(agent), held);
            s.emit(a2.event("connecting", held));
            s.emit(b.event("alerting", held));
            let consult_answered = after(held, inner_ring);
            a2.recording_state = Some("started");
            b.recording_state = Some("started");
            s.emit(a2.event("connected", consult_answered));
            s.emit(b.event("connected", consult_answered));
            let transferred = after(consult_answered, phase);
            s.emit(a.event("disconnected", transferred));
            s.emit(a2.event("disconnected", transferred));
            b.session = session;
            b.remote = customer.clone();
            s.emit(b.event("connected", transferred));
            let end = after(transferred, phase);
            s.emit(b.event("disconnected", end));
            let mut customer_leg = s.draft(&a, answered, transferred);
            customer_leg.holds = vec![phase..clock::between(answered, transferred)];
            s.drafts.push(customer_leg);
            s.drafts.push(s.draft(&a2, consult_answered, transferred));
            let mut b_leg = s.draft(&b, consult_answered, end);
            b_leg.beeps = vec![clock::between(consult_answered, transferred)];
            b_leg.redirect = Some("consultativeTransfer");
            b_leg.answerer = Party::user(to);
            s.drafts.push(b_leg);
        }
        CallKind::Conference { with } => {
            s.ring(&mut [&mut a], started, answered);
            a.recording_state = Some("started");
            s.emit(a.event("connected", answered));
            let invited = after(answered, phase);
            let mut b = s.leg(with, session, "terminator", Party::user(agent), invited);
            s.emit(b.event("alerting", invited));
            let joined = after(invited, inner_ring);
            b.recording_state = Some("started");
            s.emit(b.event("connected", joined));
            s.emit(a.event("connected", joined));
            let end = after(joined, phase);
            s.emit(a.event("disconnected", end));
            s.emit(b.event("disconnected", end));
            let mut a_leg = s.draft(&a, answered, end);
            a_leg.beeps = vec![clock::between(answered, joined)];
            s.drafts.push(a_leg);
            s.drafts.push(s.draft(&b, joined, end));
        }
        CallKind::PauseResume => {
            s.ring(&mut [&mut a], started, answered);
            a.recording_state = Some("started");
            s.emit(a.event("connected", answered));
            let paused = after(answered, phase);
            a.recording_state = Some("paused");
            s.emit(a.event("connected", paused));
            let resumed = after(paused, phase);
            a.recording_state = Some("started");
            s.emit(a.event("connected", resumed));
            let end = after(resumed, phase);
            s.emit(a.event("disconnected", end));
            let mut draft = s.draft(&a, answered, end);
            draft.pauses = vec![(paused, resumed)];
            draft.beeps = vec![phase];
            s.drafts.push(draft);
        }
        CallKind::StopRestart => {
            s.ring(&mut [&mut a], started, answered);
            a.recording_state = Some("started");
            s.emit(a.event("connected", answered));
            let stopped = after(answered, phase);
            a.recording_state = Some("stopped");
            s.emit(a.event("connected", stopped));
            let restarted = after(stopped, phase);
            a.recording_state = Some("started");
            s.emit(a.event("connected", restarted));
            let end = after(restarted, phase);
            s.emit(a.event("disconnected", end));
            s.drafts.push(s.draft(&a, answered, stopped));
            s.drafts.push(s.draft(&a, restarted, end));
        }
    }
    s.events.sort_by_key(|e| e.at);
    let ended = s.events.last().map_or(answered, |e| e.at);
    Timeline {
        events: s.events,
        drafts: s.drafts,
        legs: s.legs,
        people: s.people,
        session,
        started,
        answered,
        ended,
    }
}

#[cfg(test)]
mod tests;
