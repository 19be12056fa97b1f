//! One agent connection: handshake, then commands and acks down; pings, heartbeats, stream
//! messages and frames up. Frames are checked here and in the call buffer before they are queued
//! for writing; any violation ends the session with a typed refusal and writes nothing.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use capture_shared::ids::{AgentId, ContactId};
use capture_shared::protocol::{
    AgentMessage, HEARTBEAT_TIMEOUT, HELLO_TIMEOUT, HeldContact, Hello, PROTOCOL_VERSION,
    ProtocolError, RefusalCode, ServerMessage, Welcome, decode_frame,
};
use capture_shared::time::UtcMicros;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{COMMAND_QUEUE, ConnectedAgent, Recorder, Verdict};

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
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    // What the server holds of each of the agent's open contacts, so that it sends its spool
    // from there; which contacts of its spool are no longer taken; and the contacts it should be
    // recording (it reconnected, or restarted, mid-contact).
    let recordings = recorder.buffer.recordings(agent);
    let held: Vec<HeldContact> = recordings
        .iter()
        .map(|r| HeldContact {
            contact: r.contact,
            streams: r.streams.clone(),
            ended: r.state == super::buffer::CLOSING,
        })
        .collect();
    let forget: Vec<ContactId> = hello
        .spooled
        .iter()
        .flatten()
        .filter(|s| !recordings.iter().any(|r| r.contact == s.contact))
        .map(|s| s.contact)
        .collect();
    for spooled in hello.spooled.iter().flatten() {
        if forget.contains(&spooled.contact) {
            tracing::warn!(%agent, contact = %spooled.contact, "the agent spooled a contact whose file is closed or deleted: it is told to forget it");
        }
    }
    for recording in recordings {
        if recording.state != super::buffer::CLOSING {
            let _ = commands_tx.try_send(ServerMessage::Start {
                contact: recording.contact,
                resume: recording.streams,
            });
        }
    }
    let info = ConnectedAgent {
        os_user: hello.os_user,
        machine: hello.machine,
        agent_version: hello.agent_version,
        capture_backend: hello.capture_backend,
        monitors: hello.monitors,
        connected_at_ms: recorder.clock.now_ms(),
        last_heartbeat_ms: None,
        spool_bytes: 0,
    };
    // Registered before the welcome, so that whoever hears of the agent from it (the API, a
    // command) finds it connected; commands queue until the welcome is sent.
    let connection = recorder.connections.register(agent, commands_tx, info);
    let welcome = ServerMessage::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        settings: recorder.settings.clone(),
        server_time: UtcMicros(recorder.clock.now_ms().saturating_mul(1000)),
        held,
        forget,
    });
    if socket
        .send(Message::Text(welcome.to_json().into()))
        .await
        .is_err()
    {
        recorder.connections.unregister(agent, connection);
        return;
    }
    tracing::info!(%agent, connection, "agent connected");
    if let Some(cap) = recorder.buffer.load().cap() {
        // The recorder is shedding load: this agent captures at the lowered rate too.
        let settings = super::load::Load::settings(&recorder.settings, Some(cap));
        crate::integration::link::AgentLink::send(
            recorder.connections.as_ref(),
            agent,
            ServerMessage::Settings(settings),
        );
    }
    let mut session = Session {
        recorder: &recorder,
        agent,
        connection,
    };
    let end = session.serve(&mut socket, commands).await;
    recorder.connections.unregister(agent, connection);
    tracing::info!(%agent, connection, reason = end, "agent disconnected");
}

/// One connected agent's session state.
struct Session<'a> {
    recorder: &'a Recorder,
    agent: AgentId,
    connection: u64,
}

/// What to do after one message from the agent.
enum Next {
    Continue,
    Reply(ServerMessage),
    Refuse(String),
}

impl Session<'_> {
    /// The connected loop; returns why it ended.
    async fn serve(
        &mut self,
        socket: &mut WebSocket,
        mut commands: mpsc::Receiver<ServerMessage>,
    ) -> &'static str {
        let shutdown = self.recorder.shutdown.clone();
        let mut deadline = Instant::now() + HEARTBEAT_TIMEOUT;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(ServerMessage::Refused(refusal)) => {
                        // The credential was revoked or replaced: say so and close.
                        let text = ServerMessage::Refused(refusal).to_json();
                        let _ = socket.send(Message::Text(text.into())).await;
                        let _ = socket.send(Message::Close(None)).await;
                        return "credential revoked";
                    }
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
                        Some(Err(error)) => {
                            // Oversized messages end here (the websocket's size limits).
                            tracing::info!(agent = %self.agent, %error, "agent websocket error");
                            refuse(socket, RefusalCode::ProtocolViolation, &error.to_string()).await;
                            return "websocket error";
                        }
                        None => return "closed",
                    };
                    deadline = Instant::now() + HEARTBEAT_TIMEOUT;
                    let next = match message {
                        Message::Text(text) => self.control(text.as_str()).await,
                        Message::Binary(bytes) => self.frame(&bytes).await,
                        Message::Close(_) => return "closed by the agent",
                        Message::Ping(_) | Message::Pong(_) => Next::Continue,
                    };
                    match next {
                        Next::Continue => {}
                        Next::Reply(reply) => {
                            if socket.send(Message::Text(reply.to_json().into())).await.is_err() {
                                return "send failed";
                            }
                        }
                        Next::Refuse(reason) => {
                            self.recorder.metrics_violation();
                            refuse(socket, RefusalCode::ProtocolViolation, &reason).await;
                            return "protocol violation";
                        }
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

    async fn control(&mut self, text: &str) -> Next {
        let buffer = &self.recorder.buffer;
        let message = match AgentMessage::parse(text) {
            Ok(message) => message,
            Err(error) => return Next::Refuse(error.to_string()),
        };
        match message {
            AgentMessage::Ping { nonce, agent_sent } => {
                let received = UtcMicros::now();
                Next::Reply(ServerMessage::Pong {
                    nonce,
                    agent_sent,
                    server_received: received,
                    server_sent: UtcMicros::now(),
                })
            }
            AgentMessage::Hello(_) => Next::Refuse("hello after the handshake".into()),
            AgentMessage::Heartbeat {
                spool_bytes,
                capture_backend,
                ..
            } => {
                self.recorder.connections.set_heartbeat(
                    self.agent,
                    self.connection,
                    spool_bytes,
                    capture_backend,
                );
                Next::Continue
            }
            AgentMessage::CaptureGap {
                contact,
                monitor,
                from,
                to,
                reason,
            } => {
                let Some((from, to)) = buffer.capture_gap(self.agent, contact, from, to, &reason)
                else {
                    return Next::Continue; // a contact that ended already, or not this agent's
                };
                tracing::info!(agent = %self.agent, %contact, %monitor, reason, "screen not captured for a while");
                let label = format!("{reason} (monitor {monitor})");
                if let Err(error) = self
                    .recorder
                    .store
                    .add_contact_gap(contact, from.0 / 1000, to.0 / 1000, &label)
                    .await
                {
                    tracing::error!(%contact, %error, "recording a capture gap failed");
                }
                Next::Continue
            }
            AgentMessage::StreamEnded {
                contact,
                monitor,
                at,
                reason,
            } => {
                if buffer.stream_end(self.agent, contact, monitor, at, &reason) {
                    tracing::info!(agent = %self.agent, %contact, %monitor, reason, "a monitor's stream ended");
                }
                Next::Continue
            }
            AgentMessage::Monitors { monitors } => {
                tracing::info!(agent = %self.agent, monitors = monitors.len(), "the agent's monitors changed");
                self.recorder
                    .connections
                    .set_monitors(self.agent, self.connection, monitors);
                Next::Continue
            }
            AgentMessage::StreamParams {
                contact,
                monitor,
                codec,
                width,
                height,
            } => {
                match buffer.stream_params(self.agent, contact, monitor, codec, (width, height)) {
                    Verdict::Write(pending) => {
                        // Stream parameters are tiny: queued at once, in order with the frames.
                        pending.submit_now();
                        Next::Continue
                    }
                    Verdict::Violation(reason) => Next::Refuse(reason),
                    Verdict::Duplicate(_) | Verdict::Late => Next::Continue,
                }
            }
            AgentMessage::Clock { sample } => {
                buffer.clock(self.agent, &sample);
                Next::Continue
            }
            AgentMessage::Pointer {
                contact,
                monitor,
                samples,
            } => match buffer.pointer(self.agent, contact, monitor, &samples) {
                Err(Verdict::Violation(reason)) => Next::Refuse(reason),
                _ => Next::Continue,
            },
            AgentMessage::SpoolDropped {
                contact,
                frames,
                from,
                to,
                reason,
            } => {
                tracing::warn!(agent = %self.agent, %contact, frames, reason, "the agent's spool dropped frames before they were sent");
                let span = buffer
                    .capture_gap(self.agent, contact, from, to, &reason)
                    .or_else(|| {
                        Some((
                            buffer.server_time(self.agent, from)?,
                            buffer.server_time(self.agent, to)?,
                        ))
                    });
                let Some((from, to)) = span else {
                    return Next::Continue;
                };
                if let Err(error) = self
                    .recorder
                    .store
                    .add_contact_gap(contact, from.0 / 1000, to.0 / 1000, &reason)
                    .await
                {
                    tracing::error!(%contact, %error, "recording a spool drop as a gap failed");
                }
                Next::Continue
            }
            AgentMessage::Stopped { contact, frames } => {
                buffer.stopped(self.agent, contact, &frames);
                Next::Continue
            }
            AgentMessage::RecordingFailed { contact, reason } => {
                if !buffer.owns(self.agent, contact) {
                    return Next::Continue; // not this agent's, or ended already
                }
                tracing::warn!(agent = %self.agent, %contact, reason, "the agent could not record");
                // The contact's timeline names why its screen is missing (e.g. the user has not
                // allowed screen recording), from now until the contact ends.
                let label = format!("screen not captured: {reason}");
                let now = self.recorder.clock.now_ms();
                let unrecorded = buffer.unrecorded(self.agent, contact);
                let opened = async {
                    match unrecorded {
                        // Over already, and the agent never heard of it: the whole contact.
                        Some((from, to)) => {
                            self.recorder
                                .store
                                .add_contact_gap(contact, from, to, &label)
                                .await
                        }
                        None => {
                            let mut tx = self.recorder.store.begin().await?;
                            tx.open_gap(contact, now, &label).await?;
                            tx.commit().await
                        }
                    }
                };
                if let Err(error) = opened.await {
                    tracing::error!(%contact, %error, "recording the agent's failure as a gap failed");
                }
                Next::Continue
            }
        }
    }

    async fn frame(&mut self, bytes: &[u8]) -> Next {
        let (header, access_unit) = match decode_frame(bytes) {
            Ok(frame) => frame,
            Err(error) => return Next::Refuse(error.to_string()),
        };
        match self.recorder.buffer.frame(self.agent, &header, access_unit) {
            Verdict::Write(pending) => {
                self.recorder.metrics.agent_frames.inc();
                self.recorder
                    .metrics
                    .agent_frame_bytes
                    .inc_by(access_unit.len() as u64);
                // Waits for room in the file's queue: the backpressure reaches the agent.
                pending.submit().await;
                Next::Continue
            }
            Verdict::Duplicate(Some(sequence)) => Next::Reply(ServerMessage::Ack {
                contact: header.contact,
                monitor: header.monitor,
                sequence,
            }),
            Verdict::Duplicate(None) => Next::Continue,
            Verdict::Late => {
                // The contact's file is closed (the agent's `Stopped` came, or the offline
                // deadline passed): the agent forgets what it still holds of it.
                tracing::debug!(agent = %self.agent, contact = %header.contact, "frame after its contact's file closed dropped");
                Next::Reply(ServerMessage::Forget {
                    contact: header.contact,
                })
            }
            Verdict::Violation(reason) => Next::Refuse(reason),
        }
    }
}
