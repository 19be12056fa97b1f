//! Playing a planned call in real time.

use std::sync::Arc;

use super::plan::plan;
use super::{CallOutcome, CallPlan, PlannedRecording};
use crate::state::{self, Shared};
use crate::{clock, delivery};

/// Plays `call`: each delivery at its instant; returns after the last one is queued. The
/// recordings are stored then and become visible (with their webhook and compliance event)
/// `publish_delay` later, rounded up to a whole second.
pub(crate) async fn run_call(shared: &Arc<Shared>, call: CallPlan) -> CallOutcome {
    let now = clock::now();
    let base = tokio::time::Instant::now();
    let timeline = plan(&call, &shared.ids, shared.location_id(), now);
    let publish_at = clock::ceil_second(clock::add(timeline.ended, shared.config.publish_delay));
    let outcome = CallOutcome {
        call_session_id: timeline.session,
        legs: timeline.legs.clone(),
        people: timeline.people.clone(),
        recordings: timeline
            .drafts
            .iter()
            .map(|d| PlannedRecording {
                id: d.id.clone(),
                owner: d.owner.id,
                call_session_id: d.call_session_id,
                time_recorded: d.start,
                stop_time: d.stop,
                duration_s: state::recorded_seconds(d),
                publish_at,
            })
            .collect(),
        started: timeline.started,
        answered: timeline.answered,
        ended: timeline.ended,
    };
    tracing::debug!(session = %timeline.session, kind = ?call.kind, agent = %call.agent.email, "call started");
    for event in &timeline.events {
        tokio::time::sleep_until(base + clock::between(now, event.at)).await;
        delivery::dispatch(
            shared,
            "telephony_calls",
            event.event,
            &event.person,
            &event.data,
        );
    }
    let recordings = timeline
        .drafts
        .into_iter()
        .map(|draft| state::build_shared(shared, draft, publish_at))
        .collect();
    shared.publish(recordings, true);
    tracing::debug!(session = %timeline.session, "call ended");
    outcome
}
