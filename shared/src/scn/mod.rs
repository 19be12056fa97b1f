//! The SCN file: Capture's append-only screen buffer (DESIGN.md §4).
//!
//! The recorder writes one SCN file per contact in the call buffer; the agent uses the same format
//! for its offline spool. The layout, all integers little-endian:
//!
//! ```text
//! file   := magic[8] version:u16 header_len:u32 header_crc:u32 header[header_len] record*
//! record := len:u32 crc:u32 type:u8 body[len - 1]
//! ```
//!
//! `magic` is [`MAGIC`]; `header` is the JSON of [`ScnHeader`]; `crc` is the CRC-32 (IEEE) of
//! `type` and `body`, so a record is either whole and intact or detected as torn or corrupt.
//! Record types and bodies are in [`Record`]. A file ends with [`Record::End`] when it was closed
//! cleanly; after a crash the reader returns every complete record up to the first damaged one and
//! reports what it dropped ([`Dropped`]).

mod reader;
mod record;
mod writer;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use reader::{
    DropReason, Dropped, Recovery, ScnReader, read_record_at, recover, recover_from_reader,
};
pub use record::Record;
pub use writer::ScnWriter;

use crate::ids::{AgentId, ContactId};
use crate::protocol::{MAX_FRAME_BYTES, MonitorInfo};
use crate::time::{AgentMicros, UtcMicros};

/// The first eight bytes of every SCN file. The high-bit first byte and the CR LF pair detect
/// files mangled by text-mode transfers, as PNG's signature does.
pub const MAGIC: [u8; 8] = *b"\x89SCN\r\n\x1a\n";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Largest header JSON, in bytes.
pub const MAX_HEADER_BYTES: u32 = 64 * 1024;

/// Largest record (type + body), in bytes: one maximal video frame plus its record fields.
pub const MAX_RECORD_BYTES: u32 = MAX_FRAME_BYTES as u32 + 1024;

/// Bytes before the header JSON: magic, version, length, CRC.
pub const PREAMBLE_BYTES: u64 = 8 + 2 + 4 + 4;

/// Bytes before each record's type: length and CRC.
pub const RECORD_FRAMING_BYTES: u64 = 4 + 4;

/// What the file is about, written once at its start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScnHeader {
    /// The agent whose screen this is.
    pub agent: AgentId,
    /// The contact.
    pub contact: ContactId,
    /// When the file was created, server clock.
    pub created: UtcMicros,
    /// The agent's monitors at the start of the contact.
    pub monitors: Vec<MonitorInfo>,
    /// The clock anchor: an agent instant and the server instant it maps to, when known at
    /// creation. Later [`Record::ClockSample`]s refine it.
    pub clock_anchor: Option<ClockAnchor>,
}

/// One mapping of the agent's monotonic clock onto the server's UTC clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockAnchor {
    /// An instant on the agent's clock.
    pub agent: AgentMicros,
    /// The same instant on the server's clock.
    pub server: UtcMicros,
    /// The round trip of the measurement, µs: the anchor is good to ± half of it.
    pub rtt_us: u64,
}

impl ClockAnchor {
    /// Microseconds to add to an agent instant to get the server instant.
    pub fn offset_us(&self) -> i64 {
        self.server
            .0
            .saturating_sub(i64::try_from(self.agent.0).unwrap_or(i64::MAX))
    }

    /// An instant of the agent's clock on the server's clock.
    pub fn to_server(&self, at: AgentMicros) -> UtcMicros {
        UtcMicros(
            i64::try_from(at.0)
                .unwrap_or(i64::MAX)
                .saturating_add(self.offset_us()),
        )
    }
}

/// When the writer forces appended records to stable storage. Every policy writes each record
/// to the operating system before `append` returns, so a killed process loses nothing; the
/// policy decides what a power loss may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` after every record: an acknowledged record survives power loss.
    EveryRecord,
    /// `fdatasync` when this much time passed since the last one (checked on append, and on
    /// [`ScnWriter::sync`]): at most this window is lost to a power loss.
    Interval(Duration),
    /// Never sync except on [`ScnWriter::finish`] and [`ScnWriter::sync`].
    Never,
}

/// Why an SCN file could not be created, opened or appended to.
#[derive(Debug, thiserror::Error)]
pub enum ScnError {
    /// An IO error.
    #[error("scn io error: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not start with the SCN magic.
    #[error("not an SCN file (bad magic)")]
    BadMagic,
    /// The file is of a format version this build does not read.
    #[error("unsupported SCN format version {0}")]
    UnsupportedVersion(u16),
    /// The file ends inside its header: nothing in it is recoverable.
    #[error("SCN header is incomplete: the file has {available} of {needed} bytes")]
    HeaderTorn {
        /// Bytes the header needs.
        needed: u64,
        /// Bytes the file has.
        available: u64,
    },
    /// The header is damaged.
    #[error("SCN header is corrupt: {0}")]
    HeaderCorrupt(String),
    /// A record is too large to be written.
    #[error("record of {0} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes")]
    RecordTooLarge(usize),
    /// A record is not valid (empty video, text too long, ...).
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// The writer was already finished with an end record.
    #[error("the SCN file is already closed")]
    Closed,
}

#[cfg(test)]
mod tests;
