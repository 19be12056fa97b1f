//! `capture-server webhooks replay FILE...`: a dry run of captured Webex webhook bodies through
//! the normaliser and the state machine, printing one JSON line per event and per action in the
//! order the live service would take them. Nothing is stored or sent.

use std::collections::BTreeMap;

use capture_shared::ids::PersonId;
use capture_shared::time::UtcMillis;
use serde_json::{Value, json};

use super::decode::{self, AgentRecord, Decoded};
use super::machine::{self, Action, Policy};
use crate::webex::time::format_timestamp;
use crate::webex::webhook::Envelope;

/// Splits a file's JSON into envelopes: one envelope, or an array of them.
pub fn envelopes(json: Value) -> Vec<Value> {
    match json {
        Value::Array(items) => items,
        other => vec![other],
    }
}

/// Replays `deliveries` (source label, envelope JSON) and returns the output lines. `agents` maps
/// Webex persons to enrolled agent ids.
pub fn replay(
    deliveries: &[(String, Value)],
    agents: &BTreeMap<PersonId, String>,
    policy: &Policy,
) -> Vec<Value> {
    let mut records: BTreeMap<PersonId, AgentRecord> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut latest = UtcMillis(0);
    for (source, value) in deliveries {
        let parsed = serde_json::to_vec(value)
            .map_err(|e| e.to_string())
            .and_then(|body| Envelope::parse(&body).map_err(|e| e.to_string()))
            .and_then(|envelope| decode::decode(&envelope, latest));
        let decoded = match parsed {
            Ok(decoded) => decoded,
            Err(reason) => {
                lines.push(json!({ "source": source, "rejected": reason }));
                continue;
            }
        };
        let person = match &decoded {
            Decoded::Call { person, snapshot } => {
                latest = latest.max(snapshot.at);
                *person
            }
            Decoded::AgentState { person, at, .. } => {
                latest = latest.max(*at);
                *person
            }
            Decoded::Recording { id } => {
                lines.push(
                    json!({ "source": source, "recording": id, "action": "fetch recording" }),
                );
                continue;
            }
            Decoded::Other { resource } => {
                lines.push(json!({ "source": source, "skipped": format!("resource {resource} is not a call or agent event") }));
                continue;
            }
        };
        let agent = agents.get(&person).cloned();
        let record = records.entry(person).or_default();
        let stepped = decode::step(record, &decoded, policy);
        if stepped.late {
            lines.push(json!({ "source": source, "skipped": "late: older than what the call already applied" }));
        } else if stepped.duplicate {
            lines.push(json!({ "source": source, "skipped": "no change (duplicate)" }));
        }
        for applied in &stepped.applied {
            let event = &applied.event;
            let context = json!({
                "agent": agent,
                "person": person.to_string(),
                "call_id": event.call_id,
                "call_session_id": event.call_session_id,
                "event": event.kind.label(),
            });
            let mut line = context.clone();
            line["at"] = json!(format_timestamp(event.at));
            lines.push(line);
            for action in &applied.actions {
                lines.push(action_line(&context, action));
            }
        }
    }
    // Then time passes: the timers fire in deadline order, as the live service would.
    let mut pending: Vec<(UtcMillis, PersonId)> = records
        .iter()
        .filter_map(|(person, record)| {
            machine::next_deadline(&record.machine, policy).map(|due| (due, *person))
        })
        .collect();
    pending.sort();
    for (due, person) in pending {
        let Some(record) = records.get_mut(&person) else {
            continue;
        };
        let context = json!({
            "agent": agents.get(&person),
            "person": person.to_string(),
            "call_id": null,
            "call_session_id": null,
            "event": "Agent Available",
        });
        for action in decode::tick(record, due, policy) {
            lines.push(action_line(&context, &action));
        }
    }
    lines
}

fn action_line(context: &Value, action: &Action) -> Value {
    let mut line = context.clone();
    if let (Some(line), Ok(Value::Object(fields))) =
        (line.as_object_mut(), serde_json::to_value(action))
    {
        for (key, value) in fields {
            match key.as_str() {
                "at" => line.insert(
                    key,
                    json!(value.as_i64().map(|ms| format_timestamp(UtcMillis(ms)))),
                ),
                "event" => None,
                _ => line.insert(key, value),
            };
        }
    }
    line
}
