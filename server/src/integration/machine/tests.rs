//! The machine with the tracker in front of it, on modelled call scenarios: any delivery order and
//! any duplication of a scenario's webhooks gives the same contacts with the same outcome, and no
//! subset of them leaves a contact open once the timers have run.

use std::collections::BTreeSet;

use capture_shared::ids::{self, CallSessionId, PersonId};
use proptest::prelude::*;

use super::*;
use crate::integration::tracker::CallTracker;
use crate::webex::agent_state::AgentState as WebexAgentState;
use crate::webex::telephony::{CallSnapshot, CallState, RemoteParty};

const AGENT_A: PersonId = PersonId(Uuid::from_u128(0xa));
const AGENT_B: PersonId = PersonId(Uuid::from_u128(0xb));
const T0: i64 = 1_795_000_000_000;

/// One webhook of a scenario.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "test data, built once per scenario"
)]
enum Delivery {
    Call(PersonId, CallSnapshot),
    AgentState(PersonId, WebexAgentState, UtcMillis),
}

fn session(n: u128) -> CallSessionId {
    ids::normalize_call_session_id(&Uuid::from_u128(n).simple().to_string()).expect("session")
}

/// Builds the successive snapshots of one call.
struct Call {
    agent: PersonId,
    id: CallId,
    session: CallSessionId,
    created: i64,
    answered: Option<i64>,
}

impl Call {
    fn new(agent: PersonId, n: u32, session_n: u128, created_s: i64) -> Call {
        Call {
            agent,
            id: ids::call_id(&format!("callhalf-{n}:0")).expect("call id"),
            session: session(session_n),
            created: T0 + created_s * 1000,
            answered: None,
        }
    }

    fn snapshot(&mut self, state: CallState, at_s: i64) -> Delivery {
        let at = T0 + at_s * 1000;
        if state == CallState::Connected && self.answered.is_none() {
            self.answered = Some(at);
        }
        let disconnected = (state == CallState::Disconnected).then_some(UtcMillis(at));
        Delivery::Call(
            self.agent,
            CallSnapshot {
                call_id: self.id.clone(),
                call_session_id: Some(self.session.clone()),
                state,
                event_type: String::new(),
                personality: Some("terminator".into()),
                at: UtcMillis(at),
                created: Some(UtcMillis(self.created)),
                answered: self.answered.map(UtcMillis),
                disconnected,
                completed_elsewhere: false,
                remote: RemoteParty::default(),
            },
        )
    }
}

use CallState::{Alerting, Connected, Connecting, Disconnected, Held};

fn scenarios() -> Vec<(&'static str, Vec<Delivery>)> {
    let mut out = Vec::new();

    let mut c = Call::new(AGENT_A, 1, 1, 0);
    out.push((
        "answered inbound",
        vec![
            c.snapshot(Alerting, 0),
            c.snapshot(Connected, 5),
            c.snapshot(Disconnected, 60),
        ],
    ));

    let mut c = Call::new(AGENT_A, 2, 2, 0);
    let mut gone = c.snapshot(Disconnected, 12);
    if let Delivery::Call(_, snapshot) = &mut gone {
        snapshot.completed_elsewhere = true;
    }
    out.push((
        "queue call answered elsewhere",
        vec![c.snapshot(Alerting, 0), gone],
    ));

    let mut c = Call::new(AGENT_A, 3, 3, 0);
    out.push((
        "agent rejects",
        vec![c.snapshot(Alerting, 0), c.snapshot(Disconnected, 3)],
    ));

    let mut c = Call::new(AGENT_A, 4, 4, 0);
    out.push((
        "hold and resume",
        vec![
            c.snapshot(Alerting, 0),
            c.snapshot(Connected, 4),
            c.snapshot(Held, 30),
            c.snapshot(Connected, 50),
            c.snapshot(Disconnected, 90),
        ],
    ));

    let mut customer = Call::new(AGENT_A, 5, 5, 0);
    let mut consult = Call::new(AGENT_A, 6, 6, 40);
    let mut at_b = Call::new(AGENT_B, 7, 6, 40);
    let mut transferred = Call::new(AGENT_B, 8, 5, 70);
    out.push((
        "consult and transfer",
        vec![
            customer.snapshot(Alerting, 0),
            customer.snapshot(Connected, 3),
            customer.snapshot(Held, 35),
            consult.snapshot(Connecting, 40),
            at_b.snapshot(Alerting, 40),
            consult.snapshot(Connected, 45),
            at_b.snapshot(Connected, 45),
            consult.snapshot(Disconnected, 70),
            at_b.snapshot(Disconnected, 70),
            customer.snapshot(Disconnected, 70),
            transferred.snapshot(Alerting, 70),
            transferred.snapshot(Connected, 70),
            transferred.snapshot(Disconnected, 200),
        ],
    ));

    let mut first = Call::new(AGENT_A, 9, 9, 0);
    let mut second = Call::new(AGENT_A, 10, 10, 20);
    out.push((
        "conference",
        vec![
            first.snapshot(Alerting, 0),
            first.snapshot(Connected, 2),
            first.snapshot(Held, 18),
            second.snapshot(Connecting, 20),
            second.snapshot(Connected, 25),
            first.snapshot(Connected, 30),
            second.snapshot(Disconnected, 100),
            first.snapshot(Disconnected, 120),
        ],
    ));

    let mut first = Call::new(AGENT_A, 11, 11, 0);
    let mut waiting = Call::new(AGENT_A, 12, 12, 30);
    out.push((
        "call waiting, second call not taken",
        vec![
            first.snapshot(Alerting, 0),
            first.snapshot(Connected, 2),
            waiting.snapshot(Alerting, 30),
            waiting.snapshot(Disconnected, 45),
            first.snapshot(Disconnected, 80),
        ],
    ));

    let mut outbound = Call::new(AGENT_A, 13, 13, 0);
    out.push((
        "outbound, no answer",
        vec![
            outbound.snapshot(Connecting, 0),
            outbound.snapshot(Disconnected, 25),
        ],
    ));

    let mut c = Call::new(AGENT_A, 14, 14, 0);
    out.push((
        "answered, agent-state source says available",
        vec![
            c.snapshot(Alerting, 0),
            c.snapshot(Connected, 2),
            c.snapshot(Disconnected, 50),
            Delivery::AgentState(AGENT_A, WebexAgentState::WrapUp, UtcMillis(T0 + 50_000)),
            Delivery::AgentState(AGENT_A, WebexAgentState::Available, UtcMillis(T0 + 65_000)),
        ],
    ));

    let mut c = Call::new(AGENT_A, 15, 15, 0);
    out.push((
        "offered, RONA",
        vec![
            c.snapshot(Alerting, 0),
            Delivery::AgentState(AGENT_A, WebexAgentState::Rona, UtcMillis(T0 + 15_000)),
        ],
    ));
    out
}

/// A contact's outcome: whose, which calls, kept or discarded.
type Outcome = (PersonId, Vec<CallId>, &'static str);

/// Feeds deliveries through one tracker + machine per agent, then lets the timers run.
fn run(
    deliveries: &[Delivery],
    policy: &Policy,
) -> (BTreeSet<Outcome>, Vec<(PersonId, AgentState)>) {
    let mut agents: BTreeMap<PersonId, (CallTracker, AgentState)> = BTreeMap::new();
    let mut outcomes = BTreeSet::new();
    let mut latest = T0;
    let mut feed = |agent: PersonId,
                    events: Vec<CallEvent>,
                    agents: &mut BTreeMap<_, (CallTracker, AgentState)>| {
        let entry = agents.entry(agent).or_default();
        for event in events {
            let (state, actions) = next(std::mem::take(&mut entry.1), &Input::Event(event), policy);
            entry.1 = state;
            collect(agent, &actions, &mut outcomes);
        }
    };
    for delivery in deliveries {
        match delivery {
            Delivery::Call(agent, snapshot) => {
                latest = latest.max(snapshot.at.0);
                let events = agents
                    .entry(*agent)
                    .or_default()
                    .0
                    .observe_call(*agent, snapshot)
                    .events;
                feed(*agent, events, &mut agents);
            }
            Delivery::AgentState(agent, state, at) => {
                latest = latest.max(at.0);
                let events = agents
                    .entry(*agent)
                    .or_default()
                    .0
                    .observe_agent_state(*agent, *state, *at);
                feed(*agent, events, &mut agents);
            }
        }
    }
    // Time passes: past every wrap-up timer, and past the cap.
    for tick in [latest + 10 * 60 * 1000, latest + policy.max_contact_ms + 1] {
        for (agent, (_, state)) in agents.iter_mut() {
            let (next_state, actions) =
                next(std::mem::take(state), &Input::Tick(UtcMillis(tick)), policy);
            *state = next_state;
            collect(*agent, &actions, &mut outcomes);
        }
    }
    (
        outcomes,
        agents
            .into_iter()
            .map(|(agent, (_, state))| (agent, state))
            .collect(),
    )
}

fn collect(agent: PersonId, actions: &[Action], outcomes: &mut BTreeSet<Outcome>) {
    for action in actions {
        match action {
            Action::StopRecording { calls, .. } => {
                outcomes.insert((agent, calls.clone(), "kept"));
            }
            Action::DiscardRecording { calls, .. } => {
                outcomes.insert((agent, calls.clone(), "discarded"));
            }
            _ => {}
        }
    }
}

fn calls(ns: &[u32]) -> Vec<CallId> {
    let mut ids: Vec<CallId> = ns
        .iter()
        .map(|n| ids::call_id(&format!("callhalf-{n}:0")).expect("id"))
        .collect();
    ids.sort();
    ids
}

#[test]
fn in_order_outcomes_follow_the_seed() {
    let policy = Policy::default();
    let expected: Vec<(&str, BTreeSet<Outcome>)> = vec![
        ("answered inbound", [(AGENT_A, calls(&[1]), "kept")].into()),
        (
            "queue call answered elsewhere",
            [(AGENT_A, calls(&[2]), "discarded")].into(),
        ),
        (
            "agent rejects",
            [(AGENT_A, calls(&[3]), "discarded")].into(),
        ),
        ("hold and resume", [(AGENT_A, calls(&[4]), "kept")].into()),
        (
            "consult and transfer",
            [
                (AGENT_A, calls(&[5, 6]), "kept"),
                (AGENT_B, calls(&[7, 8]), "kept"),
            ]
            .into(),
        ),
        ("conference", [(AGENT_A, calls(&[9, 10]), "kept")].into()),
        (
            "call waiting, second call not taken",
            [(AGENT_A, calls(&[11, 12]), "kept")].into(),
        ),
        (
            "outbound, no answer",
            [(AGENT_A, calls(&[13]), "discarded")].into(),
        ),
        (
            "answered, agent-state source says available",
            [(AGENT_A, calls(&[14]), "kept")].into(),
        ),
        (
            "offered, RONA",
            [(AGENT_A, calls(&[15]), "discarded")].into(),
        ),
    ];
    let scenarios = scenarios();
    assert_eq!(scenarios.len(), expected.len());
    for ((name, deliveries), (expected_name, outcome)) in scenarios.iter().zip(expected) {
        assert_eq!(*name, expected_name);
        let (outcomes, states) = run(deliveries, &policy);
        assert_eq!(outcomes, outcome, "{name}");
        assert!(
            states.iter().all(|(_, s)| s.contact.is_none()),
            "{name}: contact left open"
        );
    }
}

#[test]
fn markers_follow_the_seed_table() {
    let (_, deliveries) = scenarios()
        .into_iter()
        .find(|(n, _)| *n == "consult and transfer")
        .expect("scenario");
    let mut tracker = CallTracker::default();
    let mut state = AgentState::default();
    let mut kinds = Vec::new();
    for delivery in &deliveries {
        if let Delivery::Call(agent, snapshot) = delivery
            && *agent == AGENT_A
        {
            for event in tracker.observe_call(*agent, snapshot).events {
                let (s, actions) = next(state, &Input::Event(event), &Policy::default());
                state = s;
                kinds.extend(actions.iter().map(|a| match a {
                    Action::Marker { event, .. } => event.label().to_owned(),
                    Action::StartRecording { .. } => "start".to_owned(),
                    Action::KeepRecording { .. } => "keep".to_owned(),
                    other => format!("{other:?}"),
                }));
            }
        }
    }
    assert_eq!(
        kinds,
        [
            "start",
            "Ringing",
            "Connected",
            "keep",
            "On Hold",
            "Consulting",
            "Connected",
            "Consult Done",
            "Wrap Up"
        ]
    );
    let contact = state.contact.expect("open until Agent Available");
    assert_eq!(contact.wrap_up_due, Some(UtcMillis(T0 + 70_000 + 30_000)));
}

#[test]
fn an_agent_state_source_closes_without_the_timer_and_the_cap_closes_the_rest() {
    let policy = Policy {
        wrap_up_ms: None,
        ..Policy::default()
    };
    let mut c = Call::new(AGENT_A, 20, 20, 0);
    let deliveries = vec![
        c.snapshot(Alerting, 0),
        c.snapshot(Connected, 1),
        c.snapshot(Disconnected, 9),
    ];
    let mut tracker = CallTracker::default();
    let mut state = AgentState::default();
    for delivery in &deliveries {
        let Delivery::Call(agent, snapshot) = delivery else {
            continue;
        };
        for event in tracker.observe_call(*agent, snapshot).events {
            state = next(state, &Input::Event(event), &policy).0;
        }
    }
    // No timer: the contact waits for Agent Available.
    let (state, actions) = next(state, &Input::Tick(UtcMillis(T0 + 3600 * 1000)), &policy);
    assert!(actions.is_empty());
    assert_eq!(
        next_deadline(&state, &policy),
        Some(UtcMillis(T0 + policy.max_contact_ms))
    );
    let (state, actions) = next(
        state,
        &Input::Tick(UtcMillis(T0 + policy.max_contact_ms)),
        &policy,
    );
    assert!(state.contact.is_none());
    assert!(matches!(
        actions[..],
        [Action::StopRecording {
            reason: CloseReason::ContactCap,
            ..
        }]
    ));
}

#[test]
fn duplicates_are_no_ops_and_late_snapshots_do_not_rewind() {
    let mut c = Call::new(AGENT_A, 30, 30, 0);
    let ringing = c.snapshot(Alerting, 0);
    let connected = c.snapshot(Connected, 2);
    let held = c.snapshot(Held, 10);
    let Delivery::Call(_, ringing) = ringing else {
        unreachable!()
    };
    let Delivery::Call(_, connected) = connected else {
        unreachable!()
    };
    let Delivery::Call(_, held) = held else {
        unreachable!()
    };
    let mut tracker = CallTracker::default();
    assert_eq!(tracker.observe_call(AGENT_A, &ringing).events.len(), 1);
    let again = tracker.observe_call(AGENT_A, &ringing);
    assert!(again.duplicate && again.events.is_empty());
    assert_eq!(
        tracker.observe_call(AGENT_A, &held).events.len(),
        2,
        "Connected (from answered) + On Hold"
    );
    let late = tracker.observe_call(AGENT_A, &connected);
    assert!(late.late, "an older snapshot is late");
    assert!(
        late.events.is_empty(),
        "and does not turn the held call into Hold Done"
    );
}

fn shuffled_with_duplicates() -> impl Strategy<Value = (usize, Vec<usize>)> {
    (0..scenarios().len()).prop_flat_map(|index| {
        let len = scenarios()[index].1.len();
        let picks = proptest::collection::vec(0..len, 0..len * 2);
        (
            Just(index),
            Just((0..len).collect::<Vec<_>>()).prop_shuffle(),
            picks,
        )
            .prop_map(|(index, mut order, duplicates)| {
                order.extend(duplicates);
                (index, order)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_order_and_duplication_gives_the_same_contacts((index, order) in shuffled_with_duplicates()) {
        let policy = Policy::default();
        let (name, deliveries) = &scenarios()[index];
        let (expected, _) = run(deliveries, &policy);
        let reordered: Vec<Delivery> = order.iter().map(|i| deliveries[*i].clone()).collect();
        let (outcomes, states) = run(&reordered, &policy);
        prop_assert_eq!(outcomes, expected, "{}", name);
        prop_assert!(states.iter().all(|(_, s)| s.contact.is_none()), "{}: contact left open", name);
    }

    #[test]
    fn no_subset_of_deliveries_leaves_a_contact_open(
        index in 0..10usize,
        keep in proptest::collection::vec(any::<bool>(), 16),
        source in any::<bool>(),
    ) {
        let policy = Policy { wrap_up_ms: if source { None } else { Some(30_000) }, ..Policy::default() };
        let (_, deliveries) = &scenarios()[index];
        let subset: Vec<Delivery> =
            deliveries.iter().zip(keep.iter().cycle()).filter(|(_, k)| **k).map(|(d, _)| d.clone()).collect();
        let (_, states) = run(&subset, &policy);
        prop_assert!(states.iter().all(|(_, s)| s.contact.is_none()));
    }
}
