//! On start, with Webex credentials and a public URL, the server registers its webhooks with our
//! secret — creating the missing ones, re-activating and re-targeting a disabled one, leaving
//! other webhooks alone — through `Link` paging and a 429, and registers interest in agent events.

use std::time::Duration;

use capture_tests::fake_webex::{FakeState, FakeWebex};
use capture_tests::server::TestServer;
use capture_tests::webex::SECRET;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_registers_and_repairs_its_webhooks() -> anyhow::Result<()> {
    let unrelated = |n: u32| {
        json!({ "id": format!("other-{n}"), "name": format!("someone else's {n}"), "targetUrl": "https://elsewhere.example.com/hook",
                "resource": "messages", "event": "created", "status": "active", "secret": "theirs" })
    };
    let state = FakeState {
        webhooks: vec![
            unrelated(1),
            unrelated(2),
            json!({ "id": "ours-old", "name": "capture telephony_calls", "targetUrl": "https://old.example.com/webhooks/webex",
                    "resource": "telephony_calls", "event": "all", "status": "disabled", "ownedBy": "org" }),
            unrelated(3),
        ],
        fail_with_429: 1,
        ..FakeState::default()
    };
    let fake = FakeWebex::start("compliance-token", state).await?;
    let (base_url, ca_file) = (fake.base_url.clone(), fake.ca_file.clone());
    let server = TestServer::start_with(move |config| {
        config.webex.base_url = base_url;
        config.webex.access_token = Some("compliance-token".into());
        config.webex.ca_file = Some(ca_file);
        config.webex.public_url = Some("https://capture.example.com/".into());
        config.integration.agent_state_source = "customer_assist".into();
    })
    .await?;

    let target = "https://capture.example.com/webhooks/webex";
    let mut done = false;
    for _ in 0..200 {
        {
            let state = fake.state.lock().expect("lock");
            let ours: Vec<_> = state
                .webhooks
                .iter()
                .filter(|w| w["targetUrl"] == target)
                .collect();
            if ours.len() == 3 && state.interest_registrations >= 1 {
                done = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let state = fake.state.lock().expect("lock");
        assert!(done, "{state:#?}");
        let by_resource = |resource: &str| {
            state
                .webhooks
                .iter()
                .find(|w| w["resource"] == resource)
                .expect(resource)
                .clone()
        };
        let calls = by_resource("telephony_calls");
        assert_eq!(
            calls["id"], "ours-old",
            "the disabled webhook is repaired, not duplicated"
        );
        assert_eq!(calls["status"], "active");
        assert_eq!(calls["secret"], SECRET);
        let recordings = by_resource("convergedRecordings");
        assert_eq!(
            (
                recordings["event"].as_str(),
                recordings["secret"].as_str(),
                recordings["ownedBy"].as_str()
            ),
            (Some("created"), Some(SECRET), Some("org"))
        );
        assert_eq!(by_resource("telephony_agent")["secret"], SECRET);
        assert_eq!(state.webhooks.len(), 6);
        for n in 1..=3 {
            let other = state
                .webhooks
                .iter()
                .find(|w| w["id"] == format!("other-{n}"))
                .expect("other");
            assert_eq!(
                other["secret"], "theirs",
                "someone else's webhook is untouched"
            );
        }
        // The first request was answered 429 (Retry-After: 1): the next came no sooner.
        let (first, second) = (&state.requests[0], &state.requests[1]);
        assert!(
            second.0.duration_since(first.0) >= Duration::from_millis(990),
            "{:?}",
            second.0.duration_since(first.0)
        );
        // Paging followed the Link header exactly.
        let pages = state
            .requests
            .iter()
            .filter(|(_, method, path)| method == "GET" && path.starts_with("/webhooks"))
            .count();
        assert_eq!(
            pages,
            1 + 2,
            "one 429, then two pages of two: {:?}",
            state.requests
        );
        assert_eq!(
            state.requests[2].2, "/webhooks?max=2&start=2",
            "the next URL as the Link header gave it"
        );
    }
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_enrolled_by_email_is_mapped_to_its_webex_person() -> anyhow::Result<()> {
    let person = uuid::Uuid::from_u128(0xe3a11);
    let state = FakeState {
        people: vec![("carol@example.com".into(), person)],
        ..FakeState::default()
    };
    let fake = FakeWebex::start("compliance-token", state).await?;
    let (base_url, ca_file) = (fake.base_url.clone(), fake.ca_file.clone());
    // Credentials but no public URL: no webhook registration, the directory is still resolved.
    let server = TestServer::start_with(move |config| {
        config.webex.base_url = base_url;
        config.webex.access_token = Some("compliance-token".into());
        config.webex.ca_file = Some(ca_file);
    })
    .await?;
    let client = server.client()?;
    for (name, email) in [
        ("Carol", "Carol@Example.com"),
        ("Nobody", "nobody@example.com"),
    ] {
        let added = client
            .post(format!("{}/api/v1/agents", server.base_url()))
            .bearer_auth(server.api_token()?)
            .json(&json!({ "name": name, "email": email }))
            .send()
            .await?;
        assert_eq!(added.status(), 201);
    }
    let mut mapped = serde_json::Value::Null;
    for _ in 0..200 {
        let agents = server.api_get("/api/v1/agents").await?;
        if let Some(carol) = agents["items"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == "Carol"))
            && !carol["person_id"].is_null()
        {
            mapped = agents;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = mapped["items"].as_array().expect("carol was mapped");
    let carol = items.iter().find(|x| x["name"] == "Carol").expect("carol");
    assert_eq!(carol["person_id"], person.to_string());
    let nobody = items
        .iter()
        .find(|x| x["name"] == "Nobody")
        .expect("nobody");
    assert!(
        nobody["person_id"].is_null(),
        "an unknown email stays unmapped"
    );
    assert!(
        fake.state.lock().expect("lock").webhooks.is_empty(),
        "no public URL: no webhooks registered"
    );
    server.stop().await
}
