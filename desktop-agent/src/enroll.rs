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

/// Enrols with the recorder at `server`.
pub async fn enroll(
    server: &str,
    ca_file: Option<&Path>,
    request: &EnrollRequest<'_>,
) -> Result<Enrolled, EnrollError> {
    let tls = tls_config(ca_file)?;
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
