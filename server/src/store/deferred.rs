//! The writes a transaction holds until it commits, so that a batch of deliveries costs a few
//! statements rather than several per delivery: each statement is a round trip to the
//! connection's thread, and at a thousand deliveries a second those round trips, not SQLite's
//! work, were most of the cost. Reads the transaction makes of what it holds back are answered
//! from here (a person's machine saved earlier in the batch), so nothing reads a stale row.

use std::collections::HashMap;

use capture_shared::event::CallEvent;
use capture_shared::ids::{AgentId, CallId, CallSessionId, ContactId, PersonId};
use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::StoreError;

/// Rows per statement at most (SQLite allows 32,766 bound values; the widest row has 8).
const ROWS: usize = 500;

/// A machine state saved in this transaction.
#[derive(Debug, Clone)]
struct Machine {
    state: String,
    next_deadline_ms: Option<i64>,
    updated_at_ms: i64,
}

/// A call event to insert.
#[derive(Debug)]
struct Event {
    delivery_seq: Option<i64>,
    person: String,
    kind: &'static str,
    at_ms: i64,
    call_id: Option<String>,
    call_session_id: Option<String>,
    contact: Option<String>,
    note: Option<String>,
}

/// Writes held back, and what the transaction read that they may change.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    machines: HashMap<PersonId, Machine>,
    /// Machine states as stored, read ahead for a batch (`None`: the person has none).
    loaded: HashMap<PersonId, Option<String>>,
    /// Persons' agents read in this transaction.
    agents: HashMap<PersonId, Option<AgentId>>,
    events: Vec<Event>,
    calls: Vec<(String, String, Option<String>)>,
    /// (seq, outcome, processed at).
    processed: Vec<(i64, String, i64)>,
}

impl Deferred {
    /// The machine state saved in this transaction, else as read ahead (outer `None`: neither).
    pub(super) fn machine(&self, person: PersonId) -> Option<Option<String>> {
        match self.machines.get(&person) {
            Some(saved) => Some(Some(saved.state.clone())),
            None => self.loaded.get(&person).cloned(),
        }
    }

    /// Remembers a machine state read ahead.
    pub(super) fn loaded_machine(&mut self, person: PersonId, state: Option<String>) {
        self.loaded.insert(person, state);
    }

    pub(super) fn save_machine(
        &mut self,
        person: PersonId,
        state: &str,
        next_deadline_ms: Option<i64>,
        now_ms: i64,
    ) {
        self.machines.insert(
            person,
            Machine {
                state: state.to_owned(),
                next_deadline_ms,
                updated_at_ms: now_ms,
            },
        );
    }

    /// The agent of `person` as read earlier in this transaction (outer `None`: not read).
    pub(super) fn agent(&self, person: PersonId) -> Option<Option<AgentId>> {
        self.agents.get(&person).copied()
    }

    pub(super) fn remember_agent(&mut self, person: PersonId, agent: Option<AgentId>) {
        self.agents.insert(person, agent);
    }

    /// Forgets the agents read (an agent's person changed).
    pub(super) fn forget_agents(&mut self) {
        self.agents.clear();
    }

    pub(super) fn insert_event(
        &mut self,
        delivery_seq: Option<i64>,
        event: &CallEvent,
        contact: Option<ContactId>,
        note: Option<&str>,
    ) {
        self.events.push(Event {
            delivery_seq,
            person: event.agent.to_string(),
            kind: event.kind.label(),
            at_ms: event.at.0,
            call_id: event.call_id.as_ref().map(|c| c.as_str().to_owned()),
            call_session_id: event
                .call_session_id
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            contact: contact.map(|c| c.to_string()),
            note: note.map(str::to_owned),
        });
    }

    pub(super) fn add_contact_call(
        &mut self,
        contact: ContactId,
        call: &CallId,
        session: Option<&CallSessionId>,
    ) {
        self.calls.push((
            contact.to_string(),
            call.as_str().to_owned(),
            session.map(|s| s.as_str().to_owned()),
        ));
    }

    pub(super) fn mark_processed(&mut self, seq: i64, outcome: &str, now_ms: i64) {
        self.processed.push((seq, outcome.to_owned(), now_ms));
    }

    /// Writes everything held, in a few statements.
    pub(super) async fn flush(
        &mut self,
        tx: &mut Transaction<'static, Sqlite>,
    ) -> Result<(), StoreError> {
        for chunk in self.events.chunks(ROWS) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO call_events (delivery_seq, person_id, kind, at_ms, call_id, call_session_id, contact_id, note) ",
            );
            query.push_values(chunk, |mut row, e| {
                row.push_bind(e.delivery_seq)
                    .push_bind(&e.person)
                    .push_bind(e.kind)
                    .push_bind(e.at_ms)
                    .push_bind(&e.call_id)
                    .push_bind(&e.call_session_id)
                    .push_bind(&e.contact)
                    .push_bind(&e.note);
            });
            query.build().persistent(false).execute(&mut **tx).await?;
        }
        self.events.clear();
        for chunk in self.calls.chunks(ROWS) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO contact_calls (contact_id, call_id, call_session_id) ",
            );
            query.push_values(chunk, |mut row, (contact, call, session)| {
                row.push_bind(contact).push_bind(call).push_bind(session);
            });
            query.push(
                " ON CONFLICT (contact_id, call_id) DO UPDATE
                   SET call_session_id = COALESCE(contact_calls.call_session_id, excluded.call_session_id)",
            );
            query.build().persistent(false).execute(&mut **tx).await?;
        }
        self.calls.clear();
        let machines: Vec<(String, Machine)> = self
            .machines
            .drain()
            .map(|(person, m)| (person.to_string(), m))
            .collect();
        for chunk in machines.chunks(ROWS) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO agent_machines (person_id, state, next_deadline_ms, updated_at_ms) ",
            );
            query.push_values(chunk, |mut row, (person, m)| {
                row.push_bind(person)
                    .push_bind(&m.state)
                    .push_bind(m.next_deadline_ms)
                    .push_bind(m.updated_at_ms);
            });
            query.push(
                " ON CONFLICT (person_id) DO UPDATE SET state = excluded.state,
                   next_deadline_ms = excluded.next_deadline_ms, updated_at_ms = excluded.updated_at_ms",
            );
            query.build().persistent(false).execute(&mut **tx).await?;
        }
        for chunk in self.processed.chunks(ROWS) {
            // One UPDATE from a VALUES list: (seq, outcome, processed at) per delivery.
            let mut query = QueryBuilder::<Sqlite>::new("WITH done (seq, outcome, at) AS (");
            query.push_values(chunk, |mut row, (seq, outcome, at)| {
                row.push_bind(seq).push_bind(outcome).push_bind(at);
            });
            query.push(
                ") UPDATE webhook_deliveries SET
                   processed_at_ms = (SELECT at FROM done WHERE done.seq = webhook_deliveries.seq),
                   outcome = (SELECT outcome FROM done WHERE done.seq = webhook_deliveries.seq)
                 WHERE seq IN (SELECT seq FROM done)",
            );
            query.build().persistent(false).execute(&mut **tx).await?;
        }
        self.processed.clear();
        Ok(())
    }
}
