//! Identifiers: Capture's own ([`AgentId`], [`ContactId`], [`MonitorId`]) and Webex's.
//!
//! Webex identifiers: decoding of base64url "hydra" ids and normalisation of call session ids.
//!
//! Webex's REST and webhook payloads carry ids in two forms. Events use "hydra" ids: the base64url
//! encoding of a URI such as `ciscospark://us/CALL/callhalf-581329:0`. Recordings and their metadata
//! use the raw forms (`callhalf-581329:0`, a UUID, or 32 hex digits without dashes). Joining the two
//! means decoding first and comparing normalised values; each conversion lives in exactly one
//! function here.
//!
//! Assumption (webex/API.md marks it as inferred from examples): the raw value of a hydra id is
//! everything after its type segment, e.g. the last path segment for people and call sessions.

use std::fmt;

mod capture;

pub use capture::{AgentId, ContactId, MonitorId};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The scheme every hydra id decodes to.
const HYDRA_SCHEME: &str = "ciscospark://";

/// Why an id could not be decoded or normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The input is empty.
    #[error("empty id")]
    Empty,
    /// The input is neither a hydra id nor the raw form this function accepts.
    #[error("{what} {input:?} is not valid: {reason}")]
    Invalid {
        /// What kind of id was expected.
        what: &'static str,
        /// The offending input (truncated to 120 characters).
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
}

fn invalid(what: &'static str, input: &str, reason: &'static str) -> IdError {
    IdError::Invalid {
        what,
        input: input.chars().take(120).collect(),
        reason,
    }
}

/// A decoded hydra id: `ciscospark://<cluster>/<kind>/<value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HydraId {
    /// The cluster or region segment (`us`, `urn:TEAM:us-east-2_a`, ...).
    pub cluster: String,
    /// The resource kind in upper case (`PEOPLE`, `CALL`, `WEBHOOK`, ...).
    pub kind: String,
    /// The raw id: everything after the kind segment.
    pub value: String,
}

/// Decodes a base64url (or standard base64) hydra id, with or without padding.
pub fn decode_hydra(id: &str) -> Result<HydraId, IdError> {
    let trimmed = id.trim();
    if trimmed.is_empty() {
        return Err(IdError::Empty);
    }
    let unpadded = trimmed.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(unpadded)
        .or_else(|_| STANDARD_NO_PAD.decode(unpadded))
        .map_err(|_| invalid("hydra id", id, "not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("hydra id", id, "not UTF-8"))?;
    let rest = text
        .strip_prefix(HYDRA_SCHEME)
        .ok_or_else(|| invalid("hydra id", id, "does not decode to a ciscospark:// URI"))?;
    let mut parts = rest.splitn(3, '/');
    let (Some(cluster), Some(kind), Some(value)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            "hydra id",
            id,
            "missing cluster, kind or value segment",
        ));
    };
    if cluster.is_empty() || kind.is_empty() || value.is_empty() {
        return Err(invalid(
            "hydra id",
            id,
            "empty cluster, kind or value segment",
        ));
    }
    Ok(HydraId {
        cluster: cluster.to_owned(),
        kind: kind.to_owned(),
        value: value.to_owned(),
    })
}

/// Encodes a hydra id the way Webex does (base64url without padding). Used by the emulator and
/// tests to produce event ids.
pub fn encode_hydra(cluster: &str, kind: &str, value: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{HYDRA_SCHEME}{cluster}/{kind}/{value}"))
}

/// A Webex call id in its raw form, e.g. `callhalf-581329:0` (the form recording metadata uses).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(String);

impl CallId {
    /// The raw form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A call session id normalised to 32 lower-case hex digits without dashes. Every recording and
/// event of one call session compares equal in this form, whatever form Webex sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallSessionId(String);

impl CallSessionId {
    /// The normalised form (32 lower-case hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CallSessionId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        normalize_call_session_id(&value)
    }
}

impl From<CallSessionId> for String {
    fn from(value: CallSessionId) -> Self {
        value.0
    }
}

/// A Webex person id as a UUID (the raw form recordings use for owners and actors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub Uuid);

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Normalises a raw call session id (dashed UUID or 32 hex digits, any case) to 32 lower-case hex.
pub fn normalize_call_session_id(raw: &str) -> Result<CallSessionId, IdError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdError::Empty);
    }
    let normalised: String = trimmed
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if normalised.len() != 32 || !normalised.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(
            "call session id",
            raw,
            "expected 32 hex digits (dashes allowed)",
        ));
    }
    Ok(CallSessionId(normalised))
}

/// The call session id of an event or a recording, in any of Webex's forms (hydra, dashed UUID,
/// 32 hex), normalised.
pub fn call_session_id(id: &str) -> Result<CallSessionId, IdError> {
    match normalize_call_session_id(id) {
        Ok(normalised) => Ok(normalised),
        Err(IdError::Empty) => Err(IdError::Empty),
        Err(_) => {
            let hydra = decode_hydra(id)?;
            let last = hydra.value.rsplit('/').next().unwrap_or(&hydra.value);
            normalize_call_session_id(last)
                .map_err(|_| invalid("call session id", id, "hydra value is not a session uuid"))
        }
    }
}

/// The raw call id (`callhalf-…:0`) of an event's hydra `callId`, or of a raw call id.
pub fn call_id(id: &str) -> Result<CallId, IdError> {
    let trimmed = id.trim();
    if trimmed.is_empty() {
        return Err(IdError::Empty);
    }
    let raw = if trimmed.starts_with("callhalf-") {
        trimmed.to_owned()
    } else {
        let hydra = decode_hydra(trimmed)?;
        if hydra.kind != "CALL" {
            return Err(invalid("call id", id, "hydra id is not of kind CALL"));
        }
        hydra.value
    };
    let valid = raw.len() <= 128
        && raw.starts_with("callhalf-")
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-:_.".contains(&b));
    if !valid {
        return Err(invalid("call id", id, "expected callhalf-<digits>:<n>"));
    }
    Ok(CallId(raw))
}

/// The person id (UUID) of a hydra `PEOPLE` id or of a raw UUID.
pub fn person_id(id: &str) -> Result<PersonId, IdError> {
    let trimmed = id.trim();
    if trimmed.is_empty() {
        return Err(IdError::Empty);
    }
    if let Ok(uuid) = Uuid::try_parse(trimmed) {
        return Ok(PersonId(uuid));
    }
    let hydra = decode_hydra(trimmed)?;
    if hydra.kind != "PEOPLE" {
        return Err(invalid("person id", id, "hydra id is not of kind PEOPLE"));
    }
    let last = hydra.value.rsplit('/').next().unwrap_or(&hydra.value);
    Uuid::try_parse(last)
        .map(PersonId)
        .map_err(|_| invalid("person id", id, "hydra value is not a uuid"))
}

#[cfg(test)]
mod tests;
