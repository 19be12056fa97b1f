//! Webhook deliveries: one sequential worker per webhook, signing each body with HMAC-SHA1 of the
//! exact bytes sent, retrying a failed POST a few times, and applying delivery faults (drop,
//! duplicate, reorder).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};
use sha1::Sha1;
use tokio::sync::mpsc;

use crate::error::EmulatorError;
use crate::hooks::Webhook;
use crate::model::{CLUSTER, Person};
use crate::state::{Shared, lock};
use crate::{clock, tls};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Spark-Signature";
/// Attempts per delivery before it is given up.
const ATTEMPTS: u32 = 4;
/// Pause between attempts.
const RETRY_DELAY: Duration = Duration::from_millis(250);
/// How long a held-back (reordered) delivery waits for a successor before going out anyway.
const HOLD_BACK: Duration = Duration::from_secs(2);

/// One POST to make.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub url: String,
    pub secret: Option<String>,
    pub body: Arc<[u8]>,
    pub label: String,
}

/// Hex HMAC-SHA1 of `body` keyed by `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The HTTP client deliveries use, rebuilt when a CA is added.
#[derive(Debug)]
pub(crate) struct Deliverer {
    client: RwLock<reqwest::Client>,
    extra: Mutex<Vec<CertificateDer<'static>>>,
}

impl Deliverer {
    pub fn new() -> Result<Deliverer, EmulatorError> {
        Ok(Deliverer {
            client: RwLock::new(tls::client(&[])?),
            extra: Mutex::new(Vec::new()),
        })
    }

    /// Trusts the certificates of `path` from now on.
    pub fn trust(&self, path: &std::path::Path) -> Result<(), EmulatorError> {
        let certs = tls::read_certs(path)?;
        let mut extra = lock(&self.extra);
        extra.extend(certs);
        let client = tls::client(&extra)?;
        *self.client.write().unwrap_or_else(|p| p.into_inner()) = client;
        Ok(())
    }

    fn client(&self) -> reqwest::Client {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The envelope Webex posts: the webhook's registration plus the event.
fn envelope(shared: &Shared, hook: &Webhook, event: &str, actor: &Person, data: &Value) -> Value {
    let mut value = json!({
        "id": hook.id,
        "name": hook.name,
        "targetUrl": hook.target_url,
        "resource": hook.resource,
        "event": event,
        "orgId": capture_shared::ids::encode_hydra(CLUSTER, "ORGANIZATION", &shared.org_id.to_string()),
        "createdBy": hook.created_by.hydra_id(),
        "appId": shared.app_hydra(),
        "ownedBy": hook.owned_by.as_deref().unwrap_or("creator"),
        "status": hook.status,
        "created": clock::format_ms(hook.created),
        "actorId": actor.hydra_id(),
        "data": data,
    });
    if let Some(filter) = &hook.filter {
        value["filter"] = json!(filter);
    }
    value
}

/// Queues the event for every matching webhook.
pub(crate) fn dispatch(shared: &Shared, resource: &str, event: &str, actor: &Person, data: &Value) {
    let hooks = lock(&shared.hooks);
    for hook in hooks
        .list
        .iter()
        .filter(|h| h.matches(resource, event, actor))
    {
        let body = match serde_json::to_vec(&envelope(shared, hook, event, actor, data)) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "serialising a webhook envelope failed");
                continue;
            }
        };
        let job = Job {
            url: hook.target_url.clone(),
            secret: hook.secret.clone(),
            body: Arc::from(body),
            label: format!("{resource}/{event}"),
        };
        if let Some(queue) = hooks.queues.get(&hook.id) {
            // A closed queue means the worker stopped (shutdown): nothing left to deliver to.
            let _ = queue.send(job);
        }
    }
}

/// Starts the delivery worker of a new webhook; it ends when the queue's sender is dropped (the
/// webhook is deleted) or the emulator shuts down.
pub(crate) fn spawn_worker(shared: &Arc<Shared>) -> mpsc::UnboundedSender<Job> {
    let (sender, mut queue) = mpsc::unbounded_channel::<Job>();
    let shared = Arc::clone(shared);
    let cancel = shared.cancel.clone();
    tokio::spawn(async move {
        let run = async {
            let mut held: Option<Job> = None;
            loop {
                let next = match &held {
                    Some(_) => match tokio::time::timeout(HOLD_BACK, queue.recv()).await {
                        Ok(next) => next,
                        Err(_) => {
                            if let Some(job) = held.take() {
                                send(&shared, &job).await;
                            }
                            continue;
                        }
                    },
                    None => queue.recv().await,
                };
                let Some(job) = next else { break };
                let (drop, duplicate, reorder) = lock(&shared.faults).delivery();
                if drop {
                    lock(&shared.stats).stats.deliveries_dropped += 1;
                    tracing::debug!(label = %job.label, "delivery dropped (fault)");
                    continue;
                }
                if reorder && held.is_none() {
                    lock(&shared.stats).stats.deliveries_reordered += 1;
                    held = Some(job);
                    continue;
                }
                send(&shared, &job).await;
                if duplicate {
                    lock(&shared.stats).stats.deliveries_duplicated += 1;
                    send(&shared, &job).await;
                }
                if let Some(job) = held.take() {
                    send(&shared, &job).await;
                }
            }
            if let Some(job) = held.take() {
                send(&shared, &job).await;
            }
        };
        tokio::select! {
            () = run => {}
            () = cancel.cancelled() => {}
        }
    });
    sender
}

async fn send(shared: &Shared, job: &Job) {
    for attempt in 1..=ATTEMPTS {
        // Fetched per attempt: a CA trusted meanwhile applies to the retries.
        let mut request = shared
            .deliverer
            .client()
            .post(&job.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(job.body.to_vec());
        if let Some(secret) = &job.secret {
            request = request.header(SIGNATURE_HEADER, sign(secret.as_bytes(), &job.body));
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                lock(&shared.stats).stats.deliveries_sent += 1;
                return;
            }
            Ok(response) => {
                tracing::debug!(url = %job.url, status = %response.status(), attempt, "delivery refused");
            }
            Err(e) => {
                tracing::debug!(url = %job.url, error = %e, attempt, "delivery failed");
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }
    lock(&shared.stats).stats.deliveries_failed += 1;
    tracing::warn!(url = %job.url, label = %job.label, attempts = ATTEMPTS, "webhook delivery given up");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha1_hex() {
        // RFC 2202 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
