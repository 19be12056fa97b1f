//! One agent connection: handshake, then commands down, pings and heartbeats up.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use capture_shared::ids::AgentId;
use capture_shared::protocol::{
    AgentMessage, HEARTBEAT_TIMEOUT, HELLO_TIMEOUT, Hello, PROTOCOL_VERSION, ProtocolError,
    RefusalCode, ServerMessage, Welcome,
};
use capture_shared::time::UtcMicros;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{COMMAND_QUEUE, ConnectedAgent, Recorder};

/// WebSocket close code for a refused or broken session (RFC 6455: policy violation).
const CLOSE_POLICY: u16 = 1008;

async fn refuse(socket: &mut WebSocket, code: RefusalCode, message: &str) {
    tracing::info!(?code, message, "agent connection refused");
    let refusal = ServerMessage::refusal(code, message).to_json();
    let _ = socket.send(Message::Text(refusal.into())).await;
    let reason: String = message.chars().take(100).collect();
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: CLOSE_POLICY,
            reason: reason.into(),
        })))
        .await;
}

/// Waits for the `Hello` and checks it; `None` when the connection was refused.
async fn handshake(recorder: &Recorder, socket: &mut WebSocket) -> Option<Hello> {
    let first = match tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(message))) => message,
        Ok(_) => return None,
        Err(_) => {
            refuse(
                socket,
                RefusalCode::MalformedHello,
                "no hello within the time limit",
            )
            .await;
            return None;
        }
    };
    let Message::Text(text) = first else {
        refuse(
            socket,
            RefusalCode::MalformedHello,
            "the first message must be a text hello",
        )
        .await;
        return None;
    };
    let hello = match AgentMessage::parse(text.as_str()) {
        Ok(AgentMessage::Hello(hello)) => hello,
        Err(ProtocolError::UnsupportedVersion { got, .. }) => {
            refuse(
                socket,
                RefusalCode::UnsupportedProtocolVersion,
                &format!("protocol version {got} is not supported"),
            )
            .await;
            return None;
        }
        Ok(_) => {
            refuse(
                socket,
                RefusalCode::MalformedHello,
                "the first message must be a hello",
            )
            .await;
            return None;
        }
        Err(error) => {
            refuse(socket, RefusalCode::MalformedHello, &error.to_string()).await;
            return None;
        }
    };
    match recorder
        .store
        .agent_credential_matches(hello.agent_id, &hello.credential)
        .await
    {
        Ok(true) => Some(hello),
        Ok(false) => {
            refuse(
                socket,
                RefusalCode::BadCredential,
                "unknown agent or wrong credential",
            )
            .await;
            None
        }
        Err(error) => {
            tracing::error!(%error, "checking an agent credential failed");
            refuse(
                socket,
                RefusalCode::ShuttingDown,
                "the server cannot check credentials now; retry later",
            )
            .await;
            None
        }
    }
}

/// Runs one connection to its end.
pub async fn run(recorder: Recorder, mut socket: WebSocket) {
    let Some(hello) = handshake(&recorder, &mut socket).await else {
        return;
    };
    let agent = hello.agent_id;
    let welcome = ServerMessage::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        settings: recorder.settings.clone(),
        server_time: UtcMicros(recorder.clock.now_ms().saturating_mul(1000)),
    });
    if socket
        .send(Message::Text(welcome.to_json().into()))
        .await
        .is_err()
    {
        return;
    }
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let info = ConnectedAgent {
        os_user: hello.os_user,
        machine: hello.machine,
        agent_version: hello.agent_version,
        monitors: hello.monitors,
        connected_at_ms: recorder.clock.now_ms(),
    };
    let connection = recorder.connections.register(agent, commands_tx, info);
    tracing::info!(%agent, connection, "agent connected");
    let end = serve(agent, &mut socket, commands, &recorder.shutdown).await;
    recorder.connections.unregister(agent, connection);
    tracing::info!(%agent, connection, reason = end, "agent disconnected");
}

/// The connected loop; returns why it ended.
async fn serve(
    agent: AgentId,
    socket: &mut WebSocket,
    mut commands: mpsc::Receiver<ServerMessage>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> &'static str {
    let mut deadline = Instant::now() + HEARTBEAT_TIMEOUT;
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => {
                    if socket.send(Message::Text(command.to_json().into())).await.is_err() {
                        return "send failed";
                    }
                }
                None => {
                    refuse(socket, RefusalCode::AlreadyConnected, "a newer connection of this agent replaced this one").await;
                    return "replaced";
                }
            },
            incoming = socket.recv() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(_)) | None => return "closed",
                };
                deadline = Instant::now() + HEARTBEAT_TIMEOUT;
                match message {
                    Message::Text(text) => match AgentMessage::parse(text.as_str()) {
                        Ok(AgentMessage::Ping { nonce, agent_sent }) => {
                            let received = UtcMicros::now();
                            let pong = ServerMessage::Pong { nonce, agent_sent, server_received: received, server_sent: UtcMicros::now() };
                            if socket.send(Message::Text(pong.to_json().into())).await.is_err() {
                                return "send failed";
                            }
                        }
                        Ok(AgentMessage::Hello(_)) => {
                            refuse(socket, RefusalCode::ProtocolViolation, "hello after the handshake").await;
                            return "protocol violation";
                        }
                        Ok(other) => tracing::debug!(%agent, message = ?other, "agent message"),
                        Err(error) => {
                            refuse(socket, RefusalCode::ProtocolViolation, &error.to_string()).await;
                            return "protocol violation";
                        }
                    },
                    Message::Binary(_) => {
                        // Screen frames land in SCN files once the recorder writes them; until
                        // then they are refused, never dropped silently.
                        refuse(socket, RefusalCode::ProtocolViolation, "this server does not accept screen frames yet").await;
                        return "frames not accepted";
                    }
                    Message::Close(_) => return "closed by the agent",
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            () = shutdown.cancelled() => {
                refuse(socket, RefusalCode::ShuttingDown, "the server is shutting down; reconnect later").await;
                return "server shutting down";
            }
            () = tokio::time::sleep_until(deadline) => {
                refuse(socket, RefusalCode::ProtocolViolation, "no heartbeat").await;
                return "heartbeat timeout";
            }
        }
    }
}
