//! Reopening the spool after a run ended (cleanly or killed): every segment read back, the
//! unacknowledged frames indexed again, a contact that did not end continued in its last
//! segment (a torn tail cut).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use capture_shared::ids::{AgentId, ContactId};
use capture_shared::protocol::MonitorInfo;
use capture_shared::scn::{FsyncPolicy, Record, ScnReader, ScnWriter};
use capture_shared::time::UtcMicros;

use super::{Contact, Entry, Segment, Spool, SpoolError, io_error, scn_error};

/// A contact's segment files found on disk: (segment number, path).
type Segments = Vec<(u32, PathBuf)>;

/// `<contact>-<segment>.scn` → its parts.
fn parse_name(name: &str) -> Option<(ContactId, u32)> {
    let stem = name.strip_suffix(".scn")?;
    let (contact, segment) = stem.rsplit_once('-')?;
    Some((
        ContactId(contact.parse::<uuid::Uuid>().ok()?),
        segment.parse().ok()?,
    ))
}

impl Spool {
    /// Opens (creating) the spool in `dir`, reading what a previous run left: every frame not
    /// known to be acknowledged is to be sent again (the server's `Welcome` says what it holds).
    pub fn open(
        dir: &Path,
        agent: AgentId,
        quota: u64,
        monitors: Vec<MonitorInfo>,
    ) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut spool = Spool {
            dir: dir.to_owned(),
            agent,
            quota,
            monitors,
            contacts: BTreeMap::new(),
            next_order: 0,
            dropped: Vec::new(),
            syncer: super::sync::Syncer::default(),
        };
        let mut found: BTreeMap<ContactId, Segments> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            let name = entry.file_name();
            match name.to_str().and_then(parse_name) {
                Some((contact, segment)) => {
                    found
                        .entry(contact)
                        .or_default()
                        .push((segment, entry.path()));
                }
                None => tracing::warn!(file = ?name, "not a spool file; left alone"),
            }
        }
        // Oldest contact first, so that frames keep their order across contacts.
        let mut contacts: Vec<(UtcMicros, ContactId, Segments)> = Vec::new();
        for (contact, mut segments) in found {
            segments.sort();
            let created = ScnReader::open(&segments[0].1)
                .map(|r| r.header().created)
                .unwrap_or(UtcMicros(i64::MAX));
            contacts.push((created, contact, segments));
        }
        contacts.sort_by_key(|(created, contact, _)| (*created, *contact));
        for (_, contact, segments) in contacts {
            spool.load(contact, segments)?;
        }
        Ok(spool)
    }

    fn load(&mut self, id: ContactId, segments: Segments) -> Result<(), SpoolError> {
        let mut contact = Contact::new(self.next_order);
        let last = segments.len() - 1;
        for (position, (index, path)) in segments.into_iter().enumerate() {
            let mut reader = match ScnReader::open(&path) {
                Ok(reader) => reader,
                Err(error) => {
                    // A segment torn inside its header holds no frame.
                    tracing::warn!(file = %path.display(), %error, "unreadable spool segment removed");
                    std::fs::remove_file(&path).map_err(io_error(&path))?;
                    continue;
                }
            };
            let mut frames = 0;
            loop {
                let offset = reader.offset();
                let Some(record) = reader.next_record().map_err(io_error(&path))? else {
                    break;
                };
                match record {
                    Record::StreamParams {
                        monitor,
                        width,
                        height,
                        ..
                    } => {
                        contact.streams.entry(monitor).or_default().size = Some((width, height));
                    }
                    Record::Video {
                        monitor,
                        sequence,
                        captured,
                        ..
                    } => {
                        let stream = contact.streams.entry(monitor).or_default();
                        let size = stream.size.unwrap_or((0, 0));
                        stream.next = sequence + 1;
                        stream.unacked.push_back(Entry {
                            order: self.next_order,
                            sequence,
                            segment: index,
                            offset,
                            bytes: reader.offset() - offset,
                            captured,
                            size,
                        });
                        self.next_order += 1;
                        frames += 1;
                    }
                    Record::End { .. } => contact.ended = true,
                    _ => {}
                }
            }
            let bytes = reader.offset();
            drop(reader);
            if position == last && !contact.ended {
                // Continues where the killed run stopped (a torn tail is cut).
                let (writer, _) =
                    ScnWriter::open_append(&path, FsyncPolicy::Never).map_err(scn_error(&path))?;
                contact.writer = Some(writer);
            }
            contact.segments.push_back(Segment {
                index,
                path,
                bytes,
                frames,
                reader: None,
            });
        }
        if !contact.ended {
            contact.interrupted_at = contact
                .streams
                .values()
                .filter_map(|s| s.unacked.back().map(|e| e.captured))
                .max();
        }
        tracing::info!(contact = %id, frames = contact.unacked(), ended = contact.ended, "spooled contact found");
        self.next_order += 1;
        self.contacts.insert(id, contact);
        Ok(())
    }
}
