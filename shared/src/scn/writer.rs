//! The append-only SCN writer.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::reader::{Dropped, ScnReader};
use super::{
    FORMAT_VERSION, FsyncPolicy, MAGIC, MAX_HEADER_BYTES, MAX_RECORD_BYTES, Record, ScnError,
    ScnHeader,
};
use crate::time::UtcMicros;

/// Appends records to one SCN file. Each [`append`](Self::append) writes one whole record with a
/// single write to the operating system and, per the [`FsyncPolicy`], forces it to disk before
/// returning. A failed write is rolled back (the file is truncated to its last whole record), so
/// a full disk never leaves a torn record in the middle of a file.
#[derive(Debug)]
pub struct ScnWriter {
    file: File,
    path: PathBuf,
    policy: FsyncPolicy,
    len: u64,
    last_sync: Instant,
    unsynced: bool,
    state: WriterState,
    scratch: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterState {
    Open,
    Closed,
    /// A failed write could not be rolled back; the file must be recovered by reopening it.
    Poisoned,
}

/// Encodes the magic, version, header length, header CRC and header JSON.
fn encode_preamble(header: &ScnHeader) -> Result<Vec<u8>, ScnError> {
    let json = serde_json::to_vec(header).map_err(|e| ScnError::HeaderCorrupt(e.to_string()))?;
    let len = u32::try_from(json.len())
        .ok()
        .filter(|len| *len <= MAX_HEADER_BYTES)
        .ok_or_else(|| {
            ScnError::HeaderCorrupt(format!(
                "header of {} bytes exceeds {MAX_HEADER_BYTES}",
                json.len()
            ))
        })?;
    let mut out = Vec::with_capacity(json.len() + 18);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

impl ScnWriter {
    /// Creates a new SCN file (it must not exist), writes its header and makes the file and its
    /// directory entry durable.
    pub fn create(
        path: &Path,
        header: &ScnHeader,
        policy: FsyncPolicy,
    ) -> Result<ScnWriter, ScnError> {
        let preamble = encode_preamble(header)?;
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(&preamble)?;
        file.sync_all()?;
        sync_parent_dir(path)?;
        Ok(ScnWriter::from_parts(
            file,
            path,
            policy,
            preamble.len() as u64,
        ))
    }

    /// Reopens an SCN file after a restart: keeps every whole record, cuts a torn or corrupt tail
    /// (reported as [`Dropped`]) and continues appending after the last whole record. A file
    /// that was closed cleanly is refused with [`ScnError::Closed`].
    pub fn open_append(
        path: &Path,
        policy: FsyncPolicy,
    ) -> Result<(ScnWriter, Option<Dropped>), ScnError> {
        let mut reader = ScnReader::open(path)?;
        while let Some(record) = reader.next_record()? {
            if matches!(record, Record::End { .. }) {
                return Err(ScnError::Closed);
            }
        }
        let valid_len = reader.offset();
        let dropped = reader.dropped().cloned();
        let mut file = OpenOptions::new().write(true).open(path)?;
        if dropped.is_some() {
            file.set_len(valid_len)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(valid_len))?;
        Ok((
            ScnWriter::from_parts(file, path, policy, valid_len),
            dropped,
        ))
    }

    fn from_parts(file: File, path: &Path, policy: FsyncPolicy, len: u64) -> ScnWriter {
        ScnWriter {
            file,
            path: path.to_owned(),
            policy,
            len,
            last_sync: Instant::now(),
            unsynced: false,
            state: WriterState::Open,
            scratch: Vec::new(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far (the offset the next record starts at).
    pub fn bytes_written(&self) -> u64 {
        self.len
    }

    /// Appends one record and returns the file length after it. With
    /// [`FsyncPolicy::EveryRecord`] the record is on stable storage when this returns.
    pub fn append(&mut self, record: &Record) -> Result<u64, ScnError> {
        match self.state {
            WriterState::Open => {}
            WriterState::Closed => return Err(ScnError::Closed),
            WriterState::Poisoned => {
                return Err(ScnError::Io(std::io::Error::other(
                    "an earlier write failed and could not be rolled back; reopen the file",
                )));
            }
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&[0; 8]);
        record.encode(&mut self.scratch)?;
        let body_len = self.scratch.len() - 8;
        let len = u32::try_from(body_len)
            .ok()
            .filter(|len| *len <= MAX_RECORD_BYTES)
            .ok_or(ScnError::RecordTooLarge(body_len))?;
        let crc = crc32fast::hash(&self.scratch[8..]);
        self.scratch[0..4].copy_from_slice(&len.to_le_bytes());
        self.scratch[4..8].copy_from_slice(&crc.to_le_bytes());

        if let Err(error) = self.file.write_all(&self.scratch) {
            self.roll_back();
            return Err(error.into());
        }
        self.len += self.scratch.len() as u64;
        self.unsynced = true;
        let due = match self.policy {
            FsyncPolicy::EveryRecord => true,
            FsyncPolicy::Interval(interval) => self.last_sync.elapsed() >= interval,
            FsyncPolicy::Never => false,
        };
        if due {
            self.sync()?;
        }
        Ok(self.len)
    }

    /// Truncates a partially written record away so the file stays readable to its end.
    fn roll_back(&mut self) {
        let restored = self
            .file
            .set_len(self.len)
            .and_then(|()| self.file.seek(SeekFrom::Start(self.len)));
        if restored.is_err() {
            self.state = WriterState::Poisoned;
        }
    }

    /// Cuts the file back to `len` (an earlier [`bytes_written`](Self::bytes_written), the
    /// start of a batch whose write or sync failed) and continues appending from there; a writer
    /// poisoned by a failed roll-back is usable again once this succeeds.
    pub fn rewind(&mut self, len: u64) -> Result<(), ScnError> {
        if self.state == WriterState::Closed {
            return Err(ScnError::Closed);
        }
        if len > self.len {
            return Err(ScnError::Io(std::io::Error::other(format!(
                "cannot rewind to {len}: only {} bytes were written",
                self.len
            ))));
        }
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::Start(len))?;
        self.len = len;
        self.unsynced = true;
        self.state = WriterState::Open;
        Ok(())
    }

    /// Another handle to the file, so that another thread can force what was appended to disk
    /// (`sync_data` on it) while this one goes on appending.
    pub fn try_clone_file(&self) -> Result<File, ScnError> {
        Ok(self.file.try_clone()?)
    }

    /// The open file, for a caller that makes it durable with others at once (a sync of its
    /// whole file system) and then says so with [`mark_synced`](Self::mark_synced).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Records that everything appended so far was made durable by the caller after the last
    /// append (one sync of the file system that holds this file and others), so that
    /// [`sync`](Self::sync) has nothing left to do.
    pub fn mark_synced(&mut self) {
        self.unsynced = false;
        self.last_sync = Instant::now();
    }

    /// Forces everything appended so far to stable storage.
    pub fn sync(&mut self) -> Result<(), ScnError> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Appends the end record, syncs, and closes the file. Returns its final length.
    pub fn finish(mut self, at: UtcMicros) -> Result<u64, ScnError> {
        self.append(&Record::End { at })?;
        self.sync()?;
        self.state = WriterState::Closed;
        Ok(self.len)
    }
}

/// Makes a new directory entry durable (a created file survives power loss only once its
/// directory is synced too).
#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(parent)?.sync_all()
}

/// Windows makes directory entries durable with the file's own flush (NTFS journals metadata).
#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
