//! Agent-state payloads: Customer Assist `telephony_agent` and Webex Contact Center
//! `agent:state_change`. Both shapes are uncertain in public material (webex/API.md), so the
//! parser looks for the documented field names and a few likely variants, case-insensitively,
//! anywhere in the first two levels of `data`.

use capture_shared::time::UtcMillis;

use super::time::parse_timestamp;

/// The agent states Capture acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AgentState {
    /// Ready for the next call: the contact is over.
    Available,
    /// Wrapping up after a call.
    WrapUp,
    /// Redirect on no answer: the offered call was not taken.
    Rona,
}

/// An agent-state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStateChange {
    /// The new state, when it is one Capture acts on (`None` for sign-in, unavailable, ...).
    pub state: Option<AgentState>,
    /// The raw state value.
    pub raw: String,
    /// When, if the payload says.
    pub at: Option<UtcMillis>,
    /// The person (or agent) id the payload names, if any.
    pub person: Option<String>,
}

const STATE_KEYS: &[&str] = &[
    "agentACDState",
    "acdState",
    "agentState",
    "currentState",
    "state",
    "status",
    "subStatus",
];
const PERSON_KEYS: &[&str] = &["personId", "agentId", "userId"];
const TIME_KEYS: &[&str] = &[
    "eventTimestamp",
    "timestamp",
    "eventTime",
    "lastStateChangeTimestamp",
];

fn find<'a>(data: &'a serde_json::Value, keys: &[&str]) -> Option<&'a serde_json::Value> {
    let object = data.as_object()?;
    for key in keys {
        if let Some((_, value)) = object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Some(value);
        }
    }
    object
        .values()
        .filter(|v| v.is_object())
        .find_map(|nested| {
            let nested = nested.as_object()?;
            keys.iter().find_map(|key| {
                nested
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
        })
}

/// Parses an agent-state payload; `None` when it names no state at all.
pub fn parse(data: &serde_json::Value) -> Option<AgentStateChange> {
    let raw = find(data, STATE_KEYS)?.as_str()?.to_owned();
    let normalised = raw.to_ascii_uppercase().replace(['-', ' '], "_");
    let state = match normalised.as_str() {
        "AVAILABLE" | "IDLE_AVAILABLE" => Some(AgentState::Available),
        "WRAP_UP" | "WRAPUP" | "WRAP_UP_STATE" => Some(AgentState::WrapUp),
        "RONA" | "REDIRECT_ON_NO_ANSWER" => Some(AgentState::Rona),
        _ => None,
    };
    let at = find(data, TIME_KEYS).and_then(|v| match v {
        serde_json::Value::String(text) => parse_timestamp(text),
        serde_json::Value::Number(n) => n.as_i64().map(UtcMillis),
        _ => None,
    });
    let person = find(data, PERSON_KEYS)
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    Some(AgentStateChange {
        state,
        raw,
        at,
        person,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn customer_assist_and_contact_center_shapes_parse() {
        let ca = parse(&json!({"personId": "p1", "agentACDState": "WRAP_UP", "eventTimestamp": "2026-01-01T00:00:00Z"}))
            .expect("parses");
        assert_eq!(ca.state, Some(AgentState::WrapUp));
        assert_eq!(ca.person.as_deref(), Some("p1"));
        assert!(ca.at.is_some());
        let available =
            parse(&json!({"agent": {"agentId": "a", "acdState": "available"}})).expect("nested");
        assert_eq!(available.state, Some(AgentState::Available));
        let wxcc = parse(&json!({"data": {"currentState": "RONA", "agentId": "x", "timestamp": 1_700_000_000_000i64}}))
            .expect("wxcc");
        assert_eq!(wxcc.state, Some(AgentState::Rona));
        assert_eq!(wxcc.at, Some(UtcMillis(1_700_000_000_000)));
        let signed_in = parse(&json!({"agentACDState": "SIGN_IN"})).expect("other state");
        assert_eq!(signed_in.state, None);
        assert_eq!(parse(&json!({"nothing": 1})), None);
    }
}
