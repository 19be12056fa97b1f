//! `telephony_calls` webhook payloads (`data` of the envelope) and their normalised snapshot.

use capture_shared::ids::{self, CallId, CallSessionId};
use capture_shared::time::UtcMillis;
use serde::Deserialize;

use super::time::parse_timestamp;

/// The `data` of a `telephony_calls` delivery, as Webex sends it. Every field but `callId` is
/// optional; unknown fields are kept in `other` so they can be logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallData {
    /// `received`, `updated`, `answered`, `disconnected`, ... (not the source of truth).
    #[serde(default)]
    pub event_type: Option<String>,
    /// When this state was reached.
    #[serde(default)]
    pub event_timestamp: Option<String>,
    /// Hydra call id.
    pub call_id: String,
    /// Hydra call session id.
    #[serde(default)]
    pub call_session_id: Option<String>,
    /// `originator`, `terminator`, `clickToDial`.
    #[serde(default)]
    pub personality: Option<String>,
    /// `connecting`, `alerting`, `connected`, `held`, `remoteHeld`, `disconnected`.
    #[serde(default)]
    pub state: Option<String>,
    /// The other party.
    #[serde(default)]
    pub remote_party: Option<RemoteParty>,
    /// When the call was created.
    #[serde(default)]
    pub created: Option<String>,
    /// When it was answered.
    #[serde(default)]
    pub answered: Option<String>,
    /// When it was disconnected.
    #[serde(default)]
    pub disconnected: Option<String>,
    /// Whether another endpoint took the call.
    #[serde(default)]
    pub completed_elsewhere: Option<bool>,
    /// Redirections while alerting.
    #[serde(default)]
    pub redirections: Option<Vec<serde_json::Value>>,
    /// Everything else.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The remote party of a call.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RemoteParty {
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Number or SIP URI.
    #[serde(default)]
    pub number: Option<String>,
    /// Webex person id, when the remote party is a Webex user.
    #[serde(default)]
    pub person_id: Option<String>,
    /// `location`, `organization`, `external`.
    #[serde(default)]
    pub call_type: Option<String>,
}

/// A call's state as Webex reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CallState {
    /// An outgoing call is being set up.
    Connecting,
    /// An incoming call is ringing.
    Alerting,
    /// The call is up.
    Connected,
    /// We put the call on hold.
    Held,
    /// The other side put the call on hold.
    RemoteHeld,
    /// The call is over.
    Disconnected,
    /// A value this build does not know (kept and logged, never fatal).
    Unknown(String),
}

impl CallState {
    fn parse(text: Option<&str>) -> CallState {
        match text.unwrap_or_default() {
            "connecting" => CallState::Connecting,
            "alerting" => CallState::Alerting,
            "connected" => CallState::Connected,
            "held" => CallState::Held,
            "remoteHeld" => CallState::RemoteHeld,
            "disconnected" => CallState::Disconnected,
            other => CallState::Unknown(other.to_owned()),
        }
    }
}

/// One `telephony_calls` delivery, decoded and normalised: what the call looked like at `at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallSnapshot {
    /// Raw call id.
    pub call_id: CallId,
    /// Normalised call session id, when present and decodable.
    pub call_session_id: Option<CallSessionId>,
    /// The state.
    pub state: CallState,
    /// `eventType` as sent (only a hint).
    pub event_type: String,
    /// `originator`, `terminator`, ...
    pub personality: Option<String>,
    /// When this state was reached (`eventTimestamp`, else the latest timestamp present).
    pub at: UtcMillis,
    /// When the call was created.
    pub created: Option<UtcMillis>,
    /// When it was answered.
    pub answered: Option<UtcMillis>,
    /// When it was disconnected.
    pub disconnected: Option<UtcMillis>,
    /// Whether another endpoint took the call.
    pub completed_elsewhere: bool,
    /// The other party.
    pub remote: RemoteParty,
}

/// Why a `telephony_calls` payload could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallDataError {
    /// Not the expected JSON shape.
    #[error("telephony_calls data: {0}")]
    Shape(String),
    /// The call id cannot be decoded.
    #[error("telephony_calls data: {0}")]
    CallId(#[from] ids::IdError),
    /// No usable timestamp at all.
    #[error("telephony_calls data has no usable timestamp")]
    NoTimestamp,
}

impl CallSnapshot {
    /// Decodes the `data` of a delivery. `event` is the envelope's event (`deleted` means the
    /// call is gone even if `state` is missing).
    pub fn from_data(data: &serde_json::Value, event: &str) -> Result<CallSnapshot, CallDataError> {
        let raw: CallData = serde_json::from_value(data.clone())
            .map_err(|e| CallDataError::Shape(e.to_string()))?;
        if !raw.other.is_empty() {
            let keys: Vec<&String> = raw.other.keys().collect();
            tracing::debug!(
                ?keys,
                "telephony_calls data has fields this build does not use"
            );
        }
        let call_id = ids::call_id(&raw.call_id)?;
        let call_session_id = match raw.call_session_id.as_deref() {
            Some(text) => match ids::call_session_id(text) {
                Ok(id) => Some(id),
                Err(error) => {
                    tracing::warn!(%error, "undecodable callSessionId; the call is tracked without it");
                    None
                }
            },
            None => None,
        };
        let mut state = CallState::parse(raw.state.as_deref());
        if event == "deleted" && state != CallState::Disconnected {
            state = CallState::Disconnected;
        }
        if let CallState::Unknown(value) = &state {
            tracing::warn!(state = %value, "unknown telephony call state");
        }
        let time = |field: &Option<String>| field.as_deref().and_then(parse_timestamp);
        let created = time(&raw.created);
        let answered = time(&raw.answered);
        let disconnected = time(&raw.disconnected);
        let at = time(&raw.event_timestamp)
            .or_else(|| {
                [disconnected, answered, created]
                    .into_iter()
                    .flatten()
                    .max()
            })
            .ok_or(CallDataError::NoTimestamp)?;
        Ok(CallSnapshot {
            call_id,
            call_session_id,
            state,
            event_type: raw.event_type.unwrap_or_default(),
            personality: raw.personality,
            at,
            created,
            answered,
            disconnected,
            completed_elsewhere: raw.completed_elsewhere.unwrap_or(false),
            remote: raw.remote_party.unwrap_or_default(),
        })
    }

    /// Whether Webex's event type hints at a conference (assumption: webex/API.md lists event
    /// types beyond received/updated/answered/disconnected as uncertain).
    pub fn hints_conference(&self) -> bool {
        self.event_type.to_ascii_lowercase().contains("conferenc")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::webex::webhook::Envelope;

    #[test]
    fn the_published_webhook_registration_is_an_envelope_once_it_carries_data() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/webex/webhook_create.openapi.json"
        ))
        .expect("fixture");
        let fixture: serde_json::Value = serde_json::from_str(&text).expect("json");
        let mut delivery = fixture["response"].clone();
        delivery["data"] = json!({ "id": "x" });
        let envelope =
            Envelope::parse(&serde_json::to_vec(&delivery).expect("json")).expect("envelope");
        assert_eq!(envelope.owned_by.as_deref(), Some("org"));
        assert_eq!(
            envelope.subject_person(),
            None,
            "an org-owned webhook has no implied person"
        );
        // The registration alone (no `data`) is not a delivery.
        assert!(Envelope::parse(&serde_json::to_vec(&fixture["response"]).expect("json")).is_err());
    }

    #[test]
    fn minimal_and_extended_call_payloads_parse() {
        let call = ids::encode_hydra("us", "CALL", "callhalf-1:0");
        let minimal = CallSnapshot::from_data(
            &json!({ "callId": call, "eventTimestamp": "2026-11-26T09:00:00Z" }),
            "created",
        )
        .expect("minimal");
        assert_eq!(minimal.state, CallState::Unknown(String::new()));
        assert_eq!(minimal.call_session_id, None);
        let extended = CallSnapshot::from_data(
            &json!({
                "callId": call, "state": "remoteHeld", "created": "2026-11-26T09:00:00+01:00",
                "callSessionId": "garbage", "recordingState": "paused", "newThing": [1, 2],
                "redirections": [{ "reason": "callQueue", "redirectingParty": {} }],
            }),
            "updated",
        )
        .expect("extended");
        assert_eq!(extended.state, CallState::RemoteHeld);
        assert_eq!(
            extended.at.0,
            1_795_683_600_000 - 3_600_000,
            "dated by `created` when no eventTimestamp"
        );
        let deleted = CallSnapshot::from_data(
            &json!({ "callId": call, "eventTimestamp": "2026-11-26T09:00:00Z" }),
            "deleted",
        )
        .expect("deleted");
        assert_eq!(
            deleted.state,
            CallState::Disconnected,
            "a deleted call is gone whatever its state says"
        );
        assert!(
            CallSnapshot::from_data(&json!({ "callId": call }), "created").is_err(),
            "no timestamp at all"
        );
        assert!(
            CallSnapshot::from_data(&json!({ "callId": 5, "eventTimestamp": "x" }), "created")
                .is_err()
        );
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-zA-Z0-9:+.-]{0,30}".prop_map(serde_json::Value::from),
            Just(json!("2026-11-26T09:00:00Z")),
            Just(json!(ids::encode_hydra("us", "CALL", "callhalf-1:0"))),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            let keys = prop_oneof![
                Just("callId".to_owned()),
                Just("state".to_owned()),
                Just("eventTimestamp".to_owned()),
                Just("answered".to_owned()),
                Just("agentACDState".to_owned()),
                Just("data".to_owned()),
                "[a-z]{1,8}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn webhook_parsers_never_panic(data in json_value(), bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = Envelope::parse(&bytes);
            let _ = CallSnapshot::from_data(&data, "updated");
            let _ = crate::webex::agent_state::parse(&data);
            let envelope = json!({ "id": "x", "resource": "telephony_calls", "event": "updated", "actorId": "y", "data": data });
            if let Ok(envelope) = Envelope::parse(&serde_json::to_vec(&envelope).expect("json")) {
                let _ = crate::integration::decode::decode(&envelope, capture_shared::time::UtcMillis(0));
            }
        }
    }
}
