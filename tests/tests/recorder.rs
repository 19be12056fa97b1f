//! The agents' websocket over real TLS: the handshake, its typed refusals, commands driven by
//! Webex events reaching a connected agent, clock pings, frames written to the contact's SCN file
//! through its life cycle, and bad input that closes only the offending connection and writes
//! nothing.

use std::time::Duration;

use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::{
    AgentMessage, FrameHeader, RefusalCode, ServerMessage, encode_frame,
};
use capture_shared::time::{AgentMicros, UtcMicros, UtcMillis};
use capture_tests::fake_agent::{FakeAgent, hello};
use capture_tests::server::TestServer;
use capture_tests::webex::{CallScript, SECRET, post_call_state, post_signed};
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
    let ServerMessage::Start { contact, .. } = desktop.recv(WAIT).await? else {
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

    // After a good handshake: an oversized message, and a frame for a contact this agent was
    // never asked to record, each close their connection.
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

/// Receives until a message matches, skipping the others (markers, acks, ...).
async fn until<T>(
    desktop: &mut FakeAgent,
    mut pick: impl FnMut(&ServerMessage) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = desktop.recv(left).await?;
        if let Some(found) = pick(&message) {
            return Ok(found);
        }
    }
}

/// Rings `call` and waits for the agent's start; returns the contact and its SCN file.
async fn ring(
    server: &TestServer,
    desktop: &mut FakeAgent,
    call: &mut CallScript,
    at: i64,
) -> anyhow::Result<(ContactId, std::path::PathBuf)> {
    post_call_state(server, call, "alerting", at).await?;
    let contact = until(desktop, |m| match m {
        ServerMessage::Start { contact, .. } => Some(*contact),
        _ => None,
    })
    .await?;
    let path = server
        .data_dir
        .path()
        .join("buffer")
        .join(format!("{contact}.scn"));
    Ok((contact, path))
}

/// The sequence numbers of the video records, in file order.
fn video_sequences(records: &[capture_shared::scn::Record]) -> Vec<u64> {
    records
        .iter()
        .filter_map(|r| match r {
            capture_shared::scn::Record::Video { sequence, .. } => Some(*sequence),
            _ => None,
        })
        .collect()
}

fn stream_params(contact: ContactId) -> AgentMessage {
    AgentMessage::StreamParams {
        contact,
        monitor: MonitorId(0),
        codec: capture_shared::protocol::VideoCodec::H264,
        width: 1920,
        height: 1080,
    }
}

fn frame(contact: ContactId, sequence: u64, keyframe: bool) -> Vec<u8> {
    let header = FrameHeader {
        contact,
        monitor: MonitorId(0),
        sequence,
        captured: AgentMicros(1_000_000 + sequence * 200_000),
        keyframe,
    };
    let nal = if keyframe { 0x65 } else { 0x41 };
    encode_frame(&header, &[0, 0, 0, 1, nal, sequence as u8])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_land_in_the_contact_scn_file_through_its_life_cycle() -> anyhow::Result<()> {
    use capture_shared::scn::{Record, recover};
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let (port, ca) = (server.addr.port(), server.ca_file());
    let person = Uuid::from_u128(0xd0e);
    let (agent, credential) = enroll(&server, "Dana", person).await?;
    let (mut desktop, _) = FakeAgent::connect(port, &ca, &hello(agent, &credential)).await?;
    let now = UtcMicros::now().to_millis().0;

    // Ringing: the file exists (tentative) before the agent hears of it.
    let mut call = CallScript::new(person, 11, Uuid::from_u128(0x5e11), UtcMillis(now));
    let (contact, path) = ring(&server, &mut desktop, &mut call, now).await?;
    desktop.send(&stream_params(contact)).await?;
    for sequence in 0..5 {
        desktop
            .send_binary(frame(contact, sequence, sequence == 0))
            .await?;
    }
    // Every frame is acknowledged once durable (acks may be merged).
    until(&mut desktop, |m| match m {
        ServerMessage::Ack { sequence: 4, .. } => Some(()),
        _ => None,
    })
    .await?;
    let agents = server.api_get("/api/v1/agents").await?;
    assert_eq!(agents["items"][0]["state"], "recording");
    assert_eq!(agents["items"][0]["recording"][0]["state"], "tentative");
    assert_eq!(
        agents["items"][0]["recording"][0]["streams"][0]["frames"],
        5
    );

    // A re-sent frame (after a reconnect) is acknowledged, not written twice; a jump without a
    // keyframe is a violation that writes nothing.
    desktop.send_binary(frame(contact, 3, false)).await?;
    until(&mut desktop, |m| match m {
        ServerMessage::Ack { sequence: 4, .. } => Some(()),
        _ => None,
    })
    .await?;

    // Answered, hung up; the wrap-up timer ends the contact: stop, the agent reports what it
    // sent, and the file is closed.
    post_call_state(&server, &mut call, "connected", now + 1_000).await?;
    until(&mut desktop, |m| {
        (*m == ServerMessage::Keep { contact }).then_some(())
    })
    .await?;
    desktop.send_binary(frame(contact, 5, false)).await?;
    post_call_state(&server, &mut call, "disconnected", now + 2_000).await?;
    until(&mut desktop, |m| {
        (*m == ServerMessage::Stop { contact }).then_some(())
    })
    .await?;
    desktop
        .send(&AgentMessage::Stopped {
            contact,
            frames: vec![capture_shared::protocol::StreamTotal {
                monitor: MonitorId(0),
                frames: 6,
            }],
        })
        .await?;
    let recovery = wait_for(|| recover(&path).ok().filter(|r| r.ended).map(|r| r.records)).await?;
    assert_eq!(video_sequences(&recovery), vec![0, 1, 2, 3, 4, 5]);
    let first_video = recovery
        .iter()
        .position(|r| matches!(r, Record::Video { .. }));
    let params = recovery
        .iter()
        .position(|r| matches!(r, Record::StreamParams { width: 1920, .. }));
    assert!(params < first_video && params.is_some(), "{recovery:?}");
    let labels: Vec<&str> = recovery
        .iter()
        .filter_map(|r| match r {
            Record::Marker { label, .. } => Some(label.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        labels.starts_with(&["Ringing"]) && labels.contains(&"Connected"),
        "{labels:?}"
    );
    // Frames still in flight after the close are dropped, not a violation; the agent is told
    // to forget the contact (its file is closed).
    desktop.send_binary(frame(contact, 6, false)).await?;
    until(&mut desktop, |m| {
        (*m == ServerMessage::Forget { contact }).then_some(())
    })
    .await?;
    assert_eq!(
        recover(&path)?
            .records
            .iter()
            .filter(|r| matches!(r, Record::Video { .. }))
            .count(),
        6
    );

    // A call that rings and is never answered: the file is deleted, and the deletion audited.
    let later = now + 10_000;
    let mut missed = CallScript::new(person, 12, Uuid::from_u128(0x5e12), UtcMillis(later));
    let (unanswered, missed_path) = ring(&server, &mut desktop, &mut missed, later).await?;
    desktop.send(&stream_params(unanswered)).await?;
    desktop.send_binary(frame(unanswered, 0, true)).await?;
    until(&mut desktop, |m| {
        matches!(m, ServerMessage::Ack { contact, .. } if *contact == unanswered).then_some(())
    })
    .await?;
    assert!(missed_path.exists());
    post_call_state(&server, &mut missed, "disconnected", later + 3_000).await?;
    until(&mut desktop, |m| {
        (*m == ServerMessage::Discard {
            contact: unanswered,
        })
        .then_some(())
    })
    .await?;
    let detail = wait_for_json(&server, &format!("/api/v1/contacts/{unanswered}"), |d| {
        d["audit"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["action"] == "delete_screen_recording"))
    })
    .await?;
    assert!(!missed_path.exists(), "{detail}");

    // The session survived all of it.
    desktop
        .send(&AgentMessage::Ping {
            nonce: 3,
            agent_sent: AgentMicros(9),
        })
        .await?;
    until(&mut desktop, |m| {
        matches!(m, ServerMessage::Pong { nonce: 3, .. }).then_some(())
    })
    .await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_frames_are_refused_and_write_nothing() -> anyhow::Result<()> {
    use capture_shared::scn::recover;
    let server = TestServer::start().await?;
    let (port, ca) = (server.addr.port(), server.ca_file());
    let person = Uuid::from_u128(0xe0e);
    let (agent, credential) = enroll(&server, "Erin", person).await?;
    let (other, other_credential) = enroll(&server, "Finn", Uuid::from_u128(0xf1)).await?;
    let (mut desktop, _) = FakeAgent::connect(port, &ca, &hello(agent, &credential)).await?;
    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(person, 21, Uuid::from_u128(0x5e21), UtcMillis(now));
    let (contact, path) = ring(&server, &mut desktop, &mut call, now).await?;

    // Another agent writing into this contact: refused.
    let (mut intruder, _) = FakeAgent::connect(port, &ca, &hello(other, &other_credential)).await?;
    intruder.send(&stream_params(contact)).await?;
    assert_eq!(
        refusal_code(&until(&mut intruder, |m| Some(m.clone())).await?),
        Some(RefusalCode::ProtocolViolation)
    );

    // Each violation closes the session; the agent reconnects for the next one.
    let violations: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "frame before stream parameters",
            vec![frame(contact, 0, true)],
        ),
        ("garbage", vec![vec![7; 40]]),
        (
            "empty access unit",
            vec![frame(contact, 0, true)[..36].to_vec()],
        ),
        (
            "not starting with a keyframe",
            vec![frame(contact, 0, false)],
        ),
        (
            "a monitor without stream parameters",
            vec![{
                let mut bytes = frame(contact, 0, true);
                bytes[2] = 9;
                bytes
            }],
        ),
    ];
    for (what, frames) in violations {
        if what != "frame before stream parameters" {
            desktop.send(&stream_params(contact)).await?;
        }
        for bytes in frames {
            desktop.send_binary(bytes).await?;
        }
        let refused = until(&mut desktop, refusal_code).await;
        assert_eq!(refused.ok(), Some(RefusalCode::ProtocolViolation), "{what}");
        desktop = FakeAgent::connect(port, &ca, &hello(agent, &credential))
            .await?
            .0;
    }
    // A jump without a keyframe, after a valid start.
    desktop.send(&stream_params(contact)).await?;
    desktop.send_binary(frame(contact, 0, true)).await?;
    desktop.send_binary(frame(contact, 5, false)).await?;
    assert_eq!(
        until(&mut desktop, refusal_code).await.ok(),
        Some(RefusalCode::ProtocolViolation)
    );

    // Nothing of the refused input is in the file: only the one valid keyframe.
    let videos = video_sequences;
    let records = wait_for(|| {
        recover(&path)
            .ok()
            .map(|r| r.records)
            .filter(|r| !videos(r).is_empty())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(videos(&recover(&path)?.records), vec![0]);
    assert_eq!(videos(&records), vec![0]);
    let metrics = server.metrics().await?;
    assert!(
        metrics.contains("capture_agent_protocol_violations_total 7"),
        "{metrics}"
    );
    server.stop().await
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = probe() {
            return Ok(found);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_json(
    server: &TestServer,
    path: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let value = server.api_get(path).await?;
        if done(&value) {
            return Ok(value);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "timed out: {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reopens_open_files_and_their_streams_continue() -> anyhow::Result<()> {
    use std::sync::Arc;

    use capture_server::clock::Clock;
    use capture_server::integration::link::NoAgentLink;
    use capture_server::recorder::{CallBuffer, Verdict};
    use capture_server::store::Store;
    use capture_shared::scn::recover;

    let dir = tempfile::tempdir()?;
    let (agent, contact) = (AgentId(Uuid::new_v4()), ContactId(Uuid::new_v4()));
    let header = |sequence: u64, keyframe: bool| FrameHeader {
        contact,
        monitor: MonitorId(0),
        sequence,
        captured: AgentMicros(1_000 + sequence),
        keyframe,
    };
    let start = |store: &Store| {
        Arc::new(
            CallBuffer::new(
                dir.path().to_owned(),
                store.clone(),
                Clock::system(),
                Arc::new(NoAgentLink),
                // An agent that never comes back: the stopped contact closes at the first look.
                std::time::Duration::from_secs(1),
                0,
            )
            .expect("the append thread starts"),
        )
    };
    // First run: a contact with three frames, never closed (the server stops mid-call).
    let store = Store::open(dir.path()).await?;
    let buffer = start(&store);
    buffer.open(
        agent,
        contact,
        vec![capture_tests::scn_samples::primary_1080p()],
    );
    let params = buffer.stream_params(
        agent,
        contact,
        MonitorId(0),
        capture_shared::protocol::VideoCodec::H264,
        (1920, 1080),
    );
    let Verdict::Write(params) = params else {
        panic!("parameters refused: {params:?}")
    };
    params.submit_now();
    for sequence in 0..3 {
        match buffer.frame(agent, &header(sequence, sequence == 0), &[0, 0, 1, 0x65]) {
            Verdict::Write(pending) => pending.submit().await,
            other => panic!("frame {sequence}: {other:?}"),
        }
    }
    // A second contact whose call ended while the server was down (the integration closed it
    // and will not say so again): reopened, then closed by the buffer itself.
    let ended = ContactId(Uuid::new_v4());
    buffer.open(
        agent,
        ended,
        vec![capture_tests::scn_samples::primary_1080p()],
    );
    let mut tx = store.begin().await?;
    tx.create_contact(
        ended,
        capture_shared::ids::PersonId(Uuid::new_v4()),
        Some(agent),
        0,
    )
    .await?;
    tx.set_contact_state(ended, "closed", Some((1, "agent available")))
        .await?;
    tx.commit().await?;
    wait_for(|| {
        dir.path()
            .join("buffer")
            .join(format!("{ended}.scn"))
            .exists()
            .then_some(())
    })
    .await?;
    buffer.close().await;
    store.close().await;

    // Second run: the file is reopened; what the agent re-sends is a duplicate, what follows is
    // appended; the agent would be told to continue from sequence 3.
    let store = Store::open(dir.path()).await?;
    let buffer = start(&store);
    assert_eq!(buffer.recover().await?, 2);
    let recordings = buffer.recordings(agent);
    let resumed = recordings
        .iter()
        .find(|r| r.contact == contact)
        .expect("the open contact is recording again");
    assert_eq!(resumed.streams[0].frames, 3);
    let closing = recordings.iter().find(|r| r.contact == ended);
    assert_eq!(closing.map(|r| r.state), Some("closing"));
    assert!(matches!(
        buffer.frame(agent, &header(2, false), &[0, 0, 1, 0x41]),
        Verdict::Duplicate(_)
    ));
    match buffer.frame(agent, &header(3, false), &[0, 0, 1, 0x41]) {
        Verdict::Write(pending) => pending.submit().await,
        other => panic!("frame 3: {other:?}"),
    }
    buffer.stop(contact);
    buffer.stopped(agent, contact, &[]);
    let path = dir.path().join("buffer").join(format!("{contact}.scn"));
    let records = wait_for(|| recover(&path).ok().filter(|r| r.ended).map(|r| r.records)).await?;
    assert_eq!(video_sequences(&records), vec![0, 1, 2, 3]);
    let entry = wait_for_state(&store, contact).await?;
    assert_eq!(
        (entry.frames, entry.state),
        (4, capture_server::store::ScnState::Closed)
    );
    wait_for_state(&store, ended).await?;
    // Its agent never came back for it: closed at the offline deadline, the gap named.
    let ended_records = recover(&dir.path().join("buffer").join(format!("{ended}.scn")))?.records;
    assert!(
        ended_records.iter().any(
            |r| matches!(r, capture_shared::scn::Record::Gap { reason, .. }
            if reason == capture_server::recorder::GAP_SPOOL_NOT_RECEIVED)
        ),
        "{ended_records:?}"
    );
    buffer.close().await;
    store.close().await;
    Ok(())
}

async fn wait_for_state(
    store: &capture_server::store::Store,
    contact: ContactId,
) -> anyhow::Result<capture_server::store::ScnFileEntry> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(entry) = store.scn_file(contact).await?
            && entry.state == capture_server::store::ScnState::Closed
        {
            return Ok(entry);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "not closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_desktops_are_mapped_to_their_person_by_an_administrator() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let (first, person) = server.enroll_desktop("pc-1").await?;
    let (second, _) = server.enroll_desktop("pc-2").await?;
    let agents = server.api_get("/api/v1/agents").await?;
    let entry = agents["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["id"] == first.agent_id.to_string()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["person_id"], person.to_string());
    assert_eq!(entry["name"], "agent1@pc-1");
    let patch = |id: String, body: serde_json::Value| {
        let server = &server;
        async move {
            let response = server
                .client()?
                .patch(format!("{}/api/v1/agents/{id}", server.base_url()))
                .bearer_auth(server.api_token()?)
                .json(&body)
                .send()
                .await?;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            anyhow::Ok((status, body["code"].as_str().unwrap_or_default().to_owned()))
        }
    };
    // The same person for a second desktop: a conflict; an unknown agent; an empty mapping.
    let same = json!({ "person_id": person.to_string() });
    assert_eq!(
        patch(second.agent_id.to_string(), same).await?,
        (409, "conflict".into())
    );
    let unknown = Uuid::new_v4().to_string();
    assert_eq!(
        patch(unknown, json!({ "email": "a@example.com" })).await?.0,
        404
    );
    assert_eq!(
        patch(second.agent_id.to_string(), json!({})).await?,
        (400, "bad_body".into())
    );
    assert_eq!(
        patch(
            second.agent_id.to_string(),
            json!({ "email": "b@example.com" })
        )
        .await?
        .0,
        200
    );
    // Without the administrator's token: refused.
    let anonymous = server
        .client()?
        .patch(format!(
            "{}/api/v1/agents/{}",
            server.base_url(),
            second.agent_id
        ))
        .json(&json!({ "email": "c@example.com" }))
        .send()
        .await?;
    assert_eq!(anonymous.status().as_u16(), 401);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_screen_is_a_named_gap_in_the_file_and_on_the_timeline() -> anyhow::Result<()> {
    use capture_shared::protocol::ClockSample;
    use capture_shared::scn::{Record, recover};
    let server = TestServer::start_with(|config| config.integration.wrap_up_s = 1).await?;
    let (port, ca) = (server.addr.port(), server.ca_file());
    let person = Uuid::from_u128(0x10c);
    let (agent, credential) = enroll(&server, "Lee", person).await?;
    let mut hello = hello(agent, &credential);
    hello.capture_backend = Some("gdi".into());
    let (mut desktop, _) = FakeAgent::connect(port, &ca, &hello).await?;
    let agents = server.api_get("/api/v1/agents").await?;
    assert_eq!(agents["items"][0]["connection"]["capture_backend"], "gdi");

    // A fallback shows in the next heartbeat.
    desktop
        .send(&AgentMessage::Heartbeat {
            recording: vec![],
            spool_bytes: 0,
            capture_backend: Some("dxgi".into()),
        })
        .await?;
    wait_for_json(&server, "/api/v1/agents", |a| {
        a["items"][0]["connection"]["capture_backend"] == "dxgi"
    })
    .await?;

    let now = UtcMicros::now().to_millis().0;
    let mut call = CallScript::new(person, 21, Uuid::from_u128(0x5e21), UtcMillis(now));
    let (contact, path) = ring(&server, &mut desktop, &mut call, now).await?;
    // The agent's clock is 10 s behind the server's: agent 1_000_000 µs = server `now` ms.
    let server_at = |agent_us: u64| UtcMicros(now * 1000 + agent_us as i64 - 1_000_000);
    desktop
        .send(&AgentMessage::Clock {
            sample: ClockSample {
                agent_sent: AgentMicros(999_000),
                server_received: server_at(999_500),
                server_sent: server_at(999_500),
                agent_received: AgentMicros(1_000_000),
            },
        })
        .await?;
    desktop.send(&stream_params(contact)).await?;
    desktop.send_binary(frame(contact, 0, true)).await?;
    // Locked from agent time 1.2 s to 4.2 s.
    let gap = |contact, monitor, from: u64, to: u64, reason: &str| AgentMessage::CaptureGap {
        contact,
        monitor: MonitorId(monitor),
        from: AgentMicros(from),
        to: AgentMicros(to),
        reason: reason.into(),
    };
    desktop
        .send(&gap(contact, 0, 1_200_000, 4_200_000, "screen locked"))
        .await?;
    // A gap for a contact that is not this agent's changes nothing.
    desktop
        .send(&gap(
            ContactId(Uuid::from_u128(9)),
            0,
            1,
            2,
            "screen locked",
        ))
        .await?;
    desktop.send_binary(frame(contact, 1, true)).await?;
    until(&mut desktop, |m| match m {
        ServerMessage::Ack { sequence: 1, .. } => Some(()),
        _ => None,
    })
    .await?;
    let detail = wait_for_json(&server, &format!("/api/v1/contacts/{contact}"), |d| {
        d["gaps"].as_array().is_some_and(|g| !g.is_empty())
    })
    .await?;
    let gaps = detail["gaps"].as_array().cloned().unwrap_or_default();
    assert_eq!(gaps.len(), 1, "{detail}");
    assert_eq!(gaps[0]["reason"], "screen locked (monitor 0)");
    let (from_ms, to_ms) = (gaps[0]["from_ms"].as_i64(), gaps[0]["to_ms"].as_i64());
    assert!(
        (from_ms.unwrap_or(0) - (now + 200)).abs() <= 1
            && (to_ms.unwrap_or(0) - (now + 3_200)).abs() <= 1,
        "{detail}"
    );
    let records = recover(&path)?.records;
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Gap { reason, from, to }
            if reason == "screen locked" && to.0 - from.0 == 3_000_000)),
        "{records:?}"
    );

    // A gap of a monitor the agent no longer lists (removed during the contact, the gap sent
    // from its queue afterwards) is written too: it names its monitor.
    desktop
        .send(&gap(contact, 7, 1, 2, "screen locked"))
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let detail = server
            .api_get(&format!("/api/v1/contacts/{contact}"))
            .await?;
        let gaps = detail["gaps"].as_array().cloned().unwrap_or_default();
        if gaps
            .iter()
            .any(|g| g["reason"] == "screen locked (monitor 7)")
        {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "{detail}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await
}
