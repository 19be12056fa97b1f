//! Webhook set-up: on start, when Webex credentials and the public URL are configured, make sure
//! Webex delivers what Capture needs to our receiver, signed with our secret — creating missing
//! webhooks, and updating (and re-activating: Webex disables webhooks whose target keeps failing)
//! existing ones — and keep the Customer Assist `Agent` interest registration fresh. Also: agents
//! enrolled by email only are mapped to their Webex person (events name persons, not emails).

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::webex::client::{WebexClient, WebexError, Webhook};

/// How often agents known by email only are looked up in Webex.
pub const DIRECTORY_RESOLUTION: Duration = Duration::from_secs(300);

/// The webhooks Capture keeps registered: (name, resource, event).
pub fn desired(agent_state_source: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out = vec![
        ("capture telephony_calls", "telephony_calls", "all"),
        (
            "capture convergedRecordings",
            "convergedRecordings",
            "created",
        ),
    ];
    if agent_state_source == "customer_assist" {
        out.push(("capture telephony_agent", "telephony_agent", "all"));
    }
    out
}

/// What set-up did to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It did not exist.
    Created(String),
    /// It existed with another target, secret or status.
    Updated(String),
}

/// How often the `Agent` interest registration is renewed (Webex keeps it for 60 days).
pub const INTEREST_RENEWAL: Duration = Duration::from_secs(24 * 3600);

/// How long to wait before trying set-up again after a failure.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);

/// Makes the registered webhooks match [`desired`], once.
pub async fn ensure_webhooks(
    client: &WebexClient,
    target_url: &str,
    secret: &str,
    agent_state_source: &str,
) -> Result<Vec<Change>, WebexError> {
    let existing = client.list_webhooks().await?;
    let mut changes = Vec::new();
    for (name, resource, event) in desired(agent_state_source) {
        let found: Option<&Webhook> = existing.iter().find(|w| w.name == name).or_else(|| {
            existing
                .iter()
                .find(|w| w.resource == resource && w.event == event && w.target_url == target_url)
        });
        match found {
            None => {
                let request = json!({
                    "name": name, "targetUrl": target_url, "resource": resource, "event": event,
                    "secret": secret, "ownedBy": "org",
                });
                let created = client.create_webhook(&request).await?;
                changes.push(Change::Created(created.id));
            }
            Some(webhook) => {
                let matches = webhook.target_url == target_url
                    && webhook.status.as_deref() == Some("active")
                    && webhook.secret.as_deref() == Some(secret);
                if !matches {
                    // The secret is not always shown: when unknown, it is set again.
                    let update = json!({ "name": name, "targetUrl": target_url, "secret": secret, "status": "active" });
                    client.update_webhook(&webhook.id, &update).await?;
                    changes.push(Change::Updated(webhook.id.clone()));
                }
            }
        }
    }
    Ok(changes)
}

/// Runs set-up until it succeeds, then renews the `Agent` interest (Customer Assist only) until
/// `cancel`.
pub async fn run(
    client: WebexClient,
    target_url: String,
    secret: String,
    agent_state_source: String,
    cancel: CancellationToken,
) {
    loop {
        match ensure_webhooks(&client, &target_url, &secret, &agent_state_source).await {
            Ok(changes) => {
                tracing::info!(?changes, target = %target_url, "webex webhooks are registered");
                break;
            }
            Err(error) => {
                tracing::error!(%error, "registering webex webhooks failed; retrying in 5 minutes");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(RETRY_AFTER_FAILURE) => {}
                }
            }
        }
    }
    if agent_state_source != "customer_assist" {
        return;
    }
    loop {
        let wait = match client.register_agent_interest().await {
            Ok(_) => {
                tracing::info!("registered interest in Customer Assist agent events");
                INTEREST_RENEWAL
            }
            Err(error) => {
                tracing::error!(%error, "registering interest in agent events failed; retrying in 5 minutes");
                RETRY_AFTER_FAILURE
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Looks up, by email, the Webex person of every agent that has none; returns how many it found.
pub async fn resolve_emails(client: &WebexClient, store: &Store) -> Result<usize, String> {
    let mut found = 0;
    for (agent, email) in store
        .agents_without_person()
        .await
        .map_err(|e| e.to_string())?
    {
        match client.find_person_by_email(&email).await {
            Ok(Some(person)) => match store.set_agent_person(agent, person).await {
                Ok(()) => {
                    tracing::info!(%agent, %person, "agent mapped to its webex person by email");
                    found += 1;
                }
                Err(error) => {
                    tracing::warn!(%agent, %error, "agent's webex person is mapped to another agent")
                }
            },
            Ok(None) => tracing::warn!(%agent, "no webex person has this agent's email"),
            Err(error) => return Err(error.to_string()),
        }
    }
    Ok(found)
}

/// Resolves emails now, whenever `changed` is notified (an agent was added), and every
/// [`DIRECTORY_RESOLUTION`], until `cancel`.
pub async fn resolve_emails_loop(
    client: WebexClient,
    store: Store,
    changed: std::sync::Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    loop {
        if let Err(error) = resolve_emails(&client, &store).await {
            tracing::warn!(%error, "looking up agents' webex persons by email failed");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = changed.notified() => {}
            () = tokio::time::sleep(DIRECTORY_RESOLUTION) => {}
        }
    }
}
