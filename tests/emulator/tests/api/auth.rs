//! Bearer checks, OAuth refresh and Service App tokens.

use std::time::Duration;

use anyhow::Result;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{start, start_with};

#[tokio::test]
async fn missing_wrong_and_expired_tokens_get_401() -> Result<()> {
    let h = start_with(|c| c.token_ttl = Duration::from_secs(1)).await?;
    let response = h
        .client
        .get(h.url("/admin/convergedRecordings"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await?;
    assert!(body["message"].is_string() && body["errors"][0]["description"].is_string());
    assert_eq!(
        h.get_with("/admin/convergedRecordings", "nope").await?.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.get("/admin/convergedRecordings").await?.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        h.get("/admin/convergedRecordings").await?.0,
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_the_new_token_works() -> Result<()> {
    let h = start().await?;
    let credentials = h.emulator.credentials();
    let refresh = |token: String, secret: String| {
        let form = format!(
            "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
            credentials.client_id, secret, token
        );
        h.client
            .post(h.url("/access_token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let response = refresh(
        credentials.refresh_token.clone(),
        credentials.client_secret.clone(),
    )
    .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await?;
    assert_eq!(pair["token_type"], "Bearer");
    assert!(pair["expires_in"].as_u64().is_some_and(|s| s > 0));
    let (access, new_refresh) = (
        pair["access_token"].as_str().unwrap_or_default().to_owned(),
        pair["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    assert_ne!(access, credentials.access_token);
    assert_ne!(new_refresh, credentials.refresh_token);
    assert_eq!(
        h.get_with("/admin/convergedRecordings", &access).await?.0,
        StatusCode::OK
    );
    // The old refresh token stays valid until its own expiry; the new one works too.
    assert_eq!(
        refresh(
            credentials.refresh_token.clone(),
            credentials.client_secret.clone()
        )
        .await?
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        refresh(new_refresh, credentials.client_secret.clone())
            .await?
            .status(),
        StatusCode::OK
    );

    let wrong_secret = refresh(credentials.refresh_token.clone(), "wrong".into()).await?;
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_secret.json::<Value>().await?["error"],
        "invalid_client"
    );
    let wrong_token = refresh("nope".into(), credentials.client_secret.clone()).await?;
    assert_eq!(wrong_token.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wrong_token.json::<Value>().await?["error"], "invalid_grant");
    Ok(())
}

#[tokio::test]
async fn service_app_tokens_need_the_admin_bearer_and_the_app_credentials() -> Result<()> {
    let h = start().await?;
    let credentials = h.emulator.credentials();
    let url = h.url(&format!(
        "/applications/{}/token",
        credentials.service_app_id
    ));
    let body = json!({
        "clientId": credentials.client_id,
        "clientSecret": credentials.client_secret,
        "targetOrgId": credentials.org_id,
    });
    let unauthenticated = h.client.post(&url).json(&body).send().await?;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let response = h
        .client
        .post(&url)
        .bearer_auth(&h.token)
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await?;
    let access = pair["access_token"].as_str().unwrap_or_default();
    assert_eq!(
        h.get_with("/admin/convergedRecordings", access).await?.0,
        StatusCode::OK
    );
    let mut wrong = body.clone();
    wrong["clientSecret"] = json!("wrong");
    let refused = h
        .client
        .post(&url)
        .bearer_auth(&h.token)
        .json(&wrong)
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn own_list_shows_only_the_callers_recordings() -> Result<()> {
    let h = start().await?;
    let agent = h.emulator.add_person("own@example.com", "Own");
    let mut spec = webex_emulator::RecordingSpec::new(
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        5,
    );
    spec.owner = Some(agent.clone());
    let info = h.emulator.add_recording(spec);
    h.emulator.add_recording(webex_emulator::RecordingSpec::new(
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2),
        5,
    ));
    let (_, _, admin_own) = h.get("/convergedRecordings").await?;
    assert_eq!(admin_own["items"].as_array().map(Vec::len), Some(0));
    let token = h.emulator.token_for(&agent);
    let (_, _, mine) = h.get_with("/convergedRecordings", &token).await?;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(mine["items"][0]["id"], info.id.as_str());
    let (_, _, people) = h.get("/people?email=own%40example.com").await?;
    assert_eq!(people["items"][0]["id"], agent.hydra_id().as_str());
    assert_eq!(people["items"][0]["emails"][0], "own@example.com");
    Ok(())
}
