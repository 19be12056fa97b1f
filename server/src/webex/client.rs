//! The Webex REST client: bearer authentication, one retry policy, typed errors.
//!
//! Retry policy: 429 and 423 wait for `Retry-After` (seconds, capped at [`MAX_RETRY_AFTER`]);
//! 500, 502, 503, 504 and transport errors back off exponentially with full jitter from
//! [`BACKOFF_BASE`] to [`BACKOFF_MAX`]; at most [`MAX_ATTEMPTS`] attempts. Other statuses fail at
//! once with the body Webex sent.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::Tokens;

/// Attempts per request.
pub const MAX_ATTEMPTS: u32 = 5;
/// Longest `Retry-After` honoured; longer ones are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// First backoff ceiling.
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Largest backoff ceiling.
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Longest wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading an answer (a whole MP3 may take longer than this; a stall not).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a Webex call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebexError {
    /// Webex answered with an error status.
    #[error("webex answered {status} to {method} {path}: {body}")]
    Status {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// The status.
        status: StatusCode,
        /// What `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
        /// The body (truncated).
        body: String,
    },
    /// The request did not complete.
    #[error("webex request {method} {path} failed: {message}")]
    Transport {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// What happened.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("webex answer to {path} is not what was expected: {message}")]
    Decode {
        /// The path.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The client could not be built.
    #[error("webex client: {0}")]
    Setup(String),
}

impl WebexError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            WebexError::Status { status, .. } => retryable_status(*status),
            WebexError::Transport { .. } => true,
            WebexError::Decode { .. } | WebexError::Setup(_) => false,
        }
    }
}

impl WebexError {
    /// What `Retry-After` asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WebexError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether a download failed because its temporary link is no longer valid (Webex's exact
    /// answer is uncertain: any of 401, 403, 404, 410 on a download link is taken as expiry, and
    /// cured by fetching the details again).
    pub fn is_expired_link(&self) -> bool {
        matches!(self, WebexError::Status { status, .. } if matches!(status.as_u16(), 401 | 403 | 404 | 410))
    }
}

fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 423 | 429 | 500 | 502 | 503 | 504)
}

/// A webhook registration as Webex lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where it delivers.
    pub target_url: String,
    /// The resource.
    pub resource: String,
    /// The event.
    pub event: String,
    /// Its filter.
    #[serde(default)]
    pub filter: Option<String>,
    /// Its secret, when Webex shows it.
    #[serde(default)]
    pub secret: Option<String>,
    /// `active` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// `creator` or `org`.
    #[serde(default)]
    pub owned_by: Option<String>,
}

/// The Webex client.
#[derive(Debug, Clone)]
pub struct WebexClient {
    http: reqwest::Client,
    base: Arc<str>,
    tokens: Arc<Tokens>,
}

/// How long to wait before attempt `attempt + 1`: what `Retry-After` asked, else exponential
/// backoff with full jitter.
pub fn retry_wait(failure: &WebexError, attempt: u32) -> Duration {
    match failure {
        WebexError::Status {
            retry_after: Some(after),
            ..
        } => *after,
        _ => {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << attempt.min(8))
                .min(BACKOFF_MAX);
            Duration::from_millis(fastrand::u64(
                0..=u64::try_from(ceiling.as_millis()).unwrap_or(0),
            ))
        }
    }
}

fn trimmed_body(text: &str) -> String {
    text.chars().take(500).collect()
}

/// The `rel="next"` URL of an RFC 5988 `Link` header, exactly as given.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_owned())
    })
}

impl WebexClient {
    /// A client for `base_url` (e.g. `https://webexapis.com/v1`) authenticating with `tokens`;
    /// TLS trusts the system's roots plus `extra_ca` (a TLS-inspecting proxy's CA, or the
    /// emulator's).
    pub fn new(
        base_url: &str,
        tokens: Arc<Tokens>,
        extra_ca: Option<&Path>,
    ) -> Result<WebexClient, WebexError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = extra_ca {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| WebexError::Setup(format!("{}: {e}", path.display())))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| WebexError::Setup(format!("{}: {e}", path.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| WebexError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("capture/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebexError::Setup(e.to_string()))?;
        Ok(WebexClient {
            http,
            base: Arc::from(base_url.trim_end_matches('/')),
            tokens,
        })
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends a request with the retry policy and returns the successful answer. `authorised`:
    /// whether to send the bearer token (download links carry their own ticket and may point to
    /// another host, so they get none). A 401 is answered once by a fresh token when the token
    /// source can refresh.
    pub(crate) async fn execute(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        authorised: bool,
    ) -> Result<reqwest::Response, WebexError> {
        let url = self.url(path);
        let mut attempt = 0;
        let mut stale: Option<String> = None;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), &url);
            let mut used = None;
            if authorised {
                let token = self
                    .tokens
                    .access_token(&self.http, &self.base, stale.as_deref())
                    .await?;
                request = request.bearer_auth(&token);
                used = Some(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED
                        && authorised
                        && self.tokens.refreshable()
                        && !refreshed =>
                {
                    tracing::info!(path, "webex refused the access token; refreshing it");
                    refreshed = true;
                    stale = used;
                    attempt -= 1;
                    continue;
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                    let body = trimmed_body(&response.text().await.unwrap_or_default());
                    WebexError::Status {
                        method: method.clone(),
                        path: path.to_owned(),
                        status,
                        retry_after,
                        body,
                    }
                }
                Err(error) => WebexError::Transport {
                    method: method.clone(),
                    path: path.to_owned(),
                    message: error.to_string(),
                },
            };
            if !failure.is_retryable() || attempt >= MAX_ATTEMPTS {
                return Err(failure);
            }
            let wait = retry_wait(&failure, attempt);
            tracing::debug!(%failure, attempt, wait_ms = wait.as_millis() as u64, "webex request will be retried");
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends a request with the retry policy; returns the `Link` next URL and the JSON body.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Option<String>, Value), WebexError> {
        let response = self.execute(method.clone(), path, body, true).await?;
        let next = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let text = response.text().await.map_err(|e| WebexError::Transport {
            method: method.clone(),
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| WebexError::Decode {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        Ok((next, json))
    }

    /// Every webhook of the organisation visible to the token (following `Link` paging).
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, WebexError> {
        let mut out = Vec::new();
        let mut next = Some("/webhooks?max=100".to_owned());
        while let Some(path) = next {
            let (link, body) = self.send(Method::GET, &path, None).await?;
            let items: Vec<Webhook> =
                serde_json::from_value(body.get("items").cloned().unwrap_or(Value::Array(vec![])))
                    .map_err(|e| WebexError::Decode {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
            let empty = items.is_empty();
            out.extend(items);
            next = if empty { None } else { link };
        }
        Ok(out)
    }

    /// Creates a webhook.
    pub async fn create_webhook(&self, request: &Value) -> Result<Webhook, WebexError> {
        let (_, body) = self.send(Method::POST, "/webhooks", Some(request)).await?;
        serde_json::from_value(body).map_err(|e| WebexError::Decode {
            path: "/webhooks".into(),
            message: e.to_string(),
        })
    }

    /// Updates a webhook (`name`, `targetUrl`, `secret`, `status`).
    pub async fn update_webhook(&self, id: &str, update: &Value) -> Result<Webhook, WebexError> {
        let path = format!("/webhooks/{id}");
        let (_, body) = self.send(Method::PUT, &path, Some(update)).await?;
        serde_json::from_value(body).map_err(|e| WebexError::Decode {
            path,
            message: e.to_string(),
        })
    }

    /// The Webex person with this email, if one exists (`GET /people?email=`).
    pub async fn find_person_by_email(
        &self,
        email: &str,
    ) -> Result<Option<capture_shared::ids::PersonId>, WebexError> {
        let mut url = reqwest::Url::parse(&self.url("/people"))
            .map_err(|e| WebexError::Setup(e.to_string()))?;
        url.query_pairs_mut().append_pair("email", email);
        let (_, body) = self.send(Method::GET, url.as_str(), None).await?;
        let Some(id) = body["items"]
            .get(0)
            .and_then(|person| person["id"].as_str())
        else {
            return Ok(None);
        };
        capture_shared::ids::person_id(id)
            .map(Some)
            .map_err(|e| WebexError::Decode {
                path: "/people".into(),
                message: e.to_string(),
            })
    }

    /// Registers interest in `Agent` events (Customer Assist), which Webex keeps for a limited
    /// time; the answer is returned as sent (its shape is uncertain, webex/API.md).
    pub async fn register_agent_interest(&self) -> Result<Value, WebexError> {
        let body = serde_json::json!({ "interests": [{ "resource": "Agent" }] });
        Ok(self
            .send(
                Method::POST,
                "/telephony/webhookInterestRegistrations",
                Some(&body),
            )
            .await?
            .1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_webhook_example_parses_as_a_registration() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/webex/webhook_create.openapi.json"
        ))
        .expect("fixture");
        let fixture: Value = serde_json::from_str(&text).expect("json");
        let webhook: Webhook =
            serde_json::from_value(fixture["response"].clone()).expect("registration");
        assert_eq!(webhook.resource, "messages");
        assert_eq!(webhook.status.as_deref(), Some("active"));
        assert_eq!(
            webhook.secret.as_deref(),
            Some("86dacc007724d8ea666f88fc77d918dad9537a15")
        );
        // Missing optional fields are fine.
        let minimal = serde_json::json!({"id": "x", "name": "n", "targetUrl": "https://t", "resource": "r", "event": "e"});
        assert!(serde_json::from_value::<Webhook>(minimal).is_ok());
    }

    #[test]
    fn link_headers_give_the_next_url_exactly() {
        let header = r#"<https://webexapis.com/v1/webhooks?max=2&cursor=abc%3D>; rel="next", <https://x/first>; rel="first""#;
        assert_eq!(
            next_link(header).as_deref(),
            Some("https://webexapis.com/v1/webhooks?max=2&cursor=abc%3D")
        );
        assert_eq!(next_link(r#"<https://x/prev>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
