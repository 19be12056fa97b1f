//! Webex webhook deliveries as Webex sends them: `telephony_calls` envelopes with hydra ids,
//! signed with HMAC-SHA1 of the raw body.

use std::sync::Arc;

use capture_server::clock::Clock;
use capture_server::integration::link::NoAgentLink;
use capture_server::integration::machine::Policy;
use capture_server::integration::processor::Processor;
use capture_server::store::{NewDelivery, Store};
use capture_server::webex::signature::{SIGNATURE_HEADER, sign};
use capture_server::webex::time::format_timestamp;
use capture_shared::ids::encode_hydra;
use capture_shared::time::UtcMillis;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// The webhook secret the test servers are configured with.
pub const SECRET: &str = "capture-test-webhook-secret-0123456789";

/// A `telephony_calls` call as successive deliveries.
#[derive(Debug, Clone)]
pub struct CallScript {
    /// The agent's Webex person.
    pub person: Uuid,
    /// The call number (`callhalf-<n>:0`).
    pub call: u64,
    /// The call session.
    pub session: Uuid,
    /// When the call was created.
    pub created: UtcMillis,
    answered: Option<UtcMillis>,
}

impl CallScript {
    /// A call of `person` created at `created`.
    pub fn new(person: Uuid, call: u64, session: Uuid, created: UtcMillis) -> CallScript {
        CallScript {
            person,
            call,
            session,
            created,
            answered: None,
        }
    }

    /// The envelope of the call in `state` at `at` (`connected` sets `answered` the first time).
    pub fn envelope(&mut self, state: &str, at: UtcMillis) -> Value {
        if state == "connected" && self.answered.is_none() {
            self.answered = Some(at);
        }
        let (event, event_type) = match state {
            "alerting" if self.created == at => ("created", "received"),
            "connecting" => ("created", "originated"),
            "connected" if self.answered == Some(at) => ("updated", "answered"),
            "disconnected" => ("deleted", "disconnected"),
            _ => ("updated", "updated"),
        };
        let mut data = json!({
            "eventType": event_type,
            "eventTimestamp": format_timestamp(at),
            "callId": encode_hydra("us", "CALL", &format!("callhalf-{}:0", self.call)),
            "callSessionId": encode_hydra("us", "CALL_SESSION", &self.session.to_string()),
            "personality": if state == "connecting" { "originator" } else { "terminator" },
            "state": state,
            "remoteParty": { "name": "Customer", "number": "+14085550100", "privacyEnabled": false, "callType": "external" },
            "created": format_timestamp(self.created),
        });
        if let Some(answered) = self.answered {
            data["answered"] = json!(format_timestamp(answered));
        }
        if state == "disconnected" {
            data["disconnected"] = json!(format_timestamp(at));
        }
        json!({
            "id": encode_hydra("us", "WEBHOOK", "96abc2aa-3dcc-11e5-a152-fe34819cdc9a"),
            "name": "capture telephony_calls",
            "targetUrl": "https://capture.example.com/webhooks/webex",
            "resource": "telephony_calls",
            "event": event,
            "orgId": encode_hydra("us", "ORGANIZATION", "ee8ebeb0-f077-4384-bb50-9de6141c7bac"),
            "createdBy": encode_hydra("us", "PEOPLE", "c2335e53-c41b-423d-a41e-da0bf56e2038"),
            "appId": encode_hydra("us", "APPLICATION", "c6a8a3a6-2c44-4ec7-bd87-8a2ea1b1f2a7"),
            "ownedBy": "org",
            "status": "active",
            "created": "2026-01-01T00:00:00.000Z",
            "actorId": encode_hydra("us", "PEOPLE", &self.person.to_string()),
            "data": data,
        })
    }
}

/// Posts `body` to `url` signed with `secret`.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &[u8],
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header(SIGNATURE_HEADER, sign(secret.as_bytes(), body))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
}

/// Posts `call` in `state` at `at` (UTC ms) to `server`'s webhook route, signed as Webex does.
pub async fn post_call_state(
    server: &crate::server::TestServer,
    call: &mut CallScript,
    state: &str,
    at: i64,
) -> anyhow::Result<()> {
    let url = format!("{}/webhooks/webex", server.base_url());
    let body = serde_json::to_vec(&call.envelope(state, UtcMillis(at)))?;
    post_signed(&server.client()?, &url, SECRET, &body)
        .await?
        .error_for_status()?;
    Ok(())
}

/// A call to `person` (call number `n`) that rings at `now` (UTC ms) and is answered 500 ms
/// later, posted to `server`; the script goes on with the call's later states
/// (`post_call_state`).
pub async fn answered_call(
    server: &crate::server::TestServer,
    person: Uuid,
    n: u64,
    now: i64,
) -> anyhow::Result<CallScript> {
    let mut call = CallScript::new(person, n, Uuid::new_v4(), UtcMillis(now));
    post_call_state(server, &mut call, "alerting", now).await?;
    post_call_state(server, &mut call, "connected", now + 500).await?;
    Ok(call)
}

/// `envelopes` as the receiver hands them to the store, received at `received_at_ms`.
pub fn new_deliveries(envelopes: &[Value], received_at_ms: i64) -> Vec<NewDelivery> {
    envelopes
        .iter()
        .map(|envelope| {
            let body = serde_json::to_vec(envelope).expect("json");
            NewDelivery {
                body_sha256: hex::encode(Sha256::digest(&body)),
                received_at_ms,
                resource: "telephony_calls".into(),
                event: envelope["event"].as_str().unwrap_or_default().into(),
                body,
            }
        })
        .collect()
}

/// A processor with `policy` on a manual clock at `now_ms`, over a real store in a scratch
/// directory, with no agent ever connected.
pub async fn manual_processor(
    policy: Policy,
    now_ms: i64,
) -> anyhow::Result<(tempfile::TempDir, Store, Processor)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path()).await?;
    let processor = Processor {
        recordings_wake: Arc::default(),
        store: store.clone(),
        clock: Clock::manual(now_ms),
        policy,
        link: Arc::new(NoAgentLink),
        wake: Arc::default(),
    };
    Ok((dir, store, processor))
}
