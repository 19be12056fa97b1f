//! The agent's runtime: connect, follow the server's commands, run one pipeline per monitor per
//! recorded contact, spool every frame and send it from the spool until acknowledged, reconnect
//! with backoff.
//!
//! Recordings outlive connections: a dropped connection (or a server that does not keep up) does
//! not stop a pipeline; its frames go on into the [`Spool`] on disk, within its quota, whether or
//! not a connection is up. On each connection the `Welcome` says what the server holds of every
//! contact, and the spool sends the rest in order, beside the live frames, at most
//! [`capture_shared::protocol::MAX_FRAMES_IN_FLIGHT`] unacknowledged. Commands missed while away
//! are reconciled the same way: contacts the server stopped meanwhile end, contacts it no longer
//! takes are forgotten, contacts still open are resumed.

mod monitors;
mod reconcile;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capture_shared::ids::ContactId;
use capture_shared::protocol::{
    AgentMessage, CLOCK_SYNC_INTERVAL, ClockEstimator, ClockSample, HEARTBEAT_INTERVAL,
    HEARTBEAT_TIMEOUT, Hello, MonitorInfo, PROTOCOL_VERSION, RefusalCode, ServerMessage,
    StreamSettings,
};
use capture_shared::time::AgentMicros;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::capture::live::Layout;
use crate::capture::{CaptureError, ScreenSource};
use crate::clock::AgentClock;
use crate::connection::{ConnectError, Endpoint, Socket, connect};
use crate::pipeline::{ENCODED_QUEUE, EncodedFrame, Output};
use crate::spool::{Appended, Outgoing, Spool, SpoolError, SpoolFrame};
use monitors::{
    Running, pointer_messages, request_keyframe, spawn_layout_watch, spawn_pointer_reader,
};

/// How often the pointer is read while recording.
pub const POINTER_INTERVAL: Duration = Duration::from_millis(100);

/// How often buffered pointer positions are sent.
pub const POINTER_FLUSH: Duration = Duration::from_millis(500);

/// On a stop (SIGTERM, Ctrl-C, console close, logoff, shutdown) the agent ends its captures and
/// sends what they held and waits for the acks, for at most this long (Windows gives a console
/// process about 5 s after a close or logoff event); what is left stays in the spool for the
/// next start.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

/// Why a contact's screen was not captured between a killed run's last frame and the next run.
pub const GAP_AGENT_NOT_RUNNING: &str = "screen not captured: the agent was not running";

/// Most messages sent from the spool in one turn of the connection loop, so that commands and
/// acks are read between them.
const SEND_BATCH: usize = 16;

/// Most control messages (capture gaps, failures) kept for the next connection.
const PENDING_CONTROL: usize = 256;

/// Where the spool lives and how much disk it may take.
#[derive(Debug, Clone)]
pub struct SpoolSettings {
    /// The spool directory (the agent's own: one agent per user).
    pub dir: std::path::PathBuf,
    /// Bytes of spool files at most.
    pub quota_bytes: u64,
}

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
    /// Frames kept for sending (sent, or still in the spool).
    pub frames_sent: u64,
    /// Bytes of access units kept for sending.
    pub bytes_sent: u64,
    /// Frames waiting for an acknowledgement (sent or not).
    pub unacked: usize,
    /// Bytes of those frames.
    pub spool_bytes: u64,
    /// Frames the spool dropped (its quota reached while the recorder was out of reach).
    pub spool_dropped: u64,
    /// The frame-rate cap the recorder set while it is overloaded, if any.
    pub fps_cap: Option<f32>,
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
    /// The offline spool.
    pub spool: SpoolSettings,
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
    /// The spool cannot be read or written.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Why a contact's pipelines are draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// The server stopped the contact: its spool ends.
    Ended,
    /// Discarded (or forgotten): nothing of it leaves the machine.
    Discarded,
    /// The agent is stopping: the contact goes on, its spool stays open for the next start.
    Shutdown,
}

/// State that outlives connections.
struct State {
    settings: StreamSettings,
    /// A lower frame-rate cap the server set while overloaded.
    fps_cap: Option<f32>,
    /// The monitors, by their stable numbers.
    layout: Layout,
    /// Why no monitor can be captured (the user has not allowed screen recording).
    not_permitted: Option<String>,
    recordings: HashMap<ContactId, Vec<Running>>,
    /// Contacts whose pipelines are draining after a stop.
    stopping: HashMap<ContactId, Stopping>,
    /// Every frame, until the server acknowledges it.
    spool: Spool,
    /// The spool may have something to send.
    wants_send: bool,
    /// Control messages for the next connection (capture gaps, failures while away), sent once
    /// the connection has a clock measurement (the server places gaps by it).
    pending: VecDeque<AgentMessage>,
    /// This connection has measured the clock.
    synced: bool,
    pointer: Vec<(AgentMicros, i32, i32)>,
    clock: ClockEstimator,
    output_tx: mpsc::Sender<Output>,
    /// Frames encoded by every pipeline so far.
    encoded: Arc<std::sync::atomic::AtomicU64>,
}

/// What the connection loop waits on besides the socket.
struct Inputs {
    /// The pipelines' frames and gaps.
    output: mpsc::Receiver<Output>,
    /// Pointer positions.
    pointer: mpsc::Receiver<(AgentMicros, i32, i32)>,
    /// New listings of the monitors.
    layouts: mpsc::Receiver<Vec<MonitorInfo>>,
}

/// How one connection (or attempt) ended.
enum End {
    Cancelled,
    /// The attempt never connected.
    Unreachable,
    Lost(String),
    Refused(RefusalCode, String),
    /// The spool failed: the agent cannot keep what it captures.
    Failed(SpoolError),
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

    fn hello(&self, state: &State) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_id: self.identity.agent_id,
            credential: self.identity.credential.clone(),
            os_user: self.identity.os_user.clone(),
            machine: self.identity.machine.clone(),
            monitors: state.layout.monitors.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            capture_backend: Some(self.backend(state.not_permitted.as_ref())),
            spooled: Some(state.spool.report()),
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
        let spool = Spool::open(
            &self.spool.dir,
            self.identity.agent_id,
            self.spool.quota_bytes,
            monitors.clone(),
        )?;
        let (output_tx, output) = mpsc::channel(ENCODED_QUEUE);
        let mut state = State {
            settings: StreamSettings::default(),
            fps_cap: None,
            layout: Layout::new(&monitors),
            not_permitted,
            recordings: HashMap::new(),
            stopping: HashMap::new(),
            spool,
            wants_send: true,
            pending: VecDeque::new(),
            synced: false,
            pointer: Vec::new(),
            clock: ClockEstimator::default(),
            output_tx,
            encoded: Arc::default(),
        };
        self.report_spool(&state);
        let (pointer_tx, pointer) = mpsc::channel(64);
        let (layouts_tx, layouts) = mpsc::channel(4);
        let pointer_cancel = cancel.child_token();
        spawn_pointer_reader(&self, pointer_tx, pointer_cancel.clone());
        if state.not_permitted.is_none() {
            spawn_layout_watch(
                &self,
                state.layout.monitors.clone(),
                layouts_tx,
                pointer_cancel.clone(),
            );
        }
        let mut inputs = Inputs {
            output,
            pointer,
            layouts,
        };
        let mut backoff = Backoff::new();
        // Failed attempts of one outage, logged once rather than as a lost connection each.
        let mut failed_attempts: u32 = 0;
        let result = loop {
            let hello = self.hello(&state);
            let attempt = match self
                .offline(
                    connect(&self.endpoint, &hello),
                    &mut state,
                    &mut inputs,
                    &cancel,
                )
                .await
            {
                Ok(Some(attempt)) => attempt,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error.into()),
            };
            let end = match attempt {
                Ok((socket, welcome)) => {
                    if failed_attempts > 0 {
                        tracing::info!(failed_attempts, "the recorder is reachable again");
                    }
                    failed_attempts = 0;
                    tracing::info!(server = %self.endpoint.base_url(), spooled = state.spool.pending_frames(), "connected to the recorder");
                    if let Err(error) = self.welcomed(welcome, &mut state) {
                        break Err(error.into());
                    }
                    self.status(|s| {
                        s.connected = true;
                        s.ever_connected = true;
                        s.last_error = None;
                    });
                    let started = std::time::Instant::now();
                    let end = self.serve(socket, &mut state, &mut inputs, &cancel).await;
                    self.status(|s| s.connected = false);
                    backoff.connection_ended(started.elapsed());
                    end
                }
                Err(error) if error.is_retryable() => {
                    failed_attempts += 1;
                    if failed_attempts == 1 {
                        tracing::warn!(%error, "cannot reach the recorder; recording into the spool and retrying");
                    } else {
                        tracing::debug!(%error, failed_attempts, "the recorder is still out of reach");
                    }
                    self.status(|s| s.last_error = Some(error.to_string()));
                    End::Unreachable
                }
                Err(error) => break Err(AgentError::Refused(error)),
            };
            match end {
                End::Cancelled => break Ok(()),
                End::Failed(error) => break Err(error.into()),
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
                    tracing::warn!(
                        reason,
                        "connection to the recorder lost; recording into the spool"
                    );
                    self.status(|s| s.last_error = Some(reason));
                }
                End::Unreachable => {}
            }
            let delay = backoff.next_delay();
            match self
                .offline(tokio::time::sleep(delay), &mut state, &mut inputs, &cancel)
                .await
            {
                Ok(Some(())) => {}
                Ok(None) => break Ok(()),
                Err(error) => break Err(error.into()),
            }
        };
        pointer_cancel.cancel();
        for (_, running) in state.recordings.drain() {
            for r in &running {
                r.pipeline.stop();
            }
            let _ = tokio::task::spawn_blocking(move || {
                running.into_iter().for_each(|r| r.pipeline.join());
            })
            .await;
        }
        // What the pipelines still held goes into the spool for the next start.
        inputs.output.close();
        while let Some(item) = inputs.output.recv().await {
            if let Output::Frame(frame) = item
                && let Err(error) = self.spool_frame(&frame, &mut state)
            {
                tracing::warn!(%error, "a last frame could not be spooled");
            }
        }
        state.spool.sync();
        let encoded = state.encoded.load(std::sync::atomic::Ordering::Relaxed);
        self.status(|s| s.frames_encoded = encoded);
        self.report_spool(&state);
        result
    }

    /// Waits for `future` while no connection is up, spooling what the pipelines capture
    /// meanwhile; `None` when cancelled.
    async fn offline<F: std::future::Future>(
        &self,
        future: F,
        state: &mut State,
        inputs: &mut Inputs,
        cancel: &CancellationToken,
    ) -> Result<Option<F::Output>, SpoolError> {
        tokio::pin!(future);
        loop {
            tokio::select! {
                result = &mut future => return Ok(Some(result)),
                () = cancel.cancelled() => return Ok(None),
                Some(item) = inputs.output.recv() => {
                    let messages = self.output(item, state)?;
                    // Kept for the connection (gaps, failures); frames are in the spool.
                    for message in messages {
                        queue_control(state, message);
                    }
                    self.report_spool(state);
                }
                Some(listed) = inputs.layouts.recv() => {
                    // Stream ends are kept for the connection; the layout goes in the next hello.
                    for message in self.monitors_listed(&listed, state) {
                        if !matches!(message, AgentMessage::Monitors { .. }) {
                            queue_control(state, message);
                        }
                    }
                }
            }
        }
    }

    fn report_spool(&self, state: &State) {
        let (frames, bytes) = (state.spool.pending_frames(), state.spool.pending_bytes());
        self.status(|s| {
            s.unacked = frames;
            s.spool_bytes = bytes;
        });
    }

    /// Up to [`SEND_BATCH`] messages from the pending controls and the spool, once the
    /// connection has measured the clock: the controls go first, so that a gap of the time the
    /// agent was away reaches the server before the `Stopped` that closes its contact.
    fn outgoing(&self, state: &mut State) -> Result<Vec<Message>, SpoolError> {
        if !state.synced {
            return Ok(Vec::new());
        }
        let mut messages: Vec<Message> = state.pending.drain(..).map(|m| control(&m)).collect();
        messages.extend(state.spool.take_dropped().iter().map(control));
        while messages.len() < SEND_BATCH {
            match state.spool.next_outgoing()? {
                Some(Outgoing::Control(message)) => messages.push(control(&message)),
                Some(Outgoing::Frame(bytes)) => messages.push(Message::binary(bytes)),
                None => {
                    state.wants_send = false;
                    break;
                }
            }
        }
        Ok(messages)
    }

    /// One connection, until it ends.
    async fn serve(
        &self,
        mut socket: Socket,
        state: &mut State,
        inputs: &mut Inputs,
        cancel: &CancellationToken,
    ) -> End {
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut pointer_flush = tokio::time::interval(POINTER_FLUSH);
        // Three quick clock measurements first, then one per CLOCK_SYNC_INTERVAL. A ping without
        // its pong for HEARTBEAT_TIMEOUT means the server is gone.
        let mut next_ping = Instant::now();
        let mut pings_sent: u64 = 0;
        let mut ping_unanswered_since: Option<Instant> = None;
        // Set once stopping: until then captured frames and acks may still go.
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_some()
                && state.recordings.is_empty()
                && state.stopping.is_empty()
                && state.spool.pending_frames() == 0
            {
                let _ = socket.close(None).await;
                return End::Cancelled;
            }
            let outgoing = tokio::select! {
                () = cancel.cancelled(), if drain_until.is_none() => {
                    tracing::info!(recording = state.recordings.len(), "stopping: sending what was captured");
                    let contacts: Vec<ContactId> = state.recordings.keys().copied().collect();
                    for contact in contacts {
                        if let Err(error) = self.stop(contact, Stopping::Shutdown, state) {
                            return End::Failed(error);
                        }
                    }
                    drain_until = Some(Instant::now() + SHUTDOWN_DRAIN);
                    Ok(Vec::new())
                }
                () = tokio::time::sleep_until(drain_until.unwrap_or_else(far_future)) => {
                    tracing::warn!(unacked = state.spool.pending_frames(), "stopped before the recorder acknowledged every frame; the rest stays in the spool");
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
                                Ok(Vec::new())
                            }
                        },
                        Some(Ok(Message::Close(_))) | None => return End::Lost("closed by the server".into()),
                        Some(Ok(_)) => Ok(Vec::new()),
                        Some(Err(error)) => return End::Lost(error.to_string()),
                    }
                }
                Some(item) = inputs.output.recv() => self
                    .output(item, state)
                    .map(|messages| messages.iter().map(control).collect()),
                Some(listed) = inputs.layouts.recv() => {
                    Ok(self.monitors_listed(&listed, state).iter().map(control).collect())
                }
                () = std::future::ready(()), if state.synced && (state.wants_send || !state.pending.is_empty()) => {
                    self.outgoing(state)
                }
                Some(sample) = inputs.pointer.recv() => {
                    if !state.recordings.is_empty() {
                        state.pointer.push(sample);
                    }
                    Ok(Vec::new())
                }
                _ = pointer_flush.tick() => Ok(pointer_messages(state)),
                _ = heartbeat.tick() => {
                    let recording: Vec<ContactId> = state.recordings.keys().copied().collect();
                    let spool_bytes = state.spool.pending_bytes();
                    let encoded = state.encoded.load(std::sync::atomic::Ordering::Relaxed);
                    self.status(|s| {
                        s.recording.clone_from(&recording);
                        s.frames_encoded = encoded;
                    });
                    self.report_spool(state);
                    let capture_backend = Some(self.backend(state.not_permitted.as_ref()));
                    Ok(vec![control(&AgentMessage::Heartbeat { recording, spool_bytes, capture_backend })])
                }
                () = tokio::time::sleep_until(next_ping) => {
                    pings_sent += 1;
                    ping_unanswered_since.get_or_insert_with(Instant::now);
                    next_ping = Instant::now() + if pings_sent < 3 { Duration::from_millis(300) } else { CLOCK_SYNC_INTERVAL };
                    Ok(vec![control(&AgentMessage::Ping { nonce: pings_sent, agent_sent: self.clock.now() })])
                }
                () = tokio::time::sleep_until(ping_unanswered_since.map_or(far_future(), |t| t + HEARTBEAT_TIMEOUT)) => {
                    return End::Lost("the recorder answers no ping".into());
                }
            };
            let outgoing = match outgoing {
                Ok(outgoing) => outgoing,
                Err(error) => return End::Failed(error),
            };
            for message in outgoing {
                if let Err(error) = socket.send(message).await {
                    return End::Lost(error.to_string());
                }
            }
        }
    }

    /// Follows one server command; returns what to send.
    fn command(
        &self,
        message: ServerMessage,
        state: &mut State,
    ) -> Result<Vec<Message>, SpoolError> {
        match message {
            ServerMessage::Start { contact, resume } => {
                if state.recordings.contains_key(&contact)
                    || state.stopping.contains_key(&contact)
                    || state.spool.has_ended(contact)
                {
                    return Ok(Vec::new());
                }
                if let Some(why) = &state.not_permitted {
                    return Ok(vec![control(&AgentMessage::RecordingFailed {
                        contact,
                        reason: why.chars().take(200).collect(),
                    })]);
                }
                state.spool.resume(contact, &resume);
                let pipelines = match self.start_pipelines(contact, state) {
                    Ok(pipelines) => pipelines,
                    Err(reason) => {
                        return Ok(vec![control(&AgentMessage::RecordingFailed {
                            contact,
                            reason,
                        })]);
                    }
                };
                tracing::info!(%contact, monitors = pipelines.len(), "recording started");
                state.recordings.insert(contact, pipelines);
                let recording: Vec<ContactId> = state.recordings.keys().copied().collect();
                self.status(|s| {
                    s.recording = recording;
                    s.last_contact_at_ms = Some(crate::local::unix_ms());
                });
                Ok(Vec::new())
            }
            ServerMessage::Stop { contact } => {
                self.stop(contact, Stopping::Ended, state)?;
                Ok(Vec::new())
            }
            ServerMessage::Discard { contact } | ServerMessage::Forget { contact } => {
                self.stop(contact, Stopping::Discarded, state)?;
                Ok(Vec::new())
            }
            ServerMessage::Settings(settings) => {
                // Only a lower frame rate than the welcome's is taken (the server's load);
                // the rest of the welcome's settings stay.
                state.fps_cap =
                    (settings.fps_max < state.settings.fps_max).then_some(settings.fps_max);
                tracing::info!(fps_cap = ?state.fps_cap, "the recorder changed the frame-rate cap");
                let cap = state.fps_cap;
                self.status(|s| s.fps_cap = cap);
                for r in state.recordings.values().flatten() {
                    r.pipeline.controls.cap_fps(state.fps_cap);
                }
                Ok(Vec::new())
            }
            ServerMessage::RequestKeyframe { contact, monitor } => {
                request_keyframe(state, contact, monitor);
                Ok(Vec::new())
            }
            ServerMessage::Ack {
                contact,
                monitor,
                sequence,
            } => {
                state.spool.ack(contact, monitor, sequence)?;
                state.wants_send = true;
                self.report_spool(state);
                Ok(Vec::new())
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
                state.synced = true;
                let offset = state.clock.best().map(|b| b.offset_us());
                self.status(|s| s.clock_offset_us = offset);
                Ok(vec![control(&AgentMessage::Clock { sample })])
            }
            ServerMessage::Keep { .. }
            | ServerMessage::Marker { .. }
            | ServerMessage::Welcome(_)
            | ServerMessage::Refused(_) => Ok(Vec::new()),
        }
    }

    fn stop(&self, contact: ContactId, why: Stopping, state: &mut State) -> Result<(), SpoolError> {
        if why == Stopping::Discarded {
            // Nothing of it leaves the machine, from now on either.
            state.spool.forget(contact)?;
            if let Some(kind) = state.stopping.get_mut(&contact) {
                *kind = Stopping::Discarded;
            }
        }
        let removed = state.recordings.remove(&contact);
        let recording: Vec<ContactId> = state.recordings.keys().copied().collect();
        self.status(|s| s.recording = recording);
        let Some(pipelines) = removed else {
            // Not recording in this run (the agent restarted): its spool ends here.
            if why == Stopping::Ended
                && !state.stopping.contains_key(&contact)
                && state.spool.contains(contact)
            {
                state.spool.end(contact)?;
                state.wants_send = true;
            }
            return Ok(());
        };
        tracing::info!(%contact, ?why, "recording stopped");
        state.stopping.insert(contact, why);
        for r in &pipelines {
            r.pipeline.stop();
        }
        let output = state.output_tx.clone();
        tokio::task::spawn_blocking(move || {
            pipelines.into_iter().for_each(|r| r.pipeline.join());
            // After every frame of the contact: the queue is ordered.
            let _ = output.blocking_send(Output::Drained(contact));
        });
        Ok(())
    }

    /// Takes one pipeline output: frames into the spool; returns control messages to send.
    fn output(&self, item: Output, state: &mut State) -> Result<Vec<AgentMessage>, SpoolError> {
        match item {
            Output::Frame(frame) => {
                self.spool_frame(&frame, state)?;
                Ok(Vec::new())
            }
            Output::Gap(gap) => {
                if state.stopping.get(&gap.contact) == Some(&Stopping::Discarded) {
                    return Ok(Vec::new());
                }
                Ok(vec![AgentMessage::CaptureGap {
                    contact: gap.contact,
                    monitor: gap.monitor,
                    from: gap.from,
                    to: gap.to,
                    reason: gap.reason.to_owned(),
                }])
            }
            Output::Drained(contact) => {
                match state.stopping.remove(&contact) {
                    Some(Stopping::Ended) => state.spool.end(contact)?,
                    Some(Stopping::Discarded) => state.spool.forget(contact)?,
                    Some(Stopping::Shutdown) | None => state.spool.sync(),
                }
                state.wants_send = true;
                Ok(Vec::new())
            }
        }
    }

    fn spool_frame(&self, frame: &EncodedFrame, state: &mut State) -> Result<(), SpoolError> {
        if state.stopping.get(&frame.contact) == Some(&Stopping::Discarded) {
            return Ok(()); // discarded: nothing of it leaves the machine
        }
        let appended = state.spool.append(&SpoolFrame {
            contact: frame.contact,
            monitor: frame.monitor,
            captured: frame.at,
            keyframe: frame.keyframe,
            width: frame.width,
            height: frame.height,
            data: &frame.data,
        })?;
        match appended {
            Appended::Kept => {
                self.status(|s| {
                    s.frames_sent += 1;
                    s.bytes_sent += frame.data.len() as u64;
                });
                state.wants_send = true;
            }
            Appended::Dropped => {
                self.status(|s| s.spool_dropped += 1);
                request_keyframe(state, frame.contact, Some(frame.monitor));
            }
        }
        Ok(())
    }
}

/// Keeps a control message for the connection (the oldest goes past [`PENDING_CONTROL`]).
fn queue_control(state: &mut State, message: AgentMessage) {
    if state.pending.len() >= PENDING_CONTROL {
        state.pending.pop_front();
    }
    state.pending.push_back(message);
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn control(message: &AgentMessage) -> Message {
    Message::text(message.to_json())
}
