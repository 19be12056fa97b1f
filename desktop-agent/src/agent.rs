//! The agent's runtime: connect, follow the server's commands, run one pipeline per monitor per
//! recorded contact, send frames, keep them until acknowledged, reconnect with backoff.
//!
//! Recordings outlive connections: a dropped connection does not stop a pipeline; its frames
//! wait in the resend buffer (at most [`MAX_FRAMES_IN_FLIGHT`]; past that the send stage stops
//! taking frames and the capture stage drops captures) and are sent again, after their stream
//! parameters, when the connection is back. The server ignores what it already has.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capture_shared::ids::{ContactId, MonitorId};
use capture_shared::protocol::{
    AgentMessage, CLOCK_SYNC_INTERVAL, ClockEstimator, ClockSample, FrameHeader,
    HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Hello, MAX_FRAMES_IN_FLIGHT, MAX_POINTER_SAMPLES,
    MonitorInfo, PROTOCOL_VERSION, PointerSample, RefusalCode, ServerMessage, StreamSettings,
    StreamTotal, VideoCodec, encode_frame,
};
use capture_shared::time::AgentMicros;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::capture::{CaptureError, ScreenSource, locate};
use crate::clock::AgentClock;
use crate::connection::{ConnectError, Endpoint, Socket, connect};
use crate::pipeline::{ENCODED_QUEUE, EncodedFrame, Output, Pipeline};

/// How often the pointer is read while recording.
pub const POINTER_INTERVAL: Duration = Duration::from_millis(100);

/// How often buffered pointer positions are sent.
pub const POINTER_FLUSH: Duration = Duration::from_millis(500);

/// On a stop (SIGTERM, Ctrl-C, console close, logoff, shutdown) the agent ends its captures and
/// sends what they held, each contact's `Stopped`, and waits for the acks, for at most this long:
/// Windows gives a console process about 5 s after a close or logoff event.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

/// Who this agent is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// From enrolment.
    pub agent_id: capture_shared::ids::AgentId,
    /// From enrolment.
    pub credential: String,
    /// The logged-in user.
    pub os_user: String,
    /// The machine's name.
    pub machine: String,
}

/// What the agent is doing, for `status` and tests.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// Whether a connection is up.
    pub connected: bool,
    /// The last connection error.
    pub last_error: Option<String>,
    /// Contacts being recorded.
    pub recording: Vec<ContactId>,
    /// Frames the pipelines encoded (sent or still to send).
    pub frames_encoded: u64,
    /// Frames sent (first sends only).
    pub frames_sent: u64,
    /// Bytes of access units sent (first sends only).
    pub bytes_sent: u64,
    /// Frames waiting for an acknowledgement.
    pub unacked: usize,
    /// Best clock offset to the server, µs (server = agent + offset).
    pub clock_offset_us: Option<i64>,
    /// When the last contact started recording (Unix ms).
    pub last_contact_at_ms: Option<u64>,
    /// Whether the recorder has accepted this agent at least once since it started.
    pub ever_connected: bool,
    /// Why the screen may not be recorded at all (the user has not allowed it), if so.
    pub not_permitted: Option<String>,
}

/// The agent.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Where the recorder is.
    pub endpoint: Endpoint,
    /// Who we are.
    pub identity: Identity,
    /// What we capture.
    pub source: Arc<dyn ScreenSource>,
    /// The one clock of every timestamp.
    pub clock: AgentClock,
    /// Shared status.
    pub status: Arc<Mutex<Status>>,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The server refused us for good (wrong credential, unsupported version).
    #[error(transparent)]
    Refused(ConnectError),
    /// The screen cannot be captured at all.
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
}

struct Unacked {
    contact: ContactId,
    monitor: MonitorId,
    sequence: u64,
    message: Vec<u8>,
}

/// State that outlives connections.
struct State {
    settings: StreamSettings,
    monitors: Vec<MonitorInfo>,
    /// Why no monitor can be captured (the user has not allowed screen recording).
    not_permitted: Option<String>,
    recordings: HashMap<ContactId, Vec<Pipeline>>,
    /// Contacts whose pipelines are draining after a stop (true: discarded).
    stopping: HashMap<ContactId, bool>,
    next_sequence: HashMap<(ContactId, MonitorId), u64>,
    params: BTreeMap<(ContactId, MonitorId), (u32, u32)>,
    unacked: VecDeque<Unacked>,
    pointer: Vec<(AgentMicros, i32, i32)>,
    clock: ClockEstimator,
    output_tx: mpsc::Sender<Output>,
    /// Frames encoded by every pipeline so far.
    encoded: Arc<std::sync::atomic::AtomicU64>,
}

/// How one connection ended.
enum End {
    Cancelled,
    Lost(String),
    Refused(RefusalCode, String),
}

impl Agent {
    /// The backend's name as the recorder is told it: with the refusal when the user has not
    /// allowed screen recording.
    fn backend(&self, not_permitted: Option<&String>) -> String {
        match not_permitted {
            Some(_) => format!("{} (screen recording not permitted)", self.source.backend()),
            None => self.source.backend(),
        }
    }

    fn hello(&self, monitors: Vec<MonitorInfo>, not_permitted: Option<&String>) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_id: self.identity.agent_id,
            credential: self.identity.credential.clone(),
            os_user: self.identity.os_user.clone(),
            machine: self.identity.machine.clone(),
            monitors,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            capture_backend: Some(self.backend(not_permitted)),
        }
    }

    fn status(&self, update: impl FnOnce(&mut Status)) {
        update(
            &mut self
                .status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }

    /// Runs until cancelled or refused for good.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), AgentError> {
        let (monitors, not_permitted) = match self.source.monitors() {
            Ok(monitors) => (monitors, None),
            Err(CaptureError::NotPermitted(why)) => {
                tracing::error!(%why, "the screen may not be recorded: every contact is refused with this reason");
                (Vec::new(), Some(why))
            }
            Err(error) => return Err(error.into()),
        };
        self.status(|s| s.not_permitted.clone_from(&not_permitted));
        let (output_tx, mut output) = mpsc::channel(ENCODED_QUEUE);
        let mut state = State {
            settings: StreamSettings::default(),
            monitors,
            not_permitted,
            recordings: HashMap::new(),
            stopping: HashMap::new(),
            next_sequence: HashMap::new(),
            params: BTreeMap::new(),
            unacked: VecDeque::new(),
            pointer: Vec::new(),
            clock: ClockEstimator::default(),
            output_tx,
            encoded: Arc::default(),
        };
        let (pointer_tx, mut pointer) = mpsc::channel(64);
        let pointer_cancel = cancel.child_token();
        spawn_pointer_reader(&self, pointer_tx, pointer_cancel.clone());
        let mut backoff = Backoff::new();
        let result = loop {
            let hello = self.hello(state.monitors.clone(), state.not_permitted.as_ref());
            let attempt = tokio::select! {
                attempt = connect(&self.endpoint, &hello) => attempt,
                () = cancel.cancelled() => break Ok(()),
            };
            let end = match attempt {
                Ok((socket, welcome)) => {
                    tracing::info!(server = %self.endpoint.base_url(), "connected to the recorder");
                    state.settings = welcome.settings;
                    self.status(|s| {
                        s.connected = true;
                        s.ever_connected = true;
                        s.last_error = None;
                    });
                    let started = std::time::Instant::now();
                    let end = self
                        .serve(socket, &mut state, &mut output, &mut pointer, &cancel)
                        .await;
                    self.status(|s| s.connected = false);
                    backoff.connection_ended(started.elapsed());
                    end
                }
                Err(error) if error.is_retryable() => End::Lost(error.to_string()),
                Err(error) => break Err(AgentError::Refused(error)),
            };
            match end {
                End::Cancelled => break Ok(()),
                End::Refused(code, message)
                    if matches!(
                        code,
                        RefusalCode::BadCredential | RefusalCode::UnsupportedProtocolVersion
                    ) =>
                {
                    break Err(AgentError::Refused(ConnectError::Refused { code, message }));
                }
                End::Refused(code, message) => {
                    tracing::warn!(?code, message, "the recorder closed the connection");
                    self.status(|s| s.last_error = Some(message));
                }
                End::Lost(reason) => {
                    tracing::warn!(reason, "connection to the recorder lost");
                    self.status(|s| s.last_error = Some(reason));
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => break Ok(()),
            }
        };
        pointer_cancel.cancel();
        for (_, pipelines) in state.recordings.drain() {
            for pipeline in &pipelines {
                pipeline.stop();
            }
            let _ =
                tokio::task::spawn_blocking(move || pipelines.into_iter().for_each(Pipeline::join))
                    .await;
        }
        let encoded = state.encoded.load(std::sync::atomic::Ordering::Relaxed);
        self.status(|s| s.frames_encoded = encoded);
        result
    }

    /// One connection, until it ends.
    async fn serve(
        &self,
        mut socket: Socket,
        state: &mut State,
        output: &mut mpsc::Receiver<Output>,
        pointer: &mut mpsc::Receiver<(AgentMicros, i32, i32)>,
        cancel: &CancellationToken,
    ) -> End {
        // What the server may lack from before: stream parameters, unacknowledged frames.
        let mut resend: Vec<Message> = state
            .params
            .iter()
            .map(|(&(contact, monitor), &(width, height))| {
                control(&AgentMessage::StreamParams {
                    contact,
                    monitor,
                    codec: VideoCodec::H264,
                    width,
                    height,
                })
            })
            .collect();
        resend.extend(
            state
                .unacked
                .iter()
                .map(|u| Message::binary(u.message.clone())),
        );
        for message in resend {
            if let Err(error) = socket.send(message).await {
                return End::Lost(error.to_string());
            }
        }
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut pointer_flush = tokio::time::interval(POINTER_FLUSH);
        // Three quick clock measurements first, then one per CLOCK_SYNC_INTERVAL. A ping without
        // its pong for HEARTBEAT_TIMEOUT means the server is gone.
        let mut next_ping = Instant::now();
        let mut pings_sent: u64 = 0;
        let mut ping_unanswered_since: Option<Instant> = None;
        // Set once stopping: until then captured frames, `Stopped` and acks may still go.
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_some()
                && state.recordings.is_empty()
                && state.stopping.is_empty()
                && state.unacked.is_empty()
            {
                let _ = socket.close(None).await;
                return End::Cancelled;
            }
            let outgoing = tokio::select! {
                () = cancel.cancelled(), if drain_until.is_none() => {
                    tracing::info!(recording = state.recordings.len(), "stopping: sending what was captured");
                    let contacts: Vec<ContactId> = state.recordings.keys().copied().collect();
                    for contact in contacts {
                        self.stop(contact, false, state);
                    }
                    drain_until = Some(Instant::now() + SHUTDOWN_DRAIN);
                    Vec::new()
                }
                () = tokio::time::sleep_until(drain_until.unwrap_or_else(far_future)) => {
                    tracing::warn!(unacked = state.unacked.len(), "stopped before the recorder acknowledged every frame");
                    let _ = socket.close(None).await;
                    return End::Cancelled;
                }
                incoming = socket.next() => {
                    match incoming {
                        Some(Ok(Message::Text(text))) => match ServerMessage::parse(text.as_str()) {
                            Ok(ServerMessage::Refused(refusal)) => return End::Refused(refusal.code, refusal.message),
                            Ok(message) => {
                                if matches!(message, ServerMessage::Pong { .. }) {
                                    ping_unanswered_since = None;
                                }
                                self.command(message, state)
                            }
                            Err(error) => {
                                tracing::warn!(%error, "unreadable message from the recorder");
                                Vec::new()
                            }
                        },
                        Some(Ok(Message::Close(_))) | None => return End::Lost("closed by the server".into()),
                        Some(Ok(_)) => Vec::new(),
                        Some(Err(error)) => return End::Lost(error.to_string()),
                    }
                }
                item = output.recv(), if state.unacked.len() < MAX_FRAMES_IN_FLIGHT as usize => match item {
                    Some(item) => self.output(item, state),
                    None => Vec::new(),
                },
                Some(sample) = pointer.recv() => {
                    if !state.recordings.is_empty() {
                        state.pointer.push(sample);
                    }
                    Vec::new()
                }
                _ = pointer_flush.tick() => pointer_messages(state),
                _ = heartbeat.tick() => {
                    let recording: Vec<ContactId> = state.recordings.keys().copied().collect();
                    let spool_bytes = state.unacked.iter().map(|u| u.message.len() as u64).sum();
                    let encoded = state.encoded.load(std::sync::atomic::Ordering::Relaxed);
                    self.status(|s| {
                        s.recording.clone_from(&recording);
                        s.unacked = state.unacked.len();
                        s.frames_encoded = encoded;
                    });
                    let capture_backend = Some(self.backend(state.not_permitted.as_ref()));
                    vec![control(&AgentMessage::Heartbeat { recording, spool_bytes, capture_backend })]
                }
                () = tokio::time::sleep_until(next_ping) => {
                    pings_sent += 1;
                    ping_unanswered_since.get_or_insert_with(Instant::now);
                    next_ping = Instant::now() + if pings_sent < 3 { Duration::from_millis(300) } else { CLOCK_SYNC_INTERVAL };
                    vec![control(&AgentMessage::Ping { nonce: pings_sent, agent_sent: self.clock.now() })]
                }
                () = tokio::time::sleep_until(ping_unanswered_since.map_or(far_future(), |t| t + HEARTBEAT_TIMEOUT)) => {
                    return End::Lost("the recorder answers no ping".into());
                }
            };
            for message in outgoing {
                if let Err(error) = socket.send(message).await {
                    return End::Lost(error.to_string());
                }
            }
        }
    }

    /// Follows one server command; returns what to send.
    fn command(&self, message: ServerMessage, state: &mut State) -> Vec<Message> {
        match message {
            ServerMessage::Start { contact, resume } => {
                if state.recordings.contains_key(&contact) || state.stopping.contains_key(&contact)
                {
                    return Vec::new();
                }
                if let Some(why) = &state.not_permitted {
                    return vec![control(&AgentMessage::RecordingFailed {
                        contact,
                        reason: why.chars().take(200).collect(),
                    })];
                }
                for total in resume {
                    state
                        .next_sequence
                        .insert((contact, total.monitor), total.frames);
                }
                let mut pipelines = Vec::new();
                for monitor in &state.monitors {
                    match Pipeline::spawn(
                        self.source.clone(),
                        contact,
                        monitor.id,
                        &state.settings,
                        self.clock,
                        state.output_tx.clone(),
                        state.encoded.clone(),
                    ) {
                        Ok(pipeline) => pipelines.push(pipeline),
                        Err(error) => {
                            return vec![control(&AgentMessage::RecordingFailed {
                                contact,
                                reason: error.to_string().chars().take(200).collect(),
                            })];
                        }
                    }
                }
                tracing::info!(%contact, monitors = pipelines.len(), "recording started");
                state.recordings.insert(contact, pipelines);
                let recording: Vec<ContactId> = state.recordings.keys().copied().collect();
                self.status(|s| {
                    s.recording = recording;
                    s.last_contact_at_ms = Some(crate::local::unix_ms());
                });
                Vec::new()
            }
            ServerMessage::Stop { contact } => {
                self.stop(contact, false, state);
                Vec::new()
            }
            ServerMessage::Discard { contact } => {
                self.stop(contact, true, state);
                state.unacked.retain(|u| u.contact != contact);
                Vec::new()
            }
            ServerMessage::RequestKeyframe { contact, monitor } => {
                if let Some(pipelines) = state.recordings.get(&contact) {
                    for (pipeline, info) in pipelines.iter().zip(&state.monitors) {
                        if monitor.is_none_or(|m| m == info.id) {
                            pipeline.controls.request_keyframe();
                        }
                    }
                }
                Vec::new()
            }
            ServerMessage::Ack {
                contact,
                monitor,
                sequence,
            } => {
                state.unacked.retain(|u| {
                    !(u.contact == contact && u.monitor == monitor && u.sequence <= sequence)
                });
                Vec::new()
            }
            ServerMessage::Pong {
                nonce: _,
                agent_sent,
                server_received,
                server_sent,
            } => {
                let sample = ClockSample {
                    agent_sent,
                    server_received,
                    server_sent,
                    agent_received: self.clock.now(),
                };
                state.clock.add(sample);
                let offset = state.clock.best().map(|b| b.offset_us());
                self.status(|s| s.clock_offset_us = offset);
                vec![control(&AgentMessage::Clock { sample })]
            }
            ServerMessage::Keep { .. }
            | ServerMessage::Marker { .. }
            | ServerMessage::Welcome(_)
            | ServerMessage::Refused(_) => Vec::new(),
        }
    }

    fn stop(&self, contact: ContactId, discard: bool, state: &mut State) {
        let removed = state.recordings.remove(&contact);
        let recording: Vec<ContactId> = state.recordings.keys().copied().collect();
        self.status(|s| s.recording = recording);
        let Some(pipelines) = removed else {
            return;
        };
        tracing::info!(%contact, discard, "recording stopped");
        state.stopping.insert(contact, discard);
        for pipeline in &pipelines {
            pipeline.stop();
        }
        let output = state.output_tx.clone();
        tokio::task::spawn_blocking(move || {
            pipelines.into_iter().for_each(Pipeline::join);
            // After every frame of the contact: the queue is ordered.
            let _ = output.blocking_send(Output::Drained(contact));
        });
    }

    /// Turns one pipeline output into messages (and resend-buffer entries).
    fn output(&self, item: Output, state: &mut State) -> Vec<Message> {
        match item {
            Output::Frame(frame) => self.frame(frame, state),
            Output::Gap(gap) => {
                if state.stopping.get(&gap.contact) == Some(&true) {
                    return Vec::new(); // discarded
                }
                vec![control(&AgentMessage::CaptureGap {
                    contact: gap.contact,
                    monitor: gap.monitor,
                    from: gap.from,
                    to: gap.to,
                    reason: gap.reason.to_owned(),
                })]
            }
            Output::Drained(contact) => {
                let discarded = state.stopping.remove(&contact).unwrap_or(false);
                let frames: Vec<StreamTotal> = state
                    .next_sequence
                    .iter()
                    .filter(|((c, _), _)| *c == contact)
                    .map(|((_, monitor), next)| StreamTotal {
                        monitor: *monitor,
                        frames: *next,
                    })
                    .collect();
                state.next_sequence.retain(|(c, _), _| *c != contact);
                state.params.retain(|(c, _), _| *c != contact);
                if discarded {
                    return Vec::new();
                }
                // After the contact's frames. Lost with the connection, the server closes the
                // file after its stop grace instead.
                vec![control(&AgentMessage::Stopped { contact, frames })]
            }
        }
    }

    fn frame(&self, frame: EncodedFrame, state: &mut State) -> Vec<Message> {
        if state.stopping.get(&frame.contact) == Some(&true) {
            return Vec::new(); // discarded: nothing of it leaves the machine
        }
        let mut messages = Vec::new();
        let key = (frame.contact, frame.monitor);
        if state.params.get(&key) != Some(&(frame.width, frame.height)) {
            state.params.insert(key, (frame.width, frame.height));
            messages.push(control(&AgentMessage::StreamParams {
                contact: frame.contact,
                monitor: frame.monitor,
                codec: VideoCodec::H264,
                width: frame.width,
                height: frame.height,
            }));
        }
        let next = state.next_sequence.entry(key).or_insert(0);
        let sequence = *next;
        *next += 1;
        let header = FrameHeader {
            contact: frame.contact,
            monitor: frame.monitor,
            sequence,
            captured: frame.at,
            keyframe: frame.keyframe,
        };
        let bytes = encode_frame(&header, &frame.data);
        self.status(|s| {
            s.frames_sent += 1;
            s.bytes_sent += frame.data.len() as u64;
        });
        messages.push(Message::binary(bytes.clone()));
        state.unacked.push_back(Unacked {
            contact: frame.contact,
            monitor: frame.monitor,
            sequence,
            message: bytes,
        });
        messages
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn control(message: &AgentMessage) -> Message {
    Message::text(message.to_json())
}

/// Buffered pointer moves, as one message per contact and monitor.
fn pointer_messages(state: &mut State) -> Vec<Message> {
    if state.pointer.is_empty() {
        return Vec::new();
    }
    let mut by_monitor: BTreeMap<MonitorId, Vec<PointerSample>> = BTreeMap::new();
    for (captured, x, y) in state.pointer.drain(..) {
        if let Some((monitor, x, y)) = locate(&state.monitors, (x, y)) {
            by_monitor
                .entry(monitor)
                .or_default()
                .push(PointerSample { captured, x, y });
        }
    }
    let mut messages = Vec::new();
    for contact in state.recordings.keys() {
        for (monitor, samples) in &by_monitor {
            for chunk in samples.chunks(MAX_POINTER_SAMPLES) {
                messages.push(control(&AgentMessage::Pointer {
                    contact: *contact,
                    monitor: *monitor,
                    samples: chunk.to_vec(),
                }));
            }
        }
    }
    messages
}

/// Reads the pointer on its own thread (platform calls block) and reports moves only.
fn spawn_pointer_reader(
    agent: &Agent,
    output: mpsc::Sender<(AgentMicros, i32, i32)>,
    cancel: CancellationToken,
) {
    let mut source = agent.source.pointer();
    let clock = agent.clock;
    let spawned = std::thread::Builder::new()
        .name("capture-pointer".into())
        .spawn(move || {
            let mut last = None;
            while !cancel.is_cancelled() {
                if let Some(position) = source.position()
                    && last != Some(position)
                {
                    last = Some(position);
                    if output
                        .try_send((clock.now(), position.0, position.1))
                        .is_err()
                        && output.is_closed()
                    {
                        return;
                    }
                }
                std::thread::sleep(POINTER_INTERVAL);
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no pointer reader");
    }
}
