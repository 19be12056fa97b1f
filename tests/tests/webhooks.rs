//! `POST /webhooks/webex` over real TLS: bad input is refused with its status and changes nothing;
//! valid deliveries are stored, processed once, and become contacts people can see.

use std::time::Duration;

use capture_shared::time::UtcMillis;
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, SECRET, post_signed};
use uuid::Uuid;

/// A moment `seconds` ago on the system clock: the calls of these tests happened just now.
fn ago(seconds: i64) -> i64 {
    capture_shared::time::UtcMicros::now().to_millis().0 - seconds * 1000
}

async fn contacts(server: &TestServer) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(server.api_get("/api/v1/contacts").await?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Waits until `check` holds for the contact list (processing is asynchronous).
async fn eventually(
    server: &TestServer,
    check: impl Fn(&[serde_json::Value]) -> bool,
) -> anyhow::Result<Vec<serde_json::Value>> {
    for _ in 0..200 {
        let list = contacts(server).await?;
        if check(&list) {
            return Ok(list);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!(
        "condition not reached; contacts: {:#?}",
        contacts(server).await?
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_oversized_and_garbage_deliveries_are_refused_and_change_nothing()
-> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = server.client()?;
    let url = format!("{}/webhooks/webex", server.base_url());
    let t0 = ago(5);
    let mut call = CallScript::new(Uuid::from_u128(1), 1, Uuid::from_u128(11), UtcMillis(t0));
    let body = serde_json::to_vec(&call.envelope("alerting", UtcMillis(t0)))?;

    // No signature.
    let response = client.post(&url).body(body.clone()).send().await?;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<serde_json::Value>().await?["code"],
        "missing_signature"
    );
    // Signed with another secret (a forgery), and a real body replayed with a wrong signature.
    let response = post_signed(&client, &url, "not-the-secret-at-all", &body).await?;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<serde_json::Value>().await?["code"],
        "bad_signature"
    );
    let mut tampered = body.clone();
    let position = tampered
        .windows(8)
        .position(|w| w == b"alerting")
        .expect("state in body");
    tampered[position..position + 8].copy_from_slice(b"connecte");
    let forged_signature = capture_server::webex::signature::sign(SECRET.as_bytes(), &body);
    let response = client
        .post(&url)
        .header("X-Spark-Signature", forged_signature)
        .body(tampered)
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    // Oversized, even when signed.
    let huge = vec![b' '; capture_server::webex::webhook::MAX_WEBHOOK_BYTES + 1];
    assert_eq!(
        post_signed(&client, &url, SECRET, &huge).await?.status(),
        413
    );
    // Signed garbage, and signed JSON that is not an envelope.
    let response = post_signed(&client, &url, SECRET, b"{not json").await?;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<serde_json::Value>().await?["code"],
        "not_a_webex_envelope"
    );
    let response = post_signed(
        &client,
        &url,
        SECRET,
        br#"{"id":"x","resource":"telephony_calls","event":"created","data":[]}"#,
    )
    .await?;
    assert_eq!(response.status(), 400);

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        contacts(&server).await?.is_empty(),
        "nothing refused was applied"
    );
    let metrics = server.metrics().await?;
    assert!(
        metrics.contains("capture_webhooks_total{outcome=\"bad_signature\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains("outcome=\"stored\""), "{metrics}");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_becomes_a_contact_that_is_kept_and_closed_by_the_wrap_up_timer()
-> anyhow::Result<()> {
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let client = server.client()?;
    let url = format!("{}/webhooks/webex", server.base_url());
    let person = Uuid::from_u128(0xa11ce);
    // The call rang 70 s ago and ended 10 s ago.
    let t0 = ago(70);
    let mut call = CallScript::new(person, 42, Uuid::from_u128(0x5e55), UtcMillis(t0));
    let ringing = serde_json::to_vec(&call.envelope("alerting", UtcMillis(t0)))?;

    let response = post_signed(&client, &url, SECRET, &ringing).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await?["status"],
        "stored"
    );
    // Webex redelivers: a no-op.
    let response = post_signed(&client, &url, SECRET, &ringing).await?;
    assert_eq!(
        response.json::<serde_json::Value>().await?["status"],
        "duplicate"
    );

    let list = eventually(&server, |list| list.len() == 1).await?;
    assert_eq!(list[0]["state"], "recording");
    assert_eq!(list[0]["person_id"], person.to_string());
    assert_eq!(list[0]["call_session_ids"][0], format!("{:032x}", 0x5e55));
    let id = list[0]["id"].as_str().expect("id").to_owned();

    for (state, at) in [
        ("connected", t0 + 4_000),
        ("held", t0 + 20_000),
        ("connected", t0 + 30_000),
        ("disconnected", t0 + 60_000),
    ] {
        let body = serde_json::to_vec(&call.envelope(state, UtcMillis(at)))?;
        assert_eq!(
            post_signed(&client, &url, SECRET, &body).await?.status(),
            200
        );
    }
    // The wrap-up timer (1 s after the call ended, on the server's clock) closes the contact.
    eventually(&server, |list| {
        list.first().is_some_and(|c| c["state"] == "closed")
    })
    .await?;
    let detail = server.api_get(&format!("/api/v1/contacts/{id}")).await?;
    let events: Vec<&str> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event"].as_str().expect("label"))
        .collect();
    assert_eq!(
        events,
        [
            "Ringing",
            "Connected",
            "On Hold",
            "Hold Done",
            "Wrap Up",
            "Agent Available"
        ]
    );
    assert_eq!(detail["close_reason"], "wrap-up timer");
    assert_eq!(detail["calls"][0]["call_id"], "callhalf-42:0");
    // No desktop agent is enrolled for this person: the screen gap says so.
    assert_eq!(
        detail["gaps"][0]["reason"],
        capture_server::integration::link::GAP_NOT_ENROLLED
    );
    assert!(
        detail["gaps"][0]["to_ms"].is_i64(),
        "the gap is closed with the contact"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_is_discarded_and_the_deletion_audited() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = server.client()?;
    let url = format!("{}/webhooks/webex", server.base_url());
    // An enrolled (but offline) agent.
    let person = Uuid::from_u128(0xb0b);
    let added = client
        .post(format!("{}/api/v1/agents", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&serde_json::json!({ "name": "Bob", "person_id": person.to_string() }))
        .send()
        .await?;
    assert_eq!(added.status(), 201);
    let agent_id = added.json::<serde_json::Value>().await?["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let t0 = ago(20);
    let mut call = CallScript::new(person, 7, Uuid::from_u128(0x77), UtcMillis(t0));
    for (state, at) in [("alerting", t0), ("disconnected", t0 + 9_000)] {
        let mut envelope = call.envelope(state, UtcMillis(at));
        if state == "disconnected" {
            envelope["data"]["completedElsewhere"] = serde_json::json!(true);
        }
        assert_eq!(
            post_signed(&client, &url, SECRET, &serde_json::to_vec(&envelope)?)
                .await?
                .status(),
            200
        );
    }
    // Discarded after the settle time, once the server clock passes it (the call is dated in the
    // past, so the next pass of the processor does it).
    let list = eventually(&server, |list| {
        list.first().is_some_and(|c| c["state"] == "discarded")
    })
    .await?;
    assert_eq!(list[0]["agent_id"], agent_id);
    let detail = server
        .api_get(&format!(
            "/api/v1/contacts/{}",
            list[0]["id"].as_str().expect("id")
        ))
        .await?;
    assert_eq!(
        detail["gaps"][0]["reason"],
        capture_server::integration::link::GAP_AGENT_OFFLINE
    );
    assert_eq!(detail["close_reason"], "not responding");
    assert_eq!(detail["audit"][0]["action"], "discard_recording");
    assert_eq!(detail["audit"][0]["detail"], "not responding");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_requests_without_the_token() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = server.client()?;
    for path in ["/api/v1/contacts", "/api/v1/agents", "/api/v1/contacts/x"] {
        let url = format!("{}{path}", server.base_url());
        let none = client.get(&url).send().await?;
        assert_eq!(none.status(), 401, "{path}");
        assert_eq!(
            none.json::<serde_json::Value>().await?["code"],
            "unauthenticated"
        );
        let wrong = client.get(&url).bearer_auth("guess").send().await?;
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let bad = client
        .get(format!("{}/api/v1/contacts?state=lost", server.base_url()))
        .bearer_auth(server.api_token()?)
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<serde_json::Value>().await?["code"], "bad_query");
    server.stop().await
}
