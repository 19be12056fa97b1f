//! Enrolment: trade the organisation's enrolment token (what the installer's property carries) for
//! this machine's own agent id and credential, `POST /agent/v1/enroll` on the recorder.

use std::path::Path;

use capture_shared::ids::AgentId;
use serde::{Deserialize, Serialize};

use crate::connection::{ConnectError, tls_config};

/// The request.
#[derive(Debug, Serialize)]
pub struct EnrollRequest<'a> {
    /// The organisation's enrolment token.
    pub token: &'a str,
    /// This machine's name.
    pub machine: &'a str,
    /// The logged-in user.
    pub os_user: &'a str,
    /// The agent's Webex email, when known (maps the agent to its Webex person).
    pub email: Option<&'a str>,
}

/// The answer.
#[derive(Debug, Deserialize)]
pub struct Enrolled {
    /// The new agent's id.
    pub agent_id: AgentId,
    /// Its credential (shown once).
    pub credential: String,
}

impl Enrolled {
    /// An agent an administrator added (`capture-server agent add`, `POST /api/v1/agents`):
    /// the JSON they print, with its `id` (or `agent_id`) and `credential`.
    pub fn from_credential_json(text: &str) -> Result<Enrolled, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let id = value
            .get("agent_id")
            .or_else(|| value.get("id"))
            .and_then(serde_json::Value::as_str)
            .ok_or("no `id` (or `agent_id`)")?;
        let agent_id = uuid::Uuid::parse_str(id)
            .map(AgentId)
            .map_err(|e| format!("`id` is not an agent id: {e}"))?;
        let credential = value
            .get("credential")
            .and_then(serde_json::Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or("no `credential`")?
            .to_owned();
        Ok(Enrolled {
            agent_id,
            credential,
        })
    }
}

/// Why enrolment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// TLS settings.
    #[error(transparent)]
    Tls(#[from] ConnectError),
    /// The server could not be reached.
    #[error("cannot reach the recorder: {0}")]
    Network(String),
    /// The server said no.
    #[error("enrolment refused ({status}): {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's explanation.
        body: String,
    },
}

/// Enrols with the recorder at `server`, trusting the system's roots and `ca_file`.
pub async fn enroll(
    server: &str,
    ca_file: Option<&Path>,
    request: &EnrollRequest<'_>,
) -> Result<Enrolled, EnrollError> {
    enroll_with(server, tls_config(ca_file)?, request).await
}

/// Enrols with the recorder at `server` with these TLS settings (a pinned CA).
pub async fn enroll_with(
    server: &str,
    tls: rustls::ClientConfig,
    request: &EnrollRequest<'_>,
) -> Result<Enrolled, EnrollError> {
    crate::connection::parse_server(server)?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| EnrollError::Network(e.to_string()))?;
    let url = format!("{}/agent/v1/enroll", server.trim_end_matches('/'));
    let response = client
        .post(url)
        .json(request)
        .send()
        .await
        .map_err(|e| EnrollError::Network(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(EnrollError::Refused {
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        });
    }
    response
        .json()
        .await
        .map_err(|e| EnrollError::Network(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_administrators_credential_file_is_read_as_printed() {
        let printed = r#"{"id":"8d6c2b0e-8a3e-4c55-9d7a-2f1f7c9e4b10","name":"Alice","person_id":null,
            "email":"alice@example.com","created_at_ms":1,"credential":"ab12"}"#;
        let enrolled = Enrolled::from_credential_json(printed).expect("read");
        assert_eq!(
            enrolled.agent_id.to_string(),
            "8d6c2b0e-8a3e-4c55-9d7a-2f1f7c9e4b10"
        );
        assert_eq!(enrolled.credential, "ab12");
        let answer = r#"{"agent_id":"8d6c2b0e-8a3e-4c55-9d7a-2f1f7c9e4b10","credential":"cd"}"#;
        assert!(Enrolled::from_credential_json(answer).is_ok());
        for bad in [
            "not json",
            r#"{"credential":"x"}"#,
            r#"{"id":"nope","credential":"x"}"#,
            r#"{"id":"8d6c2b0e-8a3e-4c55-9d7a-2f1f7c9e4b10","credential":""}"#,
        ] {
            assert!(Enrolled::from_credential_json(bad).is_err(), "{bad}");
        }
    }
}
