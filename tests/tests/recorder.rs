//! The agents' websocket over real TLS: the handshake, its typed refusals, commands driven by
//! Webex events reaching a connected agent, clock pings, and bad input that closes only the
//! offending connection.

use std::time::Duration;

use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::{
    AgentMessage, FrameHeader, RefusalCode, ServerMessage, encode_frame,
};
use capture_shared::time::{AgentMicros, UtcMicros, UtcMillis};
use capture_tests::fake_agent::{FakeAgent, hello};
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, SECRET, post_signed};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

async fn enroll(
    server: &TestServer,
    name: &str,
    person: Uuid,
) -> anyhow::Result<(AgentId, String)> {
    let body: serde_json::Value = server
        .client()?
        .post(format!("{}/api/v1/agents", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&json!({ "name": name, "person_id": person.to_string() }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = AgentId(Uuid::parse_str(body["id"].as_str().expect("id"))?);
    Ok((
        id,
        body["credential"].as_str().expect("credential").to_owned(),
    ))
}

fn refusal_code(message: &ServerMessage) -> Option<RefusalCode> {
    match message {
        ServerMessage::Refused(refusal) => Some(refusal.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_agent_gets_the_commands_of_its_calls() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let person = Uuid::from_u128(0xa9e);
    let (agent, credential) = enroll(&server, "Alice", person).await?;
    let (mut desktop, welcome) = FakeAgent::connect(
        server.addr.port(),
        &server.ca_file(),
        &hello(agent, &credential),
    )
    .await?;
    let ServerMessage::Welcome(welcome) = welcome else {
        panic!("expected welcome, got {welcome:?}")
    };
    assert_eq!(welcome.settings.fps_max, 5.0);

    let agents = server.api_get("/api/v1/agents").await?;
    assert_eq!(agents["items"][0]["connected"], true);
    assert_eq!(agents["items"][0]["connection"]["machine"], "pc-017");

    // Clock ping.
    desktop
        .send(&AgentMessage::Ping {
            nonce: 7,
            agent_sent: AgentMicros(1_000),
        })
        .await?;
    let before = UtcMicros::now();
    match desktop.recv(WAIT).await? {
        ServerMessage::Pong {
            nonce,
            agent_sent,
            server_received,
            server_sent,
        } => {
            assert_eq!((nonce, agent_sent), (7, AgentMicros(1_000)));
            assert!(
                server_received <= server_sent && (server_received.0 - before.0).abs() < 5_000_000
            );
        }
        other => panic!("expected pong, got {other:?}"),
    }

    // A call rings for the agent's person: start, then the Ringing marker; answered: keep.
    let url = format!("{}/webhooks/webex", server.base_url());
    let client = server.client()?;
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(person, 5, Uuid::from_u128(55), UtcMillis(now));
    post_signed(
        &client,
        &url,
        SECRET,
        &serde_json::to_vec(&call.envelope("alerting", UtcMillis(now)))?,
    )
    .await?;
    let ServerMessage::Start { contact } = desktop.recv(WAIT).await? else {
        panic!("expected start")
    };
    assert!(
        matches!(desktop.recv(WAIT).await?, ServerMessage::Marker { label, .. } if label == "Ringing")
    );
    post_signed(
        &client,
        &url,
        SECRET,
        &serde_json::to_vec(&call.envelope("connected", UtcMillis(now + 1_000)))?,
    )
    .await?;
    assert!(
        matches!(desktop.recv(WAIT).await?, ServerMessage::Marker { label, .. } if label == "Connected")
    );
    assert_eq!(desktop.recv(WAIT).await?, ServerMessage::Keep { contact });

    // The agent was connected: no screen gap on the contact.
    let detail = server
        .api_get(&format!("/api/v1/contacts/{contact}"))
        .await?;
    assert_eq!(detail["agent_id"], agent.to_string());
    assert_eq!(detail["gaps"], json!([]));

    // Shutting down tells the agent so, and does not wait out the grace period on its socket.
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.stop());
    assert_eq!(
        refusal_code(&desktop.recv(WAIT).await?),
        Some(RefusalCode::ShuttingDown)
    );
    stopping.await??;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped in {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshakes_and_bad_messages_close_only_their_own_connection() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let (port, ca) = (server.addr.port(), server.ca_file());
    let (agent, credential) = enroll(&server, "Bob", Uuid::from_u128(0xb0b)).await?;
    let (mut good, welcome) = FakeAgent::connect(port, &ca, &hello(agent, &credential)).await?;
    assert!(matches!(welcome, ServerMessage::Welcome(_)));

    // Wrong credential; unknown agent.
    let (_, answer) = FakeAgent::connect(port, &ca, &hello(agent, "not-the-credential")).await?;
    assert_eq!(refusal_code(&answer), Some(RefusalCode::BadCredential));
    let (_, answer) =
        FakeAgent::connect(port, &ca, &hello(AgentId(Uuid::from_u128(9)), &credential)).await?;
    assert_eq!(refusal_code(&answer), Some(RefusalCode::BadCredential));
    // A future protocol version.
    let mut future = FakeAgent::open(port, &ca).await?;
    future
        .send_text(r#"{"type":"hello","protocol_version":9,"whatever":true}"#)
        .await?;
    assert_eq!(
        refusal_code(&future.recv(WAIT).await?),
        Some(RefusalCode::UnsupportedProtocolVersion)
    );
    // Garbage instead of a hello, and a frame instead of a hello.
    let mut garbage = FakeAgent::open(port, &ca).await?;
    garbage.send_text("{{{{").await?;
    assert_eq!(
        refusal_code(&garbage.recv(WAIT).await?),
        Some(RefusalCode::MalformedHello)
    );
    let mut binary = FakeAgent::open(port, &ca).await?;
    binary.send_binary(vec![0; 64]).await?;
    assert_eq!(
        refusal_code(&binary.recv(WAIT).await?),
        Some(RefusalCode::MalformedHello)
    );

    // After a good handshake: an oversized message, and a frame (not accepted yet) each close
    // their connection.
    let (agent2, credential2) = enroll(&server, "Carol", Uuid::from_u128(0xca)).await?;
    let (mut oversized, _) = FakeAgent::connect(port, &ca, &hello(agent2, &credential2)).await?;
    oversized
        .send_binary(vec![1; capture_shared::protocol::MAX_FRAME_BYTES + 1])
        .await
        .ok();
    oversized.closed(WAIT).await?;
    let (mut framer, _) = FakeAgent::connect(port, &ca, &hello(agent2, &credential2)).await?;
    let header = FrameHeader {
        contact: ContactId(Uuid::from_u128(1)),
        monitor: MonitorId(0),
        sequence: 0,
        captured: AgentMicros(0),
        keyframe: true,
    };
    framer
        .send_binary(encode_frame(&header, &[0, 0, 0, 1, 0x65]))
        .await?;
    assert_eq!(
        refusal_code(&framer.recv(WAIT).await?),
        Some(RefusalCode::ProtocolViolation)
    );

    // The good agent was unaffected.
    good.send(&AgentMessage::Ping {
        nonce: 1,
        agent_sent: AgentMicros(5),
    })
    .await?;
    assert!(matches!(
        good.recv(WAIT).await?,
        ServerMessage::Pong { nonce: 1, .. }
    ));
    // A newer connection of the same agent replaces the older one.
    let (_newer, welcome) = FakeAgent::connect(port, &ca, &hello(agent, &credential)).await?;
    assert!(matches!(welcome, ServerMessage::Welcome(_)));
    assert_eq!(
        refusal_code(&good.recv(WAIT).await?),
        Some(RefusalCode::AlreadyConnected)
    );
    server.stop().await
}
