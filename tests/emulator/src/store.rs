//! Recordings, download tickets, compliance events and people, with the indexes the list routes
//! need: one ordered set per status keyed by `(timeRecorded, id)`, so a page is a bounded range
//! walk whatever the total.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde_json::Value;
use uuid::Uuid;

use crate::model::{OwnerType, Person, Recording, Status};

/// A position in the `(timeRecorded ms, id)` order: pages continue strictly below it.
pub(crate) type Cursor = (i64, String);

/// A list request, validated.
#[derive(Debug, Clone)]
pub(crate) struct ListQuery {
    /// Inclusive.
    pub from: Timestamp,
    /// Exclusive.
    pub to: Timestamp,
    pub status: Status,
    pub max: usize,
    pub cursor: Option<Cursor>,
    pub service_type: Option<String>,
    pub owner_id: Option<String>,
    pub owner_email: Option<String>,
    pub owner_type: Option<String>,
    pub format: Option<String>,
    /// `GET /convergedRecordings`: only this owner's recordings.
    pub only_owner: Option<Uuid>,
    /// Recordings whose `createTime` is later are not published yet.
    pub now: Timestamp,
}

impl ListQuery {
    fn matches(&self, recording: &Recording) -> bool {
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w.eq_ignore_ascii_case(have))
        };
        recording.create_time <= self.now
            && eq(&self.service_type, "calling")
            && eq(&self.format, "MP3")
            && eq(&self.owner_id, &recording.owner.id.to_string())
            && eq(&self.owner_email, &recording.owner.email)
            && eq(&self.owner_type, recording.owner_type.as_str())
            && self.only_owner.is_none_or(|o| o == recording.owner.id)
    }
}

/// A download ticket minted by a details request.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub recording_id: String,
    pub expires: Timestamp,
}

/// A compliance event (`GET /events`).
#[derive(Debug, Clone)]
pub(crate) struct ComplianceEvent {
    pub id: String,
    pub created: Timestamp,
    pub actor_id: String,
    pub data: Value,
}

/// Everything the routes read, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Store {
    recordings: HashMap<String, Recording>,
    index: [BTreeSet<Cursor>; 3],
    tickets: HashMap<String, Ticket>,
    events: BTreeMap<(i64, u64), ComplianceEvent>,
    event_seq: u64,
    pub people: Vec<Person>,
}

impl Store {
    pub fn insert(&mut self, recording: Recording) {
        if let Some(old) = self.recordings.remove(&recording.id) {
            self.index[old.status.index()].remove(&(old.time_recorded.as_millisecond(), old.id));
        }
        let key = (
            recording.time_recorded.as_millisecond(),
            recording.id.clone(),
        );
        self.index[recording.status.index()].insert(key);
        self.recordings.insert(recording.id.clone(), recording);
    }

    pub fn get(&self, id: &str) -> Option<&Recording> {
        self.recordings.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Recording> {
        self.recordings.values()
    }

    /// Changes a recording's status; false when unknown.
    pub fn set_status(&mut self, id: &str, status: Status) -> bool {
        let Some(recording) = self.recordings.get_mut(id) else {
            return false;
        };
        let key = (
            recording.time_recorded.as_millisecond(),
            recording.id.clone(),
        );
        self.index[recording.status.index()].remove(&key);
        recording.status = status;
        self.index[status.index()].insert(key);
        true
    }

    /// One page, newest first: at most `max` recordings strictly below the cursor.
    pub fn list(&self, query: &ListQuery) -> Vec<&Recording> {
        let lower = (query.from.as_millisecond(), String::new());
        let mut upper = (query.to.as_millisecond(), String::new());
        if let Some(cursor) = &query.cursor
            && *cursor < upper
        {
            upper = cursor.clone();
        }
        if lower >= upper {
            return Vec::new();
        }
        self.index[query.status.index()]
            .range(lower..upper)
            .rev()
            .filter_map(|(_, id)| self.recordings.get(id))
            .filter(|r| query.matches(r))
            .take(query.max)
            .collect()
    }

    pub fn add_ticket(
        &mut self,
        ticket: String,
        recording_id: String,
        expires: Timestamp,
        now: Timestamp,
    ) {
        if self.tickets.len() > 10_000 {
            self.tickets.retain(|_, t| t.expires > now);
        }
        self.tickets.insert(
            ticket,
            Ticket {
                recording_id,
                expires,
            },
        );
    }

    pub fn ticket(&self, ticket: &str) -> Option<&Ticket> {
        self.tickets.get(ticket)
    }

    /// Makes every link minted so far expired.
    pub fn expire_tickets(&mut self) {
        self.tickets.clear();
    }

    pub fn add_event(&mut self, event: ComplianceEvent) {
        self.event_seq += 1;
        self.events
            .insert((event.created.as_millisecond(), self.event_seq), event);
    }

    /// Compliance events created in `[from, to)` and not after `now`, newest first, below `cursor`.
    pub fn events(
        &self,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
        cursor: Option<(i64, u64)>,
        max: usize,
    ) -> Vec<((i64, u64), &ComplianceEvent)> {
        let lower = (from.as_millisecond(), 0);
        let mut upper = (
            to.min(now + jiff::SignedDuration::from_millis(1))
                .as_millisecond(),
            0,
        );
        if let Some(cursor) = cursor {
            upper = upper.min(cursor);
        }
        if lower >= upper {
            return Vec::new();
        }
        self.events
            .range(lower..upper)
            .rev()
            .take(max)
            .map(|(k, e)| (*k, e))
            .collect()
    }

    pub fn person_by_email(&self, email: &str) -> Option<&Person> {
        self.people
            .iter()
            .find(|p| p.email.eq_ignore_ascii_case(email))
    }

    pub fn person(&self, id: Uuid) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }
}

/// Owner types by their list form.
pub(crate) fn owner_type_valid(text: &str) -> bool {
    [
        OwnerType::User,
        OwnerType::Place,
        OwnerType::VirtualLine,
        OwnerType::CallQueue,
    ]
    .iter()
    .any(|t| t.as_str() == text)
}
