//! What the emulator serves has the key sets of Cisco's published examples.

use std::time::Duration;

use anyhow::Result;
use axum::http::StatusCode;
use serde_json::json;
use webex_emulator::RecordingSpec;

use crate::common::{assert_same_shape, fixture, start};

#[tokio::test]
async fn documents_have_the_published_key_sets() -> Result<()> {
    let h = start().await?;
    let mut spec = RecordingSpec::new(
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        20,
    );
    spec.pauses = vec![(Duration::from_secs(5), Duration::from_secs(3))];
    let info = h.emulator.add_recording(spec);

    let (status, _, list) = h.get("/admin/convergedRecordings").await?;
    assert_eq!(status, StatusCode::OK);
    let example = fixture("converged_recordings_list.openapi.json")?;
    assert_same_shape(&list, &example, "list");
    assert_eq!(list["items"][0]["id"], info.id.as_str());

    let (status, _, details) = h.get(&format!("/convergedRecordings/{}", info.id)).await?;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(
        &details,
        &fixture("converged_recording_details.openapi.json")?,
        "details",
    );

    let (status, _, metadata) = h
        .get(&format!("/convergedRecordings/{}/metadata", info.id))
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(
        &metadata,
        &fixture("converged_recording_metadata.openapi.json")?,
        "metadata",
    );
    let actions = &metadata["serviceData"]["recordingActions"];
    assert_eq!(actions[0]["action"], "PAUSE");
    assert_eq!(actions[1]["action"], "RESUME");

    let webhook = fixture("webhook_create.openapi.json")?;
    let response = h
        .client
        .post(h.url("/webhooks"))
        .bearer_auth(&h.token)
        .json(&webhook["request"])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let created: serde_json::Value = response.json().await?;
    assert_same_shape(&created, &webhook["response"], "webhook");

    let credentials = h.emulator.credentials();
    let response = h
        .client
        .post(h.url(&format!(
            "/applications/{}/token",
            credentials.service_app_id
        )))
        .bearer_auth(&h.token)
        .json(&json!({
            "clientId": credentials.client_id,
            "clientSecret": credentials.client_secret,
            "targetOrgId": credentials.org_id,
        }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let token: serde_json::Value = response.json().await?;
    assert_same_shape(
        &token,
        &fixture("service_app_token_response.openapi.json")?,
        "token",
    );
    Ok(())
}
