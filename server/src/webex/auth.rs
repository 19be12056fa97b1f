//! Webex access tokens: a fixed token, or one Capture refreshes itself (an integration's refresh
//! token, or a Service App's pair minted with an administrator's token).
//!
//! Webex's lifetimes vary by source (webex/API.md §4), so the expiry is always read from
//! `expires_in`, and a token is replaced once less than [`REFRESH_FRACTION`] of its life is left,
//! at most [`REFRESH_MARGIN`] before it expires (a token of unknown life: at that margin). Every refresh answer may carry a new refresh token; the newest is
//! written to `<data_dir>/webex-tokens.json` (owner-only) before it is used, so a restart never
//! goes back to a refresh token Webex may have retired.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::client::WebexError;

/// Refresh once less than this much of a token's life is left...
pub const REFRESH_FRACTION: f64 = 0.2;
/// ... but no earlier than this before it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// The file of the newest token pair inside the data directory.
pub const TOKENS_FILE: &str = "webex-tokens.json";

/// How tokens are obtained.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// A fixed access token; a 401 is final.
    Fixed(String),
    /// `POST /access_token` with `grant_type=refresh_token`.
    Refresh {
        /// OAuth client id.
        client_id: String,
        /// OAuth client secret.
        client_secret: String,
        /// The configured refresh token (the persisted newer one wins while the configured one
        /// is unchanged).
        refresh_token: String,
    },
    /// `POST /applications/{id}/token`, then refreshes like [`TokenSource::Refresh`].
    ServiceApp {
        /// Application id.
        app_id: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: String,
        /// Target organisation.
        org_id: String,
        /// Administrator's token that authorises minting.
        admin_token: String,
    },
}

/// What is persisted: the newest pair, and which configuration it descends from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Persisted {
    /// SHA-256 of the configured credential: when the operator configures a new one, it wins.
    configured_sha256: String,
    access_token: String,
    /// Expiry, Unix milliseconds.
    expires_at_ms: i64,
    refresh_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Current {
    access_token: Option<String>,
    expires_at_ms: i64,
    lifetime_ms: i64,
    refresh_token: Option<String>,
}

/// The token answer of both routes.
#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Hands out valid access tokens, refreshing them one at a time.
#[derive(Debug)]
pub struct Tokens {
    source: TokenSource,
    file: Option<PathBuf>,
    current: tokio::sync::Mutex<Current>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Tokens {
    /// A fixed token.
    pub fn fixed(token: &str) -> Arc<Tokens> {
        Arc::new(Tokens {
            source: TokenSource::Fixed(token.to_owned()),
            file: None,
            current: tokio::sync::Mutex::new(Current {
                access_token: Some(token.to_owned()),
                expires_at_ms: i64::MAX,
                lifetime_ms: i64::MAX,
                refresh_token: None,
            }),
        })
    }

    /// Tokens from `source`, persisting the newest pair in `data_dir` (read back here).
    pub fn new(source: TokenSource, data_dir: &std::path::Path) -> Arc<Tokens> {
        if let TokenSource::Fixed(token) = &source {
            return Tokens::fixed(token);
        }
        let file = data_dir.join(TOKENS_FILE);
        let configured = configured_sha256(&source);
        let mut current = Current::default();
        if let TokenSource::Refresh { refresh_token, .. } = &source {
            current.refresh_token = Some(refresh_token.clone());
        }
        match std::fs::read(&file).map(|bytes| serde_json::from_slice::<Persisted>(&bytes)) {
            Ok(Ok(saved)) if saved.configured_sha256 == configured => {
                current.access_token = Some(saved.access_token);
                current.expires_at_ms = saved.expires_at_ms;
                current.lifetime_ms = 0;
                if saved.refresh_token.is_some() {
                    current.refresh_token = saved.refresh_token;
                }
            }
            Ok(Ok(_)) => {
                tracing::info!(
                    "the configured webex credential changed: the kept tokens are set aside"
                )
            }
            Ok(Err(error)) => {
                tracing::warn!(file = %file.display(), %error, "kept webex tokens unreadable; starting from the configured ones")
            }
            Err(_) => {}
        }
        Arc::new(Tokens {
            source,
            file: Some(file),
            current: tokio::sync::Mutex::new(current),
        })
    }

    /// Whether a 401 can be cured by fetching a new token.
    pub fn refreshable(&self) -> bool {
        !matches!(self.source, TokenSource::Fixed(_))
    }

    /// A valid access token, refreshed first when it is close to expiry (or `stale`, the one a
    /// 401 answered, is still the current one).
    pub async fn access_token(
        &self,
        http: &reqwest::Client,
        base: &str,
        stale: Option<&str>,
    ) -> Result<String, WebexError> {
        let mut current = self.current.lock().await;
        let now = now_ms();
        if let Some(token) = &current.access_token {
            let left = current.expires_at_ms.saturating_sub(now);
            let cap = REFRESH_MARGIN.as_millis() as i64;
            let margin = if current.lifetime_ms > 0 {
                ((current.lifetime_ms as f64 * REFRESH_FRACTION) as i64).min(cap)
            } else {
                cap
            };
            let rejected = stale == Some(token.as_str());
            if !self.refreshable() || (left > margin && !rejected) {
                return Ok(token.clone());
            }
        }
        let answer = self.fetch(http, base, &current).await?;
        current.lifetime_ms = answer.expires_in.saturating_mul(1000);
        current.expires_at_ms = now.saturating_add(current.lifetime_ms);
        current.access_token = Some(answer.access_token.clone());
        if answer.refresh_token.is_some() {
            current.refresh_token = answer.refresh_token;
        }
        self.persist(&current)?;
        tracing::info!(
            expires_in_s = answer.expires_in,
            "webex access token refreshed"
        );
        Ok(answer.access_token)
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        base: &str,
        current: &Current,
    ) -> Result<TokenAnswer, WebexError> {
        let refresh = |client_id: &str, client_secret: &str, token: &str| {
            http.post(format!("{base}/access_token")).form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("refresh_token", token),
            ])
        };
        let (path, request) = match (&self.source, &current.refresh_token) {
            (TokenSource::Fixed(_), _) => {
                return Err(WebexError::Setup(
                    "a fixed token cannot be refreshed".into(),
                ));
            }
            (
                TokenSource::Refresh {
                    client_id,
                    client_secret,
                    ..
                }
                | TokenSource::ServiceApp {
                    client_id,
                    client_secret,
                    ..
                },
                Some(token),
            ) => (
                "/access_token".to_owned(),
                refresh(client_id, client_secret, token),
            ),
            (
                TokenSource::ServiceApp {
                    app_id,
                    client_id,
                    client_secret,
                    org_id,
                    admin_token,
                },
                None,
            ) => (
                format!("/applications/{app_id}/token"),
                http.post(format!("{base}/applications/{app_id}/token"))
                    .bearer_auth(admin_token)
                    .json(&serde_json::json!({
                        "clientId": client_id, "clientSecret": client_secret, "targetOrgId": org_id,
                    })),
            ),
            (TokenSource::Refresh { .. }, None) => {
                return Err(WebexError::Setup("no refresh token".into()));
            }
        };
        let response = request.send().await.map_err(|e| WebexError::Transport {
            method: Method::POST,
            path: path.clone(),
            message: e.to_string(),
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(WebexError::Status {
                method: Method::POST,
                path,
                status,
                retry_after: None,
                body: text.chars().take(500).collect(),
            });
        }
        serde_json::from_str(&text).map_err(|e| WebexError::Decode {
            path,
            message: e.to_string(),
        })
    }

    fn persist(&self, current: &Current) -> Result<(), WebexError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let saved = Persisted {
            configured_sha256: configured_sha256(&self.source),
            access_token: current.access_token.clone().unwrap_or_default(),
            expires_at_ms: current.expires_at_ms,
            refresh_token: current.refresh_token.clone(),
        };
        let bytes = serde_json::to_vec(&saved).map_err(|e| WebexError::Setup(e.to_string()))?;
        crate::files::write_atomically(file, &bytes, true)
            .map_err(|e| WebexError::Setup(format!("{}: {e}", file.display())))
    }
}

fn configured_sha256(source: &TokenSource) -> String {
    let configured = match source {
        TokenSource::Fixed(token) => token.clone(),
        TokenSource::Refresh {
            client_id,
            refresh_token,
            ..
        } => format!("refresh\n{client_id}\n{refresh_token}"),
        TokenSource::ServiceApp {
            app_id,
            client_id,
            org_id,
            ..
        } => format!("service-app\n{app_id}\n{client_id}\n{org_id}"),
    };
    hex::encode(Sha256::digest(configured.as_bytes()))
}
