//! Enrolment tokens an administrator controls: created with an expiry and a use count, listed,
//! revoked, each effective at the next enrolment without a restart; a used-up, expired, revoked
//! or unknown token is refused with its reason, and nothing is enrolled.

use capture_agent::enroll::{EnrollError, EnrollRequest, Enrolled, enroll};
use capture_tests::server::TestServer;
use serde_json::{Value, json};

async fn enrol(server: &TestServer, token: &str) -> Result<Enrolled, EnrollError> {
    enroll(
        &server.base_url(),
        Some(&server.ca_file()),
        &EnrollRequest {
            token,
            machine: "pc-42",
            os_user: "agent7",
            email: None,
        },
    )
    .await
}

/// The refusal's status and `code`.
fn refusal(result: Result<Enrolled, EnrollError>) -> (u16, String) {
    match result {
        Err(EnrollError::Refused { status, body }) => {
            let body: Value = serde_json::from_str(&body).unwrap_or_default();
            (status, body["code"].as_str().unwrap_or_default().to_owned())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn create(server: &TestServer, body: Value) -> anyhow::Result<Value> {
    Ok(server
        .client()?
        .post(format!("{}/api/v1/enrolment-tokens", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn revoke(server: &TestServer, id: &str) -> anyhow::Result<reqwest::StatusCode> {
    Ok(server
        .client()?
        .post(format!(
            "{}/api/v1/enrolment-tokens/{id}/revoke",
            server.base_url()
        ))
        .bearer_auth(server.api_token()?)
        .send()
        .await?
        .status())
}

async fn agents(server: &TestServer) -> anyhow::Result<usize> {
    let agents = server.api_get("/api/v1/agents").await?;
    Ok(agents["items"].as_array().map_or(0, Vec::len))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_enrol_within_their_limits_and_are_refused_with_their_reason() -> anyhow::Result<()>
{
    let server = TestServer::start().await?;

    // One use: the first desktop enrols, the second is refused.
    let once = create(&server, json!({ "label": "pc-42 only", "max_uses": 1 })).await?;
    let token = once["token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(token.len(), 64, "{once}");
    enrol(&server, &token).await?;
    assert_eq!(
        refusal(enrol(&server, &token).await),
        (403, "enrolment_token_used_up".into())
    );

    // An expiry: refused once past it.
    let brief = create(&server, json!({ "label": "brief", "expires_in_s": 1 })).await?;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(
        refusal(enrol(&server, brief["token"].as_str().unwrap_or_default()).await),
        (403, "enrolment_token_expired".into())
    );

    // Revoked: refused at the next enrolment; so is the generated default token once revoked.
    let open = create(&server, json!({ "label": "floor 3" })).await?;
    let open_token = open["token"].as_str().unwrap_or_default().to_owned();
    enrol(&server, &open_token).await?;
    let id = open["id"].as_str().unwrap_or_default();
    assert_eq!(revoke(&server, id).await?, 200);
    assert_eq!(
        refusal(enrol(&server, &open_token).await),
        (403, "enrolment_token_revoked".into())
    );
    let default = std::fs::read_to_string(server.data_dir.path().join("enrolment-token"))?;
    enrol(&server, default.trim()).await?;
    assert_eq!(revoke(&server, "default").await?, 200);
    assert_eq!(
        refusal(enrol(&server, default.trim()).await),
        (403, "enrolment_token_revoked".into())
    );
    assert_eq!(revoke(&server, "no-such-token").await?, 404);
    assert_eq!(
        refusal(enrol(&server, "not-a-token").await),
        (401, "bad_enrolment_token".into())
    );
    assert_eq!(
        agents(&server).await?,
        3,
        "only the enrolments that were allowed"
    );

    // Bad limits are refused.
    let zero = server
        .client()?
        .post(format!("{}/api/v1/enrolment-tokens", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&json!({ "label": "x", "max_uses": 0 }))
        .send()
        .await?;
    assert_eq!(zero.status(), 400);

    // The list: uses and states, never the tokens.
    let list = server.api_get("/api/v1/enrolment-tokens").await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 4, "{list}");
    assert!(
        !list.to_string().contains(&token),
        "a token is never listed"
    );
    let find = |id: &str| {
        items
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    let once = find(once["id"].as_str().unwrap_or_default());
    assert_eq!(
        (once["uses"].as_i64(), once["max_uses"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(once["created_by"], "api-token");
    assert!(find(id)["revoked_at_ms"].is_i64());
    assert_eq!(find("default")["uses"], 1);

    // Each creation and revocation is audited with who did it.
    let audit = server.api_get("/api/v1/audit?limit=100").await?;
    let actions: Vec<(String, String)> = audit["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for action in ["create_enrolment_token", "revoke_enrolment_token"] {
        assert!(
            actions.contains(&(action.into(), "api-token".into())),
            "{action}: {audit}"
        );
    }
    server.stop().await
}

async fn post_admin(server: &TestServer, path: &str) -> anyhow::Result<(u16, Value)> {
    let response = server
        .client()?
        .post(format!("{}{path}", server.base_url()))
        .bearer_auth(server.api_token()?)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_agent_is_closed_at_once_and_a_rotated_one_connects_with_its_new_credential()
-> anyhow::Result<()> {
    use capture_shared::protocol::{RefusalCode, ServerMessage};
    use capture_tests::fake_agent::{FakeAgent, hello};
    use std::time::{Duration, Instant};

    let server = TestServer::start().await?;
    let (port, ca) = (server.addr.port(), server.ca_file());
    let default = std::fs::read_to_string(server.data_dir.path().join("enrolment-token"))?;
    let enrolled = enrol(&server, default.trim()).await?;
    let id = enrolled.agent_id;
    let (mut desktop, welcome) =
        FakeAgent::connect(port, &ca, &hello(id, &enrolled.credential)).await?;
    assert!(matches!(welcome, ServerMessage::Welcome(_)), "{welcome:?}");

    // Revoked: the open connection gets `bad_credential` and is closed within a second.
    let revoked_at = Instant::now();
    let (status, body) = post_admin(&server, &format!("/api/v1/agents/{id}/revoke")).await?;
    assert_eq!(
        (status, body["disconnected"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let refusal = desktop.recv(Duration::from_secs(1)).await?;
    assert!(
        matches!(&refusal, ServerMessage::Refused(r) if r.code == RefusalCode::BadCredential),
        "{refusal:?}"
    );
    desktop.closed(Duration::from_secs(1)).await?;
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    let agents = server.api_get("/api/v1/agents").await?;
    assert_eq!(agents["items"][0]["connected"], false, "{agents}");
    assert!(
        agents["items"][0]["credential_revoked_at_ms"].is_i64(),
        "{agents}"
    );

    // It cannot come back with that credential.
    let (_, again) = FakeAgent::connect(port, &ca, &hello(id, &enrolled.credential)).await?;
    assert!(
        matches!(&again, ServerMessage::Refused(r) if r.code == RefusalCode::BadCredential),
        "{again:?}"
    );

    // Rotated: the new credential connects, the old one stays refused.
    let (status, body) = post_admin(&server, &format!("/api/v1/agents/{id}/rotate")).await?;
    assert_eq!(status, 200, "{body}");
    let credential = body["credential"].as_str().unwrap_or_default().to_owned();
    assert_ne!(credential, enrolled.credential);
    let (_, welcome) = FakeAgent::connect(port, &ca, &hello(id, &credential)).await?;
    assert!(matches!(welcome, ServerMessage::Welcome(_)), "{welcome:?}");
    let agents = server.api_get("/api/v1/agents").await?;
    assert!(
        agents["items"][0]["credential_revoked_at_ms"].is_null(),
        "{agents}"
    );
    let (status, _) = post_admin(&server, "/api/v1/agents/not-an-agent/revoke").await?;
    assert_eq!(status, 404);

    let audit = server
        .api_get(&format!("/api/v1/audit?subject={id}"))
        .await?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        actions.contains(&"revoke_agent_credential")
            && actions.contains(&"rotate_agent_credential"),
        "{audit}"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_email_maps_nothing_until_an_administrator_confirms_it() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let default = std::fs::read_to_string(server.data_dir.path().join("enrolment-token"))?;
    let claimed = enroll(
        &server.base_url(),
        Some(&server.ca_file()),
        &EnrollRequest {
            token: default.trim(),
            machine: "pc-9",
            os_user: "mallory",
            email: Some("ceo@example.com"),
        },
    )
    .await?;
    let agent_of = |agents: &Value, id: &str| {
        agents["items"]
            .as_array()
            .and_then(|items| items.iter().find(|a| a["id"] == id).cloned())
            .unwrap_or_default()
    };
    let id = claimed.agent_id.to_string();
    let agents = server.api_get("/api/v1/agents").await?;
    let entry = agent_of(&agents, &id);
    assert!(
        entry["email"].is_null() && entry["person_id"].is_null(),
        "{entry}"
    );
    assert_eq!(entry["claimed_email"], "ceo@example.com");
    let audit = server
        .api_get(&format!("/api/v1/audit?subject={id}&action=claim_email"))
        .await?;
    assert_eq!(audit["items"][0]["detail"], "ceo@example.com", "{audit}");

    // An administrator confirms (maps it): the claim becomes the mapping.
    server
        .client()?
        .patch(format!("{}/api/v1/agents/{id}", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&json!({ "email": "ceo@example.com" }))
        .send()
        .await?
        .error_for_status()?;
    let entry = agent_of(&server.api_get("/api/v1/agents").await?, &id);
    assert_eq!(entry["email"], "ceo@example.com");
    assert!(entry["claimed_email"].is_null(), "{entry}");

    // A token issued for one person enrols desktops as that person.
    let person = uuid::Uuid::new_v4();
    let personal = create(
        &server,
        json!({ "label": "Ana's laptop", "person_id": person.to_string(), "max_uses": 1 }),
    )
    .await?;
    let hers = enrol(&server, personal["token"].as_str().unwrap_or_default()).await?;
    let entry = agent_of(
        &server.api_get("/api/v1/agents").await?,
        &hers.agent_id.to_string(),
    );
    assert_eq!(entry["person_id"], person.to_string(), "{entry}");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_failing_to_enrol_is_throttled() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    for _ in 0..10 {
        assert_eq!(
            refusal(enrol(&server, "guess").await),
            (401, "bad_enrolment_token".into())
        );
    }
    // Now even the right token waits: the address made too many refused attempts.
    let default = std::fs::read_to_string(server.data_dir.path().join("enrolment-token"))?;
    let response = server
        .client()?
        .post(format!("{}/agent/v1/enroll", server.base_url()))
        .json(&json!({ "token": default.trim(), "machine": "pc", "os_user": "u" }))
        .send()
        .await?;
    assert_eq!(response.status(), 429);
    let wait: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = response.json().await?;
    assert_eq!(body["code"], "too_many_enrolments");
    assert_eq!(agents(&server).await?, 0, "nothing enrolled");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_added_by_an_administrator_is_taken_by_capture_agent_as_printed()
-> anyhow::Result<()> {
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?
        .to_owned();
    let binary = capture_tests::desktop::agent_binary(&target)?;
    let server = TestServer::start().await?;
    let added: Value = server
        .client()?
        .post(format!("{}/api/v1/agents", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&json!({ "name": "Alice", "email": "alice@example.com" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let dir = tempfile::tempdir()?;
    let run = |file: &std::path::Path, config: &std::path::Path| {
        std::process::Command::new(&binary)
            .args(["--config"])
            .arg(config)
            .args([
                "enroll",
                "--server",
                &server.base_url(),
                "--source",
                "synthetic-still",
            ])
            .arg("--ca-file")
            .arg(server.ca_file())
            .arg("--credential-file")
            .arg(file)
            .env_remove("CAPTURE_AGENT_ENROLMENT_TOKEN")
            .output()
    };
    let file = dir.path().join("alice.json");
    std::fs::write(&file, added.to_string())?;
    let config = dir.path().join("agent.toml");
    let output = tokio::task::block_in_place(|| run(&file, &config))?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saved = std::fs::read_to_string(&config)?;
    assert!(
        saved.contains(added["id"].as_str().unwrap_or("?")),
        "{saved}"
    );

    // A credential the recorder does not accept is not saved.
    let mut wrong = added.clone();
    wrong["credential"] = json!("00");
    std::fs::write(&file, wrong.to_string())?;
    let refused = dir.path().join("refused.toml");
    let output = tokio::task::block_in_place(|| run(&file, &refused))?;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("does not accept this credential"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!refused.exists());
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_ca_is_the_only_one_trusted_and_plain_http_is_refused() -> anyhow::Result<()> {
    use capture_agent::connection::{ConnectError, Endpoint, connect};
    use capture_agent::enroll::enroll_with;

    let server = TestServer::start().await?;
    let pin = server.ca_sha256()?;
    let default = std::fs::read_to_string(server.data_dir.path().join("enrolment-token"))?;
    let request = EnrollRequest {
        token: default.trim(),
        machine: "pc-pinned",
        os_user: "agent",
        email: None,
    };
    // The pin alone (no CA file, no system root knows this CA) enrols and connects.
    let enrolled = enroll_with(&Endpoint::pinned(&server.base_url(), &pin)?, &request).await?;
    let hello = capture_tests::fake_agent::hello(enrolled.agent_id, &enrolled.credential);
    let endpoint = Endpoint::pinned(&server.base_url(), &pin.to_uppercase())?;
    connect(&endpoint, &hello).await?;

    // Another pin: refused, saying why.
    let other = "00".repeat(32);
    match connect(&Endpoint::pinned(&server.base_url(), &other)?, &hello).await {
        Err(ConnectError::Network(message)) => {
            assert!(message.contains("pinned SHA-256"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Plain http is never spoken.
    let plain = server.base_url().replace("https://", "http://");
    assert!(matches!(
        enroll(&plain, Some(&server.ca_file()), &request).await,
        Err(EnrollError::Tls(ConnectError::BadUrl(_)))
    ));
    server.stop().await
}
