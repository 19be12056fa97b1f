//! Injected faults.

use std::time::Duration;

use anyhow::Result;
use axum::http::StatusCode;
use webex_emulator::{Document, Faults, RecordingSpec, Route, RouteFaults};

use crate::common::start;

#[tokio::test]
async fn rate_limits_carry_retry_after_and_early_retries_are_counted() -> Result<()> {
    let h = start().await?;
    h.emulator.set_faults(Faults::default().with_route(
        Route::List,
        RouteFaults {
            rate_limited: 1.0,
            ..RouteFaults::default()
        },
    ));
    let path = "/admin/convergedRecordings?max=5";
    let response = h
        .client
        .get(h.url(path))
        .bearer_auth(&h.token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await?;
    assert!(body["message"].is_string() && body["trackingId"].is_string());
    assert_eq!(h.emulator.stats().early_retries, 0);
    // An immediate retry is early; another path is not a retry.
    assert_eq!(h.get(path).await?.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h.emulator.stats().early_retries, 1);
    assert_eq!(
        h.get("/admin/convergedRecordings?max=6").await?.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(h.emulator.stats().early_retries, 1);
    // Other routes are untouched.
    assert_eq!(h.get("/webhooks").await?.0, StatusCode::OK);
    h.emulator.set_faults(Faults::none());
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(h.get(path).await?.0, StatusCode::OK);
    let stats = h.emulator.stats();
    assert_eq!(stats.early_retries, 1);
    assert_eq!(stats.by_status.get(&429), Some(&3));
    Ok(())
}

#[tokio::test]
async fn storms_malformed_answers_and_corruption() -> Result<()> {
    let h = start().await?;
    let info = h.emulator.add_recording(RecordingSpec::new(
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        4,
    ));
    h.emulator.storm(1.0);
    for _ in 0..12 {
        let response = h
            .client
            .get(h.url("/people/me"))
            .bearer_auth(&h.token)
            .send()
            .await?;
        let status = response.status().as_u16();
        assert!([423, 429, 500, 502, 503, 504].contains(&status), "{status}");
        if [423, 429].contains(&status) {
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    h.emulator.set_faults(Faults::default().with_route(
        Route::Details,
        RouteFaults {
            malformed: 1.0,
            ..RouteFaults::default()
        },
    ));
    let details = format!("/convergedRecordings/{}", info.id);
    let response = h
        .client
        .get(h.url(&details))
        .bearer_auth(&h.token)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<serde_json::Value>(&response.bytes().await?).is_err());
    h.emulator.set_faults(Faults::none());

    h.emulator.corrupt(&info.id, Document::Metadata);
    let (status, _, metadata) = h.get(&format!("{details}/metadata")).await?;
    assert_eq!(
        (status, metadata),
        (StatusCode::OK, serde_json::Value::Null)
    );
    assert_eq!(h.get(&details).await?.2["id"], info.id.as_str());

    h.emulator.corrupt_next_list_pages(1);
    assert_eq!(
        h.get("/admin/convergedRecordings").await?.2,
        serde_json::Value::Null
    );
    assert_eq!(
        h.get("/admin/convergedRecordings").await?.2["items"][0]["id"],
        info.id.as_str()
    );
    Ok(())
}
