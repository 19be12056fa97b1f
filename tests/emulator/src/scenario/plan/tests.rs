use std::time::Duration;

use super::*;

fn person(n: u128, name: &str) -> Person {
    Person {
        id: Uuid::from_u128(n),
        email: format!("{name}@example.com"),
        name: name.into(),
        extension: format!("{}", 1000 + n),
    }
}

fn timeline(kind: CallKind) -> Timeline {
    let call = CallPlan::new(person(1, "a"), kind)
        .with_timing(Duration::from_millis(700), Duration::from_millis(1500));
    plan(&call, &IdSource::new(1), Uuid::nil(), clock::now())
}

fn states(timeline: &Timeline, who: u128) -> Vec<String> {
    timeline
        .events
        .iter()
        .filter(|e| e.person.id == Uuid::from_u128(who))
        .map(|e| format!("{}/{}", e.event, e.data["state"].as_str().unwrap_or("?")))
        .collect()
}

#[test]
fn answer_is_on_a_whole_second_and_phases_are_whole_seconds() {
    let t = timeline(CallKind::Answered);
    assert_eq!(t.answered, clock::floor_second(t.answered));
    assert_eq!(
        clock::between(t.started, t.answered),
        Duration::from_millis(700)
    );
    assert_eq!(clock::between(t.answered, t.ended), Duration::from_secs(2));
    assert_eq!(t.drafts.len(), 1);
    assert_eq!(crate::state::recorded_seconds(&t.drafts[0]), 2);
    assert_eq!(
        states(&t, 1),
        [
            "created/alerting",
            "updated/alerting",
            "updated/connected",
            "deleted/disconnected"
        ]
    );
    assert!(t.events.windows(2).all(|w| w[0].at <= w[1].at));
}

#[test]
fn answered_elsewhere_leaves_the_first_agent_unanswered() {
    let t = timeline(CallKind::AnsweredElsewhere {
        answerer: person(2, "b"),
    });
    let last_a = t
        .events
        .iter()
        .rfind(|e| e.person.id == Uuid::from_u128(1))
        .map(|e| e.data.clone());
    let last_a = last_a.unwrap_or_default();
    assert_eq!(last_a["completedElsewhere"], true);
    assert!(last_a.get("answered").is_none());
    assert_eq!(t.drafts.len(), 1);
    assert_eq!(t.drafts[0].owner.id, Uuid::from_u128(2));
    assert_eq!(t.legs[0].call_session_id, t.legs[1].call_session_id);
}

#[test]
fn consult_transfer_sessions() {
    let t = timeline(CallKind::ConsultTransfer { to: person(2, "b") });
    assert_eq!(t.drafts.len(), 3);
    let (customer, consult, b) = (&t.drafts[0], &t.drafts[1], &t.drafts[2]);
    assert_eq!(customer.call_session_id, t.session);
    assert_eq!(b.call_session_id, t.session);
    assert_ne!(consult.call_session_id, t.session);
    assert_eq!(consult.personality, "originator");
    assert_eq!(b.remote.actor_type, "EXTERNAL");
    assert_eq!(
        states(&t, 2),
        [
            "created/alerting",
            "updated/connected",
            "updated/connected",
            "deleted/disconnected"
        ]
    );
}

#[test]
fn stop_restart_gives_two_recordings_in_one_session() {
    let t = timeline(CallKind::StopRestart);
    assert_eq!(t.drafts.len(), 2);
    assert_eq!(t.drafts[0].call_session_id, t.drafts[1].call_session_id);
    assert!(t.drafts[0].stop < t.drafts[1].start);
}

#[test]
fn pause_resume_has_a_hole() {
    let t = timeline(CallKind::PauseResume);
    let draft = &t.drafts[0];
    assert_eq!(draft.pauses.len(), 1);
    assert_eq!(
        clock::between(draft.start, draft.stop),
        Duration::from_secs(6)
    );
    assert_eq!(crate::state::recorded_seconds(draft), 4);
    assert_eq!(draft.beeps, [Duration::from_secs(2)]);
}
