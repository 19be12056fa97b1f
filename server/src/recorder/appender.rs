//! The recorder's append thread: every open file's queued batches are written here, a round at a
//! time, and the round is made durable at once — one `syncfs` of the buffer's file system on
//! Linux ≥ 5.8 (which reports write-back errors), one `fdatasync` per file elsewhere.
//!
//! Syncing each file on its own cost one journal commit per file per batch (about 5,000 a second
//! at 2,500 agents streaming 2 fps) and one blocking-pool hand-off per batch; a round costs one
//! thread wake-up and one commit for all the files that had something queued. Only this thread
//! syncs through its own directory handle, and a round's writes all happen after the previous
//! round's sync returned, so a write-back error on any page of a round is reported by that
//! round's `syncfs` (or by the write itself): the whole round then counts as failed and every
//! file in it retries its batch (see [`super::writer`]), nothing of it acknowledged. The cost: the
//! sync also flushes whatever else is dirty on that file system (the database, a stitch being
//! archived), which lengthens that round.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc;

use capture_shared::ids::MonitorId;
use capture_shared::scn::{ScnError, ScnWriter};
use tokio::sync::oneshot;

use super::writer::Append;

/// Most batches written in one round before its sync (the rest wait for the next round).
const ROUND: usize = 4096;

/// A batch's outcome: the highest sequence per monitor and the video records written, or the
/// write's or sync's error.
pub type Written = Result<(BTreeMap<MonitorId, u64>, u64), ScnError>;

/// What a batch's round returns: the writer and the batch (their permits still held), and its
/// outcome.
pub type Done = (ScnWriter, Vec<Append>, Written);

struct Job {
    writer: ScnWriter,
    start: u64,
    retry: bool,
    appends: Vec<Append>,
    reply: oneshot::Sender<Done>,
}

/// The handle to the append thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Appender {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("path", &self.writer.path())
            .field("appends", &self.appends.len())
            .finish()
    }
}

impl Appender {
    /// Starts the thread for the files under `dir` (created if missing).
    pub fn spawn(dir: PathBuf) -> std::io::Result<Appender> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("scn-append".into())
            .spawn(move || run(Durability::new(dir), &queue))?;
        Ok(Appender { jobs })
    }

    /// Writes `appends` (after a failed attempt, from `start` again) and makes them durable
    /// with the rest of their round; `None` when the thread is gone (it panicked).
    pub async fn append(
        &self,
        writer: ScnWriter,
        start: u64,
        retry: bool,
        appends: Vec<Append>,
    ) -> Option<Done> {
        let (reply, done) = oneshot::channel();
        let job = Job {
            writer,
            start,
            retry,
            appends,
            reply,
        };
        self.jobs.send(job).ok()?;
        done.await.ok()
    }
}

fn run(mut durability: Durability, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut round = vec![first];
        while round.len() < ROUND {
            match queue.try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_round(&mut durability, &mut round)
        }));
        match outcome {
            Ok(results) => {
                for (job, result) in round.into_iter().zip(results) {
                    // A writer whose task has gone (server stopping) is dropped here.
                    let _ = job.reply.send((job.writer, job.appends, result));
                }
            }
            Err(_) => {
                // The round's writers are dropped unreplied: each file's task stops, its file
                // stays at its last synced batch and its agent keeps what was not acknowledged.
                tracing::error!(
                    files = round.len(),
                    "scn append round panicked; its files stay at their last synced batch"
                );
            }
        }
    }
}

/// Writes every batch of the round, then syncs those that were written.
fn write_round(durability: &mut Durability, round: &mut [Job]) -> Vec<Written> {
    let mut results: Vec<_> = round
        .iter_mut()
        .map(|job| write_batch(&mut job.writer, job.start, job.retry, &job.appends))
        .collect();
    let mut written: Vec<(&mut ScnWriter, &mut Written)> = round
        .iter_mut()
        .zip(results.iter_mut())
        .filter(|(_, result)| result.is_ok())
        .map(|(job, result)| (&mut job.writer, result))
        .collect();
    let synced = durability.sync(written.iter_mut().map(|(writer, _)| &mut **writer));
    for ((_, result), synced) in written.into_iter().zip(synced) {
        if let Err(error) = synced {
            *result = Err(error);
        }
    }
    results
}

/// One batch: (after a failed attempt, back to `start` first) every record; the highest
/// sequence per monitor and the video records written. Not yet durable.
fn write_batch(writer: &mut ScnWriter, start: u64, retry: bool, appends: &[Append]) -> Written {
    if retry {
        writer.rewind(start)?;
    }
    let mut acks: BTreeMap<MonitorId, u64> = BTreeMap::new();
    let mut written = 0;
    for (record, ack, _) in appends {
        writer.append(record)?;
        if let Some((monitor, sequence, _)) = *ack {
            written += 1;
            let entry = acks.entry(monitor).or_insert(sequence);
            *entry = (*entry).max(sequence);
        }
    }
    Ok((acks, written))
}

/// How a round is made durable.
struct Durability {
    dir: PathBuf,
    /// The buffer directory, opened once: the handle `syncfs` reports errors through (each
    /// error once per handle, so no one else may use it).
    handle: Option<File>,
    /// The directory's device, to tell the files on its file system.
    device: Option<u64>,
    whole_fs: bool,
    /// The file-system sync (`syncfs`; a failing one in tests).
    syncfs: fn(&File) -> std::io::Result<()>,
}

impl Durability {
    fn new(dir: PathBuf) -> Durability {
        let whole_fs = os::syncfs_reports_errors();
        if !whole_fs {
            tracing::info!("scn files are synced one by one (no error-reporting syncfs here)");
        }
        Durability {
            dir,
            handle: None,
            device: None,
            whole_fs,
            syncfs: os::syncfs,
        }
    }

    /// The directory handle, opened on first use (the directory may not exist yet at start).
    fn handle(&mut self) -> Option<(&File, u64)> {
        if self.handle.is_none() && self.whole_fs {
            let opened = std::fs::create_dir_all(&self.dir)
                .and_then(|()| File::open(&self.dir))
                .and_then(|handle| Ok((os::device(&handle)?, handle)));
            match opened {
                Ok((device, handle)) => {
                    self.handle = Some(handle);
                    self.device = Some(device);
                }
                Err(error) => {
                    tracing::warn!(%error, dir = %self.dir.display(), "scn buffer directory cannot be opened; syncing files one by one")
                }
            }
        }
        Some((self.handle.as_ref()?, self.device?))
    }

    /// Makes every writer's appends durable: one sync of the file system for those on the
    /// directory's file system, one sync each for any other. A failed file-system sync fails
    /// every writer it covered.
    fn sync<'a>(
        &mut self,
        writers: impl Iterator<Item = &'a mut ScnWriter>,
    ) -> Vec<Result<(), ScnError>> {
        let syncfs = self.syncfs;
        let Some((dir, device)) = self.handle() else {
            return writers.map(ScnWriter::sync).collect();
        };
        let mut results = Vec::new();
        let mut shared = Vec::new();
        for writer in writers {
            if os::device(writer.file()).ok() == Some(device) {
                shared.push((results.len(), writer));
                results.push(Ok(()));
            } else {
                results.push(writer.sync());
            }
        }
        if shared.is_empty() {
            return results;
        }
        match syncfs(dir) {
            Ok(()) => {
                for (_, writer) in shared {
                    writer.mark_synced();
                }
            }
            Err(error) => {
                tracing::warn!(%error, files = shared.len(), "syncing the scn buffer's file system failed; the round's batches are written again");
                for (index, _) in shared {
                    results[index] = Err(ScnError::Io(std::io::Error::new(
                        error.kind(),
                        format!("syncing the file system failed: {error}"),
                    )));
                }
            }
        }
        results
    }
}

#[cfg(target_os = "linux")]
mod os {
    use std::fs::File;
    use std::os::unix::fs::MetadataExt;

    /// `syncfs` reports write-back errors since Linux 5.8; before, it returned success anyway.
    pub fn syncfs_reports_errors() -> bool {
        let name = rustix::system::uname();
        let release = name.release().to_string_lossy();
        let mut parts = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let major = parts.next().unwrap_or(0);
        let minor = parts.next().unwrap_or(0);
        (major, minor) >= (5, 8)
    }

    pub fn device(file: &File) -> std::io::Result<u64> {
        Ok(file.metadata()?.dev())
    }

    pub fn syncfs(dir: &File) -> std::io::Result<()> {
        rustix::fs::syncfs(dir).map_err(std::io::Error::from)
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    use std::fs::File;

    pub fn syncfs_reports_errors() -> bool {
        false
    }

    pub fn device(_file: &File) -> std::io::Result<u64> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    pub fn syncfs(_dir: &File) -> std::io::Result<()> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// The shared-sync path is Linux's; these tests force it on whatever the kernel's version.
#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use capture_shared::ids::{AgentId, ContactId};
    use capture_shared::protocol::MonitorInfo;
    use capture_shared::scn::{FsyncPolicy, Record, ScnHeader, ScnReader};
    use capture_shared::time::{AgentMicros, UtcMicros};
    use uuid::Uuid;

    use super::*;

    fn header() -> ScnHeader {
        ScnHeader {
            agent: AgentId(Uuid::new_v4()),
            contact: ContactId(Uuid::new_v4()),
            created: UtcMicros(1_795_000_000_000_000),
            monitors: vec![MonitorInfo {
                id: MonitorId(0),
                x: 0,
                y: 0,
                width: 1920,
                height: 1080,
                scale: 1.0,
                primary: true,
            }],
            clock_anchor: None,
        }
    }

    fn frames(sequences: std::ops::Range<u64>) -> Vec<Append> {
        sequences
            .map(|sequence| {
                let record = Record::Video {
                    monitor: MonitorId(0),
                    sequence,
                    captured: AgentMicros(sequence * 500_000),
                    keyframe: sequence == 0,
                    data: vec![0, 0, 0, 1, 0x65, sequence as u8],
                };
                let ack = Some((MonitorId(0), sequence, tokio::time::Instant::now()));
                (record, ack, None)
            })
            .collect()
    }

    fn job(writer: ScnWriter, appends: Vec<Append>, retry: Option<u64>) -> Job {
        let start = retry.unwrap_or_else(|| writer.bytes_written());
        Job {
            writer,
            start,
            retry: retry.is_some(),
            appends,
            reply: oneshot::channel().0,
        }
    }

    fn video_sequences(path: &std::path::Path) -> Vec<u64> {
        let mut reader = ScnReader::open(path).unwrap();
        let mut sequences = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            if let Record::Video { sequence, .. } = record {
                sequences.push(sequence);
            }
        }
        sequences
    }

    #[test]
    fn a_round_is_synced_once_for_all_its_files_and_each_file_acks_its_highest_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let mut durability = Durability::new(dir.path().to_owned());
        durability.whole_fs = true;
        static SYNCS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        durability.syncfs = |dir| {
            SYNCS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            os::syncfs(dir)
        };
        let mut round: Vec<Job> = (0..3)
            .map(|i| {
                let path = dir.path().join(format!("{i}.scn"));
                let writer = ScnWriter::create(&path, &header(), FsyncPolicy::Never).unwrap();
                job(writer, frames(0..5 + i), None)
            })
            .collect();
        let results = write_round(&mut durability, &mut round);
        assert_eq!(SYNCS.load(std::sync::atomic::Ordering::SeqCst), 1);
        for (i, result) in results.into_iter().enumerate() {
            let (acks, written) = result.unwrap();
            assert_eq!(acks, BTreeMap::from([(MonitorId(0), 4 + i as u64)]));
            assert_eq!(written, 5 + i as u64);
        }
        for (i, job) in round.iter().enumerate() {
            assert_eq!(
                video_sequences(job.writer.path()),
                (0..5 + i as u64).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_failed_file_system_sync_fails_every_batch_of_the_round_and_the_retry_writes_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut durability = Durability::new(dir.path().to_owned());
        durability.whole_fs = true;
        durability.syncfs = |_| Err(std::io::Error::from_raw_os_error(5));
        let mut round: Vec<Job> = (0..2)
            .map(|i| {
                let path = dir.path().join(format!("{i}.scn"));
                let writer = ScnWriter::create(&path, &header(), FsyncPolicy::Never).unwrap();
                job(writer, frames(0..4), None)
            })
            .collect();
        let starts: Vec<u64> = round.iter().map(|job| job.start).collect();
        let results = write_round(&mut durability, &mut round);
        for result in &results {
            let error = result.as_ref().unwrap_err().to_string();
            assert!(error.contains("syncing the file system failed"), "{error}");
        }
        // The writers try again from the batch's start: each record lands once.
        durability.syncfs = os::syncfs;
        let mut retry: Vec<Job> = round
            .into_iter()
            .zip(starts)
            .map(|(failed, start)| job(failed.writer, failed.appends, Some(start)))
            .collect();
        for result in write_round(&mut durability, &mut retry) {
            assert_eq!(result.unwrap().1, 4);
        }
        for job in &retry {
            assert_eq!(video_sequences(job.writer.path()), vec![0, 1, 2, 3]);
        }
    }

    #[test]
    fn a_batch_that_cannot_be_written_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut durability = Durability::new(dir.path().to_owned());
        let good =
            ScnWriter::create(&dir.path().join("good.scn"), &header(), FsyncPolicy::Never).unwrap();
        let bad =
            ScnWriter::create(&dir.path().join("bad.scn"), &header(), FsyncPolicy::Never).unwrap();
        // A retry from past the end of what was written is refused before anything is written.
        let beyond = bad.bytes_written() + 1;
        let mut round = vec![
            job(good, frames(0..3), None),
            job(bad, frames(0..3), Some(beyond)),
        ];
        let results = write_round(&mut durability, &mut round);
        assert_eq!(results[0].as_ref().unwrap().1, 3);
        assert!(results[1].is_err());
        assert_eq!(video_sequences(round[1].writer.path()), Vec::<u64>::new());
    }
}
