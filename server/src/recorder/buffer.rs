//! The call buffer: one SCN file per contact in `<data_dir>/buffer`, with its life cycle
//! (tentative → kept or deleted → closed, DESIGN.md §4) and the checks every frame passes before
//! it is written.
//!
//! The integration's commands reach the buffer through [`super::RecorderLink`] before they reach
//! the agent: `Start` opens the contact's file, `Keep` marks it kept, `Discard` deletes it (audited),
//! `Stop` closes it once the agent reports it sent everything ([`CallBuffer::stopped`]). An agent
//! that is out of reach keeps capturing into its spool and sends it when it is back, so the file
//! waits for it up to the offline deadline (`recorder.offline_wait_s`), then closes with the rest
//! named as a gap; a connected agent that has nothing left to send and sends nothing of the
//! contact for [`STOP_GRACE`] has it closed too. Each open file has one write stage
//! ([`super::writer::FileWriter`]) fed in order.
//!
//! Backpressure: each file's queue holds at most [`FILE_QUEUE_BYTES`] of frames. A session
//! waits for room before it reads the agent's next message, so a slow disk slows the agent's
//! websocket (TCP flow control), and the agent's own bounded pipeline drops captures instead of
//! growing memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::{
    ClockSample, FrameHeader, MAX_STREAMS, MonitorInfo, PointerSample, StreamTotal, VideoCodec,
};
use capture_shared::scn::{ClockAnchor, Record, ScnHeader};
use capture_shared::time::{AgentMicros, UtcMicros, UtcMillis};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

mod scan;

use super::appender::Appender;
use super::disk::DiskHealth;
use super::load::Load;
use super::writer::{FileWriter, Op, Origin};
use crate::clock::Clock;
use crate::integration::link::AgentLink;
use crate::store::{ScnFileEntry, ScnState, Store, StoreError};
use scan::scan_streams;

/// The buffer directory inside the data directory.
pub const BUFFER_DIR: &str = "buffer";

/// Bytes of frames one file may have queued for writing; past this the agent's session waits.
/// Eight maximal keyframes, or minutes of ordinary frames.
pub const FILE_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// How long after `Stop` the file waits for a connected agent's `Stopped` once the agent has
/// reported an empty spool and sends nothing more of the contact; also how often a stopped
/// contact's file looks again.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Gap reason: the agent stayed out of reach past the offline deadline after the contact ended.
pub const GAP_SPOOL_NOT_RECEIVED: &str =
    "screen not received: the agent stayed out of reach past the offline deadline";

/// Contacts remembered after they end, so that frames still in flight for them are dropped
/// quietly rather than treated as a protocol violation.
const RECENT_CONTACTS: usize = 1024;

/// The permit unit of a file's queue budget.
const PERMIT_BYTES: usize = 1024;

/// What the recorder does with one frame or stream message.
#[derive(Debug)]
pub enum Verdict {
    /// Valid: append it (after waiting for queue room).
    Write(Box<Pending>),
    /// Already received before a reconnect; acknowledge the durable sequence, write nothing.
    Duplicate(Option<u64>),
    /// For a contact that just ended; in flight when it ended. Dropped.
    Late,
    /// A protocol violation: the session refuses and closes; nothing is written.
    Violation(String),
}

/// A validated record waiting for room in its file's queue.
#[derive(Debug)]
pub struct Pending {
    file: Arc<OpenFile>,
    record: Record,
    ack: Option<(MonitorId, u64, tokio::time::Instant)>,
}

impl Pending {
    /// Waits for queue room, then queues the record.
    pub async fn submit(self) {
        let units = self.record_units();
        let permit = self
            .file
            .budget
            .clone()
            .acquire_many_owned(units)
            .await
            .ok();
        self.file.push(Op::Append {
            record: self.record,
            ack: self.ack,
            permit,
        });
    }

    /// Queues a small record at once, outside the queue budget (stream parameters).
    pub fn submit_now(self) {
        self.file.push(Op::Append {
            record: self.record,
            ack: self.ack,
            permit: None,
        });
    }

    fn record_units(&self) -> u32 {
        let bytes = match &self.record {
            Record::Video { data, .. } => data.len(),
            _ => 0,
        };
        u32::try_from(bytes / PERMIT_BYTES + 1).unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Default)]
struct Stream {
    /// Encoded size from the latest stream parameters.
    params: Option<(u32, u32)>,
    /// The sequence the next frame should carry.
    next: u64,
    /// Whether the decoder state is intact (a keyframe since the last jump or size change).
    decodable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Tentative,
    Kept,
    /// `Stop` arrived; waiting for the agent's last frames.
    Closing,
}

/// One open file: its queue and the per-monitor stream state frames are checked against.
#[derive(Debug)]
struct OpenFile {
    contact: ContactId,
    agent: AgentId,
    ops: mpsc::UnboundedSender<Op>,
    budget: Arc<Semaphore>,
    streams: Mutex<BTreeMap<MonitorId, Stream>>,
    phase: Mutex<Phase>,
    durable: Arc<Mutex<BTreeMap<MonitorId, u64>>>,
    /// When the file opened (server ms): a contact the agent never heard of is a gap from here.
    opened_ms: i64,
    /// When the last frame of the contact arrived (server ms), and when it was stopped.
    last_frame_ms: Mutex<Option<i64>>,
    stopped_ms: Mutex<Option<i64>>,
    /// When anything of the contact last arrived: a connected agent still sending keeps it open.
    last_activity: Mutex<tokio::time::Instant>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl OpenFile {
    /// Something of the contact arrived from its agent.
    fn touch(&self, now_ms: i64) {
        *lock(&self.last_activity) = tokio::time::Instant::now();
        *lock(&self.last_frame_ms) = Some(now_ms);
    }

    fn push(&self, op: Op) {
        // The write stage only stops after Finish/Delete, which remove the file from the buffer
        // first, or on a failed disk, which it logs: a record sent after that is lost with it.
        let _ = self.ops.send(op);
    }
}

/// [`Recording::state`] of a contact that was stopped and waits for its last frames.
pub const CLOSING: &str = "closing";

/// What the agents API shows of an agent's recordings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recording {
    /// The contact.
    pub contact: ContactId,
    /// Life-cycle state (`tentative`, `kept`, `closing`).
    pub state: &'static str,
    /// Monitors streaming, with the frames received so far.
    pub streams: Vec<StreamTotal>,
}

/// The call buffer.
#[derive(Debug)]
pub struct CallBuffer {
    data_dir: PathBuf,
    store: Store,
    clock: Clock,
    acks: Arc<dyn AgentLink>,
    offline_wait: Duration,
    disk: Arc<DiskHealth>,
    load: Arc<Load>,
    /// Appends and syncs every file's batches.
    appender: Appender,
    tasks: TaskTracker,
    /// Cancels the stop-grace timers at shutdown (their files stay open and are reopened).
    closing: tokio_util::sync::CancellationToken,
    files: Mutex<HashMap<ContactId, Arc<OpenFile>>>,
    recent: Mutex<VecDeque<ContactId>>,
    anchors: Mutex<HashMap<AgentId, ClockAnchor>>,
}

impl CallBuffer {
    /// A buffer in `<data_dir>/buffer`; acknowledgements go out through `acks`; a stopped
    /// contact waits `offline_wait` at most for an agent out of reach; new contacts are refused
    /// while the disk has less than `min_free` bytes free (0: only while writes fail). Fails
    /// when its append thread cannot be started.
    pub fn new(
        data_dir: PathBuf,
        store: Store,
        clock: Clock,
        acks: Arc<dyn AgentLink>,
        offline_wait: Duration,
        min_free: u64,
    ) -> std::io::Result<Self> {
        Ok(CallBuffer {
            appender: Appender::spawn(data_dir.join(BUFFER_DIR))?,
            disk: Arc::new(DiskHealth::new(data_dir.join(BUFFER_DIR), min_free)),
            load: Arc::new(Load::default()),
            data_dir,
            store,
            clock,
            acks,
            offline_wait,
            tasks: TaskTracker::new(),
            closing: tokio_util::sync::CancellationToken::new(),
            files: Mutex::new(HashMap::new()),
            recent: Mutex::new(VecDeque::new()),
            anchors: Mutex::new(HashMap::new()),
        })
    }

    /// Where the buffer counts refused contacts and its disk's state.
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        self.disk.set_metrics(metrics.clone());
        self.load.set_metrics(metrics);
    }

    /// Frame-to-disk times and the frame-rate cap they call for.
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// Why a new contact cannot be recorded now (the disk is full or failing), if it cannot.
    pub fn refusal(&self) -> Option<&'static str> {
        self.disk.refusal()
    }

    fn now_us(&self) -> UtcMicros {
        UtcMicros(self.clock.now_ms().saturating_mul(1000))
    }

    fn spawn_file(
        self: &Arc<Self>,
        contact: ContactId,
        agent: AgentId,
        origin: Origin,
        phase: Phase,
        streams: BTreeMap<MonitorId, Stream>,
    ) -> Arc<OpenFile> {
        let relative = format!("{BUFFER_DIR}/{contact}.scn");
        let (ops, queue) = mpsc::unbounded_channel();
        let durable: BTreeMap<_, _> = streams.iter().map(|(m, s)| (*m, s.next)).collect();
        let file = Arc::new(OpenFile {
            contact,
            agent,
            ops,
            budget: Arc::new(Semaphore::new(FILE_QUEUE_BYTES / PERMIT_BYTES)),
            streams: Mutex::new(streams),
            phase: Mutex::new(phase),
            durable: Arc::new(Mutex::new(durable)),
            opened_ms: self.clock.now_ms(),
            last_frame_ms: Mutex::new(None),
            stopped_ms: Mutex::new(None),
            last_activity: Mutex::new(tokio::time::Instant::now()),
        });
        let writer = FileWriter {
            contact,
            agent,
            path: self.data_dir.join(&relative),
            catalogued_path: relative,
            store: self.store.clone(),
            clock: self.clock.clone(),
            acks: self.acks.clone(),
            durable: file.durable.clone(),
            disk: self.disk.clone(),
            load: self.load.clone(),
            closing: self.closing.clone(),
            appender: self.appender.clone(),
        };
        let span = tracing::info_span!("scn", %contact, %agent);
        self.tasks.spawn(writer.run(origin, queue).instrument(span));
        lock(&self.files).insert(contact, file.clone());
        file
    }

    /// `Start`: opens the contact's file (tentative). Idempotent.
    pub fn open(self: &Arc<Self>, agent: AgentId, contact: ContactId, monitors: Vec<MonitorInfo>) {
        if lock(&self.files).contains_key(&contact) {
            return;
        }
        let header = ScnHeader {
            agent,
            contact,
            created: self.now_us(),
            monitors,
            clock_anchor: lock(&self.anchors).get(&agent).copied(),
        };
        self.spawn_file(
            contact,
            agent,
            Origin::Create(Box::new(header)),
            Phase::Tentative,
            BTreeMap::new(),
        );
    }

    fn file(&self, contact: ContactId) -> Option<Arc<OpenFile>> {
        lock(&self.files).get(&contact).cloned()
    }

    fn end(&self, contact: ContactId) -> Option<Arc<OpenFile>> {
        let file = lock(&self.files).remove(&contact)?;
        let mut recent = lock(&self.recent);
        recent.push_back(contact);
        while recent.len() > RECENT_CONTACTS {
            recent.pop_front();
        }
        Some(file)
    }

    /// `Keep`: the call was answered.
    pub fn keep(&self, contact: ContactId) {
        if let Some(file) = self.file(contact) {
            let mut phase = lock(&file.phase);
            if *phase == Phase::Tentative {
                *phase = Phase::Kept;
                file.push(Op::Keep);
            }
        }
    }

    /// `Discard`: the call was not answered; the file is deleted and the deletion audited.
    pub fn discard(&self, contact: ContactId) {
        if let Some(file) = self.end(contact) {
            file.push(Op::Delete {
                reason: "call not answered",
            });
        }
    }

    /// `Stop`: the contact ended; the file closes when the agent's last frames are in (its
    /// `Stopped`), when a connected agent has nothing more to send for [`STOP_GRACE`], or at the
    /// offline deadline with a named gap.
    pub fn stop(self: &Arc<Self>, contact: ContactId) {
        let Some(file) = self.file(contact) else {
            return;
        };
        *lock(&file.phase) = Phase::Closing;
        lock(&file.stopped_ms).get_or_insert(self.clock.now_ms());
        let buffer = Arc::downgrade(self);
        let closing = self.closing.clone();
        let stopped_at = tokio::time::Instant::now();
        let deadline = stopped_at + self.offline_wait;
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(STOP_GRACE) => {}
                    () = closing.cancelled() => return,
                }
                let Some(buffer) = buffer.upgrade() else {
                    return;
                };
                let Some(file) = buffer.file(contact) else {
                    return; // closed by the agent's `Stopped`, or discarded
                };
                // Done when the agent, connected, said after the stop that its spool is empty
                // and has sent nothing of the contact since (its `Stopped` went missing).
                let idle = lock(&file.last_activity).elapsed() >= STOP_GRACE;
                match buffer.acks.last_heartbeat(file.agent) {
                    Some((at, 0)) if idle && at > stopped_at => {
                        buffer.finish(contact, "stop grace elapsed");
                        return;
                    }
                    _ if tokio::time::Instant::now() >= deadline => {
                        buffer.give_up(&file).await;
                        return;
                    }
                    _ => {}
                }
            }
        });
    }

    /// The offline deadline passed: the file closes; what the agent did not send is a gap.
    async fn give_up(&self, file: &OpenFile) {
        let contact = file.contact;
        let stopped = lock(&file.stopped_ms).unwrap_or_else(|| self.clock.now_ms());
        let from = lock(&file.last_frame_ms)
            .unwrap_or(file.opened_ms)
            .min(stopped);
        tracing::warn!(%contact, agent = %file.agent, "the agent stayed out of reach past the offline deadline: closing the contact's file");
        file.push(Op::Append {
            record: Record::Gap {
                from: UtcMicros(from.saturating_mul(1000)),
                to: UtcMicros(stopped.saturating_mul(1000)),
                reason: GAP_SPOOL_NOT_RECEIVED.to_owned(),
            },
            ack: None,
            permit: None,
        });
        if let Err(error) = self
            .store
            .add_contact_gap(contact, from, stopped, GAP_SPOOL_NOT_RECEIVED)
            .await
        {
            tracing::error!(%contact, %error, "recording the offline gap failed");
        }
        self.finish(contact, "offline deadline elapsed");
    }

    fn finish(&self, contact: ContactId, why: &'static str) {
        let closing = self
            .file(contact)
            .is_some_and(|file| *lock(&file.phase) == Phase::Closing);
        if closing && let Some(file) = self.end(contact) {
            tracing::debug!(%contact, why, "closing scn buffer");
            file.push(Op::Finish { at: self.now_us() });
        }
    }

    /// A call event for the contact's timeline.
    pub fn marker(&self, contact: ContactId, label: &str, at: UtcMillis) {
        if let Some(file) = self.file(contact) {
            file.push(Op::Append {
                record: Record::Marker {
                    at,
                    label: label.to_owned(),
                },
                ack: None,
                permit: None,
            });
        }
    }

    /// The open file of `contact` if `agent` may write to it, else the verdict to give.
    fn owned(&self, agent: AgentId, contact: ContactId) -> Result<Arc<OpenFile>, Verdict> {
        match self.file(contact) {
            Some(file) if file.agent == agent => Ok(file),
            Some(_) => Err(Verdict::Violation(format!(
                "contact {contact} is recorded by another agent"
            ))),
            None if lock(&self.recent).contains(&contact) => Err(Verdict::Late),
            None => Err(Verdict::Violation(format!(
                "this agent was not asked to record contact {contact}"
            ))),
        }
    }

    /// A stream's parameters (before its first frame, and after any size change).
    pub fn stream_params(
        &self,
        agent: AgentId,
        contact: ContactId,
        monitor: MonitorId,
        codec: VideoCodec,
        (width, height): (u32, u32),
    ) -> Verdict {
        let file = match self.owned(agent, contact) {
            Ok(file) => file,
            Err(verdict) => return verdict,
        };
        if width % 2 != 0 || height % 2 != 0 {
            return Verdict::Violation(format!("odd encoded size {width}x{height}"));
        }
        let mut streams = lock(&file.streams);
        if !streams.contains_key(&monitor) && streams.len() >= MAX_STREAMS {
            return Verdict::Violation(format!(
                "more than {MAX_STREAMS} streams in contact {contact}"
            ));
        }
        let stream = streams.entry(monitor).or_default();
        if stream.params == Some((width, height)) {
            return Verdict::Duplicate(None);
        }
        stream.params = Some((width, height));
        stream.decodable = false;
        drop(streams);
        Verdict::Write(Box::new(Pending {
            file,
            record: Record::StreamParams {
                monitor,
                codec,
                width,
                height,
            },
            ack: None,
        }))
    }

    /// Checks one video frame against its stream: the contact was asked of this agent, the
    /// stream's parameters came first, sequences continue (a jump only at a keyframe), and a
    /// stream starts with a keyframe.
    pub fn frame(&self, agent: AgentId, header: &FrameHeader, access_unit: &[u8]) -> Verdict {
        let file = match self.owned(agent, header.contact) {
            Ok(file) => file,
            Err(verdict) => return verdict,
        };
        file.touch(self.clock.now_ms());
        let mut streams = lock(&file.streams);
        let Some(stream) = streams.get_mut(&header.monitor) else {
            return Verdict::Violation(format!(
                "frame for monitor {} before its stream parameters",
                header.monitor
            ));
        };
        if stream.params.is_none() {
            return Verdict::Violation("frame before stream parameters".into());
        }
        if header.sequence < stream.next {
            let durable = lock(&file.durable).get(&header.monitor).copied();
            return Verdict::Duplicate(durable.and_then(|next| next.checked_sub(1)));
        }
        if !header.keyframe && (header.sequence > stream.next || !stream.decodable) {
            return Verdict::Violation(if header.sequence > stream.next {
                format!(
                    "sequence jumped from {} to {} without a keyframe",
                    stream.next, header.sequence
                )
            } else {
                "a stream must start with a keyframe".to_owned()
            });
        }
        stream.next = header.sequence + 1;
        stream.decodable = true;
        drop(streams);
        Verdict::Write(Box::new(Pending {
            file,
            record: Record::Video {
                monitor: header.monitor,
                sequence: header.sequence,
                captured: header.captured,
                keyframe: header.keyframe,
                data: access_unit.to_vec(),
            },
            ack: Some((header.monitor, header.sequence, tokio::time::Instant::now())),
        }))
    }

    /// Pointer positions of a recorded contact.
    pub fn pointer(
        &self,
        agent: AgentId,
        contact: ContactId,
        monitor: MonitorId,
        samples: &[PointerSample],
    ) -> Result<(), Verdict> {
        let file = self.owned(agent, contact)?;
        for sample in samples {
            file.push(Op::Append {
                record: Record::Pointer {
                    monitor,
                    captured: sample.captured,
                    x: sample.x,
                    y: sample.y,
                },
                ack: None,
                permit: None,
            });
        }
        Ok(())
    }

    /// A stretch of `agent`'s contact that one monitor could not capture (screen locked):
    /// written into the contact's file as a gap, on the server's clock by the agent's latest
    /// clock anchor. Returns the stretch in server time, or `None` when the contact is not an
    /// open file of this agent's or no clock measurement has arrived yet.
    pub fn capture_gap(
        &self,
        agent: AgentId,
        contact: ContactId,
        from: AgentMicros,
        to: AgentMicros,
        reason: &str,
    ) -> Option<(UtcMicros, UtcMicros)> {
        let file = self.owned(agent, contact).ok()?;
        let anchor = *lock(&self.anchors).get(&agent)?;
        let (from, mut to) = (anchor.to_server(from), anchor.to_server(to));
        // A stretch reported after the contact ended ends with it.
        if let Some(stopped) = *lock(&file.stopped_ms) {
            to = to.min(UtcMicros(stopped.saturating_mul(1000)));
        }
        let from = from.min(to);
        file.push(Op::Append {
            record: Record::Gap {
                from,
                to,
                reason: reason.to_owned(),
            },
            ack: None,
            permit: None,
        });
        Some((from, to))
    }

    /// A monitor's stream of `agent`'s contact ended (the monitor was removed or changed):
    /// written into the contact's file, in the agent's time as the frames are. Whether it was
    /// (not when the contact is not an open file of this agent's).
    pub fn stream_end(
        &self,
        agent: AgentId,
        contact: ContactId,
        monitor: MonitorId,
        at: AgentMicros,
        reason: &str,
    ) -> bool {
        let Ok(file) = self.owned(agent, contact) else {
            return false;
        };
        file.push(Op::Append {
            record: Record::StreamEnd {
                monitor,
                captured: at,
                reason: reason.to_owned(),
            },
            ack: None,
            permit: None,
        });
        true
    }

    /// `agent`'s time `at` on the server's clock, by its latest clock measurement.
    pub fn server_time(&self, agent: AgentId, at: AgentMicros) -> Option<UtcMicros> {
        lock(&self.anchors).get(&agent).map(|a| a.to_server(at))
    }

    /// For a stopped contact of `agent`'s whose file holds no frame at all: the stretch it
    /// lasted (opened → stopped, server ms). The agent never recorded it.
    pub fn unrecorded(&self, agent: AgentId, contact: ContactId) -> Option<(i64, i64)> {
        let file = self.owned(agent, contact).ok()?;
        let closing = *lock(&file.phase) == Phase::Closing;
        let empty = lock(&file.streams).values().all(|s| s.next == 0);
        let stopped = (*lock(&file.stopped_ms))?;
        (closing && empty).then_some((file.opened_ms, stopped))
    }

    /// A clock measurement of `agent`: written into each of its open files, and the anchor of
    /// its next file's header.
    pub fn clock(&self, agent: AgentId, sample: &ClockSample) {
        let anchor = ClockAnchor {
            agent: sample.agent_received,
            server: UtcMicros(
                i64::try_from(sample.agent_received.0)
                    .unwrap_or(i64::MAX)
                    .saturating_add(sample.offset_us()),
            ),
            rtt_us: sample.rtt_us(),
        };
        lock(&self.anchors).insert(agent, anchor);
        let files: Vec<_> = lock(&self.files)
            .values()
            .filter(|f| f.agent == agent)
            .cloned()
            .collect();
        for file in files {
            file.push(Op::Append {
                record: Record::ClockSample(anchor),
                ack: None,
                permit: None,
            });
        }
    }

    /// The agent finished sending a contact's frames: close it now if it is closing.
    pub fn stopped(&self, agent: AgentId, contact: ContactId, totals: &[StreamTotal]) {
        let Ok(file) = self.owned(agent, contact) else {
            return;
        };
        let streams = lock(&file.streams);
        for total in totals {
            let received = streams.get(&total.monitor).map_or(0, |s| s.next);
            if received != total.frames {
                tracing::warn!(%contact, monitor = %total.monitor, sent = total.frames, received, "agent and recorder disagree on the frame count");
            }
        }
        drop(streams);
        self.finish(contact, "agent stopped");
    }

    /// Whether `contact` is an open file of `agent`'s.
    pub fn owns(&self, agent: AgentId, contact: ContactId) -> bool {
        self.owned(agent, contact).is_ok()
    }

    /// What `agent` is recording now.
    pub fn recordings(&self, agent: AgentId) -> Vec<Recording> {
        lock(&self.files)
            .values()
            .filter(|f| f.agent == agent)
            .map(|file| Recording {
                contact: file.contact,
                state: match *lock(&file.phase) {
                    Phase::Tentative => "tentative",
                    Phase::Kept => "kept",
                    Phase::Closing => CLOSING,
                },
                streams: lock(&file.streams)
                    .iter()
                    .map(|(monitor, s)| StreamTotal {
                        monitor: *monitor,
                        frames: s.next,
                    })
                    .collect(),
            })
            .collect()
    }

    /// At start: reopens the files a previous run left open, cutting torn tails, so that agents
    /// that reconnect continue them.
    pub async fn recover(self: &Arc<Self>) -> Result<usize, StoreError> {
        let entries = self.store.open_scn_files().await?;
        let mut reopened = 0;
        for entry in entries {
            let path = self.data_dir.join(&entry.path);
            let scan = tokio::task::spawn_blocking(move || scan_streams(&path)).await;
            match scan {
                Ok(Ok((streams, frames))) => {
                    let phase = if entry.state == ScnState::Kept {
                        Phase::Kept
                    } else {
                        Phase::Tentative
                    };
                    self.spawn_file(
                        entry.contact,
                        entry.agent,
                        Origin::Reopen { frames },
                        phase,
                        streams,
                    );
                    reopened += 1;
                    // The contact may have ended while the server was down or stopping: the
                    // integration will not say so again.
                    let state = self
                        .store
                        .contact(&entry.contact.to_string())
                        .await?
                        .map(|c| c.summary.state);
                    match state.as_deref() {
                        Some("closed") => self.stop(entry.contact),
                        Some("discarded") => self.discard(entry.contact),
                        _ => {}
                    }
                }
                Ok(Err(error)) => self.lost(&entry, &error.to_string()).await?,
                Err(error) => self.lost(&entry, &error.to_string()).await?,
            }
        }
        Ok(reopened)
    }

    async fn lost(&self, entry: &ScnFileEntry, error: &str) -> Result<(), StoreError> {
        tracing::error!(contact = %entry.contact, path = entry.path, error, "an open scn buffer cannot be reopened");
        self.store
            .delete_scn_file(
                entry.contact,
                "buffer file unreadable after restart",
                self.clock.now_ms(),
            )
            .await
    }

    /// Waits for the write stages to finish what they were given (server shutdown).
    pub async fn close(&self) {
        self.closing.cancel();
        lock(&self.files).clear();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
