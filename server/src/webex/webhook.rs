//! The envelope of every Webex webhook delivery.

use serde::{Deserialize, Serialize};

/// Largest webhook body the receiver accepts, in bytes. Webex deliveries are a few KiB; anything
/// near this is not from Webex.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// A delivery: the registration's fields plus the event's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The webhook registration's id.
    pub id: String,
    /// The registration's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Where it was delivered.
    #[serde(default)]
    pub target_url: Option<String>,
    /// `telephony_calls`, `convergedRecordings`, `telephony_agent`, ...
    pub resource: String,
    /// `created`, `updated`, `deleted`.
    pub event: String,
    /// The registration's filter.
    #[serde(default)]
    pub filter: Option<String>,
    /// The organisation.
    #[serde(default)]
    pub org_id: Option<String>,
    /// Who registered the webhook.
    #[serde(default)]
    pub created_by: Option<String>,
    /// The integration that registered it.
    #[serde(default)]
    pub app_id: Option<String>,
    /// `creator` or `org`.
    #[serde(default)]
    pub owned_by: Option<String>,
    /// `active` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// When the registration was created.
    #[serde(default)]
    pub created: Option<String>,
    /// The person whose action caused the event.
    #[serde(default)]
    pub actor_id: Option<String>,
    /// The event's payload.
    pub data: serde_json::Value,
}

/// Why a body is not a Webex envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Webex webhook envelope: {0}")]
pub struct EnvelopeError(pub String);

impl Envelope {
    /// Parses a raw body. `data` must be an object; `resource` and `event` must be non-empty.
    pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| EnvelopeError(e.to_string()))?;
        if envelope.resource.is_empty() || envelope.event.is_empty() {
            return Err(EnvelopeError("empty resource or event".into()));
        }
        if !envelope.data.is_object() {
            return Err(EnvelopeError("`data` is not an object".into()));
        }
        Ok(envelope)
    }

    /// The person the event is about, per webex/API.md: the actor, else a `personId=` filter,
    /// else the creator of a webhook owned by its creator. (Assumption, marked uncertain there:
    /// for org-owned `telephony_calls` webhooks `actorId` is the user whose call it is.)
    pub fn subject_person(&self) -> Option<&str> {
        if let Some(actor) = self.actor_id.as_deref().filter(|a| !a.is_empty()) {
            return Some(actor);
        }
        if let Some(filter) = &self.filter {
            for clause in filter.split('&') {
                if let Some(person) = clause.strip_prefix("personId=") {
                    return Some(person);
                }
            }
        }
        if self.owned_by.as_deref() != Some("org") {
            return self.created_by.as_deref();
        }
        None
    }
}
