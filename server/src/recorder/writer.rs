//! The write stage of one contact's SCN file: operations in, records on disk, acknowledgements
//! out. It owns the [`ScnWriter`]; its batches are appended and synced on the recorder's append
//! thread ([`super::appender`]) together with every other file's, while creation, closing and
//! deletion run on the blocking pool.
//!
//! Records arrive already validated (the session and [`super::buffer`] check them). Each batch of
//! queued records is appended and made durable once (group commit, shared with the other files of
//! the round), then the highest sequence of every monitor in the batch is acknowledged to the
//! agent: an ack means "on stable storage".

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use capture_shared::ids::{AgentId, ContactId, MonitorId};
use capture_shared::protocol::ServerMessage;
use capture_shared::scn::{FsyncPolicy, Record, ScnError, ScnHeader, ScnWriter};
use capture_shared::time::UtcMicros;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::appender::Appender;
use super::disk::DiskHealth;
use crate::clock::Clock;
use crate::integration::link::AgentLink;
use crate::store::{ScnState, Store};

/// Most operations taken from the queue for one append-and-sync.
const BATCH: usize = 256;

/// The wait before a failed write (a full or failing disk) is tried again.
pub const WRITE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// One operation on a contact's file, in the order the file must see them.
#[derive(Debug)]
pub enum Op {
    /// Append a record; for a video record, the (monitor, sequence) to acknowledge once durable.
    /// The permit holds the record's share of the file's queue budget until it is written.
    Append {
        record: Record,
        ack: Option<(MonitorId, u64, tokio::time::Instant)>,
        permit: Option<OwnedSemaphorePermit>,
    },
    /// The call was answered.
    Keep,
    /// Close the file with an end record.
    Finish { at: UtcMicros },
    /// Remove the file (the call was not answered), audited with the reason.
    Delete { reason: &'static str },
}

/// One queued append: the record, what to acknowledge, its budget permit.
pub type Append = (
    Record,
    Option<(MonitorId, u64, tokio::time::Instant)>,
    Option<OwnedSemaphorePermit>,
);

/// How the file comes to exist.
#[derive(Debug)]
pub enum Origin {
    /// A new contact: create the file with this header and catalogue it.
    Create(Box<ScnHeader>),
    /// A restart found it open, holding this many frames: continue after its last whole record.
    Reopen { frames: u64 },
}

/// The write stage of one file.
#[derive(Debug)]
pub struct FileWriter {
    pub contact: ContactId,
    pub agent: AgentId,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// The path as catalogued (relative to the data directory).
    pub catalogued_path: String,
    pub store: Store,
    pub clock: Clock,
    pub acks: Arc<dyn AgentLink>,
    /// Written to by this stage after every durable batch: the next sequence per monitor that
    /// is on disk, which the session uses to answer re-sent duplicates.
    pub durable: Arc<std::sync::Mutex<BTreeMap<MonitorId, u64>>>,
    /// The buffer disk's health, told of failing and recovered writes.
    pub disk: Arc<DiskHealth>,
    /// Told how long each frame took from its arrival to stable storage.
    pub load: Arc<super::load::Load>,
    /// Cancelled at shutdown: a write being retried gives up (the file stays open on disk).
    pub closing: tokio_util::sync::CancellationToken,
    /// Where batches are written and synced.
    pub appender: Appender,
}

impl FileWriter {
    /// Runs until the file is finished or deleted, or the queue closes (server shutdown: the
    /// file stays open on disk and is reopened at the next start). The caller instruments it
    /// with the contact's span.
    pub async fn run(self, origin: Origin, mut ops: mpsc::UnboundedReceiver<Op>) {
        let origin_frames = match &origin {
            Origin::Reopen { frames } => Some(*frames),
            Origin::Create(_) => None,
        };
        let creating = matches!(origin, Origin::Create(_));
        let mut writer = match self.open(origin).await {
            Ok(writer) => writer,
            Err(error) => {
                tracing::error!(%error, path = %self.path.display(), "scn buffer could not be opened; the contact's screen is lost");
                if creating {
                    self.unrecorded(&error).await;
                }
                return;
            }
        };
        let mut frames: u64 = origin_frames.unwrap_or(0);
        let mut batch = Vec::with_capacity(BATCH);
        while ops.recv_many(&mut batch, BATCH).await > 0 {
            let mut appends = Vec::new();
            for op in batch.drain(..) {
                let control = match op {
                    Op::Append {
                        record,
                        ack,
                        permit,
                    } => {
                        appends.push((record, ack, permit));
                        continue;
                    }
                    control => control,
                };
                // What was queued before a control operation is written before it.
                if !appends.is_empty() {
                    let Some((back, written)) =
                        self.append(writer, std::mem::take(&mut appends)).await
                    else {
                        return;
                    };
                    writer = back;
                    frames += written;
                }
                match control {
                    Op::Keep => self.set_kept().await,
                    Op::Finish { at } => return self.finish(writer, at, frames).await,
                    Op::Delete { reason } => return self.delete(writer, reason).await,
                    Op::Append { .. } => {}
                }
            }
            if !appends.is_empty() {
                let Some((back, written)) = self.append(writer, appends).await else {
                    return;
                };
                writer = back;
                frames += written;
            }
        }
        tracing::info!(frames, "scn buffer left open (server stopping)");
    }

    /// The file could not be created (the disk filled up after the contact was taken): the
    /// contact's screen is a gap with the reason.
    async fn unrecorded(&self, error: &ScnError) {
        let reason = format!("screen not recorded: its buffer file could not be created ({error})");
        let opened = async {
            let mut tx = self.store.begin().await?;
            tx.open_gap(self.contact, self.clock.now_ms(), &reason)
                .await?;
            tx.commit().await
        };
        if let Err(error) = opened.await {
            tracing::error!(%error, "recording the unrecorded contact's gap failed");
        }
    }

    async fn set_kept(&self) {
        if let Err(error) = self
            .store
            .set_scn_state(self.contact, ScnState::Kept, None, self.clock.now_ms())
            .await
        {
            tracing::error!(contact = %self.contact, %error, "recording the kept state failed");
        }
    }

    async fn open(&self, origin: Origin) -> Result<ScnWriter, ScnError> {
        let path = self.path.clone();
        match origin {
            Origin::Create(header) => {
                let writer = tokio::task::spawn_blocking(move || {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    ScnWriter::create(&path, &header, FsyncPolicy::Never)
                })
                .await
                .map_err(|e| ScnError::Io(std::io::Error::other(e)))??;
                if let Err(error) = self
                    .store
                    .insert_scn_file(
                        self.contact,
                        self.agent,
                        &self.catalogued_path,
                        self.clock.now_ms(),
                    )
                    .await
                {
                    tracing::error!(%error, "cataloguing the scn buffer failed");
                }
                tracing::info!(path = %self.path.display(), "scn buffer created");
                Ok(writer)
            }
            Origin::Reopen { .. } => {
                let (writer, dropped) = tokio::task::spawn_blocking(move || {
                    ScnWriter::open_append(&path, FsyncPolicy::Never)
                })
                .await
                .map_err(|e| ScnError::Io(std::io::Error::other(e)))??;
                if let Some(dropped) = dropped {
                    tracing::warn!(offset = dropped.offset, bytes = dropped.bytes, reason = ?dropped.reason, "scn buffer reopened: a torn tail was cut");
                }
                Ok(writer)
            }
        }
    }

    /// Appends and syncs a batch, then acknowledges it; returns the writer and the video records
    /// written. A failed write or sync (a full or failing disk) cuts the file back to the batch's
    /// start and is tried again every [`WRITE_RETRY`], nothing acknowledged meanwhile (the agent
    /// keeps the frames); `None` when the server stops first (the file stays open on disk, at its
    /// last synced batch).
    async fn append(&self, writer: ScnWriter, appends: Vec<Append>) -> Option<(ScnWriter, u64)> {
        let start = writer.bytes_written();
        let mut job = (writer, appends);
        let mut failing = false;
        loop {
            let (writer, appends, result) =
                match self.appender.append(job.0, start, failing, job.1).await {
                    Some(done) => done,
                    None => {
                        tracing::error!(
                            "scn append thread is gone; the file stays at its last synced batch"
                        );
                        return None;
                    }
                };
            match result {
                Ok((acks, written)) => {
                    if failing {
                        self.disk.write_recovered();
                        tracing::info!("scn writes succeed again; the waiting frames are written");
                    }
                    let synced = tokio::time::Instant::now();
                    for (_, ack, _) in &appends {
                        if let Some((_, _, received)) = ack {
                            self.load
                                .record(synced.saturating_duration_since(*received));
                        }
                    }
                    drop(appends);
                    self.acknowledge(acks);
                    return Some((writer, written));
                }
                Err(error) => {
                    if !failing {
                        failing = true;
                        self.disk.write_failed();
                        tracing::error!(%error, "scn append failed: nothing more is acknowledged (the agent keeps the frames); trying again");
                    }
                    job = (writer, appends);
                    tokio::select! {
                        () = tokio::time::sleep(WRITE_RETRY) => {}
                        () = self.closing.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// Marks what a batch made durable and acknowledges each monitor's highest sequence.
    fn acknowledge(&self, acks: BTreeMap<MonitorId, u64>) {
        if !acks.is_empty() {
            let mut durable = self
                .durable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (&monitor, &sequence) in &acks {
                durable.insert(monitor, sequence + 1);
            }
        }
        for (monitor, sequence) in acks {
            // A lost ack (agent gone, queue full) is covered by the next one.
            self.acks.send(
                self.agent,
                ServerMessage::Ack {
                    contact: self.contact,
                    monitor,
                    sequence,
                },
            );
        }
    }

    /// Closes the file with its end record; a failure (a full disk) is tried again every
    /// [`WRITE_RETRY`] from the file reopened at its last whole record.
    async fn finish(&self, writer: ScnWriter, at: UtcMicros, frames: u64) {
        let mut writer = Some(writer);
        let mut failing = false;
        let result = loop {
            let current = writer.take();
            let path = self.path.clone();
            let attempt = tokio::task::spawn_blocking(move || match current {
                Some(writer) => writer.finish(at),
                None => match ScnWriter::open_append(&path, FsyncPolicy::Never) {
                    Ok((writer, _)) => writer.finish(at),
                    // The end record is in the file; only its sync failed before.
                    Err(ScnError::Closed) => {
                        let file = std::fs::File::open(&path)?;
                        file.sync_all()?;
                        Ok(file.metadata()?.len())
                    }
                    Err(error) => Err(error),
                },
            })
            .await;
            match attempt {
                Ok(Err(error)) if !self.closing.is_cancelled() => {
                    if !failing {
                        failing = true;
                        self.disk.write_failed();
                        tracing::error!(%error, "closing the scn buffer failed; trying again");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(WRITE_RETRY) => {}
                        () = self.closing.cancelled() => {}
                    }
                }
                other => break other,
            }
        };
        if failing {
            self.disk.write_recovered();
        }
        match result {
            Ok(Ok(bytes)) => {
                tracing::info!(bytes, frames, "scn buffer closed");
                if let Err(error) = self
                    .store
                    .set_scn_state(
                        self.contact,
                        ScnState::Closed,
                        Some((bytes, frames)),
                        self.clock.now_ms(),
                    )
                    .await
                {
                    tracing::error!(%error, "recording the closed state failed");
                }
            }
            Ok(Err(error)) => tracing::error!(%error, "closing the scn buffer failed"),
            Err(error) => tracing::error!(%error, "closing the scn buffer panicked"),
        }
    }

    async fn delete(&self, writer: ScnWriter, reason: &'static str) {
        let path = self.path.clone();
        let removed = tokio::task::spawn_blocking(move || {
            drop(writer);
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match removed {
            Ok(()) => {
                tracing::info!(reason, "scn buffer deleted");
                if let Err(error) = self
                    .store
                    .delete_scn_file(self.contact, reason, self.clock.now_ms())
                    .await
                {
                    tracing::error!(%error, "auditing the scn deletion failed");
                }
            }
            Err(error) => tracing::error!(%error, "deleting the scn buffer failed"),
        }
    }
}
