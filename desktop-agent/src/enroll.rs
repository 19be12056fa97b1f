//! Enrolment: trade the organisation's enrolment token (what the installer's property carries) for
//! this machine's own agent id and credential, `POST /agent/v1/enroll` on the recorder.

use std::path::Path;

use capture_shared::ids::AgentId;
use serde::{Deserialize, Serialize};

use crate::connection::{ConnectError, Endpoint};

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

impl EnrollError {
    /// Whether trying again later can succeed: the recorder unreachable, busy or rate-limiting
    /// (a used-up, expired or revoked token cannot).
    pub fn is_retryable(&self) -> bool {
        match self {
            EnrollError::Network(_) => true,
            EnrollError::Refused { status, .. } => *status == 429 || *status >= 500,
            EnrollError::Tls(_) => false,
        }
    }
}

/// The first start of an agent the installer configured: trades the machine's enrolment token
/// for this user's credential, saves it in the user's file `user_file` (protected), then deletes
/// the token from the machine's settings (`machine_file` and the managed values). A token that
/// cannot be deleted (no right to) is logged for IT and never used again by this user, who is
/// enrolled from then on.
pub async fn first_start(
    machine: &crate::config::MachineConfig,
    machine_file: &Path,
    user_file: &Path,
) -> Result<crate::config::AgentConfig, FirstStartError> {
    let (Some(server), Some(token)) = (&machine.server, &machine.enrolment_token) else {
        return Err(FirstStartError::NotConfigured);
    };
    let mut config = crate::config::AgentConfig {
        server: server.clone(),
        ca_file: machine.ca_file.clone(),
        server_ca_sha256: machine.server_ca_sha256.clone(),
        agent_id: AgentId(uuid::Uuid::nil()),
        credential: String::new(),
        source: machine.source.clone().unwrap_or_else(|| "screen".into()),
        proxy: machine.proxy.clone(),
        spool_quota_mb: None,
    };
    let endpoint = config.endpoint()?;
    let (os_user, host) = (crate::platform::os_user(), crate::platform::machine_name());
    let enrolled = enroll_with(
        &endpoint,
        &EnrollRequest {
            token,
            machine: &host,
            os_user: &os_user,
            email: None,
        },
    )
    .await?;
    config.agent_id = enrolled.agent_id;
    config.credential = enrolled.credential;
    config
        .save(user_file)
        .map_err(|e| FirstStartError::Save(format!("{}: {e}", user_file.display())))?;
    tracing::info!(agent = %config.agent_id, server = %config.server, "enrolled with the installer's token");
    match crate::config::remove_enrolment_token(machine_file) {
        Ok(()) => tracing::info!("the installer's enrolment token was deleted"),
        Err(left) => tracing::warn!(
            left,
            "the used enrolment token could not be deleted: IT should remove it"
        ),
    }
    Ok(config)
}

/// Why a first start's enrolment failed.
#[derive(Debug, thiserror::Error)]
pub enum FirstStartError {
    /// The machine has no server or no token.
    #[error("the machine's settings have no SERVER_URL and ENROLLMENT_TOKEN")]
    NotConfigured,
    /// The settings are unusable (bad URL, pin or proxy).
    #[error(transparent)]
    Settings(#[from] ConnectError),
    /// The recorder refused or could not be reached.
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    /// The credential could not be saved.
    #[error("saving the credential: {0}")]
    Save(String),
}

impl FirstStartError {
    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FirstStartError::Enroll(e) if e.is_retryable())
    }
}

/// Enrols with the recorder at `server`, trusting the system's roots and `ca_file`.
pub async fn enroll(
    server: &str,
    ca_file: Option<&Path>,
    request: &EnrollRequest<'_>,
) -> Result<Enrolled, EnrollError> {
    enroll_with(&Endpoint::new(server, ca_file)?, request).await
}

/// Enrols with the recorder at `endpoint` (its TLS settings, e.g. a pinned CA, and its proxy).
pub async fn enroll_with(
    endpoint: &Endpoint,
    request: &EnrollRequest<'_>,
) -> Result<Enrolled, EnrollError> {
    let mut client = reqwest::Client::builder()
        .use_preconfigured_tls((*endpoint.tls).clone())
        .timeout(std::time::Duration::from_secs(30));
    client = match &endpoint.proxy {
        Some(proxy) => client.proxy(
            reqwest::Proxy::all(&proxy.url)
                .map_err(|e| ConnectError::BadProxy(format!("{proxy:?}: {e}")))?,
        ),
        None => client.no_proxy(),
    };
    let client = client
        .build()
        .map_err(|e| EnrollError::Network(e.to_string()))?;
    let url = format!("{}/agent/v1/enroll", endpoint.base_url());
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
