//! Webhook CRUD, signed deliveries and delivery faults.

use std::time::Duration;

use anyhow::Result;
use axum::http::StatusCode;
use serde_json::{Value, json};
use webex_emulator::{CallKind, CallPlan, DeliveryFaults, Faults, SIGNATURE_HEADER, sign};

use crate::common::{Receiver, register, start};

const SECRET: &str = "emulator-test-secret";

#[tokio::test]
async fn webhooks_can_be_created_listed_updated_and_deleted() -> Result<()> {
    let h = start().await?;
    let mut ids = Vec::new();
    for n in 0..5 {
        let created = register(
            &h,
            "telephony_calls",
            &format!("https://example.com/{n}"),
            SECRET,
        )
        .await?;
        assert_eq!(created["status"], "active");
        ids.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    // Paging by two.
    let mut url = h.url("/webhooks?max=2");
    let mut listed = Vec::new();
    loop {
        let (status, headers, page) = h.get(&url).await?;
        assert_eq!(status, StatusCode::OK);
        let items = page["items"].as_array().cloned().unwrap_or_default();
        listed.extend(
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned)),
        );
        let Some(link) = headers.get("link").and_then(|v| v.to_str().ok()) else {
            break;
        };
        if items.is_empty() {
            break;
        }
        url = link
            .split(';')
            .next()
            .unwrap_or_default()
            .trim_matches(['<', '>', ' '])
            .to_owned();
    }
    assert_eq!(listed, ids);

    let (status, _, one) = h.get(&format!("/webhooks/{}", ids[0])).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["targetUrl"], "https://example.com/0");
    let updated: Value = h
        .client
        .put(h.url(&format!("/webhooks/{}", ids[0])))
        .bearer_auth(&h.token)
        .json(&json!({ "name": "renamed", "targetUrl": "https://example.com/new", "status": "inactive" }))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["status"], "inactive");
    let deleted = h
        .client
        .delete(h.url(&format!("/webhooks/{}", ids[0])))
        .bearer_auth(&h.token)
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        h.get(&format!("/webhooks/{}", ids[0])).await?.0,
        StatusCode::NOT_FOUND
    );

    let interest = h
        .client
        .post(h.url("/telephony/webhookInterestRegistrations"))
        .bearer_auth(&h.token)
        .json(&json!({ "interests": [{ "resource": "Agent" }] }))
        .send()
        .await?;
    assert_eq!(interest.status(), StatusCode::OK);
    assert_eq!(
        interest.json::<Value>().await?["interests"][0]["resource"],
        "Agent"
    );
    Ok(())
}

fn quick(agent: webex_emulator::Person) -> CallPlan {
    CallPlan::new(agent, CallKind::Answered)
        .with_timing(Duration::from_millis(200), Duration::from_millis(100))
}

#[tokio::test]
async fn deliveries_are_signed_and_retried() -> Result<()> {
    let h = start().await?;
    // The first two POSTs fail: the delivery is retried.
    let receiver = Receiver::start(2).await?;
    register(&h, "telephony_calls", &receiver.url, SECRET).await?;
    let agent = h.emulator.add_person("signed@example.com", "Signed");
    let outcome = h.emulator.run_call(quick(agent.clone())).await;
    let bodies = receiver
        .wait_for(Duration::from_secs(5), |b| b.len() >= 4)
        .await;
    assert_eq!(bodies.len(), 4);
    for (headers, body) in receiver
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(signature, sign(SECRET.as_bytes(), body));
    }
    let states: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| {
            (
                b["event"].as_str().unwrap_or(""),
                b["data"]["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("created", "alerting"),
            ("updated", "alerting"),
            ("updated", "connected"),
            ("deleted", "disconnected")
        ]
    );
    let first = &bodies[0];
    for key in [
        "id",
        "name",
        "targetUrl",
        "resource",
        "event",
        "orgId",
        "createdBy",
        "appId",
        "ownedBy",
        "status",
        "created",
        "actorId",
        "data",
    ] {
        assert!(first.get(key).is_some(), "envelope lacks {key}");
    }
    assert_eq!(first["actorId"], agent.hydra_id().as_str());
    let call_id =
        capture_shared::ids::call_id(first["data"]["callId"].as_str().unwrap_or_default())?;
    assert_eq!(call_id.as_str(), outcome.legs[0].call_id);
    let session = capture_shared::ids::call_session_id(
        first["data"]["callSessionId"].as_str().unwrap_or_default(),
    )?;
    assert_eq!(
        session.as_str(),
        outcome.call_session_id.simple().to_string()
    );
    let stats = h.emulator.stats();
    assert_eq!(stats.deliveries_sent, 4);
    assert_eq!(stats.deliveries_failed, 0);
    Ok(())
}

#[tokio::test]
async fn duplicate_and_drop_faults_are_observable() -> Result<()> {
    let h = start().await?;
    let receiver = Receiver::start(0).await?;
    register(&h, "telephony_calls", &receiver.url, SECRET).await?;
    let agent = h.emulator.add_person("faults@example.com", "Faults");
    h.emulator.set_faults(Faults {
        delivery: DeliveryFaults {
            duplicate: 1.0,
            ..DeliveryFaults::default()
        },
        ..Faults::default()
    });
    h.emulator.run_call(quick(agent.clone())).await;
    let bodies = receiver
        .wait_for(Duration::from_secs(5), |b| b.len() >= 8)
        .await;
    assert_eq!(bodies.len(), 8);
    assert_eq!(h.emulator.stats().deliveries_duplicated, 4);

    h.emulator.set_faults(Faults {
        delivery: DeliveryFaults {
            drop: 1.0,
            ..DeliveryFaults::default()
        },
        ..Faults::default()
    });
    h.emulator.run_call(quick(agent.clone())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.bodies().len(), 8);
    assert_eq!(h.emulator.stats().deliveries_dropped, 4);

    // Reordering swaps each pair: the first is held back until the second is sent.
    h.emulator.set_faults(Faults {
        delivery: DeliveryFaults {
            reorder: 1.0,
            ..DeliveryFaults::default()
        },
        ..Faults::default()
    });
    h.emulator.run_call(quick(agent)).await;
    let bodies = receiver
        .wait_for(Duration::from_secs(5), |b| b.len() >= 12)
        .await;
    let states: Vec<&str> = bodies[8..]
        .iter()
        .map(|b| b["data"]["eventType"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["updated", "received", "disconnected", "answered"]);
    assert_eq!(h.emulator.stats().deliveries_reordered, 2);
    Ok(())
}

#[tokio::test]
async fn deliveries_to_https_targets_trust_added_cas() -> Result<()> {
    // The target is another emulator's HTTPS server: its CA is unknown until trusted.
    let h = start().await?;
    let target = start().await?;
    let url = format!("{}/people/me", target.emulator.base_url());
    register(&h, "telephony_calls", &url, SECRET).await?;
    let agent = h.emulator.add_person("tls@example.com", "Tls");
    h.emulator.run_call(quick(agent.clone())).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.emulator.stats().deliveries_failed == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = h.emulator.stats();
    assert_eq!(stats.deliveries_sent, 0);
    assert!(stats.deliveries_failed >= 1);
    assert!(
        target.emulator.requests().is_empty(),
        "the TLS handshake must fail"
    );

    h.emulator.trust_ca(target.emulator.ca_file())?;
    h.emulator.run_call(quick(agent)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while target.emulator.requests().len() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The target answers 401 (no bearer): delivered over TLS, refused.
    let requests = target.emulator.requests();
    assert!(requests.len() >= 4, "{requests:?}");
    assert!(requests.iter().all(|r| r.method == "POST"));
    Ok(())
}
