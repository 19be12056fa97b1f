//! Registered webhooks and which events they receive.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::clock;
use crate::delivery::Job;
use crate::model::Person;

/// A registered webhook.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    /// Hydra `WEBHOOK` id.
    pub id: String,
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    pub filter: Option<String>,
    pub secret: Option<String>,
    /// `active` or `inactive`.
    pub status: String,
    pub created: Timestamp,
    pub owned_by: Option<String>,
    /// Who registered it (hydra person id).
    pub created_by: Person,
}

impl Webhook {
    /// The REST form: the keys of the published `POST /webhooks` answer (`filter`, `secret` and
    /// `ownedBy` only when set).
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "id": self.id,
            "name": self.name,
            "targetUrl": self.target_url,
            "resource": self.resource,
            "event": self.event,
            "status": self.status,
            "created": clock::format_offset(self.created, jiff::tz::Offset::UTC),
        });
        if let Some(filter) = &self.filter {
            value["filter"] = json!(filter);
        }
        if let Some(secret) = &self.secret {
            value["secret"] = json!(secret);
        }
        if let Some(owned_by) = &self.owned_by {
            value["ownedBy"] = json!(owned_by);
        }
        value
    }

    /// Whether an event of `resource`/`event` whose actor is `actor` goes to this webhook.
    ///
    /// `event: all` matches every event. A `personId=<hydra>` filter restricts to that person (other
    /// filters are not interpreted). Org-wide webhooks (`ownedBy: org`) and filtered ones see every
    /// person's events; others only their creator's (our reading of Webex's ownership rules).
    pub fn matches(&self, resource: &str, event: &str, actor: &Person) -> bool {
        if self.status != "active" || self.resource != resource {
            return false;
        }
        if self.event != "all" && self.event != event {
            return false;
        }
        let person_filter = self
            .filter
            .as_deref()
            .and_then(|f| f.split('&').find_map(|c| c.strip_prefix("personId=")));
        match person_filter {
            Some(person) => person == actor.hydra_id() || person == actor.id.to_string(),
            None => self.owned_by.as_deref() == Some("org") || self.created_by.id == actor.id,
        }
    }
}

/// The webhooks, in creation order, and the queue of each one's delivery worker.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    pub list: Vec<Webhook>,
    pub queues: HashMap<String, mpsc::UnboundedSender<Job>>,
}

impl Hooks {
    pub fn get(&self, id: &str) -> Option<&Webhook> {
        self.list.iter().find(|w| w.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Webhook> {
        self.list.iter_mut().find(|w| w.id == id)
    }

    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.list.len();
        self.list.retain(|w| w.id != id);
        self.queues.remove(id);
        self.list.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn person(n: u128) -> Person {
        Person {
            id: Uuid::from_u128(n),
            email: format!("p{n}@example.com"),
            name: format!("P{n}"),
            extension: format!("{}", 1000 + n),
        }
    }

    fn hook(event: &str, filter: Option<String>, owned_by: Option<&str>) -> Webhook {
        Webhook {
            id: "w".into(),
            name: "n".into(),
            target_url: "https://x".into(),
            resource: "telephony_calls".into(),
            event: event.into(),
            filter,
            secret: None,
            status: "active".into(),
            created: Timestamp::UNIX_EPOCH,
            owned_by: owned_by.map(String::from),
            created_by: person(0),
        }
    }

    #[test]
    fn matching_follows_event_filter_and_ownership() {
        let (a, b) = (person(1), person(2));
        assert!(hook("all", None, Some("org")).matches("telephony_calls", "updated", &a));
        assert!(!hook("created", None, Some("org")).matches("telephony_calls", "updated", &a));
        assert!(!hook("all", None, Some("org")).matches("convergedRecordings", "created", &a));
        assert!(!hook("all", None, None).matches("telephony_calls", "created", &a));
        let filtered = hook("all", Some(format!("personId={}", a.hydra_id())), None);
        assert!(filtered.matches("telephony_calls", "created", &a));
        assert!(!filtered.matches("telephony_calls", "created", &b));
        let mut inactive = hook("all", None, Some("org"));
        inactive.status = "inactive".into();
        assert!(!inactive.matches("telephony_calls", "created", &a));
    }
}
