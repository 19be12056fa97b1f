//! `telephony_calls` webhook data, shaped like `CallScript::envelope` in `tests/src/webex.rs`.

use capture_shared::ids::encode_hydra;
use jiff::Timestamp;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock;
use crate::model::{CLUSTER, Party, Person};

/// One agent's call half as successive events.
#[derive(Debug, Clone)]
pub(crate) struct Leg {
    pub person: Person,
    pub call_number: u64,
    pub session: Uuid,
    /// `originator` or `terminator`.
    pub personality: &'static str,
    pub remote: Party,
    pub created: Timestamp,
    pub answered: Option<Timestamp>,
    /// `recordingState` from now on (`started`, `paused`, `stopped`).
    pub recording_state: Option<&'static str>,
    /// `redirections[].reason` while alerting (`callQueue` for a queue call).
    pub redirection: Option<&'static str>,
    started: bool,
}

/// One delivery to make: whose call, which event, the data.
#[derive(Debug, Clone)]
pub(crate) struct TelephonyEvent {
    pub at: Timestamp,
    pub person: Person,
    pub event: &'static str,
    pub data: Value,
}

impl Leg {
    pub fn new(
        person: &Person,
        call_number: u64,
        session: Uuid,
        personality: &'static str,
        remote: Party,
        created: Timestamp,
    ) -> Leg {
        Leg {
            person: person.clone(),
            call_number,
            session,
            personality,
            remote,
            created,
            answered: None,
            recording_state: None,
            redirection: None,
            started: false,
        }
    }

    /// The raw call id.
    pub fn call_id(&self) -> String {
        format!("callhalf-{}:0", self.call_number)
    }

    /// The leg entering `state` at `at`. The first event of a leg is `created`; `connected` sets
    /// `answered` the first time; `disconnected` is `deleted`.
    ///
    /// Uncertain (API.md): `eventType` values beyond received/originated/answered/updated/
    /// disconnected; hold and resume are sent as `updated` with `state: held` / `connected`.
    pub fn event(&mut self, state: &'static str, at: Timestamp) -> TelephonyEvent {
        self.event_with(state, at, false)
    }

    /// The leg ending without having been answered because someone else took the call.
    pub fn completed_elsewhere(&mut self, at: Timestamp) -> TelephonyEvent {
        self.event_with("disconnected", at, true)
    }

    fn event_with(
        &mut self,
        state: &'static str,
        at: Timestamp,
        elsewhere: bool,
    ) -> TelephonyEvent {
        let first_connect = state == "connected" && self.answered.is_none();
        if first_connect {
            self.answered = Some(at);
        }
        let first = !self.started;
        self.started = true;
        let (event, event_type) = match state {
            "disconnected" => ("deleted", "disconnected"),
            "alerting" if first => ("created", "received"),
            "connecting" => ("created", "originated"),
            "connected" if first_connect => (if first { "created" } else { "updated" }, "answered"),
            _ => (if first { "created" } else { "updated" }, "updated"),
        };
        let remote = &self.remote;
        let mut remote_party = json!({
            "name": remote.name,
            "number": remote.number,
            "privacyEnabled": false,
            "callType": if remote.person.is_some() { "location" } else { "external" },
        });
        if let Some(person) = &remote.person {
            remote_party["personId"] = json!(person.hydra_id());
        }
        let mut data = json!({
            "eventType": event_type,
            "eventTimestamp": clock::format_ms(at),
            "callId": encode_hydra(CLUSTER, "CALL", &self.call_id()),
            "callSessionId": encode_hydra(CLUSTER, "CALL_SESSION", &self.session.to_string()),
            "personality": self.personality,
            "state": state,
            "remoteParty": remote_party,
            "created": clock::format_ms(self.created),
        });
        if let Some(answered) = self.answered {
            data["answered"] = json!(clock::format_ms(answered));
        }
        if state == "disconnected" {
            data["disconnected"] = json!(clock::format_ms(at));
        }
        if elsewhere {
            data["completedElsewhere"] = json!(true);
        }
        if let (Some(recording), Some(_)) = (self.recording_state, self.answered) {
            data["recordingState"] = json!(recording);
        }
        if let (Some(reason), "alerting") = (self.redirection, state) {
            data["redirections"] = json!([{
                "reason": reason,
                "redirectingParty": { "name": "Support queue", "number": "5000", "privacyEnabled": false, "callType": "location" },
            }]);
        }
        TelephonyEvent {
            at,
            person: self.person.clone(),
            event,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Person {
        Person {
            id: Uuid::nil(),
            email: "a@example.com".into(),
            name: "A".into(),
            extension: "1001".into(),
        }
    }

    #[test]
    fn answered_call_sequence_matches_the_observed_one() {
        let t0 = clock::now();
        let customer = Party {
            actor_type: "EXTERNAL",
            actor_id: Uuid::nil(),
            number: "+14085550100".into(),
            name: "Customer".into(),
            person: None,
        };
        let mut leg = Leg::new(&person(), 5, Uuid::nil(), "terminator", customer, t0);
        let kinds: Vec<(&str, String, String)> = [
            leg.event("alerting", t0),
            leg.event("alerting", t0),
            leg.event("connected", t0),
            leg.event("disconnected", t0),
        ]
        .into_iter()
        .map(|e| {
            (
                e.event,
                e.data["eventType"].as_str().unwrap_or("").to_owned(),
                e.data["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
        let want = [
            ("created", "received", "alerting"),
            ("updated", "updated", "alerting"),
            ("updated", "answered", "connected"),
            ("deleted", "disconnected", "disconnected"),
        ];
        for (got, want) in kinds.iter().zip(want) {
            assert_eq!((got.0, got.1.as_str(), got.2.as_str()), want);
        }
    }
}
