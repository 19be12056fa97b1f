//! The offline spool: every encoded frame is appended here first, and sent from here, so that
//! nothing captured is lost while the recorder is out of reach (network down, server
//! restarting, backpressure) or when the agent itself is killed.
//!
//! On disk the spool is SCN files (DESIGN.md §4) in the spool directory, one or more segments
//! per contact (`<contact>-<segment>.scn`, each ≤ [`SEGMENT_BYTES`] before the next begins, each
//! starting with its streams' parameters); a contact the server stopped ends with the end
//! record. In memory it is an index: for each stream, the frames not yet acknowledged (segment,
//! offset, sequence), of which the first `sent` went out on the current connection. Frames go
//! out oldest first across every stream, at most [`MAX_FRAMES_IN_FLIGHT`] unacknowledged; an
//! acknowledgement frees them, a segment whose frames are all acknowledged is deleted, and a
//! contact that ended, was reported `Stopped` and is fully acknowledged leaves the spool.
//!
//! The disk quota bounds the files: past it the oldest ended contact's files go first (each drop
//! reported to the server as `SpoolDropped`), then the newest frames of a live contact (until its
//! next keyframe, so that what is kept still decodes).

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::{
    AgentMessage, FrameHeader, HeldContact, MAX_FRAMES_IN_FLIGHT, MonitorInfo, SpooledContact,
    StreamTotal, VideoCodec, encode_frame,
};
use capture_shared::scn::{FsyncPolicy, Record, ScnHeader, ScnWriter, read_record_at};
use capture_shared::time::{AgentMicros, UtcMicros};

/// Largest segment file: a contact's acknowledged frames leave the disk a segment at a time.
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// The default disk quota: eight hours of one monitor at the office benchmark's 39 kbit/s
/// (BENCHMARKS.md), rounded up to 40 kbit/s: 144 MB.
pub const DEFAULT_QUOTA_BYTES: u64 = 8 * 3600 * 40_000 / 8;

/// How often appended frames are forced to disk. The page cache survives the agent's own crash;
/// this bounds what a power loss takes.
pub const SPOOL_FSYNC: Duration = Duration::from_secs(5);

/// Why frames left the spool before the server had them, as the timeline names it.
pub const DROP_QUOTA: &str = "screen not received: the agent's offline spool was full";

/// One encoded frame, as the pipelines hand it over.
#[derive(Debug, Clone)]
pub struct SpoolFrame<'a> {
    /// The contact.
    pub contact: ContactId,
    /// The monitor.
    pub monitor: MonitorId,
    /// Capture time on the agent's clock.
    pub captured: AgentMicros,
    /// Whether it is a keyframe.
    pub keyframe: bool,
    /// Encoded size.
    pub width: u32,
    /// Encoded size.
    pub height: u32,
    /// The Annex-B access unit.
    pub data: &'a [u8],
}

/// What became of an appended frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// In the spool, to be sent.
    Kept,
    /// Dropped: the quota is reached and nothing older could go; the stream now waits for a
    /// keyframe (ask the encoder for one).
    Dropped,
}

/// Something to send, oldest first.
#[derive(Debug)]
pub enum Outgoing {
    /// A control message (stream parameters before a stream's first frame on this connection or
    /// after a size change; `Stopped` after a contact's last frame).
    Control(AgentMessage),
    /// An encoded frame message.
    Frame(Vec<u8>),
}

/// Whether the spool's files can be used.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Reading or writing the spool directory failed.
    #[error("the spool at {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    order: u64,
    sequence: u64,
    segment: u32,
    offset: u64,
    bytes: u64,
    captured: AgentMicros,
    size: (u32, u32),
}

#[derive(Debug, Default)]
struct Stream {
    /// The sequence the next appended frame gets.
    next: u64,
    /// The size of the last appended frame.
    size: Option<(u32, u32)>,
    unacked: VecDeque<Entry>,
    /// How many of `unacked` (from the front) went out on this connection.
    sent: usize,
    /// The size last announced on this connection.
    announced: Option<(u32, u32)>,
    /// After a dropped frame: nothing is kept until the next keyframe.
    awaiting_keyframe: bool,
    /// Frames dropped in the current run: count, first and last capture time.
    dropping: Option<(u64, AgentMicros, AgentMicros)>,
}

#[derive(Debug)]
struct Segment {
    index: u32,
    path: PathBuf,
    bytes: u64,
    /// Unacknowledged frames in it.
    frames: usize,
    reader: Option<File>,
}

#[derive(Debug)]
struct Contact {
    /// Creation order: the oldest ended contact is dropped first.
    created: u64,
    segments: VecDeque<Segment>,
    writer: Option<ScnWriter>,
    streams: BTreeMap<MonitorId, Stream>,
    /// The server stopped it and every frame is appended (its last segment has the end record).
    ended: bool,
    /// `Stopped` went out on this connection.
    stopped_sent: bool,
    /// Found unended at start (the previous run was killed while recording it): its last
    /// frame's capture time, until the stretch after it is reported.
    interrupted_at: Option<AgentMicros>,
}

impl Contact {
    fn new(created: u64) -> Contact {
        Contact {
            created,
            segments: VecDeque::new(),
            writer: None,
            streams: BTreeMap::new(),
            ended: false,
            stopped_sent: false,
            interrupted_at: None,
        }
    }

    fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    fn unacked(&self) -> usize {
        self.streams.values().map(|s| s.unacked.len()).sum()
    }

    fn unsent(&self) -> usize {
        self.streams
            .values()
            .map(|s| s.unacked.len() - s.sent)
            .sum()
    }

    fn totals(&self) -> Vec<StreamTotal> {
        self.streams
            .iter()
            .map(|(monitor, s)| StreamTotal {
                monitor: *monitor,
                frames: s.next,
            })
            .collect()
    }
}

/// The spool of one agent.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    agent: AgentId,
    quota: u64,
    monitors: Vec<MonitorInfo>,
    contacts: BTreeMap<ContactId, Contact>,
    next_order: u64,
    /// Drops not yet reported to the server.
    dropped: Vec<AgentMessage>,
    /// Forces appended frames to disk every [`SPOOL_FSYNC`], off the caller's thread.
    syncer: sync::Syncer,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

fn scn_error(path: &Path) -> impl FnOnce(capture_shared::scn::ScnError) -> SpoolError + '_ {
    move |error| SpoolError::Io {
        path: path.to_owned(),
        source: io::Error::other(error.to_string()),
    }
}

impl Spool {
    /// The monitors new segment headers name.
    pub fn set_monitors(&mut self, monitors: Vec<MonitorInfo>) {
        self.monitors = monitors;
    }

    /// Whether the spool holds `contact`.
    pub fn contains(&self, contact: ContactId) -> bool {
        self.contacts.contains_key(&contact)
    }

    /// Whether the spool holds `contact` and it ended.
    pub fn has_ended(&self, contact: ContactId) -> bool {
        self.contacts.get(&contact).is_some_and(|c| c.ended)
    }

    /// Contacts the spool holds that have not ended (a previous run was recording them).
    pub fn unended(&self) -> Vec<ContactId> {
        self.contacts
            .iter()
            .filter(|(_, c)| !c.ended)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Contacts a previous run was recording when it was killed: the capture time of the last
    /// frame it kept, and the monitors it recorded (each stretch reported once).
    pub fn take_interrupted(&mut self) -> Vec<(ContactId, AgentMicros, Vec<MonitorId>)> {
        self.contacts
            .iter_mut()
            .filter_map(|(id, c)| {
                let at = c.interrupted_at.take()?;
                Some((*id, at, c.streams.keys().copied().collect()))
            })
            .collect()
    }

    /// What the `Hello` reports.
    pub fn report(&self) -> Vec<SpooledContact> {
        self.contacts
            .iter()
            .map(|(contact, c)| SpooledContact {
                contact: *contact,
                streams: c.totals(),
                ended: c.ended,
            })
            .collect()
    }

    /// Bytes of frames not yet acknowledged.
    pub fn pending_bytes(&self) -> u64 {
        self.contacts
            .values()
            .flat_map(|c| c.streams.values())
            .flat_map(|s| s.unacked.iter())
            .map(|e| e.bytes)
            .sum()
    }

    /// Frames not yet acknowledged.
    pub fn pending_frames(&self) -> usize {
        self.contacts.values().map(Contact::unacked).sum()
    }

    /// Frames sent on this connection and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.contacts
            .values()
            .flat_map(|c| c.streams.values())
            .map(|s| s.sent)
            .sum()
    }

    /// Bytes of every spool file.
    pub fn disk_bytes(&self) -> u64 {
        self.contacts.values().map(Contact::bytes).sum()
    }

    /// A resumed contact (the server's file holds frames already): its sequences continue from
    /// there unless the spool is further on.
    pub fn resume(&mut self, contact: ContactId, totals: &[StreamTotal]) {
        let order = self.next_order;
        let entry = self
            .contacts
            .entry(contact)
            .or_insert_with(|| Contact::new(order));
        for total in totals {
            let stream = entry.streams.entry(total.monitor).or_default();
            stream.next = stream.next.max(total.frames);
        }
        self.next_order += 1;
    }

    /// A new connection: everything unacknowledged is to be sent again, after what the server
    /// says it holds (`held`); contacts in `forget` are deleted.
    pub fn reconnected(
        &mut self,
        held: &[HeldContact],
        forget: &[ContactId],
    ) -> Result<(), SpoolError> {
        for contact in self.contacts.values_mut() {
            contact.stopped_sent = false;
            for stream in contact.streams.values_mut() {
                stream.sent = 0;
                stream.announced = None;
            }
        }
        for contact in forget {
            self.forget(*contact)?;
        }
        for held in held {
            for total in &held.streams {
                if let Some(sequence) = total.frames.checked_sub(1) {
                    self.ack(held.contact, total.monitor, sequence)?;
                }
                if let Some(contact) = self.contacts.get_mut(&held.contact) {
                    let stream = contact.streams.entry(total.monitor).or_default();
                    stream.next = stream.next.max(total.frames);
                }
            }
        }
        Ok(())
    }

    /// Appends one encoded frame (the next sequence of its stream).
    pub fn append(&mut self, frame: &SpoolFrame<'_>) -> Result<Appended, SpoolError> {
        if let Some(source) = self.syncer.take_failure() {
            return Err(SpoolError::Io {
                path: self.dir.clone(),
                source,
            });
        }
        let record_bytes = frame.data.len() as u64 + 64;
        if !self.make_room(frame.contact, record_bytes)? {
            return Ok(self.drop_frame(frame));
        }
        let order = self.next_order;
        self.next_order += 1;
        let contact = self
            .contacts
            .entry(frame.contact)
            .or_insert_with(|| Contact::new(order));
        let stream = contact.streams.entry(frame.monitor).or_default();
        if stream.awaiting_keyframe && !frame.keyframe {
            return Ok(self.drop_frame(frame));
        }
        let finished_run = stream.dropping.take();
        stream.awaiting_keyframe = false;
        if let Some((frames, from, to)) = finished_run {
            self.dropped.push(AgentMessage::SpoolDropped {
                contact: frame.contact,
                frames,
                from,
                to,
                reason: DROP_QUOTA.into(),
            });
        }
        let contact = self
            .contacts
            .get_mut(&frame.contact)
            .ok_or_else(|| SpoolError::Io {
                path: self.dir.clone(),
                source: io::Error::other("contact vanished"),
            })?;
        let needs_segment = contact.writer.is_none()
            || contact
                .segments
                .back()
                .is_none_or(|s| s.bytes >= SEGMENT_BYTES);
        if needs_segment {
            new_segment(
                &self.dir,
                self.agent,
                frame.contact,
                &self.monitors,
                contact,
            )?;
        }
        let size = (frame.width, frame.height);
        let stream = contact.streams.entry(frame.monitor).or_default();
        let announce = stream.size != Some(size);
        stream.size = Some(size);
        let sequence = stream.next;
        stream.next += 1;
        let (Some(writer), Some(segment)) = (contact.writer.as_mut(), contact.segments.back_mut())
        else {
            return Err(SpoolError::Io {
                path: self.dir.clone(),
                source: io::Error::other("no open segment"),
            });
        };
        if announce {
            let len = writer
                .append(&Record::StreamParams {
                    monitor: frame.monitor,
                    codec: VideoCodec::H264,
                    width: frame.width,
                    height: frame.height,
                })
                .map_err(scn_error(&segment.path))?;
            segment.bytes = len;
        }
        let offset = writer.bytes_written();
        let len = writer
            .append(&Record::Video {
                monitor: frame.monitor,
                sequence,
                captured: frame.captured,
                keyframe: frame.keyframe,
                data: frame.data.to_vec(),
            })
            .map_err(scn_error(&segment.path))?;
        segment.bytes = len;
        segment.frames += 1;
        let stream = contact.streams.entry(frame.monitor).or_default();
        stream.unacked.push_back(Entry {
            order,
            sequence,
            segment: segment.index,
            offset,
            bytes: len - offset,
            captured: frame.captured,
            size,
        });
        let contacts = &self.contacts;
        self.syncer.tick(|| {
            contacts
                .values()
                .filter_map(|c| c.writer.as_ref()?.try_clone_file().ok())
                .collect()
        });
        Ok(Appended::Kept)
    }

    fn drop_frame(&mut self, frame: &SpoolFrame<'_>) -> Appended {
        let order = self.next_order;
        let contact = self
            .contacts
            .entry(frame.contact)
            .or_insert_with(|| Contact::new(order));
        let stream = contact.streams.entry(frame.monitor).or_default();
        stream.awaiting_keyframe = true;
        let run = stream
            .dropping
            .get_or_insert((0, frame.captured, frame.captured));
        run.0 += 1;
        run.2 = frame.captured;
        Appended::Dropped
    }

    /// Frees room for `bytes` more under the quota, dropping the oldest ended contacts other
    /// than `keep`; false when there is still no room.
    fn make_room(&mut self, keep: ContactId, bytes: u64) -> Result<bool, SpoolError> {
        while self.disk_bytes() + bytes > self.quota {
            let oldest = self
                .contacts
                .iter()
                .filter(|(id, c)| **id != keep && c.ended && !c.segments.is_empty())
                .min_by_key(|(_, c)| c.created)
                .map(|(id, _)| *id);
            let Some(oldest) = oldest else {
                // Acknowledged frames still on disk in segments being written go before any
                // frame is dropped.
                if self.compact()? {
                    continue;
                }
                return Ok(false);
            };
            let contact = &self.contacts[&oldest];
            let entries: Vec<&Entry> = contact
                .streams
                .values()
                .flat_map(|s| s.unacked.iter())
                .collect();
            let from = entries.iter().map(|e| e.captured).min();
            let to = entries.iter().map(|e| e.captured).max();
            if let (Some(from), Some(to)) = (from, to) {
                tracing::warn!(contact = %oldest, frames = entries.len(), "spool full: the oldest ended contact's frames are dropped");
                self.dropped.push(AgentMessage::SpoolDropped {
                    contact: oldest,
                    frames: entries.len() as u64,
                    from,
                    to,
                    reason: DROP_QUOTA.into(),
                });
            }
            self.forget(oldest)?;
        }
        Ok(true)
    }

    /// Deletes the segments whose frames are all acknowledged, the written ones too (the next
    /// frame starts a new segment); true when anything was deleted.
    fn compact(&mut self) -> Result<bool, SpoolError> {
        let mut freed = false;
        for contact in self.contacts.values_mut() {
            if contact.ended || contact.segments.iter().any(|s| s.frames > 0) {
                continue;
            }
            contact.writer = None;
            for segment in contact.segments.drain(..) {
                remove(&segment.path)?;
                freed = true;
            }
        }
        Ok(freed)
    }

    /// The server stopped `contact` and its pipelines drained: the end record closes it; once
    /// sent in full it is reported `Stopped`.
    pub fn end(&mut self, contact: ContactId) -> Result<(), SpoolError> {
        let order = self.next_order;
        self.next_order += 1;
        let entry = self
            .contacts
            .entry(contact)
            .or_insert_with(|| Contact::new(order));
        entry.ended = true;
        if let Some(writer) = entry.writer.take() {
            let path = writer.path().to_owned();
            let len = writer.finish(UtcMicros::now()).map_err(scn_error(&path))?;
            if let Some(segment) = entry.segments.back_mut() {
                segment.bytes = len;
            }
        }
        Ok(())
    }

    /// The agent stops for now (shutdown) but the contact goes on: its file stays open for the
    /// next run. Forces what was appended to disk.
    pub fn sync(&mut self) {
        for contact in self.contacts.values_mut() {
            if let Some(writer) = contact.writer.as_mut()
                && let Err(error) = writer.sync()
            {
                tracing::warn!(%error, "syncing the spool failed");
            }
        }
    }

    /// Deletes every file of `contact` (discarded, or the server no longer takes it).
    pub fn forget(&mut self, contact: ContactId) -> Result<(), SpoolError> {
        let Some(removed) = self.contacts.remove(&contact) else {
            return Ok(());
        };
        drop(removed.writer);
        for segment in removed.segments {
            remove(&segment.path)?;
        }
        Ok(())
    }

    /// The server holds frames up to `sequence` of a stream durably.
    pub fn ack(
        &mut self,
        contact: ContactId,
        monitor: MonitorId,
        sequence: u64,
    ) -> Result<(), SpoolError> {
        let Some(entry) = self.contacts.get_mut(&contact) else {
            return Ok(());
        };
        let Some(stream) = entry.streams.get_mut(&monitor) else {
            return Ok(());
        };
        while let Some(front) = stream.unacked.front()
            && front.sequence <= sequence
        {
            let segment = front.segment;
            stream.unacked.pop_front();
            stream.sent = stream.sent.saturating_sub(1);
            if let Some(s) = entry.segments.iter_mut().find(|s| s.index == segment) {
                s.frames = s.frames.saturating_sub(1);
            }
        }
        // Acknowledged segments leave the disk; the last (written, or holding the end record)
        // stays until the contact settles.
        while entry.segments.len() > 1
            && let Some(first) = entry.segments.front()
            && first.frames == 0
        {
            let path = first.path.clone();
            entry.segments.pop_front();
            remove(&path)?;
        }
        self.settle(contact)
    }

    /// Removes `contact` once it ended, was reported and holds nothing unacknowledged.
    fn settle(&mut self, contact: ContactId) -> Result<(), SpoolError> {
        let done = self
            .contacts
            .get(&contact)
            .is_some_and(|c| c.ended && c.stopped_sent && c.unacked() == 0);
        if done {
            self.forget(contact)?;
        }
        Ok(())
    }

    /// Drops reported to the server since the last call.
    pub fn take_dropped(&mut self) -> Vec<AgentMessage> {
        std::mem::take(&mut self.dropped)
    }

    /// The next message to send on this connection, oldest frame first, or `None` when
    /// everything went out or [`MAX_FRAMES_IN_FLIGHT`] wait for their acknowledgement.
    pub fn next_outgoing(&mut self) -> Result<Option<Outgoing>, SpoolError> {
        // A contact sent in full that ended: `Stopped` after its last frame.
        let ready = self
            .contacts
            .iter()
            .find(|(_, c)| c.ended && !c.stopped_sent && c.unsent() == 0)
            .map(|(id, _)| *id);
        if let Some(id) = ready
            && let Some(contact) = self.contacts.get_mut(&id)
        {
            contact.stopped_sent = true;
            let message = AgentMessage::Stopped {
                contact: id,
                frames: contact.totals(),
            };
            self.settle(id)?;
            return Ok(Some(Outgoing::Control(message)));
        }
        if self.in_flight() >= MAX_FRAMES_IN_FLIGHT as usize {
            return Ok(None);
        }
        let oldest = self
            .contacts
            .iter()
            .flat_map(|(id, c)| {
                c.streams
                    .iter()
                    .filter_map(move |(m, s)| s.unacked.get(s.sent).map(|e| (e.order, *id, *m)))
            })
            .min();
        let Some((_, id, monitor)) = oldest else {
            return Ok(None);
        };
        let dir = self.dir.clone();
        let Some(contact) = self.contacts.get_mut(&id) else {
            return Ok(None);
        };
        let Some(stream) = contact.streams.get_mut(&monitor) else {
            return Ok(None);
        };
        let entry = stream.unacked[stream.sent];
        if stream.announced != Some(entry.size) {
            stream.announced = Some(entry.size);
            return Ok(Some(Outgoing::Control(AgentMessage::StreamParams {
                contact: id,
                monitor,
                codec: VideoCodec::H264,
                width: entry.size.0,
                height: entry.size.1,
            })));
        }
        let Some(segment) = contact
            .segments
            .iter_mut()
            .find(|s| s.index == entry.segment)
        else {
            return Err(SpoolError::Io {
                path: dir,
                source: io::Error::other("a frame's segment is gone"),
            });
        };
        if segment.reader.is_none() {
            segment.reader = Some(File::open(&segment.path).map_err(io_error(&segment.path))?);
        }
        let Some(reader) = segment.reader.as_mut() else {
            return Ok(None);
        };
        let record = read_record_at(reader, entry.offset).map_err(io_error(&segment.path))?;
        let Record::Video { keyframe, data, .. } = record else {
            return Err(SpoolError::Io {
                path: segment.path.clone(),
                source: io::Error::other("the index points at a record that is not a frame"),
            });
        };
        stream.sent += 1;
        let header = FrameHeader {
            contact: id,
            monitor,
            sequence: entry.sequence,
            captured: entry.captured,
            keyframe,
        };
        Ok(Some(Outgoing::Frame(encode_frame(&header, &data))))
    }
}

fn new_segment(
    dir: &Path,
    agent: AgentId,
    id: ContactId,
    monitors: &[MonitorInfo],
    contact: &mut Contact,
) -> Result<(), SpoolError> {
    if let Some(mut old) = contact.writer.take() {
        let path = old.path().to_owned();
        old.sync().map_err(scn_error(&path))?;
    }
    let index = contact.segments.back().map_or(0, |s| s.index + 1);
    let path = dir.join(format!("{id}-{index:06}.scn"));
    let header = ScnHeader {
        agent,
        contact: id,
        created: UtcMicros::now(),
        monitors: monitors.to_vec(),
        clock_anchor: None,
    };
    let mut writer =
        ScnWriter::create(&path, &header, FsyncPolicy::Never).map_err(scn_error(&path))?;
    // Each segment names its streams' sizes, so that it reads on its own.
    for (monitor, stream) in &contact.streams {
        if let Some((width, height)) = stream.size {
            writer
                .append(&Record::StreamParams {
                    monitor: *monitor,
                    codec: VideoCodec::H264,
                    width,
                    height,
                })
                .map_err(scn_error(&path))?;
        }
    }
    contact.segments.push_back(Segment {
        index,
        path,
        bytes: writer.bytes_written(),
        frames: 0,
        reader: None,
    });
    contact.writer = Some(writer);
    Ok(())
}

fn remove(path: &Path) -> Result<(), SpoolError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(SpoolError::Io {
            path: path.to_owned(),
            source: error,
        }),
    }
}

mod reopen;
mod sync;
#[cfg(test)]
mod tests;
